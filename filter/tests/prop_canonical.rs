//! Property tests of the RFC 8785 canonicalizer and the settings fingerprint, on arbitrary JSON.
//!
//! The table-driven vectors (`canonical_vectors.rs`) pin exact outputs from ECMAScript; these
//! check the laws that must hold for every input: no panic, the output is JSON that canonicalizes
//! to itself, and nothing a node may vary (key order, whitespace, string escapes, number spelling)
//! changes the canonical form or the fingerprint. Untrusted bodies reach the canonicalizer only
//! through serde_json's parser, whose recursion limit (128) is what bounds the depth: checked
//! here with 100 000-deep documents.
#![cfg(not(target_arch = "wasm32"))]
// Helpers outside `#[test]` functions index and unwrap like the tests do (a panic here is a test
// failure); clippy.toml's in-test allowances do not reach them.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

mod common;

use miroir_filter::core::canonical::{canonical_bytes, canonicalize};
use miroir_filter::core::canonical_text::canonicalize_text;
use miroir_filter::core::fingerprint::{fingerprint, fingerprint_bytes};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

// ------------------------------------------------------------------------------------------
// Generators
// ------------------------------------------------------------------------------------------

/// Doubles from every corner: raw bit patterns (subnormals, huge, tiny), short decimals, and
/// integers around 2^53 and the i64/u64 limits, where integer and double spellings part.
fn double() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>().prop_map(f64::from_bits),
        any::<f64>(),
        (-99_999i64..99_999, -30i32..30).prop_map(|(m, e)| format!("{m}e{e}").parse().unwrap()),
        (-5i64..5).prop_map(|d| (9_007_199_254_740_992i64 + d) as f64),
        Just(1e21),
        Just(1e-6),
        Just(1e-7),
        Just(f64::MIN_POSITIVE),
        Just(f64::MAX),
        Just(5e-324),
        // Exactly 1424953923781206.25: two shortest candidates, ECMAScript takes the even one.
        Just(f64::from_bits(0x4314_3ff3_c1cb_0959)),
    ]
    .prop_filter("JSON numbers are finite", |d| d.is_finite())
}

fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from),
        any::<u64>().prop_map(Number::from),
        (9_007_199_254_740_990u64..9_007_199_254_741_000).prop_map(Number::from),
        double().prop_map(|d| Number::from_f64(d).unwrap()),
    ]
}

/// Any characters, controls, quotes, backslashes and astral ones included.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<char>(), 0..8).prop_map(String::from_iter),
        "[a-c\"\\\\/\u{0}-\u{1f}\u{7f}é\u{2028}\u{FB33}\u{1F600}]{0,6}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number().prop_map(Value::Number),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

// ------------------------------------------------------------------------------------------
// A renderer that writes the same value as a node might: any whitespace, any member order, any
// legal string escapes, any number spelling that denotes the same double.
// ------------------------------------------------------------------------------------------

struct Render<'a> {
    choices: std::iter::Cycle<std::slice::Iter<'a, u8>>,
    out: String,
}

