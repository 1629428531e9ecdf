//! Traces and JSON logs of the real `hata serve`, end to end: it exports its spans over
//! OTLP/HTTP to a receiver this test starts (`tests/otel/receiver.py`, which decodes them with
//! the OpenTelemetry project's `opentelemetry-proto` and writes them as JSON lines). Checked: a request's server span (its name, its parent and trace from
//! `traceparent`, or a new trace without one, its HTTP attributes), the store's span under a
//! write, the export of what is still queued at shutdown, and the JSON access log lines that
//! carry the same trace ids. On SQLite and on PostgreSQL.
//!
//! The receiver's packages are pinned in `tests/otel/` and installed by `tests/otel/install.sh`
//! (`.ci/run` runs it); without them this test is skipped, except under `CI=true`, where it
//! fails.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use support::{Replica, ADMIN_TOKEN};
use tokio::io::AsyncBufReadExt as _;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The receiver, killed when dropped; its spans in `spans`.
struct Receiver {
    port: u16,
    spans: PathBuf,
    _child: tokio::process::Child,
}

impl Receiver {
    async fn start(deps: &Path, dir: &Path) -> Receiver {
        let spans = dir.join("spans.jsonl");
        let mut child = tokio::process::Command::new(
            std::env::var("HATA_PYTHON").unwrap_or_else(|_| "python3".into()),
        )
        .arg(repo_root().join("tests/otel/receiver.py"))
        .arg(&spans)
        .env("PYTHONPATH", deps)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start tests/otel/receiver.py");
        let stdout = child.stdout.take().expect("receiver stdout");
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the receiver starts")
            .expect("receiver output")
            .expect("a line from the receiver");
        let port = first
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("receiver said {first:?}"));
        Receiver {
            port,
            spans,
            _child: child,
        }
    }

    fn spans(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.spans).unwrap_or_default();
        let spans: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        for span in &spans {
            assert!(span.get("error").is_none(), "the receiver refused: {span}");
        }
        spans
    }
}

const TRACE_WRITE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_WRITE: &str = "00f067aa0ba902b7";
const TRACE_OFREP: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_OFREP: &str = "b7ad6b7169203331";
const USER_AGENT: &str = "hata-traces-test/1.0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_store_calls_are_exported_as_spans_and_logged_with_their_trace_ids() {
    let Some(deps) = support::pinned_python_deps("otel", "opentelemetry-proto") else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());
    check(&deps, "sqlite", &sqlite).await;
    let Some(pg) = support::PgDatabase::create().await else {
        return;
    };
    check(&deps, "postgresql", &pg.url()).await;
}

