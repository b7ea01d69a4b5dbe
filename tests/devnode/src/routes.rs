//! The Meilisearch HTTP API of one node: route matching (404 / 405 with empty bodies, like
//! actix), then auth, then body, then index-uid checks (reference §6.1 extractor order).

use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::auth;
use crate::documents;
use crate::errors::ApiError;
use crate::jsoncheck::At;
use crate::node::Node;
use crate::settings::{self, Update};
use crate::tasks::{Operation, Status, TaskFilter, FILTER_PARAMS};

/// A request as the router sees it: path already normalized and split into decoded segments.
pub struct Request {
    pub method: String,
    pub segments: Vec<String>,
    pub query: Vec<(String, String)>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
    /// The query string as sent (without `?`).
    pub raw_query: String,
}

impl Request {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What to answer: a status and an optional JSON body (None = empty body).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply { status, body: Some(body) }
    }
    fn empty(status: u16) -> Reply {
        Reply { status, body: None }
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply::json(e.status, e.body())
    }
}

type Handled = Result<Reply, ApiError>;

pub fn handle(node: &Node, req: &Request) -> Reply {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let m = req.method.as_str();
    let result = match segs.as_slice() {
        ["health"] => on(m, &["GET"], || Ok(Reply::json(200, json!({"status": "available"})))),
        ["version"] => on(m, &["GET"], || {
            authorize(node, req)?;
            Ok(Reply::json(200, json!({"commitSha": "devnode", "commitDate": "unknown", "pkgVersion": "1.50.0"})))
        }),
        ["stats"] => on(m, &["GET"], || global_stats(node, req)),
        ["tasks"] => on(m, &["GET", "DELETE"], || match m {
            "GET" => list_tasks(node, req),
            _ => cancel_or_delete_tasks(node, req, false),
        }),
        ["tasks", "cancel"] if m == "POST" => Ok(cancel_or_delete_tasks(node, req, true)),
        ["batches"] => on(m, &["GET"], || list_batches(node, req)),
        ["batches", uid] => on(m, &["GET"], || get_batch(node, req, uid)),
        ["tasks", uid] => on(m, &["GET"], || get_task(node, req, uid)),
        ["indexes"] => on(m, &["GET", "POST"], || match m {
            "GET" => list_indexes(node, req),
            _ => create_index(node, req),
        }),
        ["indexes", uid] => on(m, &["GET", "PATCH", "DELETE"], || match m {
            "GET" => get_index(node, req, uid),
            "PATCH" => update_index(node, req, uid),
            _ => delete_index(node, req, uid),
        }),
        ["keys"] => on(m, &["GET", "POST"], || match m {
            "GET" => list_keys(node, req),
            _ => create_key(node, req),
        }),
        ["keys", id] => on(m, &["GET", "PATCH", "DELETE"], || one_key(node, req, id)),
        ["export"] => on(m, &["POST"], || export(node, req)),
        ["swap-indexes"] => on(m, &["POST"], || swap_indexes(node, req)),
        ["indexes", uid, "stats"] => on(m, &["GET"], || index_stats(node, req, uid)),
        ["indexes", uid, "settings"] => on(m, &["GET", "PATCH", "DELETE"], || match m {
            "GET" => get_settings(node, req, uid, None),
            "PATCH" => update_settings(node, req, uid, None),
            _ => delete_settings(node, req, uid, None),
        }),
        ["indexes", uid, "settings", segment] => match settings::sub_route(segment) {
            None => Err(Reply::empty(404)),
            Some(route) => on(m, &["GET", "DELETE", route.update_verb], || match m {
                "GET" => get_settings(node, req, uid, Some(route.key)),
                "DELETE" => delete_settings(node, req, uid, Some(route.key)),
                _ => update_settings(node, req, uid, Some(route.key)),
            }),
        },
        ["indexes", uid, "documents"] => on(m, &["GET", "POST", "PUT", "DELETE"], || match m {
            "GET" => list_documents(node, req, uid),
            "POST" => add_documents(node, req, uid, true),
            "PUT" => add_documents(node, req, uid, false),
            _ => clear_documents(node, req, uid),
        }),
        ["indexes", uid, "documents", "delete-batch"] if m == "POST" => Ok(delete_batch(node, req, uid)),
        ["indexes", uid, "documents", "delete"] if m == "POST" => Ok(delete_by_filter(node, req, uid)),
        ["indexes", uid, "documents", "fetch"] if m == "POST" => Ok(fetch_documents(node, req, uid)),
        ["indexes", uid, "documents", id] => on(m, &["GET", "DELETE"], || match m {
            "GET" => get_document(node, req, uid, id),
            _ => delete_document(node, req, uid, id),
        }),
        ["indexes", uid, "search"] => on(m, &["GET", "POST"], || search(node, req, uid)),
        _ => Err(Reply::empty(404)),
    };
    match result {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => e.into(),
        Err(reply) => reply,
    }
}

