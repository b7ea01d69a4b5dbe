//! Query parameters as a Meilisearch node reads them, and the wording of its errors about them.
//!
//! A node hands the raw query string to `serde_urlencoded` (through actix's `Query`) into a
//! `serde_json::Value` built with `preserve_order`, then `deserr` reads that map. So:
//! - pairs are split on `&`, empty ones skipped; a pair without `=` has the value `""`;
//! - in names and values `+` is a space, `%XX` escapes are decoded (`%2C` is a comma, `%2B` a
//!   plus), a `%` without two hex digits stays as written, and the bytes are read as UTF-8
//!   lossily;
//! - a repeated name keeps its first position and its last value (a map insert);
//! - parameters are then read in that order, and the first bad one is the error.
//!
//! The messages are deserr's query-parameter messages as Meilisearch words them; clients and
//! SDKs show them, and tests match on them.

use super::sorted_map::SortedMap;

use super::errors::{ErrorType, MeiliError};

/// The decoded `(name, value)` pairs of the query of `path_with_query`, in the order a node
/// reads them.
pub fn decode_query(path_with_query: &str) -> Vec<(String, String)> {
    let Some((_, query)) = path_with_query.split_once('?') else {
        return Vec::new();
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (form_decode(name), form_decode(value));
        match pairs.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => pairs.push((name, value)),
        }
    }
    pairs
}

