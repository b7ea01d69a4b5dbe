//! Index settings: defaults, request parsing/validation, task-time merge and normalization, and
//! the GET view (reference §1–§4). Values are kept as JSON in Meilisearch's field order.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::embedders;
use crate::errors::ApiError;
use crate::jsoncheck::{sorted_set, At};
use crate::normalize;

/// Every settings key in `Settings<T>` field order (reference §1 and §5.2).
pub const KEYS: [&str; 22] = [
    "displayedAttributes",
    "searchableAttributes",
    "filterableAttributes",
    "sortableAttributes",
    "foreignKeys",
    "rankingRules",
    "stopWords",
    "nonSeparatorTokens",
    "separatorTokens",
    "dictionary",
    "synonyms",
    "distinctAttribute",
    "proximityPrecision",
    "typoTolerance",
    "faceting",
    "pagination",
    "embedders",
    "searchCutoffMs",
    "localizedAttributes",
    "facetSearch",
    "prefixSearch",
    "chat",
];

/// Keys hidden from the whole-settings GET while their experimental feature is off (all nodes
/// here run with features off).
const FEATURE_GATED: [&str; 2] = ["foreignKeys", "chat"];

pub const DEFAULT_RANKING_RULES: [&str; 7] =
    ["words", "typo", "proximity", "attributeRank", "sort", "wordPosition", "exactness"];

const TYPO_FIELDS: [&str; 5] =
    ["enabled", "minWordSizeForTypos", "disableOnWords", "disableOnAttributes", "disableOnNumbers"];
const CHAT_FIELDS: [&str; 4] = ["description", "documentTemplate", "documentTemplateMaxBytes", "searchParameters"];

/// A per-setting sub-route: path segment, JSON key, and its one update verb (reference §2).
pub struct SubRoute {
    pub segment: &'static str,
    pub key: &'static str,
    pub update_verb: &'static str,
}

pub const SUB_ROUTES: [SubRoute; 22] = [
    SubRoute { segment: "filterable-attributes", key: "filterableAttributes", update_verb: "PUT" },
    SubRoute { segment: "sortable-attributes", key: "sortableAttributes", update_verb: "PUT" },
    SubRoute { segment: "displayed-attributes", key: "displayedAttributes", update_verb: "PUT" },
    SubRoute { segment: "typo-tolerance", key: "typoTolerance", update_verb: "PATCH" },
    SubRoute { segment: "searchable-attributes", key: "searchableAttributes", update_verb: "PUT" },
    SubRoute { segment: "stop-words", key: "stopWords", update_verb: "PUT" },
    SubRoute { segment: "non-separator-tokens", key: "nonSeparatorTokens", update_verb: "PUT" },
    SubRoute { segment: "separator-tokens", key: "separatorTokens", update_verb: "PUT" },
    SubRoute { segment: "dictionary", key: "dictionary", update_verb: "PUT" },
    SubRoute { segment: "synonyms", key: "synonyms", update_verb: "PUT" },
    SubRoute { segment: "distinct-attribute", key: "distinctAttribute", update_verb: "PUT" },
    SubRoute { segment: "proximity-precision", key: "proximityPrecision", update_verb: "PUT" },
    SubRoute { segment: "localized-attributes", key: "localizedAttributes", update_verb: "PUT" },
    SubRoute { segment: "ranking-rules", key: "rankingRules", update_verb: "PUT" },
    SubRoute { segment: "faceting", key: "faceting", update_verb: "PATCH" },
    SubRoute { segment: "pagination", key: "pagination", update_verb: "PATCH" },
    SubRoute { segment: "embedders", key: "embedders", update_verb: "PATCH" },
    SubRoute { segment: "search-cutoff-ms", key: "searchCutoffMs", update_verb: "PUT" },
    SubRoute { segment: "facet-search", key: "facetSearch", update_verb: "PUT" },
    SubRoute { segment: "prefix-search", key: "prefixSearch", update_verb: "PUT" },
    SubRoute { segment: "chat", key: "chat", update_verb: "PATCH" },
    SubRoute { segment: "foreign-keys", key: "foreignKeys", update_verb: "PUT" },
];

