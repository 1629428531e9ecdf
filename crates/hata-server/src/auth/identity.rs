//! The settings and shared state of people's authentication: session lifetimes, the lockout
//! policy and the password-hashing pool. One `Identity` per server, shared as an extension.

use hata_access::lockout::LockoutPolicy;
use hata_access::session::SessionPolicy;
use hata_access::totp::MfaPolicy;

use super::passwords::PasswordWork;

/// What `--session-idle`, `--session-max-age`, `--lockout-*`, `--password-hashers` and
/// `--mfa-required-for-*` set.
#[derive(Clone, Default)]
pub struct IdentityConfig {
    pub sessions: SessionPolicy,
    pub lockout: LockoutPolicy,
    /// Password hashes at once; 0: half the cores.
    pub hashing_concurrency: usize,
    pub mfa: MfaPolicy,
    /// Single sign-on, when configured (`--oidc-*`).
    pub sso: Option<std::sync::Arc<crate::sso::Sso>>,
}

impl std::fmt::Debug for IdentityConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityConfig")
            .field("sessions", &self.sessions)
            .field("lockout", &self.lockout)
            .field("hashing_concurrency", &self.hashing_concurrency)
            .field("mfa", &self.mfa)
            .field("sso", &self.sso.as_ref().map(|s| s.issuer().to_string()))
            .finish()
    }
}

pub struct Identity {
    pub sessions: SessionPolicy,
    pub lockout: LockoutPolicy,
    pub passwords: PasswordWork,
    pub mfa: MfaPolicy,
    pub sso: Option<std::sync::Arc<crate::sso::Sso>>,
}

impl Identity {
    pub fn new(config: &IdentityConfig) -> Identity {
        Identity {
            sessions: config.sessions,
            lockout: config.lockout,
            passwords: PasswordWork::new(config.hashing_concurrency),
            mfa: config.mfa,
            sso: config.sso.clone(),
        }
    }
}
