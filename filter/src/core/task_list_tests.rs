//! `task_list`: pages of `GET /tasks` (order, `from`, `limit`, `next`, `total`), who sees what,
//! and `GET /batches` (one batch per started task).

use serde_json::{json, Value};

use super::host::LocalReply;
use super::records::TaskRecord;
use super::task_list::{batch_reply, batches_reply, list_reply, parse_task_query};
use super::task_query_tests::record;
use super::tasks::{auth_hash, task_view_json};

const KEY: Option<&str> = Some("Bearer k");

/// Tasks 1..=n on index `m`, created with `KEY`, shuffled so order comes from the list itself.
fn tasks(n: u64) -> Vec<TaskRecord> {
    let mut all: Vec<TaskRecord> = (1..=n)
        .map(|uid| {
            let mut t = record(uid, "m", "settingsUpdate", "succeeded");
            t.auth_hash = auth_hash(KEY);
            t
        })
        .collect();
    all.reverse();
    all.rotate_left(n as usize / 3);
    all
}

fn list(q: &str, tasks: &[TaskRecord], authorization: Option<&str>) -> Value {
    let reply = list_reply(
        &parse_task_query(&format!("/tasks?{q}")).unwrap(),
        tasks,
        authorization,
    );
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.headers,
        vec![("content-type".to_string(), "application/json".to_string())]
    );
    serde_json::from_slice(&reply.body).unwrap()
}

fn uids(page: &Value) -> Vec<u64> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["uid"].as_u64().unwrap())
        .collect()
}

/// `[uids of the results, total, limit, from, next]`.
fn summary(page: &Value) -> Value {
    json!([
        uids(page),
        page["total"],
        page["limit"],
        page["from"],
        page["next"]
    ])
}

#[test]
fn empty_page_shape() {
    let reply = list_reply(&parse_task_query("/tasks").unwrap(), &[], KEY);
    assert_eq!(
        String::from_utf8(reply.body).unwrap(),
        r#"{"results":[],"total":0,"limit":20,"from":null,"next":null}"#
    );
}

#[test]
fn results_are_task_views_in_meilisearch_field_order() {
    let all = tasks(2);
    let reply = list_reply(&parse_task_query("/tasks").unwrap(), &all, KEY);
    let body = String::from_utf8(reply.body).unwrap();
    let views = |uid: u64| {
        let t = all.iter().find(|t| t.uid == uid).unwrap();
        String::from_utf8(task_view_json(t)).unwrap()
    };
    assert_eq!(
        body,
        format!(
            r#"{{"results":[{},{}],"total":2,"limit":20,"from":2,"next":null}}"#,
            views(2),
            views(1)
        )
    );
}

#[test]
fn newest_first_and_reverse() {
    let all = tasks(5);
    assert_eq!(
        summary(&list("", &all, KEY)),
        json!([[5, 4, 3, 2, 1], 5, 20, 5, null])
    );
    assert_eq!(
        summary(&list("reverse=true", &all, KEY)),
        json!([[1, 2, 3, 4, 5], 5, 20, 1, null])
    );
}

#[test]
fn pages_descending() {
    let all = tasks(5);
    assert_eq!(
        summary(&list("limit=2", &all, KEY)),
        json!([[5, 4], 5, 2, 5, 3])
    );
    assert_eq!(
        summary(&list("limit=2&from=3", &all, KEY)),
        json!([[3, 2], 5, 2, 3, 1])
    );
    assert_eq!(
        summary(&list("limit=2&from=1", &all, KEY)),
        json!([[1], 5, 2, 1, null])
    );
    // `from` need not be a listed uid: the page starts at the first uid at or below it.
    assert_eq!(
        summary(&list("limit=2&from=100", &all, KEY)),
        json!([[5, 4], 5, 2, 5, 3])
    );
    assert_eq!(
        summary(&list("limit=2&from=0", &all, KEY)),
        json!([[], 5, 2, null, null])
    );
    // A page that ends exactly at the last task has no next.
    assert_eq!(
        summary(&list("limit=5", &all, KEY)),
        json!([[5, 4, 3, 2, 1], 5, 5, 5, null])
    );
    assert_eq!(
        summary(&list("limit=4", &all, KEY)),
        json!([[5, 4, 3, 2], 5, 4, 5, 1])
    );
}

