//! Pure decisions of a broadcast job: how to read a node's answer to a propose, a task poll or a
//! settings read, and what the fleet's answers add up to. No host, no state: table-tested.

use serde_json::Value;

use super::errors::{ErrorType, MeiliError};
use super::host::CalloutResponse;

/// A node's answer to the proposed settings write.
#[derive(Debug, Clone, PartialEq)]
pub enum ProposeResult {
    /// 202 with the node's own task uid.
    Accepted { task_uid: u64 },
    /// A 4xx: the node refused synchronously; nothing was enqueued there.
    Rejected { status: u16, body: String },
    /// Unreachable, reset, timed out, 5xx, or an answer we cannot read.
    Failed { reason: String },
}

pub fn parse_propose(resp: &CalloutResponse) -> ProposeResult {
    match resp.status {
        None => ProposeResult::Failed { reason: "no response (connection refused, reset or timeout)".into() },
        Some(s @ 400..=499) => ProposeResult::Rejected { status: s, body: String::from_utf8_lossy(&resp.body).into_owned() },
        Some(s @ 200..=299) => {
            let uid = serde_json::from_slice::<Value>(&resp.body)
                .ok()
                .and_then(|v| v.get("taskUid").and_then(Value::as_u64));
            match uid {
                Some(task_uid) => ProposeResult::Accepted { task_uid },
                None => ProposeResult::Failed { reason: format!("HTTP {s} without a taskUid") },
            }
        }
        Some(s) => ProposeResult::Failed { reason: format!("HTTP {s}") },
    }
}

/// Every node refused with the same status and the same JSON body: the client gets that answer
/// verbatim and nothing else happens. Otherwise the job goes on.
pub fn unanimous_rejection(results: &[ProposeResult]) -> Option<(u16, String)> {
    let mut first: Option<(u16, &str, Option<Value>)> = None;
    for r in results {
        let ProposeResult::Rejected { status, body } = r else { return None };
        let parsed = serde_json::from_slice::<Value>(body.as_bytes()).ok();
        match &first {
            None => first = Some((*status, body, parsed)),
            Some((s, b, p)) => {
                let same_body = match (p, &parsed) {
                    (Some(a), Some(b2)) => a == b2,
                    _ => *b == body,
                };
                if *s != *status || !same_body {
                    return None;
                }
            }
        }
    }
    first.map(|(s, b, _)| (s, b.to_string()))
}

/// The nodes' refusal (`status`, their body) as a task's `error`: their own error object, as
/// Meilisearch shapes it, or — from something that is not Meilisearch — one that quotes it.
pub fn refusal_error(status: u16, body: &str) -> Value {
    match serde_json::from_slice::<Value>(body.as_bytes()) {
        Ok(error @ Value::Object(_)) => error,
        _ => {
            let quoted: String = body.chars().take(200).collect();
            let message = format!("The nodes refused the write with HTTP {status}: {quoted}");
            MeiliError::new(status, "miroir_node_refusal", ErrorType::System, message).to_json()
        }
    }
}

/// A 404 whose body says the index does not exist (not a 404 from a proxy or a wrong path).
pub fn is_index_not_found(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body)
        .ok()
        .is_some_and(|v| v.get("code").and_then(Value::as_str) == Some("index_not_found"))
}

/// A node task's state as read from `GET /tasks/{uid}`.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeTask {
    Pending,
    Succeeded,
    /// `failed` or `canceled`, with the task's error object (or a synthesized one for canceled).
    Failed(Value),
}

/// Code of the failure recorded for a node task the node no longer knows (404: cleaned up or
/// deleted). Says nothing about the settings: the verify decides.
pub const TASK_LOST: &str = "miroir_node_task_lost";

/// None: the poll itself failed (unreachable, 5xx, unreadable) — try again later. A 404 is
/// final: polling a task the node forgot until `task_timeout_s` would hold the queue for an hour.
pub fn parse_task(resp: &CalloutResponse) -> Option<(NodeTask, Option<Value>)> {
    if resp.status == Some(404) {
        let lost = serde_json::json!({
            "message": "The node no longer knows this task; its settings are verified instead.",
            "code": TASK_LOST, "type": "system", "link": "https://docs.meilisearch.com/errors#task_not_found"});
        return Some((NodeTask::Failed(lost), None));
    }
    if resp.status != Some(200) {
        return None;
    }
    let v: Value = serde_json::from_slice(&resp.body).ok()?;
    let details = v.get("details").cloned();
    let task = match v.get("status")?.as_str()? {
        "succeeded" => NodeTask::Succeeded,
        "failed" => NodeTask::Failed(v.get("error").cloned().unwrap_or(Value::Null)),
        "canceled" => NodeTask::Failed(serde_json::json!({
            "message": "The node's task was canceled.", "code": "task_canceled",
            "type": "invalid_request", "link": "https://docs.meilisearch.com/errors#task_canceled"})),
        _ => NodeTask::Pending,
    };
    Some((task, details))
}

