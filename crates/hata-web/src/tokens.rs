//! API tokens: the list (never a secret) with when each stops working (its expiry, or the
//! maximum token age counted from its creation or last rotation: `TokenView`, as
//! `GET /tokens` says it) and a warning for those due for rotation (within 14 days) or past
//! it; a form to create one; per token, rotate (the old secret keeps working for the grace
//! chosen) and revoke (after a confirmation).
//!
//! A new secret — after a create or a rotation — is in that one answer only (`201`, never
//! cached: `Cache-Control: no-store` on every page); nothing stores it and no page shows it
//! again. The rules are the API's own functions (`routes::tokens::{list_tokens,
//! create_token, rotate_token, revoke_token}`): admins see and manage every token, owners
//! those of their projects (up to their own role), others none.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use hata_access::{Role, TokenKind};
use hata_server::routes::tokens::{
    create_token, list_tokens, revoke_token, rotate_token, TokenRequest, TokenView,
};
use hata_server::routes::Writer;
use hata_server::AppState;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use crate::flags::short_time;
use crate::form::{self, csrf, invalid, messages, Posted, Problems};
use crate::i18n::L;
use crate::page::{error_page, html, layout, see_other, url, SignedIn, Ui};

/// Tokens per page.
const PAGE_SIZE: usize = 100;

#[derive(Deserialize, Default)]
pub struct ListQuery {
    /// `1`: only tokens due for rotation (or past it).
    due: Option<String>,
    cursor: Option<String>,
    /// The id of a token just revoked.
    revoked: Option<String>,
}

/// The projects whose tokens the user may create: all for admins, else those it owns.
async fn manageable_projects(
    s: &AppState,
    who: &SignedIn,
) -> Result<Vec<String>, hata_store::StoreError> {
    if who.principal.admin {
        let page = s
            .store
            .list_projects_among(None, hata_store::read::MAX_PAGE, None)
            .await?;
        return Ok(page.items.into_iter().map(|p| p.project.key).collect());
    }
    Ok(who
        .principal
        .projects
        .iter()
        .filter(|(_, role)| **role == Role::Owner)
        .map(|(p, _)| p.clone())
        .collect())
}

/// `GET /tokens`
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
    let due = q.due.as_deref() == Some("1");
    let loaded = async {
        let tokens = list_tokens(s, &who.principal, due, PAGE_SIZE, q.cursor.as_deref()).await?;
        let projects = manageable_projects(s, who).await?;
        let mut environments = Vec::new();
        for p in &projects {
            for env in s.store.list_environments(p).await? {
                environments.push(env.environment.key);
            }
        }
        environments.sort();
        environments.dedup();
        Ok::<_, hata_server::error::AppError>((tokens, projects, environments))
    }
    .await;
    let (tokens, projects, environments) = match loaded {
        Ok(found) => found,
        Err(e) => return error_page(ui, Some(who), e),
    };
    let l = ui.l;
    let title = l.t("tokens.title");
    let may_create = who.principal.admin || !projects.is_empty();
    let due_count = tokens.items.iter().filter(|t| t.standing != "good").count();
    let body = html! {
        h1 { (title) }
        @if let Some(id) = &q.revoked {
            p.notice #done role="status" { (l.f("tokens.revoked", &[("id", id)])) }
        }
        @if due_count > 0 && !due {
            p.notice #due-warning role="status" {
                (l.f("tokens.due_warning", &[("count", &due_count.to_string())])) " "
                a href=(url("/tokens", &[("due".into(), "1".into())])) { (l.t("tokens.show_due")) }
            }
        }
        form.filters method="get" action="/tokens" {
            div.field.check {
                input type="checkbox" id="due" name="due" value="1" checked[due];
                label for="due" { (l.t("tokens.due_only")) }
            }
            button type="submit" { (l.t("tokens.apply")) }
        }
        @if tokens.items.is_empty() {
            p.muted { (l.t("tokens.none")) }
        } @else {
            table #tokens {
                caption.skip { (title) }
                thead {
                    tr {
                        th scope="col" { (l.t("tokens.name")) }
                        th scope="col" { (l.t("tokens.kind")) }
                        th scope="col" { (l.t("tokens.scope")) }
                        th scope="col" { (l.t("tokens.created")) }
                        th scope="col" { (l.t("tokens.expires")) }
                        th scope="col" { (l.t("tokens.due_at")) }
                        th scope="col" { (l.t("tokens.last_used")) }
                        th scope="col" { (l.t("tokens.actions")) }
                    }
                }
                tbody {
                    @for t in &tokens.items {
                        (row(l, who, t))
                    }
                }
            }
        }
        @if let Some(next) = &tokens.next_cursor {
            nav.pager aria-label=(l.t("tokens.pages")) {
                a rel="next" href=(ui.with(&[("cursor", Some(next))])) { (l.t("tokens.more")) }
            }
        }
        @if may_create {
            (create_form(l, who, &projects, &environments, posted, problems))
        }
    };
    html(ui, problems.status(), layout(ui, Some(who), title, body))
}

