//! Two-factor authentication: time-based one-time passwords (RFC 6238: HMAC-SHA1, 6 digits,
//! 30 s steps, what every authenticator app reads from an `otpauth://` URI) and one-time
//! recovery codes.
//!
//! A code is accepted for the current step and one step either side (clock drift), and only
//! for a step later than the last one accepted for that user: a code seen once (shoulder
//! surfing, a proxy's log) cannot be replayed. The caller stores the step `verify` returns in
//! the same transaction that accepts the login.
//!
//! Recovery codes are 50 random bits each, shown once and stored as SHA-256: unlike a
//! password they are never chosen by a person, so a fast hash is enough. They are accepted
//! with or without the dash and in any case.

use rand::Rng;
use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per step.
pub const STEP: u64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// How many recovery codes an enrolment hands out.
pub const RECOVERY_CODES: usize = 10;
/// Steps accepted either side of the current one.
const SKEW: u64 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TotpError {
    /// The stored secret is not base32 of at least 128 bits: a corrupt row.
    #[error("the stored TOTP secret is unusable")]
    BadSecret,
}

/// A TOTP secret, base32 without padding as authenticator apps and the store take it. Its
/// `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(String);

impl TotpSecret {
    /// A fresh secret: 160 random bits (RFC 4226's recommendation).
    pub fn generate() -> TotpSecret {
        let bytes: [u8; 20] = rand::thread_rng().gen();
        TotpSecret(Secret::Raw(bytes.to_vec()).to_encoded().to_string())
    }

    /// A secret as stored.
    pub fn from_stored(base32: String) -> TotpSecret {
        TotpSecret(base32)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(..)")
    }
}

fn totp(secret: &str, issuer: &str, account: &str) -> Result<TOTP, TotpError> {
    let bytes = Secret::Encoded(secret.to_string())
        .to_bytes()
        .map_err(|_| TotpError::BadSecret)?;
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        SKEW as u8,
        STEP,
        bytes,
        Some(issuer.to_string()),
        account.to_string(),
    )
    .map_err(|_| TotpError::BadSecret)
}

/// The `otpauth://totp/…` URI an authenticator app enrols from (as text or a QR code).
/// `issuer` and `account` label the entry in the app (e.g. `hata`, the user's email).
pub fn otpauth_uri(secret: &TotpSecret, issuer: &str, account: &str) -> Result<String, TotpError> {
    // totp-rs refuses ':' in either label (it separates them in the URI's path).
    let issuer = issuer.replace(':', " ");
    let account = account.replace(':', " ");
    Ok(totp(secret.as_str(), &issuer, &account)?.get_url())
}

/// The step `unix_seconds` falls in.
pub fn step_of(unix_seconds: u64) -> u64 {
    unix_seconds / STEP
}

/// The code for `step` (what an authenticator app shows during it).
pub fn code_at(secret: &TotpSecret, step: u64) -> Result<String, TotpError> {
    Ok(totp(secret.as_str(), "hata", "user")?.generate(step * STEP))
}

/// The step whose code `code` is, among the current step and its neighbours, if that step is
/// later than `last_step` (the last one accepted). `None` for a wrong, stale or replayed
/// code. Spaces in the code are ignored (apps show `123 456`).
pub fn verify(
    secret: &TotpSecret,
    code: &str,
    unix_seconds: u64,
    last_step: u64,
) -> Result<Option<u64>, TotpError> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let totp = totp(secret.as_str(), "hata", "user")?;
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let now = step_of(unix_seconds);
    let mut found = None;
    // Every candidate is computed and compared, in constant time, whatever matches: the time
    // taken says nothing about which step (if any) the code belongs to.
    for step in now.saturating_sub(SKEW)..=now + SKEW {
        let expected = totp.generate(step * STEP);
        if crate::session::same_secret(&expected, &code) && step > last_step {
            found = Some(step);
        }
    }
    Ok(found)
}

/// Whether `input` looks like a recovery code rather than an authenticator's code.
pub fn is_recovery_code(input: &str) -> bool {
    normalize_recovery_code(input).len() == 10
}