/// When every node's task failed with the same error code, the job fails with that error and
/// nothing diverged. Returns the error to report.
pub fn unanimous_task_failure(tasks: &[Option<NodeTask>]) -> Option<Value> {
    let mut error: Option<&Value> = None;
    for t in tasks {
        let Some(NodeTask::Failed(e)) = t else { return None };
        if e.get("code").and_then(Value::as_str) == Some(TASK_LOST) {
            return None;
        }
        match error {
            None => error = Some(e),
            Some(prev) if prev.get("code") == e.get("code") => {}
            Some(_) => return None,
        }
    }
    error.cloned()
}

/// Task poll interval: starts short (most settings tasks finish in milliseconds), backs off to
/// one second (reindexing can take hours; no need to hammer the node).
/// When to poll a node's task next, from what the filter knows: `hint_ms`, how long this index's
/// last task took on the node (its own startedAt → finishedAt), and `rtt_ms`, the round trip of
/// the propose. The first poll is aimed to reach the node as the task should end (half a round
/// trip before); while it runs past that, polls come every fifth of the hint; without a hint, or
/// long past it, the ladder.
pub fn next_poll_delay_ms(polls_done: u32, since_answer_ms: u64, hint_ms: Option<u64>, rtt_ms: u64) -> u64 {
    match hint_ms {
        Some(hint) if polls_done == 0 => hint.saturating_sub(since_answer_ms + rtt_ms / 2).clamp(2, 1000),
        Some(hint) if since_answer_ms < hint.saturating_mul(3) => (hint / 5).clamp(5, 200),
        _ => poll_delay_ms(polls_done),
    }
}

/// How long a node took on a task, from its `GET /tasks/{uid}` answer (`startedAt`, `finishedAt`).
pub fn task_run_ms(body: &[u8]) -> Option<u64> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let started = super::time::parse_rfc3339_ns(v.get("startedAt")?.as_str()?)?;
    let finished = super::time::parse_rfc3339_ns(v.get("finishedAt")?.as_str()?)?;
    u64::try_from((finished - started) / 1_000_000).ok()
}

pub fn poll_delay_ms(polls_done: u32) -> u64 {
    (20u64 << polls_done.min(6)).min(1000)
}

/// Repair backoff: `base · 2^min(attempt−1, 5)`, attempt counted from 1.
pub fn repair_backoff_ms(base_ms: u64, attempt: u32) -> u64 {
    base_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(5))
}

