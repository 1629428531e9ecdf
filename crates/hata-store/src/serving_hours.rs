//! Serving hours: how many requests each server answered per hour and route class, how they
//! ended (1xx–3xx, 4xx, 5xx) and how long they took (a duration histogram), and in which
//! minutes the server was up. The daily report reads them (`hata-reports`).
//!
//! Telemetry, like evaluation counts (`evaluations`): the server adds its deltas about once a
//! minute, outside `Store::write` — nobody changed anything, so there is no version, revision
//! or change record. Each replica writes its own rows (`instance`), adding to what it wrote
//! before (`ON CONFLICT … DO UPDATE SET x = x + excluded.x`), so the rows of all replicas
//! together hold every request, whichever replica a report runs on and across restarts.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreResult};

/// Upper bounds (seconds) of the duration buckets; `+Inf` follows: those of the server's
/// `http_request_duration_seconds`, whose cells the rows are taken from.
pub const BUCKET_BOUNDS: [f64; 10] = crate::timing::REQUEST_BUCKETS;

/// Buckets per row: one per bound and `+Inf`.
pub const BUCKETS: usize = BUCKET_BOUNDS.len() + 1;

/// The bucket columns, in the order of `BUCKET_BOUNDS` then `+Inf`.
const BUCKET_COLUMNS: [&str; BUCKETS] = [
    "le_0_005", "le_0_01", "le_0_025", "le_0_05", "le_0_1", "le_0_2", "le_0_25", "le_0_5", "le_1",
    "le_2_5", "le_inf",
];

/// The route classes rows are kept under.
pub const ROUTE_CLASSES: [&str; 5] = ["evaluation", "stream", "admin", "health", "other"];

/// One row: one replica's requests of one route class within one hour (or, when the server
/// adds it, the delta since its last flush).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServingHour {
    /// Start of the hour, RFC 3339 UTC (`2026-11-23T14:00:00Z`).
    pub hour: String,
    /// The server run that answered (host and a random part).
    pub instance: String,
    /// One of `ROUTE_CLASSES`.
    pub route_class: String,
    pub requests: i64,
    /// 1xx–3xx answers.
    pub ok: i64,
    /// 4xx answers: the client's mistakes, not failures of the service.
    pub client_errors: i64,
    /// 5xx answers: the failures.
    pub server_errors: i64,
    /// Requests per duration bucket (not cumulative), `BUCKET_BOUNDS` then `+Inf`.
    pub buckets: [i64; BUCKETS],
    /// Sum of the durations, in microseconds.
    pub duration_micros: i64,
    /// Bit m: the replica was up in minute m of the hour.
    pub minutes: i64,
    /// Bit m: more than 5 % of the replica's requests in minute m failed.
    pub bad_minutes: i64,
}

const COLUMNS: &str = "hour, instance, route_class, requests, ok, client_errors, server_errors, \
     le_0_005, le_0_01, le_0_025, le_0_05, le_0_1, le_0_2, le_0_25, le_0_5, le_1, le_2_5, le_inf, \
     duration_micros, minutes, bad_minutes";

impl Store {
    /// Adds `rows` to the stored rows of their (hour, instance, route class), in one
    /// transaction: stored whole or not at all (and then retried by the caller).
    pub async fn record_serving_hours(&self, rows: &[ServingHour]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let sums: String = ["requests", "ok", "client_errors", "server_errors"]
            .iter()
            .chain(BUCKET_COLUMNS.iter())
            .chain(["duration_micros"].iter())
            .map(|c| format!("{c} = serving_hours.{c} + excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO serving_hours ({COLUMNS}) VALUES ({}) \
             ON CONFLICT (hour, instance, route_class) DO UPDATE SET {sums}, \
             minutes = serving_hours.minutes | excluded.minutes, \
             bad_minutes = serving_hours.bad_minutes | excluded.bad_minutes",
            (1..=21)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let mut tx = self.writer().begin().await?;
        for r in rows {
            let mut q = sqlx::query(&sql)
                .bind(&r.hour)
                .bind(&r.instance)
                .bind(&r.route_class)
                .bind(r.requests)
                .bind(r.ok)
                .bind(r.client_errors)
                .bind(r.server_errors);
            for b in r.buckets {
                q = q.bind(b);
            }
            q.bind(r.duration_micros)
                .bind(r.minutes)
                .bind(r.bad_minutes)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes the rows of the hours wholly before `before`, `batch` rows per statement, each
    /// its own short transaction (the flushers add to the current hour meanwhile).
    pub async fn prune_serving_hours(
        &self,
        before: time::OffsetDateTime,
        batch: i64,
    ) -> StoreResult<u64> {
        crate::jobs::delete_in_batches(
            self,
            "DELETE FROM serving_hours
             WHERE (hour, instance, route_class) IN (
                 SELECT hour, instance, route_class
                 FROM serving_hours WHERE hour < $1 LIMIT $2)",
            &crate::jobs::hour_of(before),
            batch,
        )
        .await
    }

    /// Every replica's rows with `from <= hour < to`, ordered by hour, instance and class.
    pub async fn serving_hours(&self, from: &str, to: &str) -> StoreResult<Vec<ServingHour>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM serving_hours WHERE hour >= $1 AND hour < $2
             ORDER BY hour, instance, route_class"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(decode).collect()
    }
}

fn decode(r: &AnyRow) -> StoreResult<ServingHour> {
    let mut buckets = [0; BUCKETS];
    for (b, column) in buckets.iter_mut().zip(BUCKET_COLUMNS) {
        *b = r.try_get(column)?;
    }
    Ok(ServingHour {
        hour: r.try_get("hour")?,
        instance: r.try_get("instance")?,
        route_class: r.try_get("route_class")?,
        requests: r.try_get("requests")?,
        ok: r.try_get("ok")?,
        client_errors: r.try_get("client_errors")?,
        server_errors: r.try_get("server_errors")?,
        buckets,
        duration_micros: r.try_get("duration_micros")?,
        minutes: r.try_get("minutes")?,
        bad_minutes: r.try_get("bad_minutes")?,
    })
}
