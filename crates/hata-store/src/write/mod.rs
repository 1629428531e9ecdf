//! The one write path. Every change to projects, environments, flags, segments and tokens is a
//! `WriteOp` applied by `Store::write`, which refuses U+0000 in anything the op carries
//! (`WriteOp::check_text`: PostgreSQL cannot store it) and then, in a single transaction:
//! 1. loads what the change touches and checks the caller's expected version (`If-Match`),
//! 2. validates the result against the rest of the project (`hata_core::validate`),
//! 3. applies it,
//! 4. bumps the revision of every environment whose evaluations it can affect,
//! 5. records the change (old and new value, actor, request id) in `changes`,
//!
//! and after the commit publishes `ChangeNotice`s. The audit log, webhooks and approvals hang
//! off this one place; nothing else in the store writes.
//!
//! `engine` is that transaction: everything a write does whatever it changes. The SQL of each
//! resource is in its own module (`projects`, `environments`, `flags`, `segments`, `tokens`);
//! flags and segments, each stored as one versioned document, share the writer in `document`.
//! `state` loads what validation needs.

mod document;
mod engine;
mod environments;
mod flags;
mod projects;
mod protected;
mod segments;
mod sessions;
mod sso;
mod state;
mod tokens;
mod totp;
mod users;

use std::sync::Arc;

use hata_core::model::{Environment, Flag, FlagConfig, Project, Segment};
use hata_core::validate::{FieldError, ValidationErrors};
use serde_json::Value;

use crate::change::Actor;
use crate::error::{StoreError, StoreResult};
use crate::notice::RuleSetWrite;
use crate::records::{Role, TokenKind};
use hata_access::lockout::LockoutPolicy;
use hata_access::session::SessionPolicy;

/// Who is writing and under which request id, for the change record.
#[derive(Debug, Clone)]
pub struct WriteMeta {
    pub actor: Actor,
    /// The request's `X-Request-Id` (empty when there is no request, e.g. at start-up).
    pub request_id: String,
    /// `Some(why)` when this writer may not change a protected environment (a session without
    /// the second factor the server's policy asks for): such a write is refused with
    /// `StoreError::Forbidden` naming the environment and `why`. What counts as changing one
    /// is in `write/protected.rs`.
    pub protected_refusal: Option<String>,
    /// The audit entry's `role`: what the actor acts as (`admin`, the role in the project
    /// written to, a token's kind); `None` when nobody is authenticated.
    pub role: Option<String>,
    /// The audit entry's `ip`: the client's address (through trusted proxies).
    pub ip: Option<String>,
    /// The audit entry's `user_agent`.
    pub user_agent: Option<String>,
}

impl WriteMeta {
    /// A writer that may change everything its role allows.
    pub fn new(actor: Actor, request_id: impl Into<String>) -> WriteMeta {
        WriteMeta {
            actor,
            request_id: request_id.into(),
            protected_refusal: None,
            role: None,
            ip: None,
            user_agent: None,
        }
    }
}

/// A second factor a login presents, consumed in the login's transaction so that it works
/// once however many logins race.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecondFactor {
    /// The 30 s step of an accepted authenticator code (`hata_access::totp::verify`).
    Totp { step: u64 },
    /// The hash of a recovery code (`hata_access::totp::hash_recovery_code`).
    RecoveryCode { hash: String },
}

/// A token to create; the caller generated the secret and passes only its hash.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: String,
    pub name: String,
    pub kind: TokenKind,
    pub project: Option<String>,
    pub environment: Option<String>,
    /// Project tokens only.
    pub role: Option<Role>,
    pub expires_at: Option<String>,
    pub secret_hash: String,
}

/// A user to create. The caller checked the password against the policy and hashed it.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: String,
    /// Normalised by the store (trimmed, lower-cased) and checked.
    pub email: String,
    pub name: String,
    /// The argon2id PHC string; `None` for a user who logs in only by single sign-on.
    pub password_hash: Option<String>,
    pub admin: bool,
}

/// What an update of a user changes; `None` keeps the current value.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub name: Option<String>,
    pub admin: Option<bool>,
    pub disabled: Option<bool>,
    /// A new password's PHC string. Ends the user's sessions but `keep_session`, and clears
    /// the failure count and any lock.
    pub password_hash: Option<String>,
    /// The session that changed its own password and stays logged in.
    pub keep_session: Option<String>,
}

/// A session a login creates; the cookie's secret stays with the caller.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub secret_hash: String,
    pub csrf_token: String,
    /// Opened with a second factor (not counting a `second_factor` the login consumes, which
    /// sets it too): a provider's word for single sign-on.
    pub mfa: bool,
}

