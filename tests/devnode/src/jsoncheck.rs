//! Type checks over `serde_json::Value` that report errors the way Meilisearch's deserializer
//! (deserr) words them: `Invalid value type at \`.path\`: expected X, but found Y: \`json\``.
//!
//! `path` is the JSON path relative to the request body: `.displayedAttributes` on the whole
//! settings route, empty for the bare body of a sub-route (reference §2, last bullet).

use serde_json::{Map, Value};

use crate::errors::ApiError;

/// Where in the body a value sits, and which error code a problem there maps to.
#[derive(Clone, Debug)]
pub struct At {
    pub code: &'static str,
    pub path: String,
}

impl At {
    pub fn new(code: &'static str, path: impl Into<String>) -> Self {
        At { code, path: path.into() }
    }

    pub fn field(&self, name: &str) -> At {
        At { code: self.code, path: format!("{}.{}", self.path, name) }
    }

    pub fn index(&self, i: usize) -> At {
        At { code: self.code, path: format!("{}[{}]", self.path, i) }
    }

    fn at(&self) -> String {
        if self.path.is_empty() {
            String::new()
        } else {
            format!(" at `{}`", self.path)
        }
    }

    fn inside(&self) -> String {
        if self.path.is_empty() {
            String::new()
        } else {
            format!(" inside `{}`", self.path)
        }
    }

    pub fn type_error(&self, expected: &str, found: &Value) -> ApiError {
        ApiError::invalid(
            self.code,
            format!("Invalid value type{}: expected {expected}, but found {}: `{}`", self.at(), describe(found), found),
        )
    }

    pub fn value_error(&self, message: &str) -> ApiError {
        ApiError::invalid(self.code, format!("Invalid value{}: {message}", self.at()))
    }

    pub fn unknown_field(&self, field: &str, expected: &[&str]) -> ApiError {
        ApiError::invalid(
            self.code,
            format!("Unknown field `{field}`{}: expected one of {}", self.inside(), backticked(expected)),
        )
    }

    pub fn unknown_value(&self, value: &str, expected: &[&str]) -> ApiError {
        ApiError::invalid(
            self.code,
            format!("Unknown value `{value}`{}: expected one of {}", self.at(), backticked(expected)),
        )
    }

    pub fn missing_field(&self, field: &str) -> ApiError {
        ApiError::invalid(self.code, format!("Missing field `{field}`{}", self.inside()))
    }

    pub fn object<'v>(&self, v: &'v Value) -> Result<&'v Map<String, Value>, ApiError> {
        v.as_object().ok_or_else(|| self.type_error("an object", v))
    }

    /// An object whose keys must all be in `allowed` (deserr's deny_unknown_fields).
    pub fn object_with<'v>(&self, v: &'v Value, allowed: &[&str]) -> Result<&'v Map<String, Value>, ApiError> {
        let map = self.object(v)?;
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(self.unknown_field(unknown, allowed));
        }
        Ok(map)
    }

    pub fn array<'v>(&self, v: &'v Value) -> Result<&'v Vec<Value>, ApiError> {
        v.as_array().ok_or_else(|| self.type_error("an array", v))
    }

    pub fn string<'v>(&self, v: &'v Value) -> Result<&'v str, ApiError> {
        v.as_str().ok_or_else(|| self.type_error("a string", v))
    }

    pub fn boolean(&self, v: &Value) -> Result<bool, ApiError> {
        v.as_bool().ok_or_else(|| self.type_error("a boolean", v))
    }

    pub fn positive_integer(&self, v: &Value) -> Result<u64, ApiError> {
        v.as_u64().ok_or_else(|| self.type_error("a positive integer", v))
    }

    /// Any JSON number, read as f64.
    pub fn number(&self, v: &Value) -> Result<f64, ApiError> {
        v.as_f64().ok_or_else(|| self.type_error("a number", v))
    }

    pub fn strings(&self, v: &Value) -> Result<Vec<String>, ApiError> {
        let items = self.array(v)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            out.push(self.index(i).string(item)?.to_string());
        }
        Ok(out)
    }
}

/// deserr's names for JSON value kinds.
pub fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
        Value::Number(n) if n.is_u64() => "a positive integer",
        Value::Number(n) if n.is_i64() => "a negative integer",
        Value::Number(_) => "a number",
    }
}

pub fn backticked(items: &[&str]) -> String {
    items.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
}

/// Sorted, deduplicated strings as a JSON array (Rust `BTreeSet<String>` order = bytes order).
pub fn sorted_set(items: Vec<String>) -> Value {
    let set: std::collections::BTreeSet<String> = items.into_iter().collect();
    Value::Array(set.into_iter().map(Value::String).collect())
}
