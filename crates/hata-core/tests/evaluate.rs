//! Table-driven tests of the evaluation contract (`shared/spec/evaluation.md`), one table per
//! area: operators, attribute lookup, segments, targets, prerequisites, reasons, accessors.

use std::borrow::Cow;

use hata_core::context::{ContextError, MAX_MEMBERS};
use hata_core::evaluate::{Context, ErrorCode, Reason};
use hata_core::model::{Flag, Segment};
use hata_core::snapshot::{CompileError, Snapshot};
use serde_json::{json, Map, Value};

const ENV: &str = "prod";

fn flag(v: Value) -> Flag {
    let mut f: Flag = serde_json::from_value(v).expect("test flag JSON");
    // Normalize only the environments the test wrote, so that a flag can lack `prod`.
    let envs: Vec<String> = f.environments.keys().cloned().collect();
    f.normalize(envs.iter().map(String::as_str));
    f
}

fn segment(v: Value) -> Segment {
    serde_json::from_value(v).expect("test segment JSON")
}

fn compile(flags: &[Value], segments: &[Value]) -> Result<Snapshot, CompileError> {
    let flags: Vec<Flag> = flags.iter().cloned().map(flag).collect();
    let segments: Vec<Segment> = segments.iter().cloned().map(segment).collect();
    Snapshot::compile(ENV, &flags, &segments)
}

fn snapshot(flags: &[Value], segments: &[Value]) -> Snapshot {
    compile(flags, segments).expect("compiles")
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("context must be an object, got {other}"),
    }
}

/// A boolean flag `f` serving `on` when `condition` holds, `off` otherwise.
fn one_rule(condition: Value) -> Value {
    json!({
        "key": "f", "type": "boolean",
        "environments": {"prod": {"enabled": true, "rules": [
            {"id": "r", "conditions": [condition], "serve": {"variant": "on"}}
        ]}}
    })
}

fn holds(snap: &Snapshot, context: Value) -> bool {
    let m = obj(context);
    let e = snap.evaluate("f", &Context::new(&m));
    assert!(!e.is_error(), "{e:?}");
    e.variant == "on"
}

