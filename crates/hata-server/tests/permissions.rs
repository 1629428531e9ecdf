//! The permission matrix: every route of `ROUTES` × every kind of principal, each cell one real
//! request. A route missing from the table below fails this test, so a new route cannot ship
//! without stating who may call it; the table is also the one in `docs/security.md`, which
//! this test keeps in step (run with `UPDATE_DOCS=1` to rewrite that section).
//!
//! A cell is `y` (allowed: anything but 401/403), `-` (refused: 403) or `?` (no credentials:
//! 401). Allowed requests are shaped to change nothing: writes carry bodies that fail
//! validation, `If-Match: "999"`, or name resources that do not exist.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use hata_server::openapi::ROUTES;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::TestServer;

/// The principals, in column order.
const COLUMNS: [&str; 8] = [
    "admin token",
    "owner",
    "editor",
    "viewer",
    "owner of another project",
    "server token",
    "client token",
    "nobody",
];

/// (method, path) → expected cells, in `COLUMNS` order.
const MATRIX: &[(&str, &str, &str)] = &[
    ("get", "/api/v1/projects", "yyyyy--?"),
    ("post", "/api/v1/projects", "y------?"),
    ("get", "/api/v1/projects/{project}", "yyyy---?"),
    ("put", "/api/v1/projects/{project}", "yy-----?"),
    ("delete", "/api/v1/projects/{project}", "y------?"),
    ("get", "/api/v1/projects/{project}/environments", "yyyy---?"),
    (
        "post",
        "/api/v1/projects/{project}/environments",
        "yy-----?",
    ),
    (
        "get",
        "/api/v1/projects/{project}/environments/{env}",
        "yyyy---?",
    ),
    (
        "put",
        "/api/v1/projects/{project}/environments/{env}",
        "yy-----?",
    ),
    (
        "delete",
        "/api/v1/projects/{project}/environments/{env}",
        "yy-----?",
    ),
    (
        "post",
        "/api/v1/projects/{project}/environments/{env}/evaluate",
        "yyyy---?",
    ),
    ("get", "/api/v1/projects/{project}/flags", "yyyy---?"),
    ("post", "/api/v1/projects/{project}/flags", "yyy----?"),
    ("get", "/api/v1/projects/{project}/flags/{flag}", "yyyy---?"),
    ("put", "/api/v1/projects/{project}/flags/{flag}", "yyy----?"),
    (
        "patch",
        "/api/v1/projects/{project}/flags/{flag}",
        "yyy----?",
    ),
    (
        "delete",
        "/api/v1/projects/{project}/flags/{flag}",
        "yyy----?",
    ),
    (
        "get",
        "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
        "yyyy---?",
    ),
    (
        "put",
        "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
        "yyy----?",
    ),
    (
        "patch",
        "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
        "yyy----?",
    ),
    (
        "get",
        "/api/v1/projects/{project}/flags/{flag}/insights",
        "yyyy---?",
    ),
    ("get", "/api/v1/projects/{project}/segments", "yyyy---?"),
    ("post", "/api/v1/projects/{project}/segments", "yyy----?"),
    (
        "get",
        "/api/v1/projects/{project}/segments/{segment}",
        "yyyy---?",
    ),
    (
        "put",
        "/api/v1/projects/{project}/segments/{segment}",
        "yyy----?",
    ),
    (
        "delete",
        "/api/v1/projects/{project}/segments/{segment}",
        "yyy----?",
    ),
    ("get", "/api/v1/tokens", "yyyyy--?"),
    ("post", "/api/v1/tokens", "yy-----?"),
    ("delete", "/api/v1/tokens/{id}", "yy-----?"),
    ("post", "/api/v1/tokens/{id}/rotate", "yy-----?"),
    ("get", "/api/v1/sdk/config", "-----y-?"),
    ("get", "/api/v1/sdk/stream", "-----y-?"),
    ("post", "/ofrep/v1/evaluate/flags/{key}", "-----yy?"),
    ("post", "/ofrep/v1/evaluate/flags", "-----yy?"),
    ("get", "/ofrep/v1/events", "????????"),
    ("get", "/health/live", "yyyyyyyy"),
    ("get", "/health/ready", "yyyyyyyy"),
    ("get", "/openapi.json", "yyyyyyyy"),
];

/// Finer checks inside handlers, each a cell too: (what, method, path, body, expected).
const EXTRA: &[(&str, &str, &str, &str)] = &[
    // An admin token is only an admin's to create.
    (
        "create an admin token",
        "post",
        "/api/v1/tokens",
        "y------?",
    ),
    // Only an admin deletes an admin token.
    (
        "delete an admin token",
        "delete",
        "/api/v1/tokens/{admin}",
        "y------?",
    ),
];

async fn project_token(s: &TestServer, project: &str, role: &str) -> String {
    s.post(
        "/api/v1/tokens",
        &json!({"name": format!("{role} of {project}"), "kind": "project",
                "project": project, "role": role}),
    )
    .await
    .expect(StatusCode::CREATED)
    .body["secret"]
        .as_str()
        .expect("secret")
        .to_string()
}

