//! `GET /metrics`: what operators' dashboards and alerts read, in the Prometheus text format
//! (0.0.4).
//!
//! Built on `prometheus-client`, the Prometheus project's own Rust client: typed families, no
//! global registry, and (since 0.26) an encoder for the 0.0.4 text format that Prometheus
//! parses by default, beside OpenMetrics. Its `Family` looks a label set up under a lock and
//! its `Histogram` observes under one, so the per-request families (`http`) keep their own
//! atomic cells, resolved per route at start, and hand them to the crate's encoder at scrape
//! time; everything read from elsewhere (evaluation totals, rule sets, pools, `/proc`) is read
//! at scrape time too (`scrape`). Not here: tracing, and the evaluation counts the store keeps
//! (`hata_serving::counts`), which these only read.
//!
//! Recorded in one place for every request, whichever way it was served: `dispatch::edge`
//! calls [`Metrics::observe`].

pub mod histogram;
pub mod hours;
pub mod http;
pub mod process;
pub mod scrape;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use crate::error::AppError;
use crate::limits::Limits;
use crate::AppState;

pub use http::{HttpMetrics, RouteId, Surface};

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Flags per environment with their own `hata_evaluations_total` series by default; the rest
/// are summed under `flag="_other"`.
pub const DEFAULT_MAX_FLAGS: usize = 1000;

/// The `flag` label of the flags past the limit.
pub const OTHER_FLAGS: &str = "_other";

/// How `/metrics` is served (`ServerConfig::metrics`).
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// When set, `/metrics` asks for `Authorization: Bearer <token>` (401 otherwise).
    pub token: Option<String>,
    /// Flags per environment with series of their own (`OTHER_FLAGS` beyond).
    pub max_flags: usize,
    /// Whether the main listener serves `/metrics` (404 otherwise: `hata serve
    /// --metrics-listen` serves it on its own address instead, `App::metrics_router`).
    pub on_main: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            token: None,
            max_flags: DEFAULT_MAX_FLAGS,
            on_main: true,
        }
    }
}

/// Why a request was answered 401 (`hata_auth_failures_total{reason}`); `AppError` puts it
/// in the answer's extensions, the edge counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credentials, or a secret no token has.
    Missing,
    /// A token past its expiry, maximum age or rotation grace.
    TokenRefused,
    /// A JWT that failed its checks.
    Jwt,
    /// A wrong email, password or code at login, or a missing second factor.
    Login,
    /// A single sign-on that did not prove who the browser is.
    Sso,
    /// `/metrics` without its token.
    MetricsToken,
}

impl AuthFailure {
    const ALL: [AuthFailure; 6] = [
        AuthFailure::Missing,
        AuthFailure::TokenRefused,
        AuthFailure::Jwt,
        AuthFailure::Login,
        AuthFailure::Sso,
        AuthFailure::MetricsToken,
    ];

    fn label(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing_or_unknown",
            AuthFailure::TokenRefused => "token_refused",
            AuthFailure::Jwt => "jwt",
            AuthFailure::Login => "login",
            AuthFailure::Sso => "sso",
            AuthFailure::MetricsToken => "metrics_token",
        }
    }
}

/// Every family this process records as it goes; read-at-scrape families are in `scrape`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub http: HttpMetrics,
    /// `hata_rate_limited_total{scope}`, by `Surface`.
    rate_limited: [AtomicU64; 3],
    /// `hata_auth_failures_total{reason}`, by `AuthFailure::ALL`.
    auth_failures: [AtomicU64; 6],
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Counts one answer: called by the edge for every request, on both serving paths.
    #[inline]
    pub fn observe(&self, route: RouteId, method: &Method, response: &Response, elapsed: Duration) {
        let status = response.status();
        self.http.record(route, method, status, elapsed);
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.rate_limited[route.surface as usize].fetch_add(1, Ordering::Relaxed);
        } else if status == StatusCode::UNAUTHORIZED {
            let reason = response
                .extensions()
                .get::<AuthFailure>()
                .copied()
                .unwrap_or(AuthFailure::Missing);
            let slot = AuthFailure::ALL
                .iter()
                .position(|r| *r == reason)
                .unwrap_or(0);
            self.auth_failures[slot].fetch_add(1, Ordering::Relaxed);
        }
    }

    fn encode_live(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.http.encode(encoder)?;
        let mut limited = encoder.encode_descriptor(
            "hata_rate_limited",
            "Requests refused with 429, by the surface whose budget or cap refused them",
            None,
            MetricType::Counter,
        )?;
        for (scope, cell) in ["evaluation", "login", "admin"]
            .iter()
            .zip(&self.rate_limited)
        {
            ConstCounter::new(cell.load(Ordering::Relaxed))
                .encode(limited.encode_family(&[("scope", *scope)])?)?;
        }
        let mut failures = encoder.encode_descriptor(
            "hata_auth_failures",
            "Requests refused with 401, by why",
            None,
            MetricType::Counter,
        )?;
        for (reason, cell) in AuthFailure::ALL.iter().zip(&self.auth_failures) {
            ConstCounter::new(cell.load(Ordering::Relaxed))
                .encode(failures.encode_family(&[("reason", reason.label())])?)?;
        }
        ConstGauge::new(1i64).encode(
            encoder
                .encode_descriptor(
                    "hata_build_info",
                    "The running build: always 1, with its version and commit as labels",
                    None,
                    MetricType::Gauge,
                )?
                .encode_family(&[
                    ("version", env!("CARGO_PKG_VERSION")),
                    ("commit", env!("HATA_COMMIT")),
                ])?,
        )?;
        Ok(())
    }
}

