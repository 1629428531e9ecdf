//! Request budgets of the admin API and of logins (`--admin-rate-limit`,
//! `--login-rate-limit`): per principal, or per client IP when a request has no valid
//! credentials; a login per account and per IP. The algorithm is `hata_access::rate` (GCRA).
//!
//! With a Redis URL (`HATA_REDIS_URL`) every replica checks the same budget in Redis, one
//! atomic script per check (`shared`), so three replicas enforce one limit. When Redis does
//! not answer, each replica falls back to its own budgets (`local`) and says so once in the
//! log: a Redis outage never refuses service. Evaluation has its own, much larger budget
//! (`--eval-rate-limit`), per replica and off the admin path: a round trip to Redis per
//! evaluation would cost more than the evaluation.

mod local;
mod shared;

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use hata_access::rate::{Decision, Quota};

pub use local::LocalBudgets;
pub use shared::SharedBudgets;

use crate::error::AppError;

/// What `--admin-rate-limit`, `--login-rate-limit` and `--redis-url` set.
#[derive(Clone, Default)]
pub struct LimitsConfig {
    /// Admin API requests per minute per principal (or client IP); 0: unlimited.
    pub admin_per_minute: u32,
    /// Login attempts per minute per account and per client IP; 0: unlimited.
    pub login_per_minute: u32,
    /// Share the budgets through this Redis (`redis://…`, `rediss://…`).
    pub redis_url: Option<String>,
}

impl std::fmt::Debug for LimitsConfig {
    /// The Redis URL may carry a password: only its redacted form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimitsConfig")
            .field("admin_per_minute", &self.admin_per_minute)
            .field("login_per_minute", &self.login_per_minute)
            .field(
                "redis_url",
                &self.redis_url.as_deref().map(hata_store::redact),
            )
            .finish()
    }
}

/// Which budget a check spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Admin,
    Login,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Login => "login",
        }
    }
}

/// The server's budgets, shared by every request.
pub struct Limits {
    admin: Option<Quota>,
    login: Option<Quota>,
    local: LocalBudgets,
    shared: Option<SharedBudgets>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("admin", &self.admin)
            .field("login", &self.login)
            .field("shared", &self.shared.is_some())
            .finish()
    }
}

impl Limits {
    /// `None` without a shared Redis; else whether it answered the last time it was asked.
    pub fn redis_answering(&self) -> Option<bool> {
        self.shared.as_ref().map(SharedBudgets::answering)
    }

    /// No budgets at all.
    pub fn unlimited() -> Limits {
        Limits {
            admin: None,
            login: None,
            local: LocalBudgets::default(),
            shared: None,
        }
    }

    /// Fails only on a malformed Redis URL; an unreachable Redis is found out later.
    pub fn new(config: &LimitsConfig) -> Result<Limits, String> {
        let quota = |n: u32| (n > 0).then(|| Quota::per_minute(n));
        Ok(Limits {
            admin: quota(config.admin_per_minute),
            login: quota(config.login_per_minute),
            shared: config
                .redis_url
                .as_deref()
                .map(SharedBudgets::new)
                .transpose()?,
            ..Limits::unlimited()
        })
    }

    /// Spends one request of `scope`'s budget for `key` (a principal, an account, an IP).
    /// `None` when that scope is unlimited.
    pub async fn check(&self, scope: Scope, key: &str) -> Option<Decision> {
        let quota = match scope {
            Scope::Admin => self.admin?,
            Scope::Login => self.login?,
        };
        // Keys name principals, emails and addresses: the store sees only their digest.
        let key = format!(
            "{}:{}",
            scope.as_str(),
            &hata_access::token::hash_secret(key)[..32]
        );
        if let Some(shared) = &self.shared {
            if let Some(decision) = shared.check(&key, quota).await {
                return Some(decision);
            }
        }
        Some(self.local.check(&key, quota))
    }
}

fn seconds_up(d: Duration) -> u64 {
    d.as_micros().div_ceil(1_000_000) as u64
}

/// The `RateLimit-*` headers of a decision (draft-ietf-httpapi-ratelimit-headers): the
/// limit, what is left, and seconds until the budget is whole again; and the policy.
pub fn headers(decision: &Decision, period: Duration) -> [(&'static str, HeaderValue); 4] {
    [
        ("ratelimit-limit", HeaderValue::from(decision.limit)),
        ("ratelimit-remaining", HeaderValue::from(decision.remaining)),
        (
            "ratelimit-reset",
            HeaderValue::from(seconds_up(decision.reset)),
        ),
        (
            "ratelimit-policy",
            HeaderValue::from_str(&format!("{};w={}", decision.limit, period.as_secs()))
                .unwrap_or_else(|_| HeaderValue::from_static("")),
        ),
    ]
}

/// Adds a decision's headers to a response.
pub fn add_headers(headers_out: &mut HeaderMap, decision: &Decision) {
    for (name, value) in headers(decision, Duration::from_secs(60)) {
        headers_out.insert(name, value);
    }
}

/// The 429 of a refused decision (with `Retry-After`); the caller adds the headers.
pub fn refusal(decision: &Decision, what: &str) -> AppError {
    AppError::Throttled {
        detail: format!("{what}: at most {} requests per minute", decision.limit),
        retry_after: seconds_up(decision.retry_after).max(1),
    }
}
