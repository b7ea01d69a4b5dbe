//! Task reads that wait for this gateway's view (etcd backend): a task queued a moment ago on
//! another gateway is not in this one's view until its next poll, and a client that polls its
//! task through a load balancer must not be told `task_not_found` meanwhile. Such a read waits
//! for a refresh that starts after it came, then is answered from the refreshed view.

use super::Engine;
use crate::core::errors::MeiliError;
use crate::core::host::{Host, Wake};
use crate::core::state::{keys, store};
use crate::core::tasks;

pub(super) struct ViewWaiter {
    context_id: u32,
    task_uid: u64,
    authorization: Option<String>,
    ticket: u64,
}

impl ViewWaiter {
    pub(super) fn context_id(&self) -> u32 {
        self.context_id
    }
}

impl Engine {
    /// `GET /tasks/{uid}` found nothing in the view: answer it once the view is refreshed. False
    /// when the view is the store itself (shared data): the answer stands as it is.
    pub fn task_after_refresh(&mut self, host: &mut dyn Host, context_id: u32, task_uid: u64, authorization: Option<String>) -> bool {
        let Some(ticket) = self.ledger.refresh_view(host) else { return false };
        self.view_waiters.push(ViewWaiter { context_id, task_uid, authorization, ticket });
        // The refresh starts on the root (its next pump), never from a client's callback.
        let me = self.worker.clone();
        host.wake(&me, Wake::Work);
        true
    }

    pub(super) fn serve_view_waiters(&mut self, host: &mut dyn Host) {
        if self.view_waiters.is_empty() {
            return;
        }
        let waiters = std::mem::take(&mut self.view_waiters);
        for w in waiters {
            let reply = match self.ledger.view_refreshed(w.ticket) {
                None => {
                    self.view_waiters.push(w);
                    continue;
                }
                Some(true) => {
                    let task = store::read(host, &keys::task_key(w.task_uid)).ok().flatten();
                    tasks::task_reply(task.as_ref(), w.task_uid, w.authorization.as_deref())
                }
                Some(false) => tasks::error_reply(&MeiliError::state_unavailable()),
            };
            if host.reply(w.context_id, &reply).is_err() {
                log::debug!("miroir: the client reading task {} went away", w.task_uid);
            }
        }
    }
}
