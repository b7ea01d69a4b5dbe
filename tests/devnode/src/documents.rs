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

/// Primary-key inference as milli does it: every field of the first document whose lowercased
/// name ends with `id` is a candidate (`id` itself gets no precedence); exactly one must remain.
fn infer_primary_key(first: &Map<String, Value>) -> Result<String, ApiError> {
    let mut candidates: Vec<&String> = first.keys().filter(|k| k.to_lowercase().ends_with("id")).collect();
    candidates.sort_unstable();
    match candidates.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ApiError::invalid(
            "index_primary_key_no_candidate_found",
            "The primary key inference failed as the engine did not find any field ending with `id` in its name. Please specify the primary key manually using the `primaryKey` query parameter.",
        )),
        // The message names the first two candidates only.
        [first, second, ..] => Err(ApiError::invalid(
            "index_primary_key_multiple_candidates_found",
            format!(
                "The primary key inference failed as the engine found {} fields ending with `id` in their names: '{first}' and '{second}'. Please specify the primary key manually using the `primaryKey` query parameter.",
                candidates.len(),
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

/// Parses a CSV payload like Meilisearch: a header row whose names may carry a type
/// (`name:number`, `name:boolean`, `name:string`); untyped values are strings and empty values
/// are `null`. Fields may be quoted with `"` (a doubled `""` is a quote inside one).
pub fn parse_csv(text: &str, delimiter: u8) -> Result<Vec<Map<String, Value>>, ApiError> {
    let malformed =
        |m: String| ApiError::invalid("malformed_payload", format!("The `csv` payload provided is malformed: `{m}`."));
    let rows = csv_rows(text, delimiter as char).map_err(malformed)?;
    let mut rows = rows.into_iter();
    let Some(header) = rows.next() else {
        return Ok(Vec::new());
    };
    let columns: Vec<(String, &str)> = header
        .iter()
        .map(|h| match h.rsplit_once(':') {
            Some((name, t @ ("number" | "boolean" | "string"))) => (name.to_string(), t),
            _ => (h.clone(), "string"),
        })
        .collect();
    let mut docs = Vec::new();
    for (line, row) in rows.enumerate() {
        if row.len() != columns.len() {
            return Err(malformed(format!(
                "CSV error: record {} has {} fields, but the header has {}",
                line + 1,
                row.len(),
                columns.len()
            )));
        }
        let mut doc = Map::new();
        for ((name, ty), raw) in columns.iter().zip(row) {
            let trimmed = raw.trim();
            let value = if trimmed.is_empty() {
                Value::Null
            } else {
                match *ty {
                    "number" => match trimmed.parse::<i64>() {
                        Ok(i) => json!(i),
                        Err(_) => match trimmed.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                            Some(n) => Value::Number(n),
                            None => return Err(malformed(format!("invalid number `{trimmed}` for column `{name}`"))),
                        },
                    },
                    "boolean" => match trimmed {
                        "true" => Value::Bool(true),
                        "false" => Value::Bool(false),
                        _ => return Err(malformed(format!("invalid boolean `{trimmed}` for column `{name}`"))),
                    },
                    _ => Value::String(raw),
                }
            };
            doc.insert(name.clone(), value);
        }
        docs.push(doc);
    }
    Ok(docs)
}

fn csv_rows(text: &str, delimiter: char) -> Result<Vec<Vec<String>>, String> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut any = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => {
                quoted = true;
                any = true;
            }
            '\r' => {}
            '\n' => {
                if any || !field.is_empty() || !row.is_empty() {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                any = false;
            }
            c if c == delimiter => {
                row.push(std::mem::take(&mut field));
                any = true;
            }
            _ => {
                field.push(c);
                any = true;
            }
        }
    }
    if quoted {
        return Err("CSV error: unterminated quoted field".to_string());
    }
    if any || !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

pub use crate::filter::Filter;

pub(crate) fn lookup<'v>(doc: &'v Value, path: &str) -> Option<&'v Value> {
    let obj = doc.as_object()?;
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    let (head, rest) = path.split_once('.')?;
    lookup(obj.get(head)?, rest)
}

