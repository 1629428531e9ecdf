//! `hata export` and `hata import` as a user runs them: the real binary moves a SQLite data
//! dir into a fresh PostgreSQL database and back, and every export is the same bytes. Without
//! PostgreSQL the PostgreSQL leg is skipped, except under `CI=true`, where it fails.

mod support;

use std::path::Path;
use std::process::{Output, Stdio};

use hata_core::model::Project;
use hata_store::{
    Actor, EvaluationCount, Expected, FlagEvaluated, NewToken, Store, StoreConfig, TokenKind,
    WriteMeta, WriteOp,
};
use serde_json::json;
use support::PgDatabase;

/// `hata <args>` with no `HATA_*` variables but `env`, run to completion; `stdin` is a file.
fn hata(args: &[&str], env: &[(&str, &str)], stdin: Option<&Path>) -> Output {
    let mut cmd = support::hata(args, env);
    cmd.stdin(match stdin {
        Some(path) => Stdio::from(std::fs::File::open(path).expect("stdin file")),
        None => Stdio::null(),
    });
    cmd.output().expect("run hata")
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
    assert!(!out.status.success(), "{what} should have failed");
    assert_eq!(out.status.code(), Some(1), "{what}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A SQLite store in `data_dir` with a little of everything, written through the store's one
/// write path as the server would.
async fn seed(data_dir: &Path) {
    std::fs::create_dir_all(data_dir).expect("data dir");
    let url = format!("sqlite://{}?mode=rwc", data_dir.join("hata.db").display());
    let store = Store::open(&StoreConfig::new(url)).await.expect("open");
    let meta = WriteMeta::new(Actor::token("admin", "admin"), "req-1");
    let ops = [
        WriteOp::CreateProject {
            project: Project {
                key: "shop".into(),
                name: "Shop".into(),
                description: String::new(),
            },
            environments: None,
        },
        WriteOp::CreateFlag {
            project: "shop".into(),
            flag: serde_json::from_value(json!({"key": "dark-mode", "type": "boolean"}))
                .expect("flag"),
        },
        WriteOp::PatchFlagConfig {
            project: "shop".into(),
            flag: "dark-mode".into(),
            environment: "production".into(),
            expected_version: Expected::version(1),
            // A merge patch: `variant: null` removes the default's variant.
            patch: json!({"enabled": true, "default": {"variant": null, "rollout": {"weights": [
                {"variant": "on", "weight": 50000}, {"variant": "off", "weight": 50000}]}}}),
        },
        WriteOp::CreateToken {
            token: NewToken {
                role: None,
                id: "srv".into(),
                name: "backend".into(),
                kind: TokenKind::Server,
                project: Some("shop".into()),
                environment: Some("production".into()),
                expires_at: Some("2030-01-01T00:00:00Z".into()),
                secret_hash: "sha256:abc".into(),
            },
        },
    ];
    for op in ops {
        store.write(&meta, op).await.expect("write");
    }
    store
        .record_evaluations(
            &[EvaluationCount {
                project: "shop".into(),
                environment: "production".into(),
                flag: "dark-mode".into(),
                hour: "2026-11-23T14:00:00Z".into(),
                variant: "on".into(),
                reason: "SPLIT".into(),
                count: 42,
            }],
            &[FlagEvaluated {
                project: "shop".into(),
                environment: "production".into(),
                flag: "dark-mode".into(),
                at: "2026-11-23T14:59:00.001Z".into(),
            }],
        )
        .await
        .expect("evaluations");
    store
        .meta_init("stream_ticket_key", "0123abcd")
        .await
        .expect("meta");
    store.close().await;
}

#[tokio::test]
async fn sqlite_to_postgres_to_sqlite_keeps_every_byte() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let source = tmp.path().join("source");
    seed(&source).await;
    let source_dir = source.to_str().expect("utf-8 path");

    // Export to stdout (the default).
    let first = ok(
        hata(&["export", "--data-dir", source_dir], &[], None),
        "export",
    );
    assert!(
        first.starts_with("{\n  \"format\": \"hata-export\""),
        "{first}"
    );
    assert!(first.ends_with("}\n"));
    let file = tmp.path().join("hata.json");
    std::fs::write(&file, &first).expect("write export");
    let file_arg = file.to_str().expect("utf-8 path");

    if let Some(pg) = PgDatabase::create().await {
        // Into PostgreSQL, chosen by the environment variable as in production.
        let url = pg.url();
        let env = [("HATA_DATABASE_URL", url.as_str())];
        let said = ok(
            hata(&["import", file_arg], &env, None),
            "import into PostgreSQL",
        );
        assert!(
            said.contains("1 projects, 2 environments, 1 flags"),
            "{said}"
        );
        let copy = tmp.path().join("from-postgres.json");
        let copy_arg = copy.to_str().expect("utf-8 path");
        ok(
            hata(&["export", "--output", copy_arg], &env, None),
            "export from PostgreSQL",
        );
        let second = std::fs::read_to_string(&copy).expect("read export");
        assert!(first == second, "PostgreSQL export differs:\n{second}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&copy)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "the export holds secrets");
        }

        // Importing again: the store is no longer empty; nothing changes.
        let err = failed(hata(&["import", file_arg], &env, None), "second import");
        assert!(err.contains("not empty"), "{err}");
        let again = ok(hata(&["export"], &env, None), "export after refusal");
        assert!(again == first);

        // And back into a new SQLite data dir, from standard input.
        let back = tmp.path().join("back");
        let back_dir = back.to_str().expect("utf-8 path");
        ok(
            hata(&["import", "-", "--data-dir", back_dir], &[], Some(&copy)),
            "import into SQLite",
        );
        let third = ok(
            hata(&["export", "--data-dir", back_dir], &[], None),
            "export",
        );
        assert!(first == third, "SQLite export differs:\n{third}");
    } else {
        let back = tmp.path().join("back");
        let back_dir = back.to_str().expect("utf-8 path");
        ok(
            hata(&["import", "-", "--data-dir", back_dir], &[], Some(&file)),
            "import into SQLite",
        );
        let third = ok(
            hata(&["export", "--data-dir", back_dir], &[], None),
            "export",
        );
        assert!(first == third, "SQLite export differs:\n{third}");
    }
}

#[tokio::test]
async fn bad_input_fails_with_a_message_naming_the_problem() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = |name: &str| tmp.path().join(name).to_str().expect("utf-8").to_string();

    // Exporting a data dir that holds no database is a mistake, not an empty export.
    let missing = dir("missing");
    let err = failed(
        hata(&["export", "--data-dir", &missing], &[], None),
        "export of a missing store",
    );
    assert!(err.contains("no SQLite database"), "{err}");
    assert!(!Path::new(&missing).exists(), "export created {missing}");

    // A hand-edited document: every problem named by its path, nothing written.
    seed(&tmp.path().join("source")).await;
    let good = ok(
        hata(&["export", "--data-dir", &dir("source")], &[], None),
        "export",
    );
    let mut doc: serde_json::Value = serde_json::from_str(&good).expect("json");
    doc["projects"][0]["flags"][0]["environments"]["production"]["off_variant"] = json!("purple");
    doc["tokens"][0]["environment"] = json!("nowhere");
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
    let target = dir("target");
    let err = failed(
        hata(
            &[
                "import",
                bad.to_str().expect("utf-8"),
                "--data-dir",
                &target,
            ],
            &[],
            None,
        ),
        "import of a bad document",
    );
    assert!(
        err.contains("projects[shop].flags[dark-mode].environments.production.off_variant"),
        "{err}"
    );
    assert!(err.contains("tokens[srv].environment"), "{err}");
    let empty = ok(
        hata(&["export", "--data-dir", &target], &[], None),
        "export",
    );
    assert!(empty.contains("\"projects\": []"), "{empty}");

    let not_json = tmp.path().join("not.json");
    std::fs::write(&not_json, "hello").expect("write");
    let err = failed(
        hata(
            &[
                "import",
                not_json.to_str().expect("utf-8"),
                "--data-dir",
                &target,
            ],
            &[],
            None,
        ),
        "import of a non-JSON file",
    );
    assert!(err.contains("not a JSON document"), "{err}");

    // --help documents both.
    let help = ok(hata(&["export", "--help"], &[], None), "export --help");
    assert!(
        help.contains("--output") && help.contains("HATA_DATABASE_URL"),
        "{help}"
    );
    let help = ok(hata(&["import", "--help"], &[], None), "import --help");
    assert!(help.contains("must be empty"), "{help}");
}
