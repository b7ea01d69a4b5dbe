//! `task_query`: reading `GET /tasks` parameters (values, errors, order) and which records they
//! select. Messages and codes are those of Meilisearch's own tests (`tests/tasks/errors.rs`).

use serde_json::Value;

use super::errors::MeiliError;
use super::records::{TaskMiroir, TaskRecord};
use super::task_query::{parse_task_query, TaskQuery};

/// 2024-01-01T00:00:00Z in unix milliseconds.
const JAN_1: u64 = 1_704_067_200_000;
const DAY: u64 = 86_400_000;

pub(super) fn record(uid: u64, index: &str, kind: &str, status: &str) -> TaskRecord {
    TaskRecord {
        uid,
        index_uid: index.into(),
        kind: kind.into(),
        status: status.into(),
        details: Value::Null,
        error: None,
        enqueued_ms: JAN_1,
        started_ms: None,
        finished_ms: None,
        propose: None,
        miroir: TaskMiroir::default(),
        auth_hash: None,
        custom_metadata: None,
        canceled_by: None,
    }
}

fn query(q: &str) -> TaskQuery {
    match parse_task_query(&format!("/tasks?{q}")) {
        Ok(query) => query,
        Err(e) => panic!("{q}: {e}"),
    }
}

fn refused(q: &str) -> MeiliError {
    match parse_task_query(&format!("/tasks?{q}")) {
        Ok(query) => panic!("{q} was accepted: {query:?}"),
        Err(e) => e,
    }
}

fn assert_refused(q: &str, code: &str, message: &str) {
    let e = refused(q);
    assert_eq!(
        (e.status, e.code.as_str(), e.message.as_str()),
        (400, code, message),
        "{q}"
    );
}

#[test]
fn defaults() {
    let q = parse_task_query("/tasks").unwrap();
    assert_eq!(q, TaskQuery::default());
    assert_eq!((q.limit(), q.from(), q.reverse()), (20, None, false));
    assert!(q.matches(&record(1, "movies", "settingsUpdate", "succeeded")));
    assert!(q.matches(&record(2, "", "dumpCreation", "enqueued")));
}

#[test]
fn paging_parameters() {
    let q = query("limit=3&from=7&reverse=true");
    assert_eq!((q.limit(), q.from(), q.reverse()), (3, Some(7), true));
    assert_eq!(query("limit=0").limit(), 0);
    assert!(!query("reverse=false").reverse());
    // Rust's u32 parse takes one leading `+` (only reachable encoded: `+` is a space).
    assert_eq!(query("limit=%2B5").limit(), 5);
    // Meilisearch answers a limit of u32::MAX as one less (it asks for limit + 1, saturating).
    assert_eq!(query("limit=4294967295").limit(), 4_294_967_294);
    // A repeated parameter: the last value.
    assert_eq!(query("limit=1&limit=2").limit(), 2);
}

#[test]
fn uid_lists() {
    let q = query("uids=1,3");
    assert!(q.matches(&record(1, "m", "settingsUpdate", "succeeded")));
    assert!(!q.matches(&record(2, "m", "settingsUpdate", "succeeded")));
    assert!(q.matches(&record(3, "m", "settingsUpdate", "succeeded")));
    // Encoded commas and empty items.
    let q = query("uids=%2C1%2C%2C3%2C");
    assert!(q.matches(&record(3, "m", "settingsUpdate", "succeeded")));
    // `*` anywhere in the list: any uid.
    assert!(query("uids=1,*").matches(&record(2, "m", "settingsUpdate", "succeeded")));
    // An empty list matches nothing.
    assert!(!query("uids=").matches(&record(2, "m", "settingsUpdate", "succeeded")));
    assert!(!query("uids=,").matches(&record(2, "m", "settingsUpdate", "succeeded")));
    // The filter's big uids (2^31 - 2^24 and up) fit Meilisearch's u32.
    assert!(query("uids=2130706433").matches(&record(
        2_130_706_433,
        "m",
        "settingsUpdate",
        "failed"
    )));
}

#[test]
fn a_canceler_list_matches_the_tasks_a_filter_cancelation_canceled() {
    let mut t = record(1, "m", "documentAdditionOrUpdate", "canceled");
    t.canceled_by = Some(2_130_706_440);
    assert!(query("canceledBy=2130706440").matches(&t));
    assert!(query("canceledBy=7,2130706440").matches(&t));
    assert!(!query("canceledBy=7").matches(&t));
    // Marked, but it had gone out by its turn: not canceled by it.
    t.status = "succeeded".into();
    assert!(!query("canceledBy=2130706440").matches(&t));
}

