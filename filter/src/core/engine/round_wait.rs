//! Waiting for the nodes' tasks: lease renewal, task polls with backoff, the task timeout and the
//! repair backoff, all driven from the root's ticks.

use super::*;

impl Engine {
    pub(super) fn drive_timers(&mut self, host: &mut dyn Host) {
        if self.is_following() {
            self.drive_following(host);
        }
        let now = host.now_ms();
        let indexes: Vec<String> = self.jobs.keys().cloned().collect();
        for index in indexes {
            let Some(run) = self.jobs.get_mut(&index) else { continue };
            if now < run.renew_at_ms {
                self.drive_job_timers(host, &index, now);
                continue;
            }
            // Renew first; the job's timers run once the ledger says the lease is still ours.
            run.renew_at_ms = now + self.cfg.state.lease_renew_ms();
            let task_uid = run.job.task_uid;
            let op = Op::RenewLease { index: index.clone(), owner: self.worker.clone(), now_ms: now };
            self.submit(host, op, Awaiting::Renew { index, task_uid, now_ms: now });
        }
    }

    /// The ledger answered a renewal: drop the job if the lease is lost, else drive its timers.
    pub(super) fn on_renewed(&mut self, host: &mut dyn Host, index: &str, task_uid: u64, now: u64, still_mine: bool) {
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

    pub(super) fn drive_job_timers(&mut self, host: &mut dyn Host, index: &str, now: u64) {
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
                            node.task = Some(NodeTask::Failed(MeiliError::task_timeout().to_json()));
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
            Step::Resync => self.resync_step(host, index),
            Step::SwapWait => self.swap_check(host, index),
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

    pub(super) fn on_poll(&mut self, host: &mut dyn Host, tag: &Tag, resp: &CalloutResponse) {
        let now = host.now_ms();
        if let Some(ms) = job::task_run_ms(&resp.body) {
            self.task_ms_hint.insert(tag.index.clone(), ms);
        }
        let hint = self.task_ms_hint.get(&tag.index).copied();
        let Some(run) = self.jobs.get_mut(&tag.index) else { return };
        let (since, rtt) = (now.saturating_sub(run.answered_ms), run.answered_ms.saturating_sub(run.round_sent_ms));
        let Some(node) = run.nodes.get_mut(tag.node) else { return };
        node.poll_in_flight = false;
        match job::parse_task(resp) {
            Some((NodeTask::Pending, _)) | None => {
                node.polls += 1;
                node.next_poll_ms = now + job::next_poll_delay_ms(node.polls, since, hint, rtt);
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

    pub(super) fn after_task_answer(&mut self, host: &mut dyn Host, index: &str) {
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
}
