//! Request counts and durations by method, route template and status, recorded by the edge
//! for every answer of either serving path (`dispatch::edge`).
//!
//! The route label is resolved here, from the path, against the templates of
//! `openapi::ROUTES` (the one table of served operations), so both paths get it from the
//! same code whichever of them served the request; a path no template matches is
//! `unmatched`. Routes served beside the API (the web UI, `ServerConfig::extra_routes`) add
//! their templates once at start (`HttpMetrics::add_routes`, from
//! `ServerConfig::extra_route_templates`), after the API's and `unmatched`. Every (route, method) pair has its cells allocated at start, so recording is
//! a few relaxed atomic adds: no lock, no allocation, no label hashing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
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
    /// The extra routes' templates, indexed after `templates` (set once, at start).
    extra: OnceLock<Extra>,
}

/// `HttpMetrics::add_routes`: templates, their cells and classes, as for the API's.
struct Extra {
    paths: matchit::Router<usize>,
    templates: Vec<&'static str>,
    cells: Box<[Cells]>,
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
            extra: OnceLock::new(),
        }
    }

    /// Adds the templates of routes served beside the API (the web UI's), so that their
    /// requests are counted under them, not as `unmatched`. Once: later calls change nothing
    /// (every clone of a state shares one `HttpMetrics`, and routers built again from it name
    /// the same routes). A template the API's own routes already match, or that conflicts
    /// with an earlier one, is skipped: the API's wins, as in the routing table.
    pub fn add_routes(&self, routes: &[&'static str]) {
        if routes.is_empty() {
            return;
        }
        self.extra.get_or_init(|| {
            let mut paths = matchit::Router::new();
            let mut templates = Vec::new();
            for &route in routes {
                if self.paths.at(route).is_ok() || templates.contains(&route) {
                    continue;
                }
                if paths.insert(route, templates.len()).is_ok() {
                    templates.push(route);
                }
            }
            let cells = (0..templates.len() * METHODS.len())
                .map(|_| Cells::default())
                .collect();
            let classes = templates.iter().map(|t| route_class(t)).collect();
            Extra {
                paths,
                templates,
                cells,
                classes,
            }
        });
    }

    /// Every (template, cells, class) row: the API's (and `unmatched`), then the extra routes'.
    fn rows(&self) -> impl Iterator<Item = (&'static str, &[Cells], usize)> {
        let own = self
            .templates
            .iter()
            .zip(self.cells.chunks(METHODS.len()))
            .zip(&self.classes)
            .map(|((t, c), k)| (*t, c, *k));
        let extra = self.extra.get().into_iter().flat_map(|e| {
            e.templates
                .iter()
                .zip(e.cells.chunks(METHODS.len()))
                .zip(&e.classes)
                .map(|((t, c), k)| (*t, c, *k))
        });
        own.chain(extra)
    }

    /// The cells of route `index` (extra routes' indices follow the API's).
    #[inline]
    fn cells_of(&self, index: usize) -> &[Cells] {
        let n = self.templates.len();
        if index < n {
            &self.cells[index * METHODS.len()..(index + 1) * METHODS.len()]
        } else {
            let extra = self
                .extra
                .get()
                .expect("an extra route index comes from `extra`");
            &extra.cells[(index - n) * METHODS.len()..(index - n + 1) * METHODS.len()]
        }
    }

    /// The route serving `path`, as its template.
    pub fn route(&self, path: &str) -> RouteId {
        let unmatched = self.templates.len() - 1;
        let index = match self.paths.at(path) {
            Ok(found) => *found.value,
            Err(_) => self
                .extra
                .get()
                .and_then(|e| e.paths.at(path).ok())
                .map_or(unmatched, |found| self.templates.len() + *found.value),
        };
        let template = self.template_at(index);
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
        self.template_at(route.index)
    }

    fn template_at(&self, index: usize) -> &'static str {
        match self.templates.get(index) {
            Some(t) => t,
            None => self
                .extra
                .get()
                .and_then(|e| e.templates.get(index - self.templates.len()))
                .copied()
                .unwrap_or(UNMATCHED),
        }
    }

    /// Counts one answer.
    #[inline]
    pub fn record(&self, route: RouteId, method: &Method, status: StatusCode, elapsed: Duration) {
        let cells = &self.cells_of(route.index)[method_slot(method)];
        cells.statuses[status_slot(status)].fetch_add(1, Ordering::Relaxed);
        cells.duration.observe(elapsed);
    }

    /// What every cell counted since start, summed per route class: the serving-hours flusher
    /// takes differences of these, so the requests' path pays nothing more for it.
    pub fn class_totals(&self) -> [ClassTotals; hata_store::serving_hours::ROUTE_CLASSES.len()] {
        let mut totals = [ClassTotals::default(); hata_store::serving_hours::ROUTE_CLASSES.len()];
        for (_, cells, class) in self
            .rows()
            .flat_map(|(t, cells, class)| cells.iter().map(move |c| (t, c, class)))
        {
            let t = &mut totals[class];
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

    /// Every (template, method, cells).
    fn used_cells(&self) -> impl Iterator<Item = (&'static str, &'static str, &Cells)> {
        self.rows().flat_map(|(route, cells, _)| {
            cells
                .iter()
                .zip(METHODS)
                .map(move |(c, method)| (route, method, c))
        })
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
        for (route, method, cells) in self.used_cells().filter(|(_, _, c)| used(c)) {
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
        for (route, method, cells) in self.used_cells().filter(|(_, _, c)| used(c)) {
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
    fn extra_routes_get_their_own_templates_after_the_apis() {
        let m = HttpMetrics::new();
        let t = |p: &str| m.template(m.route(p));
        assert_eq!(t("/projects/shop/flags"), UNMATCHED, "not added yet");
        m.add_routes(&[
            "/projects/{project}/flags",
            "/projects/{project}/flags/{flag}",
            // The API's own: skipped, the API's template wins.
            "/metrics",
        ]);
        // Once: a second call changes nothing.
        m.add_routes(&["/other"]);
        assert_eq!(t("/projects/shop/flags"), "/projects/{project}/flags");
        assert_eq!(
            t("/projects/shop/flags/f"),
            "/projects/{project}/flags/{flag}"
        );
        assert_eq!(t("/other"), UNMATCHED);
        assert_eq!(t("/metrics"), "/metrics");
        assert_eq!(
            t("/api/v1/projects/shop"),
            "/api/v1/projects/{project}",
            "the API's unchanged"
        );
        let ui = m.route("/projects/shop/flags/f");
        assert_eq!(ui.surface, Surface::Admin);
        m.record(ui, &Method::GET, StatusCode::OK, Duration::from_millis(3));
        m.record(
            ui,
            &Method::POST,
            StatusCode::SEE_OTHER,
            Duration::from_millis(3),
        );
        let totals = m.class_totals();
        assert_eq!(
            totals[route_class("/projects/{project}/flags/{flag}")].requests,
            2
        );
    }

    #[test]
    fn statuses_are_sorted_for_the_search() {
        assert!(STATUSES.windows(2).all(|w| w[0] < w[1]));
    }
}
