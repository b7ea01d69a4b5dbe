//! Property tests of the plugin configuration parser against the configuration reference
//! (docs/operations.md, "every key, default and range"), restated here as a model.
//!
//! Documents are generated key by key, each value either allowed by the reference or not (out of
//! range, negative, fractional, mistyped, reserved …), with unknown keys and broken node lists
//! mixed in. The parser must accept exactly the documents the model allows, hand back every value
//! it was given (defaults for the rest), and name in every refusal a key the generator broke.
#![cfg(not(target_arch = "wasm32"))]
// Helpers outside `#[test]` functions index and unwrap like the tests do (a panic here is a test
// failure); clippy.toml's in-test allowances do not reach them.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

mod common;

use miroir_filter::core::config::{Config, Strategy as BroadcastStrategy};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Int { lo: u64, hi: u64, default: u64 },
    Bool(bool),
    Strategy,
    Header,
    Env(&'static str),
}

/// (section, key, kind): the reference's table, section "" for top-level keys.
const FIELDS: &[(&str, &str, Kind)] = &[
    ("settings_broadcast", "strategy", Kind::Strategy),
    (
        "settings_broadcast",
        "propose_timeout_ms",
        Kind::Int {
            lo: 1,
            hi: 600_000,
            default: 5_000,
        },
    ),
    (
        "settings_broadcast",
        "verify_timeout_s",
        Kind::Int {
            lo: 1,
            hi: 3_600,
            default: 60,
        },
    ),
    (
        "settings_broadcast",
        "task_timeout_s",
        Kind::Int {
            lo: 1,
            hi: 604_800,
            default: 3_600,
        },
    ),
    (
        "settings_broadcast",
        "max_repair_retries",
        Kind::Int {
            lo: 0,
            hi: 100,
            default: 3,
        },
    ),
    (
        "settings_broadcast",
        "repair_backoff_base_ms",
        Kind::Int {
            lo: 1,
            hi: 3_600_000,
            default: 1_000,
        },
    ),
    (
        "settings_broadcast",
        "freeze_writes_on_unrepairable",
        Kind::Bool(true),
    ),
    (
        "settings_drift_check",
        "interval_s",
        Kind::Int {
            lo: 1,
            hi: 86_400,
            default: 300,
        },
    ),
    ("settings_drift_check", "auto_repair", Kind::Bool(true)),
    (
        "settings_drift_check",
        "max_reads_in_flight",
        Kind::Int {
            lo: 1,
            hi: 64,
            default: 4,
        },
    ),
    ("", "routing_header", Kind::Header),
    (
        "",
        "task_uid_base",
        Kind::Int {
            lo: 1_073_741_824,
            hi: 2_130_706_432,
            default: 2_130_706_432,
        },
    ),
    (
        "",
        "task_retention",
        Kind::Int {
            lo: 1,
            hi: 100_000,
            default: 1_000,
        },
    ),
    ("", "admin_api_key_env", Kind::Env("MIROIR_ADMIN_API_KEY")),
    ("", "node_api_key_env", Kind::Env("MIROIR_NODE_API_KEY")),
    (
        "",
        "max_body_bytes",
        Kind::Int {
            lo: 1_024,
            hi: 104_857_600,
            default: 10_485_760,
        },
    ),
];

/// Headers the reference forbids as `routing_header`: `authorization`, `host`, `content-*`,
/// hop-by-hop headers and the filter's own `x-miroir-*` headers other than a node pin.
fn reserved_header(name: &str) -> bool {
    const HOP_BY_HOP: &[&str] = &[
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authorization",
    ];
    const FILTER: &[&str] = &[
        "x-miroir-min-settings-version",
        "x-miroir-settings-version",
        "x-miroir-settings-inconsistent",
        "x-miroir-hold",
    ];
    name == "authorization"
        || name == "host"
        || name.starts_with("content-")
        || HOP_BY_HOP.contains(&name)
        || FILTER.contains(&name)
}

