//! One client request. Asks the core's front door what to do; settings writes are buffered and
//! handed to the engine, which answers from the root context.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use super::abi;
use super::shared::SharedRef;
use crate::core::errors::{ErrorType, MeiliError};
use crate::core::front::{self, BodyDecision, HeadersDecision, PendingWrite, RequestHead, HEADER_MIN_VERSION};
use crate::core::host::LocalReply;
use crate::core::route::{classify, may_be_routed, Route};
use crate::core::tasks::error_reply;

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

    /// The whole body of the held settings write is buffered: read it (at most `max` bytes) and
    /// let the core decide. Never lets the request continue to the router.
    fn settings_body(&mut self, max: usize) -> Action {
        let Some(pending) = self.pending.as_ref() else { return Action::Continue };
        let body = abi::buffer_bytes(BufferType::HttpRequestBody, max).ok().flatten().unwrap_or_default();
        let Ok(mut guard) = self.shared.try_borrow_mut() else { return send(&error_reply(&unavailable())) };
        let Some(s) = guard.as_mut() else { return send(&error_reply(&unavailable())) };
        match front::on_settings_body(&mut s.engine, &mut s.host, self.id, pending, &body) {
            BodyDecision::Reply(reply) => send(&reply),
            BodyDecision::Wait { .. } => Action::Pause,
        }
    }
}

/// A request header as the client sent it, any bytes: clients (and Envoy's HTTP/1 codec) allow
/// obs-text (bytes >= 0x80) in header values, so nothing here assumes UTF-8.
fn header_bytes(name: &str) -> Option<Vec<u8>> {
    abi::header_bytes(MapType::HttpRequestHeaders, name).ok().flatten()
}

/// A header as text with invalid UTF-8 replaced by U+FFFD. Only for values the filter matches or
/// parses (`:path`, `:method`, the minimum version): a replacement character matches no route
/// literal, no index uid and no number, just as the raw byte would not.
fn header_lossy(name: &str) -> Option<String> {
    header_bytes(name).map(|b| match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// A header the filter forwards to the nodes itself (`Authorization`, `Content-Type` of a settings
/// write): `Err(())` when it is present but not UTF-8, since it cannot be replayed faithfully.
fn header_text(name: &str) -> Result<Option<String>, ()> {
    match header_bytes(name) {
        None => Ok(None),
        Some(b) => String::from_utf8(b).map(Some).map_err(|_| ()),
    }
}

fn send(reply: &LocalReply) -> Action {
    let headers: Vec<(&str, &str)> = reply.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if let Err(e) = hostcalls::send_http_response(reply.status as u32, headers, Some(&reply.body)) {
        log::warn!("miroir: local reply failed: {e:?}");
    }
    Action::Pause
}

fn invalid_api_key() -> MeiliError {
    MeiliError::new(403, "invalid_api_key", ErrorType::Auth, "The provided API key is invalid.")
}

fn invalid_content_type() -> MeiliError {
    MeiliError::new(
        415,
        "invalid_content_type",
        ErrorType::InvalidRequest,
        "The Content-Type header is not valid UTF-8. Accepted value for the Content-Type header is: `application/json`.",
    )
}

/// The held write cannot be handled (the VM's state is busy or unconfigured): refuse it rather
/// than pause it forever or let it reach one node.
fn unavailable() -> MeiliError {
    MeiliError::new(
        503,
        "miroir_unavailable",
        ErrorType::System,
        "The settings write could not be queued; nothing was changed. Retry later.",
    )
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Ok(mut guard) = self.shared.try_borrow_mut() else { return Action::Continue };
        let Some(s) = guard.as_mut() else { return Action::Continue };
        // A client must never pick an Envoy cluster by header.
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, &s.engine.config().routing_header, None);
        let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, HOLD_HEADER, None);
        let raw_path = header_bytes(":path").unwrap_or_default();
        let path = String::from_utf8_lossy(&raw_path);
        if !may_be_routed(&path) {
            return Action::Continue;
        }
        let path_is_utf8 = matches!(path, std::borrow::Cow::Borrowed(_));
        let path = path.into_owned();
        let method = header_lossy(":method").unwrap_or_default();
        let route = classify(&method, &path);
        let settings_write = matches!(route, Route::SettingsWrite { .. });
        let credentials = front::wants_credentials(&route);
        let (authorization, content_type) = if credentials {
            match (header_text("authorization"), header_text("content-type")) {
                (Ok(a), Ok(c)) => (a, c),
                // The filter replays a settings write's headers to every node: refuse what cannot
                // be replayed. No Meilisearch key is anything but ASCII, so the node would refuse
                // such an Authorization too.
                (Err(()), _) if settings_write => return send(&error_reply(&invalid_api_key())),
                (_, Err(())) if settings_write => return send(&error_reply(&invalid_content_type())),
                // Task reads and the admin API check the key themselves: a key that is not text
                // matches none, like no key at all (Meilisearch reads it so too).
                (a, c) => (a.ok().flatten(), c.ok().flatten()),
            }
        } else {
            (None, None)
        };
        if settings_write && !path_is_utf8 {
            // Only the query can hold such bytes here (every path segment matched a literal), and
            // the proposal is replayed with its path: refuse rather than alter it.
            return send(&error_reply(&MeiliError::bad_request("The request path is not valid UTF-8.")));
        }
        let head = RequestHead {
            method,
            path,
            authorization,
            content_type,
            min_settings_version: if matches!(route, Route::IndexRead { .. }) {
                header_lossy(HEADER_MIN_VERSION)
            } else {
                None
            },
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
        if self.pending.is_none() {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause; // keep buffering
        }
        self.settings_body(body_size)
    }

    /// With trailers (HTTP/2, gRPC-style clients) the body never ends the stream: the trailers do.
    /// A held settings write must be decided here, or the SDK's default Continue hands it, body and
    /// all, to the router and one node applies it.
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.pending.is_none() {
            return Action::Continue;
        }
        let limit = match self.shared.try_borrow() {
            Ok(guard) => guard.as_ref().map(|s| s.engine.config().max_body_bytes),
            Err(_) => None,
        };
        // One byte over the limit is enough for the core to answer 413.
        let max = limit.map_or(usize::MAX, |l| usize::try_from(l.saturating_add(1)).unwrap_or(usize::MAX));
        self.settings_body(max)
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
