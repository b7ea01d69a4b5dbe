//! Property tests of the header map Envoy hands over (`core::header_map`): whatever the host
//! encodes reads back pair for pair and name for name, and bytes that are not a whole map are
//! refused, never read past and never a panic. The model is a list of pairs searched front to back.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use miroir_filter::core::header_map::{encode, HeaderMap};
use proptest::prelude::*;

fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    // Few distinct names, so repeated names (which the first of wins) and absent ones both occur.
    let name = prop::sample::select(vec![":path", ":method", "authorization", "x-a", "x-b", ""]).prop_map(String::from);
    prop::collection::vec((name, ".{0,12}"), 0..10)
}

proptest! {
    #![proptest_config(common::config(512))]

    #[test]
    fn a_map_reads_back_as_encoded(headers in pairs(), wanted in "(:path|:method|authorization|x-a|x-b|x-c|)") {
        let map = HeaderMap::decode(encode(&headers)).expect("a whole map decodes");
        let read: Vec<(Vec<u8>, Vec<u8>)> = map.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        let expected: Vec<(Vec<u8>, Vec<u8>)> =
            headers.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())).collect();
        prop_assert_eq!(read, expected);
        let first = headers.iter().find(|(n, _)| *n == wanted).map(|(_, v)| v.as_bytes());
        prop_assert_eq!(map.get(wanted.as_bytes()), first);
    }

    #[test]
    fn any_bytes_decode_to_a_map_within_them_or_to_nothing(raw in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Some(map) = HeaderMap::decode(raw.clone()) {
            let within: usize = map.iter().map(|(n, v)| n.len() + v.len()).sum();
            prop_assert!(within <= raw.len());
        }
    }

    #[test]
    fn a_cut_map_is_refused(headers in pairs().prop_filter("some bytes to cut", |h| !h.is_empty())) {
        let raw = encode(&headers);
        // Without its last value's closing NUL a map still holds every byte its lengths name.
        for cut in 0..raw.len() - 1 {
            prop_assert!(HeaderMap::decode(raw[..cut].to_vec()).is_none(), "cut at {}", cut);
        }
    }
}
