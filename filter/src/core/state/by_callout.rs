//! A test double of a ledger reached by callouts, the shape of an external store (docs/architecture.md §5):
//! each operation takes effect at once on the shared-data ledger it wraps, and its answer comes
//! back only when the root receives the answer to a callout the ledger sent for it — through
//! `Engine::on_callout_response`, interleaved with the nodes' answers.

use std::collections::VecDeque;

use crate::core::sorted_map::SortedMap;

use super::ledger::{Answer, Ledger, Op, OpId};
use super::shared_data::SharedDataLedger;
use crate::core::config::Config;
use crate::core::host::{Callout, CalloutResponse, Host};
use crate::core::state::store::StoreError;

/// The cluster the ledger's calls go to.
pub const LEDGER_CLUSTER: &str = "ledger";

pub struct CalloutLedger {
    inner: SharedDataLedger,
    /// Callout token → the answer it carries back.
    in_flight: SortedMap<u32, (OpId, Answer)>,
    arrived: VecDeque<(OpId, Answer)>,
}

impl CalloutLedger {
    pub fn new(cfg: Config) -> CalloutLedger {
        CalloutLedger { inner: SharedDataLedger::new(cfg), in_flight: SortedMap::new(), arrived: VecDeque::new() }
    }
}

impl Ledger for CalloutLedger {
    fn submit(&mut self, host: &mut dyn Host, id: OpId, op: Op) {
        let answer = self.inner.run(host, op);
        let call = Callout {
            cluster: LEDGER_CLUSTER.into(),
            method: "POST".into(),
            path: format!("/ledger/{}", id.0),
            authority: LEDGER_CLUSTER.into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: 1_000,
        };
        match host.dispatch(&call) {
            Ok(token) => {
                self.in_flight.insert(token, (id, answer));
            }
            Err(e) => self.arrived.push_back((id, Answer::Failed(StoreError::Host(e)))),
        }
    }

    fn take(&mut self, id: OpId) -> Option<Answer> {
        let at = self.arrived.iter().position(|(i, _)| *i == id)?;
        self.arrived.remove(at).map(|(_, a)| a)
    }

    fn next_answer(&mut self) -> Option<(OpId, Answer)> {
        self.arrived.pop_front()
    }

    fn on_callout_response(&mut self, _host: &mut dyn Host, token: u32, _resp: &CalloutResponse) -> bool {
        match self.in_flight.remove(&token) {
            Some(answer) => {
                self.arrived.push_back(answer);
                true
            }
            None => false,
        }
    }
}
