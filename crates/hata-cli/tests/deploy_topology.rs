//! The Compose topology of `deploy/compose/` without Docker: three `hata serve` on one
//! PostgreSQL behind a real HAProxy that runs the very `deploy/compose/haproxy.cfg` the Compose
//! file mounts (its backend addresses come from `HATA1_ADDR`…, as there).
//!
//! - A write through the balancer is then served by every replica, asked directly over OFREP.
//! - One replica killed (SIGKILL) under a steady evaluation load through the balancer: not one
//!   evaluation fails, during the kill or after it (HAProxy retries what the dead replica
//!   dropped and its health check on `/health/ready` takes it out).
//! - The database down (a proxy in front of it stopped): every replica reports not ready, and
//!   evaluations through the balancer still do not fail (HAProxy sends them to the live
//!   replicas when none is ready); admin writes get 503.
//!
//! Needs `haproxy` (Debian package; `.ci/run` installs it, `HATA_TEST_HAPROXY` names another
//! binary). Without it the test is skipped, except under `CI=true`, where it fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{free_port, PgDatabase, PgProxy, Replica, ADMIN_TOKEN, DEADLINE};
use tokio::process::{Child, Command};

/// How long a change may take to reach a replica: push propagation takes milliseconds.
const PUSH: Duration = Duration::from_secs(3);

/// How many clients evaluate through the balancer at once during the kill.
const CLIENTS: usize = 4;

fn haproxy_binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("HATA_TEST_HAPROXY") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join("haproxy"))
        .find(|candidate| candidate.is_file())
}

