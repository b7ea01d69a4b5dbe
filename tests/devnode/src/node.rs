//! One emulated Meilisearch node: its indexes, task queue, faults and request log, plus the task
//! worker that processes the queue one task at a time in uid order (like the scheduler, without
//! autobatching).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};
use tokio::sync::{watch, Notify};

use crate::documents;
use crate::errors::ApiError;
use crate::faults::Faults;
use crate::settings::{self, Settings};
use crate::tasks::{Operation, Status, Task};

/// Most recent requests kept per node for the control API.
const REQUEST_LOG_CAP: usize = 10_000;

#[derive(Clone, Debug)]
pub struct Index {
    pub uid: String,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    pub primary_key: Option<String>,
    pub settings: Settings,
    /// Documents by external id, in insertion order.
    pub documents: Map<String, Value>,
}

impl Index {
    pub fn new(uid: &str, primary_key: Option<String>) -> Index {
        let now = SystemTime::now();
        Index {
            uid: uid.to_string(),
            created_at: now,
            updated_at: now,
            primary_key,
            settings: Settings::default(),
            documents: Map::new(),
        }
    }

    pub fn view(&self) -> Value {
        json!({
            "uid": self.uid,
            "createdAt": crate::timefmt::rfc3339(self.created_at),
            "updatedAt": crate::timefmt::rfc3339(self.updated_at),
            "primaryKey": self.primary_key,
        })
    }
}

/// Connection-level state the listeners watch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Liveness {
    pub down: bool,
    pub hang: bool,
}

#[derive(Debug, Default)]
pub struct NodeState {
    pub indexes: BTreeMap<String, Index>,
    pub tasks: Vec<Task>,
    pub queue: VecDeque<u32>,
    pub next_batch_uid: u32,
    pub faults: Faults,
    pub requests: VecDeque<Value>,
    /// API keys (the default ones when the node has a master key, then those created).
    pub keys: Vec<crate::auth::ApiKey>,
    /// The processing task a just-enqueued cancelation matched: it stops and stays `processing`
    /// until the cancelation (which runs next) cancels it, as the scheduler aborts a batch.
    pub abort_task: Option<u32>,
}

pub struct Node {
    pub id: String,
    pub master_key: Option<String>,
    default_task_ms: u64,
    state: Mutex<NodeState>,
    wake_worker: Notify,
    /// Wakes the worker out of a task's processing time when a cancelation targets that task.
    abort_worker: Notify,
    liveness: watch::Sender<Liveness>,
    /// Whether the node's listener is currently bound (maintained by the listener task), so the
    /// control API can answer a `down` change only once it has taken effect.
    listening: watch::Sender<bool>,
}

impl Node {
    pub fn new(id: String, master_key: Option<String>, default_task_ms: u64) -> Arc<Node> {
        let keys = master_key.as_deref().map(crate::auth::default_keys).unwrap_or_default();
        Arc::new(Node {
            id,
            master_key,
            default_task_ms,
            state: Mutex::new(NodeState { keys, ..NodeState::default() }),
            wake_worker: Notify::new(),
            abort_worker: Notify::new(),
            liveness: watch::channel(Liveness::default()).0,
            listening: watch::channel(false).0,
        })
    }

