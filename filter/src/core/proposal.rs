//! A settings write as a proposal: which keys it sets or resets, what each must read back as on
//! a Meilisearch node, what the task `details` echo, and how it folds into the desired settings.
//!
//! Read-back prediction follows the normalizations of Meilisearch v1.50 (reference §3, §4). Keys
//! whose read-back cannot be predicted safely are checked by cross-node agreement only:
//! `embedders` (defaults per source, masked apiKey), `chat` and `foreignKeys` (feature-gated),
//! `stopWords` and `typoTolerance.disableOnWords` containing non-ASCII text (Unicode
//! normalization by the tokenizer), and locales outside the known ISO-639-1 → 639-3 table.

use super::canonical_text::ReadText;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

/// The settings keys of Meilisearch v1.50 with their defaults (features off), in GET order.
/// Built once per VM: every check of a node's read-back consults them, and building them was
/// most of the check of a small read-back (a map of 23 keys and their nested values).
pub fn default_settings() -> &'static Map<String, Value> {
    static DEFAULTS: OnceLock<Map<String, Value>> = OnceLock::new();
    DEFAULTS.get_or_init(build_default_settings)
}

fn build_default_settings() -> Map<String, Value> {
    let v = json!({
        "displayedAttributes": ["*"], "searchableAttributes": ["*"], "filterableAttributes": [],
        "sortableAttributes": [], "rankingRules": ["words","typo","proximity","attributeRank","sort","wordPosition","exactness"],
        "stopWords": [], "nonSeparatorTokens": [], "separatorTokens": [], "dictionary": [], "synonyms": {},
        "distinctAttribute": null, "proximityPrecision": "byWord",
        "typoTolerance": {"enabled": true, "minWordSizeForTypos": {"oneTypo": 5, "twoTypos": 9},
            "disableOnWords": [], "disableOnAttributes": [], "disableOnNumbers": false},
        "faceting": {"maxValuesPerFacet": 100, "sortFacetValuesBy": {"*": "alpha"}},
        "pagination": {"maxTotalHits": 1000}, "embedders": {}, "searchCutoffMs": null,
        "localizedAttributes": null, "facetSearch": true, "prefixSearch": "indexingTime"
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// Keys verified by cross-node agreement only.
pub const AGREEMENT_ONLY_KEYS: &[&str] = &["embedders", "chat", "foreignKeys"];

#[derive(Debug, Clone, PartialEq)]
pub enum Proposal {
    /// Keys absent = unchanged, null = reset, value = set (PATCH semantics).
    Patch(Map<String, Value>),
    /// DELETE /indexes/{uid}/settings: every key back to its default.
    ResetAll,
}

impl Proposal {
    /// `setting_key` is the key of a per-setting sub-route (None for the whole route).
    pub fn from_request(method: &str, setting_key: Option<&str>, body: Option<&Value>) -> Result<Proposal, String> {
        match (setting_key, method) {
            (None, "DELETE") => Ok(Proposal::ResetAll),
            (None, _) => match body {
                Some(Value::Object(m)) => Ok(Proposal::Patch(m.clone())),
                _ => Err("the settings body must be a JSON object".into()),
            },
            (Some(key), "DELETE") => Ok(Proposal::Patch(single(key, Value::Null))),
            (Some(key), _) => Ok(Proposal::Patch(single(key, body.cloned().unwrap_or(Value::Null)))),
        }
    }

    /// Whether the settings read-back `read` holds this proposal, as far as it is predictable:
    /// `mismatches` on just the members it checks, parsed from their text (the rest of a large
    /// read-back is never parsed into values).
    pub fn holds_in(&self, read: &ReadText<'_>) -> bool {
        if !read.is_object() {
            return false;
        }
        let keys: Vec<&str> = match self {
            Proposal::Patch(m) => m.keys().map(String::as_str).collect(),
            Proposal::ResetAll => default_settings().keys().map(String::as_str).collect(),
        };
        let mut members = Map::new();
        for key in keys.into_iter().filter(|k| !AGREEMENT_ONLY_KEYS.contains(k)) {
            if let Some(text) = read.member(key) {
                match serde_json::from_slice::<Value>(text.as_bytes()) {
                    Ok(value) => members.insert(key.to_string(), value),
                    Err(_) => return false,
                };
            }
        }
        self.mismatches(&Value::Object(members)).is_empty()
    }

    /// Keys whose read-back did not match the prediction, e.g. `["rankingRules"]`.
    pub fn mismatches(&self, readback: &Value) -> Vec<String> {
        let Some(read) = readback.as_object() else {
            return vec!["(body)".into()];
        };
        let defaults = default_settings();
        let null = Value::Null;
        let proposed: Vec<(&String, &Value)> = match self {
            Proposal::ResetAll => defaults.keys().map(|k| (k, &null)).collect(),
            Proposal::Patch(m) => m.iter().collect(),
        };
        let mut bad = Vec::new();
        for (key, value) in proposed {
            if AGREEMENT_ONLY_KEYS.contains(&key.as_str()) {
                continue;
            }
            let got = read.get(key).unwrap_or(&Value::Null);
            let ok = match expected(key, value, defaults) {
                Expect::Exact(want) => &want == got,
                Expect::Partial(fields) => fields.iter().all(|(path, want)| lookup(got, path) == Some(want)),
                Expect::Unpredictable => true,
            };
            if !ok {
                bad.push(key.clone());
            }
        }
        bad
    }

    /// The task `details` Meilisearch would echo: the request's keys, apiKeys masked.
    /// (Once a node's task is read, its own details replace this.)
    pub fn details(&self) -> Value {
        let mut out = match self {
            // Inserted one by one: `collect` into a map would compile in a sort of its own.
            Proposal::ResetAll => default_settings().keys().fold(Map::new(), |mut all, k| {
                all.insert(k.clone(), Value::Null);
                all
            }),
            Proposal::Patch(m) => m.clone(),
        };
        for key in ["displayedAttributes", "searchableAttributes"] {
            if out.get(key) == Some(&Value::Null) {
                out.insert(key.into(), json!(["*"]));
            }
        }
        if let Some(Value::Object(embedders)) = out.get_mut("embedders") {
            for (_, e) in embedders.iter_mut() {
                if let Some(Value::String(k)) = e.get_mut("apiKey") {
                    *k = mask_secret(k);
                }
            }
        }
        Value::Object(out)
    }

    /// Fold this proposal into the desired settings of the index (PATCH merge rules, reference
    /// §3.1). The result keeps secrets: it is held in shared memory only, never logged or shown.
    pub fn merge_into(&self, desired: &mut Map<String, Value>) {
        match self {
            Proposal::ResetAll => desired.clear(),
            Proposal::Patch(patch) => {
                for (key, value) in patch {
                    match key.as_str() {
                        _ if value.is_null() => {
                            desired.remove(key);
                        }
                        "typoTolerance" | "faceting" | "pagination" | "chat" | "embedders" => {
                            let slot = desired.entry(key.clone()).or_insert_with(|| json!({}));
                            merge_object(slot, value, key == "embedders");
                        }
                        _ => {
                            desired.insert(key.clone(), value.clone());
                        }
                    }
                }
            }
        }
    }
}

fn single(key: &str, value: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(key.to_string(), value);
    m
}

/// Field-level merge; nulls remove. Embedders merge one level deeper (per name, then per field).
fn merge_object(slot: &mut Value, patch: &Value, per_name: bool) {
    let (Some(target), Some(patch)) = (slot.as_object_mut(), patch.as_object()) else {
        *slot = patch.clone();
        return;
    };
    for (k, v) in patch {
        if v.is_null() {
            target.remove(k);
        } else if per_name && v.is_object() && target.get(k).is_some_and(Value::is_object) {
            if let Some(inner) = target.get_mut(k) {
                merge_object(inner, v, false);
            }
        } else if !per_name && v.is_object() && k == "minWordSizeForTypos" {
            let inner = target.entry(k.clone()).or_insert_with(|| json!({}));
            merge_object(inner, v, false);
        } else {
            target.insert(k.clone(), v.clone());
        }
    }
}

enum Expect {
    Exact(Value),
    /// (JSON pointer-ish path, expected value) for merged objects: only the sent fields are known.
    Partial(Vec<(Vec<String>, Value)>),
    Unpredictable,
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, p| cur.get(p))
}

fn expected(key: &str, value: &Value, defaults: &Map<String, Value>) -> Expect {
    if value.is_null() {
        return match defaults.get(key) {
            Some(d) => Expect::Exact(d.clone()),
            None => Expect::Unpredictable,
        };
    }
    match key {
        "displayedAttributes" | "searchableAttributes" => match value.as_array() {
            Some(items) if items.iter().any(|i| i == "*") => Expect::Exact(json!(["*"])),
            Some(items) => Expect::Exact(Value::Array(dedup_keep_first(items))),
            None => Expect::Unpredictable,
        },
        "filterableAttributes" => match value.as_array() {
            Some(items) => Expect::Exact(Value::Array(items.iter().map(expand_filterable).collect())),
            None => Expect::Unpredictable,
        },
        "sortableAttributes" | "nonSeparatorTokens" | "separatorTokens" | "dictionary" => sorted_set(value),
        "stopWords" => match value.as_array() {
            Some(items) if items.iter().all(|i| i.as_str().is_some_and(plain_ascii)) => sorted_set(value),
            _ => Expect::Unpredictable,
        },
        "localizedAttributes" => localized(value),
        "typoTolerance" => typo_tolerance(value),
        "faceting" => faceting(value),
        "pagination" => match value.get("maxTotalHits") {
            Some(v) if !v.is_null() => Expect::Partial(vec![(path(&["maxTotalHits"]), v.clone())]),
            Some(_) => Expect::Partial(vec![(path(&["maxTotalHits"]), json!(1000))]),
            None => Expect::Partial(vec![]),
        },
        // Replaced wholesale and read back as sent (synonyms maps are sorted, but JSON object
        // comparison ignores order).
        _ => Expect::Exact(value.clone()),
    }
}

fn path(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| p.to_string()).collect()
}

fn plain_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fn dedup_keep_first(items: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for i in items {
        if !out.contains(i) {
            out.push(i.clone());
        }
    }
    out
}

fn sorted_set(value: &Value) -> Expect {
    let Some(items) = value.as_array() else {
        return Expect::Unpredictable;
    };
    let mut strings: Vec<&str> = Vec::new();
    for i in items {
        match i.as_str() {
            Some(s) => strings.push(s),
            None => return Expect::Unpredictable,
        }
    }
    super::sort::sort_dedup(&mut strings);
    Expect::Exact(Value::Array(strings.into_iter().map(|s| Value::String(s.into())).collect()))
}

fn expand_filterable(item: &Value) -> Value {
    let Some(obj) = item.as_object() else {
        return item.clone();
    };
    let features = obj.get("features");
    let filter = features.and_then(|f| f.get("filter"));
    let flag = |v: Option<&Value>, default: bool| v.and_then(Value::as_bool).unwrap_or(default);
    json!({
        "attributePatterns": obj.get("attributePatterns").cloned().unwrap_or(json!([])),
        "features": {
            "facetSearch": flag(features.and_then(|f| f.get("facetSearch")), false),
            "filter": {
                "equality": flag(filter.and_then(|f| f.get("equality")), true),
                "comparison": flag(filter.and_then(|f| f.get("comparison")), false),
            }
        }
    })
}

/// ISO-639-1 codes Meilisearch rewrites to ISO-639-3 on read (reference §4.1, `locales.rs`).
const LOCALES: &[(&str, &str)] = &[
    ("af", "afr"), ("ak", "aka"), ("am", "amh"), ("ar", "ara"), ("az", "aze"), ("be", "bel"),
    ("bn", "ben"), ("bg", "bul"), ("ca", "cat"), ("cs", "ces"), ("da", "dan"), ("de", "deu"),
    ("el", "ell"), ("en", "eng"), ("eo", "epo"), ("et", "est"), ("fi", "fin"), ("fr", "fra"),
    ("gu", "guj"), ("he", "heb"), ("hi", "hin"), ("hr", "hrv"), ("hu", "hun"), ("hy", "hye"),
    ("id", "ind"), ("it", "ita"), ("jv", "jav"), ("ja", "jpn"), ("kn", "kan"), ("ka", "kat"),
    ("km", "khm"), ("ko", "kor"), ("la", "lat"), ("lv", "lav"), ("lt", "lit"), ("ml", "mal"),
    ("mr", "mar"), ("mk", "mkd"), ("my", "mya"), ("ne", "nep"), ("nl", "nld"), ("nb", "nob"),
    ("or", "ori"), ("pa", "pan"), ("fa", "pes"), ("pl", "pol"), ("pt", "por"), ("ro", "ron"),
    ("ru", "rus"), ("si", "sin"), ("sk", "slk"), ("sl", "slv"), ("sn", "sna"), ("es", "spa"),
    ("sr", "srp"), ("sv", "swe"), ("ta", "tam"), ("te", "tel"), ("tl", "tgl"), ("th", "tha"),
    ("tk", "tuk"), ("tr", "tur"), ("uk", "ukr"), ("ur", "urd"), ("uz", "uzb"), ("vi", "vie"),
    ("yi", "yid"), ("zh", "zho"), ("zu", "zul"),
];

fn localized(value: &Value) -> Expect {
    let Some(rules) = value.as_array() else {
        return Expect::Unpredictable;
    };
    let mut out = Vec::new();
    for rule in rules {
        let mut locales = Vec::new();
        for l in rule.get("locales").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
            let Some(code) = l.as_str() else { return Expect::Unpredictable };
            let mapped = match LOCALES.iter().find(|(two, three)| *two == code || *three == code) {
                Some((_, three)) => *three,
                None if code == "cmn" => "cmn",
                None => return Expect::Unpredictable,
            };
            locales.push(Value::String(mapped.into()));
        }
        out.push(json!({
            "attributePatterns": rule.get("attributePatterns").cloned().unwrap_or(json!([])),
            "locales": locales,
        }));
    }
    Expect::Exact(Value::Array(out))
}

