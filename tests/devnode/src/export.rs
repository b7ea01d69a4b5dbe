//! `POST /export`: the node pushes the documents (and, with `overrideSettings`, the settings) of
//! the matching indexes to another Meilisearch over HTTP. Plain HTTP/1.1 on a tokio socket
//! (`Connection: close`): the targets are other dev nodes on loopback, so no client library.

use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::documents::{self, Filter};
use crate::errors::ApiError;
use crate::jsoncheck::At;
use crate::node::Index;
use crate::settings;

/// Documents per request to the target.
const DOCUMENTS_PER_PAYLOAD: usize = 1000;

#[derive(Clone, Debug)]
pub struct IndexRule {
    pub pattern: String,
    /// The filter expression (array syntax joined) and the filter as sent.
    pub filter: Option<String>,
    pub original_filter: Value,
    pub override_settings: bool,
}

#[derive(Clone, Debug)]
pub struct Request {
    pub url: String,
    pub api_key: Option<String>,
    pub rules: Vec<IndexRule>,
}

/// Validates the body of `POST /export`; returns the request and the task details.
pub fn parse(body: &Value) -> Result<(Request, Value), ApiError> {
    let obj = At::new("bad_request", "").object_with(body, &["url", "apiKey", "payloadSize", "indexes"])?;
    let url = match obj.get("url") {
        None => return Err(ApiError::invalid("invalid_export_url", "Missing field `url`")),
        Some(v) => At::new("invalid_export_url", ".url").string(v)?.to_string(),
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ApiError::invalid(
            "invalid_export_url",
            format!("Invalid value at `.url`: `{url}` is not a valid URL"),
        ));
    }
    let api_key = match obj.get("apiKey") {
        None | Some(Value::Null) => None,
        Some(v) => Some(At::new("invalid_export_api_key", ".apiKey").string(v)?.to_string()),
    };
    let payload_size = match obj.get("payloadSize") {
        None | Some(Value::Null) => Value::Null,
        Some(v) => v.clone(),
    };
    let mut rules = Vec::new();
    match obj.get("indexes") {
        None | Some(Value::Null) => {
            rules.push(IndexRule {
                pattern: "*".into(),
                filter: None,
                original_filter: Value::Null,
                override_settings: false,
            });
        }
        Some(v) => {
            for (pattern, rule) in At::new("invalid_export_indexes_patterns", ".indexes").object(v)? {
                let at = At::new("bad_request", format!(".indexes.{pattern}"));
                let r = at.object_with(rule, &["filter", "overrideSettings"])?;
                let (filter, original) = match r.get("filter") {
                    None | Some(Value::Null) => (None, Value::Null),
                    Some(v) => {
                        let text = crate::filter::expression(v)
                            .map_err(|e| ApiError { code: "invalid_export_index_filter".into(), ..e })?;
                        Filter::parse(&text)
                            .map_err(|e| ApiError { code: "invalid_export_index_filter".into(), ..e })?;
                        (Some(text), v.clone())
                    }
                };
                let override_settings = match r.get("overrideSettings") {
                    None | Some(Value::Null) => false,
                    Some(v) => At::new(
                        "invalid_export_index_override_settings",
                        format!(".indexes.{pattern}.overrideSettings"),
                    )
                    .boolean(v)?,
                };
                rules.push(IndexRule {
                    pattern: pattern.clone(),
                    filter,
                    original_filter: original,
                    override_settings,
                });
            }
        }
    }
    let indexes: Map<String, Value> = rules
        .iter()
        .map(|r| (r.pattern.clone(), json!({"filter": r.original_filter, "overrideSettings": r.override_settings})))
        .collect();
    let details = json!({
        "url": url,
        "apiKey": api_key.as_deref().map(crate::normalize::mask_secret),
        "payloadSize": payload_size,
        "indexes": indexes,
    });
    Ok((Request { url, api_key, rules }, details))
}

fn pattern_matches(pattern: &str, uid: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => uid.starts_with(prefix),
        None => pattern == uid,
    }
}

/// What to send for one index, taken under the node lock.
#[derive(Debug)]
pub struct IndexPlan {
    uid: String,
    primary_key: Option<String>,
    /// Settings that differ from the defaults (secrets in clear), when they are to be sent.
    settings: Option<Value>,
    documents: Vec<Value>,
}

