//! The scheduler against real stores: two schedulers (two replicas) on one database run each
//! occurrence exactly once and never a job twice at a time; failures are retried after the
//! configured delays (milliseconds here) and recorded; a run asked for starts at once.

#[path = "../../hata-store/tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hata_jobs::{Job, JobContext, JobError, JobFuture, Jobs, JobsConfig, RetryPolicy, Schedule};
use hata_store::Store;

/// Counts its runs and how many run at once; fails while `failures` is above zero.
#[derive(Default)]
struct Probe {
    runs: AtomicU64,
    now: AtomicI64,
    most: AtomicI64,
    failures: AtomicI64,
}

impl Job for Probe {
    fn run<'a>(&'a self, _: &'a JobContext) -> JobFuture<'a> {
        Box::pin(async move {
            let at_once = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(at_once, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            self.runs.fetch_add(1, Ordering::SeqCst);
            if self.failures.fetch_sub(1, Ordering::SeqCst) > 0 {
                return Err(JobError::new("the destination is unreachable"));
            }
            Ok("probed".into())
        })
    }
}

fn config(name: &str, schedule: &str, probe: Arc<Probe>) -> JobsConfig {
    let mut config = JobsConfig::default();
    config.enabled = true;
    config.poll = Duration::from_millis(20);
    config.lease = Duration::from_secs(5);
    config.retry = RetryPolicy::parse("50ms,50ms").expect("delays");
    config
        .schedules
        .insert(name.into(), Schedule::parse(schedule).expect("schedule"));
    config.register(name, probe);
    config
}

async fn replica_pairs() -> Vec<(&'static str, Store, Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());
    let a = Store::open(&support::config(url.clone()))
        .await
        .expect("open");
    let b = Store::open(&support::config(url)).await.expect("open");
    let mut pairs = vec![("sqlite", a, b, Some(dir))];
    if let Some(url) = support::new_postgres_database().await {
        let a = Store::open(&support::config(url.clone()))
            .await
            .expect("open");
        let b = Store::open(&support::config(url)).await.expect("open");
        pairs.push(("postgres", a, b, None));
    }
    pairs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_run_each_occurrence_once() {
    for (name, a, b, _dir) in replica_pairs().await {
        let probe = Arc::new(Probe::default());
        // Every second.
        let one = Jobs::start(a.clone(), config("tick", "* * * * * *", probe.clone()));
        let two = Jobs::start(b.clone(), config("tick", "* * * * * *", probe.clone()));
        tokio::time::sleep(Duration::from_millis(3300)).await;
        one.shutdown().await;
        two.shutdown().await;
        let runs = a.job_runs(Some("tick"), 100).await.expect("runs");
        let done: Vec<_> = runs.iter().filter(|r| r.outcome == "succeeded").collect();
        assert!(done.len() >= 2, "{name}: {runs:?}");
        for r in &done {
            assert_eq!(r.attempts, 1, "{name}: {r:?}");
            assert_eq!(r.trigger, "schedule");
        }
        // Every occurrence once: as many runs of the job as succeeded rows (a run cut short
        // by the shutdown may have counted without being recorded).
        let ran = probe.runs.load(Ordering::SeqCst);
        assert!(
            ran == done.len() as u64 || ran == done.len() as u64 + 1,
            "{name}: {ran} runs for {} occurrences",
            done.len()
        );
        let mut occurrences: Vec<&str> = runs.iter().map(|r| r.scheduled_at.as_str()).collect();
        occurrences.dedup();
        assert_eq!(
            occurrences.len(),
            runs.len(),
            "{name}: one row per occurrence"
        );
        assert_eq!(
            probe.most.load(Ordering::SeqCst),
            1,
            "{name}: never two at once"
        );
        let stats = one.stats()["tick"].runs + two.stats()["tick"].runs;
        assert_eq!(
            stats, ran,
            "{name}: each attempt counted by the replica that ran it"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_run_is_retried_then_fails_and_a_requested_run_starts_at_once() {
    for (name, a, _b, _dir) in replica_pairs().await {
        let probe = Arc::new(Probe::default());
        probe.failures.store(5, Ordering::SeqCst);
        let jobs = Jobs::start(a.clone(), config("flaky", "off", probe.clone()));
        let err = jobs
            .request("nope", "tok_admin")
            .await
            .expect_err("unknown");
        assert!(err.to_string().contains("nope"), "{err}");
        let run = jobs.request("flaky", "tok_admin").await.expect("request");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let finished = loop {
            let run = a.job_run(run.id).await.expect("run");
            if run.outcome == "failed" {
                break run;
            }
            assert!(std::time::Instant::now() < deadline, "{name}: {run:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(
            finished.attempts, 3,
            "{name}: the first attempt and two retries"
        );
        assert_eq!(
            finished.error.as_deref(),
            Some("the destination is unreachable")
        );
        let stats = jobs.stats()["flaky"];
        assert_eq!(
            (stats.runs, stats.failures, stats.last_success),
            (3, 3, None)
        );
        // The next one succeeds on its second attempt.
        probe.failures.store(1, Ordering::SeqCst);
        let run = jobs.request("flaky", "tok_admin").await.expect("request");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let finished = loop {
            let run = a.job_run(run.id).await.expect("run");
            if run.outcome == "succeeded" {
                break run;
            }
            assert!(std::time::Instant::now() < deadline, "{name}: {run:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(finished.attempts, 2);
        assert_eq!(finished.requested_by.as_deref(), Some("tok_admin"));
        assert!(jobs.stats()["flaky"].last_success.is_some());
        jobs.shutdown().await;
    }
}
