//! HTTP-level tests: a devnode fleet started in-process on ephemeral ports, driven with a tiny
//! raw HTTP/1.1 client (Connection: close) so no client library is needed.

mod common;

use std::time::{Duration, Instant};

use common::{call, raw_call, wait_task, Resp, KEY};
use miroir_devnode::{start, Config, Devnode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

async fn fleet(nodes: usize, task_ms: u64, master_key: Option<&str>) -> Devnode {
    start(Config { nodes, task_ms, master_key: master_key.map(str::to_string), ..Config::default() }).await.unwrap()
}

async fn control(d: &Devnode, method: &str, path: &str, body: Option<Value>) -> Resp {
    call(d.control_port, method, path, body).await
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_patch_returns_202_and_task_goes_through_processing() {
    let d = fleet(1, 200, None).await;
    let port = d.node_ports()[0];
    let r = call(port, "PATCH", "/indexes/movies/settings", Some(json!({"sortableAttributes": ["b", "a"]}))).await;
    assert_eq!(r.status, 202);
    assert_eq!(keys(&r.body), ["taskUid", "indexUid", "status", "type", "enqueuedAt"]);
    assert_eq!(r.body["status"], "enqueued");
    assert_eq!(r.body["type"], "settingsUpdate");
    let enqueued_at = r.body["enqueuedAt"].as_str().unwrap();
    assert!(enqueued_at.ends_with('Z') && enqueued_at.contains('T') && enqueued_at.contains('.'), "{enqueued_at}");
    // Not applied before the task finishes.
    assert_eq!(call(port, "GET", "/indexes/movies/settings", None).await.status, 404);
    let uid = r.body["taskUid"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let t = call(port, "GET", &format!("/tasks/{uid}"), None).await.body;
        if t["status"] == "processing" {
            assert!(t["startedAt"].is_string() && t["finishedAt"].is_null() && t["duration"].is_null());
            break;
        }
        assert!(Instant::now() < deadline, "never saw processing: {t}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = wait_task(port, uid).await;
    assert_eq!(
        keys(&t),
        [
            "uid",
            "batchUid",
            "indexUid",
            "status",
            "type",
            "canceledBy",
            "details",
            "error",
            "duration",
            "enqueuedAt",
            "startedAt",
            "finishedAt"
        ]
    );
    assert_eq!(t["status"], "succeeded");
    assert_eq!(t["details"], json!({"sortableAttributes": ["a", "b"]}));
    let duration = t["duration"].as_str().unwrap();
    assert!(duration.starts_with("PT0.2") || duration.starts_with("PT0.3"), "{duration}");
    let s = call(port, "GET", "/indexes/movies/settings", None).await;
    assert_eq!(s.body["sortableAttributes"], json!(["a", "b"]));
    assert_eq!(call(port, "GET", "/indexes/movies/settings/sortable-attributes", None).await.body, json!(["a", "b"]));
    assert_eq!(call(port, "GET", "/tasks/999", None).await.body["code"], "task_not_found");
    assert_eq!(call(port, "GET", "/tasks/abc", None).await.body["code"], "invalid_task_uids");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_run_one_at_a_time_in_uid_order() {
    let d = fleet(1, 60, None).await;
    let port = d.node_ports()[0];
    for i in 0..3 {
        call(port, "PATCH", "/indexes/i/settings", Some(json!({"searchCutoffMs": i}))).await;
    }
    let last = wait_task(port, 2).await;
    let t0 = wait_task(port, 0).await;
    let t1 = wait_task(port, 1).await;
    assert!(t0["finishedAt"].as_str() <= t1["startedAt"].as_str());
    assert!(t1["finishedAt"].as_str() <= last["startedAt"].as_str());
    assert_eq!(call(port, "GET", "/indexes/i/settings/search-cutoff-ms", None).await.body, json!(2));
    let list = call(port, "GET", "/tasks?limit=2", None).await.body;
    assert_eq!(
        list["results"].as_array().unwrap().iter().map(|t| t["uid"].as_u64().unwrap()).collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!((list["total"].clone(), list["from"].clone(), list["next"].clone()), (json!(3), json!(2), json!(0)));
    let page = call(port, "GET", "/tasks?limit=2&from=0", None).await.body;
    assert_eq!(page["results"].as_array().unwrap().len(), 1);
    assert_eq!(page["next"], Value::Null);
    let oldest = call(port, "GET", "/tasks?reverse=true&limit=1&from=1", None).await.body;
    assert_eq!((oldest["results"][0]["uid"].clone(), oldest["next"].clone()), (json!(1), json!(2)));
    assert_eq!(call(port, "GET", "/tasks?limit=18446744073709551615", None).await.body["total"], 3);
    let none = call(port, "GET", "/tasks?statuses=failed&types=settingsUpdate&indexUids=i", None).await.body;
    assert_eq!(none["total"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_settings_on_missing_index_fails_the_task_and_creates_nothing() {
    let d = fleet(1, 0, None).await;
    let port = d.node_ports()[0];
    let r = call(port, "DELETE", "/indexes/ghost/settings", None).await;
    assert_eq!(r.status, 202);
    let t = wait_task(port, r.body["taskUid"].as_u64().unwrap()).await;
    assert_eq!(t["status"], "failed");
    assert_eq!(
        t["error"],
        json!({"message": "Index `ghost` not found.", "code": "index_not_found", "type": "invalid_request", "link": "https://docs.meilisearch.com/errors#index_not_found"})
    );
    assert_eq!(t["details"].as_object().unwrap().len(), 22);
    let r = call(port, "DELETE", "/indexes/ghost/settings/stop-words", None).await;
    assert_eq!(wait_task(port, r.body["taskUid"].as_u64().unwrap()).await["details"], json!({"stopWords": null}));
    assert_eq!(call(port, "GET", "/indexes/ghost", None).await.status, 404);
    // `{}` is a valid update that creates the index.
    let r = call(port, "PATCH", "/indexes/ghost/settings", Some(json!({}))).await;
    assert_eq!(wait_task(port, r.body["taskUid"].as_u64().unwrap()).await["status"], "succeeded");
    let index = call(port, "GET", "/indexes/ghost", None).await.body;
    assert_eq!(keys(&index), ["uid", "createdAt", "updatedAt", "primaryKey"]);
    assert_eq!(call(port, "GET", "/indexes", None).await.body["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_methods_and_payload_errors() {
    let d = fleet(1, 0, None).await;
    let port = d.node_ports()[0];
    for (method, path) in [
        ("PATCH", "/indexes/a/settings/displayed-attributes"),
        ("PUT", "/indexes/a/settings/typo-tolerance"),
        ("POST", "/indexes/a/settings/embedders"),
        ("PUT", "/indexes/a/settings"),
        ("POST", "/indexes/a/settings"),
    ] {
        let r = call(port, method, path, Some(json!({}))).await;
        assert_eq!((r.status, r.raw_body.as_str()), (405, ""), "{method} {path}");
    }
    let r = call(port, "GET", "/nowhere", None).await;
    assert_eq!((r.status, r.raw_body.as_str()), (404, ""));
    assert_eq!(call(port, "GET", "/health/", None).await.body, json!({"status": "available"}));
    // Percent-encoded uid and trailing slash.
    let r = call(port, "PUT", "/indexes/my%2Dindex/settings/stop-words/", Some(json!(["the"]))).await;
    assert_eq!(r.status, 202);
    assert_eq!(r.body["indexUid"], "my-index");

    let no_ct = raw_call(port, "PATCH", "/indexes/a/settings", &[], Some("{}")).await.unwrap();
    assert_eq!((no_ct.status, no_ct.body["code"].as_str()), (415, Some("missing_content_type")));
    let bad_ct =
        raw_call(port, "PATCH", "/indexes/a/settings", &[("Content-Type", "text/plain")], Some("{}")).await.unwrap();
    assert_eq!((bad_ct.status, bad_ct.body["code"].as_str()), (415, Some("invalid_content_type")));
    let charset = raw_call(
        port,
        "PATCH",
        "/indexes/a/settings",
        &[("Content-Type", "application/json; charset=utf-8")],
        Some("{}"),
    )
    .await
    .unwrap();
    assert_eq!(charset.status, 202);
    let malformed =
        raw_call(port, "PATCH", "/indexes/a/settings", &[("Content-Type", "application/json")], Some("{nope"))
            .await
            .unwrap();
    assert_eq!((malformed.status, malformed.body["code"].as_str()), (400, Some("malformed_payload")));
    assert_eq!(keys(&malformed.body), ["message", "code", "type", "link"]);
    let unknown = call(port, "PATCH", "/indexes/a/settings", Some(json!({"rankingRule": []}))).await;
    assert_eq!((unknown.status, unknown.body["code"].as_str()), (400, Some("bad_request")));
    let bad_uid = call(port, "PATCH", "/indexes/bad%20uid/settings", Some(json!({}))).await;
    assert_eq!(bad_uid.body["code"], "invalid_index_uid");
    // A bad body wins over a bad uid.
    let both = call(port, "PATCH", "/indexes/bad%20uid/settings", Some(json!({"x": 1}))).await;
    assert_eq!(both.body["code"], "bad_request");
    let sub = call(port, "PUT", "/indexes/a/settings/displayed-attributes", Some(json!("doggo"))).await;
    assert_eq!(sub.body["message"], "Invalid value type: expected an array, but found a string: `\"doggo\"`");
    assert_eq!(
        call(port, "PATCH", "/indexes/a/settings", Some(json!({"pagination": {"maxTotalHits": 0}}))).await.body["code"],
        "invalid_settings_pagination"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn master_key_is_enforced_before_the_body() {
    let d = fleet(1, 0, Some(KEY)).await;
    let port = d.node_ports()[0];
    assert_eq!(call(port, "GET", "/health", None).await.status, 200);
    let r = call(port, "GET", "/indexes/a/settings", None).await;
    assert_eq!(
        (r.status, r.body["code"].as_str(), r.body["type"].as_str()),
        (401, Some("missing_authorization_header"), Some("auth"))
    );
    let wrong = raw_call(port, "GET", "/tasks", &[("Authorization", "Bearer nope")], None).await.unwrap();
    assert_eq!((wrong.status, wrong.body["code"].as_str()), (403, Some("invalid_api_key")));
    let basic = raw_call(port, "GET", "/tasks", &[("Authorization", &format!("Basic {KEY}"))], None).await.unwrap();
    assert_eq!(basic.status, 401);
    let bearer = format!("Bearer {KEY}");
    let ok = raw_call(port, "GET", "/tasks", &[("Authorization", &bearer)], None).await.unwrap();
    assert_eq!(ok.status, 200);
    // Auth is checked before the body: malformed JSON without a key is a 401.
    let r = raw_call(port, "PATCH", "/indexes/a/settings", &[("Content-Type", "application/json")], Some("{nope"))
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    let r = raw_call(
        port,
        "PATCH",
        "/indexes/a/settings",
        &[("Content-Type", "application/json"), ("Authorization", &bearer)],
        Some("{nope"),
    )
    .await
    .unwrap();
    assert_eq!(r.body["code"], "malformed_payload");
    // The request log records the forwarded header.
    let log = control(&d, "GET", "/nodes/0/requests", None).await.body;
    let last = log.as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["has_authorization"].clone(), last["authorization"].clone()), (json!(true), json!(bearer)));
    assert_eq!(last["body"], "{nope");
    assert_eq!(control(&d, "DELETE", "/nodes/0/requests", None).await.status, 200);
    assert_eq!(control(&d, "GET", "/nodes/0/requests", None).await.body, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_refuses_connections_then_rebinds_the_same_port() {
    let d = fleet(2, 0, None).await;
    let port = d.node_ports()[0];
    let idle = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(control(&d, "POST", "/nodes/0/faults", Some(json!({"down": true}))).await.body, json!({"down": true}));
    // Open connections are closed.
    let mut idle = idle;
    let mut buf = [0u8; 16];
    let n = timeout(Duration::from_secs(2), idle.read(&mut buf)).await.expect("connection not closed");
    assert!(matches!(n, Ok(0) | Err(_)));
    // New ones are refused as soon as the control call has answered.
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err(), "port still accepting");
    // Other nodes are unaffected.
    assert_eq!(call(d.node_ports()[1], "GET", "/health", None).await.status, 200);
    control(&d, "DELETE", "/nodes/0/faults", None).await;
    // Bound again on the same port by the time the control call answers.
    assert_eq!(raw_call(port, "GET", "/health", &[], None).await.unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_5xx_and_hang_faults() {
    let d = fleet(1, 0, None).await;
    let port = d.node_ports()[0];
    control(&d, "POST", "/nodes/0/faults", Some(json!({"delay_ms": 150}))).await;
    let started = Instant::now();
    assert_eq!(call(port, "GET", "/health", None).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));

    control(&d, "POST", "/nodes/0/faults", Some(json!({"delay_ms": null, "status_5xx": 503}))).await;
    let r = call(port, "GET", "/indexes", None).await;
    assert_eq!((r.status, r.body["code"].as_str(), r.body["type"].as_str()), (503, Some("internal"), Some("internal")));
    assert_eq!(control(&d, "GET", "/nodes/0/faults", None).await.body, json!({"status_5xx": 503}));
    control(&d, "DELETE", "/nodes/0/faults", None).await;

    control(&d, "POST", "/nodes/0/faults", Some(json!({"hang": true}))).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut buf = [0u8; 64];
    assert!(timeout(Duration::from_millis(300), stream.read(&mut buf)).await.is_err(), "hang answered");
    control(&d, "POST", "/nodes/0/faults", Some(json!({"hang": false}))).await;
    let n = timeout(Duration::from_secs(2), stream.read(&mut buf)).await.expect("not closed after hang cleared");
    assert!(matches!(n, Ok(0) | Err(_)), "got an answer instead of a close");
    assert_eq!(call(port, "GET", "/health", None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_cuts_the_answer_short_and_resets_the_connection() {
    let d = fleet(1, 0, None).await;
    let port = d.node_ports()[0];
    let set = control(&d, "POST", "/nodes/0/faults", Some(json!({"reset": true}))).await;
    assert_eq!((set.status, set.body.clone()), (200, json!({"reset": true})));

    let body = r#"{"stopWords":["a"]}"#;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let request = format!(
        "PATCH /indexes/movies/settings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let end = timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => return Err(e),
            }
        }
    })
    .await
    .expect("the connection was neither answered nor closed");
    let error = end.expect_err("the connection closed cleanly instead of being reset");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}");

    // A status line, whole headers and part of the announced body.
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 202 Accepted\r\n"), "{text}");
    let (head, partial) = text.split_once("\r\n\r\n").expect("no complete header block");
    let announced: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.parse().ok())
        .expect("no content-length");
    assert!(!partial.is_empty() && partial.len() < announced, "{} of {announced} body bytes", partial.len());

    // Logged, not applied; other requests are cut too until the fault is cleared.
    let log = control(&d, "GET", "/nodes/0/requests", None).await.body;
    assert_eq!(log.as_array().map(Vec::len), Some(1), "{log}");
    assert!(raw_call(port, "GET", "/health", &[], None).await.is_err(), "a reset node answered");
    control(&d, "DELETE", "/nodes/0/faults", None).await;
    assert_eq!(call(port, "GET", "/health", None).await.status, 200);
    assert_eq!(call(port, "GET", "/indexes/movies", None).await.status, 404, "the cut request was applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_task_faults() {
    let d = fleet(1, 0, None).await;
    let port = d.node_ports()[0];
    let patch = |body: Value| call(port, "PATCH", "/indexes/m/settings", Some(body));

    control(&d, "POST", "/nodes/0/faults", Some(json!({"drop_updates": 1}))).await;
    let r = patch(json!({"distinctAttribute": "a"})).await;
    assert_eq!(wait_task(port, r.body["taskUid"].as_u64().unwrap()).await["status"], "succeeded");
    assert_eq!(call(port, "GET", "/indexes/m/settings", None).await.body["distinctAttribute"], Value::Null);
    let r = patch(json!({"distinctAttribute": "b"})).await;
    wait_task(port, r.body["taskUid"].as_u64().unwrap()).await;
    assert_eq!(call(port, "GET", "/indexes/m/settings", None).await.body["distinctAttribute"], "b");

    control(&d, "POST", "/nodes/0/faults", Some(json!({"apply_different": {"rankingRules": ["typo"]}}))).await;
    let r = patch(json!({"rankingRules": ["words"]})).await;
    let t = wait_task(port, r.body["taskUid"].as_u64().unwrap()).await;
    assert_eq!((t["status"].clone(), t["details"].clone()), (json!("succeeded"), json!({"rankingRules": ["words"]})));
    assert_eq!(call(port, "GET", "/indexes/m/settings/ranking-rules", None).await.body, json!(["typo"]));
    let bad = control(&d, "POST", "/nodes/0/faults", Some(json!({"apply_different": {"nope": 1}}))).await;
    assert_eq!(bad.status, 400);
    control(&d, "DELETE", "/nodes/0/faults", None).await;

    control(
        &d,
        "POST",
        "/nodes/0/faults",
        Some(json!({"fail_tasks": {"code": "internal", "message": "disk on fire", "type": "internal"}})),
    )
    .await;
    let r = patch(json!({"distinctAttribute": "c"})).await;
    let t = wait_task(port, r.body["taskUid"].as_u64().unwrap()).await;
    assert_eq!(t["status"], "failed");
    assert_eq!(t["error"]["message"], "Index `m`: disk on fire");
    assert_eq!((t["error"]["code"].clone(), t["error"]["type"].clone()), (json!("internal"), json!("internal")));
    assert_eq!(t["details"], json!({"distinctAttribute": "c"}));
    control(&d, "DELETE", "/nodes/0/faults", None).await;

    control(
        &d,
        "POST",
        "/nodes/0/faults",
        Some(json!({"reject_settings": {"status": 400, "code": "invalid_settings_ranking_rules", "message": "no"}})),
    )
    .await;
    let r = patch(json!({})).await;
    assert_eq!(
        (r.status, r.body["code"].as_str(), r.body["message"].as_str()),
        (400, Some("invalid_settings_ranking_rules"), Some("no"))
    );
    let tasks_before = call(port, "GET", "/tasks", None).await.body["total"].clone();
    assert_eq!(call(port, "DELETE", "/indexes/m/settings", None).await.status, 400);
    assert_eq!(call(port, "GET", "/tasks", None).await.body["total"], tasks_before);
    control(&d, "DELETE", "/nodes/0/faults", None).await;

    control(&d, "POST", "/nodes/0/faults", Some(json!({"task_ms": 300}))).await;
    let r = patch(json!({})).await;
    let t = wait_task(port, r.body["taskUid"].as_u64().unwrap()).await;
    assert!(t["duration"].as_str().unwrap().starts_with("PT0.3"), "{}", t["duration"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_band_changes_bypass_tasks_and_faults() {
    let d = fleet(2, 0, None).await;
    let port = d.node_ports()[1];
    control(&d, "POST", "/nodes/1/faults", Some(json!({"status_5xx": 500}))).await;
    let r =
        control(&d, "POST", "/nodes/1/out-of-band/indexes/x/settings", Some(json!({"stopWords": ["b", "a"]}))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["stopWords"], json!(["a", "b"]));
    assert_eq!(control(&d, "GET", "/nodes/1/settings/x", None).await.body["stopWords"], json!(["a", "b"]));
    assert_eq!(control(&d, "GET", "/nodes/0/settings/x", None).await.status, 404);
    control(&d, "DELETE", "/nodes/1/faults", None).await;
    assert_eq!(call(port, "GET", "/tasks", None).await.body["total"], 0);
    assert_eq!(
        control(&d, "POST", "/nodes/1/out-of-band/indexes/x/settings", Some(json!({"bogus": 1}))).await.status,
        400
    );
    assert_eq!(control(&d, "DELETE", "/nodes/1/out-of-band/indexes/x", None).await.status, 200);
    assert_eq!(call(port, "GET", "/indexes/x", None).await.status, 404);
    assert_eq!(control(&d, "GET", "/nodes/9/faults", None).await.status, 404);
    let nodes = control(&d, "GET", "/nodes", None).await.body;
    assert_eq!(nodes[1]["port"], port);
    assert_eq!(d.ready_json(), json!({"control": d.control_port, "nodes": [{"id": "node-0", "port": d.node_ports()[0]}, {"id": "node-1", "port": port}]}).to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedder_secret_is_masked_in_get_and_task_details() {
    let d = fleet(1, 0, None).await;
    let port = d.node_ports()[0];
    let key = "My super secret value you will never guess";
    let r = call(
        port,
        "PATCH",
        "/indexes/e/settings/embedders",
        Some(json!({"default": {"source": "openAi", "apiKey": key}})),
    )
    .await;
    let t = wait_task(port, r.body["taskUid"].as_u64().unwrap()).await;
    assert_eq!(t["details"]["embedders"]["default"]["apiKey"], "My suXXXXXX...");
    let s = call(port, "GET", "/indexes/e/settings", None).await;
    assert_eq!(s.body["embedders"]["default"]["apiKey"], "My suXXXXXX...");
    assert!(!s.raw_body.contains(key));
    let masked = control(&d, "GET", "/nodes/0/settings/e", None).await.body;
    assert_eq!(masked, s.body);
    let clear = control(&d, "GET", "/nodes/0/settings/e?secrets=clear", None).await.body;
    assert_eq!(clear["embedders"]["default"]["apiKey"], key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_and_search() {
    let d = fleet(1, 0, None).await;
    let port = d.node_ports()[0];
    let docs = json!([{"id": 1, "title": "The Matrix"}, {"id": "two", "title": "Matrix Reloaded"}, {"id": 3, "title": "Heat"}]);
    let r = call(port, "POST", "/indexes/films/documents", Some(docs)).await;
    assert_eq!(r.body["type"], "documentAdditionOrUpdate");
    let t = wait_task(port, r.body["taskUid"].as_u64().unwrap()).await;
    assert_eq!(t["details"], json!({"receivedDocuments": 3, "indexedDocuments": 3}));
    assert_eq!(call(port, "GET", "/indexes/films", None).await.body["primaryKey"], "id");
    let s = call(port, "POST", "/indexes/films/search", Some(json!({"q": "matrix", "limit": 1}))).await.body;
    assert_eq!(keys(&s), ["hits", "query", "processingTimeMs", "limit", "offset", "estimatedTotalHits"]);
    assert_eq!((s["hits"][0]["title"].clone(), s["estimatedTotalHits"].clone()), (json!("The Matrix"), json!(2)));
    let s = call(port, "GET", "/indexes/films/search?q=heat", None).await.body;
    assert_eq!(s["hits"], json!([{"id": 3, "title": "Heat"}]));
    let s = call(port, "POST", "/indexes/films/search", Some(json!({"q": "heat", "attributesToRetrieve": ["title"]})))
        .await
        .body;
    assert_eq!(s["hits"], json!([{"title": "Heat"}]));
    assert_eq!(call(port, "GET", "/indexes/films/documents/two", None).await.body["title"], "Matrix Reloaded");
    let r = call(port, "DELETE", "/indexes/films/documents/two", None).await;
    wait_task(port, r.body["taskUid"].as_u64().unwrap()).await;
    assert_eq!(call(port, "GET", "/indexes/films/documents", None).await.body["total"], 2);
    let r = call(port, "POST", "/indexes/films/documents/delete-batch", Some(json!([1, 3]))).await;
    let t = wait_task(port, r.body["taskUid"].as_u64().unwrap()).await;
    assert_eq!(t["details"]["deletedDocuments"], 2);
    let r = call(port, "DELETE", "/indexes/films", None).await;
    assert_eq!(wait_task(port, r.body["taskUid"].as_u64().unwrap()).await["type"], "indexDeletion");
    assert_eq!(call(port, "GET", "/indexes/films/search?q=x", None).await.status, 404);
    let r = call(port, "POST", "/indexes", Some(json!({"uid": "n", "primaryKey": "sku"}))).await;
    assert_eq!(wait_task(port, r.body["taskUid"].as_u64().unwrap()).await["details"], json!({"primaryKey": "sku"}));
    let r = call(port, "POST", "/indexes", Some(json!({"uid": "n"}))).await;
    assert_eq!(wait_task(port, r.body["taskUid"].as_u64().unwrap()).await["error"]["code"], "index_already_exists");
}
