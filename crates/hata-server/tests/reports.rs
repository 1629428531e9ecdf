//! The reports against a real server on both backends: requests served over HTTP reach
//! `serving_hours` through the flusher (the same cells `/metrics` counts), and the daily
//! report read over the API counts them; bad parameters are 422s naming them.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{Reply, TestServer};

async fn evaluate(s: &TestServer, token: &str, key: &str) -> Reply {
    Reply::of(
        s.as_token(
            token,
            Method::POST,
            &format!("/ofrep/v1/evaluate/flags/{key}"),
        )
        .header("content-type", "application/json")
        .body(r#"{"context": {"targetingKey": "u-1"}}"#),
    )
    .await
}

fn class<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["by_route_class"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["route_class"] == name))
        .unwrap_or(&Value::Null)
}

#[track_caller]
fn names_field(r: &Reply, field: &str) {
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let errors = r.body["errors"].as_array().cloned().unwrap_or_default();
    assert!(errors.iter().any(|e| e["field"] == field), "{}", r.body);
}

async fn served_requests_reach_the_daily_report(s: TestServer) {
    s.project("shop").await;
    s.flag(
        "shop",
        json!({"key": "banner", "type": "boolean", "environments": {"development": {
            "enabled": true, "off_variant": "off", "default": {"variant": "on"}}}}),
    )
    .await;
    let token = s.evaluation_token("client", "shop").await;
    // What the flusher stored before these requests (setup requests, or an earlier tick).
    let state = s.state().clone();
    let now = time::OffsetDateTime::now_utc();
    let today = hata_reports::Day::of(now).to_string();
    state.serving_hours.flush(&s.store, now).await.unwrap();
    let before = s
        .get(&format!("/api/v1/reports/daily?date={today}"))
        .await
        .expect(StatusCode::OK)
        .body;

    for _ in 0..5 {
        evaluate(&s, &token, "banner").await.expect(StatusCode::OK);
    }
    for _ in 0..2 {
        evaluate(&s, &token, "nope")
            .await
            .expect(StatusCode::NOT_FOUND);
    }
    Reply::of(s.client.get(s.url("/health/live")))
        .await
        .expect(StatusCode::OK);
    state
        .serving_hours
        .flush(&s.store, time::OffsetDateTime::now_utc())
        .await
        .unwrap();
    hata_serving::counts::flush_now(&state.serving).await;

    let rows = s
        .store
        .serving_hours(&format!("{today}T00:00:00"), "~")
        .await
        .unwrap();
    assert!(
        rows.iter()
            .all(|r| r.instance == state.serving_hours.instance()),
        "one replica"
    );
    let report = s
        .get(&format!("/api/v1/reports/daily?date={today}"))
        .await
        .expect(StatusCode::OK)
        .body;
    let count = |r: &Value, c: &str, k: &str| class(r, c)[k].as_i64().unwrap_or(0);
    assert_eq!(
        count(&report, "evaluation", "total") - count(&before, "evaluation", "total"),
        7,
        "{report:#}"
    );
    assert_eq!(
        count(&report, "evaluation", "client_errors")
            - count(&before, "evaluation", "client_errors"),
        2
    );
    assert_eq!(count(&report, "evaluation", "failed"), 0);
    assert_eq!(
        count(&report, "health", "total") - count(&before, "health", "total"),
        1
    );
    // The report read before was itself answered (and counted) after the first flush.
    assert!(count(&report, "admin", "total") > count(&before, "admin", "total"));
    let total = report["requests"]["total"].as_i64().unwrap();
    let classes: i64 = report["by_route_class"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["total"].as_i64().unwrap())
        .sum();
    assert_eq!(total, classes);
    assert!(
        report["requests"]["p95_ms"]
            .as_f64()
            .is_some_and(|p| p > 0.0),
        "{report:#}"
    );
    assert!(
        report["availability"]["up_minutes"].as_i64().is_some(),
        "{report:#}"
    );
    let banner = report["evaluations"]["by_flag"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["flag"] == "banner")
        .cloned()
        .unwrap_or_default();
    assert_eq!(banner["variants"], json!({"on": 5}), "{report:#}");
    assert_eq!(
        report["changes"]["flags"],
        json!([{"project": "shop", "flag": "banner", "changes": 1}])
    );

    let stale = s
        .get("/api/v1/reports/stale?days=7")
        .await
        .expect(StatusCode::OK)
        .body;
    assert_eq!(stale["days"], 7);
    assert_eq!(
        stale["candidates"],
        json!([]),
        "a flag created today is no candidate"
    );

    names_field(
        &s.get("/api/v1/reports/daily?date=2026-13-01").await,
        "date",
    );
    names_field(
        &s.get("/api/v1/reports/daily?date=2999-01-01").await,
        "date",
    );
    names_field(&s.get("/api/v1/reports/stale?days=abc").await, "days");
    names_field(&s.get("/api/v1/reports/stale?days=0").await, "days");
    // Not for evaluation tokens.
    let r = Reply::of(s.as_token(&token, Method::GET, "/api/v1/reports/stale")).await;
    assert!(
        r.status == StatusCode::FORBIDDEN || r.status == StatusCode::UNAUTHORIZED,
        "{r:?}"
    );
}

#[tokio::test]
async fn served_requests_reach_the_daily_report_on_sqlite() {
    served_requests_reach_the_daily_report(TestServer::start().await).await;
}

#[tokio::test]
async fn served_requests_reach_the_daily_report_on_postgres() {
    if let Some(s) = TestServer::start_postgres().await {
        served_requests_reach_the_daily_report(s).await;
    }
}
