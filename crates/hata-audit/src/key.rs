//! The Ed25519 keys that sign checkpoints, in the files an operator and an auditor handle:
//! the private key as PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, what `openssl genpkey
//! -algorithm ed25519` writes) and the public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`),
//! both read by OpenSSL and Python's `cryptography`.
//!
//! `KeyId` names a public key in checkpoints: the first 16 hex digits of the SHA-256 of its
//! raw 32 bytes. It picks the key to verify with; it is no substitute for verifying.
//!
//! Generating, reading and writing keys is all there is: where the private key lives is the
//! server's business.

use std::fmt;

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::KeypairBytes;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::Signer;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::chain::parse_lower_hex;

pub use zeroize::Zeroizing;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not an Ed25519 private key in PKCS#8 PEM (-----BEGIN PRIVATE KEY-----): {0}")]
    BadPrivatePem(String),
    #[error("not an Ed25519 public key in SPKI PEM (-----BEGIN PUBLIC KEY-----): {0}")]
    BadPublicPem(String),
    #[error("the key could not be written as PEM: {0}")]
    Encode(String),
}

/// The private key that signs checkpoints. Its `Debug` shows the key id, never the key.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A new random key (`rand::rngs::OsRng` in production).
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(rng: &mut R) -> SigningKey {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut secret[..]);
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&secret))
    }

    /// Reads a PKCS#8 PEM private key (v1, or v2 with a public key that must match).
    pub fn from_pem(pem: &str) -> Result<SigningKey, KeyError> {
        ed25519_dalek::SigningKey::from_pkcs8_pem(pem)
            .map(SigningKey)
            .map_err(|e| KeyError::BadPrivatePem(e.to_string()))
    }

    /// Writes the key as PKCS#8 v1 PEM, the form `openssl genpkey` writes and every reader
    /// takes (v2, which adds the public key, is not read by every OpenSSL).
    pub fn to_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        let pair = KeypairBytes {
            secret_key: self.0.to_bytes(),
            public_key: None,
        };
        pair.to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    pub fn key_id(&self) -> KeyId {
        self.public_key().key_id()
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.key_id())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The public key that verifies checkpoints.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Reads an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`).
    pub fn from_pem(pem: &str) -> Result<PublicKey, KeyError> {
        ed25519_dalek::VerifyingKey::from_public_key_pem(pem)
            .map(PublicKey)
            .map_err(|e| KeyError::BadPublicPem(e.to_string()))
    }

    pub fn to_pem(&self) -> Result<String, KeyError> {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| KeyError::Encode(e.to_string()))
    }

    /// The raw 32 bytes (RFC 8032's encoding).
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn key_id(&self) -> KeyId {
        let digest = Sha256::digest(self.0.as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        KeyId(id)
    }

    /// Whether `signature` is this key's signature of `message` (strict verification: no
    /// malleable or small-order forms).
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.0.verify_strict(message, &signature).is_ok()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

/// A public key's id: the first 8 bytes of SHA-256 of its raw 32 bytes, written as 16
/// lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 8]);

impl KeyId {
    pub fn parse(text: &str) -> Option<KeyId> {
        parse_lower_hex::<8>(text).map(KeyId)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

impl Serialize for KeyId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        KeyId::parse(&text)
            .ok_or_else(|| serde::de::Error::custom("expected 16 lower-case hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8410 §10.3 (private key) and the public key derived from it.
    const RFC8410_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n\
        -----END PRIVATE KEY-----\n";

    #[test]
    fn pem_round_trips() {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let pem = key.to_pem().expect("encodable");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        let again = SigningKey::from_pem(&pem).expect("readable");
        assert_eq!(again.public_key(), key.public_key());

        let public = key.public_key().to_pem().expect("encodable");
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(PublicKey::from_pem(&public), Ok(key.public_key()));
    }

    #[test]
    fn reads_the_rfc8410_example_as_openssl_writes_it() {
        let key = SigningKey::from_pem(RFC8410_PRIVATE).expect("RFC 8410 example");
        // Written back identically: v1, as OpenSSL writes it.
        assert_eq!(key.to_pem().expect("encodable").as_str(), RFC8410_PRIVATE);
        let public = key.public_key();
        assert_eq!(
            hex::encode(public.to_bytes()),
            "19bf44096984cdfe8541bac167dc3b96c85086aa30b6b6cb0c5c38ad703166e1"
        );
        assert_eq!(
            public.to_pem().expect("encodable"),
            "-----BEGIN PUBLIC KEY-----\n\
             MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n\
             -----END PUBLIC KEY-----\n"
        );
    }

    #[test]
    fn key_id_is_a_sha256_prefix() {
        let key = SigningKey::from_pem(RFC8410_PRIVATE).expect("RFC 8410 example");
        let digest = Sha256::digest(key.public_key().to_bytes());
        assert_eq!(key.key_id().to_string(), hex::encode(&digest[..8]));
        assert_eq!(KeyId::parse(&key.key_id().to_string()), Some(key.key_id()));
        assert_eq!(KeyId::parse(&key.key_id().to_string().to_uppercase()), None);
    }

    #[test]
    fn bad_pem_is_an_error_not_a_panic() {
        assert!(matches!(
            SigningKey::from_pem("nope"),
            Err(KeyError::BadPrivatePem(_))
        ));
        assert!(matches!(
            PublicKey::from_pem(RFC8410_PRIVATE),
            Err(KeyError::BadPublicPem(_))
        ));
    }

    #[test]
    fn debug_hides_the_private_key() {
        let key = SigningKey::from_pem(RFC8410_PRIVATE).expect("RFC 8410 example");
        let shown = format!("{key:?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        let secret = hex::encode(key.0.to_bytes());
        assert!(
            !shown.contains(&secret) && !shown.contains("MC4CAQAw"),
            "{shown}"
        );
    }

    #[test]
    fn signatures_verify_only_with_the_signing_key() {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let other = SigningKey::generate(&mut rand::rngs::OsRng);
        let sig = key.sign(b"message");
        assert!(key.public_key().verifies(b"message", &sig));
        assert!(!key.public_key().verifies(b"messagf", &sig));
        assert!(!other.public_key().verifies(b"message", &sig));
    }
}