/// Operator, values, negate, attribute value (`None` = missing), expected.
type OperatorCase = (&'static str, Value, bool, Option<Value>, bool);

#[test]
fn operators() {
    let cases: Vec<OperatorCase> = vec![
        // in: type-aware equality
        ("in", json!(["a", "b"]), false, Some(json!("a")), true),
        ("in", json!(["a", "b"]), false, Some(json!("c")), false),
        ("in", json!(["a", "b"]), true, Some(json!("c")), true),
        ("in", json!(["a", "b"]), true, Some(json!("a")), false),
        ("in", json!(["1"]), false, Some(json!(1)), false),
        ("in", json!([1]), false, Some(json!("1")), false),
        ("in", json!([2]), false, Some(json!(2.0)), true),
        ("in", json!([2.0]), false, Some(json!(2)), true),
        ("in", json!([0]), false, Some(json!(-0.0)), true),
        ("in", json!([true]), false, Some(json!(true)), true),
        ("in", json!([true]), false, Some(json!(false)), false),
        ("in", json!(["true"]), false, Some(json!(true)), false),
        ("in", json!([1]), false, Some(json!(true)), false),
        ("in", json!(["a"]), false, Some(json!(["a"])), false),
        ("in", json!(["a"]), true, Some(json!(["a"])), false),
        ("in", json!(["a"]), true, Some(json!({"a": 1})), false),
        ("in", json!(["a"]), true, Some(json!(null)), false),
        ("in", json!(["a"]), true, None, false),
        // contains / starts_with / ends_with: strings only, case-sensitive
        (
            "contains",
            json!(["ell"]),
            false,
            Some(json!("hello")),
            true,
        ),
        (
            "contains",
            json!(["ELL"]),
            false,
            Some(json!("hello")),
            false,
        ),
        (
            "contains",
            json!(["x", "lo"]),
            false,
            Some(json!("hello")),
            true,
        ),
        ("contains", json!(["x"]), true, Some(json!("hello")), true),
        ("contains", json!(["1"]), false, Some(json!(1)), false),
        ("contains", json!(["1"]), true, Some(json!(1)), false),
        (
            "starts_with",
            json!(["he"]),
            false,
            Some(json!("hello")),
            true,
        ),
        (
            "starts_with",
            json!(["lo"]),
            false,
            Some(json!("hello")),
            false,
        ),
        (
            "starts_with",
            json!(["lo"]),
            true,
            Some(json!("hello")),
            true,
        ),
        ("starts_with", json!(["t"]), true, Some(json!(true)), false),
        (
            "ends_with",
            json!(["lo"]),
            false,
            Some(json!("hello")),
            true,
        ),
        (
            "ends_with",
            json!(["he"]),
            false,
            Some(json!("hello")),
            false,
        ),
        (
            "ends_with",
            json!(["@corp.com"]),
            false,
            Some(json!("a@corp.com")),
            true,
        ),
        ("ends_with", json!(["x"]), true, None, false),
        // matches: unanchored search, any regex
        ("matches", json!(["ell"]), false, Some(json!("hello")), true),
        (
            "matches",
            json!(["^ell"]),
            false,
            Some(json!("hello")),
            false,
        ),
        (
            "matches",
            json!(["^x", "o$"]),
            false,
            Some(json!("hello")),
            true,
        ),
        (
            "matches",
            json!(["^h.*o$"]),
            true,
            Some(json!("hello")),
            false,
        ),
        ("matches", json!(["1"]), false, Some(json!(1)), false),
        ("matches", json!(["1"]), true, Some(json!(1)), false),
        // numeric comparisons
        ("lt", json!([10]), false, Some(json!(9)), true),
        ("lt", json!([10]), false, Some(json!(10)), false),
        ("lte", json!([10]), false, Some(json!(10.0)), true),
        ("lte", json!([10]), false, Some(json!(10.5)), false),
        ("gt", json!([10]), false, Some(json!(10.5)), true),
        ("gt", json!([10]), false, Some(json!(10)), false),
        ("gt", json!([10]), true, Some(json!(10)), true),
        ("gte", json!([10]), false, Some(json!(10)), true),
        ("gte", json!([-1.5]), false, Some(json!(-2)), false),
        ("gt", json!([10]), false, Some(json!("11")), false),
        ("gt", json!([10]), true, Some(json!("11")), false),
        ("lt", json!([10]), true, Some(json!(null)), false),
        ("lt", json!([10]), true, Some(json!(true)), false),
        // timestamps: RFC 3339 with offset or epoch millis
        (
            "before",
            json!(["2024-01-01T00:00:00Z"]),
            false,
            Some(json!("2023-12-31T23:59:59Z")),
            true,
        ),
        (
            "before",
            json!(["2024-01-01T00:00:00Z"]),
            false,
            Some(json!("2024-01-01T00:00:00Z")),
            false,
        ),
        (
            "before",
            json!(["2024-01-01T00:00:00Z"]),
            false,
            Some(json!("2024-01-01T01:00:00+02:00")),
            true,
        ),
        (
            "before",
            json!(["2024-01-01T00:00:00Z"]),
            false,
            Some(json!(1_704_067_199_999_i64)),
            true,
        ),
        (
            "before",
            json!([1_704_067_200_000_i64]),
            false,
            Some(json!("2023-12-31t23:59:59.999z")),
            true,
        ),
        (
            "after",
            json!(["2024-01-01T00:00:00Z"]),
            false,
            Some(json!("2024-01-01T00:00:00.000000001Z")),
            true,
        ),
        (
            "after",
            json!(["2024-01-01T00:00:00Z"]),
            false,
            Some(json!(1_704_067_200_000_i64)),
            false,
        ),
        (
            "after",
            json!(["2024-01-01T00:00:00Z"]),
            true,
            Some(json!(1_704_067_200_000_i64)),
            true,
        ),
        (
            "after",
            json!(["2024-01-01T00:00:00Z"]),
            false,
            Some(json!("2025-01-01")),
            false,
        ),
        (
            "after",
            json!(["2024-01-01T00:00:00Z"]),
            true,
            Some(json!("2025-01-01")),
            false,
        ),
        (
            "after",
            json!(["2024-01-01T00:00:00Z"]),
            true,
            Some(json!("2025-01-01 00:00:00Z")),
            false,
        ),
        (
            "before",
            json!(["2024-01-01T00:00:00Z"]),
            true,
            Some(json!(true)),
            false,
        ),
        // semver: strict, build metadata ignored
        (
            "semver_eq",
            json!(["1.2.3"]),
            false,
            Some(json!("1.2.3")),
            true,
        ),
        (
            "semver_eq",
            json!(["1.2.3"]),
            false,
            Some(json!("1.2.3+build.7")),
            true,
        ),
        (
            "semver_eq",
            json!(["1.2.3"]),
            false,
            Some(json!("1.2.4")),
            false,
        ),
        (
            "semver_eq",
            json!(["1.2.3"]),
            true,
            Some(json!("1.2.4")),
            true,
        ),
        (
            "semver_lt",
            json!(["1.2.3"]),
            false,
            Some(json!("1.2.3-beta.1")),
            true,
        ),
        (
            "semver_lt",
            json!(["1.2.3"]),
            false,
            Some(json!("1.10.0")),
            false,
        ),
        (
            "semver_gt",
            json!(["1.2.3"]),
            false,
            Some(json!("1.10.0")),
            true,
        ),
        (
            "semver_gt",
            json!(["1.2.3-alpha"]),
            false,
            Some(json!("1.2.3-beta")),
            true,
        ),
        (
            "semver_gt",
            json!(["1.2.3"]),
            false,
            Some(json!("v2.0.0")),
            false,
        ),
        (
            "semver_gt",
            json!(["1.2.3"]),
            true,
            Some(json!("v2.0.0")),
            false,
        ),
        (
            "semver_gt",
            json!(["1.2.3"]),
            true,
            Some(json!("2.0")),
            false,
        ),
        ("semver_gt", json!(["1.2.3"]), true, Some(json!(2)), false),
        // exists: the one operator where negate turns a missing attribute into true
        ("exists", json!([]), false, Some(json!("x")), true),
        ("exists", json!([]), false, Some(json!(false)), true),
        ("exists", json!([]), false, Some(json!({})), true),
        ("exists", json!([]), false, Some(json!(null)), false),
        ("exists", json!([]), false, None, false),
        ("exists", json!([]), true, None, true),
        ("exists", json!([]), true, Some(json!(null)), true),
        ("exists", json!([]), true, Some(json!(0)), false),
    ];
    for (op, values, negate, attr, want) in cases {
        let snap = snapshot(
            &[one_rule(
                json!({"attribute": "a", "operator": op, "values": values, "negate": negate}),
            )],
            &[],
        );
        let mut context = json!({"targetingKey": "u"});
        if let Some(a) = &attr {
            context["a"] = a.clone();
        }
        assert_eq!(
            holds(&snap, context),
            want,
            "{op} {values} negate={negate} attribute={attr:?}"
        );
    }
}

#[test]
fn exists_may_omit_values() {
    let snap = snapshot(
        &[one_rule(json!({"attribute": "a", "operator": "exists"}))],
        &[],
    );
    assert!(holds(&snap, json!({"a": 1})));
    assert!(!holds(&snap, json!({})));
}

/// Attribute, context, expected: does `attribute in ["yes"]` hold?
#[test]
fn attribute_lookup() {
    let cases: Vec<(&str, Value, bool)> = vec![
        ("plan", json!({"plan": "yes"}), true),
        ("org.plan", json!({"org": {"plan": "yes"}}), true),
        (
            "org.team.plan",
            json!({"org": {"team": {"plan": "yes"}}}),
            true,
        ),
        ("org.plan", json!({"org": {"plan": "no"}}), false),
        // An exact top-level member wins over the path, even when the path would match.
        (
            "org.plan",
            json!({"org.plan": "yes", "org": {"plan": "no"}}),
            true,
        ),
        (
            "org.plan",
            json!({"org.plan": "no", "org": {"plan": "yes"}}),
            false,
        ),
        // ... even when it is null (present, so it decides; null makes the condition false).
        (
            "org.plan",
            json!({"org.plan": null, "org": {"plan": "yes"}}),
            false,
        ),
        ("org.plan", json!({"org": "yes"}), false),
        ("org.plan", json!({"org": ["yes"]}), false),
        ("org.plan", json!({"org": {}}), false),
        ("org.plan", json!({}), false),
        ("targetingKey", json!({"targetingKey": "yes"}), true),
        ("targetingKey", json!({}), false),
        ("a.", json!({"a": {"": "yes"}}), true),
    ];
    for (attribute, context, want) in cases {
        let snap = snapshot(
            &[one_rule(
                json!({"attribute": attribute, "operator": "in", "values": ["yes"]}),
            )],
            &[],
        );
        assert_eq!(
            holds(&snap, context.clone()),
            want,
            "{attribute} in {context}"
        );
    }
}

fn segments() -> Vec<Value> {
    vec![
        json!({"key": "beta", "included": ["inc"], "excluded": ["exc"],
               "rules": [[{"attribute": "plan", "operator": "in", "values": ["pro"]},
                          {"attribute": "country", "operator": "in", "values": ["de"]}],
                         [{"attribute": "staff", "operator": "in", "values": [true]}]]}),
        json!({"key": "lists-only", "included": ["inc"], "excluded": ["exc"]}),
        json!({"key": "outer", "rules": [[{"segment": "beta"}]]}),
        json!({"key": "not-beta", "rules": [[{"segment": "beta", "negate": true}]]}),
        json!({"key": "everyone", "rules": [[]]}),
    ]
}

#[test]
fn segment_membership() {
    // Segment, negate, context, expected.
    let cases: Vec<(&str, bool, Value, bool)> = vec![
        ("beta", false, json!({"targetingKey": "inc"}), true),
        ("beta", false, json!({"targetingKey": "someone"}), false),
        // Included wins over the rules; excluded beats the rules.
        (
            "beta",
            false,
            json!({"targetingKey": "inc", "plan": "free"}),
            true,
        ),
        (
            "beta",
            false,
            json!({"targetingKey": "exc", "plan": "pro", "country": "de"}),
            false,
        ),
        (
            "beta",
            false,
            json!({"targetingKey": "x", "plan": "pro", "country": "de"}),
            true,
        ),
        // A rule is an AND of its conditions; rules are ORed.
        (
            "beta",
            false,
            json!({"targetingKey": "x", "plan": "pro", "country": "fr"}),
            false,
        ),
        (
            "beta",
            false,
            json!({"targetingKey": "x", "staff": true}),
            true,
        ),
        // Without a targetingKey only the rules count.
        ("beta", false, json!({"plan": "pro", "country": "de"}), true),
        ("beta", false, json!({}), false),
        // A non-string targetingKey matches no list.
        ("lists-only", false, json!({"targetingKey": 7}), false),
        ("lists-only", false, json!({"targetingKey": "inc"}), true),
        ("lists-only", false, json!({"targetingKey": "exc"}), false),
        ("lists-only", true, json!({"targetingKey": "exc"}), true),
        ("lists-only", true, json!({"targetingKey": "inc"}), false),
        ("lists-only", true, json!({}), true),
        // Nested segments.
        ("outer", false, json!({"targetingKey": "inc"}), true),
        ("outer", false, json!({"staff": true}), true),
        (
            "outer",
            false,
            json!({"targetingKey": "exc", "staff": true}),
            false,
        ),
        ("not-beta", false, json!({"targetingKey": "inc"}), false),
        ("not-beta", false, json!({"targetingKey": "other"}), true),
        // A rule with no conditions holds for everyone.
        ("everyone", false, json!({}), true),
    ];
    for (seg, negate, context, want) in cases {
        let snap = snapshot(
            &[one_rule(json!({"segment": seg, "negate": negate}))],
            &segments(),
        );
        assert_eq!(
            holds(&snap, context.clone()),
            want,
            "segment {seg} negate={negate} {context}"
        );
    }
}

#[test]
fn targets() {
    let f = json!({
        "key": "f", "type": "string",
        "variants": [{"key": "a", "value": "A"}, {"key": "b", "value": "B"}, {"key": "c", "value": "C"}],
        "environments": {"prod": {"enabled": true, "off_variant": "c",
            "targets": [{"variant": "a", "values": ["u1", "both"]}, {"variant": "b", "values": ["u2", "both"]}],
            "rules": [{"id": "r", "conditions": [], "serve": {"variant": "b"}}],
            "default": {"variant": "c"}}}
    });
    let snap = snapshot(&[f], &[]);
    // Context, variant, reason, rule id.
    let cases: Vec<(Value, &str, Reason, Option<&str>)> = vec![
        (
            json!({"targetingKey": "u1"}),
            "a",
            Reason::TargetingMatch,
            None,
        ),
        (
            json!({"targetingKey": "u2"}),
            "b",
            Reason::TargetingMatch,
            None,
        ),
        // The first target listing a key wins.
        (
            json!({"targetingKey": "both"}),
            "a",
            Reason::TargetingMatch,
            None,
        ),
        // Otherwise the rules decide.
        (
            json!({"targetingKey": "u3"}),
            "b",
            Reason::TargetingMatch,
            Some("r"),
        ),
        (json!({}), "b", Reason::TargetingMatch, Some("r")),
        (
            json!({"targetingKey": 1}),
            "b",
            Reason::TargetingMatch,
            Some("r"),
        ),
    ];
    for (context, variant, reason, rule) in cases {
        let m = obj(context.clone());
        let e = snap.evaluate("f", &Context::new(&m));
        assert_eq!(
            (e.variant, e.reason, e.rule_id),
            (variant, reason, rule),
            "{context}"
        );
    }
}

fn bool_flag(key: &str, enabled: bool, prerequisites: Value, default: &str) -> Value {
    json!({"key": key, "type": "boolean",
           "environments": {"prod": {"enabled": enabled, "prerequisites": prerequisites,
                                     "default": {"variant": default}}}})
}

#[test]
fn prerequisites() {
    let pre = |flag: &str, variants: Value| json!([{"flag": flag, "variants": variants}]);
    let string_flag = json!({
        "key": "color", "type": "string",
        "variants": [{"key": "red", "value": "r"}, {"key": "blue", "value": "b"}],
        "environments": {"prod": {"enabled": true, "off_variant": "red",
            "targets": [{"variant": "blue", "values": ["bluey"]}],
            "default": {"variant": "red"}}}
    });
    let flags = vec![
        bool_flag("base-on", true, json!([]), "on"),
        bool_flag("base-off-served", true, json!([]), "off"),
        bool_flag("base-disabled", false, json!([]), "on"),
        string_flag,
        json!({"key": "archived", "type": "boolean", "archived": true,
               "environments": {"prod": {"enabled": true, "default": {"variant": "on"}}}}),
        json!({"key": "elsewhere", "type": "boolean",
               "environments": {"staging": {"enabled": true, "default": {"variant": "on"}}}}),
        bool_flag("needs-on", true, pre("base-on", json!(["on"])), "on"),
        bool_flag(
            "needs-on-or-off",
            true,
            pre("base-off-served", json!(["on", "off"])),
            "on",
        ),
        bool_flag(
            "needs-unlisted",
            true,
            pre("base-off-served", json!(["on"])),
            "on",
        ),
        // A disabled prerequisite fails even though it serves a listed variant.
        bool_flag(
            "needs-disabled",
            true,
            pre("base-disabled", json!(["on", "off"])),
            "on",
        ),
        bool_flag(
            "needs-archived",
            true,
            pre("archived", json!(["on", "off"])),
            "on",
        ),
        bool_flag(
            "needs-elsewhere",
            true,
            pre("elsewhere", json!(["on", "off"])),
            "on",
        ),
        bool_flag("needs-blue", true, pre("color", json!(["blue"])), "on"),
        // Chains: a failure anywhere fails every dependant.
        bool_flag("chain-ok", true, pre("needs-on", json!(["on"])), "on"),
        bool_flag(
            "chain-broken",
            true,
            pre("needs-disabled", json!(["on", "off"])),
            "on",
        ),
        bool_flag(
            "chain-broken-2",
            true,
            pre("chain-broken", json!(["on", "off"])),
            "on",
        ),
        // All prerequisites must hold.
        json!({"key": "needs-two", "type": "boolean",
               "environments": {"prod": {"enabled": true, "default": {"variant": "on"},
                   "prerequisites": [{"flag": "base-on", "variants": ["on"]},
                                     {"flag": "needs-unlisted", "variants": ["on", "off"]}]}}}),
        // A disabled flag is DISABLED before its prerequisites are looked at.
        bool_flag(
            "disabled-with-broken-pre",
            false,
            pre("base-disabled", json!(["on"])),
            "on",
        ),
    ];
    let snap = snapshot(&flags, &[]);
    let cases: Vec<(&str, Value, &str, Reason)> = vec![
        ("needs-on", json!({}), "on", Reason::Default),
        ("needs-on-or-off", json!({}), "on", Reason::Default),
        (
            "needs-unlisted",
            json!({}),
            "off",
            Reason::PrerequisiteFailed,
        ),
        (
            "needs-disabled",
            json!({}),
            "off",
            Reason::PrerequisiteFailed,
        ),
        (
            "needs-archived",
            json!({}),
            "off",
            Reason::PrerequisiteFailed,
        ),
        (
            "needs-elsewhere",
            json!({}),
            "off",
            Reason::PrerequisiteFailed,
        ),
        (
            "needs-blue",
            json!({"targetingKey": "bluey"}),
            "on",
            Reason::Default,
        ),
        (
            "needs-blue",
            json!({"targetingKey": "other"}),
            "off",
            Reason::PrerequisiteFailed,
        ),
        ("chain-ok", json!({}), "on", Reason::Default),
        ("chain-broken", json!({}), "off", Reason::PrerequisiteFailed),
        (
            "chain-broken-2",
            json!({}),
            "off",
            Reason::PrerequisiteFailed,
        ),
        ("needs-two", json!({}), "off", Reason::PrerequisiteFailed),
        (
            "disabled-with-broken-pre",
            json!({}),
            "off",
            Reason::Disabled,
        ),
    ];
    for (key, context, variant, reason) in cases {
        let m = obj(context.clone());
        let e = snap.evaluate(key, &Context::new(&m));
        assert_eq!((e.variant, e.reason), (variant, reason), "{key} {context}");
    }
    // Archived and unconfigured flags are missing.
    for key in ["archived", "elsewhere", "nope"] {
        let e = snap.evaluate(key, &Context::empty());
        assert_eq!(e.error_code, Some(ErrorCode::FlagNotFound), "{key}");
    }
}

#[test]
fn kill_switch_serves_off_variant_only() {
    let f = json!({
        "key": "f", "type": "string",
        "variants": [{"key": "a", "value": "A"}, {"key": "b", "value": "B"}],
        "environments": {"prod": {"enabled": false, "off_variant": "b",
            "prerequisites": [{"flag": "missing-env-flag", "variants": ["on"]}],
            "targets": [{"variant": "a", "values": ["u1"]}],
            "rules": [{"id": "r", "conditions": [], "serve": {"variant": "a"}}],
            "default": {"variant": "a"}}}
    });
    let other = json!({"key": "missing-env-flag", "type": "boolean", "environments": {}});
    let snap = snapshot(&[f, other], &[]);
    let m = obj(json!({"targetingKey": "u1"}));
    let e = snap.evaluate("f", &Context::new(&m));
    assert_eq!(
        (e.variant, e.value, e.reason),
        ("b", &json!("B"), Reason::Disabled)
    );
    assert_eq!(e.rule_id, None);
}

fn rollout_flag(bucket_by: Option<&str>, in_rule: bool) -> Value {
    let mut rollout = json!({"weights": [{"variant": "off", "weight": 0},
                                         {"variant": "on", "weight": 50000},
                                         {"variant": "off", "weight": 50000}]});
    if let Some(b) = bucket_by {
        rollout["bucket_by"] = json!(b);
    }
    let mut config = json!({"enabled": true});
    if in_rule {
        config["rules"] = json!([{"id": "split", "conditions": [], "serve": {"rollout": rollout}}]);
    } else {
        config["default"] = json!({"rollout": rollout});
    }
    json!({"key": "f", "type": "boolean", "environments": {"prod": config}})
}

#[test]
fn reasons() {
    let fixed = |rules: Value| {
        json!({"key": "f", "type": "boolean",
               "environments": {"prod": {"enabled": true, "rules": rules, "default": {"variant": "on"}}}})
    };
    let never = json!([{"id": "never", "conditions": [{"attribute": "x", "operator": "exists"}],
                        "serve": {"variant": "off"}}]);
    let always = json!([{"id": "always", "conditions": [], "serve": {"variant": "off"}}]);
    // Flag, context, variant, reason, rule id, bucket_by_missing.
    type Case = (
        Value,
        Value,
        &'static str,
        Reason,
        Option<&'static str>,
        bool,
    );
    let cases: Vec<Case> = vec![
        (
            fixed(json!([])),
            json!({}),
            "on",
            Reason::Static,
            None,
            false,
        ),
        (
            fixed(never.clone()),
            json!({}),
            "on",
            Reason::Default,
            None,
            false,
        ),
        (
            fixed(always),
            json!({}),
            "off",
            Reason::TargetingMatch,
            Some("always"),
            false,
        ),
        (
            bool_flag("f", false, json!([]), "on"),
            json!({}),
            "off",
            Reason::Disabled,
            None,
            false,
        ),
        // Rollouts: SPLIT when bucketed, DEFAULT + first non-zero variant when the attribute is
        // missing, null, an object or an array.
        (
            rollout_flag(None, false),
            json!({"targetingKey": "user-1"}),
            "*",
            Reason::Split,
            None,
            false,
        ),
        (
            rollout_flag(None, false),
            json!({}),
            "on",
            Reason::Default,
            None,
            true,
        ),
        (
            rollout_flag(None, false),
            json!({"targetingKey": null}),
            "on",
            Reason::Default,
            None,
            true,
        ),
        (
            rollout_flag(None, true),
            json!({"targetingKey": "u"}),
            "*",
            Reason::Split,
            Some("split"),
            false,
        ),
        (
            rollout_flag(None, true),
            json!({}),
            "on",
            Reason::Default,
            Some("split"),
            true,
        ),
        (
            rollout_flag(Some("org.id"), false),
            json!({"org": {"id": 42}}),
            "*",
            Reason::Split,
            None,
            false,
        ),
        (
            rollout_flag(Some("org.id"), false),
            json!({"org": {"id": true}}),
            "*",
            Reason::Split,
            None,
            false,
        ),
        (
            rollout_flag(Some("org.id"), false),
            json!({"targetingKey": "u"}),
            "on",
            Reason::Default,
            None,
            true,
        ),
        (
            rollout_flag(Some("org"), false),
            json!({"org": {"id": 1}}),
            "on",
            Reason::Default,
            None,
            true,
        ),
        (
            rollout_flag(Some("org"), false),
            json!({"org": [1]}),
            "on",
            Reason::Default,
            None,
            true,
        ),
    ];
    for (f, context, variant, reason, rule, missing) in cases {
        let snap = snapshot(std::slice::from_ref(&f), &[]);
        let m = obj(context.clone());
        let e = snap.evaluate("f", &Context::new(&m));
        if variant != "*" {
            assert_eq!(e.variant, variant, "{f} {context}");
        }
        assert_eq!(
            (e.reason, e.rule_id, e.bucket_by_missing),
            (reason, rule, missing),
            "{f} {context}"
        );
    }
}

#[test]
fn rollout_uses_the_spec_bucketing() {
    // new-checkout/user-1 → bucket 27752; new-checkout/user-2 → 11356.
    let f = json!({"key": "new-checkout", "type": "boolean",
        "environments": {"prod": {"enabled": true, "default": {"rollout": {"weights": [
            {"variant": "on", "weight": 20000}, {"variant": "off", "weight": 80000}]}}}}});
    let salted = json!({"key": "other", "type": "boolean",
        "environments": {"prod": {"enabled": true, "default": {"rollout": {
            "salt": "dark-mode", "bucket_by": "n",
            "weights": [{"variant": "on", "weight": 84289}, {"variant": "off", "weight": 15711}]}}}}});
    let snap = snapshot(&[f, salted], &[]);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("new-checkout", json!({"targetingKey": "user-1"}), "off"),
        ("new-checkout", json!({"targetingKey": "user-2"}), "on"),
        // dark-mode/42 → 84288 < 84289; dark-mode/2.5 → 48969; dark-mode/1e+21 → 68679.
        ("other", json!({"n": 42}), "on"),
        ("other", json!({"n": 42.0}), "on"),
        ("other", json!({"n": 2.5}), "on"),
        ("other", json!({"n": 1e21}), "on"),
    ];
    for (key, context, variant) in cases {
        let m = obj(context.clone());
        let e = snap.evaluate(key, &Context::new(&m));
        assert_eq!(
            (e.variant, e.reason),
            (variant, Reason::Split),
            "{key} {context}"
        );
    }
}

