//! The ledger in etcd, for many gateways (docs/architecture.md §5, "State backends").
//!
//! Operations: each one is the shared-data ledger's own operation, run against a snapshot of
//! etcd keys (`txn_host.rs`) and committed as one transaction that holds only if no key it read
//! has changed (`mod_revision` compares). A transaction that fails reads those keys back in the
//! same round trip, and the operation runs again on the fresh values; a key the snapshot lacks
//! is fetched first. One operation of this VM is in flight at a time, so they take effect in
//! the order they were submitted (the ledger's contract).
//!
//! The view: the front door never waits on etcd. Every write also bumps one generation key;
//! each gateway polls it and, when it moved, reads every key changed since its last look and
//! copies them into its own shared data, where the front door reads them as it would with the
//! shared-data backend. Its own commits are copied at once.
//!
//! A failed call is tried again after a backoff (one dead member behind the cluster's load
//! balancer, an election). Nothing reached etcd for `down_after_ms`: etcd is down, operations
//! fail as `StoreError::Unavailable` (a client's write gets `503 miroir_state_unavailable`,
//! nothing reaches a node) and polling goes on, so service comes back by itself.

use std::collections::{BTreeMap, VecDeque};

use super::etcd_wire::{self, Compare, Kv};
use super::keys;
use super::ledger::{Answer, Ledger, Op, OpId};
use super::records::{HotRecord, IndexRecord};
use super::shared_data::SharedDataLedger;
use super::store::StoreError;
use super::txn_host::{Run, Seen, TxnHost};
use crate::core::config::{Config, EtcdConfig};
use crate::core::host::{Callout, CalloutResponse, Host};
use crate::core::metrics;

/// An operation that keeps meeting changed keys gives up after this many runs.
const MAX_RUNS: u32 = 64;
/// etcd refuses a transaction with more compares, or more operations in a branch, than this
/// (`--max-txn-ops`, 128 by default).
const MAX_TXN_OPS: usize = 128;
/// The tick period before the view was read once.
const FIRST_TICK_MS: u64 = 5;
/// Backoff between tries of an operation whose call failed: 50 ms doubling up to 400 ms.
const RETRY_BASE_MS: u64 = 25;
const RETRY_MAX_MS: u64 = 400;
/// Calls that fail (reset, timeout, an error status) before the operation fails: the cluster's
/// next endpoint may be a live member.
const MAX_CALL_FAILURES: u32 = 3;

struct Queued {
    id: OpId,
    op: Op,
    runs: u32,
    call_failures: u32,
}

enum Call {
    /// Reading keys the snapshot lacked.
    Fetch { keys: Vec<String> },
    /// The operation's transaction, with what it writes and the answer it gives if it holds.
    Commit { reads: Vec<String>, writes: BTreeMap<String, Vec<u8>>, answer: Answer },
}

impl Call {
    fn describe(&self) -> String {
        match self {
            Call::Fetch { keys } => format!("fetch {keys:?}"),
            Call::Commit { reads, writes, .. } => format!("commit reads {reads:?} writes {:?}", writes.keys().collect::<Vec<_>>()),
        }
    }
}

enum Poll {
    Generation { token: u32, seq: u64 },
    Changes { token: u32, seq: u64 },
}

pub struct EtcdLedger {
    etcd: EtcdConfig,
    ops: SharedDataLedger,
    /// Every key seen, as last seen (local key names, under `keys::PREFIX`).
    seen: BTreeMap<String, Seen>,
    queue: VecDeque<Queued>,
    in_flight: Option<(u32, Call)>,
    answers: VecDeque<(OpId, Answer)>,
    poll: Option<Poll>,
    /// Every change up to this etcd revision is in the view.
    synced_revision: i64,
    next_poll_ms: u64,
    /// Polls are numbered as they start; `view_done` is the last one that ended, and whether it
    /// reached etcd.
    polls_started: u64,
    /// Calls made for the poll under way.
    poll_tries: u32,
    view_done: u64,
    view_ok: bool,
    refresh_wanted: bool,
    /// This gateway's view was read from etcd once (`keys::VIEW_LOADED_KEY`).
    view_loaded: bool,
    /// When a call last reached etcd (0: not yet since this VM started).
    last_ok_ms: u64,
    /// Calls have failed since `last_ok_ms` for longer than `down_after_ms`: etcd is down, and
    /// operations fail at once instead of waiting for it.
    down: bool,
    /// The head operation's next try, after a failed call (backoff).
    retry_at_ms: u64,
}