async fn check(deps: &Path, db_system: &str, database_url: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let receiver = Receiver::start(deps, dir.path()).await;
    let endpoint = format!("http://127.0.0.1:{}", receiver.port);
    let replica = Replica::start_with_env(
        db_system,
        database_url,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "hata-under-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
            ("HATA_LOG_FORMAT", "json"),
            ("RUST_LOG", "info,sqlx=warn"),
        ],
    )
    .await;
    let client = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .build()
        .expect("client");
    // A write, child of a caller's span.
    let created = client
        .post(format!("{}/api/v1/projects", replica.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("traceparent", format!("00-{TRACE_WRITE}-{PARENT_WRITE}-01"))
        .header("x-request-id", "req-trace-write")
        .json(&json!({"key": "traced", "name": "Traced"}))
        .send()
        .await
        .expect("create a project");
    assert_eq!(created.status(), StatusCode::CREATED);
    // A read that starts a trace.
    let listed = client
        .get(format!("{}/api/v1/projects", replica.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("x-request-id", "req-trace-list")
        .send()
        .await
        .expect("list projects");
    assert_eq!(listed.status(), StatusCode::OK);
    // The single-flag fast path, without credentials (an evaluation error: always logged).
    let refused = client
        .post(format!("{}/ofrep/v1/evaluate/flags/banner", replica.base))
        .header("traceparent", format!("00-{TRACE_OFREP}-{PARENT_OFREP}-01"))
        .header("x-request-id", "req-trace-ofrep")
        .json(&json!({"context": {"targetingKey": "u-1"}}))
        .send()
        .await
        .expect("evaluate");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    // Spans are exported in batches every 200 ms.
    let deadline = Instant::now() + Duration::from_secs(20);
    let expected = [
        "POST /api/v1/projects",
        "GET /api/v1/projects",
        "POST /ofrep/v1/evaluate/flags/{key}",
    ];
    loop {
        let spans = receiver.spans();
        if expected
            .iter()
            .all(|name| spans.iter().any(|s| s["name"] == *name))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every span arrived: {spans:#?}\n{}",
            replica.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = replica.log();
    // A request after the last export: its span is sent at shutdown.
    let last = client
        .get(format!("{}/api/v1/projects/traced", replica.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("x-request-id", "req-trace-last")
        .send()
        .await
        .expect("get the project");
    assert_eq!(last.status(), StatusCode::OK);
    replica.terminate().await;

    let spans = receiver.spans();
    let named =
        |name: &str| -> Vec<&Value> { spans.iter().filter(|s| s["name"] == name).collect() };
    for span in &spans {
        assert_eq!(span["service"], "hata-under-test", "{span}");
    }

    // The write: the caller's trace, the caller's span its parent; and the store's span below.
    let write = named("POST /api/v1/projects");
    assert_eq!(write.len(), 1, "{spans:#?}");
    let write = write[0];
    assert_eq!(write["trace_id"], TRACE_WRITE);
    assert_eq!(write["parent_span_id"], PARENT_WRITE);
    assert_eq!(write["kind"], 2, "SPAN_KIND_SERVER");
    let attrs = &write["attributes"];
    assert_eq!(attrs["http.request.method"], "POST");
    assert_eq!(attrs["http.route"], "/api/v1/projects");
    assert_eq!(attrs["url.path"], "/api/v1/projects");
    assert_eq!(attrs["http.response.status_code"], 201);
    assert_eq!(attrs["client.address"], "127.0.0.1");
    assert_eq!(attrs["user_agent.original"], USER_AGENT);
    // (The start's own writes, the admin token's bootstrap, are store spans of no request.)
    let store_write: Vec<_> = named("store.write")
        .into_iter()
        .filter(|s| s["trace_id"] == TRACE_WRITE)
        .collect();
    assert_eq!(store_write.len(), 1, "{spans:#?}");
    let store_write = store_write[0];
    assert_eq!(store_write["trace_id"], TRACE_WRITE);
    assert_eq!(store_write["parent_span_id"], write["span_id"]);
    assert_eq!(store_write["kind"], 3, "SPAN_KIND_CLIENT");
    assert_eq!(store_write["attributes"]["db.system"], db_system);
    assert_eq!(store_write["attributes"]["db.operation"], "write");

    // The read without `traceparent`: a trace of its own, the request span its root.
    let list = named("GET /api/v1/projects");
    assert_eq!(list.len(), 1, "{spans:#?}");
    let list = list[0];
    assert_eq!(list["parent_span_id"], "");
    let list_trace = list["trace_id"].as_str().expect("trace id");
    assert!(
        list_trace.len() == 32 && list_trace != TRACE_WRITE && list_trace != TRACE_OFREP,
        "{list}"
    );
    assert_eq!(list["attributes"]["http.response.status_code"], 200);
    assert!(
        spans.iter().any(|s| s["parent_span_id"] == list["span_id"]
            && s["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("store.list_projects"))),
        "a store read under the list: {spans:#?}"
    );

    // The fast path's span is named and parented alike.
    let ofrep = named("POST /ofrep/v1/evaluate/flags/{key}");
    assert_eq!(ofrep.len(), 1, "{spans:#?}");
    let ofrep = ofrep[0];
    assert_eq!(ofrep["trace_id"], TRACE_OFREP);
    assert_eq!(ofrep["parent_span_id"], PARENT_OFREP);
    assert_eq!(
        ofrep["attributes"]["http.route"],
        "/ofrep/v1/evaluate/flags/{key}"
    );
    assert_eq!(
        ofrep["attributes"]["url.path"],
        "/ofrep/v1/evaluate/flags/banner"
    );
    assert_eq!(ofrep["attributes"]["http.response.status_code"], 401);

    // Sent at shutdown.
    assert_eq!(
        named("GET /api/v1/projects/{project}").len(),
        1,
        "{spans:#?}"
    );

    // The JSON log: every line an object with the fixed members; the access log lines carry
    // the spans' trace ids.
    let lines: Vec<Map<String, Value>> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!lines.is_empty(), "{log}");
    for line in &lines {
        for member in ["timestamp", "level", "target", "message"] {
            assert!(line.contains_key(member), "{member} in {line:?}");
        }
    }
    let access = |request_id: &str| -> &Map<String, Value> {
        let found: Vec<_> = lines
            .iter()
            .filter(|l| l["target"] == "hata::access" && l["request_id"] == request_id)
            .collect();
        assert_eq!(found.len(), 1, "one access line for {request_id}:\n{log}");
        found[0]
    };
    let line = access("req-trace-write");
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["route"], "/api/v1/projects");
    assert_eq!(line["status"], 201);
    assert_eq!(line["client_ip"], "127.0.0.1");
    assert_eq!(line["user_agent"], USER_AGENT);
    assert_eq!(line["trace_id"], TRACE_WRITE);
    assert!(
        line["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{line:?}"
    );
    let principal = line["principal"].as_str().expect("principal");
    assert!(
        principal.starts_with("token:") && !principal.contains(ADMIN_TOKEN),
        "{principal}"
    );
    assert_eq!(access("req-trace-list")["trace_id"], list_trace);
    let line = access("req-trace-ofrep");
    assert_eq!(line["route"], "/ofrep/v1/evaluate/flags/{key}");
    assert_eq!(line["status"], 401);
    assert_eq!(line["principal"], "anonymous");
    assert_eq!(line["trace_id"], TRACE_OFREP);
}