#[test]
fn batch_and_canceler_lists_match_none_of_the_filters_tasks() {
    let t = record(1, "m", "settingsUpdate", "canceled");
    for q in [
        "batchUids=0",
        "batchUids=1,2",
        "canceledBy=1",
        "canceledBy=",
        "batchUids=",
    ] {
        assert!(!query(q).matches(&t), "{q}");
    }
    for q in ["batchUids=*", "canceledBy=*", "canceledBy=3,*"] {
        assert!(query(q).matches(&t), "{q}");
    }
}

#[test]
fn types_and_statuses() {
    let t = record(1, "m", "documentAdditionOrUpdate", "processing");
    assert!(query("types=documentAdditionOrUpdate").matches(&t));
    assert!(query("types=DOCUMENTADDITIONORUPDATE,indexSwap").matches(&t));
    assert!(!query("types=settingsUpdate,indexCreation").matches(&t));
    assert!(query("types=*").matches(&t));
    assert!(query("statuses=Processing").matches(&t));
    assert!(query("statuses=succeeded%2Cprocessing").matches(&t));
    assert!(!query("statuses=enqueued,succeeded,failed,canceled").matches(&t));
    assert!(!query("types=").matches(&t));
    assert!(!query("statuses=").matches(&t));
}

#[test]
fn index_uids() {
    let movies = record(1, "movies", "settingsUpdate", "succeeded");
    let books = record(2, "books", "indexCreation", "succeeded");
    let dump = record(3, "", "dumpCreation", "succeeded");
    let q = query("indexUids=movies,Books");
    assert!(q.matches(&movies));
    assert!(!q.matches(&books), "index uids are case-sensitive");
    assert!(!q.matches(&dump));
    assert!(query("indexUids=*").matches(&dump));
    // Types not about one index are left out of an index filter, whatever their index.
    let swap = record(4, "movies", "indexSwap", "succeeded");
    assert!(!q.matches(&swap));
    assert!(query("indexUids=*").matches(&swap));
}

#[test]
fn enqueued_bounds_are_exclusive() {
    let t = record(1, "m", "settingsUpdate", "enqueued"); // enqueued at JAN_1 exactly
    assert!(!query("afterEnqueuedAt=2024-01-01T00:00:00Z").matches(&t));
    assert!(!query("beforeEnqueuedAt=2024-01-01T00:00:00Z").matches(&t));
    assert!(query("afterEnqueuedAt=2023-12-31T23:59:59.999Z").matches(&t));
    assert!(query("beforeEnqueuedAt=2024-01-01T00:00:00.000000001Z").matches(&t));
    assert!(!query("afterEnqueuedAt=2024-01-01T00:00:00.000000001Z").matches(&t));
    // An offset moves the instant.
    assert!(query("beforeEnqueuedAt=2024-01-01T00:00:01%2B00:00").matches(&t));
    assert!(!query("beforeEnqueuedAt=2024-01-01T00:30:00%2B01:00").matches(&t));
    assert!(query("afterEnqueuedAt=2024-01-01T00:30:00%2B01:00").matches(&t));
    // `*`: no bound.
    assert!(query("afterEnqueuedAt=*&beforeEnqueuedAt=*").matches(&t));
}

#[test]
fn bare_dates_cover_whole_days() {
    let mut t = record(1, "m", "settingsUpdate", "enqueued");
    // Noon on January 1st.
    t.enqueued_ms = JAN_1 + DAY / 2;
    // `after` a day: after its end; `before` a day: before its start.
    assert!(!query("afterEnqueuedAt=2024-01-01").matches(&t));
    assert!(query("afterEnqueuedAt=2023-12-31").matches(&t));
    assert!(!query("beforeEnqueuedAt=2024-01-01").matches(&t));
    assert!(query("beforeEnqueuedAt=2024-01-02").matches(&t));
    // The first millisecond of January 2nd is not after January 1st either (exclusive).
    t.enqueued_ms = JAN_1 + DAY;
    assert!(!query("afterEnqueuedAt=2024-01-01").matches(&t));
    t.enqueued_ms = JAN_1 + DAY + 1;
    assert!(query("afterEnqueuedAt=2024-01-01").matches(&t));
}

