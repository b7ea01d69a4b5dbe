//! The broadcast engine of one worker VM: runs the settings jobs of the indexes whose lease this
//! worker holds, from its root context (callouts owned by an HTTP context die with the stream).
//!
//! Life of a job (docs/architecture.md §3): PROPOSE to the nodes → WAIT for their tasks → VERIFY by reading the
//! settings back from every node → COMMIT a new version, or REPAIR the nodes that disagree (with
//! backoff) and verify again → FROZEN when repair keeps failing. Everything other workers must
//! see (queue, lease, versions, tasks) is in shared data; this struct only holds what is in flight.

use crate::core::sorted_map::SortedMap;
use crate::core::sorted_set::SortedSet;

use serde_json::{json, Value};

use super::admin_views::{self, VerifyPurpose};
use super::config::{Config, Strategy};
use super::errors::MeiliError;
use super::canonical_text::read_text;
use super::fingerprint::{fingerprint, fingerprint_canonical};
use super::host::{Callout, CalloutResponse, Host, LocalReply, Wake};
use super::mirror::NodeAnswer;
use super::job::{self, NodeTask, ProposeResult};
use super::metrics;
use super::proposal::Proposal;
use super::state::keys;
use super::state::ledger::{Commit, Freeze, Head, Ledger, Next, Op, OpId, VerifyView};
use super::state::hot_cache::HotCache;
use super::state::records::{FrozenRecord, HotRecord, JobRecord, NodeTaskInfo, Phase, ProposeOutcome, TaskRecord};
use super::state::etcd::EtcdLedger;
use super::state::shared_data::SharedDataLedger;
use super::state::store::{self, StoreError};
use super::state::task_change::{TaskChange, TaskClose};
use super::tasks;

mod answers;
mod catch_up;
mod drift;
mod mirror_round;
mod mirror_tasks;
mod queued_writes;
mod resync;
mod swap;
mod round_propose;
mod round_verify;
mod round_wait;
mod sequential;
mod settle;
mod force_unfreeze;
mod view_waiters;
mod waiters;

use answers::Awaiting;
pub use queued_writes::{not_queued, Queued};


pub use super::state::lease::LEASE_TTL_MS;
/// Root tick while work is in flight (task polls, backoffs) and while idle (orphan scan).
pub const TICK_ACTIVE_MS: u64 = 10;
pub const TICK_IDLE_MS: u64 = 100;
/// An operator's check is answered within `verify_timeout_s` plus this much, whatever happens.
const VERIFY_GRACE_MS: u64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Propose,
    Poll,
    Verify,
    Snapshot,
    DriftList,
    DriftRead,
    /// Mirror mode: a node's page of the tasks of open mirrored writes.
    Follow,
    /// Mirror mode: a missed write replayed to a node catching up, and the poll of its task.
    Replay,
    ReplayPoll,
    /// An operator's resync: the node's and the source's answers.
    Resync,
}

#[derive(Debug, Clone)]
struct Tag {
    index: String,
    epoch: u64,
    node: usize,
    purpose: Purpose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Sequential strategy only: read a node's settings before changing it, to roll back.
    Snapshot,
    Propose,
    Wait,
    Verify,
    /// Waiting out the repair backoff before re-proposing to the nodes that disagree.
    Backoff,
    /// An operator's resync of one node (`resync.rs`).
    Resync,
    /// A swap waits for the writes queued before it on the indexes it names (`swap.rs`).
    SwapWait,
}

#[derive(Debug, Clone, Default)]
struct NodeRun {
    in_round: bool,
    propose: Option<ProposeResult>,
    task: Option<NodeTask>,
    task_uid: Option<u64>,
    polls: u32,
    next_poll_ms: u64,
    poll_in_flight: bool,
    /// (fingerprint, read-back matches the proposal)
    readback: Option<(String, bool)>,
    /// Mirror mode: the node's answer to the write.
    answer: Option<NodeAnswer>,
}

#[derive(Debug, Clone, Default)]
struct Sequential {
    current: usize,
    snapshots: Vec<Option<Value>>,
    applied: Vec<usize>,
    rolling_back: bool,
    failure: Option<Value>,
}

