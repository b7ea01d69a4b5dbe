//! The engine on a ledger reached by callouts (state/by_callout.rs), the shape of an external
//! store: every ledger answer arrives through `Engine::on_callout_response`, interleaved with
//! the nodes' answers. The same end states as with the shared-data ledger (engine_tests.rs).

use serde_json::json;

use super::admin_views::VerifyPurpose;
use super::engine::read_hot;
use super::metrics;
use super::test_world::{sequential_config, sequential_rollback_scenario, World};

const FIRST_TASK: u64 = 2130706432;

#[test]
fn a_write_commits_and_a_dropped_update_is_repaired_over_a_callout_ledger() {
    let mut w = World::by_callout(3, 2, json!({}));
    w.nodes[2].drop_updates = 1;
    let ctx = w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"rankingRules": ["typo"]})));
    w.run(40, 10);
    assert_eq!(w.reply(0, ctx).map(|r| r.0), Some(202));
    for n in &w.nodes {
        assert_eq!(n.settings["rankingRules"], json!(["typo"]));
    }
    let rec = w.index("m");
    assert_eq!((rec.version, rec.queue.len(), rec.lease.is_none()), (1, 0, true));
    let task = w.task(FIRST_TASK);
    assert_eq!((task.status.as_str(), task.miroir.repair_attempts), ("succeeded", 1));
    assert!(w.workers[0].host.history.iter().any(|c| c.cluster == "ledger"), "the ledger answered by callouts");
}

#[test]
fn a_node_that_stays_wrong_freezes_over_a_callout_ledger() {
    let mut w = World::by_callout(3, 1, json!({}));
    w.nodes[1].different = Some(("rankingRules".into(), json!(["words"])));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"rankingRules": ["typo"]})));
    w.run(100, 10);
    let rec = w.index("m");
    assert_eq!((rec.frozen.map(|f| f.nodes), rec.version), (Some(vec!["node-1".to_string()]), 0));
    let task = w.task(FIRST_TASK);
    assert_eq!((task.status.as_str(), task.miroir.frozen), ("failed", true));
    assert!(read_hot(&w.workers[0].host, "m").frozen);
}

#[test]
fn sequential_rollback_works_over_a_callout_ledger() {
    let mut w = World::by_callout(3, 1, sequential_config());
    sequential_rollback_scenario(&mut w, "callout ledger");
}

#[test]
fn drift_repair_and_an_operator_unfreeze_work_over_a_callout_ledger() {
    let mut w = World::by_callout(3, 2, json!({"settings_drift_check": {"interval_s": 1}}));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"rankingRules": ["typo"]})));
    w.run(20, 10);
    w.nodes[1].settings.insert("rankingRules".into(), json!(["words"]));
    w.envoy.borrow_mut().now_ms += 1_000;
    w.run(40, 10);
    for n in &w.nodes {
        assert_eq!(n.settings["rankingRules"], json!(["typo"]));
    }
    assert_eq!(w.envoy.borrow().counters[&metrics::for_index(metrics::DRIFT_REPAIR_TOTAL, "m")], 1);
    assert_eq!(w.index("m").version, 1);

    let mut w = World::by_callout(2, 1, json!({"settings_broadcast": {"max_repair_retries": 0}}));
    w.nodes[1].different = Some(("facetSearch".into(), json!(true)));
    w.send(0, "PATCH", "/indexes/m/settings", Some(json!({"facetSearch": false})));
    w.run(20, 10);
    assert!(w.index("m").frozen.is_some());
    w.nodes[1].settings.insert("facetSearch".into(), json!(false));
    let now = w.envoy.borrow().now_ms;
    w.workers[0].engine.request_verify("m", 77, VerifyPurpose::Unfreeze, now);
    w.run(10, 10);
    let (status, body) = w.reply(0, 77).expect("operator answered");
    assert_eq!((status, body["converged"].clone()), (200, json!(true)), "{body}");
    assert!(w.index("m").frozen.is_none());
}
