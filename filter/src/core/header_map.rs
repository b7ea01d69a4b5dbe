//! The proxy-wasm header-map encoding, both ways: the pair count, each pair's name and value
//! lengths (u32, little-endian), then each name and value followed by a NUL byte. Envoy hands a
//! whole request's headers over in it in one host call; a local reply's headers go out in it.

use std::ops::Range;

/// Encode `headers` for the host.
pub fn encode(headers: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len(headers.len()));
    for (name, value) in headers {
        out.extend_from_slice(&len(name.len()));
        out.extend_from_slice(&len(value.len()));
    }
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

/// A map from the host, read where it lies: a search looks up four or five of its request
/// headers, and copying every name and value out first cost two allocations a header, about
/// twenty a search, for values never read. Where each name and value lies is found once, when
/// the map is decoded, so a lookup compares lengths before bytes and never reads the encoding
/// again (re-reading it was the VM's largest cost on a search).
#[derive(Debug)]
pub struct HeaderMap {
    raw: Vec<u8>,
    /// Each pair's name and value as ranges of `raw`, in order.
    pairs: Vec<(Range<usize>, Range<usize>)>,
}

/// The little-endian u32 at `at`, as a length.
fn word(bytes: &[u8], at: usize) -> Option<usize> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(b)).ok()
}

impl HeaderMap {
    /// The map in `raw`, when the bytes hold what their lengths say (never trusted, never a panic).
    pub fn decode(raw: Vec<u8>) -> Option<HeaderMap> {
        let count = word(&raw, 0)?;
        let mut data = count.checked_mul(8)?.checked_add(4)?;
        if data > raw.len() {
            return None; // before reserving room for `count` pairs
        }
        let mut pairs = Vec::with_capacity(count);
        for i in 0..count {
            let lengths = 4 + 8 * i; // within `data`, checked above
            let (name_len, value_len) = (word(&raw, lengths)?, word(&raw, lengths + 4)?);
            let name = data..data.checked_add(name_len)?;
            let value_at = name.end.checked_add(1)?; // after the name's NUL
            let value = value_at..value_at.checked_add(value_len)?;
            data = value.end.checked_add(1)?;
            if value.end > raw.len() {
                return None;
            }
            pairs.push((name, value));
        }
        Some(HeaderMap { raw, pairs })
    }

    /// Every pair, names and values as bytes, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.pairs.iter().map(|(name, value)| (self.bytes(name), self.bytes(value)))
    }

    /// The first value of header `name` (names as the host gives them: lower case).
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        let (_, value) = self.pairs.iter().find(|(n, _)| n.len() == name.len() && self.bytes(n) == name)?;
        Some(self.bytes(value))
    }

    /// Bytes of `raw` that `decode` found there (never out of bounds; empty if they were).
    fn bytes(&self, range: &Range<usize>) -> &[u8] {
        self.raw.get(range.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(raw: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        let map = HeaderMap::decode(raw.to_vec())?;
        Some(map.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect())
    }

    #[test]
    fn a_map_decodes_to_what_was_encoded() {
        let headers = vec![(":path".to_string(), "/indexes/m/search".to_string()), ("x-empty".to_string(), String::new())];
        let expected: Vec<(Vec<u8>, Vec<u8>)> = headers.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
        assert_eq!(decode(&encode(&headers)), Some(expected));
        assert_eq!(decode(&encode(&[])), Some(vec![]));
        let map = HeaderMap::decode(encode(&headers)).expect("decodes");
        assert_eq!(map.get(b":path"), Some(&b"/indexes/m/search"[..]));
        assert_eq!(map.get(b"x-empty"), Some(&b""[..]));
        assert_eq!(map.get(b"x-absent"), None);
    }

    #[test]
    fn values_are_bytes_and_lengths_are_never_trusted() {
        let mut raw = encode(&[("a".to_string(), "b".to_string())]);
        // A value byte >= 0x80 (a hostile client's header) is kept as it is.
        let at = raw.len() - 2;
        raw[at] = 0xff;
        assert_eq!(decode(&raw), Some(vec![(b"a".to_vec(), vec![0xff])]));
        for cut in 0..raw.len() - 1 {
            assert_eq!(decode(&raw[..cut]), None, "cut at {cut}");
        }
        let mut huge = raw.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge), None);
    }
}