struct Running {
    job: JobRecord,
    proposal: Proposal,
    /// The round whose answers count; answers tagged with another are from an abandoned round.
    epoch: u64,
    step: Step,
    nodes: Vec<NodeRun>,
    outstanding: usize,
    started_ms: u64,
    /// When the current round's proposes went out, and when their answers were all in.
    round_sent_ms: u64,
    answered_ms: u64,
    task_deadline_ms: u64,
    repair_attempt: u32,
    resume_at_ms: u64,
    renew_at_ms: u64,
    client_answered: bool,
    node_details: Option<Value>,
    seq: Option<Sequential>,
    /// A node refused to let the job read its settings back (401/403): its error.
    auth_refusal: Option<Value>,
    /// Mirror mode: nodes out of sync for the index when the job started. The job leaves them
    /// out (a write would reach them out of order) and keeps its write in the catch-up log.
    excluded: SortedSet<usize>,
    resync: Option<resync::ResyncRun>,
    /// A swap's readiness is being asked of the ledger.
    swap_checking: bool,
}

struct Waiter {
    context_id: u32,
    since_ms: u64,
}

/// An operator waiting for a one-index verify (admin API).
struct VerifyWaiter {
    context_id: u32,
    index: String,
    since_ms: u64,
    purpose: VerifyPurpose,
}

pub struct Engine {
    cfg: Config,
    worker: String,
    /// This VM's copy of the hot records, for the front door (`state/hot_cache.rs`).
    hot: HotCache,
    jobs: SortedMap<String, Running>,
    callouts: SortedMap<u32, Tag>,
    waiting: SortedMap<u64, Waiter>,
    /// Waiting clients whose outcome may have been recorded since their task was last read
    /// (another worker's wake named it, or the client just began to wait), and when every
    /// waiter's was last read: see `serve_waiters`.
    waiters_due: SortedSet<u64>,
    waiters_read_ms: u64,
    kicked: SortedSet<String>,
    drift: Option<drift::DriftRun>,
    /// One counter for every round of every job and drift run of this VM, so a late answer of a
    /// finished job is never taken for an answer of the next job on the same index.
    last_epoch: u64,
    /// Indexes an operator asked to check, and whether to repair them.
    verify_requests: Vec<(String, bool)>,
    verify_waiters: Vec<VerifyWaiter>,
    warned_node_key: bool,
    /// Shared state, reached only through ledger operations (state/ledger.rs).
    ledger: Box<dyn Ledger>,
    last_op: u64,
    /// Ledger operations whose answer has not come yet, and what to do with it.
    awaiting: SortedMap<OpId, Awaiting>,
    /// Indexes whose claim or next job is being asked of the ledger: not claimed again meanwhile.
    claiming: SortedSet<String>,
    /// A scheduled drift run is being claimed from the ledger.
    drift_claim_pending: bool,
    /// `drift_progress` is under way (answers that come at once call back into it).
    drift_progressing: bool,
    /// Indexes whose last check is being read for waiting operators.
    verify_reads: SortedSet<String>,
    /// Clients' writes the ledger queued at once, for `queue_write` to hand back.
    queued_now: SortedMap<u32, Result<u64, StoreError>>,
    /// Clients whose write the ledger answers later.
    queueing_later: SortedSet<u32>,
    /// Mirror mode: open mirrored writes followed per index (`engine/mirror_tasks.rs`).
    following: SortedMap<String, mirror_tasks::Following>,
    /// Per index, how long its last task took on a node: when to poll the next one.
    task_ms_hint: SortedMap<String, u64>,
    /// Task reads waiting for this gateway's view to be refreshed (`engine/view_waiters.rs`).
    view_waiters: Vec<view_waiters::ViewWaiter>,
    /// The active list is being read: a pump does not ask again meanwhile.
    reading_active: bool,
}

enum Verdict {
    Commit { fingerprint: String, fingerprints: Vec<Option<String>> },
    Repair { bad: Vec<usize> },
    Fail(Value),
    Freeze { bad: Vec<usize> },
}

