//! The deploy kit reads only what hata exposes: every metric name the alert rules
//! (`deploy/prometheus/alerts.yml`) and the Grafana dashboard (`deploy/grafana/dashboards/`)
//! use is one that `GET /metrics` of a running hata lists. (`up` is Prometheus's own and
//! `redis_*` come from redis_exporter; recording rules, `hata:…`, are defined in the file.)

mod support;

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::StatusCode;
use support::{Reply, TestServer};

fn repo_file(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The sample names a scrape can hold, from its `# TYPE` lines: a counter `x` is sampled as
/// `x_total`, a histogram as `x_bucket`, `x_sum` and `x_count`, an info as `x_info`.
fn exposed(scrape: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in scrape.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        let suffixes: &[&str] = match kind {
            "counter" => &["_total", ""],
            "histogram" => &["_bucket", "_sum", "_count"],
            "info" => &["_info"],
            _ => &[""],
        };
        for suffix in suffixes {
            let full = if name.ends_with(suffix) {
                name.to_string()
            } else {
                format!("{name}{suffix}")
            };
            names.insert(full);
        }
    }
    names
}

/// Metric names in PromQL text: hata's, the database pool's and the process family.
fn used(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
        if i > start {
            let word = &text[start..i];
            let before = start.checked_sub(1).map(|b| bytes[b]);
            let metric = ["hata_", "http_", "db_", "process_"]
                .iter()
                .any(|p| word.starts_with(p));
            // `hata:…` recording rules are not words of this shape; labels are never these.
            if metric && before != Some(b':') {
                names.insert(word.to_string());
            }
        } else {
            i += 1;
        }
    }
    names
}

#[tokio::test]
async fn every_metric_the_deploy_kit_reads_is_exposed() {
    // On PostgreSQL, as the deploy kit runs hata (the change listener exists only there).
    let Some(s) = TestServer::start_postgres().await else {
        return;
    };
    let scrape = Reply::of(s.client.get(s.url("/metrics")))
        .await
        .expect(StatusCode::OK);
    let scrape = match &scrape.body {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let exposed = exposed(&scrape);
    let mut read = used(&repo_file("deploy/prometheus/alerts.yml"));
    let dashboards = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana/dashboards");
    let mut count = 0;
    for entry in std::fs::read_dir(&dashboards).expect("the dashboards folder") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            read.extend(used(&std::fs::read_to_string(&path).expect("a dashboard")));
            count += 1;
        }
    }
    assert!(count >= 1, "no dashboard in {}", dashboards.display());
    assert!(
        read.len() >= 10,
        "too few names found, is the parser right? {read:?}"
    );
    let missing: Vec<&String> = read.iter().filter(|n| !exposed.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "read by the deploy kit, not exposed by /metrics: {missing:?}\nexposed: {exposed:?}"
    );
}
