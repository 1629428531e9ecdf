//! Test support: the real router over real HTTP, on a real SQLite file in a temp dir.
//!
//! `TestServer::start` opens the store, bootstraps the admin token the way `hata serve` does
//! (`hata_server::bootstrap`), serves on `127.0.0.1:0` and waits until `/health/ready` answers.
//! `restart` stops the server gracefully, closes the store and starts again on the same data
//! dir. `Reply` holds a response read whole, with assertions for the API's conventions. With
//! `ServerConfig::tls` set it serves HTTPS (`tls` has test certificates and clients).

#![allow(dead_code)]

pub mod secrets;
pub mod tls;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hata_server::bootstrap::{bootstrap_admin_token, AdminBootstrap};
use hata_server::{AppState, ServerConfig};
use hata_store::{Store, StoreConfig};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long start, readiness and shutdown may take before a test fails.
const DEADLINE: Duration = Duration::from_secs(15);

pub struct TestServer {
    /// `http://127.0.0.1:<port>` (`https` with TLS); changes on restart.
    pub base: String,
    /// The bootstrapped admin token's secret.
    pub token: String,
    pub client: reqwest::Client,
    /// The store the server runs on, for checks the API does not expose.
    pub store: Store,
    pub config: ServerConfig,
    dir: tempfile::TempDir,
    /// `None`: the SQLite file in `dir`.
    database_url: Option<String>,
    running: Option<Running>,
}

struct Running {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
    state: AppState,
}

/// A random number for names, from the clock and the process (no RNG dependency needed).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

pub fn database_url(data_dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", data_dir.join("hata.db").display())
}

async fn open_store(data_dir: &Path) -> Store {
    Store::open(&store_config(database_url(data_dir), data_dir))
        .await
        .expect("open the SQLite store")
}

/// The store settings `hata serve` would use: the audit signing key in the data dir.
pub fn store_config(url: String, data_dir: &Path) -> StoreConfig {
    let (key, _) =
        hata_server::bootstrap::audit_signing_key(&data_dir.join("audit-signing-key.pem"))
            .expect("the audit signing key");
    let mut config = StoreConfig::new(url);
    config.audit.key = Some(std::sync::Arc::new(key));
    config
}

