//! Request classification (docs/architecture.md §2): which of the filter's paths a request takes.
//!
//! `classify` runs on every request, search traffic included, so it is a handful of byte
//! comparisons and allocates nothing unless the request names an index (the uid is returned).
//!
//! It must see the path the way Meilisearch (actix-web) routes it, or a settings write could slip
//! past the broadcast as an ordinary write to one node:
//! - the query (`?…`) and fragment are not part of the path;
//! - runs of `/` count as one and trailing `/` are dropped (actix `NormalizePath`, `Trim`);
//! - percent-escapes are decoded before matching (`/indexes/movies/%73ettings` is the settings
//!   route to actix), so every segment is compared decoded, and the index uid is returned decoded;
//!   the uid (and a task uid) is decoded twice, as actix's extractor does (`decode_param`).

use std::borrow::Cow;

/// One per-setting sub-route, `/indexes/{uid}/settings/{segment}` (reference §2).
#[derive(Debug, PartialEq, Eq)]
pub struct SettingRoute {
    /// The path segment, e.g. `typo-tolerance`.
    pub segment: &'static str,
    /// The key of that setting in the whole-settings object, e.g. `typoTolerance`.
    pub key: &'static str,
    /// The verb that updates it: `PUT`, or `PATCH` for the object-valued settings that merge.
    pub update_method: &'static str,
}

const fn setting(
    segment: &'static str,
    key: &'static str,
    update_method: &'static str,
) -> SettingRoute {
    SettingRoute {
        segment,
        key,
        update_method,
    }
}

/// Every per-setting sub-route of Meilisearch v1.50 (`make_setting_routes!`), with its update
/// verb. Each also accepts GET (read) and DELETE (reset).
pub const SETTING_ROUTES: &[SettingRoute] = &[
    setting("filterable-attributes", "filterableAttributes", "PUT"),
    setting("sortable-attributes", "sortableAttributes", "PUT"),
    setting("displayed-attributes", "displayedAttributes", "PUT"),
    setting("typo-tolerance", "typoTolerance", "PATCH"),
    setting("searchable-attributes", "searchableAttributes", "PUT"),
    setting("stop-words", "stopWords", "PUT"),
    setting("non-separator-tokens", "nonSeparatorTokens", "PUT"),
    setting("separator-tokens", "separatorTokens", "PUT"),
    setting("dictionary", "dictionary", "PUT"),
    setting("synonyms", "synonyms", "PUT"),
    setting("distinct-attribute", "distinctAttribute", "PUT"),
    setting("proximity-precision", "proximityPrecision", "PUT"),
    setting("localized-attributes", "localizedAttributes", "PUT"),
    setting("ranking-rules", "rankingRules", "PUT"),
    setting("faceting", "faceting", "PATCH"),
    setting("pagination", "pagination", "PATCH"),
    setting("embedders", "embedders", "PATCH"),
    setting("search-cutoff-ms", "searchCutoffMs", "PUT"),
    setting("facet-search", "facetSearch", "PUT"),
    setting("prefix-search", "prefixSearch", "PUT"),
    setting("chat", "chat", "PATCH"),
    setting("foreign-keys", "foreignKeys", "PUT"),
];

/// The sub-route whose segment is exactly `segment` (already decoded).
pub fn setting_route_by_segment(segment: &str) -> Option<&'static SettingRoute> {
    SETTING_ROUTES.iter().find(|r| r.segment == segment)
}

/// The settings key a write touches: `None` for the whole-settings route (it may touch any key).
pub fn settings_key_for(setting: Option<&SettingRoute>) -> Option<&'static str> {
    setting.map(|s| s.key)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    /// `GET /_miroir/indexes/{uid}`
    Show,
    /// `POST /_miroir/indexes/{uid}/verify`
    Verify,
    /// `POST /_miroir/indexes/{uid}/unfreeze`
    Unfreeze,
    /// `POST /_miroir/indexes/{uid}/repair`
    Repair,
    /// `POST /_miroir/indexes/{uid}/resync?node=ID`
    Resync,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `PATCH`/`DELETE /indexes/{uid}/settings`, or the update verb or `DELETE` on
    /// `/indexes/{uid}/settings/{segment}`: broadcast to every node. `setting` is `None` for the
    /// whole-settings route.
    SettingsWrite {
        index: String,
        setting: Option<&'static SettingRoute>,
    },
    /// Any other write to an index (documents, `PATCH`/`DELETE /indexes/{uid}`, compaction, and
    /// any unknown sub-path with a write verb): fenced while the index is frozen.
    IndexWrite { index: String },
    /// Reads under `/indexes/{uid}` (GET/HEAD/OPTIONS, search, facet-search, similar, documents
    /// fetch), and settings routes called with a verb they do not accept (the node answers 405).
    IndexRead { index: String },
    /// `GET /tasks/{uid}` with a numeric uid; the caller decides whether it is the filter's.
    TaskGet { uid: u64 },
    /// `GET /tasks`: the task list.
    TaskList,
    /// `GET /batches` and `GET /batches/{uid}`.
    Batches { uid: Option<u64> },
    /// `POST /indexes`: creates the index named in the body.
    IndexCreate,
    /// A read about no one index whose answer depends on what every index holds (`GET /indexes`,
    /// `/stats`, `/keys`, `/experimental-features`, `POST /multi-search`).
    InstanceRead,
    /// A write to the instance rather than an index (keys, experimental features, chats, dumps,
    /// snapshots). `creates_key`: `POST /keys`, whose key value depends on its `uid`.
    InstanceWrite { creates_key: bool },
    /// `POST /swap-indexes`: holds the queues of every index its body names.
    Swap,
    /// `POST /tasks/cancel` (`cancel`) or `DELETE /tasks`: about the filter's task uids, so
    /// translated to the node task uids behind them, node by node.
    TaskTranslate { cancel: bool },
    /// A write that mirroring cannot keep right as it stands; `why` is told to the client.
    NotMirrored { why: &'static str },
    /// An admin route (docs/architecture.md §2).
    Admin { index: String, action: AdminAction },
    /// Any other path under `/_miroir`: answered 404 by the filter, never forwarded.
    AdminUnknown,
    /// Everything else, untouched (including `/indexes` itself and invalid index uids, which a
    /// node rejects with `invalid_index_uid`).
    Other,
}

