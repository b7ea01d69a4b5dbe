//! Mirror mode's pure decisions (docs/architecture.md §4): what a node's answer to a mirrored
//! write says, what the fleet's answers add up to for the client, and how a filter task ends
//! once every node's task has. No host, no state: table-tested.

use serde_json::Value;

use super::errors::{ErrorType, MeiliError};
use super::host::CalloutResponse;

/// The queue of writes to the instance rather than an index (keys, features, dumps). Not a
/// valid index uid, so it never meets a real index.
pub const INSTANCE_QUEUE: &str = "*";

/// A UUID v4 for a key created without one, from `seed` (what makes this request unique: the
/// worker, the clock, the request). Every node derives the key value from the uid and the
/// master key they share, so the same uid gives the same key on every node.
pub fn key_uid(seed: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(seed);
    let mut b = [0u8; 16];
    for (dst, src) in b.iter_mut().zip(d.iter()) {
        *dst = *src;
    }
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let part = |r: std::ops::Range<usize>| hex.get(r).unwrap_or_default().to_string();
    format!("{}-{}-{}-{}-{}", part(0..8), part(8..12), part(12..16), part(16..20), part(20..32))
}

/// One node's answer to a mirrored write.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeAnswer {
    /// 202 with the node's task.
    Task { uid: u64, kind: String },
    /// Another 2xx: the write took effect at once (keys, experimental features, chats).
    Answered { status: u16, body: String },
    /// A 4xx: refused, nothing changed on that node.
    Refused { status: u16, body: String },
    /// No answer, a 5xx, or a 2xx that cannot be read: the node may or may not hold the write.
    Failed { reason: String },
}

pub fn parse_answer(resp: &CalloutResponse) -> NodeAnswer {
    let text = || String::from_utf8_lossy(&resp.body).into_owned();
    match resp.status {
        None => NodeAnswer::Failed { reason: "no response (connection refused, reset or timeout)".into() },
        Some(202) => {
            let v: Option<Value> = serde_json::from_slice(&resp.body).ok();
            let uid = v.as_ref().and_then(|v| v.get("taskUid")).and_then(Value::as_u64);
            let kind = v.as_ref().and_then(|v| v.get("type")).and_then(Value::as_str).unwrap_or("unknown").to_string();
            match uid {
                Some(uid) => NodeAnswer::Task { uid, kind },
                None => NodeAnswer::Answered { status: 202, body: text() },
            }
        }
        Some(s @ 200..=299) => NodeAnswer::Answered { status: s, body: text() },
        Some(s @ 400..=499) => NodeAnswer::Refused { status: s, body: text() },
        Some(s) => NodeAnswer::Failed { reason: format!("HTTP {s}") },
    }
}

/// What the fleet's answers to one mirrored write add up to.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// At least one node enqueued it: the write is a filter task following these node tasks
    /// (position in `answers`, node task uid). Nodes in `missed` did not enqueue it.
    Enqueued { kind: String, tasks: Vec<(usize, u64)>, missed: Vec<usize> },
    /// Answered at once (or refused by every node): the client gets this answer as is. Nodes in
    /// `odd` answered otherwise.
    Relay { status: u16, body: String, odd: Vec<usize> },
    /// No node answered: nothing is known to be applied anywhere.
    Unreachable,
}