impl Engine {
    pub fn new(cfg: Config, worker: String) -> Engine {
        let ledger: Box<dyn Ledger> = match cfg.state.etcd() {
            Some(etcd) => Box::new(EtcdLedger::new(cfg.clone(), etcd.clone(), &worker)),
            None => Box::new(SharedDataLedger::new(cfg.clone())),
        };
        Engine::with_ledger(cfg, worker, ledger)
    }

    pub fn with_ledger(cfg: Config, worker: String, ledger: Box<dyn Ledger>) -> Engine {
        Engine {
            cfg,
            worker,
            hot: HotCache::default(),
            jobs: SortedMap::new(),
            callouts: SortedMap::new(),
            waiting: SortedMap::new(),
            waiters_due: SortedSet::new(),
            waiters_read_ms: 0,
            kicked: SortedSet::new(),
            drift: None,
            last_epoch: 0,
            verify_requests: Vec::new(),
            verify_waiters: Vec::new(),
            warned_node_key: false,
            ledger,
            last_op: 0,
            awaiting: SortedMap::new(),
            claiming: SortedSet::new(),
            drift_claim_pending: false,
            drift_progressing: false,
            verify_reads: SortedSet::new(),
            queued_now: SortedMap::new(),
            queueing_later: SortedSet::new(),
            following: SortedMap::new(),
            task_ms_hint: SortedMap::new(),
            view_waiters: Vec::new(),
            reading_active: false,
        }
    }

