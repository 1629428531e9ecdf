//! What the store hands out: resources with their bookkeeping (version, timestamps), tokens
//! without secrets, an environment's state for compiling a snapshot. Change notices are in
//! `notice`.

use std::collections::BTreeSet;

pub use hata_access::{Role, TokenKind};
use hata_core::model::{Environment, Flag, FlagType, Project, Segment};
use serde::Serialize;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProjectRecord {
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(schema_with = openapi::extensible::<Project>))]
    pub project: Project,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnvironmentRecord {
    #[serde(flatten)]
    #[cfg_attr(feature = "openapi", schema(schema_with = openapi::extensible::<Environment>))]
    pub environment: Environment,
    pub version: i64,
    /// Increases on every change that affects evaluations in this environment.
    pub revision: i64,
    /// When `revision` last increased.
    pub revised_at: String,
    pub created_at: String,
    pub updated_at: String,
    /// Unique for the lifetime of the database: an environment deleted and created again
    /// under the same key gets a new id, so `(id, revision)` never repeats.
    #[serde(skip)]
    pub id: i64,
}

/// An API token as stored: everything but the secret, which is kept only as `secret_hash`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub kind: TokenKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// Project tokens only: what they may do in their project.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip)]
    pub secret_hash: String,
    /// When the secret was last rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<String>,
    /// Until when the secret before the last rotation still works.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_valid_until: Option<String>,
    #[serde(skip)]
    pub previous_secret_hash: Option<String>,
    /// When a request last authenticated with it (to the nearest ~10 s; telemetry).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

impl TokenRecord {
    /// When the token stops working under `ages` (Unix nanoseconds): its expiry or its
    /// maximum age, counted from its creation or last rotation, whichever comes first; and
    /// whether the age is what ends it. Times that do not parse fail closed (due at once).
    pub fn due(&self, ages: &hata_access::token::TokenAges) -> (Option<i128>, bool) {
        let nanos = |t: &str| hata_core::operand::parse_rfc3339(t).unwrap_or(i128::MIN);
        let issued = nanos(self.rotated_at.as_deref().unwrap_or(&self.created_at));
        let expires = self.expires_at.as_deref().map(nanos);
        (ages.due_at(issued, expires), ages.aged_out(issued, expires))
    }
}

/// A user as the API shows it: never the password hash.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserRecord {
    pub id: String,
    /// Trimmed and lower-cased; the login name.
    pub email: String,
    pub name: String,
    /// A global administrator.
    pub admin: bool,
    /// A disabled user cannot log in and its sessions are ended.
    pub disabled: bool,
    /// Whether the user has a password (users from single sign-on may not).
    pub password_set: bool,
    /// Whether the user logs in with a second factor (a confirmed TOTP authenticator).
    pub mfa: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_login_at: Option<String>,
    /// Set while repeated failed logins lock the account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<String>,
}

/// A user's authenticator as stored: what checking a code needs. Never serialised; its
/// `Debug` (the secret's) shows no secret.
#[derive(Debug, Clone)]
pub struct TotpState {
    pub secret: hata_access::totp::TotpSecret,
    /// Confirmed with a code: two-factor authentication is on. Pending otherwise.
    pub confirmed: bool,
    /// The last 30 s step a code was accepted for (0: none yet).
    pub last_step: u64,
    /// Recovery codes not used yet.
    pub recovery_codes_left: i64,
}

/// What a login checks besides the user: the password hash and the failure count. Never
/// serialised.
#[derive(Clone)]
pub struct UserCredentials {
    pub user: UserRecord,
    pub password_hash: Option<String>,
    /// Consecutive failed logins since the last success or lock.
    pub failed_logins: i64,
    /// Until when the next attempt must wait (a slow-down), if it must.
    pub retry_after: Option<String>,
}

impl std::fmt::Debug for UserCredentials {
    /// Never prints the hash.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserCredentials")
            .field("user", &self.user)
            .field("failed_logins", &self.failed_logins)
            .finish_non_exhaustive()
    }
}

/// A user's role in a project.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberRecord {
    pub project: String,
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub created_at: String,
    pub updated_at: String,
}

/// A live-looking session and its user, as the server authenticates a cookie: whether it is
/// still alive is the caller's decision (`hata_access::session::SessionPolicy`).
#[derive(Clone)]
pub struct SessionUser {
    pub session_id: String,
    /// The session was opened (or confirmed) with a second factor.
    pub mfa: bool,
    pub csrf_token: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub user: UserRecord,
    /// Project key → role, from the user's memberships.
    pub projects: std::collections::BTreeMap<String, Role>,
}

impl std::fmt::Debug for SessionUser {
    /// Never prints the CSRF token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionUser")
            .field("session_id", &self.session_id)
            .field("user", &self.user.id)
            .finish_non_exhaustive()
    }
}

/// Whether a token with this expiry has expired at `now` (epoch nanoseconds). Compared as
/// instants, not as text: RFC 3339 strings with different numbers of fraction digits do not
/// sort by time (`…:05Z` sorts after `…:05.300Z`). An expiry that does not parse counts as
/// expired, so a corrupt row fails closed. The server's token cache, the last-admin check and
/// `hata token list` all decide with this.
pub fn token_expired(expires_at: Option<&str>, now: i128) -> bool {
    match expires_at {
        None => false,
        Some(t) => hata_core::operand::parse_rfc3339(t).is_none_or(|at| at <= now),
    }
}

/// Everything needed to compile one environment's snapshot, read in one transaction.
#[derive(Debug, Clone)]
pub struct EnvironmentState {
    pub project: String,
    pub environment: EnvironmentRecord,
    pub flags: Vec<Flag>,
    pub segments: Vec<Segment>,
}

/// One page of a list: `next_cursor` is `None` on the last page.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Filters of a project's flags (`GET /projects/{p}/flags`, the web UI's list).
#[derive(Debug, Clone, Default)]
pub struct FlagFilter {
    /// Case-insensitive substring of key, name or description.
    pub q: Option<String>,
    pub tag: Option<String>,
    pub owner: Option<String>,
    /// `None`: only live flags; `Some(true)`: only archived ones; `Some(false)`: only live ones.
    pub archived: Option<bool>,
    pub flag_type: Option<FlagType>,
    /// Only flags with these keys (the web UI's stale filter: the stale-flag report's
    /// candidates).
    pub only: Option<BTreeSet<String>>,
}

/// The order of a sorted page of flags (`Store::sorted_flags`); ties go by key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FlagSort {
    #[default]
    Key,
    Name,
    /// Last changed.
    Updated,
}

/// A page of a sorted list, by position: `total` counts every item the filter matches.
#[derive(Debug, Clone)]
pub struct OffsetPage<T> {
    pub items: Vec<T>,
    pub total: usize,
}

#[cfg(feature = "openapi")]
mod openapi {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;

    /// `T`'s schema without `additionalProperties: false`, for flattening into a record: the
    /// input type rejects unknown fields, but the record adds its bookkeeping fields beside
    /// it (`allOf`), which a closed schema would reject.
    pub fn extensible<T: utoipa::PartialSchema>() -> RefOr<Schema> {
        let mut schema = T::schema();
        if let RefOr::T(Schema::Object(object)) = &mut schema {
            object.additional_properties = None;
        }
        schema
    }
}
