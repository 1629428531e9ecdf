//! Evaluation and compilation benchmarks; the numbers are recorded in `docs/evaluation.md`.
//!
//! `cargo bench -p hata-core --bench evaluate -- --warm-up-time 1 --measurement-time 3`

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use hata_core::evaluate::{Context, Reason};
use hata_core::model::{Flag, Segment};
use hata_core::snapshot::Snapshot;
use hata_core::validate::{validate_flag, ProjectView};
use serde_json::{json, Map, Value};

fn flag(v: Value) -> Flag {
    let mut f: Flag = serde_json::from_value(v).expect("bench flag JSON");
    f.normalize(["production"]);
    f
}

fn segments() -> Vec<Segment> {
    let beta = json!({
        "key": "beta-testers",
        "included": (0..200).map(|i| format!("beta-user-{i}")).collect::<Vec<_>>(),
        "excluded": ["banned-1", "banned-2"],
        "rules": [[{"attribute": "email", "operator": "ends_with", "values": ["@hata.dev"]}],
                  [{"attribute": "plan", "operator": "in", "values": ["enterprise"]},
                   {"attribute": "country", "operator": "in", "values": ["de", "at", "ch"]}]]
    });
    let internal = json!({
        "key": "internal",
        "rules": [[{"attribute": "email", "operator": "matches", "values": ["^[a-z.]+@hata\\.dev$"]}]]
    });
    vec![
        serde_json::from_value(beta).expect("segment"),
        serde_json::from_value(internal).expect("segment"),
    ]
}

/// The 5-rule flag of the second benchmark: no rule matches the bench context, so every rule
/// is tried and the 3-way rollout default decides.
fn five_rules(key: &str) -> Flag {
    flag(json!({
        "key": key, "type": "string",
        "variants": [{"key": "control", "value": "control"}, {"key": "blue", "value": "blue"},
                     {"key": "green", "value": "green"}],
        "environments": {"production": {"enabled": true, "off_variant": "control",
            "rules": [
                {"id": "countries", "conditions": [{"attribute": "country", "operator": "in",
                    "values": ["us", "ca", "mx", "br", "ar", "cl", "co", "pe", "uk", "ie", "fr", "es", "pt", "it", "nl", "be", "lu", "dk", "se", "no"]}],
                 "serve": {"variant": "blue"}},
                {"id": "staff", "conditions": [{"attribute": "email", "operator": "starts_with", "values": ["admin@", "root@"]}],
                 "serve": {"variant": "green"}},
                {"id": "seniors", "conditions": [{"attribute": "age", "operator": "gt", "values": [65]}],
                 "serve": {"variant": "blue"}},
                {"id": "new-app", "conditions": [{"attribute": "app.version", "operator": "semver_gt", "values": ["3.0.0"]}],
                 "serve": {"variant": "green"}},
                {"id": "beta", "conditions": [{"segment": "beta-testers"}], "serve": {"variant": "green"}}
            ],
            "default": {"rollout": {"weights": [{"variant": "control", "weight": 34000},
                {"variant": "blue", "weight": 33000}, {"variant": "green", "weight": 33000}]}}}}
    }))
}

/// A realistic project of `n` flags: mostly plain booleans, some disabled, some with a rule or
/// two, rollouts, targets and prerequisites. Every 20th flag has a regex of its own.
fn project(n: usize) -> Vec<Flag> {
    (0..n)
        .map(|i| {
            let key = format!("flag-{i:05}");
            match i % 10 {
                0..=3 => flag(json!({"key": key, "type": "boolean", "version": i,
                    "environments": {"production": {"enabled": true, "default": {"variant": "on"}}}})),
                4 | 5 => flag(json!({"key": key, "type": "boolean",
                    "environments": {"production": {"enabled": false}}})),
                6 => {
                    let condition = if i % 20 == 6 {
                        json!({"attribute": "email", "operator": "matches", "values": [format!("^team{i}-[a-z]+@example\\.com$")]})
                    } else {
                        json!({"attribute": "plan", "operator": "in", "values": ["pro", "enterprise"]})
                    };
                    flag(json!({"key": key, "type": "boolean",
                        "environments": {"production": {"enabled": true, "rules": [
                            {"id": "r1", "conditions": [condition], "serve": {"variant": "on"}},
                            {"id": "r2", "conditions": [{"segment": "internal"}], "serve": {"variant": "on"}}]}}}))
                }
                7 => flag(json!({"key": key, "type": "boolean",
                    "environments": {"production": {"enabled": true, "default": {"rollout": {"weights": [
                        {"variant": "on", "weight": 25000}, {"variant": "off", "weight": 75000}]}}}}})),
                8 => flag(json!({"key": key, "type": "json",
                    "variants": [{"key": "small", "value": {"limit": 10}}, {"key": "large", "value": {"limit": 1000}}],
                    "environments": {"production": {"enabled": true, "off_variant": "small",
                        "targets": [{"variant": "large", "values": ["user-1", "user-2", "user-3"]}],
                        "prerequisites": [{"flag": format!("flag-{:05}", i - 8), "variants": ["on"]}],
                        "default": {"variant": "small"}}}})),
                _ => five_rules(&key),
            }
        })
        .collect()
}

