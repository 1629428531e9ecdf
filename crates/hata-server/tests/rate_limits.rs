//! Request budgets against a real server: the admin API per principal and per client address,
//! logins per account and per address, `RateLimit-*` headers and 429s, budgets shared by two
//! replicas through the real Redis (127.0.0.1:6379), and the fallback to per-replica budgets
//! while Redis does not answer.

mod support;

use std::sync::Arc;

use hata_server::forwarded::TrustedProxies;
use hata_server::limits::{Limits, LimitsConfig};
use hata_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{Reply, TestServer};

const REDIS: &str = "redis://127.0.0.1:6379";
const PASSWORD: &str = "a long enough password 1";

/// A server with these budgets that believes `X-Forwarded-For` from the test (so each test
/// can be its own client addresses).
fn config(admin: u32, login: u32, redis: Option<&str>) -> ServerConfig {
    let limits = Limits::new(&LimitsConfig {
        admin_per_minute: admin,
        login_per_minute: login,
        redis_url: redis.map(str::to_string),
    })
    .expect("limits");
    ServerConfig {
        limits: Arc::new(limits),
        trusted_proxies: TrustedProxies::parse("127.0.0.1").expect("proxies"),
        ..ServerConfig::default()
    }
}

/// An address no other test (or earlier run, in Redis) uses.
fn fresh_ip() -> String {
    let n: u32 = rand::random();
    format!("10.{}.{}.{}", n >> 16 & 255, n >> 8 & 255, n & 255)
}

fn header(r: &Reply, name: &str) -> u64 {
    r.header(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing or not a number: {r:?}"))
}

/// Under `CI=true` Redis must answer; elsewhere a test that needs it is skipped.
async fn redis_answers() -> bool {
    let up = tokio::net::TcpStream::connect("127.0.0.1:6379")
        .await
        .is_ok();
    if !up {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Redis at {REDIS} is required under CI"
        );
        eprintln!("SKIPPED: no Redis at {REDIS}");
    }
    up
}

#[tokio::test]
async fn the_admin_api_has_a_budget_per_principal() {
    let s = TestServer::start_with(config(5, 0, None)).await;
    let ip = fresh_ip();
    let other = s
        .post("/api/v1/tokens", &json!({"name": "other", "kind": "admin"}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(header(&other, "ratelimit-remaining"), 4);
    let secret = other.body["secret"].as_str().expect("secret").to_string();
    let get = || {
        Reply::of(
            s.admin(Method::GET, "/api/v1/projects")
                .header("x-forwarded-for", &ip),
        )
    };
    for left in (0..4).rev() {
        let r = get().await.expect(StatusCode::OK);
        assert_eq!(header(&r, "ratelimit-limit"), 5);
        assert_eq!(header(&r, "ratelimit-remaining"), left);
        assert!(header(&r, "ratelimit-reset") <= 60);
        assert_eq!(r.header("ratelimit-policy"), Some("5;w=60"));
    }
    let refused = get().await.problem(StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&refused, "ratelimit-remaining"), 0);
    // One request every 12 s.
    let retry = header(&refused, "retry-after");
    assert!((1..=12).contains(&retry), "Retry-After {retry}");
    assert!(refused.body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("5 requests per minute")));

    // Another principal has its own budget, from the same address.
    let r = Reply::of(
        s.as_token(&secret, Method::GET, "/api/v1/projects")
            .header("x-forwarded-for", &ip),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(header(&r, "ratelimit-remaining"), 4);
}

#[tokio::test]
async fn requests_without_valid_credentials_have_a_budget_per_address() {
    let s = TestServer::start_with(config(3, 0, None)).await;
    let ip = fresh_ip();
    let anonymous = |token: &'static str| {
        Reply::of(
            s.as_token(token, Method::GET, "/api/v1/projects")
                .header("x-forwarded-for", &ip),
        )
    };
    for token in ["wrong-1", "wrong-2", "wrong-3"] {
        let r = anonymous(token).await.problem(StatusCode::UNAUTHORIZED);
        assert!(r.header("ratelimit-remaining").is_some());
    }
    anonymous("wrong-4")
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS);
    // Another address is not affected, and neither is the admin.
    Reply::of(
        s.as_token("wrong-5", Method::GET, "/api/v1/projects")
            .header("x-forwarded-for", fresh_ip()),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED);
    s.get("/api/v1/projects").await.expect(StatusCode::OK);
}

