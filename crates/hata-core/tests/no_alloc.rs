//! Evaluating a flag without rollouts allocates nothing: checked with a counting allocator
//! (its own test binary, because the global allocator is per binary).

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};

use hata_core::evaluate::{Context, Reason};
use hata_core::model::Flag;
use hata_core::snapshot::Snapshot;
use serde_json::{json, Value};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn evaluation_does_not_allocate() {
    let flags: Vec<Flag> = [
        json!({"key": "static", "type": "boolean",
               "environments": {"prod": {"enabled": true, "default": {"variant": "on"}}}}),
        json!({"key": "killed", "type": "boolean", "environments": {"prod": {"enabled": false}}}),
        json!({"key": "ruled", "type": "boolean", "environments": {"prod": {"enabled": true,
            "targets": [{"variant": "on", "values": ["vip"]}],
            "rules": [{"id": "r", "conditions": [
                {"attribute": "plan", "operator": "in", "values": ["pro"]},
                {"attribute": "org.size", "operator": "gt", "values": [10]},
                {"attribute": "version", "operator": "semver_gt", "values": ["1.0.0"]}],
              "serve": {"rollout": {"weights": [{"variant": "on", "weight": 50000},
                                                {"variant": "off", "weight": 50000}]}}}]}}}),
    ]
    .into_iter()
    .map(|v| {
        let mut f: Flag = serde_json::from_value(v).expect("flag");
        f.normalize(["prod"]);
        f
    })
    .collect();
    let snap = Snapshot::compile("prod", &flags, &[]).expect("compiles");
    let Value::Object(attrs) = json!({"targetingKey": "u-1", "plan": "pro", "org": {"size": 12.5},
                                      "version": "1.2.0"})
    else {
        unreachable!()
    };

    // As the server reads a context: member pairs, too few to be indexed.
    let pairs: Vec<(Cow<str>, Value)> = attrs
        .iter()
        .map(|(k, v)| (Cow::Borrowed(k.as_str()), v.clone()))
        .collect();

    for (what, attrs) in [("map", Some(&attrs)), ("pairs", None)] {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let ctx = match attrs {
            Some(attrs) => Context::new(attrs),
            None => Context::from_pairs(&pairs),
        };
        let a = snap.evaluate("static", &ctx);
        let b = snap.evaluate("killed", &ctx);
        let c = snap.evaluate("ruled", &ctx);
        let d = snap.evaluate_bool("static", &ctx);
        let after = ALLOCATIONS.load(Ordering::Relaxed);

        assert_eq!(
            (a.reason, b.reason, c.reason),
            (Reason::Static, Reason::Disabled, Reason::Split),
            "{what}"
        );
        assert!(d.is_ok(), "{what}");
        assert_eq!(after - before, 0, "evaluation from {what} allocated");
    }
}