pub fn verdict(answers: &[NodeAnswer]) -> Verdict {
    let tasks: Vec<(usize, u64)> = answers
        .iter()
        .enumerate()
        .filter_map(|(i, a)| match a {
            NodeAnswer::Task { uid, .. } => Some((i, *uid)),
            _ => None,
        })
        .collect();
    if !tasks.is_empty() {
        let kind = answers
            .iter()
            .find_map(|a| match a {
                NodeAnswer::Task { kind, .. } => Some(kind.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let missed = (0..answers.len()).filter(|i| !tasks.iter().any(|(t, _)| t == i)).collect();
        return Verdict::Enqueued { kind, tasks, missed };
    }
    // An answer that took effect wins over a refusal: the client must learn what was applied.
    let relayed = answers
        .iter()
        .find(|a| matches!(a, NodeAnswer::Answered { .. }))
        .or_else(|| answers.iter().find(|a| matches!(a, NodeAnswer::Refused { .. })));
    let (status, body) = match relayed {
        Some(NodeAnswer::Answered { status, body } | NodeAnswer::Refused { status, body }) => (*status, body.clone()),
        _ => return Verdict::Unreachable,
    };
    let same = |a: &NodeAnswer| match a {
        NodeAnswer::Answered { status: s, body: b } | NodeAnswer::Refused { status: s, body: b } => {
            *s == status && same_json(b, &body)
        }
        _ => false,
    };
    let odd = answers.iter().enumerate().filter(|(_, a)| !same(a)).map(|(i, _)| i).collect();
    Verdict::Relay { status, body, odd }
}

/// Bodies equal as JSON (key order and spacing aside), else as bytes. Key answers carry
/// per-node timestamps, so those are compared without `createdAt`/`updatedAt`.
fn same_json(a: &str, b: &str) -> bool {
    match (serde_json::from_slice::<Value>(a.as_bytes()), serde_json::from_slice::<Value>(b.as_bytes())) {
        (Ok(mut x), Ok(mut y)) => {
            for v in [&mut x, &mut y] {
                if let Some(o) = v.as_object_mut() {
                    o.remove("createdAt");
                    o.remove("updatedAt");
                }
            }
            x == y
        }
        _ => a == b,
    }
}

/// The client's answer when no node answered a mirrored write.
pub fn unreachable_error() -> MeiliError {
    MeiliError::new(
        503,
        "miroir_nodes_unreachable",
        ErrorType::System,
        "No node answered the write; it was not applied. Retry later.",
    )
}

/// A node task as `GET /tasks?uids=…` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeTaskState {
    /// enqueued | processing | succeeded | failed | canceled
    pub status: String,
    pub error: Option<Value>,
    pub details: Option<Value>,
}

impl NodeTaskState {
    /// The node no longer knew the task when asked (`lost`).
    pub fn is_lost(&self) -> bool {
        self.error.as_ref().and_then(|e| e.get("code")).and_then(Value::as_str) == Some(super::job::TASK_LOST)
    }

    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "succeeded" | "failed" | "canceled")
    }
    /// The node no longer knows the task (deleted): counted as failed, it says nothing about what
    /// the node holds.
    pub fn lost() -> NodeTaskState {
        NodeTaskState {
            status: "failed".into(),
            error: Some(serde_json::json!({
                "message": "The node no longer knows this task.",
                "code": super::job::TASK_LOST, "type": "system",
                "link": "https://docs.meilisearch.com/errors#task_not_found"})),
            details: None,
        }
    }
}

/// The tasks in a node's `GET /tasks` page, by node task uid. None: not a task list.
pub fn parse_task_page(body: &[u8]) -> Option<Vec<(u64, NodeTaskState)>> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let results = v.get("results")?.as_array()?;
    Some(
        results
            .iter()
            .filter_map(|t| {
                let uid = t.get("uid")?.as_u64()?;
                let status = t.get("status")?.as_str()?.to_string();
                let error = t.get("error").filter(|e| !e.is_null()).cloned();
                let details = t.get("details").filter(|d| !d.is_null()).cloned();
                Some((uid, NodeTaskState { status, error, details }))
            })
            .collect(),
    )
}

/// How a filter task ends once every node's task has.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskEnd {
    pub status: String,
    pub error: Option<Value>,
    pub details: Option<Value>,
    /// Positions of the nodes whose task ended otherwise than the task: they no longer hold what
    /// the others hold.
    pub odd: Vec<usize>,
}

/// `states` are final. Every node alike: that outcome (the node's own error when they failed).
/// Otherwise the most common outcome (ties: the first node's), and the others are odd — except
/// a node that no longer knows its task (deleted there): that says nothing about what it holds,
/// so it is never odd, and decides the outcome only when no node knows better.
pub fn task_end(states: &[NodeTaskState]) -> TaskEnd {
    if states.iter().any(NodeTaskState::is_lost) && !states.iter().all(NodeTaskState::is_lost) {
        let known: Vec<(usize, NodeTaskState)> =
            states.iter().enumerate().filter(|(_, s)| !s.is_lost()).map(|(i, s)| (i, s.clone())).collect();
        let only: Vec<NodeTaskState> = known.iter().map(|(_, s)| s.clone()).collect();
        let mut end = task_end(&only);
        end.odd = end.odd.iter().filter_map(|k| known.get(*k).map(|(i, _)| *i)).collect();
        return end;
    }
    let outcome = |s: &NodeTaskState| -> (String, Option<Value>) {
        let code = s.error.as_ref().and_then(|e| e.get("code")).cloned();
        (s.status.clone(), code)
    };
    let outcomes: Vec<(String, Option<Value>)> = states.iter().map(outcome).collect();
    let winner = outcomes
        .iter()
        .max_by_key(|o| (outcomes.iter().filter(|p| p == o).count(), std::cmp::Reverse(outcomes.iter().position(|p| p == *o))))
        .cloned()
        .unwrap_or_else(|| ("failed".into(), None));
    let first = states.iter().zip(&outcomes).find(|(_, o)| **o == winner).map(|(s, _)| s);
    TaskEnd {
        status: winner.0.clone(),
        error: first.and_then(|s| s.error.clone()),
        details: first.and_then(|s| s.details.clone()),
        odd: outcomes.iter().enumerate().filter(|(_, o)| **o != winner).map(|(i, _)| i).collect(),
    }
}