impl Render<'_> {
    fn pick(&mut self, n: usize) -> usize {
        usize::from(*self.choices.next().unwrap_or(&0)) % n
    }

    fn space(&mut self) {
        const WS: [&str; 6] = ["", "", "", " ", "\n  ", "\t\r\n"];
        let ws = WS[self.pick(WS.len())];
        self.out.push_str(ws);
    }

    fn value(&mut self, value: &Value) {
        self.space();
        match value {
            Value::Null => self.out.push_str("null"),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => self.number(n),
            Value::String(s) => self.string(s),
            Value::Array(items) => {
                self.out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.space();
                        self.out.push(',');
                    }
                    self.value(item);
                }
                self.space();
                self.out.push(']');
            }
            Value::Object(members) => {
                let mut members: Vec<(&String, &Value)> = members.iter().collect();
                for i in (1..members.len()).rev() {
                    let j = self.pick(i + 1);
                    members.swap(i, j);
                }
                self.out.push('{');
                for (i, (key, member)) in members.into_iter().enumerate() {
                    if i > 0 {
                        self.space();
                        self.out.push(',');
                    }
                    self.space();
                    self.string(key);
                    self.space();
                    self.out.push(':');
                    self.value(member);
                }
                self.space();
                self.out.push('}');
            }
        }
        self.space();
    }

    fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            let escaped = match c {
                '"' => Some("\\\""),
                '\\' => Some("\\\\"),
                '\n' => Some("\\n"),
                '\t' => Some("\\t"),
                '\r' => Some("\\r"),
                '\u{8}' => Some("\\b"),
                '\u{c}' => Some("\\f"),
                '/' if self.pick(2) == 0 => Some("\\/"),
                _ => None,
            };
            match escaped {
                Some(e) if self.pick(3) > 0 => self.out.push_str(e),
                _ if c < ' ' || c == '"' || c == '\\' || self.pick(4) == 0 => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        if self.pick(2) == 0 {
                            self.out.push_str(&format!("\\u{unit:04x}"));
                        } else {
                            self.out.push_str(&format!("\\u{unit:04X}"));
                        }
                    }
                }
                _ => self.out.push(c),
            }
        }
        self.out.push('"');
    }

    fn number(&mut self, n: &Number) {
        let d = n.as_f64().unwrap();
        let (digits, point) = decimal(&format!("{d:e}"));
        let sign = if d.is_sign_negative() { "-" } else { "" };
        let spelled = match self.pick(7) {
            0 => n.to_string(),
            1 => format!("{d:e}"),
            2 => format!("{d:E}"),
            3 => format!("{d}"),
            // 0.DIGITS × 10^point, with trailing zeros and an explicit exponent.
            4 => format!("{sign}0.{digits}000e{point}"),
            5 => {
                let exponent = point - digits.len() as i32;
                let plus = if exponent >= 0 { "+" } else { "" };
                format!("{sign}{digits}E{plus}{exponent}")
            }
            _ => format!("{d:.17e}"),
        };
        self.out.push_str(&spelled);
    }
}

fn render(value: &Value, choices: &[u8]) -> String {
    let mut render = Render {
        choices: choices.iter().cycle(),
        out: String::new(),
    };
    render.value(value);
    render.out
}

/// The significant digits of a decimal numeral (no leading or trailing zeros, "0" for zero) and
/// the position of the decimal point relative to them: the value is 0.DIGITS × 10^point.
fn decimal(numeral: &str) -> (String, i32) {
    let unsigned = numeral.trim_start_matches('-');
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (
            &unsigned[..at],
            unsigned[at + 1..].trim_start_matches('+').parse().unwrap(),
        ),
        None => (unsigned, 0i32),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all = format!("{whole}{fraction}");
    let leading = all.len() - all.trim_start_matches('0').len();
    let digits = all.trim_matches('0');
    if digits.is_empty() {
        return ("0".into(), 0);
    }
    let point = whole.len() as i32 - leading as i32 + exponent;
    (digits.to_string(), point)
}

