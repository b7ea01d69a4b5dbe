//! The query of `GET /tasks` and `GET /batches` (Meilisearch's `TasksFilterQuery`, v1.50): its
//! parameters, read and refused as a node reads and refuses them, and which of the filter's task
//! records it selects. Paging through the selection is `task_list`'s job.
//!
//! Semantics, from Meilisearch's route and index scheduler:
//! - lists (`uids`, `batchUids`, `canceledBy`, `types`, `statuses`, `indexUids`) are split on
//!   commas, empty items dropped; a `*` item means "any" (no filter); an empty list matches
//!   nothing. Types and statuses are case-insensitive.
//! - date bounds are exclusive. A bare date (`2024-01-01`) means midnight UTC starting it for
//!   `before…`, and midnight ending it for `after…` (after that whole day); `*` means no bound.
//!   A task without the date (not started, not finished) never passes a bound on it.
//! - with `indexUids`, tasks of a type that is not about one index (dumps, swaps, …) are left
//!   out even if their index matches (Meilisearch still counts those in `total`, which is an
//!   inconsistency the filter does not copy: here `total` counts exactly what can be listed).
//! - each filter task that started is its own batch (same uid, `tasks::batch_uid`); `canceledBy`
//!   matches the tasks a filter cancelation canceled before they went out (the others went
//!   to the nodes, whose own cancelations are theirs).

use super::errors::MeiliError;
use super::query_params::{
    decode_query, invalid_value, not_a_boolean, not_a_positive_integer, unknown_parameter,
};
use super::state::records::TaskRecord;
use super::time::{parse_date_ns, parse_rfc3339_ns};

/// The parameters, in the order Meilisearch lists them when refusing an unknown one.
const PARAMETERS: [&str; 15] = [
    "limit",
    "from",
    "reverse",
    "batchUids",
    "uids",
    "canceledBy",
    "types",
    "statuses",
    "indexUids",
    "afterEnqueuedAt",
    "beforeEnqueuedAt",
    "afterStartedAt",
    "beforeStartedAt",
    "afterFinishedAt",
    "beforeFinishedAt",
];

/// Meilisearch's task types, in its order, and whether each is about exactly one index.
const TYPES: [(&str, bool); 18] = [
    ("documentAdditionOrUpdate", true),
    ("documentEdition", true),
    ("documentDeletion", true),
    ("settingsUpdate", true),
    ("indexCreation", true),
    ("indexDeletion", true),
    ("indexUpdate", true),
    ("indexSwap", false),
    ("taskCancelation", false),
    ("taskDeletion", false),
    ("dumpCreation", false),
    ("snapshotCreation", false),
    ("export", false),
    ("upgradeDatabase", false),
    ("indexCompaction", true),
    ("networkTopologyChange", false),
    ("dsrUpdate", true),
    ("dsrClear", true),
];

const STATUSES: [&str; 5] = ["enqueued", "processing", "succeeded", "failed", "canceled"];

const DEFAULT_LIMIT: u32 = 20;

/// Meilisearch asks its scheduler for `limit + 1` tasks (saturating) to learn whether a next
/// page exists, and answers `limit` as that minus one: a `limit` of `u32::MAX` behaves, and is
/// answered, as `u32::MAX - 1`.
const MAX_LIMIT: u32 = u32::MAX - 1;

/// A parsed `GET /tasks` (or `GET /batches`) query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskQuery {
    limit: u32,
    from: Option<u32>,
    reverse: bool,
    /// For each list, None when absent or `*`.
    uids: Option<Vec<u32>>,
    batch_uids: Option<Vec<u32>>,
    canceled_by: Option<Vec<u32>>,
    /// Canonical type and status names.
    types: Option<Vec<&'static str>>,
    statuses: Option<Vec<&'static str>>,
    index_uids: Option<Vec<String>>,
    enqueued: Window,
    started: Window,
    finished: Window,
    /// Some filter parameter was given (`*` included): task cancelation and deletion need one.
    filtered: bool,
}

impl Default for TaskQuery {
    fn default() -> Self {
        TaskQuery {
            limit: DEFAULT_LIMIT,
            from: None,
            reverse: false,
            uids: None,
            batch_uids: None,
            canceled_by: None,
            types: None,
            statuses: None,
            index_uids: None,
            enqueued: Window::default(),
            started: Window::default(),
            finished: Window::default(),
            filtered: false,
        }
    }
}

