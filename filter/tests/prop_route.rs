//! Property tests of `route::classify` against a reference model of how a Meilisearch node
//! (actix-web) routes the same request.
//!
//! The model below is written from actix-web's and Meilisearch's sources, step by step, in the
//! order a request goes through them, and shares no code with `route.rs`:
//!
//! 1. `http::Uri`: the path ends at the first `?` (query) or `#` (fragment).
//! 2. `NormalizePath::new(TrailingSlash::Trim)` (Meilisearch's outermost middleware), on the raw
//!    path: trailing `/` removed, then every run of `/` replaced by one `/`; an empty result is `/`.
//! 3. actix-router's `Url` (`Quoter::new(b"", b"%/+")`): every `%XX` escape is decoded except
//!    those of `%`, `/` and `+`, which stay as written; a `%` without two hex digits stays;
//!    one left-to-right pass; the bytes are then read as UTF-8, lossily. Routes match that string:
//!    literal segments compare equal, `{param}` segments match any non-empty run without `/`.
//! 4. A `{param}` extracted as `web::Path<String>` is decoded once more, fully (actix-router's
//!    `FULL_QUOTER`, `Quoter::new(b"", b"")`), again lossily. So a uid is decoded twice: `%%341`
//!    becomes `%41` in step 3 and `A` in step 4.
//! 5. Meilisearch's route tables (`routes/indexes/*.rs`, `routes/tasks.rs`, reference §2 for the
//!    22 setting sub-routes), its uid rule (`IndexUid::try_from`: 1 to 400 of `[A-Za-z0-9_-]`)
//!    and its task uid parse (`str::parse::<u32>`, which accepts one leading `+`). Methods are
//!    compared exactly (`patch` is an extension method, not `PATCH`).
//!
//! The filter's own `/_miroir` API is modelled with the same decoding (it is the filter's spec,
//! not Meilisearch's): an operator's path means the same thing to both.
#![cfg(not(target_arch = "wasm32"))]
// The model indexes bytes as the sources it follows do; in a test a panic is a failure, which
// clippy.toml allows in tests but does not recognise outside `#[test]` functions here.
#![allow(clippy::indexing_slicing)]

mod common;

use miroir_filter::core::route::{classify, AdminAction, Route};
use proptest::prelude::*;
use proptest::sample::select;

// ------------------------------------------------------------------------------------------
// The reference model
// ------------------------------------------------------------------------------------------

/// What happens to a request at a Meilisearch node (or, for `/_miroir`, at the filter).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// Enqueues a settings update of `index`; `key` is the setting's JSON key on a sub-route.
    SettingsUpdate {
        index: String,
        key: Option<&'static str>,
    },
    /// Any other request that enqueues a task on `index`.
    Write {
        index: String,
    },
    /// Reads `index`.
    Read {
        index: String,
    },
    /// Answered 400/404/405, nothing changes; `index` is the valid uid the path names in index
    /// scope, if any.
    Refused {
        index: Option<String>,
    },
    /// `GET /tasks/{uid}`.
    TaskGet {
        uid: u32,
    },
    /// Not about one index or task (list/create indexes, task lists, /health, /multi-search …).
    Elsewhere,
    /// The node's HTTP layer refuses the request line (`http::Uri` rejects a byte of the path):
    /// nothing is routed at all, so nothing the filter decides can let a write slip through.
    BadUri,
    Admin {
        index: String,
        action: AdminAction,
    },
    AdminUnknown,
}

