//! The drift check (docs/architecture.md §3): catches settings changed behind the proxy's back. One worker at a
//! time runs it (a lease in shared data), at start and every `interval_s`; an operator can also
//! ask for one index through the admin API. It lists the indexes on every node, reads every
//! index's settings from every node and compares fingerprints. A converged index gets every
//! node's verified version (and, if it was frozen, is unfrozen); a drifted one is counted and,
//! with `auto_repair`, repaired by a job that re-sends the reference settings to the nodes that
//! differ. The reference is the desired settings the filter committed, or the majority when it
//! holds none. Drift in embedders, whose apiKeys every read masks, is repaired only from the
//! desired settings; otherwise the index is frozen and the alert raised.

use std::collections::VecDeque;

use crate::core::sorted_map::SortedMap;

use serde_json::{Map, Value};

use super::answers::Awaiting;
use super::{Engine, Purpose, Tag};
use crate::core::fingerprint::fingerprint;
use crate::core::host::{Callout, CalloutResponse, Host};
use crate::core::metrics;
use crate::core::proposal::Proposal;
use crate::core::state::lease::{self, DRIFT_LEASE_RENEW_MS};
use crate::core::state::{keys, store};
use crate::core::state::ledger::{Freeze, Op};
use crate::core::state::records::{DriftSchedule, FrozenRecord, IndexRecord, JobRecord, Phase, VerifyResult};

/// A run in flight on this worker. Indexes are read a few at a time (`max_reads_in_flight`
/// per node) and judged as soon as every node answered, so memory holds only the indexes in
/// flight, and each node body is fingerprinted when it arrives and kept only if its fingerprint
/// is new for that index (the repair needs one body per distinct fingerprint at most).
#[derive(Debug, Default)]
pub(super) struct DriftRun {
    pub epoch: u64,
    pub outstanding_lists: usize,
    pub scheduled: bool,
    /// An operator's repair of the one index this run reads.
    pub operator_repair: bool,
    pub listing: bool,
    /// Per node: the index uids it lists (None: unreachable).
    pub lists: Vec<Option<Vec<String>>>,
    /// Indexes still to read, in order.
    pub pending: VecDeque<String>,
    pub reading: SortedMap<String, IndexReads>,
    pub renew_at_ms: u64,
}

/// Where one index's check stands while its record is asked of the ledger.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    /// Its record and desired settings are asked for before the nodes are read.
    #[default]
    Loading,
    /// The nodes are read.
    Reading,
    /// Every node answered; its record is asked for again to judge against.
    Judging,
}

/// What one node said about one index.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum NodeRead {
    /// The index does not exist there.
    Missing,
    /// Settings read: fingerprint, and whether they hold the desired settings (true when the
    /// filter holds none).
    Settings { fingerprint: String, holds_desired: bool },
}

#[derive(Debug, Default)]
pub(super) struct IndexReads {
    /// Its record when the reads went out. Reads are judged only if nothing changed meanwhile
    /// (a commit, a queued write, a freeze): otherwise they mix two states.
    before: IndexRecord,
    desired: Option<Map<String, Value>>,
    /// Per node: None while unanswered or unreachable.
    nodes: Vec<Option<NodeRead>>,
    /// One body per distinct fingerprint.
    bodies: SortedMap<String, Value>,
    outstanding: usize,
    stage: Stage,
    /// Mirror mode: per node, `numberOfDocuments` and `isIndexing` from its stats.
    counts: Vec<Option<(u64, bool)>>,
    /// Mirrored writes still open when the reads went out.
    open_before: usize,
}

/// The parts of an index record a settings change moves (the lease and phase are bookkeeping).
fn same_state(a: &IndexRecord, b: &IndexRecord) -> bool {
    a.version == b.version
        && a.queue == b.queue
        && a.frozen == b.frozen
        && a.fingerprint == b.fingerprint
        && a.node_versions == b.node_versions
}

/// Bound on indexes per run: listing asks each node for this many.
const MAX_INDEXES: usize = 1000;

