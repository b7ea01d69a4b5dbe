//! Settings logic pinned to what Meilisearch v1.50 does (defaults, merge rules, normalizations, masks).

use serde_json::{json, Value};

use crate::settings::{apply, parse_sub, parse_whole, Settings, Update};

/// Reference §1 default body, compact form.
const DEFAULT_BODY: &str = concat!(
    r#"{"displayedAttributes":["*"],"searchableAttributes":["*"],"filterableAttributes":[],"#,
    r#""sortableAttributes":[],"rankingRules":["words","typo","proximity","attributeRank","sort","#,
    r#""wordPosition","exactness"],"stopWords":[],"nonSeparatorTokens":[],"separatorTokens":[],"#,
    r#""dictionary":[],"synonyms":{},"distinctAttribute":null,"proximityPrecision":"byWord","#,
    r#""typoTolerance":{"enabled":true,"minWordSizeForTypos":{"oneTypo":5,"twoTypos":9},"#,
    r#""disableOnWords":[],"disableOnAttributes":[],"disableOnNumbers":false},"#,
    r#""faceting":{"maxValuesPerFacet":100,"sortFacetValuesBy":{"*":"alpha"}},"#,
    r#""pagination":{"maxTotalHits":1000},"embedders":{},"searchCutoffMs":null,"#,
    r#""localizedAttributes":null,"facetSearch":true,"prefixSearch":"indexingTime"}"#,
);

fn patch(current: &Settings, body: Value) -> Settings {
    let update = parse_whole(&body).unwrap_or_else(|e| panic!("{body} rejected: {e:?}"));
    apply(current, &update).unwrap()
}

fn get(s: &Settings) -> Value {
    s.view()
}

#[test]
fn default_body_is_byte_identical_to_reference() {
    let body = serde_json::to_string(&Settings::default().view()).unwrap();
    assert_eq!(body, DEFAULT_BODY);
    assert_eq!(Settings::default().view().as_object().unwrap().len(), 20);
}

#[test]
fn cleared_update_restores_defaults_and_lists_all_keys_in_details() {
    let s = patch(
        &Settings::default(),
        json!({"rankingRules": [], "stopWords": ["a"], "embedders": {"e": {"source": "userProvided", "dimensions": 2}}}),
    );
    let reset = apply(&s, &Update::cleared()).unwrap();
    assert_eq!(serde_json::to_string(&reset.view()).unwrap(), DEFAULT_BODY);
    let details = Update::cleared().details();
    let keys: Vec<&String> = details.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 22);
    assert_eq!(details["displayedAttributes"], json!(["*"]));
    assert_eq!(details["chat"], Value::Null);
    assert_eq!(details["foreignKeys"], Value::Null);
}

#[test]
fn absent_keeps_null_resets_value_sets() {
    let s =
        patch(&Settings::default(), json!({"distinctAttribute": "sku", "searchCutoffMs": 50, "facetSearch": false}));
    let s = patch(&s, json!({"searchCutoffMs": null}));
    let v = get(&s);
    assert_eq!(v["distinctAttribute"], "sku");
    assert_eq!(v["searchCutoffMs"], Value::Null);
    assert_eq!(v["facetSearch"], false);
    let s = patch(&s, json!({}));
    assert_eq!(get(&s)["distinctAttribute"], "sku");
}

#[test]
fn wildcard_collapse_and_first_kept_dedup() {
    let s = patch(
        &Settings::default(),
        json!({"displayedAttributes": ["title", "*"], "searchableAttributes": ["b", "a", "b", "c", "a"]}),
    );
    assert_eq!(get(&s)["displayedAttributes"], json!(["*"]));
    assert_eq!(get(&s)["searchableAttributes"], json!(["b", "a", "c"]));
    let s = patch(&s, json!({"displayedAttributes": [], "rankingRules": []}));
    assert_eq!(get(&s)["displayedAttributes"], json!([]));
    assert_eq!(get(&s)["rankingRules"], json!([]));
}

