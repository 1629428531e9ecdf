//! Who moves when a rollout changes: the exact number of buckets (out of `BUCKETS`, 100,000)
//! whose variant differs between two weight lists, computed from the bucket ranges, never
//! sampled. The UI shows it before a rollout edit is saved.
//!
//! A rollout lays its weights out in order over `0..BUCKETS`: the first weight's variant
//! serves buckets `0..w₀`, the next `w₀..w₀+w₁`, and so on (zero weights take no range; see
//! `snapshot::CompiledRollout::variant_for`). Both layouts are step functions over the same
//! bucket space, so walking their merged boundaries once gives the exact overlap.
//!
//! This holds while the bucket of each subject stays where it is, that is while the rollout's
//! `salt` and `bucket_by` are unchanged: with another salt or attribute every subject is
//! hashed anew, and which of them moves is no longer a matter of ranges (`compare_serves`
//! says so with `Movement::rehashed`).

use crate::bucketing::BUCKETS;
use crate::model::{Rollout, Serve, Weight};

/// Buckets moving from one variant to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub from: String,
    pub to: String,
    /// Buckets (of `BUCKETS`) that go from `from` to `to`.
    pub buckets: u32,
}

/// What changes between two layouts of the same bucket space.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Movement {
    /// Buckets whose variant changes; `moved as f64 / BUCKETS as f64` is the share of
    /// subjects (each bucket holds an equal share of them, the hash being uniform).
    pub moved: u32,
    /// The moves, by (from, to), in the order their first range appears.
    pub moves: Vec<Move>,
    /// The salt or bucket-by attribute changed: every subject is bucketed anew, so `moved`
    /// and `moves` say nothing about who moves (they are left empty).
    pub rehashed: bool,
}

impl Movement {
    /// The share of subjects whose variant changes, in thousandths of a percent (the unit of
    /// rollout weights): `moved` itself, since there are 100,000 buckets.
    pub fn share_millipercent(&self) -> u32 {
        self.moved
    }
}

/// Weights that do not lay out the whole bucket space.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rollout weights sum to {0}, not {BUCKETS}")]
pub struct WeightsError(pub u64);

/// The (exclusive end, variant) ranges of `weights`, zero weights dropped, as the snapshot
/// compiles them.
fn ranges(weights: &[Weight]) -> Result<Vec<(u32, &str)>, WeightsError> {
    let mut end: u64 = 0;
    let mut out = Vec::with_capacity(weights.len());
    for w in weights.iter().filter(|w| w.weight > 0) {
        end += u64::from(w.weight);
        if end > u64::from(BUCKETS) {
            break;
        }
        out.push((end as u32, w.variant.as_str()));
    }
    let total: u64 = weights.iter().map(|w| u64::from(w.weight)).sum();
    if total != u64::from(BUCKETS) {
        return Err(WeightsError(total));
    }
    Ok(out)
}

/// The exact movement between two weight lists over the same bucket space.
pub fn compare_weights(old: &[Weight], new: &[Weight]) -> Result<Movement, WeightsError> {
    let old = ranges(old)?;
    let new = ranges(new)?;
    let mut movement = Movement::default();
    let (mut i, mut j, mut at) = (0usize, 0usize, 0u32);
    // Both lists end at BUCKETS, so they run out together.
    while let (Some(&(old_end, from)), Some(&(new_end, to))) = (old.get(i), new.get(j)) {
        let end = old_end.min(new_end);
        if from != to && end > at {
            let buckets = end - at;
            movement.moved += buckets;
            match movement
                .moves
                .iter_mut()
                .find(|m| m.from == from && m.to == to)
            {
                Some(m) => m.buckets += buckets,
                None => movement.moves.push(Move {
                    from: from.to_string(),
                    to: to.to_string(),
                    buckets,
                }),
            }
        }
        at = end;
        if old_end == end {
            i += 1;
        }
        if new_end == end {
            j += 1;
        }
    }
    Ok(movement)
}

/// The movement between two serves (a fixed variant is one weight of 100 %).
pub fn compare_serves(old: &Serve, new: &Serve) -> Result<Movement, WeightsError> {
    fn whole(variant: &str) -> Vec<Weight> {
        vec![Weight {
            variant: variant.to_string(),
            weight: BUCKETS,
        }]
    }
    let (old_weights, new_weights) = match (old, new) {
        (Serve::Rollout(a), Serve::Rollout(b)) if !same_hashing(a, b) => {
            return Ok(Movement {
                rehashed: true,
                ..Movement::default()
            })
        }
        (Serve::Rollout(a), Serve::Rollout(b)) => (a.weights.clone(), b.weights.clone()),
        (Serve::Rollout(a), Serve::Variant(v)) => (a.weights.clone(), whole(v)),
        (Serve::Variant(v), Serve::Rollout(b)) => (whole(v), b.weights.clone()),
        (Serve::Variant(a), Serve::Variant(b)) => (whole(a), whole(b)),
    };
    compare_weights(&old_weights, &new_weights)
}

