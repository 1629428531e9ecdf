//! `hata backup`, `hata backup list | verify` and `hata restore` as an operator runs them:
//! the real binary backs up to a real S3 API server (`moto` in server mode, pinned in
//! tests/backup/, started here on a free port) and to a directory, restores SQLite →
//! PostgreSQL → SQLite, and every restore's `hata export` equals the source's at backup time,
//! byte for byte; `--until` restores the earlier state; the audit chain verifies after a
//! restore. Bad input fails with exit 1 naming the problem, and nothing is written.
//!
//! Without moto (tests/backup/install.sh) or PostgreSQL their parts are skipped with a
//! message, except under `CI=true`, where they fail.

mod support;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use hata_core::model::Project;
use hata_store::{Actor, NewToken, Store, StoreConfig, TokenKind, WriteMeta, WriteOp};
use serde_json::json;
use support::PgDatabase;

/// The credentials the test gives moto (which accepts any): never to appear in a log.
const S3_KEY_ID: &str = "hata-test-key-id";
const S3_SECRET: &str = "hata-test-s3-secret-5f0c2b9e";

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    support::hata(args, env)
        .stdin(Stdio::null())
        .output()
        .expect("run hata")
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed with {}:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn failed(out: Output, what: &str) -> String {
    assert_eq!(out.status.code(), Some(1), "{what} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The id `hata backup` printed (`backup <id> written to …`).
fn backup_id(stdout: &str) -> String {
    stdout
        .strip_prefix("backup ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no backup id in {stdout:?}"))
        .to_string()
}

/// A real S3 API server: moto on a free port, its bucket created.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// `None` without moto outside CI.
    async fn start(bucket: &str) -> Option<Moto> {
        let deps = support::client_deps().join("backup");
        if !deps.join("moto").is_dir() {
            assert!(
                !ci(),
                "moto is required under CI: run tests/backup/install.sh"
            );
            eprintln!(
                "skipping S3: moto not installed in {} (tests/backup/install.sh)",
                deps.display()
            );
            return None;
        }
        let port = support::free_port();
        let child = std::process::Command::new(
            std::env::var("HATA_PYTHON").unwrap_or_else(|_| "python3".into()),
        )
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .env("PYTHONPATH", &deps)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + support::DEADLINE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let created = reqwest::Client::new()
            .put(format!("{}/{bucket}", moto.endpoint))
            .send()
            .await
            .expect("create bucket");
        assert!(created.status().is_success(), "{}", created.status());
        support::secrets::remember(S3_SECRET);
        Some(moto)
    }

    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HATA_BACKUP_S3_ENDPOINT", self.endpoint.clone()),
            ("HATA_BACKUP_S3_ALLOW_HTTP", "true".into()),
            ("HATA_BACKUP_S3_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", S3_KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET.into()),
        ]
    }
}

fn refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("hata.db").display())
}

/// Writes `ops` into the store at `url` through the one write path, as the server would.
async fn write(url: &str, ops: Vec<WriteOp>) {
    let store = Store::open(&StoreConfig::new(url.to_string()))
        .await
        .expect("open");
    let meta = WriteMeta::new(Actor::token("admin", "admin"), "req-1");
    for op in ops {
        store.write(&meta, op).await.expect("write");
    }
    store.close().await;
}

fn project(key: &str) -> WriteOp {
    WriteOp::CreateProject {
        project: Project {
            key: key.into(),
            name: key.to_uppercase(),
            description: String::new(),
        },
        environments: None,
    }
}

fn flag(project: &str, key: &str) -> WriteOp {
    WriteOp::CreateFlag {
        project: project.into(),
        flag: serde_json::from_value(json!({"key": key, "type": "boolean"})).expect("flag"),
    }
}

fn token(id: &str) -> WriteOp {
    WriteOp::CreateToken {
        token: NewToken {
            role: None,
            id: id.into(),
            name: id.into(),
            kind: TokenKind::Admin,
            project: None,
            environment: None,
            expires_at: None,
            secret_hash: format!("sha256:{id}"),
        },
    }
}

fn export(store_args: &[&str]) -> String {
    let mut args = vec!["export"];
    args.extend_from_slice(store_args);
    ok(run(&args, &[]), "export")
}

