//! Readiness as a balancer sees it: each check named, and once shutdown begins, 503 at once
//! (so no new requests are routed here) while liveness and requests in flight go on.

mod support;

use reqwest::StatusCode;
use support::{Reply, TestServer};

#[tokio::test]
async fn readiness_fails_at_once_when_shutdown_begins() {
    let s = TestServer::start().await;
    let ready = Reply::of(s.client.get(s.url("/health/ready"))).await;
    assert_eq!(ready.status, StatusCode::OK);
    // Each check by name; on SQLite without Redis, no listener or Redis check.
    assert_eq!(
        ready.body["checks"]["store"]["status"], "up",
        "{:?}",
        ready.body
    );
    assert_eq!(ready.body["checks"]["rule_sets"]["status"], "up");
    assert!(ready.body["checks"].get("change_listener").is_none());
    assert!(ready.body["checks"].get("redis").is_none());
    s.state().begin_shutdown();
    let draining = Reply::of(s.client.get(s.url("/health/ready"))).await;
    assert_eq!(draining.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(draining.body["draining"], true, "{:?}", draining.body);
    let live = Reply::of(s.client.get(s.url("/health/live"))).await;
    assert_eq!(live.status, StatusCode::OK, "the process is still up");
    // Admin requests still succeed while draining.
    s.get("/api/v1/projects").await.expect(StatusCode::OK);
}
