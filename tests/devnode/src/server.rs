//! Listeners: one per node (closed and re-bound on the same port by the `down` fault) and one
//! control listener for faults, out-of-band changes and request logs.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

use crate::errors::error_body;
use crate::node::{Index, Node};
use crate::routes::{self, Reply, Request};
use crate::settings;

/// Returned by a node's service to make hyper drop the connection without answering
/// (a `hang` that was cleared).
#[derive(Debug)]
struct HangUp;

impl std::fmt::Display for HangUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed by the hang fault")
    }
}

impl std::error::Error for HangUp {}

/// The `reset` fault's body: the first part of what the headers announce, a pause (so hyper
/// flushes it to the socket), then an error, on which hyper drops the connection. The connection
/// was marked for reset, so the socket closes with RST instead of FIN.
struct CutBody {
    part: Option<Bytes>,
    pause: Pin<Box<Sleep>>,
}

#[derive(Debug)]
struct ResetFault;

impl std::fmt::Display for ResetFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset mid-response by the reset fault")
    }
}

impl std::error::Error for ResetFault {}

impl Body for CutBody {
    type Data = Bytes;
    type Error = ResetFault;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, ResetFault>>> {
        let this = self.get_mut();
        if let Some(part) = this.part.take() {
            return Poll::Ready(Some(Ok(Frame::data(part))));
        }
        match this.pause.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(ResetFault))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// What a node answers: a whole response, or one cut short by the `reset` fault.
type NodeBody = Either<Full<Bytes>, CutBody>;

/// A 202 whose headers announce a whole task body, of which only the start is sent.
fn cut_response() -> Response<NodeBody> {
    let whole = br#"{"taskUid":0,"indexUid":null,"status":"enqueued","type":"settingsUpdate","enqueuedAt":"1970-01-01T00:00:00Z"}"#;
    let part = Bytes::from_static(whole.get(..whole.len() / 2).unwrap_or_default());
    let body = CutBody { part: Some(part), pause: Box::pin(tokio::time::sleep(Duration::from_millis(50))) };
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header("content-type", "application/json")
        .header("content-length", whole.len())
        .body(Either::Right(body))
        .unwrap_or_else(|_| Response::new(Either::Left(Full::new(Bytes::new()))))
}

/// A node connection's socket, closed with RST (linger 0) instead of FIN once `reset` is set.
struct NodeIo {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for NodeIo {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.stream.set_zero_linger();
        }
    }
}

impl AsyncRead for NodeIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for NodeIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if this.reset.load(Ordering::SeqCst) {
            // No FIN before the RST: the peer must see a reset, not a clean end.
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await
}

fn response(reply: Reply) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = Response::builder().status(status);
    let body = match reply.body {
        Some(v) => {
            builder = builder.header("content-type", "application/json");
            Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
        }
        None => Bytes::new(),
    };
    builder.body(Full::new(body)).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// Percent-decodes one path segment or query component (`plus_is_space` for queries).
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Path segments with empty ones dropped: trailing and repeated slashes are normalized away
/// like Meilisearch's `NormalizePath::trim`.
pub fn split_path(path: &str) -> Vec<String> {
    path.split('/').filter(|s| !s.is_empty()).map(|s| percent_decode(s, false)).collect()
}

pub fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k, true), percent_decode(v, true))
        })
        .collect()
}

struct RawRequest {
    request: Request,
    path_and_query: String,
}

async fn read_request(req: hyper::Request<Incoming>) -> Result<RawRequest, hyper::Error> {
    let header = |name: &str| req.headers().get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let method = req.method().as_str().to_string();
    let content_type = header("content-type");
    let authorization = header("authorization");
    let path_and_query = req.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".to_string());
    let segments = split_path(req.uri().path());
    let query = parse_query(req.uri().query());
    let raw_query = req.uri().query().unwrap_or("").to_string();
    let body = req.into_body().collect().await?.to_bytes().to_vec();
    Ok(RawRequest {
        request: Request { method, segments, query, content_type, authorization, body, raw_query },
        path_and_query,
    })
}

