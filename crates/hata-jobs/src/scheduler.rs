//! The scheduler inside `hata serve`: it records each job's occurrences when they are due,
//! takes due runs (scheduled, asked for, or retries) with the store's claim, runs them with a
//! lease it renews, records each attempt, and keeps what `/metrics` reads (`JobStats`).
//!
//! Exactly one replica runs each occurrence: every replica inserts the occurrence (one row
//! results: `(job, scheduled_at)` is unique) and tries to claim it; the claim runs under the
//! job's lock and takes a run only while no other run of the job is running
//! (`Store::claim_job_run`). A replica that dies mid-run stops renewing its lease; once it
//! runs out, the next replica to look counts the attempt as failed and the retry policy
//! decides the next one. Occurrences that fell while no replica ran are not made up: the
//! schedule starts from the time a scheduler starts.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hata_store::jobs::{outcome, AttemptEnd, Lease};
use hata_store::{JobRun, Store};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::job::{Job, JobContext, JobError};
use crate::JobsConfig;

/// How often the last successes of every replica are read back (for `/metrics`).
const SUCCESS_REFRESH: Duration = Duration::from_secs(60);

/// What this replica saw of a job since it started, and the last success of any replica.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JobStats {
    /// Attempts this replica finished.
    pub runs: u64,
    /// Of those, the failed ones.
    pub failures: u64,
    /// The last success by any replica (Unix seconds), as of the last refresh or this
    /// replica's own success.
    pub last_success: Option<i64>,
}

/// A job as `GET /api/v1/jobs` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobOverview {
    pub name: String,
    /// The cron pattern, or `off`.
    pub schedule: String,
    /// The next scheduled occurrence (RFC 3339), if scheduled and this replica runs jobs.
    pub next_run: Option<String>,
}

/// Why a run could not be asked for.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("no job named {0:?} (jobs: {1})")]
    Unknown(String, String),
    #[error("jobs are turned off on this server (jobs_enabled / HATA_JOBS_ENABLED)")]
    Off,
    #[error(transparent)]
    Store(#[from] hata_store::StoreError),
}

/// The scheduler of one replica (cheap to share: `Arc<Jobs>`).
pub struct Jobs {
    store: Store,
    config: JobsConfig,
    /// This replica's name in `job_runs.replica`.
    replica: String,
    wake: Notify,
    stopping: std::sync::atomic::AtomicBool,
    stats: Mutex<BTreeMap<String, JobStats>>,
    next_run: Mutex<BTreeMap<String, OffsetDateTime>>,
    /// Runs this replica runs now: job → the run's task.
    running: Mutex<BTreeMap<String, tokio::task::AbortHandle>>,
}

