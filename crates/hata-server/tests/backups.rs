//! `GET /api/v1/backups`: the backups at the configured destination, complete ones as their
//! manifests and unfinished ones by id; without a destination an empty answer; an unreachable
//! destination a 502 problem naming it. Admin only (the matrix in `permissions.rs`).

mod support;

use hata_backup::{Destination, Kind};
use hata_server::ServerConfig;
use reqwest::StatusCode;
use support::TestServer;

#[tokio::test]
async fn lists_complete_and_unfinished_backups_at_the_destination() {
    let dir = tempfile::tempdir().expect("dir");
    let dest = Destination::directory(dir.path()).expect("dest");
    let s = TestServer::start_with(ServerConfig {
        backups: Some(dest.clone()),
        ..ServerConfig::default()
    })
    .await;
    s.project("shop").await;
    let full = hata_backup::take(&s.store, &dest, Kind::Full)
        .await
        .expect("full");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    s.project("blog").await;
    let inc = hata_backup::take(&s.store, &dest, Kind::Incremental)
        .await
        .expect("incremental");
    // A backup that died before its manifest.
    std::fs::create_dir_all(dir.path().join("20990101T000000.000Z-full")).expect("dir");
    std::fs::write(
        dir.path()
            .join("20990101T000000.000Z-full/document.json.zst"),
        b"half",
    )
    .expect("part");

    let r = s.get("/api/v1/backups").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ids: Vec<&str> = r.body["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .map(|m| m["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [full.id.as_str(), inc.id.as_str()]);
    assert_eq!(r.body["backups"][1]["parent"], full.id.as_str());
    assert_eq!(r.body["backups"][1]["kind"], "incremental");
    assert_eq!(r.body["incomplete"][0]["id"], "20990101T000000.000Z-full");
    assert_eq!(r.body["destination"], dir.path().display().to_string());
}

#[tokio::test]
async fn without_a_destination_the_list_is_empty_and_an_unreachable_one_is_a_502() {
    let s = TestServer::start().await;
    let r = s.get("/api/v1/backups").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["destination"], serde_json::Value::Null);
    assert_eq!(r.body["backups"], serde_json::json!([]));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let s3 = hata_backup::S3Settings {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: Some("us-east-1".into()),
        allow_http: true,
    };
    let dest = Destination::parse("s3://gone/hata", &s3).expect("dest");
    let s = TestServer::start_with(ServerConfig {
        backups: Some(dest),
        ..ServerConfig::default()
    })
    .await;
    let r = s.get("/api/v1/backups").await;
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("s3://gone/hata")),
        "{}",
        r.body
    );
}
