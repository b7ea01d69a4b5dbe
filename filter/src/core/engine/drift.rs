//! The drift check (DESIGN §3): catches settings changed behind the proxy's back. One worker at a
//! time runs it (a lease in shared data), at start and every `interval_s`; an operator can also
//! ask for one index through the admin API. It lists the indexes on every node, reads every
//! index's settings from every node and compares fingerprints. A converged index gets every
//! node's verified version (and, if it was frozen, is unfrozen); a drifted one is counted and,
//! with `auto_repair`, repaired by a job that re-sends the reference settings to the nodes that
//! differ. The reference is the desired settings the filter committed, or the majority when it
//! holds none. Drift in embedders, whose apiKeys every read masks, is repaired only from the
//! desired settings; otherwise the index is frozen and the alert raised.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{activate, read_hot, Engine, Purpose, Tag};
use crate::core::fingerprint::fingerprint;
use crate::core::host::{Callout, CalloutResponse, Host};
use crate::core::metrics;
use crate::core::proposal::Proposal;
use crate::core::records::{FrozenRecord, HotRecord, IndexRecord, JobRecord, Lease, Phase};
use crate::core::store;

/// The drift lease and schedule, shared by every worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DriftSchedule {
    pub lease: Option<Lease>,
    pub next_run_ms: u64,
}

/// Outcome of the last check of one index, read by the admin API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyResult {
    pub at_ms: u64,
    pub converged: bool,
    /// Node id → fingerprint (None: index missing or node unreachable).
    pub fingerprints: BTreeMap<String, Option<String>>,
    pub detail: String,
}

pub fn verify_result_key(index: &str) -> String {
    format!("{}verified/{index}", store::PREFIX)
}

/// A run in flight on this worker.
#[derive(Debug, Default)]
pub(super) struct DriftRun {
    pub epoch: u32,
    pub outstanding: usize,
    pub scheduled: bool,
    pub listing: bool,
    /// Per node: the index uids it lists (None: unreachable).
    pub lists: Vec<Option<Vec<String>>>,
    /// Per index, per node: Some(Some(body)) read; Some(None) missing there; None unreachable.
    pub reads: BTreeMap<String, Vec<Option<Option<Value>>>>,
    /// Per index: its record when the reads went out. Reads are judged only if nothing changed
    /// meanwhile (a commit, a queued write, a freeze): otherwise they mix two states.
    pub before: BTreeMap<String, IndexRecord>,
}

/// The parts of an index record a settings change moves (the lease and phase are bookkeeping).
fn same_state(a: &IndexRecord, b: &IndexRecord) -> bool {
    a.version == b.version
        && a.queue == b.queue
        && a.frozen == b.frozen
        && a.fingerprint == b.fingerprint
        && a.node_versions == b.node_versions
}

const DRIFT_LEASE_TTL_MS: u64 = 60_000;
const WARNED_NODE_KEY: &str = "miroir/v1/warned_node_key";

/// True for the first worker of this Envoy to claim the missing-node-key warning.
fn first_warning(host: &mut dyn Host) -> bool {
    let mut first = false;
    let _ = store::update::<bool, _>(host, WARNED_NODE_KEY, |warned| {
        first = false;
        if warned.copied().unwrap_or(false) {
            return None;
        }
        first = true;
        Some(true)
    });
    first
}
/// Bound on indexes per run: listing asks each node for this many.
const MAX_INDEXES: usize = 1000;

impl Engine {
    /// Start a scheduled run when it is due and this worker wins the lease, or an operator's
    /// one-index check when one is waiting.
    pub(super) fn drive_drift(&mut self, host: &mut dyn Host) {
        if self.drift.is_some() {
            return;
        }
        if let Some(index) = self.verify_requests.first().cloned() {
            self.verify_requests.remove(0);
            self.start_drift(host, Some(index), false);
            return;
        }
        let now = host.now_ms();
        let me = self.worker.clone();
        let interval = self.cfg.settings_drift_check.interval_s * 1000;
        let claimed = store::update::<DriftSchedule, _>(host, store::DRIFT_LEASE_KEY, |s| {
            let s = s.cloned().unwrap_or_default();
            let free = s.lease.as_ref().is_none_or(|l| l.expires_ms <= now || l.owner == me);
            if now < s.next_run_ms || !free {
                return None;
            }
            Some(DriftSchedule {
                lease: Some(Lease { owner: me.clone(), expires_ms: now + DRIFT_LEASE_TTL_MS }),
                next_run_ms: now + interval,
            })
        });
        if let Ok(Some(s)) = claimed {
            if s.lease.as_ref().is_some_and(|l| l.owner == self.worker) && s.next_run_ms == now + interval {
                self.start_drift(host, None, true);
            }
        }
    }

