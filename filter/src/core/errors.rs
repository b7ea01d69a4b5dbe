//! Errors in Meilisearch's own shape (docs/operations.md, error codes): exactly
//! `{"message", "code", "type", "link"}` in that order, so SDKs and clients parse the filter's
//! errors exactly like a node's.
//!
//! Constructors take only what the message needs (index uids, node ids, numbers, internal
//! reasons); none takes a header, a body or a key, so no secret can end up in an error.

use serde_json::{Map, Value};
use std::fmt;

/// Meilisearch's error `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    InvalidRequest,
    Internal,
    Auth,
    System,
}

impl ErrorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::InvalidRequest => "invalid_request",
            ErrorType::Internal => "internal",
            ErrorType::Auth => "auth",
            ErrorType::System => "system",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeiliError {
    /// The HTTP status when answered directly; informative only when used as a task error.
    pub status: u16,
    pub code: String,
    pub error_type: ErrorType,
    pub message: String,
}

const LINK_BASE: &str = "https://docs.meilisearch.com/errors#";

impl MeiliError {
    pub fn new(
        status: u16,
        code: impl Into<String>,
        error_type: ErrorType,
        message: impl Into<String>,
    ) -> Self {
        MeiliError {
            status,
            code: code.into(),
            error_type,
            message: message.into(),
        }
    }

    /// `https://docs.meilisearch.com/errors#<code>`, as Meilisearch links every code.
    pub fn link(&self) -> String {
        format!("{LINK_BASE}{}", self.code)
    }