/// A person a single sign-on provider vouches for: the provider's issuer and subject, and what
/// its ID token says of them.
#[derive(Debug, Clone)]
pub struct SsoIdentity {
    pub issuer: String,
    pub subject: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    /// The roles the provider's claims map to, when role mappings are configured.
    pub roles: Option<SsoRoles>,
}

/// What a single sign-on login sets of a user's roles: only what the role mappings govern,
/// so roles given by hand elsewhere stay.
#[derive(Debug, Clone, Default)]
pub struct SsoRoles {
    /// `Some` when a mapping grants admin: the user is admin exactly when a rule matched.
    pub admin: Option<bool>,
    /// Each project a mapping names: the role the claims give there, or `None` (no
    /// membership). Projects that do not exist are skipped.
    pub projects: std::collections::BTreeMap<String, Option<Role>>,
}

/// Which versions of a resource a write may replace: its `If-Match`. The check runs inside the
/// write's transaction, so a concurrent writer cannot slip in between.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Expected {
    /// No `If-Match`, or `If-Match: *`: whatever is current.
    #[default]
    Any,
    /// Only one of these versions. Empty matches nothing: an `If-Match` of weak tags only,
    /// which RFC 9110's strong comparison never matches.
    OneOf(Vec<i64>),
}

impl Expected {
    /// Exactly `version`.
    pub fn version(version: i64) -> Expected {
        Expected::OneOf(vec![version])
    }

    pub fn admits(&self, current: i64) -> bool {
        match self {
            Expected::Any => true,
            Expected::OneOf(versions) => versions.contains(&current),
        }
    }
}

impl std::fmt::Display for Expected {
    /// As `If-Match` would name it: `*`, `"3"`, `"3", "4"`, or `(no strong tag)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Any => f.write_str("*"),
            Expected::OneOf(versions) if versions.is_empty() => f.write_str("(no strong tag)"),
            Expected::OneOf(versions) => {
                let tags: Vec<String> = versions.iter().map(|v| format!("\"{v}\"")).collect();
                f.write_str(&tags.join(", "))
            }
        }
    }
}

/// Every change the store can make. `expected_version` is the `If-Match` of the write.
#[derive(Debug, Clone)]
pub enum WriteOp {
    CreateProject {
        project: Project,
        environments: Option<Vec<Environment>>,
    },
    UpdateProject {
        key: String,
        expected_version: Expected,
        project: Project,
    },
    DeleteProject {
        key: String,
        expected_version: Expected,
    },
    CreateEnvironment {
        project: String,
        environment: Environment,
    },
    UpdateEnvironment {
        project: String,
        key: String,
        expected_version: Expected,
        environment: Environment,
    },
    DeleteEnvironment {
        project: String,
        key: String,
        expected_version: Expected,
    },
    CreateFlag {
        project: String,
        flag: Flag,
    },
    UpdateFlag {
        project: String,
        key: String,
        expected_version: Expected,
        flag: Flag,
    },
    /// An RFC 7396 JSON Merge Patch of a flag's flag-level fields (not its key, type or
    /// configs), applied to the current flag inside the transaction.
    PatchFlag {
        project: String,
        key: String,
        expected_version: Expected,
        patch: Value,
    },
    DeleteFlag {
        project: String,
        key: String,
        expected_version: Expected,
    },
    PutFlagConfig {
        project: String,
        flag: String,
        environment: String,
        expected_version: Expected,
        config: FlagConfig,
    },
    /// An RFC 7396 JSON Merge Patch applied to the current config inside the transaction.
    PatchFlagConfig {
        project: String,
        flag: String,
        environment: String,
        expected_version: Expected,
        patch: Value,
    },
    CreateSegment {
        project: String,
        segment: Segment,
    },
    UpdateSegment {
        project: String,
        key: String,
        expected_version: Expected,
        segment: Segment,
    },
    DeleteSegment {
        project: String,
        key: String,
        expected_version: Expected,
    },
    CreateToken {
        token: NewToken,
    },
    DeleteToken {
        id: String,
    },
    /// The single sign-on configuration servers start with (`None`: none), recorded when it
    /// differs from the last one recorded. Never holds the client secret.
    ConfigureSso {
        config: Option<Value>,
    },
    /// A security event, no change: token `id` was presented after it ended, and refused
    /// (`reason` says how it ended).
    TokenRefused {
        id: String,
        reason: String,
    },
    /// A new secret for a token; the current one keeps working until `previous_valid_until`.
    RotateToken {
        id: String,
        secret_hash: String,
        previous_valid_until: String,
    },
    CreateUser {
        user: NewUser,
    },
    UpdateUser {
        id: String,
        expected_version: Expected,
        update: UserUpdate,
    },
    DeleteUser {
        id: String,
        expected_version: Expected,
    },
    /// Gives `user_id` `role` in `project` (creating or changing the membership).
    PutMember {
        project: String,
        user_id: String,
        role: Role,
    },
    DeleteMember {
        project: String,
        user_id: String,
    },
    /// A correct login: a new session, the failure count reset, dead sessions removed.
    Login {
        user_id: String,
        session: NewSession,
        policy: SessionPolicy,
        /// Required (by the caller) when the user has two-factor authentication.
        second_factor: Option<SecondFactor>,
    },
    /// A wrong password for `user_id`: counted, perhaps slowing down or locking the account.
    LoginFailed {
        user_id: String,
        policy: LockoutPolicy,
    },
    Logout {
        session_id: String,
    },
    /// Starts (or restarts) enrolling an authenticator: stores `secret` as pending. A 409
    /// while one is confirmed.
    EnrolTotp {
        user_id: String,
        secret: hata_access::totp::TotpSecret,
    },
    /// Confirms the pending authenticator with an accepted code's `step`: turns two-factor
    /// authentication on, replaces the recovery codes with `recovery_code_hashes`, and ends
    /// the user's sessions but `keep_session` (a session stolen before cannot outlive it).
    ConfirmTotp {
        user_id: String,
        step: u64,
        recovery_code_hashes: Vec<String>,
        keep_session: Option<String>,
    },
    /// The user a single sign-on login is for: the one linked to the identity; else the user
    /// with its email, linked now if the provider verified the email (409 otherwise); else a
    /// new user without a password, created and linked. A disabled user is `NotFound`.
    SsoUser {
        identity: SsoIdentity,
    },
    /// Turns two-factor authentication off (the user, after checking password and code, or an
    /// administrator for a user who lost the authenticator); removes the recovery codes. Off
    /// already: nothing to do, nothing recorded.
    DisableTotp {
        user_id: String,
    },
}

