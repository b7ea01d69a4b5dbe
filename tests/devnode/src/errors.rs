//! Meilisearch's error body: exactly `message`, `code`, `type`, `link`, in that order (reference §6).

use serde_json::{json, Value};

/// An error answered to a client (synchronously) or stored in a failed task.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
    pub code: String,
    pub kind: String,
}

impl ApiError {
    pub fn new(status: u16, code: &str, kind: &str, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into(), code: code.to_string(), kind: kind.to_string() }
    }

    /// 400 `invalid_request` error with the given code.
    pub fn invalid(code: &str, message: impl Into<String>) -> Self {
        Self::new(400, code, "invalid_request", message)
    }

    pub fn body(&self) -> Value {
        error_body(&self.message, &self.code, &self.kind)
    }

    pub fn index_not_found(uid: &str) -> Self {
        Self::new(404, "index_not_found", "invalid_request", format!("Index `{uid}` not found."))
    }

    pub fn invalid_index_uid(uid: &str) -> Self {
        Self::invalid(
            "invalid_index_uid",
            format!(
                "`{uid}` is not a valid index uid. Index uid can be an integer or a string containing only \
                 alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 512 bytes."
            ),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", "internal", message)
    }
}

/// The four-key error object, also used for `error` inside a task view.
pub fn error_body(message: &str, code: &str, kind: &str) -> Value {
    json!({
        "message": message,
        "code": code,
        "type": kind,
        "link": format!("https://docs.meilisearch.com/errors#{code}"),
    })
}
