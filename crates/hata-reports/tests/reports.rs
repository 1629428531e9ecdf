//! The daily and stale-flag reports on both backends: seeded serving rows, evaluation counts
//! and changes; every figure checked against values computed here from the seeds.

#![allow(clippy::too_many_arguments, clippy::type_complexity)]

#[path = "../../hata-store/tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;

use hata_core::model::{Flag, Project};
use hata_reports::{Day, StaleOptions};
use hata_store::serving_hours::{ServingHour, BUCKETS, BUCKET_BOUNDS};
use hata_store::{Actor, EvaluationCount, Expected, FlagEvaluated, Store, WriteMeta, WriteOp};
use serde_json::json;
use time::{Duration, OffsetDateTime};

fn flag(v: serde_json::Value) -> Flag {
    serde_json::from_value(v).expect("flag json")
}

async fn create_project(s: &Store, key: &str) {
    s.write(
        &WriteMeta::new(Actor::system("test"), "seed"),
        WriteOp::CreateProject {
            project: Project {
                key: key.into(),
                name: key.into(),
                description: String::new(),
            },
            environments: None,
        },
    )
    .await
    .unwrap();
}

async fn create_flag(s: &Store, actor: &Actor, project: &str, v: serde_json::Value) {
    s.write(
        &WriteMeta::new(actor.clone(), "seed"),
        WriteOp::CreateFlag {
            project: project.into(),
            flag: flag(v),
        },
    )
    .await
    .unwrap();
}

fn row(
    hour: String,
    instance: &str,
    class: &str,
    counts: [i64; 4],
    buckets: [i64; BUCKETS],
    micros: i64,
    minutes: i64,
    bad: i64,
) -> ServingHour {
    let [requests, ok, client_errors, server_errors] = counts;
    ServingHour {
        hour,
        instance: instance.into(),
        route_class: class.into(),
        requests,
        ok,
        client_errors,
        server_errors,
        buckets,
        duration_micros: micros,
        minutes,
        bad_minutes: bad,
    }
}

/// Bits `from..to` set.
fn bits(from: u32, to: u32) -> i64 {
    (from..to).map(|b| 1i64 << b).sum()
}

