//! Master-key authorization (reference §8). Only the master key is known to a dev node: with no
//! master key every route is open; with one, every route but `/health` needs `Bearer <key>`.

use crate::errors::ApiError;

pub fn check(master_key: Option<&str>, authorization: Option<&str>) -> Result<(), ApiError> {
    let Some(master_key) = master_key else {
        return Ok(());
    };
    let missing = || {
        ApiError::new(
            401,
            "missing_authorization_header",
            "auth",
            "The Authorization header is missing. It must use the bearer authorization method.",
        )
    };
    let header = authorization.ok_or_else(missing)?;
    let (scheme, token) = header.split_once(' ').unwrap_or((header, ""));
    if scheme != "Bearer" {
        return Err(missing());
    }
    if token.trim() == master_key && !master_key.is_empty() {
        Ok(())
    } else {
        Err(ApiError::new(403, "invalid_api_key", "auth", "The provided API key is invalid."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_key_rules() {
        assert!(check(None, None).is_ok());
        assert_eq!(check(Some("k"), None).unwrap_err().status, 401);
        assert_eq!(check(Some("k"), Some("Basic k")).unwrap_err().code, "missing_authorization_header");
        assert_eq!(check(Some("k"), Some("bearer k")).unwrap_err().status, 401);
        assert_eq!(check(Some("k"), Some("Bearer")).unwrap_err().code, "invalid_api_key");
        assert_eq!(check(Some("k"), Some("Bearer x")).unwrap_err().status, 403);
        assert!(check(Some("k"), Some("Bearer k")).is_ok());
    }
}
