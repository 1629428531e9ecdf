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
    /// How long a request body may stop arriving before the request is answered 408.
    pub body_timeout: Duration,
    /// Open connections and their header and idle timeouts.
    pub connections: crate::connections::ConnectionLimits,
    /// Open event streams (OFREP and SDK) in total, and per token.
    pub max_streams: usize,
    pub max_streams_per_token: usize,
    /// Peers whose `X-Forwarded-*` headers are believed (see `forwarded`).
    pub trusted_proxies: crate::forwarded::TrustedProxies,
    /// The most members an evaluation context may have; lookups cost the same whatever the
    /// width, but reading and indexing a context does not.
    pub max_context_members: usize,
    /// Serve HTTPS with this certificate (reloaded when its files change); `None`: plain HTTP.
    /// Also what makes every answer carry HSTS and requests see the scheme `https`.
    pub tls: Option<std::sync::Arc<crate::connections::tls::Tls>>,
    /// Sessions, the login lockout and password hashing.
    pub identity: crate::auth::identity::IdentityConfig,
    /// Budgets of the admin API and of logins (off by default here; `hata serve` sets them).
    pub limits: std::sync::Arc<crate::limits::Limits>,
    /// Accept JWTs of this issuer as bearer tokens (`auth::jwt`); `None`: only hata's tokens.
    pub jwt: Option<std::sync::Arc<crate::auth::jwt::JwtVerifier>>,
    /// `GET /metrics`: its bearer token and the cardinality limit.
    pub metrics: crate::metrics::MetricsConfig,
    /// The scheduled jobs (off by default here; `hata serve` turns them on). Read by
    /// `AppState::start_with_jobs`, which runs them.
    pub jobs: hata_jobs::JobsConfig,
    /// More routes served beside the API (the web UI, `hata-web`, which depends on this crate
    /// and so cannot be named here): merged into the routing table before the 404/405
    /// fallbacks and inside every layer, so the edge's headers, request ids and metrics, and
    /// the identity, limits and settings extensions, apply to them too.
    pub extra_routes: Option<fn() -> axum::Router<crate::AppState>>,
    /// The route templates of `extra_routes` (`hata_web::ROUTES`), for the metrics' `route`
    /// label: without them their requests are counted as `unmatched`.
    pub extra_route_templates: &'static [&'static str],
    /// The access log: on or off, and the share of successful evaluations it logs.
    pub access_log: crate::dispatch::access_log::AccessLogConfig,
    /// Where backups go (`--backup-to`), for `GET /api/v1/backups`; `None`: not configured.
    pub backups: Option<hata_backup::Destination>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit: 1 << 20,
            public_url: None,
            eval_rate_limit: 0,
            heartbeat: Duration::from_secs(15),
            body_timeout: Duration::from_secs(30),
            connections: crate::connections::ConnectionLimits::default(),
            max_streams: 10_000,
            max_streams_per_token: 2_000,
            trusted_proxies: crate::forwarded::TrustedProxies::default(),
            max_context_members: hata_core::context::MAX_MEMBERS,
            tls: None,
            identity: Default::default(),
            limits: std::sync::Arc::new(crate::limits::Limits::unlimited()),
            jwt: None,
            metrics: Default::default(),
            jobs: Default::default(),
            extra_routes: None,
            extra_route_templates: &[],
            access_log: Default::default(),
            backups: None,
        }
    }
}