    pub fn state(&self) -> MutexGuard<'_, NodeState> {
        // A panic while holding the lock is a bug in the emulator; keep serving anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn liveness(&self) -> watch::Receiver<Liveness> {
        self.liveness.subscribe()
    }

    /// Replaces the fault set and tells listeners and hanging requests about it.
    pub fn set_faults(&self, faults: Faults) {
        let live = Liveness { down: faults.down, hang: faults.hang };
        self.state().faults = faults;
        self.liveness.send_replace(live);
        self.wake_worker.notify_one();
    }

    pub fn set_listening(&self, bound: bool) {
        self.listening.send_replace(bound);
    }

    /// Waits (bounded) until the listener state matches the `down` fault.
    pub async fn settle_listener(&self) {
        let want_bound = !self.state().faults.down;
        let mut rx = self.listening.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|b| *b == want_bound)).await;
    }

    pub fn faults(&self) -> Faults {
        self.state().faults.clone()
    }

    pub fn log_request(&self, entry: Value) {
        let mut st = self.state();
        if st.requests.len() >= REQUEST_LOG_CAP {
            st.requests.pop_front();
        }
        st.requests.push_back(entry);
    }

    /// Registers a task and wakes the worker; returns the 202 summary.
    pub fn enqueue(&self, index_uid: Option<&str>, kind: &'static str, details: Value, operation: Operation) -> Value {
        let summary = {
            let mut st = self.state();
            let uid = st.tasks.len() as u32;
            let injected_failure = match kind {
                "taskCancelation" | "taskDeletion" => None,
                _ => st.faults.fail_all_tasks.clone(),
            };
            let task = Task {
                uid,
                batch_uid: None,
                index_uid: index_uid.map(str::to_string),
                status: Status::Enqueued,
                kind,
                details,
                error: None,
                enqueued_at: SystemTime::now(),
                started_at: None,
                finished_at: None,
                operation,
                canceled_by: None,
                deleted: false,
                injected_failure,
            };
            let summary = task.summary();
            st.tasks.push(task);
            st.queue.push_back(uid);
            summary
        };
        self.wake_worker.notify_one();
        summary
    }

    /// Called after enqueuing a cancelation: if it matched the task being processed, that task
    /// is interrupted.
    pub fn abort_processing(&self, matched: &[u32]) {
        let mut st = self.state();
        let processing =
            st.tasks.iter().find(|t| t.status == Status::Processing && t.kind != "taskCancelation").map(|t| t.uid);
        if let Some(uid) = processing.filter(|u| matched.contains(u)) {
            st.abort_task = Some(uid);
            drop(st);
            self.abort_worker.notify_one();
        }
    }

    /// Processes the queue forever: one task at a time, `task_ms` in `processing` each.
    pub async fn run_worker(self: Arc<Self>) {
        loop {
            let next = {
                let mut st = self.state();
                // Like the scheduler: cancelations first, then deletions, then exports, then the
                // rest in uid order.
                let kind_at = |st: &NodeState, kind: &str| {
                    st.queue.iter().position(|u| st.tasks.get(*u as usize).is_some_and(|t| t.kind == kind))
                };
                let pos = kind_at(&st, "taskCancelation")
                    .or_else(|| kind_at(&st, "taskDeletion"))
                    .or_else(|| kind_at(&st, "export"))
                    .unwrap_or(0);
                match st.queue.remove(pos) {
                    Some(uid) => {
                        let batch = st.next_batch_uid;
                        st.next_batch_uid += 1;
                        let task_ms = st.faults.task_ms.unwrap_or(self.default_task_ms);
                        if let Some(t) = st.tasks.get_mut(uid as usize) {
                            t.status = Status::Processing;
                            t.batch_uid = Some(batch);
                            t.started_at = Some(SystemTime::now());
                        }
                        Some((uid, task_ms))
                    }
                    None => None,
                }
            };
            let Some((uid, task_ms)) = next else {
                self.wake_worker.notified().await;
                continue;
            };
            if task_ms > 0 {
                let done = tokio::time::sleep(Duration::from_millis(task_ms));
                tokio::pin!(done);
                loop {
                    tokio::select! {
                        _ = &mut done => break,
                        _ = self.abort_worker.notified() => {
                            if self.state().abort_task == Some(uid) {
                                break;
                            }
                        }
                    }
                }
            }
            {
                let mut st = self.state();
                if st.abort_task == Some(uid) {
                    // Left `processing`; the cancelation queued first cancels it.
                    st.abort_task = None;
                    continue;
                }
            }
            let export = {
                let st = self.state();
                match st.tasks.get(uid as usize).map(|t| (&t.operation, &t.injected_failure)) {
                    Some((Operation::Export { request }, None)) => {
                        Some((request.clone(), crate::export::plan(&st.indexes, request)))
                    }
                    _ => None,
                }
            };
            // An export talks to another node: no lock held while it does.
            let exported = match export {
                Some((request, Ok(plans))) => Some(crate::export::run(&request, &plans).await),
                Some((_, Err(e))) => Some(Err(e)),
                None => None,
            };
            let mut st = self.state();
            let Some(task) = st.tasks.get(uid as usize).cloned() else {
                continue;
            };
            let settings_fault = matches!(&task.operation, Operation::Settings { fail_with: Some(_), .. });
            let (details, result) = match (&task.operation, &task.injected_failure) {
                (_, Some(e)) if !settings_fault => {
                    let e = match &task.index_uid {
                        Some(index) => engine_error(index, e.clone()),
                        None => e.clone(),
                    };
                    (None, Err(e))
                }
                _ => match &task.operation {
                    Operation::IndexSwap { swaps } => (None, swap(&mut st, uid, swaps)),
                    Operation::Export { .. } => (None, exported.unwrap_or(Ok(()))),
                    Operation::TaskCancelation { matched } => cancel_tasks(&mut st, uid, matched),
                    Operation::TaskDeletion { matched } => delete_tasks(&mut st, uid, matched),
                    _ => execute(&mut st.indexes, &task),
                },
            };
            if let Some(t) = st.tasks.get_mut(uid as usize) {
                if let Some(d) = details {
                    t.details = d;
                }
                t.finished_at = Some(SystemTime::now());
                match result {
                    Ok(()) => t.status = Status::Succeeded,
                    Err(e) => {
                        t.status = Status::Failed;
                        t.error = Some(e);
                    }
                }
            }
        }
    }
}

