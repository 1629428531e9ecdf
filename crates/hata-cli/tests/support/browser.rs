//! Browser-test support, shared by the web UI's test files (`#[path]`-included by each, so
//! the other test binaries do not build it): Debian's headless Chromium through chromedriver
//! (WebDriver, `fantoccini`), axe-core from `tests/web/install.sh`, screenshots, form helpers,
//! and API shortcuts (login, TOTP enrolment, an OFREP evaluation).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{self, free_port, secrets, Replica};

/// axe-core as `tests/web/install.sh` installs it.
pub fn axe_path() -> PathBuf {
    support::client_deps().join("web/node_modules/axe-core/axe.min.js")
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// The browser, its driver and axe-core; `None` (skip) outside CI when one is missing.
pub fn tools() -> Option<(PathBuf, PathBuf, String)> {
    let chromium = which("chromium");
    let driver = which("chromedriver");
    let axe = std::fs::read_to_string(axe_path()).ok();
    match (chromium, driver, axe) {
        (Some(c), Some(d), Some(a)) => Some((c, d, a)),
        missing => {
            let what = format!(
                "chromium: {}, chromedriver: {}, axe-core at {}: {}",
                missing.0.is_some(),
                missing.1.is_some(),
                axe_path().display(),
                missing.2.is_some()
            );
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("the browser tests need them under CI ({what}); .ci/run installs them");
            }
            eprintln!("SKIPPED: {what}");
            None
        }
    }
}

/// chromedriver on a free port; killed when dropped.
pub struct Driver {
    pub url: String,
    _child: tokio::process::Child,
}

pub async fn start_driver(path: &PathBuf) -> Driver {
    let port = free_port();
    let child = tokio::process::Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Driver { url, _child: child };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on {port}");
}

/// A fresh browser profile speaking `lang`, in the dark theme when asked.
pub async fn browser(driver: &Driver, chromium: &PathBuf, lang: &str, dark: bool) -> Client {
    let mut args = vec![
        "--headless=new".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1280,900".into(),
        format!("--lang={lang}"),
    ];
    if dark {
        args.push("--force-dark-mode".into());
    }
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": chromium,
            "args": args,
            "prefs": {"intl.accept_languages": lang},
        }
    });
    let Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

/// Runs axe-core on the current page; fails on serious or critical violations.
pub async fn axe(c: &Client, axe_source: &str, page: &str) {
    c.execute(axe_source, vec![])
        .await
        .expect("inject axe-core");
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']})
               .then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.map(n => n.target.join(' '))}))))
               .catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));",
            vec![],
        )
        .await
        .expect("run axe-core");
    let violations = found.as_array().cloned().unwrap_or_default();
    for v in &violations {
        eprintln!("axe on {page}: {v}");
    }
    let bad: Vec<&Value> = violations
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect();
    assert!(bad.is_empty(), "axe-core on {page}: {bad:#?}");
}

/// Where screenshots go: docs/screenshots/ with `UPDATE_SCREENSHOTS=1` (the README shows
/// them), else a folder under the system's temporary one, so an ordinary run leaves the
/// checkout as it was.
pub fn screenshots() -> PathBuf {
    if std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
    } else {
        std::env::temp_dir().join("hata-web-ui-screenshots")
    }
}

pub async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    // A PNG, not an empty or error answer.
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::create_dir_all(screenshots()).expect("the screenshots folder");
    std::fs::write(screenshots().join(name), png).expect("write the screenshot");
}

pub async fn fill(c: &Client, css: &str, text: &str) {
    let field = c.wait().for_element(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

pub async fn click(c: &Client, css: &str) {
    c.wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
}

/// Signs in on the login page (the form, as a user would).
pub async fn sign_in(c: &Client, base: &str, email: &str, password: &str) {
    c.goto(&format!("{base}/login")).await.expect("login page");
    fill(c, "#email", email).await;
    fill(c, "#password", password).await;
    click(c, "form.stack button[type=submit]").await;
}

pub async fn path_of(c: &Client) -> String {
    c.current_url().await.expect("url").path().to_string()
}

pub async fn wait_for_path(c: &Client, path: &str) {
    for _ in 0..100 {
        if path_of(c).await == path {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let source = c.source().await.unwrap_or_default();
    panic!("never reached {path}: at {}:\n{source}", path_of(c).await);
}

/// Waits until the element at `css` shows `text` (the page after a form post).
pub async fn wait_for_text(c: &Client, css: &str, text: &str) {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            last = e.text().await.unwrap_or_default();
            if last == text {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{css} never showed {text:?} (last {last:?}) at {}",
        path_of(c).await
    );
}

/// The session cookie and CSRF token of an API login.
pub async fn api_login(r: &Replica, email: &str, password: &str) -> (String, String) {
    let resp = r
        .client
        .post(format!("{}/api/v1/auth/login", r.base))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::OK);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("cookie")
        .to_string();
    let body: Value = resp.json().await.expect("body");
    let csrf = body["csrf_token"].as_str().expect("csrf").to_string();
    secrets::remember(cookie.trim_start_matches("hata_session="));
    secrets::remember(&csrf);
    (cookie, csrf)
}

/// Turns two-factor authentication on for `email`; returns the secret and the step used.
pub async fn enrol_totp(
    r: &Replica,
    email: &str,
    password: &str,
) -> (hata_access::totp::TotpSecret, u64) {
    let (cookie, csrf) = api_login(r, email, password).await;
    let call = |path: &str, body: Value| {
        r.client
            .post(format!("{}/api/v1{path}", r.base))
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
    };
    let enrolment: Value = call("/auth/totp", json!({}))
        .await
        .expect("enrol")
        .json()
        .await
        .expect("json");
    let secret = enrolment["secret"].as_str().expect("secret").to_string();
    secrets::remember(&secret);
    let secret = hata_access::totp::TotpSecret::from_stored(secret);
    let step = hata_access::totp::step_of(time::OffsetDateTime::now_utc().unix_timestamp() as u64);
    let code = hata_access::totp::code_at(&secret, step).expect("code");
    let confirmed = call("/auth/totp/confirm", json!({"code": code}))
        .await
        .expect("confirm");
    assert_eq!(confirmed.status(), StatusCode::OK);
    let codes: Value = confirmed.json().await.expect("codes");
    secrets::remember_json(&codes);
    (secret, step)
}

pub async fn evaluate(r: &Replica, token: &str, flag: &str) -> Value {
    let (status, body) = r.ofrep(token, flag).await.expect("OFREP");
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"].clone()
}

/// `hata serve` on a fresh SQLite file (kept while the returned folder lives) with the
/// project `shop`: `development`, and `production` protected.
pub async fn shop_project(name: &str) -> (Replica, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());
    let r = Replica::start(name, &db).await;
    r.admin_ok(
        reqwest::Method::POST,
        "/projects",
        Some(json!({"key": "shop", "name": "Shop", "environments": [
            {"key": "development", "name": "Development", "description": "", "protected": false},
            {"key": "production", "name": "Production", "description": "", "protected": true},
        ]})),
        StatusCode::CREATED,
    )
    .await;
    (r, dir)
}
