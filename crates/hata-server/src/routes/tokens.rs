//! `/tokens`: create (the secret is in the response, once), list (never secrets), delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use hata_access::token::{binding_problems, parse_expiry, Standing, TokenAges};
use hata_access::{MintedToken, Need, Principal, Role};
use hata_core::validate::FieldError;
use hata_store::{NewToken, Page, TokenKind, TokenRecord, WriteMeta, WriteOp, WriteOutcome};
use serde::{Deserialize, Serialize};

use super::{written, Writer};
use crate::auth::access::require;
use crate::auth::Caller;
use crate::error::{AppError, AppResult};
use crate::extract::{page_limit, JsonBody, OptionalJsonBody, Path, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/tokens", get(list).post(create))
        .route("/tokens/{id}", delete(remove))
        .route("/tokens/{id}/rotate", post(rotate))
}

/// `POST /tokens` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[serde(default)]
    pub name: String,
    /// `admin`, `project`, `server` or `client`.
    #[schema(value_type = TokenKind)]
    pub kind: String,
    pub project: Option<String>,
    pub environment: Option<String>,
    /// Project tokens only: `viewer`, `editor` or `owner`.
    #[schema(value_type = Option<Role>)]
    pub role: Option<String>,
    /// RFC 3339 date-time with an offset.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
}

/// `GET /tokens` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// `true`: only tokens that stop working within 14 days (their expiry, or the maximum
    /// token age) or already did: what to rotate now. A page may then hold fewer than
    /// `limit` tokens.
    due: Option<bool>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A token as lists show it: the record, when it stops working and where it stands.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenView {
    #[serde(flatten)]
    pub token: TokenRecord,
    /// When the token stops working: its expiry or its maximum age (`--token-max-age-days`,
    /// counted from creation or the last rotation), whichever comes first.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub due_at: Option<String>,
    /// `good`, `due_soon` (stops within 14 days: rotate it) or `overdue` (refused).
    #[schema(value_type = String, pattern = "^(good|due_soon|overdue)$")]
    pub standing: &'static str,
}

impl TokenView {
    /// `token` as it stands at `now` (Unix nanoseconds) under `ages`.
    pub fn of(token: TokenRecord, ages: TokenAges, now: i128) -> TokenView {
        let (due, _) = token.due(&ages);
        TokenView {
            due_at: due.and_then(hata_store::rfc3339_nanos),
            standing: ages.standing(due, now).as_str(),
            token,
        }
    }
}

async fn list(
    State(s): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Query(p): Query<TokenQuery>,
) -> AppResult<Json<Page<TokenView>>> {
    Ok(Json(
        list_tokens(
            &s,
            &caller,
            p.due == Some(true),
            page_limit(p.limit)?,
            p.cursor.as_deref(),
        )
        .await?,
    ))
}

/// A page of the tokens `caller` sees (this route's and the web UI's): admins every token;
/// owners the tokens of the projects they own; others none. `due`: only those to rotate now.
pub async fn list_tokens(
    s: &AppState,
    caller: &Principal,
    due: bool,
    limit: usize,
    cursor: Option<&str>,
) -> AppResult<Page<TokenView>> {
    let owned: Option<Vec<String>> = (!caller.admin).then(|| {
        caller
            .projects
            .iter()
            .filter(|(_, role)| **role == Role::Owner)
            .map(|(project, _)| project.clone())
            .collect()
    });
    let after = cursor
        .map(|c| {
            c.split_once('|').ok_or_else(|| {
                AppError::BadRequest(format!(
                    "cursor: {c:?} is not a cursor this list handed out"
                ))
            })
        })
        .transpose()?;
    let page = s
        .store
        .page_tokens_among(owned.as_deref(), limit, after)
        .await?;
    let (ages, now) = (
        s.tokens.ages(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos(),
    );
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(|t| TokenView::of(t, ages, now))
            .filter(|v| !due || v.standing != Standing::Good.as_str())
            .collect(),
        next_cursor: page.next_cursor,
    })
}

async fn create(
    State(s): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Writer(w): Writer,
    JsonBody(req): JsonBody<TokenRequest>,
) -> AppResult<Response> {
    let (out, _) = create_token(&s, &caller, &w, req).await?;
    Ok(written(StatusCode::CREATED, out))
}

