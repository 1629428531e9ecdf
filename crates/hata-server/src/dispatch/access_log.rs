//! The access log: one line per answered request (target `hata::access`, level INFO), written
//! by the edge for both serving paths. Evaluations (OFREP and the SDK surfaces) are the bulk of
//! the traffic, so those answered below 400 are sampled (`--access-log-sample-evaluations`);
//! every other request, and every evaluation answered 400 or above, is logged.
//!
//! What is kept of the request before it is served (`Seen`) is what the line needs and the
//! answer does not carry: the client's address (through trusted proxies, `forwarded`) and the
//! user agent, a header clone (a reference count). The line itself — its strings, the
//! principal's name — is made only when it is written. A line names who asked by id
//! (`scope::Who`), never by a secret.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};

use super::scope::RequestScope;
use crate::forwarded::{self, TrustedProxies};
use crate::metrics::{RouteId, Surface};

/// The default share of successful evaluations logged.
pub const DEFAULT_SAMPLE_EVALUATIONS: f64 = 0.01;

/// The longest user agent written; longer ones are cut (on a character boundary).
const MAX_USER_AGENT: usize = 256;

/// `ServerConfig::access_log`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AccessLogConfig {
    /// Whether there is an access log at all.
    pub enabled: bool,
    /// The share (0.0 to 1.0) of evaluations answered below 400 that are logged.
    pub sample_evaluations: f64,
}

impl Default for AccessLogConfig {
    fn default() -> Self {
        AccessLogConfig {
            enabled: true,
            sample_evaluations: DEFAULT_SAMPLE_EVALUATIONS,
        }
    }
}

/// Which successful evaluations are logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sample {
    None,
    All,
    /// Those whose random draw is below this (a share of `u64::MAX`).
    Below(u64),
}

/// The access log as the edge holds it.
#[derive(Debug)]
pub struct AccessLog {
    evaluations: Sample,
}

/// What the line (and the request's trace span) needs of the request, kept before the
/// request is handed on.
pub struct Seen {
    pub client_ip: Option<IpAddr>,
    pub user_agent: Option<HeaderValue>,
}

impl Seen {
    pub fn of<B>(req: &Request<B>, trusted: &TrustedProxies) -> Seen {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| *addr);
        Seen {
            client_ip: forwarded::client_ip(peer, req.headers(), trusted),
            user_agent: req.headers().get(header::USER_AGENT).cloned(),
        }
    }

    /// The user agent as logged (see `user_agent`).
    pub fn user_agent(&self) -> &str {
        user_agent(self.user_agent.as_ref())
    }
}

/// What the line needs of the answer.
pub struct Answer<'a> {
    pub method: &'a Method,
    pub route: &'static str,
    pub surface: Surface,
    pub status: StatusCode,
    pub elapsed: Duration,
}

impl AccessLog {
    /// `None` when the access log is off.
    pub fn new(config: AccessLogConfig) -> Option<AccessLog> {
        if !config.enabled {
            return None;
        }
        let rate = config.sample_evaluations;
        let evaluations = if rate.is_nan() || rate <= 0.0 {
            Sample::None
        } else if rate >= 1.0 {
            Sample::All
        } else {
            // Exact enough: the share is a setting, not a measurement.
            Sample::Below((rate * u64::MAX as f64) as u64)
        };
        Some(AccessLog { evaluations })
    }

    /// Whether this answer gets a line: everything but successful evaluations, and those as
    /// sampled, and successful health probes, never (a probe's failure is logged). Decided
    /// before anything of the line is made.
    pub fn wanted(&self, route: RouteId, status: StatusCode) -> bool {
        if route.probe {
            return !status.is_success();
        }
        if route.surface != Surface::Evaluation || status.as_u16() >= 400 {
            return true;
        }
        match self.evaluations {
            Sample::None => false,
            Sample::All => true,
            Sample::Below(threshold) => rand::random::<u64>() < threshold,
        }
    }

    /// Writes the line (when `RUST_LOG` lets `hata::access` INFO through).
    pub fn write(&self, seen: &Seen, answer: &Answer<'_>, scope: &RequestScope) {
        tracing::info!(
            target: "hata::access",
            method = answer.method.as_str(),
            route = answer.route,
            status = answer.status.as_u16(),
            duration_ms = answer.elapsed.as_secs_f64() * 1000.0,
            principal = %scope.principal().map_or_else(|| "anonymous".to_string(), |who| who.to_string()),
            client_ip = %seen.client_ip.map_or_else(|| "unknown".to_string(), |ip| ip.to_string()),
            user_agent = seen.user_agent(),
            request_id = scope.id.to_str().unwrap_or("-"),
            trace_id = scope.trace_id.map(tracing::field::display),
            "request"
        );
    }
}

/// The user agent as written: cut to `MAX_USER_AGENT` bytes, `-` when absent or not
/// visible ASCII (`to_str`'s test, which also makes any cut a character boundary).
fn user_agent(value: Option<&HeaderValue>) -> &str {
    match value.and_then(|v| v.to_str().ok()) {
        Some(text) => &text[..text.len().min(MAX_USER_AGENT)],
        None => "-",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(rate: f64) -> AccessLog {
        AccessLog::new(AccessLogConfig {
            enabled: true,
            sample_evaluations: rate,
        })
        .expect("on")
    }

    #[test]
    fn successful_evaluations_are_sampled_probes_skipped_and_everything_else_logged() {
        let ok = StatusCode::OK;
        let evaluation = RouteId::of(Surface::Evaluation, false);
        let never = log(0.0);
        assert!(!never.wanted(evaluation, ok));
        assert!(never.wanted(evaluation, StatusCode::UNAUTHORIZED));
        assert!(never.wanted(evaluation, StatusCode::SERVICE_UNAVAILABLE));
        assert!(never.wanted(RouteId::of(Surface::Admin, false), ok));
        assert!(never.wanted(RouteId::of(Surface::Login, false), ok));
        // Probes: a success never, a failure (not ready) always, whatever the sampling.
        let probe = RouteId::of(Surface::Admin, true);
        assert!(!log(1.0).wanted(probe, ok));
        assert!(never.wanted(probe, StatusCode::SERVICE_UNAVAILABLE));
        assert!(log(1.0).wanted(evaluation, ok));
        let tenth = log(0.1);
        let logged = (0..100_000)
            .filter(|_| tenth.wanted(evaluation, ok))
            .count();
        // 10,000 expected; 5 standard deviations (~95) either way.
        assert!((9_500..=10_500).contains(&logged), "{logged}");
        let off = AccessLogConfig {
            enabled: false,
            sample_evaluations: 1.0,
        };
        assert!(AccessLog::new(off).is_none());
    }

    #[test]
    fn user_agents_are_cut_and_only_text() {
        assert_eq!(user_agent(None), "-");
        let short = HeaderValue::from_static("curl/8.5");
        assert_eq!(user_agent(Some(&short)), "curl/8.5");
        let latin = HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a header value");
        assert_eq!(user_agent(Some(&latin)), "-");
        let long = HeaderValue::from_str(&format!("a{}", "bc".repeat(200))).expect("header");
        let cut = user_agent(Some(&long));
        assert_eq!(cut.len(), MAX_USER_AGENT);
        assert!(cut.starts_with("abcb"));
    }
}
