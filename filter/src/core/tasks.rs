//! Tasks as clients see them: the 202 summarized task of a settings write and `GET /tasks/{uid}`
//! for the filter's own task uids, in Meilisearch's shapes (reference §5) plus a `miroir` object.

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::errors::MeiliError;
use super::host::LocalReply;
use super::state::records::{TaskMiroir, TaskRecord};
use super::time::{iso8601_duration_ms, rfc3339_from_ms};

/// Field order is Meilisearch's `SummarizedTaskView`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SummarizedTask<'a> {
    task_uid: u64,
    index_uid: Option<&'a str>,
    status: &'static str,
    #[serde(rename = "type")]
    kind: &'a str,
    enqueued_at: String,
}

/// Field order is Meilisearch's `TaskView`, then the filter's own `miroir` object.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TaskView<'a> {
    uid: u64,
    batch_uid: Option<u64>,
    index_uid: Option<&'a str>,
    status: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    canceled_by: Option<u64>,
    details: &'a Value,
    error: &'a Option<Value>,
    duration: Option<String>,
    enqueued_at: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    custom_metadata: Option<&'a str>,
    miroir: &'a TaskMiroir,
}

/// A JSON reply; `body` is already serialized.
pub fn json_reply(status: u16, body: Vec<u8>) -> LocalReply {
    LocalReply { status, headers: vec![("content-type".into(), "application/json".into())], body }
}

/// The filter's batch of a task: each task is a batch of its own, with its uid, once the filter
/// started it or sent it to the nodes (it runs its writes one by one; the nodes batch their own
/// copies as they like).
pub fn batch_uid(task: &TaskRecord) -> Option<u64> {
    let sent = matches!(task.propose, Some(super::state::records::ProposeOutcome::Accepted));
    (task.started_ms.is_some() || sent).then_some(task.uid)
}

/// Instance-wide tasks (dumps, snapshots) have no index: `null`, as on a node.
fn index_uid(task: &TaskRecord) -> Option<&str> {
    Some(task.index_uid.as_str()).filter(|u| !u.is_empty())
}

pub fn summarized_reply(task: &TaskRecord) -> LocalReply {
    let view = SummarizedTask {
        task_uid: task.uid,
        index_uid: index_uid(task),
        status: "enqueued",
        kind: &task.kind,
        enqueued_at: rfc3339_from_ms(task.enqueued_ms),
    };
    json_reply(202, serde_json::to_vec(&view).unwrap_or_default())
}

pub fn task_view_json(task: &TaskRecord) -> Vec<u8> {
    let duration = match (task.started_ms, task.finished_ms) {
        (Some(s), Some(f)) => Some(iso8601_duration_ms(f.saturating_sub(s))),
        _ => None,
    };
    let view = TaskView {
        uid: task.uid,
        batch_uid: batch_uid(task),
        index_uid: index_uid(task),
        status: &task.status,
        kind: &task.kind,
        canceled_by: task.canceled_by.filter(|_| task.status == "canceled"),
        details: &task.details,
        error: &task.error,
        duration,
        enqueued_at: rfc3339_from_ms(task.enqueued_ms),
        started_at: task.started_ms.map(rfc3339_from_ms),
        finished_at: task.finished_ms.map(rfc3339_from_ms),
        custom_metadata: task.custom_metadata.as_deref(),
        miroir: &task.miroir,
    };
    serde_json::to_vec(&view).unwrap_or_default()
}

pub fn error_reply(err: &MeiliError) -> LocalReply {
    json_reply(err.status, err.body().into_bytes())
}

/// `GET /tasks/{uid}`: the task if the caller presents the credentials that created it (the
/// filter cannot check keys itself and must not lend a client rights it does not have).
pub fn task_reply(task: Option<&TaskRecord>, uid: u64, authorization: Option<&str>) -> LocalReply {
    match task {
        Some(t) if visible_to(t, auth_hash(authorization).as_deref()) => {
            json_reply(200, task_view_json(t))
        }
        _ => error_reply(&MeiliError::task_not_found(uid)),
    }
}

/// Whether a caller whose Authorization hashes to `caller_hash` (see [`auth_hash`]) may see
/// `task`, by uid or in a list: only the credentials that created it, and never a write that
/// was rejected (it never became a task).
pub fn visible_to(task: &TaskRecord, caller_hash: Option<&str>) -> bool {
    task.status != "rejected" && task.auth_hash.as_deref() == caller_hash
}

pub fn auth_hash(authorization: Option<&str>) -> Option<String> {
    authorization.map(|a| {
        let digest = Sha256::digest(a.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task() -> TaskRecord {
        TaskRecord {
            uid: 2130706433,
            index_uid: "movies".into(),
            kind: "settingsUpdate".into(),
            status: "succeeded".into(),
            details: json!({"rankingRules": ["typo"]}),
            error: None,
            enqueued_ms: 1_700_000_000_000,
            started_ms: Some(1_700_000_000_010),
            finished_ms: Some(1_700_000_000_135),
            propose: None,
            miroir: TaskMiroir { phase: "committed".into(), settings_version: Some(3), ..TaskMiroir::default() },
            auth_hash: auth_hash(Some("Bearer k")),
            custom_metadata: None,
            canceled_by: None,
        }
    }

    #[test]
    fn summarized_shape_and_order() {
        let r = summarized_reply(&task());
        assert_eq!(r.status, 202);
        assert_eq!(
            String::from_utf8(r.body).unwrap(),
            r#"{"taskUid":2130706433,"indexUid":"movies","status":"enqueued","type":"settingsUpdate","enqueuedAt":"2023-11-14T22:13:20.000Z"}"#
        );
    }

    #[test]
    fn task_view_has_meilisearch_fields_in_order() {
        let r = task_reply(Some(&task()), 2130706433, Some("Bearer k"));
        assert_eq!(r.status, 200);
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.starts_with(r#"{"uid":2130706433,"batchUid":2130706433,"indexUid":"movies","status":"succeeded","type":"settingsUpdate","canceledBy":null,"details":{"rankingRules":["typo"]},"error":null,"duration":"PT0.125S","enqueuedAt":"2023-11-14T22:13:20.000Z","startedAt":"#), "{body}");
        assert!(body.contains(r#""miroir":{"phase":"committed","settings_version":3"#), "{body}");
    }

    #[test]
    fn other_credentials_and_rejected_writes_are_not_found() {
        assert_eq!(task_reply(Some(&task()), 1, Some("Bearer other")).status, 404);
        assert_eq!(task_reply(Some(&task()), 1, None).status, 404);
        let mut t = task();
        t.status = "rejected".into();
        assert_eq!(task_reply(Some(&t), 1, Some("Bearer k")).status, 404);
        assert_eq!(task_reply(None, 1, None).status, 404);
    }
}
