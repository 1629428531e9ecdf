//! A project's segments: the list, and one form to create or edit a segment (name,
//! description, included and excluded keys, and rules: each rule an AND of conditions, the
//! segment matching when any rule holds, as `hata_core::model::Segment` has them).
//!
//! The conditions are rows of a table (rule number, not, attribute, operator, values one per
//! line); blank rows are ignored and "More rows" shows the form again with more, keeping what
//! was typed (no script). Writes go through `AppState::write` (`CreateSegment`,
//! `UpdateSegment` with the version the form showed: a change since is a 412, shown with a way
//! to reload); the store's validation answers, and each message is shown next to its field.
//! Viewers see the segment without the form; a forged post is a 403 (`Need::Write`).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use hata_access::{authorize, Need};
use hata_core::model::{Condition, Operator, Segment};
use hata_server::error::AppError;
use hata_server::routes::Writer;
use hata_server::AppState;
use hata_store::{Expected, WriteOp};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use crate::flags::short_time;
use crate::form::{self, csrf, invalid, lines, messages, Posted, Problems};
use crate::i18n::L;
use crate::page::{error_page, html, layout, see_other, url, SignedIn, Ui};

/// Segments per page of the list.
const PAGE_SIZE: usize = 100;
/// Blank condition rows a form offers, and how many more "More rows" adds.
const BLANK_ROWS: usize = 3;
/// The most rows a posted form is read for (the store's own limits are lower).
const MAX_ROWS: usize = 2_000;
/// The operator value of a "user is in segment S" row.
const IN_SEGMENT: &str = "segment";

#[derive(Deserialize, Default)]
pub struct ListQuery {
    cursor: Option<String>,
    /// `1` right after a save.
    saved: Option<String>,
}

fn refused(ui: &Ui, who: &SignedIn, need: Need<'_>) -> Option<Response> {
    authorize(&who.principal, need)
        .err()
        .map(|d| error_page(ui, Some(who), AppError::Forbidden(d.0)))
}

