//! A client's settings write entering the queue ("request queued", docs/architecture.md §5): the front door
//! hands the job to the engine, which queues it through the ledger. When the ledger answers at
//! once the front door learns the task uid (or the refusal) before it returns, exactly as when
//! it queued the job itself; when the answer comes later the client stays paused and the
//! engine answers it from here.

use serde_json::Value;

use super::answers::Awaiting;
use super::Engine;
use crate::core::errors::MeiliError;
use crate::core::host::{Host, Wake};
use crate::core::state::ledger::Op;
use crate::core::state::records::JobRecord;
use crate::core::state::store::StoreError;
use crate::core::tasks;

/// What became of a client's write handed to `Engine::queue_write`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queued {
    /// Queued as this task; the client waits for its propose outcome.
    Now(u64),
    /// The ledger answers later; the client stays paused and the engine answers it.
    Later,
    /// It could not be queued; nothing was changed.
    Refused(StoreError),
}

impl Engine {
    /// Queue a client's settings write from HTTP context `context_id`.
    pub fn queue_write(&mut self, host: &mut dyn Host, context_id: u32, job: JobRecord, details: Value) -> Queued {
        let index = job.index.clone();
        let op = Op::Enqueue { job: Box::new(job), details };
        self.submit(host, op, Awaiting::ClientWrite { context_id, index });
        match self.queued_now.remove(&context_id) {
            Some(Ok(task_uid)) => Queued::Now(task_uid),
            Some(Err(e)) => Queued::Refused(e),
            None => {
                self.queueing_later.insert(context_id);
                // A store reached by calls sends them from the root's pump.
                let me = self.worker.clone();
                host.wake(&me, Wake::Work);
                Queued::Later
            }
        }
    }

    /// The ledger queued (or failed to queue) the write of `context_id`.
    pub(super) fn on_write_queued(&mut self, host: &mut dyn Host, context_id: u32, index: &str, queued: Result<u64, StoreError>) {
        if let Ok(task_uid) = queued {
            self.wait_for_outcome(task_uid, context_id, host.now_ms());
            self.kick(index);
            let me = self.worker.clone();
            host.wake(&me, Wake::Work);
        }
        if !self.queueing_later.remove(&context_id) {
            // Answered at once: `queue_write` tells the front door.
            self.queued_now.insert(context_id, queued);
            return;
        }
        if let Err(e) = queued {
            log::error!("miroir: could not queue a write on {index}: {e}");
            if host.reply(context_id, &tasks::error_reply(&not_queued(&e))).is_err() {
                log::debug!("miroir: client of a refused write on {index} went away");
            }
        }
    }
}

/// Why a client's write was refused: the state store could not be reached (etcd down or
/// without quorum), or anything else that kept it from being queued.
pub fn not_queued(e: &StoreError) -> MeiliError {
    match e {
        StoreError::Unavailable(_) => MeiliError::state_unavailable(),
        _ => MeiliError::write_not_queued(),
    }
}
