//! Headers the filter stamps on responses under `/indexes/{uid}`: the index's committed settings
//! version, and a warning while a job on it is under way (or it is frozen).

use super::host::Host;
use super::state::index_store::read_hot;
use super::state::records::HotRecord;

pub const HEADER_VERSION: &str = "x-miroir-settings-version";
pub const HEADER_INCONSISTENT: &str = "x-miroir-settings-inconsistent";

/// The headers for an index in state `hot`, each handed to `stamp` without allocating: a search
/// through the filter is stamped on every answer, and the filter's share of a search's cost is
/// mostly such small work.
pub fn stamp_hot(hot: HotRecord, mut stamp: impl FnMut(&'static str, &str)) {
    if hot.version > 0 {
        let mut digits = [0u8; 20];
        stamp(HEADER_VERSION, decimal(hot.version, &mut digits));
    }
    if hot.inconsistent {
        stamp(HEADER_INCONSISTENT, "true");
    }
}

/// The headers for an index in state `hot`, as owned pairs (for a reply the filter builds).
pub fn for_hot(hot: HotRecord) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    stamp_hot(hot, |name, value| out.push((name, value.to_string())));
    out
}

/// `n` in decimal, written at the end of `digits` (20 digits hold any u64).
fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &str {
    let mut start = digits.len();
    for slot in digits.iter_mut().rev() {
        // `n % 10` is a single digit, so the cast never truncates.
        *slot = b'0' + (n % 10) as u8;
        start -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits.get(start..).and_then(|written| std::str::from_utf8(written).ok()).unwrap_or("0")
}

/// The headers for `index` as it stands now.
pub fn response_headers(host: &dyn Host, index: &str) -> Vec<(&'static str, String)> {
    for_hot(read_hot(host, index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_the_version_in_decimal_and_the_warning() {
        for (version, written) in [(1u64, "1"), (10, "10"), (907, "907"), (u64::MAX, "18446744073709551615")] {
            let hot = HotRecord { version, inconsistent: true, ..HotRecord::default() };
            assert_eq!(for_hot(hot), [(HEADER_VERSION, written.to_string()), (HEADER_INCONSISTENT, "true".to_string())]);
        }
        assert!(for_hot(HotRecord::default()).is_empty(), "version 0: nothing known, nothing stamped");
    }
}
