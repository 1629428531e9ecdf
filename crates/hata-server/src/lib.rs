//! hata's HTTP surface (axum): the admin API, OFREP, the SDK rule set and its stream, health
//! and the OpenAPI document. Evaluations are answered from `hata_serving`'s in-memory rule sets.
//!
//! Handlers are thin (parse → call the store or the engine → map). Cross-cutting concerns
//! (request ids, body limits, CORS, security headers, tracing, metrics) are applied once, in
//! `dispatch`, around every request; per-route layers (auth) in `router`. `GET /metrics`
//! and its families are `metrics`.

pub mod auth;
pub mod bootstrap;
pub mod config;
pub mod connections;
pub mod dispatch;
pub mod error;
pub mod extract;
pub mod forwarded;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod report_webhook;
pub mod request_id;
pub mod router;
pub mod routes;
pub mod sso;
pub mod state;
pub mod telemetry;

pub use config::ServerConfig;
pub use connections::{serve, ConnectionLimits};
pub use dispatch::App;
pub use router::router;
pub use state::AppState;