#[test]
fn set_like_lists_are_sorted_and_deduped() {
    let s = patch(
        &Settings::default(),
        json!({
            "sortableAttributes": ["b", "a", "b"], "separatorTokens": ["z", "&", "z"],
            "nonSeparatorTokens": ["@", "#"], "dictionary": ["J. R. R.", "C#", "C#"],
            "typoTolerance": {"disableOnAttributes": ["y", "x", "x"]},
            "filterableAttributes": ["z", "a", "z"], "rankingRules": ["words", "words", "price:asc"],
        }),
    );
    let v = get(&s);
    assert_eq!(v["sortableAttributes"], json!(["a", "b"]));
    assert_eq!(v["separatorTokens"], json!(["&", "z"]));
    assert_eq!(v["nonSeparatorTokens"], json!(["#", "@"]));
    assert_eq!(v["dictionary"], json!(["C#", "J. R. R."]));
    assert_eq!(v["typoTolerance"]["disableOnAttributes"], json!(["x", "y"]));
    // Not sets: client order and duplicates kept.
    assert_eq!(v["filterableAttributes"], json!(["z", "a", "z"]));
    assert_eq!(v["rankingRules"], json!(["words", "words", "price:asc"]));
}

#[test]
fn stop_words_normalized_then_sorted_bytewise() {
    let s = patch(
        &Settings::default(),
        json!({"stopWords": ["über", "café", "Ähnlich", "ﬁle", "Ｗｉｄｅ", "The", "the", "file"]}),
    );
    assert_eq!(get(&s)["stopWords"], json!(["The", "Wide", "cafe\u{0301}", "file", "the", "u\u{0308}ber", "Ähnlich"]));
    // Details echo the request: sorted/deduped but not normalized.
    let update = parse_whole(&json!({"stopWords": ["über", "café", "café"]})).unwrap();
    assert_eq!(update.details(), json!({"stopWords": ["café", "über"]}));
}

