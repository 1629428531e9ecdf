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
