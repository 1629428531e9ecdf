//! People from the operator's side, against real `hata serve` processes: `hata user create`
//! (password from standard input or generated), the first-start admin user from
//! `HATA_ADMIN_EMAIL`/`HATA_ADMIN_PASSWORD`, and a logout on one replica ending the session on
//! the other.

mod support;

use std::io::Write;
use std::process::Stdio;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{hata, PgDatabase, Replica};

const PASSWORD: &str = "operator password 2026";

/// `POST /auth/login` on `replica`: the status, the cookie's `name=value` and the body.
async fn login(replica: &Replica, email: &str, password: &str) -> (StatusCode, String, Value) {
    let response = replica
        .client
        .post(format!("{}/api/v1/auth/login", replica.base))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login request");
    let status = response.status();
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or("")
        .to_string();
    (status, cookie, response.json().await.unwrap_or(Value::Null))
}

async fn me(replica: &Replica, cookie: &str) -> (StatusCode, Value) {
    let response = replica
        .client
        .get(format!("{}/api/v1/auth/me", replica.base))
        .header("cookie", cookie)
        .send()
        .await
        .expect("me request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `hata user create <args>` on `url` with `stdin`; (exit ok, stdout, stderr).
fn user_create(args: &[&str], url: &str, stdin: Option<&str>) -> (bool, String, String) {
    let mut all = vec!["user", "create"];
    all.extend_from_slice(args);
    let mut child = hata(&all, &[("HATA_DATABASE_URL", url)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hata user create");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write the password");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("hata user create");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn hata_user_create_makes_users_who_log_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());

    let (ok, _, err) = user_create(
        &["--email", "ops@example.com", "--admin", "--password-stdin"],
        &url,
        Some("short\n"),
    );
    assert!(
        !ok && err.contains("password") && err.contains("12"),
        "{err}"
    );
    let (ok, out, err) = user_create(
        &["--email", "Ops@Example.com", "--admin", "--password-stdin"],
        &url,
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(ok, "{err}");
    assert!(out.contains("admin user ops@example.com"), "{out}");
    assert!(
        !out.contains(PASSWORD),
        "the given password is not echoed: {out}"
    );
    let (ok, _, err) = user_create(
        &["--email", "ops@example.com", "--password-stdin"],
        &url,
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(!ok && err.contains("already exists"), "{err}");
    // Without --password-stdin a password is generated and printed once.
    let (ok, out, err) = user_create(&["--email", "ann@example.com", "--name", "Ann"], &url, None);
    assert!(ok, "{err}");
    let generated = out
        .lines()
        .last()
        .expect("the password line")
        .trim()
        .to_string();
    assert_eq!(generated.len(), 36, "{out}");

    let replica = Replica::start("a", &url).await;
    let (status, cookie, body) = login(&replica, "ops@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = me(&replica, &cookie).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["admin"], true);
    let (status, _, body) = login(&replica, "ann@example.com", &generated).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["name"], "Ann");
    assert_eq!(body["user"]["admin"], false);
    // Nothing in the server's log carries a password, a session or a CSRF token.
    let log = replica.log();
    let csrf = body["csrf_token"].as_str().expect("csrf");
    for secret in [
        PASSWORD,
        generated.as_str(),
        cookie.trim_start_matches("hata_session="),
        csrf,
    ] {
        assert!(!log.contains(secret), "a secret in the log:\n{log}");
    }
}

#[tokio::test]
async fn the_first_start_creates_the_admin_user_from_the_environment() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());
    let env = [
        ("HATA_ADMIN_EMAIL", "root@example.com"),
        ("HATA_ADMIN_PASSWORD", PASSWORD),
    ];
    let replica = Replica::start_with_env("a", &url, &env).await;
    let (status, cookie, body) = login(&replica, "root@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(me(&replica, &cookie).await.1["admin"], true);
    replica.terminate().await;
    // A later start with another password changes nothing: the store has users.
    let env = [
        ("HATA_ADMIN_EMAIL", "root@example.com"),
        ("HATA_ADMIN_PASSWORD", "another password 2027"),
    ];
    let replica = Replica::start_with_env("b", &url, &env).await;
    let (status, _, _) = login(&replica, "root@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_logout_on_one_replica_ends_the_session_on_the_other() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let a = Replica::start("a", &db.url()).await;
    let b = Replica::start("b", &db.url()).await;
    a.admin_ok(
        Method::POST,
        "/users",
        Some(json!({"email": "ann@example.com", "password": PASSWORD})),
        StatusCode::CREATED,
    )
    .await;
    let (status, cookie, body) = login(&a, "ann@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let csrf = body["csrf_token"].as_str().expect("csrf").to_string();
    assert_eq!(
        me(&b, &cookie).await.0,
        StatusCode::OK,
        "the session works on b"
    );
    let out = a
        .client
        .post(format!("{}/api/v1/auth/logout", a.base))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        me(&b, &cookie).await.0,
        StatusCode::UNAUTHORIZED,
        "dead on b"
    );
    assert_eq!(
        me(&a, &cookie).await.0,
        StatusCode::UNAUTHORIZED,
        "dead on a"
    );
}
