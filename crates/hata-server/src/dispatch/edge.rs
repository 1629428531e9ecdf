//! What every answer gets, whichever way its request was served: the request id, the body
//! limit, CORS (under `/ofrep/`), the security headers (and HSTS when served over TLS), the
//! request's tracing span with a log line for server errors, and the request metrics
//! (`metrics::Metrics::observe`: count and duration by method, route template and status).
//! Written once here and wrapped around both the router and the single-flag fast path (see
//! `dispatch`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use http_body_util::Limited;
use tower_http::timeout::TimeoutBody;
use tracing::Instrument;

use super::cors;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::request_id::{RequestIds, REQUEST_ID};

/// The longest request target (path and query) served. No path or query of hata's comes
/// near it; longer ones get a problem+json 414 here rather than reaching a handler. (hyper
/// itself answers a bare 414 above 64 KiB, before any of this code runs.)
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// Security headers on every answer (a handler that sets one itself keeps its own value).
/// Answers are JSON or event streams, never pages to frame or sniff; and no URL of hata's,
/// some of which carry stream tickets, should leak through `Referer`.
const SECURITY_HEADERS: [(header::HeaderName, HeaderValue); 3] = [
    (
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    ),
    (
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    ),
    (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
];

/// HSTS, on every answer over TLS: browsers then never try this host over plain HTTP for a
/// year. Without `includeSubDomains`, which would bind every other service under the domain.
const HSTS: HeaderValue = HeaderValue::from_static("max-age=31536000");

/// The cross-cutting concerns, configured once per server.
pub struct Edge {
    ids: RequestIds,
    body_limit: usize,
    body_timeout: Duration,
    /// Whether answers carry `Strict-Transport-Security` (served over TLS).
    hsts: bool,
    metrics: Arc<Metrics>,
}

/// A request body as handlers get it: at most `body_limit` bytes, each part within
/// `body_timeout` of the one before.
pub type Body<B> = Limited<TimeoutBody<B>>;

impl Edge {
    pub fn new(
        body_limit: usize,
        body_timeout: Duration,
        hsts: bool,
        metrics: Arc<Metrics>,
    ) -> Edge {
        Edge {
            ids: RequestIds::default(),
            body_limit,
            body_timeout,
            hsts,
            metrics,
        }
    }

    /// Serves `req` with `inner`, applying every concern around it. The body reaches `inner`
    /// limited in size and time: reading past the limit fails with
    /// `http_body_util::LengthLimitError`, a stalled body with `tower_http`'s `TimeoutError`
    /// (`AppError::from_body_error` maps them to 413 and 408).
    pub async fn serve<B, F, Fut>(&self, mut req: Request<B>, inner: F) -> Response
    where
        F: FnOnce(Request<Body<B>>) -> Fut,
        Fut: Future<Output = Response>,
    {
        let started = Instant::now();
        let id = self.ids.ensure(req.headers_mut());
        let cross_origin = cors::applies(req.uri().path());
        let span = request_span(&req, &id);
        let method = req.method().clone();
        let route = self.metrics.http.route(req.uri().path());
        let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
        let mut response = if uri_len > MAX_URI_BYTES {
            axum::response::IntoResponse::into_response(AppError::UriTooLong(MAX_URI_BYTES))
        } else if cross_origin && cors::is_preflight(&req) {
            cors::preflight()
        } else {
            let req = req.map(|body| {
                Limited::new(TimeoutBody::new(self.body_timeout, body), self.body_limit)
            });
            inner(req).instrument(span.clone()).await
        };
        finish(response.headers_mut(), id, cross_origin, self.hsts);
        let elapsed = started.elapsed();
        self.metrics.observe(route, &method, &response, elapsed);
        observe(&span, &method, response.status(), elapsed);
        response
    }
}

/// The headers added to every answer.
fn finish(headers: &mut HeaderMap, id: HeaderValue, cross_origin: bool, hsts: bool) {
    headers.entry(REQUEST_ID).or_insert(id);
    if cross_origin {
        cors::add(headers);
    }
    for (name, value) in SECURITY_HEADERS {
        headers.entry(name).or_insert(value);
    }
    if hsts {
        headers
            .entry(header::STRICT_TRANSPORT_SECURITY)
            .or_insert(HSTS);
    }
}

/// The tracing span of a request. Evaluations and probes are the hot paths and log nothing
/// on success: their span is DEBUG, so at the default INFO level it costs nothing.
fn request_span<B>(req: &Request<B>, id: &HeaderValue) -> tracing::Span {
    let id = id.to_str().unwrap_or("");
    let path = req.uri().path();
    if path.starts_with("/ofrep/")
        || path.starts_with("/api/v1/sdk/")
        || path.starts_with("/health/")
    {
        tracing::debug_span!("request", method = %req.method(), path = %path, request_id = %id)
    } else {
        tracing::info_span!("request", method = %req.method(), path = %path, request_id = %id)
    }
}

/// Called once per answer, on both paths: server errors are logged here.
fn observe(span: &tracing::Span, method: &Method, status: StatusCode, elapsed: Duration) {
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if status.is_server_error() {
        tracing::error!(parent: span, %method, status = status.as_u16(), latency_ms, "request failed");
    } else {
        tracing::debug!(parent: span, %method, status = status.as_u16(), latency_ms, "request finished");
    }
}
