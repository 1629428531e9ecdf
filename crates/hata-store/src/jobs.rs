//! Scheduled job runs (`job_runs`), and the deletes the retention job makes.
//!
//! Operational telemetry, not configuration: like the evaluation counts (`evaluations`) these
//! are written outside `Store::write`. Nobody changed anything: there is no version to check,
//! no revision to bump and nothing for the change record; and a job run must be recordable
//! while it is the write path's own data that a job (a restore drill, a backup) reads.
//!
//! What this module guarantees, on both backends: an occurrence of a job is one row (the
//! unique `(job, scheduled_at)`: every replica may insert it, one row results), and one
//! replica at a time runs a job (`claim_job_run` takes the job's lock — a PostgreSQL advisory
//! transaction lock, SQLite's one writer — and only then looks for a running row and a due
//! one). When to retry is not decided here: the scheduler (`hata-jobs`) passes its decision in.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::{Backend, Store, StoreError, StoreResult};

/// A job run's outcome (the `outcome` column).
pub mod outcome {
    /// Waiting for a replica to take it (asked for through the API, or due).
    pub const PENDING: &str = "pending";
    /// A replica runs it now, under its lease.
    pub const RUNNING: &str = "running";
    /// An attempt failed; the next is due at `next_attempt_at`.
    pub const RETRYING: &str = "retrying";
    pub const SUCCEEDED: &str = "succeeded";
    /// Every attempt failed.
    pub const FAILED: &str = "failed";
}

/// One occurrence of a job: scheduled or asked for, with its attempts so far.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobRun {
    pub id: i64,
    pub job: String,
    /// When the occurrence was due; for a run asked for through the API, when it was asked.
    pub scheduled_at: String,
    /// `schedule` or `manual`.
    pub trigger: String,
    /// The actor who asked for a manual run.
    pub requested_by: Option<String>,
    /// `pending`, `running`, `retrying`, `succeeded` or `failed`.
    pub outcome: String,
    /// Attempts started so far.
    pub attempts: i64,
    /// When the current or last attempt started.
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// The last attempt's duration.
    pub duration_ms: Option<i64>,
    /// The last failed attempt's error.
    pub error: Option<String>,
    /// What the job reported when it succeeded (e.g. rows removed).
    pub detail: Option<String>,
    /// When a `retrying` run's next attempt is due.
    pub next_attempt_at: Option<String>,
    /// The replica that runs (or last ran) it.
    pub replica: Option<String>,
    /// Until when the running replica's claim holds (it renews it while it runs).
    pub lease_until: Option<String>,
}

/// Who claims, and until when the claim holds unless renewed.
#[derive(Debug, Clone, Copy)]
pub struct Lease<'a> {
    pub replica: &'a str,
    /// Now, as `crate::rfc3339` writes it.
    pub now: &'a str,
    pub until: &'a str,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub struct AttemptEnd {
    /// `succeeded`, `retrying` or `failed`.
    pub outcome: &'static str,
    pub finished_at: String,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub detail: Option<String>,
    /// With `retrying`: when the next attempt is due.
    pub next_attempt_at: Option<String>,
}

/// What `prune_evaluations` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrunedEvaluations {
    pub counts: u64,
    pub last_evaluated: u64,
}

/// The columns `decode_job_run` reads.
const COLUMNS: &str = "id, job, scheduled_at, origin, requested_by, outcome, attempts, \
     started_at, finished_at, duration_ms, error, detail, next_attempt_at, replica, lease_until";

/// The advisory lock key of a job on PostgreSQL: a constant of hata's (`hjob` in ASCII, high
/// half) and the FNV-1a hash of the name (low half), so that it never meets the audit chain's.
fn job_lock_key(job: &str) -> i64 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in job.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (0x686a_6f62_i64 << 32) | i64::from(hash)
}