fn typo_tolerance(value: &Value) -> Expect {
    let Some(obj) = value.as_object() else { return Expect::Unpredictable };
    let defaults = json!({"enabled": true, "disableOnNumbers": false, "disableOnWords": [], "disableOnAttributes": []});
    let mut fields = Vec::new();
    for (k, v) in obj {
        match k.as_str() {
            "enabled" | "disableOnNumbers" => {
                let want = if v.is_null() { defaults.get(k).cloned().unwrap_or(Value::Null) } else { v.clone() };
                fields.push((path(&[k]), want));
            }
            "disableOnAttributes" | "disableOnWords" => {
                let want = if v.is_null() {
                    json!([])
                } else if k == "disableOnWords" {
                    // Lowercased by the tokenizer; only ASCII is predictable.
                    match v.as_array() {
                        Some(items) if items.iter().all(|i| i.as_str().is_some_and(plain_ascii)) => {
                            let lowered: Vec<Value> = items
                                .iter()
                                .filter_map(Value::as_str)
                                .map(|s| Value::String(s.to_ascii_lowercase()))
                                .collect();
                            match sorted_set(&Value::Array(lowered)) {
                                Expect::Exact(w) => w,
                                _ => continue,
                            }
                        }
                        _ => continue,
                    }
                } else {
                    match sorted_set(v) {
                        Expect::Exact(w) => w,
                        _ => continue,
                    }
                };
                fields.push((path(&[k]), want));
            }
            "minWordSizeForTypos" => {
                if v.is_null() {
                    fields.push((path(&[k, "oneTypo"]), json!(5)));
                    fields.push((path(&[k, "twoTypos"]), json!(9)));
                } else if let Some(sizes) = v.as_object() {
                    for (sk, sv) in sizes {
                        let want = match (sk.as_str(), sv.is_null()) {
                            ("oneTypo", true) => json!(5),
                            ("twoTypos", true) => json!(9),
                            _ => sv.clone(),
                        };
                        fields.push((path(&[k, sk]), want));
                    }
                }
            }
            _ => {}
        }
    }
    Expect::Partial(fields)
}

