//! The web UI over real HTTP, on the real router (with `hata_web::router` as its extra
//! routes) and a real store, SQLite and PostgreSQL: signing in (password, then the
//! authenticator's code), the flags list with its search, sorting and pages, the kill switch
//! (checked through OFREP), the confirmation a protected environment asks for, a viewer
//! without write controls whose forged post is refused, the Japanese pages, and the headers
//! every page carries (CSP, no-store) and the stylesheet's (immutable).

#[path = "../../hata-server/tests/support/mod.rs"]
mod support;

use hata_access::totp::{code_at, step_of, TotpSecret};
use hata_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{secrets, Reply, TestServer};

const PASSWORD: &str = "a long enough password for the ui";
const VIEWER_PASSWORD: &str = "another long password for viewing";

fn config() -> ServerConfig {
    ServerConfig {
        extra_routes: Some(hata_web::router),
        ..ServerConfig::default()
    }
}

/// A browser that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn html(r: &Reply) -> &str {
    r.body.as_str().unwrap_or("")
}

/// `POST /login` with a form.
async fn ui_login(s: &TestServer, email: &str, password: &str, code: Option<&str>) -> Reply {
    secrets::remember(password);
    let mut form = vec![
        ("email", email),
        ("password", password),
        ("next", "/projects"),
    ];
    if let Some(code) = code {
        secrets::remember(code);
        form.push(("code", code));
    }
    Reply::of(s.client.post(s.url("/login")).form(&form)).await
}

/// The session cookie a 303 after login set.
fn cookie_of(r: &Reply) -> String {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "signed in: {}", html(r));
    let set = r.header("set-cookie").expect("Set-Cookie");
    let cookie = set
        .split(';')
        .next()
        .and_then(|p| p.strip_prefix("hata_session="))
        .expect("the session cookie")
        .to_string();
    secrets::remember(&cookie);
    cookie
}

async fn page(s: &TestServer, cookie: &str, path: &str) -> Reply {
    Reply::of(
        s.client
            .get(s.url(path))
            .header("cookie", format!("hata_session={cookie}")),
    )
    .await
}

/// The CSRF token in a page's forms.
fn csrf_in(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with the CSRF token");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    let token = rest[..rest.find('"').expect("end of value")].to_string();
    secrets::remember(&token);
    token
}

async fn post_form(s: &TestServer, cookie: &str, path: &str, form: &[(&str, &str)]) -> Reply {
    Reply::of(
        s.client
            .post(s.url(path))
            .header("cookie", format!("hata_session={cookie}"))
            .form(form),
    )
    .await
}

async fn evaluate(s: &TestServer, token: &str, flag: &str) -> Value {
    let r = Reply::of(
        s.client
            .post(s.url(&format!("/ofrep/v1/evaluate/flags/{flag}")))
            .bearer_auth(token)
            .json(&json!({"context": {"targetingKey": "user-1"}})),
    )
    .await
    .expect(StatusCode::OK);
    r.body["value"].clone()
}

/// A project with an open and a protected environment, and `n` flags (`flag-000`, …; every
/// tenth tagged `checkout`, every fourth owned by `team-a`, the rest by `team-b`), all off
/// (serving `on` when turned on).
async fn seed(s: &TestServer, n: usize) {
    s.post(
        "/api/v1/projects",
        &json!({"key": "shop", "name": "Shop", "environments": [
            {"key": "development", "name": "Development", "description": "", "protected": false},
            {"key": "production", "name": "Production", "description": "", "protected": true},
        ]}),
    )
    .await
    .expect(StatusCode::CREATED);
    for i in 0..n {
        let tags = if i % 10 == 0 {
            json!(["checkout"])
        } else {
            json!([])
        };
        let owner = if i % 4 == 0 { "team-a" } else { "team-b" };
        s.flag(
            "shop",
            json!({"key": format!("flag-{i:03}"), "name": format!("Flag number {i}"),
            "type": "boolean", "tags": tags, "owner": owner, "environments": {
                "development": {"enabled": false, "default": {"variant": "on"}},
                "production": {"enabled": false, "default": {"variant": "on"}},
            }}),
        )
        .await;
    }
}

