//! The body of the `flag_eval` fuzz target, shared with the `fuzz_smoke` test so that CI runs
//! the same code over generated inputs on stable Rust.
//!
//! Input: the first line is the context JSON, the rest is a flag JSON (without a newline the
//! whole input is the flag and the context is empty). The flag is parsed, normalized,
//! validated against a small fixture project, compiled into a snapshot next to the fixture
//! flags and segments (valid or not: compilation must reject bad input by itself), and
//! evaluated with every entry point. The only acceptable outcomes are a clean rejection or a
//! well-formed result: any panic (including a failed invariant below, such as a flag that
//! passed validation but does not compile) or hang is a bug.
//!
//! Not a public API: hidden from the docs, no stability promise.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::context::Context;
use crate::evaluate::Reason;
use crate::model::{Flag, Segment};
use crate::snapshot::Snapshot;
use crate::validate::{validate_flag, ProjectView};

/// The environments of the fuzzed project.
pub const ENVIRONMENTS: [&str; 2] = ["production", "staging"];

/// Segments and flags a fuzzed flag may reference.
pub fn fixtures() -> (Vec<Flag>, Vec<Segment>) {
    let flags = [
        json!({"key": "base", "type": "boolean",
               "environments": {"production": {"enabled": true, "default": {"variant": "on"}},
                                "staging": {"enabled": true, "rules": [
                                    {"id": "r", "conditions": [{"segment": "beta"}], "serve": {"variant": "on"}}]}}}),
        json!({"key": "base-off", "type": "boolean",
               "environments": {"production": {"enabled": false}, "staging": {"enabled": false}}}),
    ];
    let segments = [
        json!({"key": "beta", "included": ["u1", "alice"], "excluded": ["bob"],
               "rules": [[{"attribute": "plan", "operator": "in", "values": ["pro", 1, true]}],
                         [{"attribute": "email", "operator": "ends_with", "values": ["@hata.dev"]}]]}),
        json!({"key": "staff", "rules": [[{"segment": "beta"},
                                          {"attribute": "age", "operator": "gte", "values": [18]}]]}),
    ];
    let flags = flags
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Flag>(v).ok())
        .map(|mut f| {
            f.normalize(ENVIRONMENTS);
            f
        })
        .collect();
    let segments = segments
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    (flags, segments)
}

/// The fuzz target. Panics only on a bug.
pub fn flag_eval(data: &[u8]) {
    let (context_bytes, flag_bytes) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (&b"{}"[..], data),
    };
    let Ok(mut flag) = serde_json::from_slice::<Flag>(flag_bytes) else {
        return;
    };
    flag.normalize(ENVIRONMENTS);
    let (mut flags, segments) = fixtures();
    flags.retain(|f| f.key != flag.key);

    let environments: Vec<String> = ENVIRONMENTS.iter().map(|e| e.to_string()).collect();
    let segment_map: BTreeMap<String, Segment> = segments
        .iter()
        .map(|s| (s.key.clone(), s.clone()))
        .collect();
    let flag_map: BTreeMap<String, Flag> =
        flags.iter().map(|f| (f.key.clone(), f.clone())).collect();
    let view = ProjectView {
        environments: &environments,
        segments: &segment_map,
        flags: &flag_map,
    };
    let valid = validate_flag(&flag, &view).is_ok();

    let key = flag.key.clone();
    flags.push(flag);

    let context: Value = serde_json::from_slice(context_bytes).unwrap_or(Value::Null);
    let ctx = Context::from_value(&context).unwrap_or_else(Context::empty);

    // The flag's earlier version for `with_flag`: the same key and variants, with its
    // targeting cleared, as if this input were a write that changed it; and the flags
    // without it, as if it were a write that created it.
    let mut before = flags.clone();
    if let Some(earlier) = before.last_mut() {
        for config in earlier.environments.values_mut() {
            config.prerequisites.clear();
            config.targets.clear();
            config.rules.clear();
            config.enabled = !config.enabled;
        }
    }

    let without = &flags[..flags.len() - 1];

    for env in ENVIRONMENTS {
        let full = Snapshot::compile(env, &flags, &segments);
        if let Some(flag) = flags.last() {
            for earlier in [
                Snapshot::compile(env, &before, &segments),
                Snapshot::compile(env, without, &segments),
            ]
            .into_iter()
            .flatten()
            {
                check_with_flag(&earlier, flag, &full, &ctx);
            }
        }
        let snapshot = match full {
            Ok(snapshot) => snapshot,
            Err(e) if valid => panic!("a valid flag did not compile in {env}: {e}"),
            Err(_) => continue,
        };
        exercise(&snapshot, &key, &ctx);
        // The same context as the server reads it (members as pairs) evaluates the same.
        if let Some(map) = context.as_object() {
            let pairs: Vec<(Cow<str>, Value)> = map
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), v.clone()))
                .collect();
            let from_pairs = Context::from_pairs(&pairs);
            let expected: Vec<_> = snapshot.evaluate_all(&ctx).collect();
            assert_eq!(
                snapshot.evaluate_all(&from_pairs).collect::<Vec<_>>(),
                expected,
                "a context as pairs evaluates differently from the same map"
            );
            // The members sent again and again, until the context is wide enough to be
            // indexed: the last of each name counts, so nothing changes.
            let wide: Vec<_> = pairs
                .iter()
                .cycle()
                .take(pairs.len() * (64 / pairs.len().max(1) + 1))
                .cloned()
                .collect();
            assert_eq!(
                snapshot
                    .evaluate_all(&Context::from_pairs(&wide))
                    .collect::<Vec<_>>(),
                expected,
                "a wide context evaluates differently from the same members once"
            );
        }
    }
}

