//! Several `hata serve` processes on one PostgreSQL, as in a deployment with replicas:
//! a change made through one replica is served by the others (LISTEN/NOTIFY), reaches their
//! event streams, and a database outage leaves evaluations untouched while writes fail fast.
//!
//! Each test has a database of its own; the outage is a TCP proxy between the replicas and
//! PostgreSQL that the test stops (see `support`), because the suite shares one PostgreSQL.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{PgDatabase, PgProxy, Replica, DEADLINE};

/// How long a change may take to reach another replica in these tests. Push propagation takes
/// milliseconds; the repair check would bring it within 10 s anyway, so a deadline shorter
/// than that is what tells push from repair. Several changes are checked, so a repair that
/// happens to land inside the window cannot hide a broken push every time.
const PUSH: Duration = Duration::from_secs(3);

/// A project `shop` with a string flag `banner` (variants a/b, serving `a` in development)
/// and a server token for shop/development; returns the token.
async fn seed(a: &Replica, flag: &str) -> String {
    a.admin_ok(
        Method::POST,
        "/projects",
        Some(json!({"key": "shop"})),
        StatusCode::CREATED,
    )
    .await;
    create_flag(a, flag).await;
    let token = a
        .admin_ok(
            Method::POST,
            "/tokens",
            Some(
                json!({"name": "server", "kind": "server", "project": "shop",
                        "environment": "development"}),
            ),
            StatusCode::CREATED,
        )
        .await;
    token["secret"].as_str().expect("secret").to_string()
}

async fn create_flag(r: &Replica, flag: &str) {
    r.admin_ok(
        Method::POST,
        "/projects/shop/flags",
        Some(json!({"key": flag, "type": "string",
            "variants": [{"key": "a", "value": "A"}, {"key": "b", "value": "B"}],
            "environments": {"development": {"enabled": true, "off_variant": "a",
                                             "default": {"variant": "a"}}}})),
        StatusCode::CREATED,
    )
    .await;
}

/// Makes `flag` serve `variant` in development (through `r`); returns the status.
async fn serve_variant(r: &Replica, flag: &str, variant: &str) -> (StatusCode, Value) {
    r.admin(
        Method::PATCH,
        &format!("/projects/shop/flags/{flag}/environments/development"),
        Some(json!({"default": {"variant": variant}})),
    )
    .await
}