    /// The error as a JSON object, e.g. to embed as a task's `error`. Keys are inserted in
    /// Meilisearch's order, but a `serde_json::Map` without `preserve_order` sorts them when
    /// serialized: use [`MeiliError::body`] when the byte order matters.
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("message".into(), Value::String(self.message.clone()));
        map.insert("code".into(), Value::String(self.code.clone()));
        map.insert(
            "type".into(),
            Value::String(self.error_type.as_str().into()),
        );
        map.insert("link".into(), Value::String(self.link()));
        Value::Object(map)
    }

    /// The compact JSON body, keys in Meilisearch's order: message, code, type, link.
    pub fn body(&self) -> String {
        format!(
            r#"{{"message":{},"code":{},"type":{},"link":{}}}"#,
            json_string(&self.message),
            json_string(&self.code),
            json_string(self.error_type.as_str()),
            json_string(&self.link()),
        )
    }

    /// 400 `bad_request`: a request the filter refuses before any node sees it.
    /// `POST /tasks/cancel` or `DELETE /tasks` without a filter (`verb`: cancel or delete).
    pub fn missing_task_filters(verb: &str) -> Self {
        Self::new(
            400,
            "missing_task_filters",
            ErrorType::InvalidRequest,
            format!("Query parameters to filter the tasks to {verb} are missing. Available query parameters are: `uids`, `indexUids`, `statuses`, `types`, `canceledBy`, `beforeEnqueuedAt`, `afterEnqueuedAt`, `beforeStartedAt`, `afterStartedAt`, `beforeFinishedAt`, `afterFinishedAt`."),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "bad_request", ErrorType::InvalidRequest, message)
    }

    /// 400 `malformed_payload`, worded like Meilisearch; `detail` is the JSON parser's error.
    pub fn malformed_payload(detail: &str) -> Self {
        Self::new(
            400,
            "malformed_payload",
            ErrorType::InvalidRequest,
            format!("The json payload provided is malformed. `{detail}`."),
        )
    }

    /// 503 `miroir_unavailable`: a settings write could not be queued (front.rs, or the engine
    /// when its ledger answers later).
    /// The etcd backend cannot be reached or has no quorum: nothing was queued, nothing reached
    /// a node (docs/operations.md, "Choosing a state backend").
    pub fn state_unavailable() -> Self {
        Self::new(
            503,
            "miroir_state_unavailable",
            ErrorType::System,
            "The gateway's state store (etcd) cannot be reached; the write was not queued and no node received it. Retry later.",
        )
    }

    /// 400 `malformed_payload`: a mirrored write whose body is not UTF-8 text. Meilisearch takes
    /// compressed bodies (`Content-Encoding`); the gateway holds writes as text, so it cannot.
    pub fn body_not_text() -> Self {
        Self::new(
            400,
            "malformed_payload",
            ErrorType::InvalidRequest,
            "The request body is not UTF-8 text. The gateway mirrors write bodies as text: send it UTF-8 encoded and uncompressed (without `Content-Encoding`).",
        )
    }

    /// A node's task that did not end within `settings_broadcast.task_timeout_s`: the task's
    /// `error` on that node, shaped like every Meilisearch error (message, code, type, link).
    pub fn task_timeout() -> Self {
        Self::new(
            504,
            "miroir_task_timeout",
            ErrorType::System,
            "The node did not finish this task in time (`settings_broadcast.task_timeout_s`).",
        )
    }

    pub fn write_not_queued() -> Self {
        Self::new(
            503,
            "miroir_unavailable",
            ErrorType::System,
            "The settings write could not be queued; nothing was changed. Retry later.",
        )
    }

    /// 413 `payload_too_large`, worded like Meilisearch, which prints the limit in the largest
    /// binary unit not above it (`10 MiB`, `3 B`, `1.5 KiB`).
    pub fn payload_too_large(limit_bytes: u64) -> Self {
        Self::new(
            413,
            "payload_too_large",
            ErrorType::InvalidRequest,
            format!(
                "The provided payload reached the size limit. The maximum accepted payload size \
                 is {}.",
                binary_size(limit_bytes)
            ),
        )
    }

    /// 503 `miroir_index_frozen`: a write to an index whose settings could not be made to
    /// agree across nodes. Nothing reached a node.
    pub fn index_frozen(index: &str, reason: &str) -> Self {
        Self::new(
            503,
            "miroir_index_frozen",
            ErrorType::System,
            format!(
                "Index `{index}` is frozen for writes: {reason}. Reads are still served. An \
                 operator can inspect it with `GET /_miroir/indexes/{index}`, bring the nodes back \
                 to its settings with `POST /_miroir/indexes/{index}/repair`, or clear it with \
                 `POST /_miroir/indexes/{index}/unfreeze` once they agree."
            ),
        )
    }

    /// `miroir_settings_divergence`: the task error of a broadcast whose repairs failed.
    pub fn settings_divergence(index: &str, detail: &str) -> Self {
        Self::new(
            500,
            "miroir_settings_divergence",
            ErrorType::System,
            format!(
                "Index `{index}`: the nodes' settings still disagree after repair, so the index \
                 is frozen for writes: {detail}."
            ),
        )
    }

    /// 503 `miroir_settings_version_stale`: no node has verified the version a read asked for.
    pub fn settings_version_stale(index: &str, min_version: u64) -> Self {
        Self::new(
            503,
            "miroir_settings_version_stale",
            ErrorType::System,
            format!(
                "No node has verified settings version {min_version} of index `{index}` yet. \
                 Retry later, or lower `X-Miroir-Min-Settings-Version`."
            ),
        )
    }

    /// 401 `miroir_invalid_admin_key`: the admin API needs the admin key as a bearer token.
    pub fn invalid_admin_key() -> Self {
        Self::new(
            401,
            "miroir_invalid_admin_key",
            ErrorType::Auth,
            "The admin API key is missing or invalid. `/_miroir` routes require \
             `Authorization: Bearer <admin key>`.",
        )
    }

    /// `miroir_node_unreachable` (502 when answered directly): a callout to one node failed.
    pub fn node_unreachable(node_id: &str, detail: &str) -> Self {
        Self::new(
            502,
            "miroir_node_unreachable",
            ErrorType::System,
            format!("Node `{node_id}` could not be reached: {detail}."),
        )
    }

    /// 404 `task_not_found`, worded like Meilisearch.
    pub fn task_not_found(uid: u64) -> Self {
        Self::new(
            404,
            "task_not_found",
            ErrorType::InvalidRequest,
            format!("Task `{uid}` not found."),
        )
    }

    /// 404 `batch_not_found`, worded like Meilisearch (the filter has no batches of its own).
    pub fn batch_not_found(uid: u32) -> Self {
        Self::new(
            404,
            "batch_not_found",
            ErrorType::InvalidRequest,
            format!("Batch `{uid}` not found."),
        )
    }

    /// 400 `invalid_batch_uids`: `GET /batches/{uid}` with a uid that is not a number.
    pub fn invalid_batch_uid(raw: &str) -> Self {
        Self::new(
            400,
            "invalid_batch_uids",
            ErrorType::InvalidRequest,
            format!("Batch uid `{raw}` is invalid. It should only contain numeric characters."),
        )
    }

    /// 404 `not_found`: a `/_miroir` path that is not an admin route.
    pub fn not_found() -> Self {
        Self::new(
            404,
            "not_found",
            ErrorType::InvalidRequest,
            "Not found. The admin routes are `GET /_miroir/indexes/{indexUid}` and \
             `POST /_miroir/indexes/{indexUid}/{action}`, the action `verify`, `unfreeze`, \
             `repair` or `resync?node={nodeId}`.",
        )
    }
}

