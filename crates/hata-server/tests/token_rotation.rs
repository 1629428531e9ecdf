//! `POST /tokens/{id}/rotate`: a new secret at once, the old one until its grace period ends.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{Reply, TestServer};

async fn evaluate(s: &TestServer, secret: &str) -> StatusCode {
    Reply::of(
        s.as_token(secret, Method::POST, "/ofrep/v1/evaluate/flags/dark-mode")
            .json(&json!({"context": {"targetingKey": "u1"}})),
    )
    .await
    .status
}

fn in_seconds(seconds: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_for_its_grace_period_only() {
    let s = TestServer::start().await;
    s.project("shop").await;
    s.flag("shop", json!({"key": "dark-mode", "type": "boolean"}))
        .await;
    let created = s
        .post(
            "/api/v1/tokens",
            &json!({"name": "backend", "kind": "server", "project": "shop",
                    "environment": "development"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let id = created.body["id"].as_str().expect("id").to_string();
    let first = created.body["secret"].as_str().expect("secret").to_string();

    // Default grace: 24 hours; both secrets work meanwhile.
    let rotated = s
        .post(&format!("/api/v1/tokens/{id}/rotate"), &json!({}))
        .await
        .expect(StatusCode::CREATED);
    let second = rotated.body["secret"].as_str().expect("secret").to_string();
    assert!(second.starts_with("hata_server_") && second != first);
    assert_eq!(rotated.body["id"], id.as_str(), "the same token");
    let until = rotated.body["previous_valid_until"]
        .as_str()
        .expect("until");
    let until = hata_core::operand::parse_rfc3339(until).expect("time");
    let day = hata_core::operand::parse_rfc3339(&in_seconds(86_400)).expect("time");
    assert!((day - until).abs() < 60_000_000_000, "about 24 h from now");
    assert!(rotated.body["rotated_at"].is_string());
    assert!(rotated.body.get("previous_secret_hash").is_none());
    assert_eq!(evaluate(&s, &first).await, StatusCode::OK);
    assert_eq!(evaluate(&s, &second).await, StatusCode::OK);

    // Rotating again replaces the previous secret: the first stops at once, the second works
    // for the 2 s asked for, the third from now on.
    let again = s
        .post(
            &format!("/api/v1/tokens/{id}/rotate"),
            &json!({"old_valid_until": in_seconds(2)}),
        )
        .await
        .expect(StatusCode::CREATED);
    let third = again.body["secret"].as_str().expect("secret").to_string();
    assert_eq!(evaluate(&s, &first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(evaluate(&s, &second).await, StatusCode::OK);
    assert_eq!(evaluate(&s, &third).await, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(evaluate(&s, &second).await, StatusCode::UNAUTHORIZED);
    assert_eq!(evaluate(&s, &third).await, StatusCode::OK);

    // Listed once, without secrets; the change record has the rotation.
    let listed = s.get("/api/v1/tokens").await.expect(StatusCode::OK);
    let text = listed.body.to_string();
    for secret in [&first, &second, &third] {
        assert!(!text.contains(secret.as_str()));
    }
    assert_eq!(
        listed.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|t| t["id"] == id.as_str())
            .count(),
        1
    );

    // A body-less rotation works too; bad input changes nothing.
    let response = Reply::of(s.admin(Method::POST, &format!("/api/v1/tokens/{id}/rotate"))).await;
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    let fourth = response.body["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    s.post(
        &format!("/api/v1/tokens/{id}/rotate"),
        &json!({"old_valid_until": "2001-01-01T00:00:00Z"}),
    )
    .await
    .invalid_at("old_valid_until", "future");
    s.post(
        &format!("/api/v1/tokens/{id}/rotate"),
        &json!({"old_valid_until": "soon"}),
    )
    .await
    .invalid_at("old_valid_until", "RFC 3339");
    s.post("/api/v1/tokens/tok_0000000000000000/rotate", &json!({}))
        .await
        .problem(StatusCode::NOT_FOUND);
    assert_eq!(evaluate(&s, &fourth).await, StatusCode::OK);
    assert_eq!(
        evaluate(&s, &third).await,
        StatusCode::OK,
        "in its grace period"
    );

    // The rotation state survives a restart (it is stored, not only cached).
    let mut s = s;
    s.restart().await;
    assert_eq!(evaluate(&s, &fourth).await, StatusCode::OK);
    assert_eq!(evaluate(&s, &third).await, StatusCode::OK);
    assert_eq!(evaluate(&s, &second).await, StatusCode::UNAUTHORIZED);
}
