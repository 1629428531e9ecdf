//! Table-driven tests of `hata_core::validate`: each case is a JSON object as a client would
//! write it and the exact fields expected to be reported.

use std::collections::BTreeMap;

use hata_core::model::{Environment, Flag, Project, Segment};
use hata_core::validate::{
    check_text, flag_dependants, segment_dependants, validate_environment, validate_flag,
    validate_project, validate_segment, FieldError, ProjectView, ValidationErrors, NUL_MESSAGE,
};
use serde_json::{json, Value};

/// A project as stored: its environments, flags and segments.
struct Fixture {
    environments: Vec<String>,
    flags: BTreeMap<String, Flag>,
    segments: BTreeMap<String, Segment>,
}

impl Fixture {
    /// Environments `development` and `production`; flags `checkout` (boolean) and `theme`
    /// (string: light, dark); segments `beta` and `staff`.
    fn new() -> Fixture {
        Fixture {
            environments: vec!["development".into(), "production".into()],
            flags: BTreeMap::new(),
            segments: BTreeMap::new(),
        }
        .with_flag(json!({"key": "checkout", "type": "boolean"}))
        .with_flag(json!({
            "key": "theme", "type": "string",
            "variants": [{"key": "light", "value": "l"}, {"key": "dark", "value": "d"}]
        }))
        .with_segment(json!({"key": "beta", "included": ["user-1"]}))
        .with_segment(json!({"key": "staff", "rules": [[
            {"attribute": "email", "operator": "ends_with", "values": ["@example.com"]}
        ]]}))
    }

    fn with_flag(mut self, flag: Value) -> Fixture {
        let flag = self.flag(flag);
        self.flags.insert(flag.key.clone(), flag);
        self
    }

    fn with_segment(mut self, segment: Value) -> Fixture {
        let segment = segment_from(segment);
        self.segments.insert(segment.key.clone(), segment);
        self
    }

    fn view(&self) -> ProjectView<'_> {
        ProjectView {
            environments: &self.environments,
            segments: &self.segments,
            flags: &self.flags,
        }
    }

    /// Reads and normalizes a flag.
    fn flag(&self, flag: Value) -> Flag {
        let mut flag: Flag = serde_json::from_value(flag).expect("a flag fixture");
        flag.normalize(self.environments.iter().map(String::as_str));
        flag
    }

    /// The errors of `validate_flag`, checked to be those of `validate_flag_in` (the
    /// indexed form an import uses) too.
    fn flag_errors(&self, flag: Value) -> Vec<FieldError> {
        let flag = self.flag(flag);
        let view = self.view();
        let errors = errors_of(validate_flag(&flag, &view));
        let requirements = hata_core::validate::Requirements::of(&view);
        let indexed = errors_of(hata_core::validate::validate_flag_in(
            &flag,
            &view,
            &requirements,
        ));
        assert_eq!(
            format!("{errors:?}"),
            format!("{indexed:?}"),
            "validate_flag_in differs from validate_flag"
        );
        errors
    }

    fn segment_errors(&self, segment: Value) -> Vec<FieldError> {
        errors_of(validate_segment(&segment_from(segment), &self.view()))
    }
}

fn segment_from(segment: Value) -> Segment {
    serde_json::from_value(segment).expect("a segment fixture")
}

fn errors_of(result: Result<(), ValidationErrors>) -> Vec<FieldError> {
    match result {
        Ok(()) => Vec::new(),
        Err(ValidationErrors(errors)) => {
            assert!(!errors.is_empty(), "Err with no errors");
            errors
        }
    }
}

fn fields(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.field.as_str()).collect()
}

/// Asserts that exactly `expected` fields were reported, in order, and returns the errors.
#[track_caller]
fn assert_fields(errors: Vec<FieldError>, expected: &[&str]) -> Vec<FieldError> {
    assert_eq!(fields(&errors), expected, "errors: {errors:#?}");
    errors
}

/// Asserts one error at `field` whose message contains `needle`.
#[track_caller]
fn assert_error(errors: Vec<FieldError>, field: &str, needle: &str) {
    let errors = assert_fields(errors, &[field]);
    assert!(
        errors[0].message.contains(needle),
        "message {:?} does not contain {needle:?}",
        errors[0].message
    );
}

/// A boolean flag `f` whose production config has one rule with `conditions`.
fn flag_with_conditions(conditions: Value) -> Value {
    json!({
        "key": "f", "type": "boolean",
        "environments": {"production": {"enabled": true, "rules": [
            {"conditions": conditions, "serve": {"variant": "on"}}
        ]}}
    })
}

/// A boolean flag `f` whose production config is `config`.
fn flag_with_config(config: Value) -> Value {
    json!({"key": "f", "type": "boolean", "environments": {"production": config}})
}

const PROD: &str = "environments.production";

// ---------------------------------------------------------------------------------------------
// Operators

