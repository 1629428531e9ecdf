//! What the administration pages' forms share: the problems of a refused write placed next to
//! the fields that caused them (the API's `FieldError` paths, such as `rules[0][1].values[0]`),
//! the form's hidden CSRF field, and a form's text as posted (`Posted`, every pair kept, so a
//! page can show again exactly what was typed).
//!
//! It decides nothing: the rules are the API's, applied by the store and the route functions
//! the pages call; this only shows their answers.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use hata_core::validate::FieldError;
use hata_server::error::AppError;
use hata_store::StoreError;
use maud::{html, Markup};

use crate::i18n::L;

/// Why a form was not accepted: messages per field, and messages about the whole form.
#[derive(Debug, Default)]
pub struct Problems {
    pub status: Option<StatusCode>,
    pub fields: Vec<FieldError>,
    pub general: Vec<String>,
}

impl Problems {
    /// A form without problems (as first shown).
    pub fn none() -> Problems {
        Problems::default()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_empty()
    }

    /// The problems of a refused write to show on its form (with what was typed), or the
    /// error itself when it is not about the form's content (403, 404, a server error): that
    /// is an error page.
    pub fn of(e: AppError) -> Result<Problems, AppError> {
        let fields = match &e {
            AppError::Invalid(v) | AppError::BadParameters(v) => Some(v.clone()),
            AppError::Store(StoreError::Invalid(v)) => Some(v.0.clone()),
            _ => None,
        };
        let about_content = fields.is_some()
            || matches!(
                &e,
                AppError::BadRequest(_)
                    | AppError::Store(
                        StoreError::AlreadyExists(_)
                            | StoreError::Conflict { .. }
                            | StoreError::VersionMismatch { .. }
                    )
            );
        if !about_content {
            return Err(e);
        }
        let stale = matches!(&e, AppError::Store(StoreError::VersionMismatch { .. }));
        let message = e.to_string();
        let status = e.into_response().status();
        Ok(Problems {
            status: Some(status),
            general: match fields {
                Some(_) => Vec::new(),
                // A stale form says so in the page's words (with a way to reload), below.
                None if stale => Vec::new(),
                None => vec![message],
            },
            fields: fields.unwrap_or_default(),
        })
    }

    /// A problem with one field, found before anything was sent to the store (a form value
    /// that cannot become the API's value).
    pub fn field(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.status.get_or_insert(StatusCode::UNPROCESSABLE_ENTITY);
        self.fields.push(FieldError::new(field, message));
    }

    /// The status of the page showing the form.
    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or(StatusCode::OK)
    }

    /// Whether the store refused the write because the form was stale (412).
    pub fn stale(&self) -> bool {
        self.status == Some(StatusCode::PRECONDITION_FAILED)
    }

    /// The messages about `field` and anything inside it (`rules[0]` takes `rules[0][1].x`).
    pub fn at(&self, field: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|e| within(&e.field, field))
            .map(|e| e.message.as_str())
            .collect()
    }

    /// The problems no field of the form shows (`placed` are the fields it shows), so that
    /// none is lost.
    pub fn unplaced(&self, placed: &[String]) -> Vec<&FieldError> {
        self.fields
            .iter()
            .filter(|e| !placed.iter().any(|p| within(&e.field, p)))
            .collect()
    }
}

/// `field` is `prefix` or inside it.
fn within(field: &str, prefix: &str) -> bool {
    field == prefix
        || field
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

/// The attributes an input takes for its problems: `aria-invalid` and `aria-describedby`
/// pointing at the message (`{id}-error`).
pub fn invalid(
    problems: &Problems,
    field: &str,
    id: &str,
) -> (Option<&'static str>, Option<String>) {
    if problems.at(field).is_empty() {
        (None, None)
    } else {
        (Some("true"), Some(format!("{id}-error")))
    }
}

/// The messages about `field`, shown after its input.
pub fn messages(problems: &Problems, field: &str, id: &str) -> Markup {
    let found = problems.at(field);
    html! {
        @if !found.is_empty() {
            span.error id=(format!("{id}-error")) { (found.join("; ")) }
        }
    }
}

/// The box above a form: what no field shows, or that the form is stale.
pub fn summary(l: L, problems: &Problems, placed: &[String], reload: &str) -> Markup {
    let unplaced = problems.unplaced(placed);
    html! {
        @if problems.stale() {
            div.error #form-problems role="alert" {
                p { a #reload href=(reload) { (l.t("error.conflict")) } }
            }
        } @else if !problems.general.is_empty() || !unplaced.is_empty() {
            div.error #form-problems role="alert" {
                ul {
                    @for m in &problems.general { li { (m) } }
                    @for e in &unplaced { li { span.key { (e.field) } ": " (e.message) } }
                }
            }
        } @else if !problems.is_empty() {
            p.error #form-problems role="alert" { (l.t("error.invalid")) }
        }
    }
}

