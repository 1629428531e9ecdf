//! Projects, and a project's flags: a row per flag and a column per environment with its
//! on/off state and kill switch; search, tag, owner, type, stale and archived filters, sorting
//! and page numbers in the query (server-side, `Store::sorted_flags`; the stale filter is the
//! stale-flag report's candidates, `hata_reports::stale`, which reads every flag). The switch is a form post through
//! `AppState::write` with the user as the actor; a protected environment asks for
//! confirmation first (or, under `--mfa-required-for-protected`, a session without the second
//! factor is told so), and the answer waits until this server's evaluations serve the new
//! state (`kill`). Viewers get no write controls, and a forged post is a 403.

use std::collections::BTreeSet;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use hata_access::{authorize, Need};
use hata_core::model::{Flag, FlagType};
use hata_reports::StaleOptions;
use hata_server::auth::identity::Identity;
use hata_server::error::AppError;
use hata_server::routes::Writer;
use hata_server::AppState;
use hata_store::{EnvironmentRecord, Expected, FlagFilter, FlagSort, WriteOp};
use maud::{html, Markup};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::i18n::L;
use crate::kill;
use crate::page::{error_page, html, layout, see_other, url, SignedIn, Ui};

/// Flags per page.
pub const PAGE_SIZE: usize = 50;

