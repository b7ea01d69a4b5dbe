//! Admin API under `/_miroir/` (DESIGN §8). Off unless an admin key is set in the environment
//! variable named by `admin_api_key_env`; every call needs `Authorization: Bearer <that key>`,
//! compared in constant time. Answers never contain desired settings or any secret.

use serde_json::{json, Value};

use super::engine::{self, Engine, VerifyResult};
use super::errors::{ErrorType, MeiliError};
use super::front::RequestHead;
use super::host::{Host, LocalReply};
use super::records::{IndexRecord, TaskRecord};
use super::route::{query_flag, AdminAction};
use super::store;
use super::tasks;

/// What the admin API does with a request.
pub enum AdminOutcome {
    Reply(LocalReply),
    /// Verify `index` against every node now, then answer as `purpose` says.
    Verify { index: String, purpose: VerifyPurpose },
}

/// Why an operator asked for a one-index verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyPurpose {
    /// `verify`: report what the nodes hold (a converged fleet lifts a freeze by itself).
    Report,
    /// `unfreeze`: the answer is an error unless the fleet is converged and the freeze lifted.
    Unfreeze,
    /// `repair`: when the nodes differ, even on a frozen index, queue a job that re-sends the
    /// reference settings to the odd nodes; its commit lifts the freeze.
    Repair,
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

/// The answer to a verify (or an unfreeze, which is a verify that must find the fleet converged;
/// a converged verify lifts the freeze by itself).
pub fn verify_reply(engine: &Engine, host: &mut dyn Host, index: &str, result: &VerifyResult, purpose: VerifyPurpose) -> LocalReply {
    let frozen = store::read::<IndexRecord>(host, &store::index_key(index)).ok().flatten().and_then(|r| r.frozen);
    if purpose == VerifyPurpose::Repair && !result.converged {
        // The repair runs as a task: 202 with the task, like any write Meilisearch accepts.
        let task = result.repair_task.and_then(|uid| store::read::<TaskRecord>(host, &store::task_key(uid)).ok().flatten());
        return match task {
            Some(task) => tasks::summarized_reply(&task),
            None => tasks::error_reply(&MeiliError::new(
                409,
                "miroir_index_not_repairable",
                ErrorType::InvalidRequest,
                format!(
                    "Index `{index}` cannot be repaired automatically ({}); fix the nodes by hand, then verify or unfreeze.",
                    if result.detail.is_empty() { "fingerprints differ" } else { result.detail.as_str() }
                ),
            )),
        };
    }
    if purpose == VerifyPurpose::Unfreeze && (!result.converged || frozen.is_some()) {
        return tasks::error_reply(&MeiliError::new(
            409,
            "miroir_index_still_diverged",
            ErrorType::InvalidRequest,
            format!(
                "Index `{index}` is still diverged across nodes ({}); fix the nodes and retry, or add `?force=true`.",
                if result.detail.is_empty() { "fingerprints differ" } else { result.detail.as_str() }
            ),
        ));
    }
    let state = show_json(engine, host, index);
    reply_json(
        200,
        &json!({"converged": result.converged, "detail": result.detail, "fingerprints": result.fingerprints, "index": state}),
    )
}

fn reply_json(status: u16, v: &Value) -> LocalReply {
    LocalReply {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(v).unwrap_or_default(),
    }
}

fn show(engine: &Engine, host: &mut dyn Host, index: &str) -> LocalReply {
    match store::read::<IndexRecord>(host, &store::index_key(index)).ok().flatten() {
        Some(_) => reply_json(200, &show_json(engine, host, index)),
        None => tasks::error_reply(&MeiliError::new(
            404,
            "index_not_found",
            ErrorType::InvalidRequest,
            format!("The filter holds no settings state for index `{index}`."),
        )),
    }
}

fn show_json(engine: &Engine, host: &mut dyn Host, index: &str) -> Value {
    let rec: IndexRecord = store::read(host, &store::index_key(index)).ok().flatten().unwrap_or_default();
    let nodes: Vec<Value> = engine
        .config()
        .nodes
        .iter()
        .map(|n| {
            json!({
                "id": n.id,
                "settingsVersion": rec.node_version(&n.id),
                "fingerprint": rec.node_fingerprints.get(&n.id).cloned().flatten(),
            })
        })
        .collect();
    json!({
        "indexUid": index,
        "settingsVersion": rec.version,
        "phase": rec.phase.name(),
        "fingerprint": rec.fingerprint,
        "nodes": nodes,
        "frozen": rec.frozen,
        "queuedTasks": rec.queue,
    })
}

fn force_unfreeze(engine: &Engine, host: &mut dyn Host, index: &str) -> LocalReply {
    let rec: Option<IndexRecord> = store::read(host, &store::index_key(index)).ok().flatten();
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
