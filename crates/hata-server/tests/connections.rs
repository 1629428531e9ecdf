//! Nobody can exhaust the server's connections: slow and idle connections are closed, the
//! number open at once is capped, and event streams are capped per token and in total. And
//! native TLS: HTTP/1.1 and HTTP/2 over it, HSTS, TLS 1.2 and 1.3 only, handshakes that never
//! hold up anyone else, and certificates replaced while serving.
//! Everything against the real accept loop (`hata_server::serve`) over real sockets.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hata_server::connections::tls::{Tls, TlsFiles};
use hata_server::{ConnectionLimits, ServerConfig};
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::tls::{handshake, openssl, ServerCert, TestCa};
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
    TcpStream::connect(s.addr()).await.expect("connect")
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

// --- TLS -------------------------------------------------------------------------------------

/// A server over TLS with `cert`, whose files are in `dir`; its client trusts `ca`.
async fn tls_server(
    ca: &TestCa,
    cert: &ServerCert,
    dir: &Path,
    connections: ConnectionLimits,
) -> TestServer {
    let (cert, key) = cert.write(dir);
    let tls = Tls::load(TlsFiles { cert, key }).expect("load the test certificate");
    TestServer::start_with_client(
        ServerConfig {
            tls: Some(Arc::new(tls)),
            connections,
            ..ServerConfig::default()
        },
        ca.client(),
    )
    .await
}

const HSTS: &str = "max-age=31536000";

#[tokio::test]
async fn https_serves_http1_and_http2_with_hsts_and_https_stream_urls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("hata test CA");
    let cert = ca.server_cert("hata-test", 1);
    let s = tls_server(&ca, &cert, dir.path(), ConnectionLimits::default()).await;
    let token = client_token(&s).await;

    // ALPN picks HTTP/2 when the client offers it, HTTP/1.1 when it offers nothing else.
    let h1 = ca.client_builder().http1_only().build().expect("client");
    for (client, version) in [
        (&s.client, reqwest::Version::HTTP_2),
        (&h1, reqwest::Version::HTTP_11),
    ] {
        let live = client
            .get(s.url("/health/live"))
            .send()
            .await
            .expect("live");
        assert_eq!(live.status(), StatusCode::OK);
        assert_eq!(live.version(), version);
        assert_eq!(
            live.headers()
                .get("strict-transport-security")
                .and_then(|v| v.to_str().ok()),
            Some(HSTS)
        );
        // The single-flag fast path and the router both answer with HSTS.
        for path in [
            "/ofrep/v1/evaluate/flags/banner",
            "/ofrep/v1/evaluate/flags",
        ] {
            let r = client
                .post(s.url(path))
                .bearer_auth(&token)
                .json(&json!({"context": {"targetingKey": "u"}}))
                .send()
                .await
                .expect("evaluate");
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_eq!(r.version(), version, "{path}");
            assert_eq!(
                r.headers()
                    .get("strict-transport-security")
                    .and_then(|v| v.to_str().ok()),
                Some(HSTS),
                "{path}"
            );
            let body: serde_json::Value = r.json().await.expect("json");
            if path.ends_with("/banner") {
                assert_eq!(body["value"], true, "{body}");
            } else {
                // The stream URL has the scheme the request came in with.
                let url = body["eventStreams"][0]["url"].as_str().expect("url");
                assert!(url.starts_with(&s.url("/ofrep/v1/events?ticket=")), "{url}");
                assert!(url.starts_with("https://"), "{url}");
            }
        }
    }
    let missing = Reply::of(s.client.get(s.url("/no/such/path"))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header("strict-transport-security"), Some(HSTS));

    // Plain HTTP has no HSTS (a browser would ignore it there, and it would be a lie).
    let plain = TestServer::start().await;
    let live = Reply::of(plain.client.get(plain.url("/health/live"))).await;
    assert_eq!(live.status, StatusCode::OK);
    assert_eq!(live.header("strict-transport-security"), None);
}

