//! API keys over HTTP: derivation shared by nodes with one master key, scopes, expiry, CRUD.

mod common;

use common::*;
use serde_json::json;

const UID: &str = "6062abda-a5aa-4414-ac91-ecd7944c0f8d";

#[tokio::test]
async fn same_uid_gives_the_same_key_on_every_node() {
    let d = fleet(2, Some(KEY)).await;
    let (p0, p1) = (d.node_ports()[0], d.node_ports()[1]);
    let defaults = call_as(p0, Some(KEY), "GET", "/keys", None).await.body;
    assert_eq!(defaults["total"], 4);
    let body = json!({"uid": UID, "name": "writer", "actions": ["documents.add", "tasks.get"], "indexes": ["mov*"], "expiresAt": null});
    let a = call_as(p0, Some(KEY), "POST", "/keys", Some(body.clone())).await;
    let b = call_as(p1, Some(KEY), "POST", "/keys", Some(body.clone())).await;
    assert_eq!((a.status, b.status), (201, 201));
    assert_eq!(a.body["key"], b.body["key"]);
    assert_eq!(a.body["uid"], UID);
    assert_eq!(a.body["key"].as_str().unwrap().len(), 64);
    let keys: Vec<&str> = a.body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["name", "description", "key", "uid", "actions", "indexes", "expiresAt", "createdAt", "updatedAt"]
    );
    let again = call_as(p0, Some(KEY), "POST", "/keys", Some(body)).await;
    assert_eq!((again.status, again.body["code"].clone()), (409, json!("api_key_already_exists")));
    let key = a.body["key"].as_str().unwrap().to_string();
    for port in [p0, p1] {
        // Without `indexes.create` a document write cannot create the index.
        let r = call_as(port, Some(&key), "POST", "/indexes/movies/documents", Some(json!([{"id": 1}]))).await;
        let t = wait_task_as(port, Some(&key), r.body["taskUid"].as_u64().unwrap()).await;
        assert_eq!(t["error"]["code"], "index_not_found");
        let r = call_as(port, Some(KEY), "POST", "/indexes", Some(json!({"uid": "movies"}))).await;
        wait_task_as(port, Some(KEY), r.body["taskUid"].as_u64().unwrap()).await;
        let r = call_as(port, Some(&key), "POST", "/indexes/movies/documents", Some(json!([{"id": 1}]))).await;
        assert_eq!(r.status, 202);
        let t = wait_task_as(port, Some(&key), r.body["taskUid"].as_u64().unwrap()).await;
        assert_eq!(t["status"], "succeeded");
        // Outside its indexes or actions: 403 invalid_api_key.
        let r = call_as(port, Some(&key), "POST", "/indexes/books/documents", Some(json!([{"id": 1}]))).await;
        assert_eq!((r.status, r.body["code"].clone()), (403, json!("invalid_api_key")));
        let r = call_as(port, Some(&key), "POST", "/indexes/movies/search", Some(json!({"q": ""}))).await;
        assert_eq!(r.status, 403);
        let r = call_as(port, Some(&key), "PATCH", "/indexes/movies/settings", Some(json!({}))).await;
        assert_eq!(r.status, 403);
    }
    // By uid or by key, on GET / PATCH / DELETE.
    let g = call_as(p0, Some(KEY), "GET", &format!("/keys/{UID}"), None).await.body;
    assert_eq!(g["key"], key);
    let p = call_as(p0, Some(KEY), "PATCH", &format!("/keys/{key}"), Some(json!({"description": "d"}))).await;
    assert_eq!((p.status, p.body["description"].clone()), (200, json!("d")));
    let p = call_as(p0, Some(KEY), "PATCH", &format!("/keys/{key}"), Some(json!({"actions": ["*"]}))).await;
    assert_eq!((p.status, p.body["code"].clone()), (400, json!("immutable_api_key_actions")));
    assert_eq!(call_as(p0, Some(KEY), "DELETE", &format!("/keys/{UID}"), None).await.status, 204);
    assert_eq!(call_as(p0, Some(KEY), "GET", &format!("/keys/{UID}"), None).await.body["code"], "api_key_not_found");
    let r = call_as(p0, Some(&key), "POST", "/indexes/movies/documents", Some(json!([{"id": 2}]))).await;
    assert_eq!(r.status, 403);
    // A key restricted to `mov*` sees only those indexes and their tasks.
    call_as(p1, Some(KEY), "POST", "/indexes", Some(json!({"uid": "books"}))).await;
    let tasks = call_as(p1, Some(&key), "GET", "/tasks", None).await.body;
    assert!(tasks["results"].as_array().unwrap().iter().all(|t| t["indexUid"] == "movies"), "{tasks}");
    let books_task =
        call_as(p1, Some(KEY), "GET", "/tasks?indexUids=books", None).await.body["results"][0]["uid"].clone();
    let r = call_as(p1, Some(&key), "GET", &format!("/tasks/{books_task}"), None).await;
    assert_eq!((r.status, r.body["code"].clone()), (404, json!("task_not_found")));
}

