//! The routing table: every route of the admin API, the evaluation endpoints, health, the
//! OpenAPI document and `/metrics`, with the per-route layers (admin authentication) inside,
//! wrapped in the `dispatch` that applies the cross-cutting concerns.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::Router;

use crate::dispatch::{edge::Edge, App};
use crate::error::AppError;
use crate::routes::{self, EvalSettings};
use crate::{auth, metrics, openapi, AppState, ServerConfig};

/// The whole application, ready for `axum::serve(listener, app.into_make_service())`.
pub fn router(mut state: AppState, config: &ServerConfig) -> App {
    // The verifier is configuration; every handler reaches it through the state.
    state.jwt = config.jwt.clone();
    // `route_layer`: it runs after routing, so it knows the matched route and its access.
    let admin = routes::admin_router().route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::access::authorize_route,
    ));
    let eval = Arc::new(EvalSettings::new(config));
    let api = admin.merge(routes::sdk::router());
    let mut routes = Router::new()
        .nest("/api/v1", api)
        .merge(routes::ofrep::router())
        .merge(routes::health::router())
        .merge(metrics::router())
        .merge(openapi::router());
    if let Some(extra) = config.extra_routes {
        routes = routes.merge(extra());
        state.metrics.http.add_routes(config.extra_route_templates);
    }
    let routes = routes
        // Both after every route: the 405 fallback is set on the routes that exist.
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    // Layers around the router as one service, not `Router::layer`, which wraps every route
    // in a boxed copy of each layer that every request clones.
    let routes = tower::ServiceBuilder::new()
        .layer(axum::Extension(eval.clone()))
        .layer(axum::Extension(Arc::new(auth::identity::Identity::new(
            &config.identity,
        ))))
        .layer(axum::Extension(config.limits.clone()))
        .layer(axum::Extension(Arc::new(config.metrics.clone())))
        .layer(axum::Extension(routes::backups::Backups(
            config.backups.clone(),
        )))
        // The edge limits every body already (to the configured size); axum's own default
        // limit would otherwise cut at 2 MiB whatever was configured.
        .layer(DefaultBodyLimit::disable())
        .service(routes);
    App::new(
        Edge::new(
            config.body_limit,
            config.body_timeout,
            config.tls.is_some(),
            state.metrics.clone(),
            config.access_log,
            config.trusted_proxies.clone(),
        ),
        state,
        eval,
        tower::util::BoxCloneSyncService::new(routes),
        config.tls.clone(),
    )
}

/// Unknown paths get a problem+json 404 like every other error.
async fn no_route(uri: Uri) -> AppError {
    AppError::NoRoute(uri.path().to_string())
}

/// A known path with a method it does not serve (axum adds the `Allow` header).
async fn method_not_allowed(method: Method, uri: Uri) -> AppError {
    AppError::MethodNotAllowed(format!("{} does not serve {method}", uri.path()))
}
