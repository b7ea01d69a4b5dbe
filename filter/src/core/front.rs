//! The front door: what the filter does with each client request (docs/architecture.md §2), decided from the
//! request head (and the body for settings writes). Called from the HTTP contexts.
//!
//! Ordinary traffic costs one path classification and, for routes under `/indexes/{uid}`, one
//! read of a few bytes of shared data (the hot record) when the response goes out.

use serde_json::Value;

use super::config::Writes;
use super::engine::Engine;
use super::pending_write::{job_of, queued, refuse_if_frozen, refuse_until_view_loaded, BodyDecision, PendingWrite, WriteKind};
use super::mirror::INSTANCE_QUEUE;
use super::errors::{ErrorType, MeiliError};
use super::host::{Host, LocalReply};
use super::proposal::Proposal;
use super::state::keys;
use super::admin_views::VerifyPurpose;
use super::state::records::{HotRecord, IndexRecord, TaskRecord};
use super::route::{classify, Route};
use super::state::store;
use super::state::queue;
use super::tasks;
use super::{task_list, task_query};

use super::request::{RequestHead, HEADER_MIN_VERSION};

#[derive(Debug)]
pub enum HeadersDecision {
    /// Not ours: untouched.
    Pass,
    /// Pass, and stamp the response with the index's settings version.
    PassAndStamp { index: String },
    /// Pass, and stamp the response from this view of the index, read for the decision (one
    /// shared-data read per request, not two).
    PassAndStampWith { index: String, hot: HotRecord },
    /// Pass pinned to one node's cluster (routing header), and stamp.
    Pin { index: String, cluster: String },
    /// Pass to one node's cluster (routing header), nothing stamped.
    PinOnly { cluster: String },
    Reply(LocalReply),
    /// Admin verify/unfreeze/repair: hand to the engine (`Engine::request_verify`) and wait.
    AdminVerify { index: String, purpose: VerifyPurpose },
    /// A settings write: buffer the body, then call `on_settings_body`.
    Buffer(PendingWrite),
    /// A task this gateway's view does not hold (yet): answer it once the view is refreshed
    /// (`Engine::task_after_refresh`), or now as not found when the view is the store itself.
    TaskAfterRefresh { task_uid: u64, authorization: Option<String> },
    /// An operator's forced unfreeze: hand to the engine (`Engine::force_unfreeze`) and wait.
    ForceUnfreeze { index: String },
}

pub fn on_headers(engine: &Engine, host: &mut dyn Host, head: &RequestHead) -> HeadersDecision {
    on_route(engine, host, classify(&head.method, &head.path), head)
}

/// Which request headers the decision for `route` reads, so the glue fetches no others: on the
/// hot path (reads) only `X-Miroir-Min-Settings-Version`.
pub fn wants_credentials(route: &Route) -> bool {
    matches!(
        route,
        Route::SettingsWrite { .. }
            | Route::TaskGet { .. }
            | Route::TaskList
            | Route::Batches { .. }
            | Route::Admin { .. }
            | Route::IndexWrite { .. }
            | Route::IndexCreate
            | Route::InstanceWrite { .. }
            | Route::TaskTranslate { .. }
            | Route::Swap
    )
}

/// Whether the filter replays this request to the nodes itself (so its headers must be text).
pub fn is_replayed(cfg: &super::config::Config, route: &Route) -> bool {
    match route {
        Route::SettingsWrite { .. } => true,
        Route::IndexWrite { .. }
        | Route::IndexCreate
        | Route::InstanceWrite { .. }
        | Route::TaskTranslate { .. }
        | Route::Swap => {
            mirrors(cfg)
        }
        _ => false,
    }
}

fn mirrors(cfg: &super::config::Config) -> bool {
    cfg.writes == Writes::Mirror
}

