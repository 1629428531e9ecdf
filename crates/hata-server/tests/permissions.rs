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
use support::{Session, TestServer};

/// How a column's principal authenticates.
#[derive(Clone)]
enum Credential {
    Bearer(String),
    /// A user's session (the email logs in again where a request would end the session).
    User {
        email: &'static str,
        session: Session,
    },
    Nobody,
}

/// Every matrix user's password.
const PASSWORD: &str = "matrix password 4 tests";

/// The principals, in column order.
const COLUMNS: [&str; 12] = [
    "admin token",
    "owner token",
    "editor token",
    "viewer token",
    "owner token of another project",
    "admin user",
    "owner user",
    "viewer user",
    "server token",
    "client token",
    "JWT (shop editor, server evaluation)",
    "nobody",
];

/// (method, path) → expected cells, in `COLUMNS` order.
const MATRIX: &[(&str, &str, &str)] = &[
    ("get", "/api/v1/projects", "yyyyyyyy--y?"),
    ("post", "/api/v1/projects", "y----y-----?"),
    ("get", "/api/v1/projects/{project}", "yyyy-yyy--y?"),
    ("put", "/api/v1/projects/{project}", "yy---yy----?"),
    ("delete", "/api/v1/projects/{project}", "y----y-----?"),
    (
        "get",
        "/api/v1/projects/{project}/environments",
        "yyyy-yyy--y?",
    ),
    (
        "post",
        "/api/v1/projects/{project}/environments",
        "yy---yy----?",
    ),
    (
        "get",
        "/api/v1/projects/{project}/environments/{env}",
        "yyyy-yyy--y?",
    ),
    (
        "put",
        "/api/v1/projects/{project}/environments/{env}",
        "yy---yy----?",
    ),
    (
        "delete",
        "/api/v1/projects/{project}/environments/{env}",
        "yy---yy----?",
    ),
    (
        "post",
        "/api/v1/projects/{project}/environments/{env}/evaluate",
        "yyyy-yyy--y?",
    ),
    ("get", "/api/v1/projects/{project}/flags", "yyyy-yyy--y?"),
    ("post", "/api/v1/projects/{project}/flags", "yyy--yy---y?"),
    (
        "get",
        "/api/v1/projects/{project}/flags/{flag}",
        "yyyy-yyy--y?",
    ),
    (
        "put",
        "/api/v1/projects/{project}/flags/{flag}",
        "yyy--yy---y?",
    ),
    (
        "patch",
        "/api/v1/projects/{project}/flags/{flag}",
        "yyy--yy---y?",
    ),
    (
        "delete",
        "/api/v1/projects/{project}/flags/{flag}",
        "yyy--yy---y?",
    ),
    (
        "get",
        "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
        "yyyy-yyy--y?",
    ),
    (
        "put",
        "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
        "yyy--yy---y?",
    ),
    (
        "patch",
        "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
        "yyy--yy---y?",
    ),
    (
        "get",
        "/api/v1/projects/{project}/flags/{flag}/insights",
        "yyyy-yyy--y?",
    ),
    ("get", "/api/v1/projects/{project}/segments", "yyyy-yyy--y?"),
    (
        "post",
        "/api/v1/projects/{project}/segments",
        "yyy--yy---y?",
    ),
    (
        "get",
        "/api/v1/projects/{project}/segments/{segment}",
        "yyyy-yyy--y?",
    ),
    (
        "put",
        "/api/v1/projects/{project}/segments/{segment}",
        "yyy--yy---y?",
    ),
    (
        "delete",
        "/api/v1/projects/{project}/segments/{segment}",
        "yyy--yy---y?",
    ),
    ("get", "/api/v1/tokens", "yyyyyyyy--y?"),
    ("post", "/api/v1/tokens", "yy---yy----?"),
    ("delete", "/api/v1/tokens/{id}", "yy---yy----?"),
    ("post", "/api/v1/tokens/{id}/rotate", "yy---yy----?"),
    ("post", "/api/v1/auth/login", "yyyyyyyyyyyy"),
    ("get", "/api/v1/auth/oidc/login", "yyyyyyyyyyyy"),
    ("get", "/api/v1/auth/oidc/callback", "yyyyyyyyyyyy"),
    ("post", "/api/v1/auth/logout", "-----yyy---?"),
    ("get", "/api/v1/auth/me", "yyyyyyyy--y?"),
    // Enrolling leaves a pending authenticator: it changes nothing until confirmed.
    ("post", "/api/v1/auth/totp", "-----yyy---?"),
    ("post", "/api/v1/auth/totp/confirm", "-----yyy---?"),
    ("delete", "/api/v1/auth/totp", "-----yyy---?"),
    ("get", "/api/v1/users", "y----y-----?"),
    ("post", "/api/v1/users", "y----y-----?"),
    ("get", "/api/v1/users/{id}", "y----y-----?"),
    ("patch", "/api/v1/users/{id}", "y----y-----?"),
    ("delete", "/api/v1/users/{id}", "y----y-----?"),
    ("delete", "/api/v1/users/{id}/totp", "y----y-----?"),
    ("put", "/api/v1/users/me/password", "-----yyy---?"),
    ("get", "/api/v1/projects/{project}/members", "yyyy-yyy--y?"),
    (
        "put",
        "/api/v1/projects/{project}/members/{user_id}",
        "yy---yy----?",
    ),
    (
        "delete",
        "/api/v1/projects/{project}/members/{user_id}",
        "yy---yy----?",
    ),
    ("get", "/api/v1/sdk/config", "-----???y-y?"),
    ("get", "/api/v1/sdk/stream", "-----???y-y?"),
    ("post", "/ofrep/v1/evaluate/flags/{key}", "-----???yyy?"),
    ("post", "/ofrep/v1/evaluate/flags", "-----???yyy?"),
    ("get", "/ofrep/v1/events", "????????????"),
    ("get", "/api/v1/audit", "yy--yyy----?"),
    (
        "get",
        "/api/v1/projects/{project}/flags/{flag}/history",
        "yy---yy----?",
    ),
    ("get", "/api/v1/audit/export", "y----y-----?"),
    ("get", "/api/v1/audit/verify", "y----y-----?"),
    ("get", "/api/v1/reports/daily", "y----y-----?"),
    ("get", "/api/v1/reports/stale", "y----y-----?"),
    ("get", "/api/v1/audit/public-key", "yyyyyyyyyyyy"),
    ("get", "/api/v1/jobs", "y----y-----?"),
    ("post", "/api/v1/jobs/{job}/run", "y----y-----?"),
    ("get", "/api/v1/backups", "y----y-----?"),
    ("get", "/health/live", "yyyyyyyyyyyy"),
    ("get", "/health/ready", "yyyyyyyyyyyy"),
    ("get", "/metrics", "yyyyyyyyyyyy"),
    ("get", "/openapi.json", "yyyyyyyyyyyy"),
];

