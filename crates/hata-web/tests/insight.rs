//! The flag page's insight over real HTTP on the real router and store (SQLite and
//! PostgreSQL): the evaluations chart from stored counts, "what does this user see" (checked
//! against OFREP's answer for the same context), the kill switch's confirmation once
//! evaluations serve it, the MFA step-up a protected environment asks for under
//! `--mfa-required-for-protected`, and the UI's requests counted under their route
//! templates in `/metrics`.

#[path = "../../hata-server/tests/support/mod.rs"]
mod support;

use hata_server::ServerConfig;
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{secrets, Reply, TestServer};

const PASSWORD: &str = "a long enough password for insight";

fn config() -> ServerConfig {
    ServerConfig {
        extra_routes: Some(hata_web::router),
        extra_route_templates: hata_web::ROUTES,
        ..ServerConfig::default()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn html(r: &Reply) -> &str {
    r.body.as_str().unwrap_or("")
}

async fn sign_in(s: &TestServer, email: &str) -> String {
    secrets::remember(PASSWORD);
    let r = Reply::of(s.client.post(s.url("/login")).form(&[
        ("email", email),
        ("password", PASSWORD),
        ("next", "/projects"),
    ]))
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", html(&r));
    let set = r.header("set-cookie").expect("Set-Cookie");
    let cookie = set
        .split(';')
        .next()
        .and_then(|p| p.strip_prefix("hata_session="))
        .expect("session cookie")
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

async fn post_form(s: &TestServer, cookie: &str, path: &str, form: &[(&str, &str)]) -> Reply {
    Reply::of(
        s.client
            .post(s.url(path))
            .header("cookie", format!("hata_session={cookie}"))
            .form(form),
    )
    .await
}

fn csrf_in(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with the CSRF token");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    let token = rest[..rest.find('"').expect("end")].to_string();
    secrets::remember(&token);
    token
}

/// `shop` with `development` and protected `production`; `checkout` serves `new` to Japan
/// (a rule), 50/50 by rollout otherwise; `banner` is a plain boolean, on in development.
async fn seed(s: &TestServer) {
    s.post(
        "/api/v1/projects",
        &json!({"key": "shop", "name": "Shop", "environments": [
            {"key": "development", "name": "Development", "description": "", "protected": false},
            {"key": "production", "name": "Production", "description": "", "protected": true},
        ]}),
    )
    .await
    .expect(StatusCode::CREATED);
    let config = json!({"enabled": true,
        "rules": [{"id": "japan", "conditions": [
            {"attribute": "country", "operator": "in", "values": ["jp"]}],
            "serve": {"variant": "new"}}],
        "default": {"rollout": {"weights": [
            {"variant": "old", "weight": 50000}, {"variant": "new", "weight": 50000}]}}});
    s.flag(
        "shop",
        json!({"key": "checkout", "type": "string",
            "variants": [{"key": "old", "value": "old"}, {"key": "new", "value": "new"}],
            "environments": {"development": config, "production": config}}),
    )
    .await;
    s.flag(
        "shop",
        json!({"key": "banner", "type": "boolean", "environments": {
            "development": {"enabled": true, "default": {"variant": "on"}},
            "production": {"enabled": false, "default": {"variant": "on"}},
        }}),
    )
    .await;
}

async fn ofrep(s: &TestServer, token: &str, flag: &str, context: Value) -> Value {
    Reply::of(
        s.client
            .post(s.url(&format!("/ofrep/v1/evaluate/flags/{flag}")))
            .bearer_auth(token)
            .json(&json!({ "context": context })),
    )
    .await
    .expect(StatusCode::OK)
    .body
}

/// The text of the cell after `<tr data-flag="{flag}"` up to its row's end.
fn row<'a>(page: &'a str, flag: &str) -> &'a str {
    let at = page
        .find(&format!("<tr data-flag=\"{flag}\""))
        .unwrap_or_else(|| panic!("a row for {flag}: {page}"));
    let rest = &page[at..];
    &rest[..rest.find("</tr>").expect("row end")]
}

#[tokio::test]
async fn insight_on_sqlite() {
    insight(TestServer::start_with_client(config(), client()).await).await;
}

#[tokio::test]
async fn insight_on_postgres() {
    if let Some(s) = TestServer::start_postgres_with_client(config(), client()).await {
        insight(s).await;
    }
}

async fn insight(s: TestServer) {
    seed(&s).await;
    s.user("ann@example.com", PASSWORD, true).await;
    let token = s.evaluation_token("server", "shop").await;
    let cookie = sign_in(&s, "ann@example.com").await;

    // The chart: counts of this hour (as the flusher stores them) in development.
    let now = time::OffsetDateTime::now_utc();
    let hour = format!(
        "{:04}-{:02}-{:02}T{:02}:00:00Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour()
    );
    let count = |variant: &str, reason: &str, n| hata_store::EvaluationCount {
        project: "shop".into(),
        environment: "development".into(),
        flag: "checkout".into(),
        hour: hour.clone(),
        variant: variant.into(),
        reason: reason.into(),
        count: n,
    };
    s.state()
        .store
        .record_evaluations(
            &[
                count("old", "SPLIT", 1200),
                count("new", "SPLIT", 1000),
                count("new", "TARGETING_MATCH", 300),
            ],
            &[],
        )
        .await
        .expect("record");
    let flag_page = page(&s, &cookie, "/projects/shop/flags/checkout")
        .await
        .expect(StatusCode::OK);
    let body = html(&flag_page);
    assert!(body.contains("id=\"evaluations\""), "{body}");
    assert!(body.contains("<svg class=\"chart\""), "{body}");
    assert!(
        body.contains("aria-labelledby=\"chart-svg-development-title chart-svg-development-desc\"")
    );
    assert!(body.contains("Totals: old 1,200, new 1,300."), "{body}");
    assert!(
        body.contains("No evaluations in the last 7 days."),
        "production has none"
    );
    assert!(!body.contains("style="), "no inline style (CSP)");
    // 7 days by default: per day; 24 hours: per hour, linked.
    assert!(body.contains("<span aria-current=\"true\">7 days</span>"));
    assert!(body.contains("href=\"/projects/shop/flags/checkout?window=24h#evaluations\""));
    let day = page(&s, &cookie, "/projects/shop/flags/checkout?window=24h")
        .await
        .expect(StatusCode::OK);
    assert!(html(&day).contains(&format!(
        "<th scope=\"row\">{} {:02}:00</th>",
        &hour[..10],
        now.hour()
    )));

    // What does this user see: the flag page's form, answered as OFREP answers.
    assert!(body.contains("action=\"/projects/shop/whosees\""));
    let csrf = csrf_in(body);
    let seen = post_form(
        &s,
        &cookie,
        "/projects/shop/whosees",
        &[
            ("csrf", &csrf),
            ("env", "development"),
            ("flag", "checkout"),
            ("key", "user-7"),
            ("attributes", "country=jp\nage=42"),
        ],
    )
    .await
    .expect(StatusCode::OK);
    let r = row(html(&seen), "checkout");
    let served = ofrep(
        &s,
        &token,
        "checkout",
        json!({"targetingKey": "user-7", "country": "jp", "age": 42}),
    )
    .await;
    assert_eq!(served["variant"], json!("new"));
    assert!(
        r.contains(">new<") && r.contains("TARGETING_MATCH") && r.contains("japan"),
        "{r}"
    );
    assert!(
        html(&seen).contains("country=jp\nage=42"),
        "the input is kept"
    );
    // A rollout: the same bucket as OFREP's, for a few keys.
    for key in ["a", "b", "c", "d", "e"] {
        let seen = post_form(
            &s,
            &cookie,
            "/projects/shop/whosees",
            &[
                ("csrf", &csrf),
                ("env", "development"),
                ("flag", "checkout"),
                ("key", key),
                ("attributes", "{\"country\": \"us\"}"),
            ],
        )
        .await
        .expect(StatusCode::OK);
        let served = ofrep(
            &s,
            &token,
            "checkout",
            json!({"targetingKey": key, "country": "us"}),
        )
        .await;
        let variant = served["variant"].as_str().expect("variant");
        let r = row(html(&seen), "checkout");
        assert!(
            r.contains(&format!("<td class=\"key\">{variant}</td>")) && r.contains("SPLIT"),
            "{key}: {r}"
        );
    }
    // Every flag of an environment (the project-wide page).
    let form = page(&s, &cookie, "/projects/shop/whosees")
        .await
        .expect(StatusCode::OK);
    assert!(html(&form).contains("<label for=\"whosees-attributes\""));
    let every = post_form(
        &s,
        &cookie,
        "/projects/shop/whosees",
        &[
            ("csrf", &csrf),
            ("env", "production"),
            ("flag", ""),
            ("key", "u"),
            ("attributes", ""),
        ],
    )
    .await
    .expect(StatusCode::OK);
    assert!(row(html(&every), "banner").contains("DISABLED"));
    assert!(row(html(&every), "checkout").contains("SPLIT"));
    // A mistake: shown next to its field, what was typed kept, nothing evaluated.
    let bad = post_form(
        &s,
        &cookie,
        "/projects/shop/whosees",
        &[
            ("csrf", &csrf),
            ("env", "development"),
            ("flag", ""),
            ("key", "u"),
            ("attributes", "country=jp\nthis line has no equals"),
        ],
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&bad).contains("id=\"whosees-attributes-error\""));
    assert!(html(&bad).contains("Line 2 is not name=value."));
    assert!(html(&bad).contains("country=jp\nthis line has no equals"));
    assert!(html(&bad).contains("aria-invalid=\"true\""));
    assert!(!html(&bad).contains("id=\"whosees-table\""));
    let bad_env = post_form(
        &s,
        &cookie,
        "/projects/shop/whosees",
        &[
            ("csrf", &csrf),
            ("env", "nope"),
            ("key", "u"),
            ("attributes", ""),
        ],
    )
    .await;
    assert_eq!(bad_env.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(html(&bad_env).contains("id=\"whosees-env-error\""));
    let forged = post_form(
        &s,
        &cookie,
        "/projects/shop/whosees",
        &[("csrf", "nope"), ("env", "development"), ("key", "u")],
    )
    .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // The kill switch: confirmed once evaluations here serve it, on the page it returns to.
    assert_eq!(
        ofrep(&s, &token, "banner", json!({"targetingKey": "u"})).await["value"],
        json!(true)
    );
    let version = s
        .get("/api/v1/projects/shop/flags/banner")
        .await
        .etag()
        .to_string();
    let done = post_form(
        &s,
        &cookie,
        "/projects/shop/flags/banner/environments/development/switch",
        &[
            ("csrf", &csrf),
            ("enabled", "false"),
            ("version", &version),
            ("back", "/projects/shop/flags?page=1"),
        ],
    )
    .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", html(&done));
    let location = done.header("location").expect("location").to_string();
    assert_eq!(
        location,
        "/projects/shop/flags?page=1&notice=switched%3Aoff%3Aserved%3Adevelopment%3Abanner"
    );
    assert_eq!(
        ofrep(&s, &token, "banner", json!({"targetingKey": "u"})).await["value"],
        json!(false),
        "served when confirmed"
    );
    let list = page(&s, &cookie, &location).await.expect(StatusCode::OK);
    let notice = html(&list)
        .split("id=\"switch-notice\"")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("the notice: {}", html(&list)));
    assert!(
        notice.contains("role=\"status\">banner is off in development, and evaluations on this server serve it."),
        "{notice}"
    );
    assert!(html(&list).contains("notice ok"), "shown as done");
    // The notice is not carried into the page's own links.
    assert!(
        !html(&list).contains("notice=switched&amp;")
            && html(&list).matches("notice=").count() == 0
    );

    // The UI's requests in the metrics, under their templates.
    let metrics = Reply::of(s.client.get(s.url("/metrics")))
        .await
        .expect(StatusCode::OK);
    let text = html(&metrics);
    for (method, route) in [
        ("GET", "/projects/{project}/flags/{flag}"),
        ("GET", "/projects/{project}/flags"),
        ("GET", "/projects/{project}/whosees"),
        ("POST", "/projects/{project}/whosees"),
        (
            "POST",
            "/projects/{project}/flags/{flag}/environments/{env}/switch",
        ),
        ("POST", "/login"),
    ] {
        assert!(
            text.lines().any(|l| l.starts_with("http_requests_total{")
                && l.contains(&format!("method=\"{method}\""))
                && l.contains(&format!("route=\"{route}\""))),
            "{method} {route} counted: {text}"
        );
    }
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("http_requests_total{") && l.contains("route=\"unmatched\"")),
        "nothing unmatched: {text}"
    );
}