/// One request to a node: logged, then faults (hang, reset, delay, 5xx), then the Meilisearch API.
async fn node_request(
    node: Arc<Node>,
    reset: Arc<AtomicBool>,
    req: hyper::Request<Incoming>,
) -> Result<Response<NodeBody>, Box<dyn std::error::Error + Send + Sync>> {
    let raw = read_request(req).await?;
    let r = &raw.request;
    node.log_request(json!({
        "method": r.method,
        "path": raw.path_and_query,
        "has_authorization": r.authorization.is_some(),
        "authorization": r.authorization,
        "content_type": r.content_type,
        "body": String::from_utf8_lossy(&r.body),
    }));
    let faults = node.faults();
    if faults.hang {
        let mut live = node.liveness();
        let _ = live.wait_for(|l| !l.hang || l.down).await;
        return Err(Box::new(HangUp));
    }
    if faults.reset {
        reset.store(true, Ordering::SeqCst);
        return Ok(cut_response());
    }
    if faults.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
    }
    if let Some(status) = faults.status_5xx {
        let body = error_body("Injected fault: the node answers every request with an error.", "internal", "internal");
        return Ok(response(Reply::json(status, body)).map(Either::Left));
    }
    Ok(response(routes::handle(&node, r)).map(Either::Left))
}

async fn serve_node_connection(node: Arc<Node>, stream: TcpStream) {
    let mut live = node.liveness();
    let svc_node = node.clone();
    let reset = Arc::new(AtomicBool::new(false));
    let io = NodeIo { stream, reset: reset.clone() };
    let svc = service_fn(move |req| node_request(svc_node.clone(), reset.clone(), req));
    let conn = http1::Builder::new().serve_connection(TokioIo::new(io), svc);
    tokio::select! {
        _ = conn => {}
        // `down`: drop the connection (closes the socket) mid-flight.
        _ = live.wait_for(|l| l.down) => {}
    }
}

/// Accepts connections for a node while it is up; closes the listener when it goes down and
/// binds the same port again when it comes back.
pub async fn run_node_listener(node: Arc<Node>, port: u16, first: TcpListener) {
    let mut live = node.liveness();
    let mut listener = Some(first);
    loop {
        if live.wait_for(|l| !l.down).await.is_err() {
            return;
        }
        let l = match listener.take() {
            Some(l) => l,
            None => match bind(port).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("devnode {}: re-binding port {port} failed ({e}), retrying", node.id);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        node.set_listening(true);
        loop {
            tokio::select! {
                accepted = l.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(serve_node_connection(node.clone(), stream));
                    }
                }
                changed = live.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    if live.borrow_and_update().down {
                        break;
                    }
                }
            }
        }
        drop(l);
        node.set_listening(false);
    }
}

// ---- control API ----

pub struct Fleet {
    pub nodes: Vec<Arc<Node>>,
    pub ports: Vec<u16>,
}

fn control_error(status: u16, message: impl Into<String>) -> Reply {
    Reply::json(status, json!({"error": message.into()}))
}

fn control_body(body: &[u8]) -> Result<Value, Reply> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|e| control_error(400, format!("body is not JSON: {e}")))
}

