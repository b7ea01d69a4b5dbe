//! One client request: binds the proxy-wasm HTTP callbacks (`exports.rs`) to the core's `HttpFlow`,
//! which decides everything. Header and body reads go through `abi` (bytes, every host status a value).

use std::cell::OnceCell;

use super::abi::{self, Buffer, Headers};
use super::shared::SharedRef;
use crate::core::header_map::HeaderMap;
use crate::core::host::LocalReply;
use crate::core::http_flow::{HttpFlow, Next, RequestIo};

pub struct Http {
    shared: SharedRef,
    flow: HttpFlow,
}

impl Http {
    pub fn new(id: u32, shared: SharedRef) -> Http {
        Http { shared, flow: HttpFlow::new(id) }
    }
}

/// The current request, as seen from one of this HTTP context's callbacks. Its headers are read
/// in one host call, the first time one is needed: a search reads three or four and removes two
/// that are nearly always absent, and every host call is a crossing out of the VM and back (a
/// value read, one more into it to allocate). Made afresh for each callback, so it never holds
/// headers another filter may have changed since; read again after the filter changes one.
#[derive(Default)]
struct EnvoyRequest {
    /// None: not read yet. Some(None): the map could not be read as a whole; one header at a time.
    headers: OnceCell<Option<HeaderMap>>,
}

impl EnvoyRequest {
    fn headers(&self) -> Option<&HeaderMap> {
        self.headers.get_or_init(|| abi::header_pairs(Headers::Request).ok()).as_ref()
    }
}

impl RequestIo for EnvoyRequest {
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        match self.headers() {
            Some(headers) => headers.get(name.as_bytes()).map(<[u8]>::to_vec),
            None => abi::header_bytes(Headers::Request, name).ok().flatten(),
        }
    }

    fn set_request_header(&mut self, name: &str, value: Option<&str>) {
        let present = self.headers().map(|h| h.get(name.as_bytes()).is_some());
        if value.is_none() && present == Some(false) {
            return; // nothing to remove
        }
        let _ = abi::set_header(Headers::Request, name, value);
        self.headers = OnceCell::new();
    }

    fn request_body(&self, max: usize) -> Vec<u8> {
        abi::buffer_bytes(Buffer::RequestBody, max).ok().flatten().unwrap_or_default()
    }

    fn set_response_header(&mut self, name: &str, value: &str) {
        let _ = abi::set_header(Headers::Response, name, Some(value));
    }

    fn send_reply(&mut self, reply: &LocalReply) {
        if let Err(status) = abi::send_local_response(reply.status, &reply.headers, &reply.body) {
            log::warn!("miroir: local reply failed (host status {status})");
        }
    }
}

impl Http {
    pub fn on_request_headers(&mut self, end_of_stream: bool) -> Next {
        let Ok(mut guard) = self.shared.try_borrow_mut() else { return self.flow.on_state_unavailable(&mut EnvoyRequest::default()) };
        let Some(s) = guard.as_mut() else { return self.flow.on_state_unavailable(&mut EnvoyRequest::default()) };
        self.flow.on_request_headers(&mut s.engine, &mut s.host, &mut EnvoyRequest::default(), end_of_stream)
    }

    pub fn on_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Next {
        if !self.flow.holds_a_write() {
            return Next::Continue;
        }
        let Ok(mut guard) = self.shared.try_borrow_mut() else { return self.flow.on_state_unavailable(&mut EnvoyRequest::default()) };
        let Some(s) = guard.as_mut() else { return self.flow.on_state_unavailable(&mut EnvoyRequest::default()) };
        self.flow.on_request_body(&mut s.engine, &mut s.host, &mut EnvoyRequest::default(), body_size, end_of_stream)
    }

    pub fn on_request_trailers(&mut self) -> Next {
        if !self.flow.holds_a_write() {
            return Next::Continue;
        }
        let Ok(mut guard) = self.shared.try_borrow_mut() else { return self.flow.on_state_unavailable(&mut EnvoyRequest::default()) };
        let Some(s) = guard.as_mut() else { return self.flow.on_state_unavailable(&mut EnvoyRequest::default()) };
        self.flow.on_request_trailers(&mut s.engine, &mut s.host, &mut EnvoyRequest::default())
    }

    pub fn on_response_headers(&mut self) {
        if let Ok(guard) = self.shared.try_borrow() {
            if let Some(s) = guard.as_ref() {
                self.flow.on_response_headers(&s.engine, &s.host, &mut EnvoyRequest::default());
            }
        }
    }

    pub fn on_gone(&mut self) {
        if let Ok(mut guard) = self.shared.try_borrow_mut() {
            if let Some(s) = guard.as_mut() {
                self.flow.on_gone(&mut s.engine);
            }
        }
    }
}
