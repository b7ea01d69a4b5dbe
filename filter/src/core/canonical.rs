//! RFC 8785 JSON Canonicalization Scheme (JCS).
//!
//! Two Meilisearch nodes may return the same settings with different key order, whitespace or
//! number spelling; the canonical form erases those differences so that equal settings give equal
//! bytes (and so equal fingerprints). The rules, from RFC 8785 §3.2:
//! - no whitespace between tokens;
//! - object members sorted by their keys' UTF-16 code units (not by UTF-8 bytes or code points:
//!   the two orders differ for characters outside the Basic Multilingual Plane);
//! - strings escaped as ECMAScript's `JSON.stringify` does: only `"`, `\` and control characters
//!   below U+0020, everything else written as literal UTF-8;
//! - numbers written as ECMAScript's `Number.prototype.toString` writes the IEEE-754 double.
//!
//! Only std and serde_json are used, so the same code runs natively and compiled to wasm.

use serde_json::{Map, Number, Value};
use std::cmp::Ordering;

/// The RFC 8785 canonical form of `value`, as a string.
pub fn canonicalize(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// The RFC 8785 canonical form of `value`, as the UTF-8 bytes that get hashed.
pub fn canonical_bytes(value: &Value) -> Vec<u8> {
    canonicalize(value).into_bytes()
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(out, number),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => write_array(out, items),
        Value::Object(members) => write_object(out, members),
    }
}

fn write_array(out: &mut String, items: &[Value]) {
    out.push('[');
    for (position, item) in items.iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        write_value(out, item);
    }
    out.push(']');
}

fn write_object(out: &mut String, members: &Map<String, Value>) {
    // serde_json's map iterates in code-point order (or insertion order with `preserve_order`);
    // JCS wants UTF-16 code-unit order, so sort explicitly whatever the map's own order is.
    let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
    super::sort::sort_by(&mut sorted, |(left, _), (right, _)| utf16_order(left, right));
    out.push('{');
    for (position, (key, member)) in sorted.into_iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        write_string(out, key);
        out.push(':');
        write_value(out, member);
    }
    out.push('}');
}

/// Compares two strings by their UTF-16 code units, as ECMAScript's default sort does.
pub(super) fn utf16_order(left: &str, right: &str) -> Ordering {
    left.encode_utf16().cmp(right.encode_utf16())
}

pub(super) fn write_string(out: &mut String, text: &str) {
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{0C}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            control if u32::from(control) < 0x20 => {
                out.push_str(&format!("\\u{:04x}", u32::from(control)));
            }
            literal => out.push(literal),
        }
    }
    out.push('"');
}

fn write_number(out: &mut String, number: &Number) {
    // JSON numbers are IEEE-754 doubles to JCS: integers too, so 2^53 + 1 prints as 2^53.
    // Without serde_json's `arbitrary_precision` feature `as_f64` is always `Some`; the fallback
    // only keeps this total should that feature ever be switched on.
    match number.as_f64() {
        Some(double) => out.push_str(&es_number_string(double)),
        None => out.push_str(&number.to_string()),
    }
}

/// ECMAScript `Number.prototype.toString(x)` for a finite double (ECMA-262 Number::toString).
///
/// The spec wants the fewest digits `k` that round-trip to `x` and, among the k-digit strings
/// that do, the one closest to `x`, the even one on a tie (0x43143ff3c1cb0959, exactly
/// ...206.25, is ...206.2). That is what Schubfach computes, and `zmij` (serde_json's own
/// float printer, so already in the module) is Schubfach, in one pass. Rust's `{:e}` gives the
/// right `k` but not always that string; its exact mode at `k` digits does, at the price of a
/// second formatting and a re-parse (and of core's exponent-form printers in the module).
/// Only the layout is ECMAScript's own: plain integers up to 21 digits, plain fractions down to
/// 1e-6, exponent form otherwise.
pub(crate) fn es_number_string(double: f64) -> String {
    if double == 0.0 {
        // Covers -0 as well: ECMAScript prints both zeros as "0".
        return "0".to_string();
    }
    if !double.is_finite() {
        // Not reachable from a serde_json value (it refuses NaN and infinities); ECMAScript's
        // spelling keeps the function total.
        return if double.is_nan() {
            "NaN".to_string()
        } else if double > 0.0 {
            "Infinity".to_string()
        } else {
            "-Infinity".to_string()
        };
    }
    let sign = if double < 0.0 { "-" } else { "" };
    let mut buffer = zmij::Buffer::new();
    match significant_digits(buffer.format_finite(double.abs())) {
        Some((digits, point)) => format!("{sign}{}", layout(&digits, point)),
        // zmij writes plain decimals or `d.ddde±x`; anything else is kept as written.
        None => format!("{sign}{}", buffer.format_finite(double.abs())),
    }
}

