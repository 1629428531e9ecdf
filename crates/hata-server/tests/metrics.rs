//! `GET /metrics` against a real server: the exposition parses, the families are there, and
//! the numbers move with the requests made (the single-flag fast path counted under its
//! route template), evaluation totals per flag, variant and reason fold past the limit, the
//! bearer token protects it, and a listener of its own serves it.

mod support;

use std::collections::BTreeMap;

use hata_server::metrics::MetricsConfig;
use hata_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{Reply, TestServer};

/// One sample: its name and labels, and its value.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

/// The exposition: `# TYPE` of each family, and every sample.
struct Exposition {
    types: BTreeMap<String, String>,
    samples: Samples,
}

/// A small parser of the text format (0.0.4): `# HELP`/`# TYPE` lines and samples
/// `name{label="value",…} value`, label values with `\\`, `\"` and `\n` escapes. Anything
/// else fails the test.
fn parse(text: &str) -> Exposition {
    let mut types = BTreeMap::new();
    let mut samples = Samples::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            assert!(
                ["counter", "gauge", "histogram"].contains(&kind),
                "type {kind} in {line}"
            );
            assert!(
                types.insert(name.to_string(), kind.to_string()).is_none(),
                "{line}"
            );
            continue;
        }
        if line.starts_with("# HELP ") || line.is_empty() {
            continue;
        }
        assert!(!line.starts_with('#'), "unexpected comment {line}");
        let (series, value) = line.rsplit_once(' ').expect("a sample and its value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value of {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                (name.to_string(), labels_of(body, line))
            }
        };
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        assert!(
            samples.insert((name, labels), value).is_none(),
            "repeated: {line}"
        );
    }
    Exposition { types, samples }
}

fn labels_of(mut body: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !body.is_empty() {
        let (key, rest) = body
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label in {line}"));
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => panic!("escape at the end in {line}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated value in {line}"),
            }
        };
        labels.insert(key.to_string(), value);
        body = rest[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&rest[end + 1..]);
    }
    labels
}

impl Exposition {
    /// The value of `name` with exactly these labels, if present.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples.get(&(name.to_string(), labels)).copied()
    }

    /// Samples of `name` whose labels include `labels`.
    fn matching(
        &self,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Vec<(&BTreeMap<String, String>, f64)> {
        self.samples
            .iter()
            .filter(|((n, l), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
            })
            .map(|((_, l), v)| (l, *v))
            .collect()
    }

    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).iter().map(|(_, v)| v).sum()
    }
}

async fn scrape(s: &TestServer) -> Exposition {
    let r = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    parse(&r.text().await.expect("body"))
}