// ------------------------------------------------------------------------------------------
// Properties
// ------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(common::config(1_000))]

    /// The canonical form is JSON, canonicalizes to itself, and fingerprints the same whether
    /// taken from the value or from its canonical bytes.
    #[test]
    fn canonical_form_is_a_fixed_point(value in json()) {
        let canonical = canonicalize(&value);
        prop_assert_eq!(canonical_bytes(&value), canonical.as_bytes());
        let reparsed: Value = serde_json::from_str(&canonical)
            .map_err(|e| TestCaseError::fail(format!("{canonical}: {e}")))?;
        prop_assert_eq!(canonicalize(&reparsed), canonical.clone());
        let digest = fingerprint(&value);
        prop_assert_eq!(digest.len(), 64);
        prop_assert!(digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        prop_assert_eq!(fingerprint_bytes(canonical.as_bytes()).ok(), Some(digest));
    }

    /// Whitespace, member order, escapes and number spelling change neither the canonical form
    /// nor the fingerprint.
    #[test]
    fn formatting_does_not_change_the_canonical_form(
        value in json(),
        choices in prop::collection::vec(any::<u8>(), 1..128),
    ) {
        let text = render(&value, &choices);
        let parsed: Value = serde_json::from_str(&text)
            .map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(canonicalize(&parsed), canonicalize(&value), "rendered as {}", text);
        prop_assert_eq!(fingerprint_bytes(text.as_bytes()).ok(), Some(fingerprint(&value)));
    }

    /// RFC 8785 §3.2.2.3 numbers (ECMAScript Number::toString), checked against independent
    /// facts: the text reads back as the same double; it has as many digits as Rust's shortest
    /// `{:e}` and they are the ones Rust's exact mode rounds the double to at that length (the
    /// closest, the even one on a tie: the canonicalizer takes them from zmij, this from core's
    /// own float formatting); the layout is plain from 1e-6 up to 1e21 and exponent form
    /// outside, with no superfluous zero, point or sign.
    #[test]
    fn numbers_are_shortest_round_trip_in_ecmascript_layout(d in double()) {
        let text = canonicalize(&Value::Number(Number::from_f64(d).unwrap()));
        let back: f64 = text.parse().map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(back, d, "{} does not read back", text);

        let magnitude = d.abs();
        let (digits, point) = decimal(&text);
        let length = decimal(&format!("{magnitude:e}")).0.len();
        let exact = decimal(&format!("{magnitude:.prec$e}", prec = length - 1));
        prop_assert_eq!((&digits, point), (&exact.0, exact.1), "{} vs exact rounding", text);
        let exponent_form = text.contains('e');
        prop_assert_eq!(exponent_form, magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude), "{}", text);
        let unsigned = text.strip_prefix('-').unwrap_or(&text);
        prop_assert_eq!(text.starts_with('-'), d < 0.0, "{}", text);
        let (mantissa, exponent) = unsigned.split_once('e').unwrap_or((unsigned, ""));
        if let Some((whole, fraction)) = mantissa.split_once('.') {
            prop_assert!(!fraction.is_empty() && !fraction.ends_with('0'), "{}", text);
            prop_assert!(whole == "0" || !whole.starts_with('0'), "{}", text);
            if exponent_form {
                prop_assert_eq!(whole.len(), 1, "{}", text);
            }
        } else {
            prop_assert!(mantissa == "0" || !mantissa.starts_with('0'), "{}", text);
        }
        if exponent_form {
            prop_assert!(exponent.starts_with('+') || exponent.starts_with('-'), "{}", text);
            prop_assert!(!exponent[1..].starts_with('0'), "{}", text);
        }
        prop_assert!(text.bytes().all(|b| b.is_ascii_digit() || b"-+.e".contains(&b)), "{}", text);
    }

    /// The text reader takes exactly what serde_json takes and writes what the value's
    /// canonicalizer writes: on valid documents in any spelling, and on the same documents
    /// mangled by a few edits that tend to land on the grammar's corners.
    #[test]
    fn the_text_reader_agrees_with_serde_json(
        value in json(),
        choices in prop::collection::vec(any::<u8>(), 1..128),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, prop::sample::select(CORNERS)), 0..4),
    ) {
        let mut text = render(&value, &choices).into_bytes();
        for (at, kind, piece) in edits {
            let at = if text.is_empty() { 0 } else { at.index(text.len()) };
            match kind {
                0 => { text.splice(at..at, piece.bytes()); }
                1 if !text.is_empty() => { text.remove(at); }
                _ => { text.splice(at..(at + 1).min(text.len()), piece.bytes()); }
            }
        }
        prop_assert_eq!(canonicalize_text(&text).ok(), by_serde_json(&text), "text {:?}", String::from_utf8_lossy(&text));
    }

    /// Short documents built from the grammar's corners alone, valid or not.
    #[test]
    fn the_text_reader_agrees_with_serde_json_on_corners(pieces in prop::collection::vec(prop::sample::select(CORNERS), 1..8)) {
        let text = pieces.concat().into_bytes();
        prop_assert_eq!(canonicalize_text(&text).ok(), by_serde_json(&text), "text {:?}", String::from_utf8_lossy(&text));
    }

    /// Arbitrary bytes as a node body: an error or a fingerprint, never a panic.
    #[test]
    fn fingerprint_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = fingerprint_bytes(&bytes);
    }
}