#[test]
fn started_and_finished_bounds_skip_tasks_without_the_date() {
    let mut t = record(1, "m", "settingsUpdate", "enqueued");
    for q in [
        "afterStartedAt=2000-01-01",
        "beforeStartedAt=2100-01-01",
        "afterFinishedAt=2000-01-01",
        "beforeFinishedAt=2100-01-01",
    ] {
        assert!(!query(q).matches(&t), "{q}");
    }
    t.started_ms = Some(JAN_1 + 10);
    t.finished_ms = Some(JAN_1 + 20);
    assert!(query(
        "afterStartedAt=2024-01-01T00:00:00.009Z&beforeStartedAt=2024-01-01T00:00:00.011Z"
    )
    .matches(&t));
    assert!(!query("afterStartedAt=2024-01-01T00:00:00.010Z").matches(&t));
    assert!(query(
        "afterFinishedAt=2024-01-01T00:00:00.019Z&beforeFinishedAt=2024-01-01T00:00:00.021Z"
    )
    .matches(&t));
    assert!(!query("beforeFinishedAt=2024-01-01T00:00:00.020Z").matches(&t));
    // Only the date the parameter names counts.
    assert!(query("beforeStartedAt=2024-01-01T00:00:00.015Z").matches(&t));
    assert!(!query("beforeFinishedAt=2024-01-01T00:00:00.015Z").matches(&t));
}

#[test]
fn filters_combine() {
    let t = record(5, "movies", "settingsUpdate", "failed");
    assert!(query("uids=5&types=settingsUpdate&statuses=failed&indexUids=movies").matches(&t));
    assert!(!query("uids=5&types=settingsUpdate&statuses=succeeded&indexUids=movies").matches(&t));
}

#[test]
fn invalid_numbers_and_flags() {
    let int = |v: &str| format!("could not parse `{v}` as a positive integer");
    assert_refused(
        "uids=doggo",
        "invalid_task_uids",
        &format!("Invalid value in parameter `uids`: {}", int("doggo")),
    );
    assert_refused(
        "uids=78,dogo",
        "invalid_task_uids",
        &format!("Invalid value in parameter `uids[1]`: {}", int("dogo")),
    );
    // Position among the non-empty items.
    assert_refused(
        "uids=,,1,,x",
        "invalid_task_uids",
        &format!("Invalid value in parameter `uids[1]`: {}", int("x")),
    );
    // One item (after dropping empty ones): no position.
    assert_refused(
        "uids=x,",
        "invalid_task_uids",
        &format!("Invalid value in parameter `uids`: {}", int("x")),
    );
    // `*` does not excuse a bad item.
    assert_refused(
        "uids=*,x",
        "invalid_task_uids",
        &format!("Invalid value in parameter `uids[1]`: {}", int("x")),
    );
    assert_refused(
        "uids=-1",
        "invalid_task_uids",
        &format!("Invalid value in parameter `uids`: {}", int("-1")),
    );
    assert_refused(
        "uids=4294967296",
        "invalid_task_uids",
        &format!("Invalid value in parameter `uids`: {}", int("4294967296")),
    );
    assert_refused(
        "batchUids=doggo",
        "invalid_batch_uids",
        &format!("Invalid value in parameter `batchUids`: {}", int("doggo")),
    );
    assert_refused(
        "canceledBy=doggo",
        "invalid_task_canceled_by",
        &format!("Invalid value in parameter `canceledBy`: {}", int("doggo")),
    );
    assert_refused(
        "limit=doggo",
        "invalid_task_limit",
        &format!("Invalid value in parameter `limit`: {}", int("doggo")),
    );
    assert_refused(
        "limit=*",
        "invalid_task_limit",
        &format!("Invalid value in parameter `limit`: {}", int("*")),
    );
    assert_refused(
        "limit=",
        "invalid_task_limit",
        &format!("Invalid value in parameter `limit`: {}", int("")),
    );
    assert_refused(
        "limit=+5",
        "invalid_task_limit",
        &format!("Invalid value in parameter `limit`: {}", int(" 5")),
    );
    assert_refused(
        "from=doggo",
        "invalid_task_from",
        &format!("Invalid value in parameter `from`: {}", int("doggo")),
    );
    let boolean = |v: &str| {
        format!("Invalid value in parameter `reverse`: could not parse `{v}` as a boolean, expected either `true` or `false`")
    };
    assert_refused("reverse=doggo", "invalid_task_reverse", &boolean("doggo"));
    assert_refused("reverse=*", "invalid_task_reverse", &boolean("*"));
    assert_refused("reverse=True", "invalid_task_reverse", &boolean("True"));
    assert_refused("reverse", "invalid_task_reverse", &boolean(""));
}

