//! A project's members: who has which role (`viewer`, `editor`, `owner`), for everyone who
//! may read the project; for its owners (and admins) a form to add a user with a role, a role
//! select per member and a button to remove one. The rules are the API's: adding or changing
//! a role is `routes::members::put_member` (at most the role one may grant), removing needs
//! `Need::Own` as `DELETE …/members/{user_id}` does; both write through `AppState::write`.
//!
//! Admins pick the user from the list of users; an owner who is not an admin cannot list
//! users (`GET /users` is for admins) and gives the user's id, as the API takes it.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use hata_access::{authorize, Need, Role};
use hata_server::error::AppError;
use hata_server::routes::members::put_member;
use hata_server::routes::Writer;
use hata_server::AppState;
use hata_store::WriteOp;
use maud::html;
use serde::Deserialize;

use crate::form::{self, csrf, invalid, messages, Posted, Problems};
use crate::i18n::L;
use crate::page::{error_page, html, layout, see_other, url, SignedIn, Ui};

/// Members per page.
const PAGE_SIZE: usize = 100;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    cursor: Option<String>,
    /// The email of the member just added, changed or removed.
    done: Option<String>,
}

fn role_label(l: L, role: Role) -> &'static str {
    match role {
        Role::Viewer => l.t("members.role_viewer"),
        Role::Editor => l.t("members.role_editor"),
        Role::Owner => l.t("members.role_owner"),
    }
}

/// `GET /projects/{project}/members`
pub async fn list(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path(project): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    page(
        &ui,
        &s,
        &who,
        &project,
        &q,
        &Posted::default(),
        &Problems::none(),
    )
    .await
}