impl EtcdLedger {
    pub fn new(cfg: Config, etcd: EtcdConfig) -> EtcdLedger {
        EtcdLedger {
            ops: SharedDataLedger::new(cfg),
            etcd,
            seen: BTreeMap::new(),
            queue: VecDeque::new(),
            in_flight: None,
            answers: VecDeque::new(),
            poll: None,
            synced_revision: 0,
            next_poll_ms: 0,
            polls_started: 0,
            poll_tries: 0,
            view_done: 0,
            view_ok: false,
            refresh_wanted: false,
            view_loaded: false,
            last_ok_ms: 0,
            down: false,
            retry_at_ms: 0,
        }
    }

    fn remote(&self, local: &str) -> Vec<u8> {
        let rest = local.strip_prefix(keys::PREFIX).unwrap_or(local);
        format!("{}{rest}", self.etcd.prefix).into_bytes()
    }

    fn local(&self, remote: &[u8]) -> Option<String> {
        let rest = remote.strip_prefix(self.etcd.prefix.as_bytes())?;
        Some(format!("{}{}", keys::PREFIX, std::str::from_utf8(rest).ok()?))
    }

    /// The key ranges a gateway's view copies: everything under the prefix but the job records
    /// (the writes' bodies and credentials), which only ledger operations read, from etcd.
    fn view_ranges(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let prefix = self.etcd.prefix.as_bytes().to_vec();
        let jobs = self.remote(keys::JOB_PREFIX);
        vec![(prefix.clone(), jobs.clone()), (etcd_wire::prefix_end(&jobs), etcd_wire::prefix_end(&prefix))]
    }

