//! A test double of etcd 3.4 behind its JSON gateway (`POST /v3/kv/range`, `POST /v3/kv/txn`):
//! one member, one key space, one revision counter, and what the real gateway answers, byte for
//! byte where it matters to a client. Written from etcd's sources, not from what the etcd ledger
//! expects:
//!
//! - the gateway is grpc-gateway v1 with its default marshaler, `JSONPb{OrigName: true}`: field
//!   names as in `rpc.proto`/`kv.proto` (`mod_revision`, `create_revision`, `response_range`),
//!   int64/uint64 as JSON strings, enums by name, bytes as padded standard base64, and every
//!   field at its proto3 default left out (`succeeded` false, no `kvs`, an empty `value`, a zero
//!   `count`, an empty `responses`). Requests are read as jsonpb reads them: original or
//!   lowerCamel names, int64 as string or number, enums by name or number.
//! - `etcdserver/apply.go`: a store starts at revision 1; every transaction that changes a key
//!   takes the next revision, shared by all its puts; a put keeps a live key's
//!   `create_revision` and bumps its `version`; a compare on a missing key compares the zero
//!   key-value (so `CREATE EQUAL 0` means "absent"), except a `VALUE` compare, which fails;
//!   `min_mod_revision` and friends filter after the range, and `count` counts before they do.
//! - `etcdserver/api/v3rpc/key.go`: at most `max_txn_ops` (128 by default) compares, success or
//!   failure operations; no empty key; no key put twice in one branch — each refused with
//!   gRPC `InvalidArgument`, which the gateway answers as HTTP 400.
//! - a request larger than `--max-request-bytes` (1.5 MiB by default) is refused as
//!   `etcdserver: request is too large` (`InvalidArgument`); here its size is the request's keys
//!   and values, which is what makes a raft entry large.
//! - a gRPC error reaches the client as `{"error": <message>, "code": <grpc code>, "message":
//!   <message>}` with the HTTP status grpc-gateway maps the code to.
//!
//! Not modelled (a request that needs them panics, so a test never reads a made-up answer):
//! leases, historical reads (`revision`), sorting, nested transactions, `ignore_value`,
//! `ignore_lease`.
//!
//! Faults: `Fault::Down` (no member answers: the call fails before any response),
//! `Fault::NoQuorum` (the member answers, but a proposal cannot commit: 503, "request timed
//! out"), and `Fault::LeaderAlone` (the leader lost its quorum: it keeps every write it is sent
//! in its log, uncommitted, and the call times out; `regain_quorum` says whether it is elected
//! again and commits them, or another member is and they are lost). `lose_next_write_answer`
//! applies the next write and loses its answer (etcd slow past the caller's timeout);
//! `refuse_connections` has Envoy answer the next calls itself, as when the member it picked is
//! not listening.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::etcd_wire::{decode, encode};
use crate::core::host::{Callout, CalloutResponse};

pub const DEFAULT_MAX_TXN_OPS: usize = 128;
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 1536 * 1024;

const CLUSTER_ID: &str = "14841639068965178418";
const MEMBER_ID: &str = "10276657743932975437";
const RAFT_TERM: &str = "2";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Up,
    /// No member answers: the call fails before any response (reset, refused, timeout).
    Down,
    /// Members answer but cannot commit anything (no leader / no quorum).
    NoQuorum,
    /// The leader alone: writes kept, uncommitted, and no answer to anything.
    LeaderAlone,
}

/// One live key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub value: Vec<u8>,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub version: i64,
}

pub struct FakeEtcd {
    kvs: BTreeMap<Vec<u8>, Stored>,
    revision: i64,
    pub fault: Fault,
    pub max_txn_ops: usize,
    pub max_request_bytes: usize,
    /// Every call that reached the gateway (faults included), in order: path and body.
    pub calls: Vec<(String, Vec<u8>)>,
    /// Transactions whose compares did not hold (the failure branch ran).
    pub failed_compares: u32,
    /// Writes the leader took while alone (`Fault::LeaderAlone`), in order.
    pub uncommitted: Vec<Value>,
    pub lose_next_write_answer: bool,
    /// The next this many calls meet a member that is not listening: Envoy answers them itself.
    pub refuse_connections: u32,
}