impl Store {
    /// Records an occurrence of `job` (`trigger`: `schedule` or `manual`) as pending, unless
    /// one with this `scheduled_at` exists already (another replica recorded it). Returns the
    /// run, and whether this call inserted it.
    pub async fn enqueue_job_run(
        &self,
        job: &str,
        scheduled_at: &str,
        trigger: &str,
        requested_by: Option<&str>,
    ) -> StoreResult<(JobRun, bool)> {
        let inserted = sqlx::query(&format!(
            "INSERT INTO job_runs (job, scheduled_at, origin, requested_by, outcome, attempts)
             VALUES ($1, $2, $3, $4, 'pending', 0)
             ON CONFLICT (job, scheduled_at) DO NOTHING
             RETURNING {COLUMNS}"
        ))
        .bind(job)
        .bind(scheduled_at)
        .bind(trigger)
        .bind(requested_by)
        .fetch_optional(self.writer())
        .await?;
        if let Some(row) = inserted {
            return Ok((decode_job_run(&row)?, true));
        }
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM job_runs WHERE job = $1 AND scheduled_at = $2"
        ))
        .bind(job)
        .bind(scheduled_at)
        .fetch_one(self.writer())
        .await?;
        Ok((decode_job_run(&row)?, false))
    }

    /// Takes the next due run of `job` for `lease.replica` (attempts + 1, `running` until
    /// `lease.until`), unless a run of the job is running under a live lease. A run whose lease
    /// ran out counts as a failed attempt first: `retry_at(attempts, lease_until)` says when
    /// its next attempt is due (`None`: it has had its attempts and fails).
    pub async fn claim_job_run(
        &self,
        job: &str,
        lease: Lease<'_>,
        retry_at: &(dyn Fn(i64, &str) -> Option<String> + Sync),
    ) -> StoreResult<Option<JobRun>> {
        let mut tx = self.writer().begin().await?;
        lock_job(&mut tx, self.backend(), job).await?;
        let expired = sqlx::query(
            "SELECT id, attempts, replica, lease_until FROM job_runs
             WHERE job = $1 AND outcome = 'running' AND lease_until < $2",
        )
        .bind(job)
        .bind(lease.now)
        .fetch_all(&mut *tx)
        .await?;
        for row in &expired {
            let id: i64 = row.try_get("id")?;
            let attempts: i64 = row.try_get("attempts")?;
            let replica: Option<String> = row.try_get("replica")?;
            let until: Option<String> = row.try_get("lease_until")?;
            let until = until.unwrap_or_else(|| lease.now.to_string());
            let error = format!(
                "replica {} stopped renewing its lease (ran out at {until}); the attempt counts as failed",
                replica.as_deref().unwrap_or("?")
            );
            let next = retry_at(attempts, &until);
            tracing::warn!(job, run = id, %error, "job attempt abandoned");
            sqlx::query(
                "UPDATE job_runs SET outcome = $1, error = $2, finished_at = $3,
                        next_attempt_at = $4, lease_until = NULL
                 WHERE id = $5",
            )
            .bind(if next.is_some() {
                outcome::RETRYING
            } else {
                outcome::FAILED
            })
            .bind(&error)
            .bind(&until)
            .bind(next)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        let busy = sqlx::query("SELECT id FROM job_runs WHERE job = $1 AND outcome = 'running'")
            .bind(job)
            .fetch_optional(&mut *tx)
            .await?;
        if busy.is_some() {
            tx.commit().await?;
            return Ok(None);
        }
        let due = sqlx::query(
            "SELECT id FROM job_runs
             WHERE job = $1
               AND (outcome = 'pending' OR (outcome = 'retrying' AND next_attempt_at <= $2))
             ORDER BY scheduled_at, id LIMIT 1",
        )
        .bind(job)
        .bind(lease.now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(due) = due else {
            tx.commit().await?;
            return Ok(None);
        };
        let id: i64 = due.try_get("id")?;
        let row = sqlx::query(&format!(
            "UPDATE job_runs SET outcome = 'running', attempts = attempts + 1, started_at = $1,
                    finished_at = NULL, duration_ms = NULL, next_attempt_at = NULL,
                    replica = $2, lease_until = $3
             WHERE id = $4
             RETURNING {COLUMNS}"
        ))
        .bind(lease.now)
        .bind(lease.replica)
        .bind(lease.until)
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        decode_job_run(&row).map(Some)
    }

    /// Extends a running attempt's lease; `false` when the run is no longer this replica's
    /// (its lease ran out and another replica took it over).
    pub async fn renew_job_lease(
        &self,
        id: i64,
        replica: &str,
        attempt: i64,
        until: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE job_runs SET lease_until = $1
             WHERE id = $2 AND replica = $3 AND attempts = $4 AND outcome = 'running'",
        )
        .bind(until)
        .bind(id)
        .bind(replica)
        .bind(attempt)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records how attempt `attempt` of run `id` ended; `false` when the run is no longer this
    /// replica's (then nothing is written: the replica that took it over records it).
    pub async fn finish_job_attempt(
        &self,
        id: i64,
        replica: &str,
        attempt: i64,
        end: &AttemptEnd,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE job_runs SET outcome = $1, finished_at = $2, duration_ms = $3, error = $4,
                    detail = $5, next_attempt_at = $6, lease_until = NULL
             WHERE id = $7 AND replica = $8 AND attempts = $9 AND outcome = 'running'",
        )
        .bind(end.outcome)
        .bind(&end.finished_at)
        .bind(end.duration_ms)
        .bind(&end.error)
        .bind(&end.detail)
        .bind(&end.next_attempt_at)
        .bind(id)
        .bind(replica)
        .bind(attempt)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// At shutdown: the runs this replica is running are handed back, due again at `now`
    /// (the interrupted attempt counts), so that another replica, or this one after its
    /// restart, runs them without waiting for the lease to run out. Returns how many.
    pub async fn release_job_runs(&self, replica: &str, now: &str) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE job_runs SET outcome = 'retrying', finished_at = $1, next_attempt_at = $1,
                    error = 'interrupted: the replica running it shut down', lease_until = NULL
             WHERE replica = $2 AND outcome = 'running'",
        )
        .bind(now)
        .bind(replica)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected())
    }

    /// The most recent runs, newest occurrence first: of one job or of all.
    pub async fn job_runs(&self, job: Option<&str>, limit: i64) -> StoreResult<Vec<JobRun>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM job_runs WHERE ($1 = '' OR job = $2)
             ORDER BY scheduled_at DESC, id DESC LIMIT $3"
        ))
        .bind(job.unwrap_or(""))
        .bind(job.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(decode_job_run).collect()
    }

    /// Every run whose occurrence falls in `from <= scheduled_at < to` (text bounds, compared
    /// as the store writes times), oldest first: what a daily report counts.
    pub async fn job_runs_scheduled(&self, from: &str, to: &str) -> StoreResult<Vec<JobRun>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM job_runs WHERE scheduled_at >= $1 AND scheduled_at < $2
             ORDER BY scheduled_at, id"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(decode_job_run).collect()
    }

    /// One run by id.
    pub async fn job_run(&self, id: i64) -> StoreResult<JobRun> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM job_runs WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("job run {id}")))?;
        decode_job_run(&row)
    }

    /// Each job's last success: (job, finished_at), by any replica.
    pub async fn last_job_successes(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT job, MAX(finished_at) AS at FROM job_runs
             WHERE outcome = 'succeeded' GROUP BY job ORDER BY job",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("job")?, r.try_get("at")?)))
            .collect()
    }

    /// Deletes evaluation counts of the hours wholly before `before` and last-evaluated times
    /// before it, `batch` rows per statement, each its own short transaction, so that the
    /// counter flusher never waits long behind it.
    pub async fn prune_evaluations(
        &self,
        before: time::OffsetDateTime,
        batch: i64,
    ) -> StoreResult<PrunedEvaluations> {
        let before = before.to_offset(time::UtcOffset::UTC);
        // A bucket `hour` covers [hour, hour + 1 h): wholly older when it starts before the
        // cutoff's own hour. Same text form as the flusher's buckets, so text order is time
        // order.
        let hour = hour_of(before);
        let at = crate::rfc3339(before);
        let counts = delete_in_batches(
            self,
            "DELETE FROM evaluation_counts
             WHERE (project, environment, flag, hour, variant, reason) IN (
                 SELECT project, environment, flag, hour, variant, reason
                 FROM evaluation_counts WHERE hour < $1 LIMIT $2)",
            &hour,
            batch,
        )
        .await?;
        let last_evaluated = delete_in_batches(
            self,
            "DELETE FROM flag_last_evaluated
             WHERE (project, environment, flag) IN (
                 SELECT project, environment, flag
                 FROM flag_last_evaluated WHERE at < $1 LIMIT $2)",
            &at,
            batch,
        )
        .await?;
        Ok(PrunedEvaluations {
            counts,
            last_evaluated,
        })
    }

    /// Deletes the finished runs (succeeded or failed) scheduled before `before`, `batch` rows
    /// per statement, except each job's latest success: the scheduler reads it back for
    /// `hata_job_last_success_timestamp_seconds`, which the no-recent-backup alert watches,
    /// so it must not vanish because a job has failed for longer than the retention. Runs
    /// still pending, running or retrying are never removed.
    pub async fn prune_job_runs(
        &self,
        before: time::OffsetDateTime,
        batch: i64,
    ) -> StoreResult<u64> {
        delete_in_batches(
            self,
            "DELETE FROM job_runs WHERE id IN (
                 SELECT r.id FROM job_runs r
                 WHERE r.scheduled_at < $1 AND r.outcome IN ('succeeded', 'failed')
                   AND NOT (r.outcome = 'succeeded' AND r.finished_at = (
                       SELECT MAX(s.finished_at) FROM job_runs s
                       WHERE s.job = r.job AND s.outcome = 'succeeded'))
                 LIMIT $2)",
            &crate::rfc3339(before),
            batch,
        )
        .await
    }
}

