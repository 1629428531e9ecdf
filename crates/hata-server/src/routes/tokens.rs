//! `/tokens`: create (the secret is in the response, once), list (never secrets), delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get};
use axum::{Json, Router};
use hata_access::token::parse_expiry;
use hata_access::MintedToken;
use hata_core::validate::FieldError;
use hata_store::{NewToken, Page, TokenKind, TokenRecord, WriteOp};
use serde::Deserialize;

use super::{written, Writer};
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
    let now = time::OffsetDateTime::now_utc();
    let expires_at = match req.expires_at.as_deref().map(|t| parse_expiry(t, now)) {
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
    let minted = MintedToken::generate(kind);
    let token = NewToken {
        id: minted.id,
        name: req.name,
        kind,
        project: req.project,
        environment: req.environment,
        expires_at,
        secret_hash: minted.secret_hash,
    };
    let mut out = s.write(&w, WriteOp::CreateToken { token }).await?;
    // The cache must know the token before the caller can use it.
    s.tokens.reload(&s.store).await?;
    if let Some(v) = out.value.as_mut() {
        v["secret"] = serde_json::Value::String(minted.secret);
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