/// Runs `f` if the method is registered on the resource; otherwise actix's empty 405.
fn on(method: &str, allowed: &[&str], f: impl FnOnce() -> Handled) -> Result<Handled, Reply> {
    if allowed.contains(&method) {
        Ok(f())
    } else {
        Err(Reply::empty(405))
    }
}

/// The key action a request needs and the index it touches (`meilisearch-auth`'s per-route
/// policies).
fn required_action(req: &Request) -> (&'static str, Option<String>) {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let m = req.method.as_str();
    let index = match segs.as_slice() {
        ["indexes", uid, ..] => Some(uid.to_string()),
        ["indexes"] if m == "POST" => serde_json::from_slice::<Value>(&req.body)
            .ok()
            .and_then(|b| b.get("uid").and_then(Value::as_str).map(str::to_string)),
        _ => None,
    };
    let action = match (m, segs.as_slice()) {
        (_, ["version"]) => "version",
        (_, ["stats"] | ["indexes", _, "stats"]) => "stats.get",
        ("GET", ["tasks", ..] | ["batches", ..]) => "tasks.get",
        ("POST", ["tasks", "cancel"]) => "tasks.cancel",
        ("DELETE", ["tasks"]) => "tasks.delete",
        ("GET", ["indexes"] | ["indexes", _]) => "indexes.get",
        ("POST", ["indexes"]) => "indexes.create",
        ("PATCH", ["indexes", _]) => "indexes.update",
        ("DELETE", ["indexes", _]) => "indexes.delete",
        (_, ["swap-indexes"]) => "indexes.swap",
        ("GET", ["indexes", _, "settings", ..]) => "settings.get",
        (_, ["indexes", _, "settings", ..]) => "settings.update",
        ("GET", ["indexes", _, "documents", ..]) | ("POST", ["indexes", _, "documents", "fetch"]) => "documents.get",
        ("POST" | "PUT", ["indexes", _, "documents"]) => "documents.add",
        (_, ["indexes", _, "documents", ..]) => "documents.delete",
        (_, ["indexes", _, "search"]) => "search",
        ("GET", ["keys", ..]) => "keys.get",
        ("POST", ["keys"]) => "keys.create",
        ("PATCH", ["keys", _]) => "keys.update",
        ("DELETE", ["keys", _]) => "keys.delete",
        (_, ["export"]) => "export",
        _ => "*",
    };
    (action, index)
}

fn authorize(node: &Node, req: &Request) -> Result<auth::Scope, ApiError> {
    let (action, index) = required_action(req);
    let keys = node.state().keys.clone();
    auth::check_action(node.master_key.as_deref(), &keys, req.authorization.as_deref(), action, index.as_deref())
}

fn export(node: &Node, req: &Request) -> Handled {
    authorize(node, req)?;
    let body = json_body(req)?;
    let (request, details) = crate::export::parse(&body)?;
    accepted(node.enqueue(None, "export", details, Operation::Export { request }))
}

/// Whether the request's key may create `uid` (a write to a missing index creates it only then).
fn may_create_index(node: &Node, req: &Request, uid: &str) -> bool {
    let keys = node.state().keys.clone();
    auth::check_action(node.master_key.as_deref(), &keys, req.authorization.as_deref(), "indexes.create", Some(uid))
        .is_ok()
}

// ---- keys ----

/// The `/keys` routes need a master key on the node (Meilisearch answers `missing_master_key`).
fn authorize_keys(node: &Node, req: &Request) -> Result<String, ApiError> {
    let Some(master) = node.master_key.clone() else {
        return Err(ApiError::new(
            401,
            "missing_master_key",
            "auth",
            "Meilisearch is running without a master key. To access this API endpoint, you must have set a master key at launch.",
        ));
    };
    authorize(node, req)?;
    Ok(master)
}

fn key_not_found(k: &str) -> ApiError {
    ApiError::new(404, "api_key_not_found", "invalid_request", format!("API key `{k}` not found."))
}

fn create_key(node: &Node, req: &Request) -> Handled {
    let master = authorize_keys(node, req)?;
    let body = json_body(req)?;
    let mut st = node.state();
    let key = auth::create_key(&master, &st.keys, &body)?;
    let view = key.view();
    st.keys.push(key);
    Ok(Reply::json(201, view))
}

fn list_keys(node: &Node, req: &Request) -> Handled {
    authorize_keys(node, req)?;
    let offset = number_param(req, "offset", "invalid_api_key_offset", 0)? as usize;
    let limit = number_param(req, "limit", "invalid_api_key_limit", 20)? as usize;
    let st = node.state();
    let mut keys: Vec<&auth::ApiKey> = st.keys.iter().collect();
    // Newest first; the stable sort keeps creation order among equal timestamps.
    keys.sort_by_key(|k| std::cmp::Reverse(k.created_at));
    let results: Vec<Value> = keys.iter().skip(offset).take(limit).map(|k| k.view()).collect();
    Ok(Reply::json(200, json!({"results": results, "offset": offset, "limit": limit, "total": keys.len()})))
}

