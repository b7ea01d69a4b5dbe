//! The RFC 8785 canonical form read straight from JSON text, without building a `serde_json::Value`.
//!
//! During verify the filter fingerprints every node's settings read-back; a 5 MB body parsed into
//! a `Value` costs one allocation per string and per map node, and that parse was most of the
//! fingerprint's time (slower still in V8's bounds-checked memory). This reader walks the text
//! once and writes the canonical form as it goes: a string without escapes is copied as it
//! stands (JCS would write it the same way), an integer of at most 15 digits too; only objects
//! are buffered, to put their members in order.
//!
//! It accepts exactly what `serde_json::from_slice::<Value>` accepts and writes exactly what
//! `canonical::canonicalize` writes for the parsed value (`filter/tests/prop_canonical.rs` checks
//! both on arbitrary and mangled input): the same grammar, the same recursion limit (a document
//! nested 128 deep is refused, so untrusted depth never reaches the stack), surrogate escapes
//! that must pair, numbers that must be finite doubles, and the last of duplicate keys winning.

use super::canonical::{es_number_string, utf16_order, write_string};
use super::sort;
use std::borrow::Cow;
use std::fmt;

/// serde_json's recursion limit: 127 nested arrays or objects parse, 128 do not.
const DEPTH_LIMIT: usize = 128;
/// Integers up to this many digits are exact doubles (< 2^53) that ECMAScript prints as written.
const PLAIN_INTEGER_DIGITS: usize = 15;

/// Why a text is not JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextError {
    pub reason: &'static str,
    pub offset: usize,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

/// A JSON text read once: its canonical form and, when it is an object, where the value of each
/// top-level member stands in the text, so that verify checks the proposed keys without a second
/// pass over a large read-back.
pub struct ReadText<'a> {
    pub canonical: String,
    top_level: Option<Vec<(Cow<'a, str>, &'a str)>>,
}

impl<'a> ReadText<'a> {
    pub fn is_object(&self) -> bool {
        self.top_level.is_some()
    }

    /// The text of the top-level member `key`'s value (the last one when the key is given twice,
    /// as in a parsed map); `None` when there is no such member.
    pub fn member(&self, key: &str) -> Option<&'a str> {
        let members = self.top_level.as_ref()?;
        members.iter().rev().find(|(name, _)| name == key).map(|(_, value)| *value)
    }
}

/// The canonical form of the JSON `text`, or why it is not JSON.
pub fn canonicalize_text(text: &[u8]) -> Result<String, TextError> {
    read_text(text).map(|read| read.canonical)
}

/// Reads the JSON `text` into its canonical form and its top-level members, or says why it is
/// not JSON.
pub fn read_text(text: &[u8]) -> Result<ReadText<'_>, TextError> {
    // Bytes outside strings must be ASCII anyway, so one check up front makes every slice of
    // the text a `str` and every string valid UTF-8, as serde_json requires.
    let text = std::str::from_utf8(text).map_err(|e| TextError { reason: "invalid UTF-8", offset: e.valid_up_to() })?;
    let mut reader = Reader { text, pos: 0, top_level: None };
    let mut out = String::with_capacity(text.len());
    reader.value(&mut out, 0)?;
    reader.skip_whitespace();
    if reader.pos < text.len() {
        return Err(reader.error("trailing characters"));
    }
    Ok(ReadText { canonical: out, top_level: reader.top_level })
}

struct Reader<'a> {
    text: &'a str,
    pos: usize,
    /// The outermost value's members (key and value text) once it was read, if it is an object.
    top_level: Option<Vec<(Cow<'a, str>, &'a str)>>,
}

/// One member of an object being read: its key, its value's text, and where `"key":value` was
/// written in the output.
struct Member<'a> {
    key: Cow<'a, str>,
    value: &'a str,
    written: (usize, usize),
}

