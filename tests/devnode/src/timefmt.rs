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

/// (year, month, day) → days since 1970-01-01 (inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A task-list date as Meilisearch takes one: `YYYY-MM-DD` (then `true` is returned with it) or
/// RFC 3339 with `Z` or an offset. None when not a date.
pub fn parse_date(s: &str) -> Option<(SystemTime, bool)> {
    let num =
        |t: &str| -> Option<i64> { (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok())? };
    let date = s.get(..10)?;
    let mut parts = date.split('-');
    let (y, mo, d) = (num(parts.next()?)?, num(parts.next()?)? as u32, num(parts.next()?)? as u32);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || date.as_bytes()[4] != b'-' {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    let rest = &s[10..];
    if rest.is_empty() {
        return Some((UNIX_EPOCH + Duration::from_secs(u64::try_from(days * 86_400).ok()?), true));
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    let (clock, offset_secs) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0i64)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (c, off) = rest.split_at(at);
        let (oh, om) = off[1..].split_once(':')?;
        let secs = num(oh)? * 3600 + num(om)? * 60;
        (c, if off.starts_with('-') { -secs } else { secs })
    };
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = hms.split(':');
    let (h, mi, sec) = (num(hms.next()?)?, num(hms.next()?)?, num(hms.next()?)?);
    if h > 23 || mi > 59 || sec > 60 || hms.next().is_some() {
        return None;
    }
    let nanos = if frac.is_empty() {
        0
    } else {
        num(frac)?;
        format!("{frac:0<9}").get(..9)?.parse::<u32>().ok()?
    };
    let total = days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs;
    Some((UNIX_EPOCH + Duration::new(u64::try_from(total).ok()?, nanos), false))
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
    fn dates_round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_400_000);
        assert_eq!(parse_date("2023-11-14T22:13:20.1234Z"), Some((t, false)));
        assert_eq!(parse_date("2023-11-14T23:13:20.1234+01:00"), Some((t, false)));
        assert_eq!(parse_date("2000-02-29"), Some((UNIX_EPOCH + Duration::from_secs(951_782_400), true)));
        assert_eq!(parse_date("2000-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
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
