//! The records kept in shared data. Serialized as JSON so an operator reading a dump (or a
//! test) can make sense of them; none of them is on the search hot path except `HotRecord`.
//! They are written with serde's derive and read back by hand (`from_json.rs`, which says why);
//! the derived `Deserialize` is compiled for tests only, where it checks the hand-written one.

use crate::core::sorted_map::SortedMap;

#[cfg(test)]
use serde::Deserialize;
use serde::Serialize;
use serde_json::Value;

/// Broadcast phase of an index, also exported as the `miroir_settings_broadcast_phase` gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[cfg_attr(test, derive(Deserialize))]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct Lease {
    pub owner: String,
    pub expires_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[cfg_attr(test, derive(Deserialize))]
pub struct FrozenRecord {
    pub reason: String,
    /// Ids of the nodes that disagreed.
    pub nodes: Vec<String>,
    /// Node id → fingerprint read at freeze time (None: unreadable).
    pub fingerprints: SortedMap<String, Option<String>>,
    pub at_ms: u64,
    pub task_uid: Option<u64>,
}

/// Per index: versions, fingerprints, phase, freeze, and the job queue with its lease. One key,
/// so that "commit only if I still own the lease" is a single CAS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[cfg_attr(test, derive(Deserialize))]
pub struct IndexRecord {
    /// Bumped by every write of the record (`index_store::update_index`): orders the hot-record
    /// projections, so a slow writer never puts back an older view.
    #[serde(default)]
    pub rev: u64,
    pub version: u64,
    pub fingerprint: Option<String>,
    /// Node id → last version that node was verified at. Keyed by id, not by position, so a
    /// reordered node list in a new configuration keeps each node's history.
    #[serde(default)]
    pub node_versions: SortedMap<String, u64>,
    #[serde(default)]
    pub node_fingerprints: SortedMap<String, Option<String>>,
    pub phase: Phase,
    pub frozen: Option<FrozenRecord>,
    pub lease: Option<Lease>,
    /// Task uids waiting or running, in arrival order; the head is the running job.
    pub queue: Vec<u64>,
    /// 1 + the task sequence number last queued here (0: none). A write whose number is not
    /// above it takes a new one, so queue order is always task uid order.
    #[serde(default)]
    pub queued_seq: u64,
    /// Mirror mode: node id → why that node no longer holds what the others hold for this index
    /// (it missed or failed a write they applied). Reads and writes avoid it until it caught up
    /// (replayed the writes it missed from the log) or was resynced.
    #[serde(default)]
    pub out_of_sync: SortedMap<String, NodeLag>,
    /// Mirror mode: a swap naming this index (its task uid) is about to go out: jobs queued
    /// after it wait until it has (`engine/swap.rs`).
    #[serde(default)]
    pub swap_fence: Option<u64>,
}

/// A node out of sync for an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[cfg_attr(test, derive(Deserialize))]
pub struct NodeLag {
    pub why: String,
    /// The next write (filter task uid) to replay to it from the catch-up log. None: the log no
    /// longer holds what it missed, or it refused or failed a write the others applied — it
    /// needs a resync (`POST /_miroir/indexes/{uid}/resync?node=ID`).
    pub replay_from: Option<u64>,
}

/// One write kept in an index's catch-up log (its job record is kept with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct LogEntry {
    pub uid: u64,
    pub bytes: u64,
}

impl IndexRecord {
    pub fn lease_free_for(&self, worker: &str, now_ms: u64) -> bool {
        match &self.lease {
            None => true,
            Some(l) => l.owner == worker || l.expires_ms <= now_ms,
        }
    }
    pub fn node_version(&self, node_id: &str) -> u64 {
        self.node_versions.get(node_id).copied().unwrap_or(0)
    }
    /// Some node has writes to replay: the index needs a lease holder even with nothing queued.
    pub fn catching_up(&self) -> bool {
        self.out_of_sync.values().any(|l| l.replay_from.is_some())
    }
}

/// The hot-path view of an index, a few bytes: read on every response under `/indexes/{uid}`.
/// A projection of the index record (`index_store`), stamped with the record's `rev`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HotRecord {
    pub version: u64,
    pub inconsistent: bool,
    pub frozen: bool,
    pub rev: u64,
    /// Some node is out of sync for the index: reads are routed to the others.
    pub split: bool,
}

impl HotRecord {
    pub fn of(rec: &IndexRecord) -> HotRecord {
        HotRecord {
            version: rec.version,
            inconsistent: rec.phase != Phase::Idle || rec.frozen.is_some(),
            frozen: rec.frozen.is_some(),
            rev: rec.rev,
            split: !rec.out_of_sync.is_empty(),
        }
    }
    /// Whether a search reads `other` as it reads this: everything but `rev`, which only orders
    /// the writes. Each write of an index record moves `rev`; only a change of what searches see
    /// invalidates the VMs' copies (`index_store::hot_changed`).
    pub fn reads_as(&self, other: &HotRecord) -> bool {
        HotRecord { rev: 0, ..*self } == HotRecord { rev: 0, ..*other }
    }
    pub fn encode(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.version,
            u8::from(self.inconsistent),
            u8::from(self.frozen),
            self.rev,
            u8::from(self.split)
        )
    }
    pub fn decode(bytes: &[u8]) -> Option<HotRecord> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split(' ');
        let version = parts.next()?.parse().ok()?;
        let inconsistent = parts.next()? == "1";
        let frozen = parts.next()? == "1";
        let rev = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
        let split = parts.next() == Some("1");
        Some(HotRecord { version, inconsistent, frozen, rev, split })
    }
}

