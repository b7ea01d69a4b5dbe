//! The simulated world the engine tests run in: Meilisearch nodes reduced to what the engine
//! sees, worker VMs on one fake Envoy, and a client sending writes. Shared by the tests with
//! answers at once (engine_tests.rs) and with ledger answers delayed and reordered
//! (engine_delayed_tests.rs).

use serde_json::{json, Map, Value};

use super::config::Config;
use super::engine::Engine;
use super::fake_host::{new_envoy, EnvoyRef, FakeHost};
use super::front::{self, HeadersDecision};
use super::pending_write::BodyDecision;
use super::request::RequestHead;
use super::host::{Callout, CalloutResponse, Wake};
use super::proposal::default_settings;
use super::state::keys;
use super::state::records::{IndexRecord, TaskRecord};
use super::state::by_callout::{CalloutLedger, LEDGER_CLUSTER};
use super::state::delayed::{DelayedLedger, Order, Release};
use super::state::store;

/// A Meilisearch node reduced to what the engine sees: settings, tasks, and faults.
#[derive(Default, Clone)]
pub struct SimNode {
    /// The one index this node holds, if any (tests use one index each).
    pub index: Option<String>,
    pub settings: Map<String, Value>,
    pub next_task: u64,
    /// task uid → the patch it applies (None: the task fails)
    pub tasks: Vec<(u64, Option<Map<String, Value>>)>,
    pub drop_updates: u32,
    pub different: Option<(String, Value)>,
    pub reject: Option<(u16, String)>,
    pub down: bool,
    /// Every request answered 500 (the node is up but broken).
    pub broken: bool,
    /// Task polls answered 404 (the node cleaned its tasks up).
    pub forgets_tasks: bool,
    /// Further indexes it lists and holds with default settings (drift-check tests).
    pub others: Vec<String>,
    pub fail_tasks: Option<Value>,
    /// Settings reads without the node key are refused (a client key scoped to updates only).
    pub reads_need_node_key: bool,
    /// Mirror mode: documents applied, and the uids of finished tasks.
    pub documents: u64,
    pub done: Vec<u64>,
}

impl SimNode {
    pub fn new() -> SimNode {
        SimNode { settings: default_settings().clone(), ..SimNode::default() }
    }

    /// Apply a finished task (None: it failed): a settings patch, or `{"__documents": n}` for a
    /// document addition (mirror mode).
    fn apply(&mut self, patch: Option<Map<String, Value>>) {
        let Some(patch) = patch else { return };
        if let Some(n) = patch.get("__documents").and_then(Value::as_u64) {
            self.documents += n;
            return;
        }
        if self.drop_updates > 0 {
            self.drop_updates -= 1;
            return;
        }
        for (k, v) in patch {
            let v = if v.is_null() { default_settings().get(&k).cloned().unwrap_or(Value::Null) } else { v };
            self.settings.insert(k, v);
        }
        if let Some((k, v)) = &self.different {
            self.settings.insert(k.clone(), v.clone());
        }
    }

