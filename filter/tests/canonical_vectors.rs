//! Table-driven checks of the RFC 8785 canonicalizer and the settings fingerprint.
//!
//! The same file runs natively (`cargo test`) and compiled to wasm32-unknown-unknown under node
//! (`scripts/wasm-test.sh`), reading the same vectors, so the module Envoy loads is shown to
//! produce the very strings and digests the native build does.
//!
//! The expected values in `tests/vectors/` were not produced by this crate: they come from
//! ECMAScript itself (Number.prototype.toString, JSON.stringify, UTF-16 sort — the definition
//! RFC 8785 builds on), were cross-checked with the Python `jcs` package, and the RFC's own
//! samples were typed from the RFC and compared with both.

use miroir_filter::core::canonical::canonicalize;
use miroir_filter::core::fingerprint::{fingerprint, fingerprint_bytes};
use serde::Deserialize;
use serde_json::{Number, Value};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test;

const NUMBERS: &str = include_str!("vectors/numbers.json");
const DOCUMENTS: &str = include_str!("vectors/documents.json");

/// Fingerprint of a fresh Meilisearch v1.50 index's settings, pinned here as well as in the
/// vectors so that a change to either the canonicalizer or the vector file is noticed.
/// Shown when parsed numbers drift: serde_json's default float parser is fast but not always
/// correctly rounded (e.g. 333333333.33333329 from RFC 8785 §3.2.2 lands one ULP off).
const PARSER_HINT: &str = "serde_json must be built with its `float_roundtrip` feature \
     (filter/Cargo.toml) so number text parses to the nearest double";

const MEILISEARCH_DEFAULT_FINGERPRINT: &str =
    "ac1c4e502a7c5b62666a7111d20b240bacbacb610f4ae3c1712b79461c11adde";

#[derive(Deserialize)]
struct NumberTable {
    cases: Vec<NumberCase>,
}

#[derive(Deserialize)]
struct NumberCase {
    /// The double's bits, big-endian hex.
    ieee754: String,
    /// The RFC 8785 text; `None` for NaN and infinities, which JSON cannot carry.
    expected: Option<String>,
    source: String,
}

#[derive(Deserialize)]
struct Document {
    name: String,
    input: String,
    canonical: String,
    sha256: String,
}

fn number_cases() -> Vec<NumberCase> {
    let parsed = serde_json::from_str::<NumberTable>(NUMBERS).map(|table| table.cases);
    assert_eq!(
        parsed.as_ref().err().map(ToString::to_string),
        None,
        "vectors/numbers.json"
    );
    parsed.unwrap_or_default()
}

fn documents() -> Vec<Document> {
    let parsed = serde_json::from_str::<Vec<Document>>(DOCUMENTS);
    assert_eq!(
        parsed.as_ref().err().map(ToString::to_string),
        None,
        "vectors/documents.json"
    );
    parsed.unwrap_or_default()
}