/// Ten fresh recovery codes, as shown to the user (`xxxxx-xxxxx`, base32 lower case).
pub fn generate_recovery_codes() -> Vec<String> {
    let mut rng = rand::thread_rng();
    (0..RECOVERY_CODES)
        .map(|_| {
            // 50 bits: ten base32 characters.
            let n: u64 = rng.gen::<u64>() >> 14;
            let chars: String = (0..10)
                .map(|i| {
                    let digit = ((n >> (5 * (9 - i))) & 31) as usize;
                    b"abcdefghijklmnopqrstuvwxyz234567"[digit] as char
                })
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// A recovery code as typed, reduced to its ten characters: no dashes or spaces, lower case.
fn normalize_recovery_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// What the store keeps of a recovery code: the SHA-256 of its normalised form.
pub fn hash_recovery_code(input: &str) -> String {
    crate::token::hash_secret(&normalize_recovery_code(input))
}

/// Who must have two-factor authentication on, and for what (`--mfa-required-for-*`).
/// Both apply to people (sessions) only: API tokens and JWTs are machines' credentials, kept
/// short-lived and rotated instead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MfaPolicy {
    /// An admin without it acts with its project memberships only, until it enrols.
    pub admins: bool,
    /// Without it nobody changes a protected environment (see the store's `protected`).
    pub protected_environments: bool,
}

impl MfaPolicy {
    /// Whether a user flagged admin acts as one, given whether it has MFA on.
    pub fn admin_acts_as_admin(&self, mfa: bool) -> bool {
        mfa || !self.admins
    }

    /// Why a user (MFA on or not) may not change protected environments, if it may not.
    pub fn protected_refusal(&self, mfa: bool) -> Option<&'static str> {
        (self.protected_environments && !mfa).then_some(
            "changing it needs two-factor authentication; turn it on with POST /api/v1/auth/totp",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1: the secret is the ASCII "12345678901234567890" and the
    /// test vectors are 8 digits; the 6-digit code is their last six.
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = TotpSecret(
            Secret::Raw(b"12345678901234567890".to_vec())
                .to_encoded()
                .to_string(),
        );
        for (time, eight) in [
            (59u64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
        ] {
            assert_eq!(code_at(&secret, step_of(time)).unwrap(), &eight[2..]);
        }
    }

    #[test]
    fn a_code_is_accepted_within_one_step_and_only_once() {
        let secret = TotpSecret::generate();
        let now = 1_700_000_000;
        let step = step_of(now);
        let code = code_at(&secret, step).unwrap();
        assert_eq!(verify(&secret, &code, now, 0).unwrap(), Some(step));
        // Spaces as apps show them.
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(verify(&secret, &spaced, now, 0).unwrap(), Some(step));
        // The neighbouring steps (clock drift), not two away.
        assert_eq!(verify(&secret, &code, now + STEP, 0).unwrap(), Some(step));
        assert_eq!(verify(&secret, &code, now - STEP, 0).unwrap(), Some(step));
        assert_eq!(verify(&secret, &code, now + 2 * STEP, 0).unwrap(), None);
        // Replayed: the step was already used.
        assert_eq!(verify(&secret, &code, now, step).unwrap(), None);
        // An earlier code after a later one was used.
        let previous = code_at(&secret, step - 1).unwrap();
        assert_eq!(verify(&secret, &previous, now, step).unwrap(), None);
    }

    #[test]
    fn malformed_codes_are_refused_not_errors() {
        let secret = TotpSecret::generate();
        for code in ["", "12345", "1234567", "abcdef", "12 34 5x"] {
            assert_eq!(verify(&secret, code, 1_700_000_000, 0).unwrap(), None);
        }
        assert_eq!(
            verify(
                &TotpSecret::from_stored("not base32!".into()),
                "123456",
                1_700_000_000,
                0
            ),
            Err(TotpError::BadSecret)
        );
    }

    #[test]
    fn the_uri_names_issuer_account_and_secret() {
        let secret = TotpSecret::generate();
        assert_eq!(secret.as_str().len(), 32);
        assert_eq!(format!("{secret:?}"), "TotpSecret(..)");
        let uri = otpauth_uri(&secret, "hata", "ana@example.com").unwrap();
        assert!(
            uri.starts_with("otpauth://totp/hata:ana%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains(&format!("secret={}", secret.as_str())),
            "{uri}"
        );
        assert!(uri.contains("issuer=hata"), "{uri}");
        // A colon in a label does not break the URI.
        assert!(otpauth_uri(&secret, "hata: prod", "a:b@example.com").is_ok());
    }

    #[test]
    fn the_policy_binds_only_those_without_mfa_and_only_when_switched_on() {
        let off = MfaPolicy::default();
        assert!(off.admin_acts_as_admin(false));
        assert_eq!(off.protected_refusal(false), None);
        let on = MfaPolicy {
            admins: true,
            protected_environments: true,
        };
        assert!(!on.admin_acts_as_admin(false));
        assert!(on.admin_acts_as_admin(true));
        assert!(on.protected_refusal(false).is_some());
        assert_eq!(on.protected_refusal(true), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_match_however_typed() {
        let codes = generate_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::BTreeSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        let code = &codes[0];
        assert_eq!(code.len(), 11);
        assert!(is_recovery_code(code));
        assert!(!is_recovery_code("123456"));
        let typed = code.replace('-', "").to_uppercase();
        assert_eq!(hash_recovery_code(&typed), hash_recovery_code(code));
        assert_ne!(hash_recovery_code(&codes[1]), hash_recovery_code(code));
    }
}
