//! Where every request enters: the [`edge`] concerns around one of two ways of serving it.
//!
//! - **The fast path.** A single-flag OFREP evaluation (`POST /ofrep/v1/evaluate/flags/{key}`
//!   with a plain key) is the hottest request there is. It goes straight to
//!   `routes::ofrep::single_request`: no routing table, no extractors, no per-route layers.
//! - **The router**, for everything else (an escaped key included: the router decodes it and
//!   calls the same evaluation).
//!
//! Both get the same request id, body limit, CORS, security headers, span, access log line and
//! metrics hook, because [`edge::Edge::serve`] wraps both: nothing of a layer's behaviour is
//! copied into the fast path. A test sends one request set both ways and compares the answers
//! and their access log lines.

pub mod access_log;
pub mod cors;
pub mod edge;
pub mod scope;

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use bytes::Bytes;
use futures::future::BoxFuture;

use crate::connections::tls::Tls;
use crate::routes::ofrep::{self, SINGLE_PREFIX};
use crate::routes::EvalSettings;
use crate::AppState;

/// The whole application as one service: `router` builds it, `into_make_service` hands it to
/// `axum::serve`.
#[derive(Clone)]
pub struct App(Arc<Inner>);

struct Inner {
    edge: edge::Edge,
    state: AppState,
    eval: Arc<EvalSettings>,
    /// Every route, with the per-route layers (auth) inside.
    routes: Routes,
    /// The certificate `connections::serve` serves this app with; `None`: plain HTTP. Kept
    /// here, with the edge's HSTS and the scheme requests see, so that the three never
    /// disagree.
    tls: Option<Arc<Tls>>,
}

/// The router with the layers only it needs (see `router`).
pub(crate) type Routes = tower::util::BoxCloneSyncService<Request, Response, Infallible>;

impl App {
    pub(crate) fn new(
        edge: edge::Edge,
        state: AppState,
        eval: Arc<EvalSettings>,
        routes: Routes,
        tls: Option<Arc<Tls>>,
    ) -> App {
        App(Arc::new(Inner {
            edge,
            state,
            eval,
            routes,
            tls,
        }))
    }

    /// The certificate to serve over; `None`: plain HTTP.
    pub(crate) fn tls(&self) -> Option<&Arc<Tls>> {
        self.0.tls.as_ref()
    }

    /// `GET /metrics` alone, for a listener of its own (`hata serve --metrics-listen`). Its
    /// requests are not counted in the request families: they are not the service's.
    pub fn metrics_router(
        &self,
        config: crate::metrics::MetricsConfig,
        limits: Arc<crate::limits::Limits>,
    ) -> axum::Router {
        crate::metrics::alone(
            self.0.state.clone(),
            self.0.eval.clone(),
            Arc::new(config),
            limits,
        )
    }

    /// For `axum::serve`: every connection is served by a clone of this `App`.
    pub fn into_make_service(self) -> axum::routing::IntoMakeService<App> {
        axum::ServiceExt::<Request>::into_make_service(self)
    }

    async fn serve<B>(self, req: axum::http::Request<B>) -> Response
    where
        B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let inner = &self.0;
        inner
            .edge
            .serve(req, |req| async move {
                if is_single_flag(&req) {
                    ofrep::single_request(&inner.state, &inner.eval, req).await
                } else {
                    use tower::ServiceExt as _;
                    // The router's error type is `Infallible`.
                    let req = req.map(axum::body::Body::new);
                    match inner.routes.clone().oneshot(req).await {
                        Ok(response) => response,
                        Err(never) => match never {},
                    }
                }
            })
            .await
    }
}

/// Whether the fast path serves this request: a POST to `SINGLE_PREFIX` + one segment
/// without percent-escapes (keys never need them; an escaped one goes through the router,
/// which decodes it).
fn is_single_flag<B>(req: &axum::http::Request<B>) -> bool {
    req.method() == Method::POST
        && req
            .uri()
            .path()
            .strip_prefix(SINGLE_PREFIX)
            .is_some_and(|key| !key.is_empty() && !key.contains(['/', '%']))
}

impl<B> tower::Service<axum::http::Request<B>> for App
where
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let app = self.clone();
        Box::pin(async move { Ok(app.serve(req).await) })
    }
}
