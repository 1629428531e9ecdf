//! U+0000 in text, through `hata serve` on SQLite and on PostgreSQL. PostgreSQL cannot store it
//! in text, SQLite can: both must refuse it the same way, a 422 naming the field for content
//! and a 400 naming the parameter for path and query parameters, and never a 500. Without
//! PostgreSQL its leg is skipped, except under `CI=true`, where it fails.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{PgDatabase, Replica, ADMIN_TOKEN};

/// One admin request and what a client must get: status and the fields `errors` names.
struct Case {
    method: Method,
    /// Below `/api/v1`, percent-encoded as sent.
    path: &'static str,
    body: Option<Value>,
    status: StatusCode,
    fields: &'static [&'static str],
}

fn case(
    method: Method,
    path: &'static str,
    body: Option<Value>,
    status: StatusCode,
    fields: &'static [&'static str],
) -> Case {
    Case {
        method,
        path,
        body,
        status,
        fields,
    }
}

/// Every kind of text that reaches the store, with U+0000 in it; `p`, its environments, flag
/// `f` and token ids exist (`setup`).
fn cases() -> Vec<Case> {
    use Method as M;
    const BAD: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;
    const BAD_PARAM: StatusCode = StatusCode::BAD_REQUEST;
    vec![
        case(
            M::POST,
            "/projects",
            Some(json!({"key": "q", "name": "a\u{0}b", "description": "\u{0}"})),
            BAD,
            &["name", "description"],
        ),
        case(
            M::POST,
            "/projects",
            Some(json!({"key": "q", "environments": [{"key": "live", "name": "L\u{0}"}]})),
            BAD,
            &["environments[0].name"],
        ),
        case(
            M::PUT,
            "/projects/p",
            Some(json!({"key": "p", "description": "x\u{0}"})),
            BAD,
            &["description"],
        ),
        case(
            M::POST,
            "/projects/p/environments",
            Some(json!({"key": "staging", "description": "\u{0}"})),
            BAD,
            &["description"],
        ),
        case(
            M::PUT,
            "/projects/p/environments/production",
            Some(json!({"key": "production", "name": "P\u{0}"})),
            BAD,
            &["name"],
        ),
        // A key with U+0000 is read from the store before the flag is validated.
        case(
            M::POST,
            "/projects/p/flags",
            Some(json!({"key": "g\u{0}", "type": "boolean"})),
            BAD,
            &["key"],
        ),
        case(
            M::POST,
            "/projects/p/flags",
            Some(json!({
                "key": "g", "type": "json", "owner": "o\u{0}", "tags": ["ok", "t\u{0}"],
                "variants": [
                    {"key": "a", "value": {"text": "x\u{0}", "k\u{0}": 1}, "name": "A\u{0}"},
                    {"key": "b", "value": ["\u{0}"]}
                ],
                "environments": {"production": {"rules": [{
                    "conditions": [
                        {"attribute": "email", "operator": "in", "values": ["a\u{0}"]}
                    ],
                    "serve": {"variant": "a"}
                }]}}
            })),
            BAD,
            &[
                "owner",
                "tags[1]",
                "variants[0].value.text",
                "variants[0].value[\"k\\u0000\"]",
                "variants[0].name",
                "variants[1].value[0]",
                "environments.production.rules[0].conditions[0].values[0]",
            ],
        ),
        case(
            M::PUT,
            "/projects/p/flags/f",
            Some(json!({"key": "f", "type": "boolean", "description": "\u{0}"})),
            BAD,
            &["description"],
        ),
        case(
            M::PATCH,
            "/projects/p/flags/f",
            Some(json!({"name": "n\u{0}"})),
            BAD,
            &["name"],
        ),
        case(
            M::PATCH,
            "/projects/p/flags/f/environments/production",
            Some(json!({"targets": [{"variant": "on", "values": ["user\u{0}"]}]})),
            BAD,
            &["targets[0].values[0]"],
        ),
        case(
            M::PUT,
            "/projects/p/flags/f/environments/production",
            Some(json!({"enabled": true, "rules": [{
                "conditions": [{"attribute": "a\u{0}", "operator": "exists"}],
                "serve": {"variant": "on"}
            }]})),
            BAD,
            &["rules[0].conditions[0].attribute"],
        ),
        case(
            M::POST,
            "/projects/p/segments",
            Some(json!({"key": "s", "included": ["u\u{0}"], "rules": [[
                {"attribute": "plan", "operator": "starts_with", "values": ["\u{0}"]}
            ]]})),
            BAD,
            &["included[0]", "rules[0][0].values[0]"],
        ),
        case(
            M::POST,
            "/tokens",
            Some(json!({"name": "ci\u{0}", "kind": "admin"})),
            BAD,
            &["name"],
        ),
        case(
            M::POST,
            "/tokens",
            Some(json!({"name": "sdk", "kind": "server", "project": "p\u{0}",
                        "environment": "production"})),
            BAD,
            &["project"],
        ),
        // Path parameters and query values.
        case(M::GET, "/projects/p%00", None, BAD_PARAM, &["project"]),
        case(
            M::DELETE,
            "/projects/p/flags/f%00x",
            None,
            BAD_PARAM,
            &["flag"],
        ),
        case(
            M::GET,
            "/projects/p/flags/f/environments/%00",
            None,
            BAD_PARAM,
            &["env"],
        ),
        case(M::DELETE, "/tokens/tok%00", None, BAD_PARAM, &["id"]),
        case(
            M::GET,
            "/projects?cursor=a%00",
            None,
            BAD_PARAM,
            &["cursor"],
        ),
        case(
            M::GET,
            "/projects/p/flags?cursor=%00&q=x",
            None,
            BAD_PARAM,
            &["cursor"],
        ),
        case(
            M::GET,
            "/projects/p/segments?cursor=s%00",
            None,
            BAD_PARAM,
            &["cursor"],
        ),
        case(
            M::GET,
            "/projects/p/flags/f/insights?env=production%00",
            None,
            BAD_PARAM,
            &["env"],
        ),
    ]
}

