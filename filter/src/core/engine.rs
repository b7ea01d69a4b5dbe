//! The broadcast engine of one worker VM: runs the settings jobs of the indexes whose lease this
//! worker holds, from its root context (callouts owned by an HTTP context die with the stream).
//!
//! Life of a job (docs/architecture.md §3): PROPOSE to the nodes → WAIT for their tasks → VERIFY by reading the
//! settings back from every node → COMMIT a new version, or REPAIR the nodes that disagree (with
//! backoff) and verify again → FROZEN when repair keeps failing. Everything other workers must
//! see (queue, lease, versions, tasks) is in shared data; this struct only holds what is in flight.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use super::admin_views::{self, VerifyPurpose};
use super::config::{Config, Strategy};
use super::errors::MeiliError;
use super::fingerprint::fingerprint;
use super::host::{Callout, CalloutResponse, Host, LocalReply};
use super::job::{self, NodeTask, ProposeResult};
use super::metrics;
use super::proposal::Proposal;
use super::state::keys;
use super::state::lease::LEASE_RENEW_MS;
use super::state::ledger::{Commit, Freeze, Head, Ledger, Next, Op, OpId, VerifyView};
use super::state::records::{FrozenRecord, JobRecord, NodeTaskInfo, Phase, ProposeOutcome, TaskRecord};
use super::state::shared_data::SharedDataLedger;
use super::state::store::{self, StoreError};
use super::state::task_change::{TaskChange, TaskClose};
use super::tasks;

mod answers;
mod drift;
mod queued_writes;

use answers::Awaiting;
pub use queued_writes::Queued;


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
    task_deadline_ms: u64,
    repair_attempt: u32,
    resume_at_ms: u64,
    renew_at_ms: u64,
    client_answered: bool,
    node_details: Option<Value>,
    seq: Option<Sequential>,
    /// A node refused to let the job read its settings back (401/403): its error.
    auth_refusal: Option<Value>,
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
    jobs: BTreeMap<String, Running>,
    callouts: BTreeMap<u32, Tag>,
    waiting: BTreeMap<u64, Waiter>,
    kicked: BTreeSet<String>,
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
    awaiting: BTreeMap<OpId, Awaiting>,
    /// Indexes whose claim or next job is being asked of the ledger: not claimed again meanwhile.
    claiming: BTreeSet<String>,
    /// A scheduled drift run is being claimed from the ledger.
    drift_claim_pending: bool,
    /// `drift_progress` is under way (answers that come at once call back into it).
    drift_progressing: bool,
    /// Indexes whose last check is being read for waiting operators.
    verify_reads: BTreeSet<String>,
    /// Clients' writes the ledger queued at once, for `queue_write` to hand back.
    queued_now: BTreeMap<u32, Result<u64, String>>,
    /// Clients whose write the ledger answers later.
    queueing_later: BTreeSet<u32>,
}

enum Verdict {
    Commit { fingerprint: String, fingerprints: Vec<Option<String>> },
    Repair { bad: Vec<usize> },
    Fail(Value),
    Freeze { bad: Vec<usize> },
}

impl Engine {
    pub fn new(cfg: Config, worker: String) -> Engine {
        let ledger = Box::new(SharedDataLedger::new(cfg.clone()));
        Engine::with_ledger(cfg, worker, ledger)
    }

