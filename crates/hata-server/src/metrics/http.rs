//! Request counts and durations by method, route template and status, recorded by the edge
//! for every answer of either serving path (`dispatch::edge`).
//!
//! The route label is resolved here, from the path, against the templates of
//! `openapi::ROUTES` (the one table of served operations), so both paths get it from the
//! same code whichever of them served the request; a path no template matches is
//! `unmatched`. Every (route, method) pair has its cells allocated at start, so recording is
//! a few relaxed atomic adds: no lock, no allocation, no label hashing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{Method, StatusCode};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;

use super::histogram::{self, DurationHistogram};
use crate::openapi::ROUTES;

/// The `route` label of a path no template matches.
pub const UNMATCHED: &str = "unmatched";

/// The `method` labels; any other method is `other` (clients choose methods, and a label's
/// values must stay few).
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];

/// The statuses counted under their own code; anything else (a code no standard names) is
/// `other`.
const STATUSES: [u16; 44] = [
    100, 101, 200, 201, 202, 203, 204, 206, 301, 302, 303, 304, 307, 308, 400, 401, 402, 403, 404,
    405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 425, 426, 428, 429,
    431, 500, 501, 502, 503, 504,
];
const STATUS_SLOTS: usize = STATUSES.len() + 1;

/// What kind of surface a route is, for `hata_rate_limited_total{scope}` (its value is the
/// counter's index, in `Metrics`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// OFREP, SDK config and streams.
    Evaluation = 0,
    /// `POST /api/v1/auth/login` and the single sign-on routes.
    Login = 1,
    /// Everything else (the admin API, operations).
    Admin = 2,
}

/// A matched route: its index into the cells and its surface.
#[derive(Clone, Copy, Debug)]
pub struct RouteId {
    index: usize,
    pub surface: Surface,
    /// A health probe (`/health/…`): load balancers and Kubernetes call them every few
    /// seconds, so their successes stay out of the access log.
    pub probe: bool,
}

impl RouteId {
    /// A route of `surface` for unit tests elsewhere in the crate.
    #[cfg(test)]
    pub(crate) fn of(surface: Surface, probe: bool) -> RouteId {
        RouteId {
            index: 0,
            surface,
            probe,
        }
    }
}

struct Cells {
    duration: DurationHistogram,
    statuses: [AtomicU64; STATUS_SLOTS],
}

impl Default for Cells {
    fn default() -> Cells {
        Cells {
            duration: histogram::request_histogram(),
            statuses: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// What the serving-hours rows count (`hata_store::serving_hours`): the route class of a
/// template, its index in `hata_store::serving_hours::ROUTE_CLASSES`.
pub fn route_class(template: &str) -> usize {
    if template.starts_with("/ofrep/") || template.starts_with("/api/v1/sdk/") {
        // Streams answer their head at once and then stay open: their own class, so their
        // durations do not pass for evaluation latency.
        if template.ends_with("/stream") || template.ends_with("/events") {
            1
        } else {
            0
        }
    } else if template.starts_with("/api/") {
        2
    } else if template.starts_with("/health/") || template == "/metrics" {
        3
    } else {
        4
    }
}

/// Totals since start of one route class (`HttpMetrics::class_totals`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClassTotals {
    pub requests: u64,
    /// 1xx–3xx.
    pub ok: u64,
    pub client_errors: u64,
    pub server_errors: u64,
    pub buckets: [u64; hata_store::serving_hours::BUCKETS],
    pub sum_nanos: u64,
}

/// `http_requests_total` and `http_request_duration_seconds`.
pub struct HttpMetrics {
    paths: matchit::Router<usize>,
    /// Route labels by index; the last is `unmatched`.
    templates: Vec<&'static str>,
    /// `templates.len() × METHODS.len()` cells.
    cells: Box<[Cells]>,
    /// The route class of each template (`route_class`).
    classes: Vec<usize>,
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetrics").finish_non_exhaustive()
    }
}

impl Default for HttpMetrics {
    fn default() -> HttpMetrics {
        HttpMetrics::new()
    }
}

impl HttpMetrics {
    /// The templates of every served route, and their cells.
    pub fn new() -> HttpMetrics {
        let mut paths = matchit::Router::new();
        let mut templates: Vec<&'static str> = Vec::new();
        for route in ROUTES {
            if templates.contains(&route.path) {
                continue;
            }
            // `ROUTES` is axum's routing table in another form: its templates never conflict
            // (`tests/openapi.rs` checks the two agree).
            if paths.insert(route.path, templates.len()).is_ok() {
                templates.push(route.path);
            }
        }
        templates.push(UNMATCHED);
        let cells = (0..templates.len() * METHODS.len())
            .map(|_| Cells::default())
            .collect();
        let classes = templates.iter().map(|t| route_class(t)).collect();
        HttpMetrics {
            paths,
            templates,
            cells,
            classes,
        }
    }