/// Exclusive bounds on one of a task's dates, in nanoseconds since the Unix epoch (Meilisearch
/// compares at that precision; the filter's dates are whole milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Window {
    after: Option<i128>,
    before: Option<i128>,
}

impl Window {
    fn contains(&self, date_ms: Option<u64>) -> bool {
        if self.after.is_none() && self.before.is_none() {
            return true;
        }
        let Some(ms) = date_ms else { return false };
        let ns = i128::from(ms) * 1_000_000;
        self.after.is_none_or(|a| ns > a) && self.before.is_none_or(|b| ns < b)
    }
}

#[derive(Clone, Copy)]
enum Side {
    After,
    Before,
}

/// The query of `path_with_query` (the request's `:path`), or Meilisearch's 400 for its first
/// bad parameter, in the order the client wrote them.
pub fn parse_task_query(path_with_query: &str) -> Result<TaskQuery, MeiliError> {
    let mut q = TaskQuery::default();
    for (name, value) in decode_query(path_with_query) {
        let v = value.as_str();
        q.filtered |= !matches!(name.as_str(), "limit" | "from" | "reverse");
        match name.as_str() {
            "limit" => q.limit = number(v, "limit", "invalid_task_limit")?.min(MAX_LIMIT),
            "from" => q.from = Some(number(v, "from", "invalid_task_from")?),
            "reverse" => q.reverse = flag(v, "reverse", "invalid_task_reverse")?,
            "batchUids" => q.batch_uids = list(v, "batchUids", "invalid_batch_uids", uid)?,
            "uids" => q.uids = list(v, "uids", "invalid_task_uids", uid)?,
            "canceledBy" => q.canceled_by = list(v, "canceledBy", "invalid_task_canceled_by", uid)?,
            "types" => q.types = list(v, "types", "invalid_task_types", task_type)?,
            "statuses" => q.statuses = list(v, "statuses", "invalid_task_statuses", status)?,
            "indexUids" => q.index_uids = list(v, "indexUids", "invalid_index_uid", index_uid)?,
            "afterEnqueuedAt" => q.enqueued.after = date(v, &name, Side::After)?,
            "beforeEnqueuedAt" => q.enqueued.before = date(v, &name, Side::Before)?,
            "afterStartedAt" => q.started.after = date(v, &name, Side::After)?,
            "beforeStartedAt" => q.started.before = date(v, &name, Side::Before)?,
            "afterFinishedAt" => q.finished.after = date(v, &name, Side::After)?,
            "beforeFinishedAt" => q.finished.before = date(v, &name, Side::Before)?,
            _ => return Err(unknown_parameter(&name, &PARAMETERS)),
        }
    }
    Ok(q)
}

impl TaskQuery {
    /// Whether `task` passes every filter of the query (not `from`/`limit`, which page, and not
    /// who may see it, which is `tasks::visible_to`).
    pub fn matches(&self, task: &TaskRecord) -> bool {
        any_or(&self.uids, |u| u64::from(*u) == task.uid)
            && any_or(&self.batch_uids, |b| Some(u64::from(*b)) == super::tasks::batch_uid(task))
            && any_or(&self.canceled_by, |c| task.canceled_by == Some(u64::from(*c)) && task.status == "canceled")
            && any_or(&self.types, |t| *t == task.kind)
            && any_or(&self.statuses, |s| *s == task.status)
            && self
                .index_uids
                .as_ref()
                .is_none_or(|uids| uids.contains(&task.index_uid) && about_one_index(&task.kind))
            && self.enqueued.contains(Some(task.enqueued_ms))
            && self.started.contains(task.started_ms)
            && self.finished.contains(task.finished_ms)
    }

    /// Whether any filter was given (`POST /tasks/cancel` and `DELETE /tasks` need one).
    pub fn is_filtered(&self) -> bool {
        self.filtered
    }

    /// Tasks per page (default 20).
    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    /// The uid to start at, inclusive.
    pub fn from(&self) -> Option<u64> {
        self.from.map(u64::from)
    }

    /// Oldest first instead of newest first.
    pub fn reverse(&self) -> bool {
        self.reverse
    }
}

/// True when `list` is None (no filter), else whether one item satisfies `hit`.
fn any_or<T>(list: &Option<Vec<T>>, hit: impl Fn(&T) -> bool) -> bool {
    list.as_ref().is_none_or(|items| items.iter().any(hit))
}