fn one_key(node: &Node, req: &Request, id: &str) -> Handled {
    authorize_keys(node, req)?;
    let body = if req.method == "PATCH" { Some(json_body(req)?) } else { None };
    let mut st = node.state();
    let pos = st
        .keys
        .iter()
        .position(|k| k.key == id || k.uid == id.to_ascii_lowercase())
        .ok_or_else(|| key_not_found(id))?;
    match req.method.as_str() {
        "GET" => Ok(Reply::json(200, st.keys[pos].view())),
        "PATCH" => {
            let key = &mut st.keys[pos];
            auth::update_key(key, &body.unwrap_or(Value::Null))?;
            Ok(Reply::json(200, key.view()))
        }
        _ => {
            st.keys.remove(pos);
            Ok(Reply::empty(204))
        }
    }
}

/// `[A-Za-z0-9_-]`, 1..=400 bytes (the message says 512; reference §6.1).
pub fn check_index_uid(uid: &str) -> Result<(), ApiError> {
    let ok =
        !uid.is_empty() && uid.len() <= 400 && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_index_uid(uid))
    }
}

const JSON_ONLY: &str = "`application/json`";
const DOCUMENT_TYPES: &str = "`application/json`, `application/x-ndjson`, `text/csv`";

/// Content-Type and payload checks of actix's JsonConfig as Meilisearch configures it.
fn json_body(req: &Request) -> Result<Value, ApiError> {
    check_content_type(req, &["application/json"], JSON_ONLY)?;
    parse_payload(&req.body)
}

fn check_content_type(req: &Request, accepted: &[&str], listed: &str) -> Result<String, ApiError> {
    let Some(ct) = req.content_type.as_deref() else {
        return Err(ApiError::new(
            415,
            "missing_content_type",
            "invalid_request",
            format!("A Content-Type header is missing. Accepted values for the Content-Type header are: {listed}"),
        ));
    };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if accepted.contains(&essence.as_str()) {
        Ok(essence)
    } else {
        Err(ApiError::new(
            415,
            "invalid_content_type",
            "invalid_request",
            format!("The Content-Type `{ct}` is invalid. Accepted values for the Content-Type header are: {listed}"),
        ))
    }
}

fn parse_payload(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::invalid("missing_payload", "A json payload is missing."));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid("malformed_payload", format!("The json payload provided is malformed. `{e}`.")))
}

fn with_index<T>(node: &Node, uid: &str, f: impl FnOnce(&crate::node::Index) -> T) -> Result<T, ApiError> {
    let st = node.state();
    st.indexes.get(uid).map(f).ok_or_else(|| ApiError::index_not_found(uid))
}

fn accepted(summary: Value) -> Handled {
    Ok(Reply::json(202, summary))
}

// ---- settings ----

fn get_settings(node: &Node, req: &Request, uid: &str, key: Option<&str>) -> Handled {
    authorize(node, req)?;
    check_index_uid(uid)?;
    let body = with_index(node, uid, |i| match key {
        None => i.settings.view(),
        Some(k) => i.settings.view_key(k),
    })?;
    Ok(Reply::json(200, body))
}

fn update_settings(node: &Node, req: &Request, uid: &str, key: Option<&str>) -> Handled {
    authorize(node, req)?;
    reject_settings_fault(node)?;
    let body = json_body(req)?;
    let update = match key {
        None => settings::parse_whole(&body)?,
        Some(k) => settings::parse_sub(k, &body)?,
    };
    check_index_uid(uid)?;
    let allow = may_create_index(node, req, uid);
    accepted(enqueue_settings(node, uid, update, false, allow))
}

fn delete_settings(node: &Node, req: &Request, uid: &str, key: Option<&str>) -> Handled {
    authorize(node, req)?;
    reject_settings_fault(node)?;
    check_index_uid(uid)?;
    let update = match key {
        None => Update::cleared(),
        Some(k) => Update::reset(k),
    };
    accepted(enqueue_settings(node, uid, update, true, false))
}