/// Creates a token (this route's and the web UI's rules): only admins create admin tokens;
/// owners create tokens of their own project (a project token up to their own role). The
/// outcome's value carries the `secret`, also returned alone: the only time it exists.
pub async fn create_token(
    s: &AppState,
    caller: &Principal,
    w: &WriteMeta,
    req: TokenRequest,
) -> AppResult<(WriteOutcome, String)> {
    let mut errors = Vec::new();
    let kind = TokenKind::parse(&req.kind);
    if kind.is_none() {
        errors.push(FieldError {
            field: "kind".into(),
            message: "must be one of admin, project, server, client".into(),
        });
    }
    let role = match req.role.as_deref().map(|r| (r, Role::parse(r))) {
        None => None,
        Some((_, Some(role))) => Some(role),
        Some((r, None)) => {
            errors.push(FieldError {
                field: "role".into(),
                message: format!("{r:?} is not a role: viewer, editor or owner"),
            });
            None
        }
    };
    match (kind, req.project.as_deref()) {
        (Some(TokenKind::Admin), _) => require(caller, Need::Admin)?,
        (Some(_), Some(project)) => {
            require(caller, Need::Own(project))?;
            if let (Some(role), Some(held)) = (role, caller.role_in(project)) {
                if role > held {
                    return Err(AppError::Forbidden(format!(
                        "you are {held} of project {project:?} and cannot hand out {role}"
                    )));
                }
            }
        }
        // Invalid either way; the binding check below names what is missing.
        _ => {}
    }
    if let Some(kind) = kind {
        for (field, message) in binding_problems(
            kind,
            req.project.as_deref(),
            req.environment.as_deref(),
            role,
        ) {
            errors.push(FieldError {
                field: field.into(),
                message: message.into(),
            });
        }
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
        role,
        expires_at,
        secret_hash: minted.secret_hash,
    };
    let mut out = s.write(w, WriteOp::CreateToken { token }).await?;
    // The cache must know the token before the caller can use it.
    s.tokens.reload(&s.store).await?;
    if let Some(v) = out.value.as_mut() {
        v["secret"] = serde_json::Value::String(minted.secret.clone());
    }
    Ok((out, minted.secret))
}

/// The token `id`, if the caller may manage (delete, rotate) it: admins any token, owners
/// the tokens of their projects.
pub async fn managed_token(s: &AppState, caller: &Principal, id: &str) -> AppResult<TokenRecord> {
    let token = s.store.get_token(id).await?;
    if !caller.admin {
        match token.project.as_deref() {
            Some(project) => require(caller, Need::Own(project))?,
            None => require(caller, Need::Admin)?,
        }
    }
    Ok(token)
}

async fn remove(
    State(s): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
    Writer(w): Writer,
) -> AppResult<StatusCode> {
    revoke_token(&s, &caller, &w, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes (revokes) a token the caller may manage; it is refused from the next request on.
pub async fn revoke_token(
    s: &AppState,
    caller: &Principal,
    w: &WriteMeta,
    id: String,
) -> AppResult<()> {
    managed_token(s, caller, &id).await?;
    s.write(w, WriteOp::DeleteToken { id }).await?;
    s.tokens.reload(&s.store).await?;
    Ok(())
}

/// `POST /tokens/{id}/rotate` body.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// Until when the current secret keeps working: an RFC 3339 date-time in the future
    /// (default: 24 hours from now).
    #[schema(format = DateTime)]
    old_valid_until: Option<String>,
}

/// How long the old secret of a rotated token works by default.
const DEFAULT_GRACE: time::Duration = time::Duration::hours(24);

/// A new secret for the token (shown once, in the 201); the old one works until
/// `old_valid_until`.
async fn rotate(
    State(s): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(id): Path<String>,
    Writer(w): Writer,
    OptionalJsonBody(req): OptionalJsonBody<RotateRequest>,
) -> AppResult<Response> {
    let (out, _) = rotate_token(&s, &caller, &w, id, req.old_valid_until).await?;
    Ok(written(StatusCode::CREATED, out))
}

/// Rotates a token the caller may manage (this route's and the web UI's rules): a new secret,
/// in the outcome's value and returned alone (the only time it exists); the old one works
/// until `old_valid_until` (RFC 3339, in the future; default 24 hours from now), and never
/// past the token's own expiry or maximum age.
pub async fn rotate_token(
    s: &AppState,
    caller: &Principal,
    w: &WriteMeta,
    id: String,
    old_valid_until: Option<String>,
) -> AppResult<(WriteOutcome, String)> {
    let token = managed_token(s, caller, &id).await?;
    let now = time::OffsetDateTime::now_utc();
    let given = old_valid_until.unwrap_or_else(|| format_utc(now + DEFAULT_GRACE));
    let asked = parse_expiry(&given, now).map_err(|message| {
        AppError::Invalid(vec![FieldError {
            field: "old_valid_until".into(),
            message: message.into(),
        }])
    })?;
    // The old secret keeps working no longer than it would have without the rotation (its
    // expiry or maximum age): rotating a token that has aged out does not revive it.
    let previous_valid_until = match token.due(&s.tokens.ages()).0 {
        Some(due) if hata_core::operand::parse_rfc3339(&asked).is_none_or(|a| due < a) => {
            let due = time::OffsetDateTime::from_unix_timestamp_nanos(due).unwrap_or(now);
            format_utc(due.max(now))
        }
        _ => asked,
    };
    let minted = MintedToken::generate(token.kind);
    let mut out = s
        .write(
            w,
            WriteOp::RotateToken {
                id,
                secret_hash: minted.secret_hash,
                previous_valid_until,
            },
        )
        .await?;
    s.tokens.reload(&s.store).await?;
    if let Some(v) = out.value.as_mut() {
        v["secret"] = serde_json::Value::String(minted.secret.clone());
    }
    Ok((out, minted.secret))
}

fn format_utc(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
