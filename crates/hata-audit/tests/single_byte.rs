//! Any single-byte change to an exported entry line is caught, unless the changed line means
//! exactly what the original meant: same canonical form of the object without `hash`, and
//! the same `hash` text. Such changes exist and are harmless by construction (the hash is
//! defined on the canonical form): `1e+21` → `1E+21`, `-0.0` → ` 0.0`, a digit in a number
//! spelling that rounds to the same double.

mod support;

use hata_audit::{jcs, CheckpointPolicy, Verifier};
use proptest::prelude::*;
use serde_json::Value;
use support::*;

/// The canonical form without `hash`, and `hash`: what an entry line means.
fn meaning(line: &[u8]) -> Option<(String, Value)> {
    let Value::Object(mut map) = serde_json::from_slice::<Value>(line).ok()? else {
        return None;
    };
    let hash = map.remove("hash")?;
    Some((jcs::to_string(&Value::Object(map)), hash))
}

/// How the byte changes: any value, or the near misses a careless parser might forgive.
#[derive(Clone, Copy, Debug)]
enum Change {
    To(u8),
    FlipCase,
    Space,
    Plus(u8),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        any::<u8>().prop_map(Change::To),
        Just(Change::FlipCase),
        Just(Change::Space),
        (1u8..=3).prop_map(Change::Plus),
    ]
}

impl Change {
    fn apply(self, old: u8) -> u8 {
        match self {
            Change::To(byte) => byte,
            Change::FlipCase => old ^ 0x20,
            Change::Space => b' ',
            Change::Plus(n) => old.wrapping_add(n),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn single_byte_changes_are_detected(
        which in 0usize..12, position in any::<prop::sample::Index>(), change in change(),
        tricky in any::<bool>(),
    ) {
        let key = test_key();
        let lines = chain(12, 5, &key, tricky);
        let entry_lines: Vec<usize> =
            (0..lines.len()).filter(|&i| !kind_of(&lines[i]).0).collect();
        let target = entry_lines[which];
        let mut bytes = lines[target].clone().into_bytes();
        let at = position.index(bytes.len());
        let byte = change.apply(bytes[at]);
        prop_assume!(bytes[at] != byte);
        bytes[at] = byte;

        let mut verifier = Verifier::new()
            .with_public_key(key.public_key())
            .with_policy(CheckpointPolicy { every: 5 });
        for (i, line) in lines.iter().enumerate() {
            if i == target {
                verifier.push_line_bytes(&bytes);
            } else {
                verifier.push_line(line);
            }
        }
        let report = verifier.finish();
        if report.ok {
            prop_assert_eq!(
                meaning(&bytes),
                meaning(lines[target].as_bytes()),
                "undetected change at byte {} to {:?}: {}",
                at,
                byte as char,
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}
