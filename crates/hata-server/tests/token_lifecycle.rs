//! Tokens over their life: when each was last used (batched off the request path), the
//! maximum token age (90 days: refused after, due from 14 days before, listed by
//! `GET /tokens?due=true`), rotation renewing it, and an event stream on a rotated-out secret
//! ending when its grace period does.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{Reply, TestServer};

async fn server_token(s: &TestServer, name: &str) -> (String, String) {
    let r = s
        .post(
            "/api/v1/tokens",
            &json!({"name": name, "kind": "server", "project": "shop",
                    "environment": "development"}),
        )
        .await
        .expect(StatusCode::CREATED);
    (
        r.body["id"].as_str().expect("id").to_string(),
        r.body["secret"].as_str().expect("secret").to_string(),
    )
}

async fn evaluate(s: &TestServer, secret: &str) -> Reply {
    Reply::of(
        s.as_token(secret, Method::POST, "/ofrep/v1/evaluate/flags/dark-mode")
            .json(&json!({"context": {"targetingKey": "u1"}})),
    )
    .await
}

async fn listed(s: &TestServer, query: &str) -> Vec<Value> {
    s.get(&format!("/api/v1/tokens{query}"))
        .await
        .expect(StatusCode::OK)
        .body["items"]
        .as_array()
        .expect("items")
        .clone()
}

fn days_ago(days: i64) -> String {
    hata_store::rfc3339(time::OffsetDateTime::now_utc() - time::Duration::days(days))
}

/// Moves a token's creation back in time, as if it had been made `days` ago, and has the
/// server read tokens again (what a change notice does).
async fn age(s: &TestServer, id: &str, days: i64) {
    let pool = sqlx::SqlitePool::connect(&support::database_url(s.data_dir()))
        .await
        .expect("open the database");
    sqlx::query("UPDATE tokens SET created_at = ? WHERE id = ?")
        .bind(days_ago(days))
        .bind(id)
        .execute(&pool)
        .await
        .expect("age the token");
    pool.close().await;
    s.state().tokens.reload(&s.store).await.expect("reload");
}

async fn shop(s: &TestServer) {
    s.project("shop").await;
    s.flag("shop", json!({"key": "dark-mode", "type": "boolean"}))
        .await;
}

#[tokio::test]
async fn last_use_is_recorded_in_batches() {
    let s = TestServer::start().await;
    shop(&s).await;
    let (used, secret) = server_token(&s, "used").await;
    let (idle, _) = server_token(&s, "idle").await;
    evaluate(&s, &secret).await.expect(StatusCode::OK);
    // Not on the request path: stored by the flusher (every 10 s, and at shutdown).
    s.state().tokens.flush_uses(&s.store).await;
    let tokens = listed(&s, "").await;
    let of = |id: &str| {
        tokens
            .iter()
            .find(|t| t["id"] == id)
            .expect("listed")
            .clone()
    };
    let at = of(&used)["last_used_at"]
        .as_str()
        .expect("last use")
        .to_string();
    let at = hata_core::operand::parse_rfc3339(&at).expect("time");
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    assert!((now - at).abs() < 30_000_000_000, "recent");
    assert!(of(&idle).get("last_used_at").is_none());
    // The admin token that listed them was used too.
    s.state().tokens.flush_uses(&s.store).await;
    let admin = listed(&s, "").await;
    assert!(admin
        .iter()
        .any(|t| t["kind"] == "admin" && t["last_used_at"].is_string()));
}

#[tokio::test]
async fn tokens_past_the_maximum_age_are_refused_and_listed_as_due_before() {
    let s = TestServer::start().await;
    shop(&s).await;
    let (fresh, _) = server_token(&s, "fresh").await;
    let (soon, soon_secret) = server_token(&s, "soon").await;
    let (old, old_secret) = server_token(&s, "old").await;
    age(&s, &soon, 80).await;
    age(&s, &old, 91).await;

    // 80 days old: works, but due (stops at 90).
    evaluate(&s, &soon_secret).await.expect(StatusCode::OK);
    // 91 days old: refused, saying why and what to do.
    let r = evaluate(&s, &old_secret)
        .await
        .problem(StatusCode::UNAUTHORIZED);
    let detail = r.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("maximum token age") && detail.contains("rotate"),
        "{detail}"
    );
    assert!(!detail.contains(&old_secret));

    let standing = |tokens: &[Value], id: &str| {
        tokens
            .iter()
            .find(|t| t["id"] == id)
            .map(|t| t["standing"].as_str().unwrap_or("").to_string())
    };
    let all = listed(&s, "").await;
    assert_eq!(standing(&all, &fresh).as_deref(), Some("good"));
    assert_eq!(standing(&all, &soon).as_deref(), Some("due_soon"));
    assert_eq!(standing(&all, &old).as_deref(), Some("overdue"));
    let due_at = all.iter().find(|t| t["id"] == soon).expect("soon")["due_at"]
        .as_str()
        .expect("due_at")
        .to_string();
    let due_at = hata_core::operand::parse_rfc3339(&due_at).expect("time");
    let ten_days = hata_core::operand::parse_rfc3339(&days_ago(-10)).expect("time");
    assert!(
        (due_at - ten_days).abs() < 60_000_000_000,
        "90 days after creation"
    );
    let due = listed(&s, "?due=true").await;
    let ids: Vec<&str> = due.iter().filter_map(|t| t["id"].as_str()).collect();
    assert!(ids.contains(&soon.as_str()) && ids.contains(&old.as_str()));
    assert!(!ids.contains(&fresh.as_str()));

    // Rotating starts its age again: the new secret works, and it is no longer due.
    let rotated = s
        .post(&format!("/api/v1/tokens/{old}/rotate"), &json!({}))
        .await
        .expect(StatusCode::CREATED);
    let renewed = rotated.body["secret"].as_str().expect("secret");
    evaluate(&s, renewed).await.expect(StatusCode::OK);
    assert_eq!(
        standing(&listed(&s, "").await, &old).as_deref(),
        Some("good")
    );
    // The old secret stays refused: its token's age had already ended it.
    evaluate(&s, &old_secret)
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_stream_on_a_rotated_out_secret_ends_with_its_grace_period() {
    let s = TestServer::start().await;
    shop(&s).await;
    let (id, first) = server_token(&s, "backend").await;
    let stream = s
        .as_token(&first, Method::GET, "/api/v1/sdk/stream")
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), StatusCode::OK);
    let until = hata_store::rfc3339(time::OffsetDateTime::now_utc() + time::Duration::seconds(2));
    s.post(
        &format!("/api/v1/tokens/{id}/rotate"),
        &json!({"old_valid_until": until}),
    )
    .await
    .expect(StatusCode::CREATED);
    let started = std::time::Instant::now();
    // The heart-beat is 15 s away: the stream must end when the grace period does.
    let body = tokio::time::timeout(Duration::from_secs(8), stream.bytes())
        .await
        .expect("the stream ends with the grace period")
        .expect("body");
    assert!(String::from_utf8_lossy(&body).contains("event: config"));
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before it"
    );
    let r = evaluate(&s, &first).await.problem(StatusCode::UNAUTHORIZED);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("rotated out")),
        "{}",
        r.body
    );
}
