//! When a job is due: a cron pattern (five fields, or six with seconds first), evaluated in
//! UTC. Pure: the next fire time is a function of the pattern and a given instant.

use std::str::FromStr;

use time::OffsetDateTime;

/// A job's schedule. `off` (or an empty setting) schedules nothing: the job then runs only
/// when asked for (`POST /api/v1/jobs/{job}/run`).
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: Option<croner::Cron>,
}

/// A schedule that is not a cron pattern.
#[derive(Debug, thiserror::Error)]
#[error("{text:?} is not a cron pattern (minute hour day-of-month month day-of-week, optionally seconds first, or off): {reason}")]
pub struct ScheduleError {
    text: String,
    reason: String,
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("off") {
            return Ok(Schedule {
                text: "off".into(),
                cron: None,
            });
        }
        let cron = croner::Cron::from_str(text).map_err(|e| ScheduleError {
            text: text.into(),
            reason: e.to_string(),
        })?;
        Ok(Schedule {
            text: text.into(),
            cron: Some(cron),
        })
    }

    /// The pattern as configured (`off` when off).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_off(&self) -> bool {
        self.cron.is_none()
    }

    /// The first fire time strictly after `after` (UTC); `None` when off or never again.
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let cron = self.cron.as_ref()?;
        let after = chrono::DateTime::<chrono::Utc>::from_timestamp(
            after.unix_timestamp(),
            after.nanosecond(),
        )?;
        let next = cron.find_next_occurrence(&after, false).ok()?;
        OffsetDateTime::from_unix_timestamp(next.timestamp()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn next(pattern: &str, after: OffsetDateTime) -> Option<OffsetDateTime> {
        Schedule::parse(pattern)
            .expect("a pattern")
            .next_after(after)
    }

    #[test]
    fn daily_at_two_fires_at_the_next_two_oclock_utc() {
        assert_eq!(
            next("0 2 * * *", datetime!(2026-12-06 13:30:00 UTC)),
            Some(datetime!(2026-12-07 02:00:00 UTC))
        );
        assert_eq!(
            next("0 2 * * *", datetime!(2026-12-06 01:59:59.9 UTC)),
            Some(datetime!(2026-12-06 02:00:00 UTC))
        );
        // Strictly after: at the fire time itself, the next one is a day later.
        assert_eq!(
            next("0 2 * * *", datetime!(2026-12-06 02:00:00 UTC)),
            Some(datetime!(2026-12-07 02:00:00 UTC))
        );
    }

    #[test]
    fn hourly_and_seconds_patterns() {
        assert_eq!(
            next("0 * * * *", datetime!(2026-12-31 23:10:00 UTC)),
            Some(datetime!(2027-01-01 00:00:00 UTC))
        );
        // Six fields: seconds first.
        assert_eq!(
            next("*/10 * * * * *", datetime!(2026-12-06 13:30:01 UTC)),
            Some(datetime!(2026-12-06 13:30:10 UTC))
        );
        // Patterns are UTC: 03:30 at +02:00 is 01:30 UTC, half an hour before 02:00 UTC.
        assert_eq!(
            next("0 2 * * *", datetime!(2026-12-06 03:30:00 +02:00)),
            Some(datetime!(2026-12-06 02:00:00 UTC))
        );
    }

    #[test]
    fn off_schedules_nothing_and_bad_patterns_are_refused() {
        for off in ["off", "OFF", "", "  "] {
            let s = Schedule::parse(off).expect("off");
            assert!(s.is_off());
            assert_eq!(s.next_after(datetime!(2026-12-06 00:00:00 UTC)), None);
        }
        for bad in ["0 25 * * *", "every day", "* * *", "61 * * * *"] {
            let err = Schedule::parse(bad).expect_err(bad).to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
