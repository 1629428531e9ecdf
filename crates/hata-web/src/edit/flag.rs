//! A flag's own fields and its variants: name, description, owner, tags, temporary, and the
//! variants (key, value, name, description), saved as the API's JSON Merge Patch of the
//! flag-level fields (`WriteOp::PatchFlag`) with the version the form was opened at as its
//! `If-Match`. The draft and its widgets are shared with `create`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use hata_access::{authorize, Need};
use hata_core::model::{Flag, FlagType, Variant};
use hata_core::validate::FieldError;
use hata_server::error::AppError;
use hata_server::routes::Writer;
use hata_server::AppState;
use hata_store::{Expected, WriteOp};
use maud::{html, Markup};
use serde_json::{json, Value};

use super::{parse_value, split_list, value_text, Errors, Failure, Fields, KEY_PATTERN};
use crate::i18n::L;
use crate::page::{error_page, html, layout, see_other, SignedIn, Ui};

/// One variant as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VariantDraft {
    pub key: String,
    pub value: String,
    pub name: String,
    pub description: String,
}

/// A flag's own fields as typed (`key` and `flag_type` only matter when creating).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlagDraft {
    pub key: String,
    pub flag_type: String,
    pub name: String,
    pub description: String,
    pub owner: String,
    /// Comma-separated.
    pub tags: String,
    pub temporary: bool,
    pub variants: Vec<VariantDraft>,
}

impl FlagDraft {
    pub fn of(flag: &Flag) -> FlagDraft {
        FlagDraft {
            key: flag.key.clone(),
            flag_type: flag.flag_type.as_str().to_string(),
            name: flag.name.clone(),
            description: flag.description.clone(),
            owner: flag.owner.clone(),
            tags: flag.tags.join(", "),
            temporary: flag.temporary,
            variants: flag
                .variants
                .iter()
                .map(|v| VariantDraft {
                    key: v.key.clone(),
                    value: value_text(&v.value),
                    name: v.name.clone().unwrap_or_default(),
                    description: v.description.clone().unwrap_or_default(),
                })
                .collect(),
        }
    }

    /// The form's fields; variant rows left blank are dropped (so the rows shown again are
    /// numbered as the request body is, and hata-core's error paths find them).
    pub fn parse(f: &Fields) -> FlagDraft {
        let variants = f
            .indices("variants")
            .into_iter()
            .map(|i| VariantDraft {
                key: f.get(&format!("variants[{i}].key")).trim().to_string(),
                value: f.get(&format!("variants[{i}].value")).to_string(),
                name: f.get(&format!("variants[{i}].name")).trim().to_string(),
                description: f.get(&format!("variants[{i}].description")).to_string(),
            })
            .filter(|v| *v != VariantDraft::default() && !f.checked(&format!("remove.{}", v.key)))
            .collect();
        FlagDraft {
            key: f.get("key").trim().to_string(),
            flag_type: f.get("type").to_string(),
            name: f.get("name").trim().to_string(),
            description: f.get("description").to_string(),
            owner: f.get("owner").trim().to_string(),
            tags: f.get("tags").to_string(),
            temporary: f.checked("temporary"),
            variants,
        }
    }

    /// The variants as the model takes them; a value that is not of the flag's type is an
    /// error at `variants[i].value`, as hata-core would name it.
    pub fn variants(&self, l: L, flag_type: FlagType) -> Result<Vec<Variant>, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut out = Vec::new();
        for (i, v) in self.variants.iter().enumerate() {
            match parse_value(l, flag_type, &v.value) {
                Ok(value) => out.push(Variant {
                    key: v.key.clone(),
                    value,
                    name: (!v.name.is_empty()).then(|| v.name.clone()),
                    description: (!v.description.is_empty()).then(|| v.description.clone()),
                }),
                Err(message) => {
                    errors.push(FieldError::new(format!("variants[{i}].value"), message))
                }
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    pub fn tag_list(&self) -> Vec<String> {
        split_list(&self.tags, true)
    }

    /// The merge patch of the flag-level fields.
    fn patch(&self, variants: Vec<Variant>) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "owner": self.owner,
            "tags": self.tag_list(),
            "temporary": self.temporary,
            "variants": variants,
        })
    }
}

/// A labelled text input with its errors.
pub fn text_input(
    errors: &Errors,
    label: &str,
    name: &str,
    value: &str,
    extra: InputExtra<'_>,
) -> Markup {
    let (invalid, described) = errors.aria(name);
    html! {
        label {
            span { (label) @if extra.required { " " span.muted aria-hidden="true" { "*" } } }
            input type=(extra.kind) name=(name) value=(value) required[extra.required]
                pattern=[extra.pattern] step=[extra.step] min=[extra.min] max=[extra.max]
                placeholder=[extra.placeholder] autocomplete="off"
                aria-invalid=[invalid] aria-describedby=[described];
            (errors.at(name))
        }
    }
}

/// What an input adds to a plain text input.
#[derive(Clone, Copy)]
pub struct InputExtra<'a> {
    pub kind: &'a str,
    pub required: bool,
    pub pattern: Option<&'a str>,
    pub step: Option<&'a str>,
    pub min: Option<&'a str>,
    pub max: Option<&'a str>,
    pub placeholder: Option<&'a str>,
}

