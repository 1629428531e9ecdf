//! Browser sessions: what a login mints, how long a session lives, and the CSRF check.
//!
//! The cookie carries an opaque random secret; the store keeps only its SHA-256 (as for API
//! tokens), under a separate random id that the change record and `logout` name. A session
//! dies when it has been idle longer than `SessionPolicy::idle` or lived longer than
//! `SessionPolicy::absolute`, whichever comes first, and on logout or a password change.
//!
//! Each session has a CSRF token, handed to the page at login and by `GET /auth/me`: a
//! cookie-authenticated write must echo it in `X-CSRF-Token` (double submit), which a page on
//! another origin cannot read.

use std::time::Duration;

use rand::Rng;

/// The session cookie's name.
pub const COOKIE: &str = "hata_session";
/// The header a cookie-authenticated write carries the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How long sessions live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Ends a session this long after its last request.
    pub idle: Duration,
    /// Ends a session this long after login, however busy.
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    /// 12 hours idle, 7 days at most.
    fn default() -> Self {
        SessionPolicy {
            idle: Duration::from_secs(12 * 3600),
            absolute: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl SessionPolicy {
    /// Whether a session created at `created` and last seen at `last_seen` is alive at `now`
    /// (all Unix nanoseconds).
    pub fn alive(&self, created: i128, last_seen: i128, now: i128) -> bool {
        let nanos = |d: Duration| d.as_nanos() as i128;
        now < created + nanos(self.absolute) && now < last_seen + nanos(self.idle)
    }
}

/// A new session: the cookie's secret (never stored), its hash, a public id and a CSRF token.
#[derive(Clone)]
pub struct MintedSession {
    pub id: String,
    pub secret: String,
    pub secret_hash: String,
    pub csrf_token: String,
}

impl std::fmt::Debug for MintedSession {
    /// Never prints the secret or the CSRF token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedSession")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl MintedSession {
    pub fn generate() -> MintedSession {
        let mut rng = rand::thread_rng();
        let secret = hex::encode(rng.gen::<[u8; 32]>());
        MintedSession {
            id: format!("ses_{}", hex::encode(rng.gen::<[u8; 8]>())),
            secret_hash: crate::token::hash_secret(&secret),
            secret,
            csrf_token: hex::encode(rng.gen::<[u8; 24]>()),
        }
    }
}

/// Whether two secrets are equal, in time that depends only on their lengths (a CSRF token
/// compared byte by byte with an early exit would leak its prefix through timing).
pub fn same_secret(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_end_at_the_idle_or_the_absolute_limit() {
        let policy = SessionPolicy {
            idle: Duration::from_secs(10),
            absolute: Duration::from_secs(100),
        };
        let s = |n: i128| n * 1_000_000_000;
        assert!(policy.alive(0, 0, s(9)));
        assert!(!policy.alive(0, 0, s(10)), "idle");
        assert!(policy.alive(0, s(95), s(99)));
        assert!(!policy.alive(0, s(95), s(100)), "absolute, though busy");
    }

    #[test]
    fn minted_sessions_are_random_and_hide_their_secret() {
        let (a, b) = (MintedSession::generate(), MintedSession::generate());
        assert_ne!(a.secret, b.secret);
        assert_ne!(a.csrf_token, b.csrf_token);
        assert_eq!(a.secret_hash, crate::token::hash_secret(&a.secret));
        assert!(a.id.starts_with("ses_"));
        let shown = format!("{a:?}");
        assert!(!shown.contains(&a.secret) && !shown.contains(&a.csrf_token));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "abc"));
    }
}
