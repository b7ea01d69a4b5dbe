//! One client request through the filter, callback by callback: which headers are read and how
//! (bytes, never assumed UTF-8), what is refused at the door, when a settings write is held and
//! when its body is complete (end of stream or trailers), and what is stamped on the response.
//! The glue (`glue/http.rs`) only binds these calls to the proxy-wasm callbacks; everything it
//! decides lives here, so the fake host's tests cover it.

use super::engine::Engine;
use super::errors::{ErrorType, MeiliError};
use super::front::{self, HeadersDecision};
use super::pending_write::{BodyDecision, PendingWrite};
use super::headers;
use super::host::{Host, LocalReply, Wake};
use super::request::{RequestHead, HEADER_MIN_VERSION};
use super::state::records::HotRecord;
use super::route::{classify, may_be_routed, Route};
use super::tasks::error_reply;

/// Sends a settings write to the hold route while its body is read (see `envoy/`): Envoy's
/// buffer filter keeps it from the router until the filter has answered.
pub const HOLD_HEADER: &str = "x-miroir-hold";

/// The request as the host shows it to one HTTP context.
pub trait RequestIo {
    /// A request header as the client sent it, any bytes; None when absent or unreadable.
    fn request_header(&self, name: &str) -> Option<Vec<u8>>;
    /// Set (Some) or remove (None) a request header.
    fn set_request_header(&mut self, name: &str, value: Option<&str>);
    /// Up to `max` bytes of the buffered request body.
    fn request_body(&self, max: usize) -> Vec<u8>;
    fn set_response_header(&mut self, name: &str, value: &str);
    /// Answer the client locally (the request goes no further).
    fn send_reply(&mut self, reply: &LocalReply);
}

/// What the host does with the request after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// Held: answered locally, being buffered, or waiting for the engine.
    Pause,
}

/// The filter's state for one request.
#[derive(Debug, Default)]
pub struct HttpFlow {
    context_id: u32,
    pending: Option<PendingWrite>,
    stamp_index: Option<String>,
    /// The index's view read at request time, stamped as is on the response.
    stamp_hot: Option<HotRecord>,
}

impl HttpFlow {
    pub fn new(context_id: u32) -> HttpFlow {
        HttpFlow { context_id, ..HttpFlow::default() }
    }

    /// Whether a settings write is held waiting for its body.
    pub fn holds_a_write(&self) -> bool {
        self.pending.is_some()
    }

