//! Answering paused clients: the propose outcome of their write, or `202 enqueued` when they
//! waited past the propose timeout behind another job (recorded on the task first).

use super::*;

/// A waiting client's task is read at least this often, wakes or not.
const WAITERS_REREAD_MS: u64 = 100;

impl Engine {
    pub(super) fn record_outcome(&mut self, host: &mut dyn Host, job: &JobRecord, outcome: ProposeOutcome) {
        self.update_task(host, job.task_uid, TaskChange::Propose(outcome));
        self.outcome_recorded(host, job);
    }

    /// `job`'s propose outcome is in its task: answer its client if it waits here, or wake the
    /// worker it waits on.
    pub(super) fn outcome_recorded(&mut self, host: &mut dyn Host, job: &JobRecord) {
        if job.origin_worker != self.worker {
            host.wake(&job.origin_worker, Wake::Outcome { task_uid: job.task_uid });
        } else if self.waiting.contains_key(&job.task_uid) {
            self.read_waiters(host, vec![job.task_uid]);
        }
    }

    /// Answer paused clients whose propose outcome is known, or who waited past the propose
    /// timeout behind another job (they get `202 enqueued`; the task tells the rest).
    ///
    /// Called on every pump, so it reads no more than it must: the tasks whose outcome may be
    /// there (another worker's wake named it, or its client just began to wait), those past the
    /// timeout, and every waiter's at least every `WAITERS_REREAD_MS` (a wake is best effort).
    /// An outcome recorded on this worker reads its own task at once (`outcome_recorded`).
    /// Reading them all on every pump cost a mirrored write 14 task reads (each a ~600 B record
    /// decoded) with 8 clients writing. With etcd another gateway may record the outcome, and
    /// nothing wakes this one: all, always.
    pub fn serve_waiters(&mut self, host: &mut dyn Host) {
        if self.waiting.is_empty() {
            // Clients that went away before their task was read leave nothing behind.
            self.waiters_due = SortedSet::new();
            return;
        }
        let now = host.now_ms();
        let all = self.cfg.state.etcd().is_some() || now >= self.waiters_read_ms.saturating_add(WAITERS_REREAD_MS);
        let patience = self.cfg.settings_broadcast.propose_timeout_ms + 1000;
        let due = std::mem::take(&mut self.waiters_due);
        let uids: Vec<u64> = self
            .waiting
            .iter()
            .filter(|(uid, w)| all || due.contains(*uid) || now >= w.since_ms + patience)
            .map(|(uid, _)| *uid)
            .collect();
        if all {
            self.waiters_read_ms = now;
        }
        self.read_waiters(host, uids);
    }

    fn read_waiters(&mut self, host: &mut dyn Host, uids: Vec<u64>) {
        if !uids.is_empty() {
            self.submit(host, Op::ReadTasks { uids: uids.clone() }, Awaiting::Waiters { uids });
        }
    }

    /// The tasks of waiting clients came back: answer those whose outcome is known.
    pub(super) fn answer_waiters(&mut self, host: &mut dyn Host, uids: Vec<u64>, tasks: Vec<Option<TaskRecord>>) {
        let now = host.now_ms();
        let patience = self.cfg.settings_broadcast.propose_timeout_ms + 1000;
        let mut marked = Vec::new();
        for (uid, task) in uids.into_iter().zip(tasks) {
            let Some(waiter) = self.waiting.get(&uid) else { continue };
            let reply = match &task {
                Some(t) => match &t.propose {
                    Some(
                        ProposeOutcome::Rejected { status, body, content_type }
                        | ProposeOutcome::Answered { status, body, content_type },
                    ) => Some(LocalReply {
                        status: *status,
                        headers: vec![(
                            "content-type".into(),
                            content_type.clone().unwrap_or_else(|| "application/json".into()),
                        )],
                        body: body.as_bytes().to_vec(),
                    }),
                    Some(ProposeOutcome::Accepted) => Some(tasks::summarized_reply(t)),
                    // Waited long enough behind another write: it gets its task's uid, once the
                    // task records that it was given (the next read answers), so that whatever
                    // the nodes say later ends the task where the client can see it. A write the
                    // nodes answer at once (a key) has no task to give: its client waits for the
                    // nodes' answer.
                    None if now >= waiter.since_ms + patience && t.kind != "unknown" => {
                        marked.push(uid);
                        None
                    }
                    None => None,
                },
                None => Some(tasks::error_reply(&MeiliError::new(
                    500,
                    "internal",
                    crate::core::errors::ErrorType::Internal,
                    "The filter lost track of this settings write; check GET /tasks and retry.",
                ))),
            };
            if let Some(mut reply) = reply {
                if let Some(t) = &task {
                    for (name, value) in crate::core::headers::response_headers(host, &t.index_uid) {
                        reply.headers.push((name.to_string(), value));
                    }
                }
                let ctx = waiter.context_id;
                self.waiting.remove(&uid);
                if host.reply(ctx, &reply).is_err() {
                    log::debug!("miroir: client of task {uid} went away before the answer");
                }
            }
        }
        for uid in marked {
            self.update_task(host, uid, TaskChange::Propose(ProposeOutcome::Accepted));
            self.waiters_due.insert(uid);
        }
    }
}