pub(crate) fn value_equals(v: &Value, wanted: &str) -> bool {
    match v {
        Value::String(s) => s.to_lowercase() == wanted.to_lowercase(),
        Value::Number(n) => {
            n.to_string() == wanted || wanted.parse::<f64>().ok().zip(n.as_f64()).is_some_and(|(a, b)| a == b)
        }
        Value::Bool(b) => b.to_string() == wanted,
        Value::Array(items) => items.iter().any(|i| value_equals(i, wanted)),
        _ => false,
    }
}

/// Whether `field` is covered by the index's `filterableAttributes` (plain names, `*` patterns,
/// or `{attributePatterns}` objects).
pub fn is_filterable(index: &Index, field: &str) -> bool {
    let patterns: Vec<String> = index
        .settings
        .raw("filterableAttributes")
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| match p {
            Value::String(s) => vec![s.clone()],
            Value::Object(o) => o
                .get("attributePatterns")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        })
        .collect();
    patterns.iter().any(|p| pattern_matches(p, field) || field.starts_with(&format!("{p}.")))
}

fn pattern_matches(pattern: &str, field: &str) -> bool {
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        _ if pattern == "*" => true,
        (Some(suffix), _) if pattern.ends_with('*') => field.contains(suffix.trim_end_matches('*')),
        (Some(suffix), _) => field.ends_with(suffix),
        (_, Some(prefix)) => field.starts_with(prefix),
        _ => pattern == field,
    }
}

/// The error of a filter naming a field that is not filterable (the task fails with it).
pub fn not_filterable(index: &Index, field: &str, filter: &str) -> ApiError {
    let available: Vec<String> = index
        .settings
        .raw("filterableAttributes")
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    // `start:end` of the attribute in the filter, 1-based columns, end exclusive.
    let start = filter.find(field).map_or(0, |byte| filter[..byte].chars().count()) + 1;
    let span = format!("{start}:{}", start + field.chars().count());
    let message = if available.is_empty() {
        format!("Attribute `{field}` is not filterable. This index does not have configured filterable attributes.\n{span} {filter}")
    } else {
        format!(
            "Attribute `{field}` is not filterable. Available filterable attribute patterns are: `{}`.\n{span} {filter}",
            available.join(", "),
        )
    };
    ApiError::invalid("invalid_document_filter", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_types_quotes_and_delimiters() {
        let docs = parse_csv("id:number,title,ok:boolean\n1,\"Hello, \"\"world\"\"\",true\n2,,\n", b',').unwrap();
        assert_eq!(Value::Object(docs[0].clone()), json!({"id": 1, "title": "Hello, \"world\"", "ok": true}));
        assert_eq!(Value::Object(docs[1].clone()), json!({"id": 2, "title": null, "ok": null}));
        let docs = parse_csv("id;name\r\na;b\r\n", b';').unwrap();
        assert_eq!(Value::Object(docs[0].clone()), json!({"id": "a", "name": "b"}));
        assert_eq!(parse_csv("id,a\n1\n", b',').unwrap_err().code, "malformed_payload");
    }

    #[test]
    fn primary_key_inference_like_milli() {
        let doc = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(infer_primary_key(&doc(json!({"title": "t", "skuID": 1}))).unwrap(), "skuID");
        let e = infer_primary_key(&doc(json!({"id": 1, "public_uid": "x", "project_id": 2}))).unwrap_err();
        assert_eq!(e.code, "index_primary_key_multiple_candidates_found");
        assert!(
            e.message.contains("found 3 fields ending with `id` in their names: 'id' and 'project_id'."),
            "{}",
            e.message
        );
        assert_eq!(
            infer_primary_key(&doc(json!({"id_": 1}))).unwrap_err().code,
            "index_primary_key_no_candidate_found"
        );
    }

    #[test]
    fn filters() {
        let f = Filter::parse("genre = drama AND year != 2000 OR id = 7").unwrap();
        assert_eq!(f.fields(), ["genre", "year", "id"]);
        assert!(f.matches(&json!({"genre": "Drama", "year": 1999})));
        assert!(!f.matches(&json!({"genre": "drama", "year": 2000})));
        assert!(f.matches(&json!({"id": 7})));
        assert!(Filter::parse("genre").is_err());
        let index = Index::new("m", None);
        let e = not_filterable(&index, "year", "genre = a AND year = 2");
        assert!(
            e.message.ends_with("configured filterable attributes.\n15:19 genre = a AND year = 2"),
            "{}",
            e.message
        );
        assert!(pattern_matches("gen*", "genre") && pattern_matches("*", "x") && !pattern_matches("a", "b"));
    }
}
