//! The propose round: the client's write to every node in the round, and what their answers decide
//! (a unanimous refusal goes back to the client as is; otherwise the client gets its 202).

use super::*;

impl Engine {
    pub(super) fn propose_round(&mut self, host: &mut dyn Host, index: &str, targets: Vec<usize>) {
        let now = host.now_ms();
        let task_timeout_ms = self.cfg.settings_broadcast.task_timeout_s * 1000;
        let epoch = self.new_epoch();
        let Some(run) = self.jobs.get_mut(index) else { return };
        run.epoch = epoch;
        run.step = Step::Propose;
        run.outstanding = 0;
        run.round_sent_ms = now;
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
    pub(super) fn request_for(&self, index: &str, node: usize) -> (String, String, Option<Vec<u8>>) {
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
        (run.job.method.clone(), path_for(&run.job, self.cfg.nodes.get(node).map(|n| n.id.as_str())), body)
    }

    /// Mirror mode: a node that did not answer the first round of a settings write (down,
    /// unreachable, 5xx) while others enqueued it is left behind like for any other write — out
    /// of this job, catching up from the log when it answers again — rather than repaired
    /// towards a freeze while it is away.
    fn leave_unreachable_nodes_behind(&mut self, host: &mut dyn Host, index: &str) {
        if self.cfg.writes != crate::core::config::Writes::Mirror {
            return;
        }
        let Some(run) = self.jobs.get_mut(index) else { return };
        if run.seq.is_some() || run.job.drift_repair {
            return;
        }
        let accepted = run.nodes.iter().any(|n| n.in_round && matches!(n.propose, Some(ProposeResult::Accepted { .. })));
        let unreachable: Vec<usize> = run
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.in_round && matches!(n.propose, Some(ProposeResult::Failed { .. }) | None))
            .map(|(i, _)| i)
            .collect();
        if !accepted || unreachable.is_empty() {
            return;
        }
        let uid = run.job.task_uid;
        let mut lags = Vec::new();
        for i in &unreachable {
            run.excluded.insert(*i);
            if let Some(n) = run.nodes.get_mut(*i) {
                n.in_round = false;
            }
            if let Some(node) = self.cfg.nodes.get(*i) {
                let why = format!("missed write task {uid} (no answer)");
                lags.push((node.id.clone(), crate::core::state::records::NodeLag { why, replay_from: Some(uid) }));
            }
        }
        let job = run.job.clone();
        self.keep_in_log(host, index, &job);
        self.mark_out_of_sync(host, index, lags);
    }

    pub(super) fn on_propose(&mut self, host: &mut dyn Host, tag: &Tag, resp: &CalloutResponse) {
        let Some(run) = self.jobs.get_mut(&tag.index) else { return };
        let result = job::parse_propose(resp);
        if let Some(node) = run.nodes.get_mut(tag.node) {
            if run.job.mirror.is_some() {
                node.answer = Some(crate::core::mirror::parse_answer(resp));
            }
            if let ProposeResult::Accepted { task_uid } = result {
                node.task_uid = Some(task_uid);
            }
            node.propose = Some(result);
        }
        run.outstanding = run.outstanding.saturating_sub(1);
        self.after_propose_answer(host, &tag.index);
    }

    pub(super) fn after_propose_answer(&mut self, host: &mut dyn Host, index: &str) {
        let now = host.now_ms();
        let Some(run) = self.jobs.get_mut(index) else { return };
        if run.outstanding > 0 || run.step != Step::Propose {
            return;
        }
        if run.job.mirror.is_some() {
            self.mirror_proposed(host, index);
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
        // A refusal ends the write even when its client was already answered `202` (it waited
        // behind another write): the task then ends failed with the nodes' error.
        if first_round {
            if let Some((status, body)) = job::unanimous_rejection(&results) {
                let job = run.job.clone();
                let error = Some(job::refusal_error(status, &body));
                self.record_outcome(host, &job, ProposeOutcome::Rejected { status, body, content_type: Some("application/json".into()) });
                self.finish(host, index, job.task_uid, Outcome::Rejected { error });
                return;
            }
        }
        if first_round && !run.client_answered {
            run.client_answered = true;
            let job = run.job.clone();
            self.record_outcome(host, &job, ProposeOutcome::Accepted);
        }
        if first_round {
            self.leave_unreachable_nodes_behind(host, index);
        }
        let hint = self.task_ms_hint.get(index).copied();
        let Some(run) = self.jobs.get_mut(index) else { return };
        run.step = Step::Wait;
        run.answered_ms = now;
        let rtt = now.saturating_sub(run.round_sent_ms);
        for node in run.nodes.iter_mut().filter(|n| n.in_round) {
            node.polls = 0;
            node.next_poll_ms = now + job::next_poll_delay_ms(0, 0, hint, rtt);
            if node.task_uid.is_none() {
                // Refused, unreachable or 5xx: nothing to wait for; verify will judge it.
                node.task = Some(NodeTask::Failed(Value::Null));
            }
        }
        self.set_phase(host, index, Phase::Wait);
        self.after_task_answer(host, index);
    }
}

/// The path of `job` for node `node_id`: its own translation, if the job has one per node.
pub(super) fn path_for(job: &JobRecord, node_id: Option<&str>) -> String {
    node_id
        .and_then(|id| job.node_paths.as_ref().and_then(|p| p.get(id)))
        .cloned()
        .unwrap_or_else(|| job.path.clone())
}
