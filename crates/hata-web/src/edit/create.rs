//! A new flag: key, type, name, description, owner, tags, temporary and variants (a boolean
//! flag left without variants gets `on`/`off`), created as the API creates one
//! (`WriteOp::CreateFlag`: hata-core fills the defaults and validates). The flag page follows.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use hata_access::{authorize, Need};
use hata_core::model::{Flag, FlagType};
use hata_core::validate::FieldError;
use hata_server::error::AppError;
use hata_server::routes::Writer;
use hata_server::AppState;
use hata_store::{StoreError, WriteOp};
use maud::html;
use std::collections::BTreeMap;

use super::flag::{fields, variants_table, FlagDraft};
use super::{Errors, Failure, Fields};
use crate::i18n::L;
use crate::page::{error_page, html, layout, see_other, SignedIn, Ui};

/// Blank variant rows a new flag's form offers.
const BLANK_VARIANTS: usize = 3;

/// The flag the draft describes, or the fields that are not of its type.
pub fn to_flag(l: L, draft: &FlagDraft) -> Result<Flag, Vec<FieldError>> {
    let flag_type = match draft.flag_type.as_str() {
        "boolean" => FlagType::Boolean,
        "string" => FlagType::String,
        "number" => FlagType::Number,
        "json" => FlagType::Json,
        _ => return Err(vec![FieldError::new("type", l.t("edit.error_type"))]),
    };
    Ok(Flag {
        key: draft.key.clone(),
        name: draft.name.clone(),
        description: draft.description.clone(),
        owner: draft.owner.clone(),
        tags: draft.tag_list(),
        temporary: draft.temporary,
        lifetime_days: None,
        archived: false,
        flag_type,
        variants: draft.variants(l, flag_type)?,
        environments: BTreeMap::new(),
        version: 0,
        created_at: None,
        updated_at: None,
    })
}

/// `GET /projects/{project}/new-flag`
pub async fn show(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path(project): Path<String>,
) -> Response {
    if let Err(d) = authorize(&who.principal, Need::Write(&project)) {
        return error_page(&ui, Some(&who), AppError::Forbidden(d.0));
    }
    if let Err(e) = s.store.get_project(&project).await {
        return error_page(&ui, Some(&who), e.into());
    }
    let draft = FlagDraft {
        flag_type: "boolean".into(),
        ..FlagDraft::default()
    };
    page(&ui, &who, &project, &draft, &Errors::default())
}

/// `POST /projects/{project}/new-flag`: `action=more` shows more blank variant rows,
/// `action=save` creates the flag.
pub async fn submit(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path(project): Path<String>,
    Writer(w): Writer,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let f = Fields::new(pairs);
    if let Err(e) = who.check_csrf(f.get("csrf")) {
        return error_page(&ui, Some(&who), e);
    }
    if let Err(d) = authorize(&who.principal, Need::Write(&project)) {
        return error_page(&ui, Some(&who), AppError::Forbidden(d.0));
    }
    let draft = FlagDraft::parse(&f);
    if f.get("action") != "save" {
        return page(&ui, &who, &project, &draft, &Errors::default());
    }
    let failure = match to_flag(ui.l, &draft) {
        Err(errors) => Failure::Invalid(errors),
        Ok(flag) => {
            let key = flag.key.clone();
            let op = WriteOp::CreateFlag {
                project: project.clone(),
                flag,
            };
            match s.write(&w, op).await {
                Ok(_) => return see_other(&format!("/projects/{project}/flags/{key}")),
                // A taken key belongs next to the key field.
                Err(AppError::Store(StoreError::AlreadyExists(_))) => {
                    Failure::Invalid(vec![FieldError::new("key", ui.l.t("edit.error_taken"))])
                }
                Err(e) => e.into(),
            }
        }
    };
    match failure {
        Failure::Invalid(errors) => page(&ui, &who, &project, &draft, &Errors::new(errors)),
        Failure::Conflict => error_page(
            &ui,
            Some(&who),
            AppError::BadRequest("a new flag has no version".into()),
        ),
        Failure::Other(e) => error_page(&ui, Some(&who), e),
    }
}

fn page(ui: &Ui, who: &SignedIn, project: &str, draft: &FlagDraft, errors: &Errors) -> Response {
    let l = ui.l;
    let title = l.t("edit.create_title");
    let form = html! {
        form.edit #create method="post" {
            input type="hidden" name="csrf" value=(who.session.csrf_token);
            div.grid { (fields(l, draft, errors, true)) }
            p.muted { (l.t("edit.variants_help")) }
            (variants_table(l, draft, errors, None, BLANK_VARIANTS.saturating_sub(draft.variants.len()).max(1), false))
            div.actions {
                button type="submit" name="action" value="more" { (l.t("edit.more_rows")) }
                button.primary #save type="submit" name="action" value="save" { (l.t("edit.create")) }
                a href=(format!("/projects/{project}/flags")) { (l.t("switch.cancel")) }
            }
        }
    };
    let body = html! {
        p { a href=(format!("/projects/{project}/flags")) { "← " (l.t("flag.back")) } }
        h1 { (title) }
        (errors.unclaimed(l))
        (form)
    };
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    html(ui, status, layout(ui, Some(who), title, body))
}
