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
    let readiness = Readiness::check(&state, limits.as_deref().map(|l| &**l)).await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(readiness.body()))
}

/// One named check of `/health/ready`.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: &'static str,
    pub up: bool,
    /// Why it is down, when it is.
    pub detail: Option<String>,
    /// Extra members of the check's JSON object.
    extra: Option<(&'static str, serde_json::Value)>,
}

/// What `/health/ready` decides, also read by `/metrics` (`hata_ready`, `hata_health_check`).
#[derive(Debug, Clone)]
pub struct Readiness {
    pub ready: bool,
    /// Shutdown began: unready whatever the checks say (and they are not run).
    pub draining: bool,
    pub checks: Vec<Check>,
    loaded: bool,
    environments: usize,
}

impl Readiness {
    /// Runs the checks: the store (a ping, at most `STORE_PING_TIMEOUT`) and the rule sets
    /// decide; the change listener (PostgreSQL) and Redis (when configured) are reported.
    pub async fn check(state: &AppState, limits: Option<&Limits>) -> Readiness {
        let loaded = state.serving.is_loaded();
        let environments = state.serving.all().len();
        // Shutting down (SIGTERM): not ready at once, so balancers stop sending new requests
        // while the ones in flight finish.
        if state.serving.is_shutting_down() {
            return Readiness {
                ready: false,
                draining: true,
                checks: Vec::new(),
                loaded,
                environments,
            };
        }
        let ping = match tokio::time::timeout(STORE_PING_TIMEOUT, state.store.ping()).await {
            Ok(result) => result,
            Err(_) => Err(hata_store::StoreError::Unavailable(format!(
                "no answer within {} ms",
                STORE_PING_TIMEOUT.as_millis()
            ))),
        };
        let mut checks = vec![
            Check {
                name: "store",
                up: ping.is_ok(),
                detail: ping.as_ref().err().map(ToString::to_string),
                extra: None,
            },
            Check {
                name: "rule_sets",
                up: loaded,
                detail: None,
                extra: Some(("environments", json!(environments))),
            },
        ];
        // Informational: neither makes the replica unready. Without the listener, changes
        // still arrive through the 10 s repair check; without Redis, budgets are per replica.
        if let Some(connected) = state.store.listener_connected() {
            checks.push(Check {
                name: "change_listener",
                up: connected,
                detail: None,
                extra: None,
            });
        }
        if let Some(answering) = limits.and_then(Limits::redis_answering) {
            checks.push(Check {
                name: "redis",
                up: answering,
                detail: None,
                extra: None,
            });
        }
        Readiness {
            ready: ping.is_ok() && loaded,
            draining: false,
            checks,
            loaded,
            environments,
        }
    }

    /// The JSON `/health/ready` answers.
    pub fn body(&self) -> serde_json::Value {
        let up = |ok: bool| if ok { "up" } else { "down" };
        if self.draining {
            return json!({"status": "down", "draining": true, "detail": "shutting down"});
        }
        let mut checks = serde_json::Map::new();
        for check in &self.checks {
            let mut value = json!({"status": up(check.up)});
            if let Some(detail) = &check.detail {
                value["detail"] = json!(detail);
            }
            if let Some((name, extra)) = &check.extra {
                value[*name] = extra.clone();
            }
            checks.insert(check.name.into(), value);
        }
        let store = self.checks.iter().find(|c| c.name == "store");
        let mut body = json!({
            "status": up(self.ready),
            "store": up(store.is_some_and(|c| c.up)),
            "snapshots": if self.loaded { "loaded" } else { "loading" },
            "environments": self.environments,
            "checks": checks,
        });
        if let Some(detail) = store.and_then(|c| c.detail.as_ref()) {
            body["detail"] = json!(detail);
        }
        body
    }
}