/// (operator, values — `None` omits them, the field reported relative to the condition.)
fn operator_cases() -> Vec<(&'static str, Option<Value>, Option<&'static str>)> {
    vec![
        ("in", Some(json!(["a", 1, 2.5, true])), None),
        ("in", Some(json!([])), Some("values")),
        ("in", None, Some("values")),
        ("in", Some(json!(["a", null])), Some("values[1]")),
        ("in", Some(json!([{"a": 1}])), Some("values[0]")),
        ("in", Some(json!([[1]])), Some("values[0]")),
        ("contains", Some(json!(["x", ""])), None),
        ("contains", Some(json!([1])), Some("values[0]")),
        ("contains", Some(json!([])), Some("values")),
        ("starts_with", Some(json!(["pre"])), None),
        ("starts_with", Some(json!(["ok", true])), Some("values[1]")),
        ("ends_with", Some(json!(["@example.com"])), None),
        ("ends_with", Some(json!([null])), Some("values[0]")),
        ("matches", Some(json!(["^a.*z$", "\\d+"])), None),
        ("matches", Some(json!(["ok", "(abc"])), Some("values[1]")),
        ("matches", Some(json!(["(?=look)ahead"])), Some("values[0]")),
        ("matches", Some(json!(["(a)\\1"])), Some("values[0]")),
        (
            "matches",
            Some(json!(["(a{1000}){1000}"])),
            Some("values[0]"),
        ),
        ("matches", Some(json!([1])), Some("values[0]")),
        ("lt", Some(json!([10])), None),
        ("lt", Some(json!(["10"])), Some("values[0]")),
        ("lt", Some(json!([1, 2])), Some("values")),
        ("lte", Some(json!([-2.5])), None),
        ("lte", Some(json!([true])), Some("values[0]")),
        ("gt", Some(json!([0])), None),
        ("gt", Some(json!([])), Some("values")),
        ("gte", Some(json!([1e10])), None),
        ("gte", Some(json!([null])), Some("values[0]")),
        ("before", Some(json!(["2024-01-02T03:04:05Z"])), None),
        ("before", Some(json!([1_700_000_000_000_i64])), None),
        ("before", Some(json!(["2024-01-02"])), Some("values[0]")),
        (
            "before",
            Some(json!(["2024-01-02 03:04:05Z"])),
            Some("values[0]"),
        ),
        (
            "after",
            Some(json!(["2024-01-02t03:04:05.123456+01:00"])),
            None,
        ),
        (
            "after",
            Some(json!(["2024-01-02T03:04:05"])),
            Some("values[0]"),
        ),
        (
            "after",
            Some(json!(["2024-01-02T03:04:05Z", "2025-01-02T03:04:05Z"])),
            Some("values"),
        ),
        ("semver_eq", Some(json!(["1.2.3-beta.1+build.5"])), None),
        ("semver_eq", Some(json!(["v1.2.3"])), Some("values[0]")),
        ("semver_lt", Some(json!(["2.0.0"])), None),
        ("semver_lt", Some(json!(["1.2"])), Some("values[0]")),
        ("semver_gt", Some(json!(["0.0.1"])), None),
        ("semver_gt", Some(json!([1])), Some("values[0]")),
        ("exists", None, None),
        ("exists", Some(json!([])), None),
        ("exists", Some(json!(["x"])), Some("values")),
    ]
}

#[test]
fn every_operator_accepts_and_rejects_its_operands() {
    let fixture = Fixture::new();
    let mut covered = std::collections::BTreeSet::new();
    for (operator, values, expected) in operator_cases() {
        let mut condition = json!({"attribute": "plan", "operator": operator});
        if let Some(values) = values.clone() {
            condition["values"] = values;
        }
        let flag_errors = fixture.flag_errors(flag_with_conditions(json!([condition.clone()])));
        let segment_errors = fixture.segment_errors(json!({"key": "s", "rules": [[condition]]}));
        match expected {
            None => {
                assert_fields(flag_errors, &[]);
                assert_fields(segment_errors, &[]);
            }
            Some(field) => {
                covered.insert(operator);
                let in_flag = format!("{PROD}.rules[0].conditions[0].{field}");
                let in_segment = format!("rules[0][0].{field}");
                assert_eq!(
                    fields(&flag_errors),
                    [in_flag.as_str()],
                    "{operator} {values:?}: {flag_errors:#?}"
                );
                assert_eq!(
                    fields(&segment_errors),
                    [in_segment.as_str()],
                    "{operator} {values:?}: {segment_errors:#?}"
                );
            }
        }
    }
    for operator in hata_core::model::Operator::ALL {
        assert!(
            covered.contains(operator.as_str()),
            "no rejected case for {operator:?}"
        );
    }
}

#[test]
fn operand_messages_say_why() {
    let fixture = Fixture::new();
    let cases = [
        (
            json!({"attribute": "a", "operator": "matches", "values": ["(abc"]}),
            "invalid regex: unclosed group",
        ),
        (
            json!({"attribute": "a", "operator": "matches", "values": ["(a{1000}){1000}"]}),
            "regex too large: it compiles to more than 1 MiB (the limit of one pattern)",
        ),
        (
            json!({"attribute": "a", "operator": "lt", "values": [1, 2]}),
            "lt takes exactly one value (got 2)",
        ),
        (
            json!({"attribute": "a", "operator": "in", "values": []}),
            "in needs at least one value",
        ),
        (
            json!({"attribute": "a", "operator": "exists", "values": [1]}),
            "exists takes no values",
        ),
        (
            json!({"attribute": "a", "operator": "semver_eq", "values": ["v1.0.0"]}),
            "no leading v",
        ),
        (
            json!({"attribute": "a", "operator": "before", "values": ["2024-01-02"]}),
            "rfc 3339",
        ),
        (
            json!({"attribute": "a", "operator": "in", "values": [null]}),
            "string, number or boolean",
        ),
    ];
    for (condition, needle) in cases {
        let errors = fixture.flag_errors(flag_with_conditions(json!([condition])));
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(
            errors[0]
                .message
                .to_lowercase()
                .contains(&needle.to_lowercase()),
            "{:?} lacks {needle:?}",
            errors[0].message
        );
        assert!(!errors[0].message.contains('\n'), "{:?}", errors[0].message);
    }
}

#[test]
fn condition_attributes_and_value_counts() {
    let fixture = Fixture::new();
    let base = format!("{PROD}.rules[0].conditions");
    assert_fields(
        fixture.flag_errors(flag_with_conditions(json!([
            {"attribute": "", "operator": "exists"},
            {"attribute": "x".repeat(257), "operator": "exists"},
            {"attribute": "org.plan", "operator": "exists"},
        ]))),
        &[
            &format!("{base}[0].attribute"),
            &format!("{base}[1].attribute"),
        ],
    );
    let many: Vec<Value> = (0..10_001).map(|i| json!(i)).collect();
    assert_error(
        fixture.flag_errors(flag_with_conditions(
            json!([{"attribute": "a", "operator": "in", "values": many}]),
        )),
        &format!("{base}[0].values"),
        "at most 10000 values (got 10001)",
    );
    let conditions: Vec<Value> = (0..101)
        .map(|_| json!({"attribute": "a", "operator": "exists"}))
        .collect();
    assert_error(
        fixture.flag_errors(flag_with_conditions(json!(conditions))),
        &base,
        "at most 100 conditions",
    );
}

// ---------------------------------------------------------------------------------------------
// Variants