#[tokio::test]
async fn default_keys_scopes_validation_and_expiry() {
    let d = fleet(1, Some(KEY)).await;
    let port = d.node_ports()[0];
    let list = call_as(port, Some(KEY), "GET", "/keys", None).await.body;
    let search_key =
        list["results"].as_array().unwrap().iter().find(|k| k["name"] == "Default Search API Key").unwrap()["key"]
            .as_str()
            .unwrap()
            .to_string();
    call_as(port, Some(KEY), "POST", "/indexes", Some(json!({"uid": "m"}))).await;
    let r = call_as(port, Some(&search_key), "GET", "/indexes/m/search?q=a", None).await;
    assert!(r.status == 200 || r.status == 404, "{}", r.status);
    assert_eq!(call_as(port, Some(&search_key), "GET", "/keys", None).await.status, 403);
    assert_eq!(call_as(port, Some(&search_key), "POST", "/indexes", Some(json!({"uid": "x"}))).await.status, 403);
    let bad = |body| async move { call_as(port, Some(KEY), "POST", "/keys", Some(body)).await.body["code"].clone() };
    assert_eq!(bad(json!({"indexes": ["*"], "expiresAt": null})).await, "missing_api_key_actions");
    assert_eq!(bad(json!({"actions": ["fly"], "indexes": ["*"], "expiresAt": null})).await, "invalid_api_key_actions");
    assert_eq!(bad(json!({"actions": ["*"], "indexes": ["*"]})).await, "missing_api_key_expires_at");
    assert_eq!(
        bad(json!({"actions": ["*"], "indexes": ["*"], "expiresAt": "2000-01-01"})).await,
        "invalid_api_key_expires_at"
    );
    assert_eq!(
        bad(json!({"uid": "nope", "actions": ["*"], "indexes": ["*"], "expiresAt": null})).await,
        "invalid_api_key_uid"
    );
    let soon = json!({"actions": ["*"], "indexes": ["*"], "expiresAt": "2999-01-01T00:00:00Z"});
    let k = call_as(port, Some(KEY), "POST", "/keys", Some(soon)).await.body;
    assert_eq!(k["expiresAt"], "2999-01-01T00:00:00Z");
    assert_eq!(call_as(port, Some(k["key"].as_str().unwrap()), "GET", "/stats", None).await.status, 200);
    let only_m = json!({"actions": ["indexes.get"], "indexes": ["m"], "expiresAt": null});
    let only_m =
        call_as(port, Some(KEY), "POST", "/keys", Some(only_m)).await.body["key"].as_str().unwrap().to_string();
    let r = call_as(port, Some(KEY), "POST", "/indexes", Some(json!({"uid": "other"}))).await;
    wait_task_as(port, Some(KEY), r.body["taskUid"].as_u64().unwrap()).await;
    let l = call_as(port, Some(&only_m), "GET", "/indexes", None).await.body;
    assert_eq!((l["total"].clone(), l["results"][0]["uid"].clone()), (json!(1), json!("m")));
    // Without a master key the key routes are refused.
    let open = fleet(1, None).await;
    let r = call(open.node_ports()[0], "GET", "/keys", None).await;
    assert_eq!((r.status, r.body["code"].clone()), (401, json!("missing_master_key")));
}
