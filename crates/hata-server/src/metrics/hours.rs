//! The serving-hours flusher: once a minute, this replica's requests since the last flush,
//! per route class, are added to its rows of `serving_hours` (`hata_store::serving_hours`),
//! which the daily report reads.
//!
//! It reads the same cells `/metrics` reports (`HttpMetrics::class_totals`, totals since
//! start) and stores their differences, so requests pay nothing for it: no second
//! per-request hook. Flushes run just after each minute's end and count the minute that
//! ended (its bit in `minutes`, and in `bad_minutes` when more than 5 % of the minute's
//! requests failed). A flush that fails stays pending and is added to the next one, so a
//! database outage delays rows but loses none (up to `MAX_PENDING` rows; past that the oldest
//! go, with a warning).

use std::sync::Arc;
use std::time::Duration;

use hata_store::serving_hours::{ServingHour, BUCKETS, ROUTE_CLASSES};
use hata_store::Store;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use super::http::ClassTotals;
use super::Metrics;

/// Rows kept while the store does not answer: a day of one row per class and minute.
const MAX_PENDING: usize = 24 * 60 * ROUTE_CLASSES.len();

/// Share of a minute's requests that may fail (5xx) before the minute counts as down.
pub const BAD_MINUTE_SHARE: f64 = 0.05;

/// The flusher's state: what was stored up to, and what is still to store.
pub struct ServingHours {
    instance: String,
    metrics: Arc<Metrics>,
    state: Mutex<FlushState>,
}

struct FlushState {
    /// Totals at the last flush.
    flushed: [ClassTotals; ROUTE_CLASSES.len()],
    pending: Vec<ServingHour>,
}

impl ServingHours {
    pub fn new(metrics: Arc<Metrics>) -> Arc<ServingHours> {
        Arc::new(ServingHours {
            instance: instance_name(),
            metrics,
            state: Mutex::new(FlushState {
                flushed: Default::default(),
                pending: Vec::new(),
            }),
        })
    }

    /// This run's name in the rows' `instance`.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Adds the requests since the last flush to the rows of the minute of `at` and stores
    /// every pending row (`Err` leaves them pending).
    pub async fn flush(&self, store: &Store, at: OffsetDateTime) -> hata_store::StoreResult<()> {
        let now = self.metrics.http.class_totals();
        let mut state = self.state.lock().await;
        let rows = deltas(&self.instance, &state.flushed, &now, at);
        state.flushed = now;
        for row in rows {
            merge(&mut state.pending, row);
        }
        if state.pending.len() > MAX_PENDING {
            let dropped = state.pending.len() - MAX_PENDING;
            state.pending.drain(..dropped);
            tracing::warn!(
                rows = dropped,
                "serving hours: the store has not answered for a day; dropped the oldest rows"
            );
        }
        store.record_serving_hours(&state.pending).await?;
        state.pending.clear();
        Ok(())
    }
}

/// The rows of the requests between `before` and `now`, marked with the minute of `at`. The
/// `other` class always gets a row: it records that this replica was up in that minute.
fn deltas(
    instance: &str,
    before: &[ClassTotals; ROUTE_CLASSES.len()],
    now: &[ClassTotals; ROUTE_CLASSES.len()],
    at: OffsetDateTime,
) -> Vec<ServingHour> {
    let at = at.to_offset(time::UtcOffset::UTC);
    let hour = format!(
        "{:04}-{:02}-{:02}T{:02}:00:00Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour()
    );
    let minute = 1i64 << at.minute();
    let gap = |a: u64, b: u64| i64::try_from(a.saturating_sub(b)).unwrap_or(i64::MAX);
    let mut rows: Vec<ServingHour> = ROUTE_CLASSES
        .iter()
        .zip(before.iter().zip(now))
        .map(|(class, (b, n))| {
            let mut buckets = [0i64; BUCKETS];
            for (i, slot) in buckets.iter_mut().enumerate() {
                *slot = gap(n.buckets[i], b.buckets[i]);
            }
            ServingHour {
                hour: hour.clone(),
                instance: instance.to_string(),
                route_class: class.to_string(),
                requests: gap(n.requests, b.requests),
                ok: gap(n.ok, b.ok),
                client_errors: gap(n.client_errors, b.client_errors),
                server_errors: gap(n.server_errors, b.server_errors),
                buckets,
                duration_micros: gap(n.sum_nanos, b.sum_nanos) / 1000,
                minutes: minute,
                bad_minutes: 0,
            }
        })
        .filter(|r| r.requests > 0 || r.route_class == "other")
        .collect();
    let requests: i64 = rows.iter().map(|r| r.requests).sum();
    let failed: i64 = rows.iter().map(|r| r.server_errors).sum();
    if failed > 0 && failed as f64 > BAD_MINUTE_SHARE * requests as f64 {
        for r in &mut rows {
            r.bad_minutes = minute;
        }
    }
    rows
}

