//! Mirror mode's writes at the front door, once their body is in: which queue a write goes to
//! (`POST /indexes` names its index in the body; a rename or a swap holds several), what the
//! filter adds (a key's `uid`), and how a task cancelation or deletion is translated to each
//! node's own task uids. The nodes judge everything else in the body.

use serde_json::Value;

use super::engine::Engine;
use super::errors::MeiliError;
use super::pending_write::{job_of, queued, refuse_if_frozen, BodyDecision, PendingWrite, WriteKind};
use super::host::Host;
use super::mirror::{self, INSTANCE_QUEUE};
use super::request::RequestHead;
use super::state::queue;
use super::{task_query, tasks};

/// Mirror mode: queue the write as is (the nodes validate it, and refuse it alike when it is
/// bad: nothing changes). Only what decides the queue is read: the uid of `POST /indexes`; and
/// `POST /keys` gets a `uid` when it has none, so that every node derives the same key.
pub(super) fn on_mirrored_body(engine: &mut Engine, host: &mut dyn Host, context_id: u32, pending: &PendingWrite, body: &[u8]) -> BodyDecision {
    let cfg = engine.config().clone();
    if body.len() as u64 > cfg.max_body_bytes {
        return BodyDecision::Reply(tasks::error_reply(&MeiliError::payload_too_large(cfg.max_body_bytes)));
    }
    if std::str::from_utf8(body).is_err() {
        // The write is kept as text until every node has it: bytes that are not UTF-8 (a
        // compressed body, a Latin-1 CSV) would reach the nodes altered, and be taken.
        return BodyDecision::Reply(tasks::error_reply(&MeiliError::body_not_text()));
    }
    let mut index = pending.index.clone();
    let mut body = body.to_vec();
    match pending.kind {
        WriteKind::CreateIndex => {
            let uid = serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("uid").and_then(Value::as_str).map(str::to_string));
            if let Some(uid) = uid.filter(|u| super::route::is_valid_index_uid(u)) {
                index = uid;
            }
        }
        WriteKind::Instance { creates_key: true } => {
            if let Ok(Value::Object(mut key)) = serde_json::from_slice::<Value>(&body) {
                if !key.contains_key("uid") {
                    let seed = format!("{} {} {context_id} {}", engine.worker(), host.now_ms(), body.len());
                    let mut seed = seed.into_bytes();
                    seed.extend_from_slice(&body);
                    key.insert("uid".into(), Value::String(mirror::key_uid(&seed)));
                    body = serde_json::to_vec(&Value::Object(key)).unwrap_or(body);
                }
            }
        }
        _ => {}
    }
    let mut holds = None;
    if pending.kind == WriteKind::Swap {
        let named = swapped_indexes(&body);
        for index in &named {
            if let Some(reply) = refuse_if_frozen(host, index) {
                return BodyDecision::Reply(reply);
            }
        }
        holds = Some(named);
    }
    if let Some(new) = renamed_to(pending, &body) {
        // A rename touches two indexes: like a swap it holds both queues, so no node sees a
        // write to the new name on the wrong side of it.
        if let Some(reply) = refuse_if_frozen(host, &new) {
            return BodyDecision::Reply(reply);
        }
        holds = Some(vec![index.clone(), new]);
        index = INSTANCE_QUEUE.into();
    }
    let mut node_paths = None;
    let mut deletes_later = None;
    let mut cancels_unsent = None;
    let mut details = Value::Object(serde_json::Map::new());
    if let WriteKind::Tasks { cancel } = pending.kind {
        match translate_tasks(&cfg, host, &pending.head, cancel) {
            Ok(t) => {
                node_paths = Some(t.paths);
                details = t.details;
                deletes_later = Some(t.later).filter(|l| !l.is_empty());
                cancels_unsent = Some(t.unsent).filter(|u| !u.is_empty());
            }
            Err(e) => return BodyDecision::Reply(tasks::error_reply(&e)),
        }
    }
    if index != INSTANCE_QUEUE {
        if let Some(reply) = refuse_if_frozen(host, &index) {
            return BodyDecision::Reply(reply);
        }
    }
    let mut job = job_of(engine, host, pending, &body);
    job.index = index.clone();
    job.mirror = Some(mirror::expected_task_type(&pending.head.method, &pending.head.path).to_string());
    job.node_paths = node_paths;
    job.deletes_later = deletes_later;
    job.cancels_unsent = cancels_unsent;
    job.holds = holds;
    queued(engine.queue_write(host, context_id, job, details), &index)
}

