//! Budgets in Redis, shared by every replica: one Lua script per check, mirroring
//! `hata_access::rate::decide` on Redis's own clock (replicas' clocks may disagree), so the
//! check and the update are one atomic step. Keys expire when their budget is whole again.
//!
//! Redis is an aid, not a dependency: a check that fails or takes longer than `DEADLINE`
//! returns `None` (the caller uses its local budgets), logs once per outage, and for
//! `RETRY_AFTER` nobody waits on Redis again; then one request tries it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hata_access::rate::{Decision, Quota};
use redis::aio::ConnectionManager;
use redis::Script;

use super::local::now_micros;

/// The longest an admin request waits for Redis.
const DEADLINE: Duration = Duration::from_millis(200);
/// How long after a failure the next check tries Redis again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Every key of ours starts with this.
const PREFIX: &str = "hata:ratelimit:";

/// `decide`, in Lua: ARGV interval and tolerance (µs); returns allowed (0/1), remaining,
/// reset and retry-after (µs).
const GCRA: &str = r#"
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
if tat - now > tolerance then
  return {0, 0, tat - now, tat - now - tolerance}
end
local new_tat = tat + interval
local backlog = new_tat - now
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(backlog / 1000))
return {1, math.floor((tolerance + interval - backlog) / interval), backlog, 0}
"#;

pub struct SharedBudgets {
    redis: ConnectionManager,
    script: Script,
    /// Until when (µs since the epoch) Redis is not asked.
    resting_until: AtomicU64,
    down: AtomicBool,
}

impl SharedBudgets {
    /// Connects lazily: an unreachable Redis at start is not an error.
    pub fn new(url: &str) -> Result<SharedBudgets, String> {
        let client = redis::Client::open(url).map_err(|e| format!("redis_url: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEADLINE))
            .set_response_timeout(Some(DEADLINE))
            .set_number_of_retries(1);
        let redis = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("redis_url: {e}"))?;
        Ok(SharedBudgets {
            redis,
            script: Script::new(GCRA),
            resting_until: AtomicU64::new(0),
            down: AtomicBool::new(false),
        })
    }

    /// Whether Redis answered the last time it was asked (the budgets are local while not).
    pub fn answering(&self) -> bool {
        !self.down.load(Ordering::Relaxed)
    }

    /// The decision Redis makes, or `None` when it cannot be asked now.
    pub async fn check(&self, key: &str, quota: Quota) -> Option<Decision> {
        if now_micros() < self.resting_until.load(Ordering::Relaxed) {
            return None;
        }
        let mut redis = self.redis.clone();
        let mut invocation = self.script.key(format!("{PREFIX}{key}"));
        invocation
            .arg(quota.interval_micros())
            .arg(quota.tolerance_micros());
        let answer = tokio::time::timeout(
            DEADLINE,
            invocation.invoke_async::<(i64, i64, i64, i64)>(&mut redis),
        )
        .await;
        match answer {
            Ok(Ok((allowed, remaining, reset, retry))) => {
                if self.down.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis answers again: rate limits are shared by all replicas");
                }
                let micros = |n: i64| Duration::from_micros(u64::try_from(n).unwrap_or(0));
                Some(Decision {
                    allowed: allowed == 1,
                    limit: quota.limit,
                    remaining: u32::try_from(remaining).unwrap_or(0),
                    reset: micros(reset),
                    retry_after: micros(retry),
                })
            }
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {} ms", DEADLINE.as_millis()),
                };
                self.resting_until.store(
                    now_micros() + RETRY_AFTER.as_micros() as u64,
                    Ordering::Relaxed,
                );
                if !self.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %error,
                        "Redis does not answer: rate limits are per replica until it does");
                }
                None
            }
        }
    }
}