#[test]
fn invalid_types_statuses_and_index_uids() {
    assert_refused(
        "types=doggo",
        "invalid_task_types",
        "Invalid value in parameter `types`: `doggo` is not a valid task type. Available types are `documentAdditionOrUpdate`, `documentEdition`, `documentDeletion`, `settingsUpdate`, `indexCreation`, `indexDeletion`, `indexUpdate`, `indexSwap`, `taskCancelation`, `taskDeletion`, `dumpCreation`, `snapshotCreation`, `export`, `upgradeDatabase`, `indexCompaction`, `networkTopologyChange`, `dsrUpdate`, `dsrClear`.",
    );
    assert_refused(
        "statuses=doggo",
        "invalid_task_statuses",
        "Invalid value in parameter `statuses`: `doggo` is not a valid task status. Available statuses are `enqueued`, `processing`, `succeeded`, `failed`, `canceled`.",
    );
    assert_refused(
        "statuses=succeeded,rejected",
        "invalid_task_statuses",
        "Invalid value in parameter `statuses[1]`: `rejected` is not a valid task status. Available statuses are `enqueued`, `processing`, `succeeded`, `failed`, `canceled`.",
    );
    let uid_rule = "is not a valid index uid. Index uid can be an integer or a string containing only alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 512 bytes.";
    assert_refused(
        "indexUids=the%20good%20doggo",
        "invalid_index_uid",
        &format!("Invalid value in parameter `indexUids`: `the good doggo` {uid_rule}"),
    );
    assert_refused(
        "indexUids=movies,a+b",
        "invalid_index_uid",
        &format!("Invalid value in parameter `indexUids[1]`: `a b` {uid_rule}"),
    );
    let long = "a".repeat(401);
    assert_refused(
        &format!("indexUids={long}"),
        "invalid_index_uid",
        &format!("Invalid value in parameter `indexUids`: `{long}` {uid_rule}"),
    );
    let longest = "a".repeat(400);
    assert!(query(&format!("indexUids={longest}")).matches(&record(
        1,
        &longest,
        "settingsUpdate",
        "failed"
    )));
}

#[test]
fn invalid_dates() {
    for (name, code) in [
        ("afterEnqueuedAt", "invalid_task_after_enqueued_at"),
        ("beforeEnqueuedAt", "invalid_task_before_enqueued_at"),
        ("afterStartedAt", "invalid_task_after_started_at"),
        ("beforeStartedAt", "invalid_task_before_started_at"),
        ("afterFinishedAt", "invalid_task_after_finished_at"),
        ("beforeFinishedAt", "invalid_task_before_finished_at"),
    ] {
        for value in [
            "doggo",
            "2024-01-01T00:00:00",
            "2024-02-30",
            "2024-01-01T00:00:00-01",
            "",
        ] {
            assert_refused(
                &format!("{name}={value}"),
                code,
                &format!("Invalid value in parameter `{name}`: `{value}` is an invalid date-time. It should follow the YYYY-MM-DD or RFC 3339 date-time format."),
            );
        }
        // `+` decodes to a space, which RFC 3339 takes as the date-time separator but not in
        // an offset: clients must encode it.
        assert!(parse_task_query(&format!("/tasks?{name}=2024-01-01+00:00:00Z")).is_ok());
        assert!(parse_task_query(&format!("/tasks?{name}=2024-01-01T00:00:00+01:00")).is_err());
    }
}

#[test]
fn unknown_parameters() {
    let accepted = "expected one of `limit`, `from`, `reverse`, `batchUids`, `uids`, `canceledBy`, `types`, `statuses`, `indexUids`, `afterEnqueuedAt`, `beforeEnqueuedAt`, `afterStartedAt`, `beforeStartedAt`, `afterFinishedAt`, `beforeFinishedAt`";
    assert_refused(
        "doggo=1",
        "bad_request",
        &format!("Unknown parameter `doggo`: {accepted}"),
    );
    assert_refused(
        "limt=1",
        "bad_request",
        &format!("Unknown parameter `limt`: did you mean `limit`? {accepted}"),
    );
    assert_refused(
        "indexUid=movies",
        "bad_request",
        &format!("Unknown parameter `indexUid`: did you mean `indexUids`? {accepted}"),
    );
    assert_refused(
        "afterEnqueuedAT=x",
        "bad_request",
        &format!("Unknown parameter `afterEnqueuedAT`: did you mean `afterEnqueuedAt`? {accepted}"),
    );
    // Names are decoded too; the empty name is a name.
    assert!(parse_task_query("/tasks?li%6Dit=3").is_ok());
    assert_refused(
        "=3",
        "bad_request",
        &format!("Unknown parameter ``: {accepted}"),
    );
}

#[test]
fn the_first_bad_parameter_in_the_query_is_the_error() {
    assert_eq!(refused("limit=x&uids=y").code, "invalid_task_limit");
    assert_eq!(refused("uids=y&limit=x").code, "invalid_task_uids");
    assert_eq!(refused("doggo=1&limit=x").code, "bad_request");
    assert_eq!(refused("limit=x&doggo=1").code, "invalid_task_limit");
    // A repeated name keeps its first place and its last value.
    assert_eq!(refused("uids=1&limit=x&uids=y").code, "invalid_task_uids");
    assert!(parse_task_query("/tasks?limit=x&limit=2").is_ok());
}