/// A value for a key of `kind`, and whether the reference allows it: mostly allowed ones, so that
/// many documents are accepted and a refusal is usually about one broken key.
fn value(kind: Kind) -> BoxedStrategy<(Value, bool)> {
    let (good, bad) = values(kind);
    prop_oneof![
        6 => good.prop_map(|v| (v, true)),
        1 => bad.prop_map(|v| (v, false)),
    ]
    .boxed()
}

/// Values the reference allows for `kind`, and values it refuses.
fn values(kind: Kind) -> (BoxedStrategy<Value>, BoxedStrategy<Value>) {
    let one_of = |values: Vec<Value>| select(values).boxed();
    match kind {
        Kind::Int { lo, hi, .. } => {
            let good = prop_oneof![
                (lo..=hi).prop_map(|n| json!(n)),
                // Whole doubles (`5000.0`, as Istio's Struct hands them over) are integers too.
                (lo..=hi).prop_map(|n| json!(n as f64)),
                select(vec![lo, hi]).prop_map(|n| json!(n)),
            ]
            .boxed();
            let mut bad: Vec<BoxedStrategy<Value>> = vec![
                (hi + 1..=hi.saturating_mul(3))
                    .prop_map(|n| json!(n))
                    .boxed(),
                (hi + 1..u64::MAX).prop_map(|n| json!(n)).boxed(),
                (i64::MIN..0).prop_map(|n| json!(n)).boxed(),
                (lo..=hi).prop_map(|n| json!(n as f64 + 0.5)).boxed(),
                one_of(vec![
                    json!(hi + 1),
                    json!(1e300),
                    json!(-1.0),
                    json!(lo.to_string()),
                    Value::Null,
                    json!([lo]),
                ]),
            ];
            if lo > 0 {
                bad.push((0..lo).prop_map(|n| json!(n)).boxed());
            }
            (good, proptest::strategy::Union::new(bad).boxed())
        }
        Kind::Bool(_) => (
            any::<bool>().prop_map(|b| json!(b)).boxed(),
            one_of(vec![json!("true"), json!(1), Value::Null]),
        ),
        Kind::Strategy => (
            one_of(vec![json!("two_phase"), json!("sequential")]),
            one_of(vec![
                json!("TWO_PHASE"),
                json!(""),
                json!("parallel"),
                json!(1),
            ]),
        ),
        Kind::Header => (
            "[a-z0-9-]{1,16}"
                .prop_filter("not reserved", |h| !reserved_header(h))
                .prop_map(|h| json!(h))
                .boxed(),
            prop_oneof![
                "(content-|x-miroir-)?(te|host|md5|hold|connection|upgrade|settings-version)"
                    .prop_filter("reserved", |h| reserved_header(h))
                    .prop_map(|h| json!(h)),
                one_of(vec![
                    json!(""),
                    json!("X-Node"),
                    json!("x_node"),
                    json!(":path"),
                    json!("x node"),
                    json!(7)
                ]),
            ]
            .boxed(),
        ),
        Kind::Env(_) => (
            "[A-Za-z_][A-Za-z0-9_]{0,12}".prop_map(|e| json!(e)).boxed(),
            one_of(vec![
                json!(""),
                json!("1KEY"),
                json!("MY-KEY"),
                json!("A B"),
                json!("clé"),
                json!(false),
            ]),
        ),
    }
}

/// One node object, and the key a broken one breaks (None when allowed).
fn node(i: usize) -> BoxedStrategy<(Value, Option<String>)> {
    let path = format!("nodes[{i}]");
    let good = json!({"id": format!("node-{i}"), "cluster": format!("meili_node_{i}"), "authority": format!("n{i}:7700")});
    let broken: Vec<(&str, Value)> = vec![
        ("id", json!("")),
        ("id", json!("node.0")),
        ("id", json!("x".repeat(65))),
        ("id", json!(7)),
        ("cluster", json!("meili node")),
        ("cluster", json!(null)),
        ("authority", json!("n 1")),
        ("authority", json!("n1\r\nx: y")),
        ("weight", json!(1)),
    ];
    let ok = good.clone();
    prop_oneof![
        8 => Just((ok, None)),
        // A valid id at the length limit, other valid characters.
        1 => "[A-Za-z0-9_-]{60,64}".prop_map(move |id| {
            let mut v = good.clone();
            v["id"] = json!(format!("{id}{i}").chars().rev().take(64).collect::<String>());
            (v, None)
        }),
        1 => (select(broken), any::<bool>()).prop_map(move |((key, bad), drop)| {
            let mut v = json!({"id": format!("node-{i}"), "cluster": format!("meili_node_{i}"), "authority": "a"});
            if drop && key != "weight" {
                v.as_object_mut().unwrap().remove(key);
            } else {
                v[key] = bad;
            }
            (v, Some(format!("{path}.{key}")))
        }),
    ]
    .boxed()
}

