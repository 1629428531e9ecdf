//! The jobs API on SQLite and PostgreSQL: a run asked for through `POST /api/v1/jobs/{job}/run`
//! runs (the retention job here: old evaluation data goes, recent stays), is recorded in
//! `job_runs`, shows in `GET /api/v1/jobs` and in `/metrics`; an unknown job is a 404 naming
//! it, and a server whose jobs are off refuses with 409.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use hata_store::EvaluationCount;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::{Reply, TestServer};

fn with_jobs() -> hata_server::ServerConfig {
    let mut jobs = hata_jobs::JobsConfig::default();
    jobs.enabled = true;
    jobs.poll = Duration::from_millis(50);
    jobs.register(
        hata_jobs::names::RETENTION,
        Arc::new(hata_jobs::Retention::new(
            Some(Duration::from_secs(30 * 86_400)),
            None,
        )),
    );
    hata_server::ServerConfig {
        jobs,
        ..Default::default()
    }
}

fn count(hour: &str) -> EvaluationCount {
    EvaluationCount {
        project: "shop".into(),
        environment: "production".into(),
        flag: "dark-mode".into(),
        hour: hour.into(),
        variant: "on".into(),
        reason: "STATIC".into(),
        count: 7,
    }
}

async fn servers() -> Vec<TestServer> {
    let mut v = vec![TestServer::start_with(with_jobs()).await];
    v.extend(TestServer::start_postgres_with(with_jobs()).await);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_asked_for_runs_is_listed_and_counted() {
    for mut s in servers().await {
        let recent = time::OffsetDateTime::now_utc() - time::Duration::hours(2);
        let recent_hour = format!(
            "{:04}-{:02}-{:02}T{:02}:00:00Z",
            recent.year(),
            u8::from(recent.month()),
            recent.day(),
            recent.hour()
        );
        s.store
            .record_evaluations(&[count("2020-01-01T10:00:00Z"), count(&recent_hour)], &[])
            .await
            .expect("record counts");

        let listed = s.get("/api/v1/jobs").await.expect(StatusCode::OK).body;
        assert_eq!(listed["enabled"], true);
        assert_eq!(listed["jobs"][0]["name"], "retention", "{listed:#}");
        assert_eq!(listed["jobs"][0]["schedule"], "0 4 * * *");
        assert!(
            listed["jobs"][0]["next_run"].as_str().is_some(),
            "{listed:#}"
        );
        assert_eq!(listed["runs"], serde_json::json!([]));

        s.post("/api/v1/jobs/ghost/run", &Value::Null)
            .await
            .problem(StatusCode::NOT_FOUND);
        let unknown = s.post("/api/v1/jobs/ghost/run", &Value::Null).await;
        assert!(
            unknown.body["detail"]
                .as_str()
                .unwrap_or("")
                .contains("ghost"),
            "{:#}",
            unknown.body
        );

        let asked = Reply::of(s.admin(Method::POST, "/api/v1/jobs/retention/run"))
            .await
            .expect(StatusCode::ACCEPTED)
            .body;
        let id = asked["id"].as_i64().expect("the run's id");
        assert_eq!(asked["job"], "retention");
        assert_eq!(asked["trigger"], "manual");

        let deadline = Instant::now() + Duration::from_secs(15);
        let run = loop {
            let listed = s
                .get("/api/v1/jobs?job=retention&limit=5")
                .await
                .expect(StatusCode::OK)
                .body;
            let run = listed["runs"]
                .as_array()
                .and_then(|runs| runs.iter().find(|r| r["id"] == id))
                .cloned()
                .unwrap_or(Value::Null);
            if run["outcome"] == "succeeded" {
                assert_eq!(listed["jobs"][0]["last_run"]["id"], id, "{listed:#}");
                break run;
            }
            assert!(
                Instant::now() < deadline,
                "the run never succeeded: {listed:#}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(run["attempts"], 1);
        assert!(
            run["detail"]
                .as_str()
                .unwrap_or("")
                .contains("1 count rows"),
            "{run:#}"
        );
        let stored = s.store.job_run(id).await.expect("recorded in job_runs");
        assert_eq!(stored.outcome, "succeeded");

        let kept = s
            .store
            .evaluation_counts(
                "shop",
                "dark-mode",
                None,
                "2000-01-01T00:00:00Z",
                "2100-01-01T00:00:00Z",
            )
            .await
            .expect("counts");
        assert_eq!(kept.len(), 1, "only the old hour went: {kept:?}");
        assert_eq!(kept[0].hour, recent_hour);

        let metrics = s
            .client
            .get(s.url("/metrics"))
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text");
        assert!(
            metrics.contains("hata_job_runs_total{job_name=\"retention\"} 1"),
            "{metrics}"
        );
        assert!(
            metrics.contains("hata_job_failures_total{job_name=\"retention\"} 0"),
            "{metrics}"
        );
        assert!(
            metrics.contains("hata_job_last_success_timestamp_seconds{job_name=\"retention\"}"),
            "{metrics}"
        );

        s.get("/api/v1/jobs?limit=0")
            .await
            .invalid_at("limit", "from 1 to 500");
        s.stop().await;
    }
}

#[tokio::test]
async fn with_jobs_off_a_run_is_refused() {
    let mut config = with_jobs();
    config.jobs.enabled = false;
    let mut s = TestServer::start_with(config).await;
    let listed = s.get("/api/v1/jobs").await.expect(StatusCode::OK).body;
    assert_eq!(listed["enabled"], false);
    assert_eq!(listed["jobs"][0]["next_run"], Value::Null);
    let refused = Reply::of(s.admin(Method::POST, "/api/v1/jobs/retention/run"))
        .await
        .problem(StatusCode::CONFLICT);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("jobs_enabled"),
        "{:#}",
        refused.body
    );
    assert!(s.store.job_runs(None, 10).await.expect("runs").is_empty());
    s.stop().await;
}
