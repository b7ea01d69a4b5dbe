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
//! fail as `StoreError::Unavailable` without a call (a client's write gets
//! `503 miroir_state_unavailable`, nothing reaches a node) and polling goes on, so service comes
//! back by itself.
//!
//! A commit whose call got no answer is in doubt: etcd may have applied it, or may yet (a leader
//! that lost its quorum keeps what it took, and commits it if it is elected again). It is never
//! run again blind (a write would be queued twice) nor refused (a write answered 503 could take
//! effect later): every commit also writes this VM's marker key with its number, and the
//! operation waits until a later transaction, ordered after it in etcd's log, reads the marker.
//! Then it is answered as applied, or run again.

use std::collections::{BTreeMap, VecDeque};

use crate::core::sorted_map::SortedMap;

use super::etcd_wire::{self, Compare, Kv};
use super::keys;
use super::ledger::{Answer, Ledger, Op, OpId};
use super::records::{HotRecord, IndexRecord, Phase};
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
    /// The operation's transaction, with what it writes and the answer it gives if it holds;
    /// `seq` numbers a commit that writes (this VM's marker takes it).
    Commit { reads: Vec<String>, writes: SortedMap<String, Vec<u8>>, answer: Answer, seq: Option<u64> },
    /// Whether the commit in doubt took effect (`etcd_wire::settle_body`).
    Settle(InDoubt),
}

/// A commit that got no answer, kept until etcd says whether it took effect.
struct InDoubt {
    seq: u64,
    writes: SortedMap<String, Vec<u8>>,
    answer: Answer,
}