fn reject_settings_fault(node: &Node) -> Result<(), ApiError> {
    match node.state().faults.reject_settings.clone() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Enqueues a settingsUpdate task, snapshotting the task-level faults now.
pub fn enqueue_settings(
    node: &Node,
    uid: &str,
    update: Update,
    is_deletion: bool,
    allow_index_creation: bool,
) -> Value {
    let (dropped, apply_different, fail_with) = {
        let mut st = node.state();
        let fail_with = st.faults.fail_tasks.clone();
        let apply_different = st.faults.apply_different.as_ref().map(|(_, u)| u.clone());
        let dropped = fail_with.is_none() && st.faults.take_drop();
        (dropped, apply_different, fail_with)
    };
    let details = update.details();
    let op = Operation::Settings { update, is_deletion, dropped, apply_different, fail_with, allow_index_creation };
    node.enqueue(Some(uid), "settingsUpdate", details, op)
}

// ---- tasks ----

fn get_task(node: &Node, req: &Request, uid: &str) -> Handled {
    let scope = authorize(node, req)?;
    let n: u32 = uid.parse().map_err(|_| {
        ApiError::invalid(
            "invalid_task_uids",
            format!("Invalid value in parameter `taskUid`: could not parse `{uid}` as a positive integer"),
        )
    })?;
    let st = node.state();
    match st.tasks.get(n as usize).filter(|t| !t.deleted && scope.covers(t.index_uid.as_deref())) {
        Some(t) => Ok(Reply::json(200, t.view())),
        None => Err(ApiError::new(404, "task_not_found", "invalid_request", format!("Task `{n}` not found."))),
    }
}

fn list_param(req: &Request, name: &str) -> Option<Vec<String>> {
    req.param(name).map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
}

fn number_param(req: &Request, name: &str, code: &str, default: u64) -> Result<u64, ApiError> {
    match req.param(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            ApiError::invalid(
                code,
                format!("Invalid value in parameter `{name}`: could not parse `{v}` as a positive integer"),
            )
        }),
    }
}

fn list_tasks(node: &Node, req: &Request) -> Handled {
    let scope = authorize(node, req)?;
    let limit = number_param(req, "limit", "invalid_task_limit", 20)? as usize;
    let from = match req.param("from") {
        None => None,
        Some(_) => Some(number_param(req, "from", "invalid_task_from", 0)? as u32),
    };
    let filter = TaskFilter::from_query(&req.query)?;
    let reverse = req.param("reverse") == Some("true");
    let st = node.state();
    let ordered: Box<dyn Iterator<Item = &crate::tasks::Task>> =
        if reverse { Box::new(st.tasks.iter()) } else { Box::new(st.tasks.iter().rev()) };
    let matching: Vec<_> =
        ordered.filter(|t| !t.deleted && scope.covers(t.index_uid.as_deref()) && filter.matches(t)).collect();
    let total = matching.len();
    let page: Vec<_> = matching
        .iter()
        .filter(|t| from.is_none_or(|f| if reverse { t.uid >= f } else { t.uid <= f }))
        .take(limit.saturating_add(1))
        .collect();
    let next = if page.len() > limit { page.last().map(|t| t.uid) } else { None };
    let results: Vec<Value> = page.iter().take(limit).map(|t| t.view()).collect();
    let first = page.first().map(|t| t.uid);
    Ok(Reply::json(200, json!({"results": results, "total": total, "limit": limit, "from": first, "next": next})))
}