#[test]
fn typed_accessors() {
    let flags = vec![
        bool_flag("b", true, json!([]), "on"),
        json!({"key": "s", "type": "string", "variants": [{"key": "x", "value": "hello"}],
               "environments": {"prod": {"enabled": true, "default": {"variant": "x"}}}}),
        json!({"key": "n", "type": "number", "version": 7, "variants": [{"key": "x", "value": 2.5}],
               "environments": {"prod": {"enabled": true, "default": {"variant": "x"}}}}),
        json!({"key": "j", "type": "json", "variants": [{"key": "x", "value": {"a": [1]}}],
               "environments": {"prod": {"enabled": true, "default": {"variant": "x"}}}}),
    ];
    let snap = snapshot(&flags, &[]);
    let ctx = Context::empty();
    assert!(snap.evaluate_bool("b", &ctx).unwrap().value);
    assert_eq!(snap.evaluate_string("s", &ctx).unwrap().value, "hello");
    assert_eq!(snap.evaluate_number("n", &ctx).unwrap().value, 2.5);
    assert_eq!(
        snap.evaluate_json("j", &ctx).unwrap().value,
        &json!({"a": [1]})
    );
    let mismatches: Vec<(&str, &str)> = vec![
        ("b", "string"),
        ("b", "number"),
        ("b", "json"),
        ("s", "bool"),
        ("n", "string"),
        ("j", "bool"),
    ];
    for (key, accessor) in mismatches {
        let err = match accessor {
            "bool" => snap.evaluate_bool(key, &ctx).map(|_| ()),
            "string" => snap.evaluate_string(key, &ctx).map(|_| ()),
            "number" => snap.evaluate_number(key, &ctx).map(|_| ()),
            _ => snap.evaluate_json(key, &ctx).map(|_| ()),
        }
        .expect_err("type mismatch");
        assert_eq!(
            err.error_code,
            Some(ErrorCode::TypeMismatch),
            "{key} as {accessor}"
        );
        assert_eq!(err.reason, Reason::Error);
        assert_eq!(err.key, key);
    }
    let err = snap.evaluate_number("n", &ctx).map(|_| ());
    assert!(err.is_ok());
    let err = snap.evaluate_bool("n", &ctx).expect_err("mismatch");
    assert_eq!(err.flag_version, 7);
    let err = snap.evaluate_bool("zzz", &ctx).expect_err("missing");
    assert_eq!(err.error_code, Some(ErrorCode::FlagNotFound));
}