impl Default for FakeEtcd {
    fn default() -> Self {
        FakeEtcd::new()
    }
}

/// A gRPC status the gateway turns into an HTTP error.
struct GrpcError {
    code: u16,
    message: String,
}

fn invalid(message: &str) -> GrpcError {
    GrpcError { code: 3, message: message.to_string() }
}

impl FakeEtcd {
    pub fn new() -> FakeEtcd {
        FakeEtcd {
            kvs: BTreeMap::new(),
            revision: 1,
            fault: Fault::Up,
            max_txn_ops: DEFAULT_MAX_TXN_OPS,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            calls: Vec::new(),
            failed_compares: 0,
            uncommitted: Vec::new(),
            lose_next_write_answer: false,
            refuse_connections: 0,
        }
    }

    /// The store's current revision.
    pub fn revision(&self) -> i64 {
        self.revision
    }

    pub fn get(&self, key: &[u8]) -> Option<&Stored> {
        self.kvs.get(key)
    }

    pub fn value(&self, key: &str) -> Option<Vec<u8>> {
        self.kvs.get(key.as_bytes()).map(|s| s.value.clone())
    }

    /// Every live key, in order.
    pub fn keys(&self) -> Vec<Vec<u8>> {
        self.kvs.keys().cloned().collect()
    }

    /// A plain put by some other client (one transaction of its own).
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> i64 {
        self.revision += 1;
        let rev = self.revision;
        self.write(key, value, rev);
        rev
    }

    fn write(&mut self, key: &[u8], value: &[u8], rev: i64) {
        let next = match self.kvs.get(key) {
            Some(s) => Stored { value: value.to_vec(), create_revision: s.create_revision, mod_revision: rev, version: s.version + 1 },
            None => Stored { value: value.to_vec(), create_revision: rev, mod_revision: rev, version: 1 },
        };
        self.kvs.insert(key.to_vec(), next);
    }