    pub fn answer(&mut self, call: &Callout) -> CalloutResponse {
        if self.down {
            return CalloutResponse { status: None, body: vec![] };
        }
        let ok = |status: u16, v: Value| CalloutResponse { status: Some(status), body: v.to_string().into_bytes() };
        // Mirror mode: document additions, and the task pages that follow them.
        if call.path.ends_with("/documents") && call.method == "POST" {
            let n = call.body.as_ref().and_then(|b| serde_json::from_slice::<Value>(b).ok()).and_then(|v| v.as_array().map(Vec::len)).unwrap_or(0);
            let uid = self.next_task;
            self.next_task += 1;
            self.tasks.push((uid, Some([("__documents".to_string(), json!(n))].into_iter().collect())));
            return ok(202, json!({"taskUid": uid, "type": "documentAdditionOrUpdate", "status": "enqueued"}));
        }
        if call.method == "GET" && call.path.starts_with("/tasks?uids=") {
            let list = call.path.trim_start_matches("/tasks?uids=").split('&').next().unwrap_or_default();
            let mut results = Vec::new();
            for uid in list.split(',').filter_map(|u| u.parse::<u64>().ok()) {
                if let Some(pos) = self.tasks.iter().position(|(u, _)| *u == uid) {
                    for (done, patch) in self.tasks.drain(..=pos).collect::<Vec<_>>() {
                        self.apply(patch);
                        self.done.push(done);
                    }
                }
                if self.done.contains(&uid) {
                    results.push(json!({"uid": uid, "status": "succeeded", "details": {"receivedDocuments": 1}}));
                }
            }
            return ok(200, json!({"results": results}));
        }
        if self.broken {
            return ok(500, json!({"message": "boom", "code": "internal", "type": "internal", "link": "x"}));
        }
        if call.method == "GET" && call.path.starts_with("/tasks/") && self.forgets_tasks {
            return ok(404, json!({"code": "task_not_found"}));
        }
        if call.method == "GET" && call.path.starts_with("/tasks/") {
            let uid: u64 = call.path.trim_start_matches("/tasks/").parse().unwrap();
            let Some(pos) = self.tasks.iter().position(|(u, _)| *u == uid) else {
                return ok(404, json!({"code": "task_not_found"}));
            };
            // A node runs its tasks in order: the ones before the polled one are done first.
            for (_, earlier) in self.tasks.drain(..pos).collect::<Vec<_>>() {
                self.apply(earlier);
            }
            let (_, patch) = self.tasks.remove(0);
            return match patch {
                None => ok(200, json!({"uid": uid, "status": "failed", "error": self.fail_tasks.clone()})),
                Some(patch) => {
                    self.apply(Some(patch));
                    ok(200, json!({"uid": uid, "status": "succeeded", "details": {}}))
                }
            };
        }
        if call.method == "GET" && call.path.starts_with("/indexes?") {
            let results: Vec<Value> = self.index.iter().chain(self.others.iter()).map(|u| json!({"uid": u})).collect();
            return ok(200, json!({"results": results}));
        }
        // A task cancelation or deletion: a task of its own, which succeeds.
        if call.path.starts_with("/tasks/cancel?") || (call.method == "DELETE" && call.path.starts_with("/tasks?")) {
            if let Some((status, body)) = &self.reject {
                return CalloutResponse { status: Some(*status), body: body.clone().into_bytes() };
            }
            let uid = self.next_task;
            self.next_task += 1;
            self.tasks.push((uid, Some(Map::new())));
            let kind = if call.method == "DELETE" { "taskDeletion" } else { "taskCancelation" };
            return ok(202, json!({"taskUid": uid, "type": kind, "status": "enqueued"}));
        }
        let uid = call.path.trim_start_matches("/indexes/").split('/').next().unwrap_or_default().to_string();
        if call.method == "GET" && self.others.contains(&uid) {
            return ok(200, Value::Object(default_settings().clone()));
        }
        if call.method == "GET" {
            let node_key = call.headers.iter().any(|(k, v)| k == "authorization" && v == "Bearer node-key");
            if self.reads_need_node_key && !node_key {
                return ok(403, json!({"message": "The provided API key is invalid.", "code": "invalid_api_key", "type": "auth", "link": "x"}));
            }
            if self.index.as_deref() != Some(uid.as_str()) {
                return ok(404, json!({"code": "index_not_found"}));
            }
            return ok(200, Value::Object(self.settings.clone()));
        }
        self.index = Some(uid);
        if let Some((status, body)) = &self.reject {
            return CalloutResponse { status: Some(*status), body: body.clone().into_bytes() };
        }
        let body: Value = call.body.as_ref().map(|b| serde_json::from_slice(b).unwrap()).unwrap_or(Value::Null);
        let sub = call.path.split("/settings/").nth(1).and_then(super::route::setting_route_by_segment);
        let patch = match (sub, call.method.as_str()) {
            (Some(r), "DELETE") => [(r.key.to_string(), Value::Null)].into_iter().collect(),
            (Some(r), _) => [(r.key.to_string(), body)].into_iter().collect(),
            (None, "DELETE") => default_settings().keys().map(|k| (k.clone(), Value::Null)).collect(),
            (None, _) => body.as_object().cloned().unwrap(),
        };
        let uid = self.next_task;
        self.next_task += 1;
        self.tasks.push((uid, if self.fail_tasks.is_some() { None } else { Some(patch) }));
        ok(202, json!({"taskUid": uid}))
    }
}

pub struct Worker {
    pub engine: Engine,
    pub host: FakeHost,
    /// The test's hold on this worker's ledger answers, when they are delayed.
    pub release: Option<Release>,
}

pub struct World {
    pub envoy: EnvoyRef,
    pub nodes: Vec<SimNode>,
    pub workers: Vec<Worker>,
    pub cfg: Config,
    pub next_ctx: u32,
    /// Most settings reads one node had outstanding at once, over every `run`.
    pub max_reads_in_flight: usize,
    /// Ledger answers held and let go in this order (None: every answer at once).
    pub delayed: Option<Order>,
    /// Ledger answers come back as callout answers (state/by_callout.rs).
    pub by_callout: bool,
    releases: u64,
    /// Most ledger answers let go at once, over every `run`: above 1, their order was chosen.
    pub most_released_at_once: usize,
}

