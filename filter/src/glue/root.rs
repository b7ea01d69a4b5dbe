//! The root context of one worker VM: configuration, the engine, ticks, wake-ups and callout
//! responses.

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::rc::Rc;

use super::abi::{self, Buffer, Headers};
use super::host::{wake_queue_name, WasmHost};
use super::http::Http;
use super::shared::{Shared, SharedRef};
use crate::core::config::Config;
use crate::core::engine::Engine;
use crate::core::host::{CalloutResponse, Wake};

/// The root context: the VM's engine, shared with its requests' contexts.
pub struct Root {
    id: u32,
    shared: SharedRef,
    tick_ms: u64,
}

impl Root {
    pub fn new(id: u32) -> Root {
        Root { id, shared: Rc::new(RefCell::new(None)), tick_ms: 0 }
    }

    fn retick(&mut self) {
        let want = match self.shared.try_borrow() {
            Ok(s) => s.as_ref().map(|s| s.engine.tick_ms_at(crate::core::host::Host::now_ms(&s.host))).unwrap_or(0),
            Err(_) => return,
        };
        let period = u32::try_from(want).unwrap_or(u32::MAX);
        if want != 0 && want != self.tick_ms && abi::set_tick_period_ms(period).is_ok() {
            self.tick_ms = want;
        }
    }

    fn pump(&mut self) {
        if let Ok(mut guard) = self.shared.try_borrow_mut() {
            if let Some(s) = guard.as_mut() {
                s.engine.pump(&mut s.host);
            }
        }
        self.retick();
    }

    pub fn on_http_call_response(&mut self, token_id: u32, body_size: usize) {
        // A callout that failed (reset, response over the buffer limit, cluster gone) has no
        // response headers at all: Envoy answers BadArgument, which is "no status" (unreachable)
        // here, never a panic. Bytes, since a status line is not ours to trust either.
        let status = abi::header_bytes(Headers::CallResponse, ":status")
            .ok()
            .flatten()
            .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u16>().ok());
        let body = if body_size > 0 {
            abi::buffer_bytes(Buffer::CallResponseBody, body_size).ok().flatten().unwrap_or_default()
        } else {
            Vec::new()
        };
        if let Ok(mut guard) = self.shared.try_borrow_mut() {
            if let Some(s) = guard.as_mut() {
                s.engine.on_callout_response(&mut s.host, token_id, CalloutResponse { status, body });
            }
        }
        self.retick();
    }

    pub fn on_configure(&mut self, size: usize) -> bool {
        super::logger::follow_envoys_level();
        let bytes = abi::buffer_bytes(Buffer::PluginConfiguration, size).ok().flatten().unwrap_or_default();
        let cfg = match Config::parse(&bytes) {
            Ok(c) => c,
            Err(e) => {
                log::error!("miroir: {e}");
                return false;
            }
        };
        let worker = new_worker_id(self.id);
        let vm_id = abi::property(&["plugin_vm_id"])
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let queue = abi::register_queue(&wake_queue_name(&worker)).ok();
        let mut host = WasmHost::new(self.id, vm_id, worker.clone(), queue);
        let engine = Engine::new(cfg, worker.clone());
        engine.seed(&mut host);
        let node_count = engine.config().nodes.len();
        match self.shared.try_borrow_mut() {
            Ok(mut guard) => *guard = Some(Shared { engine, host }),
            Err(_) => return false,
        }
        log::info!(
            "miroir {} configured: {node_count} node(s), worker {worker}",
            env!("CARGO_PKG_VERSION")
        );
        self.retick();
        true
    }

    pub fn on_tick(&mut self) {
        super::logger::follow_envoys_level();
        self.pump();
    }

    pub fn on_queue_ready(&mut self, queue_id: u32) {
        // Drain the wake-up tokens (bounded: a queue holds at most what was enqueued).
        let mut outcomes = Vec::new();
        for _ in 0..1024 {
            match abi::dequeue(queue_id) {
                Ok(Some(token)) => {
                    if let Some(Wake::Outcome { task_uid }) = Wake::from_token(&token) {
                        outcomes.push(task_uid);
                    }
                }
                _ => break,
            }
        }
        if let Ok(mut guard) = self.shared.try_borrow_mut() {
            if let Some(s) = guard.as_mut() {
                for task_uid in outcomes {
                    s.engine.outcome_for(task_uid);
                }
            }
        }
        self.pump();
    }

    /// A request's context, sharing this root's engine.
    pub fn new_http(&self, context_id: u32) -> Http {
        Http::new(context_id, self.shared.clone())
    }
}

/// A random id per VM: the host gives none (proxy-wasm-cpp-host#135). WASI `random_get` seeds
/// std's `RandomState`.
fn new_worker_id(context_id: u32) -> String {
    let h = RandomState::new().hash_one(context_id);
    format!("w{h:016x}")
}
