//! A swap (mirror mode, `POST /swap-indexes`) holds the queue of every index it names: it is a
//! job on the instance queue that first fences those indexes (jobs queued after it wait; a
//! write that took an earlier uid but did not queue yet takes a new one), waits until every
//! write queued before it went out to the nodes, then goes out itself and lifts the fences. So
//! on every node the swap lands after the writes before it and before the writes after it, in
//! uid order, as on one Meilisearch.

use super::*;

impl Engine {
    pub(super) fn begin_swap(&mut self, host: &mut dyn Host, index: &str, holds: Vec<String>) {
        let Some(run) = self.jobs.get_mut(index) else { return };
        run.step = Step::SwapWait;
        let uid = run.job.task_uid;
        let op = Op::FenceForSwap { indexes: holds, uid };
        self.submit(host, op, Awaiting::Logged(format!("swap task {uid}: fencing its indexes failed")));
        self.swap_check(host, index);
    }

    /// Ask whether every write queued before the swap went out (from the root's timers).
    pub(super) fn swap_check(&mut self, host: &mut dyn Host, index: &str) {
        let Some(run) = self.jobs.get_mut(index) else { return };
        if run.step != Step::SwapWait || run.swap_checking {
            return;
        }
        let Some(holds) = run.job.holds.clone() else { return };
        run.swap_checking = true;
        let uid = run.job.task_uid;
        let op = Op::SwapReady { indexes: holds, uid };
        self.submit(host, op, Awaiting::SwapReady { index: index.to_string(), uid });
    }

    pub(super) fn on_swap_ready(&mut self, host: &mut dyn Host, index: &str, uid: u64, ready: bool) {
        let Some(run) = self.jobs.get_mut(index).filter(|r| r.job.task_uid == uid) else { return };
        run.swap_checking = false;
        if !ready {
            return; // asked again at the next tick
        }
        let included: Vec<usize> = (0..run.nodes.len()).filter(|i| !run.excluded.contains(i)).collect();
        run.step = Step::Propose;
        self.propose_round(host, index, included);
    }

    /// The swap went out (or was refused): lift the fences and let the held indexes go on. An
    /// index swapped away no longer has the settings the filter kept for it.
    pub(super) fn end_swap(&mut self, host: &mut dyn Host, job: &JobRecord, enqueued: bool) {
        let Some(holds) = job.holds.clone() else { return };
        if enqueued {
            for index in &holds {
                let op = Op::ForgetSettings { index: index.clone() };
                self.submit(host, op, Awaiting::Logged(format!("index {index}: forgetting its settings after a swap failed")));
            }
        }
        for index in &holds {
            self.kick(index);
        }
        let op = Op::Unfence { indexes: holds, uid: job.task_uid };
        self.submit(host, op, Awaiting::Logged(format!("swap task {}: lifting its fences failed", job.task_uid)));
        let me = self.worker.clone();
        host.wake(&me, Wake::Work);
    }
}
