//! Timestamps in the forms Meilisearch uses: RFC 3339 UTC and ISO-8601 durations.

/// `1700000000123` → `"2023-11-14T22:13:20.123Z"`. Civil-from-days conversion (proleptic
/// Gregorian), so no date crate is needed inside the module.
pub fn rfc3339_from_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let millis = ms % 1000;
    let days = (secs / 86_400) as i64;
    let sod = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Duration as Meilisearch prints it: `PT0.123S`, `PT12.5S`, `PT75S`.
pub fn iso8601_duration_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let millis = ms % 1000;
    if millis == 0 {
        format!("PT{secs}S")
    } else {
        let frac = format!("{millis:03}");
        format!("PT{secs}.{}S", frac.trim_end_matches('0'))
    }
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        for (ms, want) in [
            (0, "1970-01-01T00:00:00.000Z"),
            (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (1_798_761_599_999, "2026-12-31T23:59:59.999Z"),
        ] {
            assert_eq!(rfc3339_from_ms(ms), want);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(iso8601_duration_ms(123), "PT0.123S");
        assert_eq!(iso8601_duration_ms(12_500), "PT12.5S");
        assert_eq!(iso8601_duration_ms(75_000), "PT75S");
    }
}
