//! `hata audit verify` and `hata audit public-key` against a real `hata serve`: an export
//! verifies offline with nothing but the public key; a changed byte, a removed checkpoint and
//! a range export are judged right; the store itself verifies, and a row edited in the
//! SQLite file is named.

mod support;

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{hata, Replica, ADMIN_TOKEN};

/// `hata audit …`: (success, stdout, stderr).
fn audit(args: &[&str]) -> (bool, String, String) {
    let mut full = vec!["audit"];
    full.extend_from_slice(args);
    let out = hata(&full, &[]).output().expect("run hata audit");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn get_text(replica: &Replica, path: &str, token: Option<&str>) -> String {
    let mut request = replica.client.get(format!("{}{path}", replica.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.text().await.expect("body")
}

fn write(path: &Path, text: &str) -> String {
    std::fs::write(path, text).expect("write");
    path.to_str().expect("utf-8 path").to_string()
}

#[tokio::test]
async fn an_export_verifies_offline_with_the_public_key_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());
    let replica =
        Replica::start_with_env("audit", &db, &[("HATA_AUDIT_CHECKPOINT_EVERY", "5")]).await;
    replica
        .admin_ok(
            Method::POST,
            "/projects",
            Some(json!({"key": "shop", "name": "Shop"})),
            StatusCode::CREATED,
        )
        .await;
    for i in 0..12 {
        replica
            .admin_ok(
                Method::POST,
                "/projects/shop/flags",
                Some(json!({"key": format!("f{i}"), "type": "boolean"})),
                StatusCode::CREATED,
            )
            .await;
    }
    let export = get_text(&replica, "/api/v1/audit/export", Some(ADMIN_TOKEN)).await;
    let pem = get_text(&replica, "/api/v1/audit/public-key", None).await;
    let lines: Vec<&str> = export.lines().collect();
    let checkpoints = lines
        .iter()
        .filter(|l| l.starts_with("{\"checkpoint\""))
        .count();
    assert!(checkpoints >= 2, "one every 5 entries:\n{export}");

    let export_file = write(&dir.path().join("audit.jsonl"), &export);
    let key_file = write(&dir.path().join("key.pem"), &pem);
    let (ok, stdout, stderr) = audit(&[
        "verify",
        "--from-file",
        &export_file,
        "--public-key",
        &key_file,
        "--checkpoint-every",
        "5",
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["signatures_checked"], true, "{report}");
    assert_eq!(
        report["entries"].as_u64(),
        Some((lines.len() - checkpoints) as u64),
        "{report}"
    );

    // The key as text works as well as a file (after `=` or as the next argument, though it
    // starts with `-----`), and `hata audit public-key` prints the same.
    let key_arg_text = format!("--public-key={pem}");
    let (ok, _, stderr) = audit(&["verify", "--from-file", &export_file, &key_arg_text]);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = audit(&["verify", "--from-file", &export_file, "--public-key", &pem]);
    assert!(ok, "{stderr}");
    let (ok, printed, stderr) = audit(&[
        "public-key",
        "--data-dir",
        replica.data_dir().to_str().expect("utf-8"),
        "--database-url",
        &db,
    ]);
    assert!(ok, "{stderr}");
    assert_eq!(printed, pem);

    // One byte changed in the third entry: named by its seq.
    let third: Value = serde_json::from_str(lines[2]).expect("an entry");
    let seq = third["seq"].as_u64().expect("seq");
    let tampered: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 2 {
                l.replacen("\"create\"", "\"crEate\"", 1)
            } else {
                l.to_string()
            }
        })
        .collect();
    let tampered_file = write(&dir.path().join("tampered.jsonl"), &tampered.join("\n"));
    let (ok, stdout, stderr) = audit(&[
        "verify",
        "--from-file",
        &tampered_file,
        "--public-key",
        &key_file,
    ]);
    assert!(!ok, "{stdout}");
    let report: Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(report["first_bad"]["seq"].as_u64(), Some(seq), "{report}");
    assert_eq!(report["first_bad"]["reason"], "hash_mismatch", "{report}");
    assert!(stderr.contains(&format!("seq {seq}")), "{stderr}");

    // A checkpoint the policy requires, removed.
    let without: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with("{\"checkpoint\":{\"seq\":5,"))
        .collect();
    assert_eq!(
        without.len(),
        lines.len() - 1,
        "the checkpoint at 5 was there"
    );
    let without_file = write(&dir.path().join("without.jsonl"), &without.join("\n"));
    let (ok, stdout, _) = audit(&[
        "verify",
        "--from-file",
        &without_file,
        "--public-key",
        &key_file,
        "--checkpoint-every",
        "5",
    ]);
    assert!(!ok, "{stdout}");
    let report: Value = serde_json::from_str(&stdout).expect("a JSON report");
    assert_eq!(
        report["first_bad"]["reason"], "missing_checkpoint",
        "{report}"
    );
    assert_eq!(report["first_bad"]["seq"].as_u64(), Some(5), "{report}");

    // A range from seq 8 starts after the checkpoint before it (5), which anchors it.
    let eighth: Value = serde_json::from_str(
        lines
            .iter()
            .filter(|l| !l.starts_with("{\"checkpoint\""))
            .nth(7)
            .expect("an eighth entry"),
    )
    .expect("an entry");
    assert_eq!(eighth["seq"], 8);
    let at = eighth["at"].as_str().expect("at");
    let range = get_text(
        &replica,
        &format!("/api/v1/audit/export?from={at}"),
        Some(ADMIN_TOKEN),
    )
    .await;
    assert!(
        range.starts_with("{\"checkpoint\":{\"seq\":5,"),
        "the anchor first:\n{range}"
    );
    let second: Value =
        serde_json::from_str(range.lines().nth(1).expect("a second line")).expect("an entry");
    assert_eq!(second["seq"], 6, "{range}");
    let range_file = write(&dir.path().join("range.jsonl"), &range);
    let (ok, stdout, stderr) = audit(&[
        "verify",
        "--from-file",
        &range_file,
        "--public-key",
        &key_file,
    ]);
    assert!(ok, "{stdout}\n{stderr}");

    // The store verifies; a row edited in the database file is named.
    replica.terminate().await;
    let store_args = ["--database-url", db.as_str(), "--data-dir"];
    let data_dir = dir.path().join("data-of-the-check");
    let key_arg = dir.path().join("key-of-the-check.pem");
    let (ok, stdout, stderr) = audit(&[
        "verify",
        store_args[0],
        store_args[1],
        store_args[2],
        data_dir.to_str().expect("utf-8"),
        "--public-key",
        &key_file,
        "--audit-key",
        key_arg.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db).await.expect("open the file");
    sqlx::query("UPDATE changes SET resource_key = 'f99' WHERE id = 7")
        .execute(&pool)
        .await
        .expect("tamper");
    pool.close().await;
    let (ok, stdout, stderr) = audit(&[
        "verify",
        "--database-url",
        &db,
        "--data-dir",
        data_dir.to_str().expect("utf-8"),
        "--public-key",
        &key_file,
        "--audit-key",
        key_arg.to_str().expect("utf-8"),
    ]);
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains("seq 7") && stderr.contains("hash_mismatch"),
        "{stderr}"
    );
}