    /// What the gateway answers to `call` (sent to etcd's client URL).
    pub fn answer(&mut self, call: &Callout) -> CalloutResponse {
        let body = call.body.clone().unwrap_or_default();
        self.calls.push((call.path.clone(), body.clone()));
        if self.refuse_connections > 0 {
            self.refuse_connections -= 1;
            let reply = "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused";
            return CalloutResponse { status: Some(503), body: reply.as_bytes().to_vec() };
        }
        match self.fault {
            Fault::Up => {}
            Fault::Down => return CalloutResponse { status: None, body: vec![] },
            Fault::NoQuorum => return error_response(&GrpcError { code: 14, message: "etcdserver: request timed out".into() }),
            Fault::LeaderAlone => {
                if let Ok(request) = serde_json::from_slice::<Value>(&body) {
                    if call.path.ends_with("/kv/txn") && TxnReq::parse(&request).is_ok_and(|t| !t.read_only()) {
                        self.uncommitted.push(request);
                    }
                }
                return CalloutResponse { status: None, body: vec![] };
            }
        }
        // etcd 3.4 serves /v3beta/ as /v3/ (embed/serve.go, accessController).
        let path = call.path.split('?').next().unwrap_or_default().replacen("/v3beta/", "/v3/", 1);
        let route = match path.as_str() {
            "/v3/kv/range" | "/v3/kv/txn" if call.method == "POST" => path,
            // grpc-gateway v1: no route matches (method or path), a plain-text 404.
            _ => return CalloutResponse { status: Some(404), body: b"Not Found\n".to_vec() },
        };
        let request: Value = match serde_json::from_slice(&body) {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) | Err(_) => return error_response(&invalid("unexpected EOF")),
        };
        let answered = if route == "/v3/kv/range" { self.range_call(&request) } else { self.txn_call(&request) };
        let write = route == "/v3/kv/txn" && TxnReq::parse(&request).is_ok_and(|t| !t.read_only());
        if write && answered.is_ok() && std::mem::take(&mut self.lose_next_write_answer) {
            return CalloutResponse { status: Some(504), body: b"upstream request timeout".to_vec() };
        }
        match answered {
            Ok(v) => CalloutResponse { status: Some(200), body: v.to_string().into_bytes() },
            Err(e) => error_response(&e),
        }
    }

    /// The quorum is back. `reelected`: the leader that was alone wins the election (its log is
    /// the longest) and commits the writes it kept, in order, before anything else; otherwise
    /// another member wins and they are dropped.
    pub fn regain_quorum(&mut self, reelected: bool) {
        self.fault = Fault::Up;
        for request in std::mem::take(&mut self.uncommitted) {
            if reelected {
                let _ = self.txn_call(&request);
            }
        }
    }

    fn header(&self, revision: i64) -> Value {
        json!({"cluster_id": CLUSTER_ID, "member_id": MEMBER_ID, "revision": revision.to_string(), "raft_term": RAFT_TERM})
    }

    fn range_call(&mut self, request: &Value) -> Result<Value, GrpcError> {
        let range = RangeReq::parse(request)?;
        if range.key.is_empty() {
            return Err(invalid("etcdserver: key is not provided"));
        }
        let mut resp = self.range(&range, self.revision);
        if let Some(o) = resp.as_object_mut() {
            o.insert("header".into(), self.header(self.revision));
        }
        Ok(resp)
    }

    /// `apply.go` Range, read at the store's current revision `rev`; the header carries only
    /// the revision (the outer call's header is filled in by the caller).
    fn range(&self, r: &RangeReq, rev: i64) -> Value {
        let all: Vec<(&Vec<u8>, &Stored)> = self.kvs.iter().filter(|(k, _)| in_range(k, &r.key, &r.range_end)).collect();
        let count = all.len();
        let mut kvs: Vec<(&Vec<u8>, &Stored)> = all
            .into_iter()
            .filter(|(_, s)| r.min_mod_revision == 0 || s.mod_revision >= r.min_mod_revision)
            .filter(|(_, s)| r.max_mod_revision == 0 || s.mod_revision <= r.max_mod_revision)
            .filter(|(_, s)| r.min_create_revision == 0 || s.create_revision >= r.min_create_revision)
            .filter(|(_, s)| r.max_create_revision == 0 || s.create_revision <= r.max_create_revision)
            .collect();
        let mut more = false;
        if r.limit > 0 && kvs.len() > r.limit {
            kvs.truncate(r.limit);
            more = true;
        }
        let mut out = Map::new();
        out.insert("header".into(), json!({"revision": rev.to_string()}));
        if !r.count_only && !kvs.is_empty() {
            out.insert("kvs".into(), Value::Array(kvs.iter().map(|(k, s)| kv_json(k, s, r.keys_only)).collect()));
        }
        if more {
            out.insert("more".into(), Value::Bool(true));
        }
        if count > 0 {
            out.insert("count".into(), Value::String(count.to_string()));
        }
        Value::Object(out)
    }

    fn txn_call(&mut self, request: &Value) -> Result<Value, GrpcError> {
        let txn = TxnReq::parse(request)?;
        // key.go checkTxnRequest, then checkIntervals on each branch.
        if txn.compare.len().max(txn.success.len()).max(txn.failure.len()) > self.max_txn_ops {
            return Err(invalid("etcdserver: too many operations in txn request"));
        }
        if txn.compare.iter().any(|c| c.key.is_empty()) || txn.success.iter().chain(&txn.failure).any(|op| op.key().is_empty()) {
            return Err(invalid("etcdserver: key is not provided"));
        }
        for branch in [&txn.success, &txn.failure] {
            check_intervals(branch)?;
        }
        if txn.bytes() > self.max_request_bytes {
            return Err(invalid("etcdserver: request is too large"));
        }
        let succeeded = txn.compare.iter().all(|c| self.compare(c));
        if !succeeded {
            self.failed_compares += 1;
        }
        let ops = if succeeded { &txn.success } else { &txn.failure };
        // apply.go Txn/applyTxn: one write transaction; its puts share the next revision and
        // a range inside it sees the puts before it.
        let begin = self.revision;
        let mut changed = false;
        let mut responses = Vec::new();
        for op in ops {
            let rev_now = if changed { begin + 1 } else { begin };
            match op {
                RequestOp::Range(r) => responses.push(json!({"response_range": self.range(r, rev_now)})),
                RequestOp::Put { key, value, prev_kv } => {
                    let mut resp = Map::new();
                    resp.insert("header".into(), json!({"revision": (begin + 1).to_string()}));
                    if *prev_kv {
                        if let Some(s) = self.kvs.get(key) {
                            resp.insert("prev_kv".into(), kv_json(key, s, false));
                        }
                    }
                    self.write(key, value, begin + 1);
                    changed = true;
                    responses.push(json!({"response_put": Value::Object(resp)}));
                }
                RequestOp::Delete { key, range_end, prev_kv } => {
                    let doomed: Vec<Vec<u8>> = self.kvs.keys().filter(|k| in_range(k, key, range_end)).cloned().collect();
                    let mut resp = Map::new();
                    if *prev_kv && !doomed.is_empty() {
                        let prev: Vec<Value> = doomed.iter().filter_map(|k| self.kvs.get(k).map(|s| kv_json(k, s, false))).collect();
                        resp.insert("prev_kvs".into(), Value::Array(prev));
                    }
                    for k in &doomed {
                        self.kvs.remove(k);
                    }
                    changed |= !doomed.is_empty();
                    let rev = if changed { begin + 1 } else { begin };
                    resp.insert("header".into(), json!({"revision": rev.to_string()}));
                    if !doomed.is_empty() {
                        resp.insert("deleted".into(), Value::String(doomed.len().to_string()));
                    }
                    responses.push(json!({"response_delete_range": Value::Object(resp)}));
                }
            }
        }
        if changed {
            self.revision = begin + 1;
        }
        let mut out = Map::new();
        out.insert("header".into(), self.header(self.revision));
        if succeeded {
            out.insert("succeeded".into(), Value::Bool(true));
        }
        if !responses.is_empty() {
            out.insert("responses".into(), Value::Array(responses));
        }
        Ok(Value::Object(out))
    }

    /// `apply.go` applyCompare / compareKV.
    fn compare(&self, c: &Compare) -> bool {
        let matched: Vec<&Stored> = self.kvs.iter().filter(|(k, _)| in_range(k, &c.key, &c.range_end)).map(|(_, s)| s).collect();
        let zero = Stored { value: Vec::new(), create_revision: 0, mod_revision: 0, version: 0 };
        if matched.is_empty() {
            if c.target == Target::Value {
                return false;
            }
            return c.holds(&zero);
        }
        matched.into_iter().all(|s| c.holds(s))
    }
}

