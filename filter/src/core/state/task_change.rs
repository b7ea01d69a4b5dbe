//! Changes to a task record, as data: a ledger applies them where the record lives (shared data
//! today, an external store later), so the engine never reads a task to write it back.

use serde_json::Value;

use super::records::{NodeTaskInfo, ProposeOutcome, TaskRecord};

#[derive(Debug, Clone, PartialEq)]
pub enum TaskChange {
    /// The job started on its owner.
    Start { now_ms: u64 },
    /// The job's phase, as shown in `miroir.phase`.
    Phase(String),
    RepairAttempts(u32),
    /// What the propose round told the client.
    Propose(ProposeOutcome),
    /// Every node refused synchronously: never a task (hidden from clients).
    Rejected,
    Frozen,
    /// Mirror mode: the nodes enqueued the write as these tasks, of this type; and, when its
    /// client has not been answered yet, that it was accepted (`Propose`, in the same write of
    /// the record).
    Mirrored { kind: String, nodes: Vec<NodeTaskInfo>, accepted: bool },
    Close(Box<TaskClose>),
}

/// A task's end: succeeded or failed, with what the nodes did.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskClose {
    pub status: String,
    pub error: Option<Value>,
    pub finished_ms: u64,
    /// The nodes' own task details, when they gave any.
    pub details: Option<Value>,
    pub nodes: Vec<NodeTaskInfo>,
    pub version: Option<u64>,
    pub repair_attempts: u32,
}

impl TaskChange {
    pub fn apply(self, t: &mut TaskRecord) {
        match self {
            TaskChange::Start { now_ms } => {
                t.status = "processing".into();
                t.started_ms = Some(now_ms);
            }
            TaskChange::Phase(phase) => t.miroir.phase = phase,
            TaskChange::RepairAttempts(n) => t.miroir.repair_attempts = n,
            TaskChange::Propose(outcome) => t.propose = Some(outcome),
            TaskChange::Rejected => t.status = "rejected".into(),
            TaskChange::Frozen => t.miroir.frozen = true,
            TaskChange::Mirrored { kind, nodes, accepted } => {
                if accepted {
                    t.propose = Some(ProposeOutcome::Accepted);
                }
                t.kind = kind;
                t.miroir.phase = "mirrored".into();
                t.miroir.nodes = nodes;
            }
            TaskChange::Close(close) => {
                let close = *close;
                if t.miroir.phase != "mirrored" {
                    t.miroir.phase = if close.status == "succeeded" { "committed".into() } else { close.status.clone() };
                }
                t.status = close.status;
                t.error = close.error;
                t.finished_ms = Some(close.finished_ms);
                if t.started_ms.is_none() {
                    t.started_ms = Some(close.finished_ms);
                }
                if let Some(d) = close.details {
                    t.details = d;
                }
                t.miroir.nodes = close.nodes;
                t.miroir.settings_version = close.version;
                t.miroir.repair_attempts = close.repair_attempts;
            }
        }
    }
}
