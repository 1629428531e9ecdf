//! Write-time validation through HTTP, table-driven: every operator of evaluation.md with good
//! and bad values, and every reference rule. hata-core's unit tests cover `validate` itself;
//! these check that the API applies it and reports each error at a path into the request body.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{Reply, TestServer};

const P: &str = "/api/v1/projects/shop";

/// Checks a reply: `None` expects success (200 or 201), `Some((field, needle))` a 422 with an
/// error at `field` whose message contains `needle`. Returns a description of any mismatch.
fn check(case: &str, r: &Reply, expected: Option<(&str, &str)>) -> Result<(), String> {
    match expected {
        None if r.status.is_success() => Ok(()),
        None => Err(format!(
            "{case}: expected success, got {} {}",
            r.status, r.body
        )),
        Some((field, needle)) => {
            let is_problem = r.header("content-type") == Some("application/problem+json");
            let errors = r.body["errors"].as_array().cloned().unwrap_or_default();
            let found = errors.iter().any(|e| {
                e["field"] == field && e["message"].as_str().is_some_and(|m| m.contains(needle))
            });
            if r.status == StatusCode::UNPROCESSABLE_ENTITY && is_problem && found {
                Ok(())
            } else {
                Err(format!(
                    "{case}: expected 422 at {field:?} mentioning {needle:?}, got {} {}",
                    r.status, r.body
                ))
            }
        }
    }
}