#[tokio::test]
async fn backups_to_s3_restore_byte_for_byte_across_backends() {
    let Some(moto) = Moto::start("hata-backups").await else {
        return;
    };
    let env = moto.env();
    let env = refs(&env);
    let tmp = tempfile::tempdir().expect("dir");
    let source = tmp.path().join("source");
    std::fs::create_dir_all(&source).expect("dir");
    let src = ["--data-dir", source.to_str().expect("utf-8")];
    write(
        &sqlite_url(&source),
        vec![project("shop"), flag("shop", "a"), token("tok_1")],
    )
    .await;
    let dest = "s3://hata-backups/prod/hata";

    let mut args = vec!["backup", "--to", dest];
    args.extend_from_slice(&src);
    let full = backup_id(&ok(run(&args, &env), "full backup"));
    let at_full = export(&src);
    let between = time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(20)).await;

    write(
        &sqlite_url(&source),
        vec![project("blog"), flag("shop", "b"), token("tok_2")],
    )
    .await;
    let mut args = vec!["backup", "--incremental"];
    args.extend_from_slice(&src);
    // The destination from the environment this time, as a configured one.
    let mut configured = env.clone();
    configured.push(("HATA_BACKUP_TO", dest));
    let inc = backup_id(&ok(run(&args, &configured), "incremental backup"));
    assert!(inc.ends_with("-incremental"), "{inc}");
    let at_inc = export(&src);

    let listed = ok(run(&["backup", "list"], &configured), "list");
    assert!(listed.contains(&full) && listed.contains(&inc), "{listed}");
    let verified = ok(run(&["backup", "verify"], &configured), "verify newest");
    assert!(
        verified.contains(&format!("backup {inc}")) && verified.contains("OK"),
        "{verified}"
    );

    // Into a fresh SQLite, by id at the configured destination.
    let restored = tmp.path().join("restored");
    let r = ["--data-dir", restored.to_str().expect("utf-8")];
    let mut args = vec!["restore", inc.as_str()];
    args.extend_from_slice(&r);
    ok(run(&args, &configured), "restore");
    assert!(
        export(&r) == at_inc,
        "SQLite restore differs from the export at backup time"
    );
    // The audit chain verifies, with the source's checkpoint key.
    let mut args = vec!["audit", "public-key"];
    args.extend_from_slice(&src);
    let public = ok(run(&args, &[]), "public key");
    let key_file = tmp.path().join("source-key.pem");
    std::fs::write(&key_file, &public).expect("key file");
    let mut args = vec![
        "audit",
        "verify",
        "--public-key",
        key_file.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(&r);
    ok(run(&args, &[]), "audit verify after restore");

    // A point in time between the two: the full backup's state, by the s3:// path.
    let pitr = tmp.path().join("pitr");
    let p = ["--data-dir", pitr.to_str().expect("utf-8")];
    let path = format!("{dest}/{inc}");
    let until = hata_store::rfc3339(between);
    let mut args = vec!["restore", path.as_str(), "--until", until.as_str()];
    args.extend_from_slice(&p);
    let said = ok(run(&args, &env), "restore --until");
    assert!(said.contains(&full), "{said}");
    assert!(export(&p) == at_full, "point-in-time restore differs");

    let Some(pg) = PgDatabase::create().await else {
        return;
    };
    // SQLite → PostgreSQL.
    let url = pg.url();
    let pg_args = ["--database-url", url.as_str()];
    let mut args = vec!["restore", inc.as_str(), "--from", dest];
    args.extend_from_slice(&pg_args);
    ok(run(&args, &env), "restore into PostgreSQL");
    assert!(export(&pg_args) == at_inc, "PostgreSQL restore differs");

    // PostgreSQL → SQLite: a backup of the PostgreSQL store, to a directory.
    let dir = tmp.path().join("backups");
    let mut args = vec!["backup", "--to", dir.to_str().expect("utf-8")];
    args.extend_from_slice(&pg_args);
    let from_pg = backup_id(&ok(run(&args, &[]), "backup of PostgreSQL"));
    let back = tmp.path().join("back");
    let b = ["--data-dir", back.to_str().expect("utf-8")];
    let folder = dir.join(&from_pg);
    let mut args = vec!["restore", folder.to_str().expect("utf-8")];
    args.extend_from_slice(&b);
    ok(run(&args, &[]), "restore from a folder");
    assert!(export(&b) == at_inc, "PostgreSQL → SQLite restore differs");
}