pub fn sub_route(segment: &str) -> Option<&'static SubRoute> {
    SUB_ROUTES.iter().find(|r| r.segment == segment)
}

/// The `invalid_settings_*` code of a key.
pub fn error_code(key: &str) -> &'static str {
    match key {
        "displayedAttributes" => "invalid_settings_displayed_attributes",
        "searchableAttributes" => "invalid_settings_searchable_attributes",
        "filterableAttributes" => "invalid_settings_filterable_attributes",
        "sortableAttributes" => "invalid_settings_sortable_attributes",
        "foreignKeys" => "invalid_settings_foreign_keys",
        "rankingRules" => "invalid_settings_ranking_rules",
        "stopWords" => "invalid_settings_stop_words",
        "nonSeparatorTokens" => "invalid_settings_non_separator_tokens",
        "separatorTokens" => "invalid_settings_separator_tokens",
        "dictionary" => "invalid_settings_dictionary",
        "synonyms" => "invalid_settings_synonyms",
        "distinctAttribute" => "invalid_settings_distinct_attribute",
        "proximityPrecision" => "invalid_settings_proximity_precision",
        "typoTolerance" => "invalid_settings_typo_tolerance",
        "faceting" => "invalid_settings_faceting",
        "pagination" => "invalid_settings_pagination",
        "embedders" => "invalid_settings_embedders",
        "searchCutoffMs" => "invalid_settings_search_cutoff_ms",
        "localizedAttributes" => "invalid_settings_localized_attributes",
        "facetSearch" => "invalid_settings_facet_search",
        "prefixSearch" => "invalid_settings_prefix_search",
        _ => "invalid_settings_index_chat",
    }
}

pub fn default_chat() -> Value {
    json!({
        "description": "",
        "documentTemplate": embedders::DEFAULT_TEMPLATE,
        "documentTemplateMaxBytes": 400,
        "searchParameters": {},
    })
}

fn default_typo() -> Value {
    json!({
        "enabled": true,
        "minWordSizeForTypos": {"oneTypo": 5, "twoTypos": 9},
        "disableOnWords": [],
        "disableOnAttributes": [],
        "disableOnNumbers": false,
    })
}

/// The value GET shows for a key on a fresh index.
pub fn default_value(key: &str) -> Value {
    match key {
        "displayedAttributes" | "searchableAttributes" => json!(["*"]),
        "rankingRules" => json!(DEFAULT_RANKING_RULES),
        "filterableAttributes"
        | "sortableAttributes"
        | "foreignKeys"
        | "stopWords"
        | "nonSeparatorTokens"
        | "separatorTokens"
        | "dictionary" => json!([]),
        "synonyms" | "embedders" => json!({}),
        "proximityPrecision" => json!("byWord"),
        "typoTolerance" => default_typo(),
        "faceting" => json!({"maxValuesPerFacet": 100, "sortFacetValuesBy": {"*": "alpha"}}),
        "pagination" => json!({"maxTotalHits": 1000}),
        "facetSearch" => json!(true),
        "prefixSearch" => json!("indexingTime"),
        "chat" => default_chat(),
        _ => Value::Null, // distinctAttribute, searchCutoffMs, localizedAttributes
    }
}

/// The stored settings of one index. Every key is present with its effective (normalized) value;
/// `embedders` holds only the fields each embedder was given, with real secrets.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    values: Map<String, Value>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { values: KEYS.iter().map(|k| (k.to_string(), default_value(k))).collect() }
    }
}

impl Settings {
    /// GET /indexes/{uid}/settings: the 20 keys visible with features off, secrets masked.
    pub fn view(&self) -> Value {
        self.view_with(true)
    }

    /// Like [`Settings::view`]; `mask: false` shows embedder apiKeys in clear (control API only).
    pub fn view_with(&self, mask: bool) -> Value {
        let mut out = Map::new();
        for key in KEYS.iter().filter(|k| !FEATURE_GATED.contains(k)) {
            out.insert(key.to_string(), self.view_key_with(key, mask));
        }
        Value::Object(out)
    }

