//! Route handlers, one module per resource. Each handler: extract → store/engine → map.

pub mod audit;
pub mod auth;
pub mod backups;
pub mod environments;
pub mod flags;
pub mod health;
pub mod insights;
pub mod jobs;
pub mod members;
pub mod ofrep;
pub mod projects;
pub mod reports;
pub mod sdk;
pub mod segments;
pub mod sse;
pub mod sso;
pub mod tokens;
pub mod totp;
pub mod users;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hata_store::{Actor, ActorKind, WriteMeta, WriteOutcome};
use serde::Serialize;

use crate::auth::Caller;
use crate::error::AppError;
use crate::AppState;

pub fn admin_router() -> Router<AppState> {
    Router::new()
        .merge(projects::router())
        .merge(environments::router())
        .merge(flags::router())
        .merge(segments::router())
        .merge(tokens::router())
        .merge(insights::router())
        .merge(auth::router())
        .merge(users::router())
        .merge(members::router())
        .merge(totp::router())
        .merge(sso::router())
        .merge(audit::router())
        .merge(jobs::router())
        .merge(reports::router())
        .merge(backups::router())
}

/// Settings of the evaluation endpoints, shared as an extension.
pub struct EvalSettings {
    pub public_url: Option<String>,
    pub heartbeat: std::time::Duration,
    pub streams: std::sync::Arc<sse::StreamSlots>,
    pub trusted_proxies: crate::forwarded::TrustedProxies,
    /// This listener's scheme: `https` over TLS, else `http` (see `forwarded::Origin`).
    pub scheme: &'static str,
    /// The most members an evaluation context may have (more: `INVALID_CONTEXT`).
    pub max_context_members: usize,
    limiter: Option<governor::DefaultKeyedRateLimiter<String>>,
}

impl EvalSettings {
    pub fn new(config: &crate::ServerConfig) -> EvalSettings {
        EvalSettings {
            public_url: config
                .public_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_string()),
            heartbeat: config.heartbeat,
            streams: sse::StreamSlots::new(config.max_streams, config.max_streams_per_token),
            trusted_proxies: config.trusted_proxies.clone(),
            scheme: if config.tls.is_some() {
                "https"
            } else {
                "http"
            },
            max_context_members: config.max_context_members,
            limiter: std::num::NonZeroU32::new(config.eval_rate_limit)
                .map(|n| governor::RateLimiter::keyed(governor::Quota::per_second(n))),
        }
    }

    /// 429 with `Retry-After` once a token exceeds its rate (GCRA, lock-free per key).
    pub fn check_rate(&self, token_id: &String) -> Result<(), AppError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(token_id).map_err(|not_until| {
            use governor::clock::{Clock, DefaultClock};
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AppError::RateLimited {
                retry_after: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }
}

/// Who is writing and under which request id: the change record's `actor` and `request_id`.
pub struct Writer(pub WriteMeta);

impl<S: Send + Sync> FromRequestParts<S> for Writer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let actor = parts
            .extensions
            .get::<Caller>()
            .map(|c| actor_of(&c.0))
            .ok_or(AppError::Unauthorized)?;
        let mut meta = WriteMeta::new(actor, request_id(&parts.headers));
        if let Some(caller) = parts.extensions.get::<Caller>() {
            meta.role = role_of(&caller.0, project_in_path(parts.uri.path()));
        }
        let ip = crate::auth::session::origin_of(parts).and_then(|o| o.client_ip);
        audit_source(&mut meta, &parts.headers, ip);
        // A session without the second factor the policy asks for may not change protected
        // environments; the store decides what changes one.
        if let (Some(session), Some(identity)) = (
            parts
                .extensions
                .get::<crate::auth::session::SessionCaller>(),
            parts
                .extensions
                .get::<std::sync::Arc<crate::auth::identity::Identity>>(),
        ) {
            meta.protected_refusal = identity.mfa.protected_refusal(session.mfa).map(Into::into);
        }
        Ok(Writer(meta))
    }
}

/// The audit entry's `role`: `admin` for an administrator, else the role held in the
/// project the request names, else (an evaluation token) the token's kind.
pub fn role_of(principal: &hata_access::Principal, project: Option<&str>) -> Option<String> {
    if principal.admin {
        return Some("admin".into());
    }
    if let Some(role) = project.and_then(|p| principal.projects.get(p)) {
        return Some(role.as_str().into());
    }
    match principal.kind {
        hata_access::PrincipalKind::Token(kind) => Some(kind.as_str().into()),
        _ => None,
    }
}

/// `p` of a path `/api/v1/projects/p/…` (or the web UI's `/projects/p/…`).
fn project_in_path(path: &str) -> Option<&str> {
    path.strip_prefix("/api/v1")
        .unwrap_or(path)
        .strip_prefix("/projects/")?
        .split('/')
        .next()
        .filter(|p| !p.is_empty())
}

/// The longest `User-Agent` the audit log keeps (longer ones are cut on a character).
const MAX_USER_AGENT: usize = 512;

/// Fills the audit entry's client address (through trusted proxies) and user agent.
pub fn audit_source(
    meta: &mut WriteMeta,
    headers: &axum::http::HeaderMap,
    ip: Option<std::net::IpAddr>,
) {
    meta.ip = ip.map(|ip| ip.to_string());
    meta.user_agent = headers
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .map(|mut ua| {
            if ua.len() > MAX_USER_AGENT {
                let mut end = MAX_USER_AGENT;
                while !ua.is_char_boundary(end) {
                    end -= 1;
                }
                ua.truncate(end);
            }
            ua
        });
}

/// The request's `X-Request-Id` (set by the edge on every request) for the change record.
pub fn request_id(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The change record's actor for a principal.
pub fn actor_of(principal: &hata_access::Principal) -> Actor {
    use hata_access::PrincipalKind;
    Actor {
        kind: match principal.kind {
            PrincipalKind::User => ActorKind::User,
            PrincipalKind::Token(_) => ActorKind::Token,
            PrincipalKind::Jwt => ActorKind::Jwt,
        },
        id: principal.id.clone(),
        name: Some(principal.name.clone()),
    }
}

/// A JSON response with `ETag: "<version>"`.
pub fn versioned<T: Serialize>(status: StatusCode, version: i64, body: &T) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// The response to a create (201) or update (200): the stored resource with its ETag.
pub fn written(status: StatusCode, outcome: WriteOutcome) -> Response {
    versioned(status, outcome.version, &outcome.value)
}