fn row(l: L, who: &SignedIn, v: &TokenView) -> Markup {
    let t = &v.token;
    let label = if t.name.is_empty() {
        t.id.as_str()
    } else {
        t.name.as_str()
    };
    html! {
        tr data-token=(t.id) {
            td { (t.name) br; span.key.muted { (t.id) } }
            td { (t.kind.as_str()) @if let Some(role) = t.role { " (" (role.as_str()) ")" } }
            td.key {
                (t.project.as_deref().unwrap_or(""))
                @if let Some(env) = &t.environment { " / " (env) }
            }
            td.muted { (short_time(&t.created_at)) }
            td { (t.expires_at.as_deref().map(short_time).unwrap_or_else(|| l.t("tokens.never").into())) }
            td {
                (v.due_at.as_deref().map(short_time).unwrap_or_else(|| l.t("tokens.never").into()))
                @if v.standing == "due_soon" {
                    " " span.tag.warn { (l.t("tokens.due_soon")) }
                } @else if v.standing == "overdue" {
                    " " span.tag.bad { (l.t("tokens.overdue")) }
                }
                @if let (Some(at), Some(until)) = (&t.rotated_at, &t.previous_valid_until) {
                    br;
                    span.muted { (l.f("tokens.rotated", &[("at", &short_time(at)), ("until", &short_time(until))])) }
                }
            }
            td.muted { (t.last_used_at.as_deref().map(short_time).unwrap_or_default()) }
            td {
                div.actions {
                    form method="post" action=(format!("/tokens/{}/rotate", t.id)) {
                        (csrf(&who.session.csrf_token))
                        label for=(format!("grace-{}", t.id)) { (l.t("tokens.grace")) }
                        select id=(format!("grace-{}", t.id)) name="grace" {
                            option value="now" { (l.t("tokens.grace_now")) }
                            option value="1h" { (l.t("tokens.grace_hour")) }
                            option value="24h" selected { (l.t("tokens.grace_day")) }
                            option value="7d" { (l.t("tokens.grace_week")) }
                        }
                        button type="submit" {
                            (l.t("tokens.rotate")) span.vh { " " (label) }
                        }
                    }
                    form method="post" action=(format!("/tokens/{}/revoke", t.id)) {
                        (csrf(&who.session.csrf_token))
                        button.danger type="submit" { (l.t("tokens.revoke")) span.vh { " " (label) } }
                    }
                }
            }
        }
    }
}