/// Reference §2 (`make_setting_routes!`): path segment, update verb, JSON key. Typed from the
/// reference, not taken from `route::SETTING_ROUTES`.
const SETTINGS: &[(&str, &str, &str)] = &[
    ("filterable-attributes", "PUT", "filterableAttributes"),
    ("sortable-attributes", "PUT", "sortableAttributes"),
    ("displayed-attributes", "PUT", "displayedAttributes"),
    ("typo-tolerance", "PATCH", "typoTolerance"),
    ("searchable-attributes", "PUT", "searchableAttributes"),
    ("stop-words", "PUT", "stopWords"),
    ("non-separator-tokens", "PUT", "nonSeparatorTokens"),
    ("separator-tokens", "PUT", "separatorTokens"),
    ("dictionary", "PUT", "dictionary"),
    ("synonyms", "PUT", "synonyms"),
    ("distinct-attribute", "PUT", "distinctAttribute"),
    ("proximity-precision", "PUT", "proximityPrecision"),
    ("localized-attributes", "PUT", "localizedAttributes"),
    ("ranking-rules", "PUT", "rankingRules"),
    ("faceting", "PATCH", "faceting"),
    ("pagination", "PATCH", "pagination"),
    ("embedders", "PATCH", "embedders"),
    ("search-cutoff-ms", "PUT", "searchCutoffMs"),
    ("facet-search", "PUT", "facetSearch"),
    ("prefix-search", "PUT", "prefixSearch"),
    ("chat", "PATCH", "chat"),
    ("foreign-keys", "PUT", "foreignKeys"),
];

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

