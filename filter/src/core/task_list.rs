//! `GET /tasks`, `GET /batches` and `GET /batches/{uid}` answered from the filter's own task
//! records, in Meilisearch v1.50's shapes. The query itself is `task_query`.
//!
//! Paging follows Meilisearch's route: matching tasks newest first (uid descending), or oldest
//! first with `reverse=true`; `from` is the uid to start at, inclusive (the first result has a
//! uid `<= from`, or `>= from` in reverse); the page holds `limit` tasks; `next` is the uid of
//! the task after the page, to pass as the next `from`, or null; `from` in the answer is the
//! uid of the first result (null when the page is empty), not the one asked for; `total` is the
//! number of matching tasks, ignoring `from` and `limit`. Only the tasks the caller may see
//! count (`tasks::visible_to`), as for `GET /tasks/{uid}`.
//!
//! Batches: a batch is a group of tasks one Meilisearch scheduler processed together. The
//! filter runs its writes one at a time, each becoming one node task per node, batched by each
//! node on its own with node-local uids. So every filter task that started is a batch of its
//! own, under the task's uid (`tasks::batch_uid`): what SDKs expect of `GET /batches` (a page
//! of batches with `from` set) holds, and a task's `batchUid` leads to its batch.

use super::errors::MeiliError;
use super::host::LocalReply;
use super::sort;
use super::state::records::TaskRecord;
use super::tasks::{auth_hash, batch_uid, error_reply, json_reply, task_view_json, visible_to};
use super::time::{iso8601_duration_ms, rfc3339_from_ms};

pub use super::task_query::{parse_task_query, TaskQuery};

/// One page of `tasks` (every retained record, any order) for `query`, as seen by a caller
/// presenting `authorization`: `{"results","total","limit","from","next"}` with 200.
pub fn list_reply(
    query: &TaskQuery,
    tasks: &[TaskRecord],
    authorization: Option<&str>,
) -> LocalReply {
    page_reply(query, tasks, authorization, |_| true, task_view_json)
}

/// The page of the tasks `query` selects among those `keep` keeps, each shown by `view`.
fn page_reply(
    query: &TaskQuery,
    tasks: &[TaskRecord],
    authorization: Option<&str>,
    keep: impl Fn(&TaskRecord) -> bool,
    view: impl Fn(&TaskRecord) -> Vec<u8>,
) -> LocalReply {
    let caller = auth_hash(authorization);
    let mut hits: Vec<&TaskRecord> = tasks
        .iter()
        .filter(|t| keep(t) && visible_to(t, caller.as_deref()) && query.matches(t))
        .collect();
    if query.reverse() {
        sort::sort_by_key(&mut hits, |t| t.uid);
    } else {
        sort::sort_by_key(&mut hits, |t| std::cmp::Reverse(t.uid));
    }
    let total = hits.len();
    let page = Page::of(&hits, query);
    let results: Vec<Vec<u8>> = page.tasks.iter().map(|t| view(t)).collect();
    json_reply(200, page_json(&results, total, query.limit(), page.tasks.first().map(|t| t.uid), page.next))
}

/// `GET /batches`: one batch per started task (see the module comment), paged like tasks.
pub fn batches_reply(query: &TaskQuery, tasks: &[TaskRecord], authorization: Option<&str>) -> LocalReply {
    page_reply(query, tasks, authorization, |t| batch_uid(t).is_some(), batch_view_json)
}

/// `GET /batches/{uid}`, `uid` being the path segment once percent-decoded: 400
/// `invalid_batch_uids` if it is not a batch uid (a `u32`, as Meilisearch parses it), else the
/// batch of that task, or 404 `batch_not_found`.
pub fn batch_reply(uid: &str, tasks: &[TaskRecord], authorization: Option<&str>) -> LocalReply {
    let caller = auth_hash(authorization);
    match uid.parse::<u32>() {
        Ok(uid) => match tasks.iter().find(|t| t.uid == u64::from(uid) && batch_uid(t).is_some() && visible_to(t, caller.as_deref())) {
            Some(t) => json_reply(200, batch_view_json(t)),
            None => error_reply(&MeiliError::batch_not_found(uid)),
        },
        Err(_) => error_reply(&MeiliError::invalid_batch_uid(uid)),
    }
}

/// A batch of one task, in Meilisearch's `BatchView` shape.
fn batch_view_json(task: &TaskRecord) -> Vec<u8> {
    let one = |key: &str| serde_json::json!({ key: 1 });
    let duration = match (task.started_ms, task.finished_ms) {
        (Some(s), Some(f)) => Some(iso8601_duration_ms(f.saturating_sub(s))),
        _ => None,
    };
    let mut index_uids = serde_json::Map::new();
    if !task.index_uid.is_empty() {
        index_uids.insert(task.index_uid.clone(), 1.into());
    }
    let view = serde_json::json!({
        "uid": task.uid,
        "progress": null,
        "details": task.details,
        "stats": {
            "totalNbTasks": 1,
            "status": one(&task.status),
            "types": one(&task.kind),
            "indexUids": index_uids,
        },
        "duration": duration,
        "startedAt": rfc3339_from_ms(task.started_ms.unwrap_or(task.enqueued_ms)),
        "finishedAt": task.finished_ms.map(rfc3339_from_ms),
        "batchStrategy": "the gateway sends each write to the nodes on its own",
    });
    serde_json::to_vec(&view).unwrap_or_default()
}

/// The tasks of one page of `sorted` (already in answer order) and the uid after it.
struct Page<'a> {
    tasks: Vec<&'a TaskRecord>,
    next: Option<u64>,
}

impl<'a> Page<'a> {
    fn of(sorted: &[&'a TaskRecord], query: &TaskQuery) -> Self {
        let mut rest = sorted.iter().copied().skip_while(|t| match query.from() {
            None => false,
            Some(from) if query.reverse() => t.uid < from,
            Some(from) => t.uid > from,
        });
        let tasks: Vec<&TaskRecord> = rest.by_ref().take(query.limit()).collect();
        let next = rest.next().map(|t| t.uid);
        Page { tasks, next }
    }
}

/// The list body, fields in Meilisearch's order; `results` are serialized task views.
fn page_json(
    results: &[Vec<u8>],
    total: usize,
    limit: usize,
    from: Option<u64>,
    next: Option<u64>,
) -> Vec<u8> {
    let null_or = |v: Option<u64>| v.map_or_else(|| "null".to_string(), |v| v.to_string());
    let mut body = Vec::with_capacity(64 + results.iter().map(Vec::len).sum::<usize>());
    body.extend_from_slice(b"{\"results\":[");
    for (i, view) in results.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(view);
    }
    body.extend_from_slice(
        format!(
            "],\"total\":{total},\"limit\":{limit},\"from\":{},\"next\":{}}}",
            null_or(from),
            null_or(next)
        )
        .as_bytes(),
    );
    body
}