/// `POST /tasks/cancel` and `DELETE /tasks`: a task acting on this node's own task uids that match
/// the filter now (at least one filter is required).
fn cancel_or_delete_tasks(node: &Node, req: &Request, cancel: bool) -> Handled {
    authorize(node, req)?;
    let verb = if cancel { "cancel" } else { "delete" };
    if let Some((unknown, _)) = req.query.iter().find(|(k, _)| !FILTER_PARAMS.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            "bad_request",
            format!(
                "Unknown parameter `{unknown}`: expected one of {}",
                FILTER_PARAMS.iter().map(|p| format!("`{p}`")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let filter = TaskFilter::from_query(&req.query)?;
    if req.query.is_empty() {
        return Err(ApiError::invalid(
            "missing_task_filters",
            format!("Query parameters to filter the tasks to {verb} are missing. Available query parameters are: `uids`, `indexUids`, `statuses`, `types`, `canceledBy`, `beforeEnqueuedAt`, `afterEnqueuedAt`, `beforeStartedAt`, `afterStartedAt`, `beforeFinishedAt`, `afterFinishedAt`."),
        ));
    }
    let matched: Vec<u32> = {
        let st = node.state();
        st.tasks.iter().filter(|t| !t.deleted && filter.matches(t)).map(|t| t.uid).collect()
    };
    let original = format!("?{}", req.raw_query);
    let summary = if cancel {
        let details = json!({"matchedTasks": matched.len(), "canceledTasks": null, "originalFilter": original});
        let summary =
            node.enqueue(None, "taskCancelation", details, Operation::TaskCancelation { matched: matched.clone() });
        node.abort_processing(&matched);
        summary
    } else {
        let details = json!({"matchedTasks": matched.len(), "deletedTasks": null, "originalFilter": original});
        node.enqueue(None, "taskDeletion", details, Operation::TaskDeletion { matched })
    };
    accepted(summary)
}

/// One batch per processed task (no autobatching); the tasks a cancelation canceled share its batch.
fn batch_views(st: &crate::node::NodeState) -> Vec<Value> {
    let mut by_batch: std::collections::BTreeMap<u32, Vec<&crate::tasks::Task>> = Default::default();
    for t in st.tasks.iter().filter(|t| !t.deleted) {
        if let Some(b) = t.batch_uid {
            by_batch.entry(b).or_default().push(t);
        }
    }
    by_batch
        .into_iter()
        .filter_map(|(uid, tasks)| {
            let main = tasks.iter().find(|t| t.started_at.is_some()).or(tasks.first())?;
            let mut status = Map::new();
            let mut types = Map::new();
            let mut index_uids = Map::new();
            for t in &tasks {
                let bump = |m: &mut Map<String, Value>, k: &str| {
                    let n = m.get(k).and_then(Value::as_u64).unwrap_or(0);
                    m.insert(k.to_string(), json!(n + 1));
                };
                bump(&mut status, t.status.as_str());
                bump(&mut types, t.kind);
                if let Some(i) = &t.index_uid {
                    bump(&mut index_uids, i);
                }
            }
            let view = main.view();
            Some(json!({
                "uid": uid,
                "progress": null,
                "details": view.get("details").cloned().unwrap_or(json!({})),
                "stats": {"totalNbTasks": tasks.len(), "status": status, "types": types, "indexUids": index_uids},
                "duration": view["duration"],
                "startedAt": view["startedAt"],
                "finishedAt": view["finishedAt"],
                "batchStrategy": "unspecified",
            }))
        })
        .collect()
}

fn list_batches(node: &Node, req: &Request) -> Handled {
    authorize(node, req)?;
    let limit = number_param(req, "limit", "invalid_batch_limit", 20)? as usize;
    let from = match req.param("from") {
        None => None,
        Some(_) => Some(number_param(req, "from", "invalid_batch_from", 0)?),
    };
    let reverse = req.param("reverse") == Some("true");
    let mut all = batch_views(&node.state());
    if !reverse {
        all.reverse();
    }
    let total = all.len();
    let page: Vec<&Value> = all
        .iter()
        .filter(|b| from.is_none_or(|f| b["uid"].as_u64().is_some_and(|u| if reverse { u >= f } else { u <= f })))
        .take(limit.saturating_add(1))
        .collect();
    let next = if page.len() > limit { page.last().map(|b| b["uid"].clone()) } else { None };
    let first = page.first().map(|b| b["uid"].clone());
    let results: Vec<&Value> = page.into_iter().take(limit).collect();
    Ok(Reply::json(200, json!({"results": results, "total": total, "limit": limit, "from": first, "next": next})))
}

fn get_batch(node: &Node, req: &Request, uid: &str) -> Handled {
    authorize(node, req)?;
    let n: u64 = uid.parse().map_err(|_| {
        ApiError::invalid(
            "invalid_batch_uids",
            format!("Invalid value in parameter `batchUid`: could not parse `{uid}` as a positive integer"),
        )
    })?;
    batch_views(&node.state())
        .into_iter()
        .find(|b| b["uid"] == json!(n))
        .map(|b| Reply::json(200, b))
        .ok_or_else(|| ApiError::new(404, "batch_not_found", "invalid_request", format!("Batch `{n}` not found.")))
}

// ---- indexes ----

fn list_indexes(node: &Node, req: &Request) -> Handled {
    let scope = authorize(node, req)?;
    let offset = number_param(req, "offset", "invalid_index_offset", 0)? as usize;
    let limit = number_param(req, "limit", "invalid_index_limit", 20)? as usize;
    let st = node.state();
    let visible: Vec<_> = st.indexes.values().filter(|i| scope.covers(Some(&i.uid))).collect();
    let results: Vec<Value> = visible.iter().skip(offset).take(limit).map(|i| i.view()).collect();
    Ok(Reply::json(200, json!({"results": results, "offset": offset, "limit": limit, "total": visible.len()})))
}

fn get_index(node: &Node, req: &Request, uid: &str) -> Handled {
    authorize(node, req)?;
    check_index_uid(uid)?;
    Ok(Reply::json(200, with_index(node, uid, |i| i.view())?))
}

fn primary_key_field(obj: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match obj.get("primaryKey") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => At::new("invalid_index_primary_key", ".primaryKey").string(v).map(|s| Some(s.to_string())),
    }
}

fn create_index(node: &Node, req: &Request) -> Handled {
    authorize(node, req)?;
    let body = json_body(req)?;
    let obj = At::new("bad_request", "").object_with(&body, &["uid", "primaryKey"])?;
    let uid = match obj.get("uid") {
        None => return Err(ApiError::invalid("missing_index_uid", "Missing field `uid`")),
        Some(v) => At::new("invalid_index_uid", ".uid").string(v)?.to_string(),
    };
    check_index_uid(&uid)?;
    let pk = primary_key_field(obj)?;
    accepted(node.enqueue(
        Some(&uid),
        "indexCreation",
        json!({"primaryKey": pk}),
        Operation::IndexCreation { primary_key: pk.clone() },
    ))
}

fn update_index(node: &Node, req: &Request, uid: &str) -> Handled {
    authorize(node, req)?;
    let body = json_body(req)?;
    let obj = At::new("bad_request", "").object_with(&body, &["primaryKey", "uid"])?;
    let pk = primary_key_field(obj)?;
    let new_uid = match obj.get("uid") {
        None | Some(Value::Null) => None,
        Some(v) => Some(At::new("invalid_index_uid", ".uid").string(v)?.to_string()),
    };
    check_index_uid(uid)?;
    if let Some(new) = &new_uid {
        check_index_uid(new)?;
    }
    let mut details = Map::new();
    details.insert("primaryKey".into(), json!(pk));
    if let Some(new) = &new_uid {
        details.insert("oldIndexUid".into(), json!(uid));
        details.insert("newIndexUid".into(), json!(new));
    }
    accepted(node.enqueue(
        Some(uid),
        "indexUpdate",
        Value::Object(details),
        Operation::IndexUpdate { primary_key: pk.clone(), new_uid },
    ))
}

/// `POST /swap-indexes`: `[{indexes: [a, b], rename?}]`, one `indexSwap` task for all.
fn swap_indexes(node: &Node, req: &Request) -> Handled {
    authorize(node, req)?;
    let body = json_body(req)?;
    let items = At::new("bad_request", "").array(&body)?;
    let mut swaps = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = At::new("bad_request", format!("[{i}]"));
        let obj = at.object_with(item, &["indexes", "rename"])?;
        let names = match obj.get("indexes") {
            None => {
                return Err(ApiError::invalid(
                    "missing_swap_indexes",
                    format!("Missing field `indexes` inside `[{i}]`"),
                ))
            }
            Some(v) => At::new("invalid_swap_indexes", format!("[{i}].indexes")).strings(v)?,
        };
        let rename = match obj.get("rename") {
            None | Some(Value::Null) => false,
            Some(v) => At::new("invalid_swap_rename", format!("[{i}].rename")).boolean(v)?,
        };
        let [a, b] = names.as_slice() else {
            return Err(ApiError::invalid(
                "invalid_swap_indexes",
                format!(
                    "Two indexes must be given for each swap. The list `[{}]` contains {} indexes.",
                    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", "),
                    names.len()
                ),
            ));
        };
        for name in [a, b] {
            check_index_uid(name)?;
            if seen.contains(name) {
                return Err(ApiError::invalid(
                    "invalid_swap_duplicate_index_found",
                    format!("Indexes must be declared only once during a swap. `{name}` was specified several times."),
                ));
            }
            seen.push(name.clone());
        }
        swaps.push((a.clone(), b.clone(), rename));
    }
    let details: Vec<Value> = swaps.iter().map(|(a, b, r)| json!({"indexes": [a, b], "rename": r})).collect();
    accepted(node.enqueue(None, "indexSwap", json!({"swaps": details}), Operation::IndexSwap { swaps }))
}