/// A settings write waiting for or under broadcast. Holds the client's body and Authorization
/// (secrets): it lives only in shared memory, is never logged and never returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[cfg_attr(test, derive(Deserialize))]
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
    /// Ids of the nodes the first round proposes to (all when None); a repair targets the odd ones.
    #[serde(default)]
    pub targets: Option<Vec<String>>,
    /// Restores the committed settings (drift check): verified like any job, no new version.
    #[serde(default)]
    pub drift_repair: bool,
    /// An operator's repair (`POST /_miroir/indexes/{uid}/repair`): runs while the index is
    /// frozen, and a converged verify lifts the freeze.
    #[serde(default)]
    pub lifts_freeze: bool,
    /// Mirror mode: a write other than settings, mirrored as is; the Meilisearch task type it
    /// is expected to enqueue (the nodes' answer has the last word). None: a settings write.
    #[serde(default)]
    pub mirror: Option<String>,
    /// Node id → the path to send that node instead of `path` (a task cancelation or deletion,
    /// translated to each node's own task uids).
    #[serde(default)]
    pub node_paths: Option<SortedMap<String, String>>,
    /// An operator's resync of this node id (`engine/resync.rs`).
    #[serde(default)]
    pub resync: Option<String>,
    /// A swap: the indexes it names, whose queues it holds (`engine/swap.rs`).
    #[serde(default)]
    pub holds: Option<Vec<String>>,
    /// A task deletion: filter tasks it matched while they ran, dropped if they ended by the
    /// time it did.
    #[serde(default)]
    pub deletes_later: Option<Vec<u64>>,
    /// A task cancelation: filter tasks it matched that no node had yet. Once the nodes took
    /// the cancelation they are marked, and end `canceled` instead of going out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancels_unsent: Option<Vec<u64>>,
}

/// A mirrored write the nodes accepted whose node tasks have not all finished: the filter task
/// follows them (`engine/mirror_tasks.rs`). Kept per index so that another worker can take over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct OpenTask {
    pub uid: u64,
    /// Node id → that node's task uid.
    pub nodes: SortedMap<String, u64>,
    /// The client's credentials, to read its node tasks when no node key is set (a secret: in
    /// shared memory only, never shown).
    pub authorization: Option<String>,
    /// The task type the nodes gave.
    #[serde(default)]
    pub kind: String,
    /// A task deletion's `JobRecord::deletes_later`.
    #[serde(default)]
    pub deletes_later: Vec<u64>,
}

/// What the propose round told the client-facing side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProposeOutcome {
    Accepted,
    /// A write answered at once rather than with a task (keys, experimental features): the
    /// nodes' answer, passed on verbatim. Never a task.
    Answered { status: u16, body: String, content_type: Option<String> },
    /// Every node refused synchronously with the same answer: pass it on verbatim.
    Rejected { status: u16, body: String, content_type: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[cfg_attr(test, derive(Deserialize))]
pub struct NodeTaskInfo {
    pub node: String,
    pub task_uid: Option<u64>,
    pub status: Option<String>,
    pub fingerprint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[cfg_attr(test, derive(Deserialize))]
pub struct TaskMiroir {
    pub phase: String,
    pub settings_version: Option<u64>,
    pub nodes: Vec<NodeTaskInfo>,
    pub repair_attempts: u32,
    pub frozen: bool,
}

/// A task as clients see it through `GET /tasks/{uid}`, plus bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct TaskRecord {
    pub uid: u64,
    /// Empty for instance-wide tasks (dumps, snapshots), shown as `null`.
    pub index_uid: String,
    /// Meilisearch's task type (`settingsUpdate`, `documentAdditionOrUpdate`, …).
    #[serde(default = "settings_update")]
    pub kind: String,
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
    /// The write's `?customMetadata=`, shown on its task as a node shows it.
    #[serde(default)]
    pub custom_metadata: Option<String>,
    /// The filter task that canceled it (`canceledBy`): set when a cancelation matched it before
    /// it went out; it ends `canceled` when its turn comes, unless it had gone out by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_by: Option<u64>,
}

pub(super) fn settings_update() -> String {
    "settingsUpdate".into()
}

/// Outcome of the last check of one index, read by the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct VerifyResult {
    pub at_ms: u64,
    pub converged: bool,
    /// Node id → fingerprint (None: index missing or node unreachable).
    pub fingerprints: SortedMap<String, Option<String>>,
    pub detail: String,
    /// The repair job this check queued, if any.
    #[serde(default)]
    pub repair_task: Option<u64>,
}

/// The drift check's lease and schedule, shared by every worker (`engine/drift.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[cfg_attr(test, derive(Deserialize))]
pub struct DriftSchedule {
    pub lease: Option<Lease>,
    pub next_run_ms: u64,
}