/// What the server answered: status, content type, body.
async fn send(replica: &Replica, c: &Case) -> (StatusCode, String, Value) {
    let mut request = replica
        .client
        .request(
            c.method.clone(),
            format!("{}/api/v1{}", replica.base, c.path),
        )
        .bearer_auth(ADMIN_TOKEN);
    if let Some(body) = &c.body {
        request = request.json(body);
    }
    let response = request.send().await.expect("admin request");
    let status = response.status();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, content_type, body)
}

async fn setup(replica: &Replica) {
    replica
        .admin_ok(
            Method::POST,
            "/projects",
            Some(json!({"key": "p"})),
            StatusCode::CREATED,
        )
        .await;
    replica
        .admin_ok(
            Method::POST,
            "/projects/p/flags",
            Some(json!({"key": "f", "type": "boolean"})),
            StatusCode::CREATED,
        )
        .await;
}

/// Runs every case on `replica`; returns the answers (status and `errors`) for comparing
/// backends.
async fn run_cases(replica: &Replica) -> Vec<(StatusCode, Value)> {
    setup(replica).await;
    let before = replica
        .admin_ok(Method::GET, "/projects/p/flags/f", None, StatusCode::OK)
        .await;
    let mut answers = Vec::new();
    for c in cases() {
        let (status, content_type, body) = send(replica, &c).await;
        let what = format!("{} {} on {}", c.method, c.path, replica.name);
        assert_eq!(status, c.status, "{what}: {body}");
        assert_eq!(content_type, "application/problem+json", "{what}");
        let errors = body["errors"].as_array().cloned().unwrap_or_default();
        let fields: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
        assert_eq!(fields, c.fields, "{what}: {body}");
        for e in &errors {
            let message = e["message"].as_str().unwrap_or_default();
            assert!(
                message == "must not contain U+0000"
                    || message == "member name must not contain U+0000",
                "{what}: {body}"
            );
        }
        answers.push((status, body["errors"].clone()));
    }
    // Nothing was written: the flag is as it was, and no project `q` exists.
    let after = replica
        .admin_ok(Method::GET, "/projects/p/flags/f", None, StatusCode::OK)
        .await;
    assert_eq!(after, before, "on {}", replica.name);
    replica
        .admin_ok(Method::GET, "/projects/q", None, StatusCode::NOT_FOUND)
        .await;
    assert!(
        !replica.log().contains("internal store error"),
        "{}:\n{}",
        replica.name,
        replica.log()
    );
    answers
}

#[tokio::test]
async fn nul_in_text_is_refused_alike_on_sqlite_and_postgres() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite_url = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());
    let sqlite = Replica::start("sqlite", &sqlite_url).await;
    let on_sqlite = run_cases(&sqlite).await;

    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let postgres = Replica::start("postgres", &db.url()).await;
    let on_postgres = run_cases(&postgres).await;
    assert_eq!(on_sqlite, on_postgres);
}