fn flag_keys(sdk_config: &str) -> Vec<String> {
    let doc: Value = serde_json::from_str(sdk_config).expect("SDK config JSON");
    doc["flags"]
        .as_array()
        .expect("flags")
        .iter()
        .map(|f| f["key"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_replica_reaches_every_replica_and_its_streams() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let url = db.url();
    // Started together, as an orchestrator does: they race for the migrations and for the
    // bootstrap admin token.
    let (a, b, c) = tokio::join!(
        Replica::start("a", &url),
        Replica::start("b", &url),
        Replica::start("c", &url)
    );
    let token = seed(&a, "banner").await;
    let (a_val, b_val) = (json!("A"), json!("B"));
    for r in [&b, &c] {
        r.wait_for_value(&token, "banner", Some(&a_val), PUSH).await;
    }

    // Streams on A and C, opened before the changes.
    let mut sdk_a = a.events("/api/v1/sdk/stream", Some(&token)).await;
    let mut sdk_c = c.events("/api/v1/sdk/stream", Some(&token)).await;
    for s in [&mut sdk_a, &mut sdk_c] {
        let first = s.until(DEADLINE, |e| e.event == "config").await;
        assert!(flag_keys(&first.data).contains(&"banner".to_string()));
    }
    let bulk = c
        .client
        .post(format!("{}/ofrep/v1/evaluate/flags", c.base))
        .bearer_auth(&token)
        .json(&json!({"context": {"targetingKey": "user-1"}}))
        .send()
        .await
        .expect("bulk evaluation");
    assert_eq!(bulk.status(), StatusCode::OK);
    let bulk: Value = bulk.json().await.expect("bulk JSON");
    let stream_url = bulk["eventStreams"][0]["url"]
        .as_str()
        .expect("eventStreams url")
        .to_string();
    let mut ofrep_c = c.events(&stream_url, None).await;

    // Writes through A, one after the other: each is served by B and C within `PUSH`.
    for (i, variant) in ["b", "a", "b", "a"].into_iter().enumerate() {
        let (status, body) = serve_variant(&a, "banner", variant).await;
        assert_eq!(status, StatusCode::OK, "write {i}: {body}");
        let expected = if variant == "a" { &a_val } else { &b_val };
        for r in [&b, &c] {
            r.wait_for_value(&token, "banner", Some(expected), PUSH)
                .await;
        }
    }

    // C measured each of those changes from its commit on A to C serving it.
    let (count, sum) = propagation(&c).await;
    assert!(count >= 4.0, "C saw {count} propagations of 4 changes");
    assert!(
        sum / count < PUSH.as_secs_f64(),
        "C's mean propagation lag is {} s",
        sum / count
    );

    // A flag deleted through B disappears from A's and C's streams and evaluations.
    b.admin_ok(
        Method::DELETE,
        "/projects/shop/flags/banner",
        None,
        StatusCode::NO_CONTENT,
    )
    .await;
    for (name, stream) in [("a", &mut sdk_a), ("c", &mut sdk_c)] {
        let event = stream
            .until(PUSH, |e| {
                e.event == "config" && !flag_keys(&e.data).contains(&"banner".to_string())
            })
            .await;
        assert!(!event.id.is_empty(), "{name}: SDK events carry an id");
    }
    let refetch = ofrep_c
        .until(PUSH, |e| e.data.contains("refetchEvaluation"))
        .await;
    assert!(!refetch.id.is_empty());
    for r in [&a, &c] {
        assert_eq!(r.value(&token, "banner").await, None, "{}", r.name);
    }
}

/// `hata_rule_set_propagation_seconds`' count and sum on `r`'s `/metrics`.
async fn propagation(r: &Replica) -> (f64, f64) {
    let text = r
        .client
        .get(format!("{}/metrics", r.base))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("scrape body");
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
    };
    (
        value("hata_rule_set_propagation_seconds_count"),
        value("hata_rule_set_propagation_seconds_sum"),
    )
}

/// Counts of the load that runs through the outage.
#[derive(Default)]
struct Load {
    ok: AtomicU64,
    /// OFREP evaluations that answered 200 (the ones the replicas count).
    evaluations: AtomicU64,
    failures: Mutex<Vec<String>>,
    stop: AtomicBool,
}

/// OFREP evaluations of `flag` and SDK rule-set requests against every replica, until stopped.
fn start_load(
    replicas: Vec<(String, String)>,
    token: String,
    flag: &'static str,
    load: Arc<Load>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    (0..4)
        .map(|worker| {
            let (replicas, token, load, client) = (
                replicas.clone(),
                token.clone(),
                load.clone(),
                client.clone(),
            );
            tokio::spawn(async move {
                let mut i = worker;
                while !load.stop.load(Ordering::Relaxed) {
                    let (name, base) = &replicas[i % replicas.len()];
                    i += 1;
                    // One request in four is the SDK rule set; the rest are OFREP evaluations.
                    let sdk = i % 4 == 0;
                    let request = if sdk {
                        client.get(format!("{base}/api/v1/sdk/config"))
                    } else {
                        client
                            .post(format!("{base}/ofrep/v1/evaluate/flags/{flag}"))
                            .json(&json!({"context": {"targetingKey": format!("user-{i}")}}))
                    };
                    match request.bearer_auth(&token).send().await {
                        Ok(r) if r.status() == StatusCode::OK => {
                            load.ok.fetch_add(1, Ordering::Relaxed);
                            if !sdk {
                                load.evaluations.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Ok(r) => load
                            .failures
                            .lock()
                            .expect("lock")
                            .push(format!("{name}: status {}", r.status())),
                        Err(e) => load
                            .failures
                            .lock()
                            .expect("lock")
                            .push(format!("{name}: {e}")),
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
        })
        .collect()
}

async fn wait_health(r: &Replica, which: &str, expected: StatusCode) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if r.health(which).await == Some(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}: /health/{which} is not {expected}:\n{}",
            r.name,
            r.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_keeps_evaluations_fails_writes_and_recovers() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    // One proxy per replica, so an outage can also hit one replica only.
    let (proxy_a, proxy_b) = (
        PgProxy::start(db.upstream).await,
        PgProxy::start(db.upstream).await,
    );
    let a = Replica::start("a", &db.url_at(proxy_a.addr)).await;
    let b = Replica::start("b", &db.url_at(proxy_b.addr)).await;
    // `steady` is evaluated only by the load, whose evaluations are counted at the end; once B
    // serves `switch`, created later, its rule set has `steady` too.
    let token = seed(&a, "steady").await;
    create_flag(&a, "switch").await;
    let (a_val, b_val) = (json!("A"), json!("B"));
    b.wait_for_value(&token, "switch", Some(&a_val), PUSH).await;
    // Writes acknowledged with 200: each must be in the store at the end.
    let mut acknowledged = 0;

    let mut stream_b = b.events("/api/v1/sdk/stream", Some(&token)).await;
    stream_b.until(DEADLINE, |e| e.event == "config").await;

    let load = Arc::new(Load::default());
    let workers = start_load(
        vec![
            ("a".to_string(), a.base.clone()),
            ("b".to_string(), b.base.clone()),
        ],
        token.clone(),
        "steady",
        load.clone(),
    );

    // --- the whole database goes away -----------------------------------------------------
    proxy_a.stop();
    proxy_b.stop();
    let outage = Instant::now();
    let served_before = load.ok.load(Ordering::Relaxed);
    for r in [&a, &b] {
        wait_health(r, "ready", StatusCode::SERVICE_UNAVAILABLE).await;
        assert_eq!(r.health("live").await, Some(StatusCode::OK), "{}", r.name);
    }
    for r in [&a, &b] {
        let started = Instant::now();
        let (status, body) = serve_variant(r, "switch", "b").await;
        eprintln!("{}: write refused after {:?}", r.name, started.elapsed());
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}: {body}",
            r.name
        );
        // Fails fast: the pool's acquire deadline (3 s), not a hang until some TCP timeout.
        // Generous, because the machine is shared; a hang would take minutes.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}: a write took {:?} to fail",
            r.name,
            started.elapsed()
        );
        let (status, body) = r.admin(Method::GET, "/projects/shop/flags", None).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}: {body}",
            r.name
        );
    }
    // Long enough for a flush of evaluation counts (every 10 s) to fail on both replicas.
    let hold = Duration::from_secs(12);
    tokio::time::sleep(hold.saturating_sub(outage.elapsed())).await;
    let served_during = load.ok.load(Ordering::Relaxed) - served_before;
    assert!(
        served_during > 50,
        "only {served_during} requests during the outage"
    );

    // --- the database comes back ----------------------------------------------------------
    proxy_a.start_again();
    proxy_b.start_again();
    for r in [&a, &b] {
        wait_health(r, "ready", StatusCode::OK).await;
    }
    // The refused writes changed nothing: `switch` still serves `a` everywhere.
    for r in [&a, &b] {
        assert_eq!(r.value(&token, "switch").await, Some(a_val.clone()));
    }
    let (status, body) = serve_variant(&a, "switch", "b").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    acknowledged += 1;
    b.wait_for_value(&token, "switch", Some(&b_val), PUSH).await;
    // B's stream, open since before the outage, gets the change.
    stream_b
        .until(PUSH, |e| {
            e.event == "config" && e.data.contains(r#""variant":"b""#)
        })
        .await;

    // --- only B loses the database: it misses a change and catches up ------------------------
    proxy_b.stop();
    wait_health(&b, "ready", StatusCode::SERVICE_UNAVAILABLE).await;
    let (status, body) = serve_variant(&a, "switch", "a").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    acknowledged += 1;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        b.value(&token, "switch").await,
        Some(b_val.clone()),
        "B cannot know of the change yet"
    );
    proxy_b.start_again();
    // Reconnect (backoff ≤ 4 s) and resync, or the repair check: either way well within this.
    b.wait_for_value(&token, "switch", Some(&a_val), DEADLINE)
        .await;

    // --- the server kills every connection (the listeners included) -------------------------
    let killed = db.terminate_backends().await;
    assert!(killed >= 2, "terminated {killed} connections");
    // The pools replace dead connections on their own: the next write just works.
    let (status, body) = serve_variant(&a, "switch", "b").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    acknowledged += 1;
    // B's listener reconnects within a second and resyncs: no need to wait for a repair.
    b.wait_for_value(&token, "switch", Some(&b_val), PUSH).await;
    let (status, body) = serve_variant(&b, "switch", "a").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    acknowledged += 1;
    a.wait_for_value(&token, "switch", Some(&a_val), PUSH).await;

    // --- the load saw no failure -----------------------------------------------------------
    load.stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.expect("load worker");
    }
    let failures = load.failures.lock().expect("lock").clone();
    assert!(
        failures.is_empty(),
        "{} failed of {} requests: {:?}",
        failures.len(),
        load.ok.load(Ordering::Relaxed) + failures.len() as u64,
        &failures[..failures.len().min(10)]
    );

    // No acknowledged write is lost, and nothing else was written.
    let flag = a
        .admin_ok(
            Method::GET,
            "/projects/shop/flags/switch",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(flag["version"], 1 + acknowledged, "{flag}");

    // An outage is logged when it starts, not once per retry.
    for r in [&a, &b] {
        let log = r.log();
        let warnings = |needle: &str| {
            log.lines()
                .filter(|l| l.contains("WARN") && l.contains(needle))
                .count()
        };
        for needle in [
            "storing evaluation counts failed",
            "token cache reload failed",
        ] {
            assert!(
                warnings(needle) <= 2,
                "{}: {needle} logged too often:\n{log}",
                r.name
            );
        }
        // At most one per outage: the whole database, B alone, the killed connections.
        assert!(
            warnings("change listener lost its connection") <= 3,
            "{}: listener warnings:\n{log}",
            r.name
        );
    }

    // Every evaluation is counted, including those whose flush failed during the outage.
    // B's stream was not read since the changes: its unread rule sets would hold B's shutdown
    // for the whole grace period (a client that does not read is closed only then).
    drop(stream_b);
    a.terminate().await;
    b.terminate().await;
    let mut conn = db.connect().await;
    let counted: i64 = sqlx::query_scalar(
        "SELECT COALESCE(SUM(count), 0)::BIGINT FROM evaluation_counts WHERE flag = 'steady'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("sum the counts");
    assert_eq!(counted as u64, load.evaluations.load(Ordering::Relaxed));
}
