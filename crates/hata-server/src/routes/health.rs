//! `/health/live` (the process answers: wire it to the liveness probe) and `/health/ready`
//! (the rule sets are loaded and the store answers: wire it to readiness). Evaluations keep
//! being served from memory while the store is down, so an orchestrator must not restart on
//! a failing readiness probe.
//!
//! `/health/ready` names each check (`checks`): the store and the rule sets decide readiness;
//! the change listener (PostgreSQL) and Redis (when configured) are reported, never a reason
//! to take the replica out. It waits at most [`STORE_PING_TIMEOUT`] for the database, so that
//! a probe with a 1 s timeout (Kubernetes' default) gets a `503` with a reason rather than no
//! answer while the database is unreachable. From the moment shutdown begins it answers 503
//! (`draining`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::json;

use crate::limits::Limits;
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

async fn ready(
    State(state): State<AppState>,
    limits: Option<Extension<Arc<Limits>>>,
) -> (StatusCode, Json<serde_json::Value>) {
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
    let up = |ok: bool| if ok { "up" } else { "down" };
    let mut checks = serde_json::Map::new();
    checks.insert(
        "store".into(),
        match &ping {
            Ok(()) => json!({"status": "up"}),
            Err(e) => json!({"status": "down", "detail": e.to_string()}),
        },
    );
    checks.insert(
        "rule_sets".into(),
        json!({"status": up(loaded), "environments": environments}),
    );
    // Informational: neither makes the replica unready. Without the listener, changes still
    // arrive through the 10 s repair check; without Redis, budgets are per replica.
    if let Some(connected) = state.store.listener_connected() {
        checks.insert("change_listener".into(), json!({"status": up(connected)}));
    }
    if let Some(answering) = limits.and_then(|Extension(l)| l.redis_answering()) {
        checks.insert("redis".into(), json!({"status": up(answering)}));
    }
    let ready = ping.is_ok() && loaded;
    let mut body = json!({
        "status": up(ready),
        "store": up(ping.is_ok()),
        "snapshots": if loaded { "loaded" } else { "loading" },
        "environments": environments,
        "checks": checks,
    });
    if let Err(e) = &ping {
        body["detail"] = json!(e.to_string());
    }
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}