    /// GET of one sub-route: the bare value (sub-route GETs ignore feature flags).
    pub fn view_key(&self, key: &str) -> Value {
        self.view_key_with(key, true)
    }

    fn view_key_with(&self, key: &str, mask: bool) -> Value {
        let raw = self.values.get(key).cloned().unwrap_or(Value::Null);
        if key == "embedders" {
            let map = raw.as_object().cloned().unwrap_or_default();
            return Value::Object(
                map.iter()
                    .map(|(name, e)| (name.clone(), embedders::view_with(e.as_object().unwrap_or(&Map::new()), mask)))
                    .collect(),
            );
        }
        raw
    }

    /// The stored value of a key (secrets in clear), for engine-side logic such as search.
    pub fn raw(&self, key: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.values.get(key).unwrap_or(&NULL)
    }
}

/// A validated settings update: the keys the request carried, in field order, with parsed values
/// (`null` = reset). It is exactly what the task `details` echo (before apiKey masking).
#[derive(Clone, Debug, PartialEq)]
pub struct Update {
    pub values: Map<String, Value>,
}

impl Update {
    /// `details` of the settingsUpdate task (reference §5.2).
    pub fn details(&self) -> Value {
        let mut out = self.values.clone();
        if let Some(e) = out.get("embedders").cloned() {
            out.insert("embedders".to_string(), embedders::mask_details(&e));
        }
        Value::Object(out)
    }

    /// DELETE /settings: every key reset (`Settings::cleared`).
    pub fn cleared() -> Update {
        let values = KEYS
            .iter()
            .map(|k| {
                let v = if matches!(*k, "displayedAttributes" | "searchableAttributes") {
                    json!(["*"])
                } else {
                    Value::Null
                };
                (k.to_string(), v)
            })
            .collect();
        Update { values }
    }

    /// DELETE /settings/<sub-route>: that key reset.
    pub fn reset(key: &str) -> Update {
        let v = if matches!(key, "displayedAttributes" | "searchableAttributes") { json!(["*"]) } else { Value::Null };
        let mut values = Map::new();
        values.insert(key.to_string(), v);
        Update { values }
    }
}

/// Parses the body of PATCH /indexes/{uid}/settings.
pub fn parse_whole(body: &Value) -> Result<Update, ApiError> {
    let root = At::new("bad_request", "");
    let obj = root.object(body)?;
    // deserr reports the first problem in body order.
    let mut parsed: BTreeMap<usize, (String, Value)> = BTreeMap::new();
    for (key, value) in obj {
        let Some(pos) = KEYS.iter().position(|k| k == key) else {
            return Err(root.unknown_field(key, &KEYS));
        };
        let v = parse_key(KEYS[pos], value, &At::new(error_code(key), format!(".{key}")))?;
        parsed.insert(pos, (key.clone(), v));
    }
    let update = Update { values: parsed.into_values().collect() };
    validate(&update)?;
    Ok(update)
}

/// Parses the body of a sub-route update: the bare value of `key`.
pub fn parse_sub(key: &str, body: &Value) -> Result<Update, ApiError> {
    let v = parse_key(key, body, &At::new(error_code(key), ""))?;
    let mut values = Map::new();
    values.insert(key.to_string(), v);
    let update = Update { values };
    validate(&update)?;
    Ok(update)
}

/// Checks run after deserialization: ranking-rule mix (`Settings::validate`) and feature gates.
fn validate(update: &Update) -> Result<(), ApiError> {
    if let Some(Value::Array(rules)) = update.values.get("rankingRules") {
        let has = |n: &str| rules.iter().any(|r| r.as_str() == Some(n));
        if has("attribute") && (has("attributeRank") || has("wordPosition")) {
            return Err(ApiError::invalid(
                "invalid_settings_ranking_rules",
                "Mixed usage of the attribute, attributeRank, and wordPosition ranking rules. You must either use the attribute ranking rule alone or the attributeRank and wordPosition ranking rules.",
            ));
        }
    }
    for (key, feature, what) in [
        ("chat", "chatCompletions", "setting `chat` in the index settings"),
        ("foreignKeys", "foreignKeys", "setting `foreignKeys` in the index settings"),
    ] {
        if update.values.get(key).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::invalid(
                "feature_not_enabled",
                format!("{what} requires enabling the `{feature}` experimental feature. See https://github.com/orgs/meilisearch/discussions/835"),
            ));
        }
    }
    Ok(())
}

