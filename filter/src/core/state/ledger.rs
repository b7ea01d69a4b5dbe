//! The ledger: the domain operations the engine needs from shared state (docs/architecture.md §5), as one
//! interface whose answers may come later. The engine submits an operation with a correlation
//! id and goes on; the answer comes back either at once (`take`, the shared-data ledger in
//! `shared_data.rs`) or later (`next_answer`, e.g. a store reached by callouts, or the test
//! double in `delayed.rs`), and the engine continues from it. Nothing read from the store is
//! used inline across an answer.

use crate::core::sorted_map::SortedMap;

use serde_json::{Map, Value};

use super::records::{FrozenRecord, IndexRecord, JobRecord, NodeLag, OpenTask, Phase, TaskRecord, VerifyResult};
use super::store::StoreError;
use super::task_change::TaskChange;
use crate::core::host::{CalloutResponse, Host};
use crate::core::proposal::Proposal;

/// Correlates an answer with the operation it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OpId(pub u64);

#[derive(Debug, Clone)]
pub enum Op {
    /// The indexes with queued work.
    ReadActive,
    /// Take `index`'s lease for `owner` if there is work and nobody else holds it; answers the
    /// head job (`Answer::Head`).
    ClaimHead { index: String, owner: String, now_ms: u64 },
    /// Extend the lease `owner` holds (`Answer::Renewed`).
    RenewLease { index: String, owner: String, now_ms: u64 },
    /// Record the running job's phase, as owner.
    SetPhase { index: String, owner: String, phase: Phase },
    /// Commit the verified settings as owner (`Answer::Committed`).
    CommitAsOwner(Commit),
    /// Fence the hot record, then record the freeze (`Answer::Done`).
    Freeze(Freeze),
    /// Take an ended job off the queue, unless another worker holds the lease.
    Dequeue { index: String, owner: String, task_uid: u64 },
    /// The job ended: clear its record; release the lease if nothing is queued; answer what
    /// comes next (`Answer::Next`).
    EndJob { index: String, owner: String, task_uid: u64, now_ms: u64 },
    /// Drop `index` from the active list unless work was queued meanwhile.
    Deactivate { index: String },
    UpdateTask { task_uid: u64, change: TaskChange },
    /// Merge a committed proposal into the index's desired settings.
    MergeDesired { index: String, proposal: Proposal },
    /// The task records of these uids, in order (`Answer::Tasks`).
    ReadTasks { uids: Vec<u64> },
    /// Claim the scheduled drift run if it is due and no other run is alive (`Answer::Claimed`).
    ClaimDriftRun { owner: String, now_ms: u64, interval_ms: u64 },
    RenewDriftRun { owner: String, now_ms: u64 },
    EndDriftRun { owner: String },
    /// Be the first worker to warn about the missing node key (`Answer::Claimed`).
    ClaimNodeKeyWarning,
    /// An index's record (default when missing) and, if asked, its desired settings
    /// (`Answer::IndexState`).
    ReadIndex { index: String, with_desired: bool },
    WriteVerifyResult { index: String, result: VerifyResult },
    /// The fleet holds one fingerprint: record it as every node's at the current version, unless
    /// work is queued; then lift the index's freeze if `lift_freeze` (`Answer::Done`).
    RecordConverged { index: String, node_ids: Vec<String>, fingerprint: String, lift_freeze: bool },
    /// Queue a job (a drift repair) and activate its index (`Answer::Enqueued`).
    Enqueue { job: Box<JobRecord>, details: Value },
    /// The last check of an index, with what an operator's answer shows (`Answer::Verify`).
    ReadVerify { index: String },
    /// The open mirrored writes of these uids, to follow (`Answer::Open`).
    ReadOpenTasks { uids: Vec<u64> },
    /// Drop these filter tasks' records if they ended (a task deletion's `deletes_later`).
    ForgetEndedTasks { uids: Vec<u64> },
    /// Mirror mode: the nodes accepted a write; follow its node tasks until they finish.
    Track { index: String, open: OpenTask },
    /// A mirrored write's node tasks all finished.
    Untrack { index: String, task_uid: u64 },
    /// Nodes that no longer hold what the others hold for `index`. A node already out of sync
    /// keeps its place in the log, unless it now needs a resync.
    MarkOutOfSync { index: String, nodes: Vec<(String, NodeLag)> },
    /// Keep write `uid` (its job record) in the index's catch-up log; beyond `max_bytes` the
    /// oldest writes go, and nodes that still needed them need a resync.
    AppendLog { index: String, uid: u64, bytes: u64, max_bytes: u64 },
    /// Where `node` is in its catch-up: its next write from the log (`Answer::Replay`).
    NextReplay { index: String, node: String },
    /// `node` enqueued the replayed write `uid`.
    Replayed { index: String, node: String, uid: u64 },
    /// `node` replayed everything before `from` and the log holds nothing newer: it is in sync
    /// again (`Answer::Claimed`), at the index's settings version.
    Rejoin { index: String, node: String, from: u64 },
    /// Swap `uid` holds these indexes: jobs queued after it wait, and a write that took a uid
    /// but is not queued yet takes a new one, after the swap's (`Answer::Done`).
    FenceForSwap { indexes: Vec<String>, uid: u64 },
    /// Every write queued before swap `uid` on these indexes went out (`Answer::Claimed`).
    SwapReady { indexes: Vec<String>, uid: u64 },
    /// The swap went out: lift its fences and wake the indexes (`Answer::Done`).
    Unfence { indexes: Vec<String>, uid: u64 },
    /// An operator's resync copied the index to `node`: in sync again, at the settings version.
    Resynced { index: String, node: String },
    /// The index was deleted (or renamed away) through the gateway: its settings are no longer
    /// the filter's to keep, so the drift check does not bring them back.
    ForgetSettings { index: String },
    /// An operator lifts the freeze of `index` without a check (`Answer::Done`).
    LiftFreeze { index: String },
    /// Nothing runs on `index` any more: release the lease unless work is queued or open, and
    /// say what comes next (`Answer::Next`).
    ReleaseIfIdle { index: String, owner: String, now_ms: u64 },
}

