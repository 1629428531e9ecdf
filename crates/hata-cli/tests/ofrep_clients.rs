//! Real OpenFeature clients against the real `hata` binary: the Python SDK with the OFREP
//! provider, the Node server SDK with the OFREP provider, and the web SDK with the OFREP web
//! provider (event streams, polling off). The clients live in `tests/clients/`, pinned, and
//! `tests/clients/install.sh` (run by `.ci/run`) installs them into
//! `${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}`. Without them these tests are skipped,
//! except under `CI=true`, where they fail.
//!
//! Each test starts its own `hata serve` on a temporary data dir and a free port, makes a project
//! and tokens through the admin API, runs one client script and wants it to exit 0.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::free_port;
use tokio::process::{Child, Command};

const ADMIN_TOKEN: &str = "ofrep-clients-admin-token-0123456789";
const PROJECT: &str = "clients";
const ENVIRONMENT: &str = "development";
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);
const START_TIMEOUT: Duration = Duration::from_secs(30);

// --- the installed clients ---------------------------------------------------------------------

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn clients_dir() -> PathBuf {
    repo_root().join("tests/clients")
}

struct Deps {
    python: PathBuf,
    node_modules: PathBuf,
}

/// The installed client packages, if they are there and match the pinned versions. Otherwise
/// the test is skipped (`None`), or fails under `CI=true`.
fn deps() -> Option<Deps> {
    let root = support::client_deps();
    let clients = clients_dir();
    // install.sh stamps each part with a copy of the file that pins it.
    let parts = [
        (
            root.join("python/.installed-requirements.txt"),
            clients.join("python/requirements.txt"),
        ),
        (
            root.join("node/.installed-package-lock.json"),
            clients.join("node/package-lock.json"),
        ),
    ];
    let mut problems = Vec::new();
    for (stamp, pinned) in &parts {
        let pinned_text = std::fs::read(pinned)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", pinned.display()));
        match std::fs::read(stamp) {
            Ok(installed) if installed == pinned_text => {}
            Ok(_) => problems.push(format!(
                "{} is not what {} pins (stale install)",
                stamp.display(),
                pinned.display()
            )),
            Err(_) => problems.push(format!("{} is missing", stamp.display())),
        }
    }
    if problems.is_empty() {
        return Some(Deps {
            python: root.join("python"),
            node_modules: root.join("node/node_modules"),
        });
    }
    let why = format!(
        "the OpenFeature client packages are not installed: {}. \
         Install them with `bash tests/clients/install.sh` (.ci/run does).",
        problems.join("; ")
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}");
    }
    eprintln!("SKIPPED: {why}");
    None
}

// --- the server --------------------------------------------------------------------------------

/// `hata serve` on a temporary data dir; killed when dropped.
struct Server {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        support::secrets::show_log("log of hata serve", &self.log_text());
    }
}