fn delete_index(node: &Node, req: &Request, uid: &str) -> Handled {
    authorize(node, req)?;
    check_index_uid(uid)?;
    accepted(node.enqueue(Some(uid), "indexDeletion", json!({"deletedDocuments": null}), Operation::IndexDeletion))
}

fn is_indexing(node: &Node, uid: &str) -> bool {
    let st = node.state();
    st.tasks
        .iter()
        .any(|t| t.index_uid.as_deref() == Some(uid) && matches!(t.status, Status::Enqueued | Status::Processing))
}

fn field_distribution(index: &crate::node::Index) -> Value {
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for doc in index.documents.values() {
        for k in doc.as_object().into_iter().flat_map(|o| o.keys()) {
            *counts.entry(k.clone()).or_default() += 1;
        }
    }
    json!(counts)
}

fn index_stats(node: &Node, req: &Request, uid: &str) -> Handled {
    authorize(node, req)?;
    check_index_uid(uid)?;
    let (docs, distribution) = with_index(node, uid, |i| (i.documents.len(), field_distribution(i)))?;
    let indexing = is_indexing(node, uid);
    Ok(Reply::json(200, json!({"numberOfDocuments": docs, "isIndexing": indexing, "fieldDistribution": distribution})))
}

fn global_stats(node: &Node, req: &Request) -> Handled {
    authorize(node, req)?;
    let snapshot: Vec<(String, usize, Value)> = {
        let st = node.state();
        st.indexes.values().map(|i| (i.uid.clone(), i.documents.len(), field_distribution(i))).collect()
    };
    let last_update = {
        let st = node.state();
        st.tasks.iter().filter_map(|t| t.finished_at).max().map(crate::timefmt::rfc3339)
    };
    let mut indexes = Map::new();
    for (uid, docs, distribution) in snapshot {
        let indexing = is_indexing(node, &uid);
        indexes
            .insert(uid, json!({"numberOfDocuments": docs, "isIndexing": indexing, "fieldDistribution": distribution}));
    }
    Ok(Reply::json(
        200,
        json!({"databaseSize": 0, "usedDatabaseSize": 0, "lastUpdate": last_update, "indexes": indexes}),
    ))
}

// ---- documents and search ----

