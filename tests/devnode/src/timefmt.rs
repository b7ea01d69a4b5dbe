//! Timestamps and durations in the formats Meilisearch prints: RFC 3339 UTC with the fraction's
//! trailing zeros trimmed (the `time` crate's Rfc3339), and ISO-8601 durations like `PT0.012S`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    let nanos = since.subsec_nanos();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// ISO-8601 duration as Meilisearch's `serialize_duration`: `P[nD]T<s>[.fff|.ffffff|.fffffffff]S`.
pub fn iso_duration(d: Duration) -> String {
    let days = d.as_secs() / 86_400;
    let secs = d.as_secs() % 86_400;
    let nanos = d.subsec_nanos();
    let mut out = String::from("P");
    if days != 0 {
        out.push_str(&format!("{days}D"));
    }
    if secs != 0 || nanos != 0 || days == 0 {
        if nanos == 0 {
            out.push_str(&format!("T{secs}S"));
        } else if nanos.is_multiple_of(1_000_000) {
            out.push_str(&format!("T{secs}.{:03}S", nanos / 1_000_000));
        } else if nanos.is_multiple_of(1_000) {
            out.push_str(&format!("T{secs}.{:06}S", nanos / 1_000));
        } else {
            out.push_str(&format!("T{secs}.{nanos:09}S"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_utc_with_trimmed_fraction() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_400_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.1234Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn durations_like_meilisearch() {
        assert_eq!(iso_duration(Duration::from_millis(12)), "PT0.012S");
        assert_eq!(iso_duration(Duration::from_micros(1_500_001)), "PT1.500001S");
        assert_eq!(iso_duration(Duration::from_nanos(5)), "PT0.000000005S");
        assert_eq!(iso_duration(Duration::ZERO), "PT0S");
        assert_eq!(iso_duration(Duration::from_secs(86_400)), "P1D");
        assert_eq!(iso_duration(Duration::from_secs(90_000)), "P1DT3600S");
    }
}