impl Server {
    async fn start() -> Server {
        support::secrets::remember(ADMIN_TOKEN);
        let mut last_log = String::new();
        // A free port can be taken between asking for it and binding it: try a few.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let log = dir.path().join("server.log");
            let log_file = std::fs::File::create(&log).expect("server log");
            let data = dir.path().join("data");
            let listen = format!("127.0.0.1:{port}");
            let child = Command::from(support::hata(
                &[
                    "serve",
                    "--data-dir",
                    data.to_str().expect("utf-8 temp path"),
                    "--listen",
                    &listen,
                ],
                &[
                    ("HATA_ADMIN_TOKEN", ADMIN_TOKEN),
                    ("RUST_LOG", "info,sqlx=warn"),
                ],
            ))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .kill_on_drop(true)
            .spawn()
            .expect("start hata serve");
            let mut server = Server {
                child,
                url: format!("http://127.0.0.1:{port}"),
                log,
                _dir: dir,
            };
            if server.wait_ready().await {
                return server;
            }
            last_log = server.log_text();
        }
        panic!("hata serve did not become ready; its last log:\n{last_log}");
    }

    /// Waits for `/health/ready` to answer 200; false if the process exited first.
    async fn wait_ready(&mut self) -> bool {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                eprintln!("hata serve exited early: {status}");
                return false;
            }
            let ready = http
                .get(format!("{}/health/ready", self.url))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if matches!(ready, Ok(r) if r.status() == 200) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "hata serve not ready within {START_TIMEOUT:?}; its log:\n{}",
            self.log_text()
        );
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn admin_post(&self, path: &str, body: Value) -> Value {
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1{path}", self.url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        assert_eq!(status, 201, "POST {path}: {text}");
        serde_json::from_str(&text).expect("JSON body")
    }

    /// A project with a server and a client token for its `development` environment; returns
    /// the environment variables every client script reads.
    async fn setup(&self) -> Vec<(&'static str, String)> {
        self.admin_post(
            "/projects",
            json!({"key": PROJECT, "name": "OpenFeature clients"}),
        )
        .await;
        let mut vars = vec![
            ("HATA_URL", self.url.clone()),
            ("HATA_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
            ("HATA_PROJECT", PROJECT.to_string()),
            ("HATA_ENVIRONMENT", ENVIRONMENT.to_string()),
        ];
        for (kind, var) in [
            ("server", "HATA_SERVER_TOKEN"),
            ("client", "HATA_CLIENT_TOKEN"),
        ] {
            let token = self
                .admin_post(
                    "/tokens",
                    json!({"name": format!("{kind} token"), "kind": kind,
                           "project": PROJECT, "environment": ENVIRONMENT}),
                )
                .await;
            let secret = token["secret"].as_str().expect("secret").to_string();
            vars.push((var, secret));
        }
        vars
    }
}

// --- running a client script -------------------------------------------------------------------

/// Runs `command` with the server's variables and asserts that it exits 0; on failure the
/// message carries the script's output and the server's log.
async fn run_client(name: &str, mut command: Command, server: &Server) {
    for (k, v) in server.setup().await {
        command.env(k, v);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: cannot start {command:?}: {e}"));
    let output = match tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => output.unwrap_or_else(|e| panic!("{name}: {e}")),
        Err(_) => panic!(
            "{name}: no exit within {SCRIPT_TIMEOUT:?}; server log:\n{}",
            server.log_text()
        ),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        panic!(
            "{name} failed ({}) after {:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}\
             \n--- hata serve log ---\n{}",
            output.status,
            started.elapsed(),
            server.log_text()
        );
    }
    println!("{name} ({:?}):\n{stdout}", started.elapsed());
    if !stderr.trim().is_empty() {
        println!("{name} stderr:\n{stderr}");
    }
}

fn node(script: &str, deps: &Deps) -> Command {
    let mut command = Command::new("node");
    command
        .arg(clients_dir().join("node").join(script))
        // The scripts require() the packages (CommonJS), so NODE_PATH finds them.
        .env("NODE_PATH", &deps.node_modules)
        .current_dir(deps.node_modules.parent().expect("node dir"));
    command
}

#[tokio::test]
async fn python_sdk_with_ofrep_provider() {
    let Some(deps) = deps() else { return };
    let server = Server::start().await;
    // The interpreter install.sh installed for (it honours HATA_PYTHON too).
    let python = std::env::var("HATA_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let mut command = Command::new(python);
    command
        .arg(clients_dir().join("python/test_ofrep.py"))
        .env("PYTHONPATH", &deps.python)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    run_client("python openfeature-sdk", command, &server).await;
}

#[tokio::test]
async fn node_server_sdk_with_ofrep_provider() {
    let Some(deps) = deps() else { return };
    let server = Server::start().await;
    run_client(
        "node @openfeature/server-sdk",
        node("server.test.mjs", &deps),
        &server,
    )
    .await;
}

#[tokio::test]
async fn node_web_sdk_with_ofrep_web_provider_over_sse() {
    let Some(deps) = deps() else { return };
    let server = Server::start().await;
    run_client(
        "node @openfeature/web-sdk",
        node("web.test.mjs", &deps),
        &server,
    )
    .await;
}
