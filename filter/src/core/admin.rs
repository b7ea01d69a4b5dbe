//! Admin API under `/_miroir/` (docs/architecture.md §2). Off unless an admin key is set in the environment
//! variable named by `admin_api_key_env`; every call needs `Authorization: Bearer <that key>`,
//! compared in constant time. Answers never contain desired settings or any secret.

use super::admin_views::{reply_json, show_json, VerifyPurpose};
use super::engine::{self, Engine};
use super::errors::{ErrorType, MeiliError};
use super::host::{Host, LocalReply};
use super::state::keys;
use super::state::records::IndexRecord;
use super::request::RequestHead;
use super::route::{query_flag, AdminAction};
use super::state::store;
use super::tasks;

/// What the admin API does with a request.
pub enum AdminOutcome {
    Reply(LocalReply),
    /// Verify `index` against every node now, then answer as `purpose` says.
    Verify { index: String, purpose: VerifyPurpose },
}

pub fn handle(engine: &Engine, host: &mut dyn Host, index: &str, action: AdminAction, head: &RequestHead) -> AdminOutcome {
    match authorize(engine, host, head) {
        Some(reply) => AdminOutcome::Reply(reply),
        None => match action {
            AdminAction::Show => AdminOutcome::Reply(show(engine, host, index)),
            AdminAction::Unfreeze if query_flag(&head.path, "force") => AdminOutcome::Reply(force_unfreeze(engine, host, index)),
            AdminAction::Unfreeze => AdminOutcome::Verify { index: index.to_string(), purpose: VerifyPurpose::Unfreeze },
            AdminAction::Verify => AdminOutcome::Verify { index: index.to_string(), purpose: VerifyPurpose::Report },
            AdminAction::Repair => AdminOutcome::Verify { index: index.to_string(), purpose: VerifyPurpose::Repair },
        },
    }
}

/// None when the caller presents the admin key; otherwise the refusal.
fn authorize(engine: &Engine, host: &mut dyn Host, head: &RequestHead) -> Option<LocalReply> {
    let Some(key) = host.env(&engine.config().admin_api_key_env).filter(|k| !k.is_empty()) else {
        return Some(tasks::error_reply(&MeiliError::new(
            404,
            "not_found",
            ErrorType::InvalidRequest,
            "The admin API is disabled: no admin key is set.",
        )));
    };
    let presented = head.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), key.as_bytes()) {
        return Some(tasks::error_reply(&MeiliError::invalid_admin_key()));
    }
    None
}

fn show(engine: &Engine, host: &mut dyn Host, index: &str) -> LocalReply {
    match store::read::<IndexRecord>(host, &keys::index_key(index)).ok().flatten() {
        Some(_) => reply_json(200, &show_json(engine.config(), host, index)),
        None => tasks::error_reply(&MeiliError::new(
            404,
            "index_not_found",
            ErrorType::InvalidRequest,
            format!("The filter holds no settings state for index `{index}`."),
        )),
    }
}

fn force_unfreeze(engine: &Engine, host: &mut dyn Host, index: &str) -> LocalReply {
    let rec: Option<IndexRecord> = store::read(host, &keys::index_key(index)).ok().flatten();
    match rec {
        Some(r) if r.frozen.is_some() => {}
        _ => return show(engine, host, index),
    }
    engine::lift_freeze(host, index);
    log::warn!("miroir: index {index} unfrozen by an operator (force)");
    show(engine, host, index)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn compares_whole_keys() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