fn add_documents(node: &Node, req: &Request, uid: &str, replace: bool) -> Handled {
    authorize(node, req)?;
    let essence = check_content_type(req, &["application/json", "application/x-ndjson", "text/csv"], DOCUMENT_TYPES)?;
    let delimiter = match req.param("csvDelimiter") {
        None => b',',
        Some(d) if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
        Some(d) => {
            return Err(ApiError::invalid(
                "invalid_document_csv_delimiter",
                format!("Invalid value in parameter `csvDelimiter`: expected a string of one character, but found the following string of {} characters: `{d}`", d.chars().count()),
            ))
        }
    };
    if req.param("csvDelimiter").is_some() && essence != "text/csv" {
        return Err(ApiError::invalid(
            "invalid_document_csv_delimiter",
            "The Content-Type `application/json` does not support the use of a csv delimiter. The csv delimiter can only be used with the Content-Type `text/csv`.",
        ));
    }
    if req.body.is_empty() {
        let format = match essence.as_str() {
            "text/csv" => "csv",
            "application/x-ndjson" => "ndjson",
            _ => "json",
        };
        return Err(ApiError::invalid("missing_payload", format!("A {format} payload is missing.")));
    }
    let values: Vec<Value> = if essence == "text/csv" {
        documents::parse_csv(&String::from_utf8_lossy(&req.body), delimiter)?.into_iter().map(Value::Object).collect()
    } else if essence == "application/x-ndjson" {
        let text = String::from_utf8_lossy(&req.body);
        let mut out = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            out.push(parse_payload(line.as_bytes())?);
        }
        out
    } else {
        match parse_payload(&req.body)? {
            Value::Array(items) => items,
            other => vec![other],
        }
    };
    let mut docs = Vec::with_capacity(values.len());
    for v in values {
        match v {
            Value::Object(m) => docs.push(m),
            other => {
                return Err(ApiError::invalid(
                    "malformed_payload",
                    format!("The `json` payload provided is malformed. `Couldn't serialize document value: invalid type: {other}, expected a map`."),
                ))
            }
        }
    }
    check_index_uid(uid)?;
    let pk = req.param("primaryKey").map(str::to_string);
    let kind = "documentAdditionOrUpdate";
    let details = json!({"receivedDocuments": docs.len(), "indexedDocuments": null});
    accepted(node.enqueue(
        Some(uid),
        kind,
        details,
        Operation::DocumentAddition {
            documents: docs,
            primary_key: pk,
            replace,
            allow_index_creation: may_create_index(node, req, uid),
        },
    ))
}

fn fields_param(req: &Request) -> Option<Vec<String>> {
    list_param(req, "fields")
}

fn list_documents(node: &Node, req: &Request, uid: &str) -> Handled {
    authorize(node, req)?;
    check_index_uid(uid)?;
    let offset = number_param(req, "offset", "invalid_document_offset", 0)? as usize;
    let limit = number_param(req, "limit", "invalid_document_limit", 20)? as usize;
    let fields = fields_param(req);
    let ids = list_param(req, "ids");
    let filter = match req.param("filter") {
        None | Some("") => None,
        Some(text) => Some((text.to_string(), documents::Filter::parse(text)?)),
    };
    documents_page(node, uid, offset, limit, fields, ids, filter)
}

/// One page of documents (GET list and POST fetch): optional ids, filter and field projection.
fn documents_page(
    node: &Node,
    uid: &str,
    offset: usize,
    limit: usize,
    fields: Option<Vec<String>>,
    ids: Option<Vec<String>>,
    filter: Option<(String, documents::Filter)>,
) -> Handled {
    let body = with_index(node, uid, |i| {
        if let Some((text, f)) = &filter {
            if let Some(field) = f.fields().into_iter().find(|field| !documents::is_filterable(i, field)) {
                return Err(documents::not_filterable(i, field, text));
            }
        }
        let matching: Vec<&Value> = i
            .documents
            .iter()
            .filter(|(id, _)| ids.as_ref().is_none_or(|ids| ids.contains(id)))
            .filter(|(_, d)| filter.as_ref().is_none_or(|(_, f)| f.matches(d)))
            .map(|(_, d)| d)
            .collect();
        let results: Vec<Value> =
            matching.iter().skip(offset).take(limit).map(|d| documents::project(d, fields.as_deref())).collect();
        Ok(json!({"results": results, "offset": offset, "limit": limit, "total": matching.len()}))
    })??;
    Ok(Reply::json(200, body))
}

fn get_document(node: &Node, req: &Request, uid: &str, id: &str) -> Handled {
    authorize(node, req)?;
    check_index_uid(uid)?;
    let fields = fields_param(req);
    let doc = with_index(node, uid, |i| i.documents.get(id).cloned())?;
    match doc {
        Some(d) => Ok(Reply::json(200, documents::project(&d, fields.as_deref()))),
        None => Err(ApiError::new(404, "document_not_found", "invalid_request", format!("Document `{id}` not found."))),
    }
}

