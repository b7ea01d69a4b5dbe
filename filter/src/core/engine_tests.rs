//! The engine driven end to end against the fake host and simulated nodes: propose, wait,
//! verify, commit; unanimous rejection; repair; freeze; serialized queue; lease takeover.

use serde_json::json;

use super::admin_views::VerifyPurpose;
use super::engine::{read_hot, LEASE_TTL_MS};
use super::front::{self, HeadersDecision};
use super::pending_write::BodyDecision;
use super::request::RequestHead;
use super::host::{Callout, CalloutResponse};
use super::metrics;
use super::proposal::default_settings;
use super::config::Config;
use super::engine::Engine;
use super::fake_host::FakeHost;
use super::records::IndexRecord;
use super::state::index_store;
use super::test_world::{sequential_config, sequential_rollback_scenario, World};

#[test]
fn a_write_is_proposed_verified_and_committed_everywhere() {
    let mut w = World::new(3, 2, json!({}));
    let ctx = w.send(0, "PATCH", "/indexes/movies/settings", Some(json!({"rankingRules": ["typo", "words"]})));
    w.run(20, 10);
    let (status, body) = w.reply(0, ctx).expect("client answered");
    assert_eq!(status, 202);
    let uid = body["taskUid"].as_u64().unwrap();
    assert_eq!(uid, 2130706432);
    assert_eq!(body["type"], "settingsUpdate");
    for n in &w.nodes {
        assert_eq!(n.settings["rankingRules"], json!(["typo", "words"]));
    }
    let rec = w.index("movies");
    assert_eq!((rec.version, rec.node_versions.values().copied().collect::<Vec<_>>(), rec.queue.len(), rec.lease.clone()), (1, vec![1, 1, 1], 0, None));
    let task = w.task(uid);
    assert_eq!((task.status.as_str(), task.miroir.settings_version), ("succeeded", Some(1)));
    let hot = read_hot(&w.workers[1].host, "movies");
    assert_eq!((hot.version, hot.inconsistent, hot.frozen), (1, false, false));
    assert_eq!(w.envoy.borrow().gauges[&metrics::for_index(metrics::SETTINGS_VERSION, "movies")], 1);
    // Each node's read-back was fingerprinted once, and counted with the time it took.
    let read_back: usize = w.nodes.iter().map(|n| serde_json::Value::Object(n.settings.clone()).to_string().len()).sum();
    assert_eq!(w.envoy.borrow().counters[&metrics::for_index(metrics::VERIFY_FINGERPRINT_BYTES_TOTAL, "movies")], read_back as u64);
    assert!(w.envoy.borrow().counters.contains_key(&metrics::for_index(metrics::VERIFY_FINGERPRINT_US_TOTAL, "movies")));
    // The client's credentials went to every node.
    let job_calls: Vec<&Callout> = w.workers.iter().flat_map(|wk| wk.host.history.iter())
        .filter(|c| c.method == "PATCH" || c.path.starts_with("/tasks/")).collect();
    assert_eq!(job_calls.len(), 6);
    assert!(job_calls.iter().all(|c| c.headers.iter().any(|(k, v)| k == "authorization" && v == "Bearer client")));
}

#[test]
fn unanimous_synchronous_rejection_is_passed_through_and_changes_nothing() {
    let mut w = World::new(3, 1, json!({}));
    let body = r#"{"message":"bad rule","code":"invalid_settings_ranking_rules","type":"invalid_request","link":"x"}"#;
    for n in &mut w.nodes {
        n.reject = Some((400, body.into()));
    }
    let ctx = w.send(0, "PATCH", "/indexes/movies/settings", Some(json!({"rankingRules": ["nope"]})));
    w.run(5, 10);
    let reply = w.workers[0].host.replies.iter().find(|(c, _)| *c == ctx).unwrap().1.clone();
    assert_eq!((reply.status, String::from_utf8(reply.body).unwrap()), (400, body.to_string()));
    assert_eq!(w.index("movies").version, 0);
    assert!(w.index("movies").queue.is_empty());
}

#[test]
fn invalid_json_is_refused_before_any_node_is_touched() {
    let mut w = World::new(3, 1, json!({}));
    let worker = &mut w.workers[0];
    let head = RequestHead { method: "PATCH".into(), path: "/indexes/m/settings".into(), ..RequestHead::default() };
    let HeadersDecision::Buffer(p) = front::on_headers(&worker.engine, &mut worker.host, &head) else { panic!() };
    let BodyDecision::Reply(r) = front::on_write_body(&mut worker.engine, &mut worker.host, 1, &p, b"{nope") else { panic!() };
    assert_eq!(r.status, 400);
    assert!(String::from_utf8(r.body).unwrap().contains("malformed_payload"));
    w.run(3, 10);
    // Only the startup drift check's index listing went out.
    assert!(w.workers[0].host.history.iter().all(|c| c.method == "GET" && c.path.starts_with("/indexes?")));
}

#[test]
fn a_node_that_dropped_the_update_is_repaired() {
    let mut w = World::new(3, 1, json!({}));
    w.nodes[2].drop_updates = 1;
    let ctx = w.send(0, "PUT", "/indexes/movies/settings/stop-words", Some(json!(["a", "the"])));
    w.run(40, 10);
    assert_eq!(w.reply(0, ctx).unwrap().0, 202);
    for n in &w.nodes {
        assert_eq!(n.settings["stopWords"], json!(["a", "the"]));
    }
    let rec = w.index("movies");
    assert_eq!((rec.version, rec.frozen.is_none()), (1, true));
    assert_eq!(w.task(2130706432).miroir.repair_attempts, 1);
    assert_eq!(w.envoy.borrow().counters[&metrics::for_index(metrics::HASH_MISMATCH_TOTAL, "movies")], 1);
    // Only the node that disagreed was re-sent the proposal.
    let proposes: Vec<&str> = w.workers[0].host.history.iter().filter(|c| c.method == "PUT").map(|c| c.cluster.as_str()).collect();
    assert_eq!(proposes, vec!["meili_node_0", "meili_node_1", "meili_node_2", "meili_node_2"]);
}

