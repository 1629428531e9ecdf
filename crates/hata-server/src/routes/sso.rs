//! `/auth/oidc`: single sign-on. `login` sends the browser to the provider; `callback` takes it
//! back, opens a session and sends it on to where it started. Both are public (the browser has
//! no session yet); the flow cookie and the provider's ID token are what they trust.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use hata_store::{SsoIdentity, StoreError, WriteOp};
use serde::Deserialize;

use crate::auth::identity::Identity;
use crate::auth::session::Source;
use crate::error::{AppError, AppResult};
use crate::extract::Query;
use crate::routes::EvalSettings;
use crate::sso::flow::{self, Flow};
use crate::sso::{Sso, SsoError};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/oidc/login", get(login))
        .route("/auth/oidc/callback", get(callback))
}

/// `GET /auth/oidc/login` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoginQuery {
    /// A path on this server to go to after logging in (default `/`).
    return_to: Option<String>,
}

/// `GET /auth/oidc/callback` query: what the provider sends back.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    /// The provider's refusal (`access_denied`, …).
    error: Option<String>,
    error_description: Option<String>,
}

fn configured(identity: &Identity) -> AppResult<Arc<Sso>> {
    identity
        .sso
        .clone()
        .ok_or_else(|| AppError::NotFound("single sign-on is not configured".into()))
}

fn sso_error(e: SsoError) -> AppError {
    match e {
        SsoError::Unreachable(_) => {
            tracing::warn!(error = %e, "single sign-on: the provider cannot be reached");
            AppError::Busy {
                detail: e.to_string(),
                retry_after: 5,
            }
        }
        SsoError::Rejected(_) | SsoError::Config(_) => {
            tracing::warn!(error = %e, "single sign-on refused");
            AppError::SsoRefused(e.to_string())
        }
    }
}

/// This server's base URL, for the default redirect URL: `--public-url`, else where the
/// request reached it (through trusted proxies).
fn base_url(settings: &EvalSettings, source: &Source) -> String {
    match (&settings.public_url, &source.reached_at) {
        (Some(url), _) => url.trim_end_matches('/').to_string(),
        (None, Some(origin)) => origin.clone(),
        (None, None) => "http://localhost".into(),
    }
}

fn see_other(location: &str, cookies: &[HeaderValue]) -> AppResult<Response> {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let location = HeaderValue::from_str(location)
        .map_err(|_| AppError::BadRequest("the redirect is not a valid URL".into()))?;
    response.headers_mut().insert(header::LOCATION, location);
    for cookie in cookies {
        response
            .headers_mut()
            .append(header::SET_COOKIE, cookie.clone());
    }
    Ok(response)
}

async fn login(
    State(s): State<AppState>,
    Extension(identity): Extension<Arc<Identity>>,
    Extension(settings): Extension<Arc<EvalSettings>>,
    source: Source,
    Query(q): Query<LoginQuery>,
) -> AppResult<Response> {
    let sso = configured(&identity)?;
    let redirect = sso.redirect_url(&base_url(&settings, &source));
    let (url, flow) = sso
        .begin(&redirect, flow::safe_return_to(q.return_to.as_deref()))
        .await
        .map_err(sso_error)?;
    see_other(&url, &[flow.cookie(&s.tickets, source.https)])
}

async fn callback(
    State(s): State<AppState>,
    Extension(identity): Extension<Arc<Identity>>,
    Extension(settings): Extension<Arc<EvalSettings>>,
    source: Source,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> AppResult<Response> {
    let sso = configured(&identity)?;
    if let Some(error) = q.error {
        let why = q.error_description.unwrap_or_default();
        return Err(AppError::SsoRefused(format!(
            "the provider refused the login: {error} {why}"
        )));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let flow = Flow::from_request(&headers, &s.tickets, now).ok_or_else(|| {
        AppError::SsoRefused(
            "no login in progress in this browser (or it took longer than 10 minutes): start again at /api/v1/auth/oidc/login".into(),
        )
    })?;
    let state_ok = q
        .state
        .as_deref()
        .is_some_and(|st| hata_access::session::same_secret(st, &flow.state));
    let Some(code) = q.code.filter(|_| state_ok) else {
        return Err(AppError::SsoRefused(
            "the callback's state does not match the login in progress".into(),
        ));
    };
    let redirect = sso.redirect_url(&base_url(&settings, &source));
    let verified = sso
        .finish(&redirect, code, &flow)
        .await
        .map_err(sso_error)?;
    let Some(email) = verified.email.clone() else {
        return Err(AppError::SsoRefused(
            "the provider's ID token has no email: ask for the `email` scope".into(),
        ));
    };
    let sso_identity = SsoIdentity {
        issuer: sso.issuer().to_string(),
        subject: verified.subject.clone(),
        name: verified.name.clone().unwrap_or_else(|| email.clone()),
        email,
        email_verified: verified.email_verified,
        roles: sso.roles(&verified.claims),
    };
    let mut meta = hata_store::WriteMeta::new(
        hata_store::Actor {
            kind: hata_store::ActorKind::System,
            id: "sso".into(),
            name: Some(format!("single sign-on ({})", sso.issuer())),
        },
        super::request_id(&headers),
    );
    super::audit_source(&mut meta, &headers, source.client_ip);
    let out = match s
        .store
        .write(
            &meta,
            WriteOp::SsoUser {
                identity: sso_identity,
            },
        )
        .await
    {
        Ok(out) => out,
        Err(StoreError::NotFound(_)) => {
            return Err(AppError::SsoRefused("this user is disabled".into()))
        }
        Err(e) => return Err(e.into()),
    };
    let user_id = out
        .value
        .as_ref()
        .and_then(|v| v["id"].as_str())
        .ok_or_else(|| AppError::Store(StoreError::Internal("the SSO user's id".into())))?;
    let user = s.store.get_user(user_id).await?;
    let (record, minted, cookie) =
        super::auth::open_session(&s, &identity, &source, &headers, &user, None, verified.mfa)
            .await?;
    tracing::info!(user = %record.id, session = %minted.id, issuer = sso.issuer(), "login by single sign-on");
    see_other(&flow.return_to, &[cookie, flow::clear_cookie(source.https)])
}
