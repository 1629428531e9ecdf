//! People against a real server: logging in and out, the session cookie, CSRF and same-origin
//! refusals, lockout, password changes, disabled users, the last administrator, members.

mod support;

use std::time::Duration;

use hata_access::lockout::LockoutPolicy;
use hata_access::session::SessionPolicy;
use hata_server::auth::identity::IdentityConfig;
use hata_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{Reply, Session, TestServer};

const PASSWORD: &str = "a long enough password 1";

#[tokio::test]
async fn login_sets_a_cookie_that_authenticates_until_logout() {
    let s = TestServer::start().await;
    let id = s.user("Ann@Example.com", PASSWORD, false).await;
    let login = s
        .try_login("  ann@example.COM ", PASSWORD)
        .await
        .expect(StatusCode::OK);
    let cookie = login.header("set-cookie").expect("Set-Cookie").to_string();
    assert!(cookie.starts_with("hata_session="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=604800"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    assert_eq!(login.body["user"]["id"], id);
    assert_eq!(login.body["user"]["email"], "ann@example.com");
    assert!(login.body["user"].get("password_hash").is_none());
    let session = Session::of(&login);

    let me = Reply::of(s.as_session(&session, Method::GET, "/api/v1/auth/me"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(me.body["kind"], "user");
    assert_eq!(me.body["id"], id);
    assert_eq!(me.body["email"], "ann@example.com");
    assert_eq!(me.body["admin"], false);
    assert_eq!(me.body["csrf_token"], session.csrf.as_str());

    // A token's /auth/me has no email and no CSRF token.
    let me = s.get("/api/v1/auth/me").await.expect(StatusCode::OK);
    assert_eq!(me.body["kind"], "token");
    assert_eq!(me.body["admin"], true);
    assert!(me.body.get("csrf_token").is_none() && me.body.get("email").is_none());

    let out = Reply::of(s.as_session(&session, Method::POST, "/api/v1/auth/logout"))
        .await
        .expect(StatusCode::NO_CONTENT);
    assert!(out
        .header("set-cookie")
        .is_some_and(|c| c.contains("Max-Age=0")));
    Reply::of(s.as_session(&session, Method::GET, "/api/v1/auth/me"))
        .await
        .problem(StatusCode::UNAUTHORIZED);

    // The record names the session by id, never by its secret or CSRF token.
    let doc = serde_json::to_string(&s.store.export().await.expect("export")).expect("json");
    assert!(doc.contains("\"login\"") && doc.contains("\"logout\""));
    assert!(!doc.contains(&session.cookie) && !doc.contains(&session.csrf));
    assert!(!doc.contains(PASSWORD));
}

#[tokio::test]
async fn wrong_passwords_and_unknown_emails_get_one_answer() {
    let s = TestServer::start().await;
    s.user("ann@example.com", PASSWORD, false).await;
    let wrong = s
        .try_login("ann@example.com", "not the password at all")
        .await
        .problem(StatusCode::UNAUTHORIZED);
    let unknown = s
        .try_login("bob@example.com", PASSWORD)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, unknown.body);
    assert!(wrong.header("set-cookie").is_none());
    s.try_login("not an email", PASSWORD)
        .await
        .invalid_at("email", "email address");
    // A user without a password (single sign-on only) cannot log in with one.
    s.post("/api/v1/users", &json!({"email": "sso@example.com"}))
        .await
        .expect(StatusCode::CREATED);
    let sso = s
        .try_login("sso@example.com", PASSWORD)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    assert_eq!(sso.body, unknown.body);
}

#[tokio::test]
async fn passwords_meet_the_policy() {
    let s = TestServer::start().await;
    for (password, message) in [
        ("short", "at least 12 characters"),
        ("1qaz2wsx3edc", "most common"),
        ("ann@example.com", "email"),
    ] {
        s.post(
            "/api/v1/users",
            &json!({"email": "ann@example.com", "password": password}),
        )
        .await
        .invalid_at("password", message);
    }
    s.post("/api/v1/users", &json!({"email": "nope"}))
        .await
        .invalid_at("email", "email address");
    s.user("ann@example.com", PASSWORD, false).await;
    s.post("/api/v1/users", &json!({"email": "ANN@example.com"}))
        .await
        .problem(StatusCode::CONFLICT);
}

fn quick_lockout() -> ServerConfig {
    ServerConfig {
        identity: IdentityConfig {
            lockout: LockoutPolicy {
                free_failures: 1,
                lock_after: 3,
                lock_for: Duration::from_secs(600),
            },
            ..IdentityConfig::default()
        },
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn failed_logins_slow_down_then_lock_until_an_admin_resets_on_sqlite() {
    failed_logins_slow_down_then_lock_until_an_admin_resets(
        TestServer::start_with(quick_lockout()).await,
    )
    .await;
}

#[tokio::test]
async fn failed_logins_slow_down_then_lock_until_an_admin_resets_on_postgres() {
    if let Some(s) = TestServer::start_postgres_with(quick_lockout()).await {
        failed_logins_slow_down_then_lock_until_an_admin_resets(s).await;
    }
}

async fn failed_logins_slow_down_then_lock_until_an_admin_resets(s: TestServer) {
    let id = s.user("ann@example.com", PASSWORD, false).await;
    let wrong = "wrong password, twelve+";
    s.try_login("ann@example.com", wrong)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    // The second failure makes the next attempt wait a second.
    s.try_login("ann@example.com", wrong)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    let slowed = s
        .try_login("ann@example.com", PASSWORD)
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(slowed.header("retry-after"), Some("1"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The third failure locks the account: even the right password is refused.
    s.try_login("ann@example.com", wrong)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    let locked = s
        .try_login("ann@example.com", PASSWORD)
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.body["detail"]
        .as_str()
        .unwrap_or("")
        .contains("locked"));
    let wait: u64 = locked
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((590..=600).contains(&wait), "{wait}");
    let user = s
        .get(&format!("/api/v1/users/{id}"))
        .await
        .expect(StatusCode::OK);
    assert!(user.body["locked_until"].is_string(), "{}", user.body);

    // The record shows each failure and the lock, by client address.
    let doc = s.store.export().await.expect("export");
    let failures: Vec<_> = doc
        .changes
        .iter()
        .filter(|c| c.action == hata_store::Action::LoginFailed)
        .collect();
    assert_eq!(failures.len(), 3);
    assert_eq!(failures[0].actor, "anonymous:127.0.0.1");
    assert!(failures[2]
        .new_value
        .as_ref()
        .is_some_and(|v| v["locked_until"].is_string()));

    // An admin's reset clears the lock.
    let new = "another long password 2";
    s.patch(&format!("/api/v1/users/{id}"), &json!({"password": new}))
        .await
        .expect(StatusCode::OK);
    s.login("ann@example.com", new).await;
}

#[tokio::test]
async fn cookie_writes_need_the_csrf_token_and_the_same_origin() {
    let s = TestServer::start().await;
    s.project("shop").await;
    let id = s.user("ed@example.com", PASSWORD, false).await;
    s.member("shop", &id, "editor").await;
    let session = s.login("ed@example.com", PASSWORD).await;
    let flags = "/api/v1/projects/shop/flags";
    let cookie = format!("hata_session={}", session.cookie);

    // Reads need nothing more.
    Reply::of(s.client.get(s.url(flags)).header("cookie", &cookie))
        .await
        .expect(StatusCode::OK);
    // A write without the token, or with another one: 403, nothing written.
    for csrf in [None, Some("0".repeat(48))] {
        let mut r = s
            .client
            .post(s.url(flags))
            .header("cookie", &cookie)
            .json(&json!({"key": "csrf", "type": "boolean"}));
        if let Some(csrf) = csrf {
            r = r.header("x-csrf-token", csrf);
        }
        let refused = Reply::of(r).await.problem(StatusCode::FORBIDDEN);
        assert!(refused.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("X-CSRF-Token"));
    }
    // From another origin: 403 even with the token.
    let refused = Reply::of(
        s.as_session(&session, Method::POST, flags)
            .header("origin", "https://evil.example")
            .json(&json!({"key": "csrf", "type": "boolean"})),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    assert!(refused.body["detail"]
        .as_str()
        .unwrap_or("")
        .contains("cross-origin"));
    s.get(&format!("{flags}/csrf"))
        .await
        .problem(StatusCode::NOT_FOUND);
    // Logging in from another origin is refused too (login CSRF).
    Reply::of(
        s.client
            .post(s.url("/api/v1/auth/login"))
            .header("origin", "https://evil.example")
            .json(&json!({"email": "ed@example.com", "password": PASSWORD})),
    )
    .await
    .problem(StatusCode::FORBIDDEN);

    // With the token and this server's own origin, the write is the user's.
    let own = format!("http://{}", s.addr());
    let created = Reply::of(
        s.as_session(&session, Method::POST, flags)
            .header("origin", own)
            .json(&json!({"key": "csrf", "type": "boolean"})),
    )
    .await
    .expect(StatusCode::CREATED);
    assert_eq!(created.body["key"], "csrf");
    let doc = s.store.export().await.expect("export");
    assert_eq!(
        doc.changes.last().expect("change").actor,
        format!("user:{id}")
    );
    // A viewer's role refuses writes as for tokens (403 from the role, not CSRF).
    s.member("shop", &id, "viewer").await;
    let refused = Reply::of(
        s.as_session(&session, Method::POST, flags)
            .json(&json!({"key": "second", "type": "boolean"})),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    assert!(refused.body["detail"]
        .as_str()
        .unwrap_or("")
        .contains("viewer"));
}

#[tokio::test]
async fn sessions_end_when_idle() {
    let s = TestServer::start_with(ServerConfig {
        identity: IdentityConfig {
            sessions: SessionPolicy {
                idle: Duration::from_secs(1),
                absolute: Duration::from_secs(3600),
            },
            ..IdentityConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    s.user("ann@example.com", PASSWORD, false).await;
    let session = s.login("ann@example.com", PASSWORD).await;
    Reply::of(s.as_session(&session, Method::GET, "/api/v1/auth/me"))
        .await
        .expect(StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    Reply::of(s.as_session(&session, Method::GET, "/api/v1/auth/me"))
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_on_sqlite() {
    a_password_change_ends_the_other_sessions(
        TestServer::start_with(ServerConfig::default()).await,
    )
    .await;
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_on_postgres() {
    if let Some(s) = TestServer::start_postgres_with(ServerConfig::default()).await {
        a_password_change_ends_the_other_sessions(s).await;
    }
}

async fn a_password_change_ends_the_other_sessions(s: TestServer) {
    s.user("ann@example.com", PASSWORD, false).await;
    let here = s.login("ann@example.com", PASSWORD).await;
    let elsewhere = s.login("ann@example.com", PASSWORD).await;
    let change = |current: &str, new: &str| {
        s.as_session(&here, Method::PUT, "/api/v1/users/me/password")
            .json(&json!({"current": current, "new": new}))
    };
    Reply::of(change("not my password!", "a brand new password 3"))
        .await
        .invalid_at("current", "not the current password");
    Reply::of(change(PASSWORD, "short"))
        .await
        .invalid_at("new", "at least 12");
    Reply::of(change(PASSWORD, "a brand new password 3"))
        .await
        .expect(StatusCode::NO_CONTENT);
    Reply::of(s.as_session(&here, Method::GET, "/api/v1/auth/me"))
        .await
        .expect(StatusCode::OK);
    Reply::of(s.as_session(&elsewhere, Method::GET, "/api/v1/auth/me"))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    s.try_login("ann@example.com", PASSWORD)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    s.login("ann@example.com", "a brand new password 3").await;
    // Tokens have no password.
    Reply::of(
        s.admin(Method::PUT, "/api/v1/users/me/password")
            .json(&json!({"current": PASSWORD, "new": "a brand new password 4"})),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn disabled_users_are_logged_out_and_cannot_log_in_on_sqlite() {
    disabled_users_are_logged_out_and_cannot_log_in(
        TestServer::start_with(ServerConfig::default()).await,
    )
    .await;
}

#[tokio::test]
async fn disabled_users_are_logged_out_and_cannot_log_in_on_postgres() {
    if let Some(s) = TestServer::start_postgres_with(ServerConfig::default()).await {
        disabled_users_are_logged_out_and_cannot_log_in(s).await;
    }
}

async fn disabled_users_are_logged_out_and_cannot_log_in(s: TestServer) {
    let id = s.user("ann@example.com", PASSWORD, false).await;
    let session = s.login("ann@example.com", PASSWORD).await;
    let user = s
        .get(&format!("/api/v1/users/{id}"))
        .await
        .expect(StatusCode::OK);
    // A stale If-Match changes nothing.
    Reply::of(
        s.admin(Method::PATCH, &format!("/api/v1/users/{id}"))
            .header("if-match", "\"99\"")
            .json(&json!({"disabled": true})),
    )
    .await
    .problem(StatusCode::PRECONDITION_FAILED);
    Reply::of(
        s.admin(Method::PATCH, &format!("/api/v1/users/{id}"))
            .header("if-match", format!("\"{}\"", user.etag()))
            .json(&json!({"disabled": true})),
    )
    .await
    .expect(StatusCode::OK);
    Reply::of(s.as_session(&session, Method::GET, "/api/v1/auth/me"))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    s.try_login("ann@example.com", PASSWORD)
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_last_administrator_stays_on_sqlite() {
    the_last_administrator_stays(TestServer::start_with(ServerConfig::default()).await).await;
}

#[tokio::test]
async fn the_last_administrator_stays_on_postgres() {
    if let Some(s) = TestServer::start_postgres_with(ServerConfig::default()).await {
        the_last_administrator_stays(s).await;
    }
}

async fn the_last_administrator_stays(s: TestServer) {
    let id = s.user("root@example.com", PASSWORD, true).await;
    let root = s.login("root@example.com", PASSWORD).await;
    // With an admin user, the bootstrap admin token may go.
    let tokens = s.get("/api/v1/tokens").await.expect(StatusCode::OK);
    let token_id = tokens.body["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    Reply::of(s.as_session(&root, Method::DELETE, &format!("/api/v1/tokens/{token_id}")))
        .await
        .expect(StatusCode::NO_CONTENT);
    // Now the admin user is the last administrator: not demoted, disabled or deleted.
    for body in [json!({"admin": false}), json!({"disabled": true})] {
        let refused = Reply::of(
            s.as_session(&root, Method::PATCH, &format!("/api/v1/users/{id}"))
                .json(&body),
        )
        .await
        .problem(StatusCode::CONFLICT);
        assert!(refused.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("no live administrator"));
    }
    Reply::of(s.as_session(&root, Method::DELETE, &format!("/api/v1/users/{id}")))
        .await
        .problem(StatusCode::CONFLICT);
    let me = Reply::of(s.as_session(&root, Method::GET, "/api/v1/auth/me"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(me.body["admin"], true);
}

#[tokio::test]
async fn owners_manage_members_up_to_their_own_role() {
    let s = TestServer::start().await;
    s.project("shop").await;
    s.project("blog").await;
    let owner = s.user("owner@example.com", PASSWORD, false).await;
    let ann = s.user("ann@example.com", PASSWORD, false).await;
    s.member("shop", &owner, "owner").await;
    let session = s.login("owner@example.com", PASSWORD).await;
    let put = |project: &str, user: &str, role: &str| {
        s.as_session(
            &session,
            Method::PUT,
            &format!("/api/v1/projects/{project}/members/{user}"),
        )
        .json(&json!({ "role": role }))
    };
    let member = Reply::of(put("shop", &ann, "editor"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(member.body["role"], "editor");
    assert_eq!(member.body["email"], "ann@example.com");
    Reply::of(put("shop", &ann, "boss"))
        .await
        .invalid_at("role", "viewer, editor or owner");
    Reply::of(put("blog", &ann, "viewer"))
        .await
        .problem(StatusCode::FORBIDDEN);
    Reply::of(put("shop", "usr_0000000000000000", "viewer"))
        .await
        .problem(StatusCode::NOT_FOUND);
    let list = Reply::of(s.as_session(
        &session,
        Method::GET,
        "/api/v1/projects/shop/members?limit=1",
    ))
    .await
    .expect(StatusCode::OK);
    assert_eq!(list.body["items"][0]["email"], "ann@example.com");
    assert!(list.body["next_cursor"].is_string());
    // Ann now sees shop and only shop.
    let ann_session = s.login("ann@example.com", PASSWORD).await;
    let projects = Reply::of(s.as_session(&ann_session, Method::GET, "/api/v1/projects"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(projects.body["items"].as_array().map(Vec::len), Some(1));
    let me = Reply::of(s.as_session(&ann_session, Method::GET, "/api/v1/auth/me"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(me.body["projects"], json!({"shop": "editor"}));
    // Removed: the role goes at once (sessions read roles on every request).
    Reply::of(s.as_session(
        &session,
        Method::DELETE,
        &format!("/api/v1/projects/shop/members/{ann}"),
    ))
    .await
    .expect(StatusCode::NO_CONTENT);
    Reply::of(s.as_session(&ann_session, Method::GET, "/api/v1/projects/shop"))
        .await
        .problem(StatusCode::FORBIDDEN);
}
