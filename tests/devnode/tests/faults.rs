//! Connection and answer faults apply to the write routes added for mirror mode like to the others.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[tokio::test]
async fn status_delay_and_down_cover_the_new_routes() {
    let d = fleet(1, Some(KEY)).await;
    let port = d.node_ports()[0];
    let k = Some(KEY);
    let fault = |body| async move { call(d.control_port, "POST", "/nodes/0/faults", Some(body)).await.status };
    assert_eq!(fault(json!({"status_5xx": 503})).await, 200);
    for (method, path, body) in [
        ("POST", "/keys", Some(json!({"actions": ["*"], "indexes": ["*"], "expiresAt": null}))),
        ("POST", "/swap-indexes", Some(json!([{"indexes": ["a", "b"]}]))),
        ("POST", "/tasks/cancel?uids=0", None),
        ("DELETE", "/tasks?uids=0", None),
        ("POST", "/export", Some(json!({"url": "http://127.0.0.1:1"}))),
        ("POST", "/indexes/m/documents/delete", Some(json!({"filter": "a = 1"}))),
        ("GET", "/batches", None),
    ] {
        let r = call_as(port, k, method, path, body).await;
        assert_eq!((r.status, r.body["code"].clone()), (503, json!("internal")), "{method} {path}");
    }
    assert_eq!(call_as(port, k, "GET", "/tasks", None).await.body["total"], json!(null));
    assert_eq!(fault(json!({"status_5xx": null, "delay_ms": 150})).await, 200);
    let started = Instant::now();
    let r = call_as(port, k, "POST", "/swap-indexes", Some(json!([{"indexes": ["a", "b"]}]))).await;
    assert_eq!(r.status, 202);
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(fault(json!({"delay_ms": 0, "down": true})).await, 200);
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err());
    assert_eq!(fault(json!({"down": false})).await, 200);
    // Nothing that was refused was applied: only the swap (delayed, not refused) is a task.
    let tasks = call_as(port, k, "GET", "/tasks", None).await.body;
    assert_eq!(tasks["total"], 1);
    assert_eq!(call_as(port, k, "GET", "/keys", None).await.body["total"], 4);
}

#[tokio::test]
async fn fail_all_tasks_fails_every_write_task_and_leaves_fail_tasks_alone() {
    let d = fleet(1, None).await;
    let port = d.node_ports()[0];
    write(port, "POST", "/indexes/m/documents", Some(json!([{"id": 1}]))).await;
    let body = json!({"fail_all_tasks": {"code": "io_error", "message": "disk full", "type": "system"}});
    let r = call(d.control_port, "POST", "/nodes/0/faults", Some(body)).await;
    assert_eq!(r.body["fail_all_tasks"], json!({"code": "io_error", "message": "disk full", "type": "system"}));
    for (method, path, body) in [
        ("POST", "/indexes/m/documents", Some(json!([{"id": 2}]))),
        ("DELETE", "/indexes/m/documents/1", None),
        ("PATCH", "/indexes/m/settings", Some(json!({"stopWords": ["a"]}))),
        ("POST", "/indexes", Some(json!({"uid": "n"}))),
        ("POST", "/swap-indexes", Some(json!([{"indexes": ["m", "o"], "rename": true}]))),
    ] {
        let t = write(port, method, path, body).await;
        assert_eq!(t["status"], "failed", "{method} {path}: {t}");
        assert_eq!(t["error"]["code"], "io_error");
    }
    let t = write(port, "POST", "/indexes/m/documents", Some(json!([{"id": 3}]))).await;
    assert_eq!(t["error"]["message"], "Index `m`: disk full");
    // Task management still works, and nothing was applied.
    assert_eq!(write(port, "DELETE", "/tasks?statuses=failed", None).await["status"], "succeeded");
    let docs = call(port, "GET", "/indexes/m/documents", None).await.body;
    assert_eq!(docs["results"], json!([{"id": 1}]));
    assert_eq!(call(port, "GET", "/indexes/m/settings/stop-words", None).await.body, json!([]));
    // fail_tasks keeps its own message on settings tasks.
    let both = json!({"fail_tasks": {"code": "x", "message": "settings boom"}});
    call(d.control_port, "POST", "/nodes/0/faults", Some(both)).await;
    let t = write(port, "PATCH", "/indexes/m/settings", Some(json!({"stopWords": ["a"]}))).await;
    assert_eq!(
        (t["error"]["code"].clone(), t["error"]["message"].clone()),
        (json!("x"), json!("Index `m`: settings boom"))
    );
    call(d.control_port, "DELETE", "/nodes/0/faults", None).await;
    assert_eq!(write(port, "POST", "/indexes/m/documents", Some(json!([{"id": 4}]))).await["status"], "succeeded");
}
