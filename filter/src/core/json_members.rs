//! The top-level members of a JSON object that a check reads, parsed into values; every other
//! member is only skipped over.
//!
//! Verify checks a node's settings read-back against the keys the proposal sets. The read-back
//! may be megabytes of synonyms or stop words the proposal never touched; skipping them costs no
//! allocation, where parsing the whole body into a `Value` costs one per string.

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// The members of the JSON object `text` whose keys are in `wanted`; an error when `text` is not
/// a JSON object. A key given twice keeps its last value, as a parsed map would.
pub fn object_members(text: &[u8], wanted: &[&str]) -> Result<Map<String, Value>, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let members = (&mut deserializer).deserialize_map(Wanted(wanted))?;
    deserializer.end()?;
    Ok(members)
}

struct Wanted<'w>(&'w [&'w str]);

impl<'de> Visitor<'de> for Wanted<'_> {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if self.0.contains(&key.as_str()) {
                let value: Value = map.next_value()?;
                members.insert(key, value);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_the_wanted_members_are_kept() {
        let text = br#"{"a": 1, "big": {"x": [1, 2, "\u00e9"]}, "b": [true], "c": null}"#;
        let members = object_members(text, &["a", "c", "absent"]).unwrap();
        assert_eq!(Value::Object(members), json!({"a": 1, "c": null}));
    }

    #[test]
    fn the_last_of_a_duplicate_key_wins() {
        let members = object_members(br#"{"a": 1, "a": 2}"#, &["a"]).unwrap();
        assert_eq!(members.get("a"), Some(&json!(2)));
    }

    #[test]
    fn a_body_that_is_not_one_json_object_is_an_error() {
        for text in [&b"[1]"[..], b"{\"a\":1} x", b"{\"a\":", b"{\"skipped\": [1,}", b""] {
            assert!(object_members(text, &["a"]).is_err(), "{:?}", String::from_utf8_lossy(text));
        }
    }
}
