//! What the admin API answers (docs/architecture.md §2), built from the state alone: read by the HTTP side
//! (`admin`) and by the engine when an operator's check finishes. Never a desired setting or a
//! secret.

use serde_json::{json, Value};

use super::config::Config;
use super::errors::{ErrorType, MeiliError};
use super::host::{Host, LocalReply};
use super::state::keys;
use super::state::ledger::VerifyView;
use super::state::records::IndexRecord;
use super::state::store;
use super::tasks;

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

/// The answer to a verify (or an unfreeze, which is a verify that must find the fleet converged;
/// a converged verify lifts the freeze by itself).
/// Built from what the engine's ledger read (`VerifyView`): the check, the index record and
/// the repair task.
pub fn verify_reply(cfg: &Config, index: &str, view: &VerifyView, purpose: VerifyPurpose) -> LocalReply {
    let result = &view.result;
    let frozen = view.rec.as_ref().and_then(|r| r.frozen.as_ref());
    if purpose == VerifyPurpose::Repair && !result.converged {
        // The repair runs as a task: 202 with the task, like any write Meilisearch accepts.
        return match &view.repair_task {
            Some(task) => tasks::summarized_reply(task),
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
    let state = show_json_of(cfg, index, &view.rec.clone().unwrap_or_default());
    reply_json(
        200,
        &json!({"converged": result.converged, "detail": result.detail, "fingerprints": result.fingerprints, "index": state}),
    )
}

pub fn reply_json(status: u16, v: &Value) -> LocalReply {
    LocalReply {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(v).unwrap_or_default(),
    }
}

/// The state of one index as the admin API shows it (no desired settings, no secret).
pub fn show_json(cfg: &Config, host: &mut dyn Host, index: &str) -> Value {
    let rec: IndexRecord = store::read(host, &keys::index_key(index)).ok().flatten().unwrap_or_default();
    show_json_of(cfg, index, &rec)
}

pub fn show_json_of(cfg: &Config, index: &str, rec: &IndexRecord) -> Value {
    let nodes: Vec<Value> = cfg
        .nodes
        .iter()
        .map(|n| {
            let lag = rec.out_of_sync.get(&n.id);
            json!({
                "id": n.id,
                "settingsVersion": rec.node_version(&n.id),
                "fingerprint": rec.node_fingerprints.get(&n.id).cloned().flatten(),
                // Mirror mode: "in_sync", "catching_up" (replaying from the log) or
                // "needs_resync", and why.
                "sync": match lag {
                    None => "in_sync",
                    Some(l) if l.replay_from.is_some() => "catching_up",
                    Some(_) => "needs_resync",
                },
                "outOfSyncReason": lag.map(|l| l.why.clone()),
                "replayFrom": lag.and_then(|l| l.replay_from),
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
        "outOfSync": rec.out_of_sync.keys().collect::<Vec<_>>(),
    })
}
