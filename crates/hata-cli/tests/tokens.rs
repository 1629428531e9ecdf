//! Tokens from the operator's side: the last admin token cannot be deleted, and when no admin
//! token works any more, `hata token create --admin` on the store is the way back in.
//! `hata token list [--due]`. Token ids are random, never derived from the secret.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{hata, PgDatabase, Replica, ADMIN_TOKEN};

async fn request(
    replica: &Replica,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = replica
        .client
        .request(method, format!("{}/api/v1{path}", replica.base))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The id of the token this replica was started with (the only admin token at first).
async fn bootstrap_token_id(replica: &Replica) -> String {
    let page = replica
        .admin_ok(Method::GET, "/tokens", None, StatusCode::OK)
        .await;
    let admins: Vec<&Value> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|t| t["kind"] == "admin")
        .collect();
    assert_eq!(admins.len(), 1, "{page}");
    admins[0]["id"].as_str().expect("id").to_string()
}

/// `hata token <args>` on a store; returns stdout, failing the test on a non-zero exit.
fn token_command(args: &[&str], database_url: &str) -> String {
    let mut all = vec!["token"];
    all.extend_from_slice(args);
    let out = hata(&all, &[("HATA_DATABASE_URL", database_url)])
        .output()
        .expect("run hata token");
    assert!(
        out.status.success(),
        "hata {all:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

async fn the_last_admin_token_stays(database_url: &str) {
    let replica = Replica::start("a", database_url).await;
    let first = bootstrap_token_id(&replica).await;
    let (status, problem) = request(
        &replica,
        Method::DELETE,
        &format!("/tokens/{first}"),
        ADMIN_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("would leave no live administrator"),
        "{problem}"
    );

    // An admin token that has expired does not count: it administers nothing.
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let expiring = replica
        .admin_ok(
            Method::POST,
            "/tokens",
            Some(json!({"name": "short-lived", "kind": "admin", "expires_at": soon})),
            StatusCode::CREATED,
        )
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let (status, problem) = request(
        &replica,
        Method::DELETE,
        &format!("/tokens/{first}"),
        ADMIN_TOKEN,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");

    // With a second live admin token, the first can go; the second then cannot delete itself.
    let second = replica
        .admin_ok(
            Method::POST,
            "/tokens",
            Some(json!({"name": "second admin", "kind": "admin"})),
            StatusCode::CREATED,
        )
        .await;
    let second_secret = second["secret"].as_str().expect("secret");
    let second_id = second["id"].as_str().expect("id");
    let (status, _) = request(
        &replica,
        Method::DELETE,
        &format!("/tokens/{first}"),
        second_secret,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = request(
        &replica,
        Method::DELETE,
        &format!("/tokens/{}", expiring["id"].as_str().expect("id")),
        second_secret,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "expired admin tokens can go"
    );
    let (status, problem) = request(
        &replica,
        Method::DELETE,
        &format!("/tokens/{second_id}"),
        second_secret,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    let (status, _) = request(&replica, Method::GET, "/projects", second_secret, None).await;
    assert_eq!(status, StatusCode::OK, "the last admin token still works");
    replica.terminate().await;
}

#[tokio::test]
async fn the_last_admin_token_cannot_be_deleted_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());
    the_last_admin_token_stays(&url).await;
}

#[tokio::test]
async fn the_last_admin_token_cannot_be_deleted_on_postgres() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    the_last_admin_token_stays(&db.url()).await;
}

/// Offline recovery on PostgreSQL: the running server accepts the new token at once, and the
/// change record names the command line as the actor.
#[tokio::test]
async fn token_create_admin_recovers_access_on_postgres() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let replica = Replica::start("a", &db.url()).await;
    let out = token_command(&["create", "--admin", "--name", "ops recovery"], &db.url());
    let secret = out.trim();
    assert!(secret.starts_with("hata_admin_"), "{out}");
    let deadline = std::time::Instant::now() + support::DEADLINE;
    loop {
        let (status, _) = request(&replica, Method::GET, "/projects", secret, None).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{status}: not accepted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let page = replica
        .admin_ok(Method::GET, "/tokens", None, StatusCode::OK)
        .await;
    let created = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|t| t["name"] == "ops recovery")
        .expect("the new token is listed")
        .clone();
    assert_eq!(created["kind"], "admin");
    assert!(created.get("secret").is_none() && created.get("secret_hash").is_none());

    use sqlx::Row;
    let mut conn = db.connect().await;
    let actor: String = sqlx::query(
        "SELECT actor FROM changes WHERE resource_type = 'token' AND resource_key = $1",
    )
    .bind(created["id"].as_str().expect("id"))
    .fetch_one(&mut conn)
    .await
    .expect("the change record")
    .get("actor");
    assert_eq!(actor, "system:cli");
    replica.terminate().await;
}

/// Offline recovery on the embedded SQLite, with the server stopped (and `--expires-at`
/// checked like the API checks it); then `token list --due`.
#[tokio::test]
async fn token_create_admin_and_list_due_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());
    let replica = Replica::start("a", &url).await;
    replica
        .admin_ok(
            Method::POST,
            "/projects",
            Some(json!({"key": "shop", "name": "Shop"})),
            StatusCode::CREATED,
        )
        .await;
    let in_days = |days: i64| {
        (time::OffsetDateTime::now_utc() + time::Duration::days(days))
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    for (name, days) in [("due soon", 3), ("due later", 60)] {
        replica
            .admin_ok(
                Method::POST,
                "/tokens",
                Some(json!({"name": name, "kind": "server", "project": "shop",
                    "environment": "production", "expires_at": in_days(days)})),
                StatusCode::CREATED,
            )
            .await;
    }
    replica.terminate().await;

    let refused = hata(
        &[
            "token",
            "create",
            "--admin",
            "--expires-at",
            "2001-01-01T00:00:00Z",
        ],
        &[("HATA_DATABASE_URL", &url)],
    )
    .output()
    .expect("run");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--expires-at: must be in the future"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let missing = hata(
        &["token", "create", "--admin"],
        &[("HATA_DATABASE_URL", "sqlite:///nonexistent/dir/hata.db")],
    )
    .output()
    .expect("run");
    assert!(!missing.status.success(), "never creates a store");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no SQLite database"));

    let out = token_command(&["create", "--admin", "--expires-at", &in_days(30)], &url);
    let secret = out.trim().to_string();
    let replica = Replica::start("b", &url).await;
    let (status, _) = request(&replica, Method::GET, "/projects/shop", &secret, None).await;
    assert_eq!(status, StatusCode::OK);
    replica.terminate().await;

    let due: Value =
        serde_json::from_str(&token_command(&["list", "--due", "--json"], &url)).expect("JSON");
    let names: Vec<&str> = due
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["due soon"]);
    assert_eq!(due[0]["standing"], "due_soon");

    // The maximum token age (90 days from creation) makes an older token due too, and
    // overdue past it; without a maximum age only expiries count.
    let pool = sqlx::SqlitePool::connect(&url).await.expect("open");
    let days_ago = |days: i64| {
        (time::OffsetDateTime::now_utc() - time::Duration::days(days))
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    for (name, days) in [("due later", 80), ("bootstrap admin", 95)] {
        sqlx::query("UPDATE tokens SET created_at = ? WHERE name = ?")
            .bind(days_ago(days))
            .bind(name)
            .execute(&pool)
            .await
            .expect("age");
    }
    pool.close().await;
    let due: Value =
        serde_json::from_str(&token_command(&["list", "--due", "--json"], &url)).expect("JSON");
    let standing: std::collections::BTreeMap<&str, &str> = due
        .as_array()
        .expect("array")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().expect("name"),
                t["standing"].as_str().expect("standing"),
            )
        })
        .collect();
    assert_eq!(
        standing,
        [
            ("bootstrap admin", "overdue"),
            ("due later", "due_soon"),
            ("due soon", "due_soon")
        ]
        .into_iter()
        .collect()
    );
    let unlimited: Value = serde_json::from_str(&token_command(
        &["list", "--due", "--json", "--token-max-age-days", "0"],
        &url,
    ))
    .expect("JSON");
    assert_eq!(unlimited.as_array().map(Vec::len), Some(1));
    let all = token_command(&["list"], &url);
    for name in [
        "bootstrap admin",
        "due soon",
        "due later",
        "created by hata token create",
    ] {
        assert!(all.contains(name), "{name} in\n{all}");
    }
    assert!(!all.contains(&secret) && !all.contains(ADMIN_TOKEN));
}

/// Token ids are random: the same operator-chosen secret on two installs gets two ids, and no
/// id is a prefix of the secret's hash (the offline guessing oracle they used to be).
#[tokio::test]
async fn token_ids_are_not_derived_from_secrets() {
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());
        let replica = Replica::start(name, &url).await;
        ids.push(bootstrap_token_id(&replica).await);
        replica.terminate().await;
    }
    assert_ne!(ids[0], ids[1]);
    let hash = hata_access::token::hash_secret(ADMIN_TOKEN);
    for id in &ids {
        let hex = id.strip_prefix("tok_").expect("tok_ prefix");
        assert!(
            !hash.starts_with(hex),
            "{id} is derived from the secret's hash"
        );
    }
}
