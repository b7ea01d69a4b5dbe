//! Settings fingerprint: lower-case hex SHA-256 of the RFC 8785 canonical JSON.
//!
//! Nodes agree on an index's settings exactly when their fingerprints are equal; hashing the
//! canonical form (not the raw body) makes key order, whitespace and number spelling irrelevant.

use super::canonical::canonical_bytes;
use super::canonical_text::{read_text, TextError};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt::Write;

/// SHA-256 of the canonical form of `value`, as 64 lower-case hex digits.
pub fn fingerprint(value: &Value) -> String {
    let digest = Sha256::digest(canonical_bytes(value));
    lower_hex(&digest)
}

/// Fingerprints the JSON text `body` (the same digest as `fingerprint` of the parsed value),
/// reading the canonical form straight from the text; the error says why it is not JSON.
pub fn fingerprint_bytes(body: &[u8]) -> Result<String, TextError> {
    Ok(fingerprint_canonical(&read_text(body)?.canonical))
}

/// Fingerprints a text already in canonical form (`canonical_text::read_text`'s output).
pub fn fingerprint_canonical(canonical: &str) -> String {
    lower_hex(&Sha256::digest(canonical.as_bytes()))
}

fn lower_hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing into a String cannot fail; the Result is only the fmt::Write signature.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_object_digest_is_sha256_of_two_braces() {
        // sha256("{}"), computed independently with `printf '{}' | sha256sum`.
        assert_eq!(
            fingerprint(&json!({})),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn formatting_differences_do_not_change_the_fingerprint() {
        let spaced = br#" { "b" : [ 1.0 , 2e0 ] , "a" : "x" } "#;
        let compact = br#"{"a":"x","b":[1,2]}"#;
        let first = fingerprint_bytes(spaced);
        assert!(first.is_ok());
        assert_eq!(first.ok(), fingerprint_bytes(compact).ok());
    }

    #[test]
    fn different_values_give_different_fingerprints() {
        assert_ne!(fingerprint(&json!({"a": 1})), fingerprint(&json!({"a": 2})));
    }

    #[test]
    fn malformed_body_is_an_error() {
        assert!(fingerprint_bytes(b"{\"a\":").is_err());
    }
}
