//! The links of the chain: `Hash` (a SHA-256 written as 64 lower-case hex digits), `Head`
//! (the last entry's seq and hash) and `entry_hash`, the one definition of an entry's hash:
//!
//! `hash = SHA-256(prev_hash as 32 raw bytes ‖ JCS(entry object without its "hash" member))`
//!
//! The object is hashed as it was parsed, not re-serialised from a typed struct, so a member
//! added to or removed from a stored line changes the hash.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::jcs;

/// A SHA-256 digest: an entry's `hash` and `prev_hash`, a checkpoint's `hash`.
///
/// Its text form is exactly 64 lower-case hex digits; `parse` refuses anything else (upper
/// case included), so one digest has one spelling and a changed letter case in a stored line
/// cannot pass unnoticed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The `prev_hash` of the chain's first entry (seq 1): 64 zeros.
    pub const GENESIS: Hash = Hash([0; 32]);

    /// Reads 64 lower-case hex digits.
    pub fn parse(text: &str) -> Option<Hash> {
        parse_lower_hex::<32>(text).map(Hash)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

impl Serialize for Hash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Hash::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("expected 64 lower-case hex digits"))
    }
}

/// Reads exactly `2 * N` lower-case hex digits.
pub(crate) fn parse_lower_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N || !bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(bytes, &mut out).ok()?;
    Some(out)
}

/// The chain's head: the last entry's seq and hash, what the next entry links to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub seq: u64,
    pub hash: Hash,
}

impl Head {
    /// The head of an empty chain: seq 0 and the genesis hash, so the first entry gets seq 1
    /// and `prev_hash` 64 zeros.
    pub const fn genesis() -> Head {
        Head {
            seq: 0,
            hash: Hash::GENESIS,
        }
    }
}

/// The hash of an entry object whose `prev_hash` is `prev`; the object's own `hash` member,
/// if present, is left out. `buf` is scratch space for the canonical form. (`NewEntry::seal`
/// hashes this way; the verifier computes the same from the line's text, tests/jcs.rs and
/// tests/tamper.rs hold the two together.)
pub fn entry_hash(prev: &Hash, entry: &Map<String, Value>, buf: &mut Vec<u8>) -> Hash {
    buf.clear();
    jcs::write_object_without(entry, Some("hash"), buf);
    let mut sha = Sha256::new();
    sha.update(prev.0);
    sha.update(&buf[..]);
    Hash(sha.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_text_is_strict_lower_hex() {
        let lower = "ab".repeat(32);
        assert_eq!(Hash::parse(&lower), Some(Hash([0xab; 32])));
        assert_eq!(Hash::parse(&"AB".repeat(32)), None);
        assert_eq!(Hash::parse(&"ab".repeat(31)), None);
        assert_eq!(Hash::parse(&format!("{lower}0")), None);
        assert_eq!(Hash::parse(&"zz".repeat(32)), None);
        assert_eq!(Hash::GENESIS.to_hex(), "0".repeat(64));
        let json = serde_json::to_string(&Hash([0xab; 32])).expect("serialisable");
        assert_eq!(json, format!("\"{lower}\""));
        assert!(serde_json::from_str::<Hash>(&format!("\"{}\"", "AB".repeat(32))).is_err());
    }

    #[test]
    fn entry_hash_is_sha256_of_prev_and_canonical_form_without_hash() {
        let entry = json!({"seq": 1, "b": "x", "a": 1.0, "hash": "ignored"});
        let entry = entry.as_object().expect("object");
        let mut buf = Vec::new();
        let got = entry_hash(&Hash::GENESIS, entry, &mut buf);
        let mut sha = Sha256::new();
        sha.update([0u8; 32]);
        sha.update(br#"{"a":1,"b":"x","seq":1}"#);
        assert_eq!(got, Hash(sha.finalize().into()));
        // Another prev changes it; the `hash` member does not.
        assert_ne!(entry_hash(&Hash([1; 32]), entry, &mut buf), got);
        let mut other = entry.clone();
        other.insert("hash".into(), json!("different"));
        assert_eq!(entry_hash(&Hash::GENESIS, &other, &mut buf), got);
    }
}