/// Moves flag `key`'s creation `days` back, under the API (the store stamps it).
async fn created_days_ago(s: &TestServer, key: &str, days: i64) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&s.database_url())
        .await
        .expect("database");
    let doc: String =
        sqlx::query_scalar("SELECT doc FROM flags WHERE project = 'shop' AND key = $1")
            .bind(key)
            .fetch_one(&pool)
            .await
            .expect("flag");
    let mut doc: Value = serde_json::from_str(&doc).expect("document");
    let then = time::OffsetDateTime::now_utc() - time::Duration::days(days);
    doc["created_at"] = json!(then
        .format(&time::format_description::well_known::Rfc3339)
        .expect("time"));
    sqlx::query("UPDATE flags SET doc = $1 WHERE project = 'shop' AND key = $2")
        .bind(doc.to_string())
        .bind(key)
        .execute(&pool)
        .await
        .expect("update");
    pool.close().await;
}

#[tokio::test]
async fn ui_on_sqlite() {
    ui(TestServer::start_with_client(config(), client()).await).await;
}

#[tokio::test]
async fn ui_on_postgres() {
    if let Some(s) = TestServer::start_postgres_with_client(config(), client()).await {
        ui(s).await;
    }
}

async fn ui(s: TestServer) {
    seed(&s, 60).await;
    let admin_id = s.user("ann@example.com", PASSWORD, true).await;
    let viewer_id = s.user("vic@example.com", VIEWER_PASSWORD, false).await;
    s.member("shop", &viewer_id, "viewer").await;
    let token = s.evaluation_token("server", "shop").await;

    // Unsigned: to the login page, which carries the CSP and no-store.
    let r = Reply::of(s.client.get(s.url("/projects/shop/flags"))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.header("location"),
        Some("/login?next=%2Fprojects%2Fshop%2Fflags")
    );
    let login = Reply::of(s.client.get(s.url("/login")))
        .await
        .expect(StatusCode::OK);
    let csp = login.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("style-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(login.header("cache-control"), Some("no-store"));
    // Not the edge's `no-referrer`: with it browsers post forms with `Origin: null`.
    assert_eq!(login.header("referrer-policy"), Some("same-origin"));
    assert_eq!(
        login.header("x-frame-options"),
        Some("DENY"),
        "the edge's headers apply"
    );
    assert!(!html(&login).contains("<script"), "no script at all");
    assert!(!html(&login).contains("style="), "no inline style");
    // The stylesheet: a hashed name, cached for a year.
    let css_at = html(&login).find("/assets/app.").expect("stylesheet link");
    let css_path = &html(&login)[css_at..];
    let css_path = &css_path[..css_path.find('"').expect("end")];
    let css = Reply::of(s.client.get(s.url(css_path)))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        css.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    assert!(html(&css).contains("prefers-color-scheme: dark"));
    Reply::of(s.client.get(s.url("/assets/app.0000000000000000.css")))
        .await
        .expect(StatusCode::NOT_FOUND);

    // A wrong password: 401, the email kept, the password not.
    let wrong = ui_login(&s, "ann@example.com", "not the password at all", None).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        html(&wrong).contains("value=\"ann@example.com\""),
        "email kept"
    );
    assert!(
        !html(&wrong).contains("not the password at all"),
        "password not echoed"
    );

    let cookie = cookie_of(&ui_login(&s, "ann@example.com", PASSWORD, None).await);
    let projects = page(&s, &cookie, "/projects").await.expect(StatusCode::OK);
    assert!(html(&projects).contains("href=\"/projects/shop/flags\""));

    // The list: 50 of 60 flags on page 1, sorted by key; page 2 has the rest.
    let list = page(&s, &cookie, "/projects/shop/flags")
        .await
        .expect(StatusCode::OK);
    let body = html(&list);
    assert!(body.contains("Matching flags: 60"), "count shown");
    assert_eq!(body.matches("<tr data-flag=").count(), 50);
    assert!(body.contains("data-flag=\"flag-000\"") && body.contains("data-flag=\"flag-049\""));
    assert!(!body.contains("data-flag=\"flag-050\""));
    let second = page(&s, &cookie, "/projects/shop/flags?page=2")
        .await
        .expect(StatusCode::OK);
    assert_eq!(html(&second).matches("<tr data-flag=").count(), 10);
    let desc = page(&s, &cookie, "/projects/shop/flags?sort=key&dir=desc").await;
    let first_row = html(&desc)
        .find("<tr data-flag=\"flag-059\"")
        .expect("flag-059 listed");
    assert!(
        first_row
            < html(&desc)
                .find("<tr data-flag=\"flag-058\"")
                .expect("flag-058")
    );
    // Search by name, filter by tag.
    let found = page(&s, &cookie, "/projects/shop/flags?q=NUMBER%2042").await;
    assert_eq!(html(&found).matches("<tr data-flag=").count(), 1);
    assert!(html(&found).contains("data-flag=\"flag-042\""));
    let tagged = page(&s, &cookie, "/projects/shop/flags?tag=checkout").await;
    assert_eq!(html(&tagged).matches("<tr data-flag=").count(), 6);
    // By owner and type, and the stale-flag report's candidates: a flag created 60 days ago
    // and never evaluated.
    let owned = page(
        &s,
        &cookie,
        "/projects/shop/flags?owner=team-a&tag=checkout",
    )
    .await;
    assert!(
        html(&owned).contains("Matching flags: 3"),
        "flag-000, -020, -040"
    );
    let strings = page(&s, &cookie, "/projects/shop/flags?type=string").await;
    assert!(html(&strings).contains("Matching flags: 0"));
    let booleans = page(&s, &cookie, "/projects/shop/flags?type=boolean").await;
    assert!(html(&booleans).contains("Matching flags: 60"));
    let fresh = page(&s, &cookie, "/projects/shop/flags?stale=1").await;
    assert!(
        html(&fresh).contains("Matching flags: 0"),
        "new flags are not stale"
    );
    created_days_ago(&s, "flag-007", 60).await;
    let stale = page(&s, &cookie, "/projects/shop/flags?stale=1").await;
    assert!(
        html(&stale).contains("Matching flags: 1"),
        "{}",
        html(&stale)
    );
    assert!(html(&stale).contains("data-flag=\"flag-007\""));

    // The kill switch: development, from off to on, seen by OFREP.
    assert_eq!(evaluate(&s, &token, "flag-001").await, json!(false));
    let csrf = csrf_in(html(&list));
    let switch = "/projects/shop/flags/flag-001/environments/development/switch";
    let version = s
        .get("/api/v1/projects/shop/flags/flag-001")
        .await
        .etag()
        .to_string();
    let done = post_form(
        &s,
        &cookie,
        switch,
        &[
            ("csrf", &csrf),
            ("enabled", "true"),
            ("version", &version),
            ("back", "/projects/shop/flags?page=1"),
        ],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", html(&done));
    // Back where it was, with a notice that evaluations serve it (the `kill` module).
    assert_eq!(
        done.header("location"),
        Some("/projects/shop/flags?page=1&notice=switched%3Aon%3Aserved%3Adevelopment%3Aflag-001")
    );
    assert_eq!(
        evaluate(&s, &token, "flag-001").await,
        json!(true),
        "evaluations serve it at once"
    );
    // The change is the user's, in the flag's history on its page.
    let flag_page = page(&s, &cookie, "/projects/shop/flags/flag-001")
        .await
        .expect(StatusCode::OK);
    assert!(html(&flag_page).contains("id=\"history\""));
    assert!(
        html(&flag_page).contains("/environments/development/enabled"),
        "{}",
        html(&flag_page)
    );
    let history = s
        .get("/api/v1/projects/shop/flags/flag-001/history")
        .await
        .expect(StatusCode::OK);
    assert_eq!(history.body["items"][0]["actor"]["id"], json!(admin_id));
    // The same version again is a conflict (someone changed it since), not an overwrite.
    let stale = post_form(
        &s,
        &cookie,
        switch,
        &[("csrf", &csrf), ("enabled", "false"), ("version", &version)],
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    // Without the session's CSRF token: refused.
    let forged = post_form(
        &s,
        &cookie,
        switch,
        &[("csrf", "nope"), ("enabled", "false"), ("version", "2")],
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // From another origin: refused.
    let cross = Reply::of(
        s.client
            .post(s.url(switch))
            .header("cookie", format!("hata_session={cookie}"))
            .header("origin", "https://evil.example")
            .form(&[
                ("csrf", csrf.as_str()),
                ("enabled", "false"),
                ("version", "2"),
            ]),
    )
    .await;
    assert_eq!(cross.status, StatusCode::FORBIDDEN);

    // A protected environment asks first; confirmed, it writes.
    let prod = "/projects/shop/flags/flag-002/environments/production/switch";
    let ask = post_form(
        &s,
        &cookie,
        prod,
        &[("csrf", &csrf), ("enabled", "true"), ("version", "1")],
    )
    .await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(html(&ask).contains("name=\"confirm\" value=\"1\""));
    let flag = s
        .get("/api/v1/projects/shop/flags/flag-002")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        flag.body["environments"]["production"]["enabled"],
        json!(false),
        "not yet"
    );
    let confirmed = post_form(
        &s,
        &cookie,
        prod,
        &[
            ("csrf", &csrf),
            ("enabled", "true"),
            ("version", "1"),
            ("confirm", "1"),
        ],
    )
    .await;
    assert_eq!(
        confirmed.status,
        StatusCode::SEE_OTHER,
        "{}",
        html(&confirmed)
    );
    let flag = s
        .get("/api/v1/projects/shop/flags/flag-002")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        flag.body["environments"]["production"]["enabled"],
        json!(true)
    );

    // Sorted by last change (flag-002, then flag-001), and by name (as text: 0, 1, 10, 11, …).
    let rows = |r: &Reply| -> Vec<String> {
        html(r)
            .split("<tr data-flag=\"")
            .skip(1)
            .map(|rest| rest[..rest.find('"').expect("end")].to_string())
            .collect()
    };
    let recent = page(&s, &cookie, "/projects/shop/flags?sort=updated&dir=desc").await;
    assert_eq!(rows(&recent)[..2], ["flag-002", "flag-001"]);
    let by_name = page(&s, &cookie, "/projects/shop/flags?sort=name").await;
    assert_eq!(
        rows(&by_name)[..4],
        ["flag-000", "flag-001", "flag-010", "flag-011"]
    );
    let by_name_desc = page(
        &s,
        &cookie,
        "/projects/shop/flags?sort=name&dir=desc&page=2",
    )
    .await;
    assert_eq!(
        rows(&by_name_desc).last().map(String::as_str),
        Some("flag-000")
    );

    // A rule moves down (or up) by a round trip that keeps the rest of the form and saves
    // nothing; the buttons are there for every rule that can move.
    let edit = "/projects/shop/flags/flag-003/environments/development/edit";
    let opened = page(&s, &cookie, edit).await.expect(StatusCode::OK);
    let rule = |i: usize, field: &str| format!("rules[{i}].{field}");
    let mut form = vec![
        ("csrf".to_string(), csrf_in(html(&opened))),
        ("version".into(), "1".into()),
        ("off_variant".into(), "off".into()),
        ("default.kind".into(), "variant".into()),
        ("default.variant".into(), "off".into()),
        ("action".into(), "down:0".into()),
    ];
    for (i, (description, variant)) in [("first rule", "on"), ("second rule", "off")]
        .into_iter()
        .enumerate()
    {
        form.push((rule(i, "description"), description.into()));
        form.push((rule(i, "conditions[0].attribute"), "country".into()));
        form.push((rule(i, "conditions[0].operator"), "in".into()));
        form.push((rule(i, "conditions[0].kind"), "text".into()));
        form.push((rule(i, "conditions[0].values"), "jp".into()));
        form.push((rule(i, "serve.kind"), "variant".into()));
        form.push((rule(i, "serve.variant"), variant.into()));
    }
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let moved = post_form(&s, &cookie, edit, &form).await;
    assert_eq!(moved.status, StatusCode::OK, "{}", html(&moved));
    let at = |text: &str| html(&moved).find(text).unwrap_or_else(|| panic!("{text}"));
    assert!(
        at("value=\"second rule\"") < at("value=\"first rule\""),
        "swapped"
    );
    assert!(
        html(&moved).contains("value=\"up:1\""),
        "the second can move up"
    );
    assert!(
        html(&moved).contains("value=\"down:0\""),
        "the first can move down"
    );
    assert!(
        !html(&moved).contains("value=\"up:0\""),
        "the first cannot move up"
    );
    let unsaved = s
        .get("/api/v1/projects/shop/flags/flag-003")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        unsaved.body["environments"]["development"]["rules"],
        json!([]),
        "a move saves nothing"
    );

    // A viewer: the list without switches, and a forged post refused.
    let vcookie = cookie_of(&ui_login(&s, "vic@example.com", VIEWER_PASSWORD, None).await);
    let vlist = page(&s, &vcookie, "/projects/shop/flags")
        .await
        .expect(StatusCode::OK);
    assert!(
        !html(&vlist).contains("/switch\""),
        "no write controls for a viewer"
    );
    assert!(html(&vlist).contains("data-flag=\"flag-001\""));
    let vcsrf = csrf_in(html(&vlist));
    let refused = post_form(
        &s,
        &vcookie,
        switch,
        &[("csrf", &vcsrf), ("enabled", "false"), ("version", "2")],
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        evaluate(&s, &token, "flag-001").await,
        json!(true),
        "unchanged"
    );
    let vflag = page(&s, &vcookie, "/projects/shop/flags/flag-001")
        .await
        .expect(StatusCode::OK);
    assert!(
        !html(&vflag).contains("id=\"history\""),
        "the history is for owners"
    );

    // Japanese: from Accept-Language, and switched with ?lang= (kept in a cookie).
    let ja = Reply::of(
        s.client
            .get(s.url("/projects/shop/flags"))
            .header("cookie", format!("hata_session={cookie}"))
            .header("accept-language", "ja,en;q=0.5"),
    )
    .await
    .expect(StatusCode::OK);
    assert!(html(&ja).contains("<html lang=\"ja\""));
    assert!(html(&ja).contains("60 件のフラグ"));
    let switched = page(&s, &cookie, "/projects?lang=ja")
        .await
        .expect(StatusCode::OK);
    assert!(switched
        .header("set-cookie")
        .is_some_and(|c| c.starts_with("hata_lang=ja")));
    assert!(html(&switched).contains("プロジェクト"));

    // Logout ends the session.
    let out = post_form(&s, &cookie, "/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = page(&s, &cookie, "/projects").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER, "signed out");
}

#[tokio::test]
async fn sign_in_with_the_authenticator_code_on_sqlite() {
    let s = TestServer::start_with_client(config(), client()).await;
    s.user("mia@example.com", PASSWORD, false).await;
    let session = s.login("mia@example.com", PASSWORD).await;
    let enrolment = Reply::of(
        s.as_session(&session, Method::POST, "/api/v1/auth/totp")
            .json(&json!({})),
    )
    .await
    .expect(StatusCode::CREATED);
    let secret = TotpSecret::from_stored(enrolment.body["secret"].as_str().expect("secret").into());
    let now = step_of(time::OffsetDateTime::now_utc().unix_timestamp() as u64);
    let confirm = code_at(&secret, now).expect("code");
    Reply::of(
        s.as_session(&session, Method::POST, "/api/v1/auth/totp/confirm")
            .json(&json!({"code": confirm})),
    )
    .await
    .expect(StatusCode::OK);

    // The password alone: the form asks for the code, the email kept.
    let step = ui_login(&s, "mia@example.com", PASSWORD, None).await;
    assert_eq!(step.status, StatusCode::OK);
    assert!(html(&step).contains("name=\"code\""));
    assert!(html(&step).contains("value=\"mia@example.com\""));
    assert!(step.header("set-cookie").is_none(), "no session yet");
    // A wrong code: 401, still asking for it.
    let bad = ui_login(&s, "mia@example.com", PASSWORD, Some("000000")).await;
    if bad.status != StatusCode::SEE_OTHER {
        assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
        assert!(html(&bad).contains("name=\"code\""));
    }
    // The next step's code (the confirmation used this one): signed in.
    let code = code_at(&secret, now + 1).expect("code");
    let cookie = cookie_of(&ui_login(&s, "mia@example.com", PASSWORD, Some(&code)).await);
    let projects = page(&s, &cookie, "/projects").await.expect(StatusCode::OK);
    assert!(html(&projects).contains("mia@example.com"));
}