#[test]
fn a_node_that_stays_wrong_freezes_the_index_after_the_retries() {
    let mut w = World::new(3, 1, json!({}));
    w.nodes[1].different = Some(("rankingRules".into(), json!(["words"])));
    let t0 = w.envoy.borrow().now_ms;
    w.send(0, "PATCH", "/indexes/movies/settings", Some(json!({"rankingRules": ["typo"]})));
    w.run(100, 10);
    let rec = w.index("movies");
    let frozen = rec.frozen.clone().expect("frozen");
    assert_eq!(frozen.nodes, vec!["node-1"]);
    assert_eq!(rec.version, 0);
    let task = w.task(2130706432);
    assert_eq!(task.status, "failed");
    assert_eq!(task.error.unwrap()["code"], "miroir_settings_divergence");
    assert_eq!(task.miroir.repair_attempts, 2);
    assert!(task.miroir.frozen);
    // Backoff: 100 ms then 200 ms before the two repairs.
    assert!(task.finished_ms.unwrap() - t0 >= 300);
    assert_eq!(w.envoy.borrow().gauges[&metrics::for_index(metrics::DIVERGENCE, "movies")], 1);
    // Every write is now refused at the door; reads pass.
    let worker = &mut w.workers[0];
    for (m, p) in [("POST", "/indexes/movies/documents"), ("PATCH", "/indexes/movies/settings"), ("DELETE", "/indexes/movies")] {
        let head = RequestHead { method: m.into(), path: p.into(), ..RequestHead::default() };
        match front::on_headers(&worker.engine, &mut worker.host, &head) {
            HeadersDecision::Reply(r) => assert_eq!(r.status, 503),
            other => panic!("{m} {p}: {other:?}"),
        }
    }
    let head = RequestHead { method: "POST".into(), path: "/indexes/movies/search".into(), ..RequestHead::default() };
    assert!(matches!(front::on_headers(&worker.engine, &mut worker.host, &head), HeadersDecision::PassAndStamp { .. }));
    assert_eq!(w.envoy.borrow().counters[&metrics::for_index(metrics::FROZEN_WRITE_REJECTED_TOTAL, "movies")], 3);
}

#[test]
fn writes_on_one_index_run_one_at_a_time_in_arrival_order() {
    let mut w = World::new(2, 2, json!({}));
    let mut ctxs = vec![];
    for i in 0..5 {
        let worker = i % 2;
        ctxs.push((worker, w.send(worker, "PUT", "/indexes/m/settings/ranking-rules", Some(json!([format!("r{i}:asc")])))));
    }
    w.run(200, 10);
    assert_eq!(w.index("m").version, 5);
    for n in &w.nodes {
        assert_eq!(n.settings["rankingRules"], json!(["r4:asc"]));
    }
    for (worker, ctx) in ctxs {
        assert_eq!(w.reply(worker, ctx).unwrap().0, 202);
    }
    // Never two proposals in flight: the proposes of job k all precede those of job k+1.
    let mut order = vec![];
    for worker in &w.workers {
        for c in worker.host.history.iter().filter(|c| c.method == "PUT") {
            order.push(c.body.clone().unwrap());
        }
    }
    assert_eq!(order.len(), 10);
}

#[test]
fn all_node_tasks_failing_alike_fails_the_task_without_repair() {
    let mut w = World::new(3, 1, json!({}));
    for n in &mut w.nodes {
        n.fail_tasks = Some(json!({"code": "invalid_settings_typo_tolerance", "message": "m"}));
    }
    w.send(0, "PATCH", "/indexes/m/settings/typo-tolerance", Some(json!({"minWordSizeForTypos": {"oneTypo": 9}})));
    w.run(20, 10);
    let task = w.task(2130706432);
    assert_eq!((task.status.as_str(), task.error.unwrap()["code"].as_str()), ("failed", Some("invalid_settings_typo_tolerance")));
    assert_eq!(w.index("m").version, 0);
    assert!(w.index("m").frozen.is_none());
}

#[test]
fn a_job_whose_owner_vanishes_is_finished_by_another_worker() {
    let mut w = World::new(2, 2, json!({}));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"distinctAttribute": "sku"})));
    // Worker 0 claims and proposes, then its VM disappears before anything comes back.
    let worker = &mut w.workers[0];
    worker.engine.pump(&mut worker.host);
    assert_eq!(worker.host.callouts.values().filter(|c| c.method == "PATCH").count(), 2);
    w.workers.remove(0);
    w.run(5, 100);
    assert_eq!(w.index("m").version, 0, "the lease is still the dead worker's");
    w.envoy.borrow_mut().now_ms += LEASE_TTL_MS;
    w.run(20, 10);
    assert_eq!(w.index("m").version, 1);
    assert_eq!(w.task(2130706432).status, "succeeded");
    for n in &w.nodes {
        assert_eq!(n.settings["distinctAttribute"], "sku");
    }
}

#[test]
fn sequential_strategy_rolls_back_applied_nodes_on_failure() {
    let mut w = World::new(3, 1, sequential_config());
    sequential_rollback_scenario(&mut w, "immediate ledger");
}

#[test]
fn sequential_strategy_commits_when_every_node_applies() {
    let mut w = World::new(3, 1, json!({"settings_broadcast": {"strategy": "sequential"}}));
    w.send(0, "PUT", "/indexes/m/settings/ranking-rules", Some(json!(["typo"])));
    w.run(60, 10);
    assert_eq!(w.index("m").version, 1);
    let order: Vec<&str> = w.workers[0].host.history.iter().filter(|c| c.method == "PUT").map(|c| c.cluster.as_str()).collect();
    assert_eq!(order, vec!["meili_node_0", "meili_node_1", "meili_node_2"]);
}

#[test]
fn pinned_reads_only_reach_fresh_nodes() {
    let mut w = World::new(2, 1, json!({}));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
    w.run(20, 10);
    let worker = &mut w.workers[0];
    let head = |v: &str| RequestHead { method: "GET".into(), path: "/indexes/m/search".into(), min_settings_version: Some(v.into()), ..RequestHead::default() };
    assert!(matches!(front::on_headers(&worker.engine, &mut worker.host, &head("1")), HeadersDecision::Pin { .. }));
    match front::on_headers(&worker.engine, &mut worker.host, &head("2")) {
        HeadersDecision::Reply(r) => assert_eq!(r.status, 503),
        other => panic!("{other:?}"),
    }
}

fn settle(w: &mut World, rounds: usize) {
    w.run(rounds, 10);
}

#[test]
fn drift_behind_the_proxy_is_found_and_repaired_from_the_desired_settings() {
    let mut w = World::new(3, 2, json!({"settings_drift_check": {"interval_s": 1}}));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"rankingRules": ["typo"], "distinctAttribute": "sku"})));
    settle(&mut w, 20);
    assert_eq!(w.index("m").version, 1);
    // Someone changes node 1 directly.
    w.nodes[1].settings.insert("rankingRules".into(), json!(["words"]));
    w.envoy.borrow_mut().now_ms += 1_000;
    settle(&mut w, 40);
    for n in &w.nodes {
        assert_eq!(n.settings["rankingRules"], json!(["typo"]));
    }
    let e = w.envoy.borrow();
    assert_eq!(e.counters[&metrics::for_index(metrics::DRIFT_DETECTED_TOTAL, "m")], 1);
    assert_eq!(e.counters[&metrics::for_index(metrics::DRIFT_REPAIR_TOTAL, "m")], 1);
    drop(e);
    assert_eq!(w.index("m").version, 1, "a repair restores the committed version, it makes no new one");
    // Only the drifted node was written to by the repair.
    let repair_targets: Vec<String> = w.workers.iter().flat_map(|wk| wk.host.history.iter())
        .filter(|c| c.method == "PATCH").map(|c| c.cluster.clone()).collect();
    assert_eq!(repair_targets.iter().filter(|c| *c == "meili_node_1").count(), 2);
    assert_eq!(repair_targets.len(), 4);
}

