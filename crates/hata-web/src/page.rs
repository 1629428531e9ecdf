//! What every page shares: the request's language (`Ui`), the signed-in user (`SignedIn`,
//! the API's own cookie session), the layout around a page's body, and the answer (`html`,
//! `error_page`, `see_other`).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hata_access::Principal;
use hata_server::auth::identity::Identity;
use hata_server::auth::session::{self, SessionCaller};
use hata_server::auth::Caller;
use hata_server::error::AppError;
use hata_server::AppState;
use maud::{html, Markup, DOCTYPE};

use crate::assets::css_url;
use crate::i18n::{Lang, COOKIE, L};

/// The request as every page needs it: its language and where it is.
pub struct Ui {
    pub l: L,
    /// Chosen with `?lang=` on this request: the answer keeps it in the cookie.
    pub chosen: bool,
    pub path: String,
    /// The query, without `lang` and `notice`.
    pub query: Vec<(String, String)>,
    /// What the last action did, told once on the page it returned to (`?notice=`).
    pub notice: Option<crate::kill::Notice>,
}

impl<S: Send + Sync> FromRequestParts<S> for Ui {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let (lang, chosen) = Lang::of_request(parts);
        let mut notice = None;
        let query = parts
            .uri
            .query()
            .map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .filter(|(k, v)| match k.as_ref() {
                        "lang" => false,
                        "notice" => {
                            notice = crate::kill::Notice::parse(v);
                            false
                        }
                        _ => true,
                    })
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Ui {
            l: L::new(lang),
            chosen,
            path: parts.uri.path().to_string(),
            query,
            notice,
        })
    }
}

impl Ui {
    /// This page's URL with `changes` applied to its query (`None` removes a parameter).
    pub fn with(&self, changes: &[(&str, Option<&str>)]) -> String {
        let mut pairs: Vec<(String, String)> = self
            .query
            .iter()
            .filter(|(k, _)| !changes.iter().any(|(c, _)| c == k))
            .cloned()
            .collect();
        for (k, v) in changes {
            if let Some(v) = v {
                pairs.push((k.to_string(), v.to_string()));
            }
        }
        url(&self.path, &pairs)
    }
}

/// `path?k=v&…`, encoded.
pub fn url(path: &str, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return path.to_string();
    }
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    format!("{path}?{}", query.finish())
}

/// The signed-in user: the session cookie checked exactly as the admin API checks it
/// (`hata_server::auth::session::authenticate`). A page without one redirects to `/login`.
/// A form post must also come from this origin (and carry the session's CSRF token, which the
/// handler checks with `SignedIn::check_csrf`). The principal and session are put into the
/// request, so the server's `Writer` extractor fills the audit entry as for the API.
pub struct SignedIn {
    pub principal: Arc<Principal>,
    pub session: SessionCaller,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let to_login = || {
            let next = parts
                .uri
                .path_and_query()
                .map(|pq| pq.as_str())
                .unwrap_or("/");
            see_other(&url("/login", &[("next".into(), next.into())]))
        };
        let Some(secret) = session::cookie_secret(&parts.headers) else {
            return Err(to_login());
        };
        let Some(identity) = parts.extensions.get::<Arc<Identity>>().cloned() else {
            return Err(StatusCode::INTERNAL_SERVER_ERROR.into_response());
        };
        let (principal, session) = match session::authenticate(state, &identity, secret).await {
            Ok(found) => found,
            Err(AppError::Unauthorized) => return Err(to_login()),
            Err(e) => return Err(e.into_response()),
        };
        if session::is_unsafe(&parts.method) {
            session::check_origin(parts).map_err(IntoResponse::into_response)?;
        }
        let principal = Arc::new(principal);
        parts.extensions.insert(Caller(principal.clone()));
        parts.extensions.insert(session.clone());
        Ok(SignedIn { principal, session })
    }
}

impl SignedIn {
    /// 403 unless `given` is the session's CSRF token (a hidden field of every form).
    pub fn check_csrf(&self, given: &str) -> Result<(), AppError> {
        if hata_access::session::same_secret(given, &self.session.csrf_token) {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "the form's CSRF token is not this session's".into(),
            ))
        }
    }
}

