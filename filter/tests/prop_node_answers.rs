//! Property tests of the core's readers of untrusted input other than paths and configuration:
//! node answers (`job::parse_propose`, `job::parse_task`, `job::unanimous_rejection`), the
//! shared-data hot record, and the read-back prediction over client bodies and node read-backs
//! (`proposal`). Arbitrary bytes and arbitrary JSON (biased to the keys these readers look at):
//! never a panic, and the answers the node contract fixes.
#![cfg(not(target_arch = "wasm32"))]
// Helpers outside `#[test]` functions index and unwrap like the tests do (a panic here is a test
// failure); clippy.toml's in-test allowances do not reach them.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

mod common;

use miroir_filter::core::canonical_text::read_text;
use miroir_filter::core::host::CalloutResponse;
use miroir_filter::core::job::{
    parse_propose, parse_task, unanimous_rejection, NodeTask, ProposeResult, TASK_LOST,
};
use miroir_filter::core::proposal::{default_settings, Proposal};
use miroir_filter::core::records::HotRecord;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Number, Value};

/// Keys the readers look up, so that generated objects reach their branches.
const KEYS: &[&str] = &[
    "taskUid",
    "status",
    "error",
    "details",
    "code",
    "succeeded",
    "failed",
    "canceled",
    "enqueued",
    "rankingRules",
    "stopWords",
    "synonyms",
    "typoTolerance",
    "minWordSizeForTypos",
    "oneTypo",
    "disableOnWords",
    "faceting",
    "sortFacetValuesBy",
    "maxValuesPerFacet",
    "pagination",
    "maxTotalHits",
    "embedders",
    "apiKey",
    "source",
    "localizedAttributes",
    "locales",
    "attributePatterns",
    "filterableAttributes",
    "features",
    "facetSearch",
    "filter",
    "equality",
    "comparison",
    "sortableAttributes",
    "displayedAttributes",
    "searchableAttributes",
    "distinctAttribute",
    "proximityPrecision",
    "searchCutoffMs",
    "prefixSearch",
    "chat",
    "foreignKeys",
    "*",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(KEYS).prop_map(String::from),
        1 => "\\PC{0,6}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_filter_map("finite", |d| Number::from_f64(d).map(Value::Number)),
        key().prop_map(Value::String),
        "\\PC{0,8}".prop_map(Value::String),
        select(vec![
            "fr", "fra", "en", "zho", "alpha", "count", "byWord", "*", "ÜBER", "café"
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A body as a node may send it: arbitrary bytes, or JSON.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        json().prop_map(|v| v.to_string().into_bytes()),
        (json(), any::<u64>()).prop_map(|(v, uid)| {
            let mut object = match v {
                Value::Object(m) => m,
                other => Map::from_iter([("x".to_string(), other)]),
            };
            object.insert("taskUid".into(), json!(uid));
            Value::Object(object).to_string().into_bytes()
        }),
        (
            json(),
            select(vec![
                "succeeded",
                "failed",
                "canceled",
                "enqueued",
                "processing"
            ])
        )
            .prop_map(|(v, status)| {
                json!({"status": status, "error": v, "details": {"rankingRules": ["words"]}})
                    .to_string()
                    .into_bytes()
            }),
    ]
}

fn status() -> impl Strategy<Value = Option<u16>> {
    prop_oneof![
        Just(None),
        select(vec![200u16, 202, 204, 400, 401, 404, 408, 500, 503]).prop_map(Some),
        any::<u16>().prop_map(Some),
    ]
}

fn parsed(body: &[u8]) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

proptest! {
    #![proptest_config(common::config(1_000))]

    /// A propose answer: 2xx with a numeric `taskUid` is accepted with that uid, 4xx is a
    /// synchronous refusal carrying the body, everything else a failure.
    #[test]
    fn propose_answers(status in status(), body in body()) {
        let response = CalloutResponse { status, body: body.clone() };
        let result = parse_propose(&response);
        let uid = parsed(&body).and_then(|v| v.get("taskUid").and_then(Value::as_u64));
        match (status, uid) {
            (Some(s @ 200..=299), Some(uid)) => {
                prop_assert_eq!(result, ProposeResult::Accepted { task_uid: uid }, "HTTP {}", s)
            }
            (Some(s @ 400..=499), _) => prop_assert_eq!(
                result,
                ProposeResult::Rejected { status: s, body: String::from_utf8_lossy(&body).into_owned() }
            ),
            _ => prop_assert!(matches!(result, ProposeResult::Failed { .. }), "{:?}", result),
        }
    }

    /// A task poll: only a 200 with a string `status` is read; `succeeded`, `failed` (with its
    /// error) and `canceled` end the task, any other status keeps it pending.
    #[test]
    fn task_answers(status in status(), body in body()) {
        let response = CalloutResponse { status, body: body.clone() };
        let result = parse_task(&response);
        let value = parsed(&body);
        let state = value.as_ref().and_then(|v| v.get("status")).and_then(Value::as_str);
        match (status, state) {
            (Some(200), Some(state)) => {
                let value = value.as_ref().unwrap();
                let (task, details) = result.unwrap();
                prop_assert_eq!(details, value.get("details").cloned());
                match state {
                    "succeeded" => prop_assert_eq!(task, NodeTask::Succeeded),
                    "failed" => prop_assert_eq!(
                        task,
                        NodeTask::Failed(value.get("error").cloned().unwrap_or(Value::Null))
                    ),
                    "canceled" => prop_assert!(
                        matches!(&task, NodeTask::Failed(e) if e["code"] == "task_canceled"),
                        "{:?}", task
                    ),
                    _ => prop_assert_eq!(task, NodeTask::Pending),
                }
            }
            // The node forgot its task: final, and left to the verify (whatever the body says).
            (Some(404), _) => prop_assert!(
                matches!(&result, Some((NodeTask::Failed(e), None)) if e["code"] == TASK_LOST),
                "{:?}", result
            ),
            _ => prop_assert_eq!(result, None),
        }
    }

    /// Several nodes' refusals: passed on only when every node refused with the same status and
    /// the same body (as JSON when it is JSON).
    #[test]
    fn unanimous_rejections(
        answers in prop::collection::vec((status(), select(vec![
            br#"{"code":"invalid_settings_ranking_rules","message":"x"}"#.to_vec(),
            br#"{ "message":"x", "code":"invalid_settings_ranking_rules" }"#.to_vec(),
            br#"{"code":"index_not_found"}"#.to_vec(),
            b"not json".to_vec(),
            b"\xff\xfe".to_vec(),
        ])), 0..5),
    ) {
        let results: Vec<ProposeResult> = answers
            .iter()
            .map(|(status, body)| parse_propose(&CalloutResponse { status: *status, body: body.clone() }))
            .collect();
        let got = unanimous_rejection(&results);
        let all_rejected: Option<Vec<(u16, &String)>> = results
            .iter()
            .map(|r| match r {
                ProposeResult::Rejected { status, body } => Some((*status, body)),
                _ => None,
            })
            .collect();
        let same = |a: &String, b: &String| match (serde_json::from_str::<Value>(a), serde_json::from_str::<Value>(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        };
        let want = match all_rejected.as_deref() {
            Some([(s0, b0), rest @ ..]) if rest.iter().all(|(s, b)| s == s0 && same(b, b0)) => {
                Some((*s0, (*b0).clone()))
            }
            _ => None,
        };
        prop_assert_eq!(got, want);
    }

    #[test]
    fn hot_records_round_trip_and_never_panic(
        version in any::<u64>(),
        inconsistent in any::<bool>(),
        frozen in any::<bool>(),
        rev in any::<u64>(),
        split in any::<bool>(),
        bytes in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        let record = HotRecord { version, inconsistent, frozen, rev, split };
        prop_assert_eq!(HotRecord::decode(record.encode().as_bytes()), Some(record));
        let _ = HotRecord::decode(&bytes);
    }

    /// The read-back prediction over a client's body and a node's read-back, both arbitrary:
    /// never a panic; a read-back that is not an object is a mismatch; mismatches name only
    /// keys the proposal sets.
    #[test]
    fn proposals_never_panic(
        method in select(vec!["PATCH", "PUT", "DELETE", "POST"]),
        setting in prop::option::of(key()),
        body in prop::option::of(json()),
        readback in json(),
        desired in prop::collection::vec((key(), json()), 0..4),
    ) {
        let Ok(proposal) = Proposal::from_request(method, setting.as_deref(), body.as_ref()) else {
            return Ok(());
        };
        let mismatches = proposal.mismatches(&readback);
        if !readback.is_object() {
            prop_assert_eq!(mismatches.clone(), vec!["(body)".to_string()]);
        } else {
            let keys: Vec<String> = match &proposal {
                Proposal::Patch(m) => m.keys().cloned().collect(),
                Proposal::ResetAll => default_settings().keys().cloned().collect(),
            };
            prop_assert!(mismatches.iter().all(|k| keys.contains(k)), "{:?} not in {:?}", mismatches, keys);
        }
        // Verify's check from the read-back's text agrees with the check of the parsed value, on
        // the arbitrary read-back and on one that the proposal was merged into (which mostly holds).
        let read_back_text = serde_json::to_vec(&readback).unwrap();
        prop_assert_eq!(proposal.holds_in(&read_text(&read_back_text).unwrap()), mismatches.is_empty());
        let mut holding = readback.as_object().cloned().unwrap_or_default();
        proposal.merge_into(&mut holding);
        let holding = Value::Object(holding);
        let holding_text = serde_json::to_vec(&holding).unwrap();
        prop_assert_eq!(
            proposal.holds_in(&read_text(&holding_text).unwrap()),
            proposal.mismatches(&holding).is_empty()
        );
        let _ = proposal.details();
        let mut desired: Map<String, Value> = desired.into_iter().collect();
        proposal.merge_into(&mut desired);
        // A read-back equal to the defaults after a full reset is what a node returns.
        prop_assert_eq!(
            Proposal::ResetAll.mismatches(&Value::Object(default_settings().clone())),
            Vec::<String>::new()
        );
    }
}

/// Deep answers are refused by the parser (serde_json's recursion limit), never a stack overflow.
#[test]
fn deep_node_answers_are_unreadable_not_fatal() {
    let deep = format!(
        "{{\"taskUid\":1,\"x\":{}{}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let ok = |body: &str| CalloutResponse {
        status: Some(200),
        body: body.as_bytes().to_vec(),
    };
    assert!(matches!(
        parse_propose(&ok(&deep)),
        ProposeResult::Failed { .. }
    ));
    let deep_task = format!(
        "{{\"status\":\"succeeded\",\"details\":{}{}}}",
        "{\"a\":".repeat(100_000),
        "}".repeat(100_000)
    );
    assert_eq!(parse_task(&ok(&deep_task)), None);
}
