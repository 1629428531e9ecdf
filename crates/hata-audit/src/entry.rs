//! An audit entry as the API, the store and exports carry it, and how the store builds one:
//! `NewEntry` (what happened) + the chain's `Head` → `SealedEntry` (the complete `Entry` with
//! seq, patch, prev_hash and hash, and its exact JSON text to store and export).
//!
//! The typed `Entry` serialises to exactly the members of the format, all present and nulls
//! explicit (`ENTRY_MEMBERS`), so the hash computed here equals the hash a verifier computes
//! from the stored line. Verification never goes through this type: it reads lines as
//! `serde_json::Value`s (see `verify`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::at::{format_at, AtError};
use crate::chain::{entry_hash, Hash, Head};

/// The members of an entry object, in the order hata writes them.
pub const ENTRY_MEMBERS: [&str; 16] = [
    "seq",
    "at",
    "actor",
    "role",
    "action",
    "resource",
    "project",
    "environment",
    "old",
    "new",
    "patch",
    "ip",
    "user_agent",
    "request_id",
    "prev_hash",
    "hash",
];

/// One entry of the chain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// 1, 2, 3, … without gaps.
    pub seq: u64,
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (`at::format_at`).
    pub at: String,
    pub actor: Actor,
    /// The actor's role where it acted (`viewer`, `editor`, `owner`, `admin`), if any.
    pub role: Option<String>,
    pub action: String,
    pub resource: Resource,
    pub project: Option<String>,
    pub environment: Option<String>,
    /// The resource before and after; JSON `null` where there is none.
    pub old: Value,
    pub new: Value,
    /// RFC 6902 JSON Patch from `old` to `new`.
    pub patch: Value,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub prev_hash: Hash,
    pub hash: Hash,
}

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
    pub name: Option<String>,
}

/// What kind of principal an `Actor` is (the store keeps it as the `kind` of `kind:id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person, by user id.
    User,
    /// An API token, by token id.
    Token,
    /// A JWT from a configured issuer, by subject.
    Jwt,
    /// hata itself (e.g. `bootstrap`, the admin token created at first start).
    System,
    /// Someone not (yet) authenticated, by client IP: a failed login.
    Anonymous,
}

impl ActorKind {
    pub const ALL: [ActorKind; 5] = [
        ActorKind::User,
        ActorKind::Token,
        ActorKind::Jwt,
        ActorKind::System,
        ActorKind::Anonymous,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::Token => "token",
            ActorKind::Jwt => "jwt",
            ActorKind::System => "system",
            ActorKind::Anonymous => "anonymous",
        }
    }

    pub fn parse(s: &str) -> Option<ActorKind> {
        ActorKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What was acted on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    #[serde(rename = "type")]
    pub kind: String,
    pub key: String,
}

