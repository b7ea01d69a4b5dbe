//! The smallest proxy-wasm HTTP filter: every callback answers `Continue` and touches nothing.
//!
//! It is the hot-path benchmark's middle configuration. Envoy still creates a context per
//! request and crosses into the VM for every request and response callback, so
//! "no-op filter − no filter" is the price of having any wasm filter at all, and
//! "miroir − no-op" is the price of the miroir filter's own logic.

#![cfg(all(target_arch = "wasm32", target_os = "wasi"))]

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(NoopRoot));
}}

struct NoopRoot;

impl Context for NoopRoot {}

impl RootContext for NoopRoot {
    fn get_type(&self) -> Option<ContextType> {
        // Asks Envoy for an HTTP context per request, so each request pays the VM crossings.
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(NoopHttp))
    }
}

struct NoopHttp;

impl Context for NoopHttp {}

// Written out (the trait's defaults are the same) so the module's behaviour is visible here.
impl HttpContext for NoopHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    fn on_http_request_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }

    fn on_http_response_body(&mut self, _body_size: usize, _end_of_stream: bool) -> Action {
        Action::Continue
    }
}