async fn evaluate(s: &TestServer, token: &str, path: &str) -> Reply {
    Reply::of(
        s.as_token(token, Method::POST, path)
            .header("content-type", "application/json")
            .body(r#"{"context": {"targetingKey": "u-1"}}"#),
    )
    .await
}

async fn flags(s: &TestServer, keys: &[&str]) {
    s.project("shop").await;
    for key in keys {
        s.flag(
            "shop",
            json!({"key": key, "type": "boolean", "environments": {"development": {
                "enabled": true, "off_variant": "off", "default": {"variant": "on"}}}}),
        )
        .await;
    }
}

const SINGLE: &str = "/ofrep/v1/evaluate/flags/{key}";

#[tokio::test]
async fn families_are_exposed_and_requests_are_counted_under_their_templates() {
    let s = TestServer::start().await;
    flags(&s, &["banner"]).await;
    let token = s.evaluation_token("client", "shop").await;
    let before = scrape(&s).await;
    for family in [
        ("http_requests_total", "counter"),
        ("http_request_duration_seconds", "histogram"),
        ("hata_evaluations_total", "counter"),
        ("hata_rule_set_revision", "gauge"),
        ("hata_rule_set_age_seconds", "gauge"),
        ("db_connection_pool_usage", "gauge"),
        ("db_connection_pool_in_use", "gauge"),
        ("db_connection_pool_idle", "gauge"),
        ("db_connection_pool_max", "gauge"),
        ("hata_sse_streams", "gauge"),
        ("hata_rate_limited_total", "counter"),
        ("hata_store_operation_duration_seconds", "histogram"),
        ("hata_rule_set_propagation_seconds", "histogram"),
        ("hata_ready", "gauge"),
        ("hata_health_check_up", "gauge"),
        ("hata_auth_failures_total", "counter"),
        ("hata_job_runs_total", "counter"),
        ("hata_job_failures_total", "counter"),
        ("hata_job_last_success_timestamp_seconds", "gauge"),
        ("hata_backup_last_success_timestamp_seconds", "gauge"),
        ("hata_build_info", "gauge"),
        ("process_cpu_seconds_total", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
    ] {
        assert_eq!(
            before.types.get(family.0).map(String::as_str),
            Some(family.1),
            "{family:?}"
        );
    }
    // The OFREP single-flag fast path, a flag that does not exist, and a path no route has.
    for _ in 0..3 {
        let r = evaluate(&s, &token, "/ofrep/v1/evaluate/flags/banner").await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let missing = evaluate(&s, &token, "/ofrep/v1/evaluate/flags/nope").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    s.get("/no/such/path").await.expect(StatusCode::NOT_FOUND);
    s.get("/api/v1/projects/shop").await.expect(StatusCode::OK);
    let after = scrape(&s).await;
    let count = |e: &Exposition, route: &str, method: &str, status: &str| {
        e.get(
            "http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(
        count(&after, SINGLE, "POST", "200") - count(&before, SINGLE, "POST", "200"),
        3.0
    );
    assert_eq!(
        count(&after, SINGLE, "POST", "404") - count(&before, SINGLE, "POST", "404"),
        1.0
    );
    assert_eq!(count(&after, "unmatched", "GET", "404"), 1.0);
    assert!(count(&after, "/api/v1/projects/{project}", "GET", "200") >= 1.0);
    // No raw path is ever a label.
    for (labels, _) in after.matching("http_requests_total", &[]) {
        let route = &labels["route"];
        assert!(route == "unmatched" || route.starts_with('/'), "{route}");
        assert!(
            !route.contains("banner") && !route.contains("shop"),
            "{route}"
        );
    }
    // The histogram of the fast path: cumulative buckets ending in +Inf = count.
    let labels = [("method", "POST"), ("route", SINGLE)];
    let total = after
        .get("http_request_duration_seconds_count", &labels)
        .unwrap();
    assert_eq!(total, 4.0);
    let mut inf = labels.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(
        after.get("http_request_duration_seconds_bucket", &inf),
        Some(total)
    );
    let mut small = labels.to_vec();
    small.push(("le", "0.005"));
    let first = after
        .get("http_request_duration_seconds_bucket", &small)
        .unwrap();
    assert!(first <= total);
    assert!(
        after
            .get("http_request_duration_seconds_sum", &labels)
            .unwrap()
            > 0.0
    );
    // Scrape-time families.
    assert_eq!(
        after.get(
            "hata_rule_set_revision",
            &[("project", "shop"), ("environment", "development")]
        ),
        Some(s.revision("shop", "development").await as f64)
    );
    assert!(after.sum("db_connection_pool_max", &[]) >= 1.0);
    // The writes of the setup (a project, a flag, a token) went through the one write path.
    let writes = [("operation", "write")];
    assert!(
        after
            .get("hata_store_operation_duration_seconds_count", &writes)
            .unwrap()
            >= 3.0
    );
    assert!(
        after
            .get("hata_store_operation_duration_seconds_sum", &writes)
            .unwrap()
            > 0.0
    );
    // Reads are timed where they are made, whoever calls: every rule set was loaded at start
    // and the token cache read every token.
    for operation in ["load_rule_set", "list_tokens"] {
        assert!(
            after
                .get(
                    "hata_store_operation_duration_seconds_count",
                    &[("operation", operation)]
                )
                .unwrap_or(0.0)
                >= 1.0,
            "{operation}"
        );
    }
    // Readiness as `/health/ready` decides it, each check named.
    assert_eq!(after.get("hata_ready", &[]), Some(1.0));
    assert_eq!(
        after.get("hata_health_check_up", &[("check", "store")]),
        Some(1.0)
    );
    assert_eq!(
        after.get("hata_health_check_up", &[("check", "rule_sets")]),
        Some(1.0)
    );
    let usage = after.matching("db_connection_pool_usage", &[]);
    assert!(!usage.is_empty() && usage.iter().all(|(_, v)| (0.0..=1.0).contains(v)));
    let build = after.matching("hata_build_info", &[]);
    assert_eq!(build.len(), 1);
    assert_eq!(build[0].0["version"], env!("CARGO_PKG_VERSION"));
    assert!(!build[0].0["commit"].is_empty());
    assert!(after.get("process_resident_memory_bytes", &[]).unwrap() > 0.0);
    assert!(after.get("process_open_fds", &[]).unwrap() > 0.0);
    // SQLite has no change listener: the gauge is absent rather than a false 0.
    assert_eq!(
        after.matching("hata_change_listener_connected", &[]).len(),
        0
    );
}

#[tokio::test]
async fn a_change_served_is_a_propagation_and_draining_is_unready() {
    let s = TestServer::start().await;
    flags(&s, &["banner"]).await;
    let before = scrape(&s).await;
    let propagated = |e: &Exposition| {
        e.get("hata_rule_set_propagation_seconds_count", &[])
            .unwrap_or(0.0)
    };
    s.patch(
        "/api/v1/projects/shop/flags/banner/environments/development",
        &serde_json::json!({"enabled": false}),
    )
    .await
    .expect(StatusCode::OK);
    let after = scrape(&s).await;
    // One per environment whose revision the change bumped, however the swap came about
    // (the writer's refresh and the change follower both try; one installs).
    let bumped = after.matching("hata_rule_set_revision", &[]).len() as f64;
    let observed = propagated(&after) - propagated(&before);
    assert!(
        (1.0..=bumped).contains(&observed),
        "{observed} propagations for {bumped} environments"
    );
    let sum = after
        .get("hata_rule_set_propagation_seconds_sum", &[])
        .unwrap_or(0.0);
    assert!(sum > 0.0 && sum < 60.0, "measured from the commit: {sum} s");
    s.state().begin_shutdown();
    let draining = scrape(&s).await;
    assert_eq!(draining.get("hata_ready", &[]), Some(0.0));
}

#[tokio::test]
async fn refusals_are_counted_by_reason_and_scope() {
    let s = TestServer::start_with(ServerConfig {
        eval_rate_limit: 1,
        ..ServerConfig::default()
    })
    .await;
    flags(&s, &["banner"]).await;
    let token = s.evaluation_token("client", "shop").await;
    let before = scrape(&s).await;
    let unknown = evaluate(&s, "hata_client_nope", "/ofrep/v1/evaluate/flags/banner").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let mut limited = 0;
    for _ in 0..5 {
        if evaluate(&s, &token, "/ofrep/v1/evaluate/flags/banner")
            .await
            .status
            == StatusCode::TOO_MANY_REQUESTS
        {
            limited += 1;
        }
    }
    assert!(
        limited > 0,
        "a budget of 1 per second refuses some of 5 at once"
    );
    let after = scrape(&s).await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.get(name, labels).unwrap_or(0.0) - before.get(name, labels).unwrap_or(0.0)
    };
    assert_eq!(
        delta(
            "hata_auth_failures_total",
            &[("reason", "missing_or_unknown")]
        ),
        1.0
    );
    assert_eq!(
        delta("hata_rate_limited_total", &[("scope", "evaluation")]),
        f64::from(limited)
    );
    assert_eq!(delta("hata_rate_limited_total", &[("scope", "admin")]), 0.0);
}

#[tokio::test]
async fn evaluations_are_counted_per_flag_variant_and_reason_and_fold_past_the_limit() {
    let s = TestServer::start_with(ServerConfig {
        metrics: MetricsConfig {
            max_flags: 2,
            ..MetricsConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    flags(&s, &["f1", "f2", "f3", "f4"]).await;
    let token = s.evaluation_token("server", "shop").await;
    // f1 and f2 are counted first (one drain each), so they keep their series.
    for (flag, times) in [("f1", 2), ("f2", 1)] {
        for _ in 0..times {
            let r = evaluate(&s, &token, &format!("/ofrep/v1/evaluate/flags/{flag}")).await;
            assert_eq!(r.status, StatusCode::OK);
        }
        s.state().serving.drain_counts();
    }
    for (flag, times) in [("f3", 3), ("f4", 4), ("f1", 1)] {
        for _ in 0..times {
            evaluate(&s, &token, &format!("/ofrep/v1/evaluate/flags/{flag}")).await;
        }
    }
    // The bulk endpoint counts every flag it evaluates.
    let bulk = evaluate(&s, &token, "/ofrep/v1/evaluate/flags").await;
    assert_eq!(bulk.status, StatusCode::OK);
    s.state().serving.drain_counts();
    let e = scrape(&s).await;
    let evaluations = |flag: &str| {
        e.get(
            "hata_evaluations_total",
            &[
                ("environment", "development"),
                ("flag", flag),
                ("project", "shop"),
                ("reason", "STATIC"),
                ("variant", "on"),
            ],
        )
    };
    assert_eq!(evaluations("f1"), Some(4.0));
    assert_eq!(evaluations("f2"), Some(2.0));
    assert_eq!(evaluations("_other"), Some(3.0 + 4.0 + 2.0));
    assert_eq!(evaluations("f3"), None);
    assert_eq!(evaluations("f4"), None);
    assert_eq!(
        e.matching("hata_evaluations_total", &[]).len(),
        3,
        "one series per kept flag and one for the rest"
    );
}

#[tokio::test]
async fn a_metrics_token_protects_the_scrape() {
    let secret = "metrics-secret-0123456789";
    let s = TestServer::start_with(ServerConfig {
        metrics: MetricsConfig {
            token: Some(secret.into()),
            ..MetricsConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let ask = |bearer: Option<&str>| {
        let mut r = s.client.get(s.url("/metrics"));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        Reply::of(r)
    };
    assert_eq!(ask(None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        ask(Some("metrics-secret-0123456788")).await.status,
        StatusCode::UNAUTHORIZED
    );
    // An admin token is not the metrics token.
    let admin = s.token.clone();
    assert_eq!(ask(Some(&admin)).await.status, StatusCode::UNAUTHORIZED);
    let ok = s
        .client
        .get(s.url("/metrics"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let e = parse(&ok.text().await.unwrap());
    assert_eq!(
        e.get("hata_auth_failures_total", &[("reason", "metrics_token")]),
        Some(3.0)
    );
}

#[tokio::test]
async fn a_listener_of_its_own_serves_metrics_and_the_main_one_then_does_not() {
    let s = TestServer::start_with(ServerConfig {
        metrics: MetricsConfig {
            on_main: false,
            ..MetricsConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    flags(&s, &["banner"]).await;
    let token = s.evaluation_token("client", "shop").await;
    evaluate(&s, &token, "/ofrep/v1/evaluate/flags/banner").await;
    s.get("/metrics").await.expect(StatusCode::NOT_FOUND);
    // What `hata serve --metrics-listen` does: the same app's metrics, on another port.
    let app = hata_server::router(s.state().clone(), &s.config);
    let router = app.metrics_router(s.config.metrics.clone(), s.config.limits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let r = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let e = parse(&r.text().await.unwrap());
    assert_eq!(
        e.get(
            "http_requests_total",
            &[("method", "POST"), ("route", SINGLE), ("status", "200")]
        ),
        Some(1.0)
    );
    assert_eq!(
        e.get(
            "http_requests_total",
            &[("method", "GET"), ("route", "/metrics"), ("status", "404")]
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn the_change_listener_is_reported_connected_on_postgres() {
    let Some(s) = TestServer::start_postgres().await else {
        return;
    };
    // The listener connects in the background after the start.
    let mut connected = None;
    for _ in 0..100 {
        connected = scrape(&s).await.get("hata_change_listener_connected", &[]);
        if connected == Some(1.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(connected, Some(1.0));
    let e = scrape(&s).await;
    // One pool serves reads and writes on PostgreSQL.
    let pools: Vec<_> = e
        .matching("db_connection_pool_max", &[])
        .into_iter()
        .map(|(labels, _)| labels["pool"].clone())
        .collect();
    assert_eq!(pools, ["reader"]);
}

#[tokio::test]
async fn open_event_streams_are_counted_by_kind() {
    let s = TestServer::start().await;
    flags(&s, &["banner"]).await;
    let token = s.evaluation_token("server", "shop").await;
    let streams = |e: &Exposition, kind: &str| e.get("hata_sse_streams", &[("kind", kind)]);
    let before = scrape(&s).await;
    assert_eq!(streams(&before, "sdk"), Some(0.0));
    assert_eq!(streams(&before, "ofrep"), Some(0.0));
    let open = || s.as_token(&token, Method::GET, "/api/v1/sdk/stream").send();
    let first = open().await.expect("stream");
    let second = open().await.expect("stream");
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(second.status(), StatusCode::OK);
    let during = scrape(&s).await;
    assert_eq!(streams(&during, "sdk"), Some(2.0));
    assert_eq!(streams(&during, "ofrep"), Some(0.0));
    drop((first, second));
    // A closed stream is noticed at its next write; wait for both.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        // A change makes every open stream write, and so notice a gone client.
        s.patch(
            "/api/v1/projects/shop/flags/banner",
            &json!({"description": "nudge"}),
        )
        .await
        .expect(StatusCode::OK);
        if streams(&scrape(&s).await, "sdk") == Some(0.0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "streams never closed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