#[test]
fn result_shape() {
    let flags = vec![json!({"key": "f", "type": "boolean", "version": 3,
        "environments": {"prod": {"enabled": true, "rules": [
            {"id": "r1", "conditions": [], "serve": {"variant": "on"}}]}}})];
    let snap = snapshot(&flags, &[]);
    let ctx = Context::empty();
    let e = snap.evaluate("f", &ctx);
    assert_eq!(e.flag_version, 3);
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"key": "f", "value": true, "variant": "on", "reason": "TARGETING_MATCH", "rule_id": "r1"})
    );
    let e = snap.evaluate("nope", &ctx);
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!({"key": "nope", "value": null, "variant": null, "reason": "ERROR",
               "error_code": "FLAG_NOT_FOUND", "error_message": "flag not found"})
    );
}

#[test]
fn evaluate_all_and_metadata() {
    let flags = vec![
        bool_flag("b", true, json!([]), "on"),
        bool_flag("a", false, json!([]), "on"),
        json!({"key": "gone", "type": "boolean", "archived": true}),
    ];
    let snap = snapshot(&flags, &[]);
    assert_eq!(snap.len(), 2);
    assert_eq!(snap.env(), "prod");
    assert_eq!(snap.flag_keys().collect::<Vec<_>>(), ["a", "b"]);
    let ctx = Context::empty();
    let all: Vec<_> = snap
        .evaluate_all(&ctx)
        .map(|e| (e.key, e.variant, e.reason))
        .collect();
    assert_eq!(
        all,
        [("a", "off", Reason::Disabled), ("b", "on", Reason::Static)]
    );
    let info = snap.flag("b").unwrap();
    assert_eq!(
        info.variants().map(|(k, _)| k).collect::<Vec<_>>(),
        ["on", "off"]
    );
    assert!(snap.flag("gone").is_none());
}

