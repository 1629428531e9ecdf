//! The retention job: evaluation counts and last-evaluated times older than the evaluation
//! retention are deleted in small batches (`Store::prune_evaluations`), and so are finished
//! job runs (`Store::prune_job_runs`) and serving hours (`Store::prune_serving_hours`, kept at
//! least [`SERVING_HOURS_FLOOR`]); the audit log's oldest entries past the audit retention are
//! removed behind a signed anchor (`Store::prune_audit`); then whatever else registered a
//! step (`Retention::also`: the backups past their generation count, once backups exist).

use std::sync::Arc;
use std::time::Duration;

use crate::job::{Job, JobContext, JobError, JobFuture};

/// Rows per delete statement: small enough that each is a short transaction.
pub const BATCH: i64 = 5_000;

/// How long evaluation data is kept by default (the operations documents' 30 days).
pub const DEFAULT_EVALUATION_RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// Serving hours are kept at least this long whatever the evaluation retention: the daily
/// report's error budget looks back 30 days from the report's day, and a report is usually
/// made the day after.
pub const SERVING_HOURS_FLOOR: Duration = Duration::from_secs(32 * 86_400);

pub struct Retention {
    /// Evaluation counts and last-evaluated times older than this are deleted; `None` keeps
    /// them forever.
    pub evaluations: Option<Duration>,
    /// Audit entries older than this are removed; `None` keeps them forever.
    pub audit: Option<Duration>,
    /// Finished job runs scheduled longer ago than this are removed (each job's latest
    /// success stays); `None` keeps them forever. By default the evaluation retention.
    pub job_runs: Option<Duration>,
    /// Serving hours older than this are removed; `None` keeps them forever. By default the
    /// evaluation retention, at least `SERVING_HOURS_FLOOR`.
    pub serving_hours: Option<Duration>,
    /// Rows per delete statement.
    pub batch: i64,
    /// Further steps, run in order after the evaluation data and the audit log.
    steps: Vec<(String, Arc<dyn Job>)>,
}

impl Retention {
    pub fn new(evaluations: Option<Duration>, audit: Option<Duration>) -> Retention {
        Retention {
            evaluations,
            audit,
            job_runs: evaluations,
            serving_hours: evaluations.map(|d| d.max(SERVING_HOURS_FLOOR)),
            batch: BATCH,
            steps: Vec::new(),
        }
    }

    /// Adds a step (e.g. pruning backups past their generation count); its detail line joins
    /// the run's, and its failure fails the run (after the other work was done).
    pub fn also(mut self, name: &str, step: Arc<dyn Job>) -> Retention {
        self.steps.push((name.to_string(), step));
        self
    }

    async fn run_all(&self, context: &JobContext) -> Result<String, JobError> {
        let now = time::OffsetDateTime::now_utc();
        let mut detail = match self.evaluations {
            Some(keep) => {
                let cutoff = now - time::Duration::try_from(keep).map_err(JobError::new)?;
                let pruned = context.store.prune_evaluations(cutoff, self.batch).await?;
                format!(
                    "evaluation data before {}: {} count rows and {} last-evaluated times removed",
                    hata_store::rfc3339(cutoff),
                    pruned.counts,
                    pruned.last_evaluated
                )
            }
            None => "evaluation data kept (no evaluation retention)".to_string(),
        };
        if let Some(keep) = self.job_runs {
            let cutoff = now - time::Duration::try_from(keep).map_err(JobError::new)?;
            let removed = context.store.prune_job_runs(cutoff, self.batch).await?;
            detail.push_str(&format!(
                "; job runs before {}: {removed} removed",
                hata_store::rfc3339(cutoff)
            ));
        }
        if let Some(keep) = self.serving_hours {
            let cutoff = now - time::Duration::try_from(keep).map_err(JobError::new)?;
            let removed = context
                .store
                .prune_serving_hours(cutoff, self.batch)
                .await?;
            detail.push_str(&format!(
                "; serving hours before {}: {removed} rows removed",
                hata_store::rfc3339(cutoff)
            ));
        }
        if let Some(keep) = self.audit {
            let cutoff = now - time::Duration::try_from(keep).map_err(JobError::new)?;
            let before = hata_audit::format_at(cutoff).map_err(JobError::new)?;
            let removed = context.store.prune_audit(&before).await?;
            detail.push_str(&format!(
                "; audit entries before {before}: {removed} removed"
            ));
        }
        let mut failed = Vec::new();
        for (name, step) in &self.steps {
            match step.run(context).await {
                Ok(line) => detail.push_str(&format!("; {name}: {line}")),
                Err(e) => failed.push(format!("{name}: {e}")),
            }
        }
        if failed.is_empty() {
            Ok(detail)
        } else {
            Err(JobError(format!("{} (done: {detail})", failed.join("; "))))
        }
    }
}

impl Job for Retention {
    fn run<'a>(&'a self, context: &'a JobContext) -> JobFuture<'a> {
        Box::pin(self.run_all(context))
    }
}