impl<'a> Reader<'a> {
    fn error(&self, reason: &'static str) -> TextError {
        TextError { reason, offset: self.pos }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8, reason: &'static str) -> Result<(), TextError> {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(reason))
        }
    }

    fn value(&mut self, out: &mut String, depth: usize) -> Result<(), TextError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.object(out, depth + 1),
            Some(b'[') => self.array(out, depth + 1),
            Some(b'"') => {
                let text = self.string()?;
                write_text(out, &text);
                Ok(())
            }
            Some(b't') => self.literal(out, "true"),
            Some(b'f') => self.literal(out, "false"),
            Some(b'n') => self.literal(out, "null"),
            Some(b'-' | b'0'..=b'9') => self.number(out),
            Some(_) => Err(self.error("expected value")),
            None => Err(self.error("EOF while parsing a value")),
        }
    }

    fn literal(&mut self, out: &mut String, word: &'static str) -> Result<(), TextError> {
        if self.text.get(self.pos..self.pos + word.len()) != Some(word) {
            return Err(self.error("expected value"));
        }
        self.pos += word.len();
        out.push_str(word);
        Ok(())
    }

    fn enter(&self, depth: usize) -> Result<(), TextError> {
        if depth >= DEPTH_LIMIT {
            return Err(self.error("recursion limit exceeded"));
        }
        Ok(())
    }

    fn array(&mut self, out: &mut String, depth: usize) -> Result<(), TextError> {
        self.enter(depth)?;
        self.pos += 1;
        out.push('[');
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.pos += 1;
            out.push(']');
            return Ok(());
        }
        loop {
            self.value(out, depth)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    out.push(',');
                }
                Some(b']') => {
                    self.pos += 1;
                    out.push(']');
                    return Ok(());
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    /// Members are written into `out` as they come (`"key":value`, comma separated); when their
    /// keys are not already in JCS order (UTF-16 code units) they are put in it in place. A key
    /// given twice keeps its last value, as a parsed map would. The outermost object leaves its
    /// members (key and value text) in `top_level`.
    fn object(&mut self, out: &mut String, depth: usize) -> Result<(), TextError> {
        self.enter(depth)?;
        self.pos += 1;
        let body_start = out.len() + 1;
        out.push('{');
        let mut members: Vec<Member<'a>> = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.skip_whitespace();
                if self.peek() != Some(b'"') {
                    return Err(self.error("key must be a string"));
                }
                let key = self.string()?;
                self.expect(b':', "expected `:`")?;
                if !members.is_empty() {
                    out.push(',');
                }
                let written_start = out.len();
                write_text(out, &key);
                out.push(':');
                self.skip_whitespace();
                let value_start = self.pos;
                self.value(out, depth)?;
                let value = self.text.get(value_start..self.pos).unwrap_or_default();
                members.push(Member { key, value, written: (written_start, out.len()) });
                self.skip_whitespace();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.error("expected `,` or `}`")),
                }
            }
        }
        let in_order = members.windows(2).all(|pair| match pair {
            [left, right] => utf16_order(&left.key, &right.key).is_lt(),
            _ => true,
        });
        if !in_order {
            let written = out.split_off(body_start);
            // Stable, so equal keys stay in text order and the last of each run is the one kept.
            sort::sort_by(&mut members, |left, right| utf16_order(&left.key, &right.key));
            let mut first = true;
            for (position, member) in members.iter().enumerate() {
                if members.get(position + 1).is_some_and(|next| next.key == member.key) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                let (start, end) = member.written;
                out.push_str(written.get(start.saturating_sub(body_start)..end.saturating_sub(body_start)).unwrap_or_default());
            }
        }
        out.push('}');
        if depth == 1 {
            self.top_level = Some(members.into_iter().map(|member| (member.key, member.value)).collect());
        }
        Ok(())
    }

    /// The string at `pos` (which is its opening quote), unescaped.
    fn string(&mut self) -> Result<Cow<'a, str>, TextError> {
        self.pos += 1;
        let start = self.pos;
        let bytes = self.text.as_bytes();
        loop {
            match bytes.get(self.pos) {
                Some(b'"') => {
                    let raw = self.text.get(start..self.pos).unwrap_or_default();
                    self.pos += 1;
                    return Ok(Cow::Borrowed(raw));
                }
                Some(b'\\') => break,
                Some(byte) if *byte < 0x20 => return Err(self.error("control character while parsing a string")),
                Some(_) => self.pos += 1,
                None => return Err(self.error("EOF while parsing a string")),
            }
        }
        let mut owned = String::from(self.text.get(start..self.pos).unwrap_or_default());
        loop {
            let run_start = self.pos;
            while let Some(byte) = bytes.get(self.pos) {
                if *byte == b'"' || *byte == b'\\' || *byte < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            owned.push_str(self.text.get(run_start..self.pos).unwrap_or_default());
            match bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Cow::Owned(owned));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = self.escape()?;
                    owned.push(escaped);
                }
                Some(_) => return Err(self.error("control character while parsing a string")),
                None => return Err(self.error("EOF while parsing a string")),
            }
        }
    }

    /// The character of the escape after a backslash; a `\u` high surrogate must be followed by
    /// a `\u` low one, and a lone low surrogate is refused.
    fn escape(&mut self) -> Result<char, TextError> {
        let letter = self.peek().ok_or_else(|| self.error("EOF while parsing a string"))?;
        self.pos += 1;
        let simple = match letter {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => return self.unicode_escape(),
            _ => return Err(self.error("invalid escape")),
        };
        Ok(simple)
    }

    fn unicode_escape(&mut self) -> Result<char, TextError> {
        let first = self.hex4()?;
        let code = match first {
            0xDC00..=0xDFFF => return Err(self.error("lone leading surrogate in hex escape")),
            0xD800..=0xDBFF => {
                if self.text.get(self.pos..self.pos + 2) != Some("\\u") {
                    return Err(self.error("unexpected end of hex escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("lone leading surrogate in hex escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            other => other,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid unicode code point"))
    }

    fn hex4(&mut self) -> Result<u32, TextError> {
        let digits = self.text.get(self.pos..self.pos + 4).ok_or_else(|| self.error("EOF while parsing a string"))?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.error("invalid escape"));
        }
        let value = u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid escape"))?;
        self.pos += 4;
        Ok(value)
    }

    /// `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`, written as ECMAScript prints the double
    /// it denotes (the nearest one: integers beyond 2^53 round too, as they do in a `Value`).
    fn number(&mut self, out: &mut String) -> Result<(), TextError> {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        if bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        match bytes.get(self.pos) {
            Some(b'0') => {
                self.pos += 1;
                if bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
                    return Err(self.error("invalid number"));
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        let integer_end = self.pos;
        if bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        if matches!(bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        let token = self.text.get(start..self.pos).unwrap_or_default();
        let digits = token.trim_start_matches('-').len();
        if integer_end == self.pos && digits <= PLAIN_INTEGER_DIGITS {
            // An exact integer below 2^53: ECMAScript prints it as written, but for "-0".
            out.push_str(if token == "-0" { "0" } else { token });
            return Ok(());
        }
        match token.parse::<f64>() {
            Ok(double) if double.is_finite() => {
                out.push_str(&es_number_string(double));
                Ok(())
            }
            _ => Err(TextError { reason: "number out of range", offset: start }),
        }
    }

    fn digits(&mut self) {
        while self.text.as_bytes().get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
    }
}

/// A string as JCS writes it. One read without escapes holds no quote, backslash or control
/// character, so it is written as it stood in the text.
#[allow(clippy::ptr_arg)] // which variant it is, borrowed (no escapes) or owned, is what matters here
fn write_text(out: &mut String, text: &Cow<'_, str>) {
    match text {
        Cow::Borrowed(raw) => {
            out.push('"');
            out.push_str(raw);
            out.push('"');
        }
        Cow::Owned(unescaped) => write_string(out, unescaped),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_level_members_are_their_value_texts_and_the_last_duplicate_wins() {
        let read = read_text(br#" { "b" : [1, {"c":2}] , "a":"x\"y", "b": null } "#).unwrap();
        assert_eq!(read.canonical, r#"{"a":"x\"y","b":null}"#);
        assert!(read.is_object());
        assert_eq!(read.member("a"), Some(r#""x\"y""#));
        assert_eq!(read.member("b"), Some("null"));
        // Only the outermost object's members: a nested key is not one.
        assert_eq!(read.member("c"), None);
    }

    #[test]
    fn a_text_that_is_not_an_object_has_no_members() {
        let read = read_text(br#"[{"a":1}]"#).unwrap();
        assert!(!read.is_object());
        assert_eq!(read.member("a"), None);
    }

    #[test]
    fn errors_name_the_reason_and_the_byte() {
        let error = read_text(br#"{"a":tru}"#).err().unwrap();
        assert_eq!(error.to_string(), "expected value at byte 5");
    }
}
