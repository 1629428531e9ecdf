//! hata's HTTP surface (axum): the admin API, OFREP, the SDK rule set and its stream, health
//! and the OpenAPI document. Evaluations are served from `serving`'s in-memory rule sets.
//!
//! Handlers are thin (parse → call the store or the engine → map); cross-cutting concerns
//! (auth, request ids, body limits, tracing) are layers applied once in `router`.

pub mod auth;
pub mod bootstrap;
pub mod error;
pub mod extract;
pub mod openapi;
pub mod routes;
pub mod serving;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Method, Uri};
use axum::Router;
use error::AppError;
use hata_store::{ChangeNotice, Store};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The largest request body accepted (413 above).
    pub body_limit: usize,
    /// The URL clients reach this server at (e.g. `https://flags.example.com`), used in the
    /// OFREP `eventStreams` URL. Without it the request's `Host` is used.
    pub public_url: Option<String>,
    /// Evaluation requests per second allowed per token (OFREP); 0 = unlimited.
    pub eval_rate_limit: u32,
    /// How often idle event streams get a heart-beat comment.
    pub heartbeat: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit: 1 << 20,
            public_url: None,
            eval_rate_limit: 0,
            heartbeat: Duration::from_secs(15),
        }
    }
}

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub tokens: Arc<auth::TokenCache>,
    pub serving: Arc<serving::Serving>,
    pub tickets: Arc<serving::ticket::Signer>,
}

impl AppState {
    /// Loads what the server keeps in memory (tokens, every environment's rule set) and starts
    /// following store changes and flushing evaluation counts.
    pub async fn start(store: Store) -> hata_store::StoreResult<AppState> {
        let tokens = Arc::new(auth::TokenCache::default());
        tokens.reload(&store).await?;
        let key = {
            use rand::Rng;
            let fresh: [u8; 32] = rand::thread_rng().gen();
            store
                .meta_init(serving::ticket::KEY_META, &hex::encode(fresh))
                .await?
        };
        let serving = serving::Serving::start(store.clone()).await?;
        store.spawn_listener();
        let state = AppState {
            store,
            tokens,
            serving: serving.clone(),
            tickets: Arc::new(serving::ticket::Signer::new(key.as_bytes())),
        };
        tokio::spawn(follow_changes(state.clone()));
        tokio::spawn(serving::follow_changes(serving.clone()));
        tokio::spawn(serving::counts::run_flusher(serving));
        Ok(state)
    }

    /// The one way handlers change data: `Store::write`, then — before the response goes out —
    /// the rule sets of the environments it touched are reloaded, so the caller's next
    /// evaluation on this server sees its own write.
    pub async fn write(
        &self,
        meta: &hata_store::WriteMeta,
        op: hata_store::WriteOp,
    ) -> Result<hata_store::WriteOutcome, error::AppError> {
        let outcome = self.store.write(meta, op).await?;
        if let Err(e) = self.serving.refresh_after(&outcome.rule_sets).await {
            // Committed is committed: the change notice and the repair check retry the load.
            tracing::warn!(error = %e, "reloading rule sets after a write failed");
        }
        Ok(outcome)
    }

    /// Graceful shutdown, step 1 (when the signal arrives): end open event streams, so the
    /// HTTP server can finish.
    pub fn begin_shutdown(&self) {
        self.serving.begin_shutdown();
    }

    /// Graceful shutdown, step 2 (after the HTTP server finished): store the evaluation counts
    /// not yet flushed.
    pub async fn finish_shutdown(&self) {
        self.serving.begin_shutdown();
        serving::counts::flush_now(&self.serving).await;
    }
}

/// How soon a failed token cache reload is tried again.
const TOKEN_RELOAD_RETRY: Duration = Duration::from_secs(5);

