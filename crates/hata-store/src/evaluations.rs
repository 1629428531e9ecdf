//! Evaluation counts: how often each flag served which variant, in hourly buckets, and when
//! each flag was last evaluated.
//!
//! This is telemetry, not configuration. The server counts in memory and flushes batches here;
//! a batch is one transaction, so a flush is either stored whole or not at all (and then
//! retried by the caller). It does not go through `Store::write`: nobody changed anything, so
//! there is no version to check, no revision to bump and nothing for the change record.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Store, StoreResult};

/// Evaluations of one (environment, flag, variant, reason) within one hour.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
/// Also a row of the export document, hence `Deserialize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationCount {
    pub project: String,
    pub environment: String,
    pub flag: String,
    /// Start of the hour, RFC 3339 UTC (`2026-11-23T14:00:00Z`).
    pub hour: String,
    pub variant: String,
    pub reason: String,
    pub count: i64,
}

/// When a flag was last evaluated in an environment (RFC 3339 UTC).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagEvaluated {
    pub project: String,
    pub environment: String,
    pub flag: String,
    pub at: String,
}

/// Evaluations of one (project, flag, variant) over a time range, all environments and
/// reasons together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantTotal {
    pub project: String,
    pub flag: String,
    pub variant: String,
    pub count: i64,
}

impl Store {
    /// Adds `counts` to the stored counts and moves last-evaluated times forward, in one
    /// transaction.
    pub async fn record_evaluations(
        &self,
        counts: &[EvaluationCount],
        evaluated: &[FlagEvaluated],
    ) -> StoreResult<()> {
        let _timer = self
            .timings
            .start(crate::timing::Operation::RecordEvaluations);
        if counts.is_empty() && evaluated.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer().begin().await?;
        for c in counts {
            sqlx::query(
                "INSERT INTO evaluation_counts (project, environment, flag, hour, variant, reason, count)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (project, environment, flag, hour, variant, reason)
                 DO UPDATE SET count = evaluation_counts.count + excluded.count",
            )
            .bind(&c.project)
            .bind(&c.environment)
            .bind(&c.flag)
            .bind(&c.hour)
            .bind(&c.variant)
            .bind(&c.reason)
            .bind(c.count)
            .execute(&mut *tx)
            .await?;
        }
        for e in evaluated {
            // RFC 3339 UTC strings of one format order like the instants they name.
            sqlx::query(
                "INSERT INTO flag_last_evaluated (project, environment, flag, at)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (project, environment, flag)
                 DO UPDATE SET at = CASE WHEN excluded.at > flag_last_evaluated.at
                                         THEN excluded.at ELSE flag_last_evaluated.at END",
            )
            .bind(&e.project)
            .bind(&e.environment)
            .bind(&e.flag)
            .bind(&e.at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A flag's counts with `from <= hour < to`, in one environment or all, ordered by
    /// environment, hour, variant and reason.
    pub async fn evaluation_counts(
        &self,
        project: &str,
        flag: &str,
        environment: Option<&str>,
        from: &str,
        to: &str,
    ) -> StoreResult<Vec<EvaluationCount>> {
        let rows = sqlx::query(
            "SELECT project, environment, flag, hour, variant, reason, count
             FROM evaluation_counts
             WHERE project = $1 AND flag = $2 AND ($3 = '' OR environment = $4)
               AND hour >= $5 AND hour < $6
             ORDER BY environment, hour, variant, reason",
        )
        .bind(project)
        .bind(flag)
        .bind(environment.unwrap_or(""))
        .bind(environment.unwrap_or(""))
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(decode_evaluation_count).collect()
    }

    /// When a flag was last evaluated, per environment that ever evaluated it.
    pub async fn flag_last_evaluated(
        &self,
        project: &str,
        flag: &str,
    ) -> StoreResult<Vec<FlagEvaluated>> {
        let rows = sqlx::query(
            "SELECT project, environment, flag, at FROM flag_last_evaluated
             WHERE project = $1 AND flag = $2 ORDER BY environment",
        )
        .bind(project)
        .bind(flag)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(decode_flag_evaluated).collect()
    }
}

/// How `Store::evaluation_series` groups the hourly counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesStep {
    /// One point per hour: `bucket` is `2026-11-23T14`.
    Hour,
    /// One point per UTC day: `bucket` is `2026-11-23`.
    Day,
}

impl SeriesStep {
    /// How many leading characters of an hour (`2026-11-23T14:00:00Z`) name its bucket.
    fn prefix(self) -> usize {
        match self {
            SeriesStep::Hour => 13,
            SeriesStep::Day => 10,
        }
    }
}

/// Evaluations of one flag in one (environment, variant, bucket), every reason together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesPoint {
    pub environment: String,
    pub variant: String,
    /// The bucket's start as the leading part of its hours (see `SeriesStep`).
    pub bucket: String,
    pub count: i64,
}

impl Store {
    /// A flag's evaluations with `from <= hour < to`, summed per environment, variant and
    /// hour or day (the web UI's chart), ordered by environment, bucket and variant. Grouped
    /// in the database: a 30-day window is 720 hours × variants × reasons rows otherwise.
    pub async fn evaluation_series(
        &self,
        project: &str,
        flag: &str,
        from: &str,
        to: &str,
        step: SeriesStep,
    ) -> StoreResult<Vec<SeriesPoint>> {
        let _timer = self
            .timings
            .start(crate::timing::Operation::EvaluationSeries);
        // Hours are stored as RFC 3339 UTC of one fixed format, so a bucket is a prefix of
        // them; `SUBSTR` is the same function on SQLite and PostgreSQL. The length is a
        // constant of ours, written into the text: a bound integer would be an `INT8` on
        // PostgreSQL, for which there is no `SUBSTR(text, int, int8)`. `SUM` of a BIGINT is
        // NUMERIC on PostgreSQL: cast back, for one decoding on both.
        let n = step.prefix();
        let sql = format!(
            "SELECT environment, variant, SUBSTR(hour, 1, {n}) AS bucket,
                    CAST(SUM(count) AS BIGINT) AS total
             FROM evaluation_counts
             WHERE project = $1 AND flag = $2 AND hour >= $3 AND hour < $4
             GROUP BY environment, variant, SUBSTR(hour, 1, {n})
             ORDER BY environment, bucket, variant"
        );
        let rows = sqlx::query(&sql)
            .bind(project)
            .bind(flag)
            .bind(from)
            .bind(to)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SeriesPoint {
                    environment: r.try_get("environment")?,
                    variant: r.try_get("variant")?,
                    bucket: r.try_get("bucket")?,
                    count: r.try_get("total")?,
                })
            })
            .collect()
    }
}