#[derive(Debug, Clone)]
pub struct Commit {
    pub index: String,
    pub owner: String,
    pub task_uid: u64,
    /// Versions to add (0 for a drift repair, which restores the committed settings).
    pub bump: u64,
    pub fingerprint: String,
    /// Node id → fingerprint read back.
    pub fingerprints: SortedMap<String, Option<String>>,
}

/// One freeze path for jobs (as owner, taking the job off the queue) and the drift check.
#[derive(Debug, Clone)]
pub struct Freeze {
    pub index: String,
    pub record: FrozenRecord,
    /// The owner and the job it freezes, for a job's freeze; None for the drift check's.
    pub job: Option<(String, u64)>,
}

/// The head job of a claimed index.
#[derive(Debug, Clone)]
pub struct Head {
    pub rec: IndexRecord,
    /// The job at the head of the queue (`rec.queue` empty: there is none, only open tasks).
    pub task_uid: u64,
    /// None when the record is gone or unreadable.
    pub job: Option<JobRecord>,
    pub task: Option<TaskRecord>,
    /// Uids of the mirrored writes whose node tasks are still followed (mirror mode).
    pub open: Vec<u64>,
}

/// An index's last check, its record and the repair task the check queued, if any.
#[derive(Debug, Clone)]
pub struct VerifyView {
    pub result: VerifyResult,
    pub rec: Option<IndexRecord>,
    pub repair_task: Option<TaskRecord>,
}

#[derive(Debug, Clone)]
pub enum Next {
    /// The lease is still ours and the next job is at the head.
    Start(Box<Head>),
    /// More work is queued but another worker holds the lease.
    Elsewhere,
    /// Nothing queued (or the record is gone): the lease is released; the index's phase.
    Idle(Phase),
}

