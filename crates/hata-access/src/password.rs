//! Passwords: the policy a new password must meet, and hashing with argon2id.
//!
//! Policy: 12 to 1,024 characters (the upper bound keeps one hash's cost bounded), not one of
//! the 10,000 most common passwords (shipped in the binary, `data/common-passwords.txt`,
//! compared without regard to case), and not the account's email address or its local part.
//!
//! Hashes are argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane) in the PHC string
//! format, which names its parameters, so they can be raised later without breaking stored
//! hashes. Hashing takes tens of milliseconds of CPU on purpose: the server runs it on a
//! bounded blocking pool, never on the async workers.

use std::collections::HashSet;
use std::sync::LazyLock;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MIN_CHARS: usize = 12;
pub const MAX_BYTES: usize = 1024;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .collect()
});

/// Why a password is refused, as the message shown next to the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("must be at least 12 characters")]
    TooShort,
    #[error("must be at most 1024 bytes")]
    TooLong,
    #[error("is one of the 10,000 most common passwords")]
    Common,
    #[error("must not be the email address")]
    IsEmail,
}

/// Whether `password` may be set for the account with `email`.
pub fn check(password: &str, email: &str) -> Result<(), PasswordProblem> {
    if password.chars().count() < MIN_CHARS {
        return Err(PasswordProblem::TooShort);
    }
    if password.len() > MAX_BYTES {
        return Err(PasswordProblem::TooLong);
    }
    let lower = password.to_lowercase();
    if COMMON.contains(lower.as_str()) || COMMON.contains(password) {
        return Err(PasswordProblem::Common);
    }
    let email = email.to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if lower == email || lower == local {
        return Err(PasswordProblem::IsEmail);
    }
    Ok(())
}

fn hasher() -> Argon2<'static> {
    // OWASP: m=19456 KiB, t=2, p=1. `Params::new` only fails for values out of argon2's
    // ranges, which these constants are not.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of `password`, with a new random salt.
pub fn hash(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` matches the stored PHC string. A stored string that does not parse
/// matches nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A new random password (144 bits, 36 hex digits) for an account whose creator chose none.
pub fn generate() -> String {
    use rand::Rng;
    let bytes: [u8; 18] = rand::thread_rng().gen();
    hex::encode(bytes)
}

/// A hash that stands in for a missing account, so that a login for an unknown email costs as
/// much as one for a known email with a wrong password (no timing oracle for which emails
/// exist).
pub fn decoy_hash() -> &'static str {
    static DECOY: LazyLock<String> =
        LazyLock::new(|| hash("decoy password that nobody has").unwrap_or_default());
    &DECOY
}

#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy() {
        assert_eq!(check("short", "a@b.c"), Err(PasswordProblem::TooShort));
        // 11 characters, 22 bytes: characters count, not bytes.
        assert_eq!(
            check("パスワードパスワードパ", "a@b.c"),
            Err(PasswordProblem::TooShort)
        );
        assert_eq!(check("パスワードパスワードパス", "a@b.c"), Ok(()));
        assert_eq!(
            check(&"x".repeat(1025), "a@b.c"),
            Err(PasswordProblem::TooLong)
        );
        for common in ["123qweasdzxc", "1QAZ2WSX3EDC", "q1w2e3r4t5y6"] {
            assert_eq!(
                check(common, "a@b.c"),
                Err(PasswordProblem::Common),
                "{common}"
            );
        }
        assert_eq!(
            check("Alice.Liddell@example.com", "alice.liddell@example.com"),
            Err(PasswordProblem::IsEmail)
        );
        assert_eq!(
            check("alice.liddell", "alice.liddell@example.com"),
            Err(PasswordProblem::IsEmail)
        );
        assert_eq!(check("correct horse battery staple", "a@b.c"), Ok(()));
    }

    #[test]
    fn the_list_is_the_top_10000() {
        assert_eq!(COMMON.len(), 10_000);
        assert!(COMMON.contains("123456") && COMMON.contains("password"));
    }

    #[test]
    fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let h = hash("correct horse battery staple").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery staple", &h));
        assert!(!verify("correct horse battery stapler", &h));
        assert!(!verify("anything", "not a phc string"));
        assert_ne!(
            h,
            hash("correct horse battery staple").expect("hash"),
            "salted"
        );
        assert!(!verify("", decoy_hash()));
    }
}
