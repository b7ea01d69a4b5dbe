//! Property tests of `GET /tasks` paging (`task_list::list_reply`) over arbitrary task records
//! and queries: following `next` as the next `from`, from the first page until `next` is null,
//! lists every task the caller may see and the query selects exactly once, in uid order
//! (descending, or ascending with `reverse=true`); every page has at most `limit` tasks and the
//! same `total`, which is the number of such tasks; `from` in an answer is its first uid.
//!
//! The selection is modelled here from Meilisearch's semantics for the filters generated
//! (statuses, types, index uids, an enqueued-at window), sharing no code with `task_query`.
#![cfg(not(target_arch = "wasm32"))]
// Helpers outside `#[test]` functions index and unwrap like the tests do (a panic here is a test
// failure); clippy.toml's in-test allowances do not reach them.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use miroir_filter::core::records::{TaskMiroir, TaskRecord};
use miroir_filter::core::task_list::{list_reply, parse_task_query};
use miroir_filter::core::tasks::auth_hash;
use miroir_filter::core::time::rfc3339_from_ms;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use serde_json::Value;

const STATUSES: &[&str] = &[
    "enqueued",
    "processing",
    "succeeded",
    "failed",
    "canceled",
    "rejected",
];
const KINDS: &[&str] = &[
    "settingsUpdate",
    "documentAdditionOrUpdate",
    "indexSwap",
    "dumpCreation",
];
const INDEXES: &[&str] = &["", "movies", "books"];
const KEYS: &[Option<&str>] = &[None, Some("Bearer a"), Some("Bearer b")];
/// Enqueued dates fall in the first 100 seconds of 2024.
const T0: u64 = 1_704_067_200_000;

#[derive(Debug, Clone)]
struct Filters {
    statuses: Option<Vec<&'static str>>,
    kinds: Option<Vec<&'static str>>,
    indexes: Option<Vec<&'static str>>,
    /// Exclusive enqueued-at bounds, in ms.
    after: Option<u64>,
    before: Option<u64>,
}

impl Filters {
    fn query(&self) -> String {
        let mut params = Vec::new();
        let join = |l: &[&str]| l.join("%2C");
        if let Some(s) = &self.statuses {
            params.push(format!("statuses={}", join(s)));
        }
        if let Some(k) = &self.kinds {
            params.push(format!("types={}", join(k)));
        }
        if let Some(i) = &self.indexes {
            params.push(format!("indexUids={}", join(i)));
        }
        if let Some(a) = self.after {
            params.push(format!("afterEnqueuedAt={}", rfc3339_from_ms(a)));
        }
        if let Some(b) = self.before {
            params.push(format!("beforeEnqueuedAt={}", rfc3339_from_ms(b)));
        }
        params.join("&")
    }

    fn selects(&self, t: &TaskRecord) -> bool {
        let within = |l: &Option<Vec<&str>>, v: &str| l.as_ref().is_none_or(|l| l.contains(&v));
        within(&self.statuses, &t.status)
            && within(&self.kinds, &t.kind)
            // With an index filter, types about no single index are left out.
            && within(&self.indexes, &t.index_uid)
            && (self.indexes.is_none() || matches!(t.kind.as_str(), "settingsUpdate" | "documentAdditionOrUpdate"))
            && self.after.is_none_or(|a| t.enqueued_ms > a)
            && self.before.is_none_or(|b| t.enqueued_ms < b)
    }
}

fn list_filter(all: &'static [&'static str]) -> impl Strategy<Value = Option<Vec<&'static str>>> {
    // Non-empty lists: an empty one selects nothing, which the unit tests cover.
    prop::option::of(subsequence(all, 1..=all.len()))
}

fn filters() -> impl Strategy<Value = Filters> {
    (
        list_filter(&STATUSES[..5]),
        list_filter(KINDS),
        list_filter(&INDEXES[1..]),
        prop::option::of(0..100_000u64),
        prop::option::of(0..100_000u64),
    )
        .prop_map(|(statuses, kinds, indexes, after, before)| Filters {
            statuses,
            kinds,
            indexes,
            after: after.map(|a| T0 + a),
            before: before.map(|b| T0 + b),
        })
}

fn tasks() -> impl Strategy<Value = Vec<TaskRecord>> {
    let one = (
        select(STATUSES),
        select(KINDS),
        select(INDEXES),
        select(KEYS),
        0..100_000u64,
    );
    // Distinct uids, some around the filter's real range; records in arbitrary order.
    (
        prop::collection::btree_set(
            prop_oneof![0..60u64, 2_130_706_432..2_130_706_480u64],
            0..40,
        ),
        prop::collection::vec(one, 40),
    )
        .prop_map(|(uids, fields): (BTreeSet<u64>, _)| {
            let mut out: Vec<TaskRecord> = uids
                .into_iter()
                .zip(fields)
                .map(|(uid, (status, kind, index, key, enqueued))| TaskRecord {
                    uid,
                    index_uid: index.into(),
                    kind: kind.into(),
                    status: status.into(),
                    details: Value::Null,
                    error: None,
                    enqueued_ms: T0 + enqueued,
                    started_ms: None,
                    finished_ms: None,
                    propose: None,
                    miroir: TaskMiroir::default(),
                    auth_hash: auth_hash(key),
                    custom_metadata: None,
                    canceled_by: None,
                })
                .collect();
            // A deterministic shuffle: the reply must not rely on the records' order.
            out.sort_by_key(|t| t.uid.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17));
            out
        })
}

proptest! {
    #![proptest_config(common::config(500))]

    #[test]
    fn following_next_lists_each_selected_task_once_in_order(
        all in tasks(),
        filters in filters(),
        key in select(KEYS),
        // A limit of 0 never advances (its `next` is the first task): a unit test covers it.
        limit in 1usize..7,
        reverse in any::<bool>(),
    ) {
        let caller = auth_hash(key);
        let mut want: Vec<u64> = all
            .iter()
            .filter(|t| t.status != "rejected" && t.auth_hash == caller && filters.selects(t))
            .map(|t| t.uid)
            .collect();
        want.sort_unstable();
        if !reverse {
            want.reverse();
        }

        let base = format!("/tasks?{}&limit={limit}&reverse={reverse}", filters.query());
        let mut seen: Vec<u64> = Vec::new();
        let mut from: Option<u64> = None;
        // Each page makes progress (or ends): at most one page per task, plus the last.
        for _ in 0..=want.len() + 1 {
            let path = match from {
                Some(f) => format!("{base}&from={f}"),
                None => base.clone(),
            };
            let query = parse_task_query(&path).unwrap();
            let reply = list_reply(&query, &all, key);
            prop_assert_eq!(reply.status, 200);
            let page: Value = serde_json::from_slice(&reply.body).unwrap();
            let uids: Vec<u64> =
                page["results"].as_array().unwrap().iter().map(|t| t["uid"].as_u64().unwrap()).collect();
            prop_assert!(uids.len() <= limit);
            prop_assert_eq!(page["total"].as_u64(), Some(want.len() as u64));
            prop_assert_eq!(page["limit"].as_u64(), Some(limit as u64));
            prop_assert_eq!(page["from"].as_u64(), uids.first().copied());
            seen.extend(uids);
            match page["next"].as_u64() {
                Some(next) => from = Some(next),
                None => {
                    from = None;
                    break;
                }
            }
        }
        prop_assert_eq!(from, None, "the walk did not end");
        prop_assert_eq!(seen, want);
    }
}
