//! The engine on a ledger that answers later (state/delayed.rs): every job path — commit,
//! repair, freeze, the serialized queue, sequential commit and rollback, drift repair, an
//! operator's verify and repair — with every ledger answer held and let go as submitted,
//! reversed and shuffled, must reach the same end states as with answers at once
//! (engine_tests.rs).

use serde_json::json;

use super::admin_views::VerifyPurpose;
use super::engine::read_hot;
use super::metrics;
use super::state::delayed::Order;
use super::test_world::{sequential_config, sequential_rollback_scenario, World};

const ORDERS: [Order; 4] = [Order::AsSubmitted, Order::Reversed, Order::Shuffled(1), Order::Shuffled(42)];
const FIRST_TASK: u64 = 2130706432;

#[test]
fn a_write_commits_everywhere_when_answers_come_late_and_out_of_order() {
    for order in ORDERS {
        let mut w = World::delayed(3, 2, json!({}), order);
        let ctx = w.send(0, "PATCH", "/indexes/movies/settings", Some(json!({"rankingRules": ["typo", "words"]})));
        w.run(20, 10);
        let (status, body) = w.reply(0, ctx).expect("client answered");
        assert_eq!((status, body["taskUid"].as_u64()), (202, Some(FIRST_TASK)), "{order:?}");
        for n in &w.nodes {
            assert_eq!(n.settings["rankingRules"], json!(["typo", "words"]), "{order:?}");
        }
        let rec = w.index("movies");
        assert_eq!((rec.version, rec.node_versions.values().copied().collect::<Vec<_>>(), rec.queue.len(), rec.lease.clone()), (1, vec![1, 1, 1], 0, None), "{order:?}");
        let task = w.task(FIRST_TASK);
        assert_eq!((task.status.as_str(), task.miroir.settings_version, task.miroir.phase.as_str()), ("succeeded", Some(1), "committed"), "{order:?}");
        let hot = read_hot(&w.workers[1].host, "movies");
        assert_eq!((hot.version, hot.inconsistent, hot.frozen), (1, false, false), "{order:?}");
        assert!(w.most_released_at_once > 1, "answers were let go together, in the chosen order");
    }
}

#[test]
fn a_unanimous_rejection_is_passed_through_when_answers_come_late() {
    for order in ORDERS {
        let mut w = World::delayed(3, 1, json!({}), order);
        let body = r#"{"message":"bad rule","code":"invalid_settings_ranking_rules","type":"invalid_request","link":"x"}"#;
        for n in &mut w.nodes {
            n.reject = Some((400, body.into()));
        }
        let ctx = w.send(0, "PATCH", "/indexes/movies/settings", Some(json!({"rankingRules": ["nope"]})));
        w.run(5, 10);
        let reply = w.workers[0].host.replies.iter().find(|(c, _)| *c == ctx).expect("answered").1.clone();
        assert_eq!((reply.status, String::from_utf8(reply.body).unwrap()), (400, body.to_string()), "{order:?}");
        let rec = w.index("movies");
        assert_eq!((rec.version, rec.queue.len(), rec.lease.is_none()), (0, 0, true), "{order:?}");
    }
}

#[test]
fn a_node_that_dropped_the_update_is_repaired_when_answers_come_late() {
    for order in ORDERS {
        let mut w = World::delayed(3, 1, json!({}), order);
        w.nodes[2].drop_updates = 1;
        let ctx = w.send(0, "PUT", "/indexes/movies/settings/stop-words", Some(json!(["a", "the"])));
        w.run(40, 10);
        assert_eq!(w.reply(0, ctx).unwrap().0, 202, "{order:?}");
        for n in &w.nodes {
            assert_eq!(n.settings["stopWords"], json!(["a", "the"]), "{order:?}");
        }
        let rec = w.index("movies");
        assert_eq!((rec.version, rec.frozen.is_none()), (1, true), "{order:?}");
        let task = w.task(FIRST_TASK);
        assert_eq!((task.status.as_str(), task.miroir.repair_attempts), ("succeeded", 1), "{order:?}");
    }
}

#[test]
fn a_node_that_stays_wrong_freezes_the_index_when_answers_come_late() {
    for order in ORDERS {
        let mut w = World::delayed(3, 1, json!({}), order);
        w.nodes[1].different = Some(("rankingRules".into(), json!(["words"])));
        w.send(0, "PATCH", "/indexes/movies/settings", Some(json!({"rankingRules": ["typo"]})));
        w.run(100, 10);
        let rec = w.index("movies");
        let frozen = rec.frozen.clone().expect("frozen");
        assert_eq!((frozen.nodes, rec.version, rec.queue.len(), rec.lease.is_none()), (vec!["node-1".to_string()], 0, 0, true), "{order:?}");
        let task = w.task(FIRST_TASK);
        assert_eq!((task.status.as_str(), task.miroir.repair_attempts, task.miroir.frozen), ("failed", 2, true), "{order:?}");
        assert_eq!(task.error.unwrap()["code"], "miroir_settings_divergence");
        assert!(read_hot(&w.workers[0].host, "movies").frozen, "{order:?}");
        assert_eq!(w.envoy.borrow().gauges[&metrics::for_index(metrics::DIVERGENCE, "movies")], 1);
    }
}

