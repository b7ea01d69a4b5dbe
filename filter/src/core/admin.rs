//! Admin API under `/_miroir/` (DESIGN §8). Off unless an admin key is set in the environment
//! variable named by `admin_api_key_env`; every call needs `Authorization: Bearer <that key>`,
//! compared in constant time. Answers never contain desired settings or any secret.

use serde_json::{json, Value};

use super::engine::{self, Engine};
use super::errors::{ErrorType, MeiliError};
use super::front::RequestHead;
use super::host::{Host, LocalReply};
use super::records::{HotRecord, IndexRecord, Phase};
use super::route::AdminAction;
use super::store;
use super::tasks;

pub fn handle(engine: &Engine, host: &mut dyn Host, index: &str, action: AdminAction, head: &RequestHead) -> LocalReply {
    let Some(key) = host.env(&engine.config().admin_api_key_env).filter(|k| !k.is_empty()) else {
        return tasks::error_reply(&MeiliError::new(
            404,
            "not_found",
            ErrorType::InvalidRequest,
            "The admin API is disabled: no admin key is set.",
        ));
    };
    let presented = head.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), key.as_bytes()) {
        return tasks::error_reply(&MeiliError::invalid_admin_key());
    }
    match action {
        AdminAction::Show => show(engine, host, index),
        AdminAction::Unfreeze => unfreeze(engine, host, index, head.path.contains("force=true")),
        AdminAction::Verify => tasks::error_reply(&MeiliError::new(
            501,
            "miroir_not_implemented",
            ErrorType::System,
            "On-demand verify is not available in this build; the drift check runs on its schedule.",
        )),
    }
}

fn reply_json(status: u16, v: &Value) -> LocalReply {
    LocalReply {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(v).unwrap_or_default(),
    }
}

fn show(engine: &Engine, host: &mut dyn Host, index: &str) -> LocalReply {
    let rec: Option<IndexRecord> = store::read(host, &store::index_key(index)).ok().flatten();
    let Some(rec) = rec else {
        return tasks::error_reply(&MeiliError::new(
            404,
            "index_not_found",
            ErrorType::InvalidRequest,
            format!("The filter holds no settings state for index `{index}`."),
        ));
    };
    let nodes: Vec<Value> = engine
        .config()
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            json!({
                "id": n.id,
                "settingsVersion": rec.node_version(i),
                "fingerprint": rec.node_fingerprints.get(i).cloned().flatten(),
            })
        })
        .collect();
    reply_json(
        200,
        &json!({
            "indexUid": index,
            "settingsVersion": rec.version,
            "phase": rec.phase.name(),
            "fingerprint": rec.fingerprint,
            "nodes": nodes,
            "frozen": rec.frozen,
            "queuedTasks": rec.queue,
        }),
    )
}

fn unfreeze(engine: &Engine, host: &mut dyn Host, index: &str, force: bool) -> LocalReply {
    let rec: Option<IndexRecord> = store::read(host, &store::index_key(index)).ok().flatten();
    match rec {
        Some(r) if r.frozen.is_some() => {}
        _ => return show(engine, host, index),
    }
    if !force {
        return tasks::error_reply(&MeiliError::new(
            409,
            "miroir_index_still_diverged",
            ErrorType::InvalidRequest,
            "The fleet has not been verified converged since the freeze; fix the nodes and retry, or add `?force=true`.",
        ));
    }
    let cleared = store::update::<IndexRecord, _>(host, &store::index_key(index), |rec| {
        let rec = rec?;
        let mut next = rec.clone();
        next.frozen = None;
        if next.phase == Phase::Frozen {
            next.phase = Phase::Idle;
        }
        Some(next)
    });
    if let Err(e) = cleared {
        log::error!("miroir: unfreezing {index} failed: {e}");
    }
    let hot = engine::read_hot(host, index);
    let _ = host.shared_set(
        &store::hot_key(index),
        HotRecord { frozen: false, inconsistent: false, ..hot }.encode().as_bytes(),
        None,
    );
    log::warn!("miroir: index {index} unfrozen by an operator (force)");
    host.gauge_set(&super::metrics::for_index(super::metrics::DIVERGENCE, index), 0);
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