async fn page(
    ui: &Ui,
    s: &AppState,
    who: &SignedIn,
    project: &str,
    q: &ListQuery,
    posted: &Posted,
    problems: &Problems,
) -> Response {
    if let Err(d) = authorize(&who.principal, Need::Read(project)) {
        return error_page(ui, Some(who), AppError::Forbidden(d.0));
    }
    let grantable = who.principal.grantable_in(project);
    let loaded = async {
        let record = s.store.get_project(project).await?;
        let members = s
            .store
            .page_members(project, PAGE_SIZE, q.cursor.as_deref())
            .await?;
        // Admins choose among the users; nobody else may list them.
        let users = if who.principal.admin && grantable.is_some() {
            Some(
                s.store
                    .page_users(hata_store::read::MAX_PAGE, None)
                    .await?
                    .items,
            )
        } else {
            None
        };
        Ok::<_, hata_store::StoreError>((record, members, users))
    }
    .await;
    let (record, members, users) = match loaded {
        Ok(found) => found,
        Err(e) => return error_page(ui, Some(who), e.into()),
    };
    let l = ui.l;
    let title = l.f("members.title", &[("project", &record.project.name)]);
    let grantable_roles: Vec<Role> = Role::ALL
        .into_iter()
        .filter(|r| grantable.is_some_and(|most| *r <= most))
        .collect();
    let placed: Vec<String> = ["user_id", "role"].iter().map(|s| s.to_string()).collect();
    let chosen_role = posted.given("role").unwrap_or_else(|| "viewer".into());
    let body = html! {
        h1 { (title) }
        @if let Some(done) = &q.done {
            p.notice #done role="status" { (l.f("members.saved", &[("user", done)])) }
        }
        @if members.items.is_empty() {
            p.muted { (l.t("members.none")) }
        } @else {
            table #members {
                caption.skip { (title) }
                thead {
                    tr {
                        th scope="col" { (l.t("members.email")) }
                        th scope="col" { (l.t("members.name")) }
                        th scope="col" { (l.t("members.role")) }
                        @if grantable.is_some() { th scope="col" { (l.t("members.actions")) } }
                    }
                }
                tbody {
                    @for m in &members.items {
                        tr data-member=(m.email) {
                            td { (m.email) br; span.key.muted { (m.user_id) } }
                            td { (m.name) }
                            td { (role_label(l, m.role)) }
                            @if grantable.is_some() {
                                td {
                                    div.actions {
                                        form method="post" action=(format!("/projects/{project}/members/{}", m.user_id)) {
                                            (csrf(&who.session.csrf_token))
                                            label.vh for=(format!("role-{}", m.user_id)) { (l.f("members.role_of", &[("user", &m.email)])) }
                                            select id=(format!("role-{}", m.user_id)) name="role" {
                                                @for r in &grantable_roles {
                                                    option value=(r.as_str()) selected[*r == m.role] { (role_label(l, *r)) }
                                                }
                                            }
                                            button type="submit" { (l.t("members.set_role")) span.vh { " " (m.email) } }
                                        }
                                        form method="post" action=(format!("/projects/{project}/members/{}/remove", m.user_id)) {
                                            (csrf(&who.session.csrf_token))
                                            button.danger type="submit" { (l.t("members.remove")) span.vh { " " (m.email) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = &members.next_cursor {
            nav.pager aria-label=(l.t("members.pages")) {
                a rel="next" href=(url(&ui.path, &[("cursor".into(), next.clone())])) { (l.t("members.more")) }
            }
        }
        @if grantable.is_some() {
            h2 #add-title { (l.t("members.add")) }
            (form::summary(l, problems, &placed, &format!("/projects/{project}/members")))
            form.stack #member-form method="post" action=(format!("/projects/{project}/members")) aria-labelledby="add-title" novalidate {
                (csrf(&who.session.csrf_token))
                @if let Some(users) = &users {
                    div.field {
                        @let (bad, described) = invalid(problems, "user_id", "f-user_id");
                        label for="f-user_id" { (l.t("members.user")) }
                        select #f-user_id name="user_id" aria-invalid=[bad] aria-describedby=[described] {
                            @for u in users {
                                option value=(u.id) selected[posted.get("user_id") == u.id] { (u.email) @if u.name != u.email { " (" (u.name) ")" } }
                            }
                        }
                        (messages(problems, "user_id", "f-user_id"))
                    }
                } @else {
                    (form::input(problems, "text", "user_id", l.t("members.user_id"), posted.get("user_id"), Some(l.t("members.user_id_hint"))))
                }
                div.field {
                    @let (bad, described) = invalid(problems, "role", "f-role");
                    label for="f-role" { (l.t("members.role")) }
                    select #f-role name="role" aria-invalid=[bad] aria-describedby=[described] {
                        @for r in &grantable_roles {
                            option value=(r.as_str()) selected[r.as_str() == chosen_role] { (role_label(l, *r)) }
                        }
                    }
                    (messages(problems, "role", "f-role"))
                }
                button.primary #add type="submit" { (l.t("members.add_button")) }
            }
        }
    };
    html(ui, problems.status(), layout(ui, Some(who), &title, body))
}

/// `POST /projects/{project}/members`: add a user (or change its role) from the form.
pub async fn add(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path(project): Path<String>,
    Writer(w): Writer,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let posted = Posted(pairs);
    let user_id = posted.get("user_id").trim().to_string();
    set(ui, s, who, project, user_id, w, posted).await
}

/// `POST /projects/{project}/members/{user_id}`: change a member's role.
pub async fn change(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path((project, user_id)): Path<(String, String)>,
    Writer(w): Writer,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    set(ui, s, who, project, user_id, w, Posted(pairs)).await
}

async fn set(
    ui: Ui,
    s: AppState,
    who: SignedIn,
    project: String,
    user_id: String,
    w: hata_store::WriteMeta,
    posted: Posted,
) -> Response {
    if let Err(e) = who.check_csrf(posted.get("csrf")) {
        return error_page(&ui, Some(&who), e);
    }
    // The API's access for `PUT …/members/{user_id}` first, then its own rule on the role.
    if let Err(d) = authorize(&who.principal, Need::Own(&project)) {
        return error_page(&ui, Some(&who), AppError::Forbidden(d.0));
    }
    if user_id.is_empty() {
        let mut problems = Problems::none();
        problems.field("user_id", ui.l.t("members.user_missing"));
        return page(
            &ui,
            &s,
            &who,
            &project,
            &ListQuery::default(),
            &posted,
            &problems,
        )
        .await;
    }
    match put_member(
        &s,
        &who.principal,
        &w,
        project.clone(),
        user_id,
        posted.get("role"),
    )
    .await
    {
        Ok(out) => {
            let email = out
                .value
                .as_ref()
                .and_then(|v| v.get("email"))
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string();
            see_other(&url(
                &format!("/projects/{project}/members"),
                &[("done".into(), email)],
            ))
        }
        Err(e) => match Problems::of(e) {
            Ok(problems) => {
                page(
                    &ui,
                    &s,
                    &who,
                    &project,
                    &ListQuery::default(),
                    &posted,
                    &problems,
                )
                .await
            }
            // A user id that names nobody is the form's problem, shown next to the field.
            Err(AppError::Store(hata_store::StoreError::NotFound(what)))
                if what.starts_with("user") =>
            {
                let mut problems = Problems::none();
                problems.status = Some(StatusCode::NOT_FOUND);
                problems.fields.push(hata_core::validate::FieldError::new(
                    "user_id",
                    format!("{what} not found"),
                ));
                page(
                    &ui,
                    &s,
                    &who,
                    &project,
                    &ListQuery::default(),
                    &posted,
                    &problems,
                )
                .await
            }
            Err(e) => error_page(&ui, Some(&who), e),
        },
    }
}

#[derive(Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /projects/{project}/members/{user_id}/remove`
pub async fn remove(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path((project, user_id)): Path<(String, String)>,
    Writer(w): Writer,
    Form(form): Form<RemoveForm>,
) -> Response {
    if let Err(e) = who.check_csrf(&form.csrf) {
        return error_page(&ui, Some(&who), e);
    }
    if let Err(d) = authorize(&who.principal, Need::Own(&project)) {
        return error_page(&ui, Some(&who), AppError::Forbidden(d.0));
    }
    match s
        .write(
            &w,
            WriteOp::DeleteMember {
                project: project.clone(),
                user_id: user_id.clone(),
            },
        )
        .await
    {
        Ok(_) => see_other(&url(
            &format!("/projects/{project}/members"),
            &[("done".into(), user_id)],
        )),
        Err(e) => error_page(&ui, Some(&who), e),
    }
}