/// Keeps the token cache in step with the store (changes made by this or another process).
///
/// A failed reload keeps the previous cache (callers keep being authenticated while the
/// database is down) and is retried every `TOKEN_RELOAD_RETRY` until it succeeds: otherwise a
/// token change that arrived during a database hiccup would stay unseen until the next one.
async fn follow_changes(state: AppState) {
    use tokio::sync::broadcast::error::RecvError;
    let mut notices = state.store.subscribe();
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let retry = async {
            match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let reload = tokio::select! {
            notice = notices.recv() => match notice {
                Ok(ChangeNotice::Tokens | ChangeNotice::Resync) | Err(RecvError::Lagged(_)) => true,
                Ok(_) => false,
                Err(RecvError::Closed) => return,
            },
            _ = retry => true,
        };
        if !reload {
            continue;
        }
        match state.tokens.reload(&state.store).await {
            Ok(()) => retry_at = None,
            Err(e) => {
                if retry_at.is_none() {
                    tracing::warn!(error = %e,
                        "token cache reload failed; serving the previous tokens and retrying");
                }
                retry_at = Some(tokio::time::Instant::now() + TOKEN_RELOAD_RETRY);
            }
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application: the router inside the cross-cutting layers, ready for
/// `axum::serve`.
///
/// The layers wrap the router as one service instead of going through `Router::layer`, which
/// wraps every route in its own boxed copy of each layer; that made every request clone and
/// box six layers before reaching its handler (a third of the instructions of a request).
pub fn router(state: AppState, config: &ServerConfig) -> App {
    let admin = routes::admin_router().layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_admin,
    ));
    let eval = Arc::new(routes::EvalSettings::new(config));
    let api = admin.merge(routes::sdk::router());
    let routes = Router::new()
        .nest("/api/v1", api)
        .merge(routes::ofrep::router())
        .merge(routes::health::router())
        .merge(openapi::router())
        // Both after every route: the 405 fallback is set on the routes that exist.
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone());
    let ids = RequestIds::new();
    let layered = tower::ServiceBuilder::new()
        .map_response(|res: axum::http::Response<_>| res.map(axum::body::Body::new))
        .layer(SetRequestIdLayer::new(REQUEST_ID, ids.clone()))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(axum::Extension(eval.clone()))
        .service(routes);
    let layered = Layered::new(layered);
    App {
        dispatch: Dispatch {
            state,
            eval,
            ids,
            body_limit: config.body_limit,
            layered,
        },
    }
}

/// What `router` returns: `axum::serve` asks it for one [`Connection`] per accepted
/// connection.
#[derive(Clone)]
pub struct App {
    dispatch: Dispatch,
}

/// Every request but single-flag evaluations: the router inside its layers.
type Layered = tower::util::BoxCloneSyncService<
    axum::extract::Request,
    axum::response::Response,
    std::convert::Infallible,
>;

/// Everything a request is served with.
#[derive(Clone)]
struct Dispatch {
    state: AppState,
    eval: Arc<routes::EvalSettings>,
    ids: RequestIds,
    body_limit: usize,
    layered: Layered,
}

impl<T> tower::Service<T> for App {
    type Response = Connection;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Connection, std::convert::Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _connection: T) -> Self::Future {
        std::future::ready(Ok(Connection(Arc::new(self.dispatch.clone()))))
    }
}

/// The service of one connection. The server clones it for every request (hyper-util's
/// `TowerToHyperService`), so it is a single `Arc` of its own, made per connection: a
/// request's clone then counts on a cache line that only its connection touches. A clone of
/// the shared state per request wrote to reference counts every connection shares, and both
/// cores kept taking those lines from each other.
#[derive(Clone)]
pub struct Connection(Arc<Dispatch>);

impl tower::Service<axum::extract::Request> for Connection {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = futures::future::Either<
        futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>,
        tower::util::Oneshot<Layered, axum::extract::Request>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: axum::extract::Request) -> Self::Future {
        use futures::future::Either;
        use tower::ServiceExt as _;
        if routes::ofrep::single_request_key(&req).is_some() {
            Either::Left(Box::pin(single(Arc::clone(&self.0), req)))
        } else {
            Either::Right(self.0.layered.clone().oneshot(req))
        }
    }
}