    /// The route serving `path`, as its template.
    pub fn route(&self, path: &str) -> RouteId {
        let index = match self.paths.at(path) {
            Ok(found) => *found.value,
            Err(_) => self.templates.len() - 1,
        };
        let template = self.templates[index];
        let surface = if template.starts_with("/ofrep/") || template.starts_with("/api/v1/sdk/") {
            Surface::Evaluation
        } else if template == "/api/v1/auth/login" || template.starts_with("/api/v1/auth/oidc/") {
            Surface::Login
        } else {
            Surface::Admin
        };
        RouteId {
            index,
            surface,
            probe: template.starts_with("/health/"),
        }
    }

    /// The label a route is counted under.
    pub fn template(&self, route: RouteId) -> &'static str {
        self.templates[route.index]
    }

    /// Counts one answer.
    #[inline]
    pub fn record(&self, route: RouteId, method: &Method, status: StatusCode, elapsed: Duration) {
        let cells = &self.cells[route.index * METHODS.len() + method_slot(method)];
        cells.statuses[status_slot(status)].fetch_add(1, Ordering::Relaxed);
        cells.duration.observe(elapsed);
    }

    /// What every cell counted since start, summed per route class: the serving-hours flusher
    /// takes differences of these, so the requests' path pays nothing more for it.
    pub fn class_totals(&self) -> [ClassTotals; hata_store::serving_hours::ROUTE_CLASSES.len()] {
        let mut totals = [ClassTotals::default(); hata_store::serving_hours::ROUTE_CLASSES.len()];
        for (i, cells) in self.cells.iter().enumerate() {
            let t = &mut totals[self.classes[i / METHODS.len()]];
            for (slot, count) in cells.statuses.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                t.requests += count;
                match STATUSES.get(slot) {
                    Some(code) if *code < 400 => t.ok += count,
                    Some(code) if *code < 500 => t.client_errors += count,
                    Some(_) => t.server_errors += count,
                    // A code no standard names: in `requests` only.
                    None => {}
                }
            }
            // The reading is cumulative; rows hold each bucket's own count.
            let reading = cells.duration.read();
            let mut below = 0;
            for (total, &(_, cumulative)) in t.buckets.iter_mut().zip(&reading.buckets) {
                *total += cumulative - below;
                below = cumulative;
            }
            t.sum_nanos += reading.sum_nanos;
        }
        totals
    }

    /// Writes both families; only (route, method) pairs that served a request have series.
    pub fn encode(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let used = |cells: &Cells| cells.duration.count() > 0;
        let mut counts = encoder.encode_descriptor(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            None,
            MetricType::Counter,
        )?;
        for (i, cells) in self.cells.iter().enumerate().filter(|(_, c)| used(c)) {
            let (route, method) = (
                self.templates[i / METHODS.len()],
                METHODS[i % METHODS.len()],
            );
            for (slot, count) in cells.statuses.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count == 0 {
                    continue;
                }
                let status = match STATUSES.get(slot) {
                    Some(&code) => code.to_string(),
                    None => "other".to_string(),
                };
                let labels = [
                    ("method", method),
                    ("route", route),
                    ("status", status.as_str()),
                ];
                ConstCounter::new(count).encode(counts.encode_family(&labels)?)?;
            }
        }
        let mut durations = encoder.encode_descriptor(
            "http_request_duration_seconds",
            "Time from a request's arrival to its answer's head, by method and route template",
            None,
            MetricType::Histogram,
        )?;
        for (i, cells) in self.cells.iter().enumerate().filter(|(_, c)| used(c)) {
            let (route, method) = (
                self.templates[i / METHODS.len()],
                METHODS[i % METHODS.len()],
            );
            let labels = [("method", method), ("route", route)];
            histogram::encode(&cells.duration.read(), durations.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

fn method_slot(method: &Method) -> usize {
    match *method {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::POST => 2,
        Method::PUT => 3,
        Method::PATCH => 4,
        Method::DELETE => 5,
        Method::OPTIONS => 6,
        _ => 7,
    }
}

fn status_slot(status: StatusCode) -> usize {
    STATUSES
        .binary_search(&status.as_u16())
        .unwrap_or(STATUSES.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_to_their_templates() {
        let m = HttpMetrics::new();
        let t = |p: &str| m.template(m.route(p));
        assert_eq!(
            t("/ofrep/v1/evaluate/flags/banner"),
            "/ofrep/v1/evaluate/flags/{key}"
        );
        assert_eq!(t("/ofrep/v1/evaluate/flags"), "/ofrep/v1/evaluate/flags");
        assert_eq!(t("/api/v1/projects/shop"), "/api/v1/projects/{project}");
        assert_eq!(t("/metrics"), "/metrics");
        assert_eq!(t("/nope/at/all"), UNMATCHED);
        assert_eq!(m.route("/api/v1/sdk/config").surface, Surface::Evaluation);
        assert_eq!(m.route("/api/v1/auth/login").surface, Surface::Login);
    }

    #[test]
    fn statuses_are_sorted_for_the_search() {
        assert!(STATUSES.windows(2).all(|w| w[0] < w[1]));
    }
}
