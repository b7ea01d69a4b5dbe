//! Answering paused clients: the propose outcome of their write, or `202 enqueued` when they
//! waited past the propose timeout behind another job.

use super::*;

impl Engine {
    pub(super) fn record_outcome(&mut self, host: &mut dyn Host, job: &JobRecord, outcome: ProposeOutcome) {
        self.update_task(host, job.task_uid, TaskChange::Propose(outcome));
        if job.origin_worker == self.worker {
            self.serve_waiters(host);
        } else {
            host.wake(&job.origin_worker);
        }
    }

    /// Answer paused clients whose propose outcome is known, or who waited past the propose
    /// timeout behind another job (they get `202 enqueued`; the task tells the rest).
    pub fn serve_waiters(&mut self, host: &mut dyn Host) {
        if self.waiting.is_empty() {
            return;
        }
        let uids: Vec<u64> = self.waiting.keys().copied().collect();
        self.submit(host, Op::ReadTasks { uids: uids.clone() }, Awaiting::Waiters { uids });
    }

    /// The tasks of waiting clients came back: answer those whose outcome is known.
    pub(super) fn answer_waiters(&mut self, host: &mut dyn Host, uids: Vec<u64>, tasks: Vec<Option<TaskRecord>>) {
        let now = host.now_ms();
        let patience = self.cfg.settings_broadcast.propose_timeout_ms + 1000;
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
                    None if now >= waiter.since_ms + patience => Some(tasks::summarized_reply(t)),
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
    }
}