/// A document, the keys it breaks, and the values it sets (by dotted key).
#[derive(Debug, Clone)]
struct Doc {
    json: Value,
    broken: BTreeSet<String>,
    set: Vec<(String, Value)>,
    nodes: Vec<Value>,
}

fn document() -> impl Strategy<Value = Doc> {
    let fields: Vec<_> = FIELDS
        .iter()
        .map(|&(_, _, kind)| prop::option::weighted(0.4, value(kind)))
        .collect();
    (
        fields,
        prop::collection::vec(0usize..6, 1..4).prop_flat_map(|ids| {
            ids.into_iter()
                .enumerate()
                .map(|(i, _)| node(i))
                .collect::<Vec<_>>()
        }),
        0u8..40,
        prop::option::weighted(
            0.05,
            select(vec!["", "settings_broadcast", "settings_drift_check"]),
        ),
    )
        .prop_map(|(values, nodes, node_shape, unknown)| {
            let mut root = Map::new();
            let mut broken = BTreeSet::new();
            let mut set = Vec::new();
            for (&(section, key, _), value) in FIELDS.iter().zip(values) {
                let Some((value, ok)) = value else { continue };
                let name = dotted(section, key);
                if !ok {
                    broken.insert(name.clone());
                }
                set.push((name, value.clone()));
                section_of(&mut root, section).insert(key.into(), value);
            }
            let mut node_values: Vec<Value> = Vec::new();
            for (v, bad) in nodes {
                broken.extend(bad);
                node_values.push(v);
            }
            match node_shape {
                0 => {
                    root.insert("nodes".into(), json!([]));
                    broken.insert("nodes".into());
                }
                1 => {
                    root.insert("nodes".into(), json!({"id": "n"}));
                    broken.insert("nodes".into());
                }
                2 => {
                    broken.insert("nodes".into());
                }
                3 if node_values.len() > 1 => {
                    // A duplicate of node 0 at the end: its id (checked first) is refused.
                    let n = node_values.len();
                    node_values.push(node_values[0].clone());
                    broken.insert(format!("nodes[{n}].id"));
                    broken.insert(format!("nodes[{n}].cluster"));
                    broken.insert(format!("nodes[{n}].authority"));
                    broken.insert(format!("nodes[{n}].weight"));
                    root.insert("nodes".into(), json!(node_values));
                }
                _ => {
                    root.insert("nodes".into(), json!(node_values));
                }
            }
            if let Some(section) = unknown {
                section_of(&mut root, section).insert("bogus".into(), json!(1));
                broken.insert(dotted(section, "bogus"));
            }
            Doc {
                json: Value::Object(root),
                broken,
                set,
                nodes: node_values,
            }
        })
}

/// The dotted name of `key` in `section` ("" is the top level).
fn dotted(section: &str, key: &str) -> String {
    if section.is_empty() {
        key.to_string()
    } else {
        format!("{section}.{key}")
    }
}

/// The object `section` of the document ("" is the top level), created when missing.
fn section_of<'a>(root: &'a mut Map<String, Value>, section: &str) -> &'a mut Map<String, Value> {
    if section.is_empty() {
        return root;
    }
    root.entry(section).or_insert_with(|| json!({})).as_object_mut().unwrap()
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| v.as_f64().unwrap() as u64)
}