/// HAProxy running `deploy/compose/haproxy.cfg` in the foreground; killed when dropped.
struct Balancer {
    base: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Balancer {
    async fn start(binary: &Path, replicas: [&Replica; 3]) -> Balancer {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/compose/haproxy.cfg");
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("haproxy.log");
        let bind = format!("127.0.0.1:{}", free_port());
        let addr = |r: &Replica| r.base.trim_start_matches("http://").to_string();
        let mut cmd = Command::new(binary);
        // -db: foreground, logs (`log stdout`) to the file.
        cmd.arg("-db")
            .arg("-f")
            .arg(&config)
            .env("HAPROXY_BIND", &bind)
            // The replicas are addresses, never resolved; keep the resolver on this machine.
            .env("HAPROXY_DNS", format!("127.0.0.1:{}", free_port()))
            .env("HATA1_ADDR", addr(replicas[0]))
            .env("HATA2_ADDR", addr(replicas[1]))
            .env("HATA3_ADDR", addr(replicas[2]))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&log)
                    .expect("log file"),
            )
            .kill_on_drop(true);
        let child = cmd.spawn().expect("spawn haproxy");
        let mut balancer = Balancer {
            base: format!("http://{bind}"),
            child,
            log,
            _dir: dir,
        };
        balancer.wait_all_up().await;
        balancer
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Until `/health/ready` through the balancer has answered 200 for 3 s on end: by then
    /// every server has passed its checks (`inter 1s rise 2`).
    async fn wait_all_up(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + DEADLINE;
        let mut ok_since: Option<Instant> = None;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("haproxy exited with {status}:\n{}", self.log());
            }
            let ok = client
                .get(format!("{}/health/ready", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .map(|r| r.status() == StatusCode::OK)
                .unwrap_or(false);
            match (ok, ok_since) {
                (true, Some(since)) if since.elapsed() >= Duration::from_secs(3) => return,
                (true, None) => ok_since = Some(Instant::now()),
                (true, Some(_)) => {}
                (false, _) => ok_since = None,
            }
            assert!(
                Instant::now() < deadline,
                "the balancer did not become ready:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        eprintln!("--- log of haproxy ---\n{}--- end of log ---", self.log());
    }
}

/// An admin request through the balancer that must answer `expected`.
async fn admin_via(
    client: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Value,
    expected: StatusCode,
) -> Value {
    let response = client
        .request(method.clone(), format!("{base}/api/v1{path}"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path} through the balancer: {e}"));
    let status = response.status();
    let value = response.json::<Value>().await.unwrap_or(Value::Null);
    assert_eq!(
        status, expected,
        "{method} {path} through the balancer: {value}"
    );
    value
}

/// One evaluation through the balancer: `Ok(value)` or why it failed.
async fn evaluate_via(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    flag: &str,
) -> Result<Value, String> {
    let response = client
        .post(format!("{base}/ofrep/v1/evaluate/flags/{flag}"))
        .bearer_auth(token)
        .json(&json!({"context": {"targetingKey": "user-1"}}))
        .send()
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    let body = response
        .json::<Value>()
        .await
        .map_err(|e| format!("{status}: body: {e}"))?;
    if status != StatusCode::OK {
        return Err(format!("{status}: {body}"));
    }
    Ok(body["value"].clone())
}

/// Clients evaluating one flag through the balancer without a pause, counting the answers
/// per phase (the test moves to the next phase around each event it causes).
struct Load {
    stop: Arc<AtomicBool>,
    phase: Arc<AtomicUsize>,
    served: Arc<[AtomicU64; 4]>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(lb: &str, token: &str, flag: &str, expected: Value) -> Load {
        let load = Load {
            stop: Arc::new(AtomicBool::new(false)),
            phase: Arc::new(AtomicUsize::new(0)),
            served: Arc::new(Default::default()),
            failures: Arc::new(Mutex::new(Vec::new())),
            tasks: Vec::new(),
        };
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let (stop, phase, served, failures) = (
                load.stop.clone(),
                load.phase.clone(),
                load.served.clone(),
                load.failures.clone(),
            );
            let (lb, token, flag, expected) = (
                lb.to_string(),
                token.to_string(),
                flag.to_string(),
                expected.clone(),
            );
            // A client of its own each, keeping its connection to HAProxy alive, as SDKs do.
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client");
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let at = phase.load(Ordering::Relaxed);
                    match evaluate_via(&client, &lb, &token, &flag).await {
                        Ok(value) if value == expected => {
                            served[at].fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(value) => failures.lock().unwrap().push(format!("served {value}")),
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
            }));
        }
        Load { tasks, ..load }
    }

    fn next_phase(&self) {
        self.phase.fetch_add(1, Ordering::Relaxed);
    }

    /// Stops the clients; the evaluations served in each phase so far, and every failure.
    async fn finish(self) -> (Vec<u64>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("load client");
        }
        let phases = self.phase.load(Ordering::Relaxed) + 1;
        let served = self.served[..phases]
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect();
        let failures = self.failures.lock().unwrap().clone();
        (served, failures)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_compose_topology_serves_through_haproxy_a_killed_replica_and_a_database_outage() {
    let Some(haproxy) = haproxy_binary() else {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "haproxy is required under CI (apt-get install haproxy, as .ci/run does)"
        );
        eprintln!("SKIPPED: haproxy is not installed");
        return;
    };
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    // Through a proxy that the outage at the end stops (the suite shares one PostgreSQL).
    let proxy = PgProxy::start(db.upstream).await;
    let url = db.url_at(proxy.addr);
    // One audit signing key for the three, as the Compose file's secret gives them.
    let keys = tempfile::tempdir().expect("temp dir");
    let key = keys.path().join("audit-signing-key.pem");
    let key = key.to_str().expect("UTF-8 path");
    let env = [
        ("HATA_AUDIT_KEY", key),
        ("HATA_TRUSTED_PROXIES", "127.0.0.1"),
    ];
    let (r1, r2, r3) = tokio::join!(
        Replica::start_with_env("hata1", &url, &env),
        Replica::start_with_env("hata2", &url, &env),
        Replica::start_with_env("hata3", &url, &env)
    );
    let balancer = Balancer::start(&haproxy, [&r1, &r2, &r3]).await;
    let lb = balancer.base.clone();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");

    // (a) Writes through the balancer, each served by every replica asked directly.
    admin_via(
        &client,
        &lb,
        Method::POST,
        "/projects",
        json!({"key": "shop"}),
        StatusCode::CREATED,
    )
    .await;
    admin_via(
        &client,
        &lb,
        Method::POST,
        "/projects/shop/flags",
        json!({"key": "banner", "type": "string",
            "variants": [{"key": "a", "value": "A"}, {"key": "b", "value": "B"}],
            "environments": {"development": {"enabled": true, "off_variant": "a",
                                             "default": {"variant": "a"}}}}),
        StatusCode::CREATED,
    )
    .await;
    let token = admin_via(
        &client,
        &lb,
        Method::POST,
        "/tokens",
        json!({"name": "server", "kind": "server", "project": "shop",
                "environment": "development"}),
        StatusCode::CREATED,
    )
    .await;
    let token = token["secret"].as_str().expect("secret").to_string();
    support::secrets::remember(&token);
    for r in [&r1, &r2, &r3] {
        r.wait_for_value(&token, "banner", Some(&json!("A")), PUSH)
            .await;
    }
    admin_via(
        &client,
        &lb,
        Method::PATCH,
        "/projects/shop/flags/banner/environments/development",
        json!({"default": {"variant": "b"}}),
        StatusCode::OK,
    )
    .await;
    for r in [&r1, &r2, &r3] {
        r.wait_for_value(&token, "banner", Some(&json!("B")), PUSH)
            .await;
    }

    // (b) Clients evaluating through the balancer without a pause; one replica killed.
    let load = Load::start(&lb, &token, "banner", json!("B"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Dropping a replica kills it (SIGKILL): no draining, connections reset mid-request.
    drop(r3);
    load.next_phase();
    // Past HAProxy's detection (2 failed checks 1 s apart) and well after it.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (served, failures) = load.finish().await;
    eprintln!("evaluations through the balancer: {served:?} before and after the kill");
    assert!(
        failures.is_empty(),
        "{} evaluations through the balancer failed around the kill, e.g. {:?}:\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        balancer.log()
    );
    assert!(served.iter().all(|&n| n > 0), "no load: {served:?}");

    // The two left still take writes through the balancer and serve them.
    admin_via(
        &client,
        &lb,
        Method::PATCH,
        "/projects/shop/flags/banner/environments/development",
        json!({"default": {"variant": "a"}}),
        StatusCode::OK,
    )
    .await;
    for r in [&r1, &r2] {
        r.wait_for_value(&token, "banner", Some(&json!("A")), PUSH)
            .await;
    }
    assert_eq!(
        evaluate_via(&client, &lb, &token, "banner").await,
        Ok(json!("A")),
        "through the balancer after the kill"
    );

    // (c) The database down: both replicas left report not ready, and evaluations through
    // the balancer go on (to the live replicas) while admin writes get 503.
    let load = Load::start(&lb, &token, "banner", json!("A"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    proxy.stop();
    load.next_phase();
    for r in [&r1, &r2] {
        let deadline = Instant::now() + DEADLINE;
        while r.health("ready").await != Some(StatusCode::SERVICE_UNAVAILABLE) {
            assert!(
                Instant::now() < deadline,
                "{} still ready without its database",
                r.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Past HAProxy's detection: every server of backend hata is down by now.
    tokio::time::sleep(Duration::from_secs(4)).await;
    load.next_phase();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Admin requests stay with the ready replicas: there are none, HAProxy answers 503.
    let response = client
        .patch(format!(
            "{lb}/api/v1/projects/shop/flags/banner/environments/development"
        ))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"default": {"variant": "b"}}))
        .send()
        .await
        .expect("a write through the balancer during the outage");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let (served, failures) = load.finish().await;
    eprintln!("evaluations through the balancer: {served:?} before, into and during the outage");
    assert!(
        failures.is_empty(),
        "{} evaluations through the balancer failed during the database outage, e.g. {:?}:\n{}",
        failures.len(),
        &failures[..failures.len().min(5)],
        balancer.log()
    );
    assert!(served.iter().all(|&n| n > 0), "no load: {served:?}");
    proxy.start_again();
}
