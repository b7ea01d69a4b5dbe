//! Document routes over HTTP: formats, primary keys, replace vs update, deletions, reads, stats.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn json_ndjson_and_csv_payloads() {
    let d = fleet(1, None).await;
    let port = d.node_ports()[0];
    let t = write(port, "POST", "/indexes/m/documents", Some(json!({"id": 1, "title": "one"}))).await;
    assert_eq!((t["status"].clone(), t["details"]["indexedDocuments"].clone()), (json!("succeeded"), json!(1)));
    let nd = "{\"id\": 2, \"title\": \"two\"}\n\n{\"id\": 3, \"title\": \"three\"}\n";
    let r = send(port, "POST", "/indexes/m/documents", &[("Content-Type", "application/x-ndjson")], Some(nd)).await;
    assert_eq!(wait_task(port, r.body["taskUid"].as_u64().unwrap()).await["details"]["receivedDocuments"], 2);
    let csv = "id:number;title;year:number\n4;\"four; quoted\";2001\n";
    let r =
        send(port, "POST", "/indexes/m/documents?csvDelimiter=%3B", &[("Content-Type", "text/csv")], Some(csv)).await;
    assert_eq!(wait_task(port, r.body["taskUid"].as_u64().unwrap()).await["status"], "succeeded");
    assert_eq!(
        call(port, "GET", "/indexes/m/documents/4", None).await.body,
        json!({"id": 4, "title": "four; quoted", "year": 2001})
    );
    let r = send(
        port,
        "POST",
        "/indexes/m/documents?csvDelimiter=%3B",
        &[("Content-Type", "application/json")],
        Some("[]"),
    )
    .await;
    assert_eq!((r.status, r.body["code"].clone()), (400, json!("invalid_document_csv_delimiter")));
    let r = send(port, "POST", "/indexes/m/documents", &[("Content-Type", "text/csv")], None).await;
    assert_eq!(r.body["message"], "A csv payload is missing.");
    let r = send(port, "POST", "/indexes/m/documents", &[("Content-Type", "text/plain")], Some("x")).await;
    assert_eq!((r.status, r.body["code"].clone()), (415, json!("invalid_content_type")));
    assert_eq!(call(port, "GET", "/indexes/m/stats", None).await.body["numberOfDocuments"], 4);
}

#[tokio::test]
async fn primary_key_inference_and_explicit_key() {
    let d = fleet(1, None).await;
    let port = d.node_ports()[0];
    let t = write(port, "POST", "/indexes/a/documents", Some(json!([{"title": "x"}]))).await;
    assert_eq!(
        (t["status"].clone(), t["error"]["code"].clone()),
        (json!("failed"), json!("index_primary_key_no_candidate_found"))
    );
    let t = write(port, "POST", "/indexes/b/documents", Some(json!([{"bookid": 1, "authorid": 2}]))).await;
    assert_eq!(t["error"]["code"], "index_primary_key_multiple_candidates_found");
    let t = write(port, "POST", "/indexes/c/documents", Some(json!([{"skuId": "a1", "n": 1}]))).await;
    assert_eq!(t["status"], "succeeded");
    assert_eq!(call(port, "GET", "/indexes/c", None).await.body["primaryKey"], "skuId");
    let t = write(port, "POST", "/indexes/e/documents?primaryKey=n", Some(json!([{"skuId": "a1", "n": 1}]))).await;
    assert_eq!(t["status"], "succeeded");
    assert_eq!(call(port, "GET", "/indexes/e", None).await.body["primaryKey"], "n");
    let t = write(port, "POST", "/indexes/e/documents?primaryKey=skuId", Some(json!([{"skuId": "a2", "n": 2}]))).await;
    assert_eq!(t["error"]["code"], "index_primary_key_already_exists");
    let t = write(port, "POST", "/indexes/e/documents", Some(json!([{"skuId": "a2"}]))).await;
    assert_eq!(t["error"]["code"], "missing_document_id");
}

#[tokio::test]
async fn post_replaces_put_merges() {
    let d = fleet(1, None).await;
    let port = d.node_ports()[0];
    write(port, "POST", "/indexes/m/documents", Some(json!([{"id": 1, "a": 1, "b": 1}]))).await;
    write(port, "PUT", "/indexes/m/documents", Some(json!([{"id": 1, "b": 2, "c": 3}]))).await;
    assert_eq!(call(port, "GET", "/indexes/m/documents/1", None).await.body, json!({"id": 1, "a": 1, "b": 2, "c": 3}));
    write(port, "POST", "/indexes/m/documents", Some(json!([{"id": 1, "z": 0}]))).await;
    assert_eq!(call(port, "GET", "/indexes/m/documents/1", None).await.body, json!({"id": 1, "z": 0}));
}