/// The whole exposition: what this process recorded and what is read now.
pub fn render(
    metrics: &Arc<Metrics>,
    state: &AppState,
    streams: &crate::routes::sse::StreamSlots,
    config: &MetricsConfig,
    readiness: &crate::routes::health::Readiness,
) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(Scrape {
        metrics: metrics.clone(),
        read: scrape::Reading::take(state, streams, config, readiness),
    }));
    let mut out = String::new();
    // Only `fmt::Write` into a `String`, which does not fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

/// One scrape, owned: `prometheus-client`'s collectors are `'static`.
#[derive(Debug)]
struct Scrape {
    metrics: Arc<Metrics>,
    read: scrape::Reading,
}

impl prometheus_client::collector::Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> std::fmt::Result {
        self.metrics.encode_live(&mut encoder)?;
        self.read.encode(&mut encoder)?;
        process::encode(&mut encoder)
    }
}

/// `GET /metrics` on the main listener.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(serve))
}

async fn serve(
    State(state): State<AppState>,
    Extension(config): Extension<Arc<MetricsConfig>>,
    Extension(eval): Extension<Arc<crate::routes::EvalSettings>>,
    Extension(limits): Extension<Arc<Limits>>,
    headers: HeaderMap,
) -> Response {
    if !config.on_main {
        return AppError::NoRoute("/metrics".into()).into_response();
    }
    scrape_response(&state, &eval, &config, &limits, &headers).await
}

/// `/metrics` on its own listener (`App::metrics_router`).
async fn serve_alone(
    State(state): State<AppState>,
    Extension(config): Extension<Arc<MetricsConfig>>,
    Extension(eval): Extension<Arc<crate::routes::EvalSettings>>,
    Extension(limits): Extension<Arc<Limits>>,
    headers: HeaderMap,
) -> Response {
    scrape_response(&state, &eval, &config, &limits, &headers).await
}

/// A router serving `/metrics` alone, for a listener of its own.
pub(crate) fn alone(
    state: AppState,
    eval: Arc<crate::routes::EvalSettings>,
    config: Arc<MetricsConfig>,
    limits: Arc<Limits>,
) -> Router {
    Router::new()
        .route("/metrics", get(serve_alone))
        .layer(Extension(limits))
        .layer(Extension(eval))
        .layer(Extension(config))
        .with_state(state)
}

async fn scrape_response(
    state: &AppState,
    eval: &crate::routes::EvalSettings,
    config: &MetricsConfig,
    limits: &Limits,
    headers: &HeaderMap,
) -> Response {
    if !token_given(config, headers) {
        let mut refused = AppError::Unauthorized.into_response();
        refused.extensions_mut().insert(AuthFailure::MetricsToken);
        return refused;
    }
    // The same checks as `/health/ready` (a store ping included), so an alert sees what the
    // balancer sees.
    let readiness = crate::routes::health::Readiness::check(state, Some(limits)).await;
    let body = render(&state.metrics, state, &eval.streams, config, &readiness);
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body,
    )
        .into_response()
}

/// With a token configured, whether the request carries it as a bearer token.
fn token_given(config: &MetricsConfig, headers: &HeaderMap) -> bool {
    let Some(expected) = &config.token else {
        return true;
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    hata_access::session::same_secret(given, expected)
}
