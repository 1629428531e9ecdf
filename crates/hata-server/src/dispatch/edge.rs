//! What every answer gets, whichever way its request was served: the request id, the body
//! limit, CORS (under `/ofrep/`), the security headers (and HSTS when served over TLS), the
//! request's tracing span with a log line for server errors, the request's `scope` (id, trace
//! id, principal: what its log lines carry), the access log line (`access_log`), the request
//! metrics (`metrics::Metrics::observe`: count and duration by method, route template and
//! status) and, when traces are exported (`telemetry`), the span's parent from `traceparent`
//! and its OpenTelemetry HTTP server attributes. Written once here and wrapped around both the
//! router and the single-flag fast path (see `dispatch`).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;
use http_body_util::Limited;
use tower_http::timeout::TimeoutBody;
use tracing::Instrument;

use super::access_log::{AccessLog, AccessLogConfig, Answer, Seen};
use super::cors;
use super::scope::RequestScope;
use crate::error::AppError;
use crate::forwarded::TrustedProxies;
use crate::metrics::{Metrics, RouteId};
use crate::request_id::{RequestIds, REQUEST_ID};
use crate::telemetry;

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
    /// `None`: no access log.
    access_log: Option<AccessLog>,
    /// For the client address of the access log and the trace span.
    trusted: TrustedProxies,
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
        access_log: AccessLogConfig,
        trusted: TrustedProxies,
    ) -> Edge {
        Edge {
            ids: RequestIds::default(),
            body_limit,
            body_timeout,
            hsts,
            metrics,
            access_log: AccessLog::new(access_log),
            trusted,
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
        let method = req.method().clone();
        let route = self.metrics.http.route(req.uri().path());
        let span = request_span(&req, &id);
        // One branch when traces are off; everything else here only when they are on.
        let traced = telemetry::traces_on();
        let seen = (self.access_log.is_some() || traced).then(|| Seen::of(&req, &self.trusted));
        let trace_id = if traced {
            start_trace(
                &span,
                &req,
                self.metrics.http.template(route),
                seen.as_ref(),
            )
        } else {
            None
        };
        let scope = RequestScope::new(id.clone(), trace_id);
        let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
        let (mut response, scope) = if uri_len > MAX_URI_BYTES {
            let answer =
                axum::response::IntoResponse::into_response(AppError::UriTooLong(MAX_URI_BYTES));
            (answer, scope)
        } else if cross_origin && cors::is_preflight(&req) {
            (cors::preflight(), scope)
        } else {
            let req = req.map(|body| {
                Limited::new(TimeoutBody::new(self.body_timeout, body), self.body_limit)
            });
            scope.run(inner(req).instrument(span.clone())).await
        };
        finish(response.headers_mut(), id, cross_origin, self.hsts);
        let elapsed = started.elapsed();
        self.metrics.observe(route, &method, &response, elapsed);
        let status = response.status();
        if traced {
            end_trace(&span, status);
        }
        if let (Some(log), Some(seen)) = (&self.access_log, &seen) {
            if log.wanted(route, status) {
                log.write(seen, &self.answer(&method, route, status, elapsed), &scope);
            }
        }
        scope.sync(|| observe(&span, &method, status, elapsed));
        response
    }

    fn answer<'a>(
        &self,
        method: &'a Method,
        route: RouteId,
        status: StatusCode,
        elapsed: Duration,
    ) -> Answer<'a> {
        Answer {
            method,
            route: self.metrics.http.template(route),
            surface: route.surface,
            status,
            elapsed,
        }
    }
}

/// Makes `span` the OpenTelemetry server span of the request: its parent from the W3C
/// `traceparent` (when the request has one), its name (`METHOD route`) and HTTP attributes
/// (OpenTelemetry's semantic conventions). Returns its trace id.
fn start_trace<B>(
    span: &tracing::Span,
    req: &Request<B>,
    template: &'static str,
    seen: Option<&Seen>,
) -> Option<opentelemetry::trace::TraceId> {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let _ = span.set_parent(telemetry::parent_context(req.headers()));
    let method = req.method().as_str();
    let name = if template == crate::metrics::http::UNMATCHED {
        method.to_string()
    } else {
        format!("{method} {template}")
    };
    span.record("otel.name", name);
    span.record("otel.kind", "server");
    span.set_attribute("http.request.method", method.to_string());
    if template != crate::metrics::http::UNMATCHED {
        span.set_attribute("http.route", template);
    }
    span.set_attribute("url.path", req.uri().path().to_string());
    if let Some(seen) = seen {
        if let Some(ip) = seen.client_ip {
            span.set_attribute("client.address", ip.to_string());
        }
        if seen.user_agent.is_some() {
            span.set_attribute("user_agent.original", seen.user_agent().to_string());
        }
    }
    let context = span.context();
    let trace_id = context.span().span_context().trace_id();
    (trace_id != opentelemetry::trace::TraceId::INVALID).then_some(trace_id)
}

/// The answer's status on the request's span; a 5xx marks it failed (a 4xx is the client's
/// doing, which the conventions leave unset on a server span).
fn end_trace(span: &tracing::Span, status: StatusCode) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.set_status(opentelemetry::trace::Status::error(
            status.as_str().to_string(),
        ));
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
        tracing::debug_span!("request", method = %req.method(), path = %path, request_id = %id,
            otel.name = tracing::field::Empty, otel.kind = tracing::field::Empty)
    } else {
        tracing::info_span!("request", method = %req.method(), path = %path, request_id = %id,
            otel.name = tracing::field::Empty, otel.kind = tracing::field::Empty)
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
