//! What a well-formed entry object is, as the verifier checks it on a parsed line: every
//! member of `ENTRY_MEMBERS` present with its JSON type, and the links (`seq`, `prev_hash`,
//! `hash`) read out.
//!
//! Values are checked for type and spelling, not meaning: an unknown `actor.kind` or `action`
//! is well-formed (later versions may add some), and the hash covers it either way. Members
//! beyond the format's are allowed here for the same reason; they are hashed like the rest,
//! so one added to a stored line is caught by the hash.

use crate::at::is_at;
use crate::chain::Hash;
use crate::entry::ENTRY_MEMBERS;
use crate::tree::Json;

/// An entry's place in the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Links {
    pub seq: u64,
    pub prev_hash: Hash,
    pub hash: Hash,
}

/// The links of a well-formed entry, or what is wrong with it.
pub(crate) fn check_entry(entry: &Json<'_>) -> Result<Links, String> {
    if !matches!(entry, Json::Object(_)) {
        return Err("not a JSON object".into());
    }
    let member = |name: &str| {
        entry
            .get(name)
            .ok_or_else(|| format!("member `{name}` is missing"))
    };
    for name in ENTRY_MEMBERS {
        member(name)?;
    }
    let seq = match member("seq")?.as_u64() {
        Some(seq) if seq >= 1 => seq,
        _ => return Err("`seq` is not an integer >= 1".into()),
    };
    if !member("at")?.as_str().is_some_and(is_at) {
        return Err("`at` is not YYYY-MM-DDTHH:MM:SS.ffffffZ".into());
    }
    check_object(member("actor")?, "actor", &["kind", "id"], &["name"])?;
    check_object(member("resource")?, "resource", &["type", "key"], &[])?;
    if !member("action")?.is_str() {
        return Err("`action` is not a string".into());
    }
    for name in [
        "role",
        "project",
        "environment",
        "ip",
        "user_agent",
        "request_id",
    ] {
        if !is_string_or_null(member(name)?) {
            return Err(format!("`{name}` is neither a string nor null"));
        }
    }
    if !matches!(member("patch")?, Json::Array(_)) {
        return Err("`patch` is not an array".into());
    }
    let prev_hash = hash_member(member("prev_hash")?, "prev_hash")?;
    let hash = hash_member(member("hash")?, "hash")?;
    Ok(Links {
        seq,
        prev_hash,
        hash,
    })
}

fn check_object(
    object: &Json<'_>,
    name: &str,
    strings: &[&str],
    nullable: &[&str],
) -> Result<(), String> {
    if !matches!(object, Json::Object(_)) {
        return Err(format!("`{name}` is not an object"));
    }
    for member in strings {
        if !object.get(member).is_some_and(Json::is_str) {
            return Err(format!("`{name}.{member}` is not a string"));
        }
    }
    for member in nullable {
        if !object.get(member).is_some_and(is_string_or_null) {
            return Err(format!("`{name}.{member}` is neither a string nor null"));
        }
    }
    Ok(())
}

fn is_string_or_null(value: &Json<'_>) -> bool {
    value.is_str() || value.is_null()
}

fn hash_member(value: &Json<'_>, name: &str) -> Result<Hash, String> {
    value
        .as_str()
        .and_then(Hash::parse)
        .ok_or_else(|| format!("`{name}` is not 64 lower-case hex digits"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map, Value};

    fn check(map: &Map<String, Value>) -> Result<Links, String> {
        let line = serde_json::to_vec(map).expect("serialisable");
        check_entry(&Json::parse(&line).expect("JSON"))
    }

    fn entry() -> Map<String, Value> {
        let value = json!({
            "seq": 3, "at": "2026-12-06T11:01:06.123456Z",
            "actor": {"kind": "token", "id": "tok_1", "name": null}, "role": null,
            "action": "create", "resource": {"type": "flag", "key": "f"},
            "project": "p", "environment": null, "old": null, "new": {"a": 1},
            "patch": [], "ip": null, "user_agent": null, "request_id": null,
            "prev_hash": "0".repeat(64), "hash": "a".repeat(64),
        });
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn well_formed() {
        let links = check(&entry()).expect("well-formed");
        assert_eq!(links.seq, 3);
        assert_eq!(links.prev_hash, Hash::GENESIS);
        assert_eq!(links.hash, Hash([0xaa; 32]));
    }

    #[test]
    fn each_defect_is_named() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("seq", json!(0), "`seq`"),
            ("seq", json!(1.5), "`seq`"),
            ("seq", json!("1"), "`seq`"),
            ("at", json!("2026-12-06T11:01:06Z"), "`at`"),
            ("actor", json!({"kind": "user", "name": null}), "`actor.id`"),
            ("actor", json!({"kind": "user", "id": "u"}), "`actor.name`"),
            ("resource", json!("flag"), "`resource`"),
            ("action", json!(null), "`action`"),
            ("role", json!(1), "`role`"),
            ("patch", json!(null), "`patch`"),
            ("prev_hash", json!("A".repeat(64)), "`prev_hash`"),
            ("hash", json!("a".repeat(63)), "`hash`"),
        ];
        for (member, value, expected) in cases {
            let mut map = entry();
            map.insert(member.into(), value);
            let err = check(&map).expect_err(member);
            assert!(err.contains(expected), "{member}: {err}");
        }
        for member in ENTRY_MEMBERS {
            let mut map = entry();
            map.remove(member);
            let err = check(&map).expect_err(member);
            assert!(err.contains(&format!("`{member}` is missing")), "{err}");
        }
    }
}