impl Jobs {
    /// The scheduler over `store`; with `config.enabled` it starts running at once.
    pub fn start(store: Store, config: JobsConfig) -> Arc<Jobs> {
        let stats = config
            .jobs
            .keys()
            .map(|name| (name.clone(), JobStats::default()))
            .collect();
        let jobs = Arc::new(Jobs {
            store,
            replica: replica_name(),
            wake: Notify::new(),
            stopping: Default::default(),
            stats: Mutex::new(stats),
            next_run: Mutex::new(BTreeMap::new()),
            running: Mutex::new(BTreeMap::new()),
            config,
        });
        if jobs.config.enabled {
            tracing::info!(
                replica = %jobs.replica,
                jobs = ?jobs.config.jobs.keys().collect::<Vec<_>>(),
                "the job scheduler runs"
            );
            tokio::spawn(jobs.clone().run());
        }
        jobs
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// This replica's name, as `job_runs.replica` records it.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Whether a job of this name is registered.
    pub fn knows(&self, name: &str) -> bool {
        self.config.jobs.contains_key(name)
    }

    /// Every registered job with its schedule and next occurrence.
    pub fn overview(&self) -> Vec<JobOverview> {
        let next = self.next_run.lock().map(|n| n.clone()).unwrap_or_default();
        self.config
            .jobs
            .keys()
            .map(|name| JobOverview {
                name: name.clone(),
                schedule: self
                    .config
                    .schedules
                    .get(name)
                    .map_or("off", |s| s.as_str())
                    .to_string(),
                next_run: next.get(name).map(|t| hata_store::rfc3339(*t)),
            })
            .collect()
    }

    /// What `/metrics` reports, by job.
    pub fn stats(&self) -> BTreeMap<String, JobStats> {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Records a run of `name` asked for now by `requested_by`; a replica running jobs takes
    /// it (this one at once).
    pub async fn request(&self, name: &str, requested_by: &str) -> Result<JobRun, RequestError> {
        if !self.knows(name) {
            let known: Vec<&str> = self.config.jobs.keys().map(String::as_str).collect();
            return Err(RequestError::Unknown(name.into(), known.join(", ")));
        }
        if !self.enabled() {
            return Err(RequestError::Off);
        }
        // Two requests within the same millisecond are one occurrence: the second gets the
        // first's run.
        let at = hata_store::now_rfc3339();
        let (run, _) = self
            .store
            .enqueue_job_run(name, &at, "manual", Some(requested_by))
            .await?;
        self.wake.notify_one();
        Ok(run)
    }

    /// Stops taking runs, stops the runs in progress and hands them back (due again now), so
    /// that another replica or the next start runs them.
    pub async fn shutdown(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
        if !self.enabled() {
            return;
        }
        let running: Vec<_> = self
            .running
            .lock()
            .map(|mut r| std::mem::take(&mut *r).into_values().collect())
            .unwrap_or_default();
        for task in &running {
            task.abort();
        }
        match self
            .store
            .release_job_runs(&self.replica, &hata_store::now_rfc3339())
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(runs = n, "job runs handed back at shutdown"),
            Err(e) => tracing::warn!(error = %e,
                "handing back the job runs failed; their lease runs out and another replica retries them"),
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn run(self: Arc<Self>) {
        let start = OffsetDateTime::now_utc();
        if let Ok(mut next) = self.next_run.lock() {
            for name in self.config.jobs.keys() {
                if let Some(at) = self
                    .config
                    .schedules
                    .get(name)
                    .and_then(|s| s.next_after(start))
                {
                    next.insert(name.clone(), at);
                }
            }
        }
        let mut refreshed: Option<Instant> = None;
        while !self.stopping() {
            if refreshed.is_none_or(|at| at.elapsed() >= SUCCESS_REFRESH) {
                self.refresh_successes().await;
                refreshed = Some(Instant::now());
            }
            self.record_due_occurrences().await;
            for name in self.config.jobs.keys() {
                if self.stopping() {
                    break;
                }
                self.try_claim(name).await;
            }
            let sleep = self.until_next_occurrence().min(self.config.poll);
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => {}
            }
        }
    }

    /// Inserts each job's occurrences that are due (one row per occurrence whichever replicas
    /// insert it) and moves the job's next occurrence on. An insert that fails is tried again
    /// on the next pass; the occurrences missed meanwhile are not made up.
    async fn record_due_occurrences(&self) {
        let now = OffsetDateTime::now_utc();
        let due: Vec<(String, OffsetDateTime)> = self
            .next_run
            .lock()
            .map(|n| {
                n.iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(name, at)| (name.clone(), *at))
                    .collect()
            })
            .unwrap_or_default();
        for (name, at) in due {
            let scheduled_at = hata_store::rfc3339(at);
            match self
                .store
                .enqueue_job_run(&name, &scheduled_at, "schedule", None)
                .await
            {
                Ok(_) => {
                    let next = self
                        .config
                        .schedules
                        .get(&name)
                        .and_then(|s| s.next_after(at.max(now)));
                    if let Ok(mut n) = self.next_run.lock() {
                        match next {
                            Some(next) => n.insert(name, next),
                            None => n.remove(&name),
                        };
                    }
                }
                Err(e) => {
                    tracing::warn!(job = %name, error = %e, "recording a due job run failed; trying again")
                }
            }
        }
    }

    fn until_next_occurrence(&self) -> Duration {
        let now = OffsetDateTime::now_utc();
        self.next_run
            .lock()
            .ok()
            .and_then(|n| n.values().min().copied())
            .map(|at| Duration::try_from(at - now).unwrap_or(Duration::ZERO))
            .unwrap_or(self.config.poll)
    }

    /// Takes the job's next due run, if any, and starts it.
    async fn try_claim(self: &Arc<Self>, name: &str) {
        if self
            .running
            .lock()
            .map(|r| r.contains_key(name))
            .unwrap_or(true)
        {
            return;
        }
        let Some(job) = self.config.jobs.get(name).cloned() else {
            return;
        };
        let now = OffsetDateTime::now_utc();
        let (now_text, until) = (hata_store::rfc3339(now), self.lease_from(now));
        let retry = self.config.retry.clone();
        let retry_at = move |attempts: i64, failed_at: &str| {
            let failed_at =
                OffsetDateTime::parse(failed_at, &time::format_description::well_known::Rfc3339)
                    .unwrap_or(now);
            retry
                .next_attempt(attempts, failed_at)
                .map(hata_store::rfc3339)
        };
        let lease = Lease {
            replica: &self.replica,
            now: &now_text,
            until: &until,
        };
        let run = match self.store.claim_job_run(name, lease, &retry_at).await {
            Ok(Some(run)) => run,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(job = name, error = %e, "looking for due job runs failed");
                return;
            }
        };
        let me = self.clone();
        let name = name.to_string();
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        let task = tokio::spawn(async move { me.attempt(job, run).await });
        running.insert(name, task.abort_handle());
    }

