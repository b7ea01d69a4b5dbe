//! How a job ends: commit as owner, the one freeze path, failure, and the hand-over to the next job
//! on the index.

use super::*;

impl Engine {
    pub(super) fn commit(&mut self, host: &mut dyn Host, index: &str, fp: String, fingerprints: Vec<Option<String>>) {
        let Some(run) = self.jobs.get(index) else { return };
        let task_uid = run.job.task_uid;
        // A drift repair restores the committed settings: no new version.
        let bump = u64::from(!run.job.drift_repair);
        // Only the nodes the job included move to the new version; one catching up gets it when
        // it rejoins.
        let fingerprints = self
            .cfg
            .nodes
            .iter()
            .map(|n| n.id.clone())
            .zip(fingerprints)
            .enumerate()
            .filter(|(i, _)| !run.excluded.contains(i))
            .map(|(_, pair)| pair)
            .collect();
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
    pub(super) fn on_committed(&mut self, host: &mut dyn Host, index: &str, task_uid: u64, version: Result<Option<u64>, StoreError>) {
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

    pub(super) fn freeze(&mut self, host: &mut dyn Host, index: &str, bad: Vec<usize>) {
        let Some(run) = self.jobs.get(index) else { return };
        let now = host.now_ms();
        let task_uid = run.job.task_uid;
        let detail = self.divergence_detail(&bad);
        let fingerprints: SortedMap<String, Option<String>> = self
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
    pub(super) fn on_frozen(&mut self, host: &mut dyn Host, index: &str, task_uid: u64, detail: &str, reason: &str, failed: Option<StoreError>) {
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
        // Frozen first: a client that sees the task failed sees why (with etcd, another gateway
        // may read the task between two ledger operations).
        self.update_task(host, task_uid, TaskChange::Frozen);
        self.close_task(host, index, task_uid, "failed", Some(err), None, now);
        self.record_result(host, index, "frozen", now);
        self.next_job(host, index, task_uid);
    }

    pub(super) fn finish(&mut self, host: &mut dyn Host, index: &str, task_uid: u64, outcome: Outcome) {
        let now = host.now_ms();
        let op = Op::Dequeue { index: index.to_string(), owner: self.worker.clone(), task_uid };
        self.submit(host, op, Awaiting::Logged(format!("index {index}: dequeuing task {task_uid} failed")));
        match outcome {
            Outcome::Failed(error) => {
                self.close_task(host, index, task_uid, "failed", Some(error), None, now);
                self.record_result(host, index, "failed", now);
            }
            Outcome::Rejected { error } => {
                self.update_task(host, task_uid, TaskChange::EndedWithoutTask { error, now_ms: now });
                self.record_result(host, index, "rejected", now);
            }
            Outcome::Dropped | Outcome::Tracked => {}
        }
        self.next_job(host, index, task_uid);
    }

    /// The running job of `index` has ended (committed, failed, frozen, rejected or dropped):
    /// release its record and, once the ledger says what is next, start the next one.
    pub(super) fn next_job(&mut self, host: &mut dyn Host, index: &str, ended: u64) {
        self.jobs.remove(index);
        self.claiming.insert(index.to_string());
        let op = Op::EndJob { index: index.to_string(), owner: self.worker.clone(), task_uid: ended, now_ms: host.now_ms() };
        self.submit(host, op, Awaiting::Next { index: index.to_string() });
    }

    /// The ledger answered a job's end.
    pub(super) fn on_next(&mut self, host: &mut dyn Host, index: &str, next: Result<Next, StoreError>) {
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
}