/// An input of type `kind` with its label, an optional hint, its problems next to it, and
/// what was typed. Its id is `f-{name}`.
pub fn input(
    problems: &Problems,
    kind: &str,
    name: &str,
    label: &str,
    value: &str,
    hint: Option<&str>,
) -> Markup {
    let id = format!("f-{name}");
    let (bad, described) = invalid(problems, name, &id);
    let hint_id = format!("{id}-hint");
    let describedby = match (&described, hint) {
        (Some(d), Some(_)) => Some(format!("{d} {hint_id}")),
        (Some(d), None) => Some(d.clone()),
        (None, Some(_)) => Some(hint_id.clone()),
        (None, None) => None,
    };
    html! {
        div.field {
            label for=(id) { (label) }
            input type=(kind) id=(id) name=(name) value=(value) aria-invalid=[bad] aria-describedby=[describedby];
            @if let Some(h) = hint { span.muted.hint id=(hint_id) { (h) } }
            (messages(problems, name, &id))
        }
    }
}

/// A text area (one item per line) with its label, hint and problems. Its id is `f-{name}`.
pub fn area(problems: &Problems, name: &str, label: &str, value: &str, hint: &str) -> Markup {
    let id = format!("f-{name}");
    let (bad, described) = invalid(problems, name, &id);
    let hint_id = format!("{id}-hint");
    let describedby = described.map_or(hint_id.clone(), |d| format!("{d} {hint_id}"));
    html! {
        div.field {
            label for=(id) { (label) }
            textarea id=(id) name=(name) rows="4" aria-invalid=[bad] aria-describedby=(describedby) { (value) }
            span.muted.hint id=(hint_id) { (hint) }
            (messages(problems, name, &id))
        }
    }
}

/// The hidden field that carries the session's CSRF token in every form post.
pub fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A form as posted: every name and value in order (names may repeat), so the page can show
/// again exactly what was typed.
#[derive(Debug, Default, Clone)]
pub struct Posted(pub Vec<(String, String)>);

impl Posted {
    /// The first value of `name` ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// `Some` with the trimmed value when given and not empty.
    pub fn given(&self, name: &str) -> Option<String> {
        Some(self.get(name).trim().to_string()).filter(|v| !v.is_empty())
    }

    /// A checkbox: present (with any value) means ticked.
    pub fn ticked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

/// The lines of a text area: without `\r`, blank lines dropped.
pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_end_matches('\r').trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_takes_the_problems_inside_it() {
        let p = Problems {
            status: None,
            fields: vec![
                FieldError::new("rules[0][1].values[0]", "must be a number"),
                FieldError::new("rules[0][10].attribute", "must not be empty"),
                FieldError::new("key", "bad key"),
                FieldError::new("keys", "other"),
            ],
            general: vec![],
        };
        assert_eq!(p.at("rules[0][1]"), vec!["must be a number"]);
        assert_eq!(p.at("key"), vec!["bad key"]);
        assert_eq!(p.at("rules[0]").len(), 2);
        let placed = vec!["key".to_string(), "rules[0][1]".to_string()];
        let rest: Vec<_> = p
            .unplaced(&placed)
            .iter()
            .map(|e| e.field.clone())
            .collect();
        assert_eq!(rest, vec!["rules[0][10].attribute", "keys"]);
    }

    #[test]
    fn lines_drop_blanks_and_carriage_returns() {
        assert_eq!(lines("a\r\n\r\n b \nc"), vec!["a", "b", "c"]);
    }
}