impl Route {
    /// The index the request is about, if any.
    pub fn index(&self) -> Option<&str> {
        match self {
            Route::SettingsWrite { index, .. }
            | Route::IndexWrite { index }
            | Route::IndexRead { index }
            | Route::Admin { index, .. } => Some(index),
            Route::TaskGet { .. }
            | Route::TaskList
            | Route::Batches { .. }
            | Route::IndexCreate
            | Route::InstanceRead
            | Route::InstanceWrite { .. }
            | Route::TaskTranslate { .. }
            | Route::Swap
            | Route::NotMirrored { .. }
            | Route::AdminUnknown
            | Route::Other => None,
        }
    }
}

/// Meilisearch's limit on index uids (`index_uid.rs`): 1 to 400 bytes of `[A-Za-z0-9_-]`.
const MAX_INDEX_UID_LEN: usize = 400;

/// Classifies a request. `method` is taken as sent (methods are case-sensitive); `path` is the
/// `:path` header, query included.
pub fn classify(method: &str, path: &str) -> Route {
    // A byte search: '?' and '#' are ASCII, so never inside a multi-byte character, and a search
    // by `char` decoded every character of the path (half of a search's classification).
    let path = match path.bytes().position(|b| b == b'?' || b == b'#') {
        Some(end) => path.get(..end).unwrap_or(path),
        None => path,
    };
    let mut segments = Segments { rest: path };
    let Some(first) = segments.next() else {
        return Route::Other;
    };
    if decoded_eq(first, "indexes") {
        classify_index(method, segments)
    } else if decoded_eq(first, "tasks") {
        classify_task(method, segments)
    } else if decoded_eq(first, "_miroir") {
        classify_admin(method, segments)
    } else if decoded_eq(first, "batches") {
        classify_batches(method, segments)
    } else if method == "POST" && decoded_eq(first, "multi-search") {
        // Searches several indexes: a read about no one index.
        Route::InstanceRead
    } else if is_read_method(method) {
        let instance_read = ["stats", "keys", "experimental-features"].iter().any(|p| decoded_eq(first, p));
        if instance_read && method != "OPTIONS" {
            Route::InstanceRead
        } else {
            Route::Other
        }
    } else {
        classify_instance_write(method, first, segments)
    }
}

/// Why each write the filter does not mirror is refused in mirror mode (docs/operations.md).
pub const WHY_NETWORK: &str = "`/network` configures each node's own place in a Meilisearch network; set it on each node directly.";
pub const WHY_EXPORT: &str = "`/export` makes a node push its own copy elsewhere; every node would push the same documents. Call it on one node directly.";
pub const WHY_WEBHOOKS: &str = "Each node names its webhooks with its own uuid, so one uuid cannot address them all; configure webhooks on each node directly.";
pub const WHY_TASKS: &str = "Only `POST /tasks/cancel` and `DELETE /tasks` change tasks through the gateway.";

fn classify_instance_write<'a>(method: &str, first: &str, mut rest: impl Iterator<Item = &'a str>) -> Route {
    let second = rest.next();
    if decoded_eq(first, "indexes") {
        return if second.is_none() && method == "POST" { Route::IndexCreate } else { Route::Other };
    }
    if decoded_eq(first, "keys") {
        return Route::InstanceWrite { creates_key: second.is_none() && method == "POST" };
    }
    if ["experimental-features", "dumps", "snapshots"].iter().any(|p| decoded_eq(first, p)) {
        return Route::InstanceWrite { creates_key: false };
    }
    // Chat completions (POST) change nothing and stream their answer: passed on to one node.
    if decoded_eq(first, "chats") {
        return if method == "POST" { Route::Other } else { Route::InstanceWrite { creates_key: false } };
    }
    if decoded_eq(first, "swap-indexes") {
        return if second.is_none() && method == "POST" { Route::Swap } else { Route::Other };
    }
    let why = if decoded_eq(first, "network") {
        WHY_NETWORK
    } else if decoded_eq(first, "export") {
        WHY_EXPORT
    } else if decoded_eq(first, "webhooks") {
        WHY_WEBHOOKS
    } else if decoded_eq(first, "tasks") {
        WHY_TASKS
    } else {
        return Route::Other;
    };
    Route::NotMirrored { why }
}

fn classify_batches<'a>(method: &str, mut rest: impl Iterator<Item = &'a str>) -> Route {
    if method != "GET" {
        return Route::Other;
    }
    match (rest.next(), rest.next()) {
        (None, _) => Route::Batches { uid: None },
        (Some(raw), None) => match parse_task_uid(raw) {
            Some(uid) => Route::Batches { uid: Some(uid) },
            None => Route::Other,
        },
        _ => Route::Other,
    }
}