/// A 303 to `location` (after a form post, and to the login page).
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// A page's answer; keeps a language chosen with `?lang=` in its cookie.
pub fn html(ui: &Ui, status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    if ui.chosen {
        let cookie = format!(
            "{COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000",
            ui.l.lang.code()
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The layout around a page's body: the top bar (projects, language, the user and logout).
pub fn layout(ui: &Ui, who: Option<&SignedIn>, title: &str, body: Markup) -> Markup {
    let l = ui.l;
    html! {
        (DOCTYPE)
        html lang=(l.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · hata" }
                link rel="stylesheet" href=(css_url());
            }
            body {
                a.skip href="#main" { (l.t("nav.skip")) }
                header.top {
                    a.brand href="/projects" { "hata" }
                    nav aria-label=(l.t("nav.label")) {
                        @if let Some(who) = who {
                            a href="/projects" { (l.t("nav.projects")) }
                            (admin_links(ui, who))
                        }
                    }
                    div.lang {
                        @for lang in Lang::ALL {
                            @let name = match lang { Lang::En => l.t("lang.en"), Lang::Ja => l.t("lang.ja") };
                            @if lang == l.lang {
                                span aria-current="true" lang=(lang.code()) { (name) }
                            } @else {
                                a href=(ui.with(&[("lang", Some(lang.code()))])) lang=(lang.code()) hreflang=(lang.code()) { (name) }
                            }
                        }
                    }
                    @if let Some(who) = who {
                        span.who { (who.session.email) }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(who.session.csrf_token);
                            button type="submit" { (l.t("nav.logout")) }
                        }
                    }
                }
                main #main {
                    @if let Some(notice) = &ui.notice { (notice.render(l)) }
                    (body)
                }
            }
        }
    }
}

/// An error as a page: the status the API would answer, and what went wrong.
pub fn error_page(ui: &Ui, who: Option<&SignedIn>, e: AppError) -> Response {
    let l = ui.l;
    let detail = e.to_string();
    let status = e.into_response().status();
    // A server error's text is for the log, not the page.
    let detail = if status.is_server_error() {
        l.t("error.server_detail").to_string()
    } else {
        detail
    };
    let title = match status {
        StatusCode::FORBIDDEN => l.t("error.forbidden"),
        StatusCode::NOT_FOUND => l.t("error.not_found"),
        StatusCode::PRECONDITION_FAILED => l.t("error.conflict"),
        s if s.is_client_error() => l.t("error.invalid"),
        _ => l.t("error.server"),
    };
    let body = html! {
        h1 { (title) }
        p.error role="alert" { (detail) }
        p { a href="/projects" { (l.t("nav.projects")) } }
    };
    html(ui, status, layout(ui, who, title, body))
}

/// The administration pages' links: the current project's pages (from the path) for those
/// who see the project, tokens and the audit log for admins and owners, users for admins.
/// Only links: each page checks access itself.
fn admin_links(ui: &Ui, who: &SignedIn) -> Markup {
    let l = ui.l;
    let p = &who.principal;
    let owner = p.admin || p.projects.values().any(|r| *r == hata_access::Role::Owner);
    let project = ui
        .path
        .strip_prefix("/projects/")
        .and_then(|rest| rest.split('/').next())
        .filter(|key| !key.is_empty() && p.sees(key));
    let link = |href: String, text: &str| {
        let current = ui.path == href || ui.path.starts_with(&format!("{href}/"));
        html! { a href=(href) aria-current=[current.then_some("page")] { (text) } }
    };
    html! {
        @if let Some(key) = project {
            span.here.key { (key) ":" }
            (link(format!("/projects/{key}/flags"), l.t("flag.back")))
            (link(format!("/projects/{key}/segments"), l.t("segments.nav")))
            (link(format!("/projects/{key}/environments"), l.t("environments.nav")))
            (link(format!("/projects/{key}/members"), l.t("members.nav")))
        }
        @if owner { (link("/tokens".into(), l.t("tokens.nav"))) }
        @if p.admin { (link("/users".into(), l.t("users.nav"))) }
        @if owner { (link("/audit".into(), l.t("audit.nav"))) }
    }
}