impl Engine {
    /// Start a scheduled run when it is due and this worker wins the lease, or an operator's
    /// one-index check when one is waiting; keep a running one's lease.
    pub(super) fn drive_drift(&mut self, host: &mut dyn Host) {
        if self.drift.is_some() {
            self.renew_drift_lease(host);
            return;
        }
        if !self.verify_requests.is_empty() {
            let (index, repair) = self.verify_requests.remove(0);
            self.start_drift(host, Some((index, repair)), false);
            return;
        }
        if self.drift_claim_pending {
            return;
        }
        let (now, interval_ms) = (host.now_ms(), self.cfg.settings_drift_check.interval_s * 1000);
        // Not due, or another worker's run is alive, as this worker's view shows the schedule:
        // asking the ledger would only be told so (with etcd, a transaction per tick).
        let schedule: Option<DriftSchedule> = store::read(host, keys::DRIFT_LEASE_KEY).ok().flatten();
        if schedule.is_some_and(|s| lease::drift_claimed(&s, &self.worker, now, interval_ms).is_none()) {
            return;
        }
        self.drift_claim_pending = true;
        let op = Op::ClaimDriftRun { owner: self.worker.clone(), now_ms: now, interval_ms };
        self.submit(host, op, Awaiting::DriftClaim);
    }

    /// The ledger answered the claim of a scheduled run.
    pub(super) fn on_drift_claimed(&mut self, host: &mut dyn Host, claimed: bool) {
        self.drift_claim_pending = false;
        if !claimed {
            return;
        }
        if self.drift.is_some() {
            // An operator's check started meanwhile: give the scheduled run back.
            let op = Op::EndDriftRun { owner: self.worker.clone() };
            self.submit(host, op, Awaiting::Logged("drift check: releasing its lease failed".into()));
            return;
        }
        self.start_drift(host, None, true);
    }

    fn renew_drift_lease(&mut self, host: &mut dyn Host) {
        let now = host.now_ms();
        let Some(run) = self.drift.as_mut().filter(|r| r.scheduled && now >= r.renew_at_ms) else { return };
        run.renew_at_ms = now + DRIFT_LEASE_RENEW_MS;
        let op = Op::RenewDriftRun { owner: self.worker.clone(), now_ms: now };
        self.submit(host, op, Awaiting::Logged("drift check: renewing its lease failed".into()));
    }

    fn start_drift(&mut self, host: &mut dyn Host, only: Option<(String, bool)>, scheduled: bool) {
        let n = self.cfg.nodes.len();
        let epoch = self.new_epoch();
        let renew_at_ms = host.now_ms() + DRIFT_LEASE_RENEW_MS;
        let mut run = DriftRun { epoch, scheduled, renew_at_ms, ..DriftRun::default() };
        match only {
            Some((index, operator_repair)) => {
                run.operator_repair = operator_repair;
                run.pending.push_back(index);
                self.drift = Some(run);
            }
            None => {
                log::debug!("miroir: drift check starts on worker {}", self.worker);
                run.listing = true;
                run.lists = vec![None; n];
                self.drift = Some(run);
                let path = format!("/indexes?limit={MAX_INDEXES}");
                for i in 0..n {
                    if self.drift_call(host, i, "", &path) {
                        if let Some(run) = self.drift.as_mut() {
                            run.outstanding_lists += 1;
                        }
                    }
                }
            }
        }
        self.drift_progress(host);
    }

    /// Ask the ledger for `index`'s record and desired settings; the reads go out on the answer.
    fn drift_read(&mut self, host: &mut dyn Host, index: &str) {
        let Some(run) = self.drift.as_mut() else { return };
        run.reading.insert(index.to_string(), IndexReads::default());
        let epoch = run.epoch;
        let op = Op::ReadIndex { index: index.to_string(), with_desired: true };
        self.submit(host, op, Awaiting::DriftRead { index: index.to_string(), epoch });
    }

    /// The record as the reads go out came back: send the settings reads of `index` to every node.
    pub(super) fn on_drift_index_read(
        &mut self,
        host: &mut dyn Host,
        index: &str,
        epoch: u64,
        before: IndexRecord,
        desired: Option<Map<String, Value>>,
        open_before: usize,
    ) {
        let n = self.cfg.nodes.len();
        let Some(reads) = self.drift.as_mut().filter(|r| r.epoch == epoch).and_then(|r| r.reading.get_mut(index)) else {
            return;
        };
        *reads = IndexReads {
            before,
            desired,
            nodes: vec![None; n],
            counts: vec![None; n],
            open_before,
            stage: Stage::Reading,
            ..IndexReads::default()
        };
        let mut paths = vec![format!("/indexes/{index}/settings")];
        if self.cfg.writes == crate::core::config::Writes::Mirror {
            paths.push(format!("/indexes/{index}/stats"));
        }
        for i in 0..n {
            for path in &paths {
                if self.drift_call(host, i, index, path) {
                    if let Some(reads) = self.drift.as_mut().and_then(|r| r.reading.get_mut(index)) {
                        reads.outstanding += 1;
                    }
                }
            }
        }
        self.drift_progress(host);
    }