/// actix-router's `Quoter::requote` with the given protected bytes.
fn requote(raw: &[u8], protected: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        if raw[i] == b'%' && i + 2 < raw.len() {
            if let (Some(hi), Some(lo)) = (hex_digit(raw[i + 1]), hex_digit(raw[i + 2])) {
                let byte = hi * 16 + lo;
                if !protected.contains(&byte) {
                    out.push(byte);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(raw[i]);
        i += 1;
    }
    out
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Bytes `http::Uri` (0.2, what actix-web 4 uses) accepts in a path.
fn uri_path_byte(b: u8) -> bool {
    matches!(b, 0x21 | 0x24..=0x3B | 0x3D | 0x40..=0x5F | 0x61..=0x7A | 0x7C | 0x7E)
        || matches!(b, b'"' | b'{' | b'}')
}

/// A `{param}` as the handler sees it (step 4).
fn param(segment: &str) -> String {
    lossy(requote(segment.as_bytes(), b""))
}

fn valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 400
        && uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn node_model(method: &str, target: &str) -> Node {
    let end = target.find(['?', '#']).unwrap_or(target.len());
    let path = &target[..end];
    if !path.bytes().all(uri_path_byte) {
        return Node::BadUri;
    }
    assert!(
        path.starts_with('/'),
        "generators only make origin-form paths: {target:?}"
    );

    let trimmed = path.trim_end_matches('/');
    let mut merged = String::new();
    for c in trimmed.chars() {
        if !(c == '/' && merged.ends_with('/')) {
            merged.push(c);
        }
    }
    if merged.is_empty() {
        merged.push('/');
    }
    let routed = lossy(requote(merged.as_bytes(), b"%/+"));
    let segments: Vec<&str> = routed.split('/').skip(1).collect();

    match segments.as_slice() {
        ["indexes", uid, rest @ ..] => index_scope(method, uid, rest),
        ["tasks", id] if method == "GET" && !["cancel", "compact"].contains(id) => {
            match param(id).parse::<u32>() {
                Ok(uid) => Node::TaskGet { uid },
                Err(_) => Node::Refused { index: None },
            }
        }
        ["_miroir", rest @ ..] => admin(method, rest),
        _ => Node::Elsewhere,
    }
}

fn index_scope(method: &str, raw_uid: &str, rest: &[&str]) -> Node {
    let uid = param(raw_uid);
    if !valid_uid(&uid) {
        // Either no route matches (404) or the handler refuses the uid (400).
        return Node::Refused { index: None };
    }
    let index = uid;
    let read = || Node::Read {
        index: index.clone(),
    };
    let write = || Node::Write {
        index: index.clone(),
    };
    let settings = |key| Node::SettingsUpdate {
        index: index.clone(),
        key,
    };
    let refused = || Node::Refused {
        index: Some(index.clone()),
    };
    match (rest, method) {
        ([], "GET") => read(),
        ([], "PATCH" | "DELETE") => write(),
        (["documents"], "GET") => read(),
        (["documents"], "POST" | "PUT" | "DELETE") => write(),
        (["documents", "delete-batch" | "delete" | "edit"], "POST") => write(),
        (["documents", "fetch"], "POST") => read(),
        // Resources are tried in declaration order: these four match before `{document_id}`,
        // and answer 405 to any other verb.
        (["documents", "delete-batch" | "delete" | "edit" | "fetch"], _) => refused(),
        (["documents", _], "GET") => read(),
        (["documents", _], "DELETE") => write(),
        (["facet-search"], "POST") => read(),
        (["similar" | "search"], "GET" | "POST") => read(),
        (["stats"], "GET") => read(),
        (["fields"], "POST") => read(),
        (["compact"], "POST") => write(),
        (["settings"], "GET") => read(),
        (["settings"], "PATCH" | "DELETE") => settings(None),
        (["settings", name], _) => match SETTINGS.iter().find(|(segment, ..)| segment == name) {
            Some(_) if method == "GET" => read(),
            Some((_, verb, key)) if method == *verb || method == "DELETE" => settings(Some(*key)),
            _ => refused(),
        },
        _ => refused(),
    }
}

fn admin(method: &str, rest: &[&str]) -> Node {
    let (raw_uid, action) = match (rest, method) {
        (["indexes", uid], "GET") => (uid, AdminAction::Show),
        (["indexes", uid, "verify"], "POST") => (uid, AdminAction::Verify),
        (["indexes", uid, "unfreeze"], "POST") => (uid, AdminAction::Unfreeze),
        _ => return Node::AdminUnknown,
    };
    let index = param(raw_uid);
    if valid_uid(&index) {
        Node::Admin { index, action }
    } else {
        Node::AdminUnknown
    }
}

/// Whether the filter's classification is right for what the node does. Exact where it matters:
/// a settings update must be classified as exactly that setting write of exactly that index (or
/// it reaches one node unbroadcast), and nothing else may be; a write must be fenced under its
/// own index; a read must pass under its own index. A refused request changes nothing, so the
/// filter may call it a read or a write of the index the path names.
fn agrees(node: &Node, route: &Route) -> bool {
    match (node, route) {
        (_, _) if *node == Node::BadUri => true,
        (
            Node::SettingsUpdate { index, key },
            Route::SettingsWrite {
                index: got,
                setting,
            },
        ) => index == got && *key == setting.map(|s| s.key),
        (Node::SettingsUpdate { .. }, _) | (_, Route::SettingsWrite { .. }) => false,
        (Node::Write { index }, Route::IndexWrite { index: got }) => index == got,
        (Node::Read { index }, Route::IndexRead { index: got }) => index == got,
        (
            Node::Refused { index: Some(index) },
            Route::IndexRead { index: got } | Route::IndexWrite { index: got },
        ) => index == got,
        (Node::Refused { index: None } | Node::Elsewhere, Route::Other) => true,
        // Requests about no one index (mirror mode's instance writes, index creation, task lists
        // and their translation, writes it refuses): never an index's read or write, so nothing
        // the model checks can slip through them.
        (
            Node::Refused { index: None } | Node::Elsewhere,
            Route::IndexCreate
            | Route::InstanceRead
            | Route::InstanceWrite { .. }
            | Route::TaskTranslate { .. }
            | Route::NotMirrored { .. }
            | Route::TaskList
            | Route::Batches { .. },
        ) => true,
        // classify reads task uids as u64; one above u32::MAX is not a Meilisearch uid, and the
        // filter answers only uids of its own range (below 2^31), so the node refuses it anyway.
        (Node::Refused { index: None }, Route::TaskGet { uid }) => *uid > u64::from(u32::MAX),
        (Node::TaskGet { uid }, Route::TaskGet { uid: got }) => u64::from(*uid) == *got,
        (
            Node::Admin { index, action },
            Route::Admin {
                index: got,
                action: got_action,
            },
        ) => index == got && action == got_action,
        (Node::AdminUnknown, Route::AdminUnknown) => true,
        _ => false,
    }
}

// ------------------------------------------------------------------------------------------
// Generators
// ------------------------------------------------------------------------------------------

const TOP: &[&str] = &[
    "indexes",
    "tasks",
    "_miroir",
    "health",
    "multi-search",
    "keys",
    "version",
    "stats",
];
const INDEX_SUBS: &[&str] = &[
    "settings",
    "documents",
    "search",
    "facet-search",
    "similar",
    "stats",
    "fields",
    "compact",
];
const DOCUMENT_SUBS: &[&str] = &["fetch", "delete-batch", "delete", "edit", "42", "x"];

fn setting_segment() -> impl Strategy<Value = String> {
    select(SETTINGS).prop_map(|(segment, ..)| segment.to_string())
}

/// Any word a route uses, or a random one.
fn word() -> BoxedStrategy<String> {
    prop_oneof![
        select(TOP).prop_map(String::from),
        select(INDEX_SUBS).prop_map(String::from),
        select(DOCUMENT_SUBS).prop_map(String::from),
        setting_segment(),
        Just("verify".to_string()),
        Just("unfreeze".to_string()),
        "[a-z0-9_-]{1,8}",
    ]
    .boxed()
}

/// Index uids as the client means them (before encoding): mostly valid, some at the length
/// limit, some with a byte a uid may not hold.
fn uid() -> BoxedStrategy<String> {
    prop_oneof![
        6 => "[A-Za-z0-9_-]{1,10}",
        1 => (399usize..=401).prop_map(|n| "u".repeat(n)),
        2 => "[A-Za-z0-9_.%/+é ?#-]{0,6}",
    ]
    .boxed()
}

fn task_id() -> BoxedStrategy<String> {
    prop_oneof![
        1 => any::<u32>().prop_map(|n| n.to_string()),
        1 => (2_130_706_432u32..2_130_706_442).prop_map(|n| n.to_string()),
        1 => any::<u64>().prop_map(|n| n.to_string()),
        1 => Just(u32::MAX.to_string()),
        1 => Just((u64::from(u32::MAX) + 1).to_string()),
        3 => "[+-]?0{0,3}[0-9]{1,4}",
        1 => "[0-9+ a-]{0,5}",
    ]
    .boxed()
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The decoded segments of a path, from the route templates.
fn segments() -> BoxedStrategy<Vec<String>> {
    let index_tail = prop_oneof![
        1 => Just(vec![]),
        2 => Just(s(&["settings"])),
        3 => setting_segment().prop_map(|n| vec!["settings".into(), n]),
        1 => (setting_segment(), word()).prop_map(|(n, w)| vec!["settings".into(), n, w]),
        1 => word().prop_map(|w| vec!["settings".into(), w]),
        1 => Just(s(&["documents"])),
        2 => select(DOCUMENT_SUBS).prop_map(|d| vec!["documents".into(), d.into()]),
        3 => select(INDEX_SUBS).prop_map(|d| vec![d.to_string()]),
        1 => prop::collection::vec(word(), 1..4),
    ];
    prop_oneof![
        6 => (uid(), index_tail).prop_map(|(u, tail)| {
            let mut v = vec!["indexes".to_string(), u];
            v.extend(tail);
            v
        }),
        1 => Just(s(&["indexes"])),
        2 => task_id().prop_map(|t| vec!["tasks".into(), t]),
        1 => (task_id(), word()).prop_map(|(t, w)| vec!["tasks".into(), t, w]),
        1 => select(&["cancel", "compact"][..]).prop_map(|w| vec!["tasks".into(), w.into()]),
        2 => (uid(), prop::collection::vec(select(&["verify", "unfreeze", "x"][..]), 0..2))
            .prop_map(|(u, tail)| {
                let mut v = s(&["_miroir", "indexes"]);
                v.push(u);
                v.extend(tail.into_iter().map(String::from));
                v
            }),
        1 => prop::collection::vec(word(), 0..3).prop_map(|w| {
            let mut v = s(&["_miroir"]);
            v.extend(w);
            v
        }),
        1 => prop::collection::vec(word(), 0..5),
    ]
    .boxed()
}

/// A near miss of a segment: one character changed, dropped or added.
fn near_miss(segment: &str, how: u8, at: usize) -> String {
    let mut chars: Vec<char> = segment.chars().collect();
    if chars.is_empty() {
        return "x".into();
    }
    let at = at % chars.len();
    match how % 4 {
        0 => chars[at] = chars[at].to_ascii_uppercase(),
        1 => {
            chars.remove(at);
        }
        2 => chars.insert(at, '.'),
        _ => chars.push('%'),
    }
    chars.into_iter().collect()
}

/// Writes `byte` (an ASCII character) as a client may: literally, as `%XX` or `%xx`, or as an
/// escape whose own characters are written any of these ways (`%%341`, `%4%31` … for `A`).
fn encode_ascii(out: &mut String, byte: u8, choices: &mut impl Iterator<Item = u8>, depth: u8) {
    match choices.next().unwrap_or(0) % 10 {
        6 => out.push_str(&format!("%{byte:02X}")),
        7 => out.push_str(&format!("%{byte:02x}")),
        8 | 9 if depth > 0 => {
            let hex = format!("{byte:02x}");
            let upper = choices.next().unwrap_or(0).is_multiple_of(2);
            for b in std::iter::once(b'%').chain(hex.bytes()) {
                let b = if upper { b.to_ascii_uppercase() } else { b };
                encode_ascii(out, b, choices, depth - 1);
            }
        }
        _ => out.push(char::from(byte)),
    }
}

fn encode(segment: &str, choices: &[u8]) -> String {
    let mut choices = choices.iter().copied().cycle();
    let mut out = String::new();
    for c in segment.chars() {
        if c.is_ascii() {
            encode_ascii(&mut out, c as u8, &mut choices, 2);
        } else if choices.next().unwrap_or(0).is_multiple_of(2) {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

const SEPARATORS: &[&str] = &["/", "/", "/", "/", "/", "/", "//", "///", "%2F", "%2f"];
const TRAILERS: &[&str] = &["", "", "", "/", "//", "%2F"];
const QUERIES: &[&str] = &[
    "",
    "",
    "",
    "?",
    "?x=1",
    "?a=/indexes/x/settings",
    "?q=%2F#f",
    "#frag",
    "#a?b",
];
const JUNK: &[&str] = &[
    "%", "%%", "/", "?", "#", "+", ".", "..", " ", "é", "\u{FFFD}", "%FF", "%C3", "%e9", "%zz",
    "%2", "%25", "%2B", "%00", "A", "7", "\0",
];

/// A full request target: encoded segments, odd separators, a trailer, a query, maybe junk.
fn target() -> impl Strategy<Value = String> {
    (
        segments(),
        prop::collection::vec(any::<u8>(), 1..64),
        (any::<u8>(), any::<u8>(), any::<usize>()),
        select(&["/", "/", "/", "//"][..]),
        prop::collection::vec(select(SEPARATORS), 8),
        select(TRAILERS),
        select(QUERIES),
        prop::option::weighted(0.1, (select(JUNK), any::<usize>())),
    )
        .prop_map(
            |(mut segments, choices, (miss, how, at), lead, seps, trailer, query, junk)| {
                if miss < 20 && !segments.is_empty() {
                    let i = at % segments.len();
                    segments[i] = near_miss(&segments[i], how, at);
                }
                let mut path = lead.to_string();
                for (i, segment) in segments.iter().enumerate() {
                    if i > 0 {
                        path.push_str(seps[i % seps.len()]);
                    }
                    let offset = (i * 7) % choices.len();
                    path.push_str(&encode(segment, &choices[offset..]));
                }
                path.push_str(trailer);
                path.push_str(query);
                if let Some((junk, at)) = junk {
                    // Never before the leading `/`: Envoy only forwards origin-form paths.
                    let mut at = 1 + at % path.len();
                    while !path.is_char_boundary(at) {
                        at -= 1;
                    }
                    path.insert_str(at.max(1), junk);
                }
                path
            },
        )
}

/// Methods as sent: mostly the known verbs, some in odd case (extension methods to a node).
fn method() -> impl Strategy<Value = String> {
    let verbs = &[
        "GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE", "CONNECT", "PURGE",
    ][..];
    prop_oneof![
        8 => select(verbs).prop_map(String::from),
        1 => (select(verbs), any::<u16>()).prop_map(|(verb, mask)| {
            verb.chars()
                .enumerate()
                .map(|(i, c)| if (mask >> (i % 16)) & 1 == 1 { c.to_ascii_lowercase() } else { c })
                .collect()
        }),
        1 => "[A-Za-z]{0,8}",
    ]
}

fn check(method: &str, target: &str) -> Result<(), TestCaseError> {
    let node = node_model(method, target);
    let route = classify(method, target);
    prop_assert!(
        agrees(&node, &route),
        "{method} {target:?}: Meilisearch does {node:?}, classify says {route:?}"
    );
    Ok(())
}

proptest! {
    #![proptest_config(common::config(3_000))]

    #[test]
    fn classify_agrees_with_meilisearch_routing(method in method(), target in target()) {
        check(&method, &target)?;
    }

    /// Arbitrary strings, and arbitrary bytes read as the glue reads a non-UTF-8 header
    /// (lossily): never a panic, and where the path is one a node would route, the same answer.
    #[test]
    fn classify_never_panics(method in ".{0,8}", target in "/.{0,40}", bytes in prop::collection::vec(any::<u8>(), 0..40)) {
        check(&method, &target)?;
        let junk = String::from_utf8_lossy(&bytes);
        let _ = classify(&method, &junk);
        let _ = classify(&junk, &junk);
        check("PATCH", &format!("/{junk}"))?;
    }
}

/// The encodings the generator relies on, pinned (a mistake in the model or the generator would
/// otherwise make the property vacuous), and the cases the properties found, kept as examples.
#[test]
fn model_examples() {
    let settings = |index: &str| Node::SettingsUpdate {
        index: index.into(),
        key: None,
    };
    // Reference verified-here §10: a real node enqueues these.
    assert_eq!(node_model("PATCH", "/%69ndexes/h/settings"), settings("h"));
    assert_eq!(node_model("PATCH", "/indexes/%68/settings"), settings("h"));
    assert_eq!(node_model("PATCH", "/indexes/h/%73ettings"), settings("h"));
    assert_eq!(node_model("PATCH", "//indexes/h/settings/"), settings("h"));
    // Protected escapes stay encoded for matching; a uid is decoded a second time.
    assert_eq!(requote(b"/a%2Fb%2B%25%41", b"%/+"), b"/a%2Fb%2B%25A");
    assert_eq!(param("%%341"), "%41");
    assert_eq!(
        node_model("PATCH", "/indexes/%%341/settings"),
        settings("A")
    );
    assert_eq!(
        node_model("PATCH", "/indexes/%4%31/settings"),
        settings("A")
    );
    assert_eq!(
        node_model("PATCH", "/indexes/%2541/settings"),
        Node::Refused { index: None }
    );
    assert_eq!(
        node_model("PATCH", "/indexes/movies/%2573ettings"),
        Node::Refused {
            index: Some("movies".into())
        }
    );
    assert_eq!(node_model("GET", "/tasks/+5"), Node::TaskGet { uid: 5 });
    assert_eq!(node_model("GET", "/tasks/%2B5"), Node::TaskGet { uid: 5 });
    assert_eq!(node_model("GET", "/tasks/%%335"), Node::TaskGet { uid: 5 });
    assert_eq!(
        node_model("patch", "/indexes/h/settings"),
        Node::Refused {
            index: Some("h".into())
        }
    );
    assert_eq!(encode("A", &[8, 0, 0, 6, 0]), "%%341");
}
