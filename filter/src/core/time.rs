//! Timestamps in the forms Meilisearch uses: RFC 3339 UTC and ISO-8601 durations, and the
//! RFC 3339 date-times and bare dates clients filter tasks with.

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

/// Nanoseconds since the Unix epoch of an RFC 3339 date-time, accepted exactly when the `time`
/// crate's `Rfc3339` parser (what Meilisearch reads task date filters with) accepts it:
/// `YYYY-MM-DD`, any one separator byte (`T`, `t`, a space, ...), `hh:mm:ss`, an optional `.`
/// with one or more digits (nanoseconds: digits past the ninth are dropped), then `Z`/`z` or
/// `+hh:mm`/`-hh:mm` (hours up to 23). Second 60 is a leap second, read as the last nanosecond
/// of second 59, and only valid where one can occur: 23:59:60 UTC on the last day of a month.
pub fn parse_rfc3339_ns(text: &str) -> Option<i128> {
    let mut s = Cursor(text.as_bytes());
    let (year, month, day) = s.date()?;
    s.any_byte()?;
    let hour = s.digits(2)?;
    s.byte(b':')?;
    let minute = s.digits(2)?;
    s.byte(b':')?;
    let second = s.digits(2)?;
    let mut nanos: i64 = 0;
    if s.byte(b'.').is_some() {
        // At least one digit; each further one is worth a tenth of the one before.
        let mut weight: i64 = 100_000_000;
        nanos = weight * s.digits(1)?;
        while let Some(d) = s.digits(1) {
            weight /= 10;
            nanos += weight * d;
        }
    }
    let offset_s = if s.byte(b'Z').or_else(|| s.byte(b'z')).is_some() {
        0
    } else {
        let sign = if s.byte(b'+').is_some() {
            1
        } else {
            s.byte(b'-')?;
            -1
        };
        let hours = s.digits(2).filter(|h| *h <= 23)?;
        s.byte(b':')?;
        let minutes = s.digits(2).filter(|m| *m <= 59)?;
        sign * (hours * 3600 + minutes * 60)
    };
    if !s.0.is_empty() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let leap = second == 60;
    let (second, nanos) = if leap { (59, 999_999_999) } else { (second, nanos) };
    let utc_s =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    if leap {
        // Where the UTC instant falls: the stand-in must be 23:59:59 on a month's last day.
        let (y, m, d) = civil_from_days(utc_s.div_euclid(86_400));
        if utc_s.rem_euclid(86_400) != 86_399 || i64::from(d) != days_in_month(y, i64::from(m)) {
            return None;
        }
    }
    Some(i128::from(utc_s) * 1_000_000_000 + i128::from(nanos))
}

/// Nanoseconds since the Unix epoch of midnight UTC starting the date `YYYY-MM-DD` (the year may
/// carry a sign, as the `time` crate's `[year]` reads it), or None if it is not exactly a valid
/// date.
pub fn parse_date_ns(text: &str) -> Option<i128> {
    let mut s = Cursor(text.as_bytes());
    let sign = if s.byte(b'-').is_some() {
        -1
    } else {
        let _ = s.byte(b'+');
        1
    };
    let year = sign * s.digits(4)?;
    s.byte(b'-')?;
    let (month, day) = s.month_day(year)?;
    if !s.0.is_empty() {
        return None;
    }
    Some(i128::from(days_from_civil(year, month, day)) * 86_400 * 1_000_000_000)
}