fn context() -> Map<String, Value> {
    match json!({
        "targetingKey": "user-8812",
        "email": "jane@example.org",
        "country": "de",
        "plan": "free",
        "age": 34,
        "app": {"version": "2.7.1"},
    }) {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

/// The bench context as the server reads it off the wire (member pairs in document order), with
/// `extra` more members after it: a lookup that scans from the last member passes them all.
fn context_pairs(extra: usize) -> Vec<(Cow<'static, str>, Value)> {
    let mut pairs: Vec<(Cow<'static, str>, Value)> = context()
        .into_iter()
        .map(|(k, v)| (Cow::Owned(k), v))
        .collect();
    pairs.extend((0..extra).map(|i| (Cow::Owned(format!("attr-{i}")), Value::from(i))));
    pairs
}

/// Contexts as member pairs, built inside the timed loop as the server builds one per request.
/// `width`: from the usual six members up, where indexing the members starts to pay.
/// `wide`: a client sending 90,000 members to a bulk evaluation of 300 flags (issue 27).
fn context_width(c: &mut Criterion, snap: &Snapshot, segments: &[Segment]) {
    let mut group = c.benchmark_group("width");
    for extra in [0, 10, 26, 58, 122] {
        let pairs = context_pairs(extra);
        let n = pairs.len();
        group.bench_function(format!("5 rules, {n} members"), |b| {
            b.iter(|| {
                let ctx = Context::from_pairs(black_box(&pairs));
                black_box(snap.evaluate(black_box("five-rules"), &ctx));
            })
        });
        group.bench_function(format!("all 100 flags, {n} members"), |b| {
            b.iter(|| {
                let ctx = Context::from_pairs(black_box(&pairs));
                for e in snap.evaluate_all(&ctx) {
                    black_box(e);
                }
            })
        });
    }
    group.finish();

    let flags = project(300);
    let snap = Snapshot::compile("production", &flags, segments).expect("compiles");
    let pairs = context_pairs(90_000);
    let mut group = c.benchmark_group("wide");
    group.sample_size(10);
    group.bench_function("90,000 members, all 300 flags", |b| {
        b.iter(|| {
            let ctx = Context::from_pairs(black_box(&pairs));
            for e in snap.evaluate_all(&ctx) {
                black_box(e);
            }
        })
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let segments = segments();
    let mut flags = project(98);
    flags.push(flag(json!({"key": "static-bool", "type": "boolean",
        "environments": {"production": {"enabled": true, "default": {"variant": "on"}}}})));
    flags.push(five_rules("five-rules"));
    let snap = Snapshot::compile("production", &flags, &segments).expect("compiles");
    assert_eq!(snap.len(), 100);
    let attrs = context();
    let ctx = Context::new(&attrs);
    assert_eq!(snap.evaluate("static-bool", &ctx).reason, Reason::Static);
    assert_eq!(snap.evaluate("five-rules", &ctx).reason, Reason::Split);

    c.bench_function("boolean flag, no rules (STATIC)", |b| {
        b.iter(|| black_box(snap.evaluate(black_box("static-bool"), black_box(&ctx))))
    });
    c.bench_function("5 rules + 3-way rollout", |b| {
        b.iter(|| black_box(snap.evaluate(black_box("five-rules"), black_box(&ctx))))
    });
    c.bench_function("all 100 flags, one context", |b| {
        b.iter(|| {
            for e in snap.evaluate_all(black_box(&ctx)) {
                black_box(e);
            }
        })
    });
    c.bench_function("Context::new", |b| {
        b.iter(|| black_box(Context::new(black_box(&attrs))))
    });

    context_width(c, &snap, &segments);

    let big = project(10_000);
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.bench_function("10,000 flags", |b| {
        b.iter(|| black_box(Snapshot::compile("production", black_box(&big), &segments)))
    });
    group.finish();

    // A write that adds a pattern checks the environment's total: the project's 500 other
    // patterns are compiled (each distinct one once) to be measured. A write that adds no
    // pattern bytes to the stored flag skips that.
    let environments = ["production".to_string()];
    let flags = big.iter().map(|f| (f.key.clone(), f.clone())).collect();
    let segment_map = segments
        .iter()
        .map(|s| (s.key.clone(), s.clone()))
        .collect();
    let view = ProjectView {
        environments: &environments,
        segments: &segment_map,
        flags: &flags,
    };
    let changed = &big[6];
    let mut created = changed.clone();
    created.key = "created".into();
    let mut group = c.benchmark_group("validate");
    group.sample_size(10);
    for (what, flag) in [("created", &created), ("changed", changed)] {
        assert!(validate_flag(flag, &view).is_ok());
        group.bench_function(format!("a flag with a pattern among 10,000, {what}"), |b| {
            b.iter(|| black_box(validate_flag(black_box(flag), &view)))
        });
    }
    group.finish();
}

criterion_group!(evaluate, benches);
criterion_main!(evaluate);