fn kv_json(key: &[u8], s: &Stored, keys_only: bool) -> Value {
    let mut kv = Map::new();
    kv.insert("key".into(), Value::String(encode(key)));
    kv.insert("create_revision".into(), Value::String(s.create_revision.to_string()));
    kv.insert("mod_revision".into(), Value::String(s.mod_revision.to_string()));
    kv.insert("version".into(), Value::String(s.version.to_string()));
    if !keys_only && !s.value.is_empty() {
        kv.insert("value".into(), Value::String(encode(&s.value)));
    }
    Value::Object(kv)
}

/// grpc-gateway v1 `DefaultHTTPError`: the status's message twice and its code; the HTTP status
/// from `HTTPStatusFromCode`.
fn error_response(e: &GrpcError) -> CalloutResponse {
    let status = match e.code {
        3 | 9 | 11 => 400,
        5 => 404,
        6 | 10 => 409,
        7 => 403,
        8 => 429,
        4 => 504,
        12 => 501,
        14 => 503,
        16 => 401,
        _ => 500,
    };
    let body = json!({"error": e.message, "code": e.code, "message": e.message});
    CalloutResponse { status: Some(status), body: body.to_string().into_bytes() }
}

/// `mkGteRange`: no end is one key; an end of `\0` is every key from `key` on.
fn in_range(k: &[u8], key: &[u8], range_end: &[u8]) -> bool {
    if range_end.is_empty() {
        return k == key;
    }
    if range_end == [0] {
        return k >= key;
    }
    k >= key && k < range_end
}

