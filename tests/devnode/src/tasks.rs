//! Tasks: what a write enqueues, its lifecycle and its JSON views (reference §5).

use std::time::SystemTime;

use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::settings::Update;
use crate::timefmt::{iso_duration, rfc3339};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Enqueued,
    Processing,
    Succeeded,
    Failed,
    Canceled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Enqueued => "enqueued",
            Status::Processing => "processing",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Canceled => "canceled",
        }
    }
}

/// What the engine does when it processes the task.
#[derive(Clone, Debug)]
pub enum Operation {
    Settings {
        update: Update,
        is_deletion: bool,
        /// Fault snapshot taken at enqueue time: accept but do not apply.
        dropped: bool,
        /// Fault snapshot: extra settings applied after the update.
        apply_different: Option<Update>,
        /// Fault snapshot: fail with this error.
        fail_with: Option<ApiError>,
        /// The request's key may create the index (`indexes.create`); else a missing index fails.
        allow_index_creation: bool,
    },
    IndexCreation {
        primary_key: Option<String>,
    },
    IndexUpdate {
        primary_key: Option<String>,
        /// `uid` of the body: rename the index.
        new_uid: Option<String>,
    },
    /// `(a, b, rename)` for each swap of the request.
    IndexSwap {
        swaps: Vec<(String, String, bool)>,
    },
    IndexDeletion,
    DocumentAddition {
        documents: Vec<Map<String, Value>>,
        primary_key: Option<String>,
        replace: bool,
        /// The request's key may create the index (`indexes.create`); else a missing index fails.
        allow_index_creation: bool,
    },
    DocumentDeletion {
        ids: Vec<String>,
    },
    DocumentDeletionByFilter {
        /// The filter expression (array syntax already joined).
        filter: String,
        /// The request's `filter` as JSON, for `originalFilter`.
        original: String,
    },
    DocumentClear,
    /// The uids the filter matched when the task was enqueued.
    TaskCancelation {
        matched: Vec<u32>,
    },
    TaskDeletion {
        matched: Vec<u32>,
    },
    Export {
        request: crate::export::Request,
    },
}

#[derive(Clone, Debug)]
pub struct Task {
    pub uid: u32,
    pub batch_uid: Option<u32>,
    pub index_uid: Option<String>,
    pub status: Status,
    pub kind: &'static str,
    pub details: Value,
    pub error: Option<ApiError>,
    pub enqueued_at: SystemTime,
    pub started_at: Option<SystemTime>,
    pub finished_at: Option<SystemTime>,
    pub operation: Operation,
    pub canceled_by: Option<u32>,
    /// Deleted by a taskDeletion: no longer listed or found.
    pub deleted: bool,
    /// `fail_all_tasks` fault snapshot taken at enqueue time.
    pub injected_failure: Option<ApiError>,
}

impl Task {
    /// The 202 body of a write (`SummarizedTaskView`).
    pub fn summary(&self) -> Value {
        json!({
            "taskUid": self.uid,
            "indexUid": self.index_uid,
            "status": self.status.as_str(),
            "type": self.kind,
            "enqueuedAt": rfc3339(self.enqueued_at),
        })
    }

    /// GET /tasks/{uid} (`TaskView`, reference §5.2 key order).
    pub fn view(&self) -> Value {
        let ts = |t: Option<SystemTime>| t.map(rfc3339).map(Value::String).unwrap_or(Value::Null);
        let duration = match (self.started_at, self.finished_at) {
            (Some(s), Some(f)) => Value::String(iso_duration(f.duration_since(s).unwrap_or_default())),
            _ => Value::Null,
        };
        let mut out = Map::new();
        out.insert("uid".into(), json!(self.uid));
        out.insert("batchUid".into(), json!(self.batch_uid));
        out.insert("indexUid".into(), json!(self.index_uid));
        out.insert("status".into(), json!(self.status.as_str()));
        out.insert("type".into(), json!(self.kind));
        out.insert("canceledBy".into(), json!(self.canceled_by));
        if !self.details.is_null() {
            out.insert("details".into(), self.details.clone());
        }
        out.insert("error".into(), self.error.as_ref().map(ApiError::body).unwrap_or(Value::Null));
        out.insert("duration".into(), duration);
        out.insert("enqueuedAt".into(), ts(Some(self.enqueued_at)));
        out.insert("startedAt".into(), ts(self.started_at));
        out.insert("finishedAt".into(), ts(self.finished_at));
        Value::Object(out)
    }
}

/// The task filters of `GET /tasks`, `POST /tasks/cancel` and `DELETE /tasks` (and `GET /batches`).
#[derive(Debug, Default)]
pub struct TaskFilter {
    pub uids: Option<Vec<String>>,
    pub batch_uids: Option<Vec<String>>,
    pub statuses: Option<Vec<String>>,
    pub types: Option<Vec<String>>,
    pub index_uids: Option<Vec<String>>,
    pub canceled_by: Option<Vec<String>>,
    /// (field, before?, bound): tasks strictly before / after the bound.
    pub dates: Vec<(DateField, bool, SystemTime)>,
}

#[derive(Clone, Copy, Debug)]
pub enum DateField {
    Enqueued,
    Started,
    Finished,
}

