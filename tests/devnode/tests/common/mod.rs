//! Helpers for the write-route tests: an in-process fleet and a raw HTTP/1.1 client
//! (Connection: close), so no client library is needed.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use miroir_devnode::{start, Config, Devnode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

pub const KEY: &str = "MASTER_KEY_0123456789";

pub async fn fleet(nodes: usize, master_key: Option<&str>) -> Devnode {
    start(Config { nodes, master_key: master_key.map(str::to_string), ..Config::default() }).await.unwrap()
}

pub struct Resp {
    pub status: u16,
    pub raw_body: String,
    pub body: Value,
}

/// One request over a fresh connection; the error says what went wrong on the wire (a refused
/// connection, a reset, no complete head), for tests of faults that break the connection.
pub async fn raw_call(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> std::io::Result<Resp> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let body = body.unwrap_or("");
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("timeout"))??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, raw_body) =
        text.split_once("\r\n\r\n").ok_or_else(|| std::io::Error::other(format!("no header end in {text:?}")))?;
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = serde_json::from_str(raw_body).unwrap_or(Value::Null);
    Ok(Resp { status, raw_body: raw_body.to_string(), body })
}

pub async fn send(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Resp {
    raw_call(port, method, path, headers, body).await.unwrap()
}

/// A JSON call, with `Bearer key` when a key is given.
pub async fn call_as(port: u16, key: Option<&str>, method: &str, path: &str, body: Option<Value>) -> Resp {
    let text = body.map(|b| b.to_string());
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = Vec::new();
    if text.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    send(port, method, path, &headers, text.as_deref()).await
}

pub async fn call(port: u16, method: &str, path: &str, body: Option<Value>) -> Resp {
    call_as(port, None, method, path, body).await
}

pub async fn wait_task_as(port: u16, key: Option<&str>, uid: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let t = call_as(port, key, "GET", &format!("/tasks/{uid}"), None).await.body;
        if ["succeeded", "failed", "canceled"].contains(&t["status"].as_str().unwrap_or("")) {
            return t;
        }
        assert!(Instant::now() < deadline, "task {uid} not finished: {t}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn wait_task(port: u16, uid: u64) -> Value {
    wait_task_as(port, None, uid).await
}

/// Sends a write and waits for its task.
pub async fn write(port: u16, method: &str, path: &str, body: Option<Value>) -> Value {
    let r = call(port, method, path, body).await;
    assert_eq!(r.status, 202, "{method} {path}: {}", r.body);
    wait_task(port, r.body["taskUid"].as_u64().unwrap()).await
}