    fn call(&self, host: &mut dyn Host, path: &str, body: Vec<u8>) -> Result<u32, String> {
        host.dispatch(&Callout {
            cluster: self.etcd.cluster.clone(),
            method: "POST".into(),
            path: path.into(),
            authority: self.etcd.cluster.clone(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: Some(body),
            timeout_ms: self.etcd.timeout_ms,
        })
    }

    /// Run the operation at the head of the queue until it needs etcd (or answers without it).
    fn advance(&mut self, host: &mut dyn Host) {
        if host.now_ms() < self.retry_at_ms {
            return; // backing off after a failed call; `tick` comes back
        }
        while self.in_flight.is_none() {
            let Some(head) = self.queue.front_mut() else { return };
            head.runs += 1;
            if head.runs > MAX_RUNS {
                let id = head.id;
                self.queue.pop_front();
                self.answers.push_back((id, Answer::Failed(StoreError::Contended("etcd transaction".into()))));
                continue;
            }
            let (id, op) = (head.id, head.op.clone());
            if let Some(answer) = self.answer_from_view(host, &op) {
                self.queue.pop_front();
                self.answers.push_back((id, answer));
                continue;
            }
            let mut tx = TxnHost::new(host, &self.seen);
            let answer = self.ops.run(&mut tx, op);
            let run = tx.finish();
            if run.misses.is_empty() && run.writes.is_empty() && run.reads.len() > MAX_TXN_OPS {
                // A bulk read (the tasks of many waiting clients) cannot be one transaction: it
                // is answered from what this gateway has seen, every key of it read or polled.
                self.queue.pop_front();
                self.answers.push_back((id, answer));
                continue;
            }
            let (body, call) = self.call_for(host, run, answer);
            log::debug!("miroir: etcd ledger: op {} run {}: {}", id.0, head_runs(&self.queue), call.describe());
            match self.call(host, etcd_wire::TXN_PATH, body) {
                Ok(token) => self.in_flight = Some((token, call)),
                Err(e) => {
                    self.call_failed(host, &format!("dispatch: {e}"));
                    if host.now_ms() < self.retry_at_ms {
                        return;
                    }
                }
            }
        }
    }

    /// The active list is a hint (a claim checks the index itself): what this gateway has seen
    /// answers it, without a call. None for every other operation.
    fn answer_from_view(&self, host: &mut dyn Host, op: &Op) -> Option<Answer> {
        let hint = matches!(op, Op::ReadActive) && self.seen.contains_key(keys::ACTIVE_KEY);
        hint.then(|| self.ops.run(&mut TxnHost::new(host, &self.seen), op.clone()))
    }

    /// The call one run of an operation needs: fetch what the snapshot lacked (at most what one
    /// transaction may hold; the next run fetches the rest), or commit what it wrote if nothing
    /// it read has changed, reading those keys back if something has.
    fn call_for(&self, host: &dyn Host, run: Run, answer: Answer) -> (Vec<u8>, Call) {
        if !run.misses.is_empty() {
            let keys: Vec<String> = run.misses.into_iter().take(MAX_TXN_OPS).collect();
            let remote: Vec<Vec<u8>> = keys.iter().map(|k| self.remote(k)).collect();
            return (etcd_wire::multi_get_body(&remote), Call::Fetch { keys });
        }
        let compares: Vec<Compare> = run
            .reads
            .iter()
            .map(|(k, rev)| if *rev == 0 { Compare::Absent(self.remote(k)) } else { Compare::ModRevision(self.remote(k), *rev) })
            .collect();
        let mut puts: Vec<(Vec<u8>, Vec<u8>)> = run.writes.iter().map(|(k, v)| (self.remote(k), v.clone())).collect();
        if !puts.is_empty() {
            puts.push((self.remote(keys::GENERATION_KEY), self.remote_generation_value(host)));
        }
        let reads: Vec<String> = run.reads.into_keys().collect();
        let read_back: Vec<Vec<u8>> = reads.iter().map(|k| self.remote(k)).collect();
        (etcd_wire::txn_body(&compares, &puts, &read_back), Call::Commit { reads, writes: run.writes, answer })
    }

    fn remote_generation_value(&self, host: &dyn Host) -> Vec<u8> {
        host.now_ms().to_string().into_bytes()
    }

    /// How long calls may fail before etcd counts as down: an election (a member lost) takes
    /// about a second, a dead member behind the cluster's load balancer fails one call in a few.
    fn down_after_ms(&self) -> u64 {
        (2 * self.etcd.timeout_ms).max(2_000)
    }

    fn reached(&mut self, host: &mut dyn Host) {
        if self.down {
            log::warn!("miroir: etcd answers again");
            host.gauge_set(metrics::STATE_UNAVAILABLE, 0);
        }
        self.down = false;
        self.last_ok_ms = host.now_ms();
    }

    /// A call to etcd failed. Is etcd down (nothing reached it for `down_after_ms`)?
    fn failed_call(&mut self, host: &mut dyn Host, why: &str) -> bool {
        let now = host.now_ms();
        if self.last_ok_ms == 0 {
            self.last_ok_ms = now; // a VM just started gives etcd the same grace
        }
        if !self.down && now.saturating_sub(self.last_ok_ms) >= self.down_after_ms() {
            log::warn!("miroir: etcd unreachable ({why}): writes are refused, reads served from the last view, until it answers again");
            self.down = true;
            host.gauge_set(metrics::STATE_UNAVAILABLE, 1);
        }
        self.down
    }

    /// A call of the head operation failed: try it again after a backoff (the cluster's next
    /// endpoint may be a live member, an election may end), until etcd counts as down; then fail
    /// it and every operation queued behind it, which would meet the same etcd: a client's write
    /// is refused at once while etcd is down, and after about `down_after_ms` when it goes down.
    fn call_failed(&mut self, host: &mut dyn Host, why: &str) {
        let down = self.failed_call(host, why);
        let Some(head) = self.queue.front_mut() else { return };
        if !down {
            head.call_failures += 1;
            head.runs = head.runs.saturating_sub(1);
            let backoff = (RETRY_BASE_MS << head.call_failures.min(4)).min(RETRY_MAX_MS);
            self.retry_at_ms = host.now_ms() + backoff;
            return;
        }
        for q in self.queue.drain(..) {
            self.answers.push_back((q.id, Answer::Failed(StoreError::Unavailable(why.to_string()))));
        }
    }

    fn on_call_answer(&mut self, host: &mut dyn Host, call: Call, resp: &CalloutResponse) {
        let parsed = match resp.status {
            Some(200) => etcd_wire::parse_txn(&resp.body),
            Some(status) => match etcd_wire::refusal(status, &resp.body) {
                // etcd answered but refuses this transaction (e.g. a request over its
                // --max-request-bytes): this operation fails, etcd is not down.
                Some(why) => {
                    log::error!("miroir: etcd refused a ledger operation: {why}");
                    if let Some(head) = self.queue.pop_front() {
                        self.answers.push_back((head.id, Answer::Failed(StoreError::Host(format!("etcd: {why}")))));
                    }
                    return self.advance(host);
                }
                None => Err(format!("etcd answered {status}")),
            },
            None => Err("no answer".to_string()),
        };
        let txn = match parsed {
            Ok(t) => t,
            Err(e) => {
                self.call_failed(host, &e);
                return self.advance(host);
            }
        };
        self.reached(host);
        log::debug!("miroir: etcd ledger: answer succeeded={} revision={} ranges={}", txn.succeeded, txn.revision, txn.ranges.len());
        match call {
            Call::Fetch { keys } => {
                for (key, kvs) in keys.iter().zip(txn.ranges.iter()) {
                    self.learn(host, key, kvs.first());
                }
            }
            Call::Commit { reads, writes, answer } => {
                if txn.succeeded {
                    for (key, value) in writes {
                        apply_to_view(host, &key, &value);
                        self.seen.insert(key, Seen { value: Some(value), mod_revision: txn.revision });
                    }
                    if let Some(head) = self.queue.pop_front() {
                        self.answers.push_back((head.id, answer));
                    }
                } else {
                    for (key, kvs) in reads.iter().zip(txn.ranges.iter()) {
                        self.learn(host, key, kvs.first());
                    }
                }
            }
        }
        self.advance(host);
    }

    /// What a read of `key` found (None: no such key); the view gets it too, since a poll skips
    /// what was already seen.
    fn learn(&mut self, host: &mut dyn Host, key: &str, kv: Option<&Kv>) {
        let seen = match kv {
            Some(kv) => {
                apply_to_view(host, key, &kv.value);
                Seen { value: Some(kv.value.clone()), mod_revision: kv.mod_revision }
            }
            None => Seen { value: None, mod_revision: 0 },
        };
        self.seen.insert(key.to_string(), seen);
    }

    fn start_poll(&mut self, host: &mut dyn Host) {
        self.polls_started += 1;
        self.poll_tries = 0;
        self.refresh_wanted = false;
        self.next_poll_ms = host.now_ms() + self.etcd.poll_ms;
        self.read_generation(host, self.polls_started);
    }

    fn read_generation(&mut self, host: &mut dyn Host, seq: u64) {
        self.poll_tries += 1;
        let body = etcd_wire::range_body(&self.remote(keys::GENERATION_KEY), None, None);
        match self.call(host, etcd_wire::RANGE_PATH, body) {
            Ok(token) => self.poll = Some(Poll::Generation { token, seq }),
            Err(e) => self.poll_failed(host, seq, &e),
        }
    }

    /// A poll's call failed: start it again (the cluster's next endpoint may be a live member),
    /// or give up until the next one.
    fn poll_failed(&mut self, host: &mut dyn Host, seq: u64, why: &str) {
        if self.poll_tries < MAX_CALL_FAILURES {
            return self.read_generation(host, seq);
        }
        self.poll_ended(host, seq, false, why);
    }

    fn poll_ended(&mut self, host: &mut dyn Host, seq: u64, ok: bool, why: &str) {
        self.poll = None;
        self.view_done = seq;
        self.view_ok = ok;
        if ok {
            if !self.view_loaded {
                self.view_loaded = host.shared_set(keys::VIEW_LOADED_KEY, b"1", None).is_ok();
            }
            self.reached(host);
        } else {
            self.failed_call(host, why);
        }
    }

    fn on_poll_answer(&mut self, host: &mut dyn Host, poll: Poll, resp: &CalloutResponse) {
        let (seq, changes) = match poll {
            Poll::Generation { seq, .. } => (seq, false),
            Poll::Changes { seq, .. } => (seq, true),
        };
        let range = match resp.status {
            Some(200) if changes => etcd_wire::parse_txn(&resp.body)
                .map(|t| etcd_wire::RangeAnswer { revision: t.revision, kvs: t.ranges.into_iter().flatten().collect() }),
            Some(200) => etcd_wire::parse_range(&resp.body),
            Some(s) => Err(format!("etcd answered {s}")),
            None => Err("no answer".to_string()),
        };
        let range = match range {
            Ok(r) => r,
            Err(e) => return self.poll_failed(host, seq, &e),
        };
        if !changes {
            let generation = range.kvs.first().map(|kv| kv.mod_revision).unwrap_or(0);
            if generation <= self.synced_revision {
                return self.poll_ended(host, seq, true, "");
            }
            let min = (self.synced_revision > 0).then_some(self.synced_revision + 1);
            match self.call(host, etcd_wire::TXN_PATH, etcd_wire::multi_range_body(&self.view_ranges(), min)) {
                Ok(token) => self.poll = Some(Poll::Changes { token, seq }),
                Err(e) => self.poll_failed(host, seq, &e),
            }
            return;
        }
        for kv in &range.kvs {
            let Some(key) = self.local(&kv.key) else { continue };
            if key == keys::GENERATION_KEY {
                continue;
            }
            if self.seen.get(&key).is_some_and(|s| s.mod_revision >= kv.mod_revision) {
                continue;
            }
            apply_to_view(host, &key, &kv.value);
            self.seen.insert(key, Seen { value: Some(kv.value.clone()), mod_revision: kv.mod_revision });
        }
        self.synced_revision = self.synced_revision.max(range.revision);
        self.poll_ended(host, seq, true, "");
    }
}

impl Ledger for EtcdLedger {
    fn submit(&mut self, host: &mut dyn Host, id: OpId, op: Op) {
        // Answered at once when nothing is ahead of it.
        if self.queue.is_empty() {
            if let Some(answer) = self.answer_from_view(host, &op) {
                self.answers.push_back((id, answer));
                return;
            }
        }
        // Calls go out from `tick`, on the root context: a call dispatched from a client's
        // callback would be answered to that client's stream (the SDK routes answers by the
        // context that was running), not to the engine.
        let renewal = matches!(op, Op::RenewLease { .. });
        let queued = Queued { id, op, runs: 0, call_failures: 0 };
        if renewal {
            // A renewal only extends a lease still held, so it may go ahead of the operations
            // queued before it; behind them, under contention, it could come after the lease ran
            // out and a live owner would lose its job.
            let at = usize::from(self.in_flight.is_some()).min(self.queue.len());
            self.queue.insert(at, queued);
        } else {
            self.queue.push_back(queued);
        }
    }

