//! The fault set of one node, set through the control API (`POST /nodes/{i}/faults` merges,
//! `DELETE` clears). Validated when set so a bad fault never surfaces mid-test.

use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::settings::{self, Update};

#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Listener and open connections closed; connections refused until cleared.
    pub down: bool,
    /// Added before every answer.
    pub delay_ms: u64,
    /// Per-node task processing time override.
    pub task_ms: Option<u64>,
    /// Every (non-control) request answered with this status and an `internal` error.
    pub status_5xx: Option<u16>,
    /// Requests accepted and never answered; closed when the fault is cleared.
    pub hang: bool,
    /// Requests answered with a status line, the headers and part of the body, then the connection
    /// is reset (RST), as when a node dies mid-response. The request is not applied.
    pub reset: bool,
    /// The next N settings updates are accepted and succeed but are not applied; -1 = forever.
    pub drop_updates: i64,
    /// Extra settings applied after every settings update task (raw body and parsed form).
    pub apply_different: Option<(Value, Update)>,
    /// Settings tasks fail with this error (code, message, type).
    pub fail_tasks: Option<ApiError>,
    /// Every task but cancelations and deletions fails with this error without being applied
    /// (settings tasks: only when `fail_tasks` is not set, which keeps its own message).
    pub fail_all_tasks: Option<ApiError>,
    /// Settings writes rejected synchronously with this error.
    pub reject_settings: Option<ApiError>,
}

fn bad(message: impl Into<String>) -> String {
    message.into()
}

impl Faults {
    /// Merges a control-API body: each present key sets that fault, `null` (or false/0) clears it.
    pub fn merge(&mut self, body: &Value) -> Result<(), String> {
        let obj = body.as_object().ok_or_else(|| bad("faults body must be a JSON object"))?;
        let mut next = self.clone();
        for (key, v) in obj {
            match key.as_str() {
                "down" => next.down = as_bool(key, v)?,
                "hang" => next.hang = as_bool(key, v)?,
                "reset" => next.reset = as_bool(key, v)?,
                "delay_ms" => next.delay_ms = as_u64(key, v)?.unwrap_or(0),
                "task_ms" => next.task_ms = as_u64(key, v)?,
                "status_5xx" => {
                    next.status_5xx = match as_u64(key, v)? {
                        None => None,
                        Some(s) if (500..=599).contains(&s) => Some(s as u16),
                        Some(s) => return Err(bad(format!("status_5xx must be within 500..=599, got {s}"))),
                    }
                }
                "drop_updates" => {
                    next.drop_updates = match v {
                        Value::Null => 0,
                        _ => v
                            .as_i64()
                            .filter(|n| *n >= -1)
                            .ok_or_else(|| bad("drop_updates must be an integer >= -1"))?,
                    }
                }
                "apply_different" => {
                    next.apply_different = match v {
                        Value::Null => None,
                        _ => {
                            let update = settings::parse_whole(v).map_err(|e| {
                                bad(format!("apply_different is not a valid settings body: {}", e.message))
                            })?;
                            Some((v.clone(), update))
                        }
                    }
                }
                "fail_tasks" => next.fail_tasks = parse_error(key, v, 400)?,
                "fail_all_tasks" => next.fail_all_tasks = parse_error(key, v, 400)?,
                "reject_settings" => next.reject_settings = parse_error(key, v, 400)?,
                other => return Err(bad(format!("unknown fault `{other}`"))),
            }
        }
        *self = next;
        Ok(())
    }