/// Which nodes agree after a verify. `readbacks[i]` is node i's (fingerprint, proposal-check-ok),
/// None when unreadable. The reference fingerprint is the most common one among nodes that pass
/// the proposal check (ties: the lowest node index), so that keys verified by agreement only
/// (embedders, masked secrets) still converge on one state.
pub fn agreeing_nodes(readbacks: &[Option<(String, bool)>]) -> (Option<String>, Vec<bool>) {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for (fp, ok) in readbacks.iter().flatten() {
        if !*ok {
            continue;
        }
        match counts.iter_mut().find(|(f, _)| *f == fp.as_str()) {
            Some((_, n)) => *n += 1,
            None => counts.push((fp.as_str(), 1)),
        }
    }
    let mut best: Option<(&str, usize)> = None;
    for (f, n) in counts {
        if best.is_none_or(|(_, bn)| n > bn) {
            best = Some((f, n));
        }
    }
    let reference = best.map(|(f, _)| f.to_string());
    let agree = readbacks
        .iter()
        .map(|r| match (r, &reference) {
            (Some((fp, true)), Some(reference)) => fp == reference,
            _ => false,
        })
        .collect();
    (reference, agree)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resp(status: Option<u16>, body: &str) -> CalloutResponse {
        CalloutResponse { status, body: body.as_bytes().to_vec() }
    }

    #[test]
    fn propose_answers() {
        assert_eq!(parse_propose(&resp(Some(202), r#"{"taskUid":7}"#)), ProposeResult::Accepted { task_uid: 7 });
        assert!(matches!(parse_propose(&resp(Some(400), "{}")), ProposeResult::Rejected { status: 400, .. }));
        assert!(matches!(parse_propose(&resp(Some(503), "")), ProposeResult::Failed { .. }));
        assert!(matches!(parse_propose(&resp(None, "")), ProposeResult::Failed { .. }));
        assert!(matches!(parse_propose(&resp(Some(202), "nope")), ProposeResult::Failed { .. }));
    }

    #[test]
    fn rejection_must_be_unanimous_and_identical() {
        let r = |s: u16, b: &str| ProposeResult::Rejected { status: s, body: b.into() };
        assert_eq!(unanimous_rejection(&[r(400, r#"{"a":1, "b":2}"#), r(400, r#"{"b":2,"a":1}"#)]), Some((400, r#"{"a":1, "b":2}"#.into())));
        assert_eq!(unanimous_rejection(&[r(400, "{}"), r(401, "{}")]), None);
        assert_eq!(unanimous_rejection(&[r(400, "{}"), ProposeResult::Accepted { task_uid: 1 }]), None);
        assert_eq!(unanimous_rejection(&[r(400, "{}"), ProposeResult::Failed { reason: "x".into() }]), None);
    }

    #[test]
    fn task_states() {
        let (t, _) = parse_task(&resp(Some(200), r#"{"status":"processing"}"#)).unwrap();
        assert_eq!(t, NodeTask::Pending);
        let (t, _) = parse_task(&resp(Some(200), r#"{"status":"failed","error":{"code":"x"}}"#)).unwrap();
        assert_eq!(t, NodeTask::Failed(json!({"code": "x"})));
        assert!(parse_task(&resp(Some(500), "")).is_none());
        let f = |c: &str| Some(NodeTask::Failed(json!({"code": c})));
        assert_eq!(unanimous_task_failure(&[f("a"), f("a")]), Some(json!({"code": "a"})));
        assert_eq!(unanimous_task_failure(&[f("a"), f("b")]), None);
        assert_eq!(unanimous_task_failure(&[f("a"), Some(NodeTask::Succeeded)]), None);
    }

    #[test]
    fn a_task_the_node_forgot_is_final_and_left_to_the_verify() {
        let (t, _) = parse_task(&resp(Some(404), r#"{"code":"task_not_found"}"#)).expect("404 is terminal");
        let NodeTask::Failed(e) = t.clone() else { panic!("{t:?}") };
        assert_eq!(e["code"], TASK_LOST);
        assert_eq!(unanimous_task_failure(&[Some(t.clone()), Some(t)]), None, "lost everywhere: verify decides");
    }

    #[test]
    fn delays() {
        // Aimed at the end of the task: a 50 ms task, 20 ms round trip: first poll 40 ms after
        // the propose answered; then every 10 ms; long past it, the ladder.
        assert_eq!(next_poll_delay_ms(0, 0, Some(50), 20), 40);
        assert_eq!(next_poll_delay_ms(0, 0, Some(5), 20), 2);
        assert_eq!(next_poll_delay_ms(1, 45, Some(50), 20), 10);
        assert_eq!(next_poll_delay_ms(3, 400, Some(50), 20), poll_delay_ms(3));
        assert_eq!(next_poll_delay_ms(0, 0, None, 20), poll_delay_ms(0));
        let task = br#"{"uid":1,"status":"succeeded","startedAt":"2026-01-01T00:00:00.010Z","finishedAt":"2026-01-01T00:00:00.060Z"}"#;
        assert_eq!(task_run_ms(task), Some(50));
        assert_eq!(task_run_ms(br#"{"status":"processing","startedAt":"2026-01-01T00:00:00Z"}"#), None);
        assert_eq!(poll_delay_ms(0), 20);
        assert_eq!(poll_delay_ms(3), 160);
        assert_eq!(poll_delay_ms(30), 1000);
        assert_eq!(repair_backoff_ms(1000, 1), 1000);
        assert_eq!(repair_backoff_ms(1000, 3), 4000);
        assert_eq!(repair_backoff_ms(1000, 9), 32000);
    }

    #[test]
    fn agreement_prefers_majority_of_passing_nodes() {
        let n = |f: &str, ok: bool| Some((f.to_string(), ok));
        let (r, a) = agreeing_nodes(&[n("a", true), n("b", true), n("a", true)]);
        assert_eq!((r.as_deref(), a), (Some("a"), vec![true, false, true]));
        let (r, a) = agreeing_nodes(&[n("b", false), n("a", true), None]);
        assert_eq!((r.as_deref(), a), (Some("a"), vec![false, true, false]));
        let (r, a) = agreeing_nodes(&[n("a", false)]);
        assert_eq!((r, a), (None, vec![false]));
    }
}
