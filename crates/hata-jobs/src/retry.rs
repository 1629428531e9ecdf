//! When a failed job is tried again: after each failed attempt, the next delay of a list
//! (by default 5, 15 and 30 minutes: three retries), then never. Pure: decisions are functions
//! of the attempts made and the time of the failure.

use std::time::Duration;

use time::OffsetDateTime;

/// The delays before each retry; its length is the number of retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub delays: Vec<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            delays: [5, 15, 30]
                .iter()
                .map(|m| Duration::from_secs(m * 60))
                .collect(),
        }
    }
}

/// A retry delay setting that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a delay: write a number with a unit, e.g. 300ms, 30s, 5m, 1h")]
pub struct DelayError(String);

impl RetryPolicy {
    /// After attempt number `attempts` (1 for the first) failed at `failed_at`: when the next
    /// attempt is due, or `None` when the retries are used up.
    pub fn next_attempt(&self, attempts: i64, failed_at: OffsetDateTime) -> Option<OffsetDateTime> {
        let index = usize::try_from(attempts.max(1) - 1).ok()?;
        let delay = self.delays.get(index)?;
        failed_at.checked_add(time::Duration::try_from(*delay).ok()?)
    }

    /// `5m,15m,30m`: comma-separated delays with units `ms`, `s`, `m` or `h`; empty: no
    /// retries.
    pub fn parse(text: &str) -> Result<RetryPolicy, DelayError> {
        let delays = text
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(parse_delay)
            .collect::<Result<_, _>>()?;
        Ok(RetryPolicy { delays })
    }
}

fn parse_delay(text: &str) -> Result<Duration, DelayError> {
    let bad = || DelayError(text.to_string());
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = |factor: u64| n.checked_mul(factor).map(Duration::from_secs);
    match unit.trim() {
        "ms" => Some(Duration::from_millis(n)),
        "s" => seconds(1),
        "m" | "min" => seconds(60),
        "h" => seconds(3600),
        _ => None,
    }
    .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn three_retries_after_five_fifteen_and_thirty_minutes() {
        let policy = RetryPolicy::default();
        let failed = datetime!(2026-12-06 02:00:10 UTC);
        assert_eq!(
            policy.next_attempt(1, failed),
            Some(datetime!(2026-12-06 02:05:10 UTC))
        );
        assert_eq!(
            policy.next_attempt(2, failed),
            Some(datetime!(2026-12-06 02:15:10 UTC))
        );
        assert_eq!(
            policy.next_attempt(3, failed),
            Some(datetime!(2026-12-06 02:30:10 UTC))
        );
        assert_eq!(policy.next_attempt(4, failed), None, "retries used up");
        assert_eq!(policy.next_attempt(40, failed), None);
    }

    #[test]
    fn delays_parse_with_units_and_empty_means_no_retries() {
        let policy = RetryPolicy::parse("5m, 15m,30m").expect("parses");
        assert_eq!(policy, RetryPolicy::default());
        let fast = RetryPolicy::parse("20ms,1s,2h").expect("parses");
        assert_eq!(
            fast.delays,
            vec![
                Duration::from_millis(20),
                Duration::from_secs(1),
                Duration::from_secs(7200)
            ]
        );
        let none = RetryPolicy::parse("").expect("parses");
        assert_eq!(none.next_attempt(1, datetime!(2026-12-06 00:00 UTC)), None);
        for bad in ["5", "m", "5 days", "-1s", "1.5m"] {
            let err = RetryPolicy::parse(bad).expect_err(bad).to_string();
            assert!(err.contains(bad), "{err}");
        }
    }
}