/// Adds `row` to the pending row of its hour and class, or appends it.
fn merge(pending: &mut Vec<ServingHour>, row: ServingHour) {
    let Some(p) = pending
        .iter_mut()
        .find(|p| p.hour == row.hour && p.route_class == row.route_class)
    else {
        pending.push(row);
        return;
    };
    p.requests += row.requests;
    p.ok += row.ok;
    p.client_errors += row.client_errors;
    p.server_errors += row.server_errors;
    for (a, b) in p.buckets.iter_mut().zip(row.buckets) {
        *a += b;
    }
    p.duration_micros += row.duration_micros;
    p.minutes |= row.minutes;
    p.bad_minutes |= row.bad_minutes;
}

/// `host-1a2b3c`: the host (several replicas usually run on several hosts) and a random
/// part, new at each start, so that two runs never add to each other's rows.
fn instance_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hata".into());
    format!("{host}-{:06x}", rand::random::<u32>() & 0xff_ffff)
}

/// Flushes just after each minute's end, counting the minute that ended, until the store's
/// process ends (shutdown flushes once more). `period` is a minute in production.
pub async fn run_flusher(hours: Arc<ServingHours>, store: Store, period: Duration) {
    loop {
        let now = OffsetDateTime::now_utc();
        let into =
            Duration::from_nanos((now.unix_timestamp_nanos() % period.as_nanos() as i128) as u64);
        // A little past the boundary, so the minute counted is the one that ended.
        tokio::time::sleep(period.saturating_sub(into) + Duration::from_millis(50)).await;
        let at = OffsetDateTime::now_utc() - Duration::from_millis(100);
        if let Err(e) = hours.flush(&store, at).await {
            tracing::warn!(error = %e, "serving hours: storing this minute's requests failed; trying again next minute");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_keep_the_bounds_of_the_duration_histogram() {
        assert_eq!(
            super::super::histogram::BUCKETS,
            hata_store::serving_hours::BUCKET_BOUNDS
        );
    }

    #[test]
    fn deltas_count_the_minute_and_mark_it_bad_past_five_percent() {
        let before = [ClassTotals::default(); ROUTE_CLASSES.len()];
        let mut now = before;
        now[0].requests = 100;
        now[0].ok = 94;
        now[0].server_errors = 6;
        now[0].buckets[0] = 100;
        now[0].sum_nanos = 250_000_000;
        let at = time::macros::datetime!(2026-11-23 14:07:30 UTC);
        let rows = deltas("i", &before, &now, at);
        assert_eq!(rows.len(), 2, "evaluation and the liveness row of `other`");
        assert_eq!(rows[0].hour, "2026-11-23T14:00:00Z");
        assert_eq!(rows[0].requests, 100);
        assert_eq!(rows[0].duration_micros, 250_000);
        assert_eq!(rows[0].minutes, 1 << 7);
        assert_eq!(rows[0].bad_minutes, 1 << 7);
        now[0].server_errors = 5;
        let rows = deltas("i", &before, &now, at);
        assert_eq!(rows[0].bad_minutes, 0, "5 % is not more than 5 %");
    }
}
