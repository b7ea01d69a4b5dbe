//! etcd v3's JSON gateway on the wire (`POST /v3/kv/range`, `POST /v3/kv/txn`): the request
//! bodies the etcd ledger sends and what it reads back. Keys and values are base64; 64-bit
//! numbers come back as strings; proto3 leaves out every field at its default (`succeeded`
//! false, no `kvs`, an empty `value`), so a missing field means its zero.

use serde_json::{json, Value};

pub const RANGE_PATH: &str = "/v3/kv/range";
pub const TXN_PATH: &str = "/v3/kv/txn";

/// One key as etcd holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kv {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub mod_revision: i64,
}

/// A range's answer: the store revision it was read at and the keys found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeAnswer {
    pub revision: i64,
    pub kvs: Vec<Kv>,
}

/// A transaction's answer: whether its compares held, the revision after it, and the keys read
/// by the range operations of the branch that ran, in their order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnAnswer {
    pub succeeded: bool,
    pub revision: i64,
    pub ranges: Vec<Vec<Kv>>,
}

/// What a transaction checks of one key before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// The key was last written at this revision.
    ModRevision(Vec<u8>, i64),
    /// The key does not exist.
    Absent(Vec<u8>),
}

/// A range over one key, or over every key from `key` up to `range_end` (exclusive), changed at
/// or after `min_mod_revision`.
pub fn range_body(key: &[u8], range_end: Option<&[u8]>, min_mod_revision: Option<i64>) -> Vec<u8> {
    let mut body = serde_json::Map::new();
    body.insert("key".into(), Value::String(encode(key)));
    if let Some(end) = range_end {
        body.insert("range_end".into(), Value::String(encode(end)));
    }
    if let Some(rev) = min_mod_revision {
        body.insert("min_mod_revision".into(), Value::String(rev.to_string()));
    }
    Value::Object(body).to_string().into_bytes()
}

/// If every compare holds, put every key; otherwise read back `reads` (so the caller learns what
/// changed in the same round trip).
pub fn txn_body(compares: &[Compare], puts: &[(Vec<u8>, Vec<u8>)], reads: &[Vec<u8>]) -> Vec<u8> {
    let compare: Vec<Value> = compares
        .iter()
        .map(|c| match c {
            Compare::ModRevision(key, rev) => {
                json!({ "key": encode(key), "target": "MOD", "result": "EQUAL", "mod_revision": rev.to_string() })
            }
            Compare::Absent(key) => {
                json!({ "key": encode(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0" })
            }
        })
        .collect();
    let success: Vec<Value> =
        puts.iter().map(|(k, v)| json!({ "request_put": { "key": encode(k), "value": encode(v) } })).collect();
    let failure: Vec<Value> = reads.iter().map(|k| json!({ "request_range": { "key": encode(k) } })).collect();
    json!({ "compare": compare, "success": success, "failure": failure }).to_string().into_bytes()
}

/// Did this gateway's commit number `seq` take effect? A transaction that is itself a write, so
/// etcd orders it after that commit in its log: once it is applied, that commit either was
/// applied before it or never will be (a leader that lost its quorum may keep a write it took and
/// commit it once re-elected; a read could answer before that). Its compare holds if the marker
/// still says `seq`; then its success branch reads the marker (the revision the commit was
/// applied at) and writes it again, unchanged.
pub fn settle_body(marker: &[u8], seq: u64) -> Vec<u8> {
    let value = encode(seq.to_string().as_bytes());
    json!({
        "compare": [{ "key": encode(marker), "target": "VALUE", "result": "EQUAL", "value": value }],
        "success": [
            { "request_range": { "key": encode(marker) } },
            { "request_put": { "key": encode(marker), "value": value } },
        ],
        "failure": [],
    })
    .to_string()
    .into_bytes()
}

/// Several key ranges (`[start, end)`), each changed at or after `min_mod_revision`, read at one
/// revision: a transaction with no compares whose success branch is one range per pair.
pub fn multi_range_body(ranges: &[(Vec<u8>, Vec<u8>)], min_mod_revision: Option<i64>) -> Vec<u8> {
    let success: Vec<Value> = ranges
        .iter()
        .map(|(start, end)| {
            let mut r = json!({ "key": encode(start), "range_end": encode(end) });
            if let (Some(rev), Some(obj)) = (min_mod_revision, r.as_object_mut()) {
                obj.insert("min_mod_revision".into(), Value::String(rev.to_string()));
            }
            json!({ "request_range": r })
        })
        .collect();
    json!({ "compare": [], "success": success, "failure": [] }).to_string().into_bytes()
}

/// Read several keys in one round trip: a transaction with no compares whose success branch is
/// one range per key.
pub fn multi_get_body(keys: &[Vec<u8>]) -> Vec<u8> {
    let success: Vec<Value> = keys.iter().map(|k| json!({ "request_range": { "key": encode(k) } })).collect();
    json!({ "compare": [], "success": success, "failure": [] }).to_string().into_bytes()
}

pub fn parse_range(body: &[u8]) -> Result<RangeAnswer, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("etcd range answer is not JSON: {e}"))?;
    Ok(RangeAnswer { revision: revision_of(&v)?, kvs: kvs_of(&v)? })
}

pub fn parse_txn(body: &[u8]) -> Result<TxnAnswer, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("etcd txn answer is not JSON: {e}"))?;
    let succeeded = v.get("succeeded").and_then(Value::as_bool).unwrap_or(false);
    let mut ranges = Vec::new();
    for r in v.get("responses").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
        if let Some(range) = r.get("response_range") {
            ranges.push(kvs_of(range)?);
        }
    }
    Ok(TxnAnswer { succeeded, revision: revision_of(&v)?, ranges })
}