/// A reader over the bytes of a timestamp: each step consumes what it recognises or fails.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn byte(&mut self, want: u8) -> Option<()> {
        let (&first, rest) = self.0.split_first()?;
        (first == want).then(|| self.0 = rest)
    }

    fn any_byte(&mut self) -> Option<()> {
        let (_, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(())
    }

    /// Exactly `n` ASCII digits, as a number.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let (head, rest) = self.0.split_at_checked(n)?;
        let mut value = 0;
        for &b in head {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(b - b'0');
        }
        self.0 = rest;
        Some(value)
    }

    /// `YYYY-MM-DD`, four unsigned year digits.
    fn date(&mut self) -> Option<(i64, i64, i64)> {
        let year = self.digits(4)?;
        self.byte(b'-')?;
        let (month, day) = self.month_day(year)?;
        Some((year, month, day))
    }

    /// `MM-DD`, a day that exists in that month of `year`.
    fn month_day(&mut self, year: i64) -> Option<(i64, i64)> {
        let month = self.digits(2).filter(|m| (1..=12).contains(m))?;
        self.byte(b'-')?;
        let day = self.digits(2).filter(|d| (1..=days_in_month(year, month)).contains(d))?;
        Some((month, day))
    }
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date: the inverse of `civil_from_days`.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    fn rfc3339_parses_what_the_time_crate_accepts() {
        let ns = |ms: i128| ms * 1_000_000;
        for (text, want) in [
            ("1970-01-01T00:00:00Z", 0),
            ("2023-11-14T22:13:20.123Z", ns(1_700_000_000_123)),
            ("2023-11-14t22:13:20.123z", ns(1_700_000_000_123)),
            ("2023-11-14 22:13:20.123Z", ns(1_700_000_000_123)),
            ("2023-11-14_22:13:20.1Z", ns(1_700_000_000_100)),
            ("2023-11-14T23:13:20.123+01:00", ns(1_700_000_000_123)),
            ("2023-11-14T21:43:20.123-00:30", ns(1_700_000_000_123)),
            ("2000-02-29T00:00:00Z", ns(951_782_400_000)),
            ("1969-12-31T23:59:59.999999999Z", -1),
            ("1970-01-01T00:00:00.0000000019Z", 1),
            ("1960-06-30T23:59:60Z", ns(-299_894_400_000) - 1),
            ("2016-12-31T23:59:60.5Z", ns(1_483_228_800_000) - 1),
            ("2017-01-01T00:59:60+01:00", ns(1_483_228_800_000) - 1),
        ] {
            assert_eq!(parse_rfc3339_ns(text), Some(want), "{text}");
        }
        for text in [
            "",
            "2023-11-14",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20Z ",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:60:00Z",
            "2023-02-29T00:00:00Z",
            "2023-13-01T00:00:00Z",
            "2023-00-01T00:00:00Z",
            "2023-11-00T00:00:00Z",
            "2023-11-14T22:13:20+24:00",
            "2023-11-14T22:13:20+01:60",
            "2023-11-14T22:13:20+0100",
            "2023-11-14T22:13:60Z",
            "2016-12-31T23:59:61Z",
            "+2023-11-14T22:13:20Z",
            "23-11-14T22:13:20Z",
            "2023-11-14T22:13:20éZ",
        ] {
            assert_eq!(parse_rfc3339_ns(text), None, "{text}");
        }
    }

    #[test]
    fn bare_dates() {
        let day = 86_400 * 1_000_000_000_i128;
        assert_eq!(parse_date_ns("1970-01-01"), Some(0));
        assert_eq!(parse_date_ns("2024-01-01"), Some(19_723 * day));
        assert_eq!(parse_date_ns("+2024-01-01"), Some(19_723 * day));
        assert_eq!(parse_date_ns("2024-02-29"), Some(19_782 * day));
        assert_eq!(parse_date_ns("0000-03-01"), Some(-719_468 * day));
        for text in ["2023-02-29", "2024-1-01", "2024-01-01T00:00:00Z", "20240101", "2024-01-01 "] {
            assert_eq!(parse_date_ns(text), None, "{text}");
        }
    }

    #[test]
    fn days_round_trip() {
        for days in [-800_000, -719_468, -1, 0, 1, 11_016, 19_723, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(iso8601_duration_ms(123), "PT0.123S");
        assert_eq!(iso8601_duration_ms(12_500), "PT12.5S");
        assert_eq!(iso8601_duration_ms(75_000), "PT75S");
    }
}