#[test]
fn pages_ascending() {
    let all = tasks(5);
    assert_eq!(
        summary(&list("reverse=true&limit=2", &all, KEY)),
        json!([[1, 2], 5, 2, 1, 3])
    );
    assert_eq!(
        summary(&list("reverse=true&limit=2&from=3", &all, KEY)),
        json!([[3, 4], 5, 2, 3, 5])
    );
    assert_eq!(
        summary(&list("reverse=true&limit=2&from=5", &all, KEY)),
        json!([[5], 5, 2, 5, null])
    );
    assert_eq!(
        summary(&list("reverse=true&limit=2&from=0", &all, KEY)),
        json!([[1, 2], 5, 2, 1, 3])
    );
    assert_eq!(
        summary(&list("reverse=true&from=6", &all, KEY)),
        json!([[], 5, 20, null, null])
    );
}

#[test]
fn limit_zero_is_an_empty_page_pointing_at_the_first_task() {
    let all = tasks(3);
    assert_eq!(
        summary(&list("limit=0", &all, KEY)),
        json!([[], 3, 0, null, 3])
    );
    assert_eq!(
        summary(&list("limit=0&reverse=true", &all, KEY)),
        json!([[], 3, 0, null, 1])
    );
}

#[test]
fn following_next_visits_every_task_once() {
    let all = tasks(10);
    for reverse in [false, true] {
        let mut seen = Vec::new();
        let mut from: Option<u64> = None;
        loop {
            let q = match from {
                Some(f) => format!("limit=3&reverse={reverse}&from={f}"),
                None => format!("limit=3&reverse={reverse}"),
            };
            let page = list(&q, &all, KEY);
            assert_eq!(page["total"], 10);
            seen.extend(uids(&page));
            match page["next"].as_u64() {
                Some(next) => from = Some(next),
                None => break,
            }
        }
        let mut want: Vec<u64> = (1..=10).collect();
        if !reverse {
            want.reverse();
        }
        assert_eq!(seen, want, "reverse={reverse}");
    }
}

#[test]
fn total_counts_matching_tasks_only() {
    let mut all = tasks(6);
    for t in all.iter_mut().filter(|t| t.uid % 2 == 0) {
        t.status = "failed".into();
    }
    assert_eq!(
        summary(&list("statuses=failed&limit=2", &all, KEY)),
        json!([[6, 4], 3, 2, 6, 2])
    );
    assert_eq!(
        summary(&list("statuses=failed&from=3", &all, KEY)),
        json!([[2], 3, 20, 2, null])
    );
    assert_eq!(
        summary(&list("statuses=succeeded&reverse=true", &all, KEY)),
        json!([[1, 3, 5], 3, 20, 1, null])
    );
    assert_eq!(
        summary(&list("uids=2,5,9", &all, KEY)),
        json!([[5, 2], 2, 20, 5, null])
    );
}

#[test]
fn callers_see_only_their_own_tasks() {
    let mut all = tasks(4);
    for t in all.iter_mut() {
        match t.uid {
            2 => t.auth_hash = auth_hash(Some("Bearer other")),
            3 => t.auth_hash = None,
            _ => {}
        }
    }
    assert_eq!(
        summary(&list("", &all, KEY)),
        json!([[4, 1], 2, 20, 4, null])
    );
    assert_eq!(
        summary(&list("", &all, Some("Bearer other"))),
        json!([[2], 1, 20, 2, null])
    );
    assert_eq!(summary(&list("", &all, None)), json!([[3], 1, 20, 3, null]));
    // Hidden tasks do not count in `total` nor give `next`.
    assert_eq!(
        summary(&list("limit=1", &all, None)),
        json!([[3], 1, 1, 3, null])
    );
}

