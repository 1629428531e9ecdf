//! `/auth`: log in (a session cookie), log out, and who am I.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use hata_access::session::MintedSession;
use hata_access::user::normalize_email;
use hata_access::{Principal, PrincipalKind, Role};
use hata_core::validate::FieldError;
use hata_store::{Actor, ActorKind, NewSession, UserRecord, WriteMeta, WriteOp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use super::Writer;
use crate::auth::identity::Identity;
use crate::auth::session::{self, SessionCaller, Source};
use crate::auth::Caller;
use crate::error::{AppError, AppResult};
use crate::extract::JsonBody;
use crate::limits::{self, Limits, Scope};
use crate::AppState;
use hata_access::rate::Decision;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
}

/// `POST /auth/login` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// An address: one `@`, a non-empty local part, a domain with a dot inside it, no space
    /// or control character (checked trimmed and lower-cased; at most 254 bytes).
    #[schema(
        pattern = "^[!-?A-~]+@[!-\\-/-?A-~][!-?A-~]*\\.[!-?A-~]*[!-\\-/-?A-~]$",
        max_length = 254
    )]
    email: String,
    password: String,
    /// The current code of an enrolled authenticator, or a recovery code.
    totp: Option<String>,
}

/// `POST /auth/login` answer (with the session in `Set-Cookie`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    user: UserRecord,
    /// Send it as `X-CSRF-Token` with every cookie-authenticated write.
    csrf_token: String,
}

/// `GET /auth/me`: the caller.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    /// `user`, `token` or `jwt`.
    kind: &'static str,
    id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    admin: bool,
    /// A session opened (or confirmed) with a second factor: an authenticator code, or a
    /// single sign-on provider saying so. What the MFA policies read.
    mfa: bool,
    /// Project key → role (empty for admins, who hold every role).
    #[schema(value_type = BTreeMap<String, Role>)]
    projects: BTreeMap<String, Role>,
    /// Cookie sessions only: the token cookie-authenticated writes carry in `X-CSRF-Token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
}

/// The change record's meta of a login attempt (no `Writer`: nobody is authenticated yet).
fn meta(actor: Actor, source: &Source, headers: &axum::http::HeaderMap) -> WriteMeta {
    let mut meta = WriteMeta::new(actor, super::request_id(headers));
    super::audit_source(&mut meta, headers, source.client_ip);
    meta
}

/// Seconds from now until an RFC 3339 time (at least 1).
fn seconds_until(t: &str) -> Option<u64> {
    let at = hata_core::operand::parse_rfc3339(t)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    (at > now).then(|| ((at - now) as u64).div_ceil(1_000_000_000).max(1))
}

/// What a login attempt presents (the JSON API's body, or the web UI's form).
pub struct Credentials {
    /// As typed; normalised here.
    pub email: String,
    pub password: String,
    /// The authenticator's current code or a recovery code, when the account has one.
    pub totp: Option<String>,
}

/// A login that opened a session.
pub struct LoggedIn {
    pub user: UserRecord,
    /// Sent with every cookie-authenticated write.
    pub csrf_token: String,
    /// The session cookie's `Set-Cookie`.
    pub cookie: axum::http::HeaderValue,
}

/// A login, within the login budgets: per client address, then per account, so neither many
/// accounts from one address nor one account from many addresses get more than
/// `--login-rate-limit` guesses a minute. Returns the outcome and the tighter budget's
/// decision (for the answer's headers). The one login of the JSON API and the web UI.
pub async fn log_in(
    s: &AppState,
    identity: &Identity,
    limits: &Limits,
    source: &Source,
    headers: &axum::http::HeaderMap,
    credentials: Credentials,
) -> (AppResult<LoggedIn>, Option<Decision>) {
    let email = match normalize_email(&credentials.email) {
        Ok(email) => email,
        Err(m) => {
            let invalid = AppError::Invalid(vec![FieldError {
                field: "email".into(),
                message: m.into(),
            }]);
            return (Err(invalid), None);
        }
    };
    let client = source.client();
    let mut tightest: Option<Decision> = None;
    for key in [format!("ip:{client}"), format!("account:{email}")] {
        let Some(decision) = limits.check(Scope::Login, &key).await else {
            continue;
        };
        if !decision.allowed {
            tracing::warn!(client = %client, "login refused: over the login rate limit");
            return (
                Err(limits::refusal(&decision, "too many login attempts")),
                Some(decision),
            );
        }
        if tightest.is_none_or(|t| decision.remaining < t.remaining) {
            tightest = Some(decision);
        }
    }
    let outcome = attempt(s, identity, source, &client, headers, &email, credentials).await;
    (outcome, tightest)
}