#[tokio::test]
async fn tls_1_1_is_refused_and_tls_1_2_and_1_3_are_accepted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("hata test CA");
    let cert = ca.server_cert("hata-test", 1);
    let s = tls_server(&ca, &cert, dir.path(), ConnectionLimits::default()).await;
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write ca.pem");
    let connect = s.addr().to_string();
    let ca_arg = ca_file.to_str().expect("utf-8 temp path");
    let s_client = |extra: &[&str]| {
        let mut args = vec![
            "s_client",
            "-connect",
            &connect,
            "-CAfile",
            ca_arg,
            "-verify_return_error",
        ];
        args.extend_from_slice(extra);
        let args: Vec<String> = args.into_iter().map(str::to_string).collect();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            tokio::time::timeout(PATIENCE, openssl(&args))
                .await
                .expect("openssl s_client finished")
        }
    };
    // Security level 0 lets this OpenSSL offer TLS 1.1 at all (its default configuration
    // refuses to, which would fail the handshake before the server had a say): the refusal
    // checked here is an alert the server sent.
    let Some(old) = s_client(&["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]).await else {
        return;
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&old.stdout),
        String::from_utf8_lossy(&old.stderr)
    );
    assert!(!old.status.success(), "TLS 1.1 was accepted:\n{said}");
    assert!(
        said.contains("SSL alert number"),
        "the server did not refuse TLS 1.1 itself:\n{said}"
    );
    for (flag, protocol) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let out = s_client(&[flag, "-alpn", "h2,http/1.1"])
            .await
            .expect("openssl ran before");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{flag} refused:\n{said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // `New, <protocol>` after the handshake; the session summary may not follow (TLS 1.3
        // sends it with a ticket after the handshake, which s_client may not wait for).
        assert!(
            said.contains(&format!("New, {protocol}")),
            "{flag}:\n{said}"
        );
        assert!(
            said.contains("Verify return code: 0 (ok)"),
            "{flag}:\n{said}"
        );
        assert!(said.contains("ALPN protocol: h2"), "{flag}:\n{said}");
    }
}

#[tokio::test]
async fn plain_http_on_the_tls_port_is_not_served() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("hata test CA");
    let cert = ca.server_cert("hata-test", 1);
    let s = tls_server(&ca, &cert, dir.path(), ConnectionLimits::default()).await;
    let mut c = connect(&s).await;
    c.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, c.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .ok();
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/"),
        "plain HTTP was answered: {answer:?}"
    );
    // Nothing else suffered.
    let live = Reply::of(s.client.get(s.url("/health/live"))).await;
    assert_eq!(live.status, StatusCode::OK);
}

/// Handshakes run in the connections' own tasks, under the header timeout: clients that start
/// one and stall hold up nobody, and are closed.
#[tokio::test]
async fn stalled_handshakes_hold_up_nobody_and_are_closed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("hata test CA");
    let cert = ca.server_cert("hata-test", 1);
    let s = tls_server(
        &ca,
        &cert,
        dir.path(),
        ConnectionLimits {
            max_connections: 1_000,
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(30),
        },
    )
    .await;
    // The start of a TLS record that announces a ClientHello, then nothing.
    let mut stalled = Vec::new();
    for _ in 0..50 {
        let mut c = connect(&s).await;
        c.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
            .await
            .expect("write");
        stalled.push(c);
    }
    let started = std::time::Instant::now();
    let live = Reply::of(s.client.get(s.url("/health/live"))).await;
    assert_eq!(live.status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "served only after {:?}",
        started.elapsed()
    );
    for c in stalled {
        assert_eq!(until_closed(c).await, "");
    }
}

/// Replacing the files is enough: within a few seconds new connections get the new
/// certificate, while an open connection keeps serving; files that do not make a valid pair
/// change nothing.
#[tokio::test]
async fn a_replaced_certificate_is_served_to_new_connections() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new("hata test CA");
    let first = ca.server_cert("hata-first", 1);
    let s = tls_server(&ca, &first, dir.path(), ConnectionLimits::default()).await;
    let (mut open, presented) = handshake(s.addr(), &ca).await;
    assert_eq!(presented, first.der);

    let second = ca.server_cert("hata-second", 2);
    second.write(dir.path());
    wait_for_certificate(&s, &ca, &second, "the new certificate").await;
    // The connection made before still serves, with the certificate it had.
    assert_eq!(
        open.get_ref().1.peer_certificates().map(|c| c[0].to_vec()),
        Some(first.der.clone())
    );
    open.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = vec![0u8; 4096];
    let n = open.read(&mut buf).await.expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    // A key that is not the certificate's, then no PEM at all: the second one stays.
    let third = ca.server_cert("hata-third", 3);
    std::fs::write(dir.path().join("cert.pem"), &third.cert_pem).expect("write");
    tokio::time::sleep(hata_server::connections::tls::RELOAD_POLL * 2).await;
    std::fs::write(dir.path().join("key.pem"), "not a key").expect("write");
    tokio::time::sleep(hata_server::connections::tls::RELOAD_POLL * 2).await;
    let (_, presented) = handshake(s.addr(), &ca).await;
    assert_eq!(
        presented, second.der,
        "a broken pair replaced the certificate"
    );
    // And once the pair is whole again, it is served.
    std::fs::write(dir.path().join("key.pem"), &third.key_pem).expect("write");
    wait_for_certificate(&s, &ca, &third, "the repaired pair").await;
}

/// Waits until a new connection is handed `cert`.
async fn wait_for_certificate(s: &TestServer, ca: &TestCa, cert: &ServerCert, what: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, presented) = handshake(s.addr(), ca).await;
        if presented == cert.der {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} is not served after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
