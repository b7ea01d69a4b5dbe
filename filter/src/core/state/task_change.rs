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
    /// What the propose round told the client. The first outcome recorded stands: a client
    /// answered `202` while it waited behind another write holds the task's uid, and one told a
    /// refusal holds no task, whatever the job records after.
    Propose(ProposeOutcome),
    /// Every node forgot the task (a task deletion ran there after it ended): gone from
    /// clients' view too, as on a node.
    Rejected,
    /// The nodes answered the write at once — refused it alike, or applied it without a task
    /// (a key), or could not be reached — with `error` (None: applied). There is no task, and it
    /// is hidden from clients, unless the client already holds its uid (answered `202` while it
    /// waited): then it ends as a task does, failed with that error or succeeded.
    EndedWithoutTask { error: Option<Value>, now_ms: u64 },
    Frozen,
    /// Mirror mode: the nodes enqueued the write as these tasks, of this type; and, when its
    /// client has not been answered yet, that it was accepted (`Propose`, in the same write of
    /// the record).
    Mirrored { kind: String, nodes: Vec<NodeTaskInfo>, accepted: bool },
    Close(Box<TaskClose>),
    /// A cancelation (task `by`) matched this task before any node had it: it ends `canceled`
    /// when its turn comes (`TaskClose` with that status).
    CancelRequested { by: u64 },
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
            TaskChange::Propose(outcome) => {
                t.propose.get_or_insert(outcome);
            }
            TaskChange::Rejected => t.status = "rejected".into(),
            TaskChange::EndedWithoutTask { error, now_ms } => {
                if t.propose != Some(ProposeOutcome::Accepted) {
                    t.status = "rejected".into();
                    return;
                }
                let status = if error.is_some() { "failed" } else { "succeeded" };
                t.miroir.phase = if status == "succeeded" { "committed".into() } else { status.into() };
                t.status = status.into();
                t.error = error;
                t.finished_ms = Some(now_ms);
                t.started_ms.get_or_insert(now_ms);
            }
            TaskChange::Frozen => t.miroir.frozen = true,
            TaskChange::Mirrored { kind, nodes, accepted } => {
                if accepted {
                    t.propose.get_or_insert(ProposeOutcome::Accepted);
                }
                t.kind = kind;
                t.miroir.phase = "mirrored".into();
                t.miroir.nodes = nodes;
            }
            TaskChange::CancelRequested { by } => {
                if t.finished_ms.is_none() && t.miroir.nodes.is_empty() {
                    t.canceled_by.get_or_insert(by);
                }
            }
            TaskChange::Close(close) => {
                let close = *close;
                if close.status != "canceled" {
                    // It went out before the cancelation reached it: nothing canceled it.
                    t.canceled_by = None;
                }
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
