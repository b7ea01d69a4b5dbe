//! Documents and a minimal search, so traffic passing through the proxy looks realistic.

use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::node::Index;

/// A document id as Meilisearch accepts it: integer, or string of `[A-Za-z0-9_-]`, ≤ 511 bytes.
pub fn document_id(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Value::String(s)
            if !s.is_empty()
                && s.len() <= 511
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Some(s.clone())
        }
        _ => None,
    }
}

fn infer_primary_key(first: &Map<String, Value>) -> Result<String, ApiError> {
    if first.contains_key("id") {
        return Ok("id".to_string());
    }
    let candidates: Vec<&String> = first.keys().filter(|k| k.to_lowercase().ends_with("id")).collect();
    match candidates.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ApiError::invalid(
            "index_primary_key_no_candidate_found",
            "The primary key inference failed as the engine did not find any field ending with `id` in its name. Please specify the primary key manually using the `primaryKey` query parameter.",
        )),
        many => Err(ApiError::invalid(
            "index_primary_key_multiple_candidates_found",
            format!(
                "The primary key inference failed as the engine found {} fields ending with `id` in their names: {}. Please specify the primary key manually using the `primaryKey` query parameter.",
                many.len(),
                many.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(" and ")
            ),
        )),
    }
}

/// Adds (`replace`) or updates documents; all-or-nothing like one engine batch.
pub fn add(
    index: &mut Index,
    docs: &[Map<String, Value>],
    primary_key: Option<&str>,
    replace: bool,
) -> Result<(), ApiError> {
    let pk = match (&index.primary_key, primary_key) {
        (Some(existing), Some(asked)) if existing != asked => {
            return Err(ApiError::invalid(
                "index_primary_key_already_exists",
                format!("Index already has a primary key: `{existing}`."),
            ));
        }
        (Some(existing), _) => existing.clone(),
        (None, Some(asked)) => asked.to_string(),
        (None, None) => match docs.first() {
            Some(first) => infer_primary_key(first)?,
            None => return Ok(()),
        },
    };
    let mut staged = Vec::with_capacity(docs.len());
    for doc in docs {
        let raw = doc.get(&pk).ok_or_else(|| {
            ApiError::invalid(
                "missing_document_id",
                format!("Document doesn't have a `{pk}` attribute: `{}`.", Value::Object(doc.clone())),
            )
        })?;
        let id = document_id(raw).ok_or_else(|| {
            ApiError::invalid(
                "invalid_document_id",
                format!("Document identifier `{raw}` is invalid. A document identifier can be of type integer or string, only composed of alphanumeric characters (a-z A-Z 0-9), hyphens (-) and underscores (_), and can not be more than 511 bytes."),
            )
        })?;
        staged.push((id, doc));
    }
    index.primary_key = Some(pk);
    for (id, doc) in staged {
        let merged = match (replace, index.documents.get(&id)) {
            (false, Some(Value::Object(old))) => {
                let mut m = old.clone();
                for (k, v) in doc {
                    m.insert(k.clone(), v.clone());
                }
                m
            }
            _ => doc.clone(),
        };
        index.documents.insert(id, Value::Object(merged));
    }
    Ok(())
}

/// Keeps only `fields` (all when None or `*`).
pub fn project(doc: &Value, fields: Option<&[String]>) -> Value {
    match (fields, doc.as_object()) {
        (Some(fields), Some(obj)) if !fields.iter().any(|f| f == "*") => {
            Value::Object(obj.iter().filter(|(k, _)| fields.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        _ => doc.clone(),
    }
}

fn matches_query(doc: &Value, needle: &str) -> bool {
    match doc {
        Value::String(s) => s.to_lowercase().contains(needle),
        Value::Array(items) => items.iter().any(|i| matches_query(i, needle)),
        Value::Object(m) => m.values().any(|v| matches_query(v, needle)),
        _ => false,
    }
}

/// Case-insensitive substring search over string fields; hits in document order, projected to
/// `displayedAttributes`.
pub fn search(
    index: &Index,
    q: &str,
    offset: usize,
    limit: usize,
    retrieve: Option<&[String]>,
    started: std::time::Instant,
) -> Value {
    let needle = q.to_lowercase();
    let displayed: Option<Vec<String>> = index
        .settings
        .raw("displayedAttributes")
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect());
    let matching: Vec<&Value> =
        index.documents.values().filter(|d| needle.is_empty() || matches_query(d, &needle)).collect();
    let hits: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|d| project(&project(d, displayed.as_deref()), retrieve))
        .collect();
    json!({
        "hits": hits,
        "query": q,
        "processingTimeMs": started.elapsed().as_millis() as u64,
        "limit": limit,
        "offset": offset,
        "estimatedTotalHits": matching.len(),
    })
}