/// The p95 as histogram_quantile defines it, written out here independently of the crate:
/// the rank's bucket by a running sum, then linear interpolation.
fn p95(buckets: &[i64; BUCKETS]) -> f64 {
    let total: i64 = buckets.iter().sum();
    let rank = 0.95 * total as f64;
    let mut cumulative = 0;
    for i in 0..BUCKETS {
        let before = cumulative;
        cumulative += buckets[i];
        if cumulative as f64 >= rank && buckets[i] > 0 {
            let lo = if i == 0 { 0.0 } else { BUCKET_BOUNDS[i - 1] };
            return lo + (BUCKET_BOUNDS[i] - lo) * (rank - before as f64) / buckets[i] as f64;
        }
    }
    unreachable!("seeds never reach +Inf at the 95th percentile")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

#[tokio::test]
async fn the_daily_report_adds_up_the_seeded_day() {
    for t in support::all().await {
        let s = &t.store;
        let now = OffsetDateTime::now_utc();
        let day = Day::yesterday(now);
        let h = |d: Day, hour: u8| format!("{d}T{hour:02}:00:00Z");
        let b1 = [500, 300, 100, 50, 30, 10, 5, 3, 1, 1, 0];
        let b2 = [100, 200, 100, 50, 30, 10, 5, 3, 1, 1, 0];
        let b3 = [0, 0, 50, 100, 30, 10, 5, 3, 1, 1, 0];
        // Instance a's 10:00 row arrives in two flushes that must add up.
        let half = |b: [i64; BUCKETS]| b.map(|x| x / 2);
        let seeds = [
            row(
                h(day, 10),
                "a",
                "evaluation",
                [500, 495, 2, 3],
                half(b1),
                4_000_000,
                bits(0, 30),
                1 << 3,
            ),
            row(
                h(day, 10),
                "a",
                "evaluation",
                [500, 495, 2, 3],
                half(b1),
                4_000_000,
                bits(30, 60),
                0,
            ),
            row(
                h(day, 10),
                "b",
                "evaluation",
                [500, 500, 0, 0],
                b2,
                3_000_000,
                bits(0, 30),
                0,
            ),
            row(
                h(day, 11),
                "a",
                "admin",
                [200, 178, 20, 2],
                b3,
                9_000_000,
                bits(0, 10) | 1 << 59,
                0,
            ),
            // In the 30-day window, not in the day.
            row(
                h(day.minus(1), 23),
                "a",
                "evaluation",
                [100, 50, 0, 50],
                [100, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                100_000,
                bits(0, 60),
                bits(0, 60),
            ),
            // Outside both.
            row(
                h(day.minus(30), 23),
                "a",
                "evaluation",
                [1000, 0, 0, 1000],
                [1000, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                1,
                1,
                1,
            ),
            row(
                h(day.plus(1), 0),
                "a",
                "evaluation",
                [7, 7, 0, 0],
                [7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                1,
                1,
                0,
            ),
        ];
        s.record_serving_hours(&seeds[..2]).await.unwrap();
        s.record_serving_hours(&seeds[2..]).await.unwrap();

        let counts = [
            (
                "shop",
                "production",
                "banner",
                h(day, 9),
                "on",
                "targeting_match",
                40,
            ),
            (
                "shop",
                "production",
                "banner",
                h(day, 9),
                "off",
                "default",
                25,
            ),
            (
                "shop",
                "development",
                "banner",
                h(day, 23),
                "on",
                "default",
                5,
            ),
            (
                "shop",
                "production",
                "checkout",
                h(day, 0),
                "v2",
                "split",
                70,
            ),
            (
                "blog",
                "production",
                "comments",
                h(day, 12),
                "on",
                "static",
                3,
            ),
            // Not in the day.
            (
                "shop",
                "production",
                "banner",
                h(day.minus(1), 23),
                "on",
                "default",
                1000,
            ),
            (
                "blog",
                "production",
                "comments",
                h(day.plus(1), 0),
                "off",
                "default",
                1000,
            ),
        ];
        let counts: Vec<EvaluationCount> = counts
            .iter()
            .map(|(p, e, f, hour, v, r, n)| EvaluationCount {
                project: p.to_string(),
                environment: e.to_string(),
                flag: f.to_string(),
                hour: hour.clone(),
                variant: v.to_string(),
                reason: r.to_string(),
                count: *n,
            })
            .collect();
        s.record_evaluations(&counts, &[]).await.unwrap();

        let report = hata_reports::daily(s, day, now).await.unwrap();
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["date"], day.to_string(), "{}", t.name);

        // Requests: the day's rows only.
        let of_day: Vec<&ServingHour> = seeds
            .iter()
            .filter(|r| r.hour.starts_with(&day.to_string()))
            .collect();
        let total: i64 = of_day.iter().map(|r| r.requests).sum();
        let failed: i64 = of_day.iter().map(|r| r.server_errors).sum();
        let client: i64 = of_day.iter().map(|r| r.client_errors).sum();
        let micros: i64 = of_day.iter().map(|r| r.duration_micros).sum();
        let mut buckets = [0i64; BUCKETS];
        for r in &of_day {
            for (sum, b) in buckets.iter_mut().zip(r.buckets) {
                *sum += b;
            }
        }
        assert_eq!((total, failed, client), (1700, 8, 24), "seeds as written");
        let r = &report.requests;
        assert_eq!(
            (r.total, r.succeeded, r.failed, r.client_errors),
            (total, total - failed, failed, client),
            "{}",
            t.name
        );
        assert!(
            close(r.error_rate.unwrap(), failed as f64 / total as f64),
            "{}",
            t.name
        );
        let counted: i64 = buckets.iter().sum();
        assert!(
            close(
                r.average_ms.unwrap(),
                (micros as f64 / counted as f64).round() / 1e3
            ),
            "{} {:?}",
            t.name,
            r.average_ms
        );
        assert!(
            (r.p95_ms.unwrap() - p95(&buckets) * 1e3).abs() < 1e-3,
            "{} {:?} vs {}",
            t.name,
            r.p95_ms,
            p95(&buckets) * 1e3
        );
        let classes: BTreeMap<&str, i64> = report
            .by_route_class
            .iter()
            .map(|c| (c.route_class.as_str(), c.requests.total))
            .collect();
        assert_eq!(
            classes,
            BTreeMap::from([("evaluation", 1500), ("admin", 200)]),
            "{}",
            t.name
        );

        // Uptime: 10:00 has every minute but the 3rd (a's bad minute); 11:00 has 0..10 and 59.
        let a = &report.availability;
        assert_eq!((a.minutes, a.up_minutes), (1440, 59 + 11), "{}", t.name);
        assert!(close(a.uptime.unwrap(), 70.0 / 1440.0), "{}", t.name);
        assert_eq!(
            (a.budget_day.total, a.budget_day.failed),
            (total, failed),
            "{}",
            t.name
        );
        assert!(
            close(
                a.budget_day.consumed.unwrap(),
                failed as f64 / (total as f64 * 0.001)
            ),
            "{}",
            t.name
        );
        assert_eq!(
            (a.budget_window.total, a.budget_window.failed),
            (total + 100, failed + 50),
            "{}",
            t.name
        );
        assert_eq!(
            a.budget_window.from,
            day.minus(29).to_string(),
            "{}",
            t.name
        );
        assert!(
            close(a.budget_window.consumed.unwrap(), 58.0 / (1800.0 * 0.001)),
            "{}",
            t.name
        );

        // Evaluations: summed over environments and reasons, the day's hours only.
        let mut expected: BTreeMap<(String, String), BTreeMap<String, i64>> = BTreeMap::new();
        for c in counts
            .iter()
            .filter(|c| c.hour.starts_with(&day.to_string()))
        {
            *expected
                .entry((c.project.clone(), c.flag.clone()))
                .or_default()
                .entry(c.variant.clone())
                .or_default() += c.count;
        }
        let got: BTreeMap<(String, String), BTreeMap<String, i64>> = report
            .evaluations
            .by_flag
            .iter()
            .map(|f| ((f.project.clone(), f.flag.clone()), f.variants.clone()))
            .collect();
        assert_eq!(got, expected, "{}", t.name);
        assert_eq!(report.evaluations.total, 143, "{}", t.name);
        assert_eq!(
            report.evaluations.by_project,
            BTreeMap::from([("blog".to_string(), 3), ("shop".to_string(), 140)]),
            "{}",
            t.name
        );
        let top: Vec<(&str, i64)> = report
            .top_flags
            .iter()
            .map(|f| (f.flag.as_str(), f.total))
            .collect();
        // A tie (70 each) goes by project, then flag.
        assert_eq!(
            top,
            [("banner", 70), ("checkout", 70), ("comments", 3)],
            "{}",
            t.name
        );
        assert!(report.jobs.is_empty(), "no job_runs yet");
        assert_eq!(report.changes.total, 0, "no changes yesterday: {}", t.name);
    }
}

#[tokio::test]
async fn the_daily_report_counts_todays_flag_changes_by_actor() {
    for t in support::all().await {
        let s = &t.store;
        create_project(s, "shop").await;
        let ana = Actor::user("usr_ana", "Ana");
        let ci = Actor::token("tok_ci", "ci");
        create_flag(s, &ana, "shop", json!({"key": "a", "type": "boolean"})).await;
        create_flag(s, &ana, "shop", json!({"key": "b", "type": "boolean"})).await;
        create_flag(s, &ci, "shop", json!({"key": "c", "type": "boolean"})).await;
        for key in ["a", "c"] {
            s.write(
                &WriteMeta::new(ci.clone(), "seed"),
                WriteOp::PatchFlag {
                    project: "shop".into(),
                    key: key.into(),
                    expected_version: Expected::Any,
                    patch: json!({"description": "changed"}),
                },
            )
            .await
            .unwrap();
        }
        s.write(
            &WriteMeta::new(ana.clone(), "seed"),
            WriteOp::DeleteFlag {
                project: "shop".into(),
                key: "b".into(),
                expected_version: Expected::Any,
            },
        )
        .await
        .unwrap();
        let now = OffsetDateTime::now_utc();
        let report = hata_reports::daily(s, Day::of(now), now).await.unwrap();
        let c = &report.changes;
        assert_eq!(c.total, 6, "{}", t.name);
        let flags: Vec<(&str, i64)> = c
            .flags
            .iter()
            .map(|f| (f.flag.as_str(), f.changes))
            .collect();
        assert_eq!(flags, [("a", 2), ("b", 2), ("c", 2)], "{}", t.name);
        let actors: Vec<(&str, Option<&str>, i64, BTreeMap<String, i64>)> = c
            .by_actor
            .iter()
            .map(|a| {
                (
                    a.actor.as_str(),
                    a.name.as_deref(),
                    a.total,
                    a.actions.clone(),
                )
            })
            .collect();
        let actions = |pairs: &[(&str, i64)]| {
            pairs
                .iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            actors,
            [
                (
                    "token:tok_ci",
                    Some("ci"),
                    3,
                    actions(&[("create", 1), ("update", 2)])
                ),
                (
                    "user:usr_ana",
                    Some("Ana"),
                    3,
                    actions(&[("create", 2), ("delete", 1)])
                ),
            ],
            "{}",
            t.name
        );
        // Tomorrow is refused, naming the parameter.
        let err = hata_reports::daily(s, Day::of(now).plus(1), now)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                hata_reports::ReportError::Invalid { field: "date", .. }
            ),
            "{err}"
        );
        // The Markdown names the actors.
        let md = hata_reports::markdown::daily(&report);
        assert!(md.contains("| Ana (user:usr_ana) | 3 |"), "{md}");
    }
}

#[tokio::test]
async fn the_stale_report_finds_exactly_the_candidates() {
    for t in support::all().await {
        let s = &t.store;
        create_project(s, "shop").await;
        create_project(s, "blog").await;
        let me = Actor::system("test");
        for (project, v) in [
            (
                "shop",
                json!({"key": "unused", "type": "boolean", "owner": "ana"}),
            ),
            (
                "shop",
                json!({"key": "old-eval", "type": "boolean", "owner": "bo"}),
            ),
            (
                "shop",
                json!({"key": "single", "type": "boolean", "owner": "cy"}),
            ),
            ("shop", json!({"key": "mixed", "type": "boolean"})),
            (
                "shop",
                json!({"key": "temp-young", "type": "boolean", "temporary": true, "lifetime_days": 60}),
            ),
            (
                "shop",
                json!({"key": "temp-old", "type": "boolean", "temporary": true, "owner": "dee"}),
            ),
            (
                "shop",
                json!({"key": "gone", "type": "boolean", "archived": true}),
            ),
            (
                "blog",
                json!({"key": "short", "type": "boolean", "temporary": true, "lifetime_days": 10, "owner": "eve"}),
            ),
        ] {
            create_flag(s, &me, project, v).await;
        }
        // The report runs 40 days from now: every flag has existed for 40 days.
        let now = OffsetDateTime::now_utc() + Duration::days(40);
        let at = |ago: i64| hata_store::rfc3339(now - Duration::days(ago));
        let hour = |ago: i64| {
            let t = now - Duration::days(ago);
            format!("{}T{:02}:00:00Z", Day::of(t), t.hour())
        };
        let count = |flag: &str, env: &str, ago: i64, variant: &str| EvaluationCount {
            project: "shop".into(),
            environment: env.into(),
            flag: flag.into(),
            hour: hour(ago),
            variant: variant.into(),
            reason: "default".into(),
            count: 5,
        };
        let seen = |flag: &str, env: &str, ago: i64| FlagEvaluated {
            project: "shop".into(),
            environment: env.into(),
            flag: flag.into(),
            at: at(ago),
        };
        let mut counts = vec![
            count("old-eval", "production", 35, "on"),
            count("single", "production", 1, "on"),
            count("single", "development", 2, "on"),
            // Before the window: does not count against "one variant".
            count("single", "production", 35, "off"),
        ];
        let mut evaluated = vec![
            seen("old-eval", "production", 35),
            seen("single", "production", 1),
            seen("single", "development", 2),
        ];
        for f in ["mixed", "temp-young", "temp-old"] {
            counts.push(count(f, "production", 1, "on"));
            counts.push(count(f, "production", 1, "off"));
            evaluated.push(seen(f, "production", 1));
        }
        s.record_evaluations(&counts, &evaluated).await.unwrap();

        let report = hata_reports::stale(s, StaleOptions::new(Some(30)).unwrap(), now)
            .await
            .unwrap();
        let got: Vec<(String, String, String, Vec<&str>, Option<String>)> = report
            .candidates
            .iter()
            .map(|c| {
                (
                    c.project.clone(),
                    c.flag.clone(),
                    c.owner.clone(),
                    c.reasons.iter().map(|r| r.as_str()).collect(),
                    c.variant.clone(),
                )
            })
            .collect();
        let want = |p: &str, f: &str, o: &str, r: &[&'static str], v: Option<&str>| {
            (
                p.to_string(),
                f.to_string(),
                o.to_string(),
                r.to_vec(),
                v.map(str::to_string),
            )
        };
        assert_eq!(
            got,
            vec![
                want(
                    "blog",
                    "short",
                    "eve",
                    &["not_evaluated", "temporary_expired"],
                    None
                ),
                want("shop", "old-eval", "bo", &["not_evaluated"], None),
                want("shop", "single", "cy", &["single_variant"], Some("on")),
                want("shop", "temp-old", "dee", &["temporary_expired"], None),
                want("shop", "unused", "ana", &["not_evaluated"], None),
            ],
            "{}",
            t.name
        );
        let old = report
            .candidates
            .iter()
            .find(|c| c.flag == "old-eval")
            .unwrap();
        assert_eq!(
            old.last_evaluated.as_deref(),
            Some(at(35).as_str()),
            "{}",
            t.name
        );
        // With a window of 45 days, "old-eval" was evaluated in it and "single" served two
        // variants; nothing is older than 45 days, so nothing is unevaluated for that long.
        let wide = hata_reports::stale(s, StaleOptions::new(Some(45)).unwrap(), now)
            .await
            .unwrap();
        let flags: Vec<&str> = wide.candidates.iter().map(|c| c.flag.as_str()).collect();
        assert_eq!(flags, ["short", "temp-old"], "{}", t.name);
        assert!(matches!(
            StaleOptions::new(Some(0)),
            Err(hata_reports::ReportError::Invalid { field: "days", .. })
        ));
        let md = hata_reports::markdown::stale(&report);
        assert!(
            md.contains("| shop | single | cy | single_variant |"),
            "{md}"
        );
    }
}

/// One run of `job` scheduled at `at`: each of `attempts` ends as given (all but the last
/// `retrying`); `detail` for a success.
async fn job_run(s: &Store, job: &str, at: OffsetDateTime, attempts: &[&'static str]) {
    use hata_store::jobs::{AttemptEnd, Lease};
    let never = |_: i64, _: &str| -> Option<String> { None };
    let scheduled = hata_store::rfc3339(at);
    s.enqueue_job_run(job, &scheduled, "schedule", None)
        .await
        .unwrap();
    for (i, how) in attempts.iter().copied().enumerate() {
        let start = at + Duration::minutes(10 * i as i64 + 1);
        let (now, until) = (
            hata_store::rfc3339(start),
            hata_store::rfc3339(start + Duration::minutes(1)),
        );
        let lease = Lease {
            replica: "r1",
            now: &now,
            until: &until,
        };
        let run = s
            .claim_job_run(job, lease, &never)
            .await
            .unwrap()
            .expect("a due run");
        let end = AttemptEnd {
            outcome: how,
            finished_at: hata_store::rfc3339(start + Duration::seconds(5)),
            duration_ms: 5000,
            error: (how != "succeeded").then(|| format!("attempt {} failed", i + 1)),
            detail: (how == "succeeded").then(|| format!("{job} done")),
            next_attempt_at: (how == "retrying")
                .then(|| hata_store::rfc3339(start + Duration::minutes(5))),
        };
        assert!(s
            .finish_job_attempt(run.id, "r1", run.attempts, &end)
            .await
            .unwrap());
    }
}

#[tokio::test]
async fn the_daily_report_counts_the_days_job_runs_and_lists_its_backups() {
    for t in support::all().await {
        let s = &t.store;
        let now = OffsetDateTime::now_utc();
        let day = Day::yesterday(now);
        let at = |h: i64, m: i64| day.start() + Duration::hours(h) + Duration::minutes(m);
        // The day before: not counted.
        job_run(s, "backup-full", at(-22, 0), &["succeeded"]).await;
        job_run(s, "backup-full", at(2, 0), &["succeeded"]).await;
        job_run(s, "backup-incremental", at(1, 0), &["succeeded"]).await;
        job_run(
            s,
            "backup-incremental",
            at(2, 0),
            &["retrying", "succeeded"],
        )
        .await;
        job_run(
            s,
            "backup-incremental",
            at(3, 0),
            &["retrying", "retrying", "retrying", "failed"],
        )
        .await;
        job_run(s, "retention", at(4, 0), &["succeeded"]).await;
        // Still waiting for its retry at the end of the day.
        job_run(s, "retention", at(23, 50), &["retrying"]).await;

        let report = hata_reports::daily(s, day, now).await.unwrap();
        let jobs: Vec<(&str, i64, i64, i64, i64)> = report
            .jobs
            .iter()
            .map(|j| {
                (
                    j.job.as_str(),
                    j.succeeded,
                    j.failed,
                    j.unfinished,
                    j.failed_attempts,
                )
            })
            .collect();
        assert_eq!(
            jobs,
            [
                ("backup-full", 1, 0, 0, 0),
                ("backup-incremental", 2, 1, 0, 5),
                ("retention", 1, 0, 1, 1),
            ],
            "{}",
            t.name
        );
        let backups: Vec<(&str, &str, i64, Option<&str>)> = report
            .backups
            .iter()
            .map(|b| {
                (
                    b.job.as_str(),
                    b.outcome.as_str(),
                    b.attempts,
                    b.detail.as_deref().or(b.error.as_deref()),
                )
            })
            .collect();
        assert_eq!(
            backups,
            [
                (
                    "backup-incremental",
                    "succeeded",
                    1,
                    Some("backup-incremental done")
                ),
                ("backup-full", "succeeded", 1, Some("backup-full done")),
                (
                    "backup-incremental",
                    "succeeded",
                    2,
                    Some("backup-incremental done")
                ),
                ("backup-incremental", "failed", 4, Some("attempt 4 failed")),
            ],
            "{}: oldest first",
            t.name
        );
        let md = hata_reports::markdown::daily(&report);
        assert!(
            md.contains("| backup-incremental | 2 | 1 | 0 | 5 |"),
            "{md}"
        );
        assert!(md.contains("attempt 4 failed"), "{md}");
        // The webhook's message: the summary counts the runs, the block is the Markdown.
        let message = hata_reports::slack::daily_message(&report);
        let text = message["text"].as_str().unwrap_or_default();
        assert!(
            text.contains(&day.to_string()) && text.contains("4 succeeded / 1 failed"),
            "{text}"
        );
        assert_eq!(message["blocks"][0]["type"], "markdown");
        assert_eq!(message["blocks"][0]["text"].as_str(), Some(md.as_str()));
    }
}