/// `on_headers` for a request already classified.
pub fn on_route(engine: &Engine, host: &mut dyn Host, route: Route, head: &RequestHead) -> HeadersDecision {
    let cfg = engine.config();
    match route {
        Route::Other => HeadersDecision::Pass,
        Route::SettingsWrite { index, setting } => {
            if let Some(reply) = refuse_if_frozen(host, &index) {
                return HeadersDecision::Reply(reply);
            }
            HeadersDecision::Buffer(PendingWrite {
                index,
                setting_key: setting.map(|s| s.key),
                kind: WriteKind::Settings,
                head: head.clone(),
            })
        }
        Route::IndexWrite { index } => match refuse_if_frozen(host, &index) {
            Some(reply) => HeadersDecision::Reply(reply),
            None if mirrors(cfg) => buffer(index, WriteKind::Mirror, head),
            None => match refuse_until_view_loaded(cfg, host) {
                Some(reply) => HeadersDecision::Reply(reply),
                None => HeadersDecision::PassAndStamp { index },
            },
        },
        Route::IndexCreate if mirrors(cfg) => buffer(INSTANCE_QUEUE.into(), WriteKind::CreateIndex, head),
        Route::InstanceWrite { creates_key } if mirrors(cfg) => {
            buffer(INSTANCE_QUEUE.into(), WriteKind::Instance { creates_key }, head)
        }
        Route::TaskTranslate { cancel } if mirrors(cfg) => buffer(INSTANCE_QUEUE.into(), WriteKind::Tasks { cancel }, head),
        Route::Swap if mirrors(cfg) => buffer(INSTANCE_QUEUE.into(), WriteKind::Swap, head),
        Route::NotMirrored { why } if mirrors(cfg) => {
            HeadersDecision::Reply(tasks::error_reply(&MeiliError::new(400, "miroir_not_mirrored", ErrorType::InvalidRequest, why)))
        }
        Route::IndexCreate | Route::InstanceWrite { .. } | Route::TaskTranslate { .. } | Route::Swap | Route::NotMirrored { .. } => {
            HeadersDecision::Pass
        }
        // Mirror mode: the fleet's tasks are the filter's (a node's own uids mean nothing
        // through the gateway); the filter has no batches of its own.
        Route::TaskList if mirrors(cfg) => HeadersDecision::Reply(match task_query::parse_task_query(&head.path) {
            Ok(query) => task_list::list_reply(&query, &queue::retained_tasks(cfg, host), head.authorization.as_deref()),
            Err(e) => tasks::error_reply(&e),
        }),
        Route::Batches { uid } if mirrors(cfg) => {
            let all = queue::retained_tasks(cfg, host);
            let auth = head.authorization.as_deref();
            HeadersDecision::Reply(match uid {
                Some(uid) => task_list::batch_reply(&uid.to_string(), &all, auth),
                None => match task_query::parse_task_query(&head.path) {
                    Ok(query) => task_list::batches_reply(&query, &all, auth),
                    Err(e) => tasks::error_reply(&e),
                },
            })
        }
        Route::TaskList | Route::Batches { .. } => HeadersDecision::Pass,
        // While a node lags on some index, its `/indexes`, `/stats` or `/keys` could show what the
        // fleet does not hold: such reads go to a node in sync everywhere.
        Route::InstanceRead if mirrors(cfg) => {
            let lagging = super::state::shared_data::lagging_nodes(host);
            if lagging.is_empty() {
                return HeadersDecision::Pass;
            }
            let fresh: Vec<&super::config::NodeConfig> = cfg.nodes.iter().filter(|n| !lagging.contains(&n.id)).collect();
            match fresh.get((host.now_ms() as usize) % fresh.len().max(1)) {
                Some(n) => HeadersDecision::PinOnly { cluster: n.cluster.clone() },
                None => HeadersDecision::Pass,
            }
        }
        Route::InstanceRead => HeadersDecision::Pass,
        Route::IndexRead { index } => match &head.min_settings_version {
            None if mirrors(cfg) => {
                let hot = engine.hot(host, &index);
                if hot.split {
                    pin(engine, host, index, "0")
                } else {
                    HeadersDecision::PassAndStampWith { index, hot }
                }
            }
            None => HeadersDecision::PassAndStamp { index },
            Some(raw) => pin(engine, host, index, raw),
        },
        Route::TaskGet { uid } => {
            let base = cfg.task_uid_base;
            if uid < base || uid >= base + (1 << 24) {
                // Mirror mode: a node's own uid names a different write on every node.
                if mirrors(cfg) {
                    return HeadersDecision::Reply(tasks::error_reply(&MeiliError::task_not_found(uid)));
                }
                return HeadersDecision::Pass;
            }
            let task: Option<TaskRecord> = store::read(host, &keys::task_key(uid)).ok().flatten();
            if task.is_none() && cfg.state.etcd().is_some() {
                return HeadersDecision::TaskAfterRefresh { task_uid: uid, authorization: head.authorization.clone() };
            }
            HeadersDecision::Reply(tasks::task_reply(task.as_ref(), uid, head.authorization.as_deref()))
        }
        Route::Admin { index, action } => match super::admin::handle(engine, host, &index, action, head) {
            super::admin::AdminOutcome::Reply(r) => HeadersDecision::Reply(r),
            super::admin::AdminOutcome::Verify { index, purpose } => HeadersDecision::AdminVerify { index, purpose },
            super::admin::AdminOutcome::Resync { index, node } => buffer(index, WriteKind::Resync { node }, head),
            super::admin::AdminOutcome::ForceUnfreeze { index } => HeadersDecision::ForceUnfreeze { index },
        },
        Route::AdminUnknown => HeadersDecision::Reply(tasks::error_reply(&MeiliError::not_found())),
    }
}