#[track_caller]
fn report(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

async fn fixture() -> TestServer {
    let s = TestServer::start().await;
    s.project("shop").await;
    s.post(
        &format!("{P}/segments"),
        &json!({"key": "beta", "included": ["u1"]}),
    )
    .await
    .expect(StatusCode::CREATED);
    s.flag(
        "shop",
        json!({"key": "colour", "type": "string",
               "variants": [{"key": "red", "value": "red"}, {"key": "blue", "value": "blue"}]}),
    )
    .await;
    s
}

/// (operator, values (None: omitted), None = accepted | Some((field under the condition, message)))
type OperatorCase = (
    &'static str,
    Option<Value>,
    Option<(&'static str, &'static str)>,
);

fn operator_cases() -> Vec<OperatorCase> {
    let mut cases: Vec<OperatorCase> = vec![
        ("in", Some(json!(["a", 1, 2.5, true])), None),
        (
            "in",
            Some(json!([])),
            Some(("values", "at least one value")),
        ),
        ("in", None, Some(("values", "at least one value"))),
        (
            "in",
            Some(json!(["a", {"b": 1}])),
            Some(("values[1]", "string, number or boolean")),
        ),
        (
            "in",
            Some(json!([null])),
            Some(("values[0]", "string, number or boolean")),
        ),
        (
            "in",
            Some(json!([[1]])),
            Some(("values[0]", "string, number or boolean")),
        ),
        ("matches", Some(json!(["^a.*$", "b+", "(?i)caps"])), None),
        (
            "matches",
            Some(json!(["(unclosed"])),
            Some(("values[0]", "invalid regex")),
        ),
        (
            "matches",
            Some(json!(["ok", "[z-a]"])),
            Some(("values[1]", "invalid regex")),
        ),
        (
            "matches",
            Some(json!(["(?=ahead)"])),
            Some(("values[0]", "invalid regex")),
        ),
        (
            "matches",
            Some(json!([r"(a)\1"])),
            Some(("values[0]", "invalid regex")),
        ),
        (
            "matches",
            Some(json!([5])),
            Some(("values[0]", "must be a string")),
        ),
        (
            "matches",
            Some(json!([])),
            Some(("values", "at least one value")),
        ),
        ("exists", Some(json!([])), None),
        ("exists", None, None),
        ("exists", Some(json!(["x"])), Some(("values", "no values"))),
    ];
    for op in ["contains", "starts_with", "ends_with"] {
        cases.extend([
            (op, Some(json!(["x", "@example.com"])), None),
            (
                op,
                Some(json!(["x", 1])),
                Some(("values[1]", "must be a string")),
            ),
            (
                op,
                Some(json!([true])),
                Some(("values[0]", "must be a string")),
            ),
            (op, Some(json!([])), Some(("values", "at least one value"))),
        ]);
    }
    for op in ["lt", "lte", "gt", "gte"] {
        cases.extend([
            (op, Some(json!([5])), None),
            (op, Some(json!([-1.5e3])), None),
            (
                op,
                Some(json!(["5"])),
                Some(("values[0]", "must be a number")),
            ),
            (
                op,
                Some(json!([1, 2])),
                Some(("values", "exactly one value")),
            ),
            (op, Some(json!([])), Some(("values", "at least one value"))),
        ]);
    }
    for op in ["before", "after"] {
        cases.extend([
            (op, Some(json!(["2024-01-01T00:00:00Z"])), None),
            (
                op,
                Some(json!(["2024-01-01t00:00:00.123456789+09:00"])),
                None,
            ),
            (op, Some(json!([1704067200000_i64])), None),
            (
                op,
                Some(json!(["2024-01-01"])),
                Some(("values[0]", "RFC 3339")),
            ),
            (
                op,
                Some(json!(["2024-01-01T00:00:00"])),
                Some(("values[0]", "RFC 3339")),
            ),
            (
                op,
                Some(json!(["2024-01-01 00:00:00Z"])),
                Some(("values[0]", "RFC 3339")),
            ),
            (op, Some(json!([true])), Some(("values[0]", "RFC 3339"))),
            (
                op,
                Some(json!(["2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"])),
                Some(("values", "exactly one value")),
            ),
        ]);
    }
    for op in ["semver_eq", "semver_lt", "semver_gt"] {
        cases.extend([
            (op, Some(json!(["1.0.0"])), None),
            (op, Some(json!(["1.2.3-beta.1+build.5"])), None),
            (
                op,
                Some(json!(["v1.0.0"])),
                Some(("values[0]", "semantic version")),
            ),
            (
                op,
                Some(json!(["1.0"])),
                Some(("values[0]", "semantic version")),
            ),
            (
                op,
                Some(json!(["01.0.0"])),
                Some(("values[0]", "semantic version")),
            ),
            (
                op,
                Some(json!([1])),
                Some(("values[0]", "semantic version")),
            ),
            (
                op,
                Some(json!(["1.0.0", "2.0.0"])),
                Some(("values", "exactly one value")),
            ),
        ]);
    }
    cases
}

#[tokio::test]
async fn every_operator_accepts_good_values_and_rejects_bad_ones_in_flags() {
    let s = fixture().await;
    let cases = operator_cases();
    let mut failures = Vec::new();
    for (i, (op, values, expected)) in cases.iter().enumerate() {
        let mut condition = json!({"attribute": "a", "operator": op});
        if let Some(v) = values {
            condition["values"] = v.clone();
        }
        let key = format!("op-{i}");
        // The second rule carries the condition under test, after a good one.
        let flag = json!({"key": key, "type": "boolean", "environments": {"production": {"rules": [
            {"conditions": [{"attribute": "plan", "operator": "in", "values": ["x"]}], "serve": {"variant": "on"}},
            {"conditions": [{"attribute": "ok", "operator": "exists"}, condition], "serve": {"variant": "on"}},
        ]}}});
        let r = s.post(&format!("{P}/flags"), &flag).await;
        let case = format!("{op} {values:?}");
        let expected_at = expected.map(|(field, needle)| {
            (
                format!("environments.production.rules[1].conditions[1].{field}"),
                needle,
            )
        });
        if let Err(e) = check(
            &case,
            &r,
            expected_at.as_ref().map(|(f, n)| (f.as_str(), *n)),
        ) {
            failures.push(e);
            continue;
        }
        // A refused flag was not created; an accepted one reads back as written.
        let read = s.get(&format!("{P}/flags/{key}")).await;
        match expected {
            Some(_) if read.status != StatusCode::NOT_FOUND => {
                failures.push(format!("{case}: refused but stored"))
            }
            None if read.body["environments"]["production"]["rules"][1]["conditions"][1]
                != condition_as_stored(&condition) =>
            {
                failures.push(format!("{case}: stored as {}", read.body))
            }
            _ => {}
        }
    }
    assert!(cases.len() > 60);
    report(failures);
}

/// A condition as the store writes it back: `values` always present.
fn condition_as_stored(condition: &Value) -> Value {
    let mut c = condition.clone();
    if c.get("values").is_none() {
        c["values"] = json!([]);
    }
    c
}

#[tokio::test]
async fn operators_are_validated_in_segments_and_config_writes_too() {
    let s = fixture().await;
    s.flag("shop", json!({"key": "target", "type": "boolean"}))
        .await;
    let mut failures = Vec::new();
    for (i, (op, values, expected)) in operator_cases().iter().enumerate().step_by(3) {
        let mut condition = json!({"attribute": "a", "operator": op});
        if let Some(v) = values {
            condition["values"] = v.clone();
        }
        let case = format!("{op} {values:?}");
        // A segment: the second AND-group, first condition.
        let segment = json!({"key": format!("seg-{i}"), "rules": [[{"attribute": "b", "operator": "exists"}], [condition]]});
        let r = s.post(&format!("{P}/segments"), &segment).await;
        let at = expected.map(|(field, needle)| (format!("rules[1][0].{field}"), needle));
        if let Err(e) = check(
            &format!("segment {case}"),
            &r,
            at.as_ref().map(|(f, n)| (f.as_str(), *n)),
        ) {
            failures.push(e);
        }
        // A config PUT: paths start at the config.
        let config = json!({"enabled": true, "rules": [{"conditions": [condition], "serve": {"variant": "on"}}]});
        let r = s
            .put(
                &format!("{P}/flags/target/environments/development"),
                &config,
            )
            .await;
        let at =
            expected.map(|(field, needle)| (format!("rules[0].conditions[0].{field}"), needle));
        if let Err(e) = check(
            &format!("config {case}"),
            &r,
            at.as_ref().map(|(f, n)| (f.as_str(), *n)),
        ) {
            failures.push(e);
        }
    }
    report(failures);
}

#[tokio::test]
async fn conditions_of_the_wrong_shape_are_refused() {
    let s = fixture().await;
    let rule = |condition: Value| {
        json!({"key": "f", "type": "boolean", "environments": {"production": {"rules": [
            {"conditions": [condition], "serve": {"variant": "on"}}]}}})
    };
    let at = "environments.production.rules[0].conditions[0]";
    let mut failures = Vec::new();
    for (case, condition, field, needle) in [
        (
            "unknown operator",
            json!({"attribute": "a", "operator": "regex", "values": ["x"]}),
            format!("{at}.operator"),
            "unknown variant",
        ),
        (
            "no operator",
            json!({"attribute": "a", "values": ["x"]}),
            at.to_string(),
            "needs an `operator`",
        ),
        (
            "attribute and segment",
            json!({"attribute": "a", "operator": "in", "values": ["x"], "segment": "beta"}),
            at.to_string(),
            "either",
        ),
        (
            "empty attribute",
            json!({"attribute": "", "operator": "exists"}),
            format!("{at}.attribute"),
            "must not be empty",
        ),
        (
            "long attribute",
            json!({"attribute": "a".repeat(257), "operator": "exists"}),
            format!("{at}.attribute"),
            "at most 256",
        ),
        (
            "segment with values",
            json!({"segment": "beta", "values": ["x"]}),
            at.to_string(),
            "either",
        ),
    ] {
        let r = s.post(&format!("{P}/flags"), &rule(condition)).await;
        if let Err(e) = check(case, &r, Some((&field, needle))) {
            failures.push(e);
        }
    }
    report(failures);
}

/// A case of the reference table: a request and the error it must get.
struct RefCase {
    name: &'static str,
    method: Method,
    path: String,
    body: Value,
    field: &'static str,
    needle: &'static str,
}

fn post_flag(
    name: &'static str,
    body: Value,
    field: &'static str,
    needle: &'static str,
) -> RefCase {
    RefCase {
        name,
        method: Method::POST,
        path: format!("{P}/flags"),
        body,
        field,
        needle,
    }
}

fn prod(config: Value) -> Value {
    json!({"key": "f", "type": "boolean", "environments": {"production": config}})
}

fn reference_cases() -> Vec<RefCase> {
    let weights = |w: Value| json!({"rollout": {"weights": w}});
    vec![
        post_flag(
            "unknown off_variant",
            prod(json!({"off_variant": "maybe"})),
            "environments.production.off_variant",
            "unknown variant \"maybe\"",
        ),
        post_flag(
            "unknown target variant",
            prod(json!({"targets": [{"variant": "maybe", "values": ["u1"]}]})),
            "environments.production.targets[0].variant",
            "unknown variant",
        ),
        post_flag(
            "unknown rule variant",
            prod(json!({"rules": [{"serve": {"variant": "maybe"}}]})),
            "environments.production.rules[0].serve.variant",
            "unknown variant",
        ),
        post_flag(
            "unknown default variant",
            prod(json!({"default": {"variant": "maybe"}})),
            "environments.production.default.variant",
            "unknown variant",
        ),
        post_flag(
            "unknown rollout variant",
            prod(
                json!({"default": weights(json!([{"variant": "on", "weight": 50000}, {"variant": "maybe", "weight": 50000}]))}),
            ),
            "environments.production.default.rollout.weights[1].variant",
            "unknown variant",
        ),
        post_flag(
            "weights under 100000",
            prod(
                json!({"default": weights(json!([{"variant": "on", "weight": 50000}, {"variant": "off", "weight": 49999}]))}),
            ),
            "environments.production.default.rollout.weights",
            "sum to 100000",
        ),
        post_flag(
            "weights over 100000 in a rule",
            prod(
                json!({"rules": [{"serve": weights(json!([{"variant": "on", "weight": 100000}, {"variant": "off", "weight": 1}]))}]}),
            ),
            "environments.production.rules[0].serve.rollout.weights",
            "sum to 100000",
        ),
        post_flag(
            "no weights",
            prod(json!({"default": weights(json!([]))})),
            "environments.production.default.rollout.weights",
            "at least one",
        ),
        post_flag(
            "negative weight",
            prod(json!({"default": weights(json!([{"variant": "on", "weight": -1}]))})),
            "environments.production.default.rollout.weights[0].weight",
            "",
        ),
        post_flag(
            "variant and rollout",
            prod(json!({"default": {"variant": "on", "rollout": {"weights": []}}})),
            "environments.production.default",
            "exactly one",
        ),
        post_flag(
            "unknown segment",
            prod(
                json!({"rules": [{"conditions": [{"segment": "gamma"}], "serve": {"variant": "on"}}]}),
            ),
            "environments.production.rules[0].conditions[0].segment",
            "unknown segment \"gamma\"",
        ),
        post_flag(
            "unknown prerequisite flag",
            prod(json!({"prerequisites": [{"flag": "nope", "variants": ["on"]}]})),
            "environments.production.prerequisites[0].flag",
            "unknown flag \"nope\"",
        ),
        post_flag(
            "unknown prerequisite variant",
            prod(json!({"prerequisites": [{"flag": "colour", "variants": ["red", "green"]}]})),
            "environments.production.prerequisites[0].variants[1]",
            "unknown variant \"green\"",
        ),
        post_flag(
            "prerequisite without variants",
            prod(json!({"prerequisites": [{"flag": "colour", "variants": []}]})),
            "environments.production.prerequisites[0].variants",
            "at least one",
        ),
        post_flag(
            "own prerequisite",
            prod(json!({"prerequisites": [{"flag": "f", "variants": ["on"]}]})),
            "environments.production.prerequisites[0].flag",
            "its own prerequisite",
        ),
        post_flag(
            "archived prerequisite",
            prod(json!({"prerequisites": [{"flag": "old", "variants": ["on"]}]})),
            "environments.production.prerequisites[0].flag",
            "archived",
        ),
        RefCase {
            name: "prerequisite cycle (PUT flag)",
            method: Method::PUT,
            path: format!("{P}/flags/b"),
            body: json!({"key": "b", "type": "boolean", "environments": {"production": {
                "prerequisites": [{"flag": "a", "variants": ["on"]}]}}}),
            field: "environments.production.prerequisites[0].flag",
            needle: "prerequisite cycle: b → a → b",
        },
        RefCase {
            name: "prerequisite cycle (PATCH config)",
            method: Method::PATCH,
            path: format!("{P}/flags/b/environments/production"),
            body: json!({"prerequisites": [{"flag": "colour", "variants": ["red"]}, {"flag": "a", "variants": ["on"]}]}),
            field: "prerequisites[1].flag",
            needle: "prerequisite cycle",
        },
        post_flag(
            "string variant of a number flag",
            json!({"key": "f", "type": "number", "variants": [{"key": "one", "value": 1}, {"key": "two", "value": "2"}]}),
            "variants[1].value",
            "must be a number",
        ),
        post_flag(
            "number variant of a string flag",
            json!({"key": "f", "type": "string", "variants": [{"key": "one", "value": 1}]}),
            "variants[0].value",
            "must be a string",
        ),
        post_flag(
            "string variant of a boolean flag",
            json!({"key": "f", "type": "boolean", "variants": [{"key": "on", "value": "yes"}, {"key": "off", "value": false}]}),
            "variants[0].value",
            "must be a boolean",
        ),
        post_flag(
            "null variant of a json flag",
            json!({"key": "f", "type": "json", "variants": [{"key": "v", "value": null}]}),
            "variants[0].value",
            "must not be null",
        ),
        post_flag(
            "no variants",
            json!({"key": "f", "type": "string"}),
            "variants",
            "at least one variant",
        ),
        post_flag(
            "unknown type",
            json!({"key": "f", "type": "date"}),
            "type",
            "unknown variant",
        ),
        post_flag(
            "bad flag key",
            json!({"key": "Dark_Mode", "type": "boolean"}),
            "key",
            "must match",
        ),
        post_flag(
            "flag key too long",
            json!({"key": "a".repeat(129), "type": "boolean"}),
            "key",
            "must match",
        ),
        post_flag(
            "bad variant key",
            json!({"key": "f", "type": "string", "variants": [{"key": "Red", "value": "r"}]}),
            "variants[0].key",
            "must match",
        ),
        post_flag(
            "bad rule id",
            prod(json!({"rules": [{"id": "rule 1", "serve": {"variant": "on"}}]})),
            "environments.production.rules[0].id",
            "must match",
        ),
        post_flag(
            "duplicate rule ids",
            prod(
                json!({"rules": [{"id": "r", "serve": {"variant": "on"}}, {"id": "r", "serve": {"variant": "off"}}]}),
            ),
            "environments.production.rules[1].id",
            "duplicate rule id",
        ),
        post_flag(
            "duplicate variant keys",
            json!({"key": "f", "type": "string", "variants": [{"key": "a", "value": "1"}, {"key": "a", "value": "2"}]}),
            "variants[1].key",
            "duplicate variant key \"a\"",
        ),
        post_flag(
            "a targeting key in two targets",
            prod(
                json!({"targets": [{"variant": "on", "values": ["u1"]}, {"variant": "off", "values": ["u1"]}]}),
            ),
            "environments.production.targets[1].values[0]",
            "already in targets[0]",
        ),
        post_flag(
            "unknown environment",
            json!({"key": "f", "type": "boolean", "environments": {"staging": {}}}),
            "environments.staging",
            "unknown environment",
        ),
        post_flag(
            "duplicate tags",
            json!({"key": "f", "type": "boolean", "tags": ["a", "a"]}),
            "tags[1]",
            "duplicate tag",
        ),
        RefCase {
            name: "bad segment key",
            method: Method::POST,
            path: format!("{P}/segments"),
            body: json!({"key": "Beta Users"}),
            field: "key",
            needle: "must match",
        },
        RefCase {
            name: "segment referencing itself",
            method: Method::POST,
            path: format!("{P}/segments"),
            body: json!({"key": "me", "rules": [[{"segment": "me"}]]}),
            field: "rules[0][0].segment",
            needle: "cannot reference itself",
        },
        RefCase {
            name: "unknown segment in a segment",
            method: Method::POST,
            path: format!("{P}/segments"),
            body: json!({"key": "s", "rules": [[{"segment": "gamma"}]]}),
            field: "rules[0][0].segment",
            needle: "unknown segment",
        },
        RefCase {
            name: "segment cycle",
            method: Method::PUT,
            path: format!("{P}/segments/beta"),
            body: json!({"key": "beta", "rules": [[{"attribute": "x", "operator": "exists"}, {"segment": "beta-plus"}]]}),
            field: "rules[0][1].segment",
            needle: "segment cycle",
        },
        RefCase {
            name: "bad environment key",
            method: Method::POST,
            path: format!("{P}/environments"),
            body: json!({"key": "Prod"}),
            field: "key",
            needle: "must match",
        },
        RefCase {
            name: "bad project key",
            method: Method::POST,
            path: "/api/v1/projects".to_string(),
            body: json!({"key": "my shop"}),
            field: "key",
            needle: "must match",
        },
        RefCase {
            name: "bad environment key in a new project",
            method: Method::POST,
            path: "/api/v1/projects".to_string(),
            body: json!({"key": "blog", "environments": [{"key": "ok"}, {"key": "_no"}]}),
            field: "environments[1].key",
            needle: "must match",
        },
    ]
}

#[tokio::test]
async fn every_reference_rule_is_enforced() {
    let s = fixture().await;
    // For the cycle and archived cases: a → b, an archived flag, beta-plus → beta.
    s.flag("shop", json!({"key": "b", "type": "boolean"})).await;
    s.flag(
        "shop",
        json!({"key": "a", "type": "boolean", "environments": {"production": {
        "prerequisites": [{"flag": "b", "variants": ["on"]}]}}}),
    )
    .await;
    s.flag(
        "shop",
        json!({"key": "old", "type": "boolean", "archived": true}),
    )
    .await;
    s.post(
        &format!("{P}/segments"),
        &json!({"key": "beta-plus", "rules": [[{"segment": "beta"}]]}),
    )
    .await
    .expect(StatusCode::CREATED);

    let before = s.get(&format!("{P}/flags?limit=1000")).await.body;
    let segments_before = s.get(&format!("{P}/segments")).await.body;
    let mut failures = Vec::new();
    for case in reference_cases() {
        let r = Reply::of(s.admin(case.method.clone(), &case.path).json(&case.body)).await;
        if let Err(e) = check(case.name, &r, Some((case.field, case.needle))) {
            failures.push(e);
        }
    }
    report(failures);
    // Nothing was written by any of them.
    assert_eq!(s.get(&format!("{P}/flags?limit=1000")).await.body, before);
    assert_eq!(s.get(&format!("{P}/segments")).await.body, segments_before);
    assert_eq!(
        s.get("/api/v1/projects").await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // And the same shapes, fixed, are accepted.
    for flag in [
        prod(
            json!({"off_variant": "on", "targets": [{"variant": "on", "values": ["u1"]}],
                    "prerequisites": [{"flag": "colour", "variants": ["red", "blue"]}],
                    "rules": [{"id": "r", "conditions": [{"segment": "beta"}], "serve": {"rollout": {"bucket_by": "org.id", "salt": "s",
                        "weights": [{"variant": "on", "weight": 99999}, {"variant": "off", "weight": 1}]}}}],
                    "default": {"variant": "off"}}),
        ),
        json!({"key": "g", "type": "json", "variants": [{"key": "v", "value": {"a": [1, null]}}, {"key": "w", "value": 0}]}),
        json!({"key": "a.b_c-9", "type": "number", "variants": [{"key": "x", "value": 1.5}]}),
    ] {
        s.post(&format!("{P}/flags"), &flag)
            .await
            .expect(StatusCode::CREATED);
    }
}
