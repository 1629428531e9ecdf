//! The OpenAPI document describes what the server really does: it is OpenAPI 3.1, every
//! `$ref` resolves, every route the code serves is documented, and real responses of a running
//! server validate against the documented schema of their status and content type.

mod support;

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{Reply, TestServer};

const P: &str = "/api/v1/projects/shop";

async fn document(s: &TestServer) -> Value {
    Reply::of(s.client.get(s.url("/openapi.json")))
        .await
        .expect(StatusCode::OK)
        .body
}

/// Every `"$ref"` string anywhere in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// The documented schema of `method path` answering `status` as `content_type`, as a
/// standalone JSON Schema (2020-12) whose `$ref`s resolve against the document's components.
fn response_schema(
    doc: &Value,
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
) -> Value {
    let response = &doc["paths"][path][method]["responses"][status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path}: status {status} is not documented"
    );
    let schema = &response["content"][content_type]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status}: content type {content_type} is not documented: {response:#}"
    );
    json!({"allOf": [schema], "components": doc["components"]})
}

fn validate(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(schema)
        .expect("the documented schema compiles");
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Asserts `reply` validates against what the document says `method path` answers with its
/// status and content type.
#[track_caller]
fn conforms(doc: &Value, method: &str, path: &str, reply: &Reply) {
    let content_type = reply
        .header("content-type")
        .map(|c| c.split(';').next().unwrap_or(c).trim().to_string())
        .unwrap_or_else(|| panic!("{method} {path}: no content type: {reply:?}"));
    let schema = response_schema(doc, method, path, reply.status.as_u16(), &content_type);
    let errors = validate(&schema, &reply.body);
    assert!(
        errors.is_empty(),
        "{method} {path} {}: the response does not match the document:\n{}\nbody: {:#}",
        reply.status,
        errors.join("\n"),
        reply.body
    );
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_every_ref_resolves() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 50, "only {} $refs", found.len());
    for r in found {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r}: only local references are expected"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
    // Every operation: an id, a success response, and a schema for each documented body.
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id.to_string()), "operationId {id} twice");
            let responses = op["responses"].as_object().expect("responses");
            // 3xx for the single sign-on redirects.
            assert!(
                responses
                    .keys()
                    .any(|s| s.starts_with('2') || s.starts_with('3')),
                "{method} {path}: no success response"
            );
            for (status, response) in responses {
                if let Some(content) = response["content"].as_object() {
                    for (ct, media) in content {
                        assert!(
                            media["schema"].is_object(),
                            "{method} {path} {status} {ct}: no schema"
                        );
                        // Each schema compiles on its own.
                        validate(
                            &response_schema(
                                &doc,
                                method,
                                path,
                                status.parse().expect("status"),
                                ct,
                            ),
                            &Value::Null,
                        );
                    }
                }
            }
        }
    }
    // Query parameters of api.md are documented.
    let params = |method: &str, path: &str| -> BTreeSet<String> {
        doc["paths"][path][method]["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                format!(
                    "{}:{}",
                    p["in"].as_str().unwrap_or(""),
                    p["name"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    for list in [
        "/api/v1/projects",
        "/api/v1/projects/{project}/environments",
        "/api/v1/projects/{project}/flags",
        "/api/v1/projects/{project}/segments",
        "/api/v1/tokens",
    ] {
        let p = params("get", list);
        assert!(
            p.contains("query:limit") && p.contains("query:cursor"),
            "{list}: {p:?}"
        );
    }
    let flags = params("get", "/api/v1/projects/{project}/flags");
    for q in ["q", "tag", "owner", "archived"] {
        assert!(
            flags.contains(&format!("query:{q}")),
            "flags ?{q}: {flags:?}"
        );
    }
    let insights = params("get", "/api/v1/projects/{project}/flags/{flag}/insights");
    for q in ["env", "from", "to"] {
        assert!(insights.contains(&format!("query:{q}")), "insights ?{q}");
    }
    let bulk = params("post", "/ofrep/v1/evaluate/flags");
    assert!(bulk.contains("query:flagConfigEtag") && bulk.contains("query:flagConfigLastModified"));
    assert!(bulk.contains("header:If-None-Match"));
    assert!(params("get", "/ofrep/v1/events").contains("query:ticket"));
    assert!(params("get", "/api/v1/sdk/config").contains("header:If-None-Match"));
    for (method, path) in [
        ("put", "/api/v1/projects/{project}/flags/{flag}"),
        (
            "patch",
            "/api/v1/projects/{project}/flags/{flag}/environments/{env}",
        ),
        ("delete", "/api/v1/projects/{project}/segments/{segment}"),
    ] {
        assert!(
            params(method, path).contains("header:If-Match"),
            "{method} {path}"
        );
    }
    let patch =
        &doc["paths"]["/api/v1/projects/{project}/flags/{flag}/environments/{env}"]["patch"];
    assert!(patch["requestBody"]["content"]["application/merge-patch+json"].is_object());
    assert!(
        doc["paths"]["/api/v1/projects/{project}"]["get"]["responses"]["200"]["headers"]["ETag"]
            .is_object()
    );
}

#[tokio::test]
async fn the_schemas_reject_what_serde_would_not_produce() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    let flag = response_schema(
        &doc,
        "get",
        "/api/v1/projects/{project}/flags/{flag}",
        200,
        "application/json",
    );
    let mut good = json!({
        "key": "f", "name": "", "description": "", "owner": "", "tags": [], "temporary": false,
        "archived": false, "type": "boolean",
        "variants": [{"key": "on", "value": true}, {"key": "off", "value": false}],
        "environments": {"production": {"enabled": true, "off_variant": "off",
            "prerequisites": [], "targets": [], "rules": [
                {"id": "r", "conditions": [{"segment": "beta"}], "serve": {"variant": "on"}}],
            "default": {"rollout": {"weights": [{"variant": "on", "weight": 100000}]}}}},
        "version": 1
    });
    assert_eq!(validate(&flag, &good), Vec::<String>::new());
    for (pointer, bad) in [
        ("/type", json!("bool")),
        (
            "/environments/production/default",
            json!({"variant": "on", "rollout": {"weights": []}}),
        ),
        (
            "/environments/production/rules/0/conditions/0",
            json!({"segment": "beta", "operator": "in"}),
        ),
        (
            "/environments/production/rules/0/conditions/0",
            json!({"attribute": "plan", "operator": "like"}),
        ),
        ("/unknown", json!(1)),
    ] {
        let original = good.clone();
        match good.pointer_mut(pointer) {
            Some(slot) => *slot = bad,
            None => {
                good["unknown"] = bad;
            }
        }
        assert!(
            !validate(&flag, &good).is_empty(),
            "{pointer} should be rejected"
        );
        good = original;
    }
}

/// `.route("path", get(a).post(b))` calls in the route modules (and `metrics`), with the
/// prefix their router is nested under: what the code serves, found without running it.
fn served_routes() -> BTreeSet<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
    let mut served = BTreeSet::new();
    let mut files: Vec<_> = std::fs::read_dir(format!("{dir}/routes"))
        .expect("src/routes")
        .map(|e| e.expect("entry").path())
        .collect();
    files.push(format!("{dir}/openapi.rs").into());
    files.push(format!("{dir}/metrics/mod.rs").into());
    for file in files {
        let name = file
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        let prefix = match name.as_str() {
            "ofrep" | "health" | "openapi" | "sse" | "mod" => "",
            _ => "/api/v1",
        };
        let text = std::fs::read_to_string(&file).expect("read a route module");
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let open = rest.find('"').expect("a path literal");
            let close = open + 1 + rest[open + 1..].find('"').expect("end of the path");
            let path = &rest[open + 1..close];
            // The method router: up to the parenthesis closing `.route(`.
            let mut depth = 1;
            let end = rest
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '(' => 1,
                        ')' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map(|(i, _)| i)
                .expect("end of .route(");
            let handlers = &rest[close..end];
            for method in ["get", "post", "put", "patch", "delete"] {
                let called = handlers.match_indices(&format!("{method}(")).any(|(i, _)| {
                    i == 0 || !handlers[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if called {
                    served.insert((method.to_string(), format!("{prefix}{path}")));
                }
            }
            rest = &rest[end..];
        }
    }
    served
}

#[tokio::test]
async fn every_served_route_is_documented_and_nothing_else() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flat_map(|ops| ops.keys())
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let served = served_routes();
    assert!(served.len() >= 30, "the scan found only {served:?}");
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
}

#[tokio::test]
async fn real_responses_match_the_documented_schemas() {
    let s = TestServer::start().await;
    let doc = document(&s).await;
    let d = &doc;

    let r = s
        .post("/api/v1/projects", &json!({"key": "shop", "name": "Shop"}))
        .await;
    conforms(
        d,
        "post",
        "/api/v1/projects",
        &r.expect(StatusCode::CREATED),
    );
    let r = s.get(P).await.expect(StatusCode::OK);
    conforms(d, "get", "/api/v1/projects/{project}", &r);
    let r = s
        .get("/api/v1/projects?limit=1")
        .await
        .expect(StatusCode::OK);
    conforms(d, "get", "/api/v1/projects", &r);
    let r = s
        .get(&format!("{P}/environments?limit=1"))
        .await
        .expect(StatusCode::OK);
    assert!(r.body["next_cursor"].is_string(), "{}", r.body);
    conforms(d, "get", "/api/v1/projects/{project}/environments", &r);
    let r = s.get(&format!("{P}/environments/production")).await;
    conforms(
        d,
        "get",
        "/api/v1/projects/{project}/environments/{env}",
        &r.expect(StatusCode::OK),
    );

    let r = s
        .post(
            &format!("{P}/segments"),
            &json!({"key": "beta", "included": ["u-1"], "rules": [[{"attribute": "plan", "operator": "in", "values": ["pro"]}]]}),
        )
        .await
        .expect(StatusCode::CREATED);
    conforms(d, "post", "/api/v1/projects/{project}/segments", &r);
    let r = s
        .post(
            &format!("{P}/flags"),
            &json!({"key": "gate", "type": "boolean",
        "environments": {"production": {"enabled": true, "default": {"variant": "on"}}}}),
        )
        .await;
    conforms(
        d,
        "post",
        "/api/v1/projects/{project}/flags",
        &r.expect(StatusCode::CREATED),
    );
    let flag = json!({
        "key": "checkout", "name": "Checkout", "type": "string", "owner": "web", "tags": ["ui"],
        "variants": [
            {"key": "old", "value": "v1", "name": "Old"},
            {"key": "new", "value": "v2", "description": "The new one"}
        ],
        "environments": {"production": {
            "enabled": true,
            "off_variant": "old",
            "prerequisites": [{"flag": "gate", "variants": ["on"]}],
            "targets": [{"variant": "new", "values": ["u-9"]}],
            "rules": [
                {"description": "beta", "conditions": [{"segment": "beta"}], "serve": {"variant": "new"}},
                {"conditions": [
                    {"attribute": "version", "operator": "semver_gt", "values": ["1.2.0"]},
                    {"attribute": "country", "operator": "in", "values": ["NZ", "AU"], "negate": true}
                 ],
                 "serve": {"rollout": {"bucket_by": "org.id", "salt": "s1",
                    "weights": [{"variant": "old", "weight": 50000}, {"variant": "new", "weight": 50000}]}}}
            ],
            "default": {"variant": "old"}
        }}
    });
    let r = s
        .post(&format!("{P}/flags"), &flag)
        .await
        .expect(StatusCode::CREATED);
    conforms(d, "post", "/api/v1/projects/{project}/flags", &r);
    let r = s
        .get(&format!("{P}/flags/checkout"))
        .await
        .expect(StatusCode::OK);
    conforms(d, "get", "/api/v1/projects/{project}/flags/{flag}", &r);
    let config = "/api/v1/projects/{project}/flags/{flag}/environments/{env}";
    let r = s
        .get(&format!("{P}/flags/checkout/environments/production"))
        .await
        .expect(StatusCode::OK);
    conforms(d, "get", config, &r);
    let r = s
        .patch(
            &format!("{P}/flags/gate/environments/development"),
            &json!({"enabled": true}),
        )
        .await
        .expect(StatusCode::OK);
    conforms(d, "patch", config, &r);

    // Paging: the first page hands out a cursor, the last one `null`.
    let r = s
        .get(&format!("{P}/flags?limit=1"))
        .await
        .expect(StatusCode::OK);
    let cursor = r.body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    conforms(d, "get", "/api/v1/projects/{project}/flags", &r);
    let r = s
        .get(&format!("{P}/flags?limit=5&cursor={cursor}"))
        .await
        .expect(StatusCode::OK);
    assert!(r.body["next_cursor"].is_null(), "{}", r.body);
    conforms(d, "get", "/api/v1/projects/{project}/flags", &r);
    let r = s.get(&format!("{P}/segments")).await.expect(StatusCode::OK);
    conforms(d, "get", "/api/v1/projects/{project}/segments", &r);

    // Problems: 422 with errors, 404, 409, 412.
    let r = s
        .post(
            &format!("{P}/flags"),
            &json!({"key": "Bad Key", "type": "boolean"}),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY);
    conforms(d, "post", "/api/v1/projects/{project}/flags", &r);
    let r = s
        .get(&format!("{P}/flags/nope"))
        .await
        .problem(StatusCode::NOT_FOUND);
    conforms(d, "get", "/api/v1/projects/{project}/flags/{flag}", &r);
    let r = s
        .delete(&format!("{P}/flags/gate"))
        .await
        .problem(StatusCode::CONFLICT);
    conforms(d, "delete", "/api/v1/projects/{project}/flags/{flag}", &r);
    let r = s
        .put_if(&format!("{P}/segments/beta"), 99, &json!({"key": "beta"}))
        .await
        .problem(StatusCode::PRECONDITION_FAILED);
    conforms(
        d,
        "put",
        "/api/v1/projects/{project}/segments/{segment}",
        &r,
    );

    let r = s
        .post(
            &format!("{P}/environments/production/evaluate"),
            &json!({"context": {"targetingKey": "u-1", "org": {"id": 7}}}),
        )
        .await
        .expect(StatusCode::OK);
    conforms(
        d,
        "post",
        "/api/v1/projects/{project}/environments/{env}/evaluate",
        &r,
    );
    let r = s
        .get(&format!("{P}/flags/checkout/insights?env=production"))
        .await
        .expect(StatusCode::OK);
    conforms(
        d,
        "get",
        "/api/v1/projects/{project}/flags/{flag}/insights",
        &r,
    );

    // Tokens: the secret once, then lists without it.
    let r = s
        .post(
            "/api/v1/tokens",
            &json!({"name": "web", "kind": "server", "project": "shop", "environment": "production"}),
        )
        .await
        .expect(StatusCode::CREATED);
    conforms(d, "post", "/api/v1/tokens", &r);
    let server_token = r.body["secret"].as_str().expect("secret").to_string();
    let r = s.get("/api/v1/tokens?limit=1").await.expect(StatusCode::OK);
    conforms(d, "get", "/api/v1/tokens", &r);

    // The SDK rule set and OFREP, with the server token.
    let r = Reply::of(s.as_token(&server_token, Method::GET, "/api/v1/sdk/config"))
        .await
        .expect(StatusCode::OK);
    conforms(d, "get", "/api/v1/sdk/config", &r);
    let ofrep = |path: &str, body: Value| s.as_token(&server_token, Method::POST, path).json(&body);
    let ctx = json!({"context": {"targetingKey": "u-1", "plan": "pro"}});
    let r = Reply::of(ofrep("/ofrep/v1/evaluate/flags/checkout", ctx.clone()))
        .await
        .expect(StatusCode::OK);
    conforms(d, "post", "/ofrep/v1/evaluate/flags/{key}", &r);
    let r = Reply::of(ofrep("/ofrep/v1/evaluate/flags/nope", ctx.clone()))
        .await
        .expect(StatusCode::NOT_FOUND);
    conforms(d, "post", "/ofrep/v1/evaluate/flags/{key}", &r);
    let r = Reply::of(ofrep(
        "/ofrep/v1/evaluate/flags/checkout",
        json!({"context": 1}),
    ))
    .await
    .expect(StatusCode::BAD_REQUEST);
    conforms(d, "post", "/ofrep/v1/evaluate/flags/{key}", &r);
    let r = Reply::of(ofrep("/ofrep/v1/evaluate/flags", ctx.clone()))
        .await
        .expect(StatusCode::OK);
    conforms(d, "post", "/ofrep/v1/evaluate/flags", &r);
    let r = Reply::of(
        s.client
            .post(s.url("/ofrep/v1/evaluate/flags"))
            .bearer_auth("not-a-token")
            .json(&ctx),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED);
    conforms(d, "post", "/ofrep/v1/evaluate/flags", &r);

    let r = Reply::of(s.client.get(s.url("/health/ready")))
        .await
        .expect(StatusCode::OK);
    conforms(d, "get", "/health/ready", &r);
}
