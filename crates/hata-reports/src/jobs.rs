//! Backup and job outcomes for the daily report, from the scheduler's record (`job_runs`):
//! per job, how the runs of the day ended, and each backup run of the day.
//!
//! "Of the day" means the occurrence's scheduled time (for a run asked for through the API,
//! when it was asked) falls in the day, however late its last attempt ended. Only runs of the
//! scheduler count: a backup taken by hand with `hata backup` is not a job run and is not
//! here (`hata backup list` shows it).

use std::collections::BTreeMap;

use hata_store::jobs::outcome;
use hata_store::{JobRun, Store};

use crate::ReportResult;

/// The jobs whose runs take a backup (`hata_jobs::names::BACKUPS`; this crate does not
/// depend on the scheduler's).
const BACKUP_JOBS: [&str; 2] = ["backup-full", "backup-incremental"];

/// How the runs of one job ended within the day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobOutcome {
    /// The job's name (`backup-full`, `backup-incremental`, `backup-verify`, `retention`, …).
    pub job: String,
    pub succeeded: i64,
    /// Runs that failed every attempt.
    pub failed: i64,
    /// Runs not over yet when the report was made: pending, running, or waiting for a retry.
    pub unfinished: i64,
    /// Failed attempts, retried or not (a run that succeeded at its second attempt has one).
    pub failed_attempts: i64,
}

/// One run of a backup job within the day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupRun {
    /// `backup-full` or `backup-incremental`.
    pub job: String,
    pub scheduled_at: String,
    /// `succeeded`, `failed`, or still `pending` / `running` / `retrying`.
    pub outcome: String,
    pub attempts: i64,
    pub finished_at: Option<String>,
    /// What a successful run reported: the backup's id, kind, flags and last change.
    pub detail: Option<String>,
    /// The last failed attempt's error.
    pub error: Option<String>,
}

/// The day's job outcomes (by job name) and backup runs (oldest first), for the runs
/// scheduled with `from <= scheduled_at < to` (bounds as `day` makes them).
pub async fn job_outcomes(
    store: &Store,
    from: &str,
    to: &str,
) -> ReportResult<(Vec<JobOutcome>, Vec<BackupRun>)> {
    let runs = store.job_runs_scheduled(from, to).await?;
    Ok(summarise(runs))
}

fn summarise(runs: Vec<JobRun>) -> (Vec<JobOutcome>, Vec<BackupRun>) {
    let mut by_job: BTreeMap<String, JobOutcome> = BTreeMap::new();
    let mut backups = Vec::new();
    for run in runs {
        let o = by_job.entry(run.job.clone()).or_insert_with(|| JobOutcome {
            job: run.job.clone(),
            succeeded: 0,
            failed: 0,
            unfinished: 0,
            failed_attempts: 0,
        });
        match run.outcome.as_str() {
            outcome::SUCCEEDED => {
                o.succeeded += 1;
                o.failed_attempts += (run.attempts - 1).max(0);
            }
            outcome::FAILED => {
                o.failed += 1;
                o.failed_attempts += run.attempts;
            }
            outcome::RETRYING => {
                o.unfinished += 1;
                o.failed_attempts += run.attempts;
            }
            // A running attempt has not failed (yet); earlier ones of the run did.
            outcome::RUNNING => {
                o.unfinished += 1;
                o.failed_attempts += (run.attempts - 1).max(0);
            }
            _ => o.unfinished += 1,
        }
        if BACKUP_JOBS.contains(&run.job.as_str()) {
            backups.push(BackupRun {
                job: run.job,
                scheduled_at: run.scheduled_at,
                outcome: run.outcome,
                attempts: run.attempts,
                finished_at: run.finished_at,
                detail: run.detail,
                error: run.error,
            });
        }
    }
    (by_job.into_values().collect(), backups)
}