/// An error answer that refuses the request itself, as opposed to etcd being unavailable (gRPC
/// `Unavailable` 14 or `DeadlineExceeded` 4: no leader, no quorum, timed out; or a gateway 5xx
/// without a gRPC code), which says nothing about the request. The message, if so.
pub fn refusal(status: u16, body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let code = v.get("code").and_then(Value::as_i64)?;
    if matches!(code, 4 | 14) || status >= 500 && code == 0 {
        return None;
    }
    let message = v.get("message").or_else(|| v.get("error")).and_then(Value::as_str).unwrap_or("refused");
    Some(format!("{message} (HTTP {status}, gRPC code {code})"))
}

/// Envoy's own answer for a call it never sent to a member: no connection could be made (refused,
/// timed out), the circuit breaker or a refused stream turned it away, or no member is healthy.
/// Anything else that is not etcd's answer (a reset, a timeout after sending) leaves a write's
/// outcome unknown.
pub fn never_sent(status: u16, body: &[u8]) -> bool {
    const NOT_SENT: [&str; 5] = ["connection failure", "connection timeout", "overflow", "refused stream reset", "no healthy upstream"];
    let text = String::from_utf8_lossy(body);
    status == 503 && NOT_SENT.iter().any(|reason| text.contains(reason))
}

/// The first key after every key that starts with `prefix` (etcd's `range_end` for a prefix).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0] // every key
}

fn revision_of(v: &Value) -> Result<i64, String> {
    match v.get("header").and_then(|h| h.get("revision")) {
        Some(r) => int64(r).ok_or_else(|| "etcd answer: bad header.revision".to_string()),
        None => Err("etcd answer without a header".to_string()),
    }
}

fn kvs_of(v: &Value) -> Result<Vec<Kv>, String> {
    let mut out = Vec::new();
    for kv in v.get("kvs").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]) {
        let text = |field: &str| kv.get(field).and_then(Value::as_str).unwrap_or("");
        out.push(Kv {
            key: decode(text("key")).ok_or("etcd answer: a key is not base64")?,
            value: decode(text("value")).ok_or("etcd answer: a value is not base64")?,
            mod_revision: kv.get("mod_revision").and_then(int64).unwrap_or(0),
        });
    }
    Ok(out)
}