#[tokio::test]
async fn deletions_by_id_batch_filter_and_clear() {
    let d = fleet(1, None).await;
    let port = d.node_ports()[0];
    let docs: Vec<_> =
        (1..=6).map(|i| json!({"id": i, "genre": if i % 2 == 0 { "drama" } else { "comedy" }})).collect();
    write(port, "POST", "/indexes/m/documents", Some(json!(docs))).await;
    let t = write(port, "POST", "/indexes/m/documents/delete", Some(json!({"filter": "genre = drama"}))).await;
    assert_eq!(t["status"], "failed");
    assert_eq!(t["error"]["code"], "invalid_document_filter");
    assert_eq!(t["type"], "documentDeletion");
    assert_eq!(t["details"]["originalFilter"], "\"genre = drama\"");
    write(port, "PATCH", "/indexes/m/settings", Some(json!({"filterableAttributes": ["genre"]}))).await;
    let t = write(port, "POST", "/indexes/m/documents/delete", Some(json!({"filter": "genre = drama"}))).await;
    assert_eq!(t["details"], json!({"providedIds": 0, "deletedDocuments": 3, "originalFilter": "\"genre = drama\""}));
    // Key order of Meilisearch's DetailsView (serde_json maps compare without order).
    let order: Vec<&str> = t["details"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(order, ["providedIds", "deletedDocuments", "originalFilter"]);
    let r = call(port, "DELETE", "/indexes/m/documents/77", None).await;
    let enqueued = call(port, "GET", &format!("/tasks/{}", r.body["taskUid"]), None).await.body;
    assert!(enqueued["details"].get("originalFilter").is_none(), "{enqueued}");
    let t =
        write(port, "POST", "/indexes/m/documents/delete", Some(json!({"filter": [["genre = x", "genre = y"]]}))).await;
    assert_eq!(t["details"]["originalFilter"], "[[\"genre = x\",\"genre = y\"]]");
    assert_eq!(t["details"]["deletedDocuments"], 0);
    let r = call(port, "POST", "/indexes/m/documents/delete", Some(json!({}))).await;
    assert_eq!((r.status, r.body["code"].clone()), (400, json!("missing_document_filter")));
    let r = call(port, "POST", "/indexes/m/documents/delete", Some(json!({"filter": "genre"}))).await;
    assert_eq!((r.status, r.body["code"].clone()), (400, json!("invalid_document_filter")));
    let t = write(port, "POST", "/indexes/m/documents/delete-batch", Some(json!([1, "3", 99]))).await;
    assert_eq!(t["details"], json!({"providedIds": 3, "deletedDocuments": 2}));
    let t = write(port, "DELETE", "/indexes/m/documents", None).await;
    assert_eq!(t["details"], json!({"deletedDocuments": 1}));
    let t = write(port, "DELETE", "/indexes/nope/documents/1", None).await;
    assert_eq!(t["error"]["code"], "index_not_found");
}

#[tokio::test]
async fn reads_fetch_and_stats() {
    let d = fleet(1, None).await;
    let port = d.node_ports()[0];
    let docs: Vec<_> = (1..=5).map(|i| json!({"id": i, "n": i * 10, "tag": if i > 3 { "hi" } else { "lo" }})).collect();
    write(port, "POST", "/indexes/m/documents", Some(json!(docs))).await;
    let page = call(port, "GET", "/indexes/m/documents?limit=2&offset=1&fields=id", None).await.body;
    assert_eq!(page, json!({"results": [{"id": 2}, {"id": 3}], "offset": 1, "limit": 2, "total": 5}));
    let f =
        call(port, "POST", "/indexes/m/documents/fetch", Some(json!({"ids": ["1", 4], "fields": ["n"]}))).await.body;
    assert_eq!(f, json!({"results": [{"n": 10}, {"n": 40}], "offset": 0, "limit": 20, "total": 2}));
    let r = call(port, "POST", "/indexes/m/documents/fetch", Some(json!({"filter": "tag = hi"}))).await;
    assert_eq!((r.status, r.body["code"].clone()), (400, json!("invalid_document_filter")));
    write(port, "PATCH", "/indexes/m/settings", Some(json!({"filterableAttributes": ["tag"]}))).await;
    let f =
        call(port, "POST", "/indexes/m/documents/fetch", Some(json!({"filter": "tag = hi", "limit": 1}))).await.body;
    assert_eq!((f["total"].clone(), f["results"][0]["id"].clone()), (json!(2), json!(4)));
    let g = call(port, "GET", "/indexes/m/documents?filter=tag%20%3D%20hi&fields=id", None).await.body;
    assert_eq!(g, json!({"results": [{"id": 4}, {"id": 5}], "offset": 0, "limit": 20, "total": 2}));
    let g = call(port, "GET", "/indexes/m/documents?ids=2,5&fields=id", None).await.body;
    assert_eq!(g["results"], json!([{"id": 2}, {"id": 5}]));
    assert_eq!(call(port, "GET", "/indexes/m/documents/9", None).await.body["code"], "document_not_found");
    let s = call(port, "GET", "/indexes/m/stats", None).await.body;
    assert_eq!(
        s,
        json!({"numberOfDocuments": 5, "isIndexing": false, "fieldDistribution": {"id": 5, "n": 5, "tag": 5}})
    );
    let g = call(port, "GET", "/stats", None).await.body;
    assert_eq!(g["indexes"]["m"]["numberOfDocuments"], 5);
}