pub fn config(nodes: usize, extra: Value) -> Config {
    let mut cfg = json!({
        "nodes": (0..nodes).map(|i| json!({"id": format!("node-{i}"), "cluster": format!("meili_node_{i}"), "authority": "n"})).collect::<Vec<_>>(),
        "settings_broadcast": {"repair_backoff_base_ms": 100, "max_repair_retries": 2},
        // The settings broadcast on its own (a node that does not answer is repaired, then
        // frozen); tests of mirror mode ask for it.
        "writes": "passthrough",
    });
    if let (Some(c), Some(e)) = (cfg.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    Config::parse(cfg.to_string().as_bytes()).unwrap()
}

impl World {
    pub fn new(nodes: usize, workers: usize, extra: Value) -> World {
        let envoy = new_envoy(1_700_000_000_000);
        let cfg = config(nodes, extra);
        let mut w = World { envoy: envoy.clone(), nodes: vec![SimNode::new(); nodes], workers: vec![], cfg, next_ctx: 10, max_reads_in_flight: 0, delayed: None, by_callout: false, releases: 0, most_released_at_once: 0 };
        for i in 0..workers {
            w.add_worker(&format!("w{i}"));
        }
        w
    }

    /// A world whose workers' ledgers hold every answer until `run` lets them go, in `order`.
    pub fn delayed(nodes: usize, workers: usize, extra: Value, order: Order) -> World {
        let mut w = World::new(nodes, 0, extra);
        w.delayed = Some(order);
        for i in 0..workers {
            w.add_worker(&format!("w{i}"));
        }
        w
    }

    /// A world whose workers' ledgers answer through callouts, like an external store.
    pub fn by_callout(nodes: usize, workers: usize, extra: Value) -> World {
        let mut w = World::new(nodes, 0, extra);
        w.by_callout = true;
        for i in 0..workers {
            w.add_worker(&format!("w{i}"));
        }
        w
    }

    pub fn add_worker(&mut self, id: &str) {
        let (engine, release) = match self.delayed {
            None if self.by_callout => {
                let ledger = Box::new(CalloutLedger::new(self.cfg.clone()));
                (Engine::with_ledger(self.cfg.clone(), id.to_string(), ledger), None)
            }
            None => (Engine::new(self.cfg.clone(), id.to_string()), None),
            Some(_) => {
                let (ledger, release) = DelayedLedger::new(self.cfg.clone());
                (Engine::with_ledger(self.cfg.clone(), id.to_string(), Box::new(ledger)), Some(release))
            }
        };
        let mut host = FakeHost::new(self.envoy.clone());
        engine.seed(&mut host);
        self.workers.push(Worker { engine, host, release });
    }

    /// Let worker `w`'s held ledger answers go and the engine continue from them. Returns how
    /// many there were. A shuffled order takes a new permutation each time.
    pub fn release(&mut self, w: usize) -> usize {
        let (Some(order), Some(worker)) = (self.delayed, self.workers.get_mut(w)) else { return 0 };
        let Some(release) = worker.release.as_ref() else { return 0 };
        self.releases += 1;
        let order = match order {
            Order::Shuffled(seed) => Order::Shuffled(seed.wrapping_add(self.releases)),
            other => other,
        };
        let n = release.release(order);
        self.most_released_at_once = self.most_released_at_once.max(n);
        if n > 0 {
            worker.engine.on_ledger_answers(&mut worker.host);
        }
        n
    }

    /// A client sends a settings write to worker `w`; returns the HTTP context id.
    pub fn send(&mut self, w: usize, method: &str, path: &str, body: Option<Value>) -> u32 {
        self.next_ctx += 1;
        let ctx = self.next_ctx;
        let worker = &mut self.workers[w];
        let head = RequestHead { method: method.into(), path: path.into(), authorization: Some("Bearer client".into()), ..RequestHead::default() };
        let pending = match front::on_headers(&worker.engine, &mut worker.host, &head) {
            HeadersDecision::Buffer(p) => p,
            other => panic!("not buffered: {other:?}"),
        };
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        match front::on_write_body(&mut worker.engine, &mut worker.host, ctx, &pending, &bytes) {
            BodyDecision::Wait { .. } => {}
            BodyDecision::Reply(r) => worker.host.replies.push((ctx, r)),
        }
        ctx
    }

    /// Pump worker `w` once and answer what it sent the nodes, once, with nothing further let
    /// through: one step of a job. Returns the calls it answered.
    pub fn pump_and_answer(&mut self, w: usize) -> Vec<Callout> {
        let worker = &mut self.workers[w];
        worker.engine.pump(&mut worker.host);
        let calls: Vec<(u32, Callout)> = std::mem::take(&mut worker.host.callouts).into_iter().collect();
        let mut answered = Vec::new();
        for (token, call) in calls {
            let node: usize = call.cluster.trim_start_matches("meili_node_").parse().unwrap();
            let resp = self.nodes[node].answer(&call);
            let worker = &mut self.workers[w];
            worker.engine.on_callout_response(&mut worker.host, token, resp);
            answered.push(call);
        }
        answered
    }

    /// Answer every outstanding callout of every worker from the simulated nodes, then let
    /// `step_ms` pass and tick every worker; `rounds` times.
    pub fn run(&mut self, rounds: usize, step_ms: u64) {
        for _ in 0..rounds {
            for w in 0..self.workers.len() {
                // Wake-ups sent to this worker since its last turn (Envoy's `on_queue_ready`).
                let me = self.workers[w].engine.worker().to_string();
                let mut outcomes = Vec::new();
                self.envoy.borrow_mut().wakes.retain(|(to, why)| match why {
                    Wake::Outcome { task_uid } if *to == me => {
                        outcomes.push(*task_uid);
                        false
                    }
                    _ => *to != me,
                });
                let worker = &mut self.workers[w];
                for task_uid in outcomes {
                    worker.engine.outcome_for(task_uid);
                }
                worker.engine.pump(&mut worker.host);
                // A delayed ledger's answers need more turns: each one can lead to the next op.
                let turns = if self.delayed.is_some() || self.by_callout { 200 } else { 50 };
                for _ in 0..turns {
                    let worker = &mut self.workers[w];
                    let pending: Vec<(u32, Callout)> = std::mem::take(&mut worker.host.callouts).into_iter().collect();
                    if pending.is_empty() && worker.release.as_ref().is_none_or(|r| r.held() == 0) {
                        break;
                    }
                    for node in 0..self.nodes.len() {
                        let cluster = format!("meili_node_{node}");
                        let reads = pending.iter().filter(|(_, c)| c.cluster == cluster && c.method == "GET" && c.path.ends_with("/settings")).count();
                        self.max_reads_in_flight = self.max_reads_in_flight.max(reads);
                    }
                    for (token, call) in pending {
                        if call.cluster == LEDGER_CLUSTER {
                            let resp = CalloutResponse { status: Some(200), body: vec![] };
                            worker.engine.on_callout_response(&mut worker.host, token, resp);
                            continue;
                        }
                        let node: usize = call.cluster.trim_start_matches("meili_node_").parse().unwrap();
                        let resp = self.nodes[node].answer(&call);
                        worker.engine.on_callout_response(&mut worker.host, token, resp);
                    }
                    // Ticks come while ledger answers are still held; then the held answers go,
                    // after the node answers that were already out.
                    if self.delayed.is_some() {
                        let worker = &mut self.workers[w];
                        worker.engine.pump(&mut worker.host);
                    }
                    self.release(w);
                }
            }
            self.envoy.borrow_mut().now_ms += step_ms;
        }
    }

    pub fn index(&self, uid: &str) -> IndexRecord {
        store::read(&self.workers[0].host, &keys::index_key(uid)).unwrap().unwrap()
    }

    pub fn task(&self, uid: u64) -> TaskRecord {
        store::read(&self.workers[0].host, &keys::task_key(uid)).unwrap().unwrap()
    }

    pub fn reply(&self, w: usize, ctx: u32) -> Option<(u16, Value)> {
        self.workers[w]
            .host
            .replies
            .iter()
            .find(|(c, _)| *c == ctx)
            .map(|(_, r)| (r.status, serde_json::from_slice(&r.body).unwrap_or(Value::Null)))
    }
}

/// Configuration of the sequential-rollback scenario, shared by the tests of every ledger.
pub fn sequential_config() -> Value {
    serde_json::json!({"settings_broadcast": {"strategy": "sequential"}})
}

/// Sequential strategy, the third node fails its task: the first two are rolled back to what
/// they held, nothing is committed. Runs the scenario on `w` (a fresh world of three nodes built
/// with `sequential_config`) and checks the end state; `label` names the variant in failures.
pub fn sequential_rollback_scenario(w: &mut World, label: &str) {
    for n in &mut w.nodes {
        n.index = Some("m".into());
        n.settings.insert("rankingRules".into(), serde_json::json!(["exactness"]));
    }
    w.nodes[2].fail_tasks = Some(serde_json::json!({"code": "internal"}));
    w.send(0, "PUT", "/indexes/m/settings/ranking-rules", Some(serde_json::json!(["typo"])));
    w.run(60, 10);
    assert_eq!(w.task(2_130_706_432).status, "failed", "{label}");
    for n in &w.nodes[..2] {
        assert_eq!(n.settings["rankingRules"], serde_json::json!(["exactness"]), "rolled back ({label})");
    }
    assert_eq!(w.index("m").version, 0, "{label}");
}
