//! Job runs on both backends: an occurrence is one row however many replicas record it, one
//! replica at a time claims a job's runs, a claim whose lease ran out is taken over, and
//! retention deletes only evaluation data older than its cutoff, batch by batch.

mod support;

use hata_store::jobs::{outcome, AttemptEnd, Lease};
use hata_store::{EvaluationCount, FlagEvaluated, Store};

/// Two stores on one database (two replicas): the same SQLite file opened twice, or the same
/// PostgreSQL database.
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

fn never(_: i64, _: &str) -> Option<String> {
    None
}

fn at(seconds: i64) -> String {
    hata_store::rfc3339(
        time::OffsetDateTime::from_unix_timestamp(1_800_000_000 + seconds).expect("a time"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_occurrence_is_one_row_and_one_replica_claims_it() {
    for (name, a, b, _dir) in replica_pairs().await {
        let (first, inserted) = a
            .enqueue_job_run("retention", &at(0), "schedule", None)
            .await
            .expect("enqueue");
        assert!(inserted, "{name}");
        let (again, inserted) = b
            .enqueue_job_run("retention", &at(0), "schedule", None)
            .await
            .expect("enqueue again");
        assert!(!inserted, "{name}: the second replica's insert is a no-op");
        assert_eq!(again.id, first.id, "{name}");
        assert_eq!(again.outcome, outcome::PENDING);

        // Both replicas try to claim at once, many times over: exactly one run results.
        let claims = (0..8).map(|i| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                let replica = format!("r{i}");
                let (now, until) = (at(1), at(61));
                let lease = Lease {
                    replica: &replica,
                    now: &now,
                    until: &until,
                };
                store
                    .claim_job_run("retention", lease, &never)
                    .await
                    .expect("claim")
            })
        });
        let mut won = Vec::new();
        for claim in claims {
            if let Some(run) = claim.await.expect("task") {
                won.push(run);
            }
        }
        assert_eq!(won.len(), 1, "{name}: {won:?}");
        let run = &won[0];
        assert_eq!((run.outcome.as_str(), run.attempts), ("running", 1));

        // While it runs, a run asked for meanwhile waits: one run of a job at a time.
        a.enqueue_job_run("retention", &at(2), "manual", Some("tok_x"))
            .await
            .expect("enqueue");
        let (now, until) = (at(3), at(63));
        let lease = Lease {
            replica: "other",
            now: &now,
            until: &until,
        };
        assert_eq!(
            b.claim_job_run("retention", lease, &never)
                .await
                .expect("claim"),
            None,
            "{name}"
        );
        let replica = run.replica.clone().expect("replica");
        let end = AttemptEnd {
            outcome: outcome::SUCCEEDED,
            finished_at: at(4),
            duration_ms: 3000,
            error: None,
            detail: Some("done".into()),
            next_attempt_at: None,
        };
        assert!(!b
            .finish_job_attempt(run.id, "not-the-claimer", 1, &end)
            .await
            .expect("finish"));
        assert!(b
            .finish_job_attempt(run.id, &replica, 1, &end)
            .await
            .expect("finish"));
        // Now the manual run is taken.
        let next = b
            .claim_job_run("retention", lease, &never)
            .await
            .expect("claim")
            .expect("the manual run");
        assert_eq!(
            (next.trigger.as_str(), next.requested_by.as_deref()),
            ("manual", Some("tok_x"))
        );
        let runs = a.job_runs(Some("retention"), 10).await.expect("list");
        assert_eq!(runs.len(), 2, "{name}");
        assert_eq!(runs[1].outcome, "succeeded");
        assert_eq!(runs[1].detail.as_deref(), Some("done"));
        assert_eq!(
            a.last_job_successes().await.expect("successes"),
            vec![("retention".to_string(), at(4))]
        );
    }
}

