//! Editing flags: one module per form, each a draft (the form's fields as typed), its parsing
//! into the model, and its rendering. Handlers stay thin: parse the form → call the domain
//! through `AppState::write` (hata-core validates, as for the API) → render.
//!
//! Shared here: the posted fields (`Fields`), the field errors shown next to their input
//! (`Errors`, matched by the same JSON path hata-core's validation names, since every input is
//! named by its path in the request body), and what a failed write becomes on a page
//! (`Failure`).
//!
//! - `create`: a new flag (key, name, type, variants, tags, owner, temporary).
//! - `flag`: a flag's own fields and its variants.
//! - `config`: one environment's configuration (on/off, targets, rules with conditions and
//!   segments, prerequisites, default serve), with the "who moves" preview and the 412
//!   conflict's re-apply.
//! - `merge`: the three-way merge that re-apply starts from after a 412 (pure).
//! - `moves`: the share of subjects a serve change moves (`hata_core::movement`).

pub mod config;
pub mod create;
pub mod flag;
pub mod merge;
pub mod moves;

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};

use axum::routing::get;
use axum::Router;
use hata_core::validate::FieldError;
use hata_server::error::AppError;
use hata_server::AppState;
use hata_store::StoreError;
use maud::{html, Markup};

use crate::i18n::L;

/// The editing routes (merged into `crate::router`).
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/projects/{project}/new-flag",
            get(create::show).post(create::submit),
        )
        .route(
            "/projects/{project}/flags/{flag}/edit",
            get(flag::show).post(flag::submit),
        )
        .route(
            "/projects/{project}/flags/{flag}/environments/{env}/edit",
            get(config::show).post(config::submit),
        )
}

/// A posted form: its fields by name (names are unique: lists are indexed, `rules[0].id`).
#[derive(Debug, Default, Clone)]
pub struct Fields(HashMap<String, String>);

impl Fields {
    pub fn new(pairs: Vec<(String, String)>) -> Fields {
        Fields(pairs.into_iter().collect())
    }

    /// The field's text, `""` when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or("")
    }

    /// A checkbox: present (with any value) when checked.
    pub fn checked(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The indices `n` of fields named `{list}[n]…`, in order.
    pub fn indices(&self, list: &str) -> Vec<usize> {
        let mut found = BTreeSet::new();
        for name in self.0.keys() {
            let Some(rest) = name.strip_prefix(list).and_then(|r| r.strip_prefix('[')) else {
                continue;
            };
            if let Some(i) = rest.split(']').next().and_then(|n| n.parse().ok()) {
                // Bounded by the body limit already; this keeps a forged `[999999999]` cheap.
                if i < 100_000 {
                    found.insert(i);
                }
            }
        }
        found.into_iter().collect()
    }
}

/// The field errors of a write, each shown once: next to the input whose name is its path
/// (list indices at the end dropped: `values[2]` is shown at `values`), else in the list at
/// the top of the form (`unclaimed`).
#[derive(Debug, Default)]
pub struct Errors {
    errors: Vec<FieldError>,
    claimed: RefCell<Vec<bool>>,
}

/// `a.b[1][2]` → `a.b`.
fn anchor_of(field: &str) -> &str {
    let mut f = field;
    while let Some(open) = f.rfind('[') {
        let tail = &f[open..];
        if f.ends_with(']') && tail[1..tail.len() - 1].bytes().all(|b| b.is_ascii_digit()) {
            f = &f[..open];
        } else {
            break;
        }
    }
    f
}

impl Errors {
    pub fn new(errors: Vec<FieldError>) -> Errors {
        let claimed = RefCell::new(vec![false; errors.len()]);
        Errors { errors, claimed }
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// Whether some error belongs to `name` (for `aria-invalid`).
    pub fn has(&self, name: &str) -> bool {
        self.errors.iter().any(|e| anchor_of(&e.field) == name)
    }

    /// The errors of the input `name`, as paragraphs the input points at with
    /// `aria-describedby` (`error_id`).
    pub fn at(&self, name: &str) -> Markup {
        let mut claimed = self.claimed.borrow_mut();
        let mut mine: Vec<&FieldError> = Vec::new();
        for (i, e) in self.errors.iter().enumerate() {
            if !claimed[i] && anchor_of(&e.field) == name {
                claimed[i] = true;
                mine.push(e);
            }
        }
        html! {
            @if !mine.is_empty() {
                span.field-error.error #(error_id(name)) data-for=(name) {
                    @for e in mine { (e.message) br; }
                }
            }
        }
    }

