//! The sequential (legacy) strategy: snapshot, propose, wait and verify one node at a time; the
//! first failure rolls the nodes already changed back to their snapshots.

use super::*;

impl Engine {
    pub(super) fn seq_begin_node(&mut self, host: &mut dyn Host, index: &str, node: usize) {
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

    pub(super) fn on_snapshot(&mut self, host: &mut dyn Host, tag: &Tag, resp: &CalloutResponse) {
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

    pub(super) fn seq_after_verify(&mut self, host: &mut dyn Host, index: &str) {
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

    pub(super) fn seq_rollback(&mut self, host: &mut dyn Host, index: &str, failure: Value) {
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
}