impl Default for InputExtra<'_> {
    fn default() -> Self {
        InputExtra {
            kind: "text",
            required: false,
            pattern: None,
            step: None,
            min: None,
            max: None,
            placeholder: None,
        }
    }
}

/// The fields every flag has (`with_key`: the key and type too, when creating).
pub fn fields(l: L, draft: &FlagDraft, errors: &Errors, with_key: bool) -> Markup {
    html! {
        @if with_key {
            (text_input(errors, l.t("edit.key"), "key", &draft.key, InputExtra {
                required: true, pattern: Some(KEY_PATTERN), ..Default::default()
            }))
            label {
                span { (l.t("edit.type")) }
                select name="type" {
                    @for t in [FlagType::Boolean, FlagType::String, FlagType::Number, FlagType::Json] {
                        option value=(t.as_str()) selected[draft.flag_type == t.as_str()] { (t.as_str()) }
                    }
                }
                (errors.at("type"))
            }
        }
        (text_input(errors, l.t("edit.name"), "name", &draft.name, InputExtra::default()))
        label {
            span { (l.t("edit.description")) }
            @let (invalid, described) = errors.aria("description");
            textarea name="description" rows="2" aria-invalid=[invalid] aria-describedby=[described] { (draft.description) }
            (errors.at("description"))
        }
        (text_input(errors, l.t("edit.owner"), "owner", &draft.owner, InputExtra::default()))
        (text_input(errors, l.t("edit.tags"), "tags", &draft.tags, InputExtra { placeholder: Some("web, checkout"), ..Default::default() }))
        label.check {
            input type="checkbox" name="temporary" value="1" checked[draft.temporary];
            span { (l.t("edit.temporary")) }
        }
    }
}