impl fmt::Display for MeiliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for MeiliError {}

/// A JSON string literal with serde_json's escaping. Serializing a `&str` cannot fail; the
/// fallback only keeps the body valid JSON if it ever did.
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// Bytes in the largest binary unit not above them, the value printed in Rust's shortest
/// round-trip float form — the form Meilisearch's `byte_unit` output takes (`10 MiB`, `1.5 KiB`).
fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut unit = "B";
    let mut divisor: u64 = 1;
    let mut next: u64 = 1024;
    for name in UNITS {
        if bytes < next {
            break;
        }
        unit = name;
        divisor = next;
        next = match next.checked_mul(1024) {
            Some(n) => n,
            None => break,
        };
    }
    if divisor == 1 {
        format!("{bytes} B")
    } else {
        // Same arithmetic as byte_unit: an f64 division, printed as `Display` prints it (the
        // quotient is in [1, 1024), where ECMAScript's spelling is the same: no exponent).
        format!("{} {unit}", super::canonical::es_number_string(bytes as f64 / divisor as f64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each constructor with its exact body and status.
    #[test]
    fn bodies_are_pinned() {
        let cases: Vec<(MeiliError, u16, &str)> = vec![
            (
                MeiliError::bad_request("The body must be a JSON object."),
                400,
                r#"{"message":"The body must be a JSON object.","code":"bad_request","type":"invalid_request","link":"https://docs.meilisearch.com/errors#bad_request"}"#,
            ),
            (
                MeiliError::malformed_payload("EOF while parsing an object at line 1 column 22"),
                400,
                r#"{"message":"The json payload provided is malformed. `EOF while parsing an object at line 1 column 22`.","code":"malformed_payload","type":"invalid_request","link":"https://docs.meilisearch.com/errors#malformed_payload"}"#,
            ),
            (
                MeiliError::payload_too_large(10_485_760),
                413,
                r#"{"message":"The provided payload reached the size limit. The maximum accepted payload size is 10 MiB.","code":"payload_too_large","type":"invalid_request","link":"https://docs.meilisearch.com/errors#payload_too_large"}"#,
            ),
            (
                MeiliError::index_frozen("movies", "node-2 kept returning different settings"),
                503,
                r#"{"message":"Index `movies` is frozen for writes: node-2 kept returning different settings. Reads are still served. An operator can inspect it with `GET /_miroir/indexes/movies`, bring the nodes back to its settings with `POST /_miroir/indexes/movies/repair`, or clear it with `POST /_miroir/indexes/movies/unfreeze` once they agree.","code":"miroir_index_frozen","type":"system","link":"https://docs.meilisearch.com/errors#miroir_index_frozen"}"#,
            ),
            (
                MeiliError::settings_divergence("movies", "node-1 differs from node-0 and node-2"),
                500,
                r#"{"message":"Index `movies`: the nodes' settings still disagree after repair, so the index is frozen for writes: node-1 differs from node-0 and node-2.","code":"miroir_settings_divergence","type":"system","link":"https://docs.meilisearch.com/errors#miroir_settings_divergence"}"#,
            ),
            (
                MeiliError::settings_version_stale("movies", 7),
                503,
                r#"{"message":"No node has verified settings version 7 of index `movies` yet. Retry later, or lower `X-Miroir-Min-Settings-Version`.","code":"miroir_settings_version_stale","type":"system","link":"https://docs.meilisearch.com/errors#miroir_settings_version_stale"}"#,
            ),
            (
                MeiliError::invalid_admin_key(),
                401,
                r#"{"message":"The admin API key is missing or invalid. `/_miroir` routes require `Authorization: Bearer <admin key>`.","code":"miroir_invalid_admin_key","type":"auth","link":"https://docs.meilisearch.com/errors#miroir_invalid_admin_key"}"#,
            ),
            (
                MeiliError::node_unreachable("node-2", "connection refused"),
                502,
                r#"{"message":"Node `node-2` could not be reached: connection refused.","code":"miroir_node_unreachable","type":"system","link":"https://docs.meilisearch.com/errors#miroir_node_unreachable"}"#,
            ),
            (
                MeiliError::task_not_found(2_130_706_433),
                404,
                r#"{"message":"Task `2130706433` not found.","code":"task_not_found","type":"invalid_request","link":"https://docs.meilisearch.com/errors#task_not_found"}"#,
            ),
            (
                MeiliError::batch_not_found(7),
                404,
                r#"{"message":"Batch `7` not found.","code":"batch_not_found","type":"invalid_request","link":"https://docs.meilisearch.com/errors#batch_not_found"}"#,
            ),
            (
                MeiliError::invalid_batch_uid("x"),
                400,
                r#"{"message":"Batch uid `x` is invalid. It should only contain numeric characters.","code":"invalid_batch_uids","type":"invalid_request","link":"https://docs.meilisearch.com/errors#invalid_batch_uids"}"#,
            ),
            (
                MeiliError::not_found(),
                404,
                r#"{"message":"Not found. The admin routes are `GET /_miroir/indexes/{indexUid}` and `POST /_miroir/indexes/{indexUid}/{action}`, the action `verify`, `unfreeze`, `repair` or `resync?node={nodeId}`.","code":"not_found","type":"invalid_request","link":"https://docs.meilisearch.com/errors#not_found"}"#,
            ),
        ];
        for (error, status, body) in cases {
            assert_eq!(error.status, status, "{error}");
            assert_eq!(error.body(), body);
            // The body is valid JSON and carries the same four values as to_json().
            let parsed: Value = serde_json::from_str(&error.body()).unwrap();
            assert_eq!(parsed, error.to_json());
        }
    }

    #[test]
    fn error_types_serialize_like_meilisearch() {
        let cases = [
            (ErrorType::InvalidRequest, "invalid_request"),
            (ErrorType::Internal, "internal"),
            (ErrorType::Auth, "auth"),
            (ErrorType::System, "system"),
        ];
        for (error_type, expected) in cases {
            assert_eq!(error_type.as_str(), expected);
            let e = MeiliError::new(500, "x", error_type, "m");
            assert_eq!(e.to_json()["type"], expected);
        }
    }

    #[test]
    fn to_json_has_exactly_the_four_keys() {
        let json = MeiliError::task_not_found(5).to_json();
        let object = json.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "link", "message", "type"]);
        assert_eq!(
            json["link"],
            "https://docs.meilisearch.com/errors#task_not_found"
        );
        assert_eq!(json["message"], "Task `5` not found.");
    }

    #[test]
    fn body_key_order_is_message_code_type_link() {
        let body = MeiliError::invalid_admin_key().body();
        let positions: Vec<usize> = ["\"message\":", "\"code\":", "\"type\":", "\"link\":"]
            .iter()
            .map(|k| body.find(k).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{body}");
    }

    #[test]
    fn strings_are_json_escaped() {
        let e = MeiliError::malformed_payload("expected `\"` at line 1\ncolumn 2\t\u{1}");
        assert_eq!(
            e.body(),
            r#"{"message":"The json payload provided is malformed. `expected `\"` at line 1\ncolumn 2\t\u0001`.","code":"malformed_payload","type":"invalid_request","link":"https://docs.meilisearch.com/errors#malformed_payload"}"#
        );
        let parsed: Value = serde_json::from_str(&e.body()).unwrap();
        assert_eq!(parsed["message"], e.message.as_str());
    }

    /// Sizes as Meilisearch's byte_unit prints them (its own test pins `3 B`; production `10 MiB`).
    #[test]
    fn payload_limits_print_in_binary_units() {
        let cases = [
            (0, "0 B"),
            (3, "3 B"),
            (1_023, "1023 B"),
            (1_024, "1 KiB"),
            (1_536, "1.5 KiB"),
            (1_500, "1.46484375 KiB"),
            (1_048_575, "1023.9990234375 KiB"),
            (1_048_576, "1 MiB"),
            (10_485_760, "10 MiB"),
            (104_857_600, "100 MiB"),
            (1 << 30, "1 GiB"),
            (1 << 60, "1 EiB"),
            (u64::MAX, "16 EiB"),
        ];
        for (bytes, expected) in cases {
            assert_eq!(binary_size(bytes), expected, "{bytes}");
        }
        assert!(MeiliError::payload_too_large(1_024)
            .message
            .ends_with("The maximum accepted payload size is 1 KiB."));
    }

    #[test]
    fn display_is_code_status_and_message() {
        assert_eq!(
            MeiliError::task_not_found(9).to_string(),
            "task_not_found (404): Task `9` not found."
        );
    }
}