#[test]
fn compile_rejects_invalid_input() {
    let with_rule = |condition: Value| one_rule(condition);
    let with_default = |default: Value| json!({"key": "f", "type": "boolean", "environments": {"prod": {"enabled": true, "default": default}}});
    // Flags, segments, a fragment of the expected message.
    let cases: Vec<(Vec<Value>, Vec<Value>, &str)> = vec![
        (
            vec![with_rule(
                json!({"attribute": "a", "operator": "matches", "values": ["("]}),
            )],
            vec![],
            "invalid regex",
        ),
        (
            vec![with_rule(
                json!({"attribute": "a", "operator": "semver_gt", "values": ["v1"]}),
            )],
            vec![],
            "SemVer",
        ),
        (
            vec![with_rule(
                json!({"attribute": "a", "operator": "before", "values": ["2024-01-01"]}),
            )],
            vec![],
            "RFC 3339",
        ),
        (
            vec![with_rule(
                json!({"attribute": "a", "operator": "gt", "values": ["1"]}),
            )],
            vec![],
            "number",
        ),
        (
            vec![with_rule(
                json!({"attribute": "a", "operator": "gt", "values": [1, 2]}),
            )],
            vec![],
            "exactly one",
        ),
        (
            vec![with_rule(
                json!({"attribute": "a", "operator": "in", "values": []}),
            )],
            vec![],
            "at least one",
        ),
        (
            vec![with_rule(
                json!({"attribute": "a", "operator": "in", "values": [null]}),
            )],
            vec![],
            "`in` takes",
        ),
        (
            vec![with_rule(
                json!({"attribute": "a", "operator": "contains", "values": [1]}),
            )],
            vec![],
            "strings",
        ),
        (
            vec![with_rule(
                json!({"attribute": "a", "operator": "exists", "values": [1]}),
            )],
            vec![],
            "no values",
        ),
        (
            vec![with_rule(json!({"segment": "nope"}))],
            vec![],
            "unknown segment",
        ),
        (
            vec![with_default(json!({"variant": "maybe"}))],
            vec![],
            "unknown variant",
        ),
        (
            vec![with_default(
                json!({"rollout": {"weights": [{"variant": "on", "weight": 1}]}}),
            )],
            vec![],
            "sum to 1",
        ),
        (
            vec![with_default(json!({"rollout": {"weights": []}}))],
            vec![],
            "sum to 0",
        ),
        (
            vec![with_default(
                json!({"rollout": {"weights": [{"variant": "on", "weight": 4294967295_u32},
                                                          {"variant": "off", "weight": 4294967295_u32}]}}),
            )],
            vec![],
            "sum to",
        ),
        (
            vec![bool_flag(
                "x",
                true,
                json!([{"flag": "x", "variants": ["on"]}]),
                "on",
            )],
            vec![],
            "cycle",
        ),
        (
            vec![
                bool_flag("x", true, json!([{"flag": "y", "variants": ["on"]}]), "on"),
                bool_flag("y", true, json!([{"flag": "x", "variants": ["on"]}]), "on"),
            ],
            vec![],
            "cycle",
        ),
        (
            vec![bool_flag(
                "x",
                true,
                json!([{"flag": "nope", "variants": ["on"]}]),
                "on",
            )],
            vec![],
            "unknown flag",
        ),
        (
            vec![
                bool_flag(
                    "x",
                    true,
                    json!([{"flag": "y", "variants": ["maybe"]}]),
                    "on",
                ),
                bool_flag("y", true, json!([]), "on"),
            ],
            vec![],
            "no variant `maybe`",
        ),
        (
            vec![
                bool_flag("x", true, json!([]), "on"),
                bool_flag("x", true, json!([]), "on"),
            ],
            vec![],
            "more than once",
        ),
        (
            vec![
                json!({"key": "f", "type": "string", "variants": [{"key": "a", "value": 1}],
                     "environments": {"prod": {"enabled": true}}}),
            ],
            vec![],
            "not of type string",
        ),
        (
            vec![
                json!({"key": "f", "type": "string", "environments": {"prod": {"enabled": true}}}),
            ],
            vec![],
            "at least one variant",
        ),
        (
            vec![],
            vec![json!({"key": "s", "rules": [[{"segment": "s"}]]})],
            "cycle",
        ),
        (
            vec![],
            vec![
                json!({"key": "s", "rules": [[{"segment": "t"}]]}),
                json!({"key": "t", "rules": [[{"segment": "s", "negate": true}]]}),
            ],
            "cycle",
        ),
        (
            vec![],
            vec![json!({"key": "s"}), json!({"key": "s"})],
            "more than once",
        ),
        (
            vec![],
            vec![
                json!({"key": "s", "rules": [[{"attribute": "a", "operator": "lt", "values": []}]]}),
            ],
            "segment `s`",
        ),
    ];
    // The limits on `matches` patterns, as validation applies them (`tests/validate.rs`).
    let patterns = |key: &str, patterns: &[&str]| {
        let mut flag =
            one_rule(json!({"attribute": "a", "operator": "matches", "values": patterns}));
        flag["key"] = json!(key);
        flag
    };
    let small: Vec<String> = (0..51).map(|i| format!("^user-{i}$")).collect();
    let small: Vec<&str> = small.iter().map(String::as_str).collect();
    let full_environment = (0..19)
        .map(|i| patterns(&format!("full-{i}"), &[BIG, BIG, BIG]))
        .chain([patterns("f", &[MEDIUM, BIG, BIG, BIG])])
        .collect();
    let cases = cases.into_iter().chain([
        (
            vec![patterns("f", &[r"\w{100}"])],
            vec![],
            "flag `f` in `prod`, rule `r`, condition 1: regex too large",
        ),
        (
            vec![patterns("f", &small)],
            vec![],
            "condition 1: more than 50 `matches` patterns; at most 50 are allowed per flag and environment",
        ),
        (
            vec![patterns("f", &[BIG, BIG, BIG, BIG])],
            vec![],
            "compile to 4.3 MiB; at most 4 MiB is allowed per flag and environment",
        ),
        (
            vec![],
            vec![json!({"key": "s", "rules": [[{"attribute": "a", "operator": "matches", "values": small}]]})],
            "segment `s`, rule 1, condition 1: more than 50 `matches` patterns; at most 50 are allowed per segment",
        ),
        (
            full_environment,
            vec![],
            "the `matches` patterns of environment `prod` compile to 67828184 bytes, more than 67108864",
        ),
    ]);
    for (flags, segments, fragment) in cases {
        let err = compile(&flags, &segments).expect_err("must not compile");
        assert!(
            err.to_string().contains(fragment),
            "{err} (wanted {fragment:?}) for {flags:?} {segments:?}"
        );
    }
}