    /// Errors no input showed (call after rendering the form).
    pub fn unclaimed(&self, l: L) -> Markup {
        let claimed = self.claimed.borrow();
        let rest: Vec<&FieldError> = self
            .errors
            .iter()
            .enumerate()
            .filter(|(i, _)| !claimed[*i])
            .map(|(_, e)| e)
            .collect();
        html! {
            @if !self.errors.is_empty() {
                div.error #form-errors role="alert" {
                    p { (l.t("edit.invalid")) }
                    @if !rest.is_empty() {
                        ul {
                            @for e in rest {
                                li { @if !e.field.is_empty() { span.key { (e.field) } ": " } (e.message) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// `aria-invalid` and `aria-describedby` of the input `name`.
    pub fn aria(&self, name: &str) -> (Option<&'static str>, Option<String>) {
        if self.has(name) {
            (Some("true"), Some(error_id(name)))
        } else {
            (None, None)
        }
    }
}

/// The id of the errors of input `name`: `rules[0].id` → `err-rules-0--id`.
pub fn error_id(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("err-{cleaned}")
}

/// How a write failed, as a form shows it.
pub enum Failure {
    /// Field errors (422 from hata-core's validation, or the form's own parsing): the form
    /// again, each error next to its field.
    Invalid(Vec<FieldError>),
    /// The flag changed since the form was opened (412): the current state, and the form to
    /// re-apply.
    Conflict,
    /// Anything else: an error page.
    Other(AppError),
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Failure {
        match e {
            AppError::Invalid(errors) => Failure::Invalid(errors),
            AppError::Store(StoreError::Invalid(v)) => Failure::Invalid(v.0),
            AppError::Store(StoreError::VersionMismatch { .. }) => Failure::Conflict,
            other => Failure::Other(other),
        }
    }
}

/// A list typed one item a line (or separated by commas when `commas`): trimmed, blanks
/// dropped.
pub fn split_list(text: &str, commas: bool) -> Vec<String> {
    text.split(|c| c == '\n' || (commas && c == ','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The key pattern (`hata_core::key`) as an HTML `pattern` (browsers compile it with the `v`
/// flag, where `-` in a class must be escaped).
pub const KEY_PATTERN: &str = r"[a-z0-9][a-z0-9._\-]{0,127}";

/// A flag's variant, typed as text, as the value (or the message saying why not) its type takes: `true`/`false` for boolean
/// flags, a JSON number for number flags, any JSON for JSON flags, the text for string flags.
pub fn parse_value(
    l: L,
    flag_type: hata_core::model::FlagType,
    text: &str,
) -> Result<serde_json::Value, &'static str> {
    use hata_core::model::FlagType;
    use serde_json::Value;
    match flag_type {
        FlagType::Boolean => match text.trim() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(l.t("edit.error_boolean")),
        },
        FlagType::Number => serde_json::from_str::<serde_json::Number>(text.trim())
            .map(Value::Number)
            .map_err(|_| l.t("edit.error_number")),
        FlagType::String => Ok(Value::String(text.to_string())),
        FlagType::Json => serde_json::from_str(text).map_err(|_| l.t("edit.error_json")),
    }
}

/// A value as the form shows it: strings as they are, anything else as JSON.
pub fn value_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_anchor_at_the_input_without_trailing_indices() {
        assert_eq!(
            anchor_of("rules[0].conditions[1].values[2]"),
            "rules[0].conditions[1].values"
        );
        assert_eq!(anchor_of("rules[0]"), "rules");
        assert_eq!(anchor_of("tags[3]"), "tags");
        assert_eq!(anchor_of("off_variant"), "off_variant");
        assert_eq!(
            anchor_of(r#"environments["a.b"]"#),
            r#"environments["a.b"]"#
        );
    }

    #[test]
    fn indices_are_read_from_the_names() {
        let f = Fields::new(vec![
            ("rules[2].id".into(), "a".into()),
            ("rules[0].id".into(), "b".into()),
            ("rules[0].conditions[5].attribute".into(), "x".into()),
            ("rules[x].id".into(), "c".into()),
            ("rulesX[1]".into(), "d".into()),
        ]);
        assert_eq!(f.indices("rules"), vec![0, 2]);
        assert_eq!(f.indices("rules[0].conditions"), vec![5]);
    }

    #[test]
    fn an_error_is_shown_once_and_the_rest_at_the_top() {
        let e = Errors::new(vec![
            FieldError::new("rules[0].conditions[0].values[0]", "bad regex"),
            FieldError::new("environments.other.off_variant", "unknown"),
        ]);
        assert!(e
            .at("rules[0].conditions[0].values")
            .0
            .contains("bad regex"));
        assert!(!e
            .at("rules[0].conditions[0].values")
            .0
            .contains("bad regex"));
        let top = e.unclaimed(L::new(crate::i18n::Lang::En)).0;
        assert!(top.contains("environments.other.off_variant") && !top.contains("bad regex"));
    }
}
