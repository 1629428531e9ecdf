//! Who may call each route. Every row of `openapi::ROUTES` states an `Access`; the admin API's
//! layer (`authorize_route`) looks the matched route up, turns its `Access` into a
//! `hata_access::Need` for the project in the path, and asks `hata_access::authorize`. A route
//! whose row states no access refuses everyone, and a unit test keeps every row stated.
//!
//! Evaluation routes (OFREP, SDK config and stream) check their token without this layer, on
//! their own fast path (`auth::authenticate_evaluator`); their rows state what that check
//! enforces, so the permission matrix test covers them too.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hata_access::{authorize, Need, Principal};

use super::identity::Identity;
use super::session::SessionCaller;
use super::{session, Caller};
use crate::error::AppError;
use crate::limits::{self, Limits, Scope};
use crate::openapi::ROUTES;
use crate::AppState;

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Not stated: nobody may call it (a unit test keeps this from shipping).
    Unstated,
    /// Anyone, without credentials (health, the OpenAPI document).
    Public,
    /// Anyone holding a signed ticket in the URL (OFREP event streams).
    Ticket,
    /// Any user, admin or project token; the handler filters or checks what the request names.
    Authenticated,
    /// A user (a person), not a token: their own password.
    User,
    Admin,
    /// A role of at least viewer in the path's `{project}`.
    Read,
    /// At least editor: flags and segments.
    Write,
    /// Owner: environments, tokens and members.
    Own,
    /// A `server` or `client` token.
    Evaluate,
    /// A `server` token.
    EvaluateServer,
}

impl Access {
    /// The need for a request to `project` (the path's `{project}`); `None` for routes that
    /// need no credentials.
    pub fn need(self, project: &str) -> Option<Result<Need<'_>, AppError>> {
        Some(Ok(match self {
            Access::Public | Access::Ticket => return None,
            Access::Unstated => {
                return Some(Err(AppError::Forbidden(
                    "this route states no access: nobody may call it".into(),
                )))
            }
            Access::Authenticated => Need::Authenticated,
            Access::User => Need::User,
            Access::Admin => Need::Admin,
            Access::Read => Need::Read(project),
            Access::Write => Need::Write(project),
            Access::Own => Need::Own(project),
            Access::Evaluate => Need::Evaluate,
            Access::EvaluateServer => Need::EvaluateServer,
        }))
    }
}

/// `(method, path template)` → access, from `ROUTES`.
static ACCESS: LazyLock<HashMap<(&'static str, &'static str), Access>> = LazyLock::new(|| {
    ROUTES
        .iter()
        .map(|r| ((r.method, r.path), r.access))
        .collect()
});

/// The access a route states; `Unstated` for a route missing from `ROUTES`.
pub fn of_route(method: &axum::http::Method, path: &str) -> Access {
    let method = method.as_str().to_ascii_lowercase();
    ACCESS
        .get(&(method.as_str(), path))
        .copied()
        .unwrap_or(Access::Unstated)
}

/// The admin API's layer: 401 without valid credentials (a bearer token, or a session cookie
/// and, for a write, its CSRF token), 429 past the caller's budget (per principal, or per
/// client address without valid credentials; `RateLimit-*` headers on every answer), 403 when
/// the caller lacks what the route needs; otherwise the caller's `Principal` goes into the
/// request as `Caller` (and a session's `SessionCaller` beside it). Public routes (login) pass
/// untouched: logins have budgets of their own.
pub async fn authorize_route(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, AppError> {
    let (mut parts, body) = req.into_parts();
    let access = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| of_route(&parts.method, m.as_str()))
        .unwrap_or(Access::Unstated);
    if access == Access::Public {
        return Ok(next.run(Request::from_parts(parts, body)).await);
    }
    let caller = authenticate(&state, &mut parts).await;
    if let Ok((principal, _)) = &caller {
        crate::dispatch::scope::set_principal(crate::dispatch::scope::Who::Named(format!(
            "{}:{}",
            principal.kind.as_str(),
            principal.id
        )));
    }
    let decision = match parts.extensions.get::<Arc<Limits>>().cloned() {
        Some(limits) => {
            let key = match &caller {
                Ok((principal, _)) => format!("{}:{}", principal.kind.as_str(), principal.id),
                Err(_) => format!("ip:{}", session::client_ip(&parts)),
            };
            limits.check(Scope::Admin, &key).await
        }
        None => None,
    };
    let mut response = match decision.filter(|d| !d.allowed) {
        Some(refused) => limits::refusal(&refused, "too many admin API requests").into_response(),
        None => match admit(&state, &mut parts, access, caller).await {
            Ok(()) => next.run(Request::from_parts(parts, body)).await,
            Err(e) => e.into_response(),
        },
    };
    if let Some(decision) = decision {
        limits::add_headers(response.headers_mut(), &decision);
    }
    Ok(response)
}

/// The caller's principal (and session, for a cookie): a bearer token wins over a session
/// cookie; only a cookie needs the CSRF checks.
async fn authenticate(
    state: &AppState,
    parts: &mut Parts,
) -> Result<(Principal, Option<SessionCaller>), AppError> {
    if super::presented_secret(&parts.headers).is_some() {
        return Ok((super::authenticate(state, &parts.headers).await?, None));
    }
    let secret = session::cookie_secret(&parts.headers).ok_or(AppError::Unauthorized)?;
    let identity = parts
        .extensions
        .get::<Arc<Identity>>()
        .cloned()
        .ok_or(AppError::Unauthorized)?;
    let (principal, session) = session::authenticate(state, &identity, secret).await?;
    if session::is_unsafe(&parts.method) {
        session::check_csrf(parts, &session)?;
    }
    Ok((principal, Some(session)))
}

/// Checks that the authenticated caller may call the route for the path's project, and puts
/// it into the request.
async fn admit(
    state: &AppState,
    parts: &mut Parts,
    access: Access,
    caller: Result<(Principal, Option<SessionCaller>), AppError>,
) -> Result<(), AppError> {
    let (principal, session) = caller?;
    let admin_needs_mfa = session.as_ref().is_some_and(|s| s.admin_needs_mfa);
    if let Some(session) = session {
        parts.extensions.insert(session);
    }
    let params = RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|e| AppError::BadRequest(format!("path: {}", e.body_text())))?;
    let project = params
        .iter()
        .find(|(name, _)| *name == "project")
        .map(|(_, value)| value)
        .unwrap_or("");
    if let Some(need) = access.need(project) {
        authorize(&principal, need?).map_err(|d| {
            AppError::Forbidden(if admin_needs_mfa {
                format!(
                    "{}; administrators act as administrators only with two-factor \
                     authentication on (POST /api/v1/auth/totp)",
                    d.0
                )
            } else {
                d.0
            })
        })?;
    }
    parts.extensions.insert(Caller(Arc::new(principal)));
    Ok(())
}

/// `authorize` for a check inside a handler (what the request body or the stored resource
/// names), as the HTTP error.
pub fn require(principal: &Principal, need: Need<'_>) -> Result<(), AppError> {
    authorize(principal, need).map_err(|d| AppError::Forbidden(d.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_states_its_access() {
        let unstated: Vec<String> = ROUTES
            .iter()
            .filter(|r| r.access == Access::Unstated)
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(unstated.is_empty(), "routes without access: {unstated:?}");
        assert_eq!(
            of_route(&axum::http::Method::GET, "/api/v1/projects/{project}"),
            Access::Read
        );
        assert_eq!(
            of_route(&axum::http::Method::GET, "/api/v1/no/such/route"),
            Access::Unstated
        );
    }
}
