//! `docs/audit_verify.py`, the independent verifier of docs/audit.md, run on exports this crate
//! writes (tricky numbers, astral keys, escapes): it accepts the untampered ones and rejects
//! tampered copies. Agreement on every hash is the test that the two canonical forms agree.
//!
//! It needs `cryptography`, pinned in tests/audit/requirements.txt and installed by
//! tests/audit/install.sh into `${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}/audit`.
//! Without it this test is skipped, except under `CI=true`, where it fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hata_audit::{checkpoint_line, Checkpoint, Head, Line};
use serde_json::json;
use support::*;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deps_dir() -> PathBuf {
    match std::env::var_os("HATA_CLIENT_DEPS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/hata-client-deps"),
    }
    .join("audit")
}

fn python() -> Command {
    let mut command =
        Command::new(std::env::var_os("HATA_PYTHON").unwrap_or_else(|| "python3".into()));
    command.env("PYTHONPATH", deps_dir());
    command
}

/// Whether python3 with `cryptography` is there; under `CI=true` its absence fails the test.
fn python_ready() -> bool {
    let ready = python()
        .args([
            "-c",
            "import cryptography.hazmat.primitives.asymmetric.ed25519",
        ])
        .output()
        .is_ok_and(|out| out.status.success());
    if !ready {
        let hint = "python3 with `cryptography` not found: run tests/audit/install.sh";
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{hint}");
        }
        eprintln!("skipped: {hint}");
    }
    ready
}

struct Run {
    dir: tempfile::TempDir,
    key: PathBuf,
}

impl Run {
    fn new() -> Run {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = dir.path().join("audit-public.pem");
        std::fs::write(&key, test_key().public_key().to_pem().expect("PEM")).expect("write key");
        Run { dir, key }
    }

    fn verify(&self, name: &str, lines: &[String]) -> Output {
        let export = self.dir.path().join(name);
        std::fs::write(&export, lines.join("\n") + "\n").expect("write export");
        python()
            .arg(repo_root().join("docs/audit_verify.py"))
            .arg(&export)
            .arg(&self.key)
            .output()
            .expect("python3 runs")
    }
}

#[track_caller]
fn assert_ok(out: &Output, entries: u64) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rejected: {stdout}{stderr}");
    assert!(
        stdout.starts_with(&format!("ok: {entries} entries")),
        "{stdout}"
    );
}

#[track_caller]
fn assert_fails(out: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted a tampered export");
    assert!(
        stderr.starts_with("FAIL line ") && stderr.contains(expected),
        "{stderr}"
    );
}

#[test]
fn python_verifier_agrees() {
    if !python_ready() {
        return;
    }
    let run = Run::new();
    let lines = chain(30, 10, &test_key(), true);
    assert_ok(&run.verify("export.jsonl", &lines), 30);
    // Plain flag documents too, and an anchored range.
    assert_ok(
        &run.verify("plain.jsonl", &chain(25, 10, &test_key(), false)),
        25,
    );
    assert_ok(&run.verify("range.jsonl", &range(&lines, 11, true)), 20);

    let mut edited = lines.clone();
    let i = entry_index(&edited, 17);
    edit_entry(&mut edited, i, "old", json!({"floats": [1e21, 0.1]}));
    assert_fails(
        &run.verify("edited.jsonl", &edited),
        "hash mismatch at seq 17",
    );

    let mut deleted = lines.clone();
    deleted.remove(entry_index(&deleted, 12));
    assert_fails(&run.verify("deleted.jsonl", &deleted), "gap or reorder");

    let mut forged = lines.clone();
    let i = checkpoint_index(&forged, 20);
    let Ok(Line::Checkpoint(real)) = hata_audit::parse_line(forged[i].as_bytes()) else {
        panic!("a checkpoint line")
    };
    let mut cp = Checkpoint::sign(real.head(), at(20), &other_key()).expect("ok");
    cp.key_id = real.key_id;
    forged[i] = checkpoint_line(&cp);
    assert_fails(
        &run.verify("forged.jsonl", &forged),
        "bad signature on the checkpoint at seq 20",
    );

    let mut cut = lines[..=checkpoint_index(&lines, 20)].to_vec();
    cut.push(lines[checkpoint_index(&lines, 30)].clone());
    assert_fails(&run.verify("cut.jsonl", &cut), "truncated");

    assert_fails(
        &run.verify("unanchored.jsonl", &range(&lines, 11, false)),
        "unanchored start at seq 11",
    );

    let mut repeated = lines.clone();
    let i = entry_index(&repeated, 5);
    repeated[i] = format!(
        "{},\"action\":\"delete\"}}",
        repeated[i].trim_end_matches('}')
    );
    assert_fails(&run.verify("repeated.jsonl", &repeated), "duplicate member");

    // Numbers Python reads differently from JSON's doubles must still hash alike: an entry
    // whose old value has them, sealed here and checked there.
    let tricky = json!([
        1e16,
        1e-5,
        123456789012345678901234567890u128 as f64,
        1e21,
        4.35,
        0.000001
    ]);
    let sealed = new_entry(1, tricky, json!(null))
        .seal(&Head::genesis())
        .expect("sealable");
    assert_ok(&run.verify("numbers.jsonl", &[sealed.json()]), 1);
}

#[test]
fn docs_show_the_script_as_it_is() {
    let doc = std::fs::read_to_string(repo_root().join("docs/audit.md")).expect("docs/audit.md");
    let script =
        std::fs::read_to_string(repo_root().join("docs/audit_verify.py")).expect("the script");
    let shown = doc
        .split_once("```python\n")
        .and_then(|(_, rest)| rest.split_once("```\n"))
        .map(|(code, _)| code)
        .expect("a python block in docs/audit.md");
    assert_eq!(
        shown, script,
        "docs/audit.md shows another script than docs/audit_verify.py"
    );
}
