//! The audit chain's timestamps (`at` of entries and checkpoints): RFC 3339 in UTC with
//! exactly six fractional digits and `Z`, e.g. `2026-12-06T11:01:06.123456Z`.
//!
//! One spelling per instant (fixed width, microseconds, `Z`), so timestamps sort as text and
//! the same instant always hashes the same. Finer precision is truncated, not rounded.

use time::{OffsetDateTime, UtcOffset};

/// An instant that has no `at` spelling: a year before 0000 or after 9999.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp {0} is outside the years 0000-9999 that RFC 3339 can write")]
pub struct AtError(pub OffsetDateTime);

/// Writes `instant` in UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn format_at(instant: OffsetDateTime) -> Result<String, AtError> {
    let utc = instant.to_offset(UtcOffset::UTC);
    if !(0..=9999).contains(&utc.year()) {
        return Err(AtError(instant));
    }
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.microsecond()
    ))
}

/// Whether `text` has the shape `format_at` writes (digits and separators in place; field
/// ranges are not checked: the verifier reads timestamps, it does not trust them).
pub fn is_at(text: &str) -> bool {
    const SHAPE: &[u8; 27] = b"dddd-dd-ddTdd:dd:dd.ddddddZ";
    let bytes = text.as_bytes();
    bytes.len() == SHAPE.len()
        && bytes.iter().zip(SHAPE).all(|(&b, &s)| match s {
            b'd' => b.is_ascii_digit(),
            _ => b == s,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn six_digits_in_utc() {
        let t = datetime!(2026-12-06 12:01:06.123456789 +01:00);
        assert_eq!(format_at(t).as_deref(), Ok("2026-12-06T11:01:06.123456Z"));
        let t = datetime!(2026-01-02 03:04:05 UTC);
        assert_eq!(format_at(t).as_deref(), Ok("2026-01-02T03:04:05.000000Z"));
    }

    #[test]
    fn years_beyond_rfc3339_are_refused() {
        let t = datetime!(-0001-12-31 23:59 UTC);
        assert!(format_at(t).is_err());
    }

    #[test]
    fn shape() {
        assert!(is_at("2026-12-06T11:01:06.123456Z"));
        assert!(!is_at("2026-12-06T11:01:06.12345Z"));
        assert!(!is_at("2026-12-06T11:01:06.123456+00:00"));
        assert!(!is_at("2026-12-06 11:01:06.123456Z"));
        assert!(!is_at("2026-12-06T11:01:06.1234567"));
    }
}