fn buffer(index: String, kind: WriteKind, head: &RequestHead) -> HeadersDecision {
    HeadersDecision::Buffer(PendingWrite { index, setting_key: None, kind, head: head.clone() })
}

/// `X-Miroir-Min-Settings-Version: N`: route to a node verified at version ≥ N.
fn pin(engine: &Engine, host: &mut dyn Host, index: String, raw: &str) -> HeadersDecision {
    let Ok(min) = raw.trim().parse::<u64>() else {
        return HeadersDecision::Reply(tasks::error_reply(&MeiliError::bad_request(format!(
            "`{HEADER_MIN_VERSION}` must be a non-negative integer."
        ))));
    };
    let rec: IndexRecord = store::read(host, &keys::index_key(&index)).ok().flatten().unwrap_or_default();
    // Nodes verified at that version and, in mirror mode, holding every write of the index.
    let fresh: Vec<usize> = engine
        .config()
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| min == 0 || rec.node_version(&n.id) >= min)
        .filter(|(_, n)| !rec.out_of_sync.contains_key(&n.id))
        .map(|(i, _)| i)
        .collect();
    if fresh.is_empty() {
        return HeadersDecision::Reply(tasks::error_reply(&MeiliError::settings_version_stale(&index, min)));
    }
    // Spread pinned reads over the fresh nodes.
    let pick = (host.now_ms() as usize) % fresh.len();
    let node = fresh.get(pick).and_then(|i| engine.config().nodes.get(*i));
    match node {
        Some(n) => HeadersDecision::Pin { index, cluster: n.cluster.clone() },
        None => HeadersDecision::PassAndStamp { index },
    }
}

/// The whole body of a buffered write is here.
pub fn on_write_body(engine: &mut Engine, host: &mut dyn Host, context_id: u32, pending: &PendingWrite, body: &[u8]) -> BodyDecision {
    match pending.kind {
        WriteKind::Settings => on_settings_body(engine, host, context_id, pending, body),
        WriteKind::Resync { node } => {
            let mut job = job_of(engine, host, pending, &[]);
            job.mirror = Some("miroirResync".into());
            job.content_type = Some("application/json".into());
            job.resync = engine.config().nodes.get(node).map(|n| n.id.clone());
            queued(engine.queue_write(host, context_id, job, Value::Object(serde_json::Map::new())), &pending.index)
        }
        _ => super::mirrored_write::on_mirrored_body(engine, host, context_id, pending, body),
    }
}

/// The whole body of a settings write is here: validate it, queue the job, wait for the answer.
fn on_settings_body(
    engine: &mut Engine,
    host: &mut dyn Host,
    context_id: u32,
    pending: &PendingWrite,
    body: &[u8],
) -> BodyDecision {
    let cfg = engine.config().clone();
    if body.len() as u64 > cfg.max_body_bytes {
        return BodyDecision::Reply(tasks::error_reply(&MeiliError::payload_too_large(cfg.max_body_bytes)));
    }
    let method = pending.head.method.as_str();
    let parsed: Option<Value> = if body.is_empty() {
        if method != "DELETE" {
            return BodyDecision::Reply(tasks::error_reply(&MeiliError::new(
                400,
                "missing_payload",
                ErrorType::InvalidRequest,
                "A json payload is missing.",
            )));
        }
        None
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => Some(v),
            Err(e) => return BodyDecision::Reply(tasks::error_reply(&MeiliError::malformed_payload(&e.to_string()))),
        }
    };
    let proposal = match Proposal::from_request(method, pending.setting_key, parsed.as_ref()) {
        Ok(p) => p,
        Err(reason) => return BodyDecision::Reply(tasks::error_reply(&MeiliError::bad_request(reason))),
    };
    if let Some(reply) = refuse_if_frozen(host, &pending.index) {
        return BodyDecision::Reply(reply);
    }
    let job = job_of(engine, host, pending, body);
    queued(engine.queue_write(host, context_id, job, proposal.details()), &pending.index)
}
