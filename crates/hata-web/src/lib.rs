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
//! - `form`: what the administration forms share: problems next to their fields, the CSRF
//!   field, a form as posted.
//! - `segments`: a project's segments, and the form to create or edit one (rules and
//!   conditions).
//! - `environments`: a project's environments; create one, mark it protected or not.
//! - `tokens`: API tokens with expiry and rotation warnings; create (the secret shown once),
//!   rotate, revoke.
//! - `members`: a project's members and their roles; add, change, remove.
//! - `users`: users (administrators); create one.
//! - `audit`: the audit log with filters and pages, and the chain's verification.
//! - `edit/`: creating and editing flags, one module per form (`create`, `flag`, `config`)
//!   and "who moves" (`moves`); field errors next to their inputs, what was typed kept, the
//!   412 conflict shown with a re-apply.
//! - `chart`: a stacked bar chart as SVG (pure; no inline style).
//! - `evaluations`: the flag page's evaluations per variant over 24 h / 7 d / 30 d, per
//!   environment (`Store::evaluation_series`), as a chart and a table.
//! - `kill`: the kill switch's wait until evaluations serve the new state, and the notice the
//!   page it returns to shows.
//! - `whosees`: "what does this user see": a typed context evaluated on this server's served
//!   rule set (`AppState::serving`), for one flag or every flag of an environment.

pub mod assets;
pub mod chart;
pub mod edit;
pub mod evaluations;
pub mod flag;
pub mod flags;
pub mod i18n;
pub mod kill;
pub mod login;
pub mod page;
pub mod whosees;

pub mod audit;
pub mod environments;
pub mod form;
pub mod members;
pub mod segments;
pub mod tokens;
pub mod users;

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
    // admin_routes
    "/projects/{project}/segments",
    "/projects/{project}/segments/_new",
    "/projects/{project}/segments/{segment}",
    "/projects/{project}/environments",
    "/projects/{project}/environments/{env}/protection",
    "/projects/{project}/members",
    "/projects/{project}/members/{user_id}",
    "/projects/{project}/members/{user_id}/remove",
    "/tokens",
    "/tokens/{id}/rotate",
    "/tokens/{id}/revoke",
    "/users",
    "/audit",
    // edit::router
    "/projects/{project}/new-flag",
    "/projects/{project}/flags/{flag}/edit",
    "/projects/{project}/flags/{flag}/environments/{env}/edit",
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
        .merge(admin_routes())
        .merge(edit::router())
        .route(
            "/projects/{project}/whosees",
            get(whosees::show).post(whosees::evaluate),
        )
        .route("/assets/{name}", get(assets::serve))
        .layer(axum::middleware::map_response(page_headers))
}

/// The administration pages: segments, environments, members, tokens, users, the audit log.
fn admin_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/projects/{project}/segments",
            get(segments::list).post(segments::create),
        )
        .route("/projects/{project}/segments/_new", get(segments::new))
        .route(
            "/projects/{project}/segments/{segment}",
            get(segments::show).post(segments::update),
        )
        .route(
            "/projects/{project}/environments",
            get(environments::list).post(environments::create),
        )
        .route(
            "/projects/{project}/environments/{env}/protection",
            post(environments::protection),
        )
        .route(
            "/projects/{project}/members",
            get(members::list).post(members::add),
        )
        .route(
            "/projects/{project}/members/{user_id}",
            post(members::change),
        )
        .route(
            "/projects/{project}/members/{user_id}/remove",
            post(members::remove),
        )
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}/rotate", post(tokens::rotate))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/users", get(users::list).post(users::create))
        .route("/audit", get(audit::list))
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
    /// `ROUTES` names exactly the templates `router` routes (read from the `.route(` calls
    /// of this file and of `edit/mod.rs`, the two places routes are added), so that none is
    /// counted as `unmatched`.
    #[test]
    fn routes_lists_every_route() {
        let code = |source: &'static str| source.split("#[cfg(test)]").next().unwrap_or(source);
        let mut routed: Vec<&str> = [
            code(include_str!("lib.rs")),
            code(include_str!("edit/mod.rs")),
        ]
        .into_iter()
        .flat_map(|body| {
            // (A `.route(` in a comment is followed by no literal.)
            body.match_indices(".route(").filter_map(move |(i, _)| {
                let rest = body[i + ".route(".len()..].trim_start();
                let rest = rest.strip_prefix('"')?;
                Some(&rest[..rest.find('"').expect("end of template")])
            })
        })
        .collect();
        routed.sort_unstable();
        let mut listed = super::ROUTES.to_vec();
        listed.sort_unstable();
        assert_eq!(routed, listed);
    }
}