/// Query parameters that are task filters (what cancel/delete require at least one of).
pub const FILTER_PARAMS: [&str; 12] = [
    "uids",
    "batchUids",
    "canceledBy",
    "types",
    "statuses",
    "indexUids",
    "afterEnqueuedAt",
    "beforeEnqueuedAt",
    "afterStartedAt",
    "beforeStartedAt",
    "afterFinishedAt",
    "beforeFinishedAt",
];

/// Task types of Meilisearch v1.50 (what `types` accepts).
const TYPES: [&str; 16] = [
    "documentAdditionOrUpdate",
    "documentEdition",
    "documentDeletion",
    "settingsUpdate",
    "indexCreation",
    "indexDeletion",
    "indexUpdate",
    "indexSwap",
    "taskCancelation",
    "taskDeletion",
    "dumpCreation",
    "snapshotCreation",
    "export",
    "upgradeDatabase",
    "indexCompaction",
    "networkTopologyChange",
];

const STATUSES: [&str; 5] = ["enqueued", "processing", "succeeded", "failed", "canceled"];

fn error_code_for(param: &str) -> String {
    let mut code = String::from("invalid_task_");
    for c in param.chars() {
        if c.is_ascii_uppercase() {
            code.push('_');
            code.push(c.to_ascii_lowercase());
        } else {
            code.push(c);
        }
    }
    code
}

impl TaskFilter {
    /// Builds the filter from query pairs (validated like Meilisearch's task query extractor).
    pub fn from_query(query: &[(String, String)]) -> Result<TaskFilter, ApiError> {
        let mut f = TaskFilter::default();
        for (k, v) in query {
            let list = || v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>();
            match k.as_str() {
                "uids" | "batchUids" | "canceledBy" => {
                    let items = list();
                    if let Some(bad) = items.iter().find(|i| *i != "*" && i.parse::<u32>().is_err()) {
                        let name = if k == "canceledBy" { "canceledBy" } else { k.as_str() };
                        return Err(ApiError::invalid(
                            &error_code_for(if k == "canceledBy" { "canceledBy" } else { k }),
                            format!(
                                "Invalid value in parameter `{name}`: could not parse `{bad}` as a positive integer"
                            ),
                        ));
                    }
                    match k.as_str() {
                        "uids" => f.uids = Some(items),
                        "batchUids" => f.batch_uids = Some(items),
                        _ => f.canceled_by = Some(items),
                    }
                }
                "statuses" => {
                    let items = list();
                    if let Some(bad) = items.iter().find(|s| *s != "*" && !STATUSES.contains(&s.as_str())) {
                        return Err(ApiError::invalid(
                            "invalid_task_statuses",
                            format!("Invalid value in parameter `statuses`: `{bad}` is not a valid task status. Available statuses are `enqueued`, `processing`, `succeeded`, `failed`, `canceled`."),
                        ));
                    }
                    f.statuses = Some(items);
                }
                "types" => {
                    let items = list();
                    if let Some(bad) = items.iter().find(|t| *t != "*" && !TYPES.contains(&t.as_str())) {
                        return Err(ApiError::invalid(
                            "invalid_task_types",
                            format!(
                                "Invalid value in parameter `types`: `{bad}` is not a valid task type. Available types are {}.",
                                TYPES.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    }
                    f.types = Some(items);
                }
                "indexUids" => f.index_uids = Some(list()),
                name if name.ends_with("At") && FILTER_PARAMS.contains(&name) => {
                    let before = name.starts_with("before");
                    let field = if name.contains("Enqueued") {
                        DateField::Enqueued
                    } else if name.contains("Started") {
                        DateField::Started
                    } else {
                        DateField::Finished
                    };
                    let (at, date_only) = crate::timefmt::parse_date(v).ok_or_else(|| {
                        ApiError::invalid(
                            &error_code_for(name),
                            format!("Invalid value in parameter `{name}`: `{v}` is an invalid date-time. It should follow the YYYY-MM-DD or RFC 3339 date-time format."),
                        )
                    })?;
                    // A bare date after: from the next day on.
                    let at = if date_only && !before { at + std::time::Duration::from_secs(86_400) } else { at };
                    f.dates.push((field, before, at));
                }
                _ => {}
            }
        }
        Ok(f)
    }

    pub fn matches(&self, t: &Task) -> bool {
        let wanted = |filter: &Option<Vec<String>>, value: Option<String>| {
            filter.as_ref().is_none_or(|f| f.iter().any(|x| x == "*" || Some(x) == value.as_ref()))
        };
        wanted(&self.uids, Some(t.uid.to_string()))
            && wanted(&self.batch_uids, t.batch_uid.map(|b| b.to_string()))
            && wanted(&self.statuses, Some(t.status.as_str().to_string()))
            && wanted(&self.types, Some(t.kind.to_string()))
            && wanted(&self.index_uids, Some(t.index_uid.clone().unwrap_or_default()))
            && wanted(&self.canceled_by, t.canceled_by.map(|c| c.to_string()))
            && self.dates.iter().all(|(field, before, bound)| {
                let at = match field {
                    DateField::Enqueued => Some(t.enqueued_at),
                    DateField::Started => t.started_at,
                    DateField::Finished => t.finished_at,
                };
                at.is_some_and(|at| if *before { at < *bound } else { at > *bound })
            })
    }
}