#[derive(Debug, Clone)]
pub enum Answer {
    Done,
    Failed(StoreError),
    Active(Vec<String>),
    /// None: not claimed (nothing queued, or another worker holds the lease).
    Head(Option<Box<Head>>),
    Renewed(bool),
    /// The new version, or None when the lease was lost before the commit.
    Committed(Option<u64>),
    Next(Next),
    Tasks(Vec<Option<TaskRecord>>),
    Claimed(bool),
    /// `open_tasks`: mirrored writes whose node tasks have not all ended.
    IndexState { rec: Box<IndexRecord>, desired: Option<Map<String, Value>>, open_tasks: usize },
    Enqueued(u64),
    /// None: the index was never checked.
    Verify(Option<Box<VerifyView>>),
    /// A node's catch-up: the next uid it needs (None: not catching up) and that write's job
    /// (None: the log holds nothing from there).
    Replay { from: Option<u64>, job: Option<Box<JobRecord>> },
    Open(Vec<OpenTask>),
}

impl Answer {
    /// What the answer is, for a log line or an error: its kind and, for a failure, the store's
    /// error. Never the records it carries: a job holds the client's body and Authorization.
    pub fn summary(&self) -> String {
        let kind = match self {
            Answer::Done => "done",
            Answer::Failed(e) => return format!("failed ({e})"),
            Answer::Active(_) => "active indexes",
            Answer::Head(_) => "queue head",
            Answer::Renewed(_) => "lease renewal",
            Answer::Committed(_) => "commit",
            Answer::Next(_) => "next job",
            Answer::Tasks(_) => "tasks",
            Answer::Claimed(_) => "claim",
            Answer::IndexState { .. } => "index state",
            Answer::Enqueued(_) => "enqueued",
            Answer::Verify(_) => "verify result",
            Answer::Replay { .. } => "catch-up write",
            Answer::Open(_) => "open writes",
        };
        kind.to_string()
    }
}

/// Operations take effect in the order they are submitted (the shared-data ledger runs each one
/// as it comes; a remote store must keep one worker's operations in order), whatever order their
/// answers come back in.
pub trait Ledger {
    /// Start `op`. Its answer arrives now or later, exactly once, under `id`.
    fn submit(&mut self, host: &mut dyn Host, id: OpId, op: Op);
    /// The answer to `id`, if it has arrived and was not taken yet.
    fn take(&mut self, id: OpId) -> Option<Answer>;
    /// Any answer that has arrived and was not taken yet.
    fn next_answer(&mut self) -> Option<(OpId, Answer)>;
    /// A callout answer the root received: true when it was one of this ledger's own calls (a
    /// store reached by callouts), whose answers are then ready for `next_answer`.
    fn on_callout_response(&mut self, _host: &mut dyn Host, _token: u32, _resp: &CalloutResponse) -> bool {
        false
    }
    /// Called on every engine pump: a remote store refreshes this gateway's view from here.
    fn tick(&mut self, _host: &mut dyn Host) {}
    /// How often `tick` must run at least, if it matters.
    fn tick_ms(&self) -> Option<u64> {
        None
    }
    /// Bring this gateway's view up to what the store holds now. None: the view is the store
    /// (shared data); otherwise a ticket for `view_refreshed`.
    fn refresh_view(&mut self, _host: &mut dyn Host) -> Option<u64> {
        None
    }
    /// Whether the refresh of `ticket` is done (None: not yet), and reached the store.
    fn view_refreshed(&self, _ticket: u64) -> Option<bool> {
        Some(true)
    }
    /// The last call to the store failed.
    fn unavailable(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::state::records::{JobRecord, OpenTask};

    #[test]
    fn an_answers_summary_never_carries_the_clients_secrets() {
        let job = JobRecord {
            body: Some(r#"{"embedders":{"e":{"apiKey":"sk-embedder-secret"}}}"#.into()),
            authorization: Some("Bearer client-secret".into()),
            ..JobRecord::default()
        };
        let open = OpenTask {
            uid: 1,
            nodes: Default::default(),
            authorization: Some("Bearer client-secret".into()),
            kind: String::new(),
            deletes_later: Vec::new(),
        };
        for answer in [Answer::Replay { from: Some(3), job: Some(Box::new(job)) }, Answer::Open(vec![open])] {
            let summary = answer.summary();
            assert!(!summary.contains("secret"), "{summary}");
            assert!(!summary.is_empty());
        }
        let failed = Answer::Failed(StoreError::Unavailable("etcd: no leader".into())).summary();
        assert!(failed.contains("etcd: no leader"), "a failure says why: {failed}");
    }
}