/// Whether tasks of type `kind` are about exactly one index. A type outside Meilisearch's list
/// (none is written) counts as one: it is only asked of a task whose index is in the filter.
fn about_one_index(kind: &str) -> bool {
    TYPES
        .iter()
        .find(|(name, _)| *name == kind)
        .is_none_or(|(_, one)| *one)
}

fn number(value: &str, name: &str, code: &str) -> Result<u32, MeiliError> {
    uid(value).map_err(|detail| invalid_value(code, name, &detail))
}

fn flag(value: &str, name: &str, code: &str) -> Result<bool, MeiliError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid_value(code, name, &not_a_boolean(value))),
    }
}

/// A comma-separated list; None if an item is `*`. A bad item is reported at `name[i]` (its
/// position among the non-empty items) when the list has more than one item. Every item is
/// checked, the `*` does not excuse a bad one.
fn list<T>(
    value: &str,
    name: &str,
    code: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<Vec<T>>, MeiliError> {
    let items: Vec<&str> = value.split(',').filter(|i| !i.is_empty()).collect();
    let mut star = false;
    let mut parsed = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if *item == "*" {
            star = true;
            continue;
        }
        match parse(item) {
            Ok(v) => parsed.push(v),
            Err(detail) if items.len() > 1 => {
                return Err(invalid_value(code, &format!("{name}[{i}]"), &detail))
            }
            Err(detail) => return Err(invalid_value(code, name, &detail)),
        }
    }
    Ok((!star).then_some(parsed))
}

/// A task or batch uid: Rust's `u32` parse (as Meilisearch's), which takes one leading `+`.
fn uid(value: &str) -> Result<u32, String> {
    value.parse().map_err(|_| not_a_positive_integer(value))
}

fn task_type(value: &str) -> Result<&'static str, String> {
    match TYPES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(value))
    {
        Some((name, _)) => Ok(name),
        None => {
            let names: Vec<String> = TYPES.iter().map(|(n, _)| format!("`{n}`")).collect();
            Err(format!(
                "`{value}` is not a valid task type. Available types are {}.",
                names.join(", ")
            ))
        }
    }
}

fn status(value: &str) -> Result<&'static str, String> {
    match STATUSES
        .iter()
        .find(|name| name.eq_ignore_ascii_case(value))
    {
        Some(name) => Ok(name),
        None => {
            let names: Vec<String> = STATUSES.iter().map(|n| format!("`{n}`")).collect();
            Err(format!(
                "`{value}` is not a valid task status. Available statuses are {}.",
                names.join(", ")
            ))
        }
    }
}

/// Meilisearch's index uid rule: 1 to 400 bytes of `[A-Za-z0-9_-]` (its message says 512).
fn index_uid(value: &str) -> Result<String, String> {
    let valid = !value.is_empty()
        && value.len() <= 400
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(value.to_string())
    } else {
        Err(format!(
            "`{value}` is not a valid index uid. Index uid can be an integer or a string \
             containing only alphanumeric characters, hyphens (-) and underscores (_), and can \
             not be more than 512 bytes."
        ))
    }
}

/// A date bound: an RFC 3339 date-time, or a bare date (see the module comment), or `*` for
/// none.
fn date(value: &str, name: &str, side: Side) -> Result<Option<i128>, MeiliError> {
    const DAY_NS: i128 = 86_400 * 1_000_000_000;
    if value == "*" {
        return Ok(None);
    }
    if let Some(ns) = parse_rfc3339_ns(value) {
        return Ok(Some(ns));
    }
    match (parse_date_ns(value), side) {
        (Some(ns), Side::Before) => Ok(Some(ns)),
        (Some(ns), Side::After) => Ok(Some(ns + DAY_NS)),
        (None, _) => Err(invalid_value(
            &date_code(name),
            name,
            &format!(
                "`{value}` is an invalid date-time. It should follow the YYYY-MM-DD or RFC 3339 \
                 date-time format."
            ),
        )),
    }
}

/// `afterEnqueuedAt` → `invalid_task_after_enqueued_at`.
fn date_code(name: &str) -> String {
    let mut code = String::from("invalid_task_");
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            code.push('_');
        }
        code.push(c.to_ascii_lowercase());
    }
    code
}
