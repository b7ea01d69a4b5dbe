//! The proxy-wasm header-map encoding, both ways: the pair count, each pair's name and value
//! lengths (u32, little-endian), then each name and value followed by a NUL byte. Envoy hands a
//! whole request's headers over in it in one host call; a local reply's headers go out in it.

/// Headers as the host holds them: names and values as bytes, in order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

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

/// Decode a map from the host: names and values as bytes, in order. None when the bytes do not
/// hold what their lengths say (never trusted, never a panic).
pub fn decode(bytes: &[u8]) -> Option<Pairs> {
    let word = |at: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(b)).ok()
    };
    let count = word(0)?;
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    if data > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    for i in 0..count {
        let lengths = 4 + 8 * i; // within `data`, checked above
        let (name_len, value_len) = (word(lengths)?, word(lengths + 4)?);
        let name = bytes.get(data..data.checked_add(name_len)?)?;
        data = data.checked_add(name_len)?.checked_add(1)?;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data = data.checked_add(value_len)?.checked_add(1)?;
        pairs.push((name.to_vec(), value.to_vec()));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_decodes_to_what_was_encoded() {
        let headers = vec![(":path".to_string(), "/indexes/m/search".to_string()), ("x-empty".to_string(), String::new())];
        let decoded = decode(&encode(&headers)).expect("decodes");
        let expected: Vec<(Vec<u8>, Vec<u8>)> = headers.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
        assert_eq!(decoded, expected);
        assert_eq!(decode(&encode(&[])), Some(vec![]));
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
