//! Test support for the CLI's integration tests, which run the real binary.
//!
//! - [`hata`]: the binary (`CARGO_BIN_EXE_hata`) as a command, without the test's own `HATA_*`
//!   variables.
//! - [`PgDatabase`]: a fresh database per test on the local PostgreSQL
//!   (`HATA_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`), dropped at
//!   the end. Without PostgreSQL the test is skipped, except under `CI=true`, where it fails.
//! - [`PgProxy`]: a TCP proxy in front of PostgreSQL that a test can stop and start again. The
//!   whole suite shares one PostgreSQL, so a test cannot stop the real one; stopping the proxy
//!   is the same outage as far as hata can tell: every open connection is cut, and new ones
//!   are accepted but never answered (a black hole, the harder case: a refused connection
//!   fails at once, an unanswered one only on a deadline).
//! - [`Replica`]: `hata serve` on a free port, with its log in a file; several of them on one
//!   PostgreSQL are a cluster.
//! - [`EventReader`]: a Server-Sent Events reader over a streaming response.
//! - [`tls`]: test certificates and TLS clients.

#![allow(dead_code)]

/// The server crate's copy, shared rather than duplicated: both crates' tests make the same
/// certificates and clients.
#[path = "../../../hata-server/tests/support/tls.rs"]
pub mod tls;

/// The run's secrets and logs, for `secrets_in_logs.rs` (the server crate's copy, shared).
#[path = "../../../hata-server/tests/support/secrets.rs"]
pub mod secrets;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;
use sqlx::{Connection, Executor};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// The admin token every replica is started with.
pub const ADMIN_TOKEN: &str = "replicas-admin-token-0123456789";

/// How long starting a replica or reaching a state may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

// --- the binary ------------------------------------------------------------------------------

/// `hata <args>` with `env` and none of the test's own `HATA_*` variables (a developer's shell
/// may set some), so that a test runs with exactly the settings it gives.
pub fn hata(args: &[&str], env: &[(&str, &str)]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hata"));
    cmd.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("HATA_") {
            cmd.env_remove(name);
        }
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// Where `tests/*/install.sh` install the packages the tests pin:
/// `${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}`.
pub fn client_deps() -> PathBuf {
    match std::env::var_os("HATA_CLIENT_DEPS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/hata-client-deps"),
    }
}

/// `client_deps()/<area>` when `tests/<area>/install.sh` installed `what` as pinned in
/// `tests/<area>/requirements.txt` (it stamps a copy of the pins); else the test is skipped
/// (`None`) or, under `CI=true`, fails.
pub fn pinned_python_deps(area: &str, what: &str) -> Option<PathBuf> {
    let dir = client_deps().join(area);
    let pins =
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../tests/{area}/requirements.txt"));
    let pinned = std::fs::read(&pins).unwrap_or_else(|e| panic!("{}: {e}", pins.display()));
    if std::fs::read(dir.join(".installed-requirements.txt")).ok() == Some(pinned) {
        return Some(dir);
    }
    let why = format!(
        "{what} is not installed as pinned in {}: run `bash tests/{area}/install.sh` \
         (.ci/run does)",
        dir.display()
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

// --- the database ----------------------------------------------------------------------------

pub fn postgres_admin_url() -> String {
    std::env::var("HATA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database of its own for one test; dropped (with its connections) when this is dropped.
pub struct PgDatabase {
    pub name: String,
    admin_url: String,
    /// `user@` part of the URL, reused for URLs through a proxy.
    userinfo: String,
    /// Where PostgreSQL listens.
    pub upstream: SocketAddr,
}

impl PgDatabase {
    /// `None` when PostgreSQL is unreachable and we are not in CI.
    pub async fn create() -> Option<PgDatabase> {
        let admin_url = postgres_admin_url();
        let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("SKIPPED: PostgreSQL at {admin_url} is not reachable: {e}");
                return None;
            }
            Err(e) => panic!("PostgreSQL at {admin_url} is required under CI: {e}"),
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let name = format!("hata_r_{}_{nanos:09}", std::process::id());
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        let rest = admin_url
            .split_once("://")
            .map(|(_, rest)| rest)
            .expect("scheme in the PostgreSQL URL");
        let (userinfo, hostpath) = rest.rsplit_once('@').unwrap_or(("", rest));
        let userinfo = userinfo.to_string();
        let hostport = hostpath.split('/').next().unwrap_or(hostpath).to_string();
        let upstream = tokio::net::lookup_host(if hostport.contains(':') {
            hostport
        } else {
            format!("{hostport}:5432")
        })
        .await
        .expect("resolve the PostgreSQL host")
        .next()
        .expect("an address for the PostgreSQL host");
        Some(PgDatabase {
            name,
            admin_url,
            userinfo,
            upstream,
        })
    }

    /// The URL of this database at `addr` (PostgreSQL itself, or a proxy).
    pub fn url_at(&self, addr: SocketAddr) -> String {
        let at = if self.userinfo.is_empty() {
            String::new()
        } else {
            format!("{}@", self.userinfo)
        };
        format!("postgres://{at}{addr}/{}", self.name)
    }

    pub fn url(&self) -> String {
        self.url_at(self.upstream)
    }

    /// A direct connection to this database, for checks the API does not expose.
    pub async fn connect(&self) -> sqlx::PgConnection {
        sqlx::PgConnection::connect(&self.url())
            .await
            .expect("connect to the test database")
    }

    /// Kills every server process connected to this database (the replicas' pools and change
    /// listeners) from the server side, as an administrator or a failover would. Returns how
    /// many were terminated.
    pub async fn terminate_backends(&self) -> i64 {
        let mut admin = sqlx::PgConnection::connect(&self.admin_url)
            .await
            .expect("connect as admin");
        let n: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&self.name)
        .fetch_one(&mut admin)
        .await
        .expect("pg_terminate_backend");
        let _ = admin.close().await;
        n
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot block on itself: use a thread with
        // a runtime of its own. FORCE ends the replicas' connections if they are still open.
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let mut admin = sqlx::PgConnection::connect(&url).await?;
                admin
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

// --- the proxy -------------------------------------------------------------------------------

/// A TCP proxy to PostgreSQL that can be stopped (an outage) and started again.
pub struct PgProxy {
    pub addr: SocketAddr,
    up: Arc<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.task.abort();
        // Cut what is still connected (the accept loop's connections are separate tasks).
        self.up.send_replace(false);
    }
}

impl PgProxy {
    pub async fn start(upstream: SocketAddr) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let up = Arc::new(watch::channel(true).0);
        let task = tokio::spawn(accept_loop(listener, upstream, up.clone()));
        PgProxy { addr, up, task }
    }

    /// The outage: cuts every proxied connection; new connections hang unanswered.
    pub fn stop(&self) {
        self.up.send_replace(false);
    }

    /// The end of the outage: new connections reach PostgreSQL again; the ones left hanging
    /// during the outage are closed (a client would have given up on them long ago).
    pub fn start_again(&self) {
        self.up.send_replace(true);
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, up: Arc<watch::Sender<bool>>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let mut state = up.subscribe();
        tokio::spawn(async move {
            if !*state.borrow_and_update() {
                // Black hole: hold the connection without a byte of answer until the
                // database is back, then close it.
                let _hold = client;
                let _ = state.wait_for(|up| *up).await;
                return;
            }
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                return;
            };
            let mut client = client;
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = state.wait_for(|up| !*up) => {}
            }
            // Both ends are dropped here: the client sees its connection closed.
        });
    }
}

