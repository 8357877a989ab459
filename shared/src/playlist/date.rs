//! `EXT-X-PROGRAM-DATE-TIME` values: RFC 3339 date-times to and from `SystemTime`.
//!
//! Written here rather than pulled from chrono because we need two small functions:
//! render UTC with milliseconds (`2026-11-25T08:43:41.123Z`), and read what other
//! servers emit (any fraction length, `Z` or a numeric offset). The calendar maths is
//! Howard Hinnant's `days_from_civil` / `civil_from_days`, exact for the proleptic
//! Gregorian calendar. Parsed times are limited to years 0000-9999 so that anything we
//! read renders back in the same four-digit form.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECS_PER_DAY: i64 = 86_400;
const MS_PER_DAY: i128 = 86_400_000;

/// Days from 1970-01-01 to the given proleptic Gregorian date (negative before).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `days` after 1970-01-01: (year, month 1-12, day 1-31).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Formats `time` as RFC 3339 UTC with milliseconds, truncating finer precision.
pub(crate) fn format_rfc3339_millis(time: SystemTime) -> String {
    // Milliseconds since the epoch, floored, so pre-1970 times also format correctly.
    let millis: i128 = match time.duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_millis() as i128,
        Err(before) => {
            let nanos = before.duration().as_nanos() as i128;
            -((nanos + 999_999) / 1_000_000)
        }
    };
    let days = millis.div_euclid(MS_PER_DAY) as i64;
    let in_day = millis.rem_euclid(MS_PER_DAY) as i64;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// Reads exactly `N` ASCII digits at the front of `text`.
fn digits<const N: usize>(text: &str) -> Option<(u32, &str)> {
    let head = text.get(..N)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, text.get(N..)?))
}

fn expect(text: &str, separator: char) -> Option<&str> {
    text.strip_prefix(separator)
}

/// Parses an RFC 3339 date-time such as `2019-02-14T02:13:36.106Z` or
/// `2019-02-14T03:13:36+01:00`. Returns `None` for anything else.
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let (year, rest) = digits::<4>(text)?;
    let (month, rest) = digits::<2>(expect(rest, '-')?)?;
    let (day, rest) = digits::<2>(expect(rest, '-')?)?;
    let rest = rest.strip_prefix(['T', 't'])?;
    let (hour, rest) = digits::<2>(rest)?;
    let (minute, rest) = digits::<2>(expect(rest, ':')?)?;
    let (second, mut rest) = digits::<2>(expect(rest, ':')?)?;
    let year = i64::from(year);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        // Keep nanosecond precision; ignore any further digits.
        let mut scale = 100_000_000;
        for b in fraction.bytes().take(len.min(9)) {
            nanos += u32::from(b - b'0') * scale;
            scale /= 10;
        }
        rest = fraction.get(len..)?;
    }
    let offset_secs: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let (oh, tail) = digits::<2>(rest.get(1..)?)?;
            let tail = tail.strip_prefix(':').unwrap_or(tail);
            let (om, tail) = digits::<2>(tail)?;
            if !tail.is_empty() || oh > 23 || om > 59 {
                return None;
            }
            sign * i64::from(oh * 3600 + om * 60)
        }
    };
    let secs = days_from_civil(year, month, day) * SECS_PER_DAY
        + i64::from(hour * 3600 + minute * 60 + second)
        - offset_secs;
    let min = days_from_civil(0, 1, 1) * SECS_PER_DAY;
    let max = days_from_civil(10_000, 1, 1) * SECS_PER_DAY;
    if secs < min || secs >= max {
        return None;
    }
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs as u64, nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(u64::from(nanos)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn civil_days_round_trip_across_eras() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        for days in (-800_000..3_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert!(d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn formats_utc_with_millis() {
        assert_eq!(
            format_rfc3339_millis(at(1_795_596_221, 123)),
            "2026-11-25T08:43:41.123Z"
        );
        assert_eq!(
            format_rfc3339_millis(UNIX_EPOCH),
            "1970-01-01T00:00:00.000Z"
        );
        let before = UNIX_EPOCH - Duration::from_millis(1);
        assert_eq!(format_rfc3339_millis(before), "1969-12-31T23:59:59.999Z");
        // Truncates below a millisecond.
        let fine = at(0, 5) + Duration::from_nanos(999_999);
        assert_eq!(format_rfc3339_millis(fine), "1970-01-01T00:00:00.005Z");
    }

    #[test]
    fn parses_what_servers_emit() -> TestResult {
        let t = at(1_550_110_416, 106);
        assert_eq!(parse_rfc3339("2019-02-14T02:13:36.106Z"), Some(t));
        assert_eq!(parse_rfc3339("2019-02-14T03:13:36.106+01:00"), Some(t));
        assert_eq!(parse_rfc3339("2019-02-13T21:13:36.106-0500"), Some(t));
        assert_eq!(parse_rfc3339("2019-02-14t02:13:36.106000z"), Some(t));
        assert_eq!(
            parse_rfc3339("2019-02-14T02:13:36Z"),
            Some(at(1_550_110_416, 0))
        );
        assert_eq!(
            parse_rfc3339("1969-12-31T23:59:59.999Z"),
            Some(UNIX_EPOCH - Duration::from_millis(1))
        );
        let t = parse_rfc3339("2026-11-25T08:43:41.123Z").ok_or("no parse")?;
        assert_eq!(format_rfc3339_millis(t), "2026-11-25T08:43:41.123Z");
        Ok(())
    }

    #[test]
    fn rejects_invalid_dates() {
        for bad in [
            "",
            "2019-02-14",
            "2019-02-29T00:00:00Z",
            "2019-13-01T00:00:00Z",
            "2019-02-14T24:00:00Z",
            "2019-02-14T02:13:60Z",
            "2019-02-14T02:13:36",
            "2019-02-14T02:13:36.Z",
            "2019-02-14T02:13:36+1:00",
            "2019-02-14T02:13:36Zjunk",
            "0000-01-01T00:00:00+01:00",
            "2019-02-14T02:13:3é",
            "+019-02-14T02:13:36Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
        assert!(parse_rfc3339("2000-02-29T00:00:00Z").is_some());
        assert!(parse_rfc3339("9999-12-31T23:59:59.999Z").is_some());
    }
}
