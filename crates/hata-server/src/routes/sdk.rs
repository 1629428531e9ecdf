//! The rule set for in-process SDKs: `GET /api/v1/sdk/config` (with `ETag` / 304) and its
//! live stream `GET /api/v1/sdk/stream` (in `sse`). Server tokens only: the rule set reveals
//! every targeting rule, which a browser must not see.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use hata_store::TokenKind;

use super::{sse, EvalSettings};
use crate::auth::authenticate_evaluator;
use crate::error::AppError;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sdk/config", get(config))
        .route("/sdk/stream", get(sse::sdk_stream))
}

async fn config(
    State(s): State<AppState>,
    Extension(_settings): Extension<Arc<EvalSettings>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let caller =
        authenticate_evaluator(&s.tokens, s.jwt.as_ref(), &headers, &[TokenKind::Server]).await?;
    let env = s
        .serving
        .get(caller.project(), caller.environment())
        .ok_or(AppError::NotLoaded)?;
    let etag = HeaderValue::from_str(&env.config_etag)
        .map_err(|e| AppError::Store(hata_store::StoreError::Internal(e.to_string())))?;
    let unchanged = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().trim_start_matches("W/") == env.config_etag);
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::ETAG, etag),
        ],
        env.sdk.config(),
    )
        .into_response())
}