/// Chooses the indexes (the first matching rule of each) and snapshots what to send.
pub fn plan(indexes: &std::collections::BTreeMap<String, Index>, req: &Request) -> Result<Vec<IndexPlan>, ApiError> {
    let mut out = Vec::new();
    for (uid, index) in indexes {
        let Some(rule) = req.rules.iter().find(|r| pattern_matches(&r.pattern, uid)) else { continue };
        let filter = match &rule.filter {
            None => None,
            Some(text) => {
                let f = Filter::parse(text)?;
                if let Some(field) = f.fields().into_iter().find(|field| !documents::is_filterable(index, field)) {
                    return Err(documents::not_filterable(index, field, text));
                }
                Some(f)
            }
        };
        let settings = rule.override_settings.then(|| {
            let all = index.settings.view_with(false);
            let changed: Map<String, Value> = all
                .as_object()
                .into_iter()
                .flatten()
                .filter(|(k, v)| settings::default_value(k) != **v)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Value::Object(changed)
        });
        let documents =
            index.documents.values().filter(|d| filter.as_ref().is_none_or(|f| f.matches(d))).cloned().collect();
        out.push(IndexPlan { uid: uid.clone(), primary_key: index.primary_key.clone(), settings, documents });
    }
    Ok(out)
}

/// Sends the plan: creates a missing index (with its primary key), PATCHes the settings when
/// asked, then the documents in payloads. Returns the first failure as the task's error.
pub async fn run(req: &Request, plans: &[IndexPlan]) -> Result<(), ApiError> {
    for p in plans {
        let (status, _) = send(req, "GET", &format!("/indexes/{}", p.uid), None).await?;
        if status == 404 {
            let body = json!({"uid": p.uid, "primaryKey": p.primary_key});
            check(send(req, "POST", "/indexes", Some(("application/json", body.to_string()))).await?)?;
        }
        if let Some(settings) = &p.settings {
            let path = format!("/indexes/{}/settings", p.uid);
            check(send(req, "PATCH", &path, Some(("application/json", settings.to_string()))).await?)?;
        }
        let path = match &p.primary_key {
            Some(pk) => format!("/indexes/{}/documents?primaryKey={pk}", p.uid),
            None => format!("/indexes/{}/documents", p.uid),
        };
        for chunk in p.documents.chunks(DOCUMENTS_PER_PAYLOAD) {
            let body: String = chunk.iter().map(|d| format!("{d}\n")).collect();
            check(send(req, "POST", &path, Some(("application/x-ndjson", body))).await?)?;
        }
    }
    Ok(())
}

/// A remote error answer becomes the task error (its code and type); other failures are internal.
fn check((status, body): (u16, Value)) -> Result<(), ApiError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text = |k: &str, d: &str| body.get(k).and_then(Value::as_str).unwrap_or(d).to_string();
    Err(ApiError {
        status,
        message: format!("Remote error while exporting: {}", text("message", &body.to_string())),
        code: text("code", "internal"),
        kind: text("type", "internal"),
    })
}

async fn send(req: &Request, method: &str, path: &str, body: Option<(&str, String)>) -> Result<(u16, Value), ApiError> {
    let fail = |e: String| ApiError::internal(format!("Exporting to `{}` failed: {e}", req.url));
    let rest = req.url.strip_prefix("http://").ok_or_else(|| fail("only http:// targets are supported".into()))?;
    let (authority, base) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    let host_port = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    let exchange = async {
        let mut stream = TcpStream::connect(&host_port).await.map_err(|e| e.to_string())?;
        let (ct, payload) = body.unwrap_or(("", String::new()));
        let mut head = format!(
            "{method} {base}{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
            payload.len()
        );
        if !ct.is_empty() {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        if let Some(key) = &req.api_key {
            head.push_str(&format!("Authorization: Bearer {key}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.map_err(|e| e.to_string())?;
        stream.write_all(payload.as_bytes()).await.map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&buf).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| "incomplete answer".to_string())?;
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| "no status line".to_string())?;
        Ok::<_, String>((status, serde_json::from_str(body).unwrap_or(Value::Null)))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange).await.map_err(|_| fail("timed out".into()))?.map_err(fail)
}