/// `earlier.with_flag(flag)` (the in-memory path of a write) must agree with a full compile
/// of the same flags: the same error or none, and then the same evaluations, with the flag
/// spliced in where the full compile has it.
fn check_with_flag(
    earlier: &Snapshot,
    flag: &Flag,
    full: &Result<Snapshot, crate::snapshot::CompileError>,
    ctx: &Context<'_>,
) {
    match (earlier.with_flag(flag), full) {
        (None, _) => {}
        (Some(Ok((after, spliced))), Ok(full)) => {
            let a: Vec<_> = after.evaluate_all(ctx).collect();
            let b: Vec<_> = full.evaluate_all(ctx).collect();
            assert_eq!(a, b, "with_flag evaluates differently from compile");
            for key in full.flag_keys() {
                assert_eq!(after.evaluate(key, ctx), full.evaluate(key, ctx));
            }
            assert!(after.flag_keys().eq(full.flag_keys()));
            assert_eq!(spliced.removed, earlier.index_of(&flag.key));
            assert_eq!(spliced.inserted, full.index_of(&flag.key));
        }
        (Some(Err(_)), Err(_)) => {}
        (Some(Ok(_)), Err(e)) => panic!("with_flag accepted what compile rejects: {e}"),
        (Some(Err(e)), Ok(_)) => panic!("with_flag rejected what compile accepts: {e}"),
    }
}

fn exercise(snapshot: &Snapshot, key: &str, ctx: &Context<'_>) {
    let e = snapshot.evaluate(key, ctx);
    match snapshot.flag(key) {
        Some(info) => {
            assert!(
                !e.is_error(),
                "a compiled flag evaluated to an error: {e:?}"
            );
            let served = info.variants().find(|(k, _)| *k == e.variant);
            assert_eq!(
                served.map(|(_, v)| v),
                Some(e.value),
                "served value mismatch"
            );
            assert_eq!(e.flag_version, info.version());
            if e.bucket_by_missing {
                assert_eq!(e.reason, Reason::Default);
            }
        }
        None => assert!(e.is_error()),
    }
    let again = snapshot.evaluate(key, ctx);
    assert_eq!(e, again, "evaluation is not deterministic");
    assert!(serde_json::to_string(&e).is_ok());

    let _ = snapshot.evaluate_bool(key, ctx);
    let _ = snapshot.evaluate_string(key, ctx);
    let _ = snapshot.evaluate_number(key, ctx);
    let _ = snapshot.evaluate_json(key, ctx);
    let all = snapshot.evaluate_all(ctx).filter(|e| e.is_error()).count();
    assert_eq!(all, 0, "evaluate_all produced errors");
}
