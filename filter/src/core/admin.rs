//! Admin API under `/_miroir/` (docs/architecture.md §2). Off unless an admin key is set in the environment
//! variable named by `admin_api_key_env`; every call needs `Authorization: Bearer <that key>`,
//! compared in constant time. Answers never contain desired settings or any secret.

use super::admin_views::{reply_json, show_json, VerifyPurpose};
use super::engine::Engine;
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
    /// Copy `index` to node `node` (its position) from a node in sync: queue the job.
    Resync { index: String, node: usize },
    /// Lift the freeze of `index` without a check (`?force=true`), through the ledger
    /// (`Engine::force_unfreeze`), then answer as `show` does.
    ForceUnfreeze { index: String },
}

pub fn handle(engine: &Engine, host: &mut dyn Host, index: &str, action: AdminAction, head: &RequestHead) -> AdminOutcome {
    match authorize(engine, host, head) {
        Some(reply) => AdminOutcome::Reply(reply),
        None => match action {
            AdminAction::Show => AdminOutcome::Reply(show(engine, host, index)),
            AdminAction::Unfreeze if query_flag(&head.path, "force") => force_unfreeze(engine, host, index),
            AdminAction::Unfreeze => AdminOutcome::Verify { index: index.to_string(), purpose: VerifyPurpose::Unfreeze },
            AdminAction::Verify => AdminOutcome::Verify { index: index.to_string(), purpose: VerifyPurpose::Report },
            AdminAction::Repair => AdminOutcome::Verify { index: index.to_string(), purpose: VerifyPurpose::Repair },
            AdminAction::Resync => resync(engine, host, index, head),
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

/// `POST /_miroir/indexes/{uid}/resync?node=ID`: checked here, run as a job on the index's queue.
fn resync(engine: &Engine, host: &mut dyn Host, index: &str, head: &RequestHead) -> AdminOutcome {
    let cfg = engine.config();
    let refuse = |status: u16, code: &str, msg: String| AdminOutcome::Reply(tasks::error_reply(&MeiliError::new(status, code, ErrorType::InvalidRequest, msg)));
    let node = crate::core::query_params::decode_query(&head.path).into_iter().find(|(k, _)| k == "node").map(|(_, v)| v);
    let Some((pos, id)) = node.as_deref().and_then(|n| cfg.nodes.iter().position(|c| c.id == n).map(|p| (p, n.to_string()))) else {
        return refuse(400, "bad_request", "`node` must name a configured node: `?node=ID`.".into());
    };
    if cfg.writes != crate::core::config::Writes::Mirror {
        return refuse(400, "bad_request", "A resync needs `\"writes\": \"mirror\"`.".into());
    }
    if host.env(&cfg.node_api_key_env).is_none_or(|k| k.is_empty()) {
        return refuse(400, "bad_request", format!("A resync needs the node key in `${}` (the export uses it).", cfg.node_api_key_env));
    }
    let rec: IndexRecord = store::read(host, &keys::index_key(index)).ok().flatten().unwrap_or_default();
    if !rec.out_of_sync.contains_key(&id) {
        return refuse(409, "miroir_node_in_sync", format!("Node `{id}` is in sync for index `{index}`; nothing to resync."));
    }
    AdminOutcome::Resync { index: index.to_string(), node: pos }
}

fn force_unfreeze(engine: &Engine, host: &mut dyn Host, index: &str) -> AdminOutcome {
    let rec: Option<IndexRecord> = store::read(host, &keys::index_key(index)).ok().flatten();
    match rec {
        Some(r) if r.frozen.is_some() => AdminOutcome::ForceUnfreeze { index: index.to_string() },
        _ => AdminOutcome::Reply(show(engine, host, index)),
    }
}

/// The admin view of `index` once an operator's forced unfreeze is recorded.
pub fn after_force_unfreeze(engine: &Engine, host: &mut dyn Host, index: &str) -> LocalReply {
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