    fn take(&mut self, id: OpId) -> Option<Answer> {
        let at = self.answers.iter().position(|(i, _)| *i == id)?;
        self.answers.remove(at).map(|(_, a)| a)
    }

    fn next_answer(&mut self) -> Option<(OpId, Answer)> {
        self.answers.pop_front()
    }

    fn on_callout_response(&mut self, host: &mut dyn Host, token: u32, resp: &CalloutResponse) -> bool {
        if matches!(&self.in_flight, Some((t, _)) if *t == token) {
            if let Some((_, call)) = self.in_flight.take() {
                self.on_call_answer(host, call, resp);
            }
            return true;
        }
        let polled = matches!(&self.poll, Some(Poll::Generation { token: t, .. } | Poll::Changes { token: t, .. }) if *t == token);
        if polled {
            if let Some(poll) = self.poll.take() {
                self.on_poll_answer(host, poll, resp);
            }
        }
        polled
    }

    fn tick(&mut self, host: &mut dyn Host) {
        if self.poll.is_none() && (self.refresh_wanted || host.now_ms() >= self.next_poll_ms) {
            self.start_poll(host);
        }
        if self.in_flight.is_none() {
            self.advance(host);
        }
    }

    fn tick_ms(&self) -> Option<u64> {
        // Until the view is read once, a gateway just started knows nothing (no versions, no
        // freezes): the first poll goes out on the first tick, and that comes at once. A retry
        // after a failed call is due within a backoff.
        if !self.view_loaded {
            return Some(FIRST_TICK_MS);
        }
        Some(if self.retry_at_ms > 0 && !self.queue.is_empty() { self.etcd.poll_ms.min(RETRY_BASE_MS) } else { self.etcd.poll_ms })
    }

