//! The etcd ledger (state/etcd.rs) against an in-memory etcd behind its JSON gateway
//! (state/fake_etcd.rs), with gateways that are separate Envoys (one fake Envoy each: their own
//! shared data, their own clock) sharing one etcd. Every call to etcd is recorded by a gateway's
//! fake host and answered here from the one `FakeEtcd`, in an order the test chooses — FIFO, or
//! one call of each gateway in turn so that their transactions meet.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Value};

use super::config::Config;
use super::engine::Engine;
use super::fake_host::{new_envoy, EnvoyRef, FakeHost};
use super::front::{self, HeadersDecision};
use super::host::{Callout, Host};
use super::pending_write::BodyDecision;
use super::request::RequestHead;
use super::state::etcd::EtcdLedger;
use super::state::fake_etcd::{Fault, FakeEtcd};
use super::state::hot_cache::HotCache;
use super::state::index_store::read_hot;
use super::state::keys;
use super::state::ledger::{Answer, Freeze, Ledger, Op, OpId};
use super::metrics;
use super::state::records::{FrozenRecord, IndexRecord, JobRecord, Phase, TaskRecord};
use super::state::store::{self, StoreError};
use super::test_world::{config, SimNode};

const ETCD: &str = "etcd";
const POLL_MS: u64 = 100;
const T0: u64 = 1_700_000_000_000;
const FIRST_TASK: u64 = 2_130_706_432;

fn etcd_config(nodes: usize) -> Config {
    config(nodes, json!({"state": {"backend": "etcd", "cluster": ETCD, "poll_ms": POLL_MS}}))
}

fn new_ledger(cfg: &Config, worker: &str) -> EtcdLedger {
    EtcdLedger::new(cfg.clone(), cfg.state.etcd().expect("etcd backend").clone(), worker)
}

/// Pop the oldest etcd call `host` dispatched and has not had answered.
fn next_etcd_call(host: &mut FakeHost) -> Option<(u32, Callout)> {
    let token = host.callouts.iter().find(|(_, c)| c.cluster == ETCD).map(|(t, _)| *t)?;
    host.callouts.remove(&token).map(|c| (token, c))
}

/// One gateway at the ledger level: its own Envoy (view, clock) and its etcd ledger. It is driven
/// as the engine drives it: `tick` on every pump and after every callout answer.
struct Gateway {
    envoy: EnvoyRef,
    host: FakeHost,
    ledger: EtcdLedger,
}

impl Gateway {
    fn new(cfg: &Config) -> Gateway {
        static GATEWAYS: AtomicU64 = AtomicU64::new(0);
        let worker = format!("g{}", GATEWAYS.fetch_add(1, Ordering::Relaxed));
        let envoy = new_envoy(T0);
        Gateway { host: FakeHost::new(envoy.clone()), envoy, ledger: new_ledger(cfg, &worker) }
    }

    fn submit(&mut self, id: u64, op: Op) {
        self.ledger.submit(&mut self.host, OpId(id), op);
    }

    fn tick(&mut self) {
        self.ledger.tick(&mut self.host);
    }

    fn advance(&mut self, ms: u64) {
        self.envoy.borrow_mut().now_ms += ms;
    }

    /// Answer this gateway's oldest etcd call from `etcd`, as the root would.
    fn answer_one(&mut self, etcd: &mut FakeEtcd) -> bool {
        let Some((token, call)) = next_etcd_call(&mut self.host) else { return false };
        let resp = etcd.answer(&call);
        assert!(self.ledger.on_callout_response(&mut self.host, token, &resp), "the ledger owns its call {token}");
        self.tick();
        true
    }

    fn take(&mut self, id: u64) -> Option<Answer> {
        self.ledger.take(OpId(id))
    }

    fn view<T: super::state::from_json::FromJson>(&self, key: &str) -> Option<T> {
        store::read(&self.host, key).expect("readable view")
    }
}

#[derive(Clone, Copy)]
enum Order {
    /// Each gateway's calls answered in the order sent, one gateway after the other.
    Fifo,
    /// One call of each gateway in turn: their transactions read the same revision, then meet.
    Interleaved,
}