/// Serves `store` on a fresh port; returns the base URL and the running server.
async fn serve(store: &Store, config: &ServerConfig) -> (String, Running) {
    let state = AppState::start_with_jobs(
        store.clone(),
        hata_access::token::TokenAges::default(),
        config.jobs.clone(),
    )
    .await
    .expect("load the server state");
    let app = hata_server::router(state.clone(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let (tx, rx) = oneshot::channel::<()>();
    let connections = config.connections;
    let task = tokio::spawn(hata_server::serve(
        listener,
        app,
        connections,
        async {
            let _ = rx.await;
        },
        std::time::Duration::from_secs(10),
    ));
    (
        format!("{scheme}://{addr}"),
        Running {
            shutdown: tx,
            task,
            state,
        },
    )
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(ServerConfig::default()).await
    }

    pub async fn start_with(config: ServerConfig) -> TestServer {
        TestServer::start_with_client(config, reqwest::Client::new()).await
    }

    /// Starts with `client` for every request the helpers make (e.g. one that trusts the
    /// test's CA, for a server with `tls`).
    pub async fn start_with_client(config: ServerConfig, client: reqwest::Client) -> TestServer {
        TestServer::start_on(None, config, client).await
    }

    /// Starts on a new, empty PostgreSQL database (at `HATA_TEST_POSTGRES_URL`, default the
    /// local server's). `None` when PostgreSQL is unreachable outside CI; under `CI=true` a
    /// missing PostgreSQL fails the test.
    pub async fn start_postgres() -> Option<TestServer> {
        TestServer::start_postgres_with(ServerConfig::default()).await
    }

    /// `start_postgres` with `config`.
    pub async fn start_postgres_with(config: ServerConfig) -> Option<TestServer> {
        TestServer::start_postgres_with_client(config, reqwest::Client::new()).await
    }

    /// `start_postgres_with`, with `client` for every request the helpers make.
    pub async fn start_postgres_with_client(
        config: ServerConfig,
        client: reqwest::Client,
    ) -> Option<TestServer> {
        let admin_url = std::env::var("HATA_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let admin = match sqlx::PgPool::connect(&admin_url).await {
            Ok(pool) => pool,
            Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
                eprintln!("SKIPPED on PostgreSQL: {e}");
                return None;
            }
            Err(e) => panic!("PostgreSQL at {admin_url} is required under CI: {e}"),
        };
        let db = format!("hata_s_{:016x}", rand_u64());
        sqlx::query(&format!("CREATE DATABASE {db}"))
            .execute(&admin)
            .await
            .expect("create the test database");
        admin.close().await;
        let base = admin_url
            .rsplit_once('/')
            .map(|(base, _)| base.to_string())
            .expect("a database in the URL");
        Some(TestServer::start_on(Some(format!("{base}/{db}")), config, client).await)
    }

    async fn start_on(
        database_url: Option<String>,
        config: ServerConfig,
        client: reqwest::Client,
    ) -> TestServer {
        secrets::init_logging();
        let dir = tempfile::tempdir().expect("temp dir");
        let store = match &database_url {
            None => open_store(dir.path()).await,
            Some(url) => Store::open(&store_config(url.clone(), dir.path()))
                .await
                .expect("open the PostgreSQL store"),
        };
        let token = match bootstrap_admin_token(&store, None, dir.path())
            .await
            .expect("bootstrap the admin token")
        {
            AdminBootstrap::Generated { secret, path } => {
                let written = std::fs::read_to_string(&path).expect("read the admin-token file");
                assert_eq!(written.trim(), secret, "admin-token file holds the secret");
                secret
            }
            other => panic!("a new store must get a generated admin token, got {other:?}"),
        };
        secrets::remember(&token);
        let (base, running) = serve(&store, &config).await;
        let server = TestServer {
            base,
            token,
            client,
            store,
            config,
            dir,
            database_url,
            running: Some(running),
        };
        server.wait_ready().await;
        server
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("hata.db")
    }

    /// The database the server runs on, for tests that reach under the API (SQLite's file
    /// or the PostgreSQL database).
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| database_url(self.dir.path()))
    }

    /// Polls `/health/ready` until it answers 200.
    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(r) = self.client.get(self.url("/health/ready")).send().await {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "{} never became ready",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops serving (in-flight requests finish) and closes the store.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            // As `hata serve` does: end event streams, let requests finish, store the counts.
            running.state.begin_shutdown();
            let _ = running.shutdown.send(());
            tokio::time::timeout(DEADLINE, running.task)
                .await
                .expect("graceful shutdown within the deadline")
                .expect("server task");
            running.state.finish_shutdown().await;
        }
        self.store.close().await;
    }

    /// Stops, then opens the same data dir again and serves it on a new port. The admin token
    /// must survive: the bootstrap finds it and does nothing.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.store = match &self.database_url {
            None => open_store(self.dir.path()).await,
            Some(url) => Store::open(&store_config(url.clone(), self.dir.path()))
                .await
                .expect("open the PostgreSQL store"),
        };
        let outcome = bootstrap_admin_token(&self.store, None, self.dir.path())
            .await
            .expect("bootstrap on restart");
        assert_eq!(
            outcome,
            AdminBootstrap::Existing,
            "restart keeps the tokens"
        );
        let (base, running) = serve(&self.store, &self.config).await;
        self.base = base;
        self.running = Some(running);
        self.wait_ready().await;
    }

    /// The running server's state (its in-memory rule sets, token cache, store).
    pub fn state(&self) -> &AppState {
        &self.running.as_ref().expect("the server is running").state
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The address served on.
    pub fn addr(&self) -> std::net::SocketAddr {
        let (_, addr) = self.base.split_once("://").expect("scheme in the base URL");
        addr.parse().expect("an address in the base URL")
    }

    /// A request with the admin token.
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.as_token(&self.token, method, path)
    }

    pub fn as_token(&self, token: &str, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(token)
    }

    pub async fn get(&self, path: &str) -> Reply {
        Reply::of(self.admin(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        Reply::of(self.admin(Method::POST, path).json(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        Reply::of(self.admin(Method::PUT, path).json(body)).await
    }

    pub async fn put_if(&self, path: &str, version: i64, body: &Value) -> Reply {
        Reply::of(
            self.admin(Method::PUT, path)
                .header("if-match", format!("\"{version}\""))
                .json(body),
        )
        .await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        Reply::of(
            self.admin(Method::PATCH, path)
                .header("content-type", "application/merge-patch+json")
                .body(body.to_string()),
        )
        .await
    }

    /// A merge patch with `If-Match: "<version>"`.
    pub async fn patch_if(&self, path: &str, version: i64, body: &Value) -> Reply {
        Reply::of(
            self.admin(Method::PATCH, path)
                .header("if-match", format!("\"{version}\""))
                .header("content-type", "application/merge-patch+json")
                .body(body.to_string()),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        Reply::of(self.admin(Method::DELETE, path)).await
    }

    /// Creates a project (201 asserted) and returns its body.
    pub async fn project(&self, key: &str) -> Value {
        self.post(
            "/api/v1/projects",
            &serde_json::json!({"key": key, "name": key}),
        )
        .await
        .expect(StatusCode::CREATED)
        .body
    }

    /// Creates a flag in `project` (201 asserted) and returns its body.
    pub async fn flag(&self, project: &str, flag: Value) -> Value {
        self.post(&format!("/api/v1/projects/{project}/flags"), &flag)
            .await
            .expect(StatusCode::CREATED)
            .body
    }

    /// Creates an evaluation token (`server` or `client`) for `project`'s `development`
    /// environment (201 asserted) and returns its secret.
    pub async fn evaluation_token(&self, kind: &str, project: &str) -> String {
        let r = self
            .post(
                "/api/v1/tokens",
                &serde_json::json!({"name": kind, "kind": kind, "project": project,
                                    "environment": "development"}),
            )
            .await
            .expect(StatusCode::CREATED);
        r.body["secret"].as_str().expect("secret").to_string()
    }

    /// Creates a user with `password` (201 asserted) and returns its id.
    pub async fn user(&self, email: &str, password: &str, admin: bool) -> String {
        let r = self
            .post(
                "/api/v1/users",
                &serde_json::json!({"email": email, "password": password, "admin": admin}),
            )
            .await
            .expect(StatusCode::CREATED);
        r.body["id"].as_str().expect("user id").to_string()
    }

    /// Gives `user_id` `role` in `project` (200 asserted).
    pub async fn member(&self, project: &str, user_id: &str, role: &str) {
        self.put(
            &format!("/api/v1/projects/{project}/members/{user_id}"),
            &serde_json::json!({ "role": role }),
        )
        .await
        .expect(StatusCode::OK);
    }

    /// `POST /auth/login` as it came back.
    pub async fn try_login(&self, email: &str, password: &str) -> Reply {
        Reply::of(
            self.client
                .post(self.url("/api/v1/auth/login"))
                .json(&serde_json::json!({"email": email, "password": password})),
        )
        .await
    }

    /// Logs in (200 asserted): the session's cookie and CSRF token.
    pub async fn login(&self, email: &str, password: &str) -> Session {
        let r = self.try_login(email, password).await.expect(StatusCode::OK);
        Session::of(&r)
    }

    /// A request authenticated by `session`'s cookie, with its CSRF token.
    pub fn as_session(&self, session: &Session, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("cookie", format!("hata_session={}", session.cookie))
            .header("x-csrf-token", &session.csrf)
    }

    /// The current revision of an environment, as `GET …/environments/{env}` reports it.
    pub async fn revision(&self, project: &str, env: &str) -> i64 {
        let r = self
            .get(&format!("/api/v1/projects/{project}/environments/{env}"))
            .await
            .expect(StatusCode::OK);
        r.body["revision"]
            .as_i64()
            .expect("environment has a revision")
    }
}

/// A logged-in session: the cookie's value and the CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

impl Session {
    /// The session a login response set.
    pub fn of(login: &Reply) -> Session {
        let set_cookie = login.header("set-cookie").expect("Set-Cookie");
        let cookie = set_cookie
            .split(';')
            .next()
            .and_then(|pair| pair.strip_prefix("hata_session="))
            .expect("the session cookie")
            .to_string();
        Session {
            cookie,
            csrf: login.body["csrf_token"]
                .as_str()
                .expect("csrf_token")
                .to_string(),
        }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as JSON; `Value::Null` when empty, a string when not JSON.
    pub body: Value,
}

impl Reply {
    pub async fn of(request: RequestBuilder) -> Reply {
        let (client, request) = request.build_split();
        let request = request.expect("build the request");
        secrets::remember_request(&request);
        let response = client.execute(request).await.expect("send the request");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("read the body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        secrets::remember_response(&headers, &body);
        let reply = Reply {
            status,
            headers,
            body,
        };
        assert!(
            reply
                .header("x-request-id")
                .is_some_and(|id| !id.is_empty()),
            "every response carries an X-Request-Id: {reply:?}"
        );
        reply
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status (showing the body if it differs).
    #[track_caller]
    pub fn expect(self, status: StatusCode) -> Reply {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {:#}",
            self.body
        );
        self
    }

    /// Asserts a JSON success with `ETag: "<version>"`; returns the version.
    #[track_caller]
    pub fn etag(&self) -> i64 {
        let etag = self
            .header("etag")
            .unwrap_or_else(|| panic!("no ETag: {self:?}"));
        let version = etag
            .strip_prefix('"')
            .and_then(|e| e.strip_suffix('"'))
            .and_then(|e| e.parse::<i64>().ok())
            .unwrap_or_else(|| panic!("ETag is not \"<version>\": {etag}"));
        version
    }

    /// Asserts an RFC 7807 problem with this status and returns it.
    #[track_caller]
    pub fn problem(self, status: StatusCode) -> Reply {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {:#}",
            self.body
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{self:?}"
        );
        let b = &self.body;
        assert!(b["type"].is_string(), "problem.type: {b}");
        assert!(
            b["title"].as_str().is_some_and(|t| !t.is_empty()),
            "problem.title: {b}"
        );
        assert_eq!(b["status"], status.as_u16(), "problem.status: {b}");
        assert!(b["detail"].is_string(), "problem.detail: {b}");
        self
    }

    /// The `errors[].field` of a problem, in order.
    pub fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["field"].as_str().unwrap_or("<no field>").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Asserts a 422 problem with an error at `field` whose message contains `message`.
    #[track_caller]
    pub fn invalid_at(self, field: &str, message: &str) -> Reply {
        let reply = self.problem(StatusCode::UNPROCESSABLE_ENTITY);
        let errors = reply.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("422 without errors: {}", reply.body));
        for e in errors {
            assert!(
                e["field"].is_string() && e["message"].as_str().is_some_and(|m| !m.is_empty()),
                "every error has a field and a message: {e}"
            );
        }
        assert!(
            errors.iter().any(|e| e["field"] == field
                && e["message"].as_str().is_some_and(|m| m.contains(message))),
            "no error at {field:?} mentioning {message:?}: {:#}",
            reply.body
        );
        reply
    }
}
