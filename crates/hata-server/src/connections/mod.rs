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
//! - With TLS (`tls`), each connection's handshake runs in the connection's own task, never in
//!   the accept loop (a slow handshake must not hold up accepting the next connection), under
//!   the same cap, and must finish within `header_timeout` of its first byte. A connection
//!   that fails it is closed without a word (logged at DEBUG: scanners and plain HTTP on the
//!   TLS port are routine). A plain listener runs none of this code beyond one branch.

mod timeouts;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
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
/// to `grace` for open connections to finish their requests. Over TLS when the app was built
/// with a certificate (`ServerConfig::tls`), whose files are then watched for a new one.
pub async fn serve(
    listener: TcpListener,
    app: App,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let acceptor = app.tls().map(|tls| tls.acceptor());
    let _reloader = app.tls().map(|tls| tls.spawn_reloader(tls::RELOAD_POLL));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // Tells connections that have not sent their first byte yet to give up at shutdown: they
    // have no request in flight, and the graceful shutdown would otherwise wait for them.
    let (stopping, stop_seen) = tokio::sync::watch::channel(false);
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
        let acceptor = acceptor.clone();
        let mut stop_seen = stop_seen.clone();
        tokio::spawn(async move {
            // hyper first reads to tell HTTP/1 from HTTP/2, with no timeout of its own: a
            // connection that sends nothing gets the idle timeout to send its first byte (a
            // TLS client's first byte is its ClientHello's), or until shutdown.
            let mut first = [0u8; 1];
            tokio::select! {
                peeked = tokio::time::timeout(limits.idle_timeout, stream.peek(&mut first)) => {
                    match peeked {
                        Ok(Ok(n)) if n > 0 => {}
                        _ => return,
                    }
                }
                _ = stop_seen.wait_for(|stop| *stop) => return,
            }
            let connection = Connection {
                app,
                peer,
                limits,
                watcher,
            };
            match acceptor {
                None => connection.serve(stream).await,
                Some(acceptor) => {
                    let handshake = acceptor.accept(stream);
                    match tokio::time::timeout(limits.header_timeout, handshake).await {
                        Ok(Ok(stream)) => connection.serve(stream).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    stopping.send_replace(true);
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

/// One accepted connection, ready to be served over a byte stream: the TCP stream itself, or
/// the TLS stream on top of it.
struct Connection {
    app: App,
    peer: SocketAddr,
    limits: ConnectionLimits,
    watcher: hyper_util::server::graceful::Watcher,
}

impl Connection {
    async fn serve<I>(self, io: I)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            app,
            peer,
            limits,
            watcher,
        } = self;
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
        let io = TokioIo::new(Watched::new(io, reads));
        let service = TowerToHyperService::new(WithPeer { app, peer });
        let connection = builder.serve_connection_with_upgrades(io, service);
        if let Err(e) = watcher.watch(connection.into_owned()).await {
            tracing::debug!(error = %e, "connection ended with an error");
        }
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
