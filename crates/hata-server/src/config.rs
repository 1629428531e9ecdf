//! Settings of the HTTP layer, filled by the binary from its configuration.

use std::time::Duration;

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
