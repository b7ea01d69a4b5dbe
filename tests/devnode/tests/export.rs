//! `POST /export` from one dev node to another over HTTP.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn export_pushes_documents_and_settings_to_another_node() {
    let d = fleet(2, Some(KEY)).await;
    let (src, dst) = (d.node_ports()[0], d.node_ports()[1]);
    let k = Some(KEY);
    let docs: Vec<_> = (1..=5).map(|i| json!({"sku": i, "kind": if i < 3 { "a" } else { "b" }})).collect();
    for (path, body) in [
        ("/indexes/movies/documents?primaryKey=sku", json!(docs)),
        ("/indexes/books/documents", json!([{"id": "x"}])),
        ("/indexes/movies/settings", json!({"filterableAttributes": ["kind"], "rankingRules": ["words", "sort"]})),
    ] {
        let method = if path.ends_with("settings") { "PATCH" } else { "POST" };
        let r = call_as(src, k, method, path, Some(body)).await;
        assert_eq!(wait_task_as(src, k, r.body["taskUid"].as_u64().unwrap()).await["status"], "succeeded");
    }
    let url = format!("http://127.0.0.1:{dst}");
    let body = json!({"url": url, "apiKey": KEY, "indexes": {"mov*": {"overrideSettings": true}}});
    let r = call_as(src, k, "POST", "/export", Some(body)).await;
    assert_eq!((r.status, r.body["type"].clone(), r.body["indexUid"].clone()), (202, json!("export"), json!(null)));
    let t = wait_task_as(src, k, r.body["taskUid"].as_u64().unwrap()).await;
    assert_eq!(t["status"], "succeeded", "{t}");
    assert_eq!(t["details"]["url"], url);
    assert_eq!(t["details"]["apiKey"], "MASXXXXX...");
    assert_eq!(t["details"]["indexes"], json!({"mov*": {"filter": null, "overrideSettings": true}}));
    // The target processes what it received in its own tasks.
    let last = call_as(dst, k, "GET", "/tasks?limit=1", None).await.body["results"][0]["uid"].as_u64().unwrap();
    wait_task_as(dst, k, last).await;
    let src_docs = call_as(src, k, "GET", "/indexes/movies/documents", None).await.body;
    let dst_docs = call_as(dst, k, "GET", "/indexes/movies/documents", None).await.body;
    assert_eq!(src_docs, dst_docs);
    assert_eq!(call_as(dst, k, "GET", "/indexes/movies", None).await.body["primaryKey"], "sku");
    let s = call_as(src, k, "GET", "/indexes/movies/settings", None).await.body;
    assert_eq!(call_as(dst, k, "GET", "/indexes/movies/settings", None).await.body, s);
    assert_eq!(call_as(dst, k, "GET", "/indexes/books", None).await.status, 404);

    // A filter restricts the documents sent.
    let body = json!({"url": url, "apiKey": KEY, "indexes": {"movies": {"filter": "kind = a"}}});
    call_as(dst, k, "DELETE", "/indexes/movies/documents", None).await;
    let r = call_as(src, k, "POST", "/export", Some(body)).await;
    assert_eq!(wait_task_as(src, k, r.body["taskUid"].as_u64().unwrap()).await["status"], "succeeded");
    let last = call_as(dst, k, "GET", "/tasks?limit=1", None).await.body["results"][0]["uid"].as_u64().unwrap();
    wait_task_as(dst, k, last).await;
    assert_eq!(call_as(dst, k, "GET", "/indexes/movies/documents", None).await.body["total"], 2);
}

#[tokio::test]
async fn export_failures() {
    let d = fleet(2, Some(KEY)).await;
    let (src, dst) = (d.node_ports()[0], d.node_ports()[1]);
    let k = Some(KEY);
    let r = call_as(src, k, "POST", "/indexes/m/documents", Some(json!([{"id": 1}]))).await;
    wait_task_as(src, k, r.body["taskUid"].as_u64().unwrap()).await;
    // Wrong key on the target: the target's error becomes the task's.
    let r =
        call_as(src, k, "POST", "/export", Some(json!({"url": format!("http://127.0.0.1:{dst}"), "apiKey": "nope"})))
            .await;
    let t = wait_task_as(src, k, r.body["taskUid"].as_u64().unwrap()).await;
    assert_eq!((t["status"].clone(), t["error"]["code"].clone()), (json!("failed"), json!("invalid_api_key")));
    // Target down: the task fails with an internal error.
    call(d.control_port, "POST", "/nodes/1/faults", Some(json!({"down": true}))).await;
    let r = call_as(src, k, "POST", "/export", Some(json!({"url": format!("http://127.0.0.1:{dst}"), "apiKey": KEY})))
        .await;
    let t = wait_task_as(src, k, r.body["taskUid"].as_u64().unwrap()).await;
    assert_eq!((t["status"].clone(), t["error"]["code"].clone()), (json!("failed"), json!("internal")));
    // Not filterable on the source: invalid_document_filter.
    call(d.control_port, "POST", "/nodes/1/faults", Some(json!({"down": false}))).await;
    let body = json!({"url": format!("http://127.0.0.1:{dst}"), "apiKey": KEY, "indexes": {"m": {"filter": "id = 1"}}});
    let r = call_as(src, k, "POST", "/export", Some(body)).await;
    assert_eq!(
        wait_task_as(src, k, r.body["taskUid"].as_u64().unwrap()).await["error"]["code"],
        "invalid_document_filter"
    );
    let r = call_as(src, k, "POST", "/export", Some(json!({"apiKey": KEY}))).await;
    assert_eq!((r.status, r.body["code"].clone()), (400, json!("invalid_export_url")));
}

#[tokio::test]
async fn export_runs_before_queued_index_tasks() {
    let d = fleet(2, Some(KEY)).await;
    let (src, dst) = (d.node_ports()[0], d.node_ports()[1]);
    let k = Some(KEY);
    call(d.control_port, "POST", "/nodes/0/faults", Some(json!({"task_ms": 300}))).await;
    let first = call_as(src, k, "POST", "/indexes/m/documents", Some(json!([{"id": 1}]))).await.body["taskUid"].clone();
    let second =
        call_as(src, k, "POST", "/indexes/m/documents", Some(json!([{"id": 2}]))).await.body["taskUid"].clone();
    let body = json!({"url": format!("http://127.0.0.1:{dst}"), "apiKey": KEY});
    let export = call_as(src, k, "POST", "/export", Some(body)).await.body["taskUid"].clone();
    let export = wait_task_as(src, k, export.as_u64().unwrap()).await;
    let second = wait_task_as(src, k, second.as_u64().unwrap()).await;
    let first = wait_task_as(src, k, first.as_u64().unwrap()).await;
    let started = |t: &serde_json::Value| t["batchUid"].as_u64().unwrap();
    assert!(started(&first) < started(&export) && started(&export) < started(&second), "{first} {export} {second}");
    // So the export carried only the first document.
    let last = call_as(dst, k, "GET", "/tasks?limit=1", None).await.body["results"][0]["uid"].as_u64().unwrap();
    wait_task_as(dst, k, last).await;
    assert_eq!(call_as(dst, k, "GET", "/indexes/m/documents", None).await.body["total"], 1);
}