/// The value the parsed configuration holds for a dotted key of FIELDS.
fn parsed(config: &Config, dotted: &str) -> Value {
    let b = &config.settings_broadcast;
    let d = &config.settings_drift_check;
    match dotted {
        "settings_broadcast.strategy" => json!(match b.strategy {
            BroadcastStrategy::TwoPhase => "two_phase",
            BroadcastStrategy::Sequential => "sequential",
        }),
        "settings_broadcast.propose_timeout_ms" => json!(b.propose_timeout_ms),
        "settings_broadcast.verify_timeout_s" => json!(b.verify_timeout_s),
        "settings_broadcast.task_timeout_s" => json!(b.task_timeout_s),
        "settings_broadcast.max_repair_retries" => json!(b.max_repair_retries),
        "settings_broadcast.repair_backoff_base_ms" => json!(b.repair_backoff_base_ms),
        "settings_broadcast.freeze_writes_on_unrepairable" => {
            json!(b.freeze_writes_on_unrepairable)
        }
        "settings_drift_check.interval_s" => json!(d.interval_s),
        "settings_drift_check.auto_repair" => json!(d.auto_repair),
        "settings_drift_check.max_reads_in_flight" => json!(d.max_reads_in_flight),
        "routing_header" => json!(config.routing_header),
        "task_uid_base" => json!(config.task_uid_base),
        "task_retention" => json!(config.task_retention),
        "admin_api_key_env" => json!(config.admin_api_key_env),
        "node_api_key_env" => json!(config.node_api_key_env),
        "max_body_bytes" => json!(config.max_body_bytes),
        other => panic!("no such key {other}"),
    }
}

fn default_of(kind: Kind) -> Value {
    match kind {
        Kind::Int { default, .. } => json!(default),
        Kind::Bool(b) => json!(b),
        Kind::Strategy => json!("two_phase"),
        Kind::Header => json!("x-miroir-node"),
        Kind::Env(name) => json!(name),
    }
}

proptest! {
    #![proptest_config(common::config(1_000))]

    #[test]
    fn accepts_exactly_what_the_reference_allows(doc in document()) {
        let text = doc.json.to_string();
        match Config::parse(text.as_bytes()) {
            Ok(config) => {
                prop_assert!(doc.broken.is_empty(), "accepted {text} despite {:?}", doc.broken);
                for &(section, key, kind) in FIELDS {
                    let dotted = if section.is_empty() { key.to_string() } else { format!("{section}.{key}") };
                    let want = match doc.set.iter().find(|(k, _)| *k == dotted) {
                        Some((_, v)) if v.is_number() => json!(u64_of(v)),
                        Some((_, v)) => v.clone(),
                        None => default_of(kind),
                    };
                    prop_assert_eq!(parsed(&config, &dotted), want, "{} in {}", dotted, text);
                }
                let nodes: Vec<Value> = config
                    .nodes
                    .iter()
                    .map(|n| json!({"id": n.id, "cluster": n.cluster, "authority": n.authority}))
                    .collect();
                prop_assert_eq!(nodes, doc.nodes);
            }
            Err(e) => {
                prop_assert!(
                    doc.broken.contains(&e.key),
                    "{text}: refused naming {:?} ({}), but the broken keys are {:?}",
                    e.key, e.reason, doc.broken
                );
                prop_assert!(!e.reason.is_empty());
            }
        }
    }

    /// Arbitrary bytes and arbitrary JSON: refused or accepted, never a panic; a refusal always
    /// names a key (`(root)` for the document itself) and a reason.
    #[test]
    fn never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), text in "\\PC{0,200}") {
        for input in [&bytes[..], text.as_bytes()] {
            if let Err(e) = Config::parse(input) {
                prop_assert!(!e.key.is_empty() && !e.reason.is_empty(), "{e:?}");
            }
        }
    }
}

#[test]
fn deep_documents_are_refused_naming_the_root() {
    for depth in [200, 100_000] {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let e = Config::parse(text.as_bytes()).unwrap_err();
        assert_eq!(e.key, "(root)");
        let text = format!("{{\"nodes\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
        assert_eq!(Config::parse(text.as_bytes()).unwrap_err().key, "(root)");
    }
}