/// `key.go` checkIntervals (one level, no nested transactions): a key put twice, or put and
/// deleted, in one branch.
fn check_intervals(ops: &[RequestOp]) -> Result<(), GrpcError> {
    let duplicate = || invalid("etcdserver: duplicate key given in txn request");
    let deletes: Vec<(&Vec<u8>, &Vec<u8>)> =
        ops.iter().filter_map(|op| if let RequestOp::Delete { key, range_end, .. } = op { Some((key, range_end)) } else { None }).collect();
    let mut puts: Vec<&Vec<u8>> = Vec::new();
    for op in ops {
        if let RequestOp::Put { key, .. } = op {
            if puts.contains(&key) || deletes.iter().any(|(k, e)| in_range(key, k, e)) {
                return Err(duplicate());
            }
            puts.push(key);
        }
    }
    Ok(())
}

// ----- requests, read as jsonpb reads them -----

/// A field by its original proto name or its lowerCamel JSON name.
fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.get(name).or_else(|| v.get(lower_camel(name).as_str())).filter(|f| !f.is_null())
}

fn lower_camel(name: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// bytes: padded standard base64 (Go's `encoding/json` for `[]byte`).
fn bytes_field(v: &Value, name: &str) -> Result<Vec<u8>, GrpcError> {
    let Some(f) = field(v, name) else { return Ok(Vec::new()) };
    let text = f.as_str().ok_or_else(|| invalid(&format!("bad bytes in field {name}")))?;
    let strict = text.len() % 4 == 0 && text.trim_end_matches('=').bytes().all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/');
    match decode(text) {
        Some(b) if strict => Ok(b),
        _ => Err(invalid(&format!("illegal base64 data in field {name}"))),
    }
}

fn int_field(v: &Value, name: &str) -> Result<i64, GrpcError> {
    match field(v, name) {
        None => Ok(0),
        Some(Value::String(s)) => s.parse().map_err(|_| invalid(&format!("bad int64 in field {name}"))),
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| invalid(&format!("bad int64 in field {name}"))),
        Some(_) => Err(invalid(&format!("bad int64 in field {name}"))),
    }
}

fn bool_field(v: &Value, name: &str) -> Result<bool, GrpcError> {
    match field(v, name) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(&format!("bad bool in field {name}"))),
    }
}

fn enum_field(v: &Value, name: &str, names: &[&str]) -> Result<usize, GrpcError> {
    match field(v, name) {
        None => Ok(0),
        Some(Value::String(s)) => names.iter().position(|n| n == s).ok_or_else(|| invalid(&format!("unknown value {s} for enum {name}"))),
        Some(Value::Number(n)) => n.as_u64().map(|n| n as usize).filter(|n| *n < names.len()).ok_or_else(|| invalid(&format!("bad enum {name}"))),
        Some(_) => Err(invalid(&format!("bad enum {name}"))),
    }
}

struct RangeReq {
    key: Vec<u8>,
    range_end: Vec<u8>,
    limit: usize,
    keys_only: bool,
    count_only: bool,
    min_mod_revision: i64,
    max_mod_revision: i64,
    min_create_revision: i64,
    max_create_revision: i64,
}