/// Automata of 1.07 MiB and 0.54 MiB (regex-automata 0.4.19); see `tests/validate.rs`.
const BIG: &str = r"\w{20}";
const MEDIUM: &str = r"\w{5,10}";

/// A write of one flag in memory keeps the environment's patterns within their limit, as a
/// full compile does: 19 flags of three `BIG`s fill 60.9 MiB of 64.
#[test]
fn flags_written_in_memory_keep_the_environments_patterns_within_the_limit() {
    let matching = |key: &str, patterns: &[&str]| {
        let mut flag =
            one_rule(json!({"attribute": "a", "operator": "matches", "values": patterns}));
        flag["key"] = json!(key);
        flag
    };
    let flags: Vec<Value> = (0..19)
        .map(|i| matching(&format!("full-{i}"), &[BIG, BIG, BIG]))
        .collect();
    let snap = snapshot(&flags, &[]);
    let over = flag(matching("f", &[MEDIUM, BIG, BIG, BIG]));
    let err = snap
        .with_flag(&over)
        .expect("in memory")
        .expect_err("over the limit");
    assert!(
        matches!(err, CompileError::PatternsTooLarge { ref env, bytes } if env == ENV && bytes > 64 << 20),
        "{err}"
    );
    // In place of a full flag, or with a full flag deleted, the same patterns fit.
    let replacing = flag(matching("full-0", &[MEDIUM, BIG, BIG, BIG]));
    assert!(snap.with_flag(&replacing).expect("in memory").is_ok());
    let (fewer, _) = snap.without_flag("full-1").expect("in memory");
    let (more, _) = fewer.with_flag(&over).expect("in memory").expect("fits");
    let err = more
        .with_flag(&flag(matching("full-1", &[BIG, BIG, BIG])))
        .expect("in memory");
    assert!(matches!(err, Err(CompileError::PatternsTooLarge { .. })));
}

#[test]
fn compile_bounds_nesting() {
    let chain = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| {
                let pre = if i + 1 < n {
                    json!([{"flag": format!("f{}", i + 1), "variants": ["on"]}])
                } else {
                    json!([])
                };
                bool_flag(&format!("f{i}"), true, pre, "on")
            })
            .collect()
    };
    let snap = snapshot(&chain(64), &[]);
    assert_eq!(
        snap.evaluate("f0", &Context::empty()).reason,
        Reason::Default
    );
    let err = compile(&chain(65), &[]).expect_err("too deep");
    assert!(err.to_string().contains("levels deep"), "{err}");
    let err = compile(&chain(5000), &[]).expect_err("too deep");
    assert!(err.to_string().contains("levels deep"), "{err}");

    let segs = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| {
                let rules = if i + 1 < n {
                    json!([[{"segment": format!("s{}", i + 1)}]])
                } else {
                    json!([[]])
                };
                json!({"key": format!("s{i}"), "rules": rules})
            })
            .collect()
    };
    let snap = snapshot(&[one_rule(json!({"segment": "s0"}))], &segs(64));
    assert!(holds(&snap, json!({})));
    assert!(compile(&[], &segs(65)).is_err());
    assert!(compile(&[], &segs(5000)).is_err());
}

// ---- with_flag: the in-memory path of a write --------------------------------------------

/// `with_flag(new)` on a snapshot of `flags` against a full compile of `flags` with `new` in
/// place of the flag with its key (or added). Checks that the splice names where the flag was
/// and is.
fn replaced_and_full(
    flags: &[Value],
    new: Value,
) -> (
    Option<Result<Snapshot, CompileError>>,
    Result<Snapshot, CompileError>,
) {
    let before = snapshot(flags, &[segment_json()]);
    let new = flag(new);
    let mut after: Vec<Flag> = flags.iter().cloned().map(flag).collect();
    match after.iter_mut().find(|f| f.key == new.key) {
        Some(f) => *f = new.clone(),
        None => after.push(new.clone()),
    }
    let full = Snapshot::compile(ENV, &after, &[segment(segment_json())]);
    let with = before.with_flag(&new).map(|r| {
        r.map(|(snap, spliced)| {
            assert_eq!(spliced.removed, before.index_of(&new.key), "{}", new.key);
            if let Ok(full) = &full {
                assert_eq!(spliced.inserted, full.index_of(&new.key), "{}", new.key);
                assert!(snap.flag_keys().eq(full.flag_keys()));
            }
            snap
        })
    });
    (with, full)
}

fn segment_json() -> Value {
    json!({"key": "beta", "included": ["u2"]})
}

fn base_flags() -> Vec<Value> {
    vec![
        json!({"key": "a", "type": "boolean", "environments": {"prod": {"enabled": true}}}),
        json!({"key": "b", "type": "string",
               "variants": [{"key": "x", "value": "X"}, {"key": "y", "value": "Y"}],
               "environments": {"prod": {"enabled": true, "default": {"variant": "x"},
                   "prerequisites": [{"flag": "a", "variants": ["on"]}]}}}),
        json!({"key": "c", "type": "boolean", "environments": {"prod": {"enabled": false}}}),
        json!({"key": "gone", "type": "boolean", "archived": true,
               "environments": {"prod": {"enabled": true}}}),
    ]
}

