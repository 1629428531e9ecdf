//! What authenticating an evaluation request costs: a static token (hash, lookup) against a
//! JWT whose verification is cached (hash of the longer token, lookup), and a JWT verified
//! from scratch (signature check, claims, role mapping). The numbers are in
//! `docs/security.md` ("JWT bearer tokens").
//!
//! `cargo bench -p hata-server --bench auth -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use criterion::{criterion_group, criterion_main, Criterion};
use futures::FutureExt;
use hata_access::claims::RoleMap;
use hata_server::auth::jwt::{JwtConfig, JwtVerifier};
use hata_server::auth::{authenticate_evaluator, TokenCache};
use hata_store::{TokenKind, TokenRecord};
use serde_json::json;

const KINDS: &[TokenKind] = &[TokenKind::Server, TokenKind::Client];

fn headers(secret: &str) -> axum::http::HeaderMap {
    let mut h = axum::http::HeaderMap::new();
    h.insert(
        axum::http::header::AUTHORIZATION,
        format!("Bearer {secret}").parse().expect("header"),
    );
    h
}

fn verifier(jwks: &str, cache_size: usize) -> Arc<JwtVerifier> {
    let mut config = JwtConfig::new("https://id.example.com", "hata");
    config.jwks_url = Some("http://127.0.0.1:9/jwks.json".into());
    config.cache_size = cache_size;
    #[derive(serde::Deserialize)]
    struct File {
        role_mappings: RoleMap,
    }
    let file: File = toml::from_str(
        r#"
        [[role_mappings]]
        claim = "groups"
        value = "shop-servers"
        project = "shop"
        environment = "production"
        evaluate = "server"
        "#,
    )
    .expect("role map");
    config.role_map = file.role_mappings;
    let v = JwtVerifier::new(config).expect("verifier");
    v.set_key_set(jwks.as_bytes()).expect("key set");
    Arc::new(v)
}

fn bench(c: &mut Criterion) {
    // A static server token, as the token cache holds it.
    let secret = hata_access::MintedToken::generate(TokenKind::Server).secret;
    let tokens = TokenCache::default();
    tokens.replace(vec![TokenRecord {
        id: "tok_bench".into(),
        name: "bench".into(),
        kind: TokenKind::Server,
        project: Some("shop".into()),
        environment: Some("production".into()),
        role: None,
        created_at: "2030-01-01T00:00:00Z".into(),
        expires_at: None,
        secret_hash: hex::encode(hata_access::token::secret_digest(&secret)),
        rotated_at: None,
        previous_valid_until: None,
        previous_secret_hash: None,
        last_used_at: None,
    }]);

    // A JWT of a typical size (~600 bytes), signed with Ed25519.
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("key");
    let jwks = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k1",
        "x": URL_SAFE_NO_PAD.encode(pair.public_key_raw())}]})
    .to_string();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = json!({
        "iss": "https://id.example.com", "aud": "hata", "sub": "svc-checkout-7f3a9c2e",
        "name": "checkout service", "iat": now, "nbf": now, "exp": now + 3600,
        "jti": "0f8fad5b-d9cb-469f-a165-70867728950e", "azp": "checkout",
        "scope": "openid profile flags:evaluate",
        "groups": ["shop-servers", "payments", "platform-readers"],
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some("k1".into());
    let jwt = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_ed_der(&pair.serialize_der()),
    )
    .expect("sign");
    let cached = verifier(&jwks, 10_000);
    let uncached = verifier(&jwks, 0);

    let run = |tokens: &TokenCache, v: &Arc<JwtVerifier>, h: &axum::http::HeaderMap| {
        authenticate_evaluator(tokens, Some(v), h, KINDS)
            .now_or_never()
            .expect("no waiting once the key is known")
            .is_ok()
    };
    let static_headers = headers(&secret);
    let jwt_headers = headers(&jwt);
    assert!(run(&tokens, &cached, &static_headers));
    assert!(run(&tokens, &cached, &jwt_headers));
    assert!(run(&tokens, &uncached, &jwt_headers));

    let mut g = c.benchmark_group("authenticate_evaluator");
    g.bench_function("static token", |b| {
        b.iter(|| run(&tokens, &cached, black_box(&static_headers)))
    });
    g.bench_function(format!("JWT, cached ({} bytes)", jwt.len()), |b| {
        b.iter(|| run(&tokens, &cached, black_box(&jwt_headers)))
    });
    g.bench_function("JWT, verified (EdDSA)", |b| {
        b.iter(|| run(&tokens, &uncached, black_box(&jwt_headers)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
