//! The web UI in a real browser: Debian's headless Chromium driven through chromedriver
//! (WebDriver, `fantoccini`) against the real `hata serve`. Signing in with a password and
//! with the authenticator's code, the flags list, the kill switch (checked through OFREP), the
//! protected environment's confirmation, a viewer without write controls whose forged form
//! post is refused, the Japanese UI, the dark theme; axe-core (pinned in tests/web/) on every
//! page, failing on serious or critical violations. Screenshots go to docs/screenshots/ with
//! `UPDATE_SCREENSHOTS=1`.
//!
//! Needs `chromium`, `chromedriver` and axe-core (`tests/web/install.sh`): skipped without
//! them, except under `CI=true`, where that fails.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{free_port, secrets, Replica};

const ANN_PASSWORD: &str = "ann's long enough password 1";
const VIC_PASSWORD: &str = "vic's long enough password 2";
const MIA_PASSWORD: &str = "mia's long enough password 3";

/// axe-core as `tests/web/install.sh` installs it.
fn axe_path() -> PathBuf {
    support::client_deps().join("web/node_modules/axe-core/axe.min.js")
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// The browser, its driver and axe-core; `None` (skip) outside CI when one is missing.
fn tools() -> Option<(PathBuf, PathBuf, String)> {
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
struct Driver {
    url: String,
    _child: tokio::process::Child,
}

async fn start_driver(path: &PathBuf) -> Driver {
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
async fn browser(driver: &Driver, chromium: &PathBuf, lang: &str, dark: bool) -> Client {
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
async fn axe(c: &Client, axe_source: &str, page: &str) {
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
fn screenshots() -> PathBuf {
    if std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
    } else {
        std::env::temp_dir().join("hata-web-ui-screenshots")
    }
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    // A PNG, not an empty or error answer.
    assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
    std::fs::create_dir_all(screenshots()).expect("the screenshots folder");
    std::fs::write(screenshots().join(name), png).expect("write the screenshot");
}

async fn fill(c: &Client, css: &str, text: &str) {
    let field = c.wait().for_element(Locator::Css(css)).await.expect(css);
    field.clear().await.expect("clear");
    field.send_keys(text).await.expect("type");
}

async fn click(c: &Client, css: &str) {
    c.wait()
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .expect("click");
}

/// Signs in on the login page (the form, as a user would).
async fn sign_in(c: &Client, base: &str, email: &str, password: &str) {
    c.goto(&format!("{base}/login")).await.expect("login page");
    fill(c, "#email", email).await;
    fill(c, "#password", password).await;
    click(c, "form.stack button[type=submit]").await;
}

async fn path_of(c: &Client) -> String {
    c.current_url().await.expect("url").path().to_string()
}

async fn wait_for_path(c: &Client, path: &str) {
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
async fn wait_for_text(c: &Client, css: &str, text: &str) {
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
async fn api_login(r: &Replica, email: &str, password: &str) -> (String, String) {
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
async fn enrol_totp(
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

async fn evaluate(r: &Replica, token: &str, flag: &str) -> Value {
    let (status, body) = r.ofrep(token, flag).await.expect("OFREP");
    assert_eq!(status, StatusCode::OK, "{body}");
    body["value"].clone()
}

#[tokio::test]
async fn the_web_ui_in_chromium() {
    let Some((chromium, chromedriver, axe_source)) = tools() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());
    let r = Replica::start("web", &db).await;
    r.admin_ok(
        Method::POST,
        "/projects",
        Some(json!({"key": "shop", "name": "Shop", "environments": [
            {"key": "development", "name": "Development", "description": "", "protected": false},
            {"key": "production", "name": "Production", "description": "", "protected": true},
        ]})),
        StatusCode::CREATED,
    )
    .await;
    for i in 0..60 {
        let tags = match i % 10 {
            0 => json!(["checkout", "web"]),
            3 => json!(["search"]),
            _ => json!([]),
        };
        r.admin_ok(
            Method::POST,
            "/projects/shop/flags",
            Some(
                json!({"key": format!("flag-{i:03}"), "name": format!("Flag number {i}"),
                "description": "A flag of the shop", "type": "boolean", "tags": tags,
                "environments": {
                    "development": {"enabled": i % 2 == 0, "default": {"variant": "on"}},
                    "production": {"enabled": false, "default": {"rollout": {"weights": [
                        {"variant": "on", "weight": 30000}, {"variant": "off", "weight": 70000}]}}},
                }}),
            ),
            StatusCode::CREATED,
        )
        .await;
    }
    for (email, password, admin) in [
        ("ann@example.com", ANN_PASSWORD, true),
        ("vic@example.com", VIC_PASSWORD, false),
        ("mia@example.com", MIA_PASSWORD, true),
    ] {
        let user = r
            .admin_ok(
                Method::POST,
                "/users",
                Some(json!({"email": email, "password": password, "admin": admin})),
                StatusCode::CREATED,
            )
            .await;
        if !admin {
            let id = user["id"].as_str().expect("id");
            r.admin_ok(
                Method::PUT,
                &format!("/projects/shop/members/{id}"),
                Some(json!({"role": "viewer"})),
                StatusCode::OK,
            )
            .await;
        }
    }
    let token = r
        .admin_ok(
            Method::POST,
            "/tokens",
            Some(json!({"name": "ofrep", "kind": "server", "project": "shop", "environment": "development"})),
            StatusCode::CREATED,
        )
        .await["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    secrets::remember(&token);
    let (mia_secret, mia_step) = enrol_totp(&r, "mia@example.com", MIA_PASSWORD).await;
    let driver = start_driver(&chromedriver).await;
    let base = r.base.clone();

    // --- an admin, in English, light ------------------------------------------------------
    let c = browser(&driver, &chromium, "en", false).await;
    c.goto(&format!("{base}/login")).await.expect("login page");
    axe(&c, &axe_source, "login").await;
    screenshot(&c, "login-en-light.png").await;
    sign_in(&c, &base, "ann@example.com", ANN_PASSWORD).await;
    wait_for_path(&c, "/projects").await;
    axe(&c, &axe_source, "projects").await;
    click(&c, "a[href='/projects/shop/flags']").await;
    wait_for_path(&c, "/projects/shop/flags").await;
    c.wait()
        .for_element(Locator::Css("table#flags"))
        .await
        .expect("the list");
    let rows = c
        .find_all(Locator::Css("tr[data-flag]"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 50, "a page of 50");
    axe(&c, &axe_source, "flags list").await;
    screenshot(&c, "flags-en-light.png").await;

    // The kill switch, in development: flag-001 is off; one click turns it on for evaluations.
    assert_eq!(evaluate(&r, &token, "flag-001").await, json!(false));
    click(
        &c,
        "tr[data-flag='flag-001'] form[action$='/environments/development/switch'] button",
    )
    .await;
    // The list again, once the write is done (the page shows the new state)...
    wait_for_text(&c, "tr[data-flag='flag-001'] td:nth-child(4) .state", "On").await;
    // ...and by then evaluations serve it.
    assert_eq!(
        evaluate(&r, &token, "flag-001").await,
        json!(true),
        "OFREP serves the switch"
    );

    // Production is protected: a confirmation first.
    click(
        &c,
        "tr[data-flag='flag-002'] form[action$='/environments/production/switch'] button",
    )
    .await;
    c.wait()
        .for_element(Locator::Css("#confirm-question"))
        .await
        .expect("asks first");
    axe(&c, &axe_source, "confirmation").await;
    click(&c, "#confirm").await;
    wait_for_text(&c, "tr[data-flag='flag-002'] td:nth-child(5) .state", "On").await;
    let flag = r
        .admin_ok(
            Method::GET,
            "/projects/shop/flags/flag-002",
            None,
            StatusCode::OK,
        )
        .await;
    assert_eq!(flag["environments"]["production"]["enabled"], json!(true));

    // Search, then the flag page.
    fill(&c, "input[name=q]", "number 42").await;
    click(&c, "form.filters button[type=submit]").await;
    wait_for_text(&c, "#count", "Matching flags: 1").await;
    let rows = c
        .find_all(Locator::Css("tr[data-flag]"))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    c.goto(&format!("{base}/projects/shop/flags/flag-001"))
        .await
        .expect("flag page");
    c.wait()
        .for_element(Locator::Css("table#history"))
        .await
        .expect("history");
    axe(&c, &axe_source, "flag page").await;
    screenshot(&c, "flag-en-light.png").await;
    click(&c, "header.top form button").await;
    wait_for_path(&c, "/login").await;
    c.close().await.expect("close");

    // --- a viewer: no write controls; a forged form post is refused ------------------------
    let c = browser(&driver, &chromium, "en", false).await;
    sign_in(&c, &base, "vic@example.com", VIC_PASSWORD).await;
    wait_for_path(&c, "/projects").await;
    c.goto(&format!("{base}/projects/shop/flags"))
        .await
        .expect("list");
    c.wait()
        .for_element(Locator::Css("table#flags"))
        .await
        .expect("the list");
    let switches = c
        .find_all(Locator::Css("form[action$='/switch']"))
        .await
        .expect("forms");
    assert!(switches.is_empty(), "a viewer sees no switch");
    c.execute(
        "const csrf = document.querySelector('input[name=csrf]').value;
         const f = document.createElement('form');
         f.method = 'post';
         f.action = '/projects/shop/flags/flag-001/environments/development/switch';
         for (const [k, v] of [['csrf', csrf], ['enabled', 'false'], ['version', '2']]) {
           const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v;
           f.appendChild(i);
         }
         document.body.appendChild(f);
         f.submit();",
        vec![],
    )
    .await
    .expect("forge a post");
    c.wait()
        .for_element(Locator::Css("p.error[role=alert]"))
        .await
        .expect("refused");
    let title = c
        .find(Locator::Css("h1"))
        .await
        .expect("h1")
        .text()
        .await
        .expect("text");
    assert_eq!(title, "Not allowed");
    assert_eq!(
        evaluate(&r, &token, "flag-001").await,
        json!(true),
        "unchanged"
    );
    c.close().await.expect("close");

    // --- two-factor sign-in ---------------------------------------------------------------
    let c = browser(&driver, &chromium, "en", false).await;
    sign_in(&c, &base, "mia@example.com", MIA_PASSWORD).await;
    c.wait()
        .for_element(Locator::Css("#code"))
        .await
        .expect("asks for the code");
    axe(&c, &axe_source, "login, second step").await;
    let email = c
        .find(Locator::Css("#email"))
        .await
        .expect("email")
        .prop("value")
        .await
        .expect("value");
    assert_eq!(
        email.as_deref(),
        Some("mia@example.com"),
        "the email is kept"
    );
    let code = hata_access::totp::code_at(&mia_secret, mia_step + 1).expect("code");
    secrets::remember(&code);
    fill(&c, "#password", MIA_PASSWORD).await;
    fill(&c, "#code", &code).await;
    click(&c, "form.stack button[type=submit]").await;
    wait_for_path(&c, "/projects").await;
    c.close().await.expect("close");

    // --- Japanese (Accept-Language), light ------------------------------------------------
    let c = browser(&driver, &chromium, "ja", false).await;
    c.goto(&format!("{base}/login")).await.expect("login page");
    let lang = c
        .find(Locator::Css("html"))
        .await
        .expect("html")
        .attr("lang")
        .await
        .expect("lang");
    assert_eq!(lang.as_deref(), Some("ja"));
    screenshot(&c, "login-ja-light.png").await;
    sign_in(&c, &base, "ann@example.com", ANN_PASSWORD).await;
    wait_for_path(&c, "/projects").await;
    c.goto(&format!("{base}/projects/shop/flags"))
        .await
        .expect("list");
    let count = c
        .wait()
        .for_element(Locator::Css("#count"))
        .await
        .expect("count")
        .text()
        .await
        .expect("text");
    assert_eq!(count, "60 件のフラグ");
    axe(&c, &axe_source, "flags list (ja)").await;
    screenshot(&c, "flags-ja-light.png").await;
    c.goto(&format!("{base}/projects/shop/flags/flag-000"))
        .await
        .expect("flag page");
    c.wait()
        .for_element(Locator::Css("table#variants"))
        .await
        .expect("variants");
    axe(&c, &axe_source, "flag page (ja)").await;
    c.close().await.expect("close");

    // --- the dark theme, from the system preference ---------------------------------------
    let c = browser(&driver, &chromium, "en", true).await;
    sign_in(&c, &base, "ann@example.com", ANN_PASSWORD).await;
    wait_for_path(&c, "/projects").await;
    c.goto(&format!("{base}/projects/shop/flags"))
        .await
        .expect("list");
    c.wait()
        .for_element(Locator::Css("table#flags"))
        .await
        .expect("the list");
    let background = c
        .execute(
            "return getComputedStyle(document.body).backgroundColor;",
            vec![],
        )
        .await
        .expect("style");
    assert_eq!(
        background,
        json!("rgb(13, 17, 23)"),
        "dark from prefers-color-scheme"
    );
    axe(&c, &axe_source, "flags list (dark)").await;
    screenshot(&c, "flags-en-dark.png").await;
    c.goto(&format!("{base}/projects/shop/flags/flag-000"))
        .await
        .expect("flag page");
    c.wait()
        .for_element(Locator::Css("table#variants"))
        .await
        .expect("variants");
    screenshot(&c, "flag-en-dark.png").await;
    c.close().await.expect("close");
}