fn faceting(value: &Value) -> Expect {
    let Some(obj) = value.as_object() else { return Expect::Unpredictable };
    let mut fields = Vec::new();
    if let Some(v) = obj.get("maxValuesPerFacet") {
        fields.push((path(&["maxValuesPerFacet"]), if v.is_null() { json!(100) } else { v.clone() }));
    }
    if let Some(v) = obj.get("sortFacetValuesBy") {
        let mut map = v.as_object().cloned().unwrap_or_default();
        map.entry("*").or_insert_with(|| json!("alpha"));
        fields.push((path(&["sortFacetValuesBy"]), Value::Object(map)));
    }
    Expect::Partial(fields)
}

/// Meilisearch's mask for embedder apiKeys (reference §4.2): by byte length, cut on a char
/// boundary at or after n bytes.
pub fn mask_secret(secret: &str) -> String {
    let len = secret.len();
    let (keep, xs) = match len {
        0..=9 => return "XXX...".into(),
        10..=19 => (2, "XXXX..."),
        20..=29 => (3, "XXXXX..."),
        _ => (5, "XXXXXX..."),
    };
    let mut cut = keep;
    while cut < len && !secret.is_char_boundary(cut) {
        cut += 1;
    }
    format!("{}{xs}", secret.get(..cut).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readback(patch: Value) -> Value {
        let mut d = default_settings().clone();
        if let Value::Object(p) = patch {
            for (k, v) in p {
                d.insert(k, v);
            }
        }
        Value::Object(d)
    }

    #[test]
    fn predicts_normalized_readback() {
        let cases: Vec<(Value, Value, bool)> = vec![
            (json!({"rankingRules": ["typo", "words"]}), json!({"rankingRules": ["typo", "words"]}), true),
            (json!({"rankingRules": ["typo", "words"]}), json!({"rankingRules": ["words", "typo"]}), false),
            (json!({"displayedAttributes": ["a", "*", "b"]}), json!({}), true),
            (json!({"displayedAttributes": ["b", "a", "b"]}), json!({"displayedAttributes": ["b", "a"]}), true),
            (json!({"sortableAttributes": ["b", "a", "b"]}), json!({"sortableAttributes": ["a", "b"]}), true),
            (json!({"stopWords": ["the", "a", "the"]}), json!({"stopWords": ["a", "the"]}), true),
            (json!({"stopWords": ["café"]}), json!({"stopWords": ["cafe\u{301}"]}), true),
            (json!({"filterableAttributes": ["genre", {"attributePatterns": ["year"]}]}),
             json!({"filterableAttributes": ["genre", {"attributePatterns": ["year"], "features": {"facetSearch": false, "filter": {"equality": true, "comparison": false}}}]}), true),
            (json!({"localizedAttributes": [{"attributePatterns": ["t"], "locales": ["fr", "ja"]}]}),
             json!({"localizedAttributes": [{"attributePatterns": ["t"], "locales": ["fra", "jpn"]}]}), true),
            (json!({"typoTolerance": {"disableOnWords": ["iPhone"], "minWordSizeForTypos": {"oneTypo": 4}}}),
             json!({"typoTolerance": {"enabled": true, "minWordSizeForTypos": {"oneTypo": 4, "twoTypos": 9}, "disableOnWords": ["iphone"], "disableOnAttributes": [], "disableOnNumbers": false}}), true),
            (json!({"faceting": {"sortFacetValuesBy": {"genre": "count"}}}),
             json!({"faceting": {"maxValuesPerFacet": 100, "sortFacetValuesBy": {"*": "alpha", "genre": "count"}}}), true),
            (json!({"pagination": {"maxTotalHits": 50}}), json!({"pagination": {"maxTotalHits": 1000}}), false),
            (json!({"synonyms": {"b": ["c"], "a": ["x"]}}), json!({"synonyms": {"a": ["x"], "b": ["c"]}}), true),
            (json!({"distinctAttribute": null}), json!({"distinctAttribute": "sku"}), false),
            (json!({"embedders": {"e": {"source": "userProvided", "dimensions": 3}}}), json!({}), true),
        ];
        for (patch, read, ok) in cases {
            let p = Proposal::Patch(patch.as_object().cloned().unwrap());
            assert_eq!(p.mismatches(&readback(read.clone())).is_empty(), ok, "{patch} vs {read}");
        }
    }

    #[test]
    fn reset_all_expects_defaults() {
        assert!(Proposal::ResetAll.mismatches(&Value::Object(default_settings().clone())).is_empty());
        assert_eq!(Proposal::ResetAll.mismatches(&readback(json!({"stopWords": ["x"]}))), vec!["stopWords"]);
    }

    #[test]
    fn sub_routes_become_single_key_patches() {
        let p = Proposal::from_request("PUT", Some("synonyms"), Some(&json!({"a": ["b"]}))).unwrap();
        assert_eq!(p, Proposal::Patch(single("synonyms", json!({"a": ["b"]}))));
        let p = Proposal::from_request("DELETE", Some("stopWords"), None).unwrap();
        assert_eq!(p, Proposal::Patch(single("stopWords", Value::Null)));
        assert!(Proposal::from_request("PATCH", None, Some(&json!([1]))).is_err());
    }

    #[test]
    fn masks_like_meilisearch() {
        assert_eq!(mask_secret("short"), "XXX...");
        assert_eq!(mask_secret("0123456789"), "01XXXX...");
        assert_eq!(mask_secret("01234567890123456789"), "012XXXXX...");
        assert_eq!(mask_secret("My super secret key that is 42 bytes long"), "My suXXXXXX...");
        assert_eq!(mask_secret("ひらがな6789012345678901234567"), "ひらXXXXXX...");
    }

    #[test]
    fn details_mask_embedder_keys_and_star_resets() {
        let p = Proposal::Patch(json!({"displayedAttributes": null, "embedders": {"e": {"apiKey": "My super secret key that is 42 bytes long"}}}).as_object().cloned().unwrap());
        let d = p.details();
        assert_eq!(d["displayedAttributes"], json!(["*"]));
        assert_eq!(d["embedders"]["e"]["apiKey"], "My suXXXXXX...");
    }

    #[test]
    fn desired_merges_like_patch() {
        let mut desired = Map::new();
        let p1 = Proposal::Patch(json!({"typoTolerance": {"enabled": false}, "embedders": {"a": {"source": "openAi", "apiKey": "k1"}}, "stopWords": ["x"]}).as_object().cloned().unwrap());
        let p2 = Proposal::Patch(json!({"typoTolerance": {"disableOnNumbers": true}, "embedders": {"a": {"model": "m"}, "b": {"source": "userProvided"}}, "stopWords": null}).as_object().cloned().unwrap());
        p1.merge_into(&mut desired);
        p2.merge_into(&mut desired);
        assert_eq!(Value::Object(desired.clone()), json!({
            "typoTolerance": {"enabled": false, "disableOnNumbers": true},
            "embedders": {"a": {"source": "openAi", "apiKey": "k1", "model": "m"}, "b": {"source": "userProvided"}}
        }));
        Proposal::ResetAll.merge_into(&mut desired);
        assert!(desired.is_empty());
    }
}