/// A mirrored write's path as it may be logged: `/keys/{key}` may name a key by its value
/// (Meilisearch takes the key itself there as well as its uid), and a key never reaches a log.
pub fn loggable_path(path: &str) -> &str {
    if path.starts_with("/keys/") {
        "/keys/{key}"
    } else {
        path
    }
}

/// The task type a mirrored write is expected to enqueue, until a node says (Meilisearch v1.50's
/// route table; docs/operations.md lists what the filter does with each route).
pub fn expected_task_type(method: &str, path: &str) -> &'static str {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match (method, segments.as_slice()) {
        ("POST", ["indexes"]) => "indexCreation",
        ("PATCH", ["indexes", _]) => "indexUpdate",
        ("DELETE", ["indexes", _]) => "indexDeletion",
        ("POST" | "PUT", ["indexes", _, "documents"]) => "documentAdditionOrUpdate",
        ("POST", ["indexes", _, "documents", "edit"]) => "documentEdition",
        ("DELETE", ["indexes", _, "documents", ..]) | ("POST", ["indexes", _, "documents", _]) => "documentDeletion",
        ("POST", ["indexes", _, "compact"]) => "indexCompaction",
        ("POST", ["dumps"]) => "dumpCreation",
        ("POST", ["snapshots"]) => "snapshotCreation",
        ("POST", ["tasks", "cancel"]) => "taskCancelation",
        ("POST", ["swap-indexes"]) => "indexSwap",
        ("DELETE", ["tasks"]) => "taskDeletion",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_key_in_a_path_never_reaches_a_log() {
        let key = "d0552b41536279a0ad88bd595327b96f01176a60c2243e906c52ac02375f9bc4";
        assert_eq!(loggable_path(&format!("/keys/{key}")), "/keys/{key}");
        assert_eq!(loggable_path("/indexes/movies/documents"), "/indexes/movies/documents");
    }

    fn resp(status: Option<u16>, body: &str) -> CalloutResponse {
        CalloutResponse { status, body: body.as_bytes().to_vec() }
    }

    fn task(uid: u64) -> NodeAnswer {
        NodeAnswer::Task { uid, kind: "documentAdditionOrUpdate".into() }
    }

    #[test]
    fn answers_are_read_like_meilisearch_writes_them() {
        let enq = r#"{"taskUid":7,"indexUid":"m","status":"enqueued","type":"documentAdditionOrUpdate","enqueuedAt":"x"}"#;
        assert_eq!(parse_answer(&resp(Some(202), enq)), task(7));
        assert!(matches!(parse_answer(&resp(Some(201), "{}")), NodeAnswer::Answered { status: 201, .. }));
        assert!(matches!(parse_answer(&resp(Some(204), "")), NodeAnswer::Answered { status: 204, .. }));
        assert!(matches!(parse_answer(&resp(Some(400), "{}")), NodeAnswer::Refused { status: 400, .. }));
        assert!(matches!(parse_answer(&resp(Some(502), "")), NodeAnswer::Failed { .. }));
        assert!(matches!(parse_answer(&resp(None, "")), NodeAnswer::Failed { .. }));
    }

    #[test]
    fn one_enqueued_task_makes_a_filter_task_and_the_rest_missed_it() {
        let refused = NodeAnswer::Refused { status: 400, body: "{}".into() };
        let down = NodeAnswer::Failed { reason: "x".into() };
        assert_eq!(
            verdict(&[task(3), down, refused, task(9)]),
            Verdict::Enqueued { kind: "documentAdditionOrUpdate".into(), tasks: vec![(0, 3), (3, 9)], missed: vec![1, 2] }
        );
    }

    #[test]
    fn immediate_answers_are_relayed_with_the_odd_nodes_named() {
        let key = |created: &str| NodeAnswer::Answered {
            status: 201,
            body: json!({"key": "abc", "uid": "u", "createdAt": created}).to_string(),
        };
        assert_eq!(
            verdict(&[key("t1"), key("t2")]),
            Verdict::Relay { status: 201, body: json!({"key": "abc", "uid": "u", "createdAt": "t1"}).to_string(), odd: vec![] }
        );
        let refused = NodeAnswer::Refused { status: 400, body: r#"{"code":"x"}"#.into() };
        match verdict(&[refused.clone(), key("t"), NodeAnswer::Failed { reason: "r".into() }]) {
            Verdict::Relay { status: 201, odd, .. } => assert_eq!(odd, vec![0, 2]),
            other => panic!("{other:?}"),
        }
        assert_eq!(verdict(&[refused.clone(), refused]), Verdict::Relay { status: 400, body: r#"{"code":"x"}"#.into(), odd: vec![] });
        assert_eq!(verdict(&[NodeAnswer::Failed { reason: "r".into() }]), Verdict::Unreachable);
    }

    fn state(status: &str, code: Option<&str>) -> NodeTaskState {
        NodeTaskState {
            status: status.into(),
            error: code.map(|c| json!({"code": c, "message": "m"})),
            details: Some(json!({"receivedDocuments": 2})),
        }
    }

    #[test]
    fn a_task_ends_as_its_nodes_did_and_names_the_odd_ones() {
        let ok = state("succeeded", None);
        let bad = state("failed", Some("missing_document_id"));
        assert_eq!(task_end(&[ok.clone(), ok.clone()]).status, "succeeded");
        let failed = task_end(&[bad.clone(), bad.clone()]);
        assert_eq!((failed.status.as_str(), failed.odd.len()), ("failed", 0));
        assert_eq!(failed.error.unwrap()["code"], "missing_document_id");
        let mixed = task_end(&[ok.clone(), bad.clone(), ok.clone()]);
        assert_eq!((mixed.status.as_str(), mixed.odd), ("succeeded", vec![1]));
        // Different errors are different outcomes.
        let other = state("failed", Some("index_not_found"));
        assert_eq!(task_end(&[bad.clone(), other]).odd, vec![1]);
        // A node that lost its task is never odd; the others decide.
        let lost = NodeTaskState::lost();
        let end = task_end(&[lost.clone(), ok.clone(), ok.clone()]);
        assert_eq!((end.status.as_str(), end.odd), ("succeeded", vec![]));
        let end = task_end(&[ok.clone(), lost.clone(), bad.clone(), bad.clone()]);
        assert_eq!((end.status.as_str(), end.odd), ("failed", vec![0]));
        assert_eq!(task_end(&[lost.clone(), lost]).status, "failed");
    }

    #[test]
    fn node_task_pages_are_read() {
        let page = br#"{"results":[{"uid":4,"status":"failed","error":{"code":"c"},"details":null},{"uid":3,"status":"enqueued"}],"total":2}"#;
        let tasks = parse_task_page(page).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[0].0, 4);
        assert!(tasks[0].1.is_final() && !tasks[1].1.is_final());
        assert!(parse_task_page(b"[]").is_none());
    }

    #[test]
    fn key_uids_are_uuid_v4_and_differ_by_seed() {
        let a = key_uid(b"w1 1 ctx 7");
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert!(matches!(a.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(a, key_uid(b"w1 1 ctx 8"));
        assert_eq!(a, key_uid(b"w1 1 ctx 7"));
    }

    #[test]
    fn expected_types_follow_the_route_table() {
        assert_eq!(expected_task_type("POST", "/indexes"), "indexCreation");
        assert_eq!(expected_task_type("PUT", "/indexes/m/documents?primaryKey=id"), "documentAdditionOrUpdate");
        assert_eq!(expected_task_type("POST", "/indexes/m/documents/delete-batch"), "documentDeletion");
        assert_eq!(expected_task_type("DELETE", "/indexes/m/documents/7"), "documentDeletion");
        assert_eq!(expected_task_type("POST", "/indexes/m/documents/edit"), "documentEdition");
        assert_eq!(expected_task_type("DELETE", "/indexes/m"), "indexDeletion");
        assert_eq!(expected_task_type("POST", "/dumps"), "dumpCreation");
    }
}