#[tokio::test]
async fn a_claim_whose_lease_ran_out_is_taken_over_as_the_next_attempt() {
    for (name, a, b, _dir) in replica_pairs().await {
        a.enqueue_job_run("backup-full", &at(0), "schedule", None)
            .await
            .expect("enqueue");
        let (now, until) = (at(1), at(2));
        let lease = Lease {
            replica: "dead",
            now: &now,
            until: &until,
        };
        let run = a
            .claim_job_run("backup-full", lease, &never)
            .await
            .expect("claim")
            .expect("a run");
        // Before the lease ends, nobody else takes it.
        let (now, until) = (at(2), at(100));
        let early = Lease {
            replica: "alive",
            now: &now,
            until: &until,
        };
        assert_eq!(
            b.claim_job_run("backup-full", early, &never)
                .await
                .expect("claim"),
            None,
            "{name}"
        );
        // After it, the attempt counts as failed and the retry decision is asked for: here,
        // due at once (at the lease's end).
        let (now, until) = (at(10), at(100));
        let late = Lease {
            replica: "alive",
            now: &now,
            until: &until,
        };
        let asked = std::sync::Mutex::new(Vec::new());
        let retry_at = |attempts: i64, failed_at: &str| {
            asked
                .lock()
                .unwrap()
                .push((attempts, failed_at.to_string()));
            Some(failed_at.to_string())
        };
        let taken = b
            .claim_job_run("backup-full", late, &retry_at)
            .await
            .expect("claim")
            .expect("taken over");
        assert_eq!(asked.lock().unwrap().clone(), vec![(1, at(2))], "{name}");
        assert_eq!(taken.id, run.id);
        assert_eq!(taken.attempts, 2, "{name}: the next attempt");
        assert_eq!(taken.replica.as_deref(), Some("alive"));
        assert!(
            taken.error.as_deref().unwrap_or("").contains("dead"),
            "{name}: {taken:?}"
        );
        // The dead replica's late result is not recorded, nor its lease renewed.
        assert!(!a
            .renew_job_lease(run.id, "dead", 1, &at(200))
            .await
            .expect("renew"));
        // When the retries are used up, a lost lease fails the run.
        assert_eq!(
            b.release_job_runs("alive", &at(11)).await.expect("release"),
            1
        );
        let released = a.job_run(run.id).await.expect("run");
        assert_eq!(released.outcome, "retrying", "{name}");
        let again = a
            .claim_job_run(
                "backup-full",
                Lease {
                    replica: "r3",
                    now: &at(12),
                    until: &at(13),
                },
                &never,
            )
            .await
            .expect("claim")
            .expect("due again");
        assert_eq!(again.attempts, 3);
        assert_eq!(
            b.claim_job_run(
                "backup-full",
                Lease {
                    replica: "r4",
                    now: &at(20),
                    until: &at(30)
                },
                &never
            )
            .await
            .expect("claim"),
            None
        );
        let failed = a.job_run(run.id).await.expect("run");
        assert_eq!(failed.outcome, "failed", "{name}: {failed:?}");
    }
}

#[tokio::test]
async fn retention_deletes_only_older_evaluation_data_in_batches() {
    for t in support::all().await {
        let count = |hour: &str, variant: &str| EvaluationCount {
            project: "p".into(),
            environment: "production".into(),
            flag: "f".into(),
            hour: hour.into(),
            variant: variant.into(),
            reason: "STATIC".into(),
            count: 3,
        };
        let mut counts = Vec::new();
        for day in 1..=5 {
            counts.push(count(&format!("2026-11-0{day}T10:00:00Z"), "on"));
        }
        // The cutoff's own hour and later are kept.
        counts.push(count("2026-11-10T12:00:00Z", "on"));
        counts.push(count("2026-11-10T13:00:00Z", "off"));
        let evaluated = |flag: &str, at: &str| FlagEvaluated {
            project: "p".into(),
            environment: "production".into(),
            flag: flag.into(),
            at: at.into(),
        };
        let last = [
            evaluated("old", "2026-11-01T10:00:00.000Z"),
            evaluated("f", "2026-11-10T13:30:00.000Z"),
        ];
        t.store
            .record_evaluations(&counts, &last)
            .await
            .expect("record");
        let cutoff = time::macros::datetime!(2026-11-10 12:30:00 UTC);
        let pruned = t.store.prune_evaluations(cutoff, 2).await.expect("prune");
        assert_eq!((pruned.counts, pruned.last_evaluated), (5, 1), "{}", t.name);
        let kept = t
            .store
            .evaluation_counts(
                "p",
                "f",
                None,
                "2000-01-01T00:00:00Z",
                "2100-01-01T00:00:00Z",
            )
            .await
            .expect("read");
        let hours: Vec<&str> = kept.iter().map(|c| c.hour.as_str()).collect();
        assert_eq!(
            hours,
            ["2026-11-10T12:00:00Z", "2026-11-10T13:00:00Z"],
            "{}",
            t.name
        );
        assert!(t
            .store
            .flag_last_evaluated("p", "old")
            .await
            .expect("read")
            .is_empty());
        assert_eq!(
            t.store
                .flag_last_evaluated("p", "f")
                .await
                .expect("read")
                .len(),
            1
        );
        let again = t.store.prune_evaluations(cutoff, 2).await.expect("prune");
        assert_eq!((again.counts, again.last_evaluated), (0, 0));
    }
}