#[test]
fn rejected_writes_are_never_listed() {
    let mut all = tasks(3);
    for t in all.iter_mut().filter(|t| t.uid == 2) {
        t.status = "rejected".into();
    }
    assert_eq!(
        summary(&list("", &all, KEY)),
        json!([[3, 1], 2, 20, 3, null])
    );
    assert_eq!(
        summary(&list("uids=2", &all, KEY)),
        json!([[], 0, 20, null, null])
    );
    assert_eq!(
        summary(&list("limit=1&from=2", &all, KEY)),
        json!([[1], 2, 1, 1, null])
    );
}

#[test]
fn instance_wide_tasks_list_with_a_null_index() {
    let mut dump = record(7, "", "dumpCreation", "enqueued");
    dump.auth_hash = auth_hash(KEY);
    let page = list("", &[dump.clone()], KEY);
    assert_eq!(page["results"][0]["indexUid"], Value::Null);
    assert_eq!(page["results"][0]["type"], "dumpCreation");
    assert_eq!(
        summary(&list("indexUids=m", &[dump.clone()], KEY)),
        json!([[], 0, 20, null, null])
    );
    assert_eq!(
        summary(&list("types=dumpCreation", &[dump], KEY)),
        json!([[7], 1, 20, 7, null])
    );
}

fn body(reply: LocalReply) -> (u16, String) {
    (reply.status, String::from_utf8(reply.body).unwrap())
}

#[test]
fn every_started_task_is_a_batch_of_its_own() {
    let q = |s: &str| parse_task_query(&format!("/batches?{s}")).unwrap();
    let mut all = tasks(5);
    for t in all.iter_mut() {
        t.started_ms = Some(1_700_000_000_000);
        t.finished_ms = Some(1_700_000_000_250);
    }
    if let Some(t) = all.iter_mut().find(|t| t.uid == 5) {
        t.started_ms = None; // not started: no batch yet
        t.finished_ms = None;
    }
    let page: Value = serde_json::from_str(&body(batches_reply(&q("limit=2"), &all, KEY)).1).unwrap();
    assert_eq!(summary(&page), json!([[4, 3], 4, 2, 4, 2]));
    let batch = &page["results"][0];
    assert_eq!(batch["stats"], json!({"totalNbTasks": 1, "status": {"succeeded": 1},
        "types": {"settingsUpdate": 1}, "indexUids": {"m": 1}}));
    assert_eq!(batch["duration"], "PT0.25S");
    // A task's batchUid leads to its batch; other credentials see none.
    let view: Value = serde_json::from_slice(&task_view_json(all.iter().find(|t| t.uid == 3).unwrap())).unwrap();
    assert_eq!(view["batchUid"], 3);
    assert_eq!(body(batch_reply("3", &all, KEY)).0, 200);
    assert_eq!(body(batch_reply("3", &all, Some("Bearer other"))).0, 404);
    assert_eq!(body(batch_reply("5", &all, KEY)).0, 404);
    let empty: Value = serde_json::from_str(&body(batches_reply(&q(""), &[], KEY)).1).unwrap();
    assert_eq!(summary(&empty), json!([[], 0, 20, null, null]));
    // Its query is refused like a node refuses it.
    assert_eq!(parse_task_query("/batches?limit=x").unwrap_err().code, "invalid_task_limit");
}

#[test]
fn no_batch_is_found() {
    assert_eq!(
        body(batch_reply("12", &[], KEY)),
        (404, r#"{"message":"Batch `12` not found.","code":"batch_not_found","type":"invalid_request","link":"https://docs.meilisearch.com/errors#batch_not_found"}"#.into())
    );
    for bad in ["x", "-1", "4294967296", ""] {
        let (status, text) = body(batch_reply(bad, &[], KEY));
        assert_eq!(status, 400, "{bad}");
        let e: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(e["code"], "invalid_batch_uids");
        assert_eq!(
            e["message"],
            format!("Batch uid `{bad}` is invalid. It should only contain numeric characters.")
        );
    }
    assert_eq!(batch_reply("+4", &[], KEY).status, 404);
}
