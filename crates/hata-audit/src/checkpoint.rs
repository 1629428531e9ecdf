//! Checkpoints: the chain's head at some seq, signed with the server's Ed25519 key, and the
//! policy saying at which seqs one must exist.
//!
//! A checkpoint is `{seq, hash, at, key_id, signature}`; `signature` is Ed25519 over
//!
//! `b"hata-audit-checkpoint-v1\n" ‖ JCS({"at": at, "hash": hash, "key_id": key_id, "seq": seq})`
//!
//! The prefix keeps a checkpoint signature from meaning anything in another protocol that
//! might one day use the same key, and names the format's version. Since each entry's hash
//! covers all entries before it, a valid checkpoint at seq N vouches for entries 1..=N.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::json;
use time::OffsetDateTime;

use crate::at::{format_at, is_at, AtError};
use crate::chain::{parse_lower_hex, Hash, Head};
use crate::jcs;
use crate::key::{KeyId, PublicKey, SigningKey};

/// What every signed checkpoint message starts with.
pub const SIGNING_PREFIX: &[u8] = b"hata-audit-checkpoint-v1\n";

/// The longest a written-to chain goes without a checkpoint, whatever its seq: the server
/// also writes one when this much time has passed since the last and anything was appended.
pub const TIME_INTERVAL: time::Duration = time::Duration::minutes(10);

/// A signed statement "the chain's entry at `seq` has hash `hash`".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    pub seq: u64,
    pub hash: Hash,
    #[serde(deserialize_with = "deserialize_at")]
    pub at: String,
    pub key_id: KeyId,
    pub signature: Signature,
}

/// Why a checkpoint does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint at seq {seq} was signed by key {found}, not by key {expected}")]
    OtherKey {
        seq: u64,
        found: KeyId,
        expected: KeyId,
    },
    #[error("checkpoint at seq {seq}: the signature does not match its contents")]
    BadSignature { seq: u64 },
}

impl Checkpoint {
    /// Signs `head` as of `at`.
    pub fn sign(head: Head, at: OffsetDateTime, key: &SigningKey) -> Result<Checkpoint, AtError> {
        let mut checkpoint = Checkpoint {
            seq: head.seq,
            hash: head.hash,
            at: format_at(at)?,
            key_id: key.key_id(),
            signature: Signature([0; 64]),
        };
        checkpoint.signature = Signature(key.sign(&checkpoint.signed_message()));
        Ok(checkpoint)
    }

    /// The exact bytes the signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        let fields = json!({
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "key_id": self.key_id,
        });
        let mut message = SIGNING_PREFIX.to_vec();
        jcs::write_value(&fields, &mut message);
        message
    }

    /// Checks the signature with `key`; a checkpoint naming another key id fails.
    pub fn verify(&self, key: &PublicKey) -> Result<(), CheckpointError> {
        let expected = key.key_id();
        if self.key_id != expected {
            return Err(CheckpointError::OtherKey {
                seq: self.seq,
                found: self.key_id,
                expected,
            });
        }
        if !key.verifies(&self.signed_message(), &self.signature.0) {
            return Err(CheckpointError::BadSignature { seq: self.seq });
        }
        Ok(())
    }

    pub fn head(&self) -> Head {
        Head {
            seq: self.seq,
            hash: self.hash,
        }
    }
}

fn deserialize_at<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    let at = String::deserialize(deserializer)?;
    if !is_at(&at) {
        return Err(serde::de::Error::custom(
            "expected YYYY-MM-DDTHH:MM:SS.ffffffZ",
        ));
    }
    Ok(at)
}

/// An Ed25519 signature, written as 128 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        parse_lower_hex::<64>(&text)
            .map(Signature)
            .ok_or_else(|| serde::de::Error::custom("expected 128 lower-case hex digits"))
    }
}

