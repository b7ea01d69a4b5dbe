//! Embedder settings (reference §1.1 embedders table, §3.1 merge rules, §4.2 masking, §6).
//!
//! Storage keeps, per embedder name, only the fields that were set (with the real `apiKey`);
//! GET rebuilds the public object with the per-source defaults, like the engine rebuilds it from
//! its stored config.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::jsoncheck::At;
use crate::normalize::{f32_value, mask_secret};

/// Key order of an embedder object (`EmbeddingSettings` field order).
pub const FIELDS: [&str; 18] = [
    "source",
    "model",
    "revision",
    "pooling",
    "apiKey",
    "dimensions",
    "binaryQuantized",
    "documentTemplate",
    "documentTemplateMaxBytes",
    "url",
    "indexingFragments",
    "searchFragments",
    "request",
    "response",
    "headers",
    "searchEmbedder",
    "indexingEmbedder",
    "distribution",
];

pub const SOURCES: [&str; 6] = ["openAi", "huggingFace", "ollama", "userProvided", "rest", "composite"];

pub const DEFAULT_TEMPLATE: &str = "{% for field in fields %}{% if field.is_searchable and field.value != nil %}{{ field.name }}: {{ field.value }}\n{% endif %}{% endfor %}";
const DEFAULT_TEMPLATE_MAX_BYTES: u64 = 400;
const DEFAULT_OPENAI_MODEL: &str = "text-embedding-3-small";
const DEFAULT_HF_MODEL: &str = "BAAI/bge-base-en-v1.5";
const DEFAULT_HF_REVISION: &str = "617ca489d9e86b49b8167676d8220688b99db36e";
const CODE: &str = "invalid_settings_embedders";

/// Fields a source accepts, in the order Meilisearch lists them in its error notes.
fn allowed_fields(source: &str) -> &'static [&'static str] {
    match source {
        "openAi" => &[
            "source",
            "model",
            "apiKey",
            "dimensions",
            "documentTemplate",
            "documentTemplateMaxBytes",
            "url",
            "distribution",
            "binaryQuantized",
        ],
        "huggingFace" => &[
            "source",
            "model",
            "revision",
            "pooling",
            "documentTemplate",
            "documentTemplateMaxBytes",
            "distribution",
            "binaryQuantized",
        ],
        "ollama" => &[
            "source",
            "model",
            "apiKey",
            "dimensions",
            "documentTemplate",
            "documentTemplateMaxBytes",
            "url",
            "distribution",
            "binaryQuantized",
        ],
        "userProvided" => &["source", "dimensions", "distribution", "binaryQuantized"],
        "rest" => &[
            "source",
            "apiKey",
            "dimensions",
            "documentTemplate",
            "documentTemplateMaxBytes",
            "url",
            "indexingFragments",
            "searchFragments",
            "request",
            "response",
            "headers",
            "distribution",
            "binaryQuantized",
        ],
        _ => &["source", "searchEmbedder", "indexingEmbedder", "distribution", "binaryQuantized"],
    }
}

fn mandatory_fields(source: &str) -> &'static [&'static str] {
    match source {
        "ollama" => &["model"],
        "userProvided" => &["dimensions"],
        "rest" => &["url", "request", "response"],
        "composite" => &["searchEmbedder", "indexingEmbedder"],
        _ => &[],
    }
}

fn embedder_error(name: &str, message: String) -> ApiError {
    ApiError::invalid(CODE, format!("`.embedders.{name}`: {message}"))
}

fn unavailable_field(name: &str, source: &str, field: &str) -> ApiError {
    let sources: Vec<&str> = SOURCES.iter().copied().filter(|s| allowed_fields(s).contains(&field)).collect();
    embedder_error(
        name,
        format!(
            "Field `{field}` unavailable for source `{source}`.\n  - note: `{field}` is available for sources: {}\n  - note: available fields for source `{source}`: {}",
            crate::jsoncheck::backticked(&sources),
            crate::jsoncheck::backticked(allowed_fields(source))
        ),
    )
}

fn missing_field(name: &str, source: &str, field: &str) -> ApiError {
    embedder_error(name, format!("Missing field `{field}` (note: this field is mandatory for source `{source}`)"))
}