    fn drift_call(&mut self, host: &mut dyn Host, node: usize, index: &str, path: &str) -> bool {
        let (Some(cfg), Some(run)) = (self.cfg.nodes.get(node), self.drift.as_ref()) else { return false };
        let headers = self.node_key_header(host);
        let call = Callout {
            cluster: cfg.cluster.clone(),
            method: "GET".into(),
            path: path.to_string(),
            authority: cfg.authority.clone(),
            headers,
            body: None,
            timeout_ms: self.cfg.settings_broadcast.verify_timeout_s * 1000,
        };
        let purpose = if index.is_empty() { Purpose::DriftList } else { Purpose::DriftRead };
        match host.dispatch(&call) {
            Ok(token) => {
                self.callouts.insert(token, Tag { index: index.to_string(), epoch: run.epoch, node, purpose });
                true
            }
            Err(e) => {
                log::warn!("miroir: drift check: callout to {} refused: {e}", cfg.id);
                host.counter_add(&metrics::for_node(metrics::CALLOUT_ERRORS_TOTAL, &cfg.id), 1);
                false
            }
        }
    }

    pub(super) fn on_drift_response(&mut self, host: &mut dyn Host, tag: &Tag, resp: &CalloutResponse) {
        if self.drift.as_ref().is_none_or(|run| run.epoch != tag.epoch) {
            return;
        }
        if matches!(resp.status, Some(401) | Some(403)) && !self.warned_node_key {
            // Asked once per worker; the first worker of this Envoy to get the claim warns.
            self.warned_node_key = true;
            self.submit(host, Op::ClaimNodeKeyWarning, Awaiting::NodeKeyWarning);
        }
        let Some(run) = self.drift.as_mut() else { return };
        let body: Option<Value> = match resp.status {
            Some(200) => serde_json::from_slice(&resp.body).ok(),
            _ => None,
        };
        match tag.purpose {
            Purpose::DriftList => {
                run.outstanding_lists = run.outstanding_lists.saturating_sub(1);
                let uids = body.and_then(|b| {
                    b.get("results").and_then(Value::as_array).map(|r| {
                        r.iter().filter_map(|i| i.get("uid").and_then(Value::as_str).map(str::to_string)).collect()
                    })
                });
                if let Some(slot) = run.lists.get_mut(tag.node) {
                    *slot = uids;
                }
            }
            Purpose::DriftRead => {
                let Some(reads) = run.reading.get_mut(&tag.index) else { return };
                reads.outstanding = reads.outstanding.saturating_sub(1);
                let stats = body.as_ref().and_then(|b| {
                    Some((b.get("numberOfDocuments")?.as_u64()?, b.get("isIndexing").and_then(Value::as_bool).unwrap_or(true)))
                });
                if let Some(stats) = stats {
                    if let Some(slot) = reads.counts.get_mut(tag.node) {
                        *slot = Some(stats);
                    }
                    self.drift_progress(host);
                    return;
                }
                if matches!(resp.status, Some(200)) && body.is_none() {
                    // An unreadable stats answer says nothing about the settings read.
                    self.drift_progress(host);
                    return;
                }
                let read = match (resp.status, body) {
                    (Some(200), Some(body)) => {
                        let fp = fingerprint(&body);
                        let holds_desired = reads
                            .desired
                            .as_ref()
                            .is_none_or(|d| Proposal::Patch(d.clone()).mismatches(&body).is_empty());
                        reads.bodies.entry(fp.clone()).or_insert(body);
                        Some(NodeRead::Settings { fingerprint: fp, holds_desired })
                    }
                    (Some(404), _) if crate::core::job::is_index_not_found(&resp.body) => Some(NodeRead::Missing),
                    _ => None,
                };
                if let Some(slot) = reads.nodes.get_mut(tag.node) {
                    *slot = read;
                }
            }
            _ => {}
        }
        self.drift_progress(host);
    }

