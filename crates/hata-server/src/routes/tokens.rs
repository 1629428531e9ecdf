//! `/tokens`: create (the secret is in the response, once), list (never secrets), delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get};
use axum::{Json, Router};
use hata_core::validate::FieldError;
use hata_store::{NewToken, Page, TokenKind, TokenRecord, WriteOp};
use serde::Deserialize;

use super::{written, Writer};
use crate::auth::{hash_secret, new_secret};
use crate::error::{AppError, AppResult};
use crate::extract::{JsonBody, Paging, Path, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}", delete(remove))
}

/// `POST /tokens` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[serde(default)]
    name: String,
    /// `admin`, `server` or `client`.
    #[schema(value_type = TokenKind)]
    kind: String,
    project: Option<String>,
    environment: Option<String>,
    /// Reserved for project tokens (not supported yet): must be omitted.
    role: Option<String>,
    /// RFC 3339 date-time with an offset.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    Query(p): Query<Paging>,
) -> AppResult<Json<Page<TokenRecord>>> {
    let after = p
        .cursor
        .as_deref()
        .map(|c| {
            c.split_once('|').ok_or_else(|| {
                AppError::BadRequest(format!(
                    "cursor: {c:?} is not a cursor this list handed out"
                ))
            })
        })
        .transpose()?;
    Ok(Json(s.store.page_tokens(p.limit(), after).await?))
}

async fn create(
    State(s): State<AppState>,
    Writer(w): Writer,
    JsonBody(req): JsonBody<TokenRequest>,
) -> AppResult<Response> {
    let mut errors = Vec::new();
    let kind = TokenKind::parse(&req.kind);
    if kind.is_none() {
        let message = if req.kind == "project" {
            "project tokens with roles are not supported yet; use admin, server or client"
        } else {
            "must be one of admin, server, client"
        };
        errors.push(FieldError {
            field: "kind".into(),
            message: message.into(),
        });
    }
    if req.role.is_some() {
        errors.push(FieldError {
            field: "role".into(),
            message: "roles belong to project tokens, which are not supported yet".into(),
        });
    }
    if req.name.chars().count() > 200 {
        errors.push(FieldError {
            field: "name".into(),
            message: "must be at most 200 characters".into(),
        });
    }
    let expires_at = match req.expires_at.as_deref().map(token_expiry) {
        None => None,
        Some(Ok(at)) => Some(at),
        Some(Err(message)) => {
            errors.push(FieldError {
                field: "expires_at".into(),
                message: message.into(),
            });
            None
        }
    };
    let Some(kind) = kind.filter(|_| errors.is_empty()) else {
        return Err(AppError::Invalid(errors));
    };
    let secret = new_secret(kind);
    let id = format!("tok_{}", &hash_secret(&secret)[..16]);
    let token = NewToken {
        id,
        name: req.name,
        kind,
        project: req.project,
        environment: req.environment,
        expires_at,
        secret_hash: hash_secret(&secret),
    };
    let mut out = s.write(&w, WriteOp::CreateToken { token }).await?;
    // The cache must know the token before the caller can use it.
    s.tokens.reload(&s.store).await?;
    if let Some(v) = out.value.as_mut() {
        v["secret"] = serde_json::Value::String(secret);
    }
    Ok(written(StatusCode::CREATED, out))
}

async fn remove(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Writer(w): Writer,
) -> AppResult<StatusCode> {
    s.write(&w, WriteOp::DeleteToken { id }).await?;
    s.tokens.reload(&s.store).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A token's expiry as the store keeps it (UTC, so it compares as text): a future RFC 3339
/// date-time before the year 10000. A past one would make a token dead on arrival; one that
/// cannot be written back in four digits used to be stored as no expiry at all.
fn token_expiry(given: &str) -> Result<String, &'static str> {
    let nanos = hata_core::operand::parse_rfc3339(given)
        .ok_or("must be an RFC 3339 date-time with an offset")?;
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .filter(|t| t.year() <= 9999)
        .ok_or("must be before the year 10000 (in UTC)")?;
    if at <= time::OffsetDateTime::now_utc() {
        return Err("must be in the future");
    }
    at.format(&time::format_description::well_known::Rfc3339)
        .map_err(|_| "must be before the year 10000 (in UTC)")
}