/// `application/x-www-form-urlencoded` decoding of one name or value.
fn form_decode(raw: &str) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.as_bytes();
    while let Some((&first, rest)) = bytes.split_first() {
        bytes = rest;
        match first {
            b'+' => out.push(b' '),
            b'%' => match rest {
                [hi, lo, after @ ..] => match (hex_value(*hi), hex_value(*lo)) {
                    (Some(hi), Some(lo)) => {
                        out.push(hi << 4 | lo);
                        bytes = after;
                    }
                    _ => out.push(b'%'),
                },
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

use super::route::hex_value;

/// 400 `bad_request` for a parameter the route does not take, with deserr's suggestion of a
/// close accepted name.
pub fn unknown_parameter(name: &str, accepted: &[&str]) -> MeiliError {
    let listed: Vec<String> = accepted.iter().map(|a| format!("`{a}`")).collect();
    MeiliError::bad_request(format!(
        "Unknown parameter `{name}`: {}expected one of {}",
        did_you_mean(name, accepted),
        listed.join(", ")
    ))
}

/// 400 with `code`: the value of parameter `location` (`uids`, or `uids[1]` for the second
/// item of a list) is invalid for the reason `detail`.
pub fn invalid_value(code: &str, location: &str, detail: &str) -> MeiliError {
    MeiliError::new(
        400,
        code,
        ErrorType::InvalidRequest,
        format!("Invalid value in parameter `{location}`: {detail}"),
    )
}

/// `could not parse ... as a positive integer`: the reason an unsigned number was refused.
pub fn not_a_positive_integer(value: &str) -> String {
    format!("could not parse `{value}` as a positive integer")
}

/// `could not parse ... as a boolean ...`: the reason a flag was refused.
pub fn not_a_boolean(value: &str) -> String {
    format!("could not parse `{value}` as a boolean, expected either `true` or `false`")
}

/// `did you mean `x`? ` when an accepted name is within the typos allowed for the length of
/// `received` (none below 4 bytes, then one more every few bytes), else empty. The closest
/// name wins, the first listed on a tie.
fn did_you_mean(received: &str, accepted: &[&str]) -> String {
    let allowed = match received.len() {
        0..=3 => return String::new(),
        4..=7 => 1,
        8..=12 => 2,
        13..=17 => 3,
        18..=24 => 4,
        _ => 5,
    };
    let mut best: Option<(&str, usize)> = None;
    for candidate in accepted {
        let distance = damerau_levenshtein(received, candidate);
        if distance <= allowed && best.is_none_or(|(_, d)| distance < d) {
            best = Some((candidate, distance));
        }
    }
    best.map(|(name, _)| format!("did you mean `{name}`? "))
        .unwrap_or_default()
}

/// Edit distance counting insertions, deletions, substitutions and transpositions of adjacent
/// characters, with no restriction on editing a transposed pair again (the unrestricted
/// Damerau–Levenshtein distance, which deserr's suggestion uses), over `char`s.
///
/// Lowrance–Wagner dynamic programme: `d(i, j)` is the distance between the first `i` chars of
/// `a` and the first `j` of `b`; a transposition reaches back to the last row where `a` had the
/// current char of `b` and the last column where `b` had the current char of `a`.
fn damerau_levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // The table has a sentinel row and column (index 0) holding a value above any distance,
    // so `d(i, j)` lives at (i + 1, j + 1).
    let mut table = Table::new(a.len() + 2, b.len() + 2);
    let infinity = a.len() + b.len();
    for i in 0..=a.len() {
        table.set(i + 1, 0, infinity);
        table.set(i + 1, 1, i);
    }
    for j in 0..=b.len() {
        table.set(0, j + 1, infinity);
        table.set(1, j + 1, j);
    }
    // Char → last row (1-based) of `a` holding it.
    let mut last_row: SortedMap<char, usize> = SortedMap::new();
    for (i, &ca) in a.iter().enumerate().map(|(i, c)| (i + 1, c)) {
        // Last column (1-based) of `b`, in this row, whose char equals `ca`.
        let mut last_col = 0;
        for (j, &cb) in b.iter().enumerate().map(|(j, c)| (j + 1, c)) {
            let k = last_row.get(&cb).copied().unwrap_or(0);
            let l = last_col;
            let same = ca == cb;
            if same {
                last_col = j;
            }
            let substitution = table.get(i, j) + usize::from(!same);
            let insertion = table.get(i + 1, j) + 1;
            let deletion = table.get(i, j + 1) + 1;
            let transposition = table.get(k, l) + (i - k - 1) + 1 + (j - l - 1);
            table.set(
                i + 1,
                j + 1,
                substitution.min(insertion).min(deletion).min(transposition),
            );
        }
        last_row.insert(ca, i);
    }
    table.get(a.len() + 1, b.len() + 1)
}

/// A row-major grid of distances; out-of-range reads are 0 and writes are dropped, which the
/// loops above never do (kept panic-free for the crate's lints).
struct Table {
    cells: Vec<usize>,
    width: usize,
}

impl Table {
    fn new(rows: usize, width: usize) -> Self {
        Table {
            cells: vec![0; rows * width],
            width,
        }
    }
    fn get(&self, row: usize, col: usize) -> usize {
        self.cells.get(row * self.width + col).copied().unwrap_or(0)
    }
    fn set(&mut self, row: usize, col: usize, value: usize) {
        if let Some(cell) = self.cells.get_mut(row * self.width + col) {
            *cell = value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn decoding_is_form_urlencoded() {
        assert_eq!(decode_query("/tasks"), pairs(&[]));
        assert_eq!(decode_query("/tasks?"), pairs(&[]));
        assert_eq!(
            decode_query("/tasks?types=settingsUpdate%2CindexCreation&limit=2"),
            pairs(&[("types", "settingsUpdate,indexCreation"), ("limit", "2")])
        );
        assert_eq!(
            decode_query("/tasks?indexUids=the+good%20doggo&x%2By=%2B1"),
            pairs(&[("indexUids", "the good doggo"), ("x+y", "+1")])
        );
        // Empty pairs skipped, a bare name has an empty value, only the first `=` splits.
        assert_eq!(
            decode_query("/tasks?&&reverse&a=b=c&"),
            pairs(&[("reverse", ""), ("a", "b=c")])
        );
        // Bad escapes stay, invalid UTF-8 becomes U+FFFD.
        assert_eq!(
            decode_query("/t?a=%zz%4%&b=%ff"),
            pairs(&[("a", "%zz%4%"), ("b", "\u{fffd}")])
        );
        // A repeated name: first position, last value.
        assert_eq!(
            decode_query("/t?limit=1&from=5&limit=3"),
            pairs(&[("limit", "3"), ("from", "5")])
        );
        assert_eq!(
            decode_query("/t?li%6Dit=1&limit=2"),
            pairs(&[("limit", "2")])
        );
    }

    #[test]
    fn distances() {
        for (a, b, d) in [
            ("", "", 0),
            ("", "abc", 3),
            ("limit", "limit", 0),
            ("limt", "limit", 1),
            ("lmiit", "limit", 1),
            ("ca", "abc", 2), // 3 for the restricted (OSA) distance
            ("uidz", "uids", 1),
            ("statuse", "statuses", 1),
            ("naïve", "naive", 1),
        ] {
            assert_eq!(damerau_levenshtein(a, b), d, "{a} / {b}");
            assert_eq!(damerau_levenshtein(b, a), d, "{b} / {a}");
        }
    }

    #[test]
    fn suggestions() {
        let accepted = ["limit", "from", "uids", "types"];
        assert_eq!(did_you_mean("limt", &accepted), "did you mean `limit`? ");
        assert_eq!(did_you_mean("uid", &accepted), "");
        assert_eq!(did_you_mean("uidz", &accepted), "did you mean `uids`? ");
        assert_eq!(did_you_mean("doggo", &accepted), "");
        assert_eq!(did_you_mean("", &accepted), "");
        // A tie goes to the first listed.
        assert_eq!(
            did_you_mean("abcd", &["abce", "abcf"]),
            "did you mean `abce`? "
        );
    }

    #[test]
    fn messages() {
        assert_eq!(
            unknown_parameter("limt", &["limit", "from"]).body(),
            r#"{"message":"Unknown parameter `limt`: did you mean `limit`? expected one of `limit`, `from`","code":"bad_request","type":"invalid_request","link":"https://docs.meilisearch.com/errors#bad_request"}"#
        );
        let e = invalid_value(
            "invalid_task_uids",
            "uids[1]",
            &not_a_positive_integer("dogo"),
        );
        assert_eq!(e.status, 400);
        assert_eq!(
            e.message,
            "Invalid value in parameter `uids[1]`: could not parse `dogo` as a positive integer"
        );
        assert_eq!(
            not_a_boolean("*"),
            "could not parse `*` as a boolean, expected either `true` or `false`"
        );
    }
}