/// Takes `job`'s pending run scheduled at `scheduled` through one attempt ending `how`.
async fn run_through(s: &Store, job: &str, scheduled: time::OffsetDateTime, how: &'static str) {
    let scheduled_at = hata_store::rfc3339(scheduled);
    s.enqueue_job_run(job, &scheduled_at, "schedule", None)
        .await
        .expect("enqueue");
    let (now, until) = (
        hata_store::rfc3339(scheduled + time::Duration::seconds(1)),
        hata_store::rfc3339(scheduled + time::Duration::seconds(61)),
    );
    let lease = Lease {
        replica: "r",
        now: &now,
        until: &until,
    };
    let run = s
        .claim_job_run(job, lease, &never)
        .await
        .expect("claim")
        .expect("due");
    let end = AttemptEnd {
        outcome: how,
        finished_at: hata_store::rfc3339(scheduled + time::Duration::seconds(2)),
        duration_ms: 1000,
        error: (how != outcome::SUCCEEDED).then(|| "boom".into()),
        detail: None,
        next_attempt_at: (how == outcome::RETRYING)
            .then(|| hata_store::rfc3339(scheduled + time::Duration::days(30))),
    };
    assert!(s
        .finish_job_attempt(run.id, "r", run.attempts, &end)
        .await
        .expect("finish"));
}

#[tokio::test]
async fn retention_deletes_finished_job_runs_and_serving_hours_before_the_cutoff() {
    use hata_store::serving_hours::ServingHour;
    for t in support::all().await {
        let s = &t.store;
        let now = time::OffsetDateTime::now_utc();
        let ago = |days: i64| now - time::Duration::days(days);
        run_through(s, "backup-full", ago(10), outcome::SUCCEEDED).await;
        run_through(s, "backup-full", ago(9), outcome::FAILED).await;
        // backup-full's latest success: kept although older than the cutoff.
        run_through(s, "backup-full", ago(8), outcome::SUCCEEDED).await;
        run_through(s, "backup-full", ago(7), outcome::FAILED).await;
        run_through(s, "report-webhook", ago(7), outcome::SUCCEEDED).await;
        // Not over: never removed.
        run_through(s, "retention", ago(6), outcome::RETRYING).await;
        run_through(s, "backup-incremental", ago(1), outcome::SUCCEEDED).await;

        let removed = s.prune_job_runs(ago(5), 1).await.expect("prune");
        assert_eq!(removed, 3, "{}", t.name);
        let mut left: Vec<(String, String)> = s
            .job_runs(None, 100)
            .await
            .expect("list")
            .into_iter()
            .map(|r| (r.job, r.outcome))
            .collect();
        left.sort();
        let expected = [
            ("backup-full", "succeeded"),
            ("backup-incremental", "succeeded"),
            ("report-webhook", "succeeded"),
            ("retention", "retrying"),
        ]
        .map(|(j, o)| (j.to_string(), o.to_string()));
        assert_eq!(left, expected, "{}", t.name);
        assert_eq!(
            s.last_job_successes().await.expect("successes").len(),
            3,
            "{}: every job's last success is still known",
            t.name
        );

        let hour = |at: time::OffsetDateTime| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:00:00Z",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour()
            )
        };
        let row = |at: time::OffsetDateTime, instance: &str| ServingHour {
            hour: hour(at),
            instance: instance.into(),
            route_class: "evaluation".into(),
            requests: 1,
            ok: 1,
            minutes: 1,
            ..ServingHour::default()
        };
        s.record_serving_hours(&[
            row(ago(40), "a"),
            row(ago(6), "a"),
            row(ago(6), "b"),
            row(now, "a"),
        ])
        .await
        .expect("record");
        let removed = s.prune_serving_hours(ago(5), 2).await.expect("prune");
        assert_eq!(removed, 3, "{}", t.name);
        let left = s
            .serving_hours("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z")
            .await
            .expect("read");
        assert_eq!(
            left.iter().map(|r| r.hour.clone()).collect::<Vec<_>>(),
            [hour(now)],
            "{}",
            t.name
        );
    }
}
