//! The conventions of api.md over real HTTP: every status code the admin API produces, as
//! `application/problem+json` where it is an error, with `ETag` and `X-Request-Id`.

mod support;

use hata_server::ServerConfig;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{Reply, TestServer};

const P: &str = "/api/v1/projects/shop";

fn boolean_flag(key: &str) -> Value {
    json!({"key": key, "type": "boolean"})
}

#[tokio::test]
async fn success_statuses_carry_etags() {
    let s = TestServer::start().await;
    let created = s
        .post("/api/v1/projects", &json!({"key": "shop", "name": "Shop"}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(created.etag(), 1);
    assert!(created
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    assert_eq!(created.body["key"], "shop");

    let read = s.get(P).await.expect(StatusCode::OK);
    assert_eq!(read.etag(), 1);

    let flag = s
        .post(&format!("{P}/flags"), &boolean_flag("dark-mode"))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(flag.etag(), 1);
    assert_eq!(flag.body["version"], 1);
    let flag_get = s
        .get(&format!("{P}/flags/dark-mode"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(flag_get.etag(), 1);
    let config = s
        .get(&format!("{P}/flags/dark-mode/environments/production"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(config.etag(), 1, "a config's ETag is its flag's version");

    let env = s
        .get(&format!("{P}/environments/production"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(env.etag(), 1);
    let segment = s
        .post(&format!("{P}/segments"), &json!({"key": "beta"}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(segment.etag(), 1);

    let deleted = s
        .delete(&format!("{P}/flags/dark-mode"))
        .await
        .expect(StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, Value::Null, "204 has no body");
    s.get(&format!("{P}/flags/dark-mode"))
        .await
        .problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn malformed_json_is_400_and_wrong_shapes_are_422() {
    let s = TestServer::start().await;
    for body in ["{\"key\": ", "not json", "", "{\"key\": \"a\"} trailing"] {
        let r = Reply::of(
            s.admin(Method::POST, "/api/v1/projects")
                .header("content-type", "application/json")
                .body(body),
        )
        .await
        .problem(StatusCode::BAD_REQUEST);
        assert!(r.body.get("errors").is_none(), "{}", r.body);
    }
    // Well-formed JSON of the wrong shape is invalid content, at the offending field.
    s.post("/api/v1/projects", &json!({"key": 5}))
        .await
        .invalid_at("key", "");
    let r = s
        .post("/api/v1/projects", &json!({"key": "shop", "colour": "red"}))
        .await
        .invalid_at("colour", "unknown field");
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("colour")),
        "the detail names the field: {}",
        r.body
    );
    s.project("shop").await;
    s.post(
        &format!("{P}/flags"),
        &json!({"key": "f", "type": "boolean", "tags": ["a", 7]}),
    )
    .await
    .invalid_at("tags[1]", "");
}

#[tokio::test]
async fn missing_or_bad_credentials_are_401() {
    let s = TestServer::start().await;
    // A past expiry is refused at creation, so this one expires a moment after it.
    let soon = (time::OffsetDateTime::now_utc() + time::Duration::milliseconds(500))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let expired = s
        .post(
            "/api/v1/tokens",
            &json!({"name": "old", "kind": "admin", "expires_at": soon}),
        )
        .await
        .expect(StatusCode::CREATED);
    let expired = expired.body["secret"].as_str().expect("secret").to_string();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let fresh = s
        .post(
            "/api/v1/tokens",
            &json!({"name": "new", "kind": "admin", "expires_at": "2999-01-01T00:00:00+09:00"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let fresh = fresh.body["secret"].as_str().expect("secret").to_string();

    let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
        ("no token", s.client.get(s.url("/api/v1/projects"))),
        (
            "bad token",
            s.as_token("hata_admin_nope", Method::GET, "/api/v1/projects"),
        ),
        (
            "expired token",
            s.as_token(&expired, Method::GET, "/api/v1/projects"),
        ),
        (
            "not a bearer token",
            s.client
                .get(s.url("/api/v1/projects"))
                .header("authorization", format!("Basic {}", s.token)),
        ),
        (
            "no token on a write",
            s.client
                .post(s.url("/api/v1/projects"))
                .json(&json!({"key": "x"})),
        ),
    ];
    for (what, request) in cases {
        let r = Reply::of(request).await.problem(StatusCode::UNAUTHORIZED);
        assert_eq!(r.header("www-authenticate"), Some("Bearer"), "{what}");
    }
    // Nothing was written by the refused write.
    let projects = s.get("/api/v1/projects").await.expect(StatusCode::OK);
    assert_eq!(projects.body["items"], json!([]));
    // An unexpired token works, and so does X-API-Key.
    Reply::of(s.as_token(&fresh, Method::GET, "/api/v1/projects"))
        .await
        .expect(StatusCode::OK);
    Reply::of(
        s.client
            .get(s.url("/api/v1/projects"))
            .header("x-api-key", &s.token),
    )
    .await
    .expect(StatusCode::OK);
}

#[tokio::test]
async fn evaluation_tokens_are_403_on_the_admin_api() {
    let s = TestServer::start().await;
    s.project("shop").await;
    for kind in ["server", "client"] {
        let token = s
            .post(
                "/api/v1/tokens",
                &json!({"name": kind, "kind": kind, "project": "shop", "environment": "production"}),
            )
            .await
            .expect(StatusCode::CREATED);
        let secret = token.body["secret"].as_str().expect("secret");
        for (method, path) in [
            (Method::GET, "/api/v1/projects"),
            (Method::GET, P),
            (Method::GET, "/api/v1/tokens"),
            (Method::DELETE, P),
        ] {
            let r = Reply::of(s.as_token(secret, method.clone(), path))
                .await
                .problem(StatusCode::FORBIDDEN);
            assert!(
                r.body["detail"].as_str().is_some_and(|d| d.contains(kind)),
                "{kind} {method} {path}: {}",
                r.body
            );
        }
    }
    s.get(P).await.expect(StatusCode::OK);
}

#[tokio::test]
async fn missing_resources_are_404() {
    let s = TestServer::start().await;
    s.project("shop").await;
    s.flag("shop", boolean_flag("dark-mode")).await;
    for path in [
        "/api/v1/projects/nope".to_string(),
        "/api/v1/projects/nope/environments".to_string(),
        "/api/v1/projects/nope/flags".to_string(),
        "/api/v1/projects/nope/segments".to_string(),
        format!("{P}/environments/staging"),
        format!("{P}/flags/nope"),
        format!("{P}/flags/dark-mode/environments/staging"),
        format!("{P}/segments/nope"),
        "/api/v1/no-such-endpoint".to_string(),
    ] {
        s.get(&path).await.problem(StatusCode::NOT_FOUND);
    }
    for path in [
        format!("{P}/flags/nope"),
        format!("{P}/segments/nope"),
        format!("{P}/environments/staging"),
        "/api/v1/projects/nope".to_string(),
        "/api/v1/tokens/tok_nope".to_string(),
    ] {
        s.delete(&path).await.problem(StatusCode::NOT_FOUND);
    }
    s.put(&format!("{P}/flags/nope"), &boolean_flag("nope"))
        .await
        .problem(StatusCode::NOT_FOUND);
    s.patch(
        &format!("{P}/flags/dark-mode/environments/staging"),
        &json!({"enabled": true}),
    )
    .await
    .problem(StatusCode::NOT_FOUND);
    s.post("/api/v1/projects/nope/flags", &boolean_flag("x"))
        .await
        .problem(StatusCode::NOT_FOUND);
    s.post(
        &format!("{P}/environments/staging/evaluate"),
        &json!({"context": {}}),
    )
    .await
    .problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unserved_methods_are_405_with_allow() {
    let s = TestServer::start().await;
    s.project("shop").await;
    for (method, path, allow) in [
        (Method::PATCH, "/api/v1/projects", "GET,HEAD,POST"),
        (Method::POST, P, "GET,HEAD,PUT,DELETE"),
        (Method::DELETE, "/api/v1/tokens", "GET,HEAD,POST"),
        (Method::PUT, "/health/ready", "GET,HEAD"),
    ] {
        let r = Reply::of(s.admin(method.clone(), path).json(&json!({})))
            .await
            .problem(StatusCode::METHOD_NOT_ALLOWED);
        let mut got: Vec<&str> = r
            .header("allow")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .collect();
        let mut want: Vec<&str> = allow.split(',').collect();
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want, "{method} {path}");
    }
}

#[tokio::test]
async fn duplicate_keys_are_409() {
    let s = TestServer::start().await;
    s.project("shop").await;
    s.flag("shop", boolean_flag("dark-mode")).await;
    s.post(&format!("{P}/segments"), &json!({"key": "beta"}))
        .await
        .expect(StatusCode::CREATED);
    for (path, body) in [
        ("/api/v1/projects".to_string(), json!({"key": "shop"})),
        (format!("{P}/environments"), json!({"key": "production"})),
        (format!("{P}/flags"), boolean_flag("dark-mode")),
        (format!("{P}/segments"), json!({"key": "beta"})),
    ] {
        let r = s.post(&path, &body).await.problem(StatusCode::CONFLICT);
        let key = body["key"].as_str().unwrap_or_default();
        assert!(
            r.body["detail"].as_str().is_some_and(|d| d.contains(key)),
            "409 names the key: {}",
            r.body
        );
    }
    // The originals are untouched.
    let flag = s
        .get(&format!("{P}/flags/dark-mode"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(flag.etag(), 1);
}

fn dependants(r: &Reply) -> Vec<String> {
    r.body["dependants"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn deleting_what_others_depend_on_is_409_naming_the_dependants() {
    let s = TestServer::start().await;
    s.project("shop").await;
    s.post(
        &format!("{P}/segments"),
        &json!({"key": "beta", "included": ["u1"]}),
    )
    .await
    .expect(StatusCode::CREATED);
    s.post(
        &format!("{P}/segments"),
        &json!({"key": "beta-plus", "rules": [[{"segment": "beta"}]]}),
    )
    .await
    .expect(StatusCode::CREATED);
    s.flag("shop", boolean_flag("base")).await;
    s.flag(
        "shop",
        json!({"key": "checkout", "type": "boolean", "environments": {"production": {
            "enabled": true,
            "prerequisites": [{"flag": "base", "variants": ["on"]}],
            "rules": [{"conditions": [{"segment": "beta"}], "serve": {"variant": "on"}}],
        }}}),
    )
    .await;

    let r = s
        .delete(&format!("{P}/segments/beta"))
        .await
        .problem(StatusCode::CONFLICT);
    let d = dependants(&r);
    assert!(
        d.iter()
            .any(|d| d.contains("checkout") && d.contains("production")),
        "{d:?}"
    );
    assert!(d.iter().any(|d| d.contains("beta-plus")), "{d:?}");
    let detail = r.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("checkout") && detail.contains("beta-plus"),
        "{detail}"
    );

    let r = s
        .delete(&format!("{P}/flags/base"))
        .await
        .problem(StatusCode::CONFLICT);
    let d = dependants(&r);
    assert!(
        d.iter()
            .any(|d| d.contains("checkout") && d.contains("production")),
        "{d:?}"
    );
    assert!(r.body["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("checkout"));

    // Archiving a prerequisite is refused the same way.
    let mut base = s
        .get(&format!("{P}/flags/base"))
        .await
        .expect(StatusCode::OK)
        .body;
    base["archived"] = json!(true);
    let r = s
        .put(&format!("{P}/flags/base"), &base)
        .await
        .problem(StatusCode::CONFLICT);
    assert!(dependants(&r).iter().any(|d| d.contains("checkout")));

    // Tokens bound to an environment or project block deleting it.
    let token = s
        .post(
            "/api/v1/tokens",
            &json!({"name": "backend", "kind": "server", "project": "shop", "environment": "development"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let id = token.body["id"].as_str().expect("id").to_string();
    for path in [format!("{P}/environments/development"), P.to_string()] {
        let r = s.delete(&path).await.problem(StatusCode::CONFLICT);
        assert!(
            dependants(&r).iter().any(|d| d.contains(&id)),
            "{path}: {}",
            r.body
        );
    }
    // Protected environments cannot be deleted.
    let mut dev = s.get(&format!("{P}/environments/development")).await.body;
    dev["protected"] = json!(true);
    s.put(&format!("{P}/environments/development"), &dev)
        .await
        .expect(StatusCode::OK);
    s.delete(&format!("{P}/environments/development"))
        .await
        .problem(StatusCode::CONFLICT);

    // Everything is still there, and deleting in dependency order works.
    s.get(&format!("{P}/segments/beta"))
        .await
        .expect(StatusCode::OK);
    s.get(&format!("{P}/flags/base"))
        .await
        .expect(StatusCode::OK);
    s.delete(&format!("/api/v1/tokens/{id}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    s.delete(&format!("{P}/flags/checkout"))
        .await
        .expect(StatusCode::NO_CONTENT);
    s.delete(&format!("{P}/flags/base"))
        .await
        .expect(StatusCode::NO_CONTENT);
    s.delete(&format!("{P}/segments/beta-plus"))
        .await
        .expect(StatusCode::NO_CONTENT);
    s.delete(&format!("{P}/segments/beta"))
        .await
        .expect(StatusCode::NO_CONTENT);
    s.delete(P).await.expect(StatusCode::NO_CONTENT);
    s.get(P).await.problem(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn stale_if_match_is_412_and_changes_nothing() {
    let s = TestServer::start().await;
    s.project("shop").await;
    s.flag("shop", boolean_flag("dark-mode")).await;
    s.post(&format!("{P}/segments"), &json!({"key": "beta"}))
        .await
        .expect(StatusCode::CREATED);
    // Move every resource to version 2, so that "1" is stale.
    let project = json!({"key": "shop", "name": "Shop 2"});
    let env = json!({"key": "development", "name": "Dev 2"});
    let flag = json!({"key": "dark-mode", "type": "boolean", "name": "Dark 2"});
    let segment = json!({"key": "beta", "included": ["u2"]});
    let config = json!({"enabled": true});
    let flag_path = format!("{P}/flags/dark-mode");
    let config_path = format!("{flag_path}/environments/production");
    let env_path = format!("{P}/environments/development");
    let segment_path = format!("{P}/segments/beta");
    for (path, body) in [
        (P, &project),
        (&env_path, &env),
        (&flag_path, &flag),
        (&segment_path, &segment),
    ] {
        assert_eq!(
            s.put_if(path, 1, body).await.expect(StatusCode::OK).etag(),
            2,
            "{path}"
        );
    }
    let revision_before = s.revision("shop", "production").await;

    let stale = |method: Method, path: &str, body: Option<&Value>| {
        let mut r = s.admin(method, path).header("if-match", "\"1\"");
        if let Some(b) = body {
            r = r.json(b);
        }
        r
    };
    let cases: Vec<(String, reqwest::RequestBuilder)> = vec![
        (
            P.to_string(),
            stale(Method::PUT, P, Some(&json!({"key": "shop", "name": "X"}))),
        ),
        (P.to_string(), stale(Method::DELETE, P, None)),
        (
            env_path.clone(),
            stale(
                Method::PUT,
                &env_path,
                Some(&json!({"key": "development", "name": "X"})),
            ),
        ),
        (env_path.clone(), stale(Method::DELETE, &env_path, None)),
        (
            flag_path.clone(),
            stale(
                Method::PUT,
                &flag_path,
                Some(&json!({"key": "dark-mode", "type": "boolean", "name": "X"})),
            ),
        ),
        (flag_path.clone(), stale(Method::DELETE, &flag_path, None)),
        (
            flag_path.clone(),
            stale(
                Method::PUT,
                &config_path,
                Some(&json!({"enabled": false, "off_variant": "on"})),
            ),
        ),
        (
            flag_path.clone(),
            stale(Method::PATCH, &config_path, None)
                .header("content-type", "application/merge-patch+json")
                .body(r#"{"enabled": false}"#),
        ),
        (
            segment_path.clone(),
            stale(
                Method::PUT,
                &segment_path,
                Some(&json!({"key": "beta", "included": ["x"]})),
            ),
        ),
        (
            segment_path.clone(),
            stale(Method::DELETE, &segment_path, None),
        ),
    ];
    for (resource, request) in cases {
        let before = s.get(&resource).await.expect(StatusCode::OK);
        let r = Reply::of(request)
            .await
            .problem(StatusCode::PRECONDITION_FAILED);
        assert!(
            r.body["detail"].as_str().is_some_and(|d| d.contains('2')),
            "names the current version: {}",
            r.body
        );
        let after = s.get(&resource).await.expect(StatusCode::OK);
        assert_eq!(before.body, after.body, "{resource} changed after a 412");
        assert_eq!(after.etag(), 2);
    }
    assert_eq!(
        s.revision("shop", "production").await,
        revision_before,
        "no revision bump"
    );

    // A current If-Match (or `*`) applies; one naming no version this server issued is a 412.
    let r = s
        .put_if(&config_path, 2, &config)
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.etag(), 3);
    assert_eq!(r.body["enabled"], true);
    Reply::of(
        s.admin(Method::PATCH, &config_path)
            .header("if-match", "*")
            .json(&json!({"enabled": false})),
    )
    .await
    .expect(StatusCode::OK);
    Reply::of(
        s.admin(Method::PATCH, &config_path)
            .header("if-match", "\"abc\"")
            .json(&json!({"enabled": true})),
    )
    .await
    .problem(StatusCode::PRECONDITION_FAILED);
    let flag = s.get(&flag_path).await.expect(StatusCode::OK);
    assert_eq!(flag.etag(), 4);
    assert_eq!(flag.body["environments"]["production"]["enabled"], false);
}

/// RFC 9110 §13.1.1: `If-Match` compares strongly (a weak tag never matches) and may list
/// several tags (the write applies if any is current).
#[tokio::test]
async fn if_match_compares_strongly_and_takes_lists() {
    let s = TestServer::start().await;
    s.project("shop").await;
    s.flag("shop", boolean_flag("dark-mode")).await;
    let flag_path = format!("{P}/flags/dark-mode");
    let config_path = format!("{flag_path}/environments/production");
    let patch = |if_match: &[&str], enabled: bool| {
        let mut r = s
            .admin(Method::PATCH, &config_path)
            .header("content-type", "application/merge-patch+json")
            .body(json!({"enabled": enabled}).to_string());
        for value in if_match {
            r = r.header("if-match", *value);
        }
        Reply::of(r)
    };
    let version = || async { s.get(&flag_path).await.expect(StatusCode::OK).etag() };

    // A weak tag never matches, even the current version's.
    for weak in [r#"W/"1""#, r#"W/"1", W/"2""#] {
        patch(&[weak], true)
            .await
            .problem(StatusCode::PRECONDITION_FAILED);
        assert_eq!(version().await, 1, "{weak} changed the flag");
    }
    // A list matches when any strong tag is current.
    let r = patch(&[r#""999", "1""#], true).await.expect(StatusCode::OK);
    assert_eq!(r.etag(), 2);
    let r = patch(&[r#"W/"2", "2""#], false)
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.etag(), 3);
    // … also when the list is split over several header lines.
    let r = patch(&[r#""999""#, r#""3""#], true)
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.etag(), 4);
    // No strong tag current: 412.
    patch(&[r#""999", "20", W/"4""#], false)
        .await
        .problem(StatusCode::PRECONDITION_FAILED);
    // Not a list of entity tags (an empty value too), even beside a current tag: it names no
    // version, so the condition is false (412), never an unconditional write.
    for bad in [r#""4" "5""#, r#"4"#, r#""4", *"#, r#""4"#, r#"W/4"#, ""] {
        patch(&[bad], false)
            .await
            .problem(StatusCode::PRECONDITION_FAILED);
        patch(&[r#""4""#, bad], false)
            .await
            .problem(StatusCode::PRECONDITION_FAILED);
    }
    assert_eq!(version().await, 4, "nothing changed since");
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let s = TestServer::start_with(ServerConfig {
        body_limit: 1024,
        ..ServerConfig::default()
    })
    .await;
    s.project("shop").await;
    let big = json!({"key": "big", "type": "boolean", "description": "x".repeat(2000)});
    let r = s
        .post(&format!("{P}/flags"), &big)
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.body.get("errors").is_none());
    // Without a Content-Length (chunked), the limit holds as the body streams in.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(big.to_string().into_bytes())];
    let stream = futures_util_stream(chunks);
    Reply::of(
        s.admin(Method::POST, &format!("{P}/flags"))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stream)),
    )
    .await
    .problem(StatusCode::PAYLOAD_TOO_LARGE);
    // PUT and PATCH are limited too.
    s.flag("shop", boolean_flag("small")).await;
    s.put(
        &format!("{P}/flags/small"),
        &json!({"key": "small", "type": "boolean", "name": "y".repeat(2000)}),
    )
    .await
    .problem(StatusCode::PAYLOAD_TOO_LARGE);
    s.patch(
        &format!("{P}/flags/small/environments/production"),
        &json!({"rules": [{"description": "z".repeat(2000), "serve": {"variant": "on"}}]}),
    )
    .await
    .problem(StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing was written; a body under the limit is fine.
    s.get(&format!("{P}/flags/big"))
        .await
        .problem(StatusCode::NOT_FOUND);
    let small = s
        .get(&format!("{P}/flags/small"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(small.etag(), 1);
    s.flag(
        "shop",
        json!({"key": "big", "type": "boolean", "description": "x".repeat(500)}),
    )
    .await;
}

/// A one-shot stream of chunks for `reqwest::Body::wrap_stream`.
fn futures_util_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + Sync + 'static {
    futures::stream::iter(chunks)
}

#[tokio::test]
async fn invalid_content_is_422_with_json_paths() {
    let s = TestServer::start().await;
    s.project("shop").await;
    let mut flag = json!({"key": "checkout", "type": "boolean", "environments": {"production": {
        "enabled": true,
        "rules": [
            {"conditions": [{"attribute": "plan", "operator": "in", "values": ["beta"]}], "serve": {"variant": "on"}},
            {"conditions": [{"attribute": "email", "operator": "matches", "values": ["(unclosed"]}], "serve": {"variant": "on"}},
        ],
    }}});
    let r = s.post(&format!("{P}/flags"), &flag).await.invalid_at(
        "environments.production.rules[1].conditions[0].values[0]",
        "invalid regex",
    );
    assert_eq!(
        r.fields(),
        ["environments.production.rules[1].conditions[0].values[0]"]
    );
    assert_eq!(r.body["title"], "Invalid content");
    // Several errors are all reported.
    flag["environments"]["production"]["off_variant"] = json!("maybe");
    flag["key"] = json!("Not A Key");
    let r = s
        .post(&format!("{P}/flags"), &flag)
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    let fields = r.fields();
    for f in [
        "key",
        "environments.production.off_variant",
        "environments.production.rules[1].conditions[0].values[0]",
    ] {
        assert!(fields.iter().any(|x| x == f), "{f} in {fields:?}");
    }
    s.get(&format!("{P}/flags/checkout"))
        .await
        .problem(StatusCode::NOT_FOUND);

    // On a config endpoint the body is the config, so paths start there.
    s.flag("shop", boolean_flag("checkout")).await;
    let config = &flag["environments"]["production"];
    s.put(
        &format!("{P}/flags/checkout/environments/production"),
        config,
    )
    .await
    .invalid_at("rules[1].conditions[0].values[0]", "invalid regex");
    s.patch(
        &format!("{P}/flags/checkout/environments/production"),
        &json!({"default": {"variant": "maybe"}}),
    )
    .await
    .invalid_at("default.variant", "unknown variant");
    assert_eq!(s.get(&format!("{P}/flags/checkout")).await.etag(), 1);

    // An environment key that is not a plain word stays unambiguous in a path.
    s.post(&format!("{P}/environments"), &json!({"key": "prod.eu"}))
        .await
        .expect(StatusCode::CREATED);
    let mut flag = json!({"key": "eu", "type": "boolean", "environments": {"prod.eu": {"off_variant": "maybe"}}});
    s.post(&format!("{P}/flags"), &flag)
        .await
        .invalid_at("environments[\"prod.eu\"].off_variant", "unknown variant");
    flag["environments"] = json!({});
    s.flag("shop", flag).await;
    s.put(
        &format!("{P}/flags/eu/environments/prod.eu"),
        &json!({"default": {"variant": "maybe"}}),
    )
    .await
    .invalid_at("default.variant", "unknown variant");
}

#[tokio::test]
async fn bad_query_strings_and_paths_are_400_problems() {
    let s = TestServer::start().await;
    s.project("shop").await;
    for path in [
        format!("{P}/flags?archived=maybe"),
        format!("{P}/flags?limit=ten"),
        "/api/v1/projects?limit=-1".to_string(),
        format!("{P}/segments?limit=x"),
        // A path segment that is not UTF-8 once percent-decoded.
        "/api/v1/projects/%FF".to_string(),
        format!("{P}/flags/%C3%28/environments/production"),
    ] {
        s.get(&path).await.problem(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn request_ids_are_echoed_and_recorded_in_the_change() {
    let s = TestServer::start().await;
    // Generated ids are present (checked by `Reply::of`) and differ per request.
    let a = s.get("/api/v1/projects").await;
    let b = s.get("/api/v1/projects").await;
    assert_ne!(a.header("x-request-id"), b.header("x-request-id"));
    // A caller's id is echoed, on successes and on every kind of error.
    let with_id =
        |method: Method, path: &str, id: &str| s.admin(method, path).header("x-request-id", id);
    let r = Reply::of(
        with_id(Method::POST, "/api/v1/projects", "req-create-shop").json(&json!({"key": "shop"})),
    )
    .await
    .expect(StatusCode::CREATED);
    assert_eq!(r.header("x-request-id"), Some("req-create-shop"));
    for (request, status) in [
        (
            with_id(Method::GET, "/api/v1/projects/nope", "req-404"),
            StatusCode::NOT_FOUND,
        ),
        (
            s.client
                .get(s.url("/api/v1/projects"))
                .header("x-request-id", "req-401"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            with_id(Method::POST, "/api/v1/projects", "req-422").json(&json!({"key": "BAD"})),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            with_id(Method::POST, "/api/v1/projects", "req-400").body("{"),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = Reply::of(request).await.problem(status);
        let expected = format!("req-{}", status.as_u16());
        assert_eq!(r.header("x-request-id"), Some(expected.as_str()));
    }
    // The change record of the write carries the id and the actor.
    let pool = sqlx::SqlitePool::connect(&support::database_url(s.data_dir()))
        .await
        .expect("open the database");
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT request_id, actor, action FROM changes WHERE resource_type = 'project' AND resource_key = 'shop'",
    )
    .fetch_all(&pool)
    .await
    .expect("read changes");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "req-create-shop");
    assert!(rows[0].1.starts_with("token:tok_"), "{rows:?}");
    assert_eq!(rows[0].2, "create");
    pool.close().await;

    // An id longer than 128 characters, or with anything but printable ASCII, is replaced by
    // a fresh one: never echoed, never recorded.
    let long = "x".repeat(129);
    for id in [long.as_str(), "tab\there", "caf\u{e9}"] {
        let r = Reply::of(s.admin(Method::GET, "/api/v1/projects").header(
            "x-request-id",
            reqwest::header::HeaderValue::from_bytes(id.as_bytes()).expect("header"),
        ))
        .await
        .expect(StatusCode::OK);
        let echoed = r.header("x-request-id").expect("an id");
        assert_ne!(echoed, id);
        assert!(!echoed.is_empty() && echoed.len() <= 128, "{echoed:?}");
    }
    let kept = "y".repeat(128);
    let r = Reply::of(
        s.admin(Method::GET, "/api/v1/projects")
            .header("x-request-id", &kept),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(r.header("x-request-id"), Some(kept.as_str()));
}

#[tokio::test]
async fn storage_unavailable_is_503() {
    let mut s = TestServer::start().await;
    s.project("shop").await;
    s.store.close().await;
    s.get(P).await.problem(StatusCode::SERVICE_UNAVAILABLE);
    s.post("/api/v1/projects", &json!({"key": "other"}))
        .await
        .problem(StatusCode::SERVICE_UNAVAILABLE);
    let ready = Reply::of(s.client.get(s.url("/health/ready"))).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    let live = Reply::of(s.client.get(s.url("/health/live"))).await;
    assert_eq!(live.status, StatusCode::OK);
    s.stop().await;
}

/// Requests malformed in their target (query, path, length) get the API's error shapes, never
/// a bare `text/plain` or empty answer: problem+json, and OFREP's shape on OFREP evaluations.
#[tokio::test]
async fn malformed_targets_get_problem_json_or_ofrep_shapes() {
    let s = TestServer::start().await;
    s.project("shop").await;
    s.post(&format!("{P}/flags"), &boolean_flag("dark-mode"))
        .await
        .expect(StatusCode::CREATED);
    let insights = format!("{P}/flags/dark-mode/insights");
    for query in [
        "?env=production&env=development",
        "?env=production&from=yesterday",
        "?env=production&from=%FF",
    ] {
        let r = Reply::of(s.admin(Method::GET, &format!("{insights}{query}"))).await;
        assert!(r.status.is_client_error(), "{query}: {}", r.status);
        let status = r.status;
        r.problem(status);
    }
    // A path key that does not decode to UTF-8.
    Reply::of(s.admin(Method::GET, &format!("{P}/flags/dark%FF")))
        .await
        .problem(StatusCode::BAD_REQUEST);
    // The event stream's query.
    for query in ["?ticket=a&ticket=b", "?ticket=%FF"] {
        let r = Reply::of(s.client.get(s.url(&format!("/ofrep/v1/events{query}")))).await;
        assert!(r.status.is_client_error(), "{query}: {}", r.status);
        let status = r.status;
        r.problem(status);
    }
    // An over-long target, on any path.
    let long = "x".repeat(10_000);
    for path in [
        format!("/ofrep/v1/events?ticket={long}"),
        format!("/ofrep/v1/evaluate/flags/{long}"),
        format!("{P}/flags/{long}"),
    ] {
        Reply::of(s.admin(Method::POST, &path).json(&json!({"context": {}})))
            .await
            .problem(StatusCode::URI_TOO_LONG);
    }
    // OFREP: a key that is not UTF-8 is an OFREP failure, not a problem.
    let client = s.evaluation_token("client", "shop").await;
    let r = Reply::of(
        s.as_token(&client, Method::POST, "/ofrep/v1/evaluate/flags/dark%FF")
            .json(&json!({"context": {}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body["errorCode"], "PARSE_ERROR");
}