#[test]
fn an_index_missing_on_one_node_is_recreated() {
    let mut w = World::new(2, 1, json!({"settings_drift_check": {"interval_s": 1}}));
    w.send(0, "PUT", "/indexes/m/settings/synonyms", Some(json!({"a": ["b"]})));
    settle(&mut w, 20);
    w.nodes[1].index = None;
    w.nodes[1].settings = default_settings().clone();
    w.envoy.borrow_mut().now_ms += 1_000;
    settle(&mut w, 40);
    assert_eq!(w.nodes[1].index.as_deref(), Some("m"));
    assert_eq!(w.nodes[1].settings["synonyms"], json!({"a": ["b"]}));
}

#[test]
fn without_auto_repair_drift_is_only_reported() {
    let mut w = World::new(3, 1, json!({"settings_drift_check": {"interval_s": 1, "auto_repair": false}}));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
    settle(&mut w, 20);
    w.nodes[2].settings.insert("facetSearch".into(), json!(true));
    w.envoy.borrow_mut().now_ms += 1_000;
    settle(&mut w, 40);
    assert_eq!(w.nodes[2].settings["facetSearch"], json!(true));
    assert_eq!(w.envoy.borrow().counters[&metrics::for_index(metrics::DRIFT_DETECTED_TOTAL, "m")], 1);
    assert!(!w.envoy.borrow().counters.contains_key(&metrics::for_index(metrics::DRIFT_REPAIR_TOTAL, "m")));
}

#[test]
fn drift_in_masked_embedders_without_desired_settings_freezes() {
    // The filter never wrote this index: no desired settings, and the drift is in embedders.
    let mut w = World::new(3, 1, json!({"settings_drift_check": {"interval_s": 1}}));
    for (i, n) in w.nodes.iter_mut().enumerate() {
        n.index = Some("m".into());
        let key = if i == 0 { "sk-AAAXXXXXX..." } else { "sk-BBBXXXXXX..." };
        n.settings.insert("embedders".into(), json!({"e": {"source": "openAi", "apiKey": key}}));
    }
    settle(&mut w, 20);
    let rec = w.index("m");
    assert!(rec.frozen.is_some());
    assert_eq!(w.envoy.borrow().gauges[&metrics::for_index(metrics::DIVERGENCE, "m")], 1);
    // Nothing was written back from a masked read.
    assert!(w.workers[0].host.history.iter().all(|c| c.method == "GET"));
}

#[test]
fn a_frozen_index_is_unfrozen_when_a_verify_finds_the_fleet_converged() {
    let mut w = World::new(2, 1, json!({"settings_broadcast": {"max_repair_retries": 0}}));
    w.nodes[1].different = Some(("facetSearch".into(), json!(true)));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
    settle(&mut w, 20);
    assert!(w.index("m").frozen.is_some());
    // The operator fixes node 1 and asks for a verify through the admin API.
    w.nodes[1].settings.insert("facetSearch".into(), json!(false));
    let now = w.envoy.borrow().now_ms;
    w.workers[0].engine.request_verify("m", 77, VerifyPurpose::Unfreeze, now);
    settle(&mut w, 10);
    let (status, body) = w.reply(0, 77).expect("operator answered");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["converged"], json!(true));
    assert!(w.index("m").frozen.is_none());
    assert!(!read_hot(&w.workers[0].host, "m").frozen);
}

#[test]
fn reads_the_credentials_cannot_make_fail_the_task_without_freezing() {
    let mut w = World::new(2, 1, json!({}));
    for n in &mut w.nodes {
        n.reads_need_node_key = true;
    }
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
    settle(&mut w, 20);
    let task = w.task(2130706432);
    assert_eq!((task.status.as_str(), task.error.unwrap()["code"].as_str()), ("failed", Some("invalid_api_key")));
    assert!(w.index("m").frozen.is_none());
}

#[test]
fn the_node_key_reads_back_what_a_narrow_client_key_wrote() {
    let mut w = World::new(2, 1, json!({}));
    w.envoy.borrow_mut().env.insert("MIROIR_NODE_API_KEY".into(), "node-key".into());
    for n in &mut w.nodes {
        n.reads_need_node_key = true;
    }
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
    settle(&mut w, 20);
    assert_eq!(w.index("m").version, 1);
    // The write itself carried the client's credentials, never the node key.
    let write = w.workers[0].host.history.iter().find(|c| c.method == "PATCH").unwrap();
    assert!(write.headers.contains(&("authorization".to_string(), "Bearer client".to_string())));
}

#[test]
fn reads_that_straddle_a_commit_are_not_judged() {
    let mut w = World::new(2, 1, json!({"settings_drift_check": {"interval_s": 1}}));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
    settle(&mut w, 20);
    // A verify reads the nodes; before its answers are judged, a write commits version 2.
    let now = w.envoy.borrow().now_ms;
    w.workers[0].engine.request_verify("m", 88, VerifyPurpose::Report, now);
    let worker = &mut w.workers[0];
    worker.engine.pump(&mut worker.host);
    let reads: Vec<(u32, Callout)> = std::mem::take(&mut worker.host.callouts).into_iter().collect();
    let answers: Vec<(u32, CalloutResponse)> =
        reads.iter().map(|(t, c)| (*t, w.nodes[c.cluster.trim_start_matches("meili_node_").parse::<usize>().unwrap()].answer(c))).collect();
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": true})));
    settle(&mut w, 20);
    assert_eq!(w.index("m").version, 2);
    let worker = &mut w.workers[0];
    for (t, r) in answers {
        worker.engine.on_callout_response(&mut worker.host, t, r);
    }
    let (status, body) = w.reply(0, 88).expect("operator answered");
    assert_eq!((status, body["converged"].clone()), (200, json!(false)), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("during the check"));
    assert!(!w.envoy.borrow().counters.contains_key(&metrics::for_index(metrics::DRIFT_DETECTED_TOTAL, "m")));
}

// ----- hardening: each of these failed before its fix -----