/// A decimal `123.45`, `0.0012`, `1.5e-7` or `1e21` as its significant digits (no leading or
/// trailing zeros) and the spec's `n`: the value is `0.digits × 10^n`. None for a zero or for
/// text that is not such a decimal.
fn significant_digits(decimal: &str) -> Option<(String, i32)> {
    let (mantissa, exponent) = match decimal.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i32>().ok()?),
        None => (decimal, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = whole.bytes().chain(fraction.bytes());
    if !digits.clone().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let leading_zeros = digits.clone().take_while(|&b| b == b'0').count();
    let significant: String = digits.skip(leading_zeros).map(char::from).collect();
    let significant = significant.trim_end_matches('0');
    if significant.is_empty() {
        return None;
    }
    let whole_len = i32::try_from(whole.len()).ok()?;
    let leading = i32::try_from(leading_zeros).ok()?;
    Some((significant.to_string(), whole_len.checked_sub(leading)?.checked_add(exponent)?))
}

/// Lays out the significant `digits` (no leading or trailing zeros) of a value equal to
/// `0.digits × 10^point`, per the four cases of ECMA-262 Number::toString; `point` is the
/// spec's `n`, the position of the decimal point relative to the first digit.
fn layout(digits: &str, point: i32) -> String {
    let count = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    if count <= point && point <= 21 {
        // Integer: the digits then (n - k) zeros, e.g. 1e20 -> "100000000000000000000".
        format!("{digits}{}", zeros(point - count))
    } else if 0 < point && point <= 21 {
        // Decimal point inside the digits, e.g. "3333333333333332" with n = 9.
        // Here 0 < n < k and the digits are ASCII, so the split always exists.
        match digits.split_at_checked(usize::try_from(point).unwrap_or(0)) {
            Some((whole, fraction)) => format!("{whole}.{fraction}"),
            None => digits.to_string(),
        }
    } else if -6 < point && point <= 0 {
        // Small fraction: "0." then -n zeros, e.g. 1e-6 -> "0.000001".
        format!("0.{}{digits}", zeros(-point))
    } else {
        // Exponent form with an explicit sign, e.g. "1e+21", "9.999999999999997e-7".
        let exponent = point - 1;
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        let mut leading = digits.chars();
        let first: String = leading.next().map(String::from).unwrap_or_default();
        let rest = leading.as_str();
        let fraction = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!(
            "{first}{fraction}e{exponent_sign}{}",
            exponent.unsigned_abs()
        )
    }
}

fn zeros(count: i32) -> String {
    "0".repeat(usize::try_from(count).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn each_layout_case_of_number_to_string() {
        assert_eq!(es_number_string(1.0), "1");
        assert_eq!(es_number_string(-1.5), "-1.5");
        assert_eq!(es_number_string(123456789.0), "123456789");
        assert_eq!(es_number_string(1e21), "1e+21");
        assert_eq!(es_number_string(1e20), "100000000000000000000");
        assert_eq!(es_number_string(0.5), "0.5");
        assert_eq!(es_number_string(1e-6), "0.000001");
        assert_eq!(es_number_string(1e-7), "1e-7");
        assert_eq!(es_number_string(1.5e-7), "1.5e-7");
        assert_eq!(es_number_string(-0.0), "0");
        // Exactly 1424953923781206.25: both ...206.2 and ...206.3 round-trip and are equally
        // close; ECMAScript breaks the tie to the even digit.
        assert_eq!(
            es_number_string(f64::from_bits(0x43143ff3c1cb0959)),
            "1424953923781206.2"
        );
        assert_eq!(es_number_string(f64::NAN), "NaN");
        assert_eq!(es_number_string(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn integers_are_printed_as_doubles() {
        // 2^53 + 1 is not a double: it rounds to 2^53, as in ECMAScript.
        assert_eq!(
            canonicalize(&json!(9007199254740993_u64)),
            "9007199254740992"
        );
        assert_eq!(canonicalize(&json!(u64::MAX)), "18446744073709552000");
        assert_eq!(canonicalize(&json!(i64::MIN)), "-9223372036854776000");
        assert_eq!(canonicalize(&json!(-7)), "-7");
    }

    #[test]
    fn only_quote_backslash_and_controls_are_escaped() {
        let text = "\"\\/\u{7f}\u{2028}\u{2029}é\u{1F600}\u{0}\u{1f}\u{0b}";
        assert_eq!(
            canonicalize(&json!(text)),
            "\"\\\"\\\\/\u{7f}\u{2028}\u{2029}é\u{1F600}\\u0000\\u001f\\u000b\""
        );
    }

    #[test]
    fn astral_keys_sort_before_high_bmp_keys() {
        // Code-point order would put U+FB33 first; UTF-16 puts the surrogate 0xD83D first.
        let value = json!({"\u{1F600}": 1, "\u{FB33}": 2});
        assert_eq!(canonicalize(&value), "{\"\u{1F600}\":1,\"\u{FB33}\":2}");
    }

    #[test]
    fn canonical_bytes_are_the_utf8_of_the_string() {
        let value = json!({"b": [true, null], "a": "ö"});
        assert_eq!(
            canonical_bytes(&value),
            "{\"a\":\"ö\",\"b\":[true,null]}".as_bytes()
        );
    }
}