/// int64 fields come as JSON strings (proto3 JSON), sometimes as numbers.
fn int64(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4), as etcd's gateway reads and writes bytes.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk.first().copied().unwrap_or(0), chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let sextet = ((n >> (18 - 6 * i)) & 63) as usize;
                out.push(char::from(ALPHABET.get(sextet).copied().unwrap_or(b'A')));
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_rfc_4648_vectors() {
        for (plain, coded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).unwrap(), plain.as_bytes());
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&all)).unwrap(), all);
        assert_eq!(decode("a b"), None);
    }

    #[test]
    fn a_prefix_range_ends_after_its_last_key() {
        assert_eq!(prefix_end(b"miroir/v1/"), b"miroir/v10".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff"), vec![0]);
    }

    #[test]
    fn only_envoys_own_answer_for_a_call_it_could_not_make_is_never_sent() {
        let refused = b"upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: delayed connect error: Connection refused";
        assert!(never_sent(503, refused));
        assert!(never_sent(503, b"no healthy upstream"));
        let reset = b"upstream connect error or disconnect/reset before headers. reset reason: connection termination";
        assert!(!never_sent(503, reset), "a reset after sending leaves the outcome unknown");
        assert!(!never_sent(504, b"upstream request timeout"));
        assert!(!never_sent(503, br#"{"error":"etcdserver: request timed out","code":14}"#));
    }

    #[test]
    fn a_txn_answer_with_defaults_left_out_reads_as_failed_with_empty_ranges() {
        let body = br#"{"header":{"revision":"42"},"responses":[{"response_range":{"header":{}}},
            {"response_range":{"header":{},"kvs":[{"key":"aw==","mod_revision":"40","value":"djE="}],"count":"1"}}]}"#;
        let t = parse_txn(body).unwrap();
        assert!(!t.succeeded);
        assert_eq!(t.revision, 42);
        assert_eq!(t.ranges, vec![vec![], vec![Kv { key: b"k".to_vec(), value: b"v1".to_vec(), mod_revision: 40 }]]);
        assert!(parse_txn(br#"{"succeeded":true,"header":{"revision":"43"}}"#).unwrap().succeeded);
        assert!(parse_txn(br#"{"error":"etcdserver: no leader","code":14}"#).is_err(), "an error body is not an answer");
    }

    #[test]
    fn an_unavailable_etcd_is_told_from_a_refused_request() {
        assert_eq!(refusal(503, br#"{"error":"etcdserver: request timed out","code":14,"message":"etcdserver: request timed out"}"#), None);
        assert_eq!(refusal(504, br#"{"code":4,"message":"context deadline exceeded"}"#), None);
        assert_eq!(refusal(502, b"upstream connect error"), None);
        let big = refusal(400, br#"{"error":"etcdserver: request is too large","code":3,"message":"etcdserver: request is too large"}"#);
        assert!(big.is_some_and(|m| m.contains("too large")));
    }

    #[test]
    fn a_txn_body_compares_puts_and_reads_back() {
        let body = txn_body(&[Compare::ModRevision(b"a".to_vec(), 7), Compare::Absent(b"b".to_vec())], &[(b"a".to_vec(), b"x".to_vec())], &[b"a".to_vec()]);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["compare"][0], json!({"key":"YQ==","target":"MOD","result":"EQUAL","mod_revision":"7"}));
        assert_eq!(v["compare"][1]["create_revision"], "0");
        assert_eq!(v["success"][0]["request_put"], json!({"key":"YQ==","value":"eA=="}));
        assert_eq!(v["failure"][0]["request_range"]["key"], "YQ==");
        let r: Value = serde_json::from_slice(&range_body(b"p/", Some(b"p0"), Some(5))).unwrap();
        assert_eq!(r, json!({"key":"cC8=","range_end":"cDA=","min_mod_revision":"5"}));
    }
}
