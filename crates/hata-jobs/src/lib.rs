//! hata's scheduled jobs: what runs when (`schedule`, cron patterns), how failures are retried
//! (`retry`), what a job is (`job`), the scheduler that runs them inside `hata serve` with
//! exactly one replica running each occurrence (`scheduler`), and the retention job
//! (`retention`).
//!
//! The decisions (next fire time, next attempt time) are pure functions of given instants,
//! tested without waiting; the runs are recorded in the store's `job_runs`
//! (`hata_store::jobs`), which is also where replicas agree on who runs what.
//!
//! Not here: the backups themselves (`hata-backup` provides jobs that are registered under
//! `names::BACKUP_*`), the HTTP API (`hata-server`'s `routes::jobs`) and the settings
//! (`hata-cli`'s `config`).

pub mod job;
pub mod retention;
pub mod retry;
pub mod schedule;
pub mod scheduler;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use job::{Job, JobContext, JobError, JobFuture};
pub use retention::Retention;
pub use retry::RetryPolicy;
pub use schedule::Schedule;
pub use scheduler::{JobOverview, JobStats, Jobs, RequestError};

/// The jobs hata knows, by the names the API, the metrics (`job_name`) and the settings use.
pub mod names {
    /// A full backup (`hata-backup`).
    pub const BACKUP_FULL: &str = "backup-full";
    /// An incremental backup from the change record since the previous one (`hata-backup`).
    pub const BACKUP_INCREMENTAL: &str = "backup-incremental";
    /// Verifying the latest backups (`hata-backup`).
    pub const BACKUP_VERIFY: &str = "backup-verify";
    /// Evaluation data, job runs, serving hours, audit entries and backups past their
    /// retention (`retention`).
    pub const RETENTION: &str = "retention";
    /// Posting yesterday's daily report to a webhook (`hata-server`'s `report_webhook`).
    pub const REPORT_WEBHOOK: &str = "report-webhook";

    /// Every job with a schedule setting, and its default schedule (UTC): a full backup daily
    /// at 02:00, an incremental one every hour, verification daily at 03:30, retention daily
    /// at 04:00, the morning report at 07:00.
    pub const DEFAULT_SCHEDULES: [(&str, &str); 5] = [
        (BACKUP_FULL, "0 2 * * *"),
        (BACKUP_INCREMENTAL, "0 * * * *"),
        (BACKUP_VERIFY, "30 3 * * *"),
        (RETENTION, "0 4 * * *"),
        (REPORT_WEBHOOK, "0 7 * * *"),
    ];

    /// The backup jobs: their last success is also `hata_backup_last_success_timestamp_seconds`
    /// (verification is not a backup).
    pub const BACKUPS: [&str; 2] = [BACKUP_FULL, BACKUP_INCREMENTAL];
}

/// How the scheduler runs: which jobs exist, when each runs, how failures are retried.
#[derive(Clone)]
pub struct JobsConfig {
    /// Whether this replica runs jobs at all (`--jobs`). Off: the API still lists the runs,
    /// and refuses to start one.
    pub enabled: bool,
    /// When each job runs, by name; a registered job without one runs only when asked for.
    pub schedules: BTreeMap<String, Schedule>,
    pub retry: RetryPolicy,
    /// How long a replica's claim on a running attempt holds unless renewed (it renews every
    /// third of it); past it another replica counts the attempt as failed and retries.
    pub lease: Duration,
    /// How often the scheduler looks for runs to take (runs asked for on another replica,
    /// retries that came due); runs asked for on this replica start at once.
    pub poll: Duration,
    jobs: BTreeMap<String, Arc<dyn Job>>,
}

impl Default for JobsConfig {
    /// Off, with the default schedules and retries and no job registered.
    fn default() -> Self {
        JobsConfig {
            enabled: false,
            schedules: names::DEFAULT_SCHEDULES
                .iter()
                .filter_map(|(name, text)| Some((name.to_string(), Schedule::parse(text).ok()?)))
                .collect(),
            retry: RetryPolicy::default(),
            lease: Duration::from_secs(60),
            poll: Duration::from_secs(5),
            jobs: BTreeMap::new(),
        }
    }
}

impl std::fmt::Debug for JobsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobsConfig")
            .field("enabled", &self.enabled)
            .field("schedules", &self.schedules)
            .field("retry", &self.retry)
            .field("lease", &self.lease)
            .field("poll", &self.poll)
            .field("jobs", &self.jobs.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl JobsConfig {
    /// Registers `job` under `name` (one of `names`, or a new name with its own schedule in
    /// `schedules`). Until a job is registered it does not exist: not listed, not run, 404.
    pub fn register(&mut self, name: &str, job: Arc<dyn Job>) -> &mut Self {
        self.jobs.insert(name.to_string(), job);
        self
    }

    /// The registered jobs' names.
    pub fn registered(&self) -> impl Iterator<Item = &str> {
        self.jobs.keys().map(String::as_str)
    }
}
