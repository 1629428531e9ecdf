//! Test chains: a generated audit chain as export lines, and helpers to find and tamper with
//! its lines. Shared by the crate's tests and its benchmark.

#![allow(dead_code)] // each test file uses its own part

use hata_audit::{
    checkpoint_line, Actor, ActorKind, Checkpoint, CheckpointPolicy, Head, NewEntry, Resource,
    SigningKey,
};
use serde_json::{json, Value};
use time::OffsetDateTime;

/// A fixed key, so failures reproduce (RFC 8410's example key).
pub fn test_key() -> SigningKey {
    SigningKey::from_pem(
        "-----BEGIN PRIVATE KEY-----\n\
         MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
         -----END PRIVATE KEY-----\n",
    )
    .expect("RFC 8410 example key")
}

pub fn other_key() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

/// The instant of entry `seq`: one second apart from a fixed start.
pub fn at(seq: u64) -> OffsetDateTime {
    let start = time::macros::datetime!(2026-12-06 11:01:06.123456 UTC);
    start + time::Duration::seconds(i64::try_from(seq).unwrap_or(i64::MAX))
}

/// Values that canonicalise in ways that are easy to get wrong: ECMAScript number forms,
/// integers beyond 2^53, keys that sort differently by UTF-16 and UTF-8, escapes.
#[allow(clippy::excessive_precision)] // RFC 8785's own example: digits beyond a double's
pub fn tricky_value(seq: u64) -> Value {
    json!({
        "on": seq.is_multiple_of(2),
        "floats": [1e21, 1e-7, 0.1, -0.0, 0.30000000000000004, 5e-324, 1.7976931348623157e308,
                   333333333.33333329, 123456789.5, -2.5e-8],
        "ints": [0, -1, 9007199254740993u64, 18446744073709551615u64, -9223372036854775808i64, seq],
        "\u{1F600}": "astral key", "\u{FB33}": "sorts after the emoji in UTF-16",
        "é": "\u{0}\u{1f}\"\\/\n\t\u{7f}\u{2028}😀",
        "nested": {"b": [{"z": null, "a": true}], "a": "x"},
    })
}

/// A plain flag document, as most entries would carry.
pub fn flag_value(seq: u64) -> Value {
    json!({
        "key": format!("flag-{}", seq % 97),
        "name": "Checkout redesign",
        "on": seq.is_multiple_of(3),
        "variants": {"on": true, "off": false},
        "rules": [{"segment": "beta", "serve": {"variant": "on"}}],
        "rollout": {"on": 25.5, "off": 74.5},
        "version": seq,
    })
}

pub fn new_entry(seq: u64, old: Value, new: Value) -> NewEntry {
    NewEntry {
        at: at(seq),
        actor: Actor {
            kind: if seq.is_multiple_of(2) {
                ActorKind::User
            } else {
                ActorKind::Token
            },
            id: format!("usr_{}", seq % 7),
            name: (seq.is_multiple_of(2)).then(|| "Zoë Åström".to_string()),
        },
        role: Some("editor".into()),
        action: "update".into(),
        resource: Resource {
            kind: "flag".into(),
            key: format!("flag-{}", seq % 97),
        },
        project: Some("shop".into()),
        environment: (!seq.is_multiple_of(3)).then(|| "production".to_string()),
        old,
        new,
        patch: None,
        ip: Some("203.0.113.7".into()),
        user_agent: Some("hata-cli/0.1".into()),
        request_id: Some(format!("req-{seq}")),
    }
}

/// Entry `seq`'s contents: tricky values when `tricky`, else flag documents.
pub fn entry_for(seq: u64, tricky: bool) -> NewEntry {
    if tricky {
        new_entry(seq, tricky_value(seq.saturating_sub(1)), tricky_value(seq))
    } else if seq % 10 == 1 {
        new_entry(seq, Value::Null, flag_value(seq))
    } else {
        new_entry(seq, flag_value(seq - 1), flag_value(seq))
    }
}

/// An export of a chain of `n` entries with a checkpoint at every multiple of `every`.
pub fn chain(n: u64, every: u64, key: &SigningKey, tricky: bool) -> Vec<String> {
    let policy = CheckpointPolicy { every };
    let mut head = Head::genesis();
    let mut lines = Vec::new();
    for seq in 1..=n {
        let sealed = entry_for(seq, tricky).seal(&head).expect("sealable");
        head = sealed.head();
        lines.push(sealed.json());
        if policy.due(seq) {
            let cp = Checkpoint::sign(head, at(seq), key).expect("in range");
            lines.push(checkpoint_line(&cp));
        }
    }
    lines
}

/// What a line is: `(is_checkpoint, seq)`.
pub fn kind_of(line: &str) -> (bool, u64) {
    let value: Value = serde_json::from_str(line).expect("a test line is JSON");
    match value.get("checkpoint") {
        Some(cp) => (true, cp["seq"].as_u64().expect("seq")),
        None => (false, value["seq"].as_u64().expect("seq")),
    }
}

pub fn entry_index(lines: &[String], seq: u64) -> usize {
    lines
        .iter()
        .position(|l| kind_of(l) == (false, seq))
        .expect("entry present")
}

pub fn checkpoint_index(lines: &[String], seq: u64) -> usize {
    lines
        .iter()
        .position(|l| kind_of(l) == (true, seq))
        .expect("checkpoint present")
}

/// Rewrites one member of the entry at `index`, leaving its hash as it was.
pub fn edit_entry(lines: &mut [String], index: usize, member: &str, value: Value) {
    let mut entry: serde_json::Map<String, Value> =
        serde_json::from_str(&lines[index]).expect("entry line");
    entry.insert(member.into(), value);
    lines[index] = serde_json::to_string(&entry).expect("serialisable");
}

/// An export of the range starting at `from`: the anchor checkpoint at `from - 1` (if
/// `anchor` and there is one), then every line from the entry at `from` on.
pub fn range(lines: &[String], from: u64, anchor: bool) -> Vec<String> {
    let mut out = Vec::new();
    if anchor {
        if let Some(cp) = lines.iter().find(|l| kind_of(l) == (true, from - 1)) {
            out.push(cp.clone());
        }
    }
    out.extend_from_slice(&lines[entry_index(lines, from)..]);
    out
}
