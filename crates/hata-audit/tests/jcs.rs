//! `jcs` (on values, and on text as the verifier reads it) against an independent RFC 8785
//! implementation (`serde_json_canonicalizer`) on arbitrary JSON, and entries with arbitrary `old`/`new` values: sealed, written, read back
//! and verified, the hash of the typed entry always equals the hash of its parsed line.

mod support;

use hata_audit::{jcs, Head, Verifier};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};
use support::new_entry;

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        // Small exponents too, where fixed and exponent notation meet (1e-7, 1e21).
        (any::<i32>(), -30i32..30).prop_filter_map("finite", |(m, e)| {
            Number::from_f64(f64::from(m) * 10f64.powi(e)).map(Value::Number)
        }),
        any::<String>().prop_map(Value::String),
        "[\\x00-\\x1f\"\\\\a-z\u{e000}-\u{e002}\u{1f600}-\u{1f602}]{0,6}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    "[a-c\u{e000}\u{ff5e}\u{1f600}\u{10000}é\\x00-\\x02]{0,3}",
                    inner
                ),
                0..6
            )
            .prop_map(|members| Value::Object(members.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn same_as_an_independent_implementation(value in json_value()) {
        let theirs = serde_json_canonicalizer::to_string(&value).expect("finite numbers only");
        prop_assert_eq!(&jcs::to_string(&value), &theirs);
        // The verifier's path, from the text.
        let text = serde_json::to_vec(&value).expect("serialisable");
        prop_assert_eq!(jcs::from_text(&text).expect("JSON"), theirs);
    }

    #[test]
    fn canonical_form_survives_a_round_trip_through_text(value in json_value()) {
        let text = serde_json::to_string(&value).expect("serialisable");
        let back: Value = serde_json::from_str(&text).expect("JSON");
        prop_assert_eq!(jcs::to_string(&back), jcs::to_string(&value));
    }

    #[test]
    fn sealed_entries_verify_whatever_they_carry(old in json_value(), new in json_value()) {
        let sealed = new_entry(1, old, new).seal(&Head::genesis()).expect("sealable");
        let mut verifier = Verifier::new();
        verifier.push_line(&sealed.json());
        let report = verifier.finish();
        prop_assert!(report.ok, "{:?}", report);
        prop_assert_eq!(report.head, Some(sealed.entry.hash));
    }
}
