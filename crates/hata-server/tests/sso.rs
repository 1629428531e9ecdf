//! Single sign-on end to end against a real OpenID provider (panva/oidc-provider, started
//! here with node; installed by tests/oidc/install.sh): the authorization code flow with PKCE
//! through the provider's own login form, users created on first login and found again by
//! their (issuer, subject) link, an existing user linked by a verified email (and refused for
//! an unverified one), a forged callback refused, and a provider that is down.

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use hata_server::auth::identity::IdentityConfig;
use hata_server::sso::{OidcConfig, Sso};
use hata_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{Reply, TestServer};
use tokio::io::{AsyncBufReadExt, BufReader};

const SECRET: &str = "provider client secret for tests";

/// The role mappings, as an operator writes them in the configuration file.
const MAPPINGS: &str = r#"
[[role_mappings]]
claim = "groups"
value = "flag-admins"
admin = true

[[role_mappings]]
claim = "groups"
value = "shop-editors"
project = "shop"
role = "editor"
"#;

#[derive(serde::Deserialize)]
struct Mappings {
    role_mappings: hata_access::claims::RoleMap,
}

/// The installed provider, or `None` (a skip) outside CI.
fn provider_dir() -> Option<PathBuf> {
    let deps = std::env::var("HATA_CLIENT_DEPS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/hata-client-deps")
        });
    let dir = deps.join("oidc");
    if dir.join("node_modules/oidc-provider").is_dir() && dir.join("provider.mjs").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "oidc-provider is required under CI: run tests/oidc/install.sh"
    );
    eprintln!("SKIPPED: oidc-provider not installed (tests/oidc/install.sh)");
    None
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running provider; killed when dropped.
struct Provider {
    issuer: String,
    _child: tokio::process::Child,
}

async fn provider(dir: &PathBuf, port: u16, redirect: &str) -> Provider {
    let config = json!({
        "port": port,
        "clients": [{"client_id": "hata", "client_secret": SECRET, "redirect_uris": [redirect]}],
        "accounts": {
            "ann-at-idp": {"email": "ann@example.com", "email_verified": true, "name": "Ann Lee",
                           "groups": ["shop-editors"]},
            "bo-at-idp": {"email": "bo@example.com", "email_verified": true, "name": "Bo",
                          "groups": ["flag-admins"]},
            "eve-at-idp": {"email": "victim@example.com", "email_verified": false, "name": "Eve"},
        },
    });
    let mut child = tokio::process::Command::new("node")
        .arg(dir.join("provider.mjs"))
        .arg(config.to_string())
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(issuer) = line.strip_prefix("listening ") {
                return issuer.to_string();
            }
        }
        panic!("the provider ended before listening");
    })
    .await
    .expect("the provider starts");
    // Keep reading: the provider logs notices to stdout, and a closed pipe would end it.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Provider {
        issuer: ready,
        _child: child,
    }
}

fn config(issuer: &str) -> ServerConfig {
    let sso = Sso::new(OidcConfig {
        issuer: issuer.to_string(),
        client_id: "hata".into(),
        client_secret: Some(SECRET.into()),
        redirect_url: None,
        scopes: vec!["email".into(), "profile".into(), "groups".into()],
        role_map: toml::from_str::<Mappings>(MAPPINGS)
            .expect("mappings")
            .role_mappings,
    })
    .expect("sso");
    ServerConfig {
        identity: IdentityConfig {
            sso: Some(Arc::new(sso)),
            ..IdentityConfig::default()
        },
        ..ServerConfig::default()
    }
}

/// A browser: keeps cookies, follows nothing by itself.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// Logs `account` in through the provider's form, starting at hata's login; the callback's
/// response.
async fn sign_in(s: &TestServer, browser: &reqwest::Client, account: &str) -> reqwest::Response {
    let mut response = browser
        .get(s.url("/api/v1/auth/oidc/login?return_to=/after"))
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let callback = s.url("/api/v1/auth/oidc/callback");
    for _ in 0..20 {
        let here = response.url().clone();
        if response.status().is_redirection() {
            let location = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .expect("location");
            let next = here.join(location).expect("url");
            let last = next.as_str().starts_with(&callback);
            response = browser.get(next).send().await.expect("follow");
            if last {
                return response;
            }
            continue;
        }
        // The provider's development login and consent forms.
        let page = response.text().await.expect("page");
        let prompt = if page.contains("value=\"consent\"") {
            "consent"
        } else {
            "login"
        };
        response = browser
            .post(here)
            .form(&[("prompt", prompt), ("login", account), ("password", "any")])
            .send()
            .await
            .expect("submit");
    }
    panic!("the login did not come back to hata");
}

