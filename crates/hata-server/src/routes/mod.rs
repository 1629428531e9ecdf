//! Route handlers, one module per resource. Each handler: extract → store/engine → map.

pub mod environments;
pub mod flags;
pub mod health;
pub mod projects;
pub mod segments;
pub mod tokens;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hata_store::{WriteMeta, WriteOutcome};
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
}

/// Who is writing and under which request id: the change record's `actor` and `request_id`.
pub struct Writer(pub WriteMeta);

impl<S: Send + Sync> FromRequestParts<S> for Writer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let actor = parts
            .extensions
            .get::<Caller>()
            .map(|c| format!("token:{}", c.0.id))
            .ok_or(AppError::Unauthorized)?;
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        Ok(Writer(WriteMeta { actor, request_id }))
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
