//! Two-factor authentication against a real server: enrolling an authenticator with codes
//! computed here (RFC 6238), logging in with codes and recovery codes, replays refused,
//! turning it off, an administrator's reset, and the two MFA policies (administrators,
//! protected environments).

mod support;

use hata_access::totp::{code_at, step_of, MfaPolicy, TotpSecret};
use hata_server::auth::identity::IdentityConfig;
use hata_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{Reply, Session, TestServer};

const PASSWORD: &str = "a long enough password 1";

fn now_step() -> u64 {
    step_of(time::OffsetDateTime::now_utc().unix_timestamp() as u64)
}

/// An authenticator app, as the test plays it: it knows the secret and which step it last
/// gave a code for, and gives the next one (a code is accepted once, one step either side).
struct Authenticator {
    secret: TotpSecret,
    last: u64,
}

impl Authenticator {
    fn next_code(&mut self) -> String {
        self.last = (self.last + 1).max(now_step());
        code_at(&self.secret, self.last).expect("code")
    }
}

async fn login_with(s: &TestServer, email: &str, password: &str, totp: Option<&str>) -> Reply {
    let mut body = json!({"email": email, "password": password});
    if let Some(code) = totp {
        body["totp"] = Value::String(code.into());
    }
    Reply::of(
        reqwest::Client::new()
            .post(s.url("/api/v1/auth/login"))
            .json(&body),
    )
    .await
}

async fn call(s: &TestServer, session: &Session, method: Method, path: &str, body: Value) -> Reply {
    Reply::of(s.as_session(session, method, path).json(&body)).await
}

