//! Value rewrites the engine applies on write or read (reference §4): stop-word normalization,
//! disableOnWords folding, locale canonicalization, secret masking and f32 rounding.

use serde_json::{Number, Value};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

/// charabia's non-lossy normalization as used for `stopWords`: NFKD, then only å/Å/ä/Ä/ö/Ö are
/// recomposed (swedish-recomposition), control characters other than whitespace removed, Persian
/// digits mapped to ASCII, Arabic yeh/kaf to their Persian forms, ZWNJ removed. No case folding.
pub fn stop_word(word: &str) -> String {
    let decomposed: Vec<char> = word.nfkd().collect();
    let mut out = String::with_capacity(word.len());
    let mut i = 0;
    while i < decomposed.len() {
        let c = decomposed[i];
        let next = decomposed.get(i + 1).copied();
        let recomposed = match (c, next) {
            ('a', Some('\u{030A}')) => Some('å'),
            ('A', Some('\u{030A}')) => Some('Å'),
            ('a', Some('\u{0308}')) => Some('ä'),
            ('A', Some('\u{0308}')) => Some('Ä'),
            ('o', Some('\u{0308}')) => Some('ö'),
            ('O', Some('\u{0308}')) => Some('Ö'),
            _ => None,
        };
        if let Some(r) = recomposed {
            out.push(r);
            i += 2;
            continue;
        }
        i += 1;
        if c.is_control() && !c.is_whitespace() {
            continue;
        }
        match c {
            '\u{06F0}'..='\u{06F9}' => out.push(char::from(b'0' + (c as u32 - 0x06F0) as u8)),
            '\u{064A}' => out.push('\u{06CC}'),
            '\u{0643}' => out.push('\u{06A9}'),
            '\u{200C}' => {}
            _ => out.push(c),
        }
    }
    out
}

/// The lossy tokenizer normalization used for `typoTolerance.disableOnWords`: lowercase and remove
/// diacritics (compatibility decomposition, combining marks dropped). Latin-script behaviour only;
/// reference §4.1 marks non-Latin output as unconfirmed.
pub fn disable_on_word(word: &str) -> String {
    word.nfkd().filter(|c| !is_combining_mark(*c)).collect::<String>().to_lowercase()
}

/// (ISO-639-1, ISO-639-3) pairs accepted as locales; `cmn` is accepted on its own.
const LOCALES: &[(&str, &str)] = &[
    ("af", "afr"),
    ("ak", "aka"),
    ("am", "amh"),
    ("ar", "ara"),
    ("az", "aze"),
    ("be", "bel"),
    ("bn", "ben"),
    ("bg", "bul"),
    ("ca", "cat"),
    ("cs", "ces"),
    ("da", "dan"),
    ("de", "deu"),
    ("el", "ell"),
    ("en", "eng"),
    ("eo", "epo"),
    ("et", "est"),
    ("fi", "fin"),
    ("fr", "fra"),
    ("gu", "guj"),
    ("he", "heb"),
    ("hi", "hin"),
    ("hr", "hrv"),
    ("hu", "hun"),
    ("hy", "hye"),
    ("id", "ind"),
    ("it", "ita"),
    ("jv", "jav"),
    ("ja", "jpn"),
    ("kn", "kan"),
    ("ka", "kat"),
    ("km", "khm"),
    ("ko", "kor"),
    ("la", "lat"),
    ("lv", "lav"),
    ("lt", "lit"),
    ("ml", "mal"),
    ("mr", "mar"),
    ("mk", "mkd"),
    ("my", "mya"),
    ("ne", "nep"),
    ("nl", "nld"),
    ("nb", "nob"),
    ("or", "ori"),
    ("pa", "pan"),
    ("fa", "pes"),
    ("pl", "pol"),
    ("pt", "por"),
    ("ro", "ron"),
    ("ru", "rus"),
    ("si", "sin"),
    ("sk", "slk"),
    ("sl", "slv"),
    ("sn", "sna"),
    ("es", "spa"),
    ("sr", "srp"),
    ("sv", "swe"),
    ("ta", "tam"),
    ("te", "tel"),
    ("tl", "tgl"),
    ("th", "tha"),
    ("tk", "tuk"),
    ("tr", "tur"),
    ("uk", "ukr"),
    ("ur", "urd"),
    ("uz", "uzb"),
    ("vi", "vie"),
    ("yi", "yid"),
    ("zh", "zho"),
    ("zu", "zul"),
    ("cy", "cym"),
];

/// The ISO-639-3 code GET shows for an accepted locale, or None if the locale is unsupported.
pub fn locale_iso3(code: &str) -> Option<&'static str> {
    if code == "cmn" {
        return Some("cmn");
    }
    LOCALES.iter().find(|(two, three)| *two == code || *three == code).map(|(_, three)| *three)
}

/// "Unsupported locale" message listing every accepted code, shortest first then alphabetical.
pub fn unsupported_locale_message(code: &str) -> String {
    let mut all: Vec<&str> = LOCALES.iter().flat_map(|(a, b)| [*a, *b]).collect();
    all.push("cmn");
    all.sort_by(|l, r| l.len().cmp(&r.len()).then(l.cmp(r)));
    format!("Unsupported locale `{code}`, expected one of {}", all.join(", "))
}

