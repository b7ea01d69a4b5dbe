//! `Host` over the proxy-wasm hostcalls. Only Result-returning hostcalls are used; every error is
//! turned into a value the core handles, never a panic.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;

use super::abi;
use proxy_wasm::types::MetricType;

use crate::core::host::{Callout, Host, LocalReply, SharedError};

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
    metrics: RefCell<HashMap<String, u32>>,
}

impl WasmHost {
    pub fn new(root_id: u32, vm_id: String, own_worker: String, own_queue: Option<u32>) -> WasmHost {
        WasmHost { root_id, vm_id, own_worker, own_queue, metrics: RefCell::new(HashMap::new()) }
    }

    fn metric(&self, kind: MetricType, name: &str) -> Option<u32> {
        if let Some(id) = self.metrics.borrow().get(name) {
            return Some(*id);
        }
        match hostcalls::define_metric(kind, name) {
            Ok(id) => {
                self.metrics.borrow_mut().insert(name.to_string(), id);
                Some(id)
            }
            Err(e) => {
                log::warn!("miroir: defining metric {name} failed: {e:?}");
                None
            }
        }
    }
}

/// Envoy's wall clock (nanosecond resolution); zero if the host cannot tell the time.
fn since_epoch() -> Duration {
    hostcalls::get_current_time().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).unwrap_or_default()
}

impl Host for WasmHost {
    fn now_ms(&self) -> u64 {
        since_epoch().as_millis() as u64
    }

    fn now_us(&self) -> u64 {
        since_epoch().as_micros() as u64
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
        let mut headers: Vec<(&str, &str)> = vec![
            (":method", call.method.as_str()),
            (":path", call.path.as_str()),
            (":authority", call.authority.as_str()),
        ];
        for (k, v) in &call.headers {
            headers.push((k.as_str(), v.as_str()));
        }
        hostcalls::dispatch_http_call(
            &call.cluster,
            headers,
            call.body.as_deref(),
            vec![],
            Duration::from_millis(call.timeout_ms),
        )
        .map_err(|s| format!("{s:?}"))
    }

    fn reply(&mut self, http_context_id: u32, reply: &LocalReply) -> Result<(), String> {
        hostcalls::set_effective_context(http_context_id).map_err(|s| format!("{s:?}"))?;
        let sent = abi::send_local_response(reply.status, &reply.headers, &reply.body).map_err(|status| format!("host status {status}"));
        // Back to the root, so later callouts in this callback stay root-owned.
        let _ = hostcalls::set_effective_context(self.root_id);
        sent
    }

    fn wake(&mut self, worker: &str) {
        let queue = if worker == self.own_worker {
            self.own_queue
        } else {
            hostcalls::resolve_shared_queue(&self.vm_id, &wake_queue_name(worker)).ok().flatten()
        };
        if let Some(q) = queue {
            // Best effort: the root's tick picks the work up anyway.
            let _ = hostcalls::enqueue_shared_queue(q, Some(b"w"));
        }
    }

    fn counter_add(&mut self, name: &str, delta: u64) {
        if let Some(id) = self.metric(MetricType::Counter, name) {
            let _ = hostcalls::increment_metric(id, delta as i64);
        }
    }

    fn gauge_set(&mut self, name: &str, value: u64) {
        if let Some(id) = self.metric(MetricType::Gauge, name) {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    fn histogram_record(&mut self, name: &str, value: u64) {
        if let Some(id) = self.metric(MetricType::Histogram, name) {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}