#[test]
fn sequential_strategy_never_wipes_a_node_whose_settings_could_not_be_read() {
    let mut w = World::new(3, 1, json!({"settings_broadcast": {"strategy": "sequential"}}));
    for n in &mut w.nodes {
        n.index = Some("m".into());
        n.settings.insert("rankingRules".into(), json!(["exactness"]));
        n.settings.insert("stopWords".into(), json!(["keep"]));
    }
    // Node 1 is up but answers 500 to the snapshot read (not "index not found").
    w.nodes[1].broken = true;
    w.send(0, "PUT", "/indexes/m/settings/ranking-rules", Some(json!(["typo"])));
    w.run(60, 10);
    let task = w.task(2130706432);
    assert_eq!(task.status, "failed");
    assert_eq!(task.error.unwrap()["code"], "miroir_node_unreachable");
    // Node 0 was rolled back to its own settings, not reset to defaults; node 1 never touched.
    assert_eq!(w.nodes[0].settings["rankingRules"], json!(["exactness"]));
    assert_eq!(w.nodes[0].settings["stopWords"], json!(["keep"]));
    let writes: Vec<(&str, &str)> = w.workers[0].host.history.iter().filter(|c| c.method != "GET").map(|c| (c.method.as_str(), c.cluster.as_str())).collect();
    assert_eq!(writes, vec![("PUT", "meili_node_0"), ("PATCH", "meili_node_0")], "no DELETE of anyone's settings");
}

#[test]
fn a_node_task_the_node_forgot_does_not_hold_the_queue_for_the_task_timeout() {
    let mut w = World::new(3, 1, json!({}));
    w.nodes[2].forgets_tasks = true;
    let t0 = w.envoy.borrow().now_ms;
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
    w.run(40, 10);
    let task = w.task(2130706432);
    // Node 2 applied nothing (its task was never polled to completion in the sim), so the job
    // goes on to verify and repair at once rather than polling a 404 for an hour.
    assert_ne!(task.status, "enqueued");
    assert!(task.finished_ms.is_some_and(|f| f - t0 < 5_000), "{task:?}");
}

#[test]
fn an_operator_repair_brings_a_frozen_index_back_once_the_node_returns() {
    let mut w = World::new(3, 1, json!({"settings_broadcast": {"max_repair_retries": 1, "repair_backoff_base_ms": 100}}));
    w.envoy.borrow_mut().env.insert("MIROIR_NODE_API_KEY".into(), "node-key".into());
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"rankingRules": ["typo"], "distinctAttribute": "sku"})));
    settle(&mut w, 20);
    assert_eq!(w.index("m").version, 1);
    // Node 2 is down during the next write: repairs fail, the index freezes.
    w.nodes[2].down = true;
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"distinctAttribute": "isbn"})));
    settle(&mut w, 60);
    assert!(w.index("m").frozen.is_some(), "{:?} {:?}", w.index("m"), w.task(2130706433));
    // The node comes back holding the old settings; a plain unfreeze is refused ...
    w.nodes[2].down = false;
    let now = w.envoy.borrow().now_ms;
    w.workers[0].engine.request_verify("m", 70, VerifyPurpose::Unfreeze, now);
    settle(&mut w, 10);
    assert_eq!(w.reply(0, 70).unwrap().0, 409);
    // ... and a repair brings every node back to the committed settings (the frozen write
    // failed, so version 1 is what the fleet holds) and lifts the freeze.
    let now = w.envoy.borrow().now_ms;
    w.workers[0].engine.request_verify("m", 71, VerifyPurpose::Repair, now);
    settle(&mut w, 40);
    let (status, body) = w.reply(0, 71).expect("operator answered");
    assert_eq!(status, 202, "{body}");
    let uid = body["taskUid"].as_u64().unwrap();
    assert_eq!(w.task(uid).status, "succeeded");
    for n in &w.nodes {
        assert_eq!(n.settings["distinctAttribute"], json!("sku"));
    }
    let rec = w.index("m");
    assert!(rec.frozen.is_none());
    assert_eq!(rec.version, 1, "a repair makes no new version");
    assert!(!read_hot(&w.workers[0].host, "m").frozen);
    assert_eq!(w.envoy.borrow().gauges[&metrics::for_index(metrics::DIVERGENCE, "m")], 0);
    // The repair wrote with the node key, to the nodes that held the failed write only.
    let repair: Vec<&Callout> = w.workers[0].host.history.iter().filter(|c| c.method == "PATCH" && c.headers.iter().any(|(_, v)| v == "Bearer node-key")).collect();
    assert_eq!(repair.iter().map(|c| c.cluster.as_str()).collect::<Vec<_>>(), vec!["meili_node_0", "meili_node_1"]);
    // Writes are accepted again.
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"distinctAttribute": "isbn"})));
    settle(&mut w, 20);
    assert_eq!(w.index("m").version, 2);
}

#[test]
fn an_operator_check_that_cannot_finish_is_answered_by_its_deadline() {
    let mut w = World::new(2, 1, json!({"settings_broadcast": {"verify_timeout_s": 1}}));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
    settle(&mut w, 20);
    let now = w.envoy.borrow().now_ms;
    w.workers[0].engine.request_verify("m", 90, VerifyPurpose::Report, now);
    // The reads go out and never come back (a host that loses the answers).
    let worker = &mut w.workers[0];
    worker.engine.pump(&mut worker.host);
    worker.host.callouts.clear();
    for _ in 0..70 {
        w.envoy.borrow_mut().now_ms += 100;
        let worker = &mut w.workers[0];
        worker.engine.pump(&mut worker.host);
    }
    let (status, body) = w.reply(0, 90).expect("answered by the deadline");
    assert_eq!((status, body["code"].as_str()), (504, Some("miroir_verify_timeout")));
}

#[test]
fn the_drift_check_reads_a_bounded_number_of_indexes_at_once() {
    let mut w = World::new(3, 1, json!({"settings_drift_check": {"interval_s": 1, "max_reads_in_flight": 2}}));
    for n in &mut w.nodes {
        n.others = (0..9).map(|i| format!("idx{i}")).collect();
    }
    settle(&mut w, 30);
    assert_eq!(w.max_reads_in_flight, 2);
    // Every index was read from every node.
    let reads = w.workers[0].host.history.iter().filter(|c| c.path.ends_with("/settings")).count();
    assert_eq!(reads, 9 * 3);
}

#[test]
fn a_long_drift_check_keeps_its_lease() {
    let mut w = World::new(2, 2, json!({"settings_drift_check": {"interval_s": 1}}));
    // Worker 0 starts the check; the node answers take 90 s (lease TTL is 60 s).
    let worker = &mut w.workers[0];
    worker.engine.pump(&mut worker.host);
    let held: Vec<(u32, Callout)> = std::mem::take(&mut worker.host.callouts).into_iter().collect();
    assert!(!held.is_empty());
    for _ in 0..90 {
        w.envoy.borrow_mut().now_ms += 1_000;
        for wk in &mut w.workers {
            wk.engine.pump(&mut wk.host);
        }
    }
    // The other worker never started a second run while the first was alive.
    assert!(w.workers[1].host.history.is_empty(), "{:?}", w.workers[1].host.history);
}

