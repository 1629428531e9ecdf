//! The secrets a test run used, and the logs it wrote, for one check over the whole run:
//! no log line carries a password, token, session id, CSRF token, TOTP seed or recovery code.
//!
//! The test helpers call [`remember`] (or [`remember_request`] / [`remember_response`], which
//! find the secrets in what they send and receive) and each secret is appended to the file
//! named by `HATA_TEST_SECRETS_FILE`; without that variable nothing is written. Servers'
//! logs go to the test's captured output ([`init_logging`] for in-process servers; a
//! replica's log file is copied there when it stops), which nextest's `ci` profile keeps in
//! its JUnit report for passing tests too. `crates/hata-cli/tests/secrets_in_logs.rs` then
//! searches that report for every remembered secret (`.ci/run` runs it last).

#![allow(dead_code)]

use std::io::Write;
use std::sync::Once;

use serde_json::Value;

/// Where the run's secrets are collected, one per line.
pub const SECRETS_FILE_VAR: &str = "HATA_TEST_SECRETS_FILE";

/// Shorter values are not searched for: a six-digit TOTP code or a short word occurs by
/// chance in logs (timestamps, ids) and is not a secret that leaks anything on its own.
pub const MIN_SECRET_LEN: usize = 12;

/// Members of request and response bodies whose string values (or arrays of strings) are
/// secrets.
const SECRET_MEMBERS: [&str; 8] = [
    "password",
    "new_password",
    "current_password",
    "secret",
    "csrf_token",
    "recovery_codes",
    "client_secret",
    "otpauth_uri",
];

/// Appends `secret` to the run's secrets file, when there is one.
pub fn remember(secret: &str) {
    if secret.len() < MIN_SECRET_LEN || secret.contains('\n') {
        return;
    }
    let Ok(path) = std::env::var(SECRETS_FILE_VAR) else {
        return;
    };
    // One short `write` per line on an O_APPEND file: lines from the suite's parallel test
    // processes do not interleave.
    let line = format!("{secret}\n");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path);
    match file {
        Ok(mut file) => file
            .write_all(line.as_bytes())
            .expect("append to the secrets file"),
        Err(e) => panic!("{SECRETS_FILE_VAR}={path}: {e}"),
    }
}

/// Remembers the values of environment variables that name a secret (`…PASSWORD`,
/// `…SECRET`, `…TOKEN`), as a test hands them to `hata`.
pub fn remember_env(env: &[(&str, &str)]) {
    for (name, value) in env {
        if ["PASSWORD", "SECRET", "TOKEN"]
            .iter()
            .any(|word| name.ends_with(word))
        {
            remember(value);
        }
    }
}

/// Remembers every secret member (see `SECRET_MEMBERS`) anywhere in `body`.
pub fn remember_json(body: &Value) {
    match body {
        Value::Object(map) => {
            for (name, value) in map {
                if SECRET_MEMBERS.contains(&name.as_str()) {
                    remember_strings(value);
                } else {
                    remember_json(value);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(remember_json),
        _ => {}
    }
}

fn remember_strings(value: &Value) {
    match value {
        Value::String(s) => remember(s),
        Value::Array(items) => items.iter().for_each(remember_strings),
        _ => {}
    }
}

/// Remembers what a request carries: its bearer token, its session cookie and CSRF header,
/// and the secret members of a JSON body.
pub fn remember_request(request: &reqwest::Request) {
    let headers = request.headers();
    if let Some(bearer) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        remember(bearer);
    }
    if let Some(cookies) = headers.get("cookie").and_then(|v| v.to_str().ok()) {
        cookies
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .for_each(|(_, value)| remember(value));
    }
    if let Some(csrf) = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        remember(csrf);
    }
    if let Some(body) = request.body().and_then(|b| b.as_bytes()) {
        if let Ok(json) = serde_json::from_slice::<Value>(body) {
            remember_json(&json);
        }
    }
}

/// Remembers what a response hands out: cookies it sets and the secret members of its body.
pub fn remember_response(headers: &reqwest::header::HeaderMap, body: &Value) {
    for set_cookie in headers.get_all("set-cookie") {
        if let Some((_, value)) = set_cookie
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .and_then(|pair| pair.split_once('='))
        {
            remember(value);
        }
    }
    remember_json(body);
}

/// Copies a `hata serve` log into the test's captured output (where the search for leaked
/// secrets reads it), framed by `what`.
pub fn show_log(what: &str, log: &str) {
    eprintln!("--- {what} ---\n{log}--- end of {what} ---");
}

/// Sends hata's logs (`tracing`) to the test's captured output, at debug level for hata's
/// own crates, so that the search covers what an operator who turns up `RUST_LOG` would
/// see; and keeps the access log's lines, as `--log-format json` writes them, for
/// [`access_lines`]. Once per process; later calls do nothing.
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::Layer as _;
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::new(
            "info,hata_server=debug,hata_store=debug,hata_serving=debug,sqlx=warn",
        );
        let logs = tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(filter);
        let access = AccessLines.with_filter(tracing_subscriber::filter::filter_fn(|meta| {
            meta.target() == "hata::access"
        }));
        let _ = tracing_subscriber::registry()
            .with(logs)
            .with(access)
            .try_init();
    });
}

static ACCESS_LINES: std::sync::Mutex<Vec<serde_json::Map<String, Value>>> =
    std::sync::Mutex::new(Vec::new());

/// Keeps every access log line, as the JSON log format writes it.
struct AccessLines;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AccessLines {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let line = hata_server::telemetry::json::line(event);
        ACCESS_LINES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }
}

/// The access log lines of the requests with this `X-Request-Id` (in-process servers, after
/// [`init_logging`]).
pub fn access_lines(request_id: &str) -> Vec<serde_json::Map<String, Value>> {
    ACCESS_LINES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|line| line.get("request_id").and_then(Value::as_str) == Some(request_id))
        .cloned()
        .collect()
}