fn all_of(snap: &Snapshot, context: Value) -> Vec<(String, String, Reason)> {
    let m = obj(context);
    snap.evaluate_all(&Context::new(&m))
        .map(|e| (e.key.to_string(), e.variant.to_string(), e.reason))
        .collect()
}

#[test]
fn replacing_a_flag_in_memory_matches_a_full_compile() {
    // Targeting, rules on a segment, a new prerequisite on a live flag, the kill switch.
    let news = [
        json!({"key": "c", "type": "boolean", "version": 2, "environments": {"prod": {
            "enabled": true, "targets": [{"variant": "on", "values": ["u1"]}],
            "rules": [{"id": "seg", "conditions": [{"segment": "beta"}], "serve": {"variant": "on"}}]}}}),
        json!({"key": "c", "type": "boolean", "environments": {"prod": {
            "enabled": true, "default": {"variant": "on"},
            "prerequisites": [{"flag": "b", "variants": ["y"]}]}}}),
        json!({"key": "a", "type": "boolean", "environments": {"prod": {"enabled": false}}}),
    ];
    for new in news {
        let (replaced, full) = replaced_and_full(&base_flags(), new.clone());
        let replaced = replaced.expect("in-memory path taken").expect("compiles");
        let full = full.expect("compiles");
        for user in ["u1", "u2", "u3"] {
            let ctx = json!({"targetingKey": user});
            assert_eq!(all_of(&replaced, ctx.clone()), all_of(&full, ctx), "{new}");
        }
        assert_eq!(replaced.len(), full.len());
    }
    // `b` depends on `a`: switching `a` off must reach `b` through the shared, unchanged
    // compiled `b` (prerequisites are indices, so they still point at the new `a`).
    let (replaced, _) = replaced_and_full(
        &base_flags(),
        json!({"key": "a", "type": "boolean", "environments": {"prod": {"enabled": false}}}),
    );
    let replaced = replaced.expect("in-memory path").expect("compiles");
    let m = obj(json!({"targetingKey": "u1"}));
    assert_eq!(
        replaced.evaluate("b", &Context::new(&m)).reason,
        Reason::PrerequisiteFailed
    );
}

#[test]
fn replacing_needs_a_full_compile_when_other_flags_could_change() {
    let cases = [
        // Variant keys changed: `b`'s prerequisite on `a` holds indices into them.
        json!({"key": "a", "type": "boolean",
               "variants": [{"key": "off", "value": false}, {"key": "on", "value": true}],
               "environments": {"prod": {"enabled": true}}}),
        // Archived while `b` names it as a prerequisite.
        json!({"key": "a", "type": "boolean", "archived": true,
               "environments": {"prod": {"enabled": true}}}),
        // No longer configured here while `b` names it.
        json!({"key": "a", "type": "boolean", "environments": {"staging": {"enabled": true}}}),
        // A prerequisite that is not live here (its variants are not in the snapshot).
        json!({"key": "c", "type": "boolean", "environments": {"prod": {"enabled": true,
               "prerequisites": [{"flag": "gone", "variants": ["on"]}]}}}),
    ];
    for new in cases {
        let (replaced, _) = replaced_and_full(&base_flags(), new.clone());
        assert!(replaced.is_none(), "{new}");
    }
    // A live flag names one that is not live (`gone`): a flag joining the live set could be
    // that one, so joins take the full path; so does any write of a flag that is not live.
    let mut unresolved = base_flags();
    unresolved.push(
        json!({"key": "d", "type": "boolean", "environments": {"prod": {
        "enabled": true, "prerequisites": [{"flag": "gone", "variants": ["on"]}]}}}),
    );
    for new in [
        json!({"key": "gone", "type": "boolean", "environments": {"prod": {"enabled": true}}}),
        json!({"key": "new", "type": "boolean", "environments": {"prod": {"enabled": true}}}),
        json!({"key": "gone", "type": "boolean", "archived": true,
               "variants": [{"key": "x", "value": true}, {"key": "on", "value": false}],
               "environments": {"prod": {"enabled": true}}}),
    ] {
        let (replaced, full) = replaced_and_full(&unresolved, new.clone());
        assert!(replaced.is_none(), "{new}");
        assert!(full.is_ok(), "{new}");
    }
}

#[test]
fn flags_join_and_leave_the_live_set_in_memory() {
    let cases = [
        // New flags before, between and after the others (a, b, c).
        json!({"key": "0", "type": "boolean", "environments": {"prod": {"enabled": true}}}),
        json!({"key": "bb", "type": "string",
               "variants": [{"key": "x", "value": "X"}],
               "environments": {"prod": {"enabled": true, "default": {"variant": "x"},
                   "prerequisites": [{"flag": "b", "variants": ["y"]}, {"flag": "a", "variants": ["on"]}]}}}),
        json!({"key": "z", "type": "boolean", "environments": {"prod": {"enabled": true,
               "targets": [{"variant": "on", "values": ["u1"]}]}}}),
        // Restored from the archive.
        json!({"key": "gone", "type": "boolean", "environments": {"prod": {"enabled": true}}}),
        // Archived, and no longer configured here, with nobody naming it.
        json!({"key": "c", "type": "boolean", "archived": true,
               "environments": {"prod": {"enabled": true}}}),
        json!({"key": "c", "type": "boolean", "environments": {"staging": {"enabled": true}}}),
        // `e` leaves (it names `b`; nobody names `e`).
        json!({"key": "e", "type": "boolean", "archived": true,
               "environments": {"prod": {"enabled": true}}}),
        // Created, but not configured here: nothing live changes.
        json!({"key": "elsewhere", "type": "boolean", "environments": {"staging": {"enabled": true}}}),
    ];
    // `b` is named by a flag after it, so inserting before `b` moves both the prerequisite
    // and its target.
    let mut flags = base_flags();
    flags[0] = json!({"key": "a", "type": "boolean",
        "environments": {"prod": {"enabled": true, "default": {"variant": "on"}}}});
    flags.push(
        json!({"key": "e", "type": "boolean", "environments": {"prod": {"enabled": true,
        "prerequisites": [{"flag": "b", "variants": ["x"]}]}}}),
    );
    for new in cases {
        let (with, full) = replaced_and_full(&flags, new.clone());
        let with = with
            .unwrap_or_else(|| panic!("in-memory path for {new}"))
            .expect("compiles");
        let full = full.expect("compiles");
        for user in ["u1", "u2", "u3"] {
            let ctx = json!({"targetingKey": user});
            assert_eq!(all_of(&with, ctx.clone()), all_of(&full, ctx), "{new}");
        }
    }
    // The prerequisite of `e` on `b` still reaches `b` after a flag is inserted before it:
    // `b` serves `x` only while `a` is on, so switching `a` off must fail `e`'s prerequisite.
    let before = snapshot(&flags, &[segment_json()]);
    let (inserted, _) = before
        .with_flag(&flag(
            json!({"key": "0", "type": "boolean", "environments": {"prod": {}}}),
        ))
        .expect("in memory")
        .expect("compiles");
    let (off, _) = inserted
        .with_flag(&flag(
            json!({"key": "a", "type": "boolean", "environments": {"prod": {"enabled": false}}}),
        ))
        .expect("in memory")
        .expect("compiles");
    let m = obj(json!({"targetingKey": "u1"}));
    assert_eq!(
        off.evaluate("e", &Context::new(&m)).reason,
        Reason::PrerequisiteFailed
    );
    assert_eq!(
        inserted.evaluate("e", &Context::new(&m)).reason,
        Reason::Default
    );
}