#[test]
fn a_late_answer_of_a_finished_job_is_not_taken_by_the_next_job() {
    let mut w = World::new(2, 1, json!({"settings_broadcast": {"task_timeout_s": 1, "repair_backoff_base_ms": 100}}));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
    // Job 1 proposes; node 1's task poll goes out and its answer is held back.
    w.pump_and_answer(0);
    w.envoy.borrow_mut().now_ms += 50;
    let worker = &mut w.workers[0];
    worker.engine.pump(&mut worker.host);
    let polls: Vec<(u32, Callout)> = std::mem::take(&mut worker.host.callouts).into_iter().collect();
    let (late_token, late_call) = polls.iter().find(|(_, c)| c.cluster == "meili_node_1" && c.path.starts_with("/tasks/")).cloned().unwrap();
    for (t, c) in polls.iter().filter(|(t, _)| *t != late_token) {
        let node: usize = c.cluster.trim_start_matches("meili_node_").parse().unwrap();
        let r = w.nodes[node].answer(c);
        let worker = &mut w.workers[0];
        worker.engine.on_callout_response(&mut worker.host, *t, r);
    }
    // Node 1's task times out; job 1 verifies and commits (node 1 did apply it), ...
    w.envoy.borrow_mut().now_ms += 1_100;
    settle(&mut w, 20);
    assert_eq!(w.task(2130706432).status, "succeeded", "{:?} {:?} {:?}", w.task(2130706432), w.index("m"), w.workers[0].host.history.iter().map(|c| (c.method.clone(), c.cluster.clone(), c.path.clone())).collect::<Vec<_>>());
    // ... then job 2 proposes, and while its proposals are out the late poll answer of job 1
    // arrives ("succeeded"). Taken for job 2's node-1 task, it would send job 2 to verify before
    // node 1 applied the write, and a spurious repair would follow.
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": true})));
    let worker = &mut w.workers[0];
    worker.engine.pump(&mut worker.host);
    assert!(worker.host.callouts.values().any(|c| c.method == "PATCH"), "job 2 is proposing");
    let late = CalloutResponse { status: Some(200), body: br#"{"uid":0,"status":"succeeded","details":{}}"#.to_vec() };
    worker.engine.on_callout_response(&mut worker.host, late_token, late);
    settle(&mut w, 30);
    let task2 = w.task(2130706433);
    assert_eq!((task2.status.as_str(), task2.miroir.repair_attempts), ("succeeded", 0), "{task2:?}");
    assert_eq!(w.index("m").version, 2);
    let _ = late_call;
}

#[test]
fn node_versions_follow_node_ids_when_the_configuration_lists_the_nodes_in_another_order() {
    let w = World::new(3, 1, json!({}));
    // node-0 was verified at version 2, the others at 1.
    let mut host = FakeHost::new(w.envoy.clone());
    index_store::update_index(&mut host, "m", |_| {
        let mut rec = IndexRecord { version: 2, ..IndexRecord::default() };
        rec.node_versions = [("node-0", 2), ("node-1", 1), ("node-2", 1)].into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        Some(rec)
    })
    .unwrap();
    // A new configuration lists the same nodes in another order (a reload keeps shared data).
    let reordered = Config::parse(json!({"nodes": [
        {"id": "node-2", "cluster": "meili_node_2", "authority": "n"},
        {"id": "node-0", "cluster": "meili_node_0", "authority": "n"},
        {"id": "node-1", "cluster": "meili_node_1", "authority": "n"},
    ]}).to_string().as_bytes()).unwrap();
    let engine = Engine::new(reordered, "w9".into());
    let head = RequestHead { method: "GET".into(), path: "/indexes/m/search".into(), min_settings_version: Some("2".into()), ..RequestHead::default() };
    for _ in 0..5 {
        match front::on_headers(&engine, &mut host, &head) {
            HeadersDecision::Pin { cluster, .. } => assert_eq!(cluster, "meili_node_0"),
            other => panic!("{other:?}"),
        }
        w.envoy.borrow_mut().now_ms += 1;
    }
}

#[test]
fn mirror_mode_leaves_a_node_that_misses_settings_writes_behind_and_replays_them_in_order() {
    let mut w = World::new(3, 2, json!({"writes": "mirror"}));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"rankingRules": ["typo"]})));
    settle(&mut w, 20);
    // Node 2 is away for two writes: they commit on the others, not frozen, and it is left out.
    w.nodes[2].down = true;
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"distinctAttribute": "sku"})));
    settle(&mut w, 40);
    w.send(1, "PATCH", "/indexes/m/settings", Some(json!({"distinctAttribute": "isbn", "stopWords": ["a"]})));
    settle(&mut w, 40);
    let rec = w.index("m");
    assert!(rec.frozen.is_none(), "{rec:?}");
    assert_eq!(rec.version, 3);
    let lag = rec.out_of_sync.get("node-2").cloned().expect("node 2 out of sync");
    assert_eq!(lag.replay_from, Some(2130706433), "from the first write it missed: {lag:?}");
    assert_eq!((rec.node_version("node-0"), rec.node_version("node-2")), (3, 1));
    assert_eq!(w.nodes[2].settings.get("distinctAttribute"), Some(&json!(null)), "still the default");
    // A pinned read at the new version never goes to node 2.
    let hot = crate::core::engine::read_hot(&w.workers[0].host, "m");
    assert!(hot.split, "reads avoid the node");
    // Back: it replays both writes, in order, and rejoins at the committed version.
    w.nodes[2].down = false;
    settle(&mut w, 200);
    let rec = w.index("m");
    assert!(rec.out_of_sync.is_empty(), "{rec:?}");
    assert_eq!(rec.node_version("node-2"), 3);
    assert_eq!(w.nodes[2].settings, w.nodes[0].settings);
    assert_eq!(w.nodes[2].settings.get("distinctAttribute"), Some(&json!("isbn")));
    assert!(!crate::core::engine::read_hot(&w.workers[0].host, "m").split);
    // The log let go of the writes and their job records (bodies, credentials).
    let host = &w.workers[0].host;
    use super::state::{keys, records::{JobRecord, LogEntry}, store};
    let log: Option<Vec<LogEntry>> = store::read(host, &keys::log_key("m")).unwrap();
    assert!(log.unwrap_or_default().is_empty());
    for uid in [2130706433u64, 2130706434] {
        assert!(store::read::<JobRecord>(host, &keys::job_key(uid)).unwrap().is_none(), "job {uid} released");
    }
}

