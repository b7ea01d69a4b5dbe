//! Property tests of mirror mode's pure decisions (`core::mirror`): what the fleet's answers to
//! one write add up to, and how a filter task ends from its node tasks. Arbitrary answers and
//! arbitrary bytes: never a panic, every node accounted for exactly once, and a node that lost
//! its task never blamed.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

mod common;

use miroir_filter::core::host::CalloutResponse;
use miroir_filter::core::mirror::{parse_answer, parse_task_page, task_end, verdict, NodeAnswer, NodeTaskState, Verdict};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::json;

fn answer() -> impl Strategy<Value = NodeAnswer> {
    prop_oneof![
        (0u64..5).prop_map(|uid| NodeAnswer::Task { uid, kind: "documentAdditionOrUpdate".into() }),
        (select(vec![200u16, 201, 204]), 0u8..3).prop_map(|(status, b)| NodeAnswer::Answered { status, body: json!({"b": b}).to_string() }),
        (select(vec![400u16, 404, 409]), 0u8..3).prop_map(|(status, b)| NodeAnswer::Refused { status, body: json!({"code": b}).to_string() }),
        Just(NodeAnswer::Failed { reason: "down".into() }),
    ]
}

fn state() -> impl Strategy<Value = NodeTaskState> {
    prop_oneof![
        Just(NodeTaskState { status: "succeeded".into(), error: None, details: Some(json!({"n": 1})) }),
        select(vec!["missing_document_id", "index_not_found"])
            .prop_map(|code| NodeTaskState { status: "failed".into(), error: Some(json!({"code": code})), details: None }),
        Just(NodeTaskState { status: "canceled".into(), error: None, details: None }),
        Just(NodeTaskState::lost()),
    ]
}

proptest! {
    #![proptest_config(common::config(2_000))]

    /// Every node is either behind a node task or missed the write, once; a relay names as odd
    /// exactly the nodes that did not answer like the relayed answer.
    #[test]
    fn every_node_is_accounted_for_once(answers in prop::collection::vec(answer(), 1..8)) {
        match verdict(&answers) {
            Verdict::Enqueued { tasks, missed, .. } => {
                prop_assert!(!tasks.is_empty());
                let mut all: Vec<usize> = tasks.iter().map(|(i, _)| *i).chain(missed.iter().copied()).collect();
                all.sort_unstable();
                prop_assert_eq!(all, (0..answers.len()).collect::<Vec<_>>());
                for (i, uid) in &tasks {
                    let behind = matches!(&answers[*i], NodeAnswer::Task { uid: u, .. } if u == uid);
                    prop_assert!(behind, "node {} behind task {}", i, uid);
                }
            }
            Verdict::Relay { status, odd, .. } => {
                let enqueued = answers.iter().any(|a| matches!(a, NodeAnswer::Task { .. }));
                prop_assert!(!enqueued, "a relay with a node task");
                let applied = answers.iter().any(|a| matches!(a, NodeAnswer::Answered { .. }));
                prop_assert_eq!(applied, (200..300).contains(&status));
                prop_assert!(odd.iter().all(|i| *i < answers.len()));
                prop_assert!(odd.len() < answers.len(), "the relayed answer came from some node");
            }
            Verdict::Unreachable => {
                let all_failed = answers.iter().all(|a| matches!(a, NodeAnswer::Failed { .. }));
                prop_assert!(all_failed, "unreachable with an answer");
            }
        }
    }

    /// A task's end is one of its nodes' outcomes; the odd nodes are exactly those that ended
    /// otherwise, never one that lost its task, unless every node did.
    #[test]
    fn a_task_ends_as_some_node_did_and_blames_no_lost_task(states in prop::collection::vec(state(), 1..8)) {
        let end = task_end(&states);
        prop_assert!(states.iter().any(|s| s.status == end.status));
        let lost = |s: &NodeTaskState| s.error.as_ref().and_then(|e| e.get("code")) == Some(&json!("miroir_node_task_lost"));
        for i in &end.odd {
            prop_assert!(*i < states.len());
            prop_assert!(!lost(&states[*i]) || states.iter().all(lost));
        }
        let agree = states.iter().enumerate().filter(|(i, s)| !end.odd.contains(i) && !lost(s)).count();
        prop_assert!(agree > 0 || states.iter().all(lost));
    }

    /// Node answers and task pages of any bytes are read without a panic.
    #[test]
    fn node_bytes_never_panic(status in prop::option::of(100u16..600), body in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_answer(&CalloutResponse { status, body: body.clone() });
        let _ = parse_task_page(&body);
    }
}