/// `GET /projects/{project}/segments`
pub async fn list(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path(project): Path<String>,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Some(r) = refused(&ui, &who, Need::Read(&project)) {
        return r;
    }
    let can_write = authorize(&who.principal, Need::Write(&project)).is_ok();
    let loaded = async {
        let record = s.store.get_project(&project).await?;
        let page = s
            .store
            .list_segments(&project, PAGE_SIZE, q.cursor.as_deref())
            .await?;
        Ok::<_, hata_store::StoreError>((record, page))
    }
    .await;
    let (record, page) = match loaded {
        Ok(found) => found,
        Err(e) => return error_page(&ui, Some(&who), e.into()),
    };
    let l = ui.l;
    let title = l.f("segments.title", &[("project", &record.project.name)]);
    let body = html! {
        h1 { (title) }
        @if can_write {
            p { a.button #new-segment href=(format!("/projects/{project}/segments/_new")) { (l.t("segments.new")) } }
        }
        @if page.items.is_empty() {
            p.muted { (l.t("segments.none")) }
        } @else {
            table #segments {
                caption.skip { (title) }
                thead {
                    tr {
                        th scope="col" { (l.t("segments.key")) }
                        th scope="col" { (l.t("segments.name")) }
                        th scope="col" { (l.t("segments.description")) }
                        th scope="col" { (l.t("segments.included")) }
                        th scope="col" { (l.t("segments.excluded")) }
                        th scope="col" { (l.t("segments.rules")) }
                        th scope="col" { (l.t("segments.updated")) }
                    }
                }
                tbody {
                    @for seg in &page.items {
                        tr data-segment=(seg.key) {
                            td.key { a href=(format!("/projects/{project}/segments/{}", seg.key)) { (seg.key) } }
                            td { (seg.name) }
                            td { (seg.description) }
                            td.num { (seg.included.len()) }
                            td.num { (seg.excluded.len()) }
                            td.num { (seg.rules.len()) }
                            td.muted { (seg.updated_at.as_deref().map(short_time).unwrap_or_default()) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = &page.next_cursor {
            nav.pager aria-label=(l.t("segments.pages")) {
                a rel="next" href=(url(&ui.path, &[("cursor".into(), next.clone())])) { (l.t("segments.more")) }
            }
        }
    };
    html(&ui, StatusCode::OK, layout(&ui, Some(&who), &title, body))
}

/// `GET /projects/{project}/segments/_new` (`_` starts no key, so no segment is hidden).
pub async fn new(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path(project): Path<String>,
) -> Response {
    if let Some(r) = refused(&ui, &who, Need::Write(&project)) {
        return r;
    }
    if let Err(e) = s.store.get_project(&project).await {
        return error_page(&ui, Some(&who), e.into());
    }
    let rows = vec![Row::default(); BLANK_ROWS];
    edit_page(
        &ui,
        &who,
        &project,
        None,
        &Posted::default(),
        &rows,
        &Problems::none(),
        false,
    )
}

/// `GET /projects/{project}/segments/{segment}`: the form for writers, the segment for others.
pub async fn show(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path((project, key)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Some(r) = refused(&ui, &who, Need::Read(&project)) {
        return r;
    }
    let segment = match s.store.get_segment(&project, &key).await {
        Ok(seg) => seg,
        Err(e) => return error_page(&ui, Some(&who), e.into()),
    };
    if authorize(&who.principal, Need::Write(&project)).is_err() {
        return read_only(&ui, &who, &project, &segment);
    }
    let posted = Posted(vec![
        ("key".into(), segment.key.clone()),
        ("name".into(), segment.name.clone()),
        ("description".into(), segment.description.clone()),
        ("included".into(), segment.included.join("\n")),
        ("excluded".into(), segment.excluded.join("\n")),
    ]);
    let mut rows = rows_of(&segment);
    rows.extend(vec![Row::default(); BLANK_ROWS]);
    edit_page(
        &ui,
        &who,
        &project,
        Some(segment.version),
        &posted,
        &rows,
        &Problems::none(),
        q.saved.as_deref() == Some("1"),
    )
}

/// `POST /projects/{project}/segments`: create.
pub async fn create(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path(project): Path<String>,
    Writer(w): Writer,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    save(ui, s, who, project, None, w, Posted(pairs)).await
}

/// `POST /projects/{project}/segments/{segment}`: replace.
pub async fn update(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path((project, key)): Path<(String, String)>,
    Writer(w): Writer,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    save(ui, s, who, project, Some(key), w, Posted(pairs)).await
}

async fn save(
    ui: Ui,
    s: AppState,
    who: SignedIn,
    project: String,
    key: Option<String>,
    w: hata_store::WriteMeta,
    posted: Posted,
) -> Response {
    if let Err(e) = who.check_csrf(posted.get("csrf")) {
        return error_page(&ui, Some(&who), e);
    }
    if let Some(r) = refused(&ui, &who, Need::Write(&project)) {
        return r;
    }
    let version = posted.get("version").parse::<i64>().ok();
    let mut rows = posted_rows(&posted);
    if posted.ticked("more") {
        rows.extend(vec![Row::default(); BLANK_ROWS + 2]);
        return edit_page(
            &ui,
            &who,
            &project,
            version,
            &posted,
            &rows,
            &Problems::none(),
            false,
        );
    }
    let mut problems = Problems::none();
    let segment = segment_of(&posted, key.as_deref(), &mut rows, &mut problems);
    if !problems.is_empty() {
        return edit_page(
            &ui, &who, &project, version, &posted, &rows, &problems, false,
        );
    }
    let saved_key = segment.key.clone();
    let op = match key {
        None => WriteOp::CreateSegment {
            project: project.clone(),
            segment,
        },
        Some(key) => WriteOp::UpdateSegment {
            project: project.clone(),
            key,
            expected_version: version.map(Expected::version).unwrap_or_default(),
            segment,
        },
    };
    match s.write(&w, op).await {
        Ok(_) => see_other(&format!("/projects/{project}/segments/{saved_key}?saved=1")),
        Err(e) => match Problems::of(e) {
            Ok(problems) => edit_page(
                &ui, &who, &project, version, &posted, &rows, &problems, false,
            ),
            Err(e) => error_page(&ui, Some(&who), e),
        },
    }
}

/// One condition row of the form, as typed.
#[derive(Debug, Clone, Default)]
struct Row {
    rule: String,
    negate: bool,
    attribute: String,
    operator: String,
    values: String,
    /// Where the API names this condition (`rules[0][1]`), once it is part of a segment.
    path: Option<String>,
}

impl Row {
    fn is_blank(&self) -> bool {
        self.attribute.trim().is_empty() && self.values.trim().is_empty()
    }
}

fn posted_rows(posted: &Posted) -> Vec<Row> {
    let count = posted
        .get("rows")
        .parse::<usize>()
        .unwrap_or(0)
        .min(MAX_ROWS);
    (0..count)
        .map(|n| Row {
            rule: posted.get(&format!("c{n}.rule")).to_string(),
            negate: posted.ticked(&format!("c{n}.negate")),
            attribute: posted.get(&format!("c{n}.attribute")).to_string(),
            operator: posted.get(&format!("c{n}.operator")).to_string(),
            values: posted.get(&format!("c{n}.values")).to_string(),
            path: None,
        })
        .collect()
}

/// The rows of a stored segment: rule by rule, condition by condition.
fn rows_of(segment: &Segment) -> Vec<Row> {
    let mut rows = Vec::new();
    for (i, rule) in segment.rules.iter().enumerate() {
        for c in rule {
            let (negate, attribute, operator, values) = match c {
                Condition::Attribute {
                    attribute,
                    operator,
                    values,
                    negate,
                } => (
                    *negate,
                    attribute.clone(),
                    operator.as_str().to_string(),
                    values
                        .iter()
                        .map(|v| value_text(*operator, v))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
                Condition::Segment { segment, negate } => (
                    *negate,
                    String::new(),
                    IN_SEGMENT.to_string(),
                    segment.clone(),
                ),
            };
            rows.push(Row {
                rule: (i + 1).to_string(),
                negate,
                attribute,
                operator,
                values,
                path: None,
            });
        }
    }
    rows
}

/// A value as the form shows it, one line: the inverse of `value_of`.
fn value_text(operator: Operator, v: &Value) -> String {
    match v {
        // A string `in` reads as a number or boolean is shown quoted, as JSON.
        Value::String(s)
            if operator == Operator::In
                && (s.starts_with('"')
                    || matches!(
                        serde_json::from_str::<Value>(s),
                        Ok(Value::Number(_) | Value::Bool(_))
                    )) =>
        {
            v.to_string()
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One line of the values box as the operator's value: numbers for `lt`…`gte`, epoch
/// milliseconds (a number) or a date-time for `before`/`after`, for `in` a number, `true`,
/// `false` or a "quoted" string as JSON and anything else as text; text for the others. What
/// does not fit its operator is sent as text, and the store names the problem.
fn value_of(operator: Operator, line: &str) -> Value {
    let json = || serde_json::from_str::<Value>(line).ok();
    match operator {
        Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte => json()
            .filter(Value::is_number)
            .unwrap_or_else(|| Value::String(line.into())),
        Operator::Before | Operator::After => json()
            .filter(Value::is_i64)
            .unwrap_or_else(|| Value::String(line.into())),
        Operator::In => json()
            .filter(|v| v.is_number() || v.is_boolean() || v.is_string())
            .unwrap_or_else(|| Value::String(line.into())),
        _ => Value::String(line.into()),
    }
}

/// The segment the form describes; each row that becomes a condition learns its API path.
/// What cannot become the API's shape (a rule number, an operator) is a problem of its field.
fn segment_of(
    posted: &Posted,
    key: Option<&str>,
    rows: &mut [Row],
    problems: &mut Problems,
) -> Segment {
    let mut numbered: Vec<(u32, usize)> = Vec::new();
    for (n, row) in rows.iter().enumerate() {
        if row.is_blank() {
            continue;
        }
        let rule = row.rule.trim();
        match rule.parse::<u32>() {
            Ok(r) if r >= 1 => numbered.push((r, n)),
            _ => problems.field(format!("c{n}.rule"), "must be a rule number: 1, 2, 3, …"),
        }
        let known =
            row.operator == IN_SEGMENT || Operator::ALL.iter().any(|o| o.as_str() == row.operator);
        if !known {
            problems.field(
                format!("c{n}.operator"),
                format!("{:?} is not an operator", row.operator),
            );
        }
    }
    // Rules in the order of their numbers; conditions in the order of their rows.
    numbered.sort_by_key(|(r, _)| *r);
    let mut rules: Vec<Vec<Condition>> = Vec::new();
    let mut last: Option<u32> = None;
    for (r, n) in numbered {
        if last != Some(r) {
            rules.push(Vec::new());
            last = Some(r);
        }
        let i = rules.len() - 1;
        let row = &mut rows[n];
        let condition = if row.operator == IN_SEGMENT {
            Condition::Segment {
                segment: row.values.trim().to_string(),
                negate: row.negate,
            }
        } else {
            let operator = Operator::ALL
                .into_iter()
                .find(|o| o.as_str() == row.operator)
                .unwrap_or(Operator::In);
            Condition::Attribute {
                attribute: row.attribute.trim().to_string(),
                operator,
                values: lines(&row.values)
                    .iter()
                    .map(|line| value_of(operator, line))
                    .collect(),
                negate: row.negate,
            }
        };
        row.path = Some(format!("rules[{i}][{}]", rules[i].len()));
        rules[i].push(condition);
    }
    Segment {
        key: key
            .map(str::to_string)
            .unwrap_or_else(|| posted.get("key").trim().to_string()),
        name: posted.get("name").trim().to_string(),
        description: posted.get("description").to_string(),
        included: lines(posted.get("included")),
        excluded: lines(posted.get("excluded")),
        rules,
        version: 0,
        created_at: None,
        updated_at: None,
    }
}

/// The operator's words in the select.
fn operator_label(l: L, op: &str) -> &'static str {
    match op {
        "in" => l.t("segments.op_in"),
        "contains" => l.t("segments.op_contains"),
        "starts_with" => l.t("segments.op_starts_with"),
        "ends_with" => l.t("segments.op_ends_with"),
        "matches" => l.t("segments.op_matches"),
        "lt" => l.t("segments.op_lt"),
        "lte" => l.t("segments.op_lte"),
        "gt" => l.t("segments.op_gt"),
        "gte" => l.t("segments.op_gte"),
        "before" => l.t("segments.op_before"),
        "after" => l.t("segments.op_after"),
        "semver_eq" => l.t("segments.op_semver_eq"),
        "semver_lt" => l.t("segments.op_semver_lt"),
        "semver_gt" => l.t("segments.op_semver_gt"),
        "exists" => l.t("segments.op_exists"),
        _ => l.t("segments.op_segment"),
    }
}

#[allow(clippy::too_many_arguments)]
fn edit_page(
    ui: &Ui,
    who: &SignedIn,
    project: &str,
    version: Option<i64>,
    posted: &Posted,
    rows: &[Row],
    problems: &Problems,
    saved: bool,
) -> Response {
    let l = ui.l;
    let editing = version.is_some();
    let key = posted.get("key");
    let title = if editing {
        l.f("segments.edit_title", &[("segment", key)])
    } else {
        l.t("segments.new_title").to_string()
    };
    let action = if editing {
        format!("/projects/{project}/segments/{key}")
    } else {
        format!("/projects/{project}/segments")
    };
    let mut placed: Vec<String> = ["key", "name", "description", "included", "excluded"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (n, row) in rows.iter().enumerate() {
        placed.push(format!("c{n}"));
        placed.extend(row.path.clone());
    }
    let reload = format!("/projects/{project}/segments/{key}");
    let body = html! {
        p { a href=(format!("/projects/{project}/segments")) { "← " (l.t("segments.back")) } }
        h1 { (title) }
        @if saved { p.notice #saved role="status" { (l.t("segments.saved")) } }
        (form::summary(l, problems, &placed, &reload))
        form.edit #segment-form method="post" action=(action) novalidate {
            (csrf(&who.session.csrf_token))
            @if let Some(v) = version { input type="hidden" name="version" value=(v); }
            input type="hidden" name="rows" value=(rows.len());
            div.fields {
                @if editing {
                    input type="hidden" name="key" value=(key);
                    div.field { span.label { (l.t("segments.key")) } span.key #f-key { (key) } }
                } @else {
                    (form::input(problems, "text", "key", l.t("segments.key"), key, Some(l.t("segments.key_hint"))))
                }
                (form::input(problems, "text", "name", l.t("segments.name"), posted.get("name"), None))
                (form::input(problems, "text", "description", l.t("segments.description"), posted.get("description"), None))
                (form::area(problems, "included", l.t("segments.included"), posted.get("included"), l.t("segments.keys_hint")))
                (form::area(problems, "excluded", l.t("segments.excluded"), posted.get("excluded"), l.t("segments.keys_hint")))
            }
            h2 #rules-title { (l.t("segments.rules")) }
            p.muted #rules-help { (l.t("segments.rules_help")) }
            table #conditions aria-labelledby="rules-title" aria-describedby="rules-help" {
                thead {
                    tr {
                        th scope="col" { (l.t("segments.col_rule")) }
                        th scope="col" { (l.t("segments.col_not")) }
                        th scope="col" { (l.t("segments.col_attribute")) }
                        th scope="col" { (l.t("segments.col_operator")) }
                        th scope="col" { (l.t("segments.col_values")) }
                    }
                }
                tbody {
                    @for (n, row) in rows.iter().enumerate() {
                        (condition_row(l, problems, n, row))
                    }
                }
            }
            div.actions {
                button.primary #save type="submit" { (l.t("segments.save")) }
                button #more type="submit" name="more" value="1" { (l.t("segments.more_rows")) }
            }
        }
    };
    html(ui, problems.status(), layout(ui, Some(who), &title, body))
}

fn condition_row(l: L, problems: &Problems, n: usize, row: &Row) -> Markup {
    let which = (n + 1).to_string();
    let id = |part: &str| format!("c{n}-{part}");
    let api = row.path.clone().unwrap_or_else(|| format!("c{n}"));
    // Rule numbers and operators are checked here; the rest by the store, under the API path.
    let rule_field = format!("c{n}.rule");
    let op_field = format!("c{n}.operator");
    let attribute_field = format!("{api}.attribute");
    let values_fields = [format!("{api}.values"), format!("{api}.segment")];
    let (rule_bad, rule_desc) = invalid(problems, &rule_field, &id("rule"));
    let (op_bad, op_desc) = invalid(problems, &op_field, &id("operator"));
    let (attr_bad, attr_desc) = invalid(problems, &attribute_field, &id("attribute"));
    let values_messages: Vec<&str> = values_fields.iter().flat_map(|f| problems.at(f)).collect();
    // Problems with the condition as a whole (`rules[0][1]` itself).
    let whole: Vec<&str> = problems
        .fields
        .iter()
        .filter(|e| Some(&e.field) == row.path.as_ref())
        .map(|e| e.message.as_str())
        .collect();
    html! {
        tr.condition {
            td {
                label.vh for=(id("rule")) { (l.f("segments.row_rule", &[("n", &which)])) }
                input.narrow type="text" inputmode="numeric" id=(id("rule")) name=(format!("c{n}.rule"))
                    value=(if row.rule.is_empty() { "1" } else { row.rule.as_str() })
                    aria-invalid=[rule_bad] aria-describedby=[rule_desc];
                (messages(problems, &rule_field, &id("rule")))
            }
            td {
                input type="checkbox" id=(id("negate")) name=(format!("c{n}.negate")) value="1" checked[row.negate];
                label.vh for=(id("negate")) { (l.f("segments.row_not", &[("n", &which)])) }
            }
            td {
                label.vh for=(id("attribute")) { (l.f("segments.row_attribute", &[("n", &which)])) }
                input type="text" id=(id("attribute")) name=(format!("c{n}.attribute")) value=(row.attribute)
                    aria-invalid=[attr_bad] aria-describedby=[attr_desc];
                (messages(problems, &attribute_field, &id("attribute")))
            }
            td {
                label.vh for=(id("operator")) { (l.f("segments.row_operator", &[("n", &which)])) }
                select id=(id("operator")) name=(format!("c{n}.operator")) aria-invalid=[op_bad] aria-describedby=[op_desc] {
                    @for op in Operator::ALL.iter().map(|o| o.as_str()).chain([IN_SEGMENT]) {
                        option value=(op) selected[row.operator == op] { (operator_label(l, op)) }
                    }
                }
                (messages(problems, &op_field, &id("operator")))
            }
            td {
                label.vh for=(id("values")) { (l.f("segments.row_values", &[("n", &which)])) }
                textarea id=(id("values")) name=(format!("c{n}.values")) rows="2"
                    aria-invalid=[(!values_messages.is_empty()).then_some("true")]
                    aria-describedby=[(!values_messages.is_empty()).then(|| format!("{}-error", id("values")))] { (row.values) }
                @if !values_messages.is_empty() {
                    span.error id=(format!("{}-error", id("values"))) { (values_messages.join("; ")) }
                }
                @if !whole.is_empty() { span.error { (whole.join("; ")) } }
            }
        }
    }
}

/// A segment for those who may not change it.
fn read_only(ui: &Ui, who: &SignedIn, project: &str, segment: &Segment) -> Response {
    let l = ui.l;
    let title = l.f("segments.edit_title", &[("segment", &segment.key)]);
    let rows = rows_of(segment);
    let body = html! {
        p { a href=(format!("/projects/{project}/segments")) { "← " (l.t("segments.back")) } }
        h1 { span.key { (segment.key) } @if !segment.name.is_empty() { " — " (segment.name) } }
        dl.facts {
            dt { (l.t("segments.description")) } dd { (segment.description) }
            dt { (l.t("segments.included")) } dd.key { (segment.included.join(", ")) }
            dt { (l.t("segments.excluded")) } dd.key { (segment.excluded.join(", ")) }
        }
        h2 { (l.t("segments.rules")) }
        @if rows.is_empty() {
            p.muted { (l.t("segments.no_rules")) }
        } @else {
            table #conditions {
                thead {
                    tr {
                        th scope="col" { (l.t("segments.col_rule")) }
                        th scope="col" { (l.t("segments.col_not")) }
                        th scope="col" { (l.t("segments.col_attribute")) }
                        th scope="col" { (l.t("segments.col_operator")) }
                        th scope="col" { (l.t("segments.col_values")) }
                    }
                }
                tbody {
                    @for row in &rows {
                        tr {
                            td { (row.rule) }
                            td { @if row.negate { (l.t("segments.col_not")) } }
                            td.key { (row.attribute) }
                            td { (operator_label(l, &row.operator)) }
                            td.key { (row.values.replace('\n', ", ")) }
                        }
                    }
                }
            }
        }
    };
    html(ui, StatusCode::OK, layout(ui, Some(who), &title, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn posted(pairs: &[(&str, &str)]) -> Posted {
        Posted(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn rows_become_rules_by_number_and_learn_their_paths() {
        let p = posted(&[
            ("key", "beta"),
            ("included", "u1\r\n\r\nu2"),
            ("rows", "4"),
            ("c0.rule", "2"),
            ("c0.attribute", "country"),
            ("c0.operator", "in"),
            ("c0.values", "jp\n\"42\"\n42\ntrue"),
            ("c1.rule", "1"),
            ("c1.attribute", "age"),
            ("c1.operator", "gte"),
            ("c1.values", "18"),
            ("c2.rule", "1"),
            ("c2.operator", "segment"),
            ("c2.values", "staff"),
            ("c2.negate", "1"),
            // Blank: ignored.
            ("c3.rule", "1"),
            ("c3.operator", "in"),
        ]);
        let mut rows = posted_rows(&p);
        let mut problems = Problems::none();
        let seg = segment_of(&p, None, &mut rows, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(seg.included, vec!["u1", "u2"]);
        let json = serde_json::to_value(&seg.rules).unwrap();
        assert_eq!(
            json,
            json!([
                [{"attribute": "age", "operator": "gte", "values": [18]},
                 {"segment": "staff", "negate": true}],
                [{"attribute": "country", "operator": "in", "values": ["jp", "42", 42, true]}],
            ])
        );
        assert_eq!(rows[0].path.as_deref(), Some("rules[1][0]"));
        assert_eq!(rows[2].path.as_deref(), Some("rules[0][1]"));
        assert_eq!(rows[3].path, None);
        // And back: the stored segment shows as it was typed.
        let back = rows_of(&seg);
        assert_eq!(back[2].values, "jp\n\"42\"\n42\ntrue");
    }

    #[test]
    fn a_bad_rule_number_or_operator_is_a_problem_of_its_field() {
        let p = posted(&[
            ("rows", "1"),
            ("c0.rule", "first"),
            ("c0.attribute", "a"),
            ("c0.operator", "like"),
            ("c0.values", "x"),
        ]);
        let mut rows = posted_rows(&p);
        let mut problems = Problems::none();
        segment_of(&p, Some("k"), &mut rows, &mut problems);
        assert_eq!(problems.at("c0.rule").len(), 1);
        assert_eq!(problems.at("c0.operator").len(), 1);
    }

    #[test]
    fn values_fit_their_operator() {
        assert_eq!(value_of(Operator::Lt, "1.5"), json!(1.5));
        assert_eq!(value_of(Operator::Lt, "x"), json!("x"));
        assert_eq!(
            value_of(Operator::Before, "1700000000000"),
            json!(1700000000000_i64)
        );
        assert_eq!(
            value_of(Operator::Before, "2024-01-02T03:04:05Z"),
            json!("2024-01-02T03:04:05Z")
        );
        assert_eq!(value_of(Operator::Contains, "42"), json!("42"));
        assert_eq!(value_text(Operator::In, &json!("true")), "\"true\"");
        assert_eq!(value_text(Operator::Contains, &json!("true")), "true");
    }
}