fn delete_document(node: &Node, req: &Request, uid: &str, id: &str) -> Handled {
    authorize(node, req)?;
    check_index_uid(uid)?;
    let details = json!({"providedIds": 1, "deletedDocuments": null});
    accepted(node.enqueue(
        Some(uid),
        "documentDeletion",
        details,
        Operation::DocumentDeletion { ids: vec![id.to_string()] },
    ))
}

fn delete_batch(node: &Node, req: &Request, uid: &str) -> Handled {
    authorize(node, req)?;
    let body = json_body(req)?;
    let items = At::new("bad_request", "").array(&body)?;
    let ids: Vec<String> = items
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    check_index_uid(uid)?;
    let details = json!({"providedIds": ids.len(), "deletedDocuments": null});
    accepted(node.enqueue(Some(uid), "documentDeletion", details, Operation::DocumentDeletion { ids }))
}

fn delete_by_filter(node: &Node, req: &Request, uid: &str) -> Handled {
    authorize(node, req)?;
    let body = json_body(req)?;
    let obj = At::new("bad_request", "").object_with(&body, &["filter"])?;
    let (filter, original) = match obj.get("filter") {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid("missing_document_filter", "Missing field `filter`"));
        }
        Some(v) => (crate::filter::expression(v)?, v.to_string()),
    };
    documents::Filter::parse(&filter)?;
    check_index_uid(uid)?;
    let details = json!({"providedIds": 0, "deletedDocuments": null, "originalFilter": original});
    accepted(node.enqueue(
        Some(uid),
        "documentDeletion",
        details,
        Operation::DocumentDeletionByFilter { filter, original },
    ))
}

/// `POST /indexes/{uid}/documents/fetch`: `{offset, limit, fields, ids, filter}`.
fn fetch_documents(node: &Node, req: &Request, uid: &str) -> Handled {
    authorize(node, req)?;
    let body = json_body(req)?;
    let obj = At::new("bad_request", "")
        .object_with(&body, &["offset", "limit", "fields", "ids", "filter", "retrieveVectors", "sort"])?;
    let num = |name: &str, code: &'static str, default: u64| -> Result<u64, ApiError> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => At::new(code, format!(".{name}")).positive_integer(v),
        }
    };
    let offset = num("offset", "invalid_document_offset", 0)? as usize;
    let limit = num("limit", "invalid_document_limit", 20)? as usize;
    let fields = match obj.get("fields") {
        None | Some(Value::Null) => None,
        Some(v) => Some(At::new("invalid_document_fields", ".fields").strings(v)?),
    };
    let ids: Option<Vec<String>> = match obj.get("ids") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            At::new("invalid_document_ids", ".ids")
                .array(v)?
                .iter()
                .map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string()))
                .collect(),
        ),
    };
    let filter = match obj.get("filter") {
        None | Some(Value::Null) => None,
        Some(v) => {
            let text = crate::filter::expression(v)?;
            let parsed = documents::Filter::parse(&text)?;
            Some((text, parsed))
        }
    };
    check_index_uid(uid)?;
    documents_page(node, uid, offset, limit, fields, ids, filter)
}

fn clear_documents(node: &Node, req: &Request, uid: &str) -> Handled {
    authorize(node, req)?;
    check_index_uid(uid)?;
    accepted(node.enqueue(Some(uid), "documentDeletion", json!({"deletedDocuments": null}), Operation::DocumentClear))
}

fn search(node: &Node, req: &Request, uid: &str) -> Handled {
    let started = Instant::now();
    authorize(node, req)?;
    let (q, offset, limit, retrieve) = if req.method == "POST" {
        let body = json_body(req)?;
        let at = At::new("bad_request", "");
        let obj = at.object(&body)?;
        let q = match obj.get("q") {
            None | Some(Value::Null) => String::new(),
            Some(v) => At::new("invalid_search_q", ".q").string(v)?.to_string(),
        };
        let num = |name: &str, code: &'static str, default: u64| -> Result<u64, ApiError> {
            match obj.get(name) {
                None | Some(Value::Null) => Ok(default),
                Some(v) => At::new(code, format!(".{name}")).positive_integer(v),
            }
        };
        let retrieve = match obj.get("attributesToRetrieve") {
            None | Some(Value::Null) => None,
            Some(v) => Some(At::new("invalid_search_attributes_to_retrieve", ".attributesToRetrieve").strings(v)?),
        };
        (q, num("offset", "invalid_search_offset", 0)?, num("limit", "invalid_search_limit", 20)?, retrieve)
    } else {
        (
            req.param("q").unwrap_or("").to_string(),
            number_param(req, "offset", "invalid_search_offset", 0)?,
            number_param(req, "limit", "invalid_search_limit", 20)?,
            list_param(req, "attributesToRetrieve"),
        )
    };
    check_index_uid(uid)?;
    let body = with_index(node, uid, |i| {
        documents::search(i, &q, offset as usize, limit as usize, retrieve.as_deref(), started)
    })?;
    Ok(Reply::json(200, body))
}
