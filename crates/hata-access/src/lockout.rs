//! What repeated failed logins do to an account: after a few, each further attempt must wait
//! longer (doubling from a second, up to a minute); after more, the account is locked for a
//! while (15 minutes by default). A successful login clears the count. Counted per account, so
//! an attacker spreading guesses over many addresses meets the per-IP rate limit instead.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Consecutive failures that cost nothing more than the failure.
    pub free_failures: u32,
    /// Consecutive failures that lock the account.
    pub lock_after: u32,
    /// How long a locked account refuses every login, even a correct one.
    pub lock_for: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            free_failures: 3,
            lock_after: 10,
            lock_for: Duration::from_secs(15 * 60),
        }
    }
}

/// What an account's `failures`-th consecutive failure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// The next attempt may come at once.
    Nothing,
    /// The next attempt must wait this long (answered 429 with `Retry-After` before then).
    SlowDown(Duration),
    /// The account is locked this long; the count starts again afterwards.
    Lock(Duration),
}

/// The longest wait between attempts before the lock.
const MAX_SLOWDOWN: Duration = Duration::from_secs(60);

impl LockoutPolicy {
    pub fn after_failure(&self, failures: u32) -> AfterFailure {
        if self.lock_after > 0 && failures >= self.lock_after {
            AfterFailure::Lock(self.lock_for)
        } else if failures <= self.free_failures {
            AfterFailure::Nothing
        } else {
            let doublings = (failures - self.free_failures - 1).min(16);
            AfterFailure::SlowDown(Duration::from_secs(1 << doublings).min(MAX_SLOWDOWN))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_free_then_slow_then_lock() {
        let p = LockoutPolicy::default();
        let secs = |s| AfterFailure::SlowDown(Duration::from_secs(s));
        let seen: Vec<AfterFailure> = (1..=11).map(|n| p.after_failure(n)).collect();
        assert_eq!(
            seen,
            vec![
                AfterFailure::Nothing,
                AfterFailure::Nothing,
                AfterFailure::Nothing,
                secs(1),
                secs(2),
                secs(4),
                secs(8),
                secs(16),
                secs(32),
                AfterFailure::Lock(Duration::from_secs(900)),
                AfterFailure::Lock(Duration::from_secs(900)),
            ]
        );
        let long = LockoutPolicy { lock_after: 0, ..p };
        assert_eq!(long.after_failure(40), secs(60), "capped; 0 never locks");
    }
}
