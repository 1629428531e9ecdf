//! The `flag_eval` fuzz body (`hata_core::fuzzing`) over the seed corpus, mutated seeds,
//! random bytes and generated flags: what CI runs in place of the fuzzer. The generated flags
//! matter most: they reach validation, compilation and evaluation with every operator,
//! rollouts, prerequisites and segments.

use std::collections::BTreeMap;

use hata_core::fuzzing::{fixtures, flag_eval, ENVIRONMENTS};
use hata_core::model::{Flag, Operator};
use hata_core::snapshot::Snapshot;
use hata_core::validate::{validate_flag, ProjectView};
use proptest::prelude::*;
use serde_json::{json, Value};

const SEEDS: [(&str, &[u8]); 5] = [
    ("static", include_bytes!("../../../fuzz/seeds/static.json")),
    ("rules", include_bytes!("../../../fuzz/seeds/rules.json")),
    (
        "rollout",
        include_bytes!("../../../fuzz/seeds/rollout.json"),
    ),
    (
        "json-flag",
        include_bytes!("../../../fuzz/seeds/json-flag.json"),
    ),
    (
        "invalid",
        include_bytes!("../../../fuzz/seeds/invalid.json"),
    ),
];

#[test]
fn seeds_run_and_mean_something() {
    let (fixtures, segments) = fixtures();
    let environments: Vec<String> = ENVIRONMENTS.iter().map(|e| e.to_string()).collect();
    let segment_map: BTreeMap<_, _> = segments
        .iter()
        .map(|s| (s.key.clone(), s.clone()))
        .collect();
    let flag_map: BTreeMap<_, _> = fixtures
        .iter()
        .map(|f| (f.key.clone(), f.clone()))
        .collect();
    let view = ProjectView {
        environments: &environments,
        segments: &segment_map,
        flags: &flag_map,
    };
    for (name, bytes) in SEEDS {
        flag_eval(bytes);
        // Every seed but `invalid` must pass validation and compile, or it covers little.
        let text = std::str::from_utf8(bytes).expect("seeds are UTF-8");
        let (_, flag_text) = text.split_once('\n').expect("context line");
        let mut flag: Flag = serde_json::from_str(flag_text).expect(name);
        flag.normalize(ENVIRONMENTS);
        let validated = validate_flag(&flag, &view);
        assert_eq!(
            validated.is_ok(),
            name != "invalid",
            "{name}: {:?}",
            validated.err()
        );
        let mut flags = fixtures.clone();
        flags.push(flag);
        let compiled = Snapshot::compile("production", &flags, &segments);
        assert_eq!(
            compiled.is_ok(),
            name != "invalid",
            "{name}: {:?}",
            compiled.err()
        );
    }
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z0-9.@ -]{0,8}".prop_map(Value::String),
        Just(json!("1.2.3")),
        Just(json!("2024-01-01T00:00:00Z")),
        Just(json!("^a.*")),
        Just(json!("u1")),
    ]
}

fn attribute() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("targetingKey".to_string()),
        3 => Just("plan".to_string()),
        3 => Just("org.id".to_string()),
        3 => Just("age".to_string()),
        1 => "[a-z.]{0,5}",
    ]
}

/// Values that suit `op` (so that most generated flags pass validation), or random ones.
fn values_for(op: Operator) -> BoxedStrategy<Vec<Value>> {
    let fitting: BoxedStrategy<Vec<Value>> = match op {
        Operator::In => proptest::collection::vec(scalar(), 1..4)
            .prop_map(|v| v.into_iter().filter(|x| !x.is_null()).collect())
            .boxed(),
        Operator::Contains | Operator::StartsWith | Operator::EndsWith => {
            proptest::collection::vec("[a-z0-9@.]{0,4}".prop_map(Value::String), 1..3).boxed()
        }
        Operator::Matches => proptest::collection::vec(
            proptest::sample::select(vec!["^u", "[0-9]+$", "a|b", "(x)?y*"]).prop_map(|r| json!(r)),
            1..3,
        )
        .boxed(),
        Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte => {
            (-100i64..100).prop_map(|n| vec![json!(n)]).boxed()
        }
        Operator::Before | Operator::After => prop_oneof![
            Just(vec![json!("2024-01-01T00:00:00Z")]),
            (0i64..2_000_000_000_000).prop_map(|n| vec![json!(n)]),
        ]
        .boxed(),
        Operator::SemverEq | Operator::SemverLt | Operator::SemverGt => {
            proptest::sample::select(vec!["1.2.3", "0.0.1-rc.1", "2.0.0+b"])
                .prop_map(|v| vec![json!(v)])
                .boxed()
        }
        Operator::Exists => Just(vec![]).boxed(),
    };
    prop_oneof![4 => fitting, 1 => proptest::collection::vec(scalar(), 0..3)].boxed()
}