#[test]
fn writes_on_one_index_still_run_one_at_a_time_when_answers_come_late() {
    for order in ORDERS {
        let mut w = World::delayed(2, 2, json!({}), order);
        let mut ctxs = vec![];
        for i in 0..5 {
            let worker = i % 2;
            ctxs.push((worker, w.send(worker, "PUT", "/indexes/m/settings/ranking-rules", Some(json!([format!("r{i}:asc")])))));
        }
        w.run(200, 10);
        assert_eq!(w.index("m").version, 5, "{order:?}");
        for n in &w.nodes {
            assert_eq!(n.settings["rankingRules"], json!(["r4:asc"]), "{order:?}");
        }
        for (worker, ctx) in ctxs {
            assert_eq!(w.reply(worker, ctx).unwrap().0, 202, "{order:?}");
        }
        let proposes = w.workers.iter().flat_map(|wk| wk.host.history.iter()).filter(|c| c.method == "PUT").count();
        assert_eq!(proposes, 10, "{order:?}");
    }
}

#[test]
fn sequential_rollback_and_commit_hold_when_answers_come_late() {
    for order in ORDERS {
        let mut w = World::delayed(3, 1, sequential_config(), order);
        sequential_rollback_scenario(&mut w, &format!("{order:?}"));

        let mut w = World::delayed(3, 1, json!({"settings_broadcast": {"strategy": "sequential"}}), order);
        w.send(0, "PUT", "/indexes/m/settings/ranking-rules", Some(json!(["typo"])));
        w.run(60, 10);
        assert_eq!(w.index("m").version, 1, "{order:?}");
        let puts: Vec<&str> = w.workers[0].host.history.iter().filter(|c| c.method == "PUT").map(|c| c.cluster.as_str()).collect();
        assert_eq!(puts, vec!["meili_node_0", "meili_node_1", "meili_node_2"], "{order:?}");
    }
}

#[test]
fn drift_is_repaired_from_the_desired_settings_when_answers_come_late() {
    for order in ORDERS {
        let mut w = World::delayed(3, 2, json!({"settings_drift_check": {"interval_s": 1}}), order);
        w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"rankingRules": ["typo"], "distinctAttribute": "sku"})));
        w.run(20, 10);
        assert_eq!(w.index("m").version, 1, "{order:?}");
        w.nodes[1].settings.insert("rankingRules".into(), json!(["words"]));
        w.envoy.borrow_mut().now_ms += 1_000;
        w.run(40, 10);
        for n in &w.nodes {
            assert_eq!(n.settings["rankingRules"], json!(["typo"]), "{order:?}");
        }
        let e = w.envoy.borrow();
        assert_eq!(e.counters[&metrics::for_index(metrics::DRIFT_REPAIR_TOTAL, "m")], 1, "{order:?}");
        drop(e);
        assert_eq!(w.index("m").version, 1, "a repair makes no new version ({order:?})");
    }
}

#[test]
fn an_operator_verify_unfreezes_a_converged_fleet_when_answers_come_late() {
    for order in ORDERS {
        let mut w = World::delayed(2, 1, json!({"settings_broadcast": {"max_repair_retries": 0}}), order);
        w.nodes[1].different = Some(("facetSearch".into(), json!(true)));
        w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
        w.run(20, 10);
        assert!(w.index("m").frozen.is_some(), "{order:?}");
        w.nodes[1].settings.insert("facetSearch".into(), json!(false));
        let now = w.envoy.borrow().now_ms;
        w.workers[0].engine.request_verify("m", 77, VerifyPurpose::Unfreeze, now);
        w.run(10, 10);
        let (status, body) = w.reply(0, 77).expect("operator answered");
        assert_eq!((status, body["converged"].clone()), (200, json!(true)), "{order:?} {body}");
        assert!(w.index("m").frozen.is_none(), "{order:?}");
        assert!(!read_hot(&w.workers[0].host, "m").frozen, "{order:?}");
    }
}

