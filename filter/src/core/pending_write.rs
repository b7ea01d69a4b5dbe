//! A write the filter holds while its body arrives, and what every kind of held write shares:
//! the frozen check, the job record made from it, and what becomes of it once queued.

use super::config::Config;
use super::engine::{self, Engine, Queued};
use super::errors::MeiliError;
use super::host::{Host, LocalReply};
use super::metrics;
use super::request::RequestHead;
use super::state::keys;
use super::state::records::{IndexRecord, JobRecord};
use super::state::store;
use super::tasks;

/// What a buffered write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// A settings write: broadcast, verified, versioned.
    Settings,
    /// Mirror mode: any other write to `index`, sent to every node as is.
    Mirror,
    /// Mirror mode: `POST /indexes`, queued on the index its body names.
    CreateIndex,
    /// Mirror mode: a write to the instance; `POST /keys` (`creates_key`) gets a `uid`.
    Instance { creates_key: bool },
    /// Mirror mode: a task cancelation (`cancel`) or deletion, translated for each node.
    Tasks { cancel: bool },
    /// An operator's resync of the node at this position (`admin.rs`).
    Resync { node: usize },
    /// Mirror mode: `POST /swap-indexes`, holding every index its body names.
    Swap,
}

/// A write whose body is being buffered.
#[derive(Debug, Clone)]
pub struct PendingWrite {
    pub index: String,
    pub setting_key: Option<&'static str>,
    pub kind: WriteKind,
    pub head: RequestHead,
}

pub enum BodyDecision {
    Reply(LocalReply),
    /// Paused until the engine answers (propose outcome). The task uid is None while the
    /// ledger has not answered the queueing yet (the engine answers the client either way).
    Wait { task_uid: Option<u64> },
}

pub(super) fn queued(q: Queued, index: &str) -> BodyDecision {
    match q {
        Queued::Now(task_uid) => BodyDecision::Wait { task_uid: Some(task_uid) },
        Queued::Later => BodyDecision::Wait { task_uid: None },
        Queued::Refused(e) => {
            log::error!("miroir: could not queue a write on {index}: {e}");
            BodyDecision::Reply(tasks::error_reply(&super::engine::not_queued(&e)))
        }
    }
}

/// A write that goes to one node as it is (passthrough): with etcd, a gateway that has not read
/// etcd yet cannot know the index is not frozen, so it refuses. (Every other write becomes a job,
/// refused at its start if the index is frozen by then, from etcd itself.)
pub(super) fn refuse_until_view_loaded(cfg: &Config, host: &dyn Host) -> Option<LocalReply> {
    let loaded = matches!(host.shared_get(keys::VIEW_LOADED_KEY), Ok((Some(v), _)) if !v.is_empty());
    (cfg.state.etcd().is_some() && !loaded).then(|| tasks::error_reply(&MeiliError::state_unavailable()))
}

pub(super) fn refuse_if_frozen(host: &mut dyn Host, index: &str) -> Option<LocalReply> {
    if !engine::read_hot(host, index).frozen {
        return None;
    }
    let reason = store::read::<IndexRecord>(host, &keys::index_key(index))
        .ok()
        .flatten()
        .and_then(|r| r.frozen)
        .map(|f| f.reason)
        .unwrap_or_else(|| "settings diverged across nodes".into());
    host.counter_add(&metrics::for_index(metrics::FROZEN_WRITE_REJECTED_TOTAL, index), 1);
    Some(tasks::error_reply(&MeiliError::index_frozen(index, &reason)))
}

pub(super) fn job_of(engine: &Engine, host: &mut dyn Host, pending: &PendingWrite, body: &[u8]) -> JobRecord {
    let head = &pending.head;
    JobRecord {
        task_uid: 0,
        index: pending.index.clone(),
        method: head.method.clone(),
        path: head.path.clone(),
        setting_key: pending.setting_key.map(str::to_string),
        body: if body.is_empty() { None } else { Some(String::from_utf8_lossy(body).into_owned()) },
        content_type: head.content_type.clone(),
        authorization: head.authorization.clone(),
        origin_worker: engine.worker().to_string(),
        enqueued_ms: host.now_ms(),
        ..JobRecord::default()
    }
}