fn create_form(
    l: L,
    who: &SignedIn,
    projects: &[String],
    environments: &[String],
    posted: &Posted,
    problems: &Problems,
) -> Markup {
    let placed: Vec<String> = [
        "name",
        "kind",
        "project",
        "environment",
        "role",
        "expires_at",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let kind = if posted.get("kind").is_empty() {
        "server"
    } else {
        posted.get("kind")
    };
    let select = |name: &str, label: &str, options: Vec<(String, String)>, chosen: &str| {
        let id = format!("f-{name}");
        let (bad, described) = invalid(problems, name, &id);
        html! {
            div.field {
                label for=(id) { (label) }
                select id=(id) name=(name) aria-invalid=[bad] aria-describedby=[described] {
                    @for (value, text) in &options {
                        option value=(value) selected[value == chosen] { (text) }
                    }
                }
                (messages(problems, name, &id))
            }
        }
    };
    let mut kinds = Vec::new();
    for k in TokenKind::ALL {
        if k == TokenKind::Admin && !who.principal.admin {
            continue;
        }
        let text = match k {
            TokenKind::Admin => l.t("tokens.kind_admin"),
            TokenKind::Project => l.t("tokens.kind_project"),
            TokenKind::Server => l.t("tokens.kind_server"),
            TokenKind::Client => l.t("tokens.kind_client"),
        };
        kinds.push((k.as_str().to_string(), text.to_string()));
    }
    let mut project_options = vec![(String::new(), l.t("tokens.no_project").to_string())];
    project_options.extend(projects.iter().map(|p| (p.clone(), p.clone())));
    let mut roles = vec![(String::new(), l.t("tokens.no_role").to_string())];
    roles.extend(
        Role::ALL
            .iter()
            .map(|r| (r.as_str().to_string(), r.as_str().to_string())),
    );
    html! {
        h2 #new-title { (l.t("tokens.new")) }
        (form::summary(l, problems, &placed, "/tokens"))
        form.stack #token-form method="post" action="/tokens" aria-labelledby="new-title" novalidate {
            (csrf(&who.session.csrf_token))
            (form::input(problems, "text", "name", l.t("tokens.name"), posted.get("name"), None))
            (select("kind", l.t("tokens.kind"), kinds, kind))
            (select("project", l.t("tokens.project"), project_options, posted.get("project")))
            div.field {
                label for="f-environment" { (l.t("tokens.environment")) }
                @let (bad, described) = invalid(problems, "environment", "f-environment");
                input type="text" id="f-environment" name="environment" list="environments" value=(posted.get("environment"))
                    aria-invalid=[bad] aria-describedby=(described.map_or("f-environment-hint".to_string(), |d| format!("{d} f-environment-hint")));
                datalist #environments { @for e in environments { option value=(e) {} } }
                span.muted.hint #f-environment-hint { (l.t("tokens.environment_hint")) }
                (messages(problems, "environment", "f-environment"))
            }
            (select("role", l.t("tokens.role"), roles, posted.get("role")))
            (form::input(problems, "date", "expires_at", l.t("tokens.expires"), posted.get("expires_at"), Some(l.t("tokens.expires_hint"))))
            button.primary #create type="submit" { (l.t("tokens.create")) }
        }
    }
}

/// `POST /tokens`
pub async fn create(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Writer(w): Writer,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let posted = Posted(pairs);
    if let Err(e) = who.check_csrf(posted.get("csrf")) {
        return error_page(&ui, Some(&who), e);
    }
    let req = TokenRequest {
        name: posted.get("name").trim().to_string(),
        kind: posted.get("kind").to_string(),
        project: posted.given("project"),
        environment: posted.given("environment"),
        role: posted.given("role"),
        // A date (the date input's value) is the start of that day in UTC; anything else is
        // passed on as typed, for the API's own check to name.
        expires_at: posted.given("expires_at").map(|d| {
            if d.len() == 10 && d.as_bytes().get(4) == Some(&b'-') {
                format!("{d}T00:00:00Z")
            } else {
                d
            }
        }),
    };
    match create_token(&s, &who.principal, &w, req).await {
        Ok((out, secret)) => secret_page(&ui, &who, out.value.as_ref(), &secret, false),
        Err(e) => match Problems::of(e) {
            Ok(problems) => page(&ui, &s, &who, &ListQuery::default(), &posted, &problems).await,
            Err(e) => error_page(&ui, Some(&who), e),
        },
    }
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    csrf: String,
    /// How long the old secret keeps working: `now`, `1h`, `24h` or `7d`.
    #[serde(default)]
    grace: String,
}