fn parse_key(key: &str, v: &Value, at: &At) -> Result<Value, ApiError> {
    if v.is_null() {
        // Reset. Displayed/searchable resets serialize as ["*"] (`serialize_with_wildcard`).
        return Ok(if matches!(key, "displayedAttributes" | "searchableAttributes") {
            json!(["*"])
        } else {
            Value::Null
        });
    }
    Ok(match key {
        "displayedAttributes" | "searchableAttributes" | "rankingRules" => {
            let items = at.strings(v)?;
            if key == "rankingRules" {
                for (i, rule) in items.iter().enumerate() {
                    check_ranking_rule(rule).map_err(|m| at.index(i).value_error(&m))?;
                }
            }
            json!(items)
        }
        "sortableAttributes" | "stopWords" | "nonSeparatorTokens" | "separatorTokens" | "dictionary" => {
            sorted_set(at.strings(v)?)
        }
        "filterableAttributes" => {
            let items = at.array(v)?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(parse_filterable_rule(item, &at.index(i))?);
            }
            Value::Array(out)
        }
        "foreignKeys" => {
            let items = at.array(v)?;
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let iat = at.index(i);
                let obj = iat.object_with(item, &["foreignIndexUid", "fieldName"])?;
                let mut rule = Map::new();
                for f in ["foreignIndexUid", "fieldName"] {
                    let fv = obj.get(f).ok_or_else(|| iat.missing_field(f))?;
                    rule.insert(f.to_string(), Value::String(iat.field(f).string(fv)?.to_string()));
                }
                out.push(Value::Object(rule));
            }
            Value::Array(out)
        }
        "synonyms" => {
            let obj = at.object(v)?;
            let mut sorted = BTreeMap::new();
            for (word, alts) in obj {
                sorted.insert(word.clone(), json!(at.field(word).strings(alts)?));
            }
            Value::Object(sorted.into_iter().collect())
        }
        "distinctAttribute" => Value::String(at.string(v)?.to_string()),
        "proximityPrecision" => enum_value(v, at, &["byWord", "byAttribute"])?,
        "prefixSearch" => enum_value(v, at, &["indexingTime", "disabled"])?,
        "facetSearch" => Value::Bool(at.boolean(v)?),
        "searchCutoffMs" => Value::from(at.positive_integer(v)?),
        "typoTolerance" => parse_typo(v, at)?,
        "faceting" => {
            let obj = at.object_with(v, &["maxValuesPerFacet", "sortFacetValuesBy"])?;
            let mut out = Map::new();
            if let Some(m) = obj.get("maxValuesPerFacet") {
                let mat = at.field("maxValuesPerFacet");
                out.insert(
                    "maxValuesPerFacet".into(),
                    if m.is_null() { Value::Null } else { Value::from(mat.positive_integer(m)?) },
                );
            }
            if let Some(s) = obj.get("sortFacetValuesBy") {
                let sat = at.field("sortFacetValuesBy");
                let parsed = if s.is_null() {
                    Value::Null
                } else {
                    let mut sorted = BTreeMap::new();
                    for (facet, order) in sat.object(s)? {
                        sorted.insert(facet.clone(), enum_value(order, &sat.field(facet), &["alpha", "count"])?);
                    }
                    Value::Object(sorted.into_iter().collect())
                };
                out.insert("sortFacetValuesBy".into(), parsed);
            }
            Value::Object(out)
        }
        "pagination" => {
            let obj = at.object_with(v, &["maxTotalHits"])?;
            let mut out = Map::new();
            if let Some(m) = obj.get("maxTotalHits") {
                let mat = at.field("maxTotalHits");
                let parsed = if m.is_null() {
                    Value::Null
                } else {
                    let n = mat.positive_integer(m)?;
                    if n == 0 {
                        return Err(mat.value_error(
                            "a non-zero integer value lower than `18446744073709551615` was expected, but found a zero",
                        ));
                    }
                    Value::from(n)
                };
                out.insert("maxTotalHits".into(), parsed);
            }
            Value::Object(out)
        }
        "embedders" => {
            let obj = at.object(v)?;
            let mut sorted = BTreeMap::new();
            for (name, e) in obj {
                let parsed = if e.is_null() { Value::Null } else { embedders::parse(name, e, &at.field(name))? };
                sorted.insert(name.clone(), parsed);
            }
            Value::Object(sorted.into_iter().collect())
        }
        "localizedAttributes" => {
            let items = at.array(v)?;
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let iat = at.index(i);
                let obj = iat.object_with(item, &["attributePatterns", "locales"])?;
                let patterns = obj.get("attributePatterns").ok_or_else(|| iat.missing_field("attributePatterns"))?;
                let patterns = iat.field("attributePatterns").strings(patterns)?;
                let locales_v = obj.get("locales").ok_or_else(|| iat.missing_field("locales"))?;
                let lat = iat.field("locales");
                let locales = lat.strings(locales_v)?;
                for (j, l) in locales.iter().enumerate() {
                    if normalize::locale_iso3(l).is_none() {
                        return Err(lat.index(j).value_error(&normalize::unsupported_locale_message(l)));
                    }
                }
                out.push(json!({"attributePatterns": patterns, "locales": locales}));
            }
            Value::Array(out)
        }
        _ => {
            // chat: shape-checked only; setting it is refused by the feature gate.
            let obj = at.object_with(v, &CHAT_FIELDS)?;
            Value::Object(obj.clone())
        }
    })
}