#[test]
fn variant_values_must_have_the_flags_type() {
    let fixture = Fixture::new();
    let cases = [
        ("boolean", json!(true), true),
        ("boolean", json!("yes"), false),
        ("boolean", json!(1), false),
        ("string", json!("x"), true),
        ("string", json!(1), false),
        ("number", json!(1.5), true),
        ("number", json!("1"), false),
        ("json", json!({"a": [1]}), true),
        ("json", json!([]), true),
        ("json", json!("s"), true),
        ("json", json!(null), false),
    ];
    for (flag_type, value, ok) in cases {
        let errors = fixture.flag_errors(json!({
            "key": "f", "type": flag_type, "variants": [{"key": "a", "value": value}]
        }));
        let expected: &[&str] = if ok { &[] } else { &["variants[0].value"] };
        assert_eq!(fields(&errors), expected, "{flag_type} {value}");
        if !ok {
            assert!(
                errors[0].message.contains(flag_type),
                "{:?}",
                errors[0].message
            );
        }
    }
}

#[test]
fn variant_keys_are_valid_and_unique() {
    let fixture = Fixture::new();
    let errors = fixture.flag_errors(json!({
        "key": "f", "type": "string",
        "variants": [
            {"key": "a", "value": "1"},
            {"key": "a", "value": "2"},
            {"key": "Bad", "value": "3"},
            {"key": "b", "value": "4", "name": "n".repeat(201)}
        ]
    }));
    let errors = assert_fields(
        errors,
        &["variants[1].key", "variants[2].key", "variants[3].name"],
    );
    assert_eq!(
        errors[0].message,
        "duplicate variant key \"a\" (also variants[0])"
    );
    assert_eq!(errors[1].message, "must match ^[a-z0-9][a-z0-9._-]{0,127}$");
}

#[test]
fn a_flag_needs_variants() {
    let fixture = Fixture::new();
    // No variants: reported once, not once per reference to a variant.
    assert_error(
        fixture.flag_errors(json!({"key": "f", "type": "string"})),
        "variants",
        "at least one variant",
    );
    let variants: Vec<Value> = (0..101)
        .map(|i| json!({"key": format!("v{i}"), "value": i}))
        .collect();
    assert_error(
        fixture.flag_errors(json!({"key": "f", "type": "number", "variants": variants})),
        "variants",
        "at most 100 variants (got 101)",
    );
}

// ---------------------------------------------------------------------------------------------
// Variant references

#[test]
fn unknown_variants_are_reported_where_they_are_named() {
    let fixture = Fixture::new();
    let cases = [
        // (An omitted `default` serves `off_variant` and would repeat the error.)
        (
            json!({"off_variant": "blue", "default": {"variant": "on"}}),
            "off_variant".to_string(),
        ),
        (
            json!({"targets": [{"variant": "blue", "values": ["u"]}]}),
            "targets[0].variant".into(),
        ),
        (
            json!({"rules": [{"serve": {"variant": "blue"}}]}),
            "rules[0].serve.variant".into(),
        ),
        (
            json!({"default": {"variant": "blue"}}),
            "default.variant".into(),
        ),
        (
            json!({"default": {"rollout": {"weights": [
                {"variant": "on", "weight": 50000}, {"variant": "blue", "weight": 50000}
            ]}}}),
            "default.rollout.weights[1].variant".into(),
        ),
        (
            json!({"prerequisites": [{"flag": "theme", "variants": ["light", "blue"]}]}),
            "prerequisites[0].variants[1]".into(),
        ),
    ];
    for (config, field) in cases {
        let errors = fixture.flag_errors(flag_with_config(config));
        let errors = assert_fields(errors, &[&format!("{PROD}.{field}")]);
        assert!(errors[0].message.starts_with("unknown variant \"blue\""));
    }
    let errors = fixture.flag_errors(flag_with_config(json!({"off_variant": "blue"})));
    assert_eq!(
        errors[0].message,
        "unknown variant \"blue\"; the flag's variants are on, off"
    );
    let errors = fixture.flag_errors(flag_with_config(
        json!({"prerequisites": [{"flag": "theme", "variants": ["on"]}]}),
    ));
    assert_eq!(
        errors[0].message,
        "unknown variant \"on\"; flag \"theme\" has the variants light, dark"
    );
}

#[test]
fn variants_that_other_flags_require_cannot_be_dropped() {
    // `checkout` requires theme=dark in production.
    let fixture = Fixture::new().with_flag(json!({
        "key": "checkout", "type": "boolean",
        "environments": {"production": {"enabled": true,
            "prerequisites": [{"flag": "theme", "variants": ["dark"]}]}}
    }));
    let theme = |variants: Value| json!({"key": "theme", "type": "string", "variants": variants});
    let errors = fixture.flag_errors(theme(json!([{"key": "light", "value": "l"}])));
    let errors = assert_fields(errors, &["variants"]);
    assert_eq!(
        errors[0].message,
        "variant \"dark\" is required by flag \"checkout\" (prerequisite in production); change that flag first"
    );
    // Keeping `dark` (and adding one) is fine; so is archiving the flag (its dependants are
    // what block archiving), and an archived dependant requires nothing.
    let errors = fixture.flag_errors(theme(json!([
        {"key": "light", "value": "l"}, {"key": "dark", "value": "d"}, {"key": "blue", "value": "b"}
    ])));
    assert_fields(errors, &[]);
    let mut archived = theme(json!([{"key": "light", "value": "l"}]));
    archived["archived"] = json!(true);
    assert_fields(fixture.flag_errors(archived), &[]);
    let mut fixture = fixture;
    if let Some(checkout) = fixture.flags.get_mut("checkout") {
        checkout.archived = true;
    }
    assert_fields(
        fixture.flag_errors(theme(json!([{"key": "light", "value": "l"}]))),
        &[],
    );
}

// ---------------------------------------------------------------------------------------------
// Environments

#[test]
fn configs_must_be_for_the_projects_environments() {
    let fixture = Fixture::new();
    let errors = fixture.flag_errors(json!({
        "key": "f", "type": "boolean", "environments": {"staging": {"off_variant": "nope"}}
    }));
    let errors = assert_fields(errors, &["environments.staging"]);
    assert_eq!(
        errors[0].message,
        "unknown environment \"staging\"; the project's environments are development, production"
    );

    // Normalize guarantees a config per environment; validation still checks.
    let mut flag = fixture.flag(json!({"key": "f", "type": "boolean"}));
    flag.environments.remove("development");
    assert_fields(
        errors_of(validate_flag(&flag, &fixture.view())),
        &["environments.development"],
    );
}

#[test]
fn members_that_are_not_plain_words_are_quoted() {
    let fixture = Fixture::new();
    let errors = fixture.flag_errors(json!({
        "key": "f", "type": "boolean", "environments": {"prod.eu": {}, "a b": {}}
    }));
    assert_fields(
        errors,
        &["environments[\"a b\"]", "environments[\"prod.eu\"]"],
    );
}