    /// Judge every index whose reads are all in, start reads up to the bound, and end the run
    /// when nothing is left.
    fn drift_progress(&mut self, host: &mut dyn Host) {
        // Ledger answers that come at once call back in here from inside this very call: the
        // outer call goes on from where they leave the run.
        if self.drift_progressing {
            return;
        }
        self.drift_progressing = true;
        self.drift_step(host);
        self.drift_progressing = false;
    }

    fn drift_step(&mut self, host: &mut dyn Host) {
        let Some(run) = self.drift.as_mut() else { return };
        if run.listing {
            if run.outstanding_lists > 0 {
                return;
            }
            run.listing = false;
            let mut all: Vec<String> = run.lists.iter().flatten().flatten().cloned().collect();
            crate::core::sort::sort_dedup(&mut all);
            run.pending.extend(all);
        }
        let done: Vec<String> = run
            .reading
            .iter()
            .filter(|(_, r)| r.stage == Stage::Reading && r.outstanding == 0)
            .map(|(i, _)| i.clone())
            .collect();
        for index in done {
            self.drift_judge(host, &index);
        }
        let limit = usize::try_from(self.cfg.settings_drift_check.max_reads_in_flight).unwrap_or(1).max(1);
        loop {
            let Some(run) = self.drift.as_mut() else { return };
            if run.reading.len() >= limit {
                return;
            }
            let Some(index) = run.pending.pop_front() else { break };
            self.drift_read(host, &index);
            // Every read refused at dispatch: judge it (as unreachable) right away.
            if self.drift.as_ref().and_then(|r| r.reading.get(&index)).is_some_and(|r| r.stage == Stage::Reading && r.outstanding == 0) {
                self.drift_judge(host, &index);
            }
        }
        if self.drift.as_ref().is_some_and(|r| !r.reading.is_empty()) {
            return;
        }
        let Some(run) = self.drift.take() else { return };
        if run.scheduled {
            let op = Op::EndDriftRun { owner: self.worker.clone() };
            self.submit(host, op, Awaiting::Logged("drift check: releasing its lease failed".into()));
        }
        self.serve_verify_waiters(host);
    }

    /// Every node answered for `index`: ask the ledger for its record as it stands now, and
    /// judge against it when it comes.
    fn drift_judge(&mut self, host: &mut dyn Host, index: &str) {
        let Some(run) = self.drift.as_mut() else { return };
        let Some(reads) = run.reading.get_mut(index) else { return };
        reads.stage = Stage::Judging;
        let epoch = run.epoch;
        let op = Op::ReadIndex { index: index.to_string(), with_desired: false };
        self.submit(host, op, Awaiting::DriftJudge { index: index.to_string(), epoch });
    }

    /// The record to judge `index`'s reads against came back.
    pub(super) fn on_drift_judge(&mut self, host: &mut dyn Host, index: &str, epoch: u64, rec: IndexRecord, open_now: usize) {
        let Some(run) = self.drift.as_mut().filter(|r| r.epoch == epoch) else { return };
        let operator_repair = run.operator_repair;
        let Some(mut reads) = run.reading.remove(index) else { return };
        // Counts compare only with no mirrored write open from before the reads to after them.
        reads.open_before = reads.open_before.max(open_now);
        self.judge_drift(host, index, &reads, operator_repair, rec);
        self.drift_progress(host);
    }