async fn login_from(s: &TestServer, ip: &str, email: &str, password: &str) -> Reply {
    Reply::of(
        s.client
            .post(s.url("/api/v1/auth/login"))
            .header("x-forwarded-for", ip)
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

#[tokio::test]
async fn logins_have_a_budget_per_account_and_per_address() {
    let s = TestServer::start_with(config(0, 3, None)).await;
    s.user("ann@example.com", PASSWORD, false).await;
    s.user("bo@example.com", PASSWORD, false).await;

    // One account from many addresses: the account's budget.
    for _ in 0..3 {
        login_from(&s, &fresh_ip(), "ann@example.com", "wrong password!")
            .await
            .problem(StatusCode::UNAUTHORIZED);
    }
    let r = login_from(&s, &fresh_ip(), "ANN@example.com", PASSWORD)
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&r, "retry-after") >= 1);
    assert_eq!(header(&r, "ratelimit-limit"), 3);

    // Many accounts from one address: the address's budget.
    let ip = fresh_ip();
    for n in 0..3 {
        login_from(&s, &ip, &format!("nobody{n}@example.com"), PASSWORD)
            .await
            .problem(StatusCode::UNAUTHORIZED);
    }
    login_from(&s, &ip, "bo@example.com", PASSWORD)
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS);
    // Bo from elsewhere is fine, and the answer shows the tighter budget.
    let ok = login_from(&s, &fresh_ip(), "bo@example.com", PASSWORD)
        .await
        .expect(StatusCode::OK);
    assert_eq!(header(&ok, "ratelimit-remaining"), 2);
}

#[tokio::test]
async fn replicas_share_one_budget_through_redis() {
    if !redis_answers().await {
        return;
    }
    let a = TestServer::start_with(config(6, 0, Some(REDIS))).await;
    let b = TestServer::start_with(config(6, 0, Some(REDIS))).await;
    // Without credentials the budget is the address's, the same principal on both replicas.
    let ip = fresh_ip();
    let from = |s: &TestServer| {
        Reply::of(
            s.as_token("not-a-token", Method::GET, "/api/v1/projects")
                .header("x-forwarded-for", &ip),
        )
    };
    let mut remaining = Vec::new();
    for i in 0..6 {
        let server = if i % 2 == 0 { &a } else { &b };
        let r = from(server).await.problem(StatusCode::UNAUTHORIZED);
        remaining.push(header(&r, "ratelimit-remaining"));
    }
    assert_eq!(remaining, [5, 4, 3, 2, 1, 0], "one budget across both");
    from(&a).await.problem(StatusCode::TOO_MANY_REQUESTS);
    from(&b).await.problem(StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn without_redis_each_replica_limits_on_its_own() {
    // Nothing listens on port 1: every check falls back at once (connection refused).
    let s = TestServer::start_with(config(4, 0, Some("redis://127.0.0.1:1"))).await;
    let ip = fresh_ip();
    let get = || {
        Reply::of(
            s.as_token("not-a-token", Method::GET, "/api/v1/projects")
                .header("x-forwarded-for", &ip),
        )
    };
    for left in (0..4).rev() {
        let r = get().await.problem(StatusCode::UNAUTHORIZED);
        assert_eq!(header(&r, "ratelimit-remaining"), left);
    }
    get().await.problem(StatusCode::TOO_MANY_REQUESTS);
    // Service goes on: the admin's own budget.
    s.get("/api/v1/projects").await.expect(StatusCode::OK);
}

#[test]
fn a_malformed_redis_url_is_refused_at_start() {
    let err = Limits::new(&LimitsConfig {
        admin_per_minute: 1,
        login_per_minute: 1,
        redis_url: Some("not a url".into()),
    })
    .expect_err("refused");
    assert!(err.contains("redis_url"), "{err}");
}