/// `PATCH /indexes/{uid}` whose body renames the index: the new uid.
fn renamed_to(pending: &PendingWrite, body: &[u8]) -> Option<String> {
    if pending.kind != WriteKind::Mirror || mirror::expected_task_type(&pending.head.method, &pending.head.path) != "indexUpdate" {
        return None;
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    let new = v.get("uid")?.as_str()?;
    (super::route::is_valid_index_uid(new) && new != pending.index).then(|| new.to_string())
}

/// The valid index uids a swap body names (`[{"indexes": [a, b]}, …]`), once each; the nodes
/// judge the rest of the body.
fn swapped_indexes(body: &[u8]) -> Vec<String> {
    let Ok(Value::Array(swaps)) = serde_json::from_slice::<Value>(body) else { return Vec::new() };
    let mut named: Vec<String> = swaps
        .iter()
        .filter_map(|s| s.get("indexes").and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .filter(|u| super::route::is_valid_index_uid(u))
        .map(str::to_string)
        .collect();
    super::sort::sort_dedup(&mut named);
    named
}

/// `POST /tasks/cancel` or `DELETE /tasks` over the filter's tasks: the node task uids behind the
/// tasks the query selects (those the caller may see), as one path per node. A deletion also
/// drops the selected tasks that ended from the filter's own list, as a node drops its own.
fn translate_tasks(
    cfg: &super::config::Config,
    host: &mut dyn Host,
    head: &RequestHead,
    cancel: bool,
) -> Result<Translated, MeiliError> {
    let query = task_query::parse_task_query(&head.path)?;
    if !query.is_filtered() {
        return Err(MeiliError::missing_task_filters(if cancel { "cancel" } else { "delete" }));
    }
    let caller = tasks::auth_hash(head.authorization.as_deref());
    let matched: Vec<_> = queue::retained_tasks(cfg, host)
        .into_iter()
        .filter(|t| tasks::visible_to(t, caller.as_deref()) && query.matches(t))
        .collect();
    let matched_count = matched.len();
    // A cancelation is about tasks still running. A deletion goes to every node for every
    // matched task: a node deletes those it has finished when it processes the deletion, as a
    // Meilisearch node does; once it succeeded, the filter drops its own records of the ended
    // ones, and of the others if they ended by then (`Translated::later`).
    let selected: Vec<_> = matched.into_iter().filter(|t| !cancel || t.finished_ms.is_none()).collect();
    let mut later: Vec<u64> = if cancel { Vec::new() } else { selected.iter().filter(|t| t.finished_ms.is_none()).map(|t| t.uid).collect() };
    let acted = selected.len() - later.len();
    // No node has these yet (their write waits its turn in the filter): the filter cancels them.
    let unsent: Vec<u64> =
        if cancel { selected.iter().filter(|t| t.miroir.nodes.is_empty()).map(|t| t.uid).collect() } else { Vec::new() };
    let verb = if cancel { "/tasks/cancel" } else { "/tasks" };
    let mut paths = crate::core::sorted_map::SortedMap::new();
    for node in &cfg.nodes {
        let uids: Vec<String> = selected
            .iter()
            .flat_map(|t| t.miroir.nodes.iter())
            .filter(|n| n.node == node.id)
            .filter_map(|n| n.task_uid.map(|u| u.to_string()))
            .collect();
        // Nothing selected on this node: a uid no node task has (Meilisearch's are u32), so the
        // node still answers with a task that matched nothing, like the others.
        let list = if uids.is_empty() { u32::MAX.to_string() } else { uids.join(",") };
        paths.insert(node.id.clone(), format!("{verb}?uids={list}"));
    }
    if !cancel {
        // Forgotten once the nodes' deletions succeeded, like the others: refused (a key without
        // `tasks.delete`) or never sent (no node answered), the deletion deletes nothing.
        later.extend(selected.iter().filter(|t| t.finished_ms.is_some()).map(|t| t.uid));
    }
    // The task's details speak of the filter's tasks, not of one node's translation.
    let original = head.path.find('?').and_then(|q| head.path.get(q..)).unwrap_or_default();
    let done_key = if cancel { "canceledTasks" } else { "deletedTasks" };
    let details = serde_json::json!({"matchedTasks": matched_count, done_key: acted, "originalFilter": original});
    Ok(Translated { paths, details, later, unsent })
}

/// A task cancelation or deletion, translated.
struct Translated {
    /// Node id → its path, with its own task uids.
    paths: crate::core::sorted_map::SortedMap<String, String>,
    details: Value,
    /// Filter tasks a deletion matched: dropped once it succeeded, those that ended by then.
    later: Vec<u64>,
    /// Filter tasks a cancelation matched that no node has yet.
    unsent: Vec<u64>,
}