/// At which seqs a checkpoint must exist: every multiple of `every`. The server writes those
/// in the transaction that appends the entry, so a verifier that knows the policy can tell a
/// removed checkpoint. (Time-based checkpoints, `TIME_INTERVAL`, come on top, at any seq.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointPolicy {
    /// 0 turns seq-based checkpoints off.
    pub every: u64,
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy { every: 1000 }
    }
}

impl CheckpointPolicy {
    /// Whether the entry at `seq` must be followed by a checkpoint.
    pub fn due(&self, seq: u64) -> bool {
        self.every != 0 && seq != 0 && seq.is_multiple_of(self.every)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn key() -> SigningKey {
        SigningKey::generate(&mut rand::rngs::OsRng)
    }

    fn head() -> Head {
        Head {
            seq: 42,
            hash: Hash([7; 32]),
        }
    }

    #[test]
    fn signed_message_is_prefix_and_canonical_fields() {
        let key = key();
        let cp = Checkpoint::sign(head(), datetime!(2026-12-06 11:01:06.123456 UTC), &key)
            .expect("in range");
        let expected = format!(
            "hata-audit-checkpoint-v1\n{{\"at\":\"2026-12-06T11:01:06.123456Z\",\"hash\":\"{}\",\"key_id\":\"{}\",\"seq\":42}}",
            "07".repeat(32),
            key.key_id()
        );
        assert_eq!(cp.signed_message(), expected.as_bytes());
        assert_eq!(cp.verify(&key.public_key()), Ok(()));
    }

    #[test]
    fn any_changed_field_or_other_key_fails() {
        let key = key();
        let cp = Checkpoint::sign(head(), datetime!(2026-12-06 11:01:06 UTC), &key).expect("ok");
        let public = key.public_key();

        let mut seq = cp.clone();
        seq.seq += 1;
        assert_eq!(
            seq.verify(&public),
            Err(CheckpointError::BadSignature { seq: 43 })
        );
        let mut hash = cp.clone();
        hash.hash.0[0] ^= 1;
        assert!(hash.verify(&public).is_err());
        let mut at = cp.clone();
        at.at = "2026-12-06T11:01:07.000000Z".into();
        assert!(at.verify(&public).is_err());
        let mut sig = cp.clone();
        sig.signature.0[63] ^= 1;
        assert!(sig.verify(&public).is_err());

        let other = self::key();
        assert!(matches!(
            cp.verify(&other.public_key()),
            Err(CheckpointError::OtherKey { .. })
        ));
        // Forged with another key but claiming ours: the signature fails.
        let mut forged =
            Checkpoint::sign(head(), datetime!(2026-12-06 11:01:06 UTC), &other).expect("ok");
        forged.key_id = key.key_id();
        assert_eq!(
            forged.verify(&public),
            Err(CheckpointError::BadSignature { seq: 42 })
        );
    }

    #[test]
    fn json_shape() {
        let key = key();
        let cp = Checkpoint::sign(head(), datetime!(2026-12-06 11:01:06 UTC), &key).expect("ok");
        let value = serde_json::to_value(&cp).expect("serialisable");
        let names: Vec<&str> = value
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, ["seq", "hash", "at", "key_id", "signature"]);
        assert_eq!(
            serde_json::from_value::<Checkpoint>(value.clone()).ok(),
            Some(cp)
        );
        let mut extra = value.clone();
        extra["note"] = json!("unsigned");
        assert!(serde_json::from_value::<Checkpoint>(extra).is_err());
        let mut bad_at = value;
        bad_at["at"] = json!("2026-12-06T11:01:06Z");
        assert!(serde_json::from_value::<Checkpoint>(bad_at).is_err());
    }

    #[test]
    fn policy() {
        let policy = CheckpointPolicy::default();
        assert!(!policy.due(0) && !policy.due(1) && !policy.due(999));
        assert!(policy.due(1000) && policy.due(2000));
        assert!(!CheckpointPolicy { every: 0 }.due(1000));
        assert!(CheckpointPolicy { every: 1 }.due(1));
    }
}