/// `hata backup prune` on S3: of two chains, keeping one full backup and one increment
/// removes the first chain whole and the second chain's first increment is kept, since the
/// kept one is restored onto it; what is left verifies and restores.
#[tokio::test]
async fn pruning_on_s3_keeps_the_generations_and_whole_chains() {
    let Some(moto) = Moto::start("hata-prune").await else {
        return;
    };
    let env = moto.env();
    let mut env = refs(&env);
    let dest = "s3://hata-prune/hata";
    env.push(("HATA_BACKUP_TO", dest));
    let tmp = tempfile::tempdir().expect("dir");
    let source = tmp.path().join("source");
    std::fs::create_dir_all(&source).expect("dir");
    let src = ["--data-dir", source.to_str().expect("utf-8")];
    write(&sqlite_url(&source), vec![project("shop")]).await;
    let mut ids = Vec::new();
    for (n, incremental) in [false, true, true, false, true, true]
        .into_iter()
        .enumerate()
    {
        write(&sqlite_url(&source), vec![flag("shop", &format!("f{n}"))]).await;
        let mut args = vec!["backup"];
        if incremental {
            args.push("--incremental");
        }
        args.extend_from_slice(&src);
        ids.push(backup_id(&ok(run(&args, &env), "backup")));
    }
    let at_last = export(&src);

    let mut args = vec!["backup", "prune"];
    let mut keep = env.clone();
    keep.extend([
        ("HATA_BACKUP_KEEP_FULL", "1"),
        ("HATA_BACKUP_KEEP_INCREMENTAL", "1"),
    ]);
    args.extend_from_slice(&src);
    let said = ok(run(&args, &keep), "prune");
    for id in &ids[..3] {
        assert!(said.contains(&format!("removed {id}")), "{said}");
    }
    assert!(said.contains("3 backups removed, 3 kept"), "{said}");
    let listed = ok(run(&["backup", "list", "--json"], &env), "list");
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("json");
    let left: Vec<&str> = listed
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(
        left,
        ids[3..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    ok(run(&["backup", "verify"], &env), "verify the newest");
    let restored = tmp.path().join("restored");
    let r = ["--data-dir", restored.to_str().expect("utf-8")];
    let mut args = vec!["restore", ids[5].as_str()];
    args.extend_from_slice(&r);
    ok(run(&args, &env), "restore");
    assert!(export(&r) == at_last, "the restore differs");

    // A count of 0 is refused, naming the setting.
    let mut zero = env.clone();
    zero.push(("HATA_BACKUP_KEEP_FULL", "0"));
    let err = failed(run(&["backup", "prune"], &zero), "keep 0");
    assert!(err.contains("backup_keep_full"), "{err}");
}

#[tokio::test]
async fn bad_input_fails_naming_the_problem_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("dir");
    let source = tmp.path().join("source");
    std::fs::create_dir_all(&source).expect("dir");
    let src = ["--data-dir", source.to_str().expect("utf-8")];
    write(
        &sqlite_url(&source),
        vec![project("shop"), flag("shop", "a")],
    )
    .await;

    // An S3 endpoint nobody listens on: the backup fails, naming the destination.
    let port = support::free_port().to_string();
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = [
        ("HATA_BACKUP_S3_ENDPOINT", endpoint.as_str()),
        ("HATA_BACKUP_S3_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", S3_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET),
    ];
    let mut args = vec!["backup", "--to", "s3://nowhere/x"];
    args.extend_from_slice(&src);
    let err = failed(run(&args, &env), "backup to an unreachable S3");
    assert!(err.contains("s3://nowhere/x"), "{err}");
    // A plain-http endpoint must be allowed explicitly.
    let err = failed(
        run(&args, &[("HATA_BACKUP_S3_ENDPOINT", endpoint.as_str())]),
        "http without allow",
    );
    assert!(err.contains("backup_s3_allow_http"), "{err}");
    // No destination at all.
    let mut args = vec!["backup"];
    args.extend_from_slice(&src);
    let err = failed(run(&args, &[]), "backup without a destination");
    assert!(err.contains("--backup-to"), "{err}");

    let dir = tmp.path().join("backups");
    let d = dir.to_str().expect("utf-8");
    let mut args = vec!["backup", "--to", d];
    args.extend_from_slice(&src);
    let id = backup_id(&ok(run(&args, &[]), "backup"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).expect("dir").permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "backups hold secrets' hashes");
    }

    // One byte flipped: verify and restore fail naming the backup and the checksum.
    let part = dir.join(&id).join("document.json.zst");
    let good = std::fs::read(&part).expect("part");
    let mut bad = good.clone();
    bad[good.len() / 2] ^= 1;
    std::fs::write(&part, &bad).expect("write");
    let err = failed(run(&["backup", "verify", &id, "--to", d], &[]), "verify");
    assert!(err.contains(&id) && err.contains("SHA-256"), "{err}");
    let target = tmp.path().join("target");
    let t = ["--data-dir", target.to_str().expect("utf-8")];
    let mut args = vec!["restore", id.as_str(), "--from", d];
    args.extend_from_slice(&t);
    let err = failed(run(&args, &[]), "restore of a damaged backup");
    assert!(err.contains("SHA-256"), "{err}");
    assert!(
        export(&t).contains("\"projects\": []"),
        "nothing was written"
    );
    std::fs::write(&part, &good).expect("put back");

    // Unfinished (no manifest): never restored.
    let manifest = dir.join(&id).join("manifest.json");
    let kept = std::fs::read(&manifest).expect("manifest");
    std::fs::remove_file(&manifest).expect("rm");
    let err = failed(run(&args, &[]), "restore without a manifest");
    assert!(err.contains("no manifest.json"), "{err}");
    let listed = ok(run(&["backup", "list", "--to", d], &[]), "list");
    assert!(listed.contains("incomplete"), "{listed}");
    std::fs::write(&manifest, &kept).expect("put back");

    // A store that is not empty: refused, unless --force.
    write(&sqlite_url(&target), vec![project("other")]).await;
    let before = export(&t);
    let err = failed(run(&args, &[]), "restore into a non-empty store");
    assert!(err.contains("not empty"), "{err}");
    assert!(export(&t) == before, "nothing was written");
    let mut forced = args.clone();
    forced.push("--force");
    ok(run(&forced, &[]), "restore --force");
    assert!(export(&t) == export(&src), "--force replaced the store");

    // A bad --until.
    let mut until = args.clone();
    until.extend_from_slice(&["--until", "yesterday", "--force"]);
    let err = failed(run(&until, &[]), "bad --until");
    assert!(err.contains("--until"), "{err}");
}

