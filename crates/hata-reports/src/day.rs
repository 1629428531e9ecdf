//! The UTC day a daily report covers, and the text bounds its queries compare with.
//!
//! Stored times are RFC 3339 UTC text of several widths (hours `…T14:00:00Z`, changes
//! `…T14:03:07.123456Z`). A bound without its zone (`2026-11-23T00:00:00`) is a prefix of
//! every time of that second, so `bound <= t` holds for each of them whatever its width:
//! one form of bound serves every table.

use time::{Date, Duration, OffsetDateTime, UtcOffset};

use crate::{ReportError, ReportResult};

/// One UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Day(Date);

const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

impl Day {
    /// `YYYY-MM-DD`; `field` names the parameter in the error.
    pub fn parse(field: &'static str, text: &str) -> ReportResult<Day> {
        Date::parse(text, FORMAT)
            .map(Day)
            .map_err(|_| ReportError::Invalid {
                field,
                message: "must be a date as YYYY-MM-DD, e.g. 2026-11-23".into(),
            })
    }

    /// The day of `at` in UTC.
    pub fn of(at: OffsetDateTime) -> Day {
        Day(at.to_offset(UtcOffset::UTC).date())
    }

    /// The day before the one of `now`: what a morning's report covers.
    pub fn yesterday(now: OffsetDateTime) -> Day {
        Day::of(now).minus(1)
    }

    pub fn minus(self, days: i64) -> Day {
        Day(self.0.saturating_sub(Duration::days(days)))
    }

    pub fn plus(self, days: i64) -> Day {
        Day(self.0.saturating_add(Duration::days(days)))
    }

    /// `2026-11-23T00:00:00`: the lower bound of this day's times (see the module doc).
    pub fn start_bound(self) -> String {
        format!("{self}T00:00:00")
    }

    /// The day's first instant.
    pub fn start(self) -> OffsetDateTime {
        self.0.midnight().assume_utc()
    }
}

impl std::fmt::Display for Day {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0.format(FORMAT).map_err(|_| std::fmt::Error)?;
        f.write_str(&text)
    }
}

/// `at` as an hour bucket names it: `2026-11-23T14:00:00Z` for any time in that hour.
pub fn hour_of(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!("{}T{:02}:00:00Z", Day(at.date()), at.hour())
}

/// `at` as the store writes times, to the second (`2026-11-23T14:03:07Z`).
pub fn second_of(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        Day(at.date()),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_and_bound_every_width_of_time() {
        let d = Day::parse("date", "2026-11-23").unwrap();
        assert_eq!(d.to_string(), "2026-11-23");
        assert_eq!(d.plus(8).to_string(), "2026-12-01");
        let (from, to) = (d.start_bound(), d.plus(1).start_bound());
        for inside in [
            "2026-11-23T00:00:00Z",
            "2026-11-23T00:00:00.000000Z",
            "2026-11-23T23:59:59.999Z",
        ] {
            assert!(from.as_str() <= inside && inside < to.as_str(), "{inside}");
        }
        for outside in [
            "2026-11-22T23:59:59.999999Z",
            "2026-11-24T00:00:00Z",
            "2026-11-24T00:00:00.000Z",
        ] {
            assert!(
                !(from.as_str() <= outside && outside < to.as_str()),
                "{outside}"
            );
        }
        for bad in ["2026-11-31", "23.11.2026", "2026-11-23T00:00:00Z", ""] {
            assert!(
                matches!(
                    Day::parse("date", bad),
                    Err(ReportError::Invalid { field: "date", .. })
                ),
                "{bad}"
            );
        }
    }
}
