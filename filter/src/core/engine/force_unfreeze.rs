//! An operator's forced unfreeze (`POST /_miroir/indexes/{uid}/unfreeze?force=true`): the
//! freeze is lifted through the ledger (so every gateway sees it, with etcd), then the alert
//! gauges are cleared and the operator gets the index's admin view.

use super::answers::Awaiting;
use super::Engine;
use crate::core::admin;
use crate::core::errors::{ErrorType, MeiliError};
use crate::core::host::{Host, Wake};
use crate::core::metrics;
use crate::core::state::ledger::{Answer, Op};
use crate::core::state::records::Phase;
use crate::core::state::store::StoreError;
use crate::core::tasks;

impl Engine {
    pub fn force_unfreeze(&mut self, host: &mut dyn Host, context_id: u32, index: &str) {
        let op = Op::LiftFreeze { index: index.to_string() };
        self.submit(host, op, Awaiting::ForceUnfrozen { context_id, index: index.to_string() });
        let me = self.worker.clone();
        host.wake(&me, Wake::Work);
    }

    pub(super) fn on_force_unfrozen(&mut self, host: &mut dyn Host, context_id: u32, index: &str, answer: Answer) {
        let reply = match answer {
            Answer::Done => {
                host.gauge_set(&metrics::for_index(metrics::DIVERGENCE, index), 0);
                host.gauge_set(&metrics::for_index(metrics::BROADCAST_PHASE, index), Phase::Idle.gauge());
                admin::after_force_unfreeze(self, host, index)
            }
            Answer::Failed(StoreError::Unavailable(why)) => {
                log::error!("miroir: unfreezing {index} failed: state store unavailable: {why}");
                tasks::error_reply(&MeiliError::state_unavailable())
            }
            other => {
                log::error!("miroir: unfreezing {index} failed: {}", other.summary());
                tasks::error_reply(&MeiliError::new(
                    503,
                    "miroir_unavailable",
                    ErrorType::System,
                    format!("The freeze of index `{index}` could not be lifted; nothing was changed. Retry later."),
                ))
            }
        };
        if host.reply(context_id, &reply).is_err() {
            log::debug!("miroir: operator left before the unfreeze of {index} was recorded");
        }
    }
}