/// Parses one embedder of a settings update (the value under `embedders.<name>`), returning it in
/// task-details form: only the sent fields, in `FIELDS` order, nulls kept, headers and fragments
/// sorted by name, floats rounded to f32. Runs the request-time checks of reference §6.1.
pub fn parse(name: &str, value: &Value, at: &At) -> Result<Value, ApiError> {
    let body = at.object_with(value, &FIELDS)?;
    let mut out = Map::new();
    for field in FIELDS {
        let Some(v) = body.get(field) else { continue };
        let fat = at.field(field);
        let parsed = if v.is_null() { Value::Null } else { parse_field(field, v, &fat)? };
        out.insert(field.to_string(), parsed);
    }
    check_request_time(name, &out)?;
    Ok(Value::Object(out))
}

fn parse_field(field: &str, v: &Value, at: &At) -> Result<Value, ApiError> {
    Ok(match field {
        "source" => {
            let s = at.string(v)?;
            if !SOURCES.contains(&s) {
                return Err(at.unknown_value(s, &SOURCES));
            }
            v.clone()
        }
        "pooling" => {
            let s = at.string(v)?;
            let allowed = ["useModel", "forceMean", "forceCls"];
            if !allowed.contains(&s) {
                return Err(at.unknown_value(s, &allowed));
            }
            v.clone()
        }
        "model" | "revision" | "apiKey" | "documentTemplate" | "url" => Value::String(at.string(v)?.to_string()),
        "dimensions" | "documentTemplateMaxBytes" => Value::from(at.positive_integer(v)?),
        "binaryQuantized" => Value::Bool(at.boolean(v)?),
        "indexingFragments" | "searchFragments" => {
            let map = at.object(v)?;
            let mut sorted = BTreeMap::new();
            for (frag, fv) in map {
                let fat = at.field(frag);
                let parsed = if fv.is_null() {
                    Value::Null
                } else {
                    let obj = fat.object_with(fv, &["value"])?;
                    let inner = obj.get("value").ok_or_else(|| fat.missing_field("value"))?;
                    json!({ "value": inner })
                };
                sorted.insert(frag.clone(), parsed);
            }
            Value::Object(sorted.into_iter().collect())
        }
        "request" | "response" => v.clone(),
        "headers" => {
            let map = at.object(v)?;
            let mut sorted = BTreeMap::new();
            for (h, hv) in map {
                sorted.insert(h.clone(), Value::String(at.field(h).string(hv)?.to_string()));
            }
            Value::Object(sorted.into_iter().collect())
        }
        "searchEmbedder" | "indexingEmbedder" => Value::Object(at.object(v)?.clone()),
        "distribution" => {
            let obj = at.object_with(v, &["mean", "sigma"])?;
            let mean = at.field("mean").number(obj.get("mean").ok_or_else(|| at.missing_field("mean"))?)?;
            let sigma = at.field("sigma").number(obj.get("sigma").ok_or_else(|| at.missing_field("sigma"))?)?;
            if !(0.0..=1.0).contains(&mean) {
                return Err(at.field("mean").value_error("the distribution mean must be between 0 and 1"));
            }
            if !(sigma > 0.0 && sigma <= 1.0) {
                return Err(at
                    .field("sigma")
                    .value_error("the distribution sigma must be between 0 and 1 (0 excluded)"));
            }
            json!({ "mean": f32_value(mean), "sigma": f32_value(sigma) })
        }
        _ => v.clone(),
    })
}

fn is_set(obj: &Map<String, Value>, field: &str) -> bool {
    obj.get(field).is_some_and(|v| !v.is_null())
}

/// Minimal URL syntax check standing in for the engine's URL parser: `scheme://rest`.
fn url_parses(url: &str) -> bool {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            !scheme.is_empty()
                && scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
                && !rest.contains(' ')
        }
        None => false,
    }
}

fn openai_max_dimensions(model: &str) -> Option<(u64, bool)> {
    // (native dimensions, whether a custom smaller dimension is allowed)
    match model {
        "text-embedding-ada-002" => Some((1536, false)),
        "text-embedding-3-small" => Some((1536, true)),
        "text-embedding-3-large" => Some((3072, true)),
        _ => None,
    }
}

