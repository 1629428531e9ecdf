//! What the store hands out: resources with their bookkeeping (version, timestamps), tokens
//! without secrets, an environment's state for compiling a snapshot. Change notices are in
//! `notice`.

pub use hata_access::{Role, TokenKind};
use hata_core::model::{Environment, Flag, Project, Segment};
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

/// Filters of `GET /projects/{p}/flags`.
#[derive(Debug, Clone, Default)]
pub struct FlagFilter {
    /// Case-insensitive substring of key, name or description.
    pub q: Option<String>,
    pub tag: Option<String>,
    pub owner: Option<String>,
    /// `None`: only live flags; `Some(true)`: only archived ones; `Some(false)`: only live ones.
    pub archived: Option<bool>,
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