/// Enrols and confirms an authenticator for the session's user: the app and the recovery
/// codes.
async fn turn_on(s: &TestServer, session: &Session) -> (Authenticator, Vec<String>) {
    let enrolment = call(s, session, Method::POST, "/api/v1/auth/totp", json!({}))
        .await
        .expect(StatusCode::CREATED);
    let secret = enrolment.body["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let mut app = Authenticator {
        secret: TotpSecret::from_stored(secret),
        last: 0,
    };
    let confirmed = call(
        s,
        session,
        Method::POST,
        "/api/v1/auth/totp/confirm",
        json!({"code": app.next_code()}),
    )
    .await
    .expect(StatusCode::OK);
    let codes = confirmed.body["recovery_codes"]
        .as_array()
        .expect("recovery codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_string())
        .collect();
    (app, codes)
}

#[tokio::test]
async fn totp_enrolment_login_recovery_and_removal_on_sqlite() {
    totp_enrolment_login_recovery_and_removal(TestServer::start().await).await;
}

#[tokio::test]
async fn totp_enrolment_login_recovery_and_removal_on_postgres() {
    if let Some(s) = TestServer::start_postgres().await {
        totp_enrolment_login_recovery_and_removal(s).await;
    }
}

async fn totp_enrolment_login_recovery_and_removal(s: TestServer) {
    let id = s.user("ann@example.com", PASSWORD, false).await;
    let session = s.login("ann@example.com", PASSWORD).await;
    let other = s.login("ann@example.com", PASSWORD).await;

    let enrolment = call(&s, &session, Method::POST, "/api/v1/auth/totp", json!({}))
        .await
        .expect(StatusCode::CREATED);
    let secret = enrolment.body["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    let uri = enrolment.body["otpauth_uri"].as_str().expect("uri");
    assert!(
        uri.starts_with("otpauth://totp/hata:ann%40example.com?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    assert_eq!(enrolment.body["digits"], 6);
    assert_eq!(enrolment.body["period"], 30);
    let mut app = Authenticator {
        secret: TotpSecret::from_stored(secret.clone()),
        last: 0,
    };
    // Pending: logins still need the password only.
    login_with(&s, "ann@example.com", PASSWORD, None)
        .await
        .expect(StatusCode::OK);
    // A wrong code does not confirm.
    let wrong = if app.next_code() == "000000" {
        "111111"
    } else {
        "000000"
    };
    app.last -= 1;
    call(
        &s,
        &session,
        Method::POST,
        "/api/v1/auth/totp/confirm",
        json!({"code": wrong}),
    )
    .await
    .invalid_at("code", "current code");
    let confirm_code = app.next_code();
    let confirmed = call(
        &s,
        &session,
        Method::POST,
        "/api/v1/auth/totp/confirm",
        json!({"code": confirm_code}),
    )
    .await
    .expect(StatusCode::OK);
    let codes: Vec<String> = confirmed.body["recovery_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_string())
        .collect();
    assert_eq!(codes.len(), 10);

    // On: this session stays and says so, the other one ended, enrolling again is a 409.
    let me = call(&s, &session, Method::GET, "/api/v1/auth/me", json!(null))
        .await
        .expect(StatusCode::OK);
    assert_eq!(me.body["mfa"], true);
    Reply::of(s.as_session(&other, Method::GET, "/api/v1/auth/me"))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    call(&s, &session, Method::POST, "/api/v1/auth/totp", json!({}))
        .await
        .problem(StatusCode::CONFLICT);
    let user = s
        .get(&format!("/api/v1/users/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(user.body["mfa"], true);

    // The password alone is not enough, and says what is missing.
    let r = login_with(&s, "ann@example.com", PASSWORD, None)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("totp")),
        "{}",
        r.body
    );
    // The code used to confirm cannot be used again, nor can a wrong one; a wrong password
    // with the right code gets the one answer for every wrong credential.
    for (password, code) in [
        (PASSWORD, confirm_code.clone()),
        (PASSWORD, "12345".to_string()),
        (
            "not the password at all",
            code_at(&app.secret, app.last + 1).expect("code"),
        ),
    ] {
        let r = login_with(&s, "ann@example.com", password, Some(&code))
            .await
            .problem(StatusCode::UNAUTHORIZED);
        assert!(!r.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("send `totp`"));
    }
    let code = app.next_code();
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let login = login_with(&s, "ann@example.com", PASSWORD, Some(&spaced))
        .await
        .expect(StatusCode::OK);
    let fresh = Session::of(&login);
    // The same code again: a replay.
    login_with(&s, "ann@example.com", PASSWORD, Some(&code))
        .await
        .problem(StatusCode::UNAUTHORIZED);

    // A recovery code works once, however typed.
    let typed = codes[0].replace('-', "").to_uppercase();
    login_with(&s, "ann@example.com", PASSWORD, Some(&typed))
        .await
        .expect(StatusCode::OK);
    login_with(&s, "ann@example.com", PASSWORD, Some(&codes[0]))
        .await
        .problem(StatusCode::UNAUTHORIZED);

    // Turning it off needs the password and a code.
    call(
        &s,
        &fresh,
        Method::DELETE,
        "/api/v1/auth/totp",
        json!({"password": "not the password at all", "code": app.next_code()}),
    )
    .await
    .invalid_at("password", "not the current password");
    call(
        &s,
        &fresh,
        Method::DELETE,
        "/api/v1/auth/totp",
        json!({"password": PASSWORD, "code": codes[0]}),
    )
    .await
    .invalid_at("code", "current code");
    call(
        &s,
        &fresh,
        Method::DELETE,
        "/api/v1/auth/totp",
        json!({"password": PASSWORD, "code": codes[1]}),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
    let me = call(&s, &fresh, Method::GET, "/api/v1/auth/me", json!(null))
        .await
        .expect(StatusCode::OK);
    assert_eq!(me.body["mfa"], false);
    login_with(&s, "ann@example.com", PASSWORD, None)
        .await
        .expect(StatusCode::OK);

    // The change record says what happened, never the secret or a code; the failed code
    // counted as a failed login.
    let doc = s
        .store
        .export()
        .await
        .expect("export")
        .to_json()
        .expect("json");
    assert!(
        doc.contains("\"totp\""),
        "the record names the resource type"
    );
    assert!(doc.contains("login_failed"));
    assert!(!doc.contains(&secret));
    for code in &codes {
        assert!(!doc.contains(code.as_str()) && !doc.contains(&code.replace('-', "")));
    }
}

#[tokio::test]
async fn an_admin_resets_a_lost_authenticator() {
    let s = TestServer::start().await;
    let id = s.user("bo@example.com", PASSWORD, false).await;
    let session = s.login("bo@example.com", PASSWORD).await;
    turn_on(&s, &session).await;
    login_with(&s, "bo@example.com", PASSWORD, None)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    // Only an admin may; bo itself may not reset without the code.
    call(
        &s,
        &session,
        Method::DELETE,
        &format!("/api/v1/users/{id}/totp"),
        json!(null),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    s.delete(&format!("/api/v1/users/{id}/totp"))
        .await
        .expect(StatusCode::NO_CONTENT);
    // Idempotent: off stays off; an unknown user is a 404.
    s.delete(&format!("/api/v1/users/{id}/totp"))
        .await
        .expect(StatusCode::NO_CONTENT);
    s.delete("/api/v1/users/usr_nobody/totp")
        .await
        .problem(StatusCode::NOT_FOUND);
    login_with(&s, "bo@example.com", PASSWORD, None)
        .await
        .expect(StatusCode::OK);
}

fn policy(admins: bool, protected_environments: bool) -> ServerConfig {
    ServerConfig {
        identity: IdentityConfig {
            mfa: MfaPolicy {
                admins,
                protected_environments,
            },
            ..IdentityConfig::default()
        },
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn administrators_act_as_such_only_with_mfa_when_required() {
    let s = TestServer::start_with(policy(true, false)).await;
    s.project("shop").await;
    let id = s.user("root@example.com", PASSWORD, true).await;
    s.member("shop", &id, "viewer").await;
    let session = s.login("root@example.com", PASSWORD).await;
    let r = Reply::of(s.as_session(&session, Method::GET, "/api/v1/users"))
        .await
        .problem(StatusCode::FORBIDDEN);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("two-factor")),
        "{}",
        r.body
    );
    // Its project roles still hold, and it can enrol.
    Reply::of(s.as_session(&session, Method::GET, "/api/v1/projects/shop/flags"))
        .await
        .expect(StatusCode::OK);
    let me = call(&s, &session, Method::GET, "/api/v1/auth/me", json!(null))
        .await
        .expect(StatusCode::OK);
    assert_eq!(me.body["admin"], false);
    turn_on(&s, &session).await;
    Reply::of(s.as_session(&session, Method::GET, "/api/v1/users"))
        .await
        .expect(StatusCode::OK);
    // Admin tokens are machines' credentials: the policy does not apply to them.
    s.get("/api/v1/users").await.expect(StatusCode::OK);
}

#[tokio::test]
async fn protected_environments_need_mfa_when_required_on_sqlite() {
    protected_environments_need_mfa(TestServer::start_with(policy(false, true)).await).await;
}

#[tokio::test]
async fn protected_environments_need_mfa_when_required_on_postgres() {
    if let Some(s) = TestServer::start_postgres_with(policy(false, true)).await {
        protected_environments_need_mfa(s).await;
    }
}

async fn protected_environments_need_mfa(s: TestServer) {
    // A new project's production is protected; development is not.
    let envs = s.get("/api/v1/projects/shop/environments").await;
    assert_eq!(envs.status, StatusCode::NOT_FOUND);
    s.project("shop").await;
    let prod = s
        .get("/api/v1/projects/shop/environments/production")
        .await
        .expect(StatusCode::OK);
    assert_eq!(prod.body["protected"], true);
    let dev = s
        .get("/api/v1/projects/shop/environments/development")
        .await
        .expect(StatusCode::OK);
    assert_eq!(dev.body["protected"], false);
    s.flag(
        "shop",
        json!({"key": "dark-mode", "name": "Dark mode", "type": "boolean"}),
    )
    .await;
    let id = s.user("ed@example.com", PASSWORD, false).await;
    s.member("shop", &id, "owner").await;
    let session = s.login("ed@example.com", PASSWORD).await;
    let config = |env: &str| format!("/api/v1/projects/shop/flags/dark-mode/environments/{env}");

    // Development, and what production does not evaluate, need no second factor.
    call(
        &s,
        &session,
        Method::PATCH,
        &config("development"),
        json!({"enabled": true}),
    )
    .await
    .expect(StatusCode::OK);
    call(
        &s,
        &session,
        Method::PATCH,
        "/api/v1/projects/shop/flags/dark-mode",
        json!({"description": "darker"}),
    )
    .await
    .expect(StatusCode::OK);
    s.flag(
        "shop",
        json!({"key": "beta", "name": "Beta", "type": "boolean"}),
    )
    .await;

    let before = s.revision("shop", "production").await;
    // Production's config, the whole flag when it changes production, deleting a flag,
    // unprotecting production: refused, naming the environment, and nothing written.
    let flag = s
        .get("/api/v1/projects/shop/flags/dark-mode")
        .await
        .expect(StatusCode::OK)
        .body;
    let mut enabled_everywhere = flag.clone();
    enabled_everywhere["environments"]["production"]["enabled"] = json!(true);
    for (method, path, body) in [
        (
            Method::PATCH,
            config("production"),
            json!({"enabled": true}),
        ),
        (
            Method::PUT,
            "/api/v1/projects/shop/flags/dark-mode".to_string(),
            enabled_everywhere,
        ),
        (
            Method::DELETE,
            "/api/v1/projects/shop/flags/beta".to_string(),
            json!(null),
        ),
        (
            Method::POST,
            "/api/v1/projects/shop/flags".to_string(),
            json!({"key": "new", "name": "New", "type": "boolean",
                   "environments": {"production": {"enabled": true}}}),
        ),
        (
            Method::PUT,
            "/api/v1/projects/shop/environments/production".to_string(),
            json!({"key": "production", "name": "Production", "protected": false}),
        ),
    ] {
        let r = call(&s, &session, method.clone(), &path, body)
            .await
            .problem(StatusCode::FORBIDDEN);
        let detail = r.body["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains("\"production\"") && detail.contains("two-factor"),
            "{method} {path}: {detail}"
        );
    }
    assert_eq!(s.revision("shop", "production").await, before);
    s.get("/api/v1/projects/shop/flags/beta")
        .await
        .expect(StatusCode::OK);

    // A token is not a person: the policy does not bind it.
    s.patch(&config("production"), &json!({"enabled": false}))
        .await
        .expect(StatusCode::OK);
    // With the second factor on, the same session may.
    turn_on(&s, &session).await;
    call(
        &s,
        &session,
        Method::PATCH,
        &config("production"),
        json!({"enabled": true}),
    )
    .await
    .expect(StatusCode::OK);
    call(
        &s,
        &session,
        Method::DELETE,
        "/api/v1/projects/shop/flags/beta",
        json!(null),
    )
    .await
    .expect(StatusCode::NO_CONTENT);
}
