//! Backup and job outcomes for the daily report.
//!
//! The scheduler (issue 26, item 5) records every run in the `job_runs` table (migration
//! 0010), which is written on another branch. Until it is merged this read returns no runs,
//! so the report's "backups and jobs" section is empty; merging wires `job_outcomes` to the
//! store's read of `job_runs` (runs whose scheduled time is in the day), and nothing else in
//! the report changes.

use hata_store::Store;

use crate::ReportResult;

/// How the runs of one job ended within the day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobOutcome {
    /// The job's name (`backup_full`, `backup_incremental`, `backup_verify`, `retention`, …).
    pub job: String,
    pub succeeded: i64,
    pub failed: i64,
}

/// The outcomes of runs scheduled with `from <= scheduled < to` (bounds as `day` makes them).
pub async fn job_outcomes(_store: &Store, _from: &str, _to: &str) -> ReportResult<Vec<JobOutcome>> {
    Ok(Vec::new())
}