/// Whether both rollouts bucket every subject alike (same salt, same attribute).
fn same_hashing(a: &Rollout, b: &Rollout) -> bool {
    a.salt == b.salt && a.bucket_by == b.bucket_by
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn w(pairs: &[(&str, u32)]) -> Vec<Weight> {
        pairs
            .iter()
            .map(|(v, weight)| Weight {
                variant: v.to_string(),
                weight: *weight,
            })
            .collect()
    }

    /// The variant of every bucket, by brute force over the layout rule.
    fn layout(weights: &[Weight]) -> Vec<String> {
        let mut out = Vec::with_capacity(BUCKETS as usize);
        for w in weights {
            for _ in 0..w.weight {
                out.push(w.variant.clone());
            }
        }
        out
    }

    #[test]
    fn growing_a_rollout_moves_only_the_added_share() {
        let m = compare_weights(
            &w(&[("on", 10_000), ("off", 90_000)]),
            &w(&[("on", 30_000), ("off", 70_000)]),
        )
        .unwrap();
        assert_eq!(m.moved, 20_000);
        assert_eq!(
            m.moves,
            vec![Move {
                from: "off".into(),
                to: "on".into(),
                buckets: 20_000
            }]
        );
    }

    #[test]
    fn swapping_the_order_moves_everyone_who_changes_range() {
        let m = compare_weights(
            &w(&[("a", 50_000), ("b", 50_000)]),
            &w(&[("b", 50_000), ("a", 50_000)]),
        )
        .unwrap();
        assert_eq!(m.moved, 100_000);
        assert_eq!(m.moves.len(), 2);
    }

    #[test]
    fn zero_weights_and_equal_layouts_move_nobody() {
        let m = compare_weights(
            &w(&[("a", 0), ("b", 100_000)]),
            &w(&[("b", 60_000), ("c", 0), ("b", 40_000)]),
        )
        .unwrap();
        assert_eq!(m, Movement::default());
    }

    #[test]
    fn weights_not_covering_the_space_are_refused() {
        assert_eq!(
            compare_weights(&w(&[("a", 99_999)]), &w(&[("a", 100_000)])),
            Err(WeightsError(99_999))
        );
        assert!(compare_weights(&w(&[("a", u32::MAX), ("b", 2)]), &w(&[("a", 100_000)])).is_err());
    }

    #[test]
    fn a_fixed_variant_is_a_whole_rollout_and_a_new_salt_rehashes() {
        let rollout = |salt: Option<&str>, on: u32| {
            Serve::Rollout(Rollout {
                bucket_by: None,
                salt: salt.map(Into::into),
                weights: w(&[("on", on), ("off", 100_000 - on)]),
            })
        };
        let off = Serve::Variant("off".into());
        assert_eq!(
            compare_serves(&off, &rollout(None, 30_000)).unwrap().moved,
            30_000
        );
        assert_eq!(
            compare_serves(&rollout(None, 25_000), &off).unwrap().moved,
            25_000
        );
        let m = compare_serves(&rollout(None, 10_000), &rollout(Some("x"), 10_000)).unwrap();
        assert!(m.rehashed);
    }

    /// Up to five weights over three variants, summing to `BUCKETS`.
    fn weights() -> impl Strategy<Value = Vec<Weight>> {
        prop::collection::vec((0usize..3, 0u32..=BUCKETS), 1..5).prop_map(|cuts| {
            let names = ["a", "b", "c"];
            let mut points: Vec<u32> = cuts.iter().skip(1).map(|(_, p)| *p).collect();
            points.sort_unstable();
            points.push(BUCKETS);
            let mut start = 0;
            cuts.iter()
                .zip(points)
                .map(|((v, _), end)| {
                    let weight = end - start;
                    start = end;
                    Weight {
                        variant: names[*v].to_string(),
                        weight,
                    }
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn exact_count_equals_brute_force_over_every_bucket(old in weights(), new in weights()) {
            let m = compare_weights(&old, &new).unwrap();
            let (a, b) = (layout(&old), layout(&new));
            prop_assert_eq!(a.len(), BUCKETS as usize);
            let moved = a.iter().zip(&b).filter(|(x, y)| x != y).count() as u32;
            prop_assert_eq!(m.moved, moved);
            prop_assert_eq!(m.moves.iter().map(|m| m.buckets).sum::<u32>(), moved);
            for mv in &m.moves {
                let n = a.iter().zip(&b).filter(|(x, y)| **x == mv.from && **y == mv.to).count();
                prop_assert_eq!(mv.buckets as usize, n);
            }
        }
    }
}