/// Prefix the engine puts on errors raised while processing an index (`Error::Milli` display).
fn engine_error(index_uid: &str, e: ApiError) -> ApiError {
    ApiError { message: format!("Index `{index_uid}`: {}", e.message), ..e }
}

fn index_already_exists(uid: &str) -> ApiError {
    ApiError::new(409, "index_already_exists", "invalid_request", format!("Index `{uid}` already exists."))
}

/// An `indexSwap` task: every named index must exist (the second one must not when renaming);
/// then the indexes trade places, and so do the index uids of the tasks before it that name
/// them, like the scheduler does (`apply_index_swap` leaves later tasks, enqueued after the
/// swap, on the index their client named).
fn swap(st: &mut NodeState, task_uid: u32, swaps: &[(String, String, bool)]) -> Result<(), ApiError> {
    let mut missing: Vec<&str> = Vec::new();
    for (a, b, rename) in swaps {
        if !st.indexes.contains_key(a) {
            missing.push(a);
        }
        if *rename {
            if st.indexes.contains_key(b) {
                return Err(index_already_exists(b));
            }
        } else if !st.indexes.contains_key(b) {
            missing.push(b);
        }
    }
    match missing.as_slice() {
        [] => {}
        [one] => return Err(ApiError::index_not_found(one)),
        many => {
            return Err(ApiError::new(
                404,
                "index_not_found",
                "invalid_request",
                format!("Indexes {} not found.", many.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")),
            ))
        }
    }
    let now = SystemTime::now();
    for (a, b, rename) in swaps {
        let first = st.indexes.remove(a);
        let second = st.indexes.remove(b);
        for (index, name) in [(first, b), (second, a)] {
            if let Some(mut index) = index {
                index.uid = name.clone();
                index.updated_at = now;
                st.indexes.insert(name.clone(), index);
            }
        }
        for t in st.tasks.iter_mut().filter(|t| t.uid < task_uid) {
            let renamed = match t.index_uid.as_deref() {
                Some(x) if x == a => Some(b.clone()),
                Some(x) if x == b && !rename => Some(a.clone()),
                _ => None,
            };
            if renamed.is_some() {
                t.index_uid = renamed;
            }
        }
    }
    Ok(())
}

/// A taskCancelation: the matched tasks still enqueued are canceled, and so is the one whose
/// processing it interrupted (left `processing`, see `Node::abort_processing`). Their count-like details become 0 as the scheduler
/// does for tasks that did not run.
fn cancel_tasks(st: &mut NodeState, by: u32, matched: &[u32]) -> (Option<Value>, Result<(), ApiError>) {
    let now = SystemTime::now();
    let batch = st.tasks.get(by as usize).and_then(|t| t.batch_uid);
    let mut canceled = 0u64;
    for uid in matched {
        let Some(t) = st.tasks.get_mut(*uid as usize) else { continue };
        if !matches!(t.status, Status::Enqueued | Status::Processing) || t.uid == by {
            continue;
        }
        t.status = Status::Canceled;
        t.canceled_by = Some(by);
        t.batch_uid = batch;
        t.finished_at = Some(now);
        if let Value::Object(details) = &mut t.details {
            for (k, v) in details.iter_mut() {
                if v.is_null() && k != "primaryKey" && k != "originalFilter" {
                    *v = json!(0);
                }
            }
        }
        canceled += 1;
        st.queue.retain(|q| q != uid);
    }
    let details = st.tasks.get(by as usize).map(|t| {
        let mut d = t.details.clone();
        d["canceledTasks"] = json!(canceled);
        d
    });
    (details, Ok(()))
}

/// A taskDeletion: the matched tasks that are finished disappear (enqueued/processing ones stay).
fn delete_tasks(st: &mut NodeState, by: u32, matched: &[u32]) -> (Option<Value>, Result<(), ApiError>) {
    let mut deleted = 0u64;
    for uid in matched {
        let Some(t) = st.tasks.get_mut(*uid as usize) else { continue };
        if matches!(t.status, Status::Succeeded | Status::Failed | Status::Canceled) && !t.deleted {
            t.deleted = true;
            deleted += 1;
        }
    }
    let details = st.tasks.get(by as usize).map(|t| {
        let mut d = t.details.clone();
        d["deletedTasks"] = json!(deleted);
        d
    });
    (details, Ok(()))
}

/// Runs one task against the indexes. Returns updated details (if the outcome changes them)
/// and the result.
fn execute(indexes: &mut BTreeMap<String, Index>, task: &Task) -> (Option<Value>, Result<(), ApiError>) {
    let uid = task.index_uid.clone().unwrap_or_default();
    let now = SystemTime::now();
    match &task.operation {
        Operation::Settings { update, is_deletion, dropped, apply_different, fail_with, allow_index_creation } => {
            if let Some(e) = fail_with {
                return (None, Err(engine_error(&uid, e.clone())));
            }
            if !indexes.contains_key(&uid) {
                if *is_deletion || !allow_index_creation {
                    return (None, Err(ApiError::index_not_found(&uid)));
                }
                indexes.insert(uid.clone(), Index::new(&uid, None));
            }
            let Some(index) = indexes.get_mut(&uid) else {
                return (None, Err(ApiError::index_not_found(&uid)));
            };
            if *dropped {
                return (None, Ok(()));
            }
            let mut next = match settings::apply(&index.settings, update) {
                Ok(s) => s,
                Err(e) => return (None, Err(engine_error(&uid, e))),
            };
            if let Some(extra) = apply_different {
                next = match settings::apply(&next, extra) {
                    Ok(s) => s,
                    Err(e) => return (None, Err(engine_error(&uid, e))),
                };
            }
            index.settings = next;
            index.updated_at = now;
            (None, Ok(()))
        }
        Operation::IndexCreation { primary_key } => {
            if indexes.contains_key(&uid) {
                return (None, Err(index_already_exists(&uid)));
            }
            indexes.insert(uid.clone(), Index::new(&uid, primary_key.clone()));
            (None, Ok(()))
        }
        Operation::IndexUpdate { primary_key, new_uid } => {
            let Some(index) = indexes.get(&uid) else {
                return (None, Err(ApiError::index_not_found(&uid)));
            };
            if let Some(pk) = primary_key {
                if !index.documents.is_empty() && index.primary_key.as_deref() != Some(pk) {
                    return (
                        None,
                        Err(ApiError::invalid(
                            "index_primary_key_already_exists",
                            format!(
                                "Index `{uid}`: Index already has a primary key: `{}`.",
                                index.primary_key.clone().unwrap_or_default()
                            ),
                        )),
                    );
                }
            }
            if let Some(new) = new_uid.as_ref().filter(|n| **n != uid) {
                if indexes.contains_key(new) {
                    return (None, Err(index_already_exists(new)));
                }
            }
            let Some(mut index) = indexes.remove(&uid) else {
                return (None, Err(ApiError::index_not_found(&uid)));
            };
            if let Some(pk) = primary_key {
                index.primary_key = Some(pk.clone());
            }
            index.updated_at = now;
            if let Some(new) = new_uid {
                index.uid = new.clone();
            }
            indexes.insert(index.uid.clone(), index);
            (None, Ok(()))
        }
        Operation::IndexSwap { .. }
        | Operation::TaskCancelation { .. }
        | Operation::TaskDeletion { .. }
        | Operation::Export { .. } => {
            (None, Err(ApiError::internal("this task runs through the worker's own handlers")))
        }
        Operation::IndexDeletion => match indexes.remove(&uid) {
            Some(index) => (Some(json!({"deletedDocuments": index.documents.len()})), Ok(())),
            None => (Some(json!({"deletedDocuments": 0})), Err(ApiError::index_not_found(&uid))),
        },
        Operation::DocumentAddition { documents: docs, primary_key, replace, allow_index_creation } => {
            let received = docs.len();
            if !indexes.contains_key(&uid) && !allow_index_creation {
                let details = json!({"receivedDocuments": received, "indexedDocuments": 0});
                return (Some(details), Err(ApiError::index_not_found(&uid)));
            }
            let index = indexes.entry(uid.clone()).or_insert_with(|| Index::new(&uid, None));
            let result =
                documents::add(index, docs, primary_key.as_deref(), *replace).map_err(|e| engine_error(&uid, e));
            index.updated_at = now;
            let indexed = if result.is_ok() { received } else { 0 };
            (Some(json!({"receivedDocuments": received, "indexedDocuments": indexed})), result)
        }
        Operation::DocumentDeletion { ids } => {
            let Some(index) = indexes.get_mut(&uid) else {
                return (
                    Some(json!({"providedIds": ids.len(), "deletedDocuments": 0})),
                    Err(ApiError::index_not_found(&uid)),
                );
            };
            let deleted = ids.iter().filter(|id| index.documents.shift_remove(id.as_str()).is_some()).count();
            index.updated_at = now;
            (Some(json!({"providedIds": ids.len(), "deletedDocuments": deleted})), Ok(()))
        }
        Operation::DocumentDeletionByFilter { filter, original } => {
            let failed_details = json!({"providedIds": 0, "deletedDocuments": 0, "originalFilter": original});
            let Some(index) = indexes.get_mut(&uid) else {
                return (Some(failed_details), Err(ApiError::index_not_found(&uid)));
            };
            let parsed = match documents::Filter::parse(filter) {
                Ok(f) => f,
                Err(e) => return (Some(failed_details), Err(engine_error(&uid, e))),
            };
            if let Some(field) = parsed.fields().into_iter().find(|f| !documents::is_filterable(index, f)) {
                let e = documents::not_filterable(index, field, filter);
                return (Some(failed_details), Err(engine_error(&uid, e)));
            }
            let before = index.documents.len();
            index.documents.retain(|_, d| !parsed.matches(d));
            index.updated_at = now;
            let deleted = before - index.documents.len();
            (Some(json!({"providedIds": 0, "deletedDocuments": deleted, "originalFilter": original})), Ok(()))
        }
        Operation::DocumentClear => {
            let Some(index) = indexes.get_mut(&uid) else {
                return (Some(json!({"deletedDocuments": 0})), Err(ApiError::index_not_found(&uid)));
            };
            let deleted = index.documents.len();
            index.documents.clear();
            index.updated_at = now;
            (Some(json!({"deletedDocuments": deleted})), Ok(()))
        }
    }
}