/// The body a request to this route carries: one that is refused after authorisation (so
/// an allowed principal changes nothing), or one that works and is harmless.
fn body_for(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("get" | "delete", _) => None,
        ("post", "/api/v1/tokens") => Some(json!({"name": "matrix", "kind": "server",
            "project": "shop", "environment": "development"})),
        ("post", p) if p.starts_with("/ofrep/") => Some(json!({"context": {"targetingKey": "u"}})),
        ("post", "/api/v1/tokens/{id}/rotate") => Some(json!({})),
        _ => Some(json!({"not": "valid"})),
    }
}

/// Status only: streams never end, so the body is not read.
async fn status_of(
    s: &TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> StatusCode {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
    let mut request = s
        .client
        .request(method.clone(), s.url(path))
        .timeout(Duration::from_secs(10));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if method != Method::GET && method != Method::POST {
        request = request.header("If-Match", "\"999\"");
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request").status()
}

fn concrete(path: &str, victim: &str) -> String {
    path.replace("{project}", "shop")
        .replace("{env}", "ghost-env")
        .replace("{flag}", "ghost-flag")
        .replace("{key}", "dark-mode")
        .replace("{segment}", "ghost-segment")
        .replace("{admin}", victim)
        .replace("{id}", victim)
}

fn cell(status: StatusCode) -> char {
    match status {
        StatusCode::UNAUTHORIZED => '?',
        StatusCode::FORBIDDEN => '-',
        _ => 'y',
    }
}

#[tokio::test]
async fn every_route_against_every_principal_on_sqlite() {
    every_route_against_every_principal(TestServer::start().await).await;
}

#[tokio::test]
async fn every_route_against_every_principal_on_postgres() {
    if let Some(s) = TestServer::start_postgres().await {
        every_route_against_every_principal(s).await;
    }
}

async fn every_route_against_every_principal(s: TestServer) {
    s.project("shop").await;
    s.project("blog").await;
    s.flag("shop", json!({"key": "dark-mode", "type": "boolean"}))
        .await;
    let tokens: Vec<Option<String>> = vec![
        Some(s.token.clone()),
        Some(project_token(&s, "shop", "owner").await),
        Some(project_token(&s, "shop", "editor").await),
        Some(project_token(&s, "shop", "viewer").await),
        Some(project_token(&s, "blog", "owner").await),
        Some(s.evaluation_token("server", "shop").await),
        Some(s.evaluation_token("client", "shop").await),
        None,
    ];

    let expected: BTreeMap<(&str, &str), &str> = MATRIX
        .iter()
        .map(|(m, p, cells)| ((*m, *p), *cells))
        .collect();
    let mut missing = Vec::new();
    let mut wrong = Vec::new();
    let mut cases: Vec<(String, &str, &str, &str)> = Vec::new();
    for route in ROUTES {
        match expected.get(&(route.method, route.path)) {
            Some(cells) => cases.push((String::new(), route.method, route.path, cells)),
            None => missing.push(format!("{} {}", route.method, route.path)),
        }
    }
    for (what, method, path, cells) in EXTRA {
        cases.push((format!(" ({what})"), method, path, cells));
    }
    for (what, method, path, cells) in &cases {
        let mut got = String::new();
        for token in &tokens {
            // A token to delete, made fresh for each request that may delete it: of shop for
            // `{id}`, an admin token for `{admin}`.
            let victim = if path.contains("{id}") || path.contains("{admin}") {
                let body = if path.contains("{admin}") {
                    json!({"name": "victim", "kind": "admin"})
                } else {
                    json!({"name": "victim", "kind": "server", "project": "shop",
                           "environment": "development"})
                };
                s.post("/api/v1/tokens", &body)
                    .await
                    .expect(StatusCode::CREATED)
                    .body["id"]
                    .as_str()
                    .expect("id")
                    .to_string()
            } else {
                String::new()
            };
            let mut body = body_for(method, path);
            if what.contains("admin token") && *method == "post" {
                body = Some(json!({"name": "matrix admin", "kind": "admin"}));
            }
            let status =
                status_of(&s, method, &concrete(path, &victim), body, token.as_deref()).await;
            got.push(cell(status));
        }
        if got != *cells {
            wrong.push(format!(
                "{method} {path}{what}: expected {cells}, got {got}"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "routes without a row in MATRIX: {missing:#?}"
    );
    assert!(wrong.is_empty(), "columns {COLUMNS:?}\n{wrong:#?}");
    check_docs();
}

/// `docs/security.md`'s matrix, between its markers, is the table above.
fn check_docs() {
    let mut table = String::from("| route |");
    for c in COLUMNS {
        table.push_str(&format!(" {c} |"));
    }
    table.push_str("\n|---|");
    table.push_str(&"---|".repeat(COLUMNS.len()));
    table.push('\n');
    let rows = MATRIX
        .iter()
        .map(|(m, p, c)| (format!("`{} {p}`", m.to_uppercase()), *c))
        .chain(
            EXTRA
                .iter()
                .map(|(what, m, p, c)| (format!("`{} {p}` ({what})", m.to_uppercase()), *c)),
        );
    for (route, cells) in rows {
        table.push_str(&format!("| {route} |"));
        for c in cells.chars() {
            let shown = match c {
                'y' => "✓",
                '-' => "403",
                _ => "401",
            };
            table.push_str(&format!(" {shown} |"));
        }
        table.push('\n');
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/security.md");
    let doc = std::fs::read_to_string(&path).expect("docs/security.md");
    let (begin, end) = ("<!-- matrix:begin -->\n", "<!-- matrix:end -->");
    let start = doc.find(begin).expect("begin marker") + begin.len();
    let stop = doc.find(end).expect("end marker");
    if doc[start..stop] != table {
        if std::env::var("UPDATE_DOCS").is_ok() {
            let updated = format!("{}{table}{}", &doc[..start], &doc[stop..]);
            std::fs::write(&path, updated).expect("write docs/security.md");
        } else {
            panic!(
                "docs/security.md's matrix is out of date (UPDATE_DOCS=1 rewrites it):\n{table}"
            );
        }
    }
}

/// Lists show each principal only what it may see: projects it holds a role in, tokens of the
/// projects it owns. A project token's write works and is its own in the change record.
#[tokio::test]
async fn lists_show_only_what_the_caller_may_see_on_sqlite() {
    lists_show_only_what_the_caller_may_see(TestServer::start().await).await;
}

#[tokio::test]
async fn lists_show_only_what_the_caller_may_see_on_postgres() {
    if let Some(s) = TestServer::start_postgres().await {
        lists_show_only_what_the_caller_may_see(s).await;
    }
}

async fn lists_show_only_what_the_caller_may_see(s: TestServer) {
    for p in ["shop", "blog", "wiki"] {
        s.project(p).await;
    }
    let shop_owner = project_token(&s, "shop", "owner").await;
    let blog_viewer = project_token(&s, "blog", "viewer").await;
    s.evaluation_token("server", "shop").await;
    s.evaluation_token("server", "blog").await;

    let keys = |v: &Value, field: &str| -> Vec<String> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i[field].as_str().unwrap_or("-").to_string())
            .collect()
    };
    let get = |token: &str, path: &str| support::Reply::of(s.as_token(token, Method::GET, path));
    let all = s.get("/api/v1/projects").await.expect(StatusCode::OK);
    assert_eq!(keys(&all.body, "key"), ["blog", "shop", "wiki"]);
    let mine = get(&shop_owner, "/api/v1/projects")
        .await
        .expect(StatusCode::OK);
    assert_eq!(keys(&mine.body, "key"), ["shop"]);
    let page = get(&blog_viewer, "/api/v1/projects?limit=1")
        .await
        .expect(StatusCode::OK);
    assert_eq!(keys(&page.body, "key"), ["blog"]);
    assert!(page.body["next_cursor"].is_null());

    let tokens = get(&shop_owner, "/api/v1/tokens")
        .await
        .expect(StatusCode::OK);
    let projects = keys(&tokens.body, "project");
    assert_eq!(projects, ["shop", "shop"], "{}", tokens.body);
    let tokens = get(&blog_viewer, "/api/v1/tokens")
        .await
        .expect(StatusCode::OK);
    assert!(
        keys(&tokens.body, "id").is_empty(),
        "viewers manage no tokens"
    );

    // The owner's write, recorded as the owner's token.
    let created = support::Reply::of(
        s.as_token(&shop_owner, Method::POST, "/api/v1/projects/shop/flags")
            .json(&json!({"key": "by-owner", "type": "boolean"})),
    )
    .await
    .expect(StatusCode::CREATED);
    assert_eq!(created.body["key"], "by-owner");
    let roles = s.store.list_tokens().await.expect("tokens");
    let owner = roles
        .iter()
        .find(|t| t.name == "owner of shop")
        .expect("owner token");
    assert_eq!(owner.role, Some(hata_access::Role::Owner));
    let doc = s.store.export().await.expect("export");
    let change = doc.changes.last().expect("a change");
    assert_eq!(change.actor, format!("token:{}", owner.id));

    // An owner cannot mint an admin token, nor tokens of another project.
    support::Reply::of(
        s.as_token(&shop_owner, Method::POST, "/api/v1/tokens")
            .json(&json!({"kind": "admin"})),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    support::Reply::of(
        s.as_token(&shop_owner, Method::POST, "/api/v1/tokens")
            .json(&json!({"kind": "project", "project": "blog", "role": "viewer"})),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    s.post(
        "/api/v1/tokens",
        &json!({"kind": "project", "project": "shop", "role": "boss"}),
    )
    .await
    .invalid_at("role", "viewer, editor or owner");
    s.post(
        "/api/v1/tokens",
        &json!({"kind": "project", "project": "shop", "environment": "production"}),
    )
    .await
    .invalid_at("role", "need a role");
}
