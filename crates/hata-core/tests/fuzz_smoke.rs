//! The `flag_eval` fuzz body (`hata_core::fuzzing`) over the seed corpus, mutated seeds,
//! random bytes and generated flags: what CI runs in place of the fuzzer.

use hata_core::fuzzing::flag_eval;
use hata_core::model::Operator;
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
    let (fixtures, segments) = hata_core::fuzzing::fixtures();
    for (name, bytes) in SEEDS {
        flag_eval(bytes);
        // Every seed but `invalid` must get as far as evaluation, or it covers nothing.
        let text = std::str::from_utf8(bytes).expect("seeds are UTF-8");
        let (_, flag_text) = text.split_once('\n').expect("context line");
        let mut flag: hata_core::model::Flag = serde_json::from_str(flag_text).expect(name);
        flag.normalize(hata_core::fuzzing::ENVIRONMENTS);
        let mut flags = fixtures.clone();
        flags.push(flag);
        let compiled = hata_core::snapshot::Snapshot::compile("production", &flags, &segments);
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
        Just("targetingKey".to_string()),
        Just("plan".to_string()),
        Just("org.id".to_string()),
        Just("age".to_string()),
        "[a-z.]{0,5}",
    ]
}

fn condition() -> impl Strategy<Value = Value> {
    prop_oneof![
        (
            attribute(),
            proptest::sample::select(Operator::ALL.to_vec()),
            proptest::collection::vec(scalar(), 0..3),
            any::<bool>()
        )
            .prop_map(|(a, op, values, negate)| {
                json!({"attribute": a, "operator": op.as_str(), "values": values, "negate": negate})
            }),
        (
            proptest::sample::select(vec!["beta", "staff", "nope"]),
            any::<bool>()
        )
            .prop_map(|(s, negate)| json!({"segment": s, "negate": negate})),
    ]
}

fn variant_key() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec!["on", "off", "x"])
}

fn serve() -> impl Strategy<Value = Value> {
    prop_oneof![
        variant_key().prop_map(|v| json!({"variant": v})),
        (
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
            proptest::sample::select(vec!["base", "base-off", "f"]),
            proptest::collection::vec(variant_key(), 0..2),
        )),
        proptest::collection::vec("[a-z0-9]{1,3}", 0..3),
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
