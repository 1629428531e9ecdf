//! Request budgets: the generic cell rate algorithm (GCRA), as one pure function of the
//! stored state and the time, so the in-process limiter and the Redis script (which mirrors
//! it in Lua, see the server's `limits`) decide the same way.
//!
//! A quota of `limit` requests per `period` is a stream of cells, one every `interval =
//! period / limit`, with a tolerance of `period - interval`: a client that was quiet may spend
//! the whole `limit` at once, then one more every `interval`. The only state is the
//! theoretical arrival time (TAT) of the next cell, in microseconds.

use std::time::Duration;

/// A budget: `limit` requests per `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub limit: u32,
    pub period: Duration,
}

impl Quota {
    pub fn per_minute(limit: u32) -> Quota {
        Quota {
            limit,
            period: Duration::from_secs(60),
        }
    }

    /// Microseconds between two cells (at least 1).
    pub fn interval_micros(&self) -> u64 {
        (self.period.as_micros() as u64 / u64::from(self.limit.max(1))).max(1)
    }

    /// How far ahead of now the TAT may be for a request to pass.
    pub fn tolerance_micros(&self) -> u64 {
        (self.period.as_micros() as u64).saturating_sub(self.interval_micros())
    }
}

/// What one request gets: through or not, and what the `RateLimit-*` headers say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    /// Requests left that would pass right now.
    pub remaining: u32,
    /// Until the budget is whole again (`RateLimit-Reset`).
    pub reset: Duration,
    /// For a refused request: until the next one can pass (`Retry-After`).
    pub retry_after: Duration,
}

/// Decides a request at `now` (µs) against the stored TAT (`None`: never seen, or expired),
/// and returns the TAT to store (unchanged when refused). The stored TAT may be dropped once
/// it is in the past: that is the same as `None`.
pub fn decide(quota: Quota, tat: Option<u64>, now: u64) -> (Decision, u64) {
    let interval = quota.interval_micros();
    let tolerance = quota.tolerance_micros();
    let tat = tat.unwrap_or(now).max(now);
    let micros = Duration::from_micros;
    if tat - now > tolerance {
        let decision = Decision {
            allowed: false,
            limit: quota.limit,
            remaining: 0,
            reset: micros(tat - now),
            retry_after: micros(tat - now - tolerance),
        };
        return (decision, tat);
    }
    let new_tat = tat + interval;
    let backlog = new_tat - now;
    let remaining = (tolerance + interval).saturating_sub(backlog) / interval;
    let decision = Decision {
        allowed: true,
        limit: quota.limit,
        remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
        reset: micros(backlog),
        retry_after: Duration::ZERO,
    };
    (decision, new_tat)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: u64 = 1_000_000;

    /// Runs `n` requests at `now` from `tat`; the decisions and the final TAT.
    fn burst(quota: Quota, mut tat: Option<u64>, now: u64, n: usize) -> (Vec<Decision>, u64) {
        let mut out = Vec::new();
        for _ in 0..n {
            let (d, t) = decide(quota, tat, now);
            out.push(d);
            tat = Some(t);
        }
        (out, tat.unwrap_or(now))
    }

    #[test]
    fn a_quiet_client_may_spend_the_whole_budget_at_once_then_waits_for_one_interval() {
        let quota = Quota::per_minute(100);
        let now = 1_000 * SECOND;
        let (decisions, tat) = burst(quota, None, now, 101);
        assert!(decisions[..100].iter().all(|d| d.allowed));
        assert_eq!(decisions[0].remaining, 99);
        assert_eq!(decisions[99].remaining, 0);
        assert_eq!(decisions[99].reset, Duration::from_secs(60));
        let refused = decisions[100];
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        // One cell every 600 ms.
        assert_eq!(refused.retry_after, Duration::from_millis(600));
        // After the interval one more passes, and only one.
        let (later, _) = burst(quota, Some(tat), now + 600_000, 2);
        assert!(later[0].allowed && !later[1].allowed);
        // After a whole period the budget is whole again.
        let (fresh, _) = decide(quota, Some(tat), now + 60 * SECOND);
        assert!(fresh.allowed);
        assert_eq!(fresh.remaining, 99);
    }

    #[test]
    fn a_steady_client_at_the_rate_is_never_refused() {
        let quota = Quota::per_minute(10);
        let mut tat = None;
        for i in 0..100u64 {
            let (d, t) = decide(quota, tat, 5 * SECOND + i * 6 * SECOND);
            assert!(d.allowed, "request {i}");
            tat = Some(t);
        }
    }

    #[test]
    fn a_stale_tat_counts_as_none() {
        let quota = Quota::per_minute(10);
        assert_eq!(
            decide(quota, Some(1), 100 * SECOND),
            decide(quota, None, 100 * SECOND)
        );
    }
}
