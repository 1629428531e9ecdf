//! "What does this user see": a context typed in (a targeting key, and attributes as
//! `name=value` lines or a JSON object), evaluated for one flag or every flag of an
//! environment, showing the value, variant and reason of each.
//!
//! Evaluated by the serving path's own engine on this server's served rule set
//! (`AppState::serving`, the `Snapshot` OFREP and the SDKs read), so the answer is what an
//! evaluation here would answer now, not a second implementation's opinion. It is a preview:
//! not counted in the evaluation counts.
//!
//! `GET /projects/{project}/whosees` is the form (from the flag page with `?flag=`); the form
//! posts to the same path (a post, so that the attributes, which may be personal data, stay
//! out of URLs, logs and history), which answers the form again, with what was typed kept and
//! an error next to its field, and the results.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use hata_access::{authorize, Need};
use hata_core::context::{Context, MAX_MEMBERS};
use hata_core::evaluate::{Evaluation, Reason};
use hata_server::error::AppError;
use hata_server::AppState;
use hata_serving::catalog::EnvServing;
use hata_store::EnvironmentRecord;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::i18n::L;
use crate::page::{error_page, html, layout, SignedIn, Ui};

/// Why the typed context is not one (`parse_context`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextInputError {
    /// Starts like JSON (`{`) but does not parse; serde's message (line and column).
    Json(String),
    /// JSON, but not an object.
    NotObject,
    /// A line that is not `name=value` (1-based).
    Line(usize),
    /// `=value`: no name (1-based line).
    NoName(usize),
    /// More members than an evaluation accepts.
    TooMany(usize),
}

impl ContextInputError {
    fn message(&self, l: L) -> String {
        match self {
            ContextInputError::Json(detail) => l.f("whosees.err_json", &[("detail", detail)]),
            ContextInputError::NotObject => l.t("whosees.err_object").to_string(),
            ContextInputError::Line(n) => l.f("whosees.err_line", &[("line", &n.to_string())]),
            ContextInputError::NoName(n) => l.f("whosees.err_name", &[("line", &n.to_string())]),
            ContextInputError::TooMany(limit) => {
                l.f("whosees.err_many", &[("limit", &limit.to_string())])
            }
        }
    }
}

/// The context of a targeting key (may be empty: none) and attributes: a JSON object, or
/// `name=value` lines where a value that reads as JSON (`42`, `true`, `"quoted"`,
/// `["a","b"]`, `null`) is that and anything else is text. Blank lines and lines starting
/// with `#` are skipped. A targeting key typed in its field wins over one in the attributes.
pub fn parse_context(key: &str, attributes: &str) -> Result<Map<String, Value>, ContextInputError> {
    let text = attributes.trim();
    let mut map = if text.starts_with('{') || text.starts_with('[') {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(ContextInputError::NotObject),
            Err(e) => return Err(ContextInputError::Json(e.to_string())),
        }
    } else {
        let mut map = Map::new();
        for (i, line) in attributes.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                return Err(ContextInputError::Line(i + 1));
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(ContextInputError::NoName(i + 1));
            }
            let value = value.trim();
            let value = serde_json::from_str::<Value>(value)
                .ok()
                .filter(|v| !v.is_object())
                .unwrap_or_else(|| Value::String(value.to_string()));
            map.insert(name.to_string(), value);
        }
        map
    };
    let key = key.trim();
    if !key.is_empty() {
        map.insert("targetingKey".into(), Value::String(key.to_string()));
    }
    if map.len() > MAX_MEMBERS {
        return Err(ContextInputError::TooMany(MAX_MEMBERS));
    }
    Ok(map)
}

/// What the form holds (also its query when opened from a flag page).
#[derive(Deserialize, Default)]
pub struct Input {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    env: String,
    /// One flag; empty: every flag.
    #[serde(default)]
    flag: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    attributes: String,
}

/// `GET /projects/{project}/whosees`
pub async fn show(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path(project): Path<String>,
    Query(input): Query<Input>,
) -> Response {
    page(ui, s, who, project, input, false).await
}

/// `POST /projects/{project}/whosees`
pub async fn evaluate(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path(project): Path<String>,
    Form(input): Form<Input>,
) -> Response {
    if let Err(e) = who.check_csrf(&input.csrf) {
        return error_page(&ui, Some(&who), e);
    }
    page(ui, s, who, project, input, true).await
}

/// One evaluation as the page shows it (owned: the snapshot is not kept past the answer).
struct Row {
    flag: String,
    value: String,
    variant: String,
    reason: Reason,
    rule: Option<String>,
    error: Option<String>,
}

impl Row {
    fn of(e: &Evaluation<'_>) -> Row {
        Row {
            flag: e.key.to_string(),
            value: e.value.to_string(),
            variant: e.variant.to_string(),
            reason: e.reason,
            rule: e.rule_id.map(str::to_string),
            error: e.error_message.as_ref().map(|m| m.to_string()),
        }
    }
}

