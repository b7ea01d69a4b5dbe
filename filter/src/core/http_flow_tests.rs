//! The HTTP callbacks' decisions, driven through a fake request: what the glue used to decide on
//! its own and only real Envoy tested (header bytes, the hold route, trailers, stamping).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::config::Config;
use super::engine::Engine;
use super::fake_host::{new_envoy, FakeHost};
use super::host::LocalReply;
use super::http_flow::{HttpFlow, Next, RequestIo, HOLD_HEADER};
use super::state::index_store::update_index;
use super::records::{FrozenRecord, IndexRecord};
use super::state::store;

#[derive(Default)]
struct FakeRequest {
    headers: BTreeMap<String, Vec<u8>>,
    body: Vec<u8>,
    response_headers: Vec<(String, String)>,
    replies: Vec<LocalReply>,
}

impl FakeRequest {
    fn new(method: &str, path: &[u8], headers: &[(&str, &[u8])]) -> FakeRequest {
        let mut r = FakeRequest::default();
        r.headers.insert(":method".into(), method.as_bytes().to_vec());
        r.headers.insert(":path".into(), path.to_vec());
        for (k, v) in headers {
            r.headers.insert(k.to_string(), v.to_vec());
        }
        r
    }

    fn reply(&self) -> (u16, Value) {
        let r = self.replies.first().expect("a local reply");
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }
}

impl RequestIo for FakeRequest {
    fn request_header(&self, name: &str) -> Option<Vec<u8>> {
        self.headers.get(name).cloned()
    }
    fn set_request_header(&mut self, name: &str, value: Option<&str>) {
        match value {
            Some(v) => self.headers.insert(name.to_string(), v.as_bytes().to_vec()),
            None => self.headers.remove(name),
        };
    }
    fn request_body(&self, max: usize) -> Vec<u8> {
        self.body.iter().take(max).copied().collect()
    }
    fn set_response_header(&mut self, name: &str, value: &str) {
        self.response_headers.push((name.to_string(), value.to_string()));
    }
    fn send_reply(&mut self, reply: &LocalReply) {
        self.replies.push(reply.clone());
    }
}

fn setup() -> (Engine, FakeHost) {
    let cfg = json!({"nodes": [{"id": "n0", "cluster": "meili_node_0", "authority": "a"}, {"id": "n1", "cluster": "meili_node_1", "authority": "a"}], "max_body_bytes": 1024});
    let engine = Engine::new(Config::parse(cfg.to_string().as_bytes()).unwrap(), "w0".into());
    let mut host = FakeHost::new(new_envoy(1_000));
    engine.seed(&mut host);
    (engine, host)
}

fn queued(host: &FakeHost, index: &str) -> usize {
    store::read::<IndexRecord>(host, &super::state::keys::index_key(index)).unwrap().map_or(0, |r| r.queue.len())
}

#[test]
fn a_settings_write_is_held_then_queued_when_its_body_ends() {
    let (mut engine, mut host) = setup();
    let mut flow = HttpFlow::new(7);
    let mut req = FakeRequest::new("PATCH", b"/indexes/m/settings", &[("authorization", b"Bearer k"), ("content-type", b"application/json")]);
    assert_eq!(flow.on_request_headers(&mut engine, &mut host, &mut req, false), Next::Continue);
    assert_eq!(req.headers.get(HOLD_HEADER).map(Vec::as_slice), Some(&b"1"[..]), "sent to the hold route");
    assert_eq!(flow.on_request_body(&mut engine, &mut host, &mut req, 0, false), Next::Pause);
    req.body = br#"{"stopWords":["a"]}"#.to_vec();
    let size = req.body.len();
    assert_eq!(flow.on_request_body(&mut engine, &mut host, &mut req, size, true), Next::Pause);
    assert_eq!(queued(&host, "m"), 1);
    assert!(req.replies.is_empty(), "the engine answers once the nodes have");
    assert!(engine.waits_on(7), "the client waits for its write's outcome");
    // The client hangs up before the answer: its context is deleted, and nothing waits on it.
    flow.on_gone(&mut engine);
    assert!(!engine.waits_on(7));
}