#[test]
fn replacing_rejects_what_a_full_compile_rejects() {
    // `b` requires `a`; `a` requiring `b` closes a cycle.
    let (replaced, full) = replaced_and_full(
        &base_flags(),
        json!({"key": "a", "type": "boolean", "environments": {"prod": {"enabled": true,
               "prerequisites": [{"flag": "b", "variants": ["x"]}]}}}),
    );
    let err = replaced.expect("in-memory path").expect_err("a cycle");
    assert!(matches!(err, CompileError::PrerequisiteCycle(_)), "{err}");
    assert!(matches!(full, Err(CompileError::PrerequisiteCycle(_))));
    // An unknown variant of a prerequisite, and an unknown segment.
    for new in [
        json!({"key": "c", "type": "boolean", "environments": {"prod": {"enabled": true,
               "prerequisites": [{"flag": "b", "variants": ["z"]}]}}}),
        json!({"key": "c", "type": "boolean", "environments": {"prod": {"enabled": true,
               "rules": [{"conditions": [{"segment": "nope"}], "serve": {"variant": "on"}}]}}}),
    ] {
        let (replaced, full) = replaced_and_full(&base_flags(), new.clone());
        assert!(replaced.expect("in-memory path").is_err(), "{new}");
        assert!(full.is_err(), "{new}");
    }
}

#[test]
fn contexts_read_as_pairs_evaluate_like_the_parsed_object() {
    let snap = snapshot(
        &[json!({
            "key": "f", "type": "boolean",
            "environments": {"prod": {"enabled": true,
                "targets": [{"variant": "off", "values": ["blocked"]}],
                "rules": [{"id": "r", "conditions": [
                    {"attribute": "plan", "operator": "in", "values": ["pro"]},
                    {"attribute": "org.tier", "operator": "in", "values": ["gold"]}
                ], "serve": {"variant": "on"}}]}}
        })],
        &[],
    );
    let cases = [
        // Duplicate names: the last one counts, as when the object is parsed into a map.
        vec![
            pair("plan", json!("free")),
            pair("plan", json!("pro")),
            pair("org", json!({"tier": "gold"})),
        ],
        vec![
            pair("plan", json!("pro")),
            pair("plan", json!("free")),
            pair("org", json!({"tier": "gold"})),
        ],
        // A member named with the dot wins over the path.
        vec![
            pair("plan", json!("pro")),
            pair("org.tier", json!("gold")),
            pair("org", json!({"tier": "lead"})),
        ],
        vec![
            pair("targetingKey", json!("blocked")),
            pair("plan", json!("pro")),
            pair("org", json!({"tier": "gold"})),
        ],
        vec![
            pair("targetingKey", json!("blocked")),
            pair("targetingKey", json!("u1")),
            pair("plan", json!("pro")),
            pair("org", json!({"tier": "gold"})),
        ],
        vec![],
    ];
    let mut served = Vec::new();
    for pairs in &cases {
        let map: Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        // The same members after a hundred others: wide enough to be indexed by name.
        let wide: Vec<_> = (0..100)
            .map(|i| pair(&format!("pad-{i}"), json!(i)))
            .chain(pairs.iter().cloned())
            .collect();
        let from_pairs = snap.evaluate("f", &Context::from_pairs(pairs));
        assert_eq!(
            from_pairs,
            snap.evaluate("f", &Context::new(&map)),
            "{pairs:?}"
        );
        assert_eq!(
            from_pairs,
            snap.evaluate("f", &Context::from_pairs(&wide)),
            "wide {pairs:?}"
        );
        served.push(from_pairs.variant.to_string());
    }
    // And the cases do tell the variants apart.
    assert_eq!(served, ["on", "off", "on", "off", "on", "off"]);
}

/// A member pair with an owned name, as the server has for names with escapes; borrowed ones
/// are the fuzz target's case.
fn pair(name: &str, value: Value) -> (Cow<'static, str>, Value) {
    (Cow::Owned(name.to_string()), value)
}

/// However wide a context is (a wide one is indexed by name when it is built), a lookup finds
/// what a scan of its members from the last one finds: of duplicate names the last.
#[test]
fn wide_contexts_find_the_members_a_scan_finds() {
    let mut pairs = vec![
        pair("targetingKey", json!("first")),
        pair("plan", json!("free")),
        pair("org", json!({"tier": "gold"})),
    ];
    pairs.extend((0..2_000).map(|i| pair(&format!("m{i}"), json!(i))));
    pairs.extend([
        pair("plan", json!("pro")),
        pair("m7", json!("seven")),
        pair("org.tier", json!("lead")),
        pair("targetingKey", json!("last")),
    ]);
    let names = [
        "targetingKey",
        "plan",
        "org",
        "org.tier",
        "m0",
        "m7",
        "m1999",
        "missing",
        "",
    ];
    for width in [0, 1, 3, 31, 32, 33, 100, 2_003, pairs.len()] {
        let members = &pairs[..width];
        let scan = |name: &str| {
            members
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v)
        };
        let map: Map<String, Value> = members
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let ctx = Context::from_pairs(members);
        for name in names {
            assert_eq!(ctx.attribute(name), scan(name), "{name} of {width}");
            assert_eq!(
                Context::new(&map).attribute(name),
                scan(name),
                "{name} of {width}"
            );
        }
        assert_eq!(
            ctx.targeting_key(),
            scan("targetingKey").and_then(Value::as_str),
            "{width}"
        );
    }
    // The exact dotted member wins over the path once it is there, in a wide context too.
    let snap = snapshot(
        &[one_rule(
            json!({"attribute": "org.tier", "operator": "in", "values": ["gold"]}),
        )],
        &[],
    );
    let served = |width: usize| {
        snap.evaluate("f", &Context::from_pairs(&pairs[..width]))
            .variant
    };
    assert_eq!(served(2_003), "on");
    assert_eq!(served(pairs.len()), "off");
}

/// `try_from_pairs` and `try_new` refuse contexts with more members than the caller allows;
/// duplicate names count every time they were sent.
#[test]
fn contexts_wider_than_the_limit_are_refused() {
    let pairs: Vec<_> = (0..=MAX_MEMBERS)
        .map(|i| pair(if i % 2 == 0 { "same" } else { "other" }, json!(i)))
        .collect();
    let too_many = |limit, got| Some(ContextError::TooManyMembers { limit, got });
    let map: Map<String, Value> = (0..=MAX_MEMBERS)
        .map(|i| (format!("m{i}"), json!(i)))
        .collect();
    // (members, limit, refused with)
    let cases: [(usize, usize, Option<ContextError>); 5] = [
        (0, 0, None),
        (MAX_MEMBERS, MAX_MEMBERS, None),
        (
            MAX_MEMBERS + 1,
            MAX_MEMBERS,
            too_many(MAX_MEMBERS, MAX_MEMBERS + 1),
        ),
        (3, 2, too_many(2, 3)),
        (1, 0, too_many(0, 1)),
    ];
    for (width, limit, refused) in cases {
        let from_pairs = Context::try_from_pairs(&pairs[..width], limit);
        assert_eq!(
            from_pairs.as_ref().err(),
            refused.as_ref(),
            "{width} > {limit}"
        );
        let submap: Map<String, Value> = map
            .iter()
            .take(width)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let new = Context::try_new(&submap, limit);
        assert_eq!(new.as_ref().err(), refused.as_ref(), "{width} > {limit}");
        if refused.is_none() {
            let last = pairs[..width].iter().rev().find(|(k, _)| k == "same");
            assert_eq!(
                from_pairs.expect("accepted").attribute("same"),
                last.map(|(_, v)| v)
            );
        }
    }
    assert_eq!(
        ContextError::TooManyMembers {
            limit: 1_000,
            got: 90_000
        }
        .to_string(),
        "the context has 90000 members; at most 1000 are allowed"
    );
}