    fn lease_from(&self, now: OffsetDateTime) -> String {
        let lease = time::Duration::try_from(self.config.lease).unwrap_or(time::Duration::MINUTE);
        hata_store::rfc3339(now + lease)
    }

    /// Runs one attempt with its lease renewed, then records how it ended.
    async fn attempt(self: Arc<Self>, job: Arc<dyn Job>, run: JobRun) {
        let started = Instant::now();
        let context = JobContext {
            store: self.store.clone(),
            run: run.clone(),
        };
        // The job in a task of its own: a panic is a failed attempt, not a lost scheduler.
        let mut work = tokio::spawn(async move { job.run(&context).await });
        // (`interval` refuses zero.)
        let mut renew =
            tokio::time::interval((self.config.lease / 3).max(Duration::from_millis(10)));
        renew.tick().await;
        let result = loop {
            tokio::select! {
                done = &mut work => break done.unwrap_or_else(|e| Err(JobError::new(format!("the job panicked: {e}")))),
                _ = renew.tick() => {
                    let until = self.lease_from(OffsetDateTime::now_utc());
                    match self.store.renew_job_lease(run.id, &self.replica, run.attempts, &until).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(job = %run.job, run = run.id,
                            "another replica took this job run over (its lease ran out); its result will not be recorded here"),
                        Err(e) => tracing::warn!(job = %run.job, run = run.id, error = %e, "renewing the job run's lease failed"),
                    }
                }
            }
        };
        let finished = OffsetDateTime::now_utc();
        let duration_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        let end = match result {
            Ok(detail) => {
                tracing::info!(job = %run.job, run = run.id, attempt = run.attempts, duration_ms, %detail, "job succeeded");
                AttemptEnd {
                    outcome: outcome::SUCCEEDED,
                    finished_at: hata_store::rfc3339(finished),
                    duration_ms,
                    error: None,
                    detail: Some(detail),
                    next_attempt_at: None,
                }
            }
            Err(e) => {
                let next = self
                    .config
                    .retry
                    .next_attempt(run.attempts, finished)
                    .map(hata_store::rfc3339);
                tracing::warn!(job = %run.job, run = run.id, attempt = run.attempts, error = %e,
                    next_attempt = next.as_deref().unwrap_or("none: retries used up"), "job failed");
                AttemptEnd {
                    outcome: if next.is_some() {
                        outcome::RETRYING
                    } else {
                        outcome::FAILED
                    },
                    finished_at: hata_store::rfc3339(finished),
                    duration_ms,
                    error: Some(e.to_string()),
                    detail: None,
                    next_attempt_at: next,
                }
            }
        };
        if let Ok(mut stats) = self.stats.lock() {
            let s = stats.entry(run.job.clone()).or_default();
            s.runs += 1;
            if end.outcome == outcome::SUCCEEDED {
                s.last_success = Some(finished.unix_timestamp());
            } else {
                s.failures += 1;
            }
        }
        match self
            .store
            .finish_job_attempt(run.id, &self.replica, run.attempts, &end)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(job = %run.job, run = run.id,
                "the job run was taken over by another replica; this attempt's result is not recorded"),
            Err(e) => tracing::warn!(job = %run.job, run = run.id, error = %e,
                "recording the job attempt failed; its lease runs out and it is retried"),
        }
        if let Ok(mut running) = self.running.lock() {
            running.remove(&run.job);
        }
        // A retry may be due soon, or a run asked for meanwhile waits.
        self.wake.notify_one();
    }

    /// Reads every job's last success (by any replica) into the stats.
    async fn refresh_successes(&self) {
        let successes = match self.store.last_job_successes().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "reading the jobs' last successes failed");
                return;
            }
        };
        let registered: BTreeSet<&String> = self.config.jobs.keys().collect();
        if let Ok(mut stats) = self.stats.lock() {
            for (job, at) in successes {
                if !registered.contains(&job) {
                    continue;
                }
                let Ok(at) =
                    OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
                else {
                    continue;
                };
                let s = stats.entry(job).or_default();
                s.last_success = s.last_success.max(Some(at.unix_timestamp()));
            }
        }
    }
}

/// `<host>-<pid>-<random>`: names this process in `job_runs`, so that an operator sees which
/// replica ran what, and a restarted process never mistakes its predecessor's runs for its own.
fn replica_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hata".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{host}-{}-{:06x}", std::process::id(), nanos & 0xff_ffff)
}
