//! The records kept in shared data. Serialized as JSON so an operator reading a dump (or a
//! test) can make sense of them; none of them is on the search hot path except `HotRecord`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Broadcast phase of an index, also exported as the `miroir_settings_broadcast_phase` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Idle,
    Propose,
    Wait,
    Verify,
    Repair,
    Frozen,
}

impl Phase {
    pub fn gauge(self) -> u64 {
        match self {
            Phase::Idle => 0,
            Phase::Propose => 1,
            Phase::Wait => 2,
            Phase::Verify => 3,
            Phase::Repair => 4,
            Phase::Frozen => 5,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Propose => "propose",
            Phase::Wait => "wait",
            Phase::Verify => "verify",
            Phase::Repair => "repair",
            Phase::Frozen => "frozen",
        }
    }
}

/// Who runs an index's jobs, until when. Renewed by the owner while it works; a worker whose VM
/// is gone stops renewing and another one takes over after expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub expires_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenRecord {
    pub reason: String,
    /// Ids of the nodes that disagreed.
    pub nodes: Vec<String>,
    /// Node id → fingerprint read at freeze time (None: unreadable).
    pub fingerprints: BTreeMap<String, Option<String>>,
    pub at_ms: u64,
    pub task_uid: Option<u64>,
}

/// Per index: versions, fingerprints, phase, freeze, and the job queue with its lease. One key,
/// so that "commit only if I still own the lease" is a single CAS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct IndexRecord {
    pub version: u64,
    pub fingerprint: Option<String>,
    /// Node index (config order) → last version that node was verified at.
    pub node_versions: Vec<u64>,
    pub node_fingerprints: Vec<Option<String>>,
    pub phase: Phase,
    pub frozen: Option<FrozenRecord>,
    pub lease: Option<Lease>,
    /// Task uids waiting or running, in arrival order; the head is the running job.
    pub queue: Vec<u64>,
}

impl IndexRecord {
    pub fn lease_free_for(&self, worker: &str, now_ms: u64) -> bool {
        match &self.lease {
            None => true,
            Some(l) => l.owner == worker || l.expires_ms <= now_ms,
        }
    }
    pub fn node_version(&self, node: usize) -> u64 {
        self.node_versions.get(node).copied().unwrap_or(0)
    }
}

/// The hot-path view of an index, a few bytes: read on every response under `/indexes/{uid}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HotRecord {
    pub version: u64,
    pub inconsistent: bool,
    pub frozen: bool,
}

impl HotRecord {
    pub fn encode(&self) -> String {
        format!("{} {} {}", self.version, u8::from(self.inconsistent), u8::from(self.frozen))
    }
    pub fn decode(bytes: &[u8]) -> Option<HotRecord> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split(' ');
        let version = parts.next()?.parse().ok()?;
        let inconsistent = parts.next()? == "1";
        let frozen = parts.next()? == "1";
        Some(HotRecord { version, inconsistent, frozen })
    }
}

/// A settings write waiting for or under broadcast. Holds the client's body and Authorization
/// (secrets): it lives only in shared memory, is never logged and never returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub task_uid: u64,
    pub index: String,
    pub method: String,
    /// Path and query exactly as the client sent them.
    pub path: String,
    /// Settings key of a per-setting sub-route; None for the whole-settings route.
    pub setting_key: Option<String>,
    pub body: Option<String>,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    /// Empty for background jobs (drift repair): no client waits.
    pub origin_worker: String,
    pub enqueued_ms: u64,
    /// Nodes the first round proposes to (all when None); a drift repair targets the drifted ones.
    #[serde(default)]
    pub targets: Option<Vec<usize>>,
    /// Restores the committed settings (drift check): verified like any job, no new version.
    #[serde(default)]
    pub drift_repair: bool,
}

/// What the propose round told the client-facing side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProposeOutcome {
    Accepted,
    /// Every node refused synchronously with the same answer: pass it on verbatim.
    Rejected { status: u16, body: String, content_type: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NodeTaskInfo {
    pub node: String,
    pub task_uid: Option<u64>,
    pub status: Option<String>,
    pub fingerprint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TaskMiroir {
    pub phase: String,
    pub settings_version: Option<u64>,
    pub nodes: Vec<NodeTaskInfo>,
    pub repair_attempts: u32,
    pub frozen: bool,
}

/// A task as clients see it through `GET /tasks/{uid}`, plus bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub uid: u64,
    pub index_uid: String,
    /// enqueued | processing | succeeded | failed; "rejected" = never became a task (hidden).
    pub status: String,
    pub details: Value,
    pub error: Option<Value>,
    pub enqueued_ms: u64,
    pub started_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    pub propose: Option<ProposeOutcome>,
    pub miroir: TaskMiroir,
    /// SHA-256 of the creating request's Authorization header: only the same credentials read it.
    pub auth_hash: Option<String>,
}