fn enum_value(v: &Value, at: &At, allowed: &[&str]) -> Result<Value, ApiError> {
    let s = at.string(v)?;
    if allowed.contains(&s) {
        Ok(Value::String(s.to_string()))
    } else {
        Err(at.unknown_value(s, allowed))
    }
}

/// A filterable rule: a plain attribute name, or an object expanded with default features.
fn parse_filterable_rule(item: &Value, at: &At) -> Result<Value, ApiError> {
    match item {
        Value::String(_) => Ok(item.clone()),
        Value::Object(_) => {
            let obj = at.object_with(item, &["attributePatterns", "features"])?;
            let patterns = obj.get("attributePatterns").ok_or_else(|| at.missing_field("attributePatterns"))?;
            let patterns = at.field("attributePatterns").strings(patterns)?;
            let (mut facet_search, mut equality, mut comparison) = (false, true, false);
            if let Some(f) = obj.get("features") {
                let fat = at.field("features");
                let features = fat.object_with(f, &["facetSearch", "filter"])?;
                if let Some(fs) = features.get("facetSearch") {
                    facet_search = fat.field("facetSearch").boolean(fs)?;
                }
                if let Some(filter) = features.get("filter") {
                    let flat = fat.field("filter");
                    let filter = flat.object_with(filter, &["equality", "comparison"])?;
                    if let Some(e) = filter.get("equality") {
                        equality = flat.field("equality").boolean(e)?;
                    }
                    if let Some(c) = filter.get("comparison") {
                        comparison = flat.field("comparison").boolean(c)?;
                    }
                }
            }
            Ok(json!({
                "attributePatterns": patterns,
                "features": {"facetSearch": facet_search, "filter": {"equality": equality, "comparison": comparison}},
            }))
        }
        other => Err(at.type_error("a string or an object", other)),
    }
}