// --- a replica -------------------------------------------------------------------------------

/// A running `hata serve`; killed when dropped.
pub struct Replica {
    pub name: String,
    pub base: String,
    pub client: reqwest::Client,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        secrets::show_log(&format!("log of {}", self.name), &self.log());
    }
}

impl Replica {
    /// Starts `hata serve` on `database_url` and a free port; returns once it is ready.
    pub async fn start(name: &str, database_url: &str) -> Replica {
        Replica::start_with_env(name, database_url, &[]).await
    }

    /// `start` with more environment variables for `hata serve`.
    pub async fn start_with_env(name: &str, database_url: &str, env: &[(&str, &str)]) -> Replica {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join(format!("{name}.log"));
        let listen = format!("127.0.0.1:{}", free_port());
        let data = dir.path().join("data");
        let mut cmd = Command::from(hata(
            &["serve", "--listen", &listen],
            &[
                ("HATA_DATABASE_URL", database_url),
                ("HATA_ADMIN_TOKEN", ADMIN_TOKEN),
                // The suite shares one PostgreSQL (100 connections): keep each replica small.
                ("HATA_DB_MAX_CONNECTIONS", "3"),
                ("RUST_LOG", "info,hata_store=debug,sqlx=warn"),
            ],
        ));
        cmd.env("HATA_DATA_DIR", &data)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&log)
                    .expect("log file"),
            )
            .kill_on_drop(true);
        cmd.envs(env.iter().copied());
        secrets::remember(ADMIN_TOKEN);
        secrets::remember_env(env);
        let child = cmd.spawn().expect("spawn hata serve");
        let mut replica = Replica {
            name: name.to_string(),
            base: format!("http://{listen}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("http client"),
            child,
            log,
            _dir: dir,
        };
        replica.wait_ready().await;
        replica
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The replica's `HATA_DATA_DIR` (its audit signing key is there).
    pub fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "replica {} exited with {status} before it was ready:\n{}",
                    self.name,
                    self.log()
                );
            }
            if self.health("ready").await == Some(StatusCode::OK) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replica {} not ready in time:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The status of `/health/<which>`, `None` if there was no answer.
    pub async fn health(&self, which: &str) -> Option<StatusCode> {
        self.client
            .get(format!("{}/health/{which}", self.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()
            .map(|r| r.status())
    }

    /// An admin API request; returns the status and the body (JSON, or `Null`).
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            secrets::remember_json(&body);
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin request");
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let value = response.json::<Value>().await.unwrap_or(Value::Null);
        secrets::remember_json(&value);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(
                content_type, "application/problem+json",
                "a 503 is problem+json"
            );
        }
        (status, value)
    }

    /// An admin request that must succeed with `expected`.
    pub async fn admin_ok(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        expected: StatusCode,
    ) -> Value {
        let (status, value) = self.admin(method.clone(), path, body).await;
        assert_eq!(
            status, expected,
            "{method} {path} on {}: {value}",
            self.name
        );
        value
    }

    /// `POST /ofrep/v1/evaluate/flags/{flag}`: the status and body.
    pub async fn ofrep(&self, token: &str, flag: &str) -> Result<(StatusCode, Value), String> {
        let response = self
            .client
            .post(format!("{}/ofrep/v1/evaluate/flags/{flag}", self.base))
            .bearer_auth(token)
            .json(&serde_json::json!({"context": {"targetingKey": "user-1"}}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.json::<Value>().await.map_err(|e| e.to_string())?;
        Ok((status, body))
    }

    /// The value this replica serves for `flag`, `None` for a 404.
    pub async fn value(&self, token: &str, flag: &str) -> Option<Value> {
        match self.ofrep(token, flag).await {
            Ok((StatusCode::OK, body)) => Some(body["value"].clone()),
            Ok((StatusCode::NOT_FOUND, _)) => None,
            other => panic!("OFREP on {}: {other:?}", self.name),
        }
    }

    /// Waits until this replica serves `expected` for `flag` (`None`: the flag is gone);
    /// panics after `within`.
    pub async fn wait_for_value(
        &self,
        token: &str,
        flag: &str,
        expected: Option<&Value>,
        within: Duration,
    ) {
        let deadline = Instant::now() + within;
        loop {
            let served = match self.ofrep(token, flag).await {
                Ok((StatusCode::OK, body)) => Some(body["value"].clone()),
                Ok((StatusCode::NOT_FOUND, _)) => None,
                // A token created on another replica is known here once this replica has
                // heard of it, like any other change.
                Ok((StatusCode::UNAUTHORIZED, _)) => Some(Value::String("<401>".into())),
                // The token is known but its environment's rule set not loaded yet (it was
                // created on another replica a moment ago): the documented answer meanwhile.
                Ok((StatusCode::SERVICE_UNAVAILABLE, _)) => Some(Value::String("<503>".into())),
                other => panic!("OFREP on {}: {other:?}", self.name),
            };
            if served.as_ref() == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replica {} serves {served:?} for {flag} after {within:?}, not {expected:?}:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Opens an event stream at `path_and_query` (with `token` as bearer, if given).
    pub async fn events(&self, path_and_query: &str, token: Option<&str>) -> EventReader {
        let url = if path_and_query.starts_with("http") {
            path_and_query.to_string()
        } else {
            format!("{}{path_and_query}", self.base)
        };
        // No overall timeout: a stream lives as long as the test wants it.
        let mut request = reqwest::Client::new().get(url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("open the event stream");
        assert_eq!(response.status(), StatusCode::OK, "event stream status");
        EventReader {
            response,
            buffer: String::new(),
        }
    }

    /// Sends SIGTERM and returns at once.
    pub fn signal_terminate(&self) {
        let pid = self.child.id().expect("replica pid");
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
    }

    /// Sends SIGTERM and waits for a clean exit (the evaluation counts are stored then).
    pub async fn terminate(mut self) {
        self.signal_terminate();
        self.wait_exit().await;
    }

    /// Waits (up to 20 s) for the process to exit cleanly after a SIGTERM.
    pub async fn wait_exit(&mut self) {
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit after SIGTERM", self.name))
            .expect("wait for the replica");
        assert!(
            status.success(),
            "{} exited with {status}:\n{}",
            self.name,
            self.log()
        );
    }
}

// --- event streams ---------------------------------------------------------------------------

/// One Server-Sent Event.
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub id: String,
    pub event: String,
    pub data: String,
}

pub struct EventReader {
    response: reqwest::Response,
    buffer: String,
}

impl EventReader {
    /// The next event that has data (comments and `retry:` are skipped); `None` if the stream
    /// ended. Panics if none arrives `within`.
    pub async fn next(&mut self, within: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event::default();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        event.id = v.to_string();
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.event = v.to_string();
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data.push_str(v);
                    }
                }
                if !event.data.is_empty() {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no event within {within:?}"));
            match chunk {
                Ok(Some(bytes)) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Everything the stream sends until it ends, comments and `retry:` fields included
    /// (after what `next` already consumed); panics if it has not ended `within`.
    pub async fn rest(&mut self, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        let mut text = std::mem::take(&mut self.buffer);
        loop {
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("the stream did not end within {within:?}: {text:?}"));
            match chunk {
                Ok(Some(bytes)) => text.push_str(&String::from_utf8_lossy(&bytes)),
                Ok(None) | Err(_) => return text,
            }
        }
    }

    /// Skips events until one satisfies `wanted`; panics if none does `within`.
    pub async fn until(&mut self, within: Duration, wanted: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(event) if wanted(&event) => return event,
                Some(_) => {}
                None => panic!("the event stream ended"),
            }
        }
    }
}