/// The results, or why there are none.
enum Outcome {
    /// Nothing asked yet.
    Form,
    /// The typed context is not one: shown next to its field.
    BadContext(ContextInputError),
    /// No such environment in the project: shown next to its field.
    BadEnvironment,
    /// This server does not serve the environment yet (loading).
    NotServed,
    Rows {
        revision: i64,
        rows: Vec<Row>,
    },
}

async fn page(
    ui: Ui,
    s: AppState,
    who: SignedIn,
    project: String,
    input: Input,
    submitted: bool,
) -> Response {
    if let Err(d) = authorize(&who.principal, Need::Read(&project)) {
        return error_page(&ui, Some(&who), AppError::Forbidden(d.0));
    }
    let envs = match s.store.list_environments(&project).await {
        Ok(envs) => envs,
        Err(e) => return error_page(&ui, Some(&who), e.into()),
    };
    let outcome = if !submitted {
        Outcome::Form
    } else if !envs.iter().any(|e| e.environment.key == input.env) {
        Outcome::BadEnvironment
    } else {
        match parse_context(&input.key, &input.attributes) {
            Err(e) => Outcome::BadContext(e),
            Ok(map) => match s.serving.get(&project, &input.env) {
                None => Outcome::NotServed,
                Some(env) => run(&env, &map, input.flag.trim()),
            },
        }
    };
    let l = ui.l;
    let title = l.t("whosees.title");
    let flag = input.flag.trim();
    let body = html! {
        @if !flag.is_empty() {
            p { a href=(format!("/projects/{project}/flags/{flag}")) { "← " span.key { (flag) } } }
        }
        h1 { (title) }
        p.muted { (l.t("whosees.intro")) }
        (form(l, &project, &envs, &input, &who.session.csrf_token, &outcome))
        @match &outcome {
            Outcome::Form | Outcome::BadContext(_) | Outcome::BadEnvironment => {}
            Outcome::NotServed => p.error role="alert" { (l.t("whosees.not_served")) },
            Outcome::Rows { revision, rows } => (results(l, &project, &input.env, *revision, rows)),
        }
    };
    let status = match outcome {
        Outcome::BadContext(_) | Outcome::BadEnvironment => StatusCode::UNPROCESSABLE_ENTITY,
        Outcome::NotServed => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    html(&ui, status, layout(&ui, Some(&who), title, body))
}

/// Evaluates on the served snapshot, as OFREP does (`Snapshot::evaluate` / `evaluate_all`),
/// without counting.
fn run(env: &Arc<EnvServing>, map: &Map<String, Value>, flag: &str) -> Outcome {
    let ctx = Context::new(map);
    let rows = if flag.is_empty() {
        env.snapshot
            .evaluate_all(&ctx)
            .map(|e| Row::of(&e))
            .collect()
    } else {
        vec![Row::of(&env.snapshot.evaluate(flag, &ctx))]
    };
    Outcome::Rows {
        revision: env.revision,
        rows,
    }
}

/// The form, with what was typed and each error next to its field.
fn form(
    l: L,
    project: &str,
    envs: &[EnvironmentRecord],
    input: &Input,
    csrf: &str,
    outcome: &Outcome,
) -> Markup {
    let context_error = match outcome {
        Outcome::BadContext(e) => Some(e.message(l)),
        _ => None,
    };
    let env_error = matches!(outcome, Outcome::BadEnvironment);
    html! {
        form.stack.wide #whosees method="post" action=(format!("/projects/{project}/whosees")) {
            input type="hidden" name="csrf" value=(csrf);
            label for="whosees-env" { (l.t("whosees.environment")) }
            select #whosees-env name="env" aria-invalid=[env_error.then_some("true")]
                aria-describedby=[env_error.then_some("whosees-env-error")] {
                @for env in envs {
                    option value=(env.environment.key) selected[env.environment.key == input.env] { (env.environment.name) }
                }
            }
            @if env_error {
                p.error #whosees-env-error { (l.t("whosees.err_env")) }
            }
            label for="whosees-flag" { (l.t("whosees.flag")) }
            input #whosees-flag type="text" name="flag" value=(input.flag) placeholder=(l.t("whosees.every_flag"))
                aria-describedby="whosees-flag-hint" autocomplete="off" spellcheck="false";
            p.muted.hint #whosees-flag-hint { (l.t("whosees.flag_hint")) }
            label for="whosees-key" { (l.t("whosees.key")) }
            input #whosees-key type="text" name="key" value=(input.key) autocomplete="off" spellcheck="false";
            label for="whosees-attributes" { (l.t("whosees.attributes")) }
            textarea #whosees-attributes name="attributes" rows="6" spellcheck="false"
                aria-invalid=[context_error.is_some().then_some("true")]
                aria-describedby=(if context_error.is_some() { "whosees-attributes-error whosees-attributes-hint" } else { "whosees-attributes-hint" }) {
                (input.attributes)
            }
            @if let Some(message) = &context_error {
                p.error #whosees-attributes-error { (message) }
            }
            p.muted.hint #whosees-attributes-hint { (l.t("whosees.attributes_hint")) }
            div { button.primary type="submit" { (l.t("whosees.submit")) } }
        }
    }
}