#[test]
fn mirror_mode_past_the_log_a_node_needs_a_resync() {
    let mut w = World::new(3, 1, json!({"writes": "mirror", "mirror": {"log_max_bytes": 600}}));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"rankingRules": ["typo"]})));
    settle(&mut w, 20);
    w.nodes[2].down = true;
    for n in 0..4 {
        w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"stopWords": [format!("w{n}")]})));
        settle(&mut w, 40);
    }
    let rec = w.index("m");
    let lag = rec.out_of_sync.get("node-2").cloned().expect("node 2 out of sync");
    assert_eq!(lag.replay_from, None, "the log could not hold what it missed: {lag:?}");
    assert!(lag.why.contains("log_max_bytes"), "{lag:?}");
    // It stays out of reads and writes when it comes back: nothing is replayed.
    w.nodes[2].down = false;
    settle(&mut w, 100);
    assert!(w.index("m").out_of_sync.contains_key("node-2"));
    assert_eq!(w.nodes[2].settings.get("stopWords"), Some(&json!([])), "nothing replayed");
}

#[test]
fn mirror_mode_a_node_away_for_more_writes_than_task_retention_still_catches_up() {
    let mut w = World::new(3, 1, json!({"writes": "mirror", "task_retention": 3}));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"rankingRules": ["typo"]})));
    settle(&mut w, 20);
    w.nodes[1].down = true;
    for n in 0..8 {
        w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"stopWords": [format!("w{n}")]})));
        settle(&mut w, 30);
    }
    assert_eq!(w.index("m").out_of_sync.get("node-1").and_then(|l| l.replay_from), Some(2130706433));
    w.nodes[1].down = false;
    settle(&mut w, 400);
    let rec = w.index("m");
    assert!(rec.out_of_sync.is_empty(), "{rec:?}");
    assert_eq!(w.nodes[1].settings, w.nodes[0].settings);
    assert_eq!(w.nodes[1].settings.get("stopWords"), Some(&json!(["w7"])));
}

#[test]
fn mirror_mode_open_tasks_of_a_vanished_worker_are_followed_to_their_end_by_another() {
    let mut w = World::new(3, 2, json!({"writes": "mirror"}));
    let ctx = w.send(0, "POST", "/indexes/m/documents", Some(json!([{"id": 1}, {"id": 2}])));
    // Worker 0 claims and proposes; every node enqueues; the client gets the filter's task.
    let calls = w.pump_and_answer(0);
    assert_eq!(calls.iter().filter(|c| c.method == "POST").count(), 3);
    let (status, body) = w.reply(0, ctx).expect("answered");
    assert_eq!((status, body["type"].as_str()), (202, Some("documentAdditionOrUpdate")));
    let uid = body["taskUid"].as_u64().unwrap();
    assert_eq!(w.task(uid).status, "enqueued");
    // Its VM disappears before it learned how the node tasks ended.
    w.workers.remove(0);
    w.run(5, 100);
    assert_eq!(w.task(uid).status, "enqueued", "the lease is still the dead worker's");
    w.envoy.borrow_mut().now_ms += LEASE_TTL_MS;
    w.run(20, 10);
    let task = w.task(uid);
    assert_eq!((task.status.as_str(), task.kind.as_str()), ("succeeded", "documentAdditionOrUpdate"));
    assert_eq!(task.miroir.nodes.len(), 3);
    assert!(w.nodes.iter().all(|n| n.documents == 2));
    let rec = w.index("m");
    assert_eq!(rec.lease, None, "let go once nothing is left to follow");
}

#[test]
fn a_run_of_short_jobs_keeps_its_lease_past_the_ttl() {
    // Jobs shorter than the renewal period, back to back for longer than the lease TTL: the
    // owner goes on from one to the next and must not lose the lease to the other worker mid-run
    // (seen with etcd: a job proposed twice, by its owner and by the worker that took the lease).
    let mut w = World::new(2, 2, json!({"state": {"lease_ttl_ms": 1000}}));
    const JOBS: u64 = 100;
    for i in 0..JOBS {
        w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"stopWords": [format!("w{i}")]})));
    }
    let owner = w.workers[0].engine.worker().to_string();
    let start = w.envoy.borrow().now_ms;
    let mut taken = false;
    for _ in 0..5000 {
        w.run(1, 10);
        let lease = w.index("m").lease;
        taken |= lease.as_ref().is_some_and(|l| l.owner != owner);
        if w.index("m").version == JOBS {
            break;
        }
    }
    assert_eq!(w.index("m").version, JOBS);
    assert!(w.envoy.borrow().now_ms - start > 1_500, "the run outlasted the TTL");
    assert!(!taken, "the other worker took the lease while its owner was still running jobs");
    for n in &w.nodes {
        assert_eq!(n.next_task, JOBS, "every write proposed once");
    }
}

#[test]
fn waiting_clients_tasks_are_read_when_an_outcome_may_be_there_not_on_every_pump() {
    let mut w = World::new(3, 1, json!({}));
    let first = w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"stopWords": ["a"]})));
    let worker = &mut w.workers[0];
    worker.engine.pump(&mut worker.host);
    assert!(!worker.host.callouts.is_empty(), "the first write is at the nodes, unanswered");
    // Three more clients queue behind it and wait.
    let queued: Vec<u32> = (0..3).map(|i| w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"stopWords": [format!("b{i}")]})))).collect();
    let pump = |w: &mut World, ms: u64| {
        w.envoy.borrow_mut().now_ms += ms;
        let worker = &mut w.workers[0];
        worker.engine.pump(&mut worker.host);
        worker.host.task_reads.replace(0)
    };
    w.workers[0].host.task_reads.set(0);
    assert_eq!(pump(&mut w, 0), 3, "the clients that just began to wait: their tasks are read");
    // Ticks with nothing new: no task read at all (each used to read all four waiters').
    for _ in 0..5 {
        assert_eq!(pump(&mut w, 10), 0);
    }
    // A wake is best effort: at least every 100 ms they are read anyway.
    assert_eq!(pump(&mut w, 50), 4);
    // Another worker's wake names the write whose outcome it recorded: that task is read.
    w.workers[0].engine.outcome_for(2130706432);
    assert_eq!(pump(&mut w, 1), 1);
    assert_eq!(pump(&mut w, 1), 0);
    // One for a write whose client does not wait here reads nothing.
    w.workers[0].engine.outcome_for(2130706432 + 100);
    assert_eq!(pump(&mut w, 1), 0);
    // The nodes answer: every client gets its answer.
    w.run(40, 10);
    for ctx in std::iter::once(first).chain(queued) {
        assert_eq!(w.reply(0, ctx).map(|(status, _)| status), Some(202), "client {ctx}");
    }
}