// ---------------------------------------------------------------------------------------------
// Prerequisites

#[test]
fn prerequisites_must_name_live_flags_once() {
    let fixture =
        Fixture::new().with_flag(json!({"key": "old", "type": "boolean", "archived": true}));
    let cases = [
        (
            json!([{"flag": "nope", "variants": ["on"]}]),
            "prerequisites[0].flag",
            "unknown flag \"nope\"",
        ),
        (
            json!([{"flag": "old", "variants": ["on"]}]),
            "prerequisites[0].flag",
            "flag \"old\" is archived",
        ),
        (
            json!([{"flag": "f", "variants": ["on"]}]),
            "prerequisites[0].flag",
            "a flag cannot be its own prerequisite",
        ),
        (
            json!([
                {"flag": "checkout", "variants": ["on"]},
                {"flag": "checkout", "variants": ["off"]}
            ]),
            "prerequisites[1].flag",
            "flag \"checkout\" is already a prerequisite (prerequisites[0])",
        ),
        (
            json!([{"flag": "checkout", "variants": []}]),
            "prerequisites[0].variants",
            "at least one variant is required",
        ),
        (
            json!([{"flag": "checkout", "variants": ["on", "on"]}]),
            "prerequisites[0].variants[1]",
            "duplicate variant \"on\" (also variants[0])",
        ),
    ];
    for (prerequisites, field, message) in cases {
        let errors = fixture.flag_errors(flag_with_config(json!({"prerequisites": prerequisites})));
        let errors = assert_fields(errors, &[&format!("{PROD}.{field}")]);
        assert_eq!(errors[0].message, message);
    }
    // A self-prerequisite's variants are checked against the new definition.
    assert_fields(
        fixture.flag_errors(flag_with_config(
            json!({"prerequisites": [{"flag": "f", "variants": ["blue"]}]}),
        )),
        &[
            "environments.production.prerequisites[0].flag",
            "environments.production.prerequisites[0].variants[0]",
        ],
    );
    // An archived flag may keep an archived prerequisite.
    assert_fields(
        fixture.flag_errors(json!({
            "key": "f", "type": "boolean", "archived": true,
            "environments": {"production": {"prerequisites": [{"flag": "old", "variants": ["on"]}]}}
        })),
        &[],
    );
}

fn requires(key: &str, env: &str, prerequisite: &str) -> Value {
    json!({
        "key": key, "type": "boolean",
        "environments": {env: {
            "enabled": true,
            "prerequisites": [{"flag": prerequisite, "variants": ["on"]}]
        }}
    })
}

#[test]
fn prerequisite_cycles_are_rejected() {
    // Two flags: a → b stored; b → a would close the cycle.
    let fixture = Fixture::new().with_flag(requires("a", "production", "b"));
    let errors = fixture.flag_errors(requires("b", "production", "a"));
    let errors = assert_fields(errors, &["environments.production.prerequisites[0].flag"]);
    assert_eq!(errors[0].message, "prerequisite cycle: b → a → b");
    // Per environment: the same edge in another environment is no cycle.
    assert_fields(fixture.flag_errors(requires("b", "development", "a")), &[]);

    // Three flags: a → b → c stored; c → a.
    let fixture = Fixture::new()
        .with_flag(requires("a", "production", "b"))
        .with_flag(requires("b", "production", "c"))
        .with_flag(json!({"key": "c", "type": "boolean"}));
    let errors = fixture.flag_errors(requires("c", "production", "a"));
    let errors = assert_fields(errors, &["environments.production.prerequisites[0].flag"]);
    assert_eq!(errors[0].message, "prerequisite cycle: c → a → b → c");
    // c → b → c is shorter and is the one named.
    let errors = fixture.flag_errors(json!({
        "key": "c", "type": "boolean",
        "environments": {"production": {"prerequisites": [
            {"flag": "checkout", "variants": ["on"]}, {"flag": "b", "variants": ["on"]}
        ]}}
    }));
    let errors = assert_fields(errors, &["environments.production.prerequisites[1].flag"]);
    assert_eq!(errors[0].message, "prerequisite cycle: c → b → c");
}

#[test]
fn the_new_flag_replaces_the_stored_one_in_the_graph() {
    // Stored: b → a and (a corrupt, old) a → b. The new a drops b: no cycle.
    let fixture = Fixture::new()
        .with_flag(requires("a", "production", "b"))
        .with_flag(requires("b", "production", "a"));
    assert_fields(
        fixture.flag_errors(json!({"key": "a", "type": "boolean"})),
        &[],
    );
    // Keeping it still is one.
    assert_fields(
        fixture.flag_errors(requires("a", "production", "b")),
        &["environments.production.prerequisites[0].flag"],
    );
}

// ---------------------------------------------------------------------------------------------
// Targets, rules, serves

#[test]
fn targets() {
    let fixture = Fixture::new();
    let errors = fixture.flag_errors(flag_with_config(json!({"targets": [
        {"variant": "on", "values": ["u1", "u2", "u1"]},
        {"variant": "off", "values": ["u3", "u2", ""]},
        {"variant": "off", "values": []},
    ]})));
    let errors = assert_fields(
        errors,
        &[
            "environments.production.targets[1].values[1]",
            "environments.production.targets[1].values[2]",
            "environments.production.targets[2].values",
        ],
    );
    assert_eq!(
        errors[0].message,
        "\"u2\" is already in targets[0] (variant \"on\")"
    );
}

#[test]
fn rule_ids_are_keys_unique_per_config() {
    let fixture = Fixture::new();
    let errors = fixture.flag_errors(flag_with_config(json!({"rules": [
        {"id": "gold", "serve": {"variant": "on"}},
        {"id": "gold", "serve": {"variant": "on"}},
        {"id": "Not A Key", "serve": {"variant": "on"}},
        {"serve": {"variant": "on"}},
    ]})));
    let errors = assert_fields(
        errors,
        &[
            "environments.production.rules[1].id",
            "environments.production.rules[2].id",
        ],
    );
    assert_eq!(
        errors[0].message,
        "duplicate rule id \"gold\" (also rules[0])"
    );
    // The same id in two environments is fine.
    assert_fields(
        fixture.flag_errors(json!({"key": "f", "type": "boolean", "environments": {
            "production": {"rules": [{"id": "gold", "serve": {"variant": "on"}}]},
            "development": {"rules": [{"id": "gold", "serve": {"variant": "on"}}]},
        }})),
        &[],
    );
    let rules: Vec<Value> = (0..1001)
        .map(|_| json!({"serve": {"variant": "on"}}))
        .collect();
    assert_error(
        fixture.flag_errors(flag_with_config(json!({ "rules": rules }))),
        "environments.production.rules",
        "at most 1000 rules (got 1001)",
    );
}