/// Under `--mfa-required-for-protected`, a session without the second factor is told what to
/// do instead of asked to confirm, and a confirmation posted anyway changes nothing.
#[tokio::test]
async fn a_protected_switch_asks_for_two_factor_when_the_policy_does() {
    let mut config = config();
    config.identity.mfa.protected_environments = true;
    let s = TestServer::start_with_client(config, client()).await;
    seed(&s).await;
    s.user("ann@example.com", PASSWORD, true).await;
    let cookie = sign_in(&s, "ann@example.com").await;
    let list = page(&s, &cookie, "/projects/shop/flags")
        .await
        .expect(StatusCode::OK);
    let csrf = csrf_in(html(&list));
    let switch = "/projects/shop/flags/banner/environments/production/switch";
    let asked = post_form(
        &s,
        &cookie,
        switch,
        &[("csrf", &csrf), ("enabled", "true"), ("version", "1")],
    )
    .await;
    assert_eq!(asked.status, StatusCode::FORBIDDEN);
    assert!(
        html(&asked).contains("id=\"mfa-needed\""),
        "{}",
        html(&asked)
    );
    assert!(
        !html(&asked).contains("name=\"confirm\""),
        "no confirmation offered"
    );
    let forced = post_form(
        &s,
        &cookie,
        switch,
        &[
            ("csrf", &csrf),
            ("enabled", "true"),
            ("version", "1"),
            ("confirm", "1"),
        ],
    )
    .await;
    assert_eq!(forced.status, StatusCode::FORBIDDEN);
    let flag = s
        .get("/api/v1/projects/shop/flags/banner")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        flag.body["environments"]["production"]["enabled"],
        json!(false)
    );
    // Development is not protected: switched as ever.
    let open = post_form(
        &s,
        &cookie,
        "/projects/shop/flags/banner/environments/development/switch",
        &[("csrf", &csrf), ("enabled", "false"), ("version", "1")],
    )
    .await;
    assert_eq!(open.status, StatusCode::SEE_OTHER, "{}", html(&open));
}
