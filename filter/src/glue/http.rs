//! One client request. Asks the core's front door what to do; settings writes are buffered and
//! handed to the engine, which answers from the root context.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use super::root::SharedRef;
use crate::core::front::{self, BodyDecision, HeadersDecision, PendingWrite, RequestHead, HEADER_MIN_VERSION};
use crate::core::host::LocalReply;
use crate::core::route::{classify, Route};

/// Routes a settings write to the hold route while its body is read (see `envoy/`).
const HOLD_HEADER: &str = "x-miroir-hold";

pub struct Http {
    id: u32,
    shared: SharedRef,
    pending: Option<PendingWrite>,
    stamp_index: Option<String>,
}

impl Http {
    pub fn new(id: u32, shared: SharedRef) -> Http {
        Http { id, shared, pending: None, stamp_index: None }
    }
}

fn header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpRequestHeaders, name).ok().flatten()
}

fn send(reply: &LocalReply) -> Action {
    let headers: Vec<(&str, &str)> = reply.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if let Err(e) = hostcalls::send_http_response(reply.status as u32, headers, Some(&reply.body)) {
        log::warn!("miroir: local reply failed: {e:?}");
    }
    Action::Pause
}

/// Paths the filter may care about; everything else leaves at once.
fn maybe_ours(path: &str) -> bool {
    path.starts_with("/indexes/") || path.starts_with("/tasks/") || path.starts_with("/_miroir") || path.starts_with("//")
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Ok(mut guard) = self.shared.try_borrow_mut() else { return Action::Continue };
        let Some(s) = guard.as_mut() else { return Action::Continue };
        // A client must never pick an Envoy cluster by header.
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, &s.engine.config().routing_header, None);
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, HOLD_HEADER, None);
        let path = header(":path").unwrap_or_default();
        if !maybe_ours(&path) {
            return Action::Continue;
        }
        let method = header(":method").unwrap_or_default();
        let route = classify(&method, &path);
        let credentials = front::wants_credentials(&route);
        let head = RequestHead {
            method,
            path,
            authorization: if credentials { header("authorization") } else { None },
            content_type: if credentials { header("content-type") } else { None },
            min_settings_version: if matches!(route, Route::IndexRead { .. }) { header(HEADER_MIN_VERSION) } else { None },
            end_of_stream,
        };
        match front::on_route(&s.engine, &mut s.host, route, &head) {
            HeadersDecision::Pass => Action::Continue,
            HeadersDecision::PassAndStamp { index } => {
                self.stamp_index = Some(index);
                Action::Continue
            }
            HeadersDecision::Pin { index, cluster } => {
                let routing = &s.engine.config().routing_header;
                let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, routing, Some(&cluster));
                self.stamp_index = Some(index);
                Action::Continue
            }
            HeadersDecision::Reply(reply) => send(&reply),
            HeadersDecision::AdminVerify { index, purpose } => {
                let now = crate::core::host::Host::now_ms(&s.host);
                s.engine.request_verify(&index, self.id, purpose, now);
                let me = s.engine.worker().to_string();
                crate::core::host::Host::wake(&mut s.host, &me);
                Action::Pause
            }
            HeadersDecision::Buffer(pending) => {
                if end_of_stream {
                    return match front::on_settings_body(&mut s.engine, &mut s.host, self.id, &pending, &[]) {
                        BodyDecision::Reply(reply) => send(&reply),
                        BodyDecision::Wait { .. } => Action::Pause,
                    };
                }
                // The body is only delivered once headers continue (proxy-wasm turns a pause here
                // into "stop everything"), so send the request to the hold route, where Envoy's
                // buffer filter keeps it from the router until the filter has answered.
                let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, HOLD_HEADER, Some("1"));
                self.pending = Some(pending);
                Action::Continue
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(pending) = self.pending.as_ref() else { return Action::Continue };
        if !end_of_stream {
            return Action::Pause; // keep buffering
        }
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size).ok().flatten().unwrap_or_default();
        let Ok(mut guard) = self.shared.try_borrow_mut() else { return Action::Pause };
        let Some(s) = guard.as_mut() else { return Action::Pause };
        let decision = front::on_settings_body(&mut s.engine, &mut s.host, self.id, pending, &body);
        match decision {
            BodyDecision::Reply(reply) => send(&reply),
            BodyDecision::Wait { .. } => Action::Pause,
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(index) = self.stamp_index.as_deref() else { return Action::Continue };
        let Ok(guard) = self.shared.try_borrow() else { return Action::Continue };
        let Some(s) = guard.as_ref() else { return Action::Continue };
        for (name, value) in front::response_headers(&s.host, index) {
            let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some(&value));
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if let Ok(mut guard) = self.shared.try_borrow_mut() {
            if let Some(s) = guard.as_mut() {
                s.engine.client_gone(self.id);
            }
        }
    }
}