    fn judge_drift(&mut self, host: &mut dyn Host, index: &str, reads: &IndexReads, operator_repair: bool, rec: IndexRecord) {
        let now = host.now_ms();
        let busy = !rec.queue.is_empty() || self.jobs.contains_key(index);
        if busy || !same_state(&reads.before, &rec) {
            // A broadcast is under way or happened while the nodes were read: its own verify
            // decides, and these reads may mix two states. Say so to an operator who asked.
            let result = VerifyResult {
                at_ms: now,
                converged: false,
                fingerprints: SortedMap::new(),
                detail: "a settings write ran during the check; nothing concluded, retry".into(),
                repair_task: None,
            };
            self.write_verify_result(host, index, result);
            return;
        }
        if self.cfg.writes == crate::core::config::Writes::Mirror {
            if let Some(detail) = self.judge_mirror_existence(host, index, reads, &rec) {
                let result = VerifyResult { at_ms: now, converged: false, fingerprints: SortedMap::new(), detail, repair_task: None };
                self.write_verify_result(host, index, result);
                return;
            }
        }
        let fps: Vec<Option<String>> = reads
            .nodes
            .iter()
            .map(|r| match r {
                Some(NodeRead::Settings { fingerprint, .. }) => Some(fingerprint.clone()),
                _ => None,
            })
            .collect();
        let fingerprints: SortedMap<String, Option<String>> =
            self.cfg.nodes.iter().zip(fps.iter()).map(|(n, f)| (n.id.clone(), f.clone())).collect();
        let reachable = reads.nodes.iter().all(Option::is_some);
        let first = fps.first().cloned().flatten();
        let converged = reachable && first.is_some() && fps.iter().all(|f| *f == first);
        let mut detail = String::new();
        let mut repair_task = None;
        if converged {
            if let Some(fp) = &first {
                self.record_converged(host, index, fp, &rec);
            }
        } else if !reachable {
            detail = "some nodes could not be read; nothing concluded".into();
        } else if reads.nodes.iter().all(|r| matches!(r, Some(NodeRead::Missing))) {
            // Gone everywhere: not drift, and nothing to compare — said at once to an operator
            // who asked (who would otherwise wait for a result until the check timed out).
            detail = format!("index `{index}` is on no node: nothing to compare");
        } else {
            host.counter_add(&metrics::for_index(metrics::DRIFT_DETECTED_TOTAL, index), 1);
            let result = VerifyResult { at_ms: now, converged, fingerprints: fingerprints.clone(), detail: String::new(), repair_task: None };
            let Some(decided) = self.repair_drift(host, index, reads, &fps, &rec, operator_repair, result) else {
                return; // a repair is being queued: its answer writes the result
            };
            (detail, repair_task) = decided;
            log::warn!("miroir: drift on index {index}: {detail}");
        }
        let result = VerifyResult { at_ms: now, converged, fingerprints, detail, repair_task };
        self.write_verify_result(host, index, result);
    }

    /// Mirror mode: an index is written through the gateway to every node, so one that exists
    /// on some nodes and not on others is not settings drift to repair by recreating it (that
    /// would bring back an index deleted through the gateway): the nodes in the minority are
    /// out of sync and need a resync (ties: the index exists if the filter keeps settings for
    /// it). Nodes already out of sync are not judged here; their catch-up or resync decides.
    /// Returns what was concluded, or None to judge the settings as usual.
    fn judge_mirror_existence(&mut self, host: &mut dyn Host, index: &str, reads: &IndexReads, rec: &IndexRecord) -> Option<String> {
        let judged: Vec<usize> = (0..self.cfg.nodes.len())
            .filter(|i| self.cfg.nodes.get(*i).is_some_and(|n| !rec.out_of_sync.contains_key(&n.id)))
            .collect();
        let read = |i: &usize| reads.nodes.get(*i).cloned().flatten();
        let present: Vec<usize> = judged.iter().copied().filter(|i| matches!(read(i), Some(NodeRead::Settings { .. }))).collect();
        let missing: Vec<usize> = judged.iter().copied().filter(|i| matches!(read(i), Some(NodeRead::Missing))).collect();
        if present.is_empty() || missing.is_empty() {
            if !rec.out_of_sync.is_empty() {
                return Some("some nodes are out of sync: their catch-up or resync decides; nothing else concluded".into());
            }
            return self.judge_mirror_counts(host, index, reads, &present);
        }
        let kept = rec.fingerprint.is_some() || reads.desired.is_some();
        let exists = present.len() > missing.len() || (present.len() == missing.len() && kept);
        let (odd, why) = if exists {
            (missing, format!("index `{index}` is missing there but not on the other nodes"))
        } else {
            (present, format!("index `{index}` exists there but not on the other nodes"))
        };
        host.counter_add(&metrics::for_index(metrics::DRIFT_DETECTED_TOTAL, index), 1);
        let lags: Vec<(String, crate::core::state::records::NodeLag)> = odd
            .iter()
            .filter_map(|i| self.cfg.nodes.get(*i))
            .map(|n| (n.id.clone(), crate::core::state::records::NodeLag { why: why.clone(), replay_from: None }))
            .collect();
        let ids: Vec<String> = lags.iter().map(|(id, _)| id.clone()).collect();
        self.mark_out_of_sync(host, index, lags);
        Some(format!("nodes {}: {why}; they need a resync", ids.join(", ")))
    }

