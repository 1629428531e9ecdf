//! Logs and traces: the process's `tracing` subscriber, installed once by the binary
//! ([`init`]).
//!
//! - **Logs** go to standard output, as text or as JSON lines ([`json::JsonLines`]: one object
//!   per line with `timestamp`, `level`, `target`, `message`, the event's fields, and the
//!   `request_id` and `trace_id` of the request in flight, from `dispatch::scope`). `RUST_LOG`
//!   picks what is logged. The access log is one of these lines per request
//!   (`dispatch::access_log`, target `hata::access`).
//! - **Traces** are exported over OTLP/HTTP (protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set ([`otlp`]); otherwise there is no OpenTelemetry
//!   layer at all, and the edge's only cost is one branch on [`traces_on`]. Exported: hata's own
//!   spans (every request's server span, made by the edge, and the store's spans, children of
//!   the request that made them) and hata's warnings and errors as span events, whatever
//!   `RUST_LOG` says: the exporter has its own filter, so the hot paths' DEBUG request spans are
//!   exported without logging them.
//!
//! Not here: what the spans and lines hold (the edge, `hata-store`), metrics (`metrics`).

pub mod json;
pub mod otlp;

use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

static TRACES: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (set once by [`init`]).
#[inline]
pub fn traces_on() -> bool {
    TRACES.load(Ordering::Relaxed)
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    /// One JSON object per line ([`json::JsonLines`]).
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("{0}")]
    Otlp(#[from] otlp::OtlpError),
    #[error("a logger is already installed: {0}")]
    Installed(String),
}

/// What [`init`] started; [`Telemetry::shutdown`] sends the spans still queued.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

/// Installs the process's subscriber: logs in `format` filtered by `RUST_LOG` (else
/// `default_filter`), and the OTLP exporter when the environment configures one.
pub fn init(format: LogFormat, default_filter: &str) -> Result<Telemetry, TelemetryError> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| default_filter.into());
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .event_format(json::JsonLines)
            .boxed(),
    }
    .with_filter(filter);
    let provider = otlp::configured().then(otlp::provider).transpose()?;
    let traces = provider.as_ref().map(|provider| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("hata"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(tracing_subscriber::filter::filter_fn(exported))
    });
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .map_err(|e| TelemetryError::Installed(e.to_string()))?;
    TRACES.store(provider.is_some(), Ordering::Relaxed);
    Ok(Telemetry { provider })
}

/// What the exporter gets: hata's spans, and its warnings and errors (as span events).
fn exported(meta: &tracing::Metadata<'_>) -> bool {
    meta.target().starts_with("hata") && (meta.is_span() || *meta.level() <= tracing::Level::WARN)
}

impl Telemetry {
    /// Whether spans are exported.
    pub fn traces(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans still queued and stops the exporter (at shutdown). The SDK's
    /// shutdown blocks until the export is done, on a thread of its own whose HTTP requests
    /// run on this runtime: it waits on the blocking pool, not on a runtime worker.
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the last spans could not be exported"),
            Err(e) => tracing::warn!(error = %e, "the last spans could not be exported"),
        }
    }
}

/// The parent of a request's span: the W3C `traceparent` (and `tracestate`) it carries, or
/// none (an empty context: the span starts a trace).
pub fn parent_context(headers: &axum::http::HeaderMap) -> opentelemetry::Context {
    use opentelemetry::propagation::TextMapPropagator as _;
    opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .extract(&opentelemetry_http::HeaderExtractor(headers))
}
