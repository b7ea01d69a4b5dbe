//! Index lifecycle over HTTP: creation, primary-key update, rename, deletion, listing, swaps.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn create_update_rename_delete_and_list() {
    let d = fleet(1, None).await;
    let port = d.node_ports()[0];
    let t = write(port, "POST", "/indexes", Some(json!({"uid": "a"}))).await;
    assert_eq!((t["type"].clone(), t["status"].clone()), (json!("indexCreation"), json!("succeeded")));
    assert_eq!(
        write(port, "POST", "/indexes", Some(json!({"uid": "a"}))).await["error"]["code"],
        "index_already_exists"
    );
    let t = write(port, "PATCH", "/indexes/a", Some(json!({"primaryKey": "sku"}))).await;
    assert_eq!((t["type"].clone(), t["details"].clone()), (json!("indexUpdate"), json!({"primaryKey": "sku"})));
    write(port, "POST", "/indexes/a/documents", Some(json!([{"sku": 1}]))).await;
    let t = write(port, "PATCH", "/indexes/a", Some(json!({"primaryKey": "other"}))).await;
    assert_eq!(t["error"]["code"], "index_primary_key_already_exists");
    write(port, "POST", "/indexes", Some(json!({"uid": "b"}))).await;
    let t = write(port, "PATCH", "/indexes/a", Some(json!({"uid": "b"}))).await;
    assert_eq!(t["error"]["code"], "index_already_exists");
    let t = write(port, "PATCH", "/indexes/a", Some(json!({"uid": "c"}))).await;
    assert_eq!(t["details"], json!({"primaryKey": null, "oldIndexUid": "a", "newIndexUid": "c"}));
    assert_eq!(call(port, "GET", "/indexes/a", None).await.status, 404);
    let c = call(port, "GET", "/indexes/c", None).await.body;
    assert_eq!((c["uid"].clone(), c["primaryKey"].clone()), (json!("c"), json!("sku")));
    assert_eq!(call(port, "GET", "/indexes/c/documents/1", None).await.body, json!({"sku": 1}));
    let r = call(port, "PATCH", "/indexes/c", Some(json!({"uid": "bad uid"}))).await;
    assert_eq!((r.status, r.body["code"].clone()), (400, json!("invalid_index_uid")));
    let l = call(port, "GET", "/indexes?limit=1&offset=1", None).await.body;
    assert_eq!(
        (l["total"].clone(), l["results"][0]["uid"].clone(), l["limit"].clone()),
        (json!(2), json!("c"), json!(1))
    );
    let t = write(port, "DELETE", "/indexes/c", None).await;
    assert_eq!((t["type"].clone(), t["details"].clone()), (json!("indexDeletion"), json!({"deletedDocuments": 1})));
    assert_eq!(write(port, "DELETE", "/indexes/c", None).await["error"]["code"], "index_not_found");
    assert_eq!(write(port, "PATCH", "/indexes/zz", Some(json!({}))).await["error"]["code"], "index_not_found");
}

#[tokio::test]
async fn swap_and_rename_indexes() {
    let d = fleet(1, None).await;
    let port = d.node_ports()[0];
    write(port, "POST", "/indexes/a/documents", Some(json!([{"id": "in-a"}]))).await;
    write(port, "POST", "/indexes/b/documents", Some(json!([{"id": "in-b"}]))).await;
    let t = write(port, "POST", "/swap-indexes", Some(json!([{"indexes": ["a", "b"]}]))).await;
    assert_eq!(t["type"], "indexSwap");
    assert_eq!(t["indexUid"], json!(null));
    assert_eq!(t["status"], "succeeded");
    assert_eq!(t["details"], json!({"swaps": [{"indexes": ["a", "b"], "rename": false}]}));
    assert_eq!(call(port, "GET", "/indexes/a/documents", None).await.body["results"], json!([{"id": "in-b"}]));
    assert_eq!(call(port, "GET", "/indexes/b/documents", None).await.body["results"], json!([{"id": "in-a"}]));
    // The tasks follow their index.
    assert_eq!(call(port, "GET", "/tasks/0", None).await.body["indexUid"], "b");
    let t = write(port, "POST", "/swap-indexes", Some(json!([{"indexes": ["a", "nope"]}]))).await;
    assert_eq!((t["status"].clone(), t["error"]["code"].clone()), (json!("failed"), json!("index_not_found")));
    let t = write(port, "POST", "/swap-indexes", Some(json!([{"indexes": ["a", "c"], "rename": true}]))).await;
    assert_eq!(t["status"], "succeeded");
    assert_eq!(call(port, "GET", "/indexes/a", None).await.status, 404);
    assert_eq!(call(port, "GET", "/indexes/c/documents", None).await.body["results"], json!([{"id": "in-b"}]));
    let t = write(port, "POST", "/swap-indexes", Some(json!([{"indexes": ["b", "c"], "rename": true}]))).await;
    assert_eq!(t["error"]["code"], "index_already_exists");
    let r = call(port, "POST", "/swap-indexes", Some(json!([{"indexes": ["a"]}]))).await;
    assert_eq!((r.status, r.body["code"].clone()), (400, json!("invalid_swap_indexes")));
    let r = call(port, "POST", "/swap-indexes", Some(json!([{"indexes": ["a", "b"]}, {"indexes": ["b", "c"]}]))).await;
    assert_eq!(r.body["code"], "invalid_swap_duplicate_index_found");
}

#[tokio::test]
async fn a_swap_renames_only_the_tasks_before_it() {
    let d = fleet(1, None).await;
    let port = d.node_ports()[0];
    write(port, "POST", "/indexes/a/documents", Some(json!([{"id": "in-a"}]))).await;
    write(port, "POST", "/indexes/b/documents", Some(json!([{"id": "in-b"}]))).await;
    // Slow tasks: the write after the swap is enqueued before the swap is processed.
    call(d.control_port, "POST", "/nodes/0/faults", Some(json!({"task_ms": 200}))).await;
    let swap = call(port, "POST", "/swap-indexes", Some(json!([{"indexes": ["a", "b"]}]))).await.body;
    let after = call(port, "POST", "/indexes/a/documents", Some(json!([{"id": "after"}]))).await.body;
    let after_uid = after["taskUid"].as_u64().unwrap();
    assert_eq!(wait_task(port, swap["taskUid"].as_u64().unwrap()).await["status"], "succeeded");
    let t = wait_task(port, after_uid).await;
    assert_eq!((t["status"].clone(), t["indexUid"].clone()), (json!("succeeded"), json!("a")));
    assert_eq!(call(port, "GET", "/indexes/a/documents", None).await.body["results"], json!([{"id": "in-b"}, {"id": "after"}]));
    assert_eq!(call(port, "GET", "/indexes/b/documents", None).await.body["results"], json!([{"id": "in-a"}]));
}