#[test]
fn empty_word_lists_and_synonyms_collapse_to_default() {
    let s = patch(&Settings::default(), json!({"stopWords": ["a"], "synonyms": {"b": ["c", "a", "c"], "a": ["x"]}}));
    assert_eq!(serde_json::to_string(&get(&s)["synonyms"]).unwrap(), r#"{"a":["x"],"b":["c","a","c"]}"#);
    let s = patch(&s, json!({"stopWords": [], "synonyms": {}}));
    assert_eq!(get(&s)["stopWords"], json!([]));
    assert_eq!(get(&s)["synonyms"], json!({}));
}

#[test]
fn typo_tolerance_merges_field_by_field() {
    let s = patch(
        &Settings::default(),
        json!({"typoTolerance": {"enabled": false, "minWordSizeForTypos": {"oneTypo": 3}}}),
    );
    let s = patch(&s, json!({"typoTolerance": {"disableOnWords": ["iPhone", "ÜBER", "Café", "New York", "iphone"]}}));
    assert_eq!(
        get(&s)["typoTolerance"],
        json!({"enabled": false, "minWordSizeForTypos": {"oneTypo": 3, "twoTypos": 9},
               "disableOnWords": ["cafe", "iphone", "new york", "uber"], "disableOnAttributes": [], "disableOnNumbers": false})
    );
    let s = patch(&s, json!({"typoTolerance": {"minWordSizeForTypos": {"oneTypo": null}, "enabled": null}}));
    assert_eq!(get(&s)["typoTolerance"]["minWordSizeForTypos"], json!({"oneTypo": 5, "twoTypos": 9}));
    assert_eq!(get(&s)["typoTolerance"]["enabled"], true);
    let s = patch(&s, json!({"typoTolerance": null}));
    assert_eq!(get(&s)["typoTolerance"], Settings::default().view()["typoTolerance"]);
}

#[test]
fn typo_sizes_checked_at_request_and_task_time() {
    let err =
        parse_whole(&json!({"typoTolerance": {"minWordSizeForTypos": {"oneTypo": 6, "twoTypos": 5}}})).unwrap_err();
    assert_eq!(err.code, "invalid_settings_typo_tolerance");
    // Only oneTypo sent, conflicting with the stored twoTypos: accepted, fails in the task.
    let s = patch(&Settings::default(), json!({"typoTolerance": {"minWordSizeForTypos": {"twoTypos": 6}}}));
    let update = parse_whole(&json!({"typoTolerance": {"minWordSizeForTypos": {"oneTypo": 7}}})).unwrap();
    assert_eq!(apply(&s, &update).unwrap_err().code, "invalid_settings_typo_tolerance");
}

#[test]
fn faceting_and_pagination_merge_and_star_alpha() {
    let s =
        patch(&Settings::default(), json!({"faceting": {"sortFacetValuesBy": {"size": "count", "brand": "alpha"}}}));
    assert_eq!(
        serde_json::to_string(&get(&s)["faceting"]).unwrap(),
        r#"{"maxValuesPerFacet":100,"sortFacetValuesBy":{"*":"alpha","brand":"alpha","size":"count"}}"#
    );
    let s = patch(&s, json!({"faceting": {"maxValuesPerFacet": 7}, "pagination": {"maxTotalHits": 5}}));
    assert_eq!(get(&s)["faceting"]["sortFacetValuesBy"]["size"], "count");
    assert_eq!(get(&s)["faceting"]["maxValuesPerFacet"], 7);
    assert_eq!(get(&s)["pagination"], json!({"maxTotalHits": 5}));
    let s = patch(&s, json!({"faceting": {"sortFacetValuesBy": {"*": "count"}}, "pagination": {"maxTotalHits": null}}));
    assert_eq!(get(&s)["faceting"]["sortFacetValuesBy"], json!({"*": "count"}));
    assert_eq!(get(&s)["pagination"], json!({"maxTotalHits": 1000}));
}

#[test]
fn filterable_objects_expand_with_default_features() {
    let s = patch(
        &Settings::default(),
        json!({"filterableAttributes": ["genre", {"attributePatterns": ["price_*"]}, {"attributePatterns": ["t"], "features": {"facetSearch": true, "filter": {"comparison": true}}}]}),
    );
    assert_eq!(
        serde_json::to_string(&get(&s)["filterableAttributes"]).unwrap(),
        concat!(
            r#"["genre",{"attributePatterns":["price_*"],"features":{"facetSearch":false,"filter":{"equality":true,"comparison":false}}},"#,
            r#"{"attributePatterns":["t"],"features":{"facetSearch":true,"filter":{"equality":true,"comparison":true}}}]"#
        )
    );
}

#[test]
fn locales_canonicalized_on_get_and_null_differs_from_empty() {
    let s = patch(
        &Settings::default(),
        json!({"localizedAttributes": [{"locales": ["fr", "ja", "fa", "cmn", "deu"], "attributePatterns": ["*_x"]}]}),
    );
    assert_eq!(
        serde_json::to_string(&get(&s)["localizedAttributes"]).unwrap(),
        r#"[{"attributePatterns":["*_x"],"locales":["fra","jpn","pes","cmn","deu"]}]"#
    );
    let s = patch(&s, json!({"localizedAttributes": []}));
    assert_eq!(get(&s)["localizedAttributes"], json!([]));
    let s = patch(&s, json!({"localizedAttributes": null}));
    assert_eq!(get(&s)["localizedAttributes"], Value::Null);
    let err =
        parse_whole(&json!({"localizedAttributes": [{"attributePatterns": ["a"], "locales": ["xx"]}]})).unwrap_err();
    assert_eq!(err.code, "invalid_settings_localized_attributes");
    assert!(
        err.message.starts_with("Invalid value at `.localizedAttributes[0].locales[0]`: Unsupported locale `xx`"),
        "{}",
        err.message
    );
}

#[test]
fn embedders_merge_per_name_and_null_deletes() {
    let s = patch(
        &Settings::default(),
        json!({"embedders": {"a": {"source": "userProvided", "dimensions": 2}, "b": {"source": "openAi", "apiKey": "0123456789"}}}),
    );
    let s =
        patch(&s, json!({"embedders": {"b": {"dimensions": 256}, "c": {"source": "userProvided", "dimensions": 3}}}));
    let v = get(&s);
    assert_eq!(v["embedders"]["a"], json!({"source": "userProvided", "dimensions": 2}));
    assert_eq!(v["embedders"]["b"]["apiKey"], "01XXXX...");
    assert_eq!(v["embedders"]["b"]["dimensions"], 256);
    let s = patch(&s, json!({"embedders": {"a": null, "zzz": null}}));
    assert_eq!(get(&s)["embedders"].as_object().unwrap().keys().collect::<Vec<_>>(), ["b", "c"]);
    let s = patch(&s, json!({"embedders": {}}));
    assert_eq!(get(&s)["embedders"].as_object().unwrap().len(), 2);
    let s = patch(&s, json!({"embedders": null}));
    assert_eq!(get(&s)["embedders"], json!({}));
}

#[test]
fn details_follow_field_order_not_client_order() {
    let update = parse_whole(
        &json!({"prefixSearch": "disabled", "displayedAttributes": null, "sortableAttributes": ["b", "a"]}),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&update.details()).unwrap(),
        r#"{"displayedAttributes":["*"],"sortableAttributes":["a","b"],"prefixSearch":"disabled"}"#
    );
}