/// The variants table: the rows typed, then `blank` empty rows for new ones.
pub fn variants_table(
    l: L,
    draft: &FlagDraft,
    errors: &Errors,
    flag_type: Option<FlagType>,
    blank: usize,
    removable: bool,
) -> Markup {
    let rows = draft
        .variants
        .iter()
        .cloned()
        .chain(std::iter::repeat_n(VariantDraft::default(), blank));
    let value_extra = match flag_type {
        Some(FlagType::Number) => InputExtra {
            kind: "number",
            step: Some("any"),
            ..Default::default()
        },
        Some(FlagType::Boolean) => InputExtra {
            pattern: Some("true|false"),
            placeholder: Some("true"),
            ..Default::default()
        },
        _ => InputExtra::default(),
    };
    html! {
        fieldset #variants-edit {
            legend { (l.t("edit.variants")) }
            (errors.at("variants"))
            table.edit {
                thead {
                    tr {
                        th scope="col" { (l.t("flag.variant_key")) }
                        th scope="col" { (l.t("flag.variant_value")) }
                        th scope="col" { (l.t("flag.variant_name")) }
                        th scope="col" { (l.t("edit.description")) }
                        @if removable { th scope="col" { (l.t("edit.remove")) } }
                    }
                }
                tbody {
                    @for (i, v) in rows.enumerate() {
                        @let n = (i + 1).to_string();
                        tr {
                            td { (cell(errors, &l.f("edit.variant_key_n", &[("n", &n)]), &format!("variants[{i}].key"), &v.key,
                                InputExtra { pattern: Some(KEY_PATTERN), ..Default::default() })) }
                            td { (cell(errors, &l.f("edit.variant_value_n", &[("n", &n)]), &format!("variants[{i}].value"), &v.value, value_extra)) }
                            td { (cell(errors, &l.f("edit.variant_name_n", &[("n", &n)]), &format!("variants[{i}].name"), &v.name, InputExtra::default())) }
                            td { (cell(errors, &l.f("edit.variant_description_n", &[("n", &n)]), &format!("variants[{i}].description"), &v.description, InputExtra::default())) }
                            @if removable {
                                td {
                                    @if !v.key.is_empty() {
                                        label.check {
                                            input type="checkbox" name=(format!("remove.{}", v.key)) value="1";
                                            span.vh { (l.f("edit.remove_variant", &[("variant", &v.key)])) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// An input in a table cell: its label read by screen readers only (the column header shows
/// it to the eye).
pub fn cell(
    errors: &Errors,
    label: &str,
    name: &str,
    value: &str,
    extra: InputExtra<'_>,
) -> Markup {
    let (invalid, described) = errors.aria(name);
    html! {
        label {
            span.vh { (label) }
            input type=(extra.kind) name=(name) value=(value) required[extra.required]
                pattern=[extra.pattern] step=[extra.step] min=[extra.min] max=[extra.max]
                placeholder=[extra.placeholder] autocomplete="off"
                aria-invalid=[invalid] aria-describedby=[described];
        }
        (errors.at(name))
    }
}

/// `GET /projects/{project}/flags/{flag}/edit`
pub async fn show(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path((project, key)): Path<(String, String)>,
) -> Response {
    if let Err(d) = authorize(&who.principal, Need::Write(&project)) {
        return error_page(&ui, Some(&who), AppError::Forbidden(d.0));
    }
    match s.store.get_flag(&project, &key).await {
        Ok(flag) => {
            let draft = FlagDraft::of(&flag);
            page(
                &ui,
                &who,
                &project,
                &flag,
                &draft,
                flag.version,
                &Errors::default(),
                None,
            )
        }
        Err(e) => error_page(&ui, Some(&who), e.into()),
    }
}

/// `POST /projects/{project}/flags/{flag}/edit`: `action=more` shows another blank variant
/// row, `action=save` saves.
pub async fn submit(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path((project, key)): Path<(String, String)>,
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
    let flag = match s.store.get_flag(&project, &key).await {
        Ok(flag) => flag,
        Err(e) => return error_page(&ui, Some(&who), e.into()),
    };
    let draft = FlagDraft::parse(&f);
    let Ok(opened) = f.get("version").parse::<i64>() else {
        return error_page(
            &ui,
            Some(&who),
            AppError::BadRequest("version: not a number".into()),
        );
    };
    if f.get("action") != "save" {
        return page(
            &ui,
            &who,
            &project,
            &flag,
            &draft,
            opened,
            &Errors::default(),
            None,
        );
    }
    let failure = match draft.variants(ui.l, flag.flag_type) {
        Err(errors) => Failure::Invalid(errors),
        Ok(variants) => {
            let op = WriteOp::PatchFlag {
                project: project.clone(),
                key: key.clone(),
                expected_version: Expected::version(opened),
                patch: draft.patch(variants),
            };
            match s.write(&w, op).await {
                Ok(_) => return see_other(&format!("/projects/{project}/flags/{key}")),
                Err(e) => e.into(),
            }
        }
    };
    match failure {
        Failure::Invalid(errors) => page(
            &ui,
            &who,
            &project,
            &flag,
            &draft,
            opened,
            &Errors::new(errors),
            None,
        ),
        // The form again at the current version, the user's edits kept, and what changed.
        Failure::Conflict => page(
            &ui,
            &who,
            &project,
            &flag,
            &draft,
            flag.version,
            &Errors::default(),
            Some(opened),
        ),
        Failure::Other(e) => error_page(&ui, Some(&who), e),
    }
}

#[allow(clippy::too_many_arguments)]
fn page(
    ui: &Ui,
    who: &SignedIn,
    project: &str,
    flag: &Flag,
    draft: &FlagDraft,
    version: i64,
    errors: &Errors,
    conflict_from: Option<i64>,
) -> Response {
    let l = ui.l;
    let title = l.f("edit.flag_title", &[("flag", &flag.key)]);
    let form = html! {
        form.edit method="post" {
            input type="hidden" name="csrf" value=(who.session.csrf_token);
            input type="hidden" name="version" value=(version);
            div.grid { (fields(l, draft, errors, false)) }
            (variants_table(l, draft, errors, Some(flag.flag_type), 1, true))
            div.actions {
                button type="submit" name="action" value="more" { (l.t("edit.more_rows")) }
                button.primary #save type="submit" name="action" value="save" {
                    (if conflict_from.is_some() { l.f("edit.reapply", &[("version", &version.to_string())]) } else { l.t("edit.save").to_string() })
                }
                a href=(format!("/projects/{project}/flags/{}", flag.key)) { (l.t("switch.cancel")) }
            }
        }
    };
    let body = html! {
        p { a href=(format!("/projects/{project}/flags/{}", flag.key)) { "← " (flag.key) } }
        h1 { (title) }
        @if let Some(opened) = conflict_from {
            (conflict_notice(l, opened, flag, &serde_json::to_string_pretty(&json!({
                "name": flag.name, "description": flag.description, "owner": flag.owner,
                "tags": flag.tags, "temporary": flag.temporary, "variants": flag.variants,
            })).unwrap_or_default(), &format!("/projects/{project}/flags/{}/edit", flag.key)))
        }
        (errors.unclaimed(l))
        (form)
    };
    let status = if conflict_from.is_some() {
        StatusCode::PRECONDITION_FAILED
    } else if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    html(ui, status, layout(ui, Some(who), &title, body))
}

/// The 412 as a page shows it: who changed the flag since, its current state, and the two
/// ways on (re-apply the edits below, or reload and lose them).
pub fn conflict_notice(l: L, opened: i64, flag: &Flag, current: &str, reload: &str) -> Markup {
    html! {
        section.notice #conflict role="alert" aria-labelledby="conflict-title" {
            h2 #conflict-title { (l.t("edit.conflict_title")) }
            p { (l.f("edit.conflict_text", &[("opened", &opened.to_string()), ("version", &flag.version.to_string()),
                ("at", flag.updated_at.as_deref().map(crate::flags::short_time).as_deref().unwrap_or(""))])) }
            details open {
                summary { (l.t("edit.conflict_current")) }
                pre.json { code { (current) } }
            }
            p { a #reload href=(reload) { (l.t("edit.conflict_reload")) } }
        }
    }
}