fn double_from_hex(bits: &str) -> Option<f64> {
    u64::from_str_radix(bits, 16).ok().map(f64::from_bits)
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn vector_files_hold_the_whole_rfc_table_and_samples() {
    let rfc_rows = number_cases()
        .iter()
        .filter(|case| case.source == "RFC 8785 Appendix B")
        .count();
    assert_eq!(rfc_rows, 26, "RFC 8785 Appendix B has 26 rows");
    assert!(number_cases().len() > 200);
    assert_eq!(documents().len(), 7);
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn doubles_print_as_ecmascript_number_to_string() {
    let mut failures = Vec::new();
    for case in number_cases() {
        let Some(double) = double_from_hex(&case.ieee754) else {
            failures.push(format!("{}: not 16 hex digits", case.ieee754));
            continue;
        };
        match (Number::from_f64(double), &case.expected) {
            (Some(number), Some(expected)) => {
                let got = canonicalize(&Value::Number(number));
                if &got != expected {
                    failures.push(format!("{}: got {got}, want {expected}", case.ieee754));
                }
            }
            // NaN / Infinity: serde_json refuses to build a JSON number, so none can reach us.
            (None, None) => {}
            (Some(_), None) => failures.push(format!("{}: non-finite accepted", case.ieee754)),
            (None, Some(_)) => failures.push(format!("{}: finite refused", case.ieee754)),
        }
    }
    assert_eq!(failures, Vec::<String>::new());
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn canonical_number_text_parses_back_to_the_same_double() {
    // A node's body goes through serde_json's parser first: the shortest text must come back
    // as exactly the same double, or equal settings could fingerprint differently.
    let mut failures = Vec::new();
    for case in number_cases() {
        let (Some(expected), Some(double)) = (&case.expected, double_from_hex(&case.ieee754))
        else {
            continue;
        };
        match serde_json::from_str::<Value>(expected) {
            Ok(value) => {
                let parsed = value.as_f64().map(f64::to_bits);
                // -0 prints as "0", which parses as +0: compare after folding the zero sign.
                let wanted = if double == 0.0 { 0 } else { double.to_bits() };
                if parsed != Some(wanted) {
                    failures.push(format!("{expected}: parsed to bits {parsed:x?}"));
                }
                if canonicalize(&value) != *expected {
                    failures.push(format!("{expected}: re-canonicalized differently"));
                }
            }
            Err(error) => failures.push(format!("{expected}: {error}")),
        }
    }
    assert_eq!(failures, Vec::<String>::new(), "{PARSER_HINT}");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn documents_canonicalize_to_the_expected_text() {
    let mut failures = Vec::new();
    for document in documents() {
        match serde_json::from_str::<Value>(&document.input) {
            Ok(value) => {
                let got = canonicalize(&value);
                if got != document.canonical {
                    failures.push(format!(
                        "{}:\n got  {got}\n want {}",
                        document.name, document.canonical
                    ));
                }
            }
            Err(error) => {
                failures.push(format!("{}: input does not parse: {error}", document.name))
            }
        }
    }
    assert_eq!(failures, Vec::<String>::new(), "{PARSER_HINT}");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn canonical_text_is_a_fixed_point() {
    let mut failures = Vec::new();
    for document in documents() {
        match serde_json::from_str::<Value>(&document.canonical) {
            Ok(value) if canonicalize(&value) == document.canonical => {}
            Ok(value) => failures.push(format!(
                "{}: became {}",
                document.name,
                canonicalize(&value)
            )),
            Err(error) => failures.push(format!("{}: {error}", document.name)),
        }
    }
    assert_eq!(failures, Vec::<String>::new());
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn documents_fingerprint_to_the_expected_sha256() {
    let mut failures = Vec::new();
    for document in documents() {
        match fingerprint_bytes(document.input.as_bytes()) {
            Ok(digest) if digest == document.sha256 => {}
            Ok(digest) => failures.push(format!(
                "{}: got {digest}, want {}",
                document.name, document.sha256
            )),
            Err(error) => failures.push(format!("{}: {error}", document.name)),
        }
        if let Ok(value) = serde_json::from_str::<Value>(&document.input) {
            if fingerprint(&value) != document.sha256 {
                failures.push(format!(
                    "{}: fingerprint(value) differs from fingerprint_bytes",
                    document.name
                ));
            }
        }
    }
    assert_eq!(failures, Vec::<String>::new(), "{PARSER_HINT}");
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn meilisearch_default_settings_fingerprint_is_pinned() {
    let pinned: Vec<String> = documents()
        .into_iter()
        .filter(|document| {
            document.name.starts_with("Meilisearch") && document.name.contains("default")
        })
        .map(|document| {
            fingerprint_bytes(document.input.as_bytes()).unwrap_or_else(|error| error.to_string())
        })
        .collect();
    // The engine's own key order and a reordered, pretty-printed copy: one fingerprint.
    assert_eq!(
        pinned,
        vec![
            MEILISEARCH_DEFAULT_FINGERPRINT.to_string(),
            MEILISEARCH_DEFAULT_FINGERPRINT.to_string()
        ]
    );
}

#[cfg_attr(not(target_arch = "wasm32"), test)]
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
fn fingerprint_is_64_lower_case_hex_digits() {
    for document in documents() {
        let digest = fingerprint_bytes(document.input.as_bytes()).unwrap_or_default();
        assert_eq!(digest.len(), 64, "{}", document.name);
        assert!(digest
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    }
}