/// The path's non-empty segments, split at each `/` by a byte search, like the `?` above (the
/// `char` searcher of `str::split` was a fifth of a search's classification).
struct Segments<'a> {
    rest: &'a str,
}

impl<'a> Iterator for Segments<'a> {
    type Item = &'a str;

    // One copy, called from each classifier: inlined, it grew the module by 2 KB.
    #[inline(never)]
    fn next(&mut self) -> Option<&'a str> {
        while !self.rest.is_empty() {
            let end = self.rest.bytes().position(|b| b == b'/').unwrap_or(self.rest.len());
            let segment = self.rest.get(..end).unwrap_or_default();
            self.rest = self.rest.get(end.saturating_add(1)..).unwrap_or_default();
            if !segment.is_empty() {
                return Some(segment);
            }
        }
        None
    }
}

/// A cheap pre-check for the hot path: `false` only when `classify` would surely return
/// `Route::Other`, so the caller may skip reading the method and classifying. Any `%` counts as
/// "maybe": the first segment may be an escaped `indexes` (`/%69ndexes/...`), which actix routes.
pub fn may_be_routed(path: &str) -> bool {
    let rest = path.trim_start_matches('/');
    ROUTED_PREFIXES.iter().any(|p| rest.starts_with(p)) || path.contains('%')
}

/// First path segments the filter handles; anything else (`/health`, `/stats`, `/version`, …)
/// passes untouched after one scan of this list.
const ROUTED_PREFIXES: &[&str] = &[
    "indexes", "tasks", "_miroir", "batches", "keys", "stats", "experimental-features", "chats", "dumps", "snapshots",
    "swap-indexes", "network", "export", "webhooks", "multi-search",
];

/// Methods that never change an index. Everything else — including verbs Meilisearch does not
/// know — is treated as a write: fencing an unknown write is safer than letting it through a
/// freeze. OPTIONS is a read so that CORS preflights keep working on a frozen index.
fn is_read_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// Read endpoints that take a body, so are called with POST (reference: "Reads that use POST";
/// `fields` lists an index's fields).
const POST_READS: &[&str] = &["search", "facet-search", "similar", "fields"];

fn classify_index<'a>(method: &str, mut rest: impl Iterator<Item = &'a str>) -> Route {
    let Some(raw_uid) = rest.next() else {
        // `/indexes` itself: the list, or a creation (the uid is in the body).
        return match method {
            "POST" => Route::IndexCreate,
            "GET" | "HEAD" => Route::InstanceRead,
            _ => Route::Other,
        };
    };
    let Some(index) = decode_index_uid(raw_uid) else {
        return Route::Other;
    };
    let sub = (rest.next(), rest.next(), rest.next());

    match sub {
        (Some(a), None, None) if decoded_eq(a, "settings") => {
            if matches!(method, "PATCH" | "DELETE") {
                Route::SettingsWrite {
                    index,
                    setting: None,
                }
            } else {
                Route::IndexRead { index }
            }
        }
        (Some(a), Some(b), None) if decoded_eq(a, "settings") => match find_setting(b) {
            Some(route) if method == route.update_method || method == "DELETE" => {
                Route::SettingsWrite {
                    index,
                    setting: Some(route),
                }
            }
            Some(_) => Route::IndexRead { index },
            // An unknown setting written to: fenced like any unknown write.
            None => by_method(method, index),
        },
        (Some(a), None, None) if POST_READS.iter().any(|r| decoded_eq(a, r)) => {
            Route::IndexRead { index }
        }
        // `POST …/documents/fetch` reads; `DELETE …/documents/fetch` deletes the document whose
        // id is "fetch", so only POST is special-cased.
        (Some(a), Some(b), None)
            if method == "POST" && decoded_eq(a, "documents") && decoded_eq(b, "fetch") =>
        {
            Route::IndexRead { index }
        }
        _ => by_method(method, index),
    }
}

fn by_method(method: &str, index: String) -> Route {
    if is_read_method(method) {
        Route::IndexRead { index }
    } else {
        Route::IndexWrite { index }
    }
}

fn classify_task<'a>(method: &str, mut rest: impl Iterator<Item = &'a str>) -> Route {
    if method != "GET" {
        let second = rest.next();
        return match (method, second, rest.next()) {
            ("DELETE", None, _) => Route::TaskTranslate { cancel: false },
            ("POST", Some(s), None) if decoded_eq(s, "cancel") => Route::TaskTranslate { cancel: true },
            ("POST", Some(s), None) if decoded_eq(s, "compact") => Route::InstanceWrite { creates_key: false },
            _ if is_read_method(method) => Route::Other,
            _ => Route::NotMirrored { why: WHY_TASKS },
        };
    }
    match (rest.next(), rest.next()) {
        (None, _) => Route::TaskList,
        (Some(raw), None) => match parse_task_uid(raw) {
            Some(uid) => Route::TaskGet { uid },
            None => Route::Other,
        },
        _ => Route::Other,
    }
}

fn classify_admin<'a>(method: &str, mut rest: impl Iterator<Item = &'a str>) -> Route {
    let (Some(indexes), Some(raw_uid)) = (rest.next(), rest.next()) else {
        return Route::AdminUnknown;
    };
    if !decoded_eq(indexes, "indexes") {
        return Route::AdminUnknown;
    }
    let action = match (method, rest.next(), rest.next()) {
        ("GET", None, _) => AdminAction::Show,
        ("POST", Some(a), None) if decoded_eq(a, "verify") => AdminAction::Verify,
        ("POST", Some(a), None) if decoded_eq(a, "unfreeze") => AdminAction::Unfreeze,
        ("POST", Some(a), None) if decoded_eq(a, "repair") => AdminAction::Repair,
        ("POST", Some(a), None) if decoded_eq(a, "resync") => AdminAction::Resync,
        _ => return Route::AdminUnknown,
    };
    match decode_index_uid(raw_uid) {
        Some(index) => Route::Admin { index, action },
        None => Route::AdminUnknown,
    }
}