    /// The active faults as JSON (only the ones set).
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        if self.down {
            out.insert("down".into(), json!(true));
        }
        if self.delay_ms > 0 {
            out.insert("delay_ms".into(), json!(self.delay_ms));
        }
        if let Some(t) = self.task_ms {
            out.insert("task_ms".into(), json!(t));
        }
        if let Some(s) = self.status_5xx {
            out.insert("status_5xx".into(), json!(s));
        }
        if self.hang {
            out.insert("hang".into(), json!(true));
        }
        if self.reset {
            out.insert("reset".into(), json!(true));
        }
        if self.drop_updates != 0 {
            out.insert("drop_updates".into(), json!(self.drop_updates));
        }
        if let Some((raw, _)) = &self.apply_different {
            out.insert("apply_different".into(), raw.clone());
        }
        if let Some(e) = &self.fail_tasks {
            out.insert("fail_tasks".into(), json!({"code": e.code, "message": e.message, "type": e.kind}));
        }
        if let Some(e) = &self.fail_all_tasks {
            out.insert("fail_all_tasks".into(), json!({"code": e.code, "message": e.message, "type": e.kind}));
        }
        if let Some(e) = &self.reject_settings {
            out.insert(
                "reject_settings".into(),
                json!({"status": e.status, "code": e.code, "message": e.message, "type": e.kind}),
            );
        }
        Value::Object(out)
    }

    /// Consumes one dropped update if any are pending.
    pub fn take_drop(&mut self) -> bool {
        match self.drop_updates {
            0 => false,
            -1 => true,
            _ => {
                self.drop_updates -= 1;
                true
            }
        }
    }
}

fn as_bool(key: &str, v: &Value) -> Result<bool, String> {
    match v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        _ => Err(bad(format!("{key} must be a boolean"))),
    }
}

fn as_u64(key: &str, v: &Value) -> Result<Option<u64>, String> {
    match v {
        Value::Null => Ok(None),
        _ => v.as_u64().map(Some).ok_or_else(|| bad(format!("{key} must be a non-negative integer"))),
    }
}

fn parse_error(key: &str, v: &Value, default_status: u16) -> Result<Option<ApiError>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let obj = v.as_object().ok_or_else(|| bad(format!("{key} must be an object")))?;
    let text = |f: &str, d: &str| obj.get(f).and_then(Value::as_str).unwrap_or(d).to_string();
    let status = match obj.get("status") {
        None | Some(Value::Null) => default_status,
        Some(s) => s
            .as_u64()
            .filter(|s| (100..=599).contains(s))
            .ok_or_else(|| bad(format!("{key}.status must be an HTTP status")))? as u16,
    };
    let default_kind = if status >= 500 { "internal" } else { "invalid_request" };
    Ok(Some(ApiError {
        status,
        code: text("code", "internal"),
        message: text("message", "injected failure"),
        kind: text("type", default_kind),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_sets_and_clears() {
        let mut f = Faults::default();
        f.merge(&json!({"delay_ms": 20, "drop_updates": 2, "fail_tasks": {"code": "x", "message": "boom"}})).unwrap();
        assert_eq!(f.delay_ms, 20);
        assert!(f.take_drop());
        assert!(f.take_drop());
        assert!(!f.take_drop());
        assert_eq!(f.fail_tasks.as_ref().unwrap().kind, "invalid_request");
        f.merge(&json!({"delay_ms": null})).unwrap();
        assert_eq!(f.to_json(), json!({"fail_tasks": {"code": "x", "message": "boom", "type": "invalid_request"}}));
        assert!(f.merge(&json!({"nope": 1})).is_err());
        assert!(f.merge(&json!({"apply_different": {"rankingRules": ["bogus"]}})).is_err());
        assert!(f.merge(&json!({"status_5xx": 404})).is_err());
        let mut forever = Faults::default();
        forever.merge(&json!({"drop_updates": -1})).unwrap();
        assert!(forever.take_drop() && forever.take_drop());
    }

    #[test]
    fn reset_is_a_boolean_fault() {
        let mut f = Faults::default();
        f.merge(&json!({"reset": true})).unwrap();
        assert!(f.reset);
        assert_eq!(f.to_json(), json!({"reset": true}));
        assert!(f.merge(&json!({"reset": 1})).is_err());
        f.merge(&json!({"reset": null})).unwrap();
        assert!(!f.reset);
    }
}