#[test]
fn a_mirrored_write_whose_node_tasks_ended_by_the_first_poll_is_closed_in_one_task_update() {
    let mut w = World::new(3, 1, json!({"writes": "mirror"}));
    let ctx = w.send(0, "POST", "/indexes/m/documents", Some(json!([{"id": 1}])));
    // The propose round: every node enqueues, the client gets the filter's task.
    w.pump_and_answer(0);
    let (status, body) = w.reply(0, ctx).expect("answered");
    assert_eq!(status, 202);
    let uid = body["taskUid"].as_u64().unwrap();
    // The first poll round finds every node's task done (each node's answer settles on its
    // own): one read-modify-write of the task records both its start and its end.
    w.workers[0].host.task_reads.set(0);
    w.run(10, 10);
    assert_eq!(w.workers[0].host.task_reads.get(), 1, "task record reads while following the write");
    let task = w.task(uid);
    assert_eq!(task.status, "succeeded");
    assert_eq!(task.started_ms, task.finished_ms);
}

/// A client that waited behind another write past its patience holds its task's uid (`202`).
/// Whatever the nodes say when its write goes out, that task must end where the client looks
/// for it: refused by every node, it ends failed with their error, not hidden (a hidden task
/// answers `GET /tasks/{uid}` with `task_not_found`, and an SDK's `wait_for_task` throws).
fn answered_while_waiting(w: &mut World, method: &str, path: &str, body: Option<serde_json::Value>) -> u64 {
    // The first write goes out and the nodes take it; its task polls stay unanswered for now.
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"rankingRules": ["typo"]})));
    w.pump_and_answer(0);
    let waiting = w.send(0, method, path, body);
    w.envoy.borrow_mut().now_ms += super::config::DEFAULT_PROPOSE_TIMEOUT_MS + 1_000;
    for _ in 0..3 {
        let worker = &mut w.workers[0];
        worker.engine.pump(&mut worker.host);
        w.envoy.borrow_mut().now_ms += 150;
    }
    let (status, body) = w.reply(0, waiting).expect("answered once past its patience");
    assert_eq!(status, 202, "{body}");
    let uid = body["taskUid"].as_u64().unwrap();
    assert_eq!(w.task(uid).propose, Some(super::records::ProposeOutcome::Accepted), "recorded before it was given");
    uid
}

#[test]
fn a_write_answered_while_it_waited_then_refused_by_every_node_ends_failed_and_visible() {
    let cases = [
        ("passthrough", "PATCH", "/indexes/m/settings", json!({"stopWords": ["x"]}), "invalid_settings_stop_words"),
        ("mirror", "POST", "/indexes/m/documents/delete-batch", json!([1, 2]), "invalid_document_id"),
    ];
    for (writes, method, path, body, code) in cases {
        let mut w = World::new(3, 1, json!({"writes": writes}));
        let uid = answered_while_waiting(&mut w, method, path, Some(body));
        let refusal = json!({"message": "refused", "code": code, "type": "invalid_request", "link": "x"});
        for n in &mut w.nodes {
            n.reject = Some((400, refusal.to_string()));
        }
        settle(&mut w, 40);
        let task = w.task(uid);
        assert_eq!((task.status.as_str(), task.error.as_ref()), ("failed", Some(&refusal)), "{writes}: {task:?}");
        assert!(task.finished_ms.is_some());
        // The refused write changed nothing, and nothing was repaired or frozen for it.
        let rec = w.index("m");
        assert_eq!((rec.version, rec.frozen.is_none(), rec.queue.is_empty()), (1, true, true), "{writes}: {rec:?}");
        assert!(w.nodes.iter().all(|n| n.settings.get("stopWords") == Some(&json!([]))));
    }
}

#[test]
fn a_write_the_nodes_answer_without_a_task_is_not_given_a_task_uid_while_it_waits() {
    // `POST /keys` is answered 201 with the key, not a task: a client still waiting for the
    // nodes' answer past its patience keeps waiting for it rather than get a `202`.
    let mut w = World::new(3, 1, json!({"writes": "mirror"}));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"rankingRules": ["typo"]})));
    w.pump_and_answer(0);
    let waiting = w.send(0, "POST", "/keys", Some(json!({"actions": ["*"], "indexes": ["*"], "expiresAt": null})));
    w.envoy.borrow_mut().now_ms += super::config::DEFAULT_PROPOSE_TIMEOUT_MS + 2_000;
    for _ in 0..3 {
        let worker = &mut w.workers[0];
        worker.engine.pump(&mut worker.host);
        w.envoy.borrow_mut().now_ms += 150;
    }
    assert_eq!(w.reply(0, waiting), None, "no 202 for a key");
}

#[test]
fn a_mirrored_write_whose_node_tasks_outlive_the_task_timeout_fails_with_a_meilisearch_shaped_error() {
    let mut w = World::new(2, 1, json!({"writes": "mirror", "settings_broadcast": {"task_timeout_s": 1}}));
    let ctx = w.send(0, "POST", "/indexes/m/documents", Some(json!([{"id": 1}])));
    w.pump_and_answer(0);
    let uid = w.reply(0, ctx).expect("enqueued").1["taskUid"].as_u64().unwrap();
    // The nodes took it, then stop answering: their tasks are never seen to end.
    for n in &mut w.nodes {
        n.down = true;
    }
    w.run(100, 100);
    let task = w.task(uid);
    let error = task.error.clone().unwrap_or_default();
    assert_eq!(task.status, "failed", "{task:?}");
    assert_eq!(
        (error["code"].as_str(), error["type"].as_str(), error["link"].as_str()),
        (Some("miroir_task_timeout"), Some("system"), Some("https://docs.meilisearch.com/errors#miroir_task_timeout")),
        "{error}"
    );
    assert!(error["message"].as_str().is_some_and(|m| m.contains("task_timeout_s")), "{error}");
}

#[test]
fn a_mirrored_write_whose_body_is_not_text_is_refused_before_any_node_is_touched() {
    // A gzip-compressed batch (Meilisearch takes `Content-Encoding: gzip`), and a Latin-1 CSV:
    // kept as text, either would reach the nodes altered and be taken.
    let mut w = World::new(3, 1, json!({"writes": "mirror"}));
    let gzip: &[u8] = &[0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x8b, 0xae, 0x05, 0x00];
    let latin1: &[u8] = b"id,title\n1,Am\xe9lie\n";
    for body in [gzip, latin1] {
        let worker = &mut w.workers[0];
        let head = RequestHead { method: "POST".into(), path: "/indexes/m/documents".into(), ..RequestHead::default() };
        let HeadersDecision::Buffer(p) = front::on_headers(&worker.engine, &mut worker.host, &head) else { panic!() };
        let BodyDecision::Reply(r) = front::on_write_body(&mut worker.engine, &mut worker.host, 1, &p, body) else { panic!("queued") };
        let text = String::from_utf8(r.body).unwrap();
        assert_eq!(r.status, 400, "{text}");
        assert!(text.contains("\"code\":\"malformed_payload\"") && text.contains("UTF-8"), "{text}");
    }
    w.run(5, 10);
    let history = &w.workers[0].host.history;
    assert!(history.iter().all(|c| c.method == "GET"), "{history:?}");
    assert!(w.nodes.iter().all(|n| n.documents == 0 && n.index.is_none()));
}