fn find_setting(raw_segment: &str) -> Option<&'static SettingRoute> {
    SETTING_ROUTES
        .iter()
        .find(|r| decoded_eq(raw_segment, r.segment))
}

fn is_index_uid_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Whether `uid` is a valid Meilisearch index uid as written (a `POST /indexes` body).
pub fn is_valid_index_uid(uid: &str) -> bool {
    !uid.is_empty() && uid.len() <= MAX_INDEX_UID_LEN && uid.bytes().all(is_index_uid_byte)
}

/// The decoded uid if it is a valid Meilisearch index uid.
fn decode_index_uid(raw: &str) -> Option<String> {
    let uid = decode_param(raw);
    if uid.is_empty() || uid.len() > MAX_INDEX_UID_LEN || !uid.iter().all(|&b| is_index_uid_byte(b))
    {
        return None;
    }
    // Every byte is ASCII, so the bytes are the text.
    String::from_utf8(uid.into_owned()).ok()
}

/// Decoded ASCII digits fitting u64, after at most one `+`: what `str::parse::<u32>` (Meilisearch's
/// task uid parse) accepts, widened; no `-`, no spaces.
fn parse_task_uid(raw: &str) -> Option<u64> {
    let decoded = decode_param(raw);
    let digits = decoded.strip_prefix(b"+").unwrap_or(&decoded);
    if digits.is_empty() {
        return None;
    }
    let mut uid: u64 = 0;
    for &b in digits {
        if !b.is_ascii_digit() {
            return None;
        }
        uid = uid.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(uid)
}

/// Whether the query of `path` sets the parameter `name` to `true`, both percent-decoded: a
/// `force=true` inside another parameter's value (`?x=force=true`) or name (`?noforce=true`)
/// does not count.
pub fn query_flag(path: &str, name: &str) -> bool {
    let Some((_, query)) = path.split_once('?') else { return false };
    query.split('&').any(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        decoded_eq(key, name) && decoded_eq(value, "true")
    })
}

/// Whether `raw`, percent-decoded, equals `literal`; no allocation. Route literals hold no `%`,
/// `/` or `+`, so one full decode gives the same answer as actix's match on its partly decoded
/// path (a segment that equals a literal there has no escape left, protected or not).
fn decoded_eq(raw: &str, literal: &str) -> bool {
    if !raw.contains('%') {
        return raw == literal;
    }
    PercentDecoded::new(raw.as_bytes(), b"").eq(literal.bytes())
}

/// Escapes actix-router leaves encoded in the path it matches routes on (`Url`'s quoter).
const ROUTING_PROTECTED: &[u8] = b"%/+";

/// The bytes of a `{param}` segment (index uid, task uid) as Meilisearch's handler gets them.
/// Decoded twice, as actix does: the path is matched with every escape decoded but those of
/// `ROUTING_PROTECTED`, then the `web::Path` extractor decodes the captured segment once more,
/// fully. So `%%341` is `%41` to the router and `A` to the handler, and `%2541` is `%41` to
/// both. (actix reads the bytes as UTF-8 lossily between the passes; that only replaces bytes
/// above 0x7F, which no uid holds, so it cannot change whether a uid is valid.)
fn decode_param(raw: &str) -> Cow<'_, [u8]> {
    if !raw.contains('%') {
        return Cow::Borrowed(raw.as_bytes());
    }
    let routed: Vec<u8> = PercentDecoded::new(raw.as_bytes(), ROUTING_PROTECTED).collect();
    Cow::Owned(PercentDecoded::new(&routed, b"").collect())
}

/// The bytes of a path segment with `%XX` escapes decoded, in one left-to-right pass, except
/// escapes of a `protected` byte, which stay as written. A `%` not followed by two hex digits
/// stays a literal `%` (actix does the same), which no literal or uid matches.
struct PercentDecoded<'a> {
    bytes: &'a [u8],
    protected: &'a [u8],
}

impl<'a> PercentDecoded<'a> {
    fn new(bytes: &'a [u8], protected: &'a [u8]) -> Self {
        PercentDecoded { bytes, protected }
    }
}

impl Iterator for PercentDecoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (&first, rest) = self.bytes.split_first()?;
        if first == b'%' {
            if let [hi, lo, after @ ..] = rest {
                if let (Some(hi), Some(lo)) = (hex_value(*hi), hex_value(*lo)) {
                    let decoded = hi << 4 | lo;
                    if !self.protected.contains(&decoded) {
                        self.bytes = after;
                        return Some(decoded);
                    }
                }
            }
        }
        self.bytes = rest;
        Some(first)
    }
}