#[test]
fn an_operator_repair_brings_a_frozen_index_back_when_answers_come_late() {
    for order in ORDERS {
        let mut w = World::delayed(3, 1, json!({"settings_broadcast": {"max_repair_retries": 1, "repair_backoff_base_ms": 100}}), order);
        w.envoy.borrow_mut().env.insert("MIROIR_NODE_API_KEY".into(), "node-key".into());
        w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"rankingRules": ["typo"], "distinctAttribute": "sku"})));
        w.run(20, 10);
        w.nodes[2].down = true;
        w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"distinctAttribute": "isbn"})));
        w.run(60, 10);
        assert!(w.index("m").frozen.is_some(), "{order:?}");
        w.nodes[2].down = false;
        let now = w.envoy.borrow().now_ms;
        w.workers[0].engine.request_verify("m", 71, VerifyPurpose::Repair, now);
        w.run(40, 10);
        let (status, body) = w.reply(0, 71).expect("operator answered");
        assert_eq!(status, 202, "{order:?} {body}");
        let uid = body["taskUid"].as_u64().unwrap();
        assert_eq!(w.task(uid).status, "succeeded", "{order:?}");
        for n in &w.nodes {
            assert_eq!(n.settings["distinctAttribute"], json!("sku"), "{order:?}");
        }
        let rec = w.index("m");
        assert_eq!((rec.frozen.is_none(), rec.version), (true, 1), "{order:?}");
        assert!(!read_hot(&w.workers[0].host, "m").frozen, "{order:?}");
        w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"distinctAttribute": "isbn"})));
        w.run(20, 10);
        assert_eq!(w.index("m").version, 2, "writes are accepted again ({order:?})");
    }
}

#[test]
fn answers_really_are_held_until_released() {
    let mut w = World::delayed(2, 1, json!({}), Order::Reversed);
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
    let worker = &mut w.workers[0];
    worker.engine.pump(&mut worker.host);
    // The active list is asked for and nothing else happens until the answer is let go.
    assert!(worker.release.as_ref().unwrap().held() > 0);
    assert!(worker.host.callouts.values().all(|c| c.method == "GET"), "no node touched before the claim is answered");
    w.run(20, 10);
    assert_eq!(w.index("m").version, 1);
}

#[test]
fn a_job_longer_than_a_lease_renewal_keeps_its_lease_when_answers_come_late() {
    for order in ORDERS {
        let mut w = World::delayed(3, 2, json!({"settings_broadcast": {"repair_backoff_base_ms": 3000}}), order);
        w.nodes[2].drop_updates = 1;
        w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
        w.run(40, 500);
        let task = w.task(FIRST_TASK);
        assert_eq!((task.status.as_str(), task.miroir.repair_attempts), ("succeeded", 1), "{order:?}");
        assert!(task.finished_ms.unwrap() - task.started_ms.unwrap() > super::state::lease::LEASE_TTL_MS / 5, "{order:?}");
        let proposes = w.workers.iter().flat_map(|wk| wk.host.history.iter()).filter(|c| c.method == "PATCH").count();
        assert_eq!(proposes, 4, "one worker ran the job, once ({order:?})");
    }
}

#[test]
fn drift_without_a_safe_reference_freezes_when_answers_come_late() {
    for order in ORDERS {
        let mut w = World::delayed(3, 1, json!({"settings_drift_check": {"interval_s": 1}}), order);
        for (i, n) in w.nodes.iter_mut().enumerate() {
            n.index = Some("m".into());
            let key = if i == 0 { "sk-AAAXXXXXX..." } else { "sk-BBBXXXXXX..." };
            n.settings.insert("embedders".into(), json!({"e": {"source": "openAi", "apiKey": key}}));
        }
        w.run(20, 10);
        assert!(w.index("m").frozen.is_some(), "{order:?}");
        assert!(read_hot(&w.workers[0].host, "m").frozen, "{order:?}");
        assert!(w.workers[0].host.history.iter().all(|c| c.method == "GET"), "{order:?}");
    }
}

#[test]
fn the_drift_check_stays_bounded_when_answers_come_late() {
    for order in ORDERS {
        let mut w = World::delayed(3, 1, json!({"settings_drift_check": {"interval_s": 1, "max_reads_in_flight": 2}}), order);
        for n in &mut w.nodes {
            n.others = (0..9).map(|i| format!("idx{i}")).collect();
        }
        w.run(30, 10);
        assert!(w.max_reads_in_flight <= 2, "{order:?}");
        let reads = w.workers[0].host.history.iter().filter(|c| c.path.ends_with("/settings")).count();
        assert_eq!(reads, 9 * 3, "every index read from every node ({order:?})");
    }
}

