//! Nobody can exhaust the server's connections: slow and idle connections are closed, the
//! number open at once is capped, and event streams are capped per token and in total.
//! Everything against the real accept loop (`hata_server::serve`) over real sockets.

mod support;

use std::time::Duration;

use hata_server::{ConnectionLimits, ServerConfig};
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{Reply, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longer than any timeout below: what a closed connection must have seen by then.
const PATIENCE: Duration = Duration::from_secs(10);

async fn server(limits: ConnectionLimits, body_timeout: Duration) -> TestServer {
    TestServer::start_with(ServerConfig {
        connections: limits,
        body_timeout,
        ..ServerConfig::default()
    })
    .await
}

async fn connect(s: &TestServer) -> TcpStream {
    let addr = s.base.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connect")
}

/// Reads until the server closes the connection; what it sent before.
async fn until_closed(mut conn: TcpStream) -> String {
    let mut all = Vec::new();
    tokio::time::timeout(PATIENCE, conn.read_to_end(&mut all))
        .await
        .expect("the server closes the connection")
        .ok();
    String::from_utf8_lossy(&all).into_owned()
}

async fn client_token(s: &TestServer) -> String {
    s.project("shop").await;
    s.flag(
        "shop",
        json!({"key": "banner", "type": "boolean",
               "environments": {"development": {"enabled": true, "default": {"variant": "on"}}}}),
    )
    .await;
    s.evaluation_token("client", "shop").await
}

#[tokio::test]
async fn slow_and_idle_connections_are_closed_while_others_are_served() {
    let s = server(
        ConnectionLimits {
            max_connections: 1_000,
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(2),
        },
        Duration::from_secs(1),
    )
    .await;
    let token = client_token(&s).await;
    // Half a header; nothing at all; a header and part of the body it announced.
    let mut half_headers = Vec::new();
    let mut silent = Vec::new();
    let mut slow_bodies = Vec::new();
    for _ in 0..50 {
        let mut c = connect(&s).await;
        c.write_all(b"POST /ofrep/v1/evaluate/flags/banner HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        half_headers.push(c);
        silent.push(connect(&s).await);
        let mut c = connect(&s).await;
        let head = format!(
            "POST /ofrep/v1/evaluate/flags/banner HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"context\":"
        );
        c.write_all(head.as_bytes()).await.expect("write");
        slow_bodies.push(c);
    }
    // Meanwhile, health and evaluations answer.
    let live = Reply::of(s.client.get(s.url("/health/live"))).await;
    assert_eq!(live.status, StatusCode::OK);
    let eval = Reply::of(
        s.as_token(&token, Method::POST, "/ofrep/v1/evaluate/flags/banner")
            .json(&json!({"context": {"targetingKey": "u"}})),
    )
    .await;
    assert_eq!(eval.status, StatusCode::OK, "{}", eval.body);
    // And every slow connection is closed by the server: the header ones without an answer,
    // the stalled bodies with a 408.
    for c in half_headers.into_iter().chain(silent) {
        assert_eq!(until_closed(c).await, "");
    }
    for c in slow_bodies {
        let answer = until_closed(c).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
    }
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout_not_the_header_timeout() {
    let s = server(
        ConnectionLimits {
            max_connections: 100,
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(3),
        },
        Duration::from_secs(30),
    )
    .await;
    let mut c = connect(&s).await;
    c.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = c.read(&mut buf).await.expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Idle for longer than the header timeout: still open, and it serves the next request.
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    c.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let n = c.read(&mut buf).await.expect("read");
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "the kept-alive connection still serves"
    );
    // Then idle past the idle timeout: closed.
    assert_eq!(until_closed(c).await, "");
}

#[tokio::test]
async fn beyond_max_connections_new_ones_wait_until_a_slot_frees() {
    let s = server(
        ConnectionLimits {
            max_connections: 8,
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(3),
        },
        Duration::from_secs(30),
    )
    .await;
    // The test client's own pooled connection holds one slot; fill the rest.
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(connect(&s).await);
    }
    let fresh = reqwest::Client::new();
    let waiting = fresh.get(s.url("/health/live")).send();
    tokio::pin!(waiting);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), &mut waiting)
            .await
            .is_err(),
        "served although every slot was taken"
    );
    // The idle connections time out, and the waiting request is served.
    let r = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("served once slots free up")
        .expect("answer");
    assert_eq!(r.status(), StatusCode::OK);
    drop(idle);
}

#[tokio::test]
async fn event_streams_are_capped_per_token_and_in_total() {
    let s = TestServer::start_with(ServerConfig {
        max_streams: 3,
        max_streams_per_token: 2,
        ..ServerConfig::default()
    })
    .await;
    client_token(&s).await;
    let a = s.evaluation_token("server", "shop").await;
    let b = s.evaluation_token("server", "shop").await;
    let open = |token: &str| s.as_token(token, Method::GET, "/api/v1/sdk/stream").send();
    let a1 = open(&a).await.expect("stream");
    let a2 = open(&a).await.expect("stream");
    assert_eq!(a1.status(), StatusCode::OK);
    assert_eq!(a2.status(), StatusCode::OK);
    let refused = Reply::of(s.as_token(&a, Method::GET, "/api/v1/sdk/stream"))
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.header("retry-after").is_some());
    assert!(refused.body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("this token")));
    let b1 = open(&b).await.expect("stream");
    assert_eq!(b1.status(), StatusCode::OK);
    // Three open: the total is reached, for any token.
    let refused = Reply::of(s.as_token(&b, Method::GET, "/api/v1/sdk/stream"))
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("this server")));
    // A closed stream gives its slot back.
    drop(a1);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let r = open(&a).await.expect("stream");
        if r.status() == StatusCode::OK {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop((a2, b1));
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires() {
    let s = TestServer::start().await;
    client_token(&s).await;
    let expires = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let expires = expires
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let r = s
        .post(
            "/api/v1/tokens",
            &json!({"name": "brief", "kind": "server", "project": "shop",
                    "environment": "development", "expires_at": expires}),
        )
        .await
        .expect(StatusCode::CREATED);
    let secret = r.body["secret"].as_str().expect("secret");
    let stream = s
        .as_token(secret, Method::GET, "/api/v1/sdk/stream")
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), StatusCode::OK);
    // The heart-beat is 15 s away: the stream must end at the expiry, not then.
    let body = tokio::time::timeout(PATIENCE, stream.bytes())
        .await
        .expect("the stream ends at the token's expiry")
        .expect("body");
    assert!(String::from_utf8_lossy(&body).contains("event: config"));
}