/// Finer checks inside handlers, each a cell too: (what, method, path, body, expected).
const EXTRA: &[(&str, &str, &str, &str)] = &[
    // An admin token is only an admin's to create.
    (
        "create an admin token",
        "post",
        "/api/v1/tokens",
        "y----y-----?",
    ),
    // Only an admin deletes an admin token.
    (
        "delete an admin token",
        "delete",
        "/api/v1/tokens/{admin}",
        "y----y-----?",
    ),
    // Owners hand out roles of their project, as they hand out its tokens.
    (
        "give a role",
        "put",
        "/api/v1/projects/{project}/members/{user_id}",
        "yy---yy----?",
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

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed).to_string()
}

/// Status only: streams never end, so the body is not read.
async fn status_of(
    s: &TestServer,
    method: &str,
    path: &str,
    body: Option<Value>,
    credential: &Credential,
) -> StatusCode {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
    let mut request = match credential {
        Credential::Bearer(token) => s.as_token(token, method.clone(), path),
        Credential::User { email, session } => {
            // Logging out ends the session: log out a fresh one.
            let session = if path == "/api/v1/auth/logout" {
                s.login(email, PASSWORD).await
            } else {
                session.clone()
            };
            s.as_session(&session, method.clone(), path)
        }
        Credential::Nobody => s.client.request(method.clone(), s.url(path)),
    }
    .timeout(Duration::from_secs(10));
    if method != Method::GET && method != Method::POST {
        request = request.header("If-Match", "\"999\"");
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request").status()
}

fn concrete(path: &str, victim: &str, user: &str) -> String {
    path.replace("{project}", "shop")
        .replace("{user_id}", user)
        .replace("{env}", "ghost-env")
        .replace("{flag}", "ghost-flag")
        .replace("{key}", "dark-mode")
        .replace("{segment}", "ghost-segment")
        .replace("{job}", "ghost-job")
        .replace("{admin}", victim)
        .replace(
            "{id}",
            if path.starts_with("/api/v1/users/") {
                user
            } else {
                victim
            },
        )
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
    let (config, jwt) = with_jwt();
    every_route_against_every_principal(TestServer::start_with(config).await, jwt).await;
}

#[tokio::test]
async fn every_route_against_every_principal_on_postgres() {
    let (config, jwt) = with_jwt();
    if let Some(s) = TestServer::start_postgres_with(config).await {
        every_route_against_every_principal(s, jwt).await;
    }
}

/// A server that accepts JWTs of a test issuer (its key given, not fetched), and a JWT whose
/// `groups` make it an editor of shop that evaluates like a server token in development.
fn with_jwt() -> (hata_server::ServerConfig, String) {
    use base64::Engine;
    #[derive(serde::Deserialize)]
    struct File {
        role_mappings: hata_access::claims::RoleMap,
    }
    let file: File = toml::from_str(
        r#"
        [[role_mappings]]
        claim = "groups"
        value = "shop-editors"
        project = "shop"
        role = "editor"

        [[role_mappings]]
        claim = "groups"
        value = "shop-servers"
        project = "shop"
        environment = "development"
        evaluate = "server"
        "#,
    )
    .expect("role mappings");
    let mut config = hata_server::auth::jwt::JwtConfig::new("https://id.example.com", "hata");
    config.jwks_url = Some("http://127.0.0.1:9/unused".into());
    config.role_map = file.role_mappings;
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pair.public_key_raw());
    let verifier = hata_server::auth::jwt::JwtVerifier::new(config).expect("verifier");
    verifier
        .set_key_set(
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k", "x": x}]})
                .to_string()
                .as_bytes(),
        )
        .expect("key set");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("k".into());
    let jwt = jsonwebtoken::encode(
        &header,
        &json!({"iss": "https://id.example.com", "aud": "hata", "sub": "matrix",
                "exp": now + 3600, "groups": ["shop-editors", "shop-servers"]}),
        &jsonwebtoken::EncodingKey::from_ed_der(&pair.serialize_der()),
    )
    .expect("sign");
    let config = hata_server::ServerConfig {
        jwt: Some(std::sync::Arc::new(verifier)),
        ..Default::default()
    };
    (config, jwt)
}