fn control(fleet: &Fleet, req: &Request) -> Reply {
    let segs: Vec<&str> = req.segments.iter().map(String::as_str).collect();
    let m = req.method.as_str();
    if segs.as_slice() == ["health"] {
        return Reply::json(200, json!({"status": "available"}));
    }
    if segs.as_slice() == ["nodes"] && m == "GET" {
        let list: Vec<Value> = fleet
            .nodes
            .iter()
            .zip(&fleet.ports)
            .map(|(n, p)| json!({"id": n.id, "port": p, "faults": n.faults().to_json()}))
            .collect();
        return Reply::json(200, Value::Array(list));
    }
    let (Some(&"nodes"), Some(i)) = (segs.first(), segs.get(1)) else {
        return control_error(404, "unknown control route");
    };
    let Some(node) = i.parse::<usize>().ok().and_then(|i| fleet.nodes.get(i)) else {
        return control_error(404, format!("no node `{i}` (there are {})", fleet.nodes.len()));
    };
    match (m, &segs[2..]) {
        ("GET", ["faults"]) => Reply::json(200, node.faults().to_json()),
        ("POST", ["faults"]) => {
            let body = match control_body(&req.body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let mut faults = node.faults();
            match faults.merge(&body) {
                Ok(()) => {
                    let view = faults.to_json();
                    node.set_faults(faults);
                    Reply::json(200, view)
                }
                Err(e) => control_error(400, e),
            }
        }
        ("DELETE", ["faults"]) => {
            node.set_faults(Default::default());
            Reply::json(200, json!({}))
        }
        ("GET", ["requests"]) => Reply::json(200, Value::Array(node.state().requests.iter().cloned().collect())),
        ("DELETE", ["requests"]) => {
            node.state().requests.clear();
            Reply::json(200, json!([]))
        }
        ("GET", ["settings", uid]) => match node.state().indexes.get(*uid) {
            // Same body as GET /indexes/{uid}/settings; `?secrets=clear` shows real apiKeys.
            Some(index) => Reply::json(
                200,
                index.settings.view_with(req.query.iter().all(|(k, v)| !(k == "secrets" && v == "clear"))),
            ),
            None => crate::errors::ApiError::index_not_found(uid).into(),
        },
        ("POST", ["out-of-band", "indexes", uid, "settings"]) => {
            let body = match control_body(&req.body) {
                Ok(b) => b,
                Err(r) => return r,
            };
            out_of_band_settings(node, uid, &body)
        }
        ("DELETE", ["out-of-band", "indexes", uid]) => match node.state().indexes.remove(*uid) {
            Some(_) => Reply::json(200, json!({"deleted": uid})),
            None => crate::errors::ApiError::index_not_found(uid).into(),
        },
        _ => control_error(404, "unknown control route"),
    }
}

/// Applies a settings PATCH immediately, bypassing tasks and faults (someone changed the node
/// behind the proxy's back). Creates the index if needed.
fn out_of_band_settings(node: &Node, uid: &str, body: &Value) -> Reply {
    if let Err(e) = routes::check_index_uid(uid) {
        return e.into();
    }
    let update = match settings::parse_whole(body) {
        Ok(u) => u,
        Err(e) => return e.into(),
    };
    let mut st = node.state();
    let index = st.indexes.entry(uid.to_string()).or_insert_with(|| Index::new(uid, None));
    match settings::apply(&index.settings, &update) {
        Ok(next) => {
            index.settings = next;
            index.updated_at = std::time::SystemTime::now();
            Reply::json(200, index.settings.view())
        }
        Err(e) => e.into(),
    }
}

async fn control_request(
    fleet: Arc<Fleet>,
    req: hyper::Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    match read_request(req).await {
        Ok(raw) => {
            let reply = control(&fleet, &raw.request);
            // A `down` change is answered once the listener is really closed / bound again.
            if let (["nodes", i, "faults"], "POST" | "DELETE") =
                (&raw.request.segments.iter().map(String::as_str).collect::<Vec<_>>()[..], raw.request.method.as_str())
            {
                if let Some(node) = i.parse::<usize>().ok().and_then(|i| fleet.nodes.get(i)) {
                    node.settle_listener().await;
                }
            }
            Ok(response(reply))
        }
        Err(e) => Ok(response(control_error(400, format!("could not read request: {e}")))),
    }
}

pub async fn run_control(fleet: Arc<Fleet>, listener: TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let fleet = fleet.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| control_request(fleet.clone(), req));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_trimmed_and_decoded() {
        assert_eq!(split_path("/indexes/movies/settings/"), ["indexes", "movies", "settings"]);
        assert_eq!(split_path("//indexes//a%2Db"), ["indexes", "a-b"]);
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz", false), "%zz");
        assert_eq!(
            parse_query(Some("q=a+b&limit=2&x")),
            [("q".into(), "a b".into()), ("limit".into(), "2".into()), ("x".into(), "".into())]
        );
    }
}