/// Answer etcd calls until none is left; returns how many were answered.
fn pump(etcd: &mut FakeEtcd, gateways: &mut [&mut Gateway], order: Order) -> usize {
    let mut answered = 0;
    loop {
        let mut any = false;
        for g in gateways.iter_mut() {
            let n = match order {
                Order::Interleaved => usize::from(g.answer_one(etcd)),
                Order::Fifo => std::iter::from_fn(|| g.answer_one(etcd).then_some(())).count(),
            };
            answered += n;
            any |= n > 0;
        }
        assert!(answered < 10_000, "the ledgers keep calling etcd");
        if !any {
            return answered;
        }
    }
}

fn enqueue(index: &str, body: &str) -> Op {
    let job = JobRecord {
        index: index.into(),
        method: "PATCH".into(),
        path: format!("/indexes/{index}/settings"),
        body: Some(body.into()),
        content_type: Some("application/json".into()),
        origin_worker: "w0".into(),
        enqueued_ms: T0,
        ..JobRecord::default()
    };
    Op::Enqueue { job: Box::new(job), details: json!({}) }
}

fn etcd_record<T: serde::de::DeserializeOwned>(etcd: &FakeEtcd, key: &str) -> Option<T> {
    etcd.value(key).filter(|v| !v.is_empty()).map(|v| serde_json::from_slice(&v).expect("a record in etcd"))
}

fn enqueued(answer: Option<Answer>) -> u64 {
    match answer {
        Some(Answer::Enqueued(uid)) => uid,
        other => panic!("not enqueued: {other:?}"),
    }
}

