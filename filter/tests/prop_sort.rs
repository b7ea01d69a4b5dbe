//! Property test of the module's own stable sort (`core::sort`): for any list, including long
//! ones that take the merge path, it orders exactly as the standard library's stable sort does,
//! equal keys in the order they came.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use miroir_filter::core::sort;
use proptest::prelude::*;

proptest! {
    #![proptest_config(common::config(512))]

    #[test]
    fn orders_as_the_standard_stable_sort(keys in prop::collection::vec(0u8..12, 0..200)) {
        // Few distinct keys, so runs of equal keys are common; the position tags each item.
        let mut items: Vec<(u8, usize)> = keys.into_iter().enumerate().map(|(at, k)| (k, at)).collect();
        let mut expected = items.clone();
        expected.sort_by_key(|item| item.0);
        sort::sort_by(&mut items, |a, b| a.0.cmp(&b.0));
        prop_assert_eq!(items, expected);
    }
}