#[test]
fn an_index_missing_on_one_node_is_recreated_when_answers_come_late() {
    for order in ORDERS {
        let mut w = World::delayed(2, 1, json!({"settings_drift_check": {"interval_s": 1}}), order);
        w.send(0, "PUT", "/indexes/m/settings/synonyms", Some(json!({"a": ["b"]})));
        w.run(20, 10);
        w.nodes[1].index = None;
        w.nodes[1].settings = super::proposal::default_settings().clone();
        w.envoy.borrow_mut().now_ms += 1_000;
        w.run(40, 10);
        assert_eq!(w.nodes[1].index.as_deref(), Some("m"), "{order:?}");
        assert_eq!(w.nodes[1].settings["synonyms"], json!({"a": ["b"]}), "{order:?}");
    }
}

#[test]
fn an_operator_check_is_answered_by_its_deadline_even_if_the_ledger_never_answers() {
    let mut w = World::delayed(2, 1, json!({"settings_broadcast": {"verify_timeout_s": 1}}), Order::Reversed);
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
    w.run(20, 10);
    let now = w.envoy.borrow().now_ms;
    w.workers[0].engine.request_verify("m", 90, VerifyPurpose::Report, now);
    // From here on nothing the ledger answers is let go, and no node answers either.
    for _ in 0..70 {
        w.envoy.borrow_mut().now_ms += 100;
        let worker = &mut w.workers[0];
        worker.engine.pump(&mut worker.host);
        worker.host.callouts.clear();
    }
    assert!(w.workers[0].release.as_ref().unwrap().held() > 0);
    let (status, body) = w.reply(0, 90).expect("answered by the deadline");
    assert_eq!((status, body["code"].as_str()), (504, Some("miroir_verify_timeout")));
}

#[test]
fn an_operator_report_shows_the_fleet_when_answers_come_late() {
    for order in ORDERS {
        let mut w = World::delayed(3, 1, json!({}), order);
        w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
        w.run(20, 10);
        let now = w.envoy.borrow().now_ms;
        w.workers[0].engine.request_verify("m", 91, VerifyPurpose::Report, now);
        w.run(10, 10);
        let (status, body) = w.reply(0, 91).expect("operator answered");
        assert_eq!((status, body["converged"].clone(), body["index"]["settingsVersion"].clone()), (200, json!(true), json!(1)), "{order:?} {body}");
    }
}

#[test]
fn many_shuffles_of_the_answers_reach_the_same_end_states() {
    for seed in 100..132 {
        let order = Order::Shuffled(seed);
        let mut w = World::delayed(3, 2, json!({}), order);
        w.nodes[2].drop_updates = 1;
        let first = w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"rankingRules": ["typo"]})));
        let second = w.send(1, "PUT", "/indexes/m/settings/stop-words", Some(json!(["a"])));
        w.run(80, 10);
        assert_eq!((w.reply(0, first).map(|r| r.0), w.reply(1, second).map(|r| r.0)), (Some(202), Some(202)), "{order:?}");
        for n in &w.nodes {
            assert_eq!((n.settings["rankingRules"].clone(), n.settings["stopWords"].clone()), (json!(["typo"]), json!(["a"])), "{order:?}");
        }
        let rec = w.index("m");
        assert_eq!((rec.version, rec.queue.len(), rec.lease.is_none(), rec.frozen.is_none()), (2, 0, true, true), "{order:?}");
        assert_eq!(w.task(FIRST_TASK).status, "succeeded", "{order:?}");
        assert_eq!(w.task(FIRST_TASK + 1).status, "succeeded", "{order:?}");
    }
}

#[test]
fn mirror_mode_catch_up_reaches_the_same_end_when_answers_come_late() {
    for order in ORDERS {
        let mut w = World::delayed(3, 2, json!({"writes": "mirror"}), order);
        w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"rankingRules": ["typo"]})));
        w.run(30, 10);
        w.nodes[2].down = true;
        w.send(1, "PATCH", "/indexes/m/settings", Some(json!({"distinctAttribute": "sku"})));
        w.run(60, 10);
        w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"stopWords": ["a"]})));
        w.run(60, 10);
        let rec = w.index("m");
        assert_eq!((rec.version, rec.frozen.is_none()), (3, true), "{order:?}");
        assert_eq!(rec.out_of_sync.get("node-2").and_then(|l| l.replay_from), Some(FIRST_TASK + 1), "{order:?}");
        w.nodes[2].down = false;
        w.run(300, 10);
        let rec = w.index("m");
        assert!(rec.out_of_sync.is_empty(), "{order:?}: {rec:?}");
        assert_eq!(rec.node_version("node-2"), 3, "{order:?}");
        assert_eq!(w.nodes[2].settings, w.nodes[0].settings, "{order:?}");
        assert_eq!(rec.lease, None, "{order:?}: the lease is let go once nothing is left to do");
    }
}
