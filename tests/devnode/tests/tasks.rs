//! Task listing filters, cancelation, deletion and batches over HTTP.

mod common;

use common::*;
use serde_json::{json, Value};

fn uids(v: &Value) -> Vec<u64> {
    v["results"].as_array().unwrap().iter().map(|t| t["uid"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn list_filters_pages_and_dates() {
    let d = fleet(1, None).await;
    let port = d.node_ports()[0];
    write(port, "POST", "/indexes", Some(json!({"uid": "a"}))).await;
    write(port, "POST", "/indexes/b/documents", Some(json!([{"id": 1}]))).await;
    write(port, "POST", "/indexes", Some(json!({"uid": "a"}))).await;
    let all = call(port, "GET", "/tasks", None).await.body;
    assert_eq!((uids(&all), all["total"].clone(), all["limit"].clone()), (vec![2, 1, 0], json!(3), json!(20)));
    assert_eq!(uids(&call(port, "GET", "/tasks?indexUids=a", None).await.body), [2, 0]);
    assert_eq!(uids(&call(port, "GET", "/tasks?statuses=failed", None).await.body), [2]);
    assert_eq!(
        uids(&call(port, "GET", "/tasks?types=documentAdditionOrUpdate,indexCreation&uids=0,1", None).await.body),
        [1, 0]
    );
    let p = call(port, "GET", "/tasks?limit=1&from=1", None).await.body;
    assert_eq!((uids(&p), p["from"].clone(), p["next"].clone()), (vec![1], json!(1), json!(0)));
    assert_eq!(uids(&call(port, "GET", "/tasks?reverse=true", None).await.body), [0, 1, 2]);
    assert_eq!(uids(&call(port, "GET", "/tasks?batchUids=1", None).await.body), [1]);
    let enq = call(port, "GET", "/tasks/1", None).await.body["enqueuedAt"].as_str().unwrap().to_string();
    let q = format!("/tasks?afterEnqueuedAt={enq}");
    assert_eq!(uids(&call(port, "GET", &q, None).await.body), [2]);
    let q = format!("/tasks?beforeEnqueuedAt={enq}");
    assert_eq!(uids(&call(port, "GET", &q, None).await.body), [0]);
    assert_eq!(call(port, "GET", "/tasks?beforeStartedAt=2000-01-01", None).await.body["total"], 0);
    assert_eq!(call(port, "GET", "/tasks?afterFinishedAt=2000-01-01", None).await.body["total"], 3);
    let r = call(port, "GET", "/tasks?afterEnqueuedAt=soon", None).await;
    assert_eq!((r.status, r.body["code"].clone()), (400, json!("invalid_task_after_enqueued_at")));
    let r = call(port, "GET", "/tasks?types=documentAddition", None).await;
    assert_eq!((r.status, r.body["code"].clone()), (400, json!("invalid_task_types")));
    let r = call(port, "GET", "/tasks?uids=x", None).await;
    assert_eq!(r.body["code"], "invalid_task_uids");
}

#[tokio::test]
async fn cancel_runs_first_and_cancels_enqueued_tasks() {
    let d = fleet(1, None).await;
    let port = d.node_ports()[0];
    let r = control_call(&d, json!({"task_ms": 500})).await;
    assert_eq!(r, 200);
    for i in 0..3 {
        call(port, "POST", "/indexes/m/documents", Some(json!([{"id": i}]))).await;
    }
    let r = call(port, "POST", "/tasks/cancel?statuses=enqueued,processing&indexUids=m", None).await;
    assert_eq!(
        (r.status, r.body["type"].clone(), r.body["indexUid"].clone()),
        (202, json!("taskCancelation"), json!(null))
    );
    let cancel_uid = r.body["taskUid"].as_u64().unwrap();
    let t = wait_task(port, cancel_uid).await;
    assert_eq!(t["details"]["originalFilter"], "?statuses=enqueued,processing&indexUids=m");
    assert_eq!(t["details"]["matchedTasks"], 3);
    // Task 0 was processing when the cancelation arrived: it is interrupted and canceled too.
    assert_eq!(t["details"]["canceledTasks"], 3);
    let c = wait_task(port, 2).await;
    assert_eq!((c["status"].clone(), c["canceledBy"].clone()), (json!("canceled"), json!(cancel_uid)));
    assert_eq!(c["details"], json!({"receivedDocuments": 1, "indexedDocuments": 0}));
    let first = wait_task(port, 0).await;
    assert_eq!(first["status"], "canceled");
    assert!(first["startedAt"].is_string() && first["finishedAt"].is_string());
    // Canceled before it ran, so the index was never created.
    assert_eq!(call(port, "GET", "/indexes/m", None).await.status, 404);
    let listed = call(port, "GET", &format!("/tasks?canceledBy={cancel_uid}"), None).await.body;
    assert_eq!(uids(&listed), [2, 1, 0]);
    let r = call(port, "POST", "/tasks/cancel", None).await;
    assert_eq!((r.status, r.body["code"].clone()), (400, json!("missing_task_filters")));
    let r = call(port, "POST", "/tasks/cancel?limit=2", None).await;
    assert_eq!((r.status, r.body["code"].clone()), (400, json!("bad_request")));
    let b = call(port, "GET", "/batches", None).await.body;
    assert_eq!(b["results"][0]["stats"]["types"]["taskCancelation"], 1);
    assert_eq!(b["results"][0]["stats"]["totalNbTasks"], 4);
    let first = b["results"][0]["uid"].as_u64().unwrap();
    assert_eq!(call(port, "GET", &format!("/batches/{first}"), None).await.body["uid"], first);
    assert_eq!(call(port, "GET", "/batches/999", None).await.body["code"], "batch_not_found");
}

async fn control_call(d: &miroir_devnode::Devnode, faults: Value) -> u16 {
    call(d.control_port, "POST", "/nodes/0/faults", Some(faults)).await.status
}

#[tokio::test]
async fn delete_removes_finished_tasks_only() {
    let d = fleet(1, None).await;
    let port = d.node_ports()[0];
    write(port, "POST", "/indexes", Some(json!({"uid": "a"}))).await;
    write(port, "POST", "/indexes", Some(json!({"uid": "b"}))).await;
    let t = write(port, "DELETE", "/tasks?indexUids=a", None).await;
    assert_eq!(t["type"], "taskDeletion");
    assert_eq!(t["details"], json!({"matchedTasks": 1, "deletedTasks": 1, "originalFilter": "?indexUids=a"}));
    assert_eq!(call(port, "GET", "/tasks/0", None).await.body["code"], "task_not_found");
    assert_eq!(uids(&call(port, "GET", "/tasks", None).await.body), [2, 1]);
    let r = call(port, "DELETE", "/tasks", None).await;
    assert_eq!(r.body["code"], "missing_task_filters");
    // The index the deleted task created is still there.
    assert_eq!(call(port, "GET", "/indexes/a", None).await.status, 200);
}
