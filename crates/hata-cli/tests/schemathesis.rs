//! schemathesis (`--checks all`) against the real `hata serve`: schema-valid requests must
//! succeed, schema-invalid ones be refused with a 4xx, and every answer match the OpenAPI
//! document. schemathesis is pinned in `tests/schemathesis/` and installed by
//! `tests/schemathesis/install.sh` (run by `.ci/run`) into
//! `${HATA_CLIENT_DEPS:-$HOME/.cache/hata-client-deps}/schemathesis`. Without it this test is
//! skipped, except under `CI=true`, where it fails. `tests/schemathesis/schemathesis.toml`
//! lists the rules JSON Schema cannot state.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use support::free_port;

const ADMIN_TOKEN: &str = "schemathesis-admin-token-0123456789";
/// Bounded so the run stays near a minute on two cores; the seed makes it repeatable.
const MAX_EXAMPLES: &str = "20";
const SEED: &str = "1";
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure() {
    let Some(deps) = support::pinned_python_deps("schemathesis", "schemathesis") else {
        return;
    };
    support::secrets::remember(ADMIN_TOKEN);
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("server log");
    let data = dir.path().join("data");
    let mut server = tokio::process::Command::from(support::hata(
        &[
            "serve",
            "--data-dir",
            data.to_str().expect("utf-8 temp path"),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ],
        &[
            ("HATA_ADMIN_TOKEN", ADMIN_TOKEN),
            ("RUST_LOG", "warn"),
            // A fuzzer is load, not a client: budgets would answer it 429s.
            ("HATA_ADMIN_RATE_LIMIT", "0"),
            ("HATA_LOGIN_RATE_LIMIT", "0"),
        ],
    ))
    .stdin(Stdio::null())
    .stdout(log.try_clone().expect("log"))
    .stderr(log)
    .kill_on_drop(true)
    .spawn()
    .expect("start hata serve");

    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = http.get(format!("{base}/health/ready")).send().await;
        if matches!(ready, Ok(r) if r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hata serve not ready: {}",
            std::fs::read_to_string(&log_path).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Something to find: a project (with its default environments), a flag and a segment.
    for (path, body) in [
        ("/api/v1/projects", json!({"key": "shop", "name": "Shop"})),
        (
            "/api/v1/projects/shop/flags",
            json!({"key": "new-checkout", "type": "boolean"}),
        ),
        (
            "/api/v1/projects/shop/segments",
            json!({"key": "beta", "included": ["u1"]}),
        ),
    ] {
        let r = http
            .post(format!("{base}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("seed request");
        assert_eq!(
            r.status(),
            201,
            "POST {path}: {}",
            r.text().await.unwrap_or_default()
        );
    }

    let config = repo_root().join("tests/schemathesis/schemathesis.toml");
    let run =
        tokio::process::Command::new(std::env::var("HATA_PYTHON").unwrap_or("python3".into()))
            .arg(deps.join("bin/st"))
            .arg("--config-file")
            .arg(&config)
            .args(["--no-color", "run", &format!("{base}/openapi.json")])
            .args([
                "--checks",
                "all",
                "--max-examples",
                MAX_EXAMPLES,
                "--seed",
                SEED,
            ])
            .args(["--header", &format!("Authorization: Bearer {ADMIN_TOKEN}")])
            // Rotating or deleting the run's own admin token would leave the rest of the run
            // answered 401; both are covered by tests/tokens.rs and token_rotation.rs.
            .args(["--exclude-operation-id", "postTokensByIdRotate"])
            .args(["--exclude-operation-id", "deleteTokensById"])
            .args(["--generation-database", "none"])
            .env("PYTHONPATH", &deps)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
    let out = tokio::time::timeout(RUN_TIMEOUT, run)
        .await
        .expect("schemathesis ran too long")
        .expect("run schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis: {}\n{stdout}\n{stderr}\nserver log:\n{}",
        out.status,
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    drop(server.start_kill());
    support::secrets::show_log(
        "log of hata serve",
        &std::fs::read_to_string(&log_path).unwrap_or_default(),
    );
}
