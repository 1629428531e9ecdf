//! `/health/live` (the process answers: wire it to the liveness probe) and `/health/ready`
//! (the rule sets are loaded and the store answers: wire it to readiness). Evaluations keep
//! being served from memory while the store is down, so an orchestrator must not restart on
//! a failing readiness probe.
//!
//! The readiness check waits at most [`STORE_PING_TIMEOUT`] for the database, so that a probe
//! with a 1 s timeout (Kubernetes' default) gets a `503` with a reason rather than no answer
//! while the database is unreachable.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::AppState;

/// How long `/health/ready` waits for the database to answer `SELECT 1`.
pub const STORE_PING_TIMEOUT: Duration = Duration::from_millis(800);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
}

async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "up"}))
}

async fn ready(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    // Shutting down (SIGTERM): not ready at once, so balancers stop sending new requests
    // while the ones in flight finish.
    if state.serving.is_shutting_down() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "down", "draining": true, "detail": "shutting down"})),
        );
    }
    let loaded = state.serving.is_loaded();
    let environments = state.serving.all().len();
    let ping = match tokio::time::timeout(STORE_PING_TIMEOUT, state.store.ping()).await {
        Ok(result) => result,
        Err(_) => Err(hata_store::StoreError::Unavailable(format!(
            "no answer within {} ms",
            STORE_PING_TIMEOUT.as_millis()
        ))),
    };
    match ping {
        Ok(()) if loaded => (
            StatusCode::OK,
            Json(
                json!({"status": "up", "store": "up", "snapshots": "loaded", "environments": environments}),
            ),
        ),
        Ok(()) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "down", "store": "up", "snapshots": "loading"})),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "down", "store": "down", "detail": e.to_string(),
                "snapshots": if loaded { "loaded" } else { "loading" }, "environments": environments}),
            ),
        ),
    }
}