    fn start_drift(&mut self, host: &mut dyn Host, only: Option<String>, scheduled: bool) {
        let n = self.cfg.nodes.len();
        let epoch = self.drift_epoch.wrapping_add(1);
        self.drift_epoch = epoch;
        let mut run = DriftRun { epoch, scheduled, ..DriftRun::default() };
        match only {
            Some(index) => {
                run.reads.insert(index.clone(), vec![None; n]);
                self.drift = Some(run);
                self.drift_read(host, &index);
            }
            None => {
                log::debug!("miroir: drift check starts on worker {}", self.worker);
                run.listing = true;
                run.lists = vec![None; n];
                self.drift = Some(run);
                let path = format!("/indexes?limit={MAX_INDEXES}");
                for i in 0..n {
                    self.drift_call(host, i, "", &path);
                }
                self.drift_progress(host);
            }
        }
    }

    fn drift_read(&mut self, host: &mut dyn Host, index: &str) {
        let rec: IndexRecord = store::read(host, &store::index_key(index)).ok().flatten().unwrap_or_default();
        if let Some(run) = self.drift.as_mut() {
            run.before.insert(index.to_string(), rec);
        }
        let path = format!("/indexes/{index}/settings");
        for i in 0..self.cfg.nodes.len() {
            self.drift_call(host, i, index, &path);
        }
    }