    /// Mirror mode: with no mirrored write open and no node indexing, every node in sync holds
    /// the same number of documents; the nodes off the most common count need a resync.
    fn judge_mirror_counts(&mut self, host: &mut dyn Host, index: &str, reads: &IndexReads, present: &[usize]) -> Option<String> {
        if reads.open_before > 0 || present.is_empty() {
            return None;
        }
        let counts: Vec<(usize, u64)> = present
            .iter()
            .filter_map(|i| match reads.counts.get(*i).copied().flatten() {
                Some((docs, false)) => Some((*i, docs)),
                _ => None,
            })
            .collect();
        if counts.len() != present.len() {
            return None; // a node is indexing (or did not answer): counts would mix two moments
        }
        let most = counts.iter().map(|(_, c)| *c).max_by_key(|c| (counts.iter().filter(|(_, o)| o == c).count(), std::cmp::Reverse(*c)))?;
        let odd: Vec<(usize, u64)> = counts.iter().copied().filter(|(_, c)| *c != most).collect();
        if odd.is_empty() {
            return None;
        }
        host.counter_add(&metrics::for_index(metrics::DRIFT_DETECTED_TOTAL, index), 1);
        let lags: Vec<(String, crate::core::state::records::NodeLag)> = odd
            .iter()
            .filter_map(|(i, c)| {
                let why = format!("holds {c} documents of index `{index}` where the other nodes hold {most}");
                self.cfg.nodes.get(*i).map(|n| (n.id.clone(), crate::core::state::records::NodeLag { why, replay_from: None }))
            })
            .collect();
        let ids: Vec<String> = lags.iter().map(|(id, _)| id.clone()).collect();
        self.mark_out_of_sync(host, index, lags);
        Some(format!("nodes {} hold another number of documents than the others ({most}); they need a resync", ids.join(", ")))
    }

    fn write_verify_result(&mut self, host: &mut dyn Host, index: &str, result: VerifyResult) {
        let op = Op::WriteVerifyResult { index: index.to_string(), result };
        self.submit(host, op, Awaiting::Logged(format!("index {index}: recording the check failed")));
    }

    /// The ledger queued (or failed to queue) the repair a check decided: record the check.
    pub(super) fn on_repair_queued(&mut self, index: &str, differ: &str, mut result: VerifyResult, uid: Result<u64, String>, host: &mut dyn Host) {
        match uid {
            Ok(uid) => {
                self.kick(index);
                result.detail = format!("nodes {differ} differ; repair queued as task {uid}");
                result.repair_task = Some(uid);
            }
            Err(e) => result.detail = format!("nodes {differ} differ; queueing the repair failed: {e}"),
        }
        log::warn!("miroir: drift on index {index}: {}", result.detail);
        self.write_verify_result(host, index, result);
    }

    /// The ledger recorded a converged fleet (and lifted the freeze when there was one).
    pub(super) fn on_converged(&mut self, host: &mut dyn Host, index: &str, lifted: bool, failed: Option<String>) {
        if let Some(e) = failed {
            log::warn!("miroir: index {index}: {e}");
            return;
        }
        if lifted {
            host.gauge_set(&metrics::for_index(metrics::DIVERGENCE, index), 0);
            host.gauge_set(&metrics::for_index(metrics::BROADCAST_PHASE, index), Phase::Idle.gauge());
            log::warn!("miroir: index {index}: the fleet is converged again; writes are allowed");
        }
    }

    fn record_converged(&mut self, host: &mut dyn Host, index: &str, fp: &str, before: &IndexRecord) {
        let lift_freeze = before.frozen.is_some();
        let node_ids: Vec<String> = self.cfg.nodes.iter().map(|n| n.id.clone()).collect();
        let op = Op::RecordConverged { index: index.to_string(), node_ids, fingerprint: fp.to_string(), lift_freeze };
        self.submit(host, op, Awaiting::Converged { index: index.to_string(), lift_freeze });
    }

