//! `Host` over the proxy-wasm hostcalls. Only Result-returning hostcalls are used; every error is
//! turned into a value the core handles, never a panic.

use std::cell::RefCell;

use super::abi::{self, MetricKind};
use crate::core::host::{Callout, Host, LocalReply, SharedError, Wake};
use crate::core::sorted_map::SortedMap;

/// Name of the shared queue a worker's root context listens on to be woken.
pub fn wake_queue_name(worker: &str) -> String {
    format!("miroir/v1/wake/{worker}")
}

pub struct WasmHost {
    /// The root context: callouts dispatched while it is the effective context belong to it and
    /// survive the client's stream.
    pub root_id: u32,
    pub vm_id: String,
    pub own_worker: String,
    pub own_queue: Option<u32>,
    metrics: RefCell<SortedMap<String, u32>>,
}

impl WasmHost {
    pub fn new(root_id: u32, vm_id: String, own_worker: String, own_queue: Option<u32>) -> WasmHost {
        WasmHost { root_id, vm_id, own_worker, own_queue, metrics: RefCell::new(SortedMap::new()) }
    }

    fn metric(&self, kind: MetricKind, name: &str) -> Option<u32> {
        if let Some(id) = self.metrics.try_borrow().ok()?.get(name) {
            return Some(*id);
        }
        match abi::define_metric(kind, name) {
            Ok(id) => {
                if let Ok(mut metrics) = self.metrics.try_borrow_mut() {
                    metrics.insert(name.to_string(), id);
                }
                Some(id)
            }
            Err(status) => {
                log::warn!("miroir: defining metric {name} failed: host status {status}");
                None
            }
        }
    }
}

/// Envoy's wall clock in nanoseconds; zero if the host cannot tell the time.
fn since_epoch_ns() -> u64 {
    abi::now_ns().unwrap_or(0)
}

impl Host for WasmHost {
    fn now_ms(&self) -> u64 {
        since_epoch_ns() / 1_000_000
    }

    fn now_us(&self) -> u64 {
        since_epoch_ns() / 1_000
    }

    fn shared_get(&self, key: &str) -> Result<(Option<Vec<u8>>, Option<u32>), SharedError> {
        abi::get_shared_data(key).map_err(|status| SharedError::Other(format!("host status {status}")))
    }

    fn shared_set(&mut self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), SharedError> {
        match abi::set_shared_data(key, value, cas) {
            Ok(()) => Ok(()),
            Err(abi::STATUS_CAS_MISMATCH) => Err(SharedError::CasMismatch),
            Err(status) => Err(SharedError::Other(format!("host status {status}"))),
        }
    }

    fn dispatch(&mut self, call: &Callout) -> Result<u32, String> {
        let mut headers: Vec<(String, String)> = vec![
            (":method".into(), call.method.clone()),
            (":path".into(), call.path.clone()),
            (":authority".into(), call.authority.clone()),
        ];
        headers.extend(call.headers.iter().cloned());
        let timeout_ms = u32::try_from(call.timeout_ms).unwrap_or(u32::MAX);
        abi::http_call(&call.cluster, &headers, call.body.as_deref(), timeout_ms).map_err(|status| format!("host status {status}"))
    }

    fn reply(&mut self, http_context_id: u32, reply: &LocalReply) -> Result<(), String> {
        abi::set_effective_context(http_context_id).map_err(|status| format!("host status {status}"))?;
        let sent = abi::send_local_response(reply.status, &reply.headers, &reply.body).map_err(|status| format!("host status {status}"));
        // Back to the root, so later callouts in this callback stay root-owned.
        let _ = abi::set_effective_context(self.root_id);
        sent
    }

    fn wake(&mut self, worker: &str, why: Wake) {
        let queue = if worker == self.own_worker {
            self.own_queue
        } else {
            abi::resolve_queue(&self.vm_id, &wake_queue_name(worker)).ok().flatten()
        };
        if let Some(q) = queue {
            // Best effort: the root's tick picks the work up anyway.
            let _ = abi::enqueue(q, &why.token());
        }
    }

    fn counter_add(&mut self, name: &str, delta: u64) {
        if let Some(id) = self.metric(MetricKind::Counter, name) {
            let _ = abi::increment_metric(id, i64::try_from(delta).unwrap_or(i64::MAX));
        }
    }

    fn gauge_set(&mut self, name: &str, value: u64) {
        if let Some(id) = self.metric(MetricKind::Gauge, name) {
            let _ = abi::record_metric(id, value);
        }
    }

    fn histogram_record(&mut self, name: &str, value: u64) {
        if let Some(id) = self.metric(MetricKind::Histogram, name) {
            let _ = abi::record_metric(id, value);
        }
    }

    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}
