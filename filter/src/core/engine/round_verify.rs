//! The verify round: every node's settings read back and fingerprinted, and the verdict (commit,
//! repair, fail or freeze).

use super::*;

impl Engine {
    pub(super) fn verify_round(&mut self, host: &mut dyn Host, index: &str) {
        let epoch = self.new_epoch();
        let Some(run) = self.jobs.get_mut(index) else { return };
        run.epoch = epoch;
        run.step = Step::Verify;
        run.outstanding = 0;
        let targets: Vec<usize> = match &run.seq {
            Some(seq) => vec![seq.current],
            None => (0..run.nodes.len()).filter(|i| !run.excluded.contains(i)).collect(),
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

    pub(super) fn on_verify(&mut self, host: &mut dyn Host, tag: &Tag, resp: &CalloutResponse) {
        let Some(run) = self.jobs.get_mut(&tag.index) else { return };
        // One pass over the text gives the fingerprint and the members the proposal is checked
        // on: a large read-back is never built into a `Value` (see `canonical_text`).
        if let (Some(200), Some(node)) = (resp.status, run.nodes.get_mut(tag.node)) {
            let started = host.now_us();
            if let Ok(read) = read_text(&resp.body) {
                node.readback = Some((fingerprint_canonical(&read.canonical), run.proposal.holds_in(&read)));
            }
            let took = host.now_us().saturating_sub(started);
            host.counter_add(&metrics::for_index(metrics::VERIFY_FINGERPRINT_BYTES_TOTAL, &tag.index), resp.body.len() as u64);
            host.counter_add(&metrics::for_index(metrics::VERIFY_FINGERPRINT_US_TOTAL, &tag.index), took);
        }
        if matches!(resp.status, Some(401) | Some(403)) && run.auth_refusal.is_none() {
            run.auth_refusal = serde_json::from_slice(&resp.body).ok();
        }
        run.outstanding = run.outstanding.saturating_sub(1);
        self.after_verify_answer(host, &tag.index);
    }

    pub(super) fn after_verify_answer(&mut self, host: &mut dyn Host, index: &str) {
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

    pub(super) fn judge(&self, run: &Running, readbacks: &[Option<(String, bool)>]) -> Verdict {
        // Nodes left out of the job (out of sync, catching up) are not judged by it.
        let judged: Vec<usize> = (0..readbacks.len()).filter(|i| !run.excluded.contains(i)).collect();
        let judged_readbacks: Vec<Option<(String, bool)>> = judged.iter().map(|i| readbacks.get(*i).cloned().flatten()).collect();
        let (reference, agree) = job::agreeing_nodes(&judged_readbacks);
        let bad: Vec<usize> = agree.iter().zip(&judged).filter(|(ok, _)| !**ok).map(|(_, i)| *i).collect();
        match reference {
            Some(fp) if bad.is_empty() => Verdict::Commit {
                fingerprint: fp,
                fingerprints: readbacks.iter().map(|r| r.as_ref().map(|(f, _)| f.clone())).collect(),
            },
            _ if run.repair_attempt < self.cfg.settings_broadcast.max_repair_retries => {
                // With no node reading back the proposal, every node is re-sent the proposal.
                Verdict::Repair { bad: if bad.is_empty() { judged } else { bad } }
            }
            _ if self.cfg.settings_broadcast.freeze_writes_on_unrepairable => Verdict::Freeze { bad },
            _ => Verdict::Fail(
                MeiliError::settings_divergence(&run.job.index, &self.divergence_detail(&bad)).to_json(),
            ),
        }
    }

    pub(super) fn divergence_detail(&self, bad: &[usize]) -> String {
        let ids: Vec<&str> = bad.iter().filter_map(|i| self.cfg.nodes.get(*i)).map(|n| n.id.as_str()).collect();
        format!("nodes {} do not hold the proposed settings", ids.join(", "))
    }

    pub(super) fn apply_verdict(&mut self, host: &mut dyn Host, index: &str, verdict: Verdict) {
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
}