/// The value of one hex digit (percent-escapes, here and in query strings).
pub fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_METHODS: &[&str] = &[
        "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE", "PURGE", "patch",
    ];

    fn read(index: &str) -> Route {
        Route::IndexRead {
            index: index.into(),
        }
    }

    fn write(index: &str) -> Route {
        Route::IndexWrite {
            index: index.into(),
        }
    }

    fn settings(index: &str, segment: Option<&str>) -> Route {
        Route::SettingsWrite {
            index: index.into(),
            setting: segment.map(|s| setting_route_by_segment(s).unwrap()),
        }
    }

    #[test]
    fn query_flags_are_whole_parameters() {
        assert!(query_flag("/_miroir/indexes/m/unfreeze?force=true", "force"));
        assert!(query_flag("/x?a=1&%66orce=%74rue", "force"));
        for path in ["/x", "/x?force=truex", "/x?noforce=true", "/x?a=force=true", "/x?force", "/x/force=true"] {
            assert!(!query_flag(path, "force"), "{path}");
        }
    }

    fn admin(index: &str, action: AdminAction) -> Route {
        Route::Admin {
            index: index.into(),
            action,
        }
    }

    fn check(cases: &[(&str, &str, Route)]) {
        for (method, path, expected) in cases {
            assert_eq!(&classify(method, path), expected, "{method} {path}");
            // The glue's pre-check never skips a path that classifies as one of ours.
            if *expected != Route::Other {
                assert!(may_be_routed(path), "pre-check would skip {method} {path}");
            }
        }
    }

    #[test]
    fn pre_check_lets_every_spelling_of_our_routes_through() {
        for path in [
            "/%69ndexes/movies/documents",
            "/%69ndexes/movies/settings",
            "/%69%6e%64%65%78%65%73/movies/documents",
            "/indexe%73/movies/documents",
            "/%74asks/2130706432",
            "/%5fmiroir/indexes/movies",
            "//indexes/movies/settings",
            "///%69ndexes//movies",
        ] {
            assert!(classify("POST", path) != Route::Other || classify("GET", path) != Route::Other, "{path}");
            assert!(may_be_routed(path), "{path}");
        }
        for path in ["/health", "/", "", "/version", "/metrics"] {
            assert!(!may_be_routed(path), "{path}");
        }
    }

    #[test]
    fn the_table_has_the_22_routes_of_the_reference() {
        assert_eq!(SETTING_ROUTES.len(), 22);
        let patch: Vec<&str> = SETTING_ROUTES
            .iter()
            .filter(|r| r.update_method == "PATCH")
            .map(|r| r.segment)
            .collect();
        assert_eq!(
            patch,
            [
                "typo-tolerance",
                "faceting",
                "pagination",
                "embedders",
                "chat"
            ]
        );
        assert!(SETTING_ROUTES
            .iter()
            .all(|r| r.update_method == "PATCH" || r.update_method == "PUT"));
        for (i, r) in SETTING_ROUTES.iter().enumerate() {
            // Segments and keys are unique, and each key is the camelCase of its segment.
            assert_eq!(
                SETTING_ROUTES.iter().position(|o| o.segment == r.segment),
                Some(i)
            );
            assert_eq!(SETTING_ROUTES.iter().position(|o| o.key == r.key), Some(i));
            let mut camel = String::new();
            let mut upper = false;
            for c in r.segment.chars() {
                if c == '-' {
                    upper = true;
                } else if upper {
                    camel.push(c.to_ascii_uppercase());
                    upper = false;
                } else {
                    camel.push(c);
                }
            }
            assert_eq!(camel, r.key);
            assert_eq!(setting_route_by_segment(r.segment), Some(r));
        }
        assert_eq!(setting_route_by_segment("typoTolerance"), None);
        assert_eq!(setting_route_by_segment(""), None);
        assert_eq!(
            settings_key_for(setting_route_by_segment("search-cutoff-ms")),
            Some("searchCutoffMs")
        );
        assert_eq!(settings_key_for(None), None);
    }

    /// Every sub-route × every method: the update verb and DELETE broadcast, the rest pass through.
    #[test]
    fn every_setting_sub_route_with_every_method() {
        for route in SETTING_ROUTES {
            let path = format!("/indexes/movies/settings/{}", route.segment);
            for method in ALL_METHODS {
                let expected = if *method == route.update_method || *method == "DELETE" {
                    Route::SettingsWrite {
                        index: "movies".into(),
                        setting: Some(route),
                    }
                } else {
                    read("movies")
                };
                assert_eq!(classify(method, &path), expected, "{method} {path}");
            }
        }
    }

    #[test]
    fn whole_settings_route_with_every_method() {
        for method in ALL_METHODS {
            let expected = match *method {
                "PATCH" | "DELETE" => settings("movies", None),
                // No PUT/POST on the whole route: the node answers 405, nothing to broadcast.
                _ => read("movies"),
            };
            assert_eq!(
                classify(method, "/indexes/movies/settings"),
                expected,
                "{method}"
            );
        }
    }

    #[test]
    fn index_routes() {
        check(&[
            // The index itself.
            ("GET", "/indexes/movies", read("movies")),
            ("HEAD", "/indexes/movies", read("movies")),
            ("PATCH", "/indexes/movies", write("movies")),
            ("DELETE", "/indexes/movies", write("movies")),
            ("POST", "/indexes/movies", write("movies")),
            // Documents.
            ("GET", "/indexes/movies/documents", read("movies")),
            ("GET", "/indexes/movies/documents/42", read("movies")),
            ("POST", "/indexes/movies/documents", write("movies")),
            ("PUT", "/indexes/movies/documents", write("movies")),
            ("DELETE", "/indexes/movies/documents", write("movies")),
            ("DELETE", "/indexes/movies/documents/42", write("movies")),
            (
                "POST",
                "/indexes/movies/documents/delete-batch",
                write("movies"),
            ),
            ("POST", "/indexes/movies/documents/delete", write("movies")),
            ("POST", "/indexes/movies/documents/edit", write("movies")),
            ("POST", "/indexes/movies/documents/fetch", read("movies")),
            // The document whose id is "fetch".
            ("DELETE", "/indexes/movies/documents/fetch", write("movies")),
            ("GET", "/indexes/movies/documents/fetch", read("movies")),
            ("POST", "/indexes/movies/documents/fetch/x", write("movies")),
            // Reads that take a body.
            ("POST", "/indexes/movies/search", read("movies")),
            ("GET", "/indexes/movies/search", read("movies")),
            ("POST", "/indexes/movies/facet-search", read("movies")),
            ("POST", "/indexes/movies/similar", read("movies")),
            ("GET", "/indexes/movies/similar", read("movies")),
            ("POST", "/indexes/movies/search/x", write("movies")),
            // Found by tests/prop_route.rs: was fenced as a write on a frozen index.
            ("POST", "/indexes/movies/fields", read("movies")),
            ("POST", "/indexes/movies/%66ields", read("movies")),
            // Any other verb there is answered 405 by the node; nothing to fence.
            ("PUT", "/indexes/movies/fields", read("movies")),
            // Other index routes.
            ("GET", "/indexes/movies/stats", read("movies")),
            ("POST", "/indexes/movies/compact", write("movies")),
            (
                "GET",
                "/indexes/movies/settings/typo-tolerance",
                read("movies"),
            ),
            // Unknown sub-paths: fenced when written, passed when read.
            ("POST", "/indexes/movies/bogus", write("movies")),
            ("PUT", "/indexes/movies/bogus/deeper", write("movies")),
            ("PATCH", "/indexes/movies/settings/bogus", write("movies")),
            (
                "PUT",
                "/indexes/movies/settings/typoTolerance",
                write("movies"),
            ),
            (
                "DELETE",
                "/indexes/movies/settings/stop-words/x",
                write("movies"),
            ),
            ("GET", "/indexes/movies/bogus", read("movies")),
            ("GET", "/indexes/movies/settings/bogus", read("movies")),
            ("OPTIONS", "/indexes/movies/documents", read("movies")),
            ("PURGE", "/indexes/movies/documents", write("movies")),
            ("post", "/indexes/movies/search", read("movies")),
            ("post", "/indexes/movies/documents", write("movies")),
            // `/indexes` itself is list/create, not about one index.
            ("GET", "/indexes", Route::InstanceRead),
            ("POST", "/indexes", Route::IndexCreate),
            ("POST", "/indexes/", Route::IndexCreate),
            ("GET", "/indexes?limit=5", Route::InstanceRead),
        ]);
    }

    #[test]
    fn paths_are_normalized_like_actix() {
        check(&[
            // Query strings and fragments.
            (
                "PATCH",
                "/indexes/movies/settings?x=1",
                settings("movies", None),
            ),
            (
                "PATCH",
                "/indexes/movies/settings?",
                settings("movies", None),
            ),
            (
                "PATCH",
                "/indexes/movies/settings#frag",
                settings("movies", None),
            ),
            (
                "PATCH",
                "/indexes/movies/settings?a=/b/c#f",
                settings("movies", None),
            ),
            (
                "GET",
                "/tasks/17?x=/indexes/movies",
                Route::TaskGet { uid: 17 },
            ),
            // Trailing and repeated slashes.
            (
                "PATCH",
                "/indexes/movies/settings/",
                settings("movies", None),
            ),
            (
                "PATCH",
                "/indexes/movies/settings///",
                settings("movies", None),
            ),
            (
                "PATCH",
                "/indexes/movies/settings/?x=1",
                settings("movies", None),
            ),
            (
                "PATCH",
                "//indexes//movies//settings",
                settings("movies", None),
            ),
            (
                "PUT",
                "/indexes/movies/settings//stop-words/",
                settings("movies", Some("stop-words")),
            ),
            ("GET", "/indexes/movies/", read("movies")),
            ("GET", "/tasks/17/", Route::TaskGet { uid: 17 }),
            (
                "POST",
                "/_miroir/indexes/movies/verify/",
                admin("movies", AdminAction::Verify),
            ),
            // Percent-encoding, in the uid and in the fixed segments.
            (
                "PATCH",
                "/indexes/my%2Dmovies/settings",
                settings("my-movies", None),
            ),
            (
                "PATCH",
                "/indexes/%6d%6F%76ies/settings",
                settings("movies", None),
            ),
            (
                "PATCH",
                "/indexes/movies/%73ettings",
                settings("movies", None),
            ),
            (
                "PATCH",
                "/%69ndexes/movies/settings",
                settings("movies", None),
            ),
            (
                "PATCH",
                "/indexes/movies/settings/typo%2Dtolerance",
                settings("movies", Some("typo-tolerance")),
            ),
            ("POST", "/indexes/movies/%73earch", read("movies")),
            ("GET", "/tasks/%31%32", Route::TaskGet { uid: 12 }),
            (
                "GET",
                "/_miroir/indexes/m%5F1",
                admin("m_1", AdminAction::Show),
            ),
            // Decoded only once: `%2573` is `%73`, which actix does not route to settings either.
            ("PATCH", "/indexes/movies/%2573ettings", write("movies")),
            // A decoded `/` does not split segments, and is not valid in a uid.
            ("PATCH", "/indexes/a%2Fb/settings", Route::Other),
            (
                "PATCH",
                "/indexes/movies/settings%2Fstop-words",
                write("movies"),
            ),
        ]);
    }

    #[test]
    fn invalid_index_uids_are_left_to_the_node() {
        let max = "a".repeat(400);
        let too_long = "a".repeat(401);
        let max_path = format!("/indexes/{max}/settings");
        let too_long_path = format!("/indexes/{too_long}/settings");
        check(&[
            ("PATCH", max_path.as_str(), settings(&max, None)),
            ("PATCH", too_long_path.as_str(), Route::Other),
            ("PATCH", "/indexes/mo.vies/settings", Route::Other),
            ("PATCH", "/indexes/mo%2Evies/settings", Route::Other),
            ("POST", "/indexes/../documents", Route::Other),
            ("PATCH", "/indexes/mo%20vies/settings", Route::Other),
            ("PATCH", "/indexes/m%C3%B6vies/settings", Route::Other),
            ("PATCH", "/indexes/mövies/settings", Route::Other),
            ("PATCH", "/indexes/mo%zzvies/settings", Route::Other),
            ("PATCH", "/indexes/movies%/settings", Route::Other),
            ("PATCH", "/indexes/movies%2/settings", Route::Other),
            ("POST", "/indexes/a:b/documents", Route::Other),
            ("GET", "/indexes/%/search", Route::Other),
            ("GET", "/_miroir/indexes/mo.vies", Route::AdminUnknown),
        ]);
        // Valid alphabet at its edges.
        check(&[(
            "PATCH",
            "/indexes/AZaz09_-/settings",
            settings("AZaz09_-", None),
        )]);
    }

    #[test]
    fn tasks() {
        check(&[
            ("GET", "/tasks/0", Route::TaskGet { uid: 0 }),
            (
                "GET",
                "/tasks/2130706432",
                Route::TaskGet { uid: 2_130_706_432 },
            ),
            ("GET", "/tasks/007", Route::TaskGet { uid: 7 }),
            (
                "GET",
                "/tasks/18446744073709551615",
                Route::TaskGet { uid: u64::MAX },
            ),
            ("GET", "/tasks/18446744073709551616", Route::Other),
            ("GET", "/tasks/abc", Route::Other),
            // Meilisearch parses the uid with `str::parse::<u32>`, which takes one leading `+`.
            ("GET", "/tasks/+5", Route::TaskGet { uid: 5 }),
            ("GET", "/tasks/%2B5", Route::TaskGet { uid: 5 }),
            ("GET", "/tasks/++5", Route::Other),
            ("GET", "/tasks/+", Route::Other),
            ("GET", "/tasks/5+", Route::Other),
            ("GET", "/tasks/-5", Route::Other),
            ("GET", "/tasks/5a", Route::Other),
            ("GET", "/tasks/%20", Route::Other),
            ("GET", "/tasks", Route::TaskList),
            ("GET", "/tasks/", Route::TaskList),
            ("GET", "/tasks?indexUids=movies", Route::TaskList),
            ("GET", "/tasks/5/documents", Route::Other),
            ("HEAD", "/tasks/5", Route::Other),
            ("DELETE", "/tasks/5", Route::NotMirrored { why: WHY_TASKS }),
            ("POST", "/tasks/cancel", Route::TaskTranslate { cancel: true }),
            ("POST", "/tasks/cancel?uids=1", Route::TaskTranslate { cancel: true }),
            ("DELETE", "/tasks?uids=5", Route::TaskTranslate { cancel: false }),
            ("POST", "/tasks/compact", Route::InstanceWrite { creates_key: false }),
            ("GET", "/batches", Route::Batches { uid: None }),
            ("GET", "/batches/3", Route::Batches { uid: Some(3) }),
            ("POST", "/batches", Route::Other),
        ]);
    }

    #[test]
    fn admin_routes() {
        check(&[
            (
                "GET",
                "/_miroir/indexes/movies",
                admin("movies", AdminAction::Show),
            ),
            (
                "POST",
                "/_miroir/indexes/movies/verify",
                admin("movies", AdminAction::Verify),
            ),
            (
                "POST",
                "/_miroir/indexes/movies/unfreeze?force=true",
                admin("movies", AdminAction::Unfreeze),
            ),
            ("POST", "/_miroir/indexes/movies", Route::AdminUnknown),
            ("GET", "/_miroir/indexes/movies/verify", Route::AdminUnknown),
            (
                "PUT",
                "/_miroir/indexes/movies/unfreeze",
                Route::AdminUnknown,
            ),
            (
                "POST",
                "/_miroir/indexes/movies/verify/now",
                Route::AdminUnknown,
            ),
            ("POST", "/_miroir/indexes/movies/bogus", Route::AdminUnknown),
            ("GET", "/_miroir", Route::AdminUnknown),
            ("GET", "/_miroir/", Route::AdminUnknown),
            ("GET", "/_miroir/indexes", Route::AdminUnknown),
            ("GET", "/_miroir/stats", Route::AdminUnknown),
            ("GET", "/_miroir/tasks/1", Route::AdminUnknown),
            // Only the exact first segment is the admin API.
            ("GET", "/_miroirx/indexes/movies", Route::Other),
            ("GET", "/x/_miroir/indexes/movies", Route::Other),
        ]);
    }

    #[test]
    fn everything_else_is_other() {
        check(&[
            ("GET", "/", Route::Other),
            ("GET", "", Route::Other),
            ("GET", "?x=1", Route::Other),
            ("OPTIONS", "*", Route::Other),
            ("GET", "/health", Route::Other),
            ("GET", "/version", Route::Other),
            ("GET", "/stats", Route::InstanceRead),
            ("POST", "/multi-search", Route::InstanceRead),
            ("GET", "/keys", Route::InstanceRead),
            ("GET", "/indexes", Route::InstanceRead),
            ("GET", "/experimental-features", Route::InstanceRead),
            ("OPTIONS", "/keys", Route::Other),
            ("PUT", "/indexes", Route::Other),
            ("POST", "/somewhere-new", Route::Other),
            ("PATCH", "/index/movies/settings", Route::Other),
            ("PATCH", "/Indexes/movies/settings", Route::Other),
            ("PATCH", "/indexesx/movies/settings", Route::Other),
            ("PATCH", "/v1/indexes/movies/settings", Route::Other),
        ]);
    }

    #[test]
    fn instance_writes_and_writes_not_mirrored() {
        check(&[
            ("POST", "/indexes", Route::IndexCreate),
            ("POST", "//indexes/", Route::IndexCreate),
            ("POST", "/keys", Route::InstanceWrite { creates_key: true }),
            ("PATCH", "/keys/abc", Route::InstanceWrite { creates_key: false }),
            ("DELETE", "/keys/abc", Route::InstanceWrite { creates_key: false }),
            ("PATCH", "/experimental-features", Route::InstanceWrite { creates_key: false }),
            ("PATCH", "/chats/w/settings", Route::InstanceWrite { creates_key: false }),
            ("POST", "/dumps", Route::InstanceWrite { creates_key: false }),
            ("POST", "/snapshots", Route::InstanceWrite { creates_key: false }),
            ("DELETE", "/chats/w", Route::InstanceWrite { creates_key: false }),
            ("POST", "/chats/w/chat/completions", Route::Other),
            ("POST", "/swap-indexes", Route::Swap),
            ("GET", "/swap-indexes", Route::Other),
            ("PATCH", "/network", Route::NotMirrored { why: WHY_NETWORK }),
            ("POST", "/export", Route::NotMirrored { why: WHY_EXPORT }),
            ("POST", "/webhooks", Route::NotMirrored { why: WHY_WEBHOOKS }),
            ("POST", "/%6Beys", Route::InstanceWrite { creates_key: true }),
        ]);
    }

    #[test]
    fn route_index_accessor() {
        assert_eq!(classify("POST", "/indexes/m/search").index(), Some("m"));
        assert_eq!(classify("PATCH", "/indexes/m/settings").index(), Some("m"));
        assert_eq!(classify("DELETE", "/indexes/m").index(), Some("m"));
        assert_eq!(classify("GET", "/_miroir/indexes/m").index(), Some("m"));
        assert_eq!(classify("GET", "/tasks/1").index(), None);
        assert_eq!(classify("GET", "/health").index(), None);
    }

    #[test]
    fn percent_decoder_edge_cases() {
        let decode = |s: &str| PercentDecoded::new(s.as_bytes(), b"").collect::<Vec<u8>>();
        assert_eq!(decode("a%41%6a"), b"aAj");
        assert_eq!(decode("%"), b"%");
        assert_eq!(decode("%4"), b"%4");
        assert_eq!(decode("%4g"), b"%4g");
        assert_eq!(decode("%%41"), b"%A");
        assert_eq!(decode("%2541"), b"%41");
        assert_eq!(decode("%FF"), [0xff]);
        assert!(decoded_eq("settings", "settings"));
        assert!(!decoded_eq("setting", "settings"));
        assert!(!decoded_eq("settings%", "settings"));
        let routed =
            |s: &str| PercentDecoded::new(s.as_bytes(), ROUTING_PROTECTED).collect::<Vec<u8>>();
        assert_eq!(routed("a%2Fb%2f%2B%25%41"), b"a%2Fb%2f%2B%25A");
        assert_eq!(routed("%%341"), b"%41");
        assert_eq!(decode_param("%%341"), &b"A"[..]);
        assert_eq!(decode_param("%4%31"), &b"A"[..]);
        assert_eq!(decode_param("%2541"), &b"%41"[..]);
        assert_eq!(decode_param("%252B"), &b"%2B"[..]);
        assert_eq!(decode_param("%2B%2F%25"), &b"+/%"[..]);
        assert!(matches!(decode_param("movies"), Cow::Borrowed(b"movies")));
    }

    /// Found by `tests/prop_route.rs`: actix decodes a uid twice (router, then extractor), so a
    /// stray `%` in front of an escaped hex digit names a valid index to a node. Before the fix
    /// these were `Other`: a settings write that reached one node unbroadcast.
    #[test]
    fn uids_are_decoded_twice_like_actix() {
        check(&[
            ("PATCH", "/indexes/%%341/settings", settings("A", None)),
            ("PATCH", "/indexes/%4%31/settings", settings("A", None)),
            (
                "PATCH",
                "/indexes/%%36%64ovies/settings",
                settings("movies", None),
            ),
            (
                "PUT",
                "/indexes/%%373ettings/settings/stop-words",
                settings("settings", Some("stop-words")),
            ),
            ("GET", "/indexes//%%373ettings", read("settings")),
            ("POST", "/indexes/%%341/documents", write("A")),
            (
                "GET",
                "/_miroir/indexes/%%341",
                admin("A", AdminAction::Show),
            ),
            ("GET", "/tasks/%%335", Route::TaskGet { uid: 5 }),
            // `%25` is protected from the router's pass, so it is decoded only once.
            ("PATCH", "/indexes/%2541/settings", Route::Other),
            // Literal segments are matched after the router's pass only.
            ("PATCH", "/indexes/movies/%%373ettings", write("movies")),
        ]);
    }
}