    pub fn on_request_headers(&mut self, engine: &mut Engine, host: &mut dyn Host, io: &mut dyn RequestIo, end_of_stream: bool) -> Next {
        // A client must never pick an Envoy cluster by header, nor the hold route.
        io.set_request_header(&engine.config().routing_header, None);
        io.set_request_header(HOLD_HEADER, None);
        // UTF-8 bytes become the path without a copy; any others are read lossily, and flagged.
        let (path, path_is_utf8) = match String::from_utf8(io.request_header(":path").unwrap_or_default()) {
            Ok(path) => (path, true),
            Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), false),
        };
        if !may_be_routed(&path) {
            return Next::Continue;
        }
        let method = lossy(io.request_header(":method")).unwrap_or_default();
        let route = classify(&method, &path);
        // A write the filter replays to the nodes itself: its headers must be replayable.
        let settings_write = front::is_replayed(engine.config(), &route);
        let (authorization, content_type) = if front::wants_credentials(&route) {
            match (text(io.request_header("authorization")), text(io.request_header("content-type"))) {
                (Ok(a), Ok(c)) => (a, c),
                // A settings write's headers are replayed to every node: refuse what cannot be
                // replayed. No Meilisearch key is anything but ASCII, so a node would refuse such
                // an Authorization too.
                (Err(()), _) if settings_write => return reply(io, &invalid_api_key()),
                (_, Err(())) if settings_write => return reply(io, &invalid_content_type()),
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
            return reply(io, &MeiliError::bad_request("The request path is not valid UTF-8."));
        }
        let min_settings_version =
            if matches!(route, Route::IndexRead { .. }) { lossy(io.request_header(HEADER_MIN_VERSION)) } else { None };
        let head = RequestHead { method, path, authorization, content_type, min_settings_version, end_of_stream };
        match front::on_route(engine, host, route, &head) {
            HeadersDecision::Pass => Next::Continue,
            HeadersDecision::PassAndStamp { index } => {
                self.stamp_index = Some(index);
                Next::Continue
            }
            HeadersDecision::PassAndStampWith { index, hot } => {
                self.stamp_index = Some(index);
                self.stamp_hot = Some(hot);
                Next::Continue
            }
            HeadersDecision::Pin { index, cluster } => {
                io.set_request_header(&engine.config().routing_header, Some(&cluster));
                self.stamp_index = Some(index);
                Next::Continue
            }
            HeadersDecision::PinOnly { cluster } => {
                io.set_request_header(&engine.config().routing_header, Some(&cluster));
                Next::Continue
            }
            HeadersDecision::Reply(r) => {
                io.send_reply(&r);
                Next::Pause
            }
            HeadersDecision::TaskAfterRefresh { task_uid, authorization } => {
                if !engine.task_after_refresh(host, self.context_id, task_uid, authorization.clone()) {
                    io.send_reply(&super::tasks::task_reply(None, task_uid, authorization.as_deref()));
                }
                Next::Pause
            }
            HeadersDecision::ForceUnfreeze { index } => {
                engine.force_unfreeze(host, self.context_id, &index);
                Next::Pause
            }
            HeadersDecision::AdminVerify { index, purpose } => {
                engine.request_verify(&index, self.context_id, purpose, host.now_ms());
                let me = engine.worker().to_string();
                host.wake(&me, Wake::Work);
                Next::Pause
            }
            HeadersDecision::Buffer(pending) => {
                if end_of_stream {
                    return self.decide(engine, host, io, &pending, &[]);
                }
                // The body is only delivered once headers continue (proxy-wasm turns a pause here
                // into "stop everything"), so the request goes on to the hold route.
                io.set_request_header(HOLD_HEADER, Some("1"));
                self.pending = Some(pending);
                Next::Continue
            }
        }
    }

    pub fn on_request_body(&mut self, engine: &mut Engine, host: &mut dyn Host, io: &mut dyn RequestIo, body_size: usize, end_of_stream: bool) -> Next {
        if self.pending.is_none() {
            return Next::Continue;
        }
        if !end_of_stream {
            return Next::Pause; // keep buffering
        }
        self.body_complete(engine, host, io, body_size)
    }

    /// With trailers (HTTP/2, gRPC-style clients) the body never ends the stream: the trailers do.
    /// A held settings write is decided here; continuing would hand it to the router and one node.
    pub fn on_request_trailers(&mut self, engine: &mut Engine, host: &mut dyn Host, io: &mut dyn RequestIo) -> Next {
        if self.pending.is_none() {
            return Next::Continue;
        }
        // One byte over the limit is enough for the core to answer 413.
        let max = usize::try_from(engine.config().max_body_bytes.saturating_add(1)).unwrap_or(usize::MAX);
        self.body_complete(engine, host, io, max)
    }

    /// The VM's state cannot be reached (busy or unconfigured): a held write is refused rather
    /// than paused forever or let through to one node; anything else goes on untouched.
    pub fn on_state_unavailable(&mut self, io: &mut dyn RequestIo) -> Next {
        if self.pending.take().is_some() {
            return reply(io, &unavailable());
        }
        Next::Continue
    }

    pub fn on_response_headers(&mut self, engine: &Engine, host: &dyn Host, io: &mut dyn RequestIo) {
        let Some(index) = self.stamp_index.as_deref() else { return };
        headers::stamp_hot(self.stamp_hot.unwrap_or_else(|| engine.hot(host, index)), |name, value| {
            io.set_response_header(name, value);
        });
    }

    /// The request is over and its context deleted: nothing may wait on it any more.
    pub fn on_gone(&mut self, engine: &mut Engine) {
        engine.client_gone(self.context_id);
    }

    fn body_complete(&mut self, engine: &mut Engine, host: &mut dyn Host, io: &mut dyn RequestIo, max: usize) -> Next {
        let Some(pending) = self.pending.take() else { return Next::Continue };
        let body = io.request_body(max);
        self.decide(engine, host, io, &pending, &body)
    }

    fn decide(&mut self, engine: &mut Engine, host: &mut dyn Host, io: &mut dyn RequestIo, pending: &PendingWrite, body: &[u8]) -> Next {
        match front::on_write_body(engine, host, self.context_id, pending, body) {
            BodyDecision::Reply(r) => {
                io.send_reply(&r);
                Next::Pause
            }
            BodyDecision::Wait { .. } => Next::Pause,
        }
    }
}

/// A header as text with invalid UTF-8 replaced by U+FFFD. Only for values the filter matches or
/// parses (`:path`, `:method`, the minimum version): a replacement character matches no route
/// literal, no index uid and no number, just as the raw byte would not.
fn lossy(value: Option<Vec<u8>>) -> Option<String> {
    value.map(|b| match String::from_utf8(b) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// A header the filter forwards to the nodes itself: `Err(())` when present but not UTF-8.
fn text(value: Option<Vec<u8>>) -> Result<Option<String>, ()> {
    match value {
        None => Ok(None),
        Some(b) => String::from_utf8(b).map(Some).map_err(|_| ()),
    }
}

fn reply(io: &mut dyn RequestIo, error: &MeiliError) -> Next {
    io.send_reply(&error_reply(error));
    Next::Pause
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

fn unavailable() -> MeiliError {
    MeiliError::new(
        503,
        "miroir_unavailable",
        ErrorType::System,
        "The settings write could not be queued; nothing was changed. Retry later.",
    )
}
