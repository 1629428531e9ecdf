//! `AppError`: every failure of the HTTP layer, mapped in one `match` to an RFC 7807
//! `application/problem+json` response with the right status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hata_core::validate::{FieldError, ValidationErrors};
use hata_store::StoreError;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("malformed request body: {0}")]
    Malformed(String),
    #[error("request body too large")]
    TooLarge,
    #[error("the request body stopped arriving for longer than the body timeout")]
    BodyTimeout,
    #[error("the request target is longer than {0} bytes")]
    UriTooLong(usize),
    #[error("{}", ValidationErrors(.0.clone()))]
    Invalid(Vec<FieldError>),
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// A token that no longer works: expired, past the maximum token age, or a rotated-out
    /// secret (the detail says which and what to do).
    #[error("{0}")]
    TokenRefused(String),
    /// A single sign-on that did not prove who the browser is (the detail says why).
    #[error("{0}")]
    SsoRefused(String),
    /// A JWT that was refused, and why (never the token itself).
    #[error("{0}")]
    BadJwt(#[from] crate::auth::jwt::JwtError),
    /// A login with a wrong email, password or code: one answer for all, so it does not tell
    /// which emails have accounts.
    #[error("the email, password or one-time code is wrong")]
    BadLogin,
    /// The password was right, but the account has two-factor authentication and the login
    /// carried no code.
    #[error("this account has two-factor authentication: send `totp`, the authenticator's current code or a recovery code")]
    SecondFactorRequired,
    /// Too much work queued (password hashing); the caller may retry.
    #[error("{detail}; retry after {retry_after} s")]
    Busy { detail: String, retry_after: u64 },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    /// Path or query parameters that no request may carry, each named in `errors`.
    #[error("{}", ValidationErrors(.0.clone()))]
    BadParameters(Vec<FieldError>),
    #[error("too many requests; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("{detail}; retry after {retry_after} s")]
    Throttled { detail: String, retry_after: u64 },
    #[error("{0}")]
    NotFound(String),
    #[error("no endpoint {0}")]
    NoRoute(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// The caller's environment has no rule set in memory yet: it was created a moment ago
    /// on another replica, or this server is still loading. The same answer (503 with
    /// `Retry-After`) on every evaluation endpoint; OFREP paths give it in OFREP's shape.
    #[error("the token's environment is not loaded yet; retry shortly")]
    NotLoaded,
    /// The backup destination did not answer or refused (`GET /backups`); the detail names it.
    #[error("{0}")]
    BackupDestination(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `Retry-After` of `AppError::NotLoaded`, in seconds: a change reaches replicas in
/// milliseconds, and a start loads every rule set in seconds.
pub const NOT_LOADED_RETRY_AFTER: u64 = 1;

/// An RFC 7807 problem: the body of every admin API error (`application/problem+json`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// Always `about:blank`: the status and title say it all.
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: String,
    /// 422: every invalid field, with a path into the request body. 400 for path or query
    /// parameters that no request may carry: each named by the parameter.
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
    /// 409 on delete: what depends on the resource.
    #[serde(skip_serializing_if = "Option::is_none")]
    dependants: Option<&'a [String]>,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, title, errors, dependants): (
            StatusCode,
            &str,
            Option<&[FieldError]>,
            Option<&[String]>,
        ) = match &self {
            AppError::Malformed(_) => (StatusCode::BAD_REQUEST, "Malformed request", None, None),
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "Bad request", None, None),
            AppError::BadParameters(errors) => {
                (StatusCode::BAD_REQUEST, "Bad request", Some(errors), None)
            }
            AppError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
                None,
                None,
            ),
            AppError::UriTooLong(_) => (
                StatusCode::URI_TOO_LONG,
                "Request target too long",
                None,
                None,
            ),
            AppError::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "Request body timeout",
                None,
                None,
            ),
            AppError::Invalid(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid content",
                Some(errors),
                None,
            ),
            AppError::Unauthorized
            | AppError::TokenRefused(_)
            | AppError::SsoRefused(_)
            | AppError::BadJwt(_)
            | AppError::BadLogin
            | AppError::SecondFactorRequired => {
                (StatusCode::UNAUTHORIZED, "Unauthorized", None, None)
            }
            AppError::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "Busy", None, None),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden", None, None),
            AppError::RateLimited { .. } | AppError::Throttled { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                None,
                None,
            ),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found", None, None),
            AppError::BackupDestination(_) => (
                StatusCode::BAD_GATEWAY,
                "Backup destination unavailable",
                None,
                None,
            ),
            AppError::NoRoute(_) => (StatusCode::NOT_FOUND, "Not found", None, None),
            AppError::NotLoaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Rule set not loaded",
                None,
                None,
            ),
            AppError::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                None,
                None,
            ),
            AppError::Store(e) => match e {
                StoreError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found", None, None),
                StoreError::Forbidden(_) => (StatusCode::FORBIDDEN, "Forbidden", None, None),
                StoreError::AlreadyExists(_) => {
                    (StatusCode::CONFLICT, "Already exists", None, None)
                }
                StoreError::Conflict { dependants, .. } => (
                    StatusCode::CONFLICT,
                    "Conflict",
                    None,
                    Some(dependants.as_slice()),
                ),
                // Only `hata import` meets this today; mapped for completeness.
                StoreError::NotEmpty(_) => (StatusCode::CONFLICT, "Store not empty", None, None),
                StoreError::VersionMismatch { .. } => (
                    StatusCode::PRECONDITION_FAILED,
                    "Version mismatch",
                    None,
                    None,
                ),
                StoreError::Invalid(v) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid content",
                    Some(v.0.as_slice()),
                    None,
                ),
                StoreError::Unavailable(_) => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Storage unavailable",
                    None,
                    None,
                ),
                StoreError::Internal(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Internal error",
                    None,
                    None,
                ),
            },
        };
        let detail = match &self {
            AppError::Store(StoreError::Internal(e)) => {
                tracing::error!(error = %e, "internal store error");
                "an internal error occurred; see the server log".to_string()
            }
            AppError::Store(StoreError::Unavailable(e)) => {
                tracing::warn!(error = %e, "store unavailable");
                "the database is unavailable; nothing was changed".to_string()
            }
            AppError::Store(StoreError::Conflict {
                message,
                dependants,
            }) if !dependants.is_empty() => {
                format!("{message}: {}", dependants.join(", "))
            }
            other => other.to_string(),
        };
        let problem = Problem {
            kind: "about:blank",
            title,
            status: status.as_u16(),
            detail,
            errors,
            dependants,
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        let retry_after = match &self {
            AppError::RateLimited { retry_after }
            | AppError::Throttled { retry_after, .. }
            | AppError::Busy { retry_after, .. } => Some(*retry_after),
            AppError::NotLoaded => Some(NOT_LOADED_RETRY_AFTER),
            _ => None,
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            if let Some(why) = self.auth_failure() {
                response.extensions_mut().insert(why);
            }
        }
        response
    }
}

pub type AppResult<T> = Result<T, AppError>;

impl AppError {
    /// Why a 401 was answered, for `hata_auth_failures_total` (the edge counts it).
    pub fn auth_failure(&self) -> Option<crate::metrics::AuthFailure> {
        use crate::metrics::AuthFailure;
        Some(match self {
            AppError::Unauthorized => AuthFailure::Missing,
            AppError::TokenRefused(_) => AuthFailure::TokenRefused,
            AppError::BadJwt(_) => AuthFailure::Jwt,
            AppError::BadLogin | AppError::SecondFactorRequired => AuthFailure::Login,
            AppError::SsoRefused(_) => AuthFailure::Sso,
            _ => return None,
        })
    }

    /// A failure to read a request body (limited and timed by `dispatch::edge`): 413 past the
    /// size limit, 408 when it stopped arriving, else `None` (the caller's own 400).
    pub fn from_body_error(error: &(dyn std::error::Error + 'static)) -> Option<AppError> {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if e.is::<http_body_util::LengthLimitError>() {
                return Some(AppError::TooLarge);
            }
            if e.is::<tower_http::timeout::TimeoutError>() {
                return Some(AppError::BodyTimeout);
            }
            cause = e.source();
        }
        None
    }
}