/// Ranking rule syntax (`criterion.rs`): a builtin, or `<field>:asc|desc` with a non-reserved field.
fn check_ranking_rule(rule: &str) -> Result<(), String> {
    const BUILTIN: [&str; 8] =
        ["words", "typo", "proximity", "attribute", "attributeRank", "wordPosition", "sort", "exactness"];
    if BUILTIN.contains(&rule) {
        return Ok(());
    }
    let invalid = || {
        format!("`{rule}` ranking rule is invalid. Valid ranking rules are words, typo, sort, proximity, attribute, exactness and custom ranking rules.")
    };
    let Some((field, order)) = rule.rsplit_once(':') else {
        return Err(invalid());
    };
    if !matches!(order, "asc" | "desc") || field.is_empty() {
        return Err(invalid());
    }
    let reserved = |name: &str| format!("`{name}` is a reserved keyword and thus can't be used as a ranking rule");
    if field == "_geo" || field == "_geoDistance" {
        return Err(reserved(field));
    }
    if field.starts_with("_geoPoint") {
        return Err(format!("{}. `_geoPoint` can only be used for sorting at search time", reserved("_geoPoint")));
    }
    for name in ["_geoRadius", "_geoBoundingBox"] {
        if field.starts_with(name) {
            return Err(format!("{}. `{name}` can only be used for filtering at search time", reserved(name)));
        }
    }
    Ok(())
}

fn parse_typo(v: &Value, at: &At) -> Result<Value, ApiError> {
    let obj = at.object_with(v, &TYPO_FIELDS)?;
    let mut out = Map::new();
    for field in TYPO_FIELDS {
        let Some(fv) = obj.get(field) else { continue };
        let fat = at.field(field);
        let parsed = if fv.is_null() {
            Value::Null
        } else {
            match field {
                "enabled" | "disableOnNumbers" => Value::Bool(fat.boolean(fv)?),
                "disableOnWords" | "disableOnAttributes" => sorted_set(fat.strings(fv)?),
                _ => {
                    let sizes = fat.object_with(fv, &["oneTypo", "twoTypos"])?;
                    let mut m = Map::new();
                    for s in ["oneTypo", "twoTypos"] {
                        let Some(sv) = sizes.get(s) else { continue };
                        let sat = fat.field(s);
                        let parsed = if sv.is_null() {
                            Value::Null
                        } else {
                            let n = sat.positive_integer(sv)?;
                            if n > 255 {
                                return Err(sat.value_error(&format!(
                                    "value: `{n}` is too large to be deserialized, maximum value authorized is `255`"
                                )));
                            }
                            Value::from(n)
                        };
                        m.insert(s.to_string(), parsed);
                    }
                    if let (Some(one), Some(two)) =
                        (m.get("oneTypo").and_then(Value::as_u64), m.get("twoTypos").and_then(Value::as_u64))
                    {
                        if one > two {
                            return Err(fat.value_error(&min_word_size_message(one, two)));
                        }
                    }
                    Value::Object(m)
                }
            }
        };
        out.insert(field.to_string(), parsed);
    }
    Ok(Value::Object(out))
}

fn min_word_size_message(one: u64, two: u64) -> String {
    format!("`minWordSizeForTypos` setting is invalid. `oneTypo` and `twoTypos` fields should be between `0` and `255`, and `twoTypos` should be greater or equals to `oneTypo` but found `oneTypo: {one}` and twoTypos: {two}`.")
}

/// Applies a validated update to stored settings, as the engine does when it processes the task.
/// Errors are the task-time ones of reference §6.2 (without the `Index \`uid\`: ` prefix).
pub fn apply(current: &Settings, update: &Update) -> Result<Settings, ApiError> {
    let mut next = current.clone();
    for (key, v) in &update.values {
        let old = current.raw(key).clone();
        let new = apply_key(key, &old, v)?;
        next.values.insert(key.clone(), new);
    }
    Ok(next)
}