    pub fn with_ledger(cfg: Config, worker: String, ledger: Box<dyn Ledger>) -> Engine {
        Engine {
            cfg,
            worker,
            jobs: BTreeMap::new(),
            callouts: BTreeMap::new(),
            waiting: BTreeMap::new(),
            kicked: BTreeSet::new(),
            drift: None,
            last_epoch: 0,
            verify_requests: Vec::new(),
            verify_waiters: Vec::new(),
            warned_node_key: false,
            ledger,
            last_op: 0,
            awaiting: BTreeMap::new(),
            claiming: BTreeSet::new(),
            drift_claim_pending: false,
            drift_progressing: false,
            verify_reads: BTreeSet::new(),
            queued_now: BTreeMap::new(),
            queueing_later: BTreeSet::new(),
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

    /// Root tick period the glue should use now.
    pub fn tick_ms(&self) -> u64 {
        if self.jobs.is_empty()
            && self.waiting.is_empty()
            && self.drift.is_none()
            && self.verify_waiters.is_empty()
            && self.awaiting.is_empty()
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
    }

    /// New work was queued on `index` by this VM: try to run it now rather than at the next scan.
    pub fn kick(&mut self, index: &str) {
        self.kicked.insert(index.to_string());
    }

    pub fn client_gone(&mut self, context_id: u32) {
        self.waiting.retain(|_, w| w.context_id != context_id);
        self.verify_waiters.retain(|w| w.context_id != context_id);
        self.queueing_later.remove(&context_id);
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
        let indexes: BTreeSet<String> = self.verify_waiters.iter().map(|w| w.index.clone()).collect();
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
        self.on_ledger_answers(host);
        self.claim_work(host);
        self.drive_timers(host);
        self.serve_waiters(host);
        self.drive_drift(host);
        if !self.verify_waiters.is_empty() {
            self.serve_verify_waiters(host);
        }
    }

    pub fn on_callout_response(&mut self, host: &mut dyn Host, token: u32, resp: CalloutResponse) {
        if self.ledger.on_callout_response(host, token, &resp) {
            self.on_ledger_answers(host);
            return;
        }
        let Some(tag) = self.callouts.remove(&token) else {
            return;
        };
        log::debug!("miroir: {:?} answer from node {} on {}: {:?}", tag.purpose, tag.node, tag.index, resp.status);
        if matches!(tag.purpose, Purpose::DriftList | Purpose::DriftRead) {
            self.on_drift_response(host, &tag, &resp);
            return;
        }
        let Some(run) = self.jobs.get_mut(&tag.index) else {
            return;
        };
        if run.epoch != tag.epoch {
            return; // an answer from an abandoned round
        }
        if resp.status.is_none() || resp.status.is_some_and(|s| s >= 500) {
            if let Some(node) = self.cfg.nodes.get(tag.node) {
                host.counter_add(&metrics::for_node(metrics::CALLOUT_ERRORS_TOTAL, &node.id), 1);
            }
        }
        match tag.purpose {
            Purpose::Propose => self.on_propose(host, &tag, &resp),
            Purpose::Poll => self.on_poll(host, &tag, &resp),
            Purpose::Verify => self.on_verify(host, &tag, &resp),
            Purpose::Snapshot => self.on_snapshot(host, &tag, &resp),
            Purpose::DriftList | Purpose::DriftRead => {}
        }
    }

    fn claim_work(&mut self, host: &mut dyn Host) {
        let kicked = std::mem::take(&mut self.kicked);
        self.submit(host, Op::ReadActive, Awaiting::Active { kicked });
    }

    /// The indexes with work are known: claim each one no job of this worker runs yet.
    fn claim_indexes(&mut self, host: &mut dyn Host, candidates: BTreeSet<String>) {
        let now = host.now_ms();
        for index in candidates {
            if self.jobs.contains_key(&index) || self.claiming.contains(&index) {
                continue;
            }
            self.claiming.insert(index.clone());
            let op = Op::ClaimHead { index: index.clone(), owner: self.worker.clone(), now_ms: now };
            self.submit(host, op, Awaiting::Claim { index });
        }
    }

    fn start_job(&mut self, host: &mut dyn Host, index: &str, head: Head) {
        let now = host.now_ms();
        let Head { rec, task_uid, job, task } = head;
        log::debug!("miroir: worker {} starts task {task_uid} on index {index}", self.worker);
        let Some(job) = job else {
            log::warn!("miroir: job {task_uid} on index {index} has no record; dropping it");
            self.finish(host, index, task_uid, Outcome::Dropped);
            return;
        };
        let client_answered = task.as_ref().is_some_and(|t| t.propose.is_some());
        let body: Option<Value> = job.body.as_deref().and_then(|b| serde_json::from_str(b).ok());
        let proposal = match Proposal::from_request(&job.method, job.setting_key.as_deref(), body.as_ref()) {
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
            task_deadline_ms: now + self.cfg.settings_broadcast.task_timeout_s * 1000,
            repair_attempt: 0,
            resume_at_ms: 0,
            renew_at_ms: now + LEASE_RENEW_MS,
            client_answered,
            node_details: None,
            seq: None,
            auth_refusal: None,
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
                Some(ids) => self.cfg.nodes.iter().enumerate().filter(|(_, c)| ids.contains(&c.id)).map(|(i, _)| i).collect(),
                None => (0..n).collect(),
            };
            self.propose_round(host, index, targets);
        }
    }

    // ----- propose -----

    fn propose_round(&mut self, host: &mut dyn Host, index: &str, targets: Vec<usize>) {
        let now = host.now_ms();
        let task_timeout_ms = self.cfg.settings_broadcast.task_timeout_s * 1000;
        let epoch = self.new_epoch();
        let Some(run) = self.jobs.get_mut(index) else { return };
        run.epoch = epoch;
        run.step = Step::Propose;
        run.outstanding = 0;
        run.task_deadline_ms = now + task_timeout_ms;
        for (i, node) in run.nodes.iter_mut().enumerate() {
            if targets.contains(&i) {
                *node = NodeRun { in_round: true, readback: node.readback.take(), ..NodeRun::default() };
            } else {
                node.in_round = false;
            }
        }
        for i in targets {
            let (method, path, body) = self.request_for(index, i);
            let timeout = self.cfg.settings_broadcast.propose_timeout_ms;
            if self.call(host, index, i, Purpose::Propose, &method, &path, body, timeout) {
                if let Some(run) = self.jobs.get_mut(index) {
                    run.outstanding += 1;
                }
            } else if let Some(node) = self.jobs.get_mut(index).and_then(|r| r.nodes.get_mut(i)) {
                node.propose = Some(ProposeResult::Failed { reason: "dispatch refused by the host".into() });
            }
        }
        self.after_propose_answer(host, index);
    }

    /// What to send node `i` in this round: the client's write, or during a sequential rollback
    /// the node's own previous settings.
    fn request_for(&self, index: &str, node: usize) -> (String, String, Option<Vec<u8>>) {
        let Some(run) = self.jobs.get(index) else {
            return ("GET".into(), "/health".into(), None);
        };
        if let Some(seq) = &run.seq {
            if seq.rolling_back {
                let Some(mut snapshot) = seq.snapshots.get(node).cloned().flatten() else {
                    // The index did not exist there before: back to default settings.
                    return ("DELETE".into(), format!("/indexes/{index}/settings"), None);
                };
                // Reads mask embedder apiKeys: writing them back would overwrite the real keys.
                if let Some(obj) = snapshot.as_object_mut() {
                    obj.remove("embedders");
                    obj.remove("chat");
                    obj.remove("foreignKeys");
                }
                let body = serde_json::to_vec(&snapshot).ok();
                return ("PATCH".into(), format!("/indexes/{index}/settings"), body);
            }
        }
        let body = run.job.body.as_ref().map(|b| b.as_bytes().to_vec());
        (run.job.method.clone(), run.job.path.clone(), body)
    }

    fn on_propose(&mut self, host: &mut dyn Host, tag: &Tag, resp: &CalloutResponse) {
        let Some(run) = self.jobs.get_mut(&tag.index) else { return };
        let result = job::parse_propose(resp);
        if let Some(node) = run.nodes.get_mut(tag.node) {
            if let ProposeResult::Accepted { task_uid } = result {
                node.task_uid = Some(task_uid);
            }
            node.propose = Some(result);
        }
        run.outstanding = run.outstanding.saturating_sub(1);
        self.after_propose_answer(host, &tag.index);
    }

    fn after_propose_answer(&mut self, host: &mut dyn Host, index: &str) {
        let now = host.now_ms();
        let Some(run) = self.jobs.get_mut(index) else { return };
        if run.outstanding > 0 || run.step != Step::Propose {
            return;
        }
        let results: Vec<ProposeResult> = run
            .nodes
            .iter()
            .filter(|n| n.in_round)
            .map(|n| n.propose.clone().unwrap_or(ProposeResult::Failed { reason: "no answer".into() }))
            .collect();
        let first_round = run.repair_attempt == 0
            && run.seq.as_ref().is_none_or(|s| s.current == 0 && !s.rolling_back);
        if first_round && !run.client_answered {
            if let Some((status, body)) = job::unanimous_rejection(&results) {
                let job = run.job.clone();
                self.record_outcome(host, &job, ProposeOutcome::Rejected { status, body, content_type: Some("application/json".into()) });
                self.finish(host, index, job.task_uid, Outcome::Rejected);
                return;
            }
            run.client_answered = true;
            let job = run.job.clone();
            self.record_outcome(host, &job, ProposeOutcome::Accepted);
        }
        let Some(run) = self.jobs.get_mut(index) else { return };
        run.step = Step::Wait;
        for node in run.nodes.iter_mut().filter(|n| n.in_round) {
            node.polls = 0;
            node.next_poll_ms = now + job::poll_delay_ms(0);
            if node.task_uid.is_none() {
                // Refused, unreachable or 5xx: nothing to wait for; verify will judge it.
                node.task = Some(NodeTask::Failed(Value::Null));
            }
        }
        self.set_phase(host, index, Phase::Wait);
        self.after_task_answer(host, index);
    }

    // ----- wait for node tasks -----

    fn drive_timers(&mut self, host: &mut dyn Host) {
        let now = host.now_ms();
        let indexes: Vec<String> = self.jobs.keys().cloned().collect();
        for index in indexes {
            let Some(run) = self.jobs.get_mut(&index) else { continue };
            if now < run.renew_at_ms {
                self.drive_job_timers(host, &index, now);
                continue;
            }
            // Renew first; the job's timers run once the ledger says the lease is still ours.
            run.renew_at_ms = now + LEASE_RENEW_MS;
            let task_uid = run.job.task_uid;
            let op = Op::RenewLease { index: index.clone(), owner: self.worker.clone(), now_ms: now };
            self.submit(host, op, Awaiting::Renew { index, task_uid, now_ms: now });
        }
    }

    /// The ledger answered a renewal: drop the job if the lease is lost, else drive its timers.
    fn on_renewed(&mut self, host: &mut dyn Host, index: &str, task_uid: u64, now: u64, still_mine: bool) {
        if self.jobs.get(index).is_none_or(|r| r.job.task_uid != task_uid) {
            return;
        }
        if !still_mine {
            log::warn!("miroir: index {index}: lease lost; another worker finishes the job");
            self.jobs.remove(index);
            return;
        }
        self.drive_job_timers(host, index, now);
    }

    fn drive_job_timers(&mut self, host: &mut dyn Host, index: &str, now: u64) {
        let Some(run) = self.jobs.get(index) else { return };
        match run.step {
            Step::Wait => {
                let due: Vec<(usize, u64)> = run
                    .nodes
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| n.in_round && n.task.is_none() && !n.poll_in_flight && n.next_poll_ms <= now)
                    .filter_map(|(i, n)| n.task_uid.map(|t| (i, t)))
                    .collect();
                let timed_out = now >= run.task_deadline_ms;
                if timed_out {
                    if let Some(run) = self.jobs.get_mut(index) {
                        for node in run.nodes.iter_mut().filter(|n| n.in_round && n.task.is_none()) {
                            node.task = Some(NodeTask::Failed(json!({"code": "miroir_task_timeout"})));
                        }
                    }
                    self.after_task_answer(host, index);
                    return;
                }
                for (i, node_task) in due {
                    let timeout = self.cfg.settings_broadcast.verify_timeout_s * 1000;
                    let path = format!("/tasks/{node_task}");
                    if self.call(host, index, i, Purpose::Poll, "GET", &path, None, timeout) {
                        if let Some(n) = self.jobs.get_mut(index).and_then(|r| r.nodes.get_mut(i)) {
                            n.poll_in_flight = true;
                        }
                    }
                }
            }
            Step::Backoff if now >= run.resume_at_ms => {
                let bad: Vec<usize> = run
                    .nodes
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| n.readback.as_ref().is_none_or(|(_, ok)| !ok) || n.in_round)
                    .map(|(i, _)| i)
                    .collect();
                self.set_phase(host, index, Phase::Repair);
                self.propose_round(host, index, bad);
            }
            _ => {}
        }
    }

    fn on_poll(&mut self, host: &mut dyn Host, tag: &Tag, resp: &CalloutResponse) {
        let now = host.now_ms();
        let Some(run) = self.jobs.get_mut(&tag.index) else { return };
        let Some(node) = run.nodes.get_mut(tag.node) else { return };
        node.poll_in_flight = false;
        match job::parse_task(resp) {
            Some((NodeTask::Pending, _)) | None => {
                node.polls += 1;
                node.next_poll_ms = now + job::poll_delay_ms(node.polls);
            }
            Some((terminal, details)) => {
                node.task = Some(terminal);
                if run.node_details.is_none() {
                    run.node_details = details;
                }
            }
        }
        self.after_task_answer(host, &tag.index);
    }

    fn after_task_answer(&mut self, host: &mut dyn Host, index: &str) {
        let Some(run) = self.jobs.get(index) else { return };
        if run.step != Step::Wait || run.nodes.iter().any(|n| n.in_round && n.task.is_none()) {
            return;
        }
        let in_round: Vec<Option<NodeTask>> =
            run.nodes.iter().filter(|n| n.in_round).map(|n| n.task.clone()).collect();
        let all_accepted = run
            .nodes
            .iter()
            .filter(|n| n.in_round)
            .all(|n| matches!(n.propose, Some(ProposeResult::Accepted { .. })));
        let rolling_back = run.seq.as_ref().is_some_and(|s| s.rolling_back);
        if rolling_back {
            let failure = run.seq.as_ref().and_then(|s| s.failure.clone()).unwrap_or(Value::Null);
            let task_uid = run.job.task_uid;
            self.finish(host, index, task_uid, Outcome::Failed(failure));
            return;
        }
        if run.repair_attempt == 0 && all_accepted {
            if let Some(error) = job::unanimous_task_failure(&in_round) {
                // Every node refused the same way: nothing diverged, nothing to repair.
                if run.seq.as_ref().is_some_and(|s| !s.applied.is_empty()) {
                    self.seq_rollback(host, index, error);
                    return;
                }
                let task_uid = run.job.task_uid;
                self.finish(host, index, task_uid, Outcome::Failed(error));
                return;
            }
        }
        self.verify_round(host, index);
    }

    // ----- verify -----

    fn verify_round(&mut self, host: &mut dyn Host, index: &str) {
        let epoch = self.new_epoch();
        let Some(run) = self.jobs.get_mut(index) else { return };
        run.epoch = epoch;
        run.step = Step::Verify;
        run.outstanding = 0;
        let targets: Vec<usize> = match &run.seq {
            Some(seq) => vec![seq.current],
            None => (0..run.nodes.len()).collect(),
        };
        for (i, node) in run.nodes.iter_mut().enumerate() {
            if targets.contains(&i) {
                node.readback = None;
            }
        }
        self.set_phase(host, index, Phase::Verify);
        let path = format!("/indexes/{index}/settings");
        let timeout = self.cfg.settings_broadcast.verify_timeout_s * 1000;
        for i in targets {
            if self.call(host, index, i, Purpose::Verify, "GET", &path, None, timeout) {
                if let Some(run) = self.jobs.get_mut(index) {
                    run.outstanding += 1;
                }
            }
        }
        self.after_verify_answer(host, index);
    }

    fn on_verify(&mut self, host: &mut dyn Host, tag: &Tag, resp: &CalloutResponse) {
        let Some(run) = self.jobs.get_mut(&tag.index) else { return };
        let parsed: Option<Value> = match resp.status {
            Some(200) => serde_json::from_slice(&resp.body).ok(),
            _ => None,
        };
        if let (Some(node), Some(body)) = (run.nodes.get_mut(tag.node), parsed) {
            let ok = run.proposal.mismatches(&body).is_empty();
            node.readback = Some((fingerprint(&body), ok));
        }
        if matches!(resp.status, Some(401) | Some(403)) && run.auth_refusal.is_none() {
            run.auth_refusal = serde_json::from_slice(&resp.body).ok();
        }
        run.outstanding = run.outstanding.saturating_sub(1);
        self.after_verify_answer(host, &tag.index);
    }

    fn after_verify_answer(&mut self, host: &mut dyn Host, index: &str) {
        let Some(run) = self.jobs.get(index) else { return };
        if run.outstanding > 0 || run.step != Step::Verify {
            return;
        }
        if let Some(refusal) = run.auth_refusal.clone() {
            // The credentials cannot read the settings back: that says nothing about the fleet,
            // so fail the task with the node's own answer rather than repair or freeze.
            let task_uid = run.job.task_uid;
            self.finish(host, index, task_uid, Outcome::Failed(refusal));
            return;
        }
        if run.seq.is_some() {
            self.seq_after_verify(host, index);
            return;
        }
        let readbacks: Vec<Option<(String, bool)>> = run.nodes.iter().map(|n| n.readback.clone()).collect();
        let verdict = self.judge(run, &readbacks);
        self.apply_verdict(host, index, verdict);
    }

    fn judge(&self, run: &Running, readbacks: &[Option<(String, bool)>]) -> Verdict {
        let (reference, agree) = job::agreeing_nodes(readbacks);
        let bad: Vec<usize> = agree.iter().enumerate().filter(|(_, ok)| !**ok).map(|(i, _)| i).collect();
        match reference {
            Some(fp) if bad.is_empty() => Verdict::Commit {
                fingerprint: fp,
                fingerprints: readbacks.iter().map(|r| r.as_ref().map(|(f, _)| f.clone())).collect(),
            },
            _ if run.repair_attempt < self.cfg.settings_broadcast.max_repair_retries => {
                // With no node reading back the proposal, every node is re-sent the proposal.
                Verdict::Repair { bad: if bad.is_empty() { (0..readbacks.len()).collect() } else { bad } }
            }
            _ if self.cfg.settings_broadcast.freeze_writes_on_unrepairable => Verdict::Freeze { bad },
            _ => Verdict::Fail(
                MeiliError::settings_divergence(&run.job.index, &self.divergence_detail(&bad)).to_json(),
            ),
        }
    }

    fn divergence_detail(&self, bad: &[usize]) -> String {
        let ids: Vec<&str> = bad.iter().filter_map(|i| self.cfg.nodes.get(*i)).map(|n| n.id.as_str()).collect();
        format!("nodes {} do not hold the proposed settings", ids.join(", "))
    }

    fn apply_verdict(&mut self, host: &mut dyn Host, index: &str, verdict: Verdict) {
        let now = host.now_ms();
        match verdict {
            Verdict::Commit { fingerprint, fingerprints } => self.commit(host, index, fingerprint, fingerprints),
            Verdict::Repair { bad } => {
                host.counter_add(&metrics::for_index(metrics::HASH_MISMATCH_TOTAL, index), 1);
                let base = self.cfg.settings_broadcast.repair_backoff_base_ms;
                let Some(run) = self.jobs.get_mut(index) else { return };
                run.repair_attempt += 1;
                run.step = Step::Backoff;
                run.resume_at_ms = now + job::repair_backoff_ms(base, run.repair_attempt);
                for (i, node) in run.nodes.iter_mut().enumerate() {
                    node.in_round = bad.contains(&i);
                }
                let (task_uid, attempts) = (run.job.task_uid, run.repair_attempt);
                log::info!("miroir: index {index}: {}; repair attempt {attempts}", self.divergence_detail(&bad));
                self.update_task(host, task_uid, TaskChange::RepairAttempts(attempts));
                self.set_phase(host, index, Phase::Repair);
            }
            Verdict::Fail(error) => {
                host.counter_add(&metrics::for_index(metrics::HASH_MISMATCH_TOTAL, index), 1);
                let task_uid = self.jobs.get(index).map(|r| r.job.task_uid).unwrap_or_default();
                self.finish(host, index, task_uid, Outcome::Failed(error));
            }
            Verdict::Freeze { bad } => {
                host.counter_add(&metrics::for_index(metrics::HASH_MISMATCH_TOTAL, index), 1);
                self.freeze(host, index, bad);
            }
        }
    }

    // ----- sequential (legacy) strategy -----

    fn seq_begin_node(&mut self, host: &mut dyn Host, index: &str, node: usize) {
        let epoch = self.new_epoch();
        let Some(run) = self.jobs.get_mut(index) else { return };
        let Some(seq) = run.seq.as_mut() else { return };
        seq.current = node;
        run.epoch = epoch;
        run.step = Step::Snapshot;
        run.outstanding = 0;
        let path = format!("/indexes/{index}/settings");
        let timeout = self.cfg.settings_broadcast.verify_timeout_s * 1000;
        if self.call(host, index, node, Purpose::Snapshot, "GET", &path, None, timeout) {
            if let Some(run) = self.jobs.get_mut(index) {
                run.outstanding = 1;
            }
        } else {
            self.propose_round(host, index, vec![node]);
        }
    }

    fn on_snapshot(&mut self, host: &mut dyn Host, tag: &Tag, resp: &CalloutResponse) {
        let Some(run) = self.jobs.get_mut(&tag.index) else { return };
        let Some(seq) = run.seq.as_mut() else { return };
        // Only a node that says the index does not exist has nothing to roll back to (None: the
        // rollback resets it to defaults). Any other failure to read leaves nothing to restore
        // from, so that node is not touched: the write stops here and earlier nodes roll back.
        let snapshot = match resp.status {
            Some(200) => serde_json::from_slice::<Value>(&resp.body).ok().map(Some),
            Some(404) if job::is_index_not_found(&resp.body) => Some(None),
            _ => None,
        };
        let Some(snapshot) = snapshot else {
            let detail = match resp.status {
                Some(s) => format!("its settings could not be read before the write (HTTP {s})"),
                None => "no answer to the settings read before the write".to_string(),
            };
            let node_id = self.cfg.nodes.get(tag.node).map(|n| n.id.clone()).unwrap_or_default();
            let err = MeiliError::node_unreachable(&node_id, &format!("{detail}; nothing was changed there")).to_json();
            self.seq_rollback(host, &tag.index, err);
            return;
        };
        if let Some(slot) = seq.snapshots.get_mut(tag.node) {
            *slot = snapshot;
        }
        self.propose_round(host, &tag.index, vec![tag.node]);
    }

    fn seq_after_verify(&mut self, host: &mut dyn Host, index: &str) {
        let Some(run) = self.jobs.get_mut(index) else { return };
        let Some(seq) = run.seq.as_mut() else { return };
        let current = seq.current;
        let ok = run.nodes.get(current).and_then(|n| n.readback.as_ref()).is_some_and(|(_, ok)| *ok);
        if !ok {
            let err = MeiliError::settings_divergence(index, &self.divergence_detail(&[current])).to_json();
            host.counter_add(&metrics::for_index(metrics::HASH_MISMATCH_TOTAL, index), 1);
            self.seq_rollback(host, index, err);
            return;
        }
        seq.applied.push(current);
        let next = current + 1;
        if next < run.nodes.len() {
            self.seq_begin_node(host, index, next);
            return;
        }
        let readbacks: Vec<Option<(String, bool)>> = run.nodes.iter().map(|n| n.readback.clone()).collect();
        let (reference, agree) = job::agreeing_nodes(&readbacks);
        match reference {
            Some(fp) if agree.iter().all(|a| *a) => {
                let fps = readbacks.iter().map(|r| r.as_ref().map(|(f, _)| f.clone())).collect();
                self.commit(host, index, fp, fps);
            }
            _ => {
                let bad: Vec<usize> = agree.iter().enumerate().filter(|(_, a)| !**a).map(|(i, _)| i).collect();
                let task_uid = run.job.task_uid;
                let err = MeiliError::settings_divergence(index, &self.divergence_detail(&bad)).to_json();
                self.finish(host, index, task_uid, Outcome::Failed(err));
            }
        }
    }

    fn seq_rollback(&mut self, host: &mut dyn Host, index: &str, failure: Value) {
        let Some(run) = self.jobs.get_mut(index) else { return };
        let task_uid = run.job.task_uid;
        let Some(seq) = run.seq.as_mut() else { return };
        let targets = seq.applied.clone();
        if targets.is_empty() {
            self.finish(host, index, task_uid, Outcome::Failed(failure));
            return;
        }
        log::info!("miroir: index {index}: sequential write failed; rolling back {} node(s)", targets.len());
        seq.rolling_back = true;
        seq.failure = Some(failure);
        self.propose_round(host, index, targets);
    }

    // ----- commit, fail, freeze -----

    fn commit(&mut self, host: &mut dyn Host, index: &str, fp: String, fingerprints: Vec<Option<String>>) {
        let Some(run) = self.jobs.get(index) else { return };
        let task_uid = run.job.task_uid;
        // A drift repair restores the committed settings: no new version.
        let bump = u64::from(!run.job.drift_repair);
        let fingerprints = self.cfg.nodes.iter().map(|n| n.id.clone()).zip(fingerprints).collect();
        let op = Op::CommitAsOwner(Commit {
            index: index.to_string(),
            owner: self.worker.clone(),
            task_uid,
            bump,
            fingerprint: fp,
            fingerprints,
        });
        self.submit(host, op, Awaiting::Commit { index: index.to_string(), task_uid });
    }

    /// The ledger answered a commit: `version` is the committed one, None if the lease was lost.
    fn on_committed(&mut self, host: &mut dyn Host, index: &str, task_uid: u64, version: Result<Option<u64>, StoreError>) {
        let Some(run) = self.jobs.get(index).filter(|r| r.job.task_uid == task_uid) else { return };
        let now = host.now_ms();
        let version = match version {
            Ok(Some(version)) => version,
            Ok(None) => {
                log::warn!("miroir: index {index}: lease lost before commit of task {task_uid}; leaving it to the new owner");
                self.jobs.remove(index);
                return;
            }
            Err(e) => {
                log::error!("miroir: index {index}: commit of task {task_uid} failed: {e}");
                self.jobs.remove(index);
                return;
            }
        };
        let proposal = run.proposal.clone();
        if run.job.drift_repair {
            host.counter_add(&metrics::for_index(metrics::DRIFT_REPAIR_TOTAL, index), 1);
        } else {
            let op = Op::MergeDesired { index: index.to_string(), proposal };
            self.submit(host, op, Awaiting::Logged(format!("index {index}: keeping desired settings failed")));
        }
        host.gauge_set(&metrics::for_index(metrics::SETTINGS_VERSION, index), version);
        host.gauge_set(&metrics::for_index(metrics::DIVERGENCE, index), 0);
        log::info!("miroir: index {index}: settings version {version} committed (task {task_uid})");
        self.close_task(host, index, task_uid, "succeeded", None, Some(version), now);
        self.record_result(host, index, "succeeded", now);
        self.next_job(host, index, task_uid);
    }

    fn freeze(&mut self, host: &mut dyn Host, index: &str, bad: Vec<usize>) {
        let Some(run) = self.jobs.get(index) else { return };
        let now = host.now_ms();
        let task_uid = run.job.task_uid;
        let detail = self.divergence_detail(&bad);
        let fingerprints: BTreeMap<String, Option<String>> = self
            .cfg
            .nodes
            .iter()
            .zip(run.nodes.iter())
            .map(|(cfg, n)| (cfg.id.clone(), n.readback.as_ref().map(|(f, _)| f.clone())))
            .collect();
        let record = FrozenRecord {
            reason: format!("settings diverged after {} repair attempt(s): {detail}", run.repair_attempt),
            nodes: bad.iter().filter_map(|i| self.cfg.nodes.get(*i)).map(|n| n.id.clone()).collect(),
            fingerprints,
            at_ms: now,
            task_uid: Some(task_uid),
        };
        let reason = record.reason.clone();
        let op = Op::Freeze(Freeze { index: index.to_string(), record, job: Some((self.worker.clone(), task_uid)) });
        self.submit(host, op, Awaiting::Freeze { index: index.to_string(), task_uid, detail, reason });
    }

    /// The ledger recorded a job's freeze (or failed to): end the job.
    fn on_frozen(&mut self, host: &mut dyn Host, index: &str, task_uid: u64, detail: &str, reason: &str, failed: Option<StoreError>) {
        if self.jobs.get(index).is_none_or(|r| r.job.task_uid != task_uid) {
            return;
        }
        let now = host.now_ms();
        if let Some(e) = failed {
            log::error!("miroir: index {index}: recording the freeze failed: {e}");
        }
        log::error!("miroir: index {index} FROZEN for writes: {reason}");
        host.gauge_set(&metrics::for_index(metrics::DIVERGENCE, index), 1);
        host.gauge_set(&metrics::for_index(metrics::BROADCAST_PHASE, index), Phase::Frozen.gauge());
        let err = MeiliError::settings_divergence(index, detail).to_json();
        self.close_task(host, index, task_uid, "failed", Some(err), None, now);
        self.update_task(host, task_uid, TaskChange::Frozen);
        self.record_result(host, index, "frozen", now);
        self.next_job(host, index, task_uid);
    }

    fn finish(&mut self, host: &mut dyn Host, index: &str, task_uid: u64, outcome: Outcome) {
        let now = host.now_ms();
        let op = Op::Dequeue { index: index.to_string(), owner: self.worker.clone(), task_uid };
        self.submit(host, op, Awaiting::Logged(format!("index {index}: dequeuing task {task_uid} failed")));
        match outcome {
            Outcome::Failed(error) => {
                self.close_task(host, index, task_uid, "failed", Some(error), None, now);
                self.record_result(host, index, "failed", now);
            }
            Outcome::Rejected => {
                self.update_task(host, task_uid, TaskChange::Rejected);
                self.record_result(host, index, "rejected", now);
            }
            Outcome::Dropped => {}
        }
        self.next_job(host, index, task_uid);
    }

    /// The running job of `index` has ended (committed, failed, frozen, rejected or dropped):
    /// release its record and, once the ledger says what is next, start the next one.
    fn next_job(&mut self, host: &mut dyn Host, index: &str, ended: u64) {
        self.jobs.remove(index);
        self.claiming.insert(index.to_string());
        let op = Op::EndJob { index: index.to_string(), owner: self.worker.clone(), task_uid: ended, now_ms: host.now_ms() };
        self.submit(host, op, Awaiting::Next { index: index.to_string() });
    }

    /// The ledger answered a job's end.
    fn on_next(&mut self, host: &mut dyn Host, index: &str, next: Result<Next, StoreError>) {
        self.claiming.remove(index);
        match next {
            Ok(Next::Start(head)) => self.start_job(host, index, *head),
            Ok(Next::Elsewhere) => {}
            Ok(Next::Idle(phase)) => {
                host.gauge_set(&metrics::for_index(metrics::BROADCAST_PHASE, index), phase.gauge());
                let op = Op::Deactivate { index: index.to_string() };
                self.submit(host, op, Awaiting::Logged(format!("index {index}: deactivating failed")));
            }
            Err(e) => log::warn!("miroir: index {index}: releasing the lease failed: {e}"),
        }
    }

    // ----- answering clients -----

    fn record_outcome(&mut self, host: &mut dyn Host, job: &JobRecord, outcome: ProposeOutcome) {
        self.update_task(host, job.task_uid, TaskChange::Propose(outcome));
        if job.origin_worker == self.worker {
            self.serve_waiters(host);
        } else {
            host.wake(&job.origin_worker);
        }
    }

    /// Answer paused clients whose propose outcome is known, or who waited past the propose
    /// timeout behind another job (they get `202 enqueued`; the task tells the rest).
    pub fn serve_waiters(&mut self, host: &mut dyn Host) {
        if self.waiting.is_empty() {
            return;
        }
        let uids: Vec<u64> = self.waiting.keys().copied().collect();
        self.submit(host, Op::ReadTasks { uids: uids.clone() }, Awaiting::Waiters { uids });
    }

    /// The tasks of waiting clients came back: answer those whose outcome is known.
    fn answer_waiters(&mut self, host: &mut dyn Host, uids: Vec<u64>, tasks: Vec<Option<TaskRecord>>) {
        let now = host.now_ms();
        let patience = self.cfg.settings_broadcast.propose_timeout_ms + 1000;
        for (uid, task) in uids.into_iter().zip(tasks) {
            let Some(waiter) = self.waiting.get(&uid) else { continue };
            let reply = match &task {
                Some(t) => match &t.propose {
                    Some(ProposeOutcome::Rejected { status, body, content_type }) => Some(LocalReply {
                        status: *status,
                        headers: vec![(
                            "content-type".into(),
                            content_type.clone().unwrap_or_else(|| "application/json".into()),
                        )],
                        body: body.as_bytes().to_vec(),
                    }),
                    Some(ProposeOutcome::Accepted) => Some(tasks::summarized_reply(t)),
                    None if now >= waiter.since_ms + patience => Some(tasks::summarized_reply(t)),
                    None => None,
                },
                None => Some(tasks::error_reply(&MeiliError::new(
                    500,
                    "internal",
                    super::errors::ErrorType::Internal,
                    "The filter lost track of this settings write; check GET /tasks and retry.",
                ))),
            };
            if let Some(mut reply) = reply {
                if let Some(t) = &task {
                    for (name, value) in super::headers::response_headers(host, &t.index_uid) {
                        reply.headers.push((name.to_string(), value));
                    }
                }
                let ctx = waiter.context_id;
                self.waiting.remove(&uid);
                if host.reply(ctx, &reply).is_err() {
                    log::debug!("miroir: client of task {uid} went away before the answer");
                }
            }
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
        if body.is_some() {
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
            _ => host.env(&self.cfg.node_api_key_env).filter(|k| !k.is_empty()).map(|k| format!("Bearer {k}")),
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
        // Drift repairs have their own counter; broadcasts are what clients asked for.
        if self.jobs.get(index).is_some_and(|r| r.job.drift_repair) {
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
    /// Every node refused synchronously: the client got the refusal, there is no task.
    Rejected,
    /// The job's record vanished (e.g. retention overran it): nothing to report.
    Dropped,
}

pub use super::state::index_store::read_hot;

/// Lift a freeze for an operator's forced unfreeze (`admin.rs`): the record first (its hot
/// projection follows), then the alert. A verify that finds the fleet converged lifts it through
/// the ledger (`Op::RecordConverged`).
pub fn lift_freeze(host: &mut dyn Host, index: &str) {
    if let Err(e) = super::state::shared_data::lift_freeze_record(host, index) {
        log::error!("miroir: unfreezing {index} failed: {e}");
        return;
    }
    host.gauge_set(&metrics::for_index(metrics::DIVERGENCE, index), 0);
    host.gauge_set(&metrics::for_index(metrics::BROADCAST_PHASE, index), Phase::Idle.gauge());
}

/// Errors the HTTP side can hit while queueing a write.
#[derive(Debug)]
pub enum EnqueueError {
    Frozen(String),
    Store(StoreError),
}
