//! Accepting connections: how many may be open at once, how long a client may take to send
//! a request, and the graceful end. `axum::serve` has none of these limits: a connection that
//! sends half a header, or nothing, stayed open for good, and enough of them exhausted the
//! process's file descriptors.
//!
//! - At most `max_connections` are open; beyond that, new ones wait in the kernel's accept
//!   queue until one closes.
//! - A request's header must arrive within `header_timeout` of its first byte, and a
//!   kept-alive connection may wait `idle_timeout` for its next request (see `timeouts`).
//! - A request body that stops arriving for `body_timeout` is answered 408 (`dispatch::edge`).

mod timeouts;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::dispatch::App;
use timeouts::{HeadTimer, Reads, Watched};

/// Limits on connections; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
        }
    }
}

/// How long a failed `accept` (e.g. out of file descriptors) waits before the next one.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and waits up
/// to `grace` for open connections to finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: App,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &slots) => accepted,
        };
        let Some((stream, peer, slot)) = accepted else {
            continue;
        };
        // No Nagle delay: every response is written whole, and a client waiting for a small
        // evaluation answer should not wait for an ACK first.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let app = app.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // hyper first reads to tell HTTP/1 from HTTP/2, with no timeout of its own: a
            // connection that sends nothing gets the idle timeout to send its first byte.
            let mut first = [0u8; 1];
            match tokio::time::timeout(limits.idle_timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let reads = Arc::new(Reads::default());
            let mut builder = auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(HeadTimer {
                    reads: reads.clone(),
                    header: limits.header_timeout,
                    idle: limits.idle_timeout,
                })
                .header_read_timeout(limits.header_timeout);
            let io = TokioIo::new(Watched::new(stream, reads));
            let service = TowerToHyperService::new(WithPeer { app, peer });
            let connection = builder.serve_connection_with_upgrades(io, service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_secs = grace.as_secs(),
            "connections still open after the grace period; closing them"
        );
    }
}

/// The next connection and its peer's address, once a slot is free; `None` after a failed
/// accept.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(
    tokio::net::TcpStream,
    SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
)> {
    // The semaphore is never closed.
    let slot = slots.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, peer)) => Some((stream, peer, slot)),
        Err(e) => {
            tracing::warn!(error = %e, "accept failed; retrying");
            tokio::time::sleep(ACCEPT_RETRY).await;
            None
        }
    }
}

/// The app for one connection: every request carries the peer's address
/// (`axum::extract::ConnectInfo`, read by `forwarded::Origin`).
#[derive(Clone)]
struct WithPeer {
    app: App,
    peer: SocketAddr,
}

impl<B> tower::Service<axum::http::Request<B>> for WithPeer
where
    App: tower::Service<axum::http::Request<B>>,
{
    type Response = <App as tower::Service<axum::http::Request<B>>>::Response;
    type Error = <App as tower::Service<axum::http::Request<B>>>::Error;
    type Future = <App as tower::Service<axum::http::Request<B>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.app.poll_ready(cx)
    }

    fn call(&mut self, mut req: axum::http::Request<B>) -> Self::Future {
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        self.app.call(req)
    }
}
