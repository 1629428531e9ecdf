//! JWT bearer tokens against a real server: the test is the issuer (its own Ed25519 and P-256
//! keys, its key set served by a small axum server on 127.0.0.1:0) and mints the tokens.
//! Every refusal is a 401/403 problem+json whose detail says what was wrong.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hata_access::claims::{RoleMap, RoleRule};
use hata_server::auth::jwt::{JwtConfig, JwtVerifier};
use hata_server::ServerConfig;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{Reply, TestServer};

const ISSUER: &str = "https://id.example.com";
const AUDIENCE: &str = "hata";

/// A signing key of the test issuer.
struct Key {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
    /// The public key's raw bytes (what an HS256 confusion attack would use as the secret).
    public: Vec<u8>,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn ed25519(kid: &str) -> Key {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("Ed25519 key");
    let public = pair.public_key_raw().to_vec();
    Key {
        kid: kid.into(),
        alg: Algorithm::EdDSA,
        encoding: EncodingKey::from_ed_der(&pair.serialize_der()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig", "x": b64(&public)}),
        public,
    }
}

fn p256(kid: &str) -> Key {
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
    let public = pair.public_key_raw().to_vec();
    // Uncompressed point: 0x04 ‖ x ‖ y.
    let (x, y) = public[1..].split_at(32);
    Key {
        kid: kid.into(),
        alg: Algorithm::ES256,
        encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "x": b64(x), "y": b64(y)}),
        public,
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims valid for ten minutes, with `extra` merged over them (`null` removes one).
fn claims(extra: Value) -> Value {
    let mut c = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "svc-deploy", "name": "Deploy bot",
        "iat": now(), "exp": now() + 600,
    });
    for (k, v) in extra.as_object().expect("object") {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

fn mint(key: &Key, claims: &Value) -> String {
    let mut header = Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, claims, &key.encoding).expect("sign")
}

/// A token with a hand-made header and signature.
fn forge(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(signature)
    )
}

/// The test issuer's key-set endpoint: serves `jwks`, counts fetches, can stall.
struct Issuer {
    url: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
    stall: Arc<AtomicBool>,
}