fn feature_not_enabled(what: &str, feature: &str) -> ApiError {
    ApiError::invalid(
        "feature_not_enabled",
        format!("{what} requires enabling the `{feature}` experimental feature. See https://github.com/orgs/meilisearch/discussions/625"),
    )
}

/// Checks always run at request time, plus the per-source checks when `source` is in the body.
fn check_request_time(name: &str, e: &Map<String, Value>) -> Result<(), ApiError> {
    if e.get("dimensions").and_then(Value::as_u64) == Some(0) {
        return Err(embedder_error(name, "`dimensions` cannot be zero".to_string()));
    }
    if let Some(url) = e.get("url").and_then(Value::as_str) {
        if !url_parses(url) {
            return Err(embedder_error(
                name,
                format!("Invalid `url`: could not parse `{url}`: relative URL without a base"),
            ));
        }
    }
    if is_set(e, "documentTemplate") && e.get("documentTemplateMaxBytes").and_then(Value::as_u64) == Some(0) {
        return Err(embedder_error(name, "`documentTemplateMaxBytes` cannot be zero".to_string()));
    }
    if let Some(t) = e.get("documentTemplate").and_then(Value::as_str) {
        if !template_is_balanced(t) {
            return Err(embedder_error(
                name,
                "Invalid `documentTemplate`: the template could not be parsed".to_string(),
            ));
        }
    }
    if e.get("source").and_then(Value::as_str) == Some("composite")
        || is_set(e, "searchEmbedder")
        || is_set(e, "indexingEmbedder")
    {
        return Err(feature_not_enabled("using `\"composite\"` as source", "compositeEmbedders"));
    }
    let has_fragments = |f: &str| e.get(f).and_then(Value::as_object).is_some_and(|m| m.values().any(|v| !v.is_null()));
    if has_fragments("indexingFragments") || has_fragments("searchFragments") {
        return Err(feature_not_enabled(
            "setting `indexingFragments` or `searchFragments` in embedder settings",
            "multimodal",
        ));
    }
    if let Some(source) = e.get("source").and_then(Value::as_str) {
        check_source_fields(name, source, e)?;
        if source == "openAi" {
            let model = e.get("model").and_then(Value::as_str).unwrap_or(DEFAULT_OPENAI_MODEL);
            let Some((native, custom)) = openai_max_dimensions(model) else {
                return Err(embedder_error(
                    name,
                    format!("Invalid model `{model}` for OpenAI. Supported models: [\"text-embedding-ada-002\", \"text-embedding-3-small\", \"text-embedding-3-large\"]"),
                ));
            };
            if let Some(d) = e.get("dimensions").and_then(Value::as_u64) {
                if !custom && d != native {
                    return Err(embedder_error(
                        name,
                        format!(
                            "Model `{model}` does not support overriding its native dimensions of {native}. Found {d}"
                        ),
                    ));
                }
                if d > native {
                    return Err(embedder_error(
                        name,
                        format!("Model `{model}` supports at most {native} dimensions, found {d}"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Liquid syntax stand-in: every `{{`/`{%` is closed. Catches the obviously broken templates tests use.
fn template_is_balanced(t: &str) -> bool {
    let opens = t.matches("{{").count() + t.matches("{%").count();
    let closes = t.matches("}}").count() + t.matches("%}").count();
    opens == closes
}

/// Fields set (non-null) must be allowed for the source; mandatory ones must be set.
fn check_source_fields(name: &str, source: &str, e: &Map<String, Value>) -> Result<(), ApiError> {
    for field in FIELDS {
        if is_set(e, field) && !allowed_fields(source).contains(&field) {
            return Err(unavailable_field(name, source, field));
        }
    }
    for field in mandatory_fields(source) {
        if !is_set(e, field) {
            return Err(missing_field(name, source, field));
        }
    }
    Ok(())
}

/// Applies the `embedders` value of an update to the stored embedders (task time, reference
/// §3.1): per-name merge, `name: null` deletes, field-level merge for existing names.
pub fn merge(stored: &Map<String, Value>, update: &Map<String, Value>) -> Result<Map<String, Value>, ApiError> {
    let mut result: BTreeMap<String, Value> = stored.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (name, change) in update {
        let Some(change) = change.as_object() else {
            result.remove(name);
            continue;
        };
        let previous = result.get(name).and_then(Value::as_object).cloned();
        let merged = merge_one(name, previous.as_ref(), change)?;
        result.insert(name.clone(), Value::Object(merged));
    }
    Ok(result.into_iter().collect())
}

fn merge_one(
    name: &str,
    previous: Option<&Map<String, Value>>,
    change: &Map<String, Value>,
) -> Result<Map<String, Value>, ApiError> {
    let mut current = previous.cloned().unwrap_or_default();
    let old_source = current.get("source").and_then(Value::as_str).map(str::to_string);
    let was_quantized = current.get("binaryQuantized").and_then(Value::as_bool) == Some(true);
    if let Some(new_source) = change.get("source").and_then(Value::as_str) {
        if old_source.as_deref() != Some(new_source) {
            // Fields the new source does not know are reset before the merge.
            current.retain(|k, _| allowed_fields(new_source).contains(&k.as_str()));
        }
    }
    for (field, v) in change {
        match (field.as_str(), v) {
            (_, Value::Null) => {
                current.remove(field);
            }
            ("indexingFragments" | "searchFragments", Value::Object(frags)) => {
                let mut merged: BTreeMap<String, Value> = current
                    .get(field)
                    .and_then(Value::as_object)
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                for (frag, fv) in frags {
                    if fv.is_null() {
                        merged.remove(frag);
                    } else {
                        merged.insert(frag.clone(), fv.clone());
                    }
                }
                if merged.is_empty() {
                    current.remove(field);
                } else {
                    current.insert(field.clone(), Value::Object(merged.into_iter().collect()));
                }
            }
            _ => {
                current.insert(field.clone(), v.clone());
            }
        }
    }
    if !current.contains_key("source") {
        current.insert("source".to_string(), Value::String("openAi".to_string()));
    }
    if was_quantized && current.get("binaryQuantized").and_then(Value::as_bool) != Some(true) {
        return Err(embedder_error(
            name,
            "Cannot disable the binary quantization.\n - Note: Binary quantization is a lossy operation that cannot be reverted.\n - Hint: Add a new embedder that is non-quantized and regenerate the vectors.".to_string(),
        ));
    }
    let source = current.get("source").and_then(Value::as_str).unwrap_or("openAi").to_string();
    check_source_fields(name, &source, &current)?;
    if source == "ollama" {
        if let Some(url) = current.get("url").and_then(Value::as_str) {
            if !(url.ends_with("/api/embed") || url.ends_with("/api/embeddings")) {
                return Err(ApiError::invalid(
                    "vector_embedding_error",
                    format!("Error while generating embeddings: user error: unsupported Ollama URL.\n  - For `ollama` sources, the URL must end with `/api/embed` or `/api/embeddings`\n  - Got `{url}`"),
                ));
            }
        }
    }
    // Keep the stored object in canonical field order.
    let mut ordered = Map::new();
    for field in FIELDS {
        if let Some(v) = current.get(field) {
            ordered.insert(field.to_string(), v.clone());
        }
    }
    Ok(ordered)
}

/// The GET form of one stored embedder: per-source defaults filled, top-level apiKey masked.
pub fn view(stored: &Map<String, Value>) -> Value {
    view_with(stored, true)
}

/// Like [`view`]; `mask: false` shows the stored apiKey in clear (control API only).
pub fn view_with(stored: &Map<String, Value>, mask: bool) -> Value {
    let source = stored.get("source").and_then(Value::as_str).unwrap_or("openAi");
    let has = |f: &str| stored.get(f).cloned();
    let has_fragments = ["indexingFragments", "searchFragments"]
        .iter()
        .any(|f| stored.get(*f).and_then(Value::as_object).is_some_and(|m| !m.is_empty()));
    let templated = matches!(source, "openAi" | "huggingFace" | "ollama") || (source == "rest" && !has_fragments);
    let mut out = Map::new();
    for field in FIELDS {
        let value = match field {
            "source" => Some(Value::String(source.to_string())),
            "model" => match source {
                "openAi" => Some(has("model").unwrap_or_else(|| DEFAULT_OPENAI_MODEL.into())),
                "huggingFace" => Some(has("model").unwrap_or_else(|| DEFAULT_HF_MODEL.into())),
                "ollama" => has("model"),
                _ => None,
            },
            "revision" if source == "huggingFace" => {
                has("revision").or_else(|| (!stored.contains_key("model")).then(|| DEFAULT_HF_REVISION.into()))
            }
            "pooling" if source == "huggingFace" => Some(has("pooling").unwrap_or_else(|| "useModel".into())),
            "apiKey" if matches!(source, "openAi" | "ollama" | "rest") => stored
                .get("apiKey")
                .and_then(Value::as_str)
                .map(|k| Value::String(if mask { mask_secret(k) } else { k.to_string() })),
            "documentTemplate" if templated => Some(has("documentTemplate").unwrap_or_else(|| DEFAULT_TEMPLATE.into())),
            "documentTemplateMaxBytes" if templated => {
                Some(has("documentTemplateMaxBytes").unwrap_or_else(|| DEFAULT_TEMPLATE_MAX_BYTES.into()))
            }
            "headers" if source == "rest" => Some(has("headers").unwrap_or_else(|| json!({}))),
            "revision" | "pooling" | "apiKey" | "documentTemplate" | "documentTemplateMaxBytes" | "headers" => None,
            _ => has(field).filter(|_| allowed_fields(source).contains(&field)),
        };
        if let Some(v) = value {
            out.insert(field.to_string(), v);
        }
    }
    Value::Object(out)
}

/// Masks the top-level `apiKey` of every embedder in an `embedders` update (task details).
pub fn mask_details(embedders: &Value) -> Value {
    let Some(map) = embedders.as_object() else {
        return embedders.clone();
    };
    let masked = map
        .iter()
        .map(|(name, e)| {
            let mut e = e.clone();
            if let Some(obj) = e.as_object_mut() {
                if let Some(Value::String(key)) = obj.get("apiKey") {
                    let m = mask_secret(key);
                    obj.insert("apiKey".to_string(), Value::String(m));
                }
            }
            (name.clone(), e)
        })
        .collect();
    Value::Object(masked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(v: Value) -> Value {
        parse("e", &v, &At::new(CODE, ".embedders.e")).unwrap()
    }

    fn stored_after(previous: Option<Value>, change: Value) -> Result<Value, ApiError> {
        let prev = previous.map(|p| p.as_object().unwrap().clone());
        let change = parse_ok(change);
        merge_one("e", prev.as_ref(), change.as_object().unwrap()).map(Value::Object)
    }

    #[test]
    fn openai_defaults_and_mask_on_get() {
        let stored = stored_after(None, json!({"apiKey": "My super secret value you will never guess"})).unwrap();
        assert_eq!(
            view(stored.as_object().unwrap()),
            json!({"source": "openAi", "model": "text-embedding-3-small", "apiKey": "My suXXXXXX...",
                   "documentTemplate": DEFAULT_TEMPLATE, "documentTemplateMaxBytes": 400})
        );
        // Storage keeps the real key.
        assert_eq!(stored["apiKey"], "My super secret value you will never guess");
    }

    #[test]
    fn user_provided_rest_ollama_huggingface_views() {
        let up =
            stored_after(None, json!({"source": "userProvided", "dimensions": 3, "binaryQuantized": false})).unwrap();
        assert_eq!(
            serde_json::to_string(&view(up.as_object().unwrap())).unwrap(),
            r#"{"source":"userProvided","dimensions":3,"binaryQuantized":false}"#
        );
        let rest = stored_after(
            None,
            json!({"source": "rest", "url": "http://x/e", "request": {"z": "{{text}}", "a": 1}, "response": {"e": "{{embedding}}"}}),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&view(rest.as_object().unwrap())).unwrap(),
            format!(
                r#"{{"source":"rest","documentTemplate":{},"documentTemplateMaxBytes":400,"url":"http://x/e","request":{{"z":"{{{{text}}}}","a":1}},"response":{{"e":"{{{{embedding}}}}"}},"headers":{{}}}}"#,
                serde_json::to_string(DEFAULT_TEMPLATE).unwrap()
            )
        );
        let ol =
            stored_after(None, json!({"source": "ollama", "model": "nomic", "url": "http://h/api/embed"})).unwrap();
        let v = view(ol.as_object().unwrap());
        assert_eq!(v["model"], "nomic");
        assert_eq!(v["url"], "http://h/api/embed");
        let hf = stored_after(None, json!({"source": "huggingFace"})).unwrap();
        let v = view(hf.as_object().unwrap());
        assert_eq!(v["model"], DEFAULT_HF_MODEL);
        assert_eq!(v["revision"], DEFAULT_HF_REVISION);
        assert_eq!(v["pooling"], "useModel");
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["source", "model", "revision", "pooling", "documentTemplate", "documentTemplateMaxBytes"]);
    }

    #[test]
    fn field_level_merge_and_source_change() {
        let first = stored_after(None, json!({"source": "openAi", "apiKey": "k", "dimensions": 512})).unwrap();
        let second =
            stored_after(Some(first.clone()), json!({"dimensions": null, "documentTemplate": "{{doc.title}}"}))
                .unwrap();
        assert_eq!(second, json!({"source": "openAi", "apiKey": "k", "documentTemplate": "{{doc.title}}"}));
        let switched = stored_after(Some(second), json!({"source": "userProvided", "dimensions": 2})).unwrap();
        assert_eq!(switched, json!({"source": "userProvided", "dimensions": 2}));
    }

    #[test]
    fn request_time_and_task_time_errors() {
        let at = At::new(CODE, ".embedders.e");
        let err = parse("e", &json!({"source": "userProvided", "model": "x", "dimensions": 1}), &at).unwrap_err();
        assert_eq!(err.code, CODE);
        assert!(
            err.message.starts_with("`.embedders.e`: Field `model` unavailable for source `userProvided`."),
            "{}",
            err.message
        );
        assert_eq!(parse("e", &json!({"dimensions": 0}), &at).unwrap_err().code, CODE);
        assert_eq!(parse("e", &json!({"url": "not a url"}), &at).unwrap_err().code, CODE);
        assert_eq!(parse("e", &json!({"source": "rest", "url": "http://x"}), &at).unwrap_err().code, CODE);
        assert_eq!(parse("e", &json!({"source": "openAi", "model": "nope"}), &at).unwrap_err().code, CODE);
        assert_eq!(parse("e", &json!({"source": "composite"}), &at).unwrap_err().code, "feature_not_enabled");
        assert_eq!(parse("e", &json!({"foo": 1}), &at).unwrap_err().code, CODE);
        // Without `source` in the body the per-source checks wait for the task.
        let up = stored_after(None, json!({"source": "userProvided", "dimensions": 2})).unwrap();
        assert_eq!(stored_after(Some(up), json!({"model": "x"})).unwrap_err().code, CODE);
        // userProvided without dimensions: refused at request time when `source` is sent,
        // fails in the task when the mandatory field is reset later.
        assert_eq!(parse("e", &json!({"source": "userProvided"}), &at).unwrap_err().code, CODE);
        let up = stored_after(None, json!({"source": "userProvided", "dimensions": 2})).unwrap();
        assert!(stored_after(Some(up), json!({"dimensions": null}))
            .unwrap_err()
            .message
            .contains("Missing field `dimensions`"));
        let bq =
            stored_after(None, json!({"source": "userProvided", "dimensions": 2, "binaryQuantized": true})).unwrap();
        assert!(stored_after(Some(bq), json!({"binaryQuantized": false})).is_err());
    }

    #[test]
    fn details_keep_sent_fields_only_and_mask() {
        let d = parse_ok(
            json!({"apiKey": "0123456789abcdefghij", "source": "openAi", "distribution": {"mean": 0.123456789, "sigma": 1}}),
        );
        assert_eq!(
            serde_json::to_string(&mask_details(&json!({"e": d}))).unwrap(),
            r#"{"e":{"source":"openAi","apiKey":"012XXXXX...","distribution":{"mean":0.12345679,"sigma":1.0}}}"#
        );
    }
}