impl RangeReq {
    fn parse(v: &Value) -> Result<RangeReq, GrpcError> {
        assert_eq!(int_field(v, "revision")?, 0, "fake etcd: historical reads are not modelled");
        assert_eq!(enum_field(v, "sort_order", &["NONE", "ASCEND", "DESCEND"])?, 0, "fake etcd: sorting is not modelled");
        assert_eq!(enum_field(v, "sort_target", &["KEY", "VERSION", "CREATE", "MOD", "VALUE"])?, 0, "fake etcd: sorting is not modelled");
        Ok(RangeReq {
            key: bytes_field(v, "key")?,
            range_end: bytes_field(v, "range_end")?,
            limit: usize::try_from(int_field(v, "limit")?.max(0)).unwrap_or(0),
            keys_only: bool_field(v, "keys_only")?,
            count_only: bool_field(v, "count_only")?,
            min_mod_revision: int_field(v, "min_mod_revision")?,
            max_mod_revision: int_field(v, "max_mod_revision")?,
            min_create_revision: int_field(v, "min_create_revision")?,
            max_create_revision: int_field(v, "max_create_revision")?,
        })
    }

    fn keys_bytes(&self) -> usize {
        self.key.len() + self.range_end.len()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Version,
    Create,
    Mod,
    Value,
    Lease,
}

struct Compare {
    key: Vec<u8>,
    range_end: Vec<u8>,
    target: Target,
    /// 0 EQUAL, 1 GREATER, 2 LESS, 3 NOT_EQUAL (rpc.proto `CompareResult`).
    result: usize,
    number: i64,
    value: Vec<u8>,
}

impl Compare {
    fn parse(v: &Value) -> Result<Compare, GrpcError> {
        let target = match enum_field(v, "target", &["VERSION", "CREATE", "MOD", "VALUE", "LEASE"])? {
            0 => Target::Version,
            1 => Target::Create,
            2 => Target::Mod,
            3 => Target::Value,
            _ => Target::Lease,
        };
        let number_field = match target {
            Target::Version => "version",
            Target::Create => "create_revision",
            Target::Mod => "mod_revision",
            Target::Value => "value",
            Target::Lease => "lease",
        };
        Ok(Compare {
            key: bytes_field(v, "key")?,
            range_end: bytes_field(v, "range_end")?,
            target,
            result: enum_field(v, "result", &["EQUAL", "GREATER", "LESS", "NOT_EQUAL"])?,
            number: if target == Target::Value { 0 } else { int_field(v, number_field)? },
            value: if target == Target::Value { bytes_field(v, "value")? } else { Vec::new() },
        })
    }

    fn holds(&self, s: &Stored) -> bool {
        let order = match self.target {
            Target::Value => s.value.as_slice().cmp(self.value.as_slice()),
            Target::Create => s.create_revision.cmp(&self.number),
            Target::Mod => s.mod_revision.cmp(&self.number),
            Target::Version => s.version.cmp(&self.number),
            Target::Lease => 0.cmp(&self.number),
        };
        match self.result {
            0 => order.is_eq(),
            1 => order.is_gt(),
            2 => order.is_lt(),
            _ => order.is_ne(),
        }
    }

    fn bytes(&self) -> usize {
        self.key.len() + self.range_end.len() + self.value.len()
    }
}

enum RequestOp {
    Range(RangeReq),
    Put { key: Vec<u8>, value: Vec<u8>, prev_kv: bool },
    Delete { key: Vec<u8>, range_end: Vec<u8>, prev_kv: bool },
}

impl RequestOp {
    fn parse(v: &Value) -> Result<RequestOp, GrpcError> {
        if let Some(r) = field(v, "request_range") {
            return Ok(RequestOp::Range(RangeReq::parse(r)?));
        }
        if let Some(p) = field(v, "request_put") {
            assert_eq!(int_field(p, "lease")?, 0, "fake etcd: leases are not modelled");
            assert!(!bool_field(p, "ignore_value")? && !bool_field(p, "ignore_lease")?, "fake etcd: ignore_value/ignore_lease are not modelled");
            return Ok(RequestOp::Put { key: bytes_field(p, "key")?, value: bytes_field(p, "value")?, prev_kv: bool_field(p, "prev_kv")? });
        }
        if let Some(d) = field(v, "request_delete_range") {
            return Ok(RequestOp::Delete { key: bytes_field(d, "key")?, range_end: bytes_field(d, "range_end")?, prev_kv: bool_field(d, "prev_kv")? });
        }
        assert!(field(v, "request_txn").is_none(), "fake etcd: nested transactions are not modelled");
        // key.go checkRequestOp: an empty operation.
        Err(GrpcError { code: 5, message: "etcdserver: key not found".into() })
    }

