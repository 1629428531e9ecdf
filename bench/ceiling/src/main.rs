//! The ceiling of hata's serving benchmark: what a bare hyper 1.x server (tokio multi-thread,
//! HTTP/1.1 keep-alive) does on this machine. It reads the whole request body and answers a
//! fixed 100-byte JSON body, so the measured rate is the cost of HTTP and the load generator,
//! with no routing, auth, JSON parsing or evaluation.
//!
//! Usage: hata-bench-ceiling 127.0.0.1:7171

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

/// Exactly 100 bytes, shaped like an OFREP single-flag success.
const BODY: &[u8; 100] =
    br#"{"key":"rules-001","value":true,"reason":"TARGETING_MATCH","variant":"on","metadata":{"v":"012345"}}"#;

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read (and drop) the whole body, as a real handler would before parsing it.
    let _ = req.into_body().collect().await;
    let mut res = Response::new(Full::new(Bytes::from_static(BODY)));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(res)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7171".to_string())
        .parse()?;
    let listener = TcpListener::bind(addr).await?;
    eprintln!("ceiling listening on {addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}