    fn refresh_view(&mut self, _host: &mut dyn Host) -> Option<u64> {
        // The next poll to start (from `tick`) reads etcd after this call; one under way may not.
        self.refresh_wanted = true;
        Some(self.polls_started + 1)
    }

    fn view_refreshed(&self, ticket: u64) -> Option<bool> {
        (self.view_done >= ticket).then_some(self.view_ok)
    }

    fn unavailable(&self) -> bool {
        self.down
    }
}

fn head_runs(q: &VecDeque<Queued>) -> u32 {
    q.front().map(|h| h.runs).unwrap_or(0)
}

/// Copy a key into this gateway's view. An index record and its hot projection only move forward
/// (by their `rev`): a poll that read etcd before this gateway's own commit never puts an older
/// state back, so a freeze seen here is never lost in between.
fn apply_to_view(host: &mut dyn Host, key: &str, value: &[u8]) {
    if key.starts_with(keys::JOB_PREFIX) {
        return; // not part of the view (`EtcdLedger::view_ranges`)
    }
    let older = |current: &[u8]| -> bool {
        if key.starts_with(keys::INDEX_PREFIX) {
            let rev = |b: &[u8]| serde_json::from_slice::<IndexRecord>(b).map(|r| r.rev).unwrap_or(0);
            return rev(value) < rev(current);
        }
        if key.starts_with(keys::HOT_PREFIX) {
            let rev = |b: &[u8]| HotRecord::decode(b).map(|r| r.rev).unwrap_or(0);
            return rev(value) < rev(current);
        }
        false
    };
    if let Ok((Some(current), _)) = host.shared_get(key) {
        if !current.is_empty() && older(&current) {
            return;
        }
    }
    if let Err(e) = host.shared_set(key, value, None) {
        log::warn!("miroir: updating the local view of {key} failed: {e:?}");
    }
}