    fn key(&self) -> &[u8] {
        match self {
            RequestOp::Range(r) => &r.key,
            RequestOp::Put { key, .. } | RequestOp::Delete { key, .. } => key,
        }
    }

    fn bytes(&self) -> usize {
        match self {
            RequestOp::Range(r) => r.keys_bytes(),
            RequestOp::Put { key, value, .. } => key.len() + value.len(),
            RequestOp::Delete { key, range_end, .. } => key.len() + range_end.len(),
        }
    }
}

struct TxnReq {
    compare: Vec<Compare>,
    success: Vec<RequestOp>,
    failure: Vec<RequestOp>,
}

impl TxnReq {
    fn parse(v: &Value) -> Result<TxnReq, GrpcError> {
        let list = |name: &str| -> Vec<Value> { field(v, name).and_then(Value::as_array).cloned().unwrap_or_default() };
        Ok(TxnReq {
            compare: list("compare").iter().map(Compare::parse).collect::<Result<_, _>>()?,
            success: list("success").iter().map(RequestOp::parse).collect::<Result<_, _>>()?,
            failure: list("failure").iter().map(RequestOp::parse).collect::<Result<_, _>>()?,
        })
    }

    /// etcd serves a transaction of ranges only as a read, outside the raft log
    /// (`isTxnReadonly`).
    fn read_only(&self) -> bool {
        self.success.iter().chain(&self.failure).all(|op| matches!(op, RequestOp::Range(_)))
    }