fn condition() -> impl Strategy<Value = Value> {
    prop_oneof![
        (
            attribute(),
            proptest::sample::select(Operator::ALL.to_vec())
                .prop_flat_map(|op| (Just(op), values_for(op))),
            any::<bool>()
        )
            .prop_map(|(a, (op, values), negate)| {
                json!({"attribute": a, "operator": op.as_str(), "values": values, "negate": negate})
            }),
        (
            prop_oneof![5 => Just("beta"), 5 => Just("staff"), 1 => Just("nope")],
            any::<bool>()
        )
            .prop_map(|(s, negate)| json!({"segment": s, "negate": negate})),
    ]
}

/// Mostly real variants; now and then an unknown one, which validation must reject.
fn variant_key() -> impl Strategy<Value = &'static str> {
    prop_oneof![10 => Just("on"), 10 => Just("off"), 1 => Just("x")]
}

fn serve() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => variant_key().prop_map(|v| json!({"variant": v})),
        8 => (proptest::option::of(attribute()), 0u32..=100_000, any::<bool>()).prop_map(
            |(bucket_by, on, swap)| {
                let (first, second) = if swap { ("off", "on") } else { ("on", "off") };
                let mut r = json!({"weights": [{"variant": first, "weight": on},
                                               {"variant": second, "weight": 100_000 - on}]});
                if let Some(b) = bucket_by {
                    r["bucket_by"] = json!(b);
                }
                json!({"rollout": r})
            }
        ),
        1 => (
            proptest::option::of(attribute()),
            proptest::collection::vec((variant_key(), 0u32..=100_000), 1..4)
        )
            .prop_map(|(bucket_by, weights)| {
                // Make the weights sum to 100000 most of the time.
                let mut weights: Vec<Value> = weights
                    .iter()
                    .map(|(v, w)| json!({"variant": v, "weight": w}))
                    .collect();
                let sum: u32 = weights
                    .iter()
                    .map(|w| w["weight"].as_u64().unwrap_or(0) as u32)
                    .sum();
                if let Some(rest) = 100_000u32.checked_sub(sum) {
                    weights.push(json!({"variant": "on", "weight": rest}));
                }
                let mut r = json!({"weights": weights});
                if let Some(b) = bucket_by {
                    r["bucket_by"] = json!(b);
                }
                json!({"rollout": r})
            }),
    ]
}

fn flag() -> impl Strategy<Value = Value> {
    (
        any::<bool>(),
        proptest::collection::vec(
            (proptest::collection::vec(condition(), 0..3), serve()),
            0..3,
        ),
        serve(),
        proptest::option::of((
            prop_oneof![5 => Just("base"), 5 => Just("base-off"), 1 => Just("f")],
            proptest::collection::vec(variant_key(), 1..3),
        )),
        proptest::collection::vec("[a-z0-9]{1,3}", 1..3),
    )
        .prop_map(|(enabled, rules, default, pre, targets)| {
            let rules: Vec<Value> = rules
                .into_iter()
                .map(|(conditions, serve)| json!({"conditions": conditions, "serve": serve}))
                .collect();
            let prerequisites: Vec<Value> = pre
                .into_iter()
                .map(|(f, v)| json!({"flag": f, "variants": v}))
                .collect();
            json!({"key": "f", "type": "boolean",
                   "environments": {"production": {"enabled": enabled, "rules": rules,
                       "default": default, "prerequisites": prerequisites,
                       "targets": [{"variant": "on", "values": targets}]}}})
        })
}

fn context() -> impl Strategy<Value = Value> {
    proptest::collection::vec((attribute(), scalar()), 0..5).prop_map(|members| {
        let mut m = serde_json::Map::new();
        for (k, v) in members {
            if let Some((outer, inner)) = k.split_once('.') {
                m.insert(outer.to_string(), json!({ inner: v }));
            } else {
                m.insert(k, v);
            }
        }
        Value::Object(m)
    })
}

fn input(context: &Value, flag: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(context).expect("context JSON");
    bytes.push(b'\n');
    bytes.extend(serde_json::to_vec(flag).expect("flag JSON"));
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn generated_flags(flag in flag(), context in context()) {
        flag_eval(&input(&context, &flag));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        flag_eval(&bytes);
    }

    #[test]
    fn mutated_seeds(
        seed in 0..SEEDS.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut bytes = SEEDS[seed].1.to_vec();
        for (at, byte, kind) in edits {
            if bytes.is_empty() {
                break;
            }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => {
                    bytes.remove(i);
                }
            }
        }
        flag_eval(&bytes);
    }
}