    /// Decide the reference, and queue a repair job or freeze. Returns a one-line account and
    /// the repair task, or None when a repair is being queued (`result` is then recorded when
    /// the ledger answers). A frozen index is repaired only when an operator asks
    /// (`operator_repair`).
    #[allow(clippy::too_many_arguments)]
    fn repair_drift(
        &mut self,
        host: &mut dyn Host,
        index: &str,
        reads: &IndexReads,
        fps: &[Option<String>],
        rec: &IndexRecord,
        operator_repair: bool,
        result: VerifyResult,
    ) -> Option<(String, Option<u64>)> {
        if rec.frozen.is_some() && !operator_repair {
            return Some((format!("index is frozen: an operator repairs it (POST /_miroir/indexes/{index}/repair)"), None));
        }
        // Candidates: nodes that hold the desired settings (or every node holding the index).
        let candidates: Vec<Option<(String, bool)>> = reads
            .nodes
            .iter()
            .map(|r| match r {
                Some(NodeRead::Settings { fingerprint, holds_desired }) => Some((fingerprint.clone(), *holds_desired)),
                _ => None,
            })
            .collect();
        let (reference, agree) = crate::core::job::agreeing_nodes(&candidates);
        let ref_body = reference.as_ref().and_then(|r| reads.bodies.get(r));
        let bad: Vec<usize> = agree.iter().enumerate().filter(|(_, a)| !**a).map(|(i, _)| i).collect();
        let ids: Vec<String> = bad.iter().filter_map(|i| self.cfg.nodes.get(*i)).map(|n| n.id.clone()).collect();
        let Some(ref_body) = ref_body else {
            return Some((self.freeze_for_drift(host, index, &bad, fps, "no majority among the nodes"), None));
        };
        if !self.cfg.settings_drift_check.auto_repair && !operator_repair {
            return Some((format!("nodes {} differ; auto_repair is off, reported only", ids.join(", ")), None));
        }
        let mut body = ref_body.clone();
        let embedders_differ = reads.bodies.values().any(|b| b.get("embedders") != ref_body.get("embedders"));
        if let Some(obj) = body.as_object_mut() {
            match reads.desired.as_ref().and_then(|d| d.get("embedders")) {
                Some(e) => {
                    obj.insert("embedders".into(), e.clone());
                }
                None if embedders_differ => {
                    let why = "embedders differ and their apiKeys are masked";
                    return Some((self.freeze_for_drift(host, index, &bad, fps, why), None));
                }
                None => {
                    obj.remove("embedders");
                }
            }
        }
        self.queue_repair(host, index, body, ids, operator_repair, result);
        None
    }

    /// Queue a job that re-sends `body` (complete settings, secrets included) to the nodes
    /// `targets`, verified like any job and without a new version. `lifts_freeze`: an operator's
    /// repair, which runs on a frozen index and unfreezes it when the fleet converges.
    fn queue_repair(
        &mut self,
        host: &mut dyn Host,
        index: &str,
        body: Value,
        targets: Vec<String>,
        lifts_freeze: bool,
        result: VerifyResult,
    ) {
        let differ = targets.join(", ");
        let job = JobRecord {
            task_uid: 0,
            index: index.to_string(),
            method: "PATCH".into(),
            path: format!("/indexes/{index}/settings"),
            setting_key: None,
            body: Some(body.to_string()),
            content_type: Some("application/json".into()),
            authorization: self.node_key(host),
            origin_worker: String::new(),
            enqueued_ms: host.now_ms(),
            targets: Some(targets),
            drift_repair: true,
            lifts_freeze,
            ..JobRecord::default()
        };
        let op = Op::Enqueue { job: Box::new(job), details: Value::Null };
        self.submit(host, op, Awaiting::RepairQueued { index: index.to_string(), differ, result });
    }

    fn freeze_for_drift(
        &mut self,
        host: &mut dyn Host,
        index: &str,
        bad: &[usize],
        fps: &[Option<String>],
        why: &str,
    ) -> String {
        let now = host.now_ms();
        let record = FrozenRecord {
            reason: format!("drift that cannot be repaired safely: {why}"),
            nodes: bad.iter().filter_map(|i| self.cfg.nodes.get(*i)).map(|n| n.id.clone()).collect(),
            fingerprints: self.cfg.nodes.iter().zip(fps).map(|(n, f)| (n.id.clone(), f.clone())).collect(),
            at_ms: now,
            task_uid: None,
        };
        let reason = record.reason.clone();
        if self.cfg.settings_broadcast.freeze_writes_on_unrepairable {
            let op = Op::Freeze(Freeze { index: index.to_string(), record, job: None });
            self.submit(host, op, Awaiting::Logged(format!("index {index}: recording the freeze failed")));
            host.gauge_set(&metrics::for_index(metrics::BROADCAST_PHASE, index), Phase::Frozen.gauge());
        }
        host.gauge_set(&metrics::for_index(metrics::DIVERGENCE, index), 1);
        log::error!("miroir: index {index}: {reason}");
        reason
    }
}