/// `POST /tokens/{id}/rotate`
pub async fn rotate(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path(id): Path<String>,
    Writer(w): Writer,
    Form(form): Form<RotateForm>,
) -> Response {
    if let Err(e) = who.check_csrf(&form.csrf) {
        return error_page(&ui, Some(&who), e);
    }
    let grace = match form.grace.as_str() {
        // The API takes a time in the future: "at once" is the next second.
        "now" => time::Duration::seconds(1),
        "1h" => time::Duration::hours(1),
        "7d" => time::Duration::days(7),
        _ => time::Duration::hours(24),
    };
    let until = (time::OffsetDateTime::now_utc() + grace)
        .format(&time::format_description::well_known::Rfc3339)
        .ok();
    match rotate_token(&s, &who.principal, &w, id, until).await {
        Ok((out, secret)) => secret_page(&ui, &who, out.value.as_ref(), &secret, true),
        Err(e) => error_page(&ui, Some(&who), e),
    }
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    /// `1` once confirmed.
    confirm: Option<String>,
}

/// `POST /tokens/{id}/revoke`: asks first, then deletes the token.
pub async fn revoke(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path(id): Path<String>,
    Writer(w): Writer,
    Form(form): Form<RevokeForm>,
) -> Response {
    if let Err(e) = who.check_csrf(&form.csrf) {
        return error_page(&ui, Some(&who), e);
    }
    let l = ui.l;
    if form.confirm.as_deref() != Some("1") {
        // Only a token the user may manage is named on the question.
        let token = match hata_server::routes::tokens::managed_token(&s, &who.principal, &id).await
        {
            Ok(t) => t,
            Err(e) => return error_page(&ui, Some(&who), e),
        };
        let title = l.t("tokens.revoke_title");
        let name = if token.name.is_empty() {
            token.id.clone()
        } else {
            token.name.clone()
        };
        let body = html! {
            h1 { (title) }
            p.notice #confirm-question { (l.f("tokens.revoke_question", &[("token", &name)])) }
            form method="post" {
                (csrf(&form.csrf))
                input type="hidden" name="confirm" value="1";
                button.primary #confirm type="submit" { (l.t("tokens.revoke_confirm")) }
                " "
                a href="/tokens" { (l.t("tokens.cancel")) }
            }
        };
        return html(&ui, StatusCode::OK, layout(&ui, Some(&who), title, body));
    }
    match revoke_token(&s, &who.principal, &w, id.clone()).await {
        Ok(()) => see_other(&url("/tokens", &[("revoked".into(), id)])),
        Err(e) => error_page(&ui, Some(&who), e),
    }
}

/// The one page that shows a secret: right after it was made.
fn secret_page(
    ui: &Ui,
    who: &SignedIn,
    token: Option<&Value>,
    secret: &str,
    rotated: bool,
) -> Response {
    let l = ui.l;
    let text = |k: &str| {
        token
            .and_then(|t| t.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let title = if rotated {
        l.t("tokens.rotated_title")
    } else {
        l.t("tokens.created_title")
    };
    let body = html! {
        h1 { (title) }
        p.notice #once role="status" { (l.t("tokens.secret_once")) }
        dl.facts {
            dt { (l.t("tokens.name")) } dd { (text("name")) }
            dt { (l.t("tokens.id")) } dd.key #token-id { (text("id")) }
            dt { (l.t("tokens.kind")) } dd { (text("kind")) }
            dt { (l.t("tokens.secret")) } dd { code.secret #secret { (secret) } }
            @if rotated {
                dt { (l.t("tokens.old_until")) } dd #old-until { (short_time(&text("previous_valid_until"))) " UTC" }
            }
        }
        p { a #back href="/tokens" { (l.t("tokens.back")) } }
    };
    html(ui, StatusCode::CREATED, layout(ui, Some(who), title, body))
}