/// Three replicas on one PostgreSQL, each with the same signing key, writing at once: one
/// linear chain (the chain lock), with the policy's checkpoints, that verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_writing_at_once_make_one_chain() {
    let Some(db) = support::PgDatabase::create().await else {
        return;
    };
    let keys = tempfile::tempdir().expect("temp dir");
    let key_path = keys.path().join("audit-signing-key.pem");
    let key_file = key_path.to_str().expect("utf-8").to_string();
    let env = [
        ("HATA_AUDIT_KEY", key_file.as_str()),
        ("HATA_AUDIT_CHECKPOINT_EVERY", "7"),
        ("HATA_ADMIN_RATE_LIMIT", "0"),
    ];
    let mut replicas = Vec::new();
    for name in ["a", "b", "c"] {
        replicas.push(Replica::start_with_env(name, &db.url(), &env).await);
    }
    replicas[0]
        .admin_ok(
            Method::POST,
            "/projects",
            Some(json!({"key": "shop", "name": "Shop"})),
            StatusCode::CREATED,
        )
        .await;
    let writers = replicas.iter().enumerate().map(|(r, replica)| async move {
        for i in 0..15 {
            replica
                .admin_ok(
                    Method::POST,
                    "/projects/shop/flags",
                    Some(json!({"key": format!("r{r}-f{i}"), "type": "boolean"})),
                    StatusCode::CREATED,
                )
                .await;
        }
    });
    futures::future::join_all(writers).await;
    let report = replicas[2]
        .admin_ok(Method::GET, "/audit/verify", None, StatusCode::OK)
        .await;
    assert_eq!(report["ok"], true, "{report}");
    assert!(report["entries"].as_u64() >= Some(46), "{report}");
    assert_eq!(report["signatures_checked"], true, "{report}");
    assert_eq!(report["policy_every"], 7, "{report}");
    let checkpoints = report["checkpoints"].as_u64().expect("checkpoints");
    assert!(
        checkpoints >= report["entries"].as_u64().unwrap_or(0) / 7,
        "{report}"
    );
}