impl Issuer {
    async fn start(keys: &[&Key]) -> Issuer {
        let jwks = Arc::new(Mutex::new(json!({
            "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()
        })));
        let fetches = Arc::new(AtomicUsize::new(0));
        let stall = Arc::new(AtomicBool::new(false));
        let (j, f, st) = (jwks.clone(), fetches.clone(), stall.clone());
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || {
                let (j, f, st) = (j.clone(), f.clone(), st.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    if st.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    axum::Json(j.lock().unwrap().clone())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Issuer {
            url: format!("http://{addr}/jwks.json"),
            jwks,
            fetches,
            stall,
        }
    }

    fn set_keys(&self, keys: &[&Key]) {
        *self.jwks.lock().unwrap() =
            json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

const ROLE_MAPPINGS: &str = r#"
    [[role_mappings]]
    claim = "groups"
    value = "flag-admins"
    admin = true

    [[role_mappings]]
    claim = "groups"
    value = "shop-editors"
    project = "shop"
    role = "editor"

    [[role_mappings]]
    claim = "groups"
    value = "shop-evaluators"
    project = "shop"
    environment = "development"
    evaluate = "client"

    [[role_mappings]]
    claim = "groups"
    value = "shop-servers"
    project = "shop"
    environment = "development"
    evaluate = "server"
"#;

fn jwt_config(jwks_url: &str) -> JwtConfig {
    #[derive(serde::Deserialize)]
    struct File {
        role_mappings: Vec<RoleRule>,
    }
    let file: File = toml::from_str(ROLE_MAPPINGS).expect("role mappings");
    let mut config = JwtConfig::new(ISSUER, AUDIENCE);
    config.jwks_url = Some(jwks_url.to_string());
    config.role_map = RoleMap::new(file.role_mappings);
    config.fetch_timeout = Duration::from_millis(500);
    config
}

async fn server(config: JwtConfig) -> TestServer {
    let verifier = JwtVerifier::new(config).expect("JWT configuration");
    let s = TestServer::start_with(ServerConfig {
        jwt: Some(Arc::new(verifier)),
        ..ServerConfig::default()
    })
    .await;
    s.project("shop").await;
    s.project("blog").await;
    s.flag(
        "shop",
        json!({"key": "dark-mode", "type": "boolean", "environments": {"development": {
            "enabled": true, "off_variant": "off", "default": {"variant": "on"}}}}),
    )
    .await;
    s
}

async fn as_jwt(s: &TestServer, token: &str, method: Method, path: &str) -> Reply {
    let mut request = s.as_token(token, method.clone(), path);
    if method == Method::POST {
        request = request.json(&json!({"context": {"targetingKey": "u1"}}));
    }
    Reply::of(request).await
}

/// Asserts a 401 problem whose detail contains `says`.
#[track_caller]
fn refused(reply: Reply, status: StatusCode, says: &str) {
    let reply = reply.problem(status);
    let detail = reply.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(says),
        "detail {detail:?} should say {says:?}"
    );
}

const OFREP: &str = "/ofrep/v1/evaluate/flags/dark-mode";

#[tokio::test]
async fn mapped_roles_open_the_admin_api_and_evaluation() {
    let key = ed25519("ed-1");
    let ec = p256("ec-1");
    let issuer = Issuer::start(&[&key, &ec]).await;
    let s = server(jwt_config(&issuer.url)).await;

    // An editor of shop: reads and writes flags there, nothing of blog, no evaluation.
    let editor = mint(&key, &claims(json!({"groups": ["shop-editors"]})));
    as_jwt(&s, &editor, Method::GET, "/api/v1/projects/shop/flags")
        .await
        .expect(StatusCode::OK);
    let created = Reply::of(
        s.as_token(&editor, Method::POST, "/api/v1/projects/shop/flags")
            .json(&json!({"key": "from-jwt", "type": "boolean"})),
    )
    .await
    .expect(StatusCode::CREATED);
    assert_eq!(created.body["key"], "from-jwt");
    refused(
        as_jwt(&s, &editor, Method::GET, "/api/v1/projects/blog/flags").await,
        StatusCode::FORBIDDEN,
        "JWT subject svc-deploy has no role in project \"blog\"",
    );
    refused(
        as_jwt(&s, &editor, Method::POST, "/api/v1/projects").await,
        StatusCode::FORBIDDEN,
        "not an administrator",
    );
    refused(
        as_jwt(&s, &editor, Method::POST, OFREP).await,
        StatusCode::FORBIDDEN,
        "needs a server or client token",
    );
    let me = as_jwt(&s, &editor, Method::GET, "/api/v1/auth/me")
        .await
        .expect(StatusCode::OK);
    assert_eq!(me.body["kind"], "jwt");
    assert_eq!(me.body["id"], "svc-deploy");
    assert_eq!(me.body["name"], "Deploy bot");

    // An admin (ES256 this time).
    let admin = mint(&ec, &claims(json!({"groups": "flag-admins", "sub": "ops"})));
    as_jwt(&s, &admin, Method::GET, "/api/v1/users")
        .await
        .expect(StatusCode::OK);

    // No mapped role: authenticated, sees nothing.
    let nobody = mint(&key, &claims(json!({"groups": ["strangers"]})));
    let projects = as_jwt(&s, &nobody, Method::GET, "/api/v1/projects")
        .await
        .expect(StatusCode::OK);
    assert_eq!(projects.body["items"], json!([]), "{}", projects.body);

    // Evaluation: client access evaluates by OFREP, not the SDK rule set; server access both.
    let client = mint(&key, &claims(json!({"groups": ["shop-evaluators"]})));
    let r = as_jwt(&s, &client, Method::POST, OFREP)
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["value"], true, "{}", r.body);
    let bulk = as_jwt(&s, &client, Method::POST, "/ofrep/v1/evaluate/flags")
        .await
        .expect(StatusCode::OK);
    assert_eq!(bulk.body["eventStreams"], json!([]), "{}", bulk.body);
    refused(
        as_jwt(&s, &client, Method::GET, "/api/v1/sdk/config").await,
        StatusCode::FORBIDDEN,
        "needs a server token",
    );
    refused(
        as_jwt(&s, &client, Method::GET, "/api/v1/projects/shop/flags").await,
        StatusCode::FORBIDDEN,
        "no role in project",
    );
    let server = mint(&key, &claims(json!({"groups": ["shop-servers"]})));
    let config = as_jwt(&s, &server, Method::GET, "/api/v1/sdk/config")
        .await
        .expect(StatusCode::OK);
    assert!(config.body.is_object(), "{}", config.body);
    as_jwt(&s, &server, Method::POST, OFREP)
        .await
        .expect(StatusCode::OK);
    // The SDK stream opens for it too (and ends at the token's expiry).
    let stream = s
        .as_token(&server, Method::GET, "/api/v1/sdk/stream")
        .send()
        .await
        .expect("open the stream");
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        stream.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    drop(stream);
    // The key set was fetched once for all of this.
    assert_eq!(issuer.fetches(), 1);
}

#[tokio::test]
async fn bad_tokens_are_401_saying_why() {
    let key = ed25519("ed-1");
    let other = ed25519("ed-1"); // same kid, different key: a forged signature
    let issuer = Issuer::start(&[&key]).await;
    let s = server(jwt_config(&issuer.url)).await;
    let ok = |extra: Value| {
        let mut c = claims(json!({"groups": ["shop-evaluators", "shop-editors"]}));
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "bad signature",
            mint(&other, &ok(json!({}))),
            "signature does not verify",
        ),
        (
            "wrong audience",
            mint(&key, &ok(json!({"aud": "someone-else"}))),
            "audience (aud) does not include \"hata\"",
        ),
        (
            "wrong issuer",
            mint(&key, &ok(json!({"iss": "https://evil.example.com"}))),
            "issuer (iss) is not the configured issuer",
        ),
        (
            "expired (beyond the 60 s leeway)",
            mint(&key, &ok(json!({"exp": now() - 120}))),
            "has expired",
        ),
        (
            "not yet valid",
            mint(&key, &ok(json!({"nbf": now() + 600}))),
            "not yet valid",
        ),
        (
            "no expiry",
            mint(&key, &{
                let mut c = ok(json!({}));
                c.as_object_mut().unwrap().remove("exp");
                c
            }),
            "no expiry (exp)",
        ),
        (
            "alg none",
            forge(&json!({"alg": "none", "kid": "ed-1"}), &ok(json!({})), b""),
            "algorithm \"none\" is not allowed",
        ),
        (
            "HS256 with the public key as the secret",
            {
                let mut header = Header::new(Algorithm::HS256);
                header.kid = Some("ed-1".into());
                jsonwebtoken::encode(
                    &header,
                    &ok(json!({})),
                    &EncodingKey::from_secret(&key.public),
                )
                .unwrap()
            },
            "algorithm \"HS256\" is not allowed",
        ),
        (
            "HS256 with the JWK as the secret",
            {
                let mut header = Header::new(Algorithm::HS256);
                header.kid = Some("ed-1".into());
                let secret = key.jwk.to_string();
                jsonwebtoken::encode(
                    &header,
                    &ok(json!({})),
                    &EncodingKey::from_secret(secret.as_bytes()),
                )
                .unwrap()
            },
            "algorithm \"HS256\" is not allowed",
        ),
        (
            "an algorithm the key is not for",
            forge(
                &json!({"alg": "ES256", "kid": "ed-1"}),
                &ok(json!({})),
                &[7; 64],
            ),
            "kid) is not among the issuer's signing keys",
        ),
        (
            "malformed",
            // The header is not JSON.
            "bm90IGpzb24.e30.c2ln".to_string(),
            "not a well-formed JWT",
        ),
        (
            "no subject",
            mint(&key, &ok(json!({"sub": ""}))),
            "no subject (sub)",
        ),
    ];
    for (what, token, says) in &cases {
        for (method, path) in [
            (Method::POST, OFREP),
            (Method::GET, "/api/v1/projects/shop/flags"),
        ] {
            let reply = as_jwt(&s, token, method, path).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{what} on {path}: {reply:?}"
            );
            refused(reply, StatusCode::UNAUTHORIZED, says);
        }
    }
    // Within the leeway an expired token still passes; the valid one does.
    as_jwt(
        &s,
        &mint(&key, &ok(json!({"exp": now() - 30}))),
        Method::POST,
        OFREP,
    )
    .await
    .expect(StatusCode::OK);
    as_jwt(&s, &mint(&key, &ok(json!({}))), Method::POST, OFREP)
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_key_set_at_most_once_per_interval() {
    let old = ed25519("2024");
    let new = p256("2025");
    let issuer = Issuer::start(&[&old]).await;
    let mut config = jwt_config(&issuer.url);
    config.refresh_interval = Duration::from_secs(2);
    let s = server(config).await;
    let evaluator = claims(json!({"groups": ["shop-evaluators"]}));
    as_jwt(&s, &mint(&old, &evaluator), Method::POST, OFREP)
        .await
        .expect(StatusCode::OK);
    assert_eq!(issuer.fetches(), 1);

    // Garbage kids within the interval: refused without asking the issuer again.
    for i in 0..20 {
        let garbage = Key {
            kid: format!("garbage-{i}"),
            ..ed25519("x")
        };
        refused(
            as_jwt(&s, &mint(&garbage, &evaluator), Method::POST, OFREP).await,
            StatusCode::UNAUTHORIZED,
            "not among the issuer's signing keys",
        );
    }
    assert_eq!(
        issuer.fetches(),
        1,
        "garbage kids made us hammer the issuer"
    );

    // The issuer rotates; after the interval a token with the new kid refreshes the set.
    issuer.set_keys(&[&new]);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    as_jwt(&s, &mint(&new, &evaluator), Method::POST, OFREP)
        .await
        .expect(StatusCode::OK);
    assert_eq!(issuer.fetches(), 2);
    // A token verified before stays good until it expires (cached); a new one with the
    // dropped key is refused.
    refused(
        as_jwt(
            &s,
            &mint(
                &old,
                &claims(json!({"groups": ["shop-evaluators"], "jti": "2"})),
            ),
            Method::POST,
            OFREP,
        )
        .await,
        StatusCode::UNAUTHORIZED,
        "not among the issuer's signing keys",
    );
}

#[tokio::test]
async fn an_unreachable_or_stalled_key_set_is_a_quick_401() {
    let key = ed25519("ed-1");
    // Nobody listens here.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/jwks.json", l.local_addr().unwrap())
    };
    let s = server(jwt_config(&closed)).await;
    let token = mint(&key, &claims(json!({"groups": ["shop-evaluators"]})));
    let started = Instant::now();
    refused(
        as_jwt(&s, &token, Method::POST, OFREP).await,
        StatusCode::UNAUTHORIZED,
        "signing keys are unavailable",
    );
    refused(
        as_jwt(&s, &token, Method::GET, "/api/v1/projects").await,
        StatusCode::UNAUTHORIZED,
        "signing keys are unavailable",
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // hata's own tokens are unaffected.
    s.get("/api/v1/projects").await.expect(StatusCode::OK);

    // A key set that never answers: the fetch deadline (500 ms here) ends the wait.
    let issuer = Issuer::start(&[&key]).await;
    issuer.stall.store(true, Ordering::SeqCst);
    let s = server(jwt_config(&issuer.url)).await;
    let started = Instant::now();
    refused(
        as_jwt(&s, &token, Method::POST, OFREP).await,
        StatusCode::UNAUTHORIZED,
        "signing keys are unavailable",
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
}

/// Captures every log line of the process.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn tokens_never_reach_the_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .init();
    let key = ed25519("ed-1");
    let other = ed25519("ed-1");
    let issuer = Issuer::start(&[&key]).await;
    let s = server(jwt_config(&issuer.url)).await;
    let good = mint(
        &key,
        &claims(json!({"groups": ["shop-evaluators", "shop-editors"]})),
    );
    let forged = mint(&other, &claims(json!({"groups": ["flag-admins"]})));
    let expired = mint(&key, &claims(json!({"exp": now() - 3600})));
    for token in [&good, &forged, &expired] {
        for (method, path) in [
            (Method::POST, OFREP),
            (Method::GET, "/api/v1/projects/shop/flags"),
            (Method::GET, "/api/v1/nowhere"),
        ] {
            let r = as_jwt(&s, token, method, path).await;
            assert!(!r.body.to_string().contains(token.as_str()));
        }
    }
    // A key set that is down logs its failure, without any token.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/jwks.json", l.local_addr().unwrap())
    };
    let down = server(jwt_config(&closed)).await;
    as_jwt(&down, &good, Method::POST, OFREP).await;
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        text.contains("fetching the JWT issuer's key set failed"),
        "{text}"
    );
    for token in [&good, &forged, &expired] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !text.contains(signature),
            "a token's signature is in the logs"
        );
        let payload = token.split('.').nth(1).unwrap();
        assert!(!text.contains(payload), "a token's payload is in the logs");
    }
}
