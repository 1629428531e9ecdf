//! `hata report daily | stale` on a store: the binary reads what the store holds, prints JSON
//! or Markdown, and refuses bad options naming them.

mod support;

use hata_store::serving_hours::{ServingHour, BUCKETS};
use serde_json::Value;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = support::hata(args, &[]).output().expect("run hata");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn reports_print_what_the_store_holds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let (ok, _, stderr) = run(&["migrate", "--data-dir", &data]);
    assert!(ok, "{stderr}");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());
    let store = hata_store::Store::open(&hata_store::StoreConfig::new(url))
        .await
        .unwrap();
    let yesterday = hata_reports::Day::yesterday(time::OffsetDateTime::now_utc());
    let mut buckets = [0; BUCKETS];
    buckets[1] = 40;
    store
        .record_serving_hours(&[ServingHour {
            hour: format!("{yesterday}T08:00:00Z"),
            instance: "a".into(),
            route_class: "evaluation".into(),
            requests: 40,
            ok: 39,
            server_errors: 1,
            buckets,
            duration_micros: 300_000,
            minutes: 0b111,
            ..ServingHour::default()
        }])
        .await
        .unwrap();
    store.close().await;

    // Default: yesterday.
    let (ok, stdout, stderr) = run(&["report", "daily", "--data-dir", &data, "--format", "json"]);
    assert!(ok, "{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["date"], yesterday.to_string());
    assert_eq!(report["requests"]["total"], 40, "{report:#}");
    assert_eq!(report["requests"]["failed"], 1, "{report:#}");
    assert_eq!(report["availability"]["up_minutes"], 3, "{report:#}");
    let (ok, stdout, stderr) = run(&[
        "report",
        "daily",
        "--data-dir",
        &data,
        "--date",
        &yesterday.to_string(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("| evaluation | 40 | 39 | 1 |"), "{stdout}");

    let (ok, stdout, stderr) = run(&["report", "stale", "--data-dir", &data]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("No removal candidates."), "{stdout}");

    let (ok, _, stderr) = run(&[
        "report",
        "daily",
        "--data-dir",
        &data,
        "--date",
        "23.11.2026",
    ]);
    assert!(!ok && stderr.contains("--date"), "{stderr}");
    let (ok, _, stderr) = run(&["report", "stale", "--data-dir", &data, "--days", "0"]);
    assert!(!ok && stderr.contains("--days"), "{stderr}");
}

/// What the receiver got: each request's path and JSON body.
type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>;

/// A Slack-compatible receiver on a free port: it records every POST (path and JSON body)
/// and answers the first one 503, the others 200.
async fn webhook_receiver() -> (String, Received) {
    use axum::http::{StatusCode, Uri};
    let received: Received = Default::default();
    let seen = received.clone();
    let app = axum::Router::new().fallback(move |uri: Uri, body: axum::body::Bytes| {
        let seen = seen.clone();
        async move {
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let mut seen = seen.lock().expect("lock");
            seen.push((uri.path().to_string(), body));
            if seen.len() == 1 {
                (StatusCode::SERVICE_UNAVAILABLE, "try again later")
            } else {
                (StatusCode::OK, "ok")
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), received)
}

/// `hata serve` with a report webhook: the `report-webhook` job posts yesterday's daily report
/// (`text` and a `markdown` block); a 503 fails the attempt and the retry delivers it. The
/// URL's secret path appears neither in the run nor in the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_morning_report_reaches_the_webhook_with_the_jobs_retries() {
    const SECRET: &str = "hata-webhook-secret-5c1e9a";
    support::secrets::remember(SECRET);
    let (base, received) = webhook_receiver().await;
    let url = format!("{base}/services/T0/B0/{SECRET}");
    let dir = tempfile::tempdir().expect("dir");
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());
    let replica = support::Replica::start_with_env(
        "webhook",
        &db,
        &[
            ("HATA_REPORT_WEBHOOK_URL", url.as_str()),
            ("HATA_JOB_RETRY_DELAYS", "200ms,200ms"),
        ],
    )
    .await;
    let overview = replica
        .admin_ok(reqwest::Method::GET, "/jobs", None, reqwest::StatusCode::OK)
        .await;
    assert!(
        overview.to_string().contains("report-webhook")
            && overview.to_string().contains("0 7 * * *"),
        "{overview:#}"
    );
    let asked = replica
        .admin_ok(
            reqwest::Method::POST,
            "/jobs/report-webhook/run",
            None,
            reqwest::StatusCode::ACCEPTED,
        )
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let run = loop {
        let listed = replica
            .admin_ok(
                reqwest::Method::GET,
                "/jobs?job=report-webhook&limit=5",
                None,
                reqwest::StatusCode::OK,
            )
            .await;
        let run = listed["runs"]
            .as_array()
            .and_then(|runs| runs.iter().find(|r| r["id"] == asked["id"]))
            .cloned()
            .unwrap_or_default();
        if run["outcome"] == "succeeded" || run["outcome"] == "failed" {
            break run;
        }
        assert!(std::time::Instant::now() < deadline, "{listed:#}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(run["outcome"], "succeeded", "{run:#}");
    assert_eq!(run["attempts"], 2, "the 503 was retried: {run:#}");
    // The failed attempt was logged naming the host and the answer, not the URL.
    let log = replica.log();
    let failed = log
        .lines()
        .find(|l| l.contains("job failed") && l.contains("report-webhook"))
        .unwrap_or_else(|| panic!("no failed attempt logged:\n{log}"));
    assert!(
        failed.contains("503") && failed.contains(&base),
        "the failed attempt names the host and the answer: {failed}"
    );

    let yesterday = hata_reports::Day::yesterday(time::OffsetDateTime::now_utc()).to_string();
    let received = received.lock().expect("lock").clone();
    assert_eq!(received.len(), 2, "{received:#?}");
    for (path, body) in &received {
        assert_eq!(path, &format!("/services/T0/B0/{SECRET}"));
        let text = body["text"].as_str().unwrap_or_default();
        assert!(
            text.starts_with(&format!("hata daily report {yesterday}:")),
            "{body:#}"
        );
        assert_eq!(body["blocks"][0]["type"], "markdown", "{body:#}");
        let markdown = body["blocks"][0]["text"].as_str().unwrap_or_default();
        assert!(
            markdown.starts_with(&format!("# hata daily report: {yesterday}"))
                && markdown.contains("## Backups and jobs"),
            "{markdown}"
        );
    }
    assert!(
        !replica.log().contains(SECRET),
        "the webhook URL was logged"
    );
}
