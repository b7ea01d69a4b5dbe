//! The root context of one worker VM: configuration, the engine, ticks, wake-ups and callout
//! responses.

use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MapType};

use super::abi;
use super::host::{wake_queue_name, WasmHost};
use super::http::Http;
use super::shared::{Shared, SharedRef};
use crate::core::config::Config;
use crate::core::engine::Engine;
use crate::core::host::CalloutResponse;


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
        if want != 0 && want != self.tick_ms && hostcalls::set_tick_period(Duration::from_millis(want)).is_ok() {
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
}

/// A random id per VM: the host gives none (proxy-wasm-cpp-host#135). WASI `random_get` seeds
/// std's `RandomState`.
fn new_worker_id(context_id: u32) -> String {
    let h = RandomState::new().hash_one(context_id);
    format!("w{h:016x}")
}

impl Context for Root {
    fn on_http_call_response(&mut self, token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        // A callout that failed (reset, response over the buffer limit, cluster gone) has no
        // response headers at all: Envoy answers BadArgument, which is "no status" (unreachable)
        // here, never a panic. Bytes, since a status line is not ours to trust either.
        let status = abi::header_bytes(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| std::str::from_utf8(&s).ok()?.parse::<u16>().ok());
        let body = if body_size > 0 {
            abi::buffer_bytes(BufferType::HttpCallResponseBody, body_size).ok().flatten().unwrap_or_default()
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
}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size) {
            Ok(Some(b)) => b,
            _ => Vec::new(),
        };
        let cfg = match Config::parse(&bytes) {
            Ok(c) => c,
            Err(e) => {
                log::error!("miroir: {e}");
                return false;
            }
        };
        let worker = new_worker_id(self.id);
        let vm_id = hostcalls::get_property(vec!["plugin_vm_id"])
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let queue = hostcalls::register_shared_queue(&wake_queue_name(&worker)).ok();
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

    fn on_tick(&mut self) {
        self.pump();
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        // Drain the wake-up tokens (bounded: a queue holds at most what was enqueued).
        for _ in 0..1024 {
            match hostcalls::dequeue_shared_queue(queue_id) {
                Ok(Some(_)) => continue,
                _ => break,
            }
        }
        self.pump();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(context_id, self.shared.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