async fn every_route_against_every_principal(s: TestServer, jwt: String) {
    s.project("shop").await;
    s.project("blog").await;
    s.flag("shop", json!({"key": "dark-mode", "type": "boolean"}))
        .await;
    let admin_user = s.user("admin@example.com", PASSWORD, true).await;
    let owner_user = s.user("owner@example.com", PASSWORD, false).await;
    let viewer_user = s.user("viewer@example.com", PASSWORD, false).await;
    s.member("shop", &owner_user, "owner").await;
    s.member("shop", &viewer_user, "viewer").await;
    assert!(!admin_user.is_empty());
    let s = &s;
    let user = |email: &'static str| async move {
        Credential::User {
            email,
            session: s.login(email, PASSWORD).await,
        }
    };
    let credentials: Vec<Credential> = vec![
        Credential::Bearer(s.token.clone()),
        Credential::Bearer(project_token(s, "shop", "owner").await),
        Credential::Bearer(project_token(s, "shop", "editor").await),
        Credential::Bearer(project_token(s, "shop", "viewer").await),
        Credential::Bearer(project_token(s, "blog", "owner").await),
        user("admin@example.com").await,
        user("owner@example.com").await,
        user("viewer@example.com").await,
        Credential::Bearer(s.evaluation_token("server", "shop").await),
        Credential::Bearer(s.evaluation_token("client", "shop").await),
        Credential::Bearer(jwt),
        Credential::Nobody,
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
        for credential in &credentials {
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
            // A user to change, delete or give a role, made fresh for each request.
            let victim_user = if path.contains("{user_id}") || path.starts_with("/api/v1/users/{") {
                s.post(
                    "/api/v1/users",
                    &json!({"email": format!("victim-{}@example.com", rand_suffix())}),
                )
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
            if what.contains("give a role") {
                body = Some(json!({"role": "editor"}));
            }
            let path = concrete(path, &victim, &victim_user);
            let status = status_of(s, method, &path, body, credential).await;
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
