//! A project's environments: the list (with revision and whether each is protected), and for
//! the project's owners a form to create one and a button per environment to mark it protected
//! or not. Writes go through `AppState::write` (`CreateEnvironment`; `UpdateEnvironment` with
//! the version the page showed), with the API's access (`Need::Own`, as
//! `POST /projects/{p}/environments` and `PUT …/environments/{env}`); the store decides what
//! a protected environment allows.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Form;
use hata_access::{authorize, Need};
use hata_core::model::Environment;
use hata_server::error::AppError;
use hata_server::routes::Writer;
use hata_server::AppState;
use hata_store::{Expected, WriteOp};
use maud::html;
use serde::Deserialize;

use crate::flags::short_time;
use crate::form::{self, csrf, Posted, Problems};
use crate::page::{error_page, html, layout, see_other, SignedIn, Ui};

#[derive(Deserialize, Default)]
pub struct ListQuery {
    /// The key of the environment just created or changed.
    done: Option<String>,
}

/// `GET /projects/{project}/environments`
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
        &Posted::default(),
        &Problems::none(),
        q.done.as_deref(),
    )
    .await
}

async fn page(
    ui: &Ui,
    s: &AppState,
    who: &SignedIn,
    project: &str,
    posted: &Posted,
    problems: &Problems,
    done: Option<&str>,
) -> Response {
    if let Err(d) = authorize(&who.principal, Need::Read(project)) {
        return error_page(ui, Some(who), AppError::Forbidden(d.0));
    }
    let owns = authorize(&who.principal, Need::Own(project)).is_ok();
    let loaded = async {
        let record = s.store.get_project(project).await?;
        let envs = s.store.list_environments(project).await?;
        Ok::<_, hata_store::StoreError>((record, envs))
    }
    .await;
    let (record, envs) = match loaded {
        Ok(found) => found,
        Err(e) => return error_page(ui, Some(who), e.into()),
    };
    let l = ui.l;
    let title = l.f("environments.title", &[("project", &record.project.name)]);
    let placed: Vec<String> = ["key", "name", "description", "protected"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let body = html! {
        h1 { (title) }
        @if let Some(done) = done {
            p.notice #done role="status" { (l.f("environments.saved", &[("environment", done)])) }
        }
        table #environments {
            caption.skip { (title) }
            thead {
                tr {
                    th scope="col" { (l.t("environments.key")) }
                    th scope="col" { (l.t("environments.name")) }
                    th scope="col" { (l.t("environments.description")) }
                    th scope="col" { (l.t("environments.protection")) }
                    th scope="col" { (l.t("environments.revision")) }
                    th scope="col" { (l.t("environments.updated")) }
                }
            }
            tbody {
                @for env in &envs {
                    @let e = &env.environment;
                    tr data-environment=(e.key) {
                        td.key { (e.key) }
                        td { (e.name) }
                        td { (e.description) }
                        td {
                            div.switch {
                                @if e.protected {
                                    span.tag.protected { (l.t("env.protected")) }
                                } @else {
                                    span.muted { (l.t("environments.unprotected")) }
                                }
                                @if owns {
                                    form method="post" action=(format!("/projects/{project}/environments/{}/protection", e.key)) {
                                        (csrf(&who.session.csrf_token))
                                        input type="hidden" name="version" value=(env.version);
                                        input type="hidden" name="protected" value=(if e.protected { "false" } else { "true" });
                                        button type="submit" {
                                            (if e.protected { l.t("environments.unprotect") } else { l.t("environments.protect") })
                                            span.vh { " " (l.f("environments.which", &[("environment", &e.name)])) }
                                        }
                                    }
                                }
                            }
                        }
                        td.num { (env.revision) }
                        td.muted { (short_time(&env.updated_at)) }
                    }
                }
            }
        }
        @if owns {
            h2 #new-title { (l.t("environments.new")) }
            (form::summary(l, problems, &placed, &format!("/projects/{project}/environments")))
            form.stack #environment-form method="post" action=(format!("/projects/{project}/environments")) aria-labelledby="new-title" novalidate {
                (csrf(&who.session.csrf_token))
                (form::input(problems, "text", "key", l.t("environments.key"), posted.get("key"), Some(l.t("environments.key_hint"))))
                (form::input(problems, "text", "name", l.t("environments.name"), posted.get("name"), None))
                (form::input(problems, "text", "description", l.t("environments.description"), posted.get("description"), None))
                div.field.check {
                    input type="checkbox" id="f-protected" name="protected" value="true" checked[posted.ticked("protected")] aria-describedby="f-protected-hint";
                    label for="f-protected" { (l.t("environments.protected_label")) }
                    span.muted.hint #f-protected-hint { (l.t("environments.protected_hint")) }
                }
                button.primary #create type="submit" { (l.t("environments.create")) }
            }
        }
    };
    html(ui, problems.status(), layout(ui, Some(who), &title, body))
}

/// `POST /projects/{project}/environments`
pub async fn create(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path(project): Path<String>,
    Writer(w): Writer,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let posted = Posted(pairs);
    if let Err(e) = who.check_csrf(posted.get("csrf")) {
        return error_page(&ui, Some(&who), e);
    }
    if let Err(d) = authorize(&who.principal, Need::Own(&project)) {
        return error_page(&ui, Some(&who), AppError::Forbidden(d.0));
    }
    let environment = Environment {
        key: posted.get("key").trim().to_string(),
        name: posted.get("name").trim().to_string(),
        description: posted.get("description").to_string(),
        protected: posted.ticked("protected"),
    };
    let key = environment.key.clone();
    let op = WriteOp::CreateEnvironment {
        project: project.clone(),
        environment,
    };
    match s.write(&w, op).await {
        Ok(_) => see_other(&format!("/projects/{project}/environments?done={key}")),
        Err(e) => match Problems::of(e) {
            Ok(problems) => page(&ui, &s, &who, &project, &posted, &problems, None).await,
            Err(e) => error_page(&ui, Some(&who), e),
        },
    }
}

#[derive(Deserialize)]
pub struct ProtectionForm {
    #[serde(default)]
    csrf: String,
    protected: bool,
    /// The environment's version the page showed: a change since is a 412.
    version: i64,
}

/// `POST /projects/{project}/environments/{env}/protection`: mark protected or not.
pub async fn protection(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path((project, env)): Path<(String, String)>,
    Writer(w): Writer,
    Form(form): Form<ProtectionForm>,
) -> Response {
    if let Err(e) = who.check_csrf(&form.csrf) {
        return error_page(&ui, Some(&who), e);
    }
    if let Err(d) = authorize(&who.principal, Need::Own(&project)) {
        return error_page(&ui, Some(&who), AppError::Forbidden(d.0));
    }
    let record = match s.store.get_environment(&project, &env).await {
        Ok(r) => r,
        Err(e) => return error_page(&ui, Some(&who), e.into()),
    };
    let op = WriteOp::UpdateEnvironment {
        project: project.clone(),
        key: env.clone(),
        expected_version: Expected::version(form.version),
        environment: Environment {
            protected: form.protected,
            ..record.environment
        },
    };
    match s.write(&w, op).await {
        Ok(_) => see_other(&format!("/projects/{project}/environments?done={env}")),
        Err(e) => error_page(&ui, Some(&who), e),
    }
}
