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
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Enqueued => "enqueued",
            Status::Processing => "processing",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
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
    },
    DocumentDeletion {
        ids: Vec<String>,
    },
    DocumentDeletionByFilter {
        filter: String,
    },
    DocumentClear,
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
        out.insert("canceledBy".into(), Value::Null);
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