/// The hour bucket `at` falls in, as the flushers write hours (`2026-11-23T14:00:00Z`).
pub(crate) fn hour_of(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:00:00Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour()
    )
}

/// Runs `statement` (`$1` the cutoff, `$2` the batch size) until it deletes less than a batch.
pub(crate) async fn delete_in_batches(
    store: &Store,
    statement: &str,
    cutoff: &str,
    batch: i64,
) -> StoreResult<u64> {
    let batch = batch.max(1);
    let mut total = 0;
    loop {
        let removed = sqlx::query(statement)
            .bind(cutoff)
            .bind(batch)
            .execute(store.writer())
            .await?
            .rows_affected();
        total += removed;
        if removed < batch as u64 {
            return Ok(total);
        }
        // Let the writers queued behind this batch (SQLite's one writer) go first.
        tokio::task::yield_now().await;
    }
}

/// One replica at a time per job, until the transaction ends. SQLite: the store's one
/// writer connection serialises transactions already.
async fn lock_job(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    job: &str,
) -> StoreResult<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(job_lock_key(job))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

fn decode_job_run(r: &AnyRow) -> StoreResult<JobRun> {
    Ok(JobRun {
        id: r.try_get("id")?,
        job: r.try_get("job")?,
        scheduled_at: r.try_get("scheduled_at")?,
        trigger: r.try_get("origin")?,
        requested_by: r.try_get("requested_by")?,
        outcome: r.try_get("outcome")?,
        attempts: r.try_get("attempts")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        duration_ms: r.try_get("duration_ms")?,
        error: r.try_get("error")?,
        detail: r.try_get("detail")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        replica: r.try_get("replica")?,
        lease_until: r.try_get("lease_until")?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn job_lock_keys_differ_by_job_and_from_the_audit_chain_lock() {
        let a = super::job_lock_key("retention");
        let b = super::job_lock_key("backup-full");
        assert_ne!(a, b);
        assert_ne!(a, 0x6861_7461);
        assert_eq!(a, super::job_lock_key("retention"), "stable");
    }
}