    fn drift_call(&mut self, host: &mut dyn Host, node: usize, index: &str, path: &str) {
        let (Some(cfg), Some(run)) = (self.cfg.nodes.get(node), self.drift.as_mut()) else { return };
        let mut headers = Vec::new();
        if let Some(key) = host.env(&self.cfg.node_api_key_env).filter(|k| !k.is_empty()) {
            headers.push(("authorization".to_string(), format!("Bearer {key}")));
        }
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
                run.outstanding += 1;
                self.callouts.insert(token, Tag { index: index.to_string(), epoch: run.epoch, node, purpose });
            }
            Err(e) => log::warn!("miroir: drift check: callout to {} refused: {e}", cfg.id),
        }
    }

    pub(super) fn on_drift_response(&mut self, host: &mut dyn Host, tag: &Tag, resp: &CalloutResponse) {
        let Some(run) = self.drift.as_mut() else { return };
        if run.epoch != tag.epoch {
            return;
        }
        run.outstanding = run.outstanding.saturating_sub(1);
        if matches!(resp.status, Some(401) | Some(403)) && !self.warned_node_key && first_warning(host) {
            self.warned_node_key = true;
            log::warn!(
                "miroir: drift check: nodes refuse unauthenticated reads; set the node key in ${}",
                self.cfg.node_api_key_env
            );
        }
        let body: Option<Value> = match resp.status {
            Some(200) => serde_json::from_slice(&resp.body).ok(),
            _ => None,
        };
        match tag.purpose {
            Purpose::DriftList => {
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
                let read = match resp.status {
                    Some(200) => Some(body),
                    Some(404) => Some(None),
                    _ => None,
                };
                if let Some(slot) = run.reads.get_mut(&tag.index).and_then(|r| r.get_mut(tag.node)) {
                    *slot = read;
                }
            }
            _ => {}
        }
        self.drift_progress(host);
    }

    fn drift_progress(&mut self, host: &mut dyn Host) {
        let Some(run) = self.drift.as_mut() else { return };
        if run.outstanding > 0 {
            return;
        }
        if run.listing {
            run.listing = false;
            let mut all: Vec<String> = run.lists.iter().flatten().flatten().cloned().collect();
            all.sort();
            all.dedup();
            let n = self.cfg.nodes.len();
            for index in &all {
                run.reads.insert(index.clone(), vec![None; n]);
            }
            if !all.is_empty() {
                for index in all {
                    self.drift_read(host, &index);
                }
                return;
            }
        }
        let Some(run) = self.drift.take() else { return };
        for (index, reads) in &run.reads {
            self.judge_drift(host, index, reads, run.before.get(index));
        }
        if run.scheduled {
            let me = self.worker.clone();
            let _ = store::update::<DriftSchedule, _>(host, store::DRIFT_LEASE_KEY, |s| {
                let s = s?;
                if s.lease.as_ref().is_none_or(|l| l.owner != me) {
                    return None;
                }
                Some(DriftSchedule { lease: None, ..s.clone() })
            });
        }
        self.serve_verify_waiters(host);
    }

    fn judge_drift(
        &mut self,
        host: &mut dyn Host,
        index: &str,
        reads: &[Option<Option<Value>>],
        before: Option<&IndexRecord>,
    ) {
        let now = host.now_ms();
        let rec: IndexRecord = store::read(host, &store::index_key(index)).ok().flatten().unwrap_or_default();
        let busy = !rec.queue.is_empty() || self.jobs.contains_key(index);
        if busy || before.is_none_or(|b| !same_state(b, &rec)) {
            // A broadcast is under way or happened while the nodes were read: its own verify
            // decides, and these reads may mix two states. Say so to an operator who asked.
            let result = VerifyResult {
                at_ms: now,
                converged: false,
                fingerprints: BTreeMap::new(),
                detail: "a settings write ran during the check; nothing concluded, retry".into(),
            };
            let _ = store::write(host, &verify_result_key(index), &result);
            return;
        }
        let fps: Vec<Option<String>> = reads.iter().map(|r| r.clone().flatten().map(|b| fingerprint(&b))).collect();
        let fingerprints: BTreeMap<String, Option<String>> =
            self.cfg.nodes.iter().zip(fps.iter()).map(|(n, f)| (n.id.clone(), f.clone())).collect();
        let reachable = reads.iter().all(Option::is_some);
        let first = fps.first().cloned().flatten();
        let converged = reachable && first.is_some() && fps.iter().all(|f| *f == first);
        let mut detail = String::new();
        if converged {
            if let Some(fp) = &first {
                self.record_converged(host, index, fp, &rec);
            }
        } else if !reachable {
            detail = "some nodes could not be read; nothing concluded".into();
        } else if reads.iter().all(|r| matches!(r, Some(None))) {
            return; // gone everywhere: not drift
        } else {
            host.counter_add(&metrics::for_index(metrics::DRIFT_DETECTED_TOTAL, index), 1);
            detail = self.repair_drift(host, index, reads, &fps, &rec);
            log::warn!("miroir: drift on index {index}: {detail}");
        }
        let result = VerifyResult { at_ms: now, converged, fingerprints, detail };
        if let Err(e) = store::write(host, &verify_result_key(index), &result) {
            log::warn!("miroir: index {index}: {e}");
        }
    }

    fn record_converged(&mut self, host: &mut dyn Host, index: &str, fp: &str, before: &IndexRecord) {
        let n = self.cfg.nodes.len();
        let was_frozen = before.frozen.is_some();
        let result = store::update::<IndexRecord, _>(host, &store::index_key(index), |rec| {
            let mut next = rec.cloned().unwrap_or_default();
            if !next.queue.is_empty() {
                return None;
            }
            let unchanged = next.node_versions == vec![next.version; n]
                && next.fingerprint.as_deref() == Some(fp);
            if unchanged {
                return None;
            }
            next.node_versions = vec![next.version; n];
            next.node_fingerprints = vec![Some(fp.to_string()); n];
            next.fingerprint = Some(fp.to_string());
            Some(next)
        });
        if let Err(e) = result {
            log::warn!("miroir: index {index}: {e}");
            return;
        }
        if was_frozen {
            super::lift_freeze(host, index);
            log::warn!("miroir: index {index}: the fleet is converged again; writes are allowed");
        }
    }

    /// Decide the reference, and queue a repair job or freeze. Returns a one-line account.
    fn repair_drift(
        &mut self,
        host: &mut dyn Host,
        index: &str,
        reads: &[Option<Option<Value>>],
        fps: &[Option<String>],
        rec: &IndexRecord,
    ) -> String {
        if rec.frozen.is_some() {
            return "index is frozen: an operator must fix the nodes".into();
        }
        let bodies: Vec<Option<&Value>> = reads.iter().map(|r| r.as_ref().and_then(Option::as_ref)).collect();
        let desired: Option<Map<String, Value>> = store::read(host, &store::desired_key(index)).ok().flatten();
        // Candidates: nodes that hold the desired settings (or every node holding the index).
        let candidates: Vec<Option<(String, bool)>> = bodies
            .iter()
            .zip(fps)
            .map(|(b, f)| match (b, f) {
                (Some(body), Some(fp)) => {
                    let ok = desired.as_ref().is_none_or(|d| Proposal::Patch(d.clone()).mismatches(body).is_empty());
                    Some((fp.clone(), ok))
                }
                _ => None,
            })
            .collect();
        let (reference, agree) = crate::core::job::agreeing_nodes(&candidates);
        let ref_body = reference
            .as_ref()
            .and_then(|r| fps.iter().position(|f| f.as_ref() == Some(r)))
            .and_then(|i| bodies.get(i).copied().flatten());
        let bad: Vec<usize> = agree.iter().enumerate().filter(|(_, a)| !**a).map(|(i, _)| i).collect();
        let ids: Vec<String> = bad.iter().filter_map(|i| self.cfg.nodes.get(*i)).map(|n| n.id.clone()).collect();
        let Some(ref_body) = ref_body else {
            return self.freeze_for_drift(host, index, &bad, fps, "no majority among the nodes");
        };
        if !self.cfg.settings_drift_check.auto_repair {
            return format!("nodes {} differ; auto_repair is off, reported only", ids.join(", "));
        }
        let mut body = ref_body.clone();
        let embedders_differ = bodies.iter().flatten().any(|b| b.get("embedders") != ref_body.get("embedders"));
        if let Some(obj) = body.as_object_mut() {
            match desired.as_ref().and_then(|d| d.get("embedders")) {
                Some(e) => {
                    obj.insert("embedders".into(), e.clone());
                }
                None if embedders_differ => {
                    return self.freeze_for_drift(host, index, &bad, fps, "embedders differ and their apiKeys are masked");
                }
                None => {
                    obj.remove("embedders");
                }
            }
        }
        let job = JobRecord {
            task_uid: 0,
            index: index.to_string(),
            method: "PATCH".into(),
            path: format!("/indexes/{index}/settings"),
            setting_key: None,
            body: Some(body.to_string()),
            content_type: Some("application/json".into()),
            authorization: host
                .env(&self.cfg.node_api_key_env)
                .filter(|k| !k.is_empty())
                .map(|k| format!("Bearer {k}")),
            origin_worker: String::new(),
            enqueued_ms: host.now_ms(),
            targets: Some(bad.clone()),
            drift_repair: true,
        };
        match super::super::front::enqueue_job(self, host, job, Value::Null) {
            Ok(uid) => {
                activate(host, index);
                self.kick(index);
                format!("nodes {} differ; repair queued as task {uid}", ids.join(", "))
            }
            Err(e) => format!("nodes {} differ; queueing the repair failed: {e}", ids.join(", ")),
        }
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
        if self.cfg.settings_broadcast.freeze_writes_on_unrepairable {
            let hot = read_hot(host, index);
            let _ = host.shared_set(
                &store::hot_key(index),
                HotRecord { frozen: true, inconsistent: true, ..hot }.encode().as_bytes(),
                None,
            );
            let _ = store::update::<IndexRecord, _>(host, &store::index_key(index), |rec| {
                let mut next = rec.cloned().unwrap_or_default();
                next.frozen = Some(record.clone());
                next.phase = Phase::Frozen;
                Some(next)
            });
            host.gauge_set(&metrics::for_index(metrics::BROADCAST_PHASE, index), Phase::Frozen.gauge());
        }
        host.gauge_set(&metrics::for_index(metrics::DIVERGENCE, index), 1);
        log::error!("miroir: index {index}: {}", record.reason);
        record.reason
    }
}