/// Single-flag OFREP evaluations are the hottest path: they skip the router, the trace layer
/// (their span is DEBUG: at the default level it records nothing) and the tower layers, and
/// do by hand what those layers do to the answer: request id, body limit, CORS headers. A
/// test compares both paths' answers header by header.
async fn single(
    dispatch: Arc<Dispatch>,
    req: axum::extract::Request,
) -> Result<axum::response::Response, std::convert::Infallible> {
    let id = match req.headers().get(&REQUEST_ID) {
        Some(id) => Some(id.clone()),
        None => dispatch.ids.next(),
    };
    // CORS headers matter to browsers only, and browsers always send `Origin`; server SDKs
    // are spared 75 bytes per answer.
    let cross_origin = req.headers().contains_key(axum::http::header::ORIGIN);
    let mut response =
        routes::ofrep::single_request(&dispatch.state, &dispatch.eval, dispatch.body_limit, req)
            .await;
    let headers = response.headers_mut();
    if cross_origin {
        routes::ofrep::cors_headers(headers);
    }
    if let Some(id) = id {
        headers.entry(REQUEST_ID).or_insert(id);
    }
    Ok(response)
}

/// The tracing span of a request. Evaluations and probes are the hot paths and log nothing
/// on success: their span is DEBUG, so at the default INFO level it costs nothing.
fn request_span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
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

/// Request ids: a random per-process prefix and a counter (`3f9a…c2-000000000000002a`).
/// Unique across replicas and restarts like a UUID, but without a `getrandom` system call
/// per request.
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<str>,
}

/// The counter of every `RequestIds`. Threads take blocks of `ID_BLOCK` numbers from it and
/// count within their block, so a request does not write to a cache line that the other
/// cores' requests write to as well. Ids are unique, but only roughly in order.
static NEXT_ID_BLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
const ID_BLOCK: u64 = 1024;

thread_local! {
    /// This thread's next id and the end of its block.
    static ID_RANGE: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

impl RequestIds {
    fn new() -> RequestIds {
        use rand::Rng;
        let prefix: [u8; 8] = rand::thread_rng().gen();
        RequestIds {
            prefix: hex::encode(prefix).into(),
        }
    }

    /// The next id, as a header value.
    fn next(&self) -> Option<axum::http::HeaderValue> {
        let n = ID_RANGE.with(|range| {
            let (mut next, mut end) = range.get();
            if next == end {
                next = NEXT_ID_BLOCK.fetch_add(ID_BLOCK, std::sync::atomic::Ordering::Relaxed);
                end = next + ID_BLOCK;
            }
            range.set((next + 1, end));
            next
        });
        // Hex by hand: `format!` was a tenth of a health probe's instructions.
        let mut id = [0u8; 16 + 1 + 16];
        id[..16].copy_from_slice(self.prefix.as_bytes());
        id[16] = b'-';
        for (i, b) in n.to_be_bytes().into_iter().enumerate() {
            id[17 + 2 * i] = hex_digit(b >> 4);
            id[18 + 2 * i] = hex_digit(b);
        }
        axum::http::HeaderValue::from_bytes(&id).ok()
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        self.next().map(RequestId::new)
    }
}

fn hex_digit(nibble: u8) -> u8 {
    b"0123456789abcdef"[usize::from(nibble & 15)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique_across_threads_and_blocks() {
        let ids = RequestIds::new();
        // Each thread runs through several blocks of its own.
        let per_thread = 3 * ID_BLOCK as usize + 7;
        let all: Vec<axum::http::HeaderValue> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        (0..per_thread)
                            .map(|_| ids.next().expect("an id"))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().expect("thread"))
                .collect()
        });
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), 4 * per_thread);
        let id = all[0].to_str().expect("ASCII");
        assert_eq!(id.len(), 33, "{id}");
        assert_eq!(&id[16..17], "-", "{id}");
        assert!(id[..16] == *ids.prefix && id[17..].bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
