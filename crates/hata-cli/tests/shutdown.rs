//! SIGTERM as an orchestrator sends it to `hata serve`: a request in flight finishes, event
//! streams are told to reconnect and end, the evaluation counts are stored, and
//! `--shutdown-grace` bounds a request that would never finish.

mod support;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Row;
use support::Replica;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A `POST /api/v1/projects` whose body is only half sent: in flight until the rest comes.
async fn half_sent_create(r: &Replica, key: &str) -> (TcpStream, Vec<u8>) {
    let body = json!({"key": key}).to_string().into_bytes();
    let host = r.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).await.expect("connect");
    let head = format!(
        "POST /api/v1/projects HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        support::ADMIN_TOKEN,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    let (first, rest) = body.split_at(body.len() / 2);
    stream.write_all(first).await.expect("send half the body");
    (stream, rest.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_ends_streams_and_stores_counts_within_the_grace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());
    let mut r = Replica::start_with_env("drain", &db, &[("HATA_SHUTDOWN_GRACE", "3")]).await;
    r.admin_ok(
        Method::POST,
        "/projects",
        Some(json!({"key": "shop"})),
        StatusCode::CREATED,
    )
    .await;
    r.admin_ok(
        Method::POST,
        "/projects/shop/flags",
        Some(json!({"key": "banner", "type": "boolean",
            "environments": {"development": {"enabled": true}}})),
        StatusCode::CREATED,
    )
    .await;
    let token = r
        .admin_ok(
            Method::POST,
            "/tokens",
            Some(
                json!({"name": "server", "kind": "server", "project": "shop",
                        "environment": "development"}),
            ),
            StatusCode::CREATED,
        )
        .await["secret"]
        .as_str()
        .expect("secret")
        .to_string();
    support::secrets::remember(&token);
    for _ in 0..7 {
        let (status, body) = r.ofrep(&token, "banner").await.expect("evaluate");
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let mut stream = r.events("/api/v1/sdk/stream", Some(&token)).await;
    stream
        .until(support::DEADLINE, |e| e.event == "config")
        .await;
    let (mut finishing, rest) = half_sent_create(&r, "finished-after-sigterm").await;
    let (_stuck, _) = half_sent_create(&r, "never-finished").await;
    // Both requests are in flight once the server has read their heads.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    r.signal_terminate();
    let goodbye = stream.rest(Duration::from_secs(5)).await;
    assert!(
        goodbye.contains("retry: 250"),
        "the stream is told to come back soon, then ends: {goodbye:?}"
    );
    finishing.write_all(&rest).await.expect("send the rest");
    let mut answer = Vec::new();
    finishing
        .read_to_end(&mut answer)
        .await
        .expect("read the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 201"),
        "the request in flight at SIGTERM is answered: {answer}"
    );
    r.wait_exit().await;
    let took = signalled.elapsed();
    // The stuck request holds the shutdown for the grace (3 s), and no longer.
    assert!(
        took >= Duration::from_millis(2_500) && took < Duration::from_secs(10),
        "exited {took:?} after SIGTERM with a 3 s grace"
    );

    let pool = sqlx::SqlitePool::connect(&db)
        .await
        .expect("open the store");
    let counted: i64 = sqlx::query(
        "SELECT COALESCE(SUM(count), 0) AS n FROM evaluation_counts WHERE flag = 'banner'",
    )
    .fetch_one(&pool)
    .await
    .expect("read the counts")
    .get("n");
    assert_eq!(counted, 7, "every evaluation is stored at shutdown");
    let created: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM projects WHERE key = 'finished-after-sigterm'")
            .fetch_one(&pool)
            .await
            .expect("read the projects")
            .get("n");
    assert_eq!(created, 1, "the write in flight was committed");
    pool.close().await;
}
