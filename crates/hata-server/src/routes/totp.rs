//! Two-factor authentication (`/auth/totp`): a user enrols an authenticator app, confirms it
//! with a code (and gets ten recovery codes, once), and turns it off with password and code;
//! an administrator turns it off for a user who lost the authenticator. The login checks the
//! codes through `second_factor`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, post};
use axum::{Extension, Json, Router};
use hata_access::totp::{self, TotpSecret};
use hata_core::validate::FieldError;
use hata_store::{SecondFactor, StoreError, WriteOp};
use serde::{Deserialize, Serialize};

use super::Writer;
use crate::auth::identity::Identity;
use crate::auth::session::SessionCaller;
use crate::auth::Caller;
use crate::error::{AppError, AppResult};
use crate::extract::{JsonBody, Path};
use crate::AppState;

/// The label authenticator apps show above the account.
const ISSUER: &str = "hata";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/totp", post(enrol).delete(disable_own))
        .route("/auth/totp/confirm", post(confirm))
        .route("/users/{id}/totp", delete(disable_for_user))
}

/// `POST /auth/totp` answer: what the authenticator app needs. Shown once; enrolling again
/// replaces it while it is not confirmed.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TotpEnrolment {
    /// The secret, base32 (for typing into the app by hand).
    secret: String,
    /// `otpauth://totp/…`: the app reads it from a QR code of this text.
    otpauth_uri: String,
    /// 30-second steps, 6 digits, HMAC-SHA1 (what every authenticator app does by default).
    period: u64,
    digits: usize,
    algorithm: &'static str,
}

/// `POST /auth/totp/confirm` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirm {
    /// The authenticator's current code.
    code: String,
}

/// `POST /auth/totp/confirm` answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecoveryCodes {
    /// Ten one-time codes that stand in for the authenticator at login. Shown only now.
    recovery_codes: Vec<String>,
}

/// `DELETE /auth/totp` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpRemoval {
    password: String,
    /// The authenticator's current code or an unused recovery code.
    code: String,
}

/// The second factor `code` proves for `user_id`, if any: an authenticator code for a step
/// later than the last one used, or an unused recovery code. The login's write consumes it,
/// so a concurrent second use fails there.
pub async fn second_factor(
    s: &AppState,
    user_id: &str,
    code: &str,
) -> AppResult<Option<SecondFactor>> {
    if totp::is_recovery_code(code) {
        let hash = totp::hash_recovery_code(code);
        let unused = s.store.recovery_code_unused(user_id, &hash).await?;
        return Ok(unused.then_some(SecondFactor::RecoveryCode { hash }));
    }
    let Some(state) = s.store.user_totp(user_id).await?.filter(|t| t.confirmed) else {
        return Ok(None);
    };
    let step = totp::verify(&state.secret, code, unix_now(), state.last_step).map_err(corrupt)?;
    Ok(step.map(|step| SecondFactor::Totp { step }))
}

/// A stored secret `hata_access::totp` cannot use: a corrupt row, never the caller's fault.
fn corrupt(e: totp::TotpError) -> AppError {
    AppError::Store(StoreError::Internal(e.to_string()))
}

fn unix_now() -> u64 {
    time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64
}

async fn enrol(
    State(s): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    session: Option<Extension<SessionCaller>>,
    Writer(w): Writer,
) -> AppResult<Response> {
    let secret = TotpSecret::generate();
    let account = session
        .map(|Extension(s)| s.email)
        .unwrap_or_else(|| caller.name.clone());
    let otpauth_uri = totp::otpauth_uri(&secret, ISSUER, &account).map_err(corrupt)?;
    s.write(
        &w,
        WriteOp::EnrolTotp {
            user_id: caller.id.clone(),
            secret: secret.clone(),
        },
    )
    .await?;
    let body = TotpEnrolment {
        secret: secret.as_str().to_string(),
        otpauth_uri,
        period: totp::STEP,
        digits: totp::DIGITS,
        algorithm: "SHA1",
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

fn wrong_code(field: &str) -> AppError {
    AppError::Invalid(vec![FieldError::new(
        field,
        "is not the authenticator's current code (or an unused recovery code)",
    )])
}

async fn confirm(
    State(s): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    session: Option<Extension<SessionCaller>>,
    Writer(w): Writer,
    JsonBody(req): JsonBody<TotpConfirm>,
) -> AppResult<Json<RecoveryCodes>> {
    let pending = match s.store.user_totp(&caller.id).await? {
        Some(t) if !t.confirmed => t,
        Some(_) => {
            return Err(AppError::Store(StoreError::Conflict {
                message: "two-factor authentication is already on".into(),
                dependants: Vec::new(),
            }))
        }
        None => {
            return Err(AppError::Store(StoreError::Conflict {
                message: "no authenticator is being enrolled: POST /api/v1/auth/totp first".into(),
                dependants: Vec::new(),
            }))
        }
    };
    let step = totp::verify(&pending.secret, &req.code, unix_now(), pending.last_step)
        .map_err(corrupt)?
        .ok_or_else(|| wrong_code("code"))?;
    let codes = totp::generate_recovery_codes();
    let op = WriteOp::ConfirmTotp {
        user_id: caller.id.clone(),
        step,
        recovery_code_hashes: codes.iter().map(|c| totp::hash_recovery_code(c)).collect(),
        keep_session: session.map(|Extension(s)| s.id),
    };
    match s.write(&w, op).await {
        Ok(_) => {}
        // The code's step was used meanwhile (a replay racing this one).
        Err(AppError::Store(StoreError::NotFound(_))) => return Err(wrong_code("code")),
        Err(e) => return Err(e),
    }
    tracing::info!(user = %caller.id, "two-factor authentication turned on");
    Ok(Json(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// The user turns it off: the password and a current code (or a recovery code) prove it is
/// them and not someone at an unlocked screen. A wrong password counts as a failed login.
async fn disable_own(
    State(s): State<AppState>,
    Extension(identity): Extension<Arc<Identity>>,
    Extension(Caller(caller)): Extension<Caller>,
    Writer(w): Writer,
    JsonBody(req): JsonBody<TotpRemoval>,
) -> AppResult<StatusCode> {
    if !s.store.get_user(&caller.id).await?.mfa {
        return Err(AppError::NotFound(
            "two-factor authentication is not on".into(),
        ));
    }
    super::users::check_own_password(&s, &identity, &w, &caller.id, req.password, "password")
        .await?;
    if second_factor(&s, &caller.id, &req.code).await?.is_none() {
        return Err(wrong_code("code"));
    }
    s.write(
        &w,
        WriteOp::DisableTotp {
            user_id: caller.id.clone(),
        },
    )
    .await?;
    tracing::info!(user = %caller.id, "two-factor authentication turned off");
    Ok(StatusCode::NO_CONTENT)
}

/// An administrator turns it off for a user who lost the authenticator and the recovery
/// codes; the user enrols again after logging in with the password.
async fn disable_for_user(
    State(s): State<AppState>,
    Path(id): Path<String>,
    Writer(w): Writer,
) -> AppResult<StatusCode> {
    s.write(
        &w,
        WriteOp::DisableTotp {
            user_id: id.clone(),
        },
    )
    .await?;
    tracing::info!(user = %id, by = %w.actor.qualified_id(), "two-factor authentication reset");
    Ok(StatusCode::NO_CONTENT)
}
