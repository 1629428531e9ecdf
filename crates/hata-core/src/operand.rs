//! Parsing of condition operands and attribute values that the spec gives a special syntax:
//! timestamps (RFC 3339 with a required offset, or epoch milliseconds) and semantic versions.
//!
//! Shared by `validate` (a bad operand is a 422 at write time) and the evaluator (an attribute
//! that does not parse is the wrong type, so the condition is false).

use serde_json::Value;

/// A point in time as nanoseconds since the Unix epoch. Fractions finer than a nanosecond are
/// truncated.
pub type TimestampNanos = i128;

/// Reads a timestamp operand or attribute: an RFC 3339 `date-time` string with a required
/// offset (`T`/`Z` in either case, any number of fractional digits) or a JSON number of epoch
/// milliseconds. Anything else is `None` (the wrong type).
pub fn parse_timestamp(value: &Value) -> Option<TimestampNanos> {
    match value {
        Value::String(s) => parse_rfc3339(s),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(i as i128 * 1_000_000)
            } else {
                let f = n.as_f64()?;
                // Beyond ±2^100 ns is far outside any calendar; reject rather than saturate.
                let nanos = f * 1e6;
                (nanos.is_finite() && nanos.abs() < 1e30).then_some(nanos as i128)
            }
        }
        _ => None,
    }
}

/// Strict RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.fff…](Z|±HH:MM)`.
pub fn parse_rfc3339(s: &str) -> Option<TimestampNanos> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let year = digits(b, 0, 4)? as i64;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)? as i64;
    let minute = digits(b, 14, 2)? as i64;
    let second = digits(b, 17, 2)? as i64;
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    // RFC 3339 allows a leap second (60).
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i128 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale: i128 = 100_000_000;
        while let Some(&c) = b.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            nanos += (c - b'0') as i128 * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_secs: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() => {
            let oh = digits(b, i + 1, 2)? as i64;
            let om = digits(b, i + 4, 2)? as i64;
            if b[i + 3] != b':' || oh > 23 || om > 59 {
                return None;
            }
            let off = oh * 3600 + om * 60;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(secs as i128 * 1_000_000_000 + nanos)
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let slice = b.get(at..at + n)?;
    let mut v = 0u32;
    for &c in slice {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Reads a strict SemVer 2.0.0 string (no leading `v`). Compare with `cmp_precedence`, which
/// ignores build metadata as SemVer requires.
pub fn parse_semver(value: &Value) -> Option<semver::Version> {
    value.as_str().and_then(|s| semver::Version::parse(s).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3339_accepts_the_spec_forms() {
        let base = parse_rfc3339("2024-01-02T03:04:05Z").unwrap();
        assert_eq!(base, 1_704_164_645 * 1_000_000_000);
        assert_eq!(parse_rfc3339("2024-01-02t03:04:05z"), Some(base));
        assert_eq!(parse_rfc3339("2024-01-02T04:04:05+01:00"), Some(base));
        assert_eq!(parse_rfc3339("2024-01-02T02:34:05-00:30"), Some(base));
        assert_eq!(
            parse_rfc3339("2024-01-02T03:04:05.5Z"),
            Some(base + 500_000_000)
        );
        assert_eq!(
            parse_rfc3339("2024-01-02T03:04:05.123456789123Z"),
            Some(base + 123_456_789)
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-1_000_000_000));
        assert!(parse_rfc3339("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn rfc3339_rejects_everything_else() {
        for bad in [
            "2024-01-02",
            "2024-01-02T03:04:05",
            "2024-01-02 03:04:05Z",
            "2024-13-02T03:04:05Z",
            "2023-02-29T00:00:00Z",
            "2024-01-02T24:00:00Z",
            "2024-01-02T03:04:05.Z",
            "2024-01-02T03:04:05+0100",
            "2024-01-02T03:04:05+01:00x",
            "２０２４-01-02T03:04:05Z",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps_from_epoch_millis() {
        assert_eq!(parse_timestamp(&json!(1_000)), Some(1_000_000_000));
        assert_eq!(parse_timestamp(&json!(1.5)), Some(1_500_000));
        assert_eq!(parse_timestamp(&json!(true)), None);
        assert_eq!(parse_timestamp(&json!(null)), None);
    }

    #[test]
    fn semver_is_strict() {
        assert!(parse_semver(&json!("1.2.3-beta.1+build.5")).is_some());
        assert!(parse_semver(&json!("v1.2.3")).is_none());
        assert!(parse_semver(&json!("1.2")).is_none());
        assert!(parse_semver(&json!(1)).is_none());
    }
}