/// Runs `job` now through the API of `replica` and waits for its run to end; returns the run.
async fn run_job(replica: &support::Replica, job: &str) -> serde_json::Value {
    let asked = replica
        .admin_ok(
            reqwest::Method::POST,
            &format!("/jobs/{job}/run"),
            None,
            reqwest::StatusCode::ACCEPTED,
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = replica
            .admin_ok(
                reqwest::Method::GET,
                &format!("/jobs?job={job}&limit=5"),
                None,
                reqwest::StatusCode::OK,
            )
            .await;
        let run = listed["runs"]
            .as_array()
            .and_then(|runs| runs.iter().find(|r| r["id"] == asked["id"]))
            .cloned()
            .unwrap_or_default();
        if run["outcome"] == "succeeded" || run["outcome"] == "failed" {
            return run;
        }
        assert!(Instant::now() < deadline, "{job} did not end: {listed:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hata_serve_runs_the_backup_jobs_at_the_configured_destination() {
    let dir = tempfile::tempdir().expect("temp dir");
    let backups = dir.path().join("backups");
    let backups_text = backups.to_str().expect("utf-8 path").to_string();
    let replica = support::Replica::start_with_env(
        "jobs",
        &sqlite_url(dir.path()),
        &[("HATA_BACKUP_TO", backups_text.as_str())],
    )
    .await;
    replica
        .admin_ok(
            reqwest::Method::POST,
            "/projects",
            Some(json!({"key": "shop"})),
            reqwest::StatusCode::CREATED,
        )
        .await;
    // The hourly incremental starts the chain when there is no full backup yet.
    let first = run_job(&replica, "backup-incremental").await;
    assert_eq!(first["outcome"], "succeeded", "{first:#}");
    assert!(
        first["detail"].as_str().unwrap_or("").contains("Full"),
        "{first:#}"
    );
    let full = run_job(&replica, "backup-full").await;
    assert_eq!(full["outcome"], "succeeded", "{full:#}");
    replica
        .admin_ok(
            reqwest::Method::POST,
            "/projects/shop/flags",
            Some(json!({"key": "banner", "type": "boolean"})),
            reqwest::StatusCode::CREATED,
        )
        .await;
    let incremental = run_job(&replica, "backup-incremental").await;
    assert_eq!(incremental["outcome"], "succeeded", "{incremental:#}");
    assert!(
        incremental["detail"]
            .as_str()
            .unwrap_or("")
            .contains("Incremental"),
        "{incremental:#}"
    );
    let verified = run_job(&replica, "backup-verify").await;
    assert_eq!(verified["outcome"], "succeeded", "{verified:#}");
    assert!(
        verified["detail"]
            .as_str()
            .unwrap_or("")
            .contains("2 backups in its chain"),
        "{verified:#}"
    );
    // Three complete backups at the destination, and the API lists them.
    let listed = replica
        .admin_ok(
            reqwest::Method::GET,
            "/backups",
            None,
            reqwest::StatusCode::OK,
        )
        .await;
    let manifests = std::fs::read_dir(&backups)
        .expect("the destination")
        .filter(|e| {
            e.as_ref()
                .map(|e| e.path().join("manifest.json").exists())
                .unwrap_or(false)
        })
        .count();
    assert_eq!(manifests, 3, "{listed:#}");
    let metrics = replica
        .client
        .get(format!("{}/metrics", replica.base))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("scrape body");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("hata_backup_last_success_timestamp_seconds ")),
        "{metrics}"
    );
}
