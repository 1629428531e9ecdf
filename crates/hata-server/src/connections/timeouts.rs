//! The header and idle timeouts of one HTTP/1 connection.
//!
//! hyper has one timer for a connection waiting for a request: its header read timeout, which
//! starts as soon as the connection waits for the next request, so it also bounds how long a
//! kept-alive connection may sit idle. Those two want different values: a header should arrive
//! within seconds (a slow one is an attack), while an idle connection behind a load balancer
//! must outlive the balancer's own idle timeout (60 s on the common ones), or the balancer
//! sends a request into a closing connection and answers 502.
//!
//! So the connection's IO ([`Watched`]) counts the reads that brought bytes, and the timer
//! hyper uses for its header timeout ([`HeadTimer`]) makes sleeps that last `idle` while
//! nothing of the next request has arrived, and `header` from its first byte on.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the timer needs to know of the connection's reads.
#[derive(Default)]
pub struct Reads {
    /// Reads that brought bytes.
    reads: AtomicU64,
    /// Sleeps started: the first one is for the connection's first request, whose first byte
    /// has already arrived (`serve` waits for it before handing the connection to hyper; over
    /// TLS the handshake has, and the request follows it at once).
    sleeps: AtomicU64,
}

impl Reads {
    fn count(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
}

/// A connection's IO, counting the reads that brought bytes.
pub struct Watched<T> {
    inner: T,
    reads: Arc<Reads>,
}

impl<T> Watched<T> {
    pub fn new(inner: T, reads: Arc<Reads>) -> Watched<T> {
        Watched { inner, reads }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.reads.reads.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The timer of one connection's header timeout (see the module doc). hyper's HTTP/1 server
/// uses its timer for nothing else.
#[derive(Clone)]
pub struct HeadTimer {
    pub reads: Arc<Reads>,
    pub header: Duration,
    pub idle: Duration,
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, _: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.start()
    }

    fn sleep_until(&self, _: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.start()
    }
}

impl HeadTimer {
    /// A sleep that starts now, while the connection waits for a request.
    fn start(&self) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let now = tokio::time::Instant::now();
        let first_request = self.reads.sleeps.fetch_add(1, Ordering::Relaxed) == 0;
        let wait = if first_request {
            self.header
        } else {
            self.idle
        };
        Box::pin(HeadSleep {
            reads: self.reads.clone(),
            reads_at_start: self.reads.count(),
            header: self.header,
            header_started: first_request,
            sleep: Box::pin(tokio::time::sleep_until(now + wait)),
        })
    }
}

struct HeadSleep {
    reads: Arc<Reads>,
    reads_at_start: u64,
    header: Duration,
    /// Whether a byte of the request arrived (and the deadline moved to `header` from then).
    header_started: bool,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // hyper polls this right after each read that left the header incomplete, so the
        // first poll after a byte arrived is the moment the header started.
        if !self.header_started && self.reads.count() != self.reads_at_start {
            self.header_started = true;
            let deadline = tokio::time::Instant::now() + self.header;
            self.sleep.as_mut().reset(deadline);
        }
        self.sleep.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for HeadSleep {}
