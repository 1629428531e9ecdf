//! Request extractors with problem+json errors: a JSON body (400 on bad syntax, 422 naming the
//! field on bad content, 413 over the limit), `If-Match`, path parameters and query strings
//! (400), list paging.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use hata_core::validate::FieldError;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::AppError;

/// A JSON body of type `T`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::TooLarge
            } else {
                AppError::from_body_error(&e).unwrap_or_else(|| AppError::Malformed(e.body_text()))
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses `bytes` as `T`: syntax errors are 400, shape errors 422 at the offending path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    // First as untyped JSON, so that syntax errors (400) are told apart from content (422).
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| AppError::Malformed(e.to_string()))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        AppError::Invalid(vec![FieldError {
            field: if path == "." { String::new() } else { path },
            message: e.into_inner().to_string(),
        }])
    })
}

/// The version named by `If-Match: "<version>"`, if the header is present (`*` means any).
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(raw) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let raw = raw
            .to_str()
            .map_err(|_| AppError::BadRequest("If-Match is not ASCII".into()))?
            .trim();
        if raw == "*" {
            return Ok(IfMatch(None));
        }
        let unquoted = raw.trim_start_matches("W/").trim_matches('"');
        unquoted
            .parse::<i64>()
            .map(|v| IfMatch(Some(v)))
            .map_err(|_| {
                AppError::BadRequest(format!(
                    "If-Match must be an ETag this server issued, like \"3\"; got {raw}"
                ))
            })
    }
}

/// Path parameters of type `T`; ones that do not decode (not UTF-8) are a problem+json 400.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| AppError::BadRequest(e.body_text()))
    }
}

/// A query string of type `T`; one that does not parse is a problem+json 400.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| AppError::BadRequest(e.body_text()))
    }
}

/// `?limit=&cursor=` of list endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Page size (default 100).
    #[param(minimum = 1)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Paging {
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(100)
    }
}