fn results(l: L, project: &str, env: &str, revision: i64, rows: &[Row]) -> Markup {
    html! {
        section #whosees-results aria-labelledby="whosees-results-title" {
            h2 #whosees-results-title { (l.t("whosees.results")) }
            p.muted { (l.f("whosees.served", &[("env", env), ("revision", &revision.to_string())])) }
            @if rows.is_empty() {
                p { (l.t("whosees.no_flags")) }
            } @else {
                table #whosees-table {
                    thead {
                        tr {
                            th scope="col" { (l.t("whosees.col_flag")) }
                            th scope="col" { (l.t("whosees.col_variant")) }
                            th scope="col" { (l.t("whosees.col_value")) }
                            th scope="col" { (l.t("whosees.col_reason")) }
                        }
                    }
                    tbody {
                        @for r in rows {
                            tr data-flag=(r.flag) {
                                th.key scope="row" { a href=(format!("/projects/{project}/flags/{}", r.flag)) { (r.flag) } }
                                td.key { (r.variant) }
                                td.key { (r.value) }
                                td {
                                    span.key { (r.reason.as_str()) }
                                    " — " (reason(l, r.reason))
                                    @if let Some(rule) = &r.rule { " " (l.f("whosees.rule", &[("rule", rule)])) }
                                    @if let Some(error) = &r.error { br; span.error { (error) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What a reason means, in words.
fn reason(l: L, r: Reason) -> &'static str {
    match r {
        Reason::Static => l.t("whosees.reason_static"),
        Reason::Default => l.t("whosees.reason_default"),
        Reason::TargetingMatch => l.t("whosees.reason_match"),
        Reason::Split => l.t("whosees.reason_split"),
        Reason::Disabled => l.t("whosees.reason_disabled"),
        Reason::PrerequisiteFailed => l.t("whosees.reason_prerequisite"),
        Reason::Error => l.t("whosees.reason_error"),
    }
}

/// The flag page's short form: this flag, in an environment, for a context.
pub fn flag_form(
    l: L,
    project: &str,
    flag: &str,
    envs: &[EnvironmentRecord],
    csrf: &str,
) -> Markup {
    html! {
        section #whosees-flag aria-labelledby="whosees-flag-title" {
            h2 #whosees-flag-title { (l.t("whosees.title")) }
            form.stack.wide method="post" action=(format!("/projects/{project}/whosees")) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="flag" value=(flag);
                label for="whosees-env" { (l.t("whosees.environment")) }
                select #whosees-env name="env" {
                    @for env in envs { option value=(env.environment.key) { (env.environment.name) } }
                }
                label for="whosees-key" { (l.t("whosees.key")) }
                input #whosees-key type="text" name="key" autocomplete="off" spellcheck="false";
                label for="whosees-attributes" { (l.t("whosees.attributes")) }
                textarea #whosees-attributes name="attributes" rows="3" spellcheck="false"
                    aria-describedby="whosees-attributes-hint" {}
                p.muted.hint #whosees-attributes-hint { (l.t("whosees.attributes_hint")) }
                div { button.primary type="submit" { (l.t("whosees.submit")) } }
            }
            p { a href=(format!("/projects/{project}/whosees")) { (l.t("whosees.every")) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_read_json_values_and_text() {
        let map = parse_context(
            " user-1 ",
            "country = jp\n\n# a comment\nage=42\nbeta=true\nplan=\"42\"\nroles=[\"a\",\"b\"]\nnote=a=b\n",
        )
        .expect("context");
        assert_eq!(
            Value::Object(map),
            json!({"country": "jp", "age": 42, "beta": true, "plan": "42",
                   "roles": ["a", "b"], "note": "a=b", "targetingKey": "user-1"})
        );
    }

    #[test]
    fn json_objects_are_taken_whole_and_the_key_field_wins() {
        let map =
            parse_context("k2", r#"{"targetingKey": "k1", "nested": {"a": 1}}"#).expect("context");
        assert_eq!(
            Value::Object(map),
            json!({"targetingKey": "k2", "nested": {"a": 1}})
        );
        let map = parse_context("", r#"{"targetingKey": "k1"}"#).expect("context");
        assert_eq!(map["targetingKey"], json!("k1"));
        assert_eq!(parse_context("", "").expect("empty"), Map::new());
    }

    #[test]
    fn mistakes_name_their_line_or_cause() {
        assert_eq!(
            parse_context("", "a=1\nno equals sign"),
            Err(ContextInputError::Line(2))
        );
        assert_eq!(
            parse_context("", "\n = 3"),
            Err(ContextInputError::NoName(2))
        );
        assert_eq!(
            parse_context("", "[1, 2]"),
            Err(ContextInputError::NotObject)
        );
        assert!(matches!(
            parse_context("", "{\"a\": }"),
            Err(ContextInputError::Json(m)) if m.contains("line 1")
        ));
        let wide: String = (0..=MAX_MEMBERS).map(|i| format!("a{i}=1\n")).collect();
        assert_eq!(
            parse_context("", &wide),
            Err(ContextInputError::TooMany(MAX_MEMBERS))
        );
    }
}