/// Masks a secret like Meilisearch's `hide_secret` (reference §4.2): the kept prefix depends on
/// the length in bytes, and the cut moves forward to the next char boundary.
pub fn mask_secret(secret: &str) -> String {
    let len = secret.len();
    let (keep, stars) = match len {
        0..=9 => return "XXX...".to_string(),
        10..=19 => (2, "XXXX..."),
        20..=29 => (3, "XXXXX..."),
        _ => (5, "XXXXXX..."),
    };
    let mut cut = keep;
    while !secret.is_char_boundary(cut) {
        cut += 1;
    }
    format!("{}{}", &secret[..cut], stars)
}

/// A number stored as f32 by the engine, as serde_json prints it back: shortest f32 digits,
/// always with a fraction (`1` → `1.0`, `0.123456789` → `0.12345679`).
pub fn f32_value(x: f64) -> Value {
    let rounded = x as f32;
    let shortest: f64 = format!("{rounded}").parse().unwrap_or(rounded as f64);
    Number::from_f64(shortest).map(Value::Number).unwrap_or(Value::Null)
}

/// A number stored as f64: integers come back with a fraction (`1` → `1.0`).
pub fn f64_value(x: f64) -> Value {
    Number::from_f64(x).map(Value::Number).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_follow_reference_examples() {
        assert_eq!(stop_word("café"), "cafe\u{0301}");
        assert_eq!(stop_word("über"), "u\u{0308}ber");
        assert_eq!(stop_word("Ähnlich"), "Ähnlich");
        assert_eq!(stop_word("A\u{0308}hnlich"), "Ähnlich");
        assert_eq!(stop_word("ﬁle"), "file");
        assert_eq!(stop_word("Ｗｉｄｅ"), "Wide");
        assert_eq!(stop_word("The"), "The");
        assert_eq!(stop_word("år"), "år");
        assert_eq!(stop_word("ö"), "ö");
        assert_eq!(stop_word("a\u{0007}b"), "ab");
        assert_eq!(stop_word("a b"), "a b");
        assert_eq!(stop_word("۱۲"), "12");
        assert_eq!(stop_word("\u{064A}\u{0643}\u{200C}"), "\u{06CC}\u{06A9}");
    }

    #[test]
    fn disable_on_words_are_folded() {
        assert_eq!(disable_on_word("iPhone"), "iphone");
        assert_eq!(disable_on_word("Café"), "cafe");
        assert_eq!(disable_on_word("New York"), "new york");
        assert_eq!(disable_on_word("ÜBER"), "uber");
    }

    #[test]
    fn locales_map_to_iso_639_3() {
        for (two, three) in [
            ("en", "eng"),
            ("fr", "fra"),
            ("de", "deu"),
            ("es", "spa"),
            ("it", "ita"),
            ("ja", "jpn"),
            ("zh", "zho"),
            ("fa", "pes"),
            ("pt", "por"),
            ("ru", "rus"),
            ("ko", "kor"),
            ("ar", "ara"),
        ] {
            assert_eq!(locale_iso3(two), Some(three));
            assert_eq!(locale_iso3(three), Some(three));
        }
        assert_eq!(locale_iso3("cmn"), Some("cmn"));
        assert_eq!(locale_iso3("xx"), None);
        assert_eq!(locale_iso3("EN"), None);
        assert!(unsupported_locale_message("xx").starts_with("Unsupported locale `xx`, expected one of af, ak,"));
    }

    #[test]
    fn secrets_are_masked_by_byte_length() {
        assert_eq!(mask_secret(""), "XXX...");
        assert_eq!(mask_secret("123456789"), "XXX...");
        assert_eq!(mask_secret("1234567890"), "12XXXX...");
        assert_eq!(mask_secret("1234567890123456789"), "12XXXX...");
        assert_eq!(mask_secret("12345678901234567890"), "123XXXXX...");
        assert_eq!(mask_secret("12345678901234567890123456789"), "123XXXXX...");
        assert_eq!(mask_secret("123456789012345678901234567890"), "12345XXXXXX...");
        let key = "My super secret value you will never guess"; // 42 bytes, reference §4.2
        assert_eq!(key.len(), 42);
        assert_eq!(mask_secret(key), "My suXXXXXX...");
        // ひ and ら are 3 bytes each: cut at 5 moves to 6.
        assert_eq!(mask_secret("ひらがな6789012345678901234567890"), "ひらXXXXXX...");
    }

    #[test]
    fn floats_round_like_f32_and_keep_a_fraction() {
        assert_eq!(f32_value(0.123456789).to_string(), "0.12345679");
        assert_eq!(f32_value(1.0).to_string(), "1.0");
        assert_eq!(f32_value(0.5).to_string(), "0.5");
        assert_eq!(f64_value(1.0).to_string(), "1.0");
    }
}