/// `GET /projects`
pub async fn projects(ui: Ui, State(s): State<AppState>, who: SignedIn) -> Response {
    let among: Option<Vec<String>> =
        (!who.principal.admin).then(|| who.principal.projects.keys().cloned().collect());
    let page = match s
        .store
        .list_projects_among(among.as_deref(), hata_store::read::MAX_PAGE, None)
        .await
    {
        Ok(page) => page,
        Err(e) => return error_page(&ui, Some(&who), e.into()),
    };
    let l = ui.l;
    let title = l.t("projects.title");
    let body = html! {
        h1 { (title) }
        @if page.items.is_empty() {
            p.muted { (l.t("projects.none")) }
        } @else {
            table {
                thead { tr { th scope="col" { (l.t("projects.key")) } th scope="col" { (l.t("projects.name")) } } }
                tbody {
                    @for p in &page.items {
                        tr {
                            td.key { a href=(format!("/projects/{}/flags", p.project.key)) { (p.project.key) } }
                            td { (p.project.name) }
                        }
                    }
                }
            }
        }
    };
    html(&ui, StatusCode::OK, layout(&ui, Some(&who), title, body))
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    tag: Option<String>,
    owner: Option<String>,
    /// `boolean`, `string`, `number` or `json`; anything else (or nothing) is every type.
    #[serde(rename = "type")]
    flag_type: Option<String>,
    /// `1`: only the stale-flag report's candidates (`hata_reports::stale`, default window).
    stale: Option<String>,
    /// `1`: archived flags instead of live ones.
    archived: Option<String>,
    /// `key`, `name` or `updated`.
    sort: Option<String>,
    /// `desc` for descending.
    dir: Option<String>,
    /// From 1.
    page: Option<usize>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_ref()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `GET /projects/{project}/flags`
pub async fn list(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path(project): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Err(d) = authorize(&who.principal, Need::Read(&project)) {
        return error_page(&ui, Some(&who), AppError::Forbidden(d.0));
    }
    let can_write = authorize(&who.principal, Need::Write(&project)).is_ok();
    let flag_type = q.flag_type.as_deref().and_then(parse_type);
    let stale = q.stale.as_deref() == Some("1");
    let mut filter = FlagFilter {
        q: given(&q.q),
        tag: given(&q.tag),
        owner: given(&q.owner),
        archived: Some(q.archived.as_deref() == Some("1")),
        flag_type,
        only: None,
    };
    let sort = match q.sort.as_deref() {
        Some("name") => FlagSort::Name,
        Some("updated") => FlagSort::Updated,
        _ => FlagSort::Key,
    };
    let descending = q.dir.as_deref() == Some("desc");
    let page_no = q.page.unwrap_or(1).max(1);
    let loaded = async {
        let project_record = s.store.get_project(&project).await?;
        let envs = s.store.list_environments(&project).await?;
        if stale {
            filter.only = Some(stale_keys(&s, &project).await?);
        }
        let flags = s
            .store
            .sorted_flags(
                &project,
                &filter,
                sort,
                descending,
                (page_no - 1) * PAGE_SIZE,
                PAGE_SIZE,
            )
            .await?;
        Ok::<_, AppError>((project_record, envs, flags))
    }
    .await;
    let (project_record, envs, flags) = match loaded {
        Ok(found) => found,
        Err(e) => return error_page(&ui, Some(&who), e),
    };
    let l = ui.l;
    let pages = flags.total.div_ceil(PAGE_SIZE).max(1);
    let title = l.f("flags.title", &[("project", &project_record.project.name)]);
    let sort_link = |key: &'static str, label: &str, this: FlagSort| {
        let active = sort == this;
        let next_dir = if active && !descending { "desc" } else { "asc" };
        let aria = match (active, descending) {
            (false, _) => None,
            (true, false) => Some("ascending"),
            (true, true) => Some("descending"),
        };
        html! {
            th scope="col" aria-sort=[aria] {
                a href=(ui.with(&[("sort", Some(key)), ("dir", Some(next_dir)), ("page", None)])) { (label) }
            }
        }
    };
    let back = ui.with(&[]);
    let body = html! {
        h1 { (title) }
        @if can_write { p { a.button #new-flag href=(format!("/projects/{project}/new-flag")) { (l.t("edit.new_flag")) } } }
        form.filters method="get" action=(format!("/projects/{project}/flags")) role="search" {
            label { (l.t("flags.search")) input type="search" name="q" value=[given(&q.q)]; }
            label { (l.t("flags.tag")) input type="text" name="tag" value=[given(&q.tag)]; }
            label { (l.t("flags.owner")) input type="text" name="owner" value=[given(&q.owner)]; }
            label {
                (l.t("flags.type"))
                select name="type" {
                    option value="" { (l.t("flags.any_type")) }
                    @for t in TYPES {
                        option value=(t.as_str()) selected[flag_type == Some(t)] { (t.as_str()) }
                    }
                }
            }
            label.check {
                input type="checkbox" name="stale" value="1" checked[stale];
                (l.f("flags.stale", &[("days", &hata_reports::stale::DEFAULT_DAYS.to_string())]))
            }
            label.check {
                input type="checkbox" name="archived" value="1" checked[filter.archived == Some(true)];
                (l.t("flags.archived"))
            }
            @if let Some(sort) = &q.sort { input type="hidden" name="sort" value=(sort); }
            @if let Some(dir) = &q.dir { input type="hidden" name="dir" value=(dir); }
            button type="submit" { (l.t("flags.apply")) }
        }
        p.muted #count { (l.f("flags.count", &[("count", &flags.total.to_string())])) }
        @if flags.items.is_empty() {
            p { (l.t("flags.none")) }
        } @else {
            table #flags {
                caption.skip { (title) }
                thead {
                    tr {
                        (sort_link("key", l.t("flags.col_key"), FlagSort::Key))
                        (sort_link("name", l.t("flags.col_name"), FlagSort::Name))
                        th scope="col" { (l.t("flags.col_tags")) }
                        @for env in &envs {
                            th scope="col" {
                                (env.environment.name)
                                @if env.environment.protected { " " span.tag { (l.t("env.protected")) } }
                            }
                        }
                        (sort_link("updated", l.t("flags.col_updated"), FlagSort::Updated))
                    }
                }
                tbody {
                    @for flag in &flags.items {
                        tr data-flag=(flag.key) {
                            td.key { a href=(format!("/projects/{project}/flags/{}", flag.key)) { (flag.key) } }
                            td { (flag.name) }
                            td { @for tag in &flag.tags { span.tag { (tag) } } }
                            @for env in &envs {
                                td { (switch(l, &project, flag, env, can_write, &who.session.csrf_token, &back)) }
                            }
                            td.muted { (flag.updated_at.as_deref().map(short_time).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        nav.pager aria-label=(l.t("flags.pages")) {
            @if page_no > 1 {
                a rel="prev" href=(ui.with(&[("page", Some(&(page_no - 1).to_string()))])) { (l.t("flags.prev")) }
            }
            span { (l.f("flags.page_of", &[("page", &page_no.to_string()), ("pages", &pages.to_string())])) }
            @if page_no < pages {
                a rel="next" href=(ui.with(&[("page", Some(&(page_no + 1).to_string()))])) { (l.t("flags.next")) }
            }
        }
    };
    html(&ui, StatusCode::OK, layout(&ui, Some(&who), &title, body))
}

const TYPES: [FlagType; 4] = [
    FlagType::Boolean,
    FlagType::String,
    FlagType::Number,
    FlagType::Json,
];

fn parse_type(name: &str) -> Option<FlagType> {
    TYPES.into_iter().find(|t| t.as_str() == name)
}

/// The keys of the project's flags that the stale-flag report lists as removal candidates
/// (its default window and lifetime): what the list's "stale" filter shows.
async fn stale_keys(s: &AppState, project: &str) -> Result<BTreeSet<String>, AppError> {
    let options = StaleOptions::new(None)?;
    let report = hata_reports::stale(&s.store, options, OffsetDateTime::now_utc()).await?;
    Ok(report
        .candidates
        .into_iter()
        .filter(|c| c.project == project)
        .map(|c| c.flag)
        .collect())
}

/// `2026-12-06T13:30:24.123Z` → `2026-12-06 13:30`.
pub fn short_time(t: &str) -> String {
    t.get(..16).unwrap_or(t).replace('T', " ")
}

/// One environment's state of a flag, with its switch for those who may write.
pub fn switch(
    l: L,
    project: &str,
    flag: &Flag,
    env: &EnvironmentRecord,
    can_write: bool,
    csrf: &str,
    back: &str,
) -> Markup {
    let key = &env.environment.key;
    let on = flag.environments.get(key).is_some_and(|c| c.enabled);
    let (label, class) = if on {
        (l.t("state.on"), "state on")
    } else {
        (l.t("state.off"), "state off")
    };
    html! {
        div.switch {
            span class=(class) { (label) }
            @if can_write && flag.environments.contains_key(key) {
                form method="post" action=(format!("/projects/{project}/flags/{}/environments/{key}/switch", flag.key)) {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="enabled" value=(if on { "false" } else { "true" });
                    input type="hidden" name="version" value=(flag.version);
                    input type="hidden" name="back" value=(back);
                    button type="submit" class=(if on { "danger" } else { "" }) {
                        (if on { l.t("switch.off") } else { l.t("switch.on") })
                        // Read by screen readers after the visible words: which flag, where.
                        span.vh { " " (l.f("switch.where", &[("flag", &flag.key), ("env", &env.environment.name)])) }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct SwitchForm {
    #[serde(default)]
    csrf: String,
    enabled: bool,
    /// The flag's version the page showed: a change since is a conflict (412), not
    /// overwritten.
    version: i64,
    /// `1` once the user confirmed a switch in a protected environment.
    confirm: Option<String>,
    /// The page to return to (a path on this server).
    back: Option<String>,
}

/// `POST /projects/{project}/flags/{flag}/environments/{env}/switch`: the kill switch.
pub async fn flip(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path((project, flag, env)): Path<(String, String, String)>,
    Writer(w): Writer,
    axum::Extension(identity): axum::Extension<std::sync::Arc<Identity>>,
    Form(form): Form<SwitchForm>,
) -> Response {
    let l = ui.l;
    if let Err(e) = who.check_csrf(&form.csrf) {
        return error_page(&ui, Some(&who), e);
    }
    if let Err(d) = authorize(&who.principal, Need::Write(&project)) {
        return error_page(&ui, Some(&who), AppError::Forbidden(d.0));
    }
    let back = match form.back.as_deref() {
        Some(b) if b.starts_with('/') && !b.starts_with("//") && !b.contains('\\') => b.to_string(),
        _ => format!("/projects/{project}/flags"),
    };
    let environment = match s.store.get_environment(&project, &env).await {
        Ok(e) => e,
        Err(e) => return error_page(&ui, Some(&who), e.into()),
    };
    // The API's own policy (`--mfa-required-for-protected`): a session without the second
    // factor may not change a protected environment. Said before asking, with what to do;
    // the store refuses the write anyway (`WriteMeta::protected_refusal`).
    if environment.environment.protected
        && identity.mfa.protected_refusal(who.session.mfa).is_some()
    {
        let title = l.t("kill.mfa_title");
        let body = html! {
            h1 { (title) }
            p.error #mfa-needed role="alert" {
                (l.f("kill.mfa_needed", &[("env", &environment.environment.name)]))
            }
            p { a href=(back) { (l.t("switch.cancel")) } }
        };
        return html(
            &ui,
            StatusCode::FORBIDDEN,
            layout(&ui, Some(&who), title, body),
        );
    }
    if environment.environment.protected && form.confirm.as_deref() != Some("1") {
        let title = l.t("switch.confirm_title");
        let question = if form.enabled {
            l.f(
                "switch.confirm_on",
                &[("flag", &flag), ("env", &environment.environment.name)],
            )
        } else {
            l.f(
                "switch.confirm_off",
                &[("flag", &flag), ("env", &environment.environment.name)],
            )
        };
        let body = html! {
            h1 { (title) }
            p.notice #confirm-question { (question) }
            form method="post" {
                input type="hidden" name="csrf" value=(form.csrf);
                input type="hidden" name="enabled" value=(form.enabled);
                input type="hidden" name="version" value=(form.version);
                input type="hidden" name="back" value=(back);
                input type="hidden" name="confirm" value="1";
                button.primary #confirm type="submit" { (l.t("switch.confirm")) }
                " "
                a href=(back) { (l.t("switch.cancel")) }
            }
        };
        return html(&ui, StatusCode::OK, layout(&ui, Some(&who), title, body));
    }
    let op = WriteOp::PatchFlagConfig {
        project: project.clone(),
        flag: flag.clone(),
        environment: env.clone(),
        expected_version: Expected::version(form.version),
        patch: serde_json::json!({ "enabled": form.enabled }),
    };
    match s.write(&w, op).await {
        // Written; confirmed once this server's evaluations serve it (`kill`).
        Ok(outcome) => {
            let served = kill::wait_served(
                &s.serving,
                &outcome.rule_sets,
                &project,
                &env,
                kill::SERVE_WAIT,
            )
            .await;
            if !served {
                tracing::warn!(%project, %flag, environment = %env,
                    "a kill switch was written but not served here within {:?}", kill::SERVE_WAIT);
            }
            let notice = kill::Notice {
                on: form.enabled,
                served,
                environment: env,
                flag,
            };
            see_other(&notice.onto(&back))
        }
        Err(e) => error_page(&ui, Some(&who), e),
    }
}

/// A link to a project's flag list with these filters (used by the flag page's tags).
pub fn list_url(project: &str, pairs: &[(String, String)]) -> String {
    url(&format!("/projects/{project}/flags"), pairs)
}