#[tokio::test]
async fn single_sign_on_creates_links_and_refuses() {
    let Some(dir) = provider_dir() else { return };
    let port = free_port();
    let s = TestServer::start_with(config(&format!("http://127.0.0.1:{port}"))).await;
    s.project("shop").await;
    s.project("blog").await;
    let provider = provider(&dir, port, &s.url("/api/v1/auth/oidc/callback")).await;
    assert_eq!(provider.issuer, format!("http://127.0.0.1:{port}"));

    // First login: a user is created (no password), a session opened, back to return_to.
    let ann = browser();
    let done = sign_in(&s, &ann, "ann-at-idp").await;
    assert_eq!(
        done.status(),
        StatusCode::SEE_OTHER,
        "{:?}",
        done.text().await
    );
    assert_eq!(
        done.headers().get("location").and_then(|l| l.to_str().ok()),
        Some("/after")
    );
    let me: serde_json::Value = ann
        .get(s.url("/api/v1/auth/me"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["kind"], "user");
    assert_eq!(me["email"], "ann@example.com");
    assert_eq!(me["name"], "Ann Lee");
    let id = me["id"].as_str().expect("id").to_string();
    let user = s
        .get(&format!("/api/v1/users/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(user.body["password_set"], false);
    // The provider's groups made her editor of shop; blog, which no mapping names, is
    // given by hand and stays.
    assert_eq!(user.body["projects"], json!({"shop": "editor"}));
    s.member("blog", &id, "viewer").await;
    s.member("shop", &id, "owner").await;

    // Again, in another browser: the same user, found by its link.
    let again = browser();
    sign_in(&s, &again, "ann-at-idp").await;
    let me: serde_json::Value = again
        .get(s.url("/api/v1/auth/me"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["id"], id.as_str());
    let user = s
        .get(&format!("/api/v1/users/{id}"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        user.body["projects"],
        json!({"blog": "viewer", "shop": "editor"}),
        "shop is the provider's to say"
    );

    // An existing user is linked when the provider verified the email...
    let bo = s
        .user("bo@example.com", "a long enough password 1", false)
        .await;
    let browser_bo = browser();
    sign_in(&s, &browser_bo, "bo-at-idp").await;
    let me: serde_json::Value = browser_bo
        .get(s.url("/api/v1/auth/me"))
        .send()
        .await
        .expect("me")
        .json()
        .await
        .expect("json");
    assert_eq!(me["id"], bo.as_str());
    assert_eq!(me["admin"], true, "flag-admins are administrators");
    // ...and not when it did not: no account takeover by an unverified address.
    s.user("victim@example.com", "a long enough password 1", false)
        .await;
    let eve = sign_in(&s, &browser(), "eve-at-idp").await;
    assert_eq!(eve.status(), StatusCode::CONFLICT);
    let body: serde_json::Value = eve.json().await.expect("problem");
    assert!(body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("verified")));

    // A callback without the login's flow cookie, or with another state, proves nothing.
    let forged = Reply::of(
        s.client
            .get(s.url("/api/v1/auth/oidc/callback?code=abc&state=xyz")),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED);
    assert!(forged.body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("no login in progress")));
    let mallory = browser();
    mallory
        .get(s.url("/api/v1/auth/oidc/login"))
        .send()
        .await
        .expect("login");
    let r = mallory
        .get(s.url("/api/v1/auth/oidc/callback?code=abc&state=not-the-state"))
        .send()
        .await
        .expect("callback");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The change record has the created and linked users, never the client secret.
    let doc = s
        .store
        .export()
        .await
        .expect("export")
        .to_json()
        .expect("json");
    assert!(doc.contains("\"linked\""));
    assert!(!doc.contains(SECRET));
}

#[tokio::test]
async fn without_a_provider_login_fails_fast_and_clearly() {
    // Nothing listens on this port.
    let s = TestServer::start_with(config(&format!("http://127.0.0.1:{}", free_port()))).await;
    let started = std::time::Instant::now();
    let r = Reply::of(s.client.get(s.url("/api/v1/auth/oidc/login")))
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(r.header("retry-after").is_some());
    assert!(r.body["detail"]
        .as_str()
        .is_some_and(|d| d.contains("cannot be reached")));
    // Not configured at all: 404.
    let plain = TestServer::start().await;
    Reply::of(plain.admin(Method::GET, "/api/v1/auth/oidc/login"))
        .await
        .problem(StatusCode::NOT_FOUND);
}