#[test]
fn a_task_deletion_forgets_the_filters_tasks_only_once_the_nodes_deleted_theirs() {
    use super::state::{keys, records::TaskRecord, store};
    let mut w = World::new(3, 1, json!({"writes": "mirror"}));
    let ctx = w.send(0, "POST", "/indexes/m/documents", Some(json!([{"id": 1}])));
    settle(&mut w, 20);
    let uid = w.reply(0, ctx).expect("enqueued").1["taskUid"].as_u64().unwrap();
    assert_eq!(w.task(uid).status, "succeeded");
    let store_has = |w: &World| store::read::<TaskRecord>(&w.workers[0].host, &keys::task_key(uid)).unwrap().is_some();
    // Every node refuses the deletion (the key lacks `tasks.delete`): nothing is deleted anywhere.
    let refusal = json!({"message": "no", "code": "invalid_api_key", "type": "auth", "link": "x"});
    for n in &mut w.nodes {
        n.reject = Some((403, refusal.to_string()));
    }
    let refused = w.send(0, "DELETE", &format!("/tasks?uids={uid}"), None);
    settle(&mut w, 20);
    assert_eq!(w.reply(0, refused).map(|r| r.0), Some(403));
    assert!(store_has(&w), "the task is still there, as on every node");
    // Taken by every node: gone through the gateway too.
    for n in &mut w.nodes {
        n.reject = None;
    }
    let deleted = w.send(0, "DELETE", &format!("/tasks?uids={uid}"), None);
    settle(&mut w, 40);
    let deletion = w.reply(0, deleted).expect("enqueued").1["taskUid"].as_u64().unwrap();
    assert_eq!(w.task(deletion).status, "succeeded");
    assert!(!store_has(&w), "forgotten once the deletion succeeded");
}

#[test]
fn an_operator_check_of_an_index_no_node_has_is_answered_at_once() {
    for writes in ["mirror", "passthrough"] {
        let mut w = World::new(2, 1, json!({"writes": writes}));
        let now = w.envoy.borrow().now_ms;
        w.workers[0].engine.request_verify("typo", 91, VerifyPurpose::Report, now);
        w.run(5, 10);
        let (status, body) = w.reply(0, 91).expect("answered within the check, not by its deadline");
        assert_eq!((status, body["converged"].clone()), (200, json!(false)), "{writes}: {body}");
        assert!(body["detail"].as_str().unwrap().contains("on no node"), "{writes}: {body}");
        assert!(!w.envoy.borrow().counters.contains_key(&metrics::for_index(metrics::DRIFT_DETECTED_TOTAL, "typo")));
    }
}

#[test]
fn a_node_that_is_down_while_only_drift_checks_go_to_it_counts_callout_errors() {
    let mut w = World::new(3, 1, json!({"settings_drift_check": {"interval_s": 1}}));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
    settle(&mut w, 20);
    w.nodes[1].down = true;
    let errors = |w: &World| w.envoy.borrow().counters.get(&metrics::for_node(metrics::CALLOUT_ERRORS_TOTAL, "node-1")).copied().unwrap_or(0);
    let before = errors(&w);
    w.run(40, 100);
    assert!(errors(&w) >= before + 3, "one failed call per check at least: {} then {}", before, errors(&w));
    assert_eq!(w.envoy.borrow().counters.get(&metrics::for_node(metrics::CALLOUT_ERRORS_TOTAL, "node-0")).copied().unwrap_or(0), 0);
}

#[test]
fn a_write_canceled_before_it_went_out_ends_canceled_and_reaches_no_node() {
    let mut w = World::new(3, 1, json!({"writes": "mirror"}));
    let settings = w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"rankingRules": ["typo"]})));
    w.pump_and_answer(0);
    // A document write waits behind the settings write, which the nodes are still applying.
    let waiting = w.send(0, "POST", "/indexes/m/documents", Some(json!([{"id": 1}])));
    let first = w.reply(0, settings).expect("the settings write was taken").1["taskUid"].as_u64().unwrap();
    let queued = first + 1;
    assert_eq!((w.task(queued).kind.as_str(), w.task(queued).status.as_str()), ("documentAdditionOrUpdate", "enqueued"));
    let cancel = w.send(0, "POST", &format!("/tasks/cancel?uids={queued}"), None);
    settle(&mut w, 60);
    let canceler = w.reply(0, cancel).expect("the cancelation was taken").1["taskUid"].as_u64().unwrap();
    assert_eq!(w.task(canceler).status, "succeeded");
    assert_eq!(w.task(canceler).details["canceledTasks"], json!(1), "{:?}", w.task(canceler));
    let task = w.task(queued);
    assert_eq!((task.status.as_str(), task.canceled_by), ("canceled", Some(canceler)), "{task:?}");
    let view: serde_json::Value = serde_json::from_slice(&super::tasks::task_view_json(&task)).unwrap();
    assert_eq!(view["canceledBy"], json!(canceler));
    assert!(w.nodes.iter().all(|n| n.documents == 0), "it reached no node");
    let (status, body) = w.reply(0, waiting).expect("its client got its task when its turn came");
    assert_eq!((status, body["taskUid"].as_u64()), (202, Some(queued)));
    assert_eq!(w.task(first).status, "succeeded", "the write before it is not touched");
    assert!(w.index("m").queue.is_empty());
}

#[test]
fn a_cancelation_that_reaches_a_write_after_it_went_out_leaves_it_to_the_nodes() {
    use super::state::task_change::TaskChange;
    let mut w = World::new(3, 1, json!({"writes": "mirror"}));
    let ctx = w.send(0, "POST", "/indexes/m/documents", Some(json!([{"id": 1}])));
    w.pump_and_answer(0);
    let mut task = w.task(w.reply(0, ctx).expect("taken").1["taskUid"].as_u64().unwrap());
    assert_eq!((task.status.as_str(), task.miroir.nodes.len()), ("enqueued", 3));
    TaskChange::CancelRequested { by: 9 }.apply(&mut task);
    assert_eq!(task.canceled_by, None, "the nodes have it: their cancelation decides");
}