    fn bytes(&self) -> usize {
        self.compare.iter().map(Compare::bytes).sum::<usize>() + self.success.iter().chain(&self.failure).map(RequestOp::bytes).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(path: &str, body: Value) -> Callout {
        Callout {
            cluster: "etcd".into(),
            method: "POST".into(),
            path: path.into(),
            authority: "etcd".into(),
            headers: vec![],
            body: Some(body.to_string().into_bytes()),
            timeout_ms: 1000,
        }
    }

    fn answer(etcd: &mut FakeEtcd, path: &str, body: Value) -> (Option<u16>, Value) {
        let r = etcd.answer(&call(path, body));
        (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    fn put(key: &str, value: &str) -> Value {
        json!({"request_put": {"key": encode(key.as_bytes()), "value": encode(value.as_bytes())}})
    }

    #[test]
    fn a_range_answers_as_the_gateway_does() {
        let mut etcd = FakeEtcd::new();
        // The api_grpc_gateway guide's example: put foo=bar into a fresh store, read it back.
        assert_eq!(etcd.put(b"foo", b"bar"), 2);
        let (status, v) = answer(&mut etcd, "/v3/kv/range", json!({"key": "Zm9v"}));
        assert_eq!(status, Some(200));
        assert_eq!(v["header"]["revision"], "2");
        assert_eq!(v["header"]["raft_term"], RAFT_TERM);
        assert_eq!(v["kvs"], json!([{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}]));
        assert_eq!(v["count"], "1");
        // Nothing found: no kvs, no count (proto3 defaults are left out).
        let (_, v) = answer(&mut etcd, "/v3/kv/range", json!({"key": "bm9uZQ=="}));
        assert_eq!(v, json!({"header": etcd.header(2)}));
        // A prefix range changed since a revision: count counts before the filter.
        etcd.put(b"fop", b"");
        let (_, v) = answer(&mut etcd, "/v3/kv/range", json!({"key": encode(b"fo"), "range_end": encode(b"fp"), "min_mod_revision": "3"}));
        assert_eq!(v["kvs"], json!([{"key":"Zm9w","create_revision":"3","mod_revision":"3","version":"1"}]), "an empty value is left out");
        assert_eq!(v["count"], "2");
        assert_eq!(answer(&mut etcd, "/v3/kv/range", json!({"key": ""})).0, Some(400));
        assert_eq!(answer(&mut etcd, "/v3/kv/range", json!({"key": "Zm9v="})).0, Some(400), "not padded base64");
    }

    #[test]
    fn a_txn_compares_then_runs_one_branch_at_one_revision() {
        let mut etcd = FakeEtcd::new();
        etcd.put(b"a", b"1");
        let absent_b = json!({"key": encode(b"b"), "target": "CREATE", "result": "EQUAL", "create_revision": "0"});
        let a_at_2 = json!({"key": encode(b"a"), "target": "MOD", "result": "EQUAL", "mod_revision": "2"});
        let body = json!({"compare": [a_at_2, absent_b], "success": [put("a", "2"), put("b", "x")], "failure": [{"request_range": {"key": encode(b"a")}}]});
        let (status, v) = answer(&mut etcd, "/v3/kv/txn", body.clone());
        assert_eq!(status, Some(200));
        assert_eq!(v["succeeded"], true);
        assert_eq!(v["header"]["revision"], "3", "both puts share one revision");
        assert_eq!(v["responses"], json!([{"response_put": {"header": {"revision": "3"}}}, {"response_put": {"header": {"revision": "3"}}}]));
        let a = etcd.get(b"a").unwrap();
        assert_eq!((a.create_revision, a.mod_revision, a.version), (2, 3, 2));
        // The same again: the compares fail, the failure branch reads; `succeeded` is left out.
        let (status, v) = answer(&mut etcd, "/v3/kv/txn", body);
        assert_eq!(status, Some(200));
        assert_eq!(v.get("succeeded"), None);
        assert_eq!(v["header"]["revision"], "3");
        assert_eq!(v["responses"][0]["response_range"]["kvs"][0]["mod_revision"], "3");
        assert_eq!(etcd.failed_compares, 1);
        // A compare on a missing key compares zeros; a VALUE compare on it fails.
        let mod_zero = json!({"compare": [{"key": encode(b"z"), "target": "MOD", "mod_revision": "0"}]});
        assert_eq!(answer(&mut etcd, "/v3/kv/txn", mod_zero).1["succeeded"], true, "result defaults to EQUAL");
        let value = json!({"compare": [{"key": encode(b"z"), "target": "VALUE", "value": ""}]});
        assert_eq!(answer(&mut etcd, "/v3/kv/txn", value).1.get("succeeded"), None);
    }

    #[test]
    fn refused_requests_and_faults_answer_as_etcd_does() {
        let mut etcd = FakeEtcd::new();
        let twice = json!({"success": [put("a", "1"), put("a", "2")]});
        let (status, v) = answer(&mut etcd, "/v3/kv/txn", twice);
        assert_eq!((status, v["code"].clone(), v["error"].clone()), (Some(400), json!(3), json!("etcdserver: duplicate key given in txn request")));
        let many: Vec<Value> = (0..129).map(|i| json!({"request_range": {"key": encode(format!("k{i}").as_bytes())}})).collect();
        let (status, v) = answer(&mut etcd, "/v3/kv/txn", json!({"success": many}));
        assert_eq!((status, v["error"].clone()), (Some(400), json!("etcdserver: too many operations in txn request")));
        let big = "x".repeat(DEFAULT_MAX_REQUEST_BYTES);
        let (status, v) = answer(&mut etcd, "/v3/kv/txn", json!({"success": [put("a", &big)]}));
        assert_eq!((status, v["error"].clone()), (Some(400), json!("etcdserver: request is too large")));
        assert_eq!(etcd.revision(), 1, "nothing was written");
        etcd.fault = Fault::NoQuorum;
        let (status, v) = answer(&mut etcd, "/v3/kv/range", json!({"key": "YQ=="}));
        assert_eq!((status, v), (Some(503), json!({"error": "etcdserver: request timed out", "code": 14, "message": "etcdserver: request timed out"})));
        etcd.fault = Fault::Down;
        assert_eq!(etcd.answer(&call("/v3/kv/range", json!({"key": "YQ=="}))).status, None);
    }
}