impl Store {
    /// Every project's evaluations with `from <= hour < to`, summed per (project, flag,
    /// variant) over environments and reasons (the reports), ordered by project, flag and
    /// variant.
    pub async fn evaluation_totals(&self, from: &str, to: &str) -> StoreResult<Vec<VariantTotal>> {
        // `SUM` of a BIGINT is NUMERIC on PostgreSQL: cast back, for one decoding on both.
        let rows = sqlx::query(
            "SELECT project, flag, variant, CAST(SUM(count) AS BIGINT) AS total
             FROM evaluation_counts WHERE hour >= $1 AND hour < $2
             GROUP BY project, flag, variant ORDER BY project, flag, variant",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(VariantTotal {
                    project: r.try_get("project")?,
                    flag: r.try_get("flag")?,
                    variant: r.try_get("variant")?,
                    count: r.try_get("total")?,
                })
            })
            .collect()
    }

    /// Every last-evaluated time (the stale-flag report).
    pub async fn all_last_evaluated(&self) -> StoreResult<Vec<FlagEvaluated>> {
        let rows = sqlx::query(
            "SELECT project, environment, flag, at FROM flag_last_evaluated
             ORDER BY project, flag, environment",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(decode_flag_evaluated).collect()
    }
}

/// A row of `evaluation_counts` (every column).
pub(crate) fn decode_evaluation_count(r: &AnyRow) -> StoreResult<EvaluationCount> {
    Ok(EvaluationCount {
        project: r.try_get("project")?,
        environment: r.try_get("environment")?,
        flag: r.try_get("flag")?,
        hour: r.try_get("hour")?,
        variant: r.try_get("variant")?,
        reason: r.try_get("reason")?,
        count: r.try_get("count")?,
    })
}

/// A row of `flag_last_evaluated` (every column).
pub(crate) fn decode_flag_evaluated(r: &AnyRow) -> StoreResult<FlagEvaluated> {
    Ok(FlagEvaluated {
        project: r.try_get("project")?,
        environment: r.try_get("environment")?,
        flag: r.try_get("flag")?,
        at: r.try_get("at")?,
    })
}