/// `POST /auth/login` (`log_in`), its answer carrying the budget's headers.
async fn login(
    State(s): State<AppState>,
    Extension(identity): Extension<Arc<Identity>>,
    Extension(limits): Extension<Arc<Limits>>,
    source: Source,
    headers: axum::http::HeaderMap,
    JsonBody(req): JsonBody<LoginRequest>,
) -> AppResult<Response> {
    let credentials = Credentials {
        email: req.email,
        password: req.password,
        totp: req.totp,
    };
    let (outcome, decision) = log_in(&s, &identity, &limits, &source, &headers, credentials).await;
    let mut response = match outcome {
        Ok(LoggedIn {
            user,
            csrf_token,
            cookie,
        }) => {
            let mut response = Json(LoginResponse { user, csrf_token }).into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        Err(e) => e.into_response(),
    };
    if let Some(decision) = decision {
        limits::add_headers(response.headers_mut(), &decision);
    }
    Ok(response)
}

async fn attempt(
    s: &AppState,
    identity: &Identity,
    source: &Source,
    client: &str,
    headers: &axum::http::HeaderMap,
    email: &str,
    req: Credentials,
) -> AppResult<LoggedIn> {
    let found = s.store.user_credentials_by_email(email).await?;
    if let Some(c) = &found {
        if let Some(wait) = c.user.locked_until.as_deref().and_then(seconds_until) {
            return Err(AppError::Throttled {
                detail: "the account is locked after repeated failed logins".into(),
                retry_after: wait,
            });
        }
        if let Some(wait) = c.retry_after.as_deref().and_then(seconds_until) {
            return Err(AppError::Throttled {
                detail: "too many failed logins for this account; wait before trying again".into(),
                retry_after: wait,
            });
        }
    }
    // An unknown email costs the same hash as a known one: no timing oracle.
    let stored = found
        .as_ref()
        .and_then(|c| c.password_hash.clone())
        .unwrap_or_else(|| hata_access::password::decoy_hash().to_string());
    let matches = identity.passwords.verify(req.password, stored).await?;
    let Some(user) = found.filter(|c| c.password_hash.is_some() && !c.user.disabled) else {
        tracing::warn!(client = %client, "login refused: no such enabled user with a password");
        return Err(AppError::BadLogin);
    };
    // The second factor is checked only after the password: without the password nobody
    // learns whether an account has one, and a code alone proves nothing.
    let (second_factor, factor_ok) = match (matches && user.user.mfa, req.totp.as_deref()) {
        (false, _) => (None, true),
        (true, None) => {
            tracing::info!(user = %user.user.id, client = %client, "login needs the second factor");
            return Err(AppError::SecondFactorRequired);
        }
        (true, Some(code)) => match super::totp::second_factor(s, &user.user.id, code).await? {
            Some(f) => (Some(f), true),
            None => (None, false),
        },
    };
    if !matches || !factor_ok {
        let anonymous = Actor {
            kind: ActorKind::Anonymous,
            id: client.to_string(),
            name: None,
        };
        let out = s
            .store
            .write(
                &meta(anonymous, source, headers),
                WriteOp::LoginFailed {
                    user_id: user.user.id.clone(),
                    policy: identity.lockout,
                },
            )
            .await?;
        let locked = out.value.as_ref().and_then(|v| v["locked_until"].as_str());
        match locked {
            Some(until) => {
                tracing::warn!(user = %user.user.id, client = %client, locked_until = until,
                "login failed: wrong password; the account is now locked")
            }
            None if !matches => {
                tracing::warn!(user = %user.user.id, client = %client, "login failed: wrong password")
            }
            None => {
                tracing::warn!(user = %user.user.id, client = %client, "login failed: wrong one-time code")
            }
        }
        return Err(AppError::BadLogin);
    }
    let (record, minted, cookie) = open_session(
        s,
        identity,
        source,
        headers,
        &user.user,
        second_factor,
        false,
    )
    .await?;
    tracing::info!(user = %record.id, session = %minted.id, client = %client, "login");
    Ok(LoggedIn {
        user: record,
        csrf_token: minted.csrf_token,
        cookie,
    })
}

/// Opens a session for `user` (a login: by password, or by single sign-on with `mfa` as the
/// provider says): the user as now stored, the minted session, and its `Set-Cookie`. A user
/// disabled or deleted meanwhile, or a second factor used meanwhile, is a `BadLogin`.
pub(super) async fn open_session(
    s: &AppState,
    identity: &Identity,
    source: &Source,
    headers: &axum::http::HeaderMap,
    user: &UserRecord,
    second_factor: Option<hata_store::SecondFactor>,
    mfa: bool,
) -> AppResult<(UserRecord, MintedSession, axum::http::HeaderValue)> {
    let minted = MintedSession::generate();
    let actor = Actor::user(user.id.clone(), user.name.clone());
    s.store
        .write(
            &meta(actor, source, headers),
            WriteOp::Login {
                user_id: user.id.clone(),
                session: NewSession {
                    id: minted.id.clone(),
                    secret_hash: minted.secret_hash.clone(),
                    csrf_token: minted.csrf_token.clone(),
                    mfa,
                },
                policy: identity.sessions,
                second_factor,
            },
        )
        .await
        .map_err(|e| match e {
            hata_store::StoreError::NotFound(_) => AppError::BadLogin,
            e => e.into(),
        })?;
    let record = s.store.get_user(&user.id).await?;
    let cookie = session::set_cookie(&minted.secret, source.https, identity.sessions.absolute);
    Ok((record, minted, cookie))
}

/// Ends the session `session_id` (the JSON API's and the web UI's logout).
pub async fn log_out(s: &AppState, w: &WriteMeta, session_id: &str) -> AppResult<()> {
    match s
        .store
        .write(
            w,
            WriteOp::Logout {
                session_id: session_id.to_string(),
            },
        )
        .await
    {
        // Ended by a concurrent logout: the caller's wish holds.
        Ok(_) | Err(hata_store::StoreError::NotFound(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn logout(
    State(s): State<AppState>,
    source: Source,
    session: Option<Extension<SessionCaller>>,
    Writer(w): Writer,
) -> AppResult<Response> {
    // `Access::User` lets only sessions in; this is the answer should that ever change.
    let Some(Extension(session)) = session else {
        return Err(AppError::Forbidden(
            "only a session logs out; revoke a token with DELETE /api/v1/tokens/{id}".into(),
        ));
    };
    log_out(&s, &w, &session.id).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, session::clear_cookie(source.https));
    Ok(response)
}

async fn me(
    Extension(Caller(caller)): Extension<Caller>,
    session: Option<Extension<SessionCaller>>,
) -> Json<Me> {
    let Principal {
        kind,
        id,
        name,
        admin,
        projects,
        ..
    } = (*caller).clone();
    let session = session.map(|Extension(s)| s);
    Json(Me {
        kind: match kind {
            PrincipalKind::User => "user",
            PrincipalKind::Token(_) => "token",
            PrincipalKind::Jwt => "jwt",
        },
        id,
        name,
        email: session.as_ref().map(|s| s.email.clone()),
        admin,
        mfa: session.as_ref().is_some_and(|s| s.mfa),
        projects,
        csrf_token: session.map(|s| s.csrf_token),
    })
}