    fn new_epoch(&mut self) -> u64 {
        self.last_epoch += 1;
        self.last_epoch
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// Root tick period the glue should use at `now_ms`: idle, or while work is in flight the time
    /// to the next timer due (a task poll, a backoff's end), so a poll aimed at the end of a
    /// node's task is not late by up to a whole tick; at most `TICK_ACTIVE_MS`.
    pub fn tick_ms_at(&self, now_ms: u64) -> u64 {
        let tick = self.tick_ms();
        if tick != TICK_ACTIVE_MS {
            // A remote store's view is refreshed from the tick.
            return self.ledger.tick_ms().map_or(tick, |t| t.min(tick));
        }
        let next = self.jobs.values().filter_map(|run| match run.step {
            Step::Wait => run
                .nodes
                .iter()
                .filter(|n| n.in_round && n.task.is_none() && !n.poll_in_flight)
                .map(|n| n.next_poll_ms)
                .min(),
            Step::Backoff => Some(run.resume_at_ms),
            _ => None,
        });
        match next.min() {
            Some(due) => due.saturating_sub(now_ms).clamp(1, TICK_ACTIVE_MS),
            None => TICK_ACTIVE_MS,
        }
    }

    /// Root tick period: idle or active.
    pub fn tick_ms(&self) -> u64 {
        if self.jobs.is_empty()
            && self.waiting.is_empty()
            && self.drift.is_none()
            && self.verify_waiters.is_empty()
            && self.awaiting.is_empty()
            && self.view_waiters.is_empty()
            && !self.is_following()
        {
            TICK_IDLE_MS
        } else {
            TICK_ACTIVE_MS
        }
    }

    /// Seed the global keys. Called from `on_configure`: the main-thread VM configures before any
    /// worker VM exists, so the "create if absent" race cannot happen there.
    pub fn seed(&self, host: &mut dyn Host) {
        if let Err(e) = store::seed(host, keys::CREATE_LOCK_KEY, b"") {
            log::warn!("miroir: seeding the creation lock failed: {e}");
        }
        if let Err(e) = store::seed(host, keys::TASK_COUNTER_KEY, b"0") {
            log::warn!("miroir: seeding the task counter failed: {e}");
        }
        if let Err(e) = store::seed(host, keys::ACTIVE_KEY, b"[]") {
            log::warn!("miroir: seeding the active-index list failed: {e}");
        }
    }

    // ----- client side (called from HTTP contexts of this VM) -----

    /// A paused HTTP context waits for the propose outcome of `task_uid`.
    pub fn wait_for_outcome(&mut self, task_uid: u64, context_id: u32, now_ms: u64) {
        self.waiting.insert(task_uid, Waiter { context_id, since_ms: now_ms });
        self.waiters_due.insert(task_uid);
    }

    /// Another worker recorded the propose outcome of `task_uid` and woke this one (its shared
    /// queue): if its client waits here, its task is read on this pump.
    pub fn outcome_for(&mut self, task_uid: u64) {
        if self.waiting.contains_key(&task_uid) {
            self.waiters_due.insert(task_uid);
        }
    }

    /// New work was queued on `index` by this VM: try to run it now rather than at the next scan.
    pub fn kick(&mut self, index: &str) {
        self.kicked.insert(index.to_string());
    }

    /// The hot record of `index` as it stands now, from this VM's copy while it holds.
    pub fn hot(&self, host: &dyn Host, index: &str) -> HotRecord {
        self.hot.read(host, index)
    }

    /// Whether anything of the engine waits on HTTP context `context_id`.
    #[cfg(test)]
    pub fn waits_on(&self, context_id: u32) -> bool {
        self.waiting.values().any(|w| w.context_id == context_id)
            || self.verify_waiters.iter().any(|w| w.context_id == context_id)
            || self.queueing_later.contains(&context_id)
            || self.view_waiters.iter().any(|w| w.context_id() == context_id)
    }

    pub fn client_gone(&mut self, context_id: u32) {
        self.waiting.retain(|_, w| w.context_id != context_id);
        self.verify_waiters.retain(|w| w.context_id != context_id);
        self.queueing_later.remove(&context_id);
        self.view_waiters.retain(|w| w.context_id() != context_id);
    }

    /// An operator asked (admin API) to verify (or repair) `index` now, and waits for the answer.
    pub fn request_verify(&mut self, index: &str, context_id: u32, purpose: VerifyPurpose, now_ms: u64) {
        let repair = purpose == VerifyPurpose::Repair;
        match self.verify_requests.iter_mut().find(|(i, _)| i == index) {
            Some((_, r)) => *r |= repair,
            None => self.verify_requests.push((index.to_string(), repair)),
        }
        self.verify_waiters.push(VerifyWaiter { context_id, index: index.to_string(), since_ms: now_ms, purpose });
    }

    /// Ask the ledger for the last check of every index an operator waits on (answered from
    /// `on_verify_read`), then answer those who waited longer than a check can take (every read
    /// times out after `verify_timeout_s`).
    fn serve_verify_waiters(&mut self, host: &mut dyn Host) {
        let indexes: SortedSet<String> = self.verify_waiters.iter().map(|w| w.index.clone()).collect();
        for index in indexes {
            if self.verify_reads.insert(index.clone()) {
                self.submit(host, Op::ReadVerify { index: index.clone() }, Awaiting::VerifyRead { index });
            }
        }
        let now = host.now_ms();
        let patience = self.cfg.settings_broadcast.verify_timeout_s * 1000 + VERIFY_GRACE_MS;
        let (late, still): (Vec<VerifyWaiter>, Vec<VerifyWaiter>) =
            std::mem::take(&mut self.verify_waiters).into_iter().partition(|w| now >= w.since_ms + patience);
        self.verify_waiters = still;
        for w in late {
            let reply = tasks::error_reply(&MeiliError::new(
                504,
                "miroir_verify_timeout",
                super::errors::ErrorType::System,
                format!("The check of index `{}` did not finish in time; nothing was changed by it. Retry.", w.index),
            ));
            if host.reply(w.context_id, &reply).is_err() {
                log::debug!("miroir: operator left before the verify of {} finished", w.index);
            }
        }
    }

    /// The last check of `index` came back: answer the operators it is recent enough for.
    fn on_verify_read(&mut self, host: &mut dyn Host, index: &str, view: Option<VerifyView>) {
        self.verify_reads.remove(index);
        let Some(view) = view else { return };
        let (ready, still): (Vec<VerifyWaiter>, Vec<VerifyWaiter>) = std::mem::take(&mut self.verify_waiters)
            .into_iter()
            .partition(|w| w.index == index && view.result.at_ms >= w.since_ms);
        self.verify_waiters = still;
        for w in ready {
            let reply = admin_views::verify_reply(&self.cfg, index, &view, w.purpose);
            if host.reply(w.context_id, &reply).is_err() {
                log::debug!("miroir: operator left before the verify of {} finished", w.index);
            }
        }
    }

    // ----- root side -----

    /// Woken (shared-queue message) or ticked: start what can start, drive timers, answer clients.
    pub fn pump(&mut self, host: &mut dyn Host) {
        self.ledger.tick(host);
        self.on_ledger_answers(host);
        self.serve_view_waiters(host);
        self.claim_work(host);
        self.drive_timers(host);
        self.serve_waiters(host);
        self.drive_drift(host);
        if !self.verify_waiters.is_empty() {
            self.serve_verify_waiters(host);
        }
        // What this pump asked of a store reached by calls goes out now.
        self.ledger.tick(host);
    }

    pub fn on_callout_response(&mut self, host: &mut dyn Host, token: u32, resp: CalloutResponse) {
        self.route_callout_response(host, token, resp);
        // What the answer led to asking of a store reached by calls goes out now.
        self.ledger.tick(host);
    }

    fn route_callout_response(&mut self, host: &mut dyn Host, token: u32, resp: CalloutResponse) {
        if self.ledger.on_callout_response(host, token, &resp) {
            self.on_ledger_answers(host);
            self.serve_view_waiters(host);
            return;
        }
        let Some(tag) = self.callouts.remove(&token) else {
            return;
        };
        log::debug!("miroir: {:?} answer from node {} on {}: {:?}", tag.purpose, tag.node, tag.index, resp.status);
        // Every call to a node that failed counts, whatever it was for: a node that is down
        // while nothing but drift checks and catch-up replays go to it must still show.
        if resp.status.is_none() || resp.status.is_some_and(|s| s >= 500) {
            if let Some(node) = self.cfg.nodes.get(tag.node) {
                host.counter_add(&metrics::for_node(metrics::CALLOUT_ERRORS_TOTAL, &node.id), 1);
            }
        }
        if matches!(tag.purpose, Purpose::DriftList | Purpose::DriftRead) {
            self.on_drift_response(host, &tag, &resp);
            return;
        }
        match tag.purpose {
            Purpose::Follow => return self.on_follow_poll(host, &tag, &resp),
            Purpose::Replay => return self.on_replay_answer(host, &tag, &resp),
            Purpose::ReplayPoll => return self.on_replay_poll(host, &tag, &resp),
            _ => {}
        }
        let Some(run) = self.jobs.get_mut(&tag.index) else {
            return;
        };
        if run.epoch != tag.epoch {
            return; // an answer from an abandoned round
        }
        match tag.purpose {
            Purpose::Propose => self.on_propose(host, &tag, &resp),
            Purpose::Poll => self.on_poll(host, &tag, &resp),
            Purpose::Verify => self.on_verify(host, &tag, &resp),
            Purpose::Snapshot => self.on_snapshot(host, &tag, &resp),
            Purpose::Resync => self.on_resync(host, &tag, &resp),
            Purpose::DriftList | Purpose::DriftRead | Purpose::Follow | Purpose::Replay | Purpose::ReplayPoll => {}
        }
    }

    fn claim_work(&mut self, host: &mut dyn Host) {
        if self.reading_active {
            return; // a store answering later: kicked indexes wait for that answer
        }
        let kicked = std::mem::take(&mut self.kicked);
        self.reading_active = true;
        self.submit(host, Op::ReadActive, Awaiting::Active { kicked });
    }

    /// The indexes with work are known: claim each one no job of this worker runs yet.
    fn claim_indexes(&mut self, host: &mut dyn Host, candidates: SortedSet<String>) {
        let now = host.now_ms();
        for index in candidates {
            if self.jobs.contains_key(&index) || self.claiming.contains(&index) {
                continue;
            }
            // Another worker's live lease, as this worker's view shows it: asking the ledger
            // would only be told so (with etcd, a transaction per index per tick).
            let leased = super::state::index_store::read_index(host, &index).ok().flatten().is_some_and(|r| !r.lease_free_for(&self.worker, now));
            if leased {
                continue;
            }
            self.claiming.insert(index.clone());
            let op = Op::ClaimHead { index: index.clone(), owner: self.worker.clone(), now_ms: now };
            self.submit(host, op, Awaiting::Claim { index });
        }
    }

    fn start_job(&mut self, host: &mut dyn Host, index: &str, head: Head) {
        let now = host.now_ms();
        let Head { rec, task_uid, job, task, open } = head;
        // Open writes this worker does not follow yet (another worker's, gone): their records.
        let unknown: Vec<u64> = open.into_iter().filter(|uid| !self.follows(index, *uid)).collect();
        if !unknown.is_empty() {
            self.submit(host, Op::ReadOpenTasks { uids: unknown }, Awaiting::Adopt { index: index.to_string() });
        }
        let excluded: SortedSet<usize> =
            self.cfg.nodes.iter().enumerate().filter(|(_, n)| rec.out_of_sync.contains_key(&n.id)).map(|(i, _)| i).collect();
        for (id, lag) in &rec.out_of_sync {
            if let (Some(pos), Some(_)) = (self.cfg.nodes.iter().position(|n| &n.id == id), lag.replay_from) {
                self.catch_up(host, index, pos);
            }
        }
        if rec.queue.is_empty() {
            // Claimed for its open mirrored writes or a catch-up only; if those ended while the
            // claim was answered, the lease goes back at once.
            let now = host.now_ms();
            self.chores_maybe_done(host, index, now);
            return;
        }
        if rec.swap_fence.is_some_and(|swap| task_uid > swap) {
            return; // behind a swap still waiting to go out: started once its fence is lifted
        }
        log::debug!("miroir: worker {} starts task {task_uid} on index {index}", self.worker);
        let Some(job) = job else {
            log::warn!("miroir: job {task_uid} on index {index} has no record; dropping it");
            self.finish(host, index, task_uid, Outcome::Dropped);
            return;
        };
        if let Some(task) = task.as_ref().filter(|t| t.canceled_by.is_some()) {
            // A cancelation reached it while it waited: it never goes out. A client still waiting
            // gets its task (canceled), as a node would have answered `202` long before.
            if task.propose.is_none() {
                self.record_outcome(host, &job, ProposeOutcome::Accepted);
            }
            let close = TaskClose {
                status: "canceled".into(),
                error: None,
                finished_ms: now,
                details: None,
                nodes: Vec::new(),
                version: None,
                repair_attempts: 0,
            };
            self.update_task(host, task_uid, TaskChange::Close(Box::new(close)));
            self.finish(host, index, task_uid, Outcome::Dropped);
            return;
        }
        let client_answered = task.as_ref().is_some_and(|t| t.propose.is_some());
        let body: Option<Value> =
            if job.mirror.is_some() { None } else { job.body.as_deref().and_then(|b| serde_json::from_slice(b.as_bytes()).ok()) };
        let proposal = match job.mirror {
            // A mirrored write is sent as is; there are no settings to predict.
            Some(_) => Ok(Proposal::Patch(serde_json::Map::new())),
            None => Proposal::from_request(&job.method, job.setting_key.as_deref(), body.as_ref()),
        };
        let proposal = match proposal {
            Ok(p) => p,
            Err(reason) => {
                let err = MeiliError::bad_request(reason);
                self.finish(host, index, task_uid, Outcome::Failed(err.to_json()));
                return;
            }
        };
        let n = self.cfg.nodes.len();
        let mut run = Running {
            job,
            proposal,
            epoch: 0,
            step: Step::Propose,
            nodes: vec![NodeRun::default(); n],
            outstanding: 0,
            started_ms: now,
            round_sent_ms: now,
            answered_ms: now,
            task_deadline_ms: now + self.cfg.settings_broadcast.task_timeout_s * 1000,
            repair_attempt: 0,
            resume_at_ms: 0,
            renew_at_ms: now + self.cfg.state.lease_renew_ms(),
            client_answered,
            node_details: None,
            seq: None,
            auth_refusal: None,
            excluded,
            resync: None,
            swap_checking: false,
        };
        if let Some(frozen) = rec.frozen.as_ref().filter(|_| !run.job.lifts_freeze) {
            // Queued before the freeze: refuse it like any write to a frozen index.
            let err = MeiliError::index_frozen(index, &frozen.reason);
            if !run.client_answered {
                self.record_outcome(host, &run.job, ProposeOutcome::Rejected {
                    status: err.status,
                    body: err.body(),
                    content_type: Some("application/json".into()),
                });
            }
            self.finish(host, index, task_uid, Outcome::Failed(err.to_json()));
            return;
        }
        if let Some(node) = run.job.resync.clone() {
            let target = self.cfg.nodes.iter().position(|n| n.id == node);
            let source = (0..n).find(|i| !run.excluded.contains(i) && Some(*i) != target);
            self.jobs.insert(index.to_string(), run);
            match (target, source) {
                (Some(t), Some(s)) => self.begin_resync(host, index, t, s),
                _ => {
                    let err = MeiliError::bad_request(format!("no node in sync to copy index `{index}` from to node `{node}`"));
                    self.finish(host, index, task_uid, Outcome::Failed(err.to_json()));
                }
            }
            return;
        }
        if !run.excluded.is_empty() {
            let job = run.job.clone();
            self.keep_in_log(host, index, &job);
        }
        let included: Vec<usize> = (0..n).filter(|i| !run.excluded.contains(i)).collect();
        if run.job.mirror.is_some() {
            // Mirrored: no phase (the settings do not change), the task starts when a node
            // starts it (`mirror_tasks.rs`).
            let holds = run.job.holds.clone().filter(|h| !h.is_empty());
            self.jobs.insert(index.to_string(), run);
            match holds {
                Some(holds) => self.begin_swap(host, index, holds),
                None => self.propose_round(host, index, included),
            }
            return;
        }
        self.update_task(host, task_uid, TaskChange::Start { now_ms: now });
        let sequential = self.cfg.settings_broadcast.strategy == Strategy::Sequential && !run.job.drift_repair;
        if sequential {
            run.seq = Some(Sequential { snapshots: vec![None; n], ..Sequential::default() });
        }
        self.jobs.insert(index.to_string(), run);
        self.set_phase(host, index, Phase::Propose);
        if sequential {
            self.seq_begin_node(host, index, 0);
        } else {
            let targets = match self.jobs.get(index).and_then(|r| r.job.targets.as_ref()) {
                Some(ids) => self.cfg.nodes.iter().enumerate().filter(|(i, c)| ids.contains(&c.id) && included.contains(i)).map(|(i, _)| i).collect(),
                None => included,
            };
            self.propose_round(host, index, targets);
        }
    }

    // ----- helpers -----

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        host: &mut dyn Host,
        index: &str,
        node: usize,
        purpose: Purpose,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        timeout_ms: u64,
    ) -> bool {
        let (Some(run), Some(cfg)) = (self.jobs.get(index), self.cfg.nodes.get(node)) else {
            return false;
        };
        let mut headers = Vec::new();
        // A mirrored write keeps its content type even without a body: the node answers an
        // empty body by what the type promised (`missing_payload`), as it would to the client.
        if body.is_some() || (purpose == Purpose::Propose && run.job.mirror.is_some()) {
            // The client's content type as sent (a node refuses a missing or wrong one, and so
            // must the fleet); bodies the filter writes itself (rollbacks) are JSON.
            let filter_made = run.seq.as_ref().is_some_and(|s| s.rolling_back);
            let ct = if filter_made { Some("application/json".to_string()) } else { run.job.content_type.clone() };
            if let Some(ct) = ct {
                headers.push(("content-type".to_string(), ct));
            }
        }
        // Writes carry the client's credentials (the filter never lends a client more rights);
        // the filter's own reads (task polls, read-backs) use the node key when one is set, so a
        // client key scoped to `settings.update` alone does not make a good write look diverged.
        let node_key = match purpose {
            Purpose::Propose => None,
            _ => self.node_key(host),
        };
        if let Some(auth) = node_key.as_ref().or(run.job.authorization.as_ref()) {
            headers.push(("authorization".to_string(), auth.clone()));
        }
        let callout = Callout {
            cluster: cfg.cluster.clone(),
            method: method.to_string(),
            path: path.to_string(),
            authority: cfg.authority.clone(),
            headers,
            body,
            timeout_ms,
        };
        let epoch = run.epoch;
        match host.dispatch(&callout) {
            Ok(token) => {
                self.callouts.insert(token, Tag { index: index.to_string(), epoch, node, purpose });
                true
            }
            Err(e) => {
                log::warn!("miroir: callout to {} ({}) refused: {e}", cfg.id, cfg.cluster);
                host.counter_add(&metrics::for_node(metrics::CALLOUT_ERRORS_TOTAL, &cfg.id), 1);
                false
            }
        }
    }