impl WriteOp {
    /// Refuses U+0000 in anything the op carries, before a statement binds it. PostgreSQL
    /// cannot hold it in text (it fails the statement); SQLite can, and a store that took it
    /// could not be moved to PostgreSQL. A key or id that names an existing resource cannot
    /// hold it (keys are validated), so there it is `NotFound`; in content it is `Invalid`,
    /// naming the field relative to the op's object, as `hata_core::validate` does.
    fn check_text(&self, meta: &WriteMeta) -> StoreResult<()> {
        use hata_core::validate::check_text;

        let names: &[(&str, &str)] = match self {
            WriteOp::CreateProject { .. }
            | WriteOp::CreateToken { .. }
            | WriteOp::CreateUser { .. }
            | WriteOp::Login { .. } => &[],
            WriteOp::UpdateUser { id, .. }
            | WriteOp::DeleteUser { id, .. }
            | WriteOp::LoginFailed { user_id: id, .. }
            | WriteOp::EnrolTotp { user_id: id, .. }
            | WriteOp::ConfirmTotp { user_id: id, .. }
            | WriteOp::DisableTotp { user_id: id } => &[("user", id)],
            WriteOp::SsoUser { .. } | WriteOp::ConfigureSso { .. } => &[],
            WriteOp::PutMember {
                project, user_id, ..
            }
            | WriteOp::DeleteMember { project, user_id } => {
                &[("project", project), ("user", user_id)]
            }
            WriteOp::Logout { session_id } => &[("session", session_id)],
            WriteOp::UpdateProject { key, .. } | WriteOp::DeleteProject { key, .. } => {
                &[("project", key)]
            }
            WriteOp::CreateEnvironment { project, .. }
            | WriteOp::CreateFlag { project, .. }
            | WriteOp::CreateSegment { project, .. } => &[("project", project)],
            WriteOp::UpdateEnvironment { project, key, .. }
            | WriteOp::DeleteEnvironment { project, key, .. } => {
                &[("project", project), ("environment", key)]
            }
            WriteOp::UpdateFlag { project, key, .. }
            | WriteOp::PatchFlag { project, key, .. }
            | WriteOp::DeleteFlag { project, key, .. } => &[("project", project), ("flag", key)],
            WriteOp::PutFlagConfig {
                project,
                flag,
                environment,
                ..
            }
            | WriteOp::PatchFlagConfig {
                project,
                flag,
                environment,
                ..
            } => &[
                ("project", project),
                ("flag", flag),
                ("environment", environment),
            ],
            WriteOp::UpdateSegment { project, key, .. }
            | WriteOp::DeleteSegment { project, key, .. } => {
                &[("project", project), ("segment", key)]
            }
            WriteOp::DeleteToken { id }
            | WriteOp::RotateToken { id, .. }
            | WriteOp::TokenRefused { id, .. } => &[("token", id)],
        };
        if let Some((what, name)) = names.iter().find(|(_, name)| name.contains('\0')) {
            return Err(StoreError::NotFound(format!("{what} {name:?}")));
        }

        let mut errors = Vec::new();
        let mut check = |prefix: &str, result: Result<(), ValidationErrors>| {
            if let Err(ValidationErrors(found)) = result {
                errors.extend(found.into_iter().map(|e| FieldError {
                    field: match (prefix, e.field.as_str()) {
                        ("", field) => field.to_string(),
                        (prefix, "") => prefix.to_string(),
                        (prefix, field) if field.starts_with('[') => format!("{prefix}{field}"),
                        (prefix, field) => format!("{prefix}.{field}"),
                    },
                    message: e.message,
                }));
            }
        };
        match self {
            WriteOp::CreateProject {
                project,
                environments,
            } => {
                check("", check_text(project));
                for (i, environment) in environments.iter().flatten().enumerate() {
                    check(&format!("environments[{i}]"), check_text(environment));
                }
            }
            WriteOp::UpdateProject { project, .. } => check("", check_text(project)),
            WriteOp::CreateEnvironment { environment, .. }
            | WriteOp::UpdateEnvironment { environment, .. } => check("", check_text(environment)),
            WriteOp::CreateFlag { flag, .. } | WriteOp::UpdateFlag { flag, .. } => {
                check("", check_text(flag))
            }
            WriteOp::PatchFlag { patch, .. } | WriteOp::PatchFlagConfig { patch, .. } => {
                check("", check_text(patch))
            }
            WriteOp::PutFlagConfig { config, .. } => check("", check_text(config)),
            WriteOp::CreateSegment { segment, .. } | WriteOp::UpdateSegment { segment, .. } => {
                check("", check_text(segment))
            }
            WriteOp::CreateToken { token } => {
                for (field, value) in [
                    ("id", Some(&token.id)),
                    ("name", Some(&token.name)),
                    ("project", token.project.as_ref()),
                    ("environment", token.environment.as_ref()),
                    ("expires_at", token.expires_at.as_ref()),
                    ("secret_hash", Some(&token.secret_hash)),
                ] {
                    check(field, check_text(&value));
                }
            }
            WriteOp::CreateUser { user } => {
                for (field, value) in [
                    ("email", Some(&user.email)),
                    ("name", Some(&user.name)),
                    ("password_hash", user.password_hash.as_ref()),
                ] {
                    check(field, check_text(&value));
                }
            }
            WriteOp::UpdateUser { update, .. } => {
                check("name", check_text(&update.name));
                check("password_hash", check_text(&update.password_hash));
            }
            // What a provider said: its issuer, the subject and the ID token's claims.
            WriteOp::SsoUser { identity } => {
                for (field, value) in [
                    ("issuer", &identity.issuer),
                    ("subject", &identity.subject),
                    ("email", &identity.email),
                    ("name", &identity.name),
                ] {
                    check(field, check_text(&value));
                }
            }
            // Made by the server (a hex hash, a formatted time, ids it minted): nothing a
            // client wrote.
            WriteOp::RotateToken { .. }
            | WriteOp::DeleteUser { .. }
            | WriteOp::PutMember { .. }
            | WriteOp::DeleteMember { .. }
            | WriteOp::Login { .. }
            | WriteOp::LoginFailed { .. }
            | WriteOp::Logout { .. }
            | WriteOp::EnrolTotp { .. }
            | WriteOp::ConfirmTotp { .. }
            | WriteOp::DisableTotp { .. }
            | WriteOp::DeleteProject { .. }
            | WriteOp::DeleteEnvironment { .. }
            | WriteOp::DeleteFlag { .. }
            | WriteOp::DeleteSegment { .. }
            | WriteOp::DeleteToken { .. }
            | WriteOp::TokenRefused { .. }
            | WriteOp::ConfigureSso { .. } => {}
        }
        // Recorded with the change.
        check("actor", check_text(&meta.actor.qualified_id()));
        check("request_id", check_text(&meta.request_id));
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(errors).into())
        }
    }
}

/// The result of a write: the resource as now stored (`None` after a delete), its version,
/// and what it did to rule sets.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    pub value: Option<Value>,
    pub version: i64,
    /// Also published in this process as `ChangeNotice::RuleSets` (when it bumped any
    /// revision), so that the writer and the notice's subscribers apply the same change.
    pub rule_sets: Arc<RuleSetWrite>,
}