fn rollout(weights: Value) -> Value {
    flag_with_config(json!({"default": {"rollout": {"weights": weights}}}))
}

#[test]
fn rollouts() {
    let fixture = Fixture::new();
    let at = "environments.production.default.rollout";
    assert_fields(
        fixture.flag_errors(rollout(
            json!([{"variant": "on", "weight": 25000}, {"variant": "off", "weight": 75000}]),
        )),
        &[],
    );
    assert_fields(
        fixture.flag_errors(rollout(
            json!([{"variant": "on", "weight": 0}, {"variant": "off", "weight": 100000}]),
        )),
        &[],
    );
    let errors = fixture.flag_errors(rollout(
        json!([{"variant": "on", "weight": 40000}, {"variant": "off", "weight": 50000}]),
    ));
    let errors = assert_fields(errors, &[&format!("{at}.weights")]);
    assert_eq!(
        errors[0].message,
        "weights must sum to 100000 (100 %); they sum to 90000"
    );
    // No overflow on huge weights.
    assert_error(
        fixture.flag_errors(rollout(json!([
            {"variant": "on", "weight": u32::MAX}, {"variant": "off", "weight": u32::MAX}
        ]))),
        &format!("{at}.weights"),
        "they sum to 8589934590",
    );
    assert_error(
        fixture.flag_errors(rollout(json!([]))),
        &format!("{at}.weights"),
        "at least one weight",
    );
    assert_error(
        fixture.flag_errors(rollout(json!([
            {"variant": "on", "weight": 50000}, {"variant": "on", "weight": 50000}
        ]))),
        &format!("{at}.weights[1].variant"),
        "duplicate variant \"on\" (also weights[0])",
    );
    assert_fields(
        fixture.flag_errors(flag_with_config(json!({"rules": [{"serve": {"rollout": {
            "bucket_by": "", "salt": "s".repeat(201),
            "weights": [{"variant": "on", "weight": 100000}]
        }}}]}))),
        &[
            "environments.production.rules[0].serve.rollout.bucket_by",
            "environments.production.rules[0].serve.rollout.salt",
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Segments

#[test]
fn segment_references() {
    let fixture = Fixture::new();
    assert_fields(
        fixture.flag_errors(flag_with_conditions(
            json!([{"segment": "beta"}, {"segment": "staff", "negate": true}]),
        )),
        &[],
    );
    assert_error(
        fixture.flag_errors(flag_with_conditions(json!([{"segment": "nope"}]))),
        "environments.production.rules[0].conditions[0].segment",
        "unknown segment \"nope\"",
    );
    assert_error(
        fixture.segment_errors(json!({"key": "s", "rules": [[{"segment": "nope"}]]})),
        "rules[0][0].segment",
        "unknown segment \"nope\"",
    );
    assert_error(
        fixture.segment_errors(
            json!({"key": "s", "rules": [[{"segment": "beta"}], [{"segment": "s"}]]}),
        ),
        "rules[1][0].segment",
        "a segment cannot reference itself",
    );
}

#[test]
fn segment_cycles_are_rejected() {
    let fixture = Fixture::new()
        .with_segment(json!({"key": "a", "rules": [[{"segment": "b"}]]}))
        .with_segment(json!({"key": "b", "rules": [[{"segment": "beta"}]]}));
    // Stored a → b; the new b → a closes a cycle (and replaces the stored b).
    let errors = fixture
        .segment_errors(json!({"key": "b", "rules": [[{"segment": "staff"}, {"segment": "a"}]]}));
    let errors = assert_fields(errors, &["rules[0][1].segment"]);
    assert_eq!(errors[0].message, "segment cycle: b → a → b");
    // Three segments: c → a → b, and b → c.
    let fixture = fixture.with_segment(json!({"key": "c", "rules": [[{"segment": "a"}]]}));
    assert_error(
        fixture.segment_errors(json!({"key": "b", "rules": [[{"segment": "c"}]]})),
        "rules[0][0].segment",
        "segment cycle: b → c → a → b",
    );
}

#[test]
fn segment_lists() {
    let fixture = Fixture::new();
    assert_fields(
        fixture.segment_errors(json!({
            "key": "s", "included": ["u1", "", "u3", ""], "excluded": [""]
        })),
        &["included[1]", "included[3]", "excluded[0]"],
    );
    let many: Vec<String> = (0..60_000).map(|i| format!("u{i}")).collect();
    assert_error(
        fixture.segment_errors(json!({"key": "s", "included": many, "excluded": many})),
        "excluded",
        "at most 100000 included and excluded keys in total (got 120000)",
    );
    let rules: Vec<Value> = (0..1001).map(|_| json!([])).collect();
    assert_error(
        fixture.segment_errors(json!({"key": "s", "rules": rules})),
        "rules",
        "at most 1000 rules",
    );
}

// ---------------------------------------------------------------------------------------------
// Keys, names, tags; projects and environments

#[test]
fn bad_keys() {
    let fixture = Fixture::new();
    for key in ["", "Checkout", "-a", "a b", "é", &"a".repeat(129)] {
        assert_fields(
            fixture.flag_errors(json!({"key": key, "type": "boolean"})),
            &["key"],
        );
        assert_fields(fixture.segment_errors(json!({"key": key})), &["key"]);
        let project: Project = serde_json::from_value(json!({"key": key})).unwrap();
        assert_fields(errors_of(validate_project(&project)), &["key"]);
        let environment: Environment = serde_json::from_value(json!({"key": key})).unwrap();
        assert_fields(errors_of(validate_environment(&environment)), &["key"]);
    }
    for key in ["a", "new-checkout_v2.1", &"a".repeat(128)] {
        assert_fields(
            fixture.flag_errors(json!({"key": key, "type": "boolean"})),
            &[],
        );
    }
}

#[test]
fn names_descriptions_and_tags() {
    let fixture = Fixture::new();
    // Characters, not bytes.
    assert_fields(
        fixture.flag_errors(json!({"key": "f", "type": "boolean", "name": "é".repeat(200)})),
        &[],
    );
    let errors = fixture.flag_errors(json!({
        "key": "f", "type": "boolean",
        "name": "n".repeat(201), "description": "d".repeat(10_001), "owner": "o".repeat(201),
        "tags": ["a", "", "t".repeat(65), "a"]
    }));
    let errors = assert_fields(
        errors,
        &[
            "name",
            "description",
            "owner",
            "tags[1]",
            "tags[2]",
            "tags[3]",
        ],
    );
    assert_eq!(
        errors[0].message,
        "must be at most 200 characters (got 201)"
    );
    assert_eq!(errors[5].message, "duplicate tag \"a\" (also tags[0])");
    let tags: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    assert_error(
        fixture.flag_errors(json!({"key": "f", "type": "boolean", "tags": tags})),
        "tags",
        "at most 50 tags (got 51)",
    );

    let project: Project = serde_json::from_value(
        json!({"key": "p", "name": "n".repeat(201), "description": "d".repeat(10_001)}),
    )
    .unwrap();
    assert_fields(
        errors_of(validate_project(&project)),
        &["name", "description"],
    );
    let environment: Environment = serde_json::from_value(
        json!({"key": "production", "name": "Production", "protected": true}),
    )
    .unwrap();
    assert_eq!(validate_environment(&environment), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// Limits of `matches` patterns

/// A pattern whose automata take 1.07 MiB (regex-automata 0.4.19): three fit the 4 MiB of a
/// flag in one environment, four do not.
const BIG: &str = r"\w{20}";
/// 0.54 MiB: with three `BIG`s still within a flag's 4 MiB.
const MEDIUM: &str = r"\w{5,10}";

fn matches(patterns: &[&str]) -> Value {
    json!({"attribute": "email", "operator": "matches", "values": patterns})
}

/// `n` small distinct patterns (a few KiB each).
fn small(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("^user-{i}$")).collect()
}

/// The same rules (each a list of conditions) as a flag's production config and as a segment:
/// the limits per flag and environment and per segment are the same, and so are their reports.
#[test]
fn matches_patterns_are_limited_per_flag_and_segment() {
    let fixture = Fixture::new();
    let small = |n| small(n).into_iter().map(Value::from).collect::<Vec<_>>();
    let many = |n: usize, pattern: &str| vec![Value::from(pattern); n];
    // Rules (conditions each), then the reported (rule, condition, value) and message.
    type Case = (
        Vec<Vec<Value>>,
        Option<((usize, usize, usize), &'static str)>,
    );
    let cases: Vec<Case> = vec![
        (vec![vec![small(50).into()]], None),
        (
            vec![vec![small(51).into()]],
            Some((
                (0, 0, 50),
                "more than 50 `matches` patterns; at most 50 are allowed",
            )),
        ),
        // Counted over all rules and conditions; only the first pattern over is reported.
        (
            vec![vec![small(30).into()], vec![json!(null), small(30).into()]],
            Some(((1, 1, 20), "more than 50 `matches` patterns")),
        ),
        (vec![vec![many(3, BIG).into()]], None),
        (vec![vec![vec![MEDIUM, BIG, BIG, BIG].into()]], None),
        (
            vec![vec![many(3, BIG).into()], vec![many(1, BIG).into()]],
            Some((
                (1, 0, 0),
                "the `matches` patterns up to here compile to 4.3 MiB; at most 4 MiB is allowed",
            )),
        ),
        // The write of issue 27: 800 patterns. Four are compiled, one error reported.
        (
            vec![vec![many(800, BIG).into()]],
            Some(((0, 0, 3), "compile to 4.3 MiB; at most 4 MiB")),
        ),
        (
            vec![vec![many(1, r"\w{100}").into()]],
            Some(((0, 0, 0), "regex too large: it compiles to more than 1 MiB")),
        ),
    ];
    for (rules, expected) in cases {
        // An array of patterns is a `matches` condition, `null` another kind.
        let conditions = |rule: &Vec<Value>| -> Vec<Value> {
            rule.iter()
                .map(|patterns| match patterns {
                    Value::Null => json!({"attribute": "plan", "operator": "exists"}),
                    _ => json!({"attribute": "email", "operator": "matches", "values": patterns}),
                })
                .collect()
        };
        let flag_rules: Vec<Value> = rules
            .iter()
            .map(|rule| json!({"conditions": conditions(rule), "serve": {"variant": "on"}}))
            .collect();
        let segment_rules: Vec<Value> = rules.iter().map(|rule| conditions(rule).into()).collect();
        let flag_errors = fixture.flag_errors(flag_with_config(
            json!({"enabled": true, "rules": flag_rules}),
        ));
        let segment_errors = fixture.segment_errors(json!({"key": "s", "rules": segment_rules}));
        match expected {
            None => {
                assert_fields(flag_errors, &[]);
                assert_fields(segment_errors, &[]);
            }
            Some(((r, c, v), needle)) => {
                let in_flag = format!("{PROD}.rules[{r}].conditions[{c}].values[{v}]");
                assert_error(flag_errors.clone(), &in_flag, needle);
                assert_error(
                    segment_errors.clone(),
                    &format!("rules[{r}][{c}].values[{v}]"),
                    needle,
                );
                // The limits of many patterns say whose patterns they count.
                if needle.contains("allowed") {
                    assert!(flag_errors[0].message.ends_with("per flag and environment"));
                    assert!(segment_errors[0].message.ends_with("per segment"));
                }
            }
        }
    }
}

/// An environment holds at most 64 MiB of compiled patterns: its live flags' and every
/// segment's. Here the stored flags fill 60.9 MiB of production (19 flags of three `BIG`s), so
/// `MEDIUM` and two `BIG`s more fit, and a third does not.
#[test]
fn matches_patterns_are_limited_per_environment() {
    let mut fixture = Fixture::new();
    for i in 0..19 {
        fixture = fixture.with_flag(flag_in_production(&format!("full-{i}"), &[BIG, BIG, BIG]));
    }
    let fits = [MEDIUM, BIG, BIG];
    let over = [MEDIUM, BIG, BIG, BIG];
    let message = "the `matches` patterns of environment \"production\" (its flags' and all \
                   segments') would compile to 64.7 MiB; at most 64 MiB is allowed";
    let in_flag = format!("{PROD}.rules[0].conditions[0].values[3]");
    assert_fields(fixture.flag_errors(flag_in_production("f", &fits)), &[]);
    assert_error(
        fixture.flag_errors(flag_in_production("f", &over)),
        &in_flag,
        message,
    );
    // Development holds nothing: the same patterns fit there.
    let in_development = json!({
        "key": "f", "type": "boolean",
        "environments": {"development": {"enabled": true, "rules": [
            {"conditions": [matches(&over)], "serve": {"variant": "on"}}]}}
    });
    assert_fields(fixture.flag_errors(in_development), &[]);
    // A flag replacing a stored one does not count twice; an archived one counts nothing.
    assert_fields(
        fixture.flag_errors(flag_in_production("full-0", &over)),
        &[],
    );
    let mut archived = flag_in_production("f", &over);
    archived["archived"] = json!(true);
    assert_fields(fixture.flag_errors(archived), &[]);
    // A segment is in every environment, and counts in the fullest.
    assert_fields(
        fixture.segment_errors(json!({"key": "s", "rules": [[matches(&fits)]]})),
        &[],
    );
    assert_error(
        fixture.segment_errors(json!({"key": "s", "rules": [[matches(&over)]]})),
        "rules[0][0].values[3]",
        message,
    );
    // A stored segment's patterns count for flags.
    let fixture = fixture.with_segment(json!({"key": "patterns", "rules": [[matches(&[BIG])]]}));
    let third = format!("{PROD}.rules[0].conditions[0].values[2]");
    assert_error(
        fixture.flag_errors(flag_in_production("f", &fits)),
        &third,
        "would compile to 64.7 MiB",
    );
    // Stored patterns over the limit (written before there was one) block no write that adds
    // no pattern bytes to what it replaces; a write that adds some is refused.
    let fixture = fixture.with_flag(flag_in_production("full-19", &[BIG, BIG, BIG]));
    assert_fields(
        fixture.flag_errors(flag_in_production("full-0", &[BIG, BIG, BIG])),
        &[],
    );
    assert_error(
        fixture.flag_errors(flag_in_production("full-0", &over)),
        &third,
        "would compile to 64.7 MiB",
    );
}

/// A boolean flag `key` whose production config has one rule matching `patterns`.
fn flag_in_production(key: &str, patterns: &[&str]) -> Value {
    json!({
        "key": key, "type": "boolean",
        "environments": {"production": {"enabled": true, "rules": [
            {"conditions": [matches(patterns)], "serve": {"variant": "on"}}]}}
    })
}

// ---------------------------------------------------------------------------------------------
// Many errors at once

#[test]
fn every_error_is_reported() {
    let fixture = Fixture::new();
    let result = validate_flag(
        &fixture.flag(json!({
            "key": "Bad",
            "type": "string",
            "variants": [{"key": "a", "value": 1}, {"key": "a", "value": "x"}],
            "environments": {
                "qa": {},
                "production": {
                    "off_variant": "z",
                    "prerequisites": [{"flag": "ghost", "variants": ["on"]}],
                    "rules": [{"conditions": [
                        {"attribute": "v", "operator": "semver_gt", "values": ["1"]},
                        {"segment": "ghosts"}
                    ], "serve": {"variant": "a"}}]
                }
            }
        })),
        &fixture.view(),
    );
    let err = result.expect_err("invalid");
    assert_fields(
        err.0.clone(),
        &[
            "key",
            "variants[0].value",
            "variants[1].key",
            "environments.production.off_variant",
            "environments.production.prerequisites[0].flag",
            "environments.production.rules[0].conditions[0].values[0]",
            "environments.production.rules[0].conditions[1].segment",
            "environments.production.default.variant",
            "environments.qa",
        ],
    );
    assert_eq!(
        err.to_string(),
        "9 invalid field(s): key: must match ^[a-z0-9][a-z0-9._-]{0,127}$"
    );
}

#[test]
fn the_error_list_is_capped() {
    let fixture = Fixture::new();
    let values: Vec<String> = vec![String::new(); 5_000];
    let errors = fixture.segment_errors(json!({"key": "s", "included": values}));
    assert_eq!(errors.len(), 201);
    assert_eq!(errors[200].field, "");
    assert!(
        errors[200].message.starts_with("4800 more error(s)"),
        "{}",
        errors[200].message
    );
}

#[test]
fn field_errors_serialize_as_field_and_message() {
    let error = FieldError::new("variants[0].key", "must not be empty");
    assert_eq!(
        serde_json::to_value(&error).unwrap(),
        json!({"field": "variants[0].key", "message": "must not be empty"})
    );
}

// ---------------------------------------------------------------------------------------------
// Dependants

#[test]
fn flag_dependants_name_flags_and_environments() {
    let fixture = Fixture::new()
        .with_flag(json!({
            "key": "cart", "type": "boolean", "environments": {
                "production": {"prerequisites": [{"flag": "checkout", "variants": ["on"]}]},
                "development": {"prerequisites": [{"flag": "checkout", "variants": ["on"]}]},
            }
        }))
        .with_flag(requires("promo", "production", "checkout"))
        .with_flag(json!({
            "key": "retired", "type": "boolean", "archived": true, "environments": {
                "production": {"prerequisites": [{"flag": "checkout", "variants": ["on"]}]}
            }
        }));
    assert_eq!(
        flag_dependants("checkout", &fixture.view()),
        [
            "flag cart (prerequisite in development, production)",
            "flag promo (prerequisite in production)",
        ]
    );
    assert!(flag_dependants("theme", &fixture.view()).is_empty());
    assert!(flag_dependants("cart", &fixture.view()).is_empty());
}

#[test]
fn segment_dependants_name_flags_environments_and_segments() {
    let fixture = Fixture::new()
        .with_flag(json!({
            "key": "cart", "type": "boolean", "environments": {
                "production": {"rules": [{
                    "conditions": [{"segment": "beta", "negate": true}],
                    "serve": {"variant": "on"}
                }]}
            }
        }))
        .with_segment(json!({"key": "insiders", "rules": [
            [{"attribute": "a", "operator": "exists"}],
            [{"segment": "beta"}]
        ]}));
    assert_eq!(
        segment_dependants("beta", &fixture.view()),
        ["flag cart (rule in production)", "segment insiders"]
    );
    assert!(segment_dependants("staff", &fixture.view()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Never panics

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            "\\PC{0,12}".prop_map(Value::String),
            "[a-z(){}\\[\\]*+?\\\\.^$|0-9:TZ-]{0,16}".prop_map(Value::String),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop::collection::vec(inner, 0..3).prop_map(Value::Array)
        })
    }

    fn operator() -> impl Strategy<Value = &'static str> {
        prop::sample::select(
            hata_core::model::Operator::ALL
                .iter()
                .map(|o| o.as_str())
                .collect::<Vec<_>>(),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn validation_never_panics(
            op in operator(),
            values in prop::collection::vec(any_json(), 0..4),
            attribute in "\\PC{0,8}",
            variant in "[a-z]{0,3}",
            weights in prop::collection::vec(any::<u32>(), 0..4),
            prerequisite in prop::sample::select(vec!["f", "a", "b", "nope", ""]),
        ) {
            let fixture = Fixture::new()
                .with_flag(requires("a", "production", "b"))
                .with_flag(requires("b", "production", "f"));
            let weights: Vec<Value> = weights
                .iter()
                .map(|w| json!({"variant": variant, "weight": w}))
                .collect();
            let flag = json!({
                "key": "f", "type": "boolean",
                "environments": {"production": {
                    "off_variant": variant,
                    "prerequisites": [{"flag": prerequisite, "variants": [variant]}],
                    "targets": [{"variant": variant, "values": [attribute]}],
                    "rules": [{"conditions": [
                        {"attribute": attribute, "operator": op, "values": values},
                        {"segment": variant}
                    ], "serve": {"rollout": {"weights": weights}}}]
                }}
            });
            let _ = fixture.flag_errors(flag);
            let _ = fixture.segment_errors(json!({
                "key": "s", "included": [attribute],
                "rules": [[{"attribute": attribute, "operator": op, "values": values}]]
            }));
        }
    }
}

#[test]
fn config_errors_can_be_made_relative_to_the_config() {
    let e = |field: &str| FieldError::new(field, "m");
    let errors = ValidationErrors(vec![
        e("environments.prod.rules[1].conditions[0].values[0]"),
        e("environments.prod"),
        e("environments.production.off_variant"),
        e("environments[\"prod.eu\"].default.variant"),
        e("key"),
    ]);
    assert_eq!(
        fields(&errors.clone().relative_to_config("prod").0),
        [
            "rules[1].conditions[0].values[0]",
            "",
            "environments.production.off_variant",
            "environments[\"prod.eu\"].default.variant",
            "key"
        ]
    );
    assert_eq!(
        fields(&errors.relative_to_config("prod.eu").0)[3],
        "default.variant"
    );
}

// ---------------------------------------------------------------------------------------------
// U+0000

#[test]
fn no_text_may_contain_nul() {
    let fixture = Fixture::new();
    let errors = fixture.flag_errors(json!({
        "key": "f", "type": "json",
        "name": "a\u{0}", "description": "\u{0}", "owner": "o\u{0}", "tags": ["t", "t\u{0}"],
        "variants": [
            {"key": "a", "value": {"nested": ["x", "y\u{0}"], "k\u{0}": 1}, "name": "n\u{0}"},
            {"key": "b", "value": "\u{0}", "description": "d\u{0}"}
        ],
        "environments": {"production": {"enabled": true, "targets": [
            {"variant": "a", "values": ["user\u{0}"]}
        ], "rules": [{
            "description": "r\u{0}",
            "conditions": [
                {"attribute": "email\u{0}", "operator": "in", "values": ["x\u{0}"]},
                {"attribute": "plan", "operator": "matches", "values": ["^a\u{0}$"]}
            ],
            "serve": {"rollout": {"salt": "s\u{0}", "weights": [{"variant": "a", "weight": 100000}]}}
        }]}}
    }));
    let nul: Vec<&str> = errors
        .iter()
        .filter(|e| e.message == NUL_MESSAGE || e.message.starts_with("member name"))
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(
        nul,
        [
            "name",
            "description",
            "owner",
            "tags[1]",
            "variants[0].value.nested[1]",
            "variants[0].value[\"k\\u0000\"]",
            "variants[0].name",
            "variants[1].value",
            "variants[1].description",
            "environments.production.targets[0].values[0]",
            "environments.production.rules[0].description",
            "environments.production.rules[0].conditions[0].attribute",
            "environments.production.rules[0].conditions[0].values[0]",
            "environments.production.rules[0].conditions[1].values[0]",
            "environments.production.rules[0].serve.rollout.salt",
        ],
        "{errors:#?}"
    );
    assert!(errors
        .iter()
        .any(|e| e.field == "variants[0].value[\"k\\u0000\"]"
            && e.message == "member name must not contain U+0000"));

    assert_fields(
        fixture.segment_errors(json!({
            "key": "s", "name": "\u{0}", "included": ["a\u{0}"], "excluded": ["b"],
            "rules": [[{"attribute": "a", "operator": "in", "values": ["\u{0}"]}]]
        })),
        &["name", "included[0]", "rules[0][0].values[0]"],
    );
    let project: Project =
        serde_json::from_value(json!({"key": "p", "description": "x\u{0}y"})).unwrap();
    assert_error(
        errors_of(validate_project(&project)),
        "description",
        NUL_MESSAGE,
    );
    let environment: Environment =
        serde_json::from_value(json!({"key": "production", "name": "\u{0}"})).unwrap();
    assert_error(
        errors_of(validate_environment(&environment)),
        "name",
        NUL_MESSAGE,
    );
    // A key with NUL is reported twice: it is not a key, and it holds U+0000.
    assert_fields(
        fixture.flag_errors(json!({"key": "f\u{0}", "type": "boolean"})),
        &["key", "key"],
    );

    // The text `\u0000` (a backslash, then u0000) is no NUL.
    assert_fields(
        fixture.flag_errors(json!({"key": "f", "type": "boolean", "description": "\\u0000"})),
        &[],
    );
    assert_eq!(check_text(&json!({"a": ["\\u0000", "\\\\u0000"]})), Ok(()));
    assert_fields(
        errors_of(check_text(
            &json!({"a": ["x", "\\\u{0}"], "b": {"\u{0}": 1}}),
        )),
        &["a[1]", "b[\"\\u0000\"]"],
    );
}
