//! Properties of rollouts: determinism, monotonicity, distribution, salt sharing, and
//! `rollout_change_fraction` against brute force over the whole bucket space.

use hata_core::bucketing::{bucket, rollout_change_fraction, BUCKETS};
use hata_core::evaluate::{Context, Reason};
use hata_core::model::{Flag, Weight};
use hata_core::snapshot::Snapshot;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const VARIANTS: [&str; 5] = ["a", "b", "c", "d", "e"];

/// A string flag `key` whose default is a rollout over `weights` (variants `a`…`e`).
fn rollout_flag(key: &str, salt: Option<&str>, weights: &[Weight]) -> Flag {
    let mut rollout = json!({ "weights": weights });
    if let Some(s) = salt {
        rollout["salt"] = json!(s);
    }
    let mut f: Flag = serde_json::from_value(json!({
        "key": key, "type": "string",
        "variants": VARIANTS.iter().map(|v| json!({"key": v, "value": v})).collect::<Vec<_>>(),
        "environments": {"prod": {"enabled": true, "default": {"rollout": rollout}}}
    }))
    .expect("flag JSON");
    f.normalize(["prod"]);
    f
}

fn compile(flags: &[Flag]) -> Snapshot {
    Snapshot::compile("prod", flags, &[]).expect("compiles")
}

fn ctx(key: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("targetingKey".into(), Value::String(key.into()));
    m
}

fn serve<'a>(snap: &'a Snapshot, flag: &'a str, key: &str) -> &'a str {
    let m = ctx(key);
    let e = snap.evaluate(flag, &Context::new(&m));
    assert_eq!(e.reason, Reason::Split);
    e.variant
}

/// The variant the spec's walk serves for `bucket`, or `None` past the end of the weights.
fn brute_variant(weights: &[Weight], bucket: u32) -> Option<&str> {
    let mut sum = 0u64;
    for w in weights {
        sum += u64::from(w.weight);
        if sum > u64::from(bucket) {
            return Some(&w.variant);
        }
    }
    None
}

/// Weight lists over `a`…`e` that sum to 100000, zeros included.
fn weights() -> impl Strategy<Value = Vec<Weight>> {
    (1usize..=5)
        .prop_flat_map(|n| {
            (
                proptest::collection::vec(0u32..=BUCKETS, n - 1),
                proptest::sample::subsequence(VARIANTS.to_vec(), n).prop_shuffle(),
            )
        })
        .prop_map(|(mut cuts, variants)| {
            cuts.push(0);
            cuts.push(BUCKETS);
            cuts.sort_unstable();
            cuts.windows(2)
                .zip(variants)
                .map(|(w, v)| Weight {
                    variant: v.to_string(),
                    weight: w[1] - w[0],
                })
                .collect()
        })
}

/// Deterministic pseudo-random subject keys (xorshift64*), so the distribution check is
/// random-looking but never flaky.
fn keys(seed: u64, n: usize) -> impl Iterator<Item = String> {
    let mut x = seed | 1;
    (0..n).map(move |_| {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        format!("{:x}", x.wrapping_mul(0x2545_f491_4f6c_dd1d))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn rollouts_are_deterministic(w in weights(), key in "[a-z0-9@.-]{1,24}") {
        let a = compile(&[rollout_flag("f", None, &w)]);
        let b = compile(&[rollout_flag("f", None, &w)]);
        prop_assert_eq!(serve(&a, "f", &key), serve(&b, "f", &key));
        prop_assert_eq!(serve(&a, "f", &key), serve(&a, "f", &key));
    }

    #[test]
    fn rollouts_are_monotonic(w in weights(), pick in any::<prop::sample::Index>(), frac in 0.0f64..=1.0, seed in any::<u64>()) {
        prop_assume!(w.len() >= 2);
        let last = w.len() - 1;
        let i = pick.index(last);
        let moved = (f64::from(w[last].weight) * frac) as u32;
        let mut grown = w.clone();
        grown[i].weight += moved;
        grown[last].weight -= moved;
        let before = compile(&[rollout_flag("f", None, &w)]);
        let after = compile(&[rollout_flag("f", None, &grown)]);
        let raised = w[i].variant.as_str();
        for key in keys(seed, 200) {
            if serve(&before, "f", &key) == raised {
                prop_assert_eq!(serve(&after, "f", &key), raised, "{}", key);
            }
        }
    }

    #[test]
    fn same_salt_same_bucket_across_flags(w in weights(), salt in "[a-z-]{1,12}", key in "[a-z0-9]{1,16}") {
        let snap = compile(&[rollout_flag("one", Some(&salt), &w), rollout_flag("two", Some(&salt), &w)]);
        prop_assert_eq!(serve(&snap, "one", &key), serve(&snap, "two", &key));
        prop_assert_eq!(Some(serve(&snap, "one", &key)), brute_variant(&w, bucket(&salt, &key)));
    }

    #[test]
    fn change_fraction_matches_brute_force(old in weights(), new in weights()) {
        let differing = (0..BUCKETS)
            .filter(|&b| brute_variant(&old, b) != brute_variant(&new, b))
            .count();
        prop_assert_eq!(rollout_change_fraction(&old, &new), differing as f64 / f64::from(BUCKETS));
    }
}

#[test]
fn change_fraction_of_partial_lists_matches_brute_force() {
    let w = |list: &[(&str, u32)]| -> Vec<Weight> {
        list.iter()
            .map(|&(v, weight)| Weight {
                variant: v.into(),
                weight,
            })
            .collect()
    };
    let pairs = [
        (w(&[("a", 30_000)]), w(&[("a", 50_000), ("b", 50_000)])),
        (w(&[("a", 0), ("b", 0)]), w(&[("b", 10)])),
        (w(&[("a", 70_000), ("b", 70_000)]), w(&[("a", 100_000)])),
    ];
    for (old, new) in pairs {
        let differing = (0..BUCKETS)
            .filter(|&b| brute_variant(&old, b) != brute_variant(&new, b))
            .count();
        assert_eq!(
            rollout_change_fraction(&old, &new),
            differing as f64 / f64::from(BUCKETS),
            "{old:?} {new:?}"
        );
    }
}

#[test]
fn shares_are_within_half_a_point_over_100k_keys() {
    let configs: [&[u32]; 4] = [
        &[50_000, 50_000],
        &[10_000, 20_000, 70_000],
        &[33_334, 33_333, 33_333],
        &[1_000, 0, 4_000, 45_000, 50_000],
    ];
    for (c, config) in configs.iter().enumerate() {
        let w: Vec<Weight> = config
            .iter()
            .zip(VARIANTS)
            .map(|(&weight, v)| Weight {
                variant: v.into(),
                weight,
            })
            .collect();
        let snap = compile(&[rollout_flag("distribution", None, &w)]);
        let n = 100_000;
        let mut counts = [0usize; 5];
        for key in keys(0x5eed + c as u64, n) {
            let v = serve(&snap, "distribution", &key);
            let i = VARIANTS
                .iter()
                .position(|x| *x == v)
                .expect("known variant");
            counts[i] += 1;
        }
        for (i, weight) in w.iter().enumerate() {
            let share = counts[i] as f64 / n as f64 * 100.0;
            let expected = f64::from(weight.weight) / 1000.0;
            assert!(
                (share - expected).abs() <= 0.5,
                "config {config:?}: variant {} got {share:.3}% for weight {expected}%",
                weight.variant
            );
        }
    }
}