    /// `Authorization` for the filter's own calls to the nodes, when a node key is set.
    pub(super) fn node_key(&self, host: &dyn Host) -> Option<String> {
        host.env(&self.cfg.node_api_key_env).filter(|k| !k.is_empty()).map(|k| format!("Bearer {k}"))
    }

    /// The job's phase, in the index record (whose hot projection says "inconsistent" while a
    /// job is under way), the task and the gauge.
    fn set_phase(&mut self, host: &mut dyn Host, index: &str, phase: Phase) {
        host.gauge_set(&metrics::for_index(metrics::BROADCAST_PHASE, index), phase.gauge());
        let op = Op::SetPhase { index: index.to_string(), owner: self.worker.clone(), phase };
        self.submit(host, op, Awaiting::Logged(format!("index {index}: recording phase {} failed", phase.name())));
        if let Some(run) = self.jobs.get(index) {
            let task_uid = run.job.task_uid;
            self.update_task(host, task_uid, TaskChange::Phase(phase.name().into()));
        }
    }

    fn update_task(&mut self, host: &mut dyn Host, task_uid: u64, change: TaskChange) {
        self.submit(host, Op::UpdateTask { task_uid, change }, Awaiting::Logged(format!("task {task_uid}")));
    }

    #[allow(clippy::too_many_arguments)]
    fn close_task(
        &mut self,
        host: &mut dyn Host,
        index: &str,
        task_uid: u64,
        status: &str,
        error: Option<Value>,
        version: Option<u64>,
        now: u64,
    ) {
        let run = self.jobs.get(index);
        let nodes: Vec<NodeTaskInfo> = self
            .cfg
            .nodes
            .iter()
            .enumerate()
            .map(|(i, cfg)| {
                let n = run.and_then(|r| r.nodes.get(i));
                NodeTaskInfo {
                    node: cfg.id.clone(),
                    task_uid: n.and_then(|n| n.task_uid),
                    status: n.and_then(|n| n.task.as_ref()).map(|t| match t {
                        NodeTask::Pending => "processing".to_string(),
                        NodeTask::Succeeded => "succeeded".to_string(),
                        NodeTask::Failed(_) => "failed".to_string(),
                    }),
                    fingerprint: n.and_then(|n| n.readback.as_ref()).map(|(f, _)| f.clone()),
                }
            })
            .collect();
        let details = run.and_then(|r| r.node_details.clone());
        let attempts = run.map(|r| r.repair_attempt).unwrap_or_default();
        let close = TaskClose {
            status: status.into(),
            error,
            finished_ms: now,
            details,
            nodes,
            version,
            repair_attempts: attempts,
        };
        self.update_task(host, task_uid, TaskChange::Close(Box::new(close)));
    }

    fn record_result(&self, host: &mut dyn Host, index: &str, result: &str, now: u64) {
        // Drift repairs have their own counter, mirrored writes theirs; broadcasts are the
        // settings writes clients asked for.
        if self.jobs.get(index).is_some_and(|r| r.job.drift_repair || r.job.mirror.is_some()) {
            return;
        }
        host.counter_add(&metrics::for_index_result(metrics::BROADCAST_TOTAL, index, result), 1);
        if let Some(run) = self.jobs.get(index) {
            host.histogram_record(
                &metrics::for_index(metrics::BROADCAST_DURATION_MS, index),
                now.saturating_sub(run.started_ms),
            );
        }
    }
}

enum Outcome {
    Failed(Value),
    /// The nodes answered at once (refused alike with `error`, applied without a task when
    /// None, or unreachable): the client got their answer and there is no task — unless the
    /// client was answered `202` while it waited (`TaskChange::EndedWithoutTask`).
    Rejected { error: Option<Value> },
    /// The job's record vanished (e.g. retention overran it): nothing to report.
    Dropped,
    /// A mirrored write the nodes enqueued: its task follows their tasks (`mirror_tasks.rs`).
    Tracked,
}

pub use super::state::index_store::read_hot;