/// An entry before it joins the chain: everything but seq, prev_hash and hash.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEntry {
    pub at: OffsetDateTime,
    pub actor: Actor,
    pub role: Option<String>,
    pub action: String,
    pub resource: Resource,
    pub project: Option<String>,
    pub environment: Option<String>,
    pub old: Value,
    pub new: Value,
    /// `None`: computed from `old` and `new` (`json_patch::diff`).
    pub patch: Option<Value>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EntryError {
    #[error("the chain is at seq {0}, the last there is")]
    SeqOverflow(u64),
    #[error(transparent)]
    At(#[from] AtError),
    #[error("the entry could not be encoded as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A complete entry and the JSON text it is stored and exported as (one line, no newline).
#[derive(Clone, Debug, PartialEq)]
pub struct SealedEntry {
    pub entry: Entry,
}

impl SealedEntry {
    /// The entry's JSON text (one line, no newline): what an export carries. Written on
    /// demand: the store keeps the entry in columns and never needs it.
    pub fn json(&self) -> String {
        serde_json::to_string(&self.entry).unwrap_or_default()
    }

    /// The chain's head once this entry is appended.
    pub fn head(&self) -> Head {
        Head {
            seq: self.entry.seq,
            hash: self.entry.hash,
        }
    }
}

impl NewEntry {
    /// Completes the entry as the one after `head`: seq `head.seq + 1`, `prev_hash`
    /// `head.hash`, the patch if none was given, and the hash.
    pub fn seal(self, head: &Head) -> Result<SealedEntry, EntryError> {
        let seq = head
            .seq
            .checked_add(1)
            .ok_or(EntryError::SeqOverflow(head.seq))?;
        let patch = match self.patch {
            Some(patch) => patch,
            None => serde_json::to_value(json_patch::diff(&self.old, &self.new))?,
        };
        let mut entry = Entry {
            seq,
            at: format_at(self.at)?,
            actor: self.actor,
            role: self.role,
            action: self.action,
            resource: self.resource,
            project: self.project,
            environment: self.environment,
            old: self.old,
            new: self.new,
            patch,
            ip: self.ip,
            user_agent: self.user_agent,
            request_id: self.request_id,
            prev_hash: head.hash,
            hash: Hash::GENESIS,
        };
        // Hash the object form, the same `Value` a verifier parses from the line (the `hash`
        // member is left out by `entry_hash`).
        let Value::Object(map) = serde_json::to_value(&entry)? else {
            return Err(EntryError::Encode(serde::ser::Error::custom(
                "not an object",
            )));
        };
        entry.hash = entry_hash(&head.hash, &map, &mut Vec::new());
        Ok(SealedEntry { entry })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn new_entry(old: Value, new: Value) -> NewEntry {
        NewEntry {
            at: datetime!(2026-12-06 11:01:06.123456 UTC),
            actor: Actor {
                kind: ActorKind::User,
                id: "usr_1".into(),
                name: None,
            },
            role: Some("owner".into()),
            action: "update".into(),
            resource: Resource {
                kind: "flag".into(),
                key: "checkout".into(),
            },
            project: Some("shop".into()),
            environment: None,
            old,
            new,
            patch: None,
            ip: Some("192.0.2.1".into()),
            user_agent: None,
            request_id: Some("req-1".into()),
        }
    }

    #[test]
    fn every_member_present_with_explicit_nulls_in_order() {
        let sealed = new_entry(Value::Null, json!({"on": true}))
            .seal(&Head::genesis())
            .expect("ok");
        let value: Value = serde_json::from_str(&sealed.json()).expect("JSON");
        let names: Vec<&str> = value
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, ENTRY_MEMBERS);
        assert_eq!(value["environment"], Value::Null);
        assert_eq!(
            value["actor"],
            json!({"kind": "user", "id": "usr_1", "name": null})
        );
        assert_eq!(
            value["resource"],
            json!({"type": "flag", "key": "checkout"})
        );
        assert_eq!(value["at"], json!("2026-12-06T11:01:06.123456Z"));
        assert_eq!(sealed.entry.seq, 1);
        assert_eq!(sealed.entry.prev_hash, Hash::GENESIS);
        assert_eq!(
            serde_json::from_value::<Entry>(value).ok(),
            Some(sealed.entry)
        );
    }

    #[test]
    fn patch_is_computed_from_old_and_new() {
        let old = json!({"on": false, "variants": ["a", "b"]});
        let new = json!({"on": true, "variants": ["a"]});
        let sealed = new_entry(old.clone(), new.clone())
            .seal(&Head::genesis())
            .expect("ok");
        let patch: json_patch::Patch =
            serde_json::from_value(sealed.entry.patch.clone()).expect("an RFC 6902 patch");
        let mut doc = old;
        json_patch::patch(&mut doc, &patch).expect("applies");
        assert_eq!(doc, new);
        // Created: from null.
        let sealed = new_entry(Value::Null, json!({"on": true}))
            .seal(&Head::genesis())
            .expect("ok");
        assert_eq!(
            sealed.entry.patch,
            json!([{"op": "replace", "path": "", "value": {"on": true}}])
        );
    }

    #[test]
    fn typed_hash_equals_hash_of_the_parsed_line() {
        let tricky = json!({"f": 0.1, "big": 1e21, "neg0": -0.0, "int": 18446744073709551615u64,
                            "🙂": "\u{0}\"\\", "\u{e000}": 1, "z": [1.5e-7, 123456789.123]});
        let sealed = new_entry(tricky, Value::Null)
            .seal(&Head {
                seq: 9,
                hash: Hash([3; 32]),
            })
            .expect("ok");
        assert_eq!(sealed.entry.seq, 10);
        let parsed: Value = serde_json::from_str(&sealed.json()).expect("JSON");
        let map = parsed.as_object().expect("object");
        assert_eq!(
            entry_hash(&Hash([3; 32]), map, &mut Vec::new()),
            sealed.entry.hash
        );
        assert_eq!(map["hash"], json!(sealed.entry.hash.to_hex()));
        // And from the typed entry re-serialised.
        let again = serde_json::to_value(&sealed.entry).expect("serialisable");
        let again = again.as_object().expect("object");
        assert_eq!(
            entry_hash(&Hash([3; 32]), again, &mut Vec::new()),
            sealed.entry.hash
        );
    }

    #[test]
    fn seq_overflow_is_an_error() {
        let head = Head {
            seq: u64::MAX,
            hash: Hash::GENESIS,
        };
        assert!(matches!(
            new_entry(Value::Null, Value::Null).seal(&head),
            Err(EntryError::SeqOverflow(_))
        ));
    }
}