#[test]
fn two_gateways_enqueueing_at_once_on_one_index_both_get_a_place_in_uid_order() {
    let cfg = etcd_config(3);
    let mut etcd = FakeEtcd::new();
    let (mut a, mut b) = (Gateway::new(&cfg), Gateway::new(&cfg));
    a.submit(1, enqueue("m", r#"{"rankingRules":["typo"]}"#));
    b.submit(1, enqueue("m", r#"{"rankingRules":["words"]}"#));
    a.tick();
    b.tick();
    pump(&mut etcd, &mut [&mut a, &mut b], Order::Interleaved);

    let (ua, ub) = (enqueued(a.take(1)), enqueued(b.take(1)));
    assert_ne!(ua, ub, "one uid each");
    assert!(etcd.failed_compares >= 1, "the two transactions met: one read a counter the other had moved");
    let rec: IndexRecord = etcd_record(&etcd, &keys::index_key("m")).expect("index record in etcd");
    let mut uids = vec![ua, ub];
    uids.sort_unstable();
    assert_eq!(uids, vec![FIRST_TASK, FIRST_TASK + 1]);
    assert_eq!(rec.queue, uids, "both queued, in uid order");
    assert_eq!(etcd.value(keys::TASK_COUNTER_KEY), Some(b"2".to_vec()), "task counter");
    for (uid, body) in [(ua, "typo"), (ub, "words")] {
        let job: JobRecord = etcd_record(&etcd, &keys::job_key(uid)).expect("job record");
        assert!(job.body.is_some_and(|b| b.contains(body)), "uid {uid} holds its own gateway's write");
        let task: TaskRecord = etcd_record(&etcd, &keys::task_key(uid)).expect("task record");
        assert_eq!(task.status, "enqueued");
    }
    let active: Vec<String> = etcd_record(&etcd, keys::ACTIVE_KEY).expect("active list");
    assert_eq!(active, vec!["m".to_string()]);
}

#[test]
fn another_gateway_sees_a_commit_and_a_freeze_after_one_poll() {
    let cfg = etcd_config(3);
    let mut etcd = FakeEtcd::new();
    let (mut a, mut b) = (Gateway::new(&cfg), Gateway::new(&cfg));
    // Both start: their first polls find an empty etcd.
    a.tick();
    b.tick();
    pump(&mut etcd, &mut [&mut a, &mut b], Order::Fifo);

    a.submit(1, enqueue("m", "{}"));
    a.tick();
    pump(&mut etcd, &mut [&mut a], Order::Fifo);
    let uid = enqueued(a.take(1));
    let index_key = keys::index_key("m");
    let in_a: IndexRecord = a.view(&index_key).expect("a gateway's own commit is in its view at once");
    assert_eq!(in_a.queue, vec![uid]);

    // B before its next poll is due: nothing asked of etcd, nothing in its view.
    b.tick();
    assert_eq!(pump(&mut etcd, &mut [&mut b], Order::Fifo), 0);
    assert_eq!(b.view::<IndexRecord>(&index_key), None);
    assert_eq!(b.host.shared_get(&keys::hot_key("m")).unwrap().0, None);

    a.advance(POLL_MS);
    b.advance(POLL_MS);
    b.tick();
    assert_eq!(pump(&mut etcd, &mut [&mut b], Order::Fifo), 2, "one poll: the generation key, then what changed");
    assert_eq!(b.view::<IndexRecord>(&index_key), Some(in_a.clone()), "B's view has A's commit");
    assert_eq!(b.host.shared_get(&keys::hot_key("m")).unwrap().0, a.host.shared_get(&keys::hot_key("m")).unwrap().0, "and its hot key");
    assert_eq!(b.view::<TaskRecord>(&keys::task_key(uid)).map(|t| t.status), Some("enqueued".into()));
    assert!(etcd_record::<JobRecord>(&etcd, &keys::job_key(uid)).is_some(), "the job is in etcd");
    for g in [&a, &b] {
        assert_eq!(g.view::<JobRecord>(&keys::job_key(uid)), None, "a job's body and credentials stay out of every view");
    }

    // A freeze recorded through A (the drift check's: no job).
    let record = FrozenRecord { reason: "drift".into(), nodes: vec!["node-1".into()], at_ms: T0, ..FrozenRecord::default() };
    a.submit(2, Op::Freeze(Freeze { index: "m".into(), record: record.clone(), job: None }));
    a.tick();
    pump(&mut etcd, &mut [&mut a], Order::Fifo);
    assert!(matches!(a.take(2), Some(Answer::Done)));
    assert!(read_hot(&a.host, "m").frozen);
    assert!(!read_hot(&b.host, "m").frozen, "not before B polls");
    let b_front_door = HotCache::default();
    assert!(!b_front_door.read(&b.host, "m").frozen);

    a.advance(POLL_MS);
    b.advance(POLL_MS);
    b.tick();
    assert_eq!(pump(&mut etcd, &mut [&mut b], Order::Fifo), 2);
    let hot = b_front_door.read(&b.host, "m");
    assert!(hot.frozen && hot.inconsistent, "B's front door sees the freeze: {hot:?}");
    assert_eq!(b.view::<IndexRecord>(&index_key).and_then(|r| r.frozen), Some(record));
    let gauges = |g: &Gateway| {
        let envoy = g.envoy.borrow();
        let gauge = |name: &str| envoy.gauges.get(&metrics::for_index(name, "m")).copied();
        (gauge(metrics::DIVERGENCE), gauge(metrics::BROADCAST_PHASE))
    };
    assert_eq!(gauges(&b), (Some(1), Some(Phase::Frozen.gauge())), "B's alert is raised too");

    // An operator lifts it through A: B's alert goes down with its next poll.
    a.submit(3, Op::LiftFreeze { index: "m".into() });
    a.tick();
    pump(&mut etcd, &mut [&mut a], Order::Fifo);
    a.advance(POLL_MS);
    b.advance(POLL_MS);
    b.tick();
    pump(&mut etcd, &mut [&mut b], Order::Fifo);
    assert!(!read_hot(&b.host, "m").frozen);
    assert_eq!(gauges(&b), (Some(0), Some(Phase::Idle.gauge())), "B's alert is cleared");
}

#[test]
fn with_etcd_down_or_without_quorum_writes_fail_as_unavailable_and_come_back_by_themselves() {
    let cfg = etcd_config(3);
    for fault in [Fault::Down, Fault::NoQuorum] {
        let mut etcd = FakeEtcd::new();
        etcd.fault = fault;
        let mut g = Gateway::new(&cfg);
        g.submit(1, enqueue("m", "{}"));
        // Tried again with a backoff for as long as an election may take, then refused.
        let mut waited = 0;
        let answer = loop {
            g.tick();
            pump(&mut etcd, &mut [&mut g], Order::Fifo);
            if let Some(answer) = g.take(1) {
                break answer;
            }
            assert!(waited < 10_000, "{fault:?}: never answered");
            g.advance(50);
            waited += 50;
        };
        assert!(matches!(answer, Answer::Failed(StoreError::Unavailable(_))), "{fault:?}: {answer:?}");
        assert!((2_000..3_000).contains(&waited), "{fault:?}: refused after {waited} ms");
        assert!(g.ledger.unavailable(), "{fault:?}");
        // Once etcd is down, a write is refused at once, without a call.
        let calls = etcd.calls.len();
        g.submit(3, enqueue("m", "{}"));
        g.tick();
        assert!(matches!(g.take(3), Some(Answer::Failed(StoreError::Unavailable(_)))), "{fault:?}");
        assert_eq!(etcd.calls.len(), calls, "{fault:?}: a refused write was sent");
        assert_eq!(etcd.revision(), 1, "{fault:?}: nothing written");

        // etcd answers again: the same ledger, no restart. The next poll finds it back.
        etcd.fault = Fault::Up;
        g.advance(POLL_MS);
        g.tick();
        pump(&mut etcd, &mut [&mut g], Order::Fifo);
        assert!(!g.ledger.unavailable(), "{fault:?}");
        g.submit(2, enqueue("m", "{}"));
        g.tick();
        pump(&mut etcd, &mut [&mut g], Order::Fifo);
        let uid = enqueued(g.take(2));
        assert!(!g.ledger.unavailable(), "{fault:?}");
        let rec: IndexRecord = etcd_record(&etcd, &keys::index_key("m")).expect("index record");
        assert_eq!(rec.queue, vec![uid], "{fault:?}");
        // The polls come back too.
        g.advance(POLL_MS);
        g.tick();
        assert_eq!(pump(&mut etcd, &mut [&mut g], Order::Fifo), 2, "{fault:?}: a full poll");
        assert!(!g.ledger.unavailable(), "{fault:?}");
    }
}

/// Tick and answer `g`'s calls every 50 ms of its clock until `id` is answered (None after
/// `within_ms`).
fn answer_within(etcd: &mut FakeEtcd, g: &mut Gateway, id: u64, within_ms: u64) -> Option<Answer> {
    let mut waited = 0;
    loop {
        g.tick();
        pump(etcd, &mut [&mut *g], Order::Fifo);
        if let Some(answer) = g.take(id) {
            return Some(answer);
        }
        if waited >= within_ms {
            return None;
        }
        g.advance(50);
        waited += 50;
    }
}

/// A gateway and its etcd after one write to index `m` (its snapshot and view warm); the write's uid.
fn after_one_write() -> (FakeEtcd, Gateway, u64) {
    let mut etcd = FakeEtcd::new();
    let mut g = Gateway::new(&etcd_config(3));
    g.submit(1, enqueue("m", "{}"));
    let uid = enqueued(answer_within(&mut etcd, &mut g, 1, 0));
    (etcd, g, uid)
}

#[test]
fn a_write_whose_answer_was_lost_is_answered_as_applied_and_queued_once() {
    let (mut etcd, mut g, first) = after_one_write();
    // etcd applies the next write, but its answer comes after the call timed out.
    etcd.lose_next_write_answer = true;
    g.submit(2, enqueue("m", r#"{"stopWords":["a"]}"#));
    let second = enqueued(answer_within(&mut etcd, &mut g, 2, 5_000));
    assert_eq!(second, first + 1);
    let rec: IndexRecord = etcd_record(&etcd, &keys::index_key("m")).expect("index record");
    assert_eq!(rec.queue, vec![first, second], "the write is queued once, not again on a blind retry");
    assert_eq!(etcd_record::<u64>(&etcd, keys::TASK_COUNTER_KEY), Some(second - FIRST_TASK + 1), "two uids spent, not three");
}

#[test]
fn a_write_taken_by_a_leader_without_quorum_is_held_until_etcd_says_whether_it_took_effect() {
    for reelected in [true, false] {
        let (mut etcd, mut g, first) = after_one_write();

        // The leader loses its quorum with this write in its log: the call times out, and
        // whether the write ever takes effect depends on the next election. It is neither
        // refused (it could take effect later) nor retried blind (it could be queued twice).
        etcd.fault = Fault::LeaderAlone;
        g.submit(2, enqueue("m", r#"{"stopWords":["held"]}"#));
        let early = answer_within(&mut etcd, &mut g, 2, 10_000);
        assert!(early.is_none(), "reelected {reelected}: answered {early:?} while etcd cannot say");
        assert!(g.ledger.unavailable(), "reelected {reelected}");
        assert!(!etcd.uncommitted.is_empty());
        // A write that comes while etcd is down is refused at once, and never sent.
        let sent = etcd.uncommitted.len();
        g.submit(3, enqueue("m", r#"{"stopWords":["refused"]}"#));
        g.tick();
        assert!(matches!(g.take(3), Some(Answer::Failed(StoreError::Unavailable(_)))), "reelected {reelected}");
        pump(&mut etcd, &mut [&mut g], Order::Fifo);
        let refused_sent = etcd.uncommitted.iter().any(|t| t.to_string().contains(&encode_b64("refused")));
        assert!(!refused_sent && etcd.uncommitted.len() <= sent + 1, "reelected {reelected}: a refused write reached etcd");

        // The quorum is back: the held write gets its true outcome. Kept by the leader, it took
        // effect as it was; dropped, it runs again now. Either way it is queued exactly once.
        etcd.regain_quorum(reelected);
        let second = enqueued(answer_within(&mut etcd, &mut g, 2, 5_000));
        assert_eq!(second, first + 1, "reelected {reelected}");
        let rec: IndexRecord = etcd_record(&etcd, &keys::index_key("m")).expect("index record");
        assert_eq!(rec.queue, vec![first, second], "reelected {reelected}");
        g.advance(POLL_MS);
        g.tick();
        pump(&mut etcd, &mut [&mut g], Order::Fifo);
        assert!(!g.ledger.unavailable(), "reelected {reelected}");
    }
}

#[test]
fn a_commit_envoy_could_not_send_runs_again_at_once_without_a_settle() {
    let (mut etcd, mut g, first) = after_one_write();
    // The member Envoy picks for the commit is not listening: nothing was sent, nothing to settle.
    let before = etcd.calls.len();
    etcd.refuse_connections = 1;
    g.submit(2, enqueue("m", r#"{"stopWords":["a"]}"#));
    let second = enqueued(answer_within(&mut etcd, &mut g, 2, 1_000));
    assert_eq!(second, first + 1);
    let settles = etcd.calls[before..].iter().filter(|(_, body)| String::from_utf8_lossy(body).contains(r#""target":"VALUE""#)).count();
    assert_eq!(settles, 0, "a call Envoy never sent is not in doubt");
    let rec: IndexRecord = etcd_record(&etcd, &keys::index_key("m")).expect("index record");
    assert_eq!(rec.queue, vec![first, second]);
}

#[test]
fn an_answer_older_than_what_a_poll_brought_never_rolls_the_view_back() {
    let (mut etcd, mut b, _) = after_one_write();
    // Another gateway moves the task counter: B's next transaction meets it and reads it back...
    etcd.put(keys::TASK_COUNTER_KEY.as_bytes(), b"100");
    b.submit(2, enqueue("m", r#"{"stopWords":["a"]}"#));
    b.tick();
    let (token, call) = next_etcd_call(&mut b.host).expect("B's transaction");
    let stale = etcd.answer(&call);
    // ...but before that answer reaches B, the counter moves again and B's poll brings the newer value.
    etcd.put(keys::TASK_COUNTER_KEY.as_bytes(), b"200");
    b.advance(POLL_MS);
    b.tick();
    assert!(b.answer_one(&mut etcd) && b.answer_one(&mut etcd), "a full poll");
    assert_eq!(b.view::<u64>(keys::TASK_COUNTER_KEY), Some(200));
    assert!(b.ledger.on_callout_response(&mut b.host, token, &stale));
    assert_eq!(b.view::<u64>(keys::TASK_COUNTER_KEY), Some(200), "the older answer did not take the newer value's place");
    // The operation runs again on what is newest, and takes the next uid after it.
    b.tick();
    pump(&mut etcd, &mut [&mut b], Order::Fifo);
    assert_eq!(enqueued(b.take(2)), FIRST_TASK + 200);
}

/// How a value is spelled in an etcd request body.
fn encode_b64(text: &str) -> String {
    super::state::etcd_wire::encode(text.as_bytes())
}

// ----- the engine on the etcd ledger -----

/// One gateway with its engine (whose ledger is an `EtcdLedger`).
struct EngineGateway {
    envoy: EnvoyRef,
    host: FakeHost,
    engine: Engine,
}

impl EngineGateway {
    fn new(cfg: &Config, worker: &str) -> EngineGateway {
        let envoy = new_envoy(T0);
        let mut host = FakeHost::new(envoy.clone());
        let engine = Engine::with_ledger(cfg.clone(), worker.to_string(), Box::new(new_ledger(cfg, worker)));
        engine.seed(&mut host);
        EngineGateway { envoy, host, engine }
    }

    /// A client's settings write (as `test_world::World::send`).
    fn send(&mut self, ctx: u32, method: &str, path: &str, body: Value) {
        let head = RequestHead { method: method.into(), path: path.into(), authorization: Some("Bearer client".into()), ..RequestHead::default() };
        let pending = match front::on_headers(&self.engine, &mut self.host, &head) {
            HeadersDecision::Buffer(p) => p,
            other => panic!("not buffered: {other:?}"),
        };
        match front::on_write_body(&mut self.engine, &mut self.host, ctx, &pending, body.to_string().as_bytes()) {
            BodyDecision::Wait { .. } => {}
            BodyDecision::Reply(r) => self.host.replies.push((ctx, r)),
        }
    }

    fn reply(&self, ctx: u32) -> Option<(u16, Value)> {
        self.host.replies.iter().find(|(c, _)| *c == ctx).map(|(_, r)| (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null)))
    }
}

/// `rounds` times: pump each of `which` and answer its calls (etcd's from the fake etcd, the
/// nodes' from the simulated nodes) until it has none left; then `step_ms` pass on every
/// gateway's clock.
fn run(etcd: &mut FakeEtcd, nodes: &mut [SimNode], gateways: &mut [EngineGateway], which: &[usize], rounds: usize, step_ms: u64) {
    for _ in 0..rounds {
        for &w in which {
            let g = &mut gateways[w];
            g.engine.pump(&mut g.host);
            for _ in 0..500 {
                let pending: Vec<(u32, Callout)> = std::mem::take(&mut g.host.callouts).into_iter().collect();
                if pending.is_empty() {
                    break;
                }
                for (token, call) in pending {
                    let resp = if call.cluster == ETCD {
                        etcd.answer(&call)
                    } else {
                        let node: usize = call.cluster.trim_start_matches("meili_node_").parse().expect("a node cluster");
                        nodes[node].answer(&call)
                    };
                    g.engine.on_callout_response(&mut g.host, token, resp);
                }
            }
        }
        for g in gateways.iter() {
            g.envoy.borrow_mut().now_ms += step_ms;
        }
    }
}

/// One etcd, three nodes, and gateways A and B started on them (their first polls done).
fn two_started_gateways() -> (FakeEtcd, Vec<SimNode>, Vec<EngineGateway>) {
    let cfg = etcd_config(3);
    let mut etcd = FakeEtcd::new();
    let mut nodes = vec![SimNode::new(); 3];
    let mut gws = vec![EngineGateway::new(&cfg, "a0"), EngineGateway::new(&cfg, "b0")];
    run(&mut etcd, &mut nodes, &mut gws, &[0, 1], 2, 10);
    (etcd, nodes, gws)
}

#[test]
fn a_write_through_one_gateway_commits_in_etcd_and_the_other_sees_its_version_after_a_poll() {
    let (mut etcd, mut nodes, mut gws) = two_started_gateways();

    gws[0].send(77, "PATCH", "/indexes/m/settings", json!({"rankingRules": ["typo"]}));
    run(&mut etcd, &mut nodes, &mut gws, &[0], 40, 10);
    assert_eq!(gws[0].reply(77).map(|r| r.0), Some(202), "{:?}", gws[0].reply(77));
    for n in &nodes {
        assert_eq!(n.settings["rankingRules"], json!(["typo"]));
    }
    let rec: IndexRecord = etcd_record(&etcd, &keys::index_key("m")).expect("index record in etcd");
    assert_eq!((rec.version, rec.queue.len(), rec.lease.is_none()), (1, 0, true), "committed in etcd: {rec:?}");
    let task: TaskRecord = etcd_record(&etcd, &keys::task_key(FIRST_TASK)).expect("task in etcd");
    assert_eq!(task.status, "succeeded");
    assert_eq!(read_hot(&gws[0].host, "m").version, 1, "A's view at once");
    assert_eq!(read_hot(&gws[1].host, "m").version, 0, "B has not polled since");

    // B's next pump polls (its clock moved past poll_ms while A ran).
    run(&mut etcd, &mut nodes, &mut gws, &[1], 1, 10);
    assert_eq!(read_hot(&gws[1].host, "m").version, 1, "B's front door stamps version 1");
    let in_b: Option<IndexRecord> = store::read(&gws[1].host, &keys::index_key("m")).expect("readable");
    assert_eq!(in_b.map(|r| r.version), Some(1));
}

#[test]
fn writes_through_two_gateways_at_once_on_one_index_both_commit_one_after_the_other() {
    let (mut etcd, mut nodes, mut gws) = two_started_gateways();
    gws[0].send(71, "PATCH", "/indexes/m/settings", json!({"rankingRules": ["typo"]}));
    gws[1].send(72, "PATCH", "/indexes/m/settings", json!({"stopWords": ["the"]}));
    run(&mut etcd, &mut nodes, &mut gws, &[0, 1], 80, 10);
    assert_eq!(gws[0].reply(71).map(|r| r.0), Some(202), "{:?}", gws[0].reply(71));
    assert_eq!(gws[1].reply(72).map(|r| r.0), Some(202), "{:?}", gws[1].reply(72));
    for n in &nodes {
        assert_eq!((n.settings["rankingRules"].clone(), n.settings["stopWords"].clone()), (json!(["typo"]), json!(["the"])));
    }
    let rec: IndexRecord = etcd_record(&etcd, &keys::index_key("m")).expect("index record in etcd");
    assert_eq!((rec.version, rec.queue.len(), rec.lease.is_none(), rec.frozen.is_none()), (2, 0, true, true), "{rec:?}");
    for uid in [FIRST_TASK, FIRST_TASK + 1] {
        let task: TaskRecord = etcd_record(&etcd, &keys::task_key(uid)).expect("task in etcd");
        assert_eq!(task.status, "succeeded", "task {uid}");
    }
    for g in &gws {
        assert_eq!(read_hot(&g.host, "m").version, 2, "both views at version 2");
    }
}

// ----- limits of etcd: requests it refuses -----

/// etcd refuses a transaction with more than 128 compares or operations per branch
/// (`--max-txn-ops`, default 128; v3rpc/key.go checkTxnRequest). `serve_waiters` reads the task
/// of every paused client in one `Op::ReadTasks`, so a gateway with more than 128 clients
/// waiting sends a transaction etcd refuses (400); the ledger takes that answer for an
/// unreachable etcd: it fails the read and every operation queued behind it as `Unavailable`
/// and reports etcd down.
#[test]
fn more_reads_than_etcds_txn_limit_are_still_answered() {
    let cfg = etcd_config(3);
    let mut etcd = FakeEtcd::new();
    let mut g = Gateway::new(&cfg);
    let mut uids = Vec::new();
    for i in 0..130 {
        g.submit(i, enqueue(&format!("i{i}"), "{}"));
        g.tick();
        pump(&mut etcd, &mut [&mut g], Order::Fifo);
        uids.push(enqueued(g.take(i)));
    }
    g.submit(1000, Op::ReadTasks { uids: uids.clone() });
    g.submit(1001, enqueue("m", "{}"));
    g.tick();
    pump(&mut etcd, &mut [&mut g], Order::Fifo);
    match g.take(1000) {
        Some(Answer::Tasks(tasks)) => assert_eq!(tasks.iter().flatten().count(), 130),
        other => panic!("the tasks of 130 waiting clients: {other:?}"),
    }
    enqueued(g.take(1001));
    assert!(!g.ledger.unavailable(), "etcd answered every call: it is not down");
}

/// A settings body may be up to `max_body_bytes` (10 MiB by default) and its job record holds
/// it, but etcd refuses a request over `--max-request-bytes` (1.5 MiB by default) with 400
/// `etcdserver: request is too large`. The ledger takes that for an unreachable etcd: it retries
/// the same request, then fails it and every operation queued behind it as `Unavailable`, and
/// reports etcd down, so other clients' writes get 503 while etcd is fine.
#[test]
fn a_write_too_large_for_etcd_fails_alone() {
    let cfg = etcd_config(3);
    let mut etcd = FakeEtcd::new();
    let mut g = Gateway::new(&cfg);
    let big = format!(r#"{{"stopWords":["{}"]}}"#, "w".repeat(1_600_000));
    g.submit(1, enqueue("big", &big));
    g.submit(2, enqueue("m", "{}"));
    g.tick();
    pump(&mut etcd, &mut [&mut g], Order::Fifo);
    assert!(matches!(g.take(1), Some(Answer::Failed(_))), "etcd cannot hold it");
    let calls_for_big = etcd.calls.iter().filter(|(_, body)| body.len() > 1_000_000).count();
    enqueued(g.take(2));
    assert!(!g.ledger.unavailable(), "etcd answered every call: it is not down");
    assert_eq!(calls_for_big, 1, "a request etcd refuses as invalid is not sent again");
}

#[test]
fn a_task_queued_on_one_gateway_is_answered_by_another_before_its_next_poll() {
    let (mut etcd, mut nodes, mut gws) = two_started_gateways();

    gws[0].send(77, "PATCH", "/indexes/m/settings", json!({"rankingRules": ["typo"]}));
    run(&mut etcd, &mut nodes, &mut gws, &[0], 1, 0);
    // B polled just now: its view does not hold the task. Its front door does not answer
    // `task_not_found`; it waits for a refresh and answers from it.
    let head = RequestHead { method: "GET".into(), path: format!("/tasks/{FIRST_TASK}"), authorization: Some("Bearer client".into()), ..RequestHead::default() };
    let g = &mut gws[1];
    assert!(store::read::<TaskRecord>(&g.host, &keys::task_key(FIRST_TASK)).expect("readable").is_none());
    match front::on_headers(&g.engine, &mut g.host, &head) {
        HeadersDecision::TaskAfterRefresh { task_uid, authorization } => {
            assert!(g.engine.task_after_refresh(&mut g.host, 5, task_uid, authorization));
        }
        other => panic!("answered from a view that lacks the task: {other:?}"),
    }
    assert!(g.reply(5).is_none(), "not before the refresh");
    run(&mut etcd, &mut nodes, &mut gws, &[1], 1, 0);
    let (status, body) = gws[1].reply(5).expect("answered after the refresh");
    assert_eq!((status, body["uid"].as_u64()), (200, Some(FIRST_TASK)), "{body}");

    // etcd down: the refresh fails, and the read says so rather than `task_not_found`.
    etcd.fault = Fault::Down;
    let g = &mut gws[1];
    let missing = FIRST_TASK + 50;
    assert!(g.engine.task_after_refresh(&mut g.host, 6, missing, Some("Bearer client".into())));
    run(&mut etcd, &mut nodes, &mut gws, &[1], 1, 0);
    let (status, body) = gws[1].reply(6).expect("answered");
    assert_eq!((status, body["code"].as_str()), (503, Some("miroir_state_unavailable")), "{body}");
}
