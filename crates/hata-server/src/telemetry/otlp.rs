//! The OTLP/HTTP (protobuf) span exporter, configured by the standard OpenTelemetry
//! environment variables, read by the SDK itself:
//!
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` is appended) or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is): either turns exporting on;
//! - `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`, `…_TIMEOUT`; `…_PROTOCOL` may only be
//!   `http/protobuf` (no gRPC is built in);
//! - `OTEL_SERVICE_NAME` (else `hata`), `OTEL_RESOURCE_ATTRIBUTES`;
//! - `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (default `parentbased_always_on`);
//! - `OTEL_BSP_*`: the batch processor's queue and delay;
//! - `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off again.
//!
//! The SDK's batch processor exports from a thread of its own; its HTTP requests are sent by
//! [`ReqwestClient`], the workspace's reqwest (rustls on *ring*, the Mozilla roots), on the
//! tokio runtime that started the exporter.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::trace::SdkTracerProvider;

const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";

/// How long one export may take (the SDK's default `OTEL_EXPORTER_OTLP_TIMEOUT`).
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL / OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: only http/protobuf is supported, got {0:?}")]
    Protocol(String),
    #[error("the OTLP exporter needs a tokio runtime")]
    NoRuntime,
    #[error("the OTLP exporter: {0}")]
    Build(String),
}

fn set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Whether the environment asks for spans to be exported.
pub fn configured() -> bool {
    let disabled = set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
    !disabled && (set(ENDPOINT).is_some() || set(TRACES_ENDPOINT).is_some())
}

/// The tracer provider: a batch processor exporting to the configured endpoint.
pub fn provider() -> Result<SdkTracerProvider, OtlpError> {
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(protocol) = set(name) {
            if protocol != "http/protobuf" {
                return Err(OtlpError::Protocol(protocol));
            }
        }
    }
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| OtlpError::NoRuntime)?;
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| OtlpError::Build(e.to_string()))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(ReqwestClient { client, runtime })
        .build()
        .map_err(|e| OtlpError::Build(e.to_string()))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    let named_elsewhere =
        set("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| a.contains("service.name="));
    if set("OTEL_SERVICE_NAME").is_none() && !named_elsewhere {
        resource = resource.with_service_name("hata");
    }
    let resource = resource
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The exporter's HTTP client: reqwest, each request spawned on the runtime the exporter
/// was made on (the batch processor's thread has none of its own).
#[derive(Debug)]
pub struct ReqwestClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

type Sent<'a> = Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'a>>;

impl HttpClient for ReqwestClient {
    fn send_bytes<'s, 'f>(&'s self, request: Request<Bytes>) -> Sent<'f>
    where
        's: 'f,
        Self: 'f,
    {
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let request = reqwest::Request::try_from(request)?;
            let response = client.execute(request).await?;
            let mut answer = Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                headers.extend(
                    response
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
            }
            let body = response.bytes().await?;
            Ok::<_, HttpError>(answer.body(body)?)
        });
        Box::pin(async move { sent.await? })
    }
}