/// Tokens where JSON readers tend to part: escapes and surrogates, number spellings at the
/// edges of the grammar and of the doubles, duplicate keys, literals, separators, stray bytes.
const CORNERS: &[&str] = &[
    "{", "}", "[", "]", ",", ":", " ", "\t", "\"", "\\", "\"a\"", "\"b\":", "{\"a\":1,\"a\":2}", "\"\\u00e9\"",
    "\"\\ud83d\\ude00\"", "\"\\ud83d\"", "\"\\udc00\"", "\"\\ud83d\\u0041\"", "\\u", "\\x", "\"\\/\"", "\u{1}",
    "\u{7f}", "é", "\u{1F600}", "\u{FB33}", "0", "-0", "01", "-", "1.", ".5", "1e", "1E+2", "1e-400", "1e400", "-1e308",
    "123456789012345", "1234567890123456", "9007199254740993", "18446744073709551616", "-9223372036854775809",
    "0.1", "2.50", "true", "false", "null", "nul", "tru", "+1", "\u{0}", "\u{ff}",
];

/// What serde_json's parser and the value canonicalizer make of `text`.
fn by_serde_json(text: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(text).ok().map(|value| canonicalize(&value))
}

/// `count` nested arrays (or objects), then the matching closers.
fn nested(count: usize, open: &str, close: &str) -> Vec<u8> {
    let mut text = open.repeat(count);
    text.push_str(&close.repeat(count));
    text.into_bytes()
}

/// A 100 000-deep document is refused by the parser (serde_json's recursion limit, 128) before
/// anything recursive sees it: an error, not a stack overflow that would kill the VM.
#[test]
fn deep_documents_are_refused_by_the_parser() {
    for body in [
        nested(100_000, "[", "]"),
        nested(100_000, "{\"a\":", "}"),
        b"[".repeat(100_000),
    ] {
        let error = fingerprint_bytes(&body).unwrap_err();
        assert!(error.to_string().contains("recursion limit"), "{error}");
    }
    // The limit, not a smaller one: 127 levels parse and canonicalize.
    assert_eq!(
        fingerprint_bytes(&nested(127, "[", "]")).ok(),
        Some(fingerprint(
            &serde_json::from_slice(&nested(127, "[", "]")).unwrap()
        ))
    );
    assert!(fingerprint_bytes(&nested(129, "[", "]")).is_err());
}

#[test]
fn the_helpers_read_numerals_as_meant() {
    assert_eq!(decimal("1e21"), ("1".into(), 22));
    assert_eq!(decimal("-0.000123"), ("123".into(), -3));
    assert_eq!(
        decimal("1424953923781206.2"),
        ("14249539237812062".into(), 16)
    );
    assert_eq!(decimal("100.0"), ("1".into(), 3));
    assert_eq!(decimal("0"), ("0".into(), 0));
    assert_eq!(decimal("5E-324"), ("5".into(), -323));
    let value: Value = serde_json::json!({"b": [1, "x/\"é\u{1F600}"], "a": {}});
    let mut texts = std::collections::BTreeSet::new();
    for seed in 0..50u8 {
        let text = render(&value, &[seed, seed.wrapping_mul(7), 3, 250]);
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            canonicalize(&parsed),
            r#"{"a":{},"b":[1,"x/\"é😀"]}"#,
            "{text}"
        );
        texts.insert(text);
    }
    // The renderer really varies what it writes.
    assert!(texts.len() > 10, "{texts:#?}");
}
