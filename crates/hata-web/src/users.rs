//! Users (administrators only, as `GET, POST /users`): the list (admin, disabled, two-factor,
//! last sign-in, locked) and a form to create one, through the API's own
//! `routes::users::create_user` (email normalised, the password policy, each problem named by
//! field). Without a password the user signs in by single sign-on only, or once an
//! administrator sets one. A typed password is never shown again, even on an error.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::{Extension, Form};
use hata_access::{authorize, Need};
use hata_server::auth::identity::Identity;
use hata_server::error::AppError;
use hata_server::routes::users::{create_user, NewUserRequest};
use hata_server::routes::Writer;
use hata_server::AppState;
use maud::html;
use serde::Deserialize;

use crate::flags::short_time;
use crate::form::{self, csrf, Posted, Problems};
use crate::page::{error_page, html, layout, see_other, url, SignedIn, Ui};

/// Users per page.
const PAGE_SIZE: usize = 100;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    cursor: Option<String>,
    /// The email of the user just created.
    created: Option<String>,
}

/// `GET /users`
pub async fn list(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Query(q): Query<ListQuery>,
) -> Response {
    page(&ui, &s, &who, &q, &Posted::default(), &Problems::none()).await
}

async fn page(
    ui: &Ui,
    s: &AppState,
    who: &SignedIn,
    q: &ListQuery,
    posted: &Posted,
    problems: &Problems,
) -> Response {
    if let Err(d) = authorize(&who.principal, Need::Admin) {
        return error_page(ui, Some(who), AppError::Forbidden(d.0));
    }
    let users = match s.store.page_users(PAGE_SIZE, q.cursor.as_deref()).await {
        Ok(page) => page,
        Err(e) => return error_page(ui, Some(who), e.into()),
    };
    let l = ui.l;
    let title = l.t("users.title");
    let yes = l.t("users.yes");
    let placed: Vec<String> = ["email", "name", "password", "admin"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let body = html! {
        h1 { (title) }
        @if let Some(email) = &q.created {
            p.notice #done role="status" { (l.f("users.created", &[("email", email)])) }
        }
        table #users {
            caption.skip { (title) }
            thead {
                tr {
                    th scope="col" { (l.t("users.email")) }
                    th scope="col" { (l.t("users.name")) }
                    th scope="col" { (l.t("users.admin")) }
                    th scope="col" { (l.t("users.mfa")) }
                    th scope="col" { (l.t("users.state")) }
                    th scope="col" { (l.t("users.last_login")) }
                }
            }
            tbody {
                @for u in &users.items {
                    tr data-user=(u.email) {
                        td { (u.email) br; span.key.muted { (u.id) } }
                        td { (u.name) }
                        td { @if u.admin { (yes) } }
                        td { @if u.mfa { (yes) } }
                        td {
                            @if u.disabled { span.tag.bad { (l.t("users.disabled")) } }
                            @else if u.locked_until.is_some() { span.tag.warn { (l.t("users.locked")) } }
                            @else if !u.password_set { span.muted { (l.t("users.sso_only")) } }
                            @else { span.muted { (l.t("users.active")) } }
                        }
                        td.muted { (u.last_login_at.as_deref().map(short_time).unwrap_or_default()) }
                    }
                }
            }
        }
        @if let Some(next) = &users.next_cursor {
            nav.pager aria-label=(l.t("users.pages")) {
                a rel="next" href=(url("/users", &[("cursor".into(), next.clone())])) { (l.t("users.more")) }
            }
        }
        h2 #new-title { (l.t("users.new")) }
        (form::summary(l, problems, &placed, "/users"))
        form.stack #user-form method="post" action="/users" aria-labelledby="new-title" novalidate {
            (csrf(&who.session.csrf_token))
            (form::input(problems, "email", "email", l.t("users.email"), posted.get("email"), None))
            (form::input(problems, "text", "name", l.t("users.name"), posted.get("name"), Some(l.t("users.name_hint"))))
            (form::input(problems, "password", "password", l.t("users.password"), "", Some(l.t("users.password_hint"))))
            div.field.check {
                input type="checkbox" id="f-admin" name="admin" value="true" checked[posted.ticked("admin")];
                label for="f-admin" { (l.t("users.admin_label")) }
            }
            button.primary #create type="submit" { (l.t("users.create")) }
        }
    };
    html(ui, problems.status(), layout(ui, Some(who), title, body))
}

/// `POST /users`
pub async fn create(
    ui: Ui,
    State(s): State<AppState>,
    Extension(identity): Extension<Arc<Identity>>,
    who: SignedIn,
    Writer(w): Writer,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let posted = Posted(pairs);
    if let Err(e) = who.check_csrf(posted.get("csrf")) {
        return error_page(&ui, Some(&who), e);
    }
    if let Err(d) = authorize(&who.principal, Need::Admin) {
        return error_page(&ui, Some(&who), AppError::Forbidden(d.0));
    }
    let req = NewUserRequest {
        email: posted.get("email").to_string(),
        name: posted.given("name"),
        password: Some(posted.get("password").to_string()).filter(|p| !p.is_empty()),
        admin: posted.ticked("admin"),
    };
    match create_user(&s, &identity, &w, req).await {
        Ok(out) => {
            let email = out
                .value
                .as_ref()
                .and_then(|v| v.get("email"))
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            see_other(&url("/users", &[("created".into(), email)]))
        }
        Err(e) => match Problems::of(e) {
            Ok(problems) => page(&ui, &s, &who, &ListQuery::default(), &posted, &problems).await,
            Err(e) => error_page(&ui, Some(&who), e),
        },
    }
}