#[test]
fn request_errors_use_key_codes_and_paths() {
    let cases = [
        (json!({"displayedAttributes": "doggo"}), "invalid_settings_displayed_attributes",
         "Invalid value type at `.displayedAttributes`: expected an array, but found a string: `\"doggo\"`"),
        (json!({"typoTolerance": {"minWordSizeForTypos": "doggo"}}), "invalid_settings_typo_tolerance",
         "Invalid value type at `.typoTolerance.minWordSizeForTypos`: expected an object, but found a string: `\"doggo\"`"),
        (json!({"pagination": {"maxTotalHits": "doggo"}}), "invalid_settings_pagination",
         "Invalid value type at `.pagination.maxTotalHits`: expected a positive integer, but found a string: `\"doggo\"`"),
        (json!({"distinctAttribute": ["doggo"]}), "invalid_settings_distinct_attribute",
         "Invalid value type at `.distinctAttribute`: expected a string, but found an array: `[\"doggo\"]`"),
        (json!({"rankingRules": ["doggo"]}), "invalid_settings_ranking_rules",
         "Invalid value at `.rankingRules[0]`: `doggo` ranking rule is invalid. Valid ranking rules are words, typo, sort, proximity, attribute, exactness and custom ranking rules."),
        (json!({"searchCutoffMs": -1}), "invalid_settings_search_cutoff_ms",
         "Invalid value type at `.searchCutoffMs`: expected a positive integer, but found a negative integer: `-1`"),
    ];
    for (body, code, message) in cases {
        let err = parse_whole(&body).unwrap_err();
        assert_eq!((err.code.as_str(), err.message.as_str(), err.status), (code, message, 400), "{body}");
    }
    assert_eq!(parse_whole(&json!({"nope": 1})).unwrap_err().code, "bad_request");
    assert_eq!(parse_whole(&json!([])).unwrap_err().code, "bad_request");
    assert_eq!(
        parse_whole(&json!({"rankingRules": ["attribute", "wordPosition"]})).unwrap_err().code,
        "invalid_settings_ranking_rules"
    );
    assert_eq!(
        parse_whole(&json!({"rankingRules": ["_geoPoint(1,2):asc"]})).unwrap_err().code,
        "invalid_settings_ranking_rules"
    );
    assert_eq!(
        parse_whole(&json!({"proximityPrecision": "byLetter"})).unwrap_err().code,
        "invalid_settings_proximity_precision"
    );
    assert_eq!(parse_whole(&json!({"chat": {"description": "x"}})).unwrap_err().code, "feature_not_enabled");
    assert!(parse_whole(&json!({"chat": null, "foreignKeys": null})).is_ok());
}

#[test]
fn sub_route_errors_have_no_key_prefix() {
    let err = parse_sub("displayedAttributes", &json!("doggo")).unwrap_err();
    assert_eq!(err.message, "Invalid value type: expected an array, but found a string: `\"doggo\"`");
    let err = parse_sub("pagination", &json!({"maxTotalHits": 0})).unwrap_err();
    assert_eq!(
        err.message,
        "Invalid value at `.maxTotalHits`: a non-zero integer value lower than `18446744073709551615` was expected, but found a zero"
    );
    let err = parse_sub("typoTolerance", &json!({"typoTolerance": {}})).unwrap_err();
    assert_eq!(
        err.message,
        "Unknown field `typoTolerance`: expected one of `enabled`, `minWordSizeForTypos`, `disableOnWords`, `disableOnAttributes`, `disableOnNumbers`"
    );
    // A sub-route update is a whole-settings update with only that key.
    let s = apply(&Settings::default(), &parse_sub("faceting", &json!({"maxValuesPerFacet": 3})).unwrap()).unwrap();
    assert_eq!(s.view()["faceting"], json!({"maxValuesPerFacet": 3, "sortFacetValuesBy": {"*": "alpha"}}));
    // Sub-route GETs show feature-gated keys.
    assert_eq!(Settings::default().view_key("foreignKeys"), json!([]));
    assert_eq!(Settings::default().view_key("chat")["documentTemplateMaxBytes"], 400);
}
