//! hata's web UI: server-rendered HTML (maud) in English and Japanese, served by
//! `hata serve` beside the API (`ServerConfig::extra_routes`), so the edge's security headers,
//! request ids and metrics apply to it as to every answer. Nothing is built or downloaded:
//! the pages are Rust, the one stylesheet is embedded (`assets`), and there is no script —
//! every action is a plain form with the session's CSRF token.
//!
//! It signs in through the API's own login and session cookie, reads through the store's
//! reads and writes through `AppState::write`: it adds pages, not rules.
//!
//! - `i18n`: the catalogues and the request's language.
//! - `page`: the layout, the signed-in user, answers.
//! - `login`: sign in (password, then the authenticator's code), single sign-on link, logout.
//! - `flags`: projects, a project's flags with filters, sorting, pages and the kill switch.
//! - `flag`: one flag, its environments and its history.
//! - `chart`: a stacked bar chart as SVG (pure; no inline style).
//! - `evaluations`: the flag page's evaluations per variant over 24 h / 7 d / 30 d, per
//!   environment (`Store::evaluation_series`), as a chart and a table.
//! - `kill`: the kill switch's wait until evaluations serve the new state, and the notice the
//!   page it returns to shows.
//! - `whosees`: "what does this user see": a typed context evaluated on this server's served
//!   rule set (`AppState::serving`), for one flag or every flag of an environment.

pub mod assets;
pub mod chart;
pub mod evaluations;
pub mod flag;
pub mod flags;
pub mod i18n;
pub mod kill;
pub mod login;
pub mod page;
pub mod whosees;

use axum::http::{header, HeaderValue};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use hata_server::AppState;

/// What pages may load: the stylesheet from here, nothing else; forms post only here; no
/// framing (the edge's `X-Frame-Options: DENY` says the same to older browsers).
const CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'",
);

/// The templates of `router`'s routes, for `ServerConfig::extra_route_templates` (the
/// metrics' `route` label). A test checks that it names every `.route(` below.
pub const ROUTES: &[&str] = &[
    "/",
    "/login",
    "/logout",
    "/projects",
    "/projects/{project}",
    "/projects/{project}/flags",
    "/projects/{project}/flags/{flag}",
    "/projects/{project}/flags/{flag}/environments/{env}/switch",
    "/projects/{project}/whosees",
    "/assets/{name}",
];

/// The UI's routes, for `ServerConfig::extra_routes`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/projects") }))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/projects", get(flags::projects))
        .route(
            "/projects/{project}",
            get(
                |axum::extract::Path(p): axum::extract::Path<String>| async move {
                    Redirect::to(&format!("/projects/{p}/flags"))
                },
            ),
        )
        .route("/projects/{project}/flags", get(flags::list))
        .route("/projects/{project}/flags/{flag}", get(flag::show))
        .route(
            "/projects/{project}/flags/{flag}/environments/{env}/switch",
            post(flags::flip),
        )
        .route(
            "/projects/{project}/whosees",
            get(whosees::show).post(whosees::evaluate),
        )
        .route("/assets/{name}", get(assets::serve))
        .layer(axum::middleware::map_response(page_headers))
}

/// Every UI answer: the CSP, the referrer policy, and pages (they hold the CSRF token) kept
/// out of caches.
///
/// `same-origin` instead of the edge's `no-referrer` (which the edge keeps when an answer sets
/// its own): under `no-referrer` browsers send `Origin: null` with a form post, which the
/// same-origin check (`session::check_origin`) rightly refuses. Other sites still get no
/// `Referer` from the UI.
async fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, CSP);
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    /// `ROUTES` names exactly the templates `router` routes (read from this file's
    /// `.route(` calls), so that none is counted as `unmatched`.
    #[test]
    fn routes_lists_every_route() {
        let source = include_str!("lib.rs");
        let body = &source[source.find("pub fn router()").expect("router")..];
        let body = &body[..body.find("\n}\n").expect("end of router")];
        let mut routed: Vec<&str> = body
            .match_indices(".route(")
            .map(|(i, _)| {
                let rest = body[i + ".route(".len()..].trim_start();
                let rest = rest.strip_prefix('"').expect("a literal template");
                &rest[..rest.find('"').expect("end of template")]
            })
            .collect();
        routed.sort_unstable();
        let mut listed = super::ROUTES.to_vec();
        listed.sort_unstable();
        assert_eq!(routed, listed);
    }
}