fn apply_key(key: &str, old: &Value, v: &Value) -> Result<Value, ApiError> {
    if v.is_null() {
        return Ok(default_value(key));
    }
    Ok(match key {
        "displayedAttributes" | "searchableAttributes" => {
            let items: Vec<&str> =
                v.as_array().map(|a| a.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
            if items.contains(&"*") {
                json!(["*"])
            } else {
                let mut seen = std::collections::HashSet::new();
                json!(items.into_iter().filter(|s| seen.insert(*s)).collect::<Vec<_>>())
            }
        }
        "stopWords" => {
            let words = v
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).map(normalize::stop_word).collect())
                .unwrap_or_default();
            sorted_set(words)
        }
        "typoTolerance" => merge_typo(old, v)?,
        "faceting" => {
            let mut out = old.as_object().cloned().unwrap_or_default();
            for (f, fv) in v.as_object().into_iter().flatten() {
                let value = match (f.as_str(), fv) {
                    ("maxValuesPerFacet", Value::Null) => json!(100),
                    ("sortFacetValuesBy", Value::Null) => json!({"*": "alpha"}),
                    ("sortFacetValuesBy", Value::Object(m)) => {
                        let mut sorted: BTreeMap<String, Value> =
                            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                        sorted.entry("*".to_string()).or_insert_with(|| json!("alpha"));
                        Value::Object(sorted.into_iter().collect())
                    }
                    _ => fv.clone(),
                };
                out.insert(f.clone(), value);
            }
            Value::Object(out)
        }
        "pagination" => {
            let mut out = old.as_object().cloned().unwrap_or_default();
            if let Some(m) = v.get("maxTotalHits") {
                out.insert("maxTotalHits".into(), if m.is_null() { json!(1000) } else { m.clone() });
            }
            Value::Object(out)
        }
        "embedders" => {
            let old = old.as_object().cloned().unwrap_or_default();
            let change = v.as_object().cloned().unwrap_or_default();
            Value::Object(embedders::merge(&old, &change)?)
        }
        "localizedAttributes" => {
            let rules = v.as_array().cloned().unwrap_or_default();
            Value::Array(
                rules
                    .into_iter()
                    .map(|mut rule| {
                        if let Some(Value::Array(locales)) = rule.get_mut("locales") {
                            for l in locales.iter_mut() {
                                if let Some(iso3) = l.as_str().and_then(normalize::locale_iso3) {
                                    *l = Value::String(iso3.to_string());
                                }
                            }
                        }
                        rule
                    })
                    .collect(),
            )
        }
        "chat" => {
            let mut out = old.as_object().cloned().unwrap_or_default();
            for (f, fv) in v.as_object().into_iter().flatten() {
                out.insert(f.clone(), if fv.is_null() { default_chat()[f.as_str()].clone() } else { fv.clone() });
            }
            Value::Object(out)
        }
        // Plain values are replaced wholesale; set-like ones were already sorted at parse time,
        // and an empty stopWords/separators/dictionary/synonyms is the default anyway.
        _ => v.clone(),
    })
}

fn merge_typo(old: &Value, v: &Value) -> Result<Value, ApiError> {
    let mut out = old.as_object().cloned().unwrap_or_else(|| default_typo().as_object().cloned().unwrap_or_default());
    let defaults = default_typo();
    for (f, fv) in v.as_object().into_iter().flatten() {
        let value = match (f.as_str(), fv) {
            (_, Value::Null) => defaults[f.as_str()].clone(),
            ("disableOnWords", Value::Array(words)) => {
                sorted_set(words.iter().filter_map(Value::as_str).map(normalize::disable_on_word).collect())
            }
            ("minWordSizeForTypos", Value::Object(sizes)) => {
                let mut merged = out.get(f).and_then(Value::as_object).cloned().unwrap_or_default();
                for (s, sv) in sizes {
                    merged.insert(
                        s.clone(),
                        if sv.is_null() { defaults[f.as_str()][s.as_str()].clone() } else { sv.clone() },
                    );
                }
                let one = merged.get("oneTypo").and_then(Value::as_u64).unwrap_or(5);
                let two = merged.get("twoTypos").and_then(Value::as_u64).unwrap_or(9);
                if one > two {
                    return Err(ApiError::invalid("invalid_settings_typo_tolerance", min_word_size_message(one, two)));
                }
                Value::Object(merged)
            }
            _ => fv.clone(),
        };
        out.insert(f.clone(), value);
    }
    Ok(Value::Object(out))
}