impl Call {
    fn describe(&self) -> String {
        match self {
            Call::Fetch { keys } => format!("fetch {keys:?}"),
            Call::Commit { reads, writes, .. } => format!("commit reads {reads:?} writes {:?}", writes.keys().collect::<Vec<_>>()),
            Call::Settle(doubt) => format!("settle commit {}", doubt.seq),
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
    /// This VM's marker key (etcd's name) and the number of its last commit that writes.
    marker: Vec<u8>,
    commits: u64,
    /// The head operation's commit, in doubt: nothing else goes to etcd until it is settled.
    in_doubt: Option<InDoubt>,
    /// Every key seen, as last seen (local key names, under `keys::PREFIX`). A `BTreeMap`, not a
    /// `SortedMap`: it holds every task record kept, thousands of keys.
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
    /// The ledger of the VM `worker` (an id no other VM shares: it names the VM's marker key).
    pub fn new(cfg: Config, etcd: EtcdConfig, worker: &str) -> EtcdLedger {
        let mut ledger = EtcdLedger {
            ops: SharedDataLedger::new(cfg),
            etcd,
            marker: Vec::new(),
            commits: 0,
            in_doubt: None,
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
        };
        ledger.marker = ledger.remote(&keys::commit_marker_key(worker));
        ledger
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
    /// (the writes' bodies and credentials), which only ledger operations read, from etcd, and
    /// the gateways' commit markers.
    fn view_ranges(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let prefix = self.etcd.prefix.as_bytes().to_vec();
        let mut left_out = vec![self.remote(keys::COMMIT_MARKER_PREFIX), self.remote(keys::JOB_PREFIX)];
        crate::core::sort::sort_by(&mut left_out, Vec::cmp);
        let mut ranges = Vec::new();
        let mut start = prefix.clone();
        for skipped in left_out {
            let next = etcd_wire::prefix_end(&skipped);
            ranges.push((start, skipped));
            start = next;
        }
        ranges.push((start, etcd_wire::prefix_end(&prefix)));
        ranges
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
        if self.in_flight.is_none() {
            if let Some(doubt) = self.in_doubt.take() {
                return self.settle(host, doubt);
            }
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
            if self.down {
                // Nothing is sent while etcd is down: a commit would only be in doubt.
                self.queue.pop_front();
                self.answers.push_back((id, Answer::Failed(StoreError::Unavailable("etcd is down".into()))));
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
    fn call_for(&mut self, host: &dyn Host, run: Run, answer: Answer) -> (Vec<u8>, Call) {
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
        let mut seq = None;
        if !puts.is_empty() {
            puts.push((self.remote(keys::GENERATION_KEY), self.remote_generation_value(host)));
            self.commits += 1;
            puts.push((self.marker.clone(), self.commits.to_string().into_bytes()));
            seq = Some(self.commits);
        }
        let reads: Vec<String> = run.reads.into_keys().collect();
        let read_back: Vec<Vec<u8>> = reads.iter().map(|k| self.remote(k)).collect();
        (etcd_wire::txn_body(&compares, &puts, &read_back), Call::Commit { reads, writes: run.writes, answer, seq })
    }

    /// Ask etcd whether the commit in doubt took effect; the head operation waits for the answer.
    fn settle(&mut self, host: &mut dyn Host, doubt: InDoubt) {
        let body = etcd_wire::settle_body(&self.marker, doubt.seq);
        log::debug!("miroir: etcd ledger: settling commit {}", doubt.seq);
        match self.call(host, etcd_wire::TXN_PATH, body) {
            Ok(token) => self.in_flight = Some((token, Call::Settle(doubt))),
            Err(e) => {
                self.in_doubt = Some(doubt);
                self.call_failed(host, &format!("dispatch: {e}"));
            }
        }
    }

    /// The commit in doubt was applied (at `revision`) or never will be.
    fn settled(&mut self, host: &mut dyn Host, doubt: InDoubt, applied_at: Option<i64>) {
        let Some(revision) = applied_at else {
            log::info!("miroir: etcd ledger: commit {} did not take effect; its operation runs again", doubt.seq);
            return;
        };
        log::info!("miroir: etcd ledger: commit {} took effect at revision {revision}", doubt.seq);
        self.committed(host, doubt.writes, revision, doubt.answer);
    }

    /// A commit took effect: its writes are what this gateway has seen, and its answer is given.
    fn committed(&mut self, host: &mut dyn Host, writes: SortedMap<String, Vec<u8>>, revision: i64, answer: Answer) {
        for (key, value) in writes {
            self.record(host, &key, Some(value), revision);
        }
        if let Some(head) = self.queue.pop_front() {
            self.answers.push_back((head.id, answer));
        }
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
    /// A head whose commit is in doubt stays, and is settled when etcd answers again.
    fn call_failed(&mut self, host: &mut dyn Host, why: &str) {
        if self.failed_call(host, why) {
            self.refuse_behind_doubt(why);
        }
        let Some(head) = self.queue.front_mut() else { return };
        head.call_failures += 1;
        head.runs = head.runs.saturating_sub(1);
        let backoff = (RETRY_BASE_MS << head.call_failures.min(4)).min(RETRY_MAX_MS);
        self.retry_at_ms = host.now_ms() + backoff;
    }

    /// The head operation's commit got no answer and is not settled yet.
    fn head_in_doubt(&self) -> bool {
        self.in_doubt.is_some() || matches!(self.in_flight, Some((_, Call::Settle(_))))
    }

    /// etcd is down: refuse every queued operation but a head whose commit is in doubt (it waits
    /// for etcd to say whether it took effect).
    fn refuse_behind_doubt(&mut self, why: &str) {
        let held = usize::from(self.head_in_doubt()).min(self.queue.len());
        for q in self.queue.drain(held..) {
            self.answers.push_back((q.id, Answer::Failed(StoreError::Unavailable(why.to_string()))));
        }
    }

    fn on_call_answer(&mut self, host: &mut dyn Host, call: Call, resp: &CalloutResponse) {
        let parsed = match resp.status {
            Some(200) => etcd_wire::parse_txn(&resp.body),
            // A settle refused would leave its commit in doubt: it is tried again, as a failure.
            Some(status) => match etcd_wire::refusal(status, &resp.body).filter(|_| !matches!(call, Call::Settle(_))) {
                // etcd answered but refuses this transaction (e.g. a request over its
                // --max-request-bytes): this operation fails, etcd is not down.
                Some(why) => {
                    log::error!("miroir: etcd refused a ledger operation: {why}");
                    if let Some(head) = self.queue.pop_front() {
                        self.answers.push_back((head.id, Answer::Failed(StoreError::Host(format!("etcd: {why}")))));
                    }
                    return self.advance(host);
                }
                None => Err(format!("etcd answered {status}: {}", excerpt(&resp.body))),
            },
            None => Err("no answer".to_string()),
        };
        let sent = !resp.status.is_some_and(|status| etcd_wire::never_sent(status, &resp.body));
        let txn = match parsed {
            Ok(t) => t,
            Err(e) => {
                match call {
                    Call::Commit { writes, answer, seq: Some(seq), .. } if sent => {
                        log::warn!("miroir: etcd ledger: commit {seq} in doubt ({e}): held until etcd says whether it took effect");
                        self.in_doubt = Some(InDoubt { seq, writes, answer });
                    }
                    Call::Settle(doubt) => self.in_doubt = Some(doubt),
                    Call::Fetch { .. } | Call::Commit { .. } => {}
                }
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
            Call::Settle(doubt) => {
                let applied_at = txn.succeeded.then(|| txn.ranges.first().and_then(|r| r.first()).map_or(txn.revision, |kv| kv.mod_revision));
                self.settled(host, doubt, applied_at);
            }
            Call::Commit { reads, writes, answer, .. } => {
                if txn.succeeded {
                    self.committed(host, writes, txn.revision, answer);
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
        match kv {
            Some(kv) => self.record(host, key, Some(kv.value.clone()), kv.mod_revision),
            None => self.record(host, key, None, 0),
        }
    }

    /// What etcd holds for `key` as of `mod_revision` (None and 0: no such key), unless this
    /// gateway has seen a later write of it already. An operation's answer and a poll's arrive in
    /// any order, and the older must never take the newer's place, in the snapshot or in the view
    /// (a task shown `processing` again after it succeeded). Keys are never deleted, so a missing
    /// key is older than any value. The same revision again is the same value: nothing to do.
    fn record(&mut self, host: &mut dyn Host, key: &str, value: Option<Vec<u8>>, mod_revision: i64) {
        if self.seen.get(key).is_some_and(|s| s.mod_revision > mod_revision || (s.mod_revision == mod_revision && mod_revision > 0)) {
            return;
        }
        if let Some(v) = &value {
            apply_to_view(host, key, v);
        }
        self.seen.insert(key.to_string(), Seen { value, mod_revision });
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
            self.record(host, &key, Some(kv.value.clone()), kv.mod_revision);
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
            let at = usize::from(self.in_flight.is_some() || self.in_doubt.is_some()).min(self.queue.len());
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
        if self.down && self.head_in_doubt() {
            // The head waits for etcd; what is queued behind it is refused now, as it would be
            // at the head.
            self.refuse_behind_doubt("etcd is down");
        }
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

/// The start of an error answer, for the log (Envoy's reason for a failed call, or etcd's).
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(160).collect()
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
            let rev = |b: &[u8]| super::from_json::decode::<IndexRecord>(b).map_or(0, |r| r.rev);
            return rev(value) < rev(current);
        }
        if key.starts_with(keys::HOT_PREFIX) {
            let rev = |b: &[u8]| HotRecord::decode(b).map(|r| r.rev).unwrap_or(0);
            return rev(value) < rev(current);
        }
        false
    };
    let current = host.shared_get(key).ok().and_then(|(current, _)| current).filter(|c| !c.is_empty());
    if current.as_deref().is_some_and(older) {
        return;
    }
    if let Err(e) = host.shared_set(key, value, None) {
        log::warn!("miroir: updating the local view of {key} failed: {e:?}");
    } else if let Some(index) = key.strip_prefix(keys::INDEX_PREFIX) {
        follow_in_gauges(host, index, current.as_deref(), value);
    } else if key.starts_with(keys::HOT_PREFIX) {
        let view = |b: Option<&[u8]>| b.and_then(HotRecord::decode).unwrap_or_default();
        if !view(Some(value)).reads_as(&view(current.as_deref())) {
            super::index_store::hot_changed(host);
        }
    }
}

/// What another gateway did to an index, in this gateway's gauges: a freeze or its lifting
/// (`miroir_settings_divergence`, and the phase), and a newer committed version. The gateway
/// that does it sets them as it goes; without this, an alert raised on one gateway kept firing
/// there after another lifted the freeze.
fn follow_in_gauges(host: &mut dyn Host, index: &str, before: Option<&[u8]>, after: &[u8]) {
    let read = |b: &[u8]| super::from_json::decode::<IndexRecord>(b);
    let before = before.and_then(read);
    let after = read(after).unwrap_or_default();
    let frozen = after.frozen.is_some();
    if frozen != before.as_ref().is_some_and(|r| r.frozen.is_some()) {
        let phase = if frozen { Phase::Frozen } else { after.phase };
        host.gauge_set(&metrics::for_index(metrics::DIVERGENCE, index), u64::from(frozen));
        host.gauge_set(&metrics::for_index(metrics::BROADCAST_PHASE, index), phase.gauge());
    }
    if after.version > before.map_or(0, |r| r.version) {
        host.gauge_set(&metrics::for_index(metrics::SETTINGS_VERSION, index), after.version);
    }
}