#[test]
fn trailers_end_a_held_write_and_it_never_continues_to_the_router() {
    let (mut engine, mut host) = setup();
    let mut flow = HttpFlow::new(7);
    let mut req = FakeRequest::new("PATCH", b"/indexes/m/settings", &[("content-type", b"application/json")]);
    flow.on_request_headers(&mut engine, &mut host, &mut req, false);
    req.body = br#"{"stopWords":["a"]}"#.to_vec();
    let size = req.body.len();
    assert_eq!(flow.on_request_body(&mut engine, &mut host, &mut req, size, false), Next::Pause);
    assert_eq!(flow.on_request_trailers(&mut engine, &mut host, &mut req), Next::Pause);
    assert_eq!(queued(&host, "m"), 1);
    // Over the limit with trailers: 413, nothing queued.
    let mut flow = HttpFlow::new(8);
    let mut req = FakeRequest::new("PATCH", b"/indexes/big/settings", &[]);
    flow.on_request_headers(&mut engine, &mut host, &mut req, false);
    req.body = vec![b' '; 5_000];
    assert_eq!(flow.on_request_trailers(&mut engine, &mut host, &mut req), Next::Pause);
    assert_eq!(req.reply().0, 413);
    assert_eq!(queued(&host, "big"), 0);
}

#[test]
fn header_bytes_that_are_not_utf8_are_refused_or_ignored_never_forwarded() {
    let (mut engine, mut host) = setup();
    type Case<'a> = (&'a str, &'a [u8], &'a [(&'a str, &'a [u8])], u16, &'a str);
    let cases: [Case; 4] = [
        ("PATCH", b"/indexes/m/settings", &[("authorization", b"Bearer \xff")], 403, "invalid_api_key"),
        ("PATCH", b"/indexes/m/settings", &[("content-type", b"application/\xe9")], 415, "invalid_content_type"),
        ("PATCH", b"/indexes/m/settings?x=\xff", &[], 400, "bad_request"),
        ("GET", b"/indexes/m/search", &[("x-miroir-min-settings-version", b"\xff")], 400, "bad_request"),
    ];
    for (method, path, headers, status, code) in cases {
        let mut flow = HttpFlow::new(9);
        let mut req = FakeRequest::new(method, path, headers);
        assert_eq!(flow.on_request_headers(&mut engine, &mut host, &mut req, false), Next::Pause, "{path:?}");
        let (got, body) = req.reply();
        assert_eq!((got, body["code"].as_str()), (status, Some(code)), "{path:?}");
    }
    assert_eq!(queued(&host, "m"), 0);
}

#[test]
fn client_routing_and_hold_headers_are_removed_and_unrelated_paths_pass() {
    let (mut engine, mut host) = setup();
    let mut flow = HttpFlow::new(3);
    let mut req = FakeRequest::new("GET", b"/health", &[("x-miroir-node", b"meili_node_1"), (HOLD_HEADER, b"1")]);
    assert_eq!(flow.on_request_headers(&mut engine, &mut host, &mut req, true), Next::Continue);
    assert!(!req.headers.contains_key("x-miroir-node") && !req.headers.contains_key(HOLD_HEADER));
}

#[test]
fn a_percent_encoded_write_to_a_frozen_index_is_fenced() {
    let (mut engine, mut host) = setup();
    update_index(&mut host, "m", |_| Some(IndexRecord { frozen: Some(FrozenRecord::default()), ..IndexRecord::default() })).unwrap();
    let mut flow = HttpFlow::new(4);
    let mut req = FakeRequest::new("POST", b"/%69ndexes/m/documents", &[]);
    assert_eq!(flow.on_request_headers(&mut engine, &mut host, &mut req, false), Next::Pause);
    assert_eq!(req.reply().1["code"], "miroir_index_frozen");
}

#[test]
fn reads_are_stamped_with_the_committed_version() {
    let (mut engine, mut host) = setup();
    update_index(&mut host, "m", |_| Some(IndexRecord { version: 3, ..IndexRecord::default() })).unwrap();
    let mut flow = HttpFlow::new(5);
    let mut req = FakeRequest::new("POST", b"/indexes/m/search", &[]);
    assert_eq!(flow.on_request_headers(&mut engine, &mut host, &mut req, false), Next::Continue);
    flow.on_response_headers(&engine, &host, &mut req);
    assert_eq!(req.response_headers, vec![("x-miroir-settings-version".to_string(), "3".to_string())]);
}

#[test]
fn a_held_write_is_refused_when_the_state_cannot_be_reached() {
    let (mut engine, mut host) = setup();
    let mut flow = HttpFlow::new(6);
    let mut req = FakeRequest::new("PATCH", b"/indexes/m/settings", &[]);
    flow.on_request_headers(&mut engine, &mut host, &mut req, false);
    assert_eq!(flow.on_state_unavailable(&mut req), Next::Pause);
    let (status, body) = req.reply();
    assert_eq!((status, body["code"].as_str()), (503, Some("miroir_unavailable")));
    // Anything not held goes on untouched.
    assert_eq!(HttpFlow::new(7).on_state_unavailable(&mut FakeRequest::default()), Next::Continue);
}
