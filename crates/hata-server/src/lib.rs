//! hata's HTTP surface (axum): the admin API, health and the OpenAPI document.
//!
//! Handlers are thin (parse → call the store or the engine → map); cross-cutting concerns
//! (auth, request ids, body limits, tracing) are layers applied once in `router`.

pub mod auth;
pub mod bootstrap;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod routes;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, Uri};
use axum::Router;
use error::AppError;
use hata_store::{ChangeNotice, Store};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The largest request body accepted (413 above).
    pub body_limit: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit: 1 << 20,
        }
    }
}

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub tokens: Arc<auth::TokenCache>,
}

impl AppState {
    /// Loads what the server keeps in memory and starts following store changes.
    pub async fn start(store: Store) -> hata_store::StoreResult<AppState> {
        let tokens = Arc::new(auth::TokenCache::default());
        tokens.reload(&store).await?;
        let state = AppState { store, tokens };
        tokio::spawn(follow_changes(state.clone()));
        Ok(state)
    }
}

/// Keeps the token cache in step with the store (changes made by this or another process).
async fn follow_changes(state: AppState) {
    let mut notices = state.store.subscribe();
    loop {
        match notices.recv().await {
            Ok(ChangeNotice::Tokens) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                if let Err(e) = state.tokens.reload(&state.store).await {
                    tracing::warn!(error = %e, "token cache reload failed; retrying on the next change");
                }
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application router.
pub fn router(state: AppState, config: &ServerConfig) -> Router {
    let admin = routes::admin_router().layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_admin,
    ));
    Router::new()
        .nest("/api/v1", admin)
        .merge(routes::health::router())
        .merge(openapi::router())
        // Both after every route: the 405 fallback is set on the routes that exist.
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// Unknown paths get a problem+json 404 like every other error.
async fn no_route(uri: Uri) -> AppError {
    AppError::NoRoute(uri.path().to_string())
}

/// A known path with a method it does not serve (axum adds the `Allow` header).
async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed(format!("{} does not serve {method}", uri.path()))
}

/// How long a graceful shutdown waits for in-flight requests.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
