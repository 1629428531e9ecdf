//! The audit log: entries newest first, filtered by project, environment, resource (type and
//! key), actor, action and time range, a page at a time (`routes::audit::audit_page`, the
//! API's `GET /audit` with its rules: admins see every entry, owners their projects', others
//! none); each entry readable (who, as what, did what to which resource, and the change as
//! JSON Patch operations). For administrators, the chain's verification on request
//! (`Store::verify_audit`, as `GET /audit/verify`): recomputing every hash reads the whole
//! log, so the page does it when asked rather than on every view.

use axum::extract::{Query, State};
use axum::response::Response;
use hata_access::{authorize, Need};
use hata_server::routes::audit::{audit_page, visible_projects, AuditQuery};
use hata_server::AppState;
use hata_store::{Action, ResourceType};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::flags::short_time;
use crate::form::{self, invalid, messages, Problems};
use crate::i18n::L;
use crate::page::{error_page, html, layout, url, SignedIn, Ui};

/// Entries per page.
const PAGE_SIZE: usize = 50;
/// Patch operations shown per entry (the rest are counted).
const PATCH_OPS: usize = 12;

/// The page's query: the API's filters, with the resource as type and key and times as the
/// browser's `datetime-local` inputs give them (UTC).
#[derive(Deserialize, Default, Clone)]
pub struct PageQuery {
    #[serde(default)]
    project: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    resource_type: String,
    #[serde(default)]
    resource_key: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    cursor: Option<String>,
    /// `1`: verify the chain.
    verify: Option<String>,
}

fn given(v: &str) -> Option<String> {
    Some(v.trim().to_string()).filter(|v| !v.is_empty())
}

/// `2026-12-06T13:30` (a `datetime-local` value, taken as UTC) → `2026-12-06T13:30:00Z`;
/// anything else as typed, for the API's check to name.
fn utc_time(v: &str) -> Option<String> {
    let v = given(v)?;
    let local = v.len() == 16 && v.as_bytes().get(10) == Some(&b'T') && !v.ends_with('Z');
    Some(if local { format!("{v}:00Z") } else { v })
}

impl PageQuery {
    fn api(&self) -> AuditQuery {
        let resource = match (given(&self.resource_type), given(&self.resource_key)) {
            (Some(t), Some(k)) => Some(format!("{t}:{k}")),
            (Some(t), None) => Some(t),
            // A key without a type is sent as the API would see it, and named as its problem.
            (None, Some(k)) => Some(format!(":{k}")),
            (None, None) => None,
        };
        AuditQuery {
            project: given(&self.project),
            environment: given(&self.environment),
            resource,
            actor: given(&self.actor),
            action: given(&self.action),
            from: utc_time(&self.from),
            to: utc_time(&self.to),
            limit: Some(PAGE_SIZE),
            cursor: self.cursor.clone(),
        }
    }

    /// The filters as query pairs (for the next page's link and the verify button).
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("project", self.project.as_str()),
            ("environment", &self.environment),
            ("resource_type", &self.resource_type),
            ("resource_key", &self.resource_key),
            ("actor", &self.actor),
            ("action", &self.action),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }
}

/// `GET /audit`
pub async fn list(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Query(q): Query<PageQuery>,
) -> Response {
    // Who may read the log at all: the API's rule, before anything is read.
    let projects = match visible_projects(&who.principal) {
        Ok(p) => p,
        Err(e) => return error_page(&ui, Some(&who), e),
    };
    let is_admin = authorize(&who.principal, Need::Admin).is_ok();
    let (entries, problems) = match audit_page(&s, &who.principal, q.api()).await {
        Ok(page) => (Some(page), Problems::none()),
        Err(e) => match Problems::of(e) {
            Ok(problems) => (None, problems),
            Err(e) => return error_page(&ui, Some(&who), e),
        },
    };
    let report = if is_admin && q.verify.as_deref() == Some("1") {
        match s.store.verify_audit().await {
            Ok(r) => Some(r),
            Err(e) => return error_page(&ui, Some(&who), e.into()),
        }
    } else {
        None
    };
    let l = ui.l;
    let title = l.t("audit.title");
    let filters: Vec<(String, String)> = q
        .pairs()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let older = entries
        .as_ref()
        .and_then(|p| p.next_cursor.clone())
        .map(|cursor| {
            let mut pairs = filters.clone();
            pairs.push(("cursor".into(), cursor));
            url("/audit", &pairs)
        });
    let body = html! {
        h1 { (title) }
        @if is_admin {
            section.card #chain aria-labelledby="chain-title" {
                h2 #chain-title { (l.t("audit.chain")) }
                @match &report {
                    None => { p.muted { (l.t("audit.chain_help")) } }
                    Some(r) if r.ok => { p.notice.ok #chain-status role="status" {
                        (l.f("audit.chain_ok", &[("entries", &r.entries.to_string())]))
                        @if let Some(head) = &r.head { " " span.key.muted { (l.f("audit.chain_head", &[("head", &head.to_hex())])) } }
                        @if r.signatures_checked {
                            " " (l.f("audit.chain_signed", &[("checkpoints", &r.checkpoints.to_string())]))
                        }
                    } }
                    Some(r) => { div.error #chain-status role="alert" {
                        @if let Some(bad) = &r.first_bad {
                            p { (l.f("audit.chain_bad", &[("seq", &bad.seq.to_string()), ("entries", &r.entries.to_string())])) }
                            p { span.key { (bad.reason.as_str()) } ": " (bad.reason.message()) @if let Some(d) = &bad.detail { " (" (d) ")" } }
                        } @else {
                            p { (l.f("audit.chain_bad", &[("seq", "?"), ("entries", &r.entries.to_string())])) }
                        }
                    } }
                }
                form method="get" action="/audit" {
                    @for (k, v) in &filters { input type="hidden" name=(k) value=(v); }
                    input type="hidden" name="verify" value="1";
                    button #verify type="submit" { (l.t("audit.verify")) }
                }
            }
        }
        (filter_form(l, &q, projects.as_deref(), &problems))
        @if let Some(page) = &entries {
            @if page.items.is_empty() {
                p.muted #none { (l.t("audit.none")) }
            } @else {
                (entries_table(l, &page.items))
            }
            nav.pager aria-label=(l.t("audit.pages")) {
                @if q.cursor.is_some() {
                    a href=(url("/audit", &filters)) { (l.t("audit.newest")) }
                }
                @if let Some(older) = &older {
                    a rel="next" #older href=(older) { (l.t("audit.older")) }
                }
            }
        }
    };
    html(&ui, problems.status(), layout(&ui, Some(&who), title, body))
}

fn filter_form(l: L, q: &PageQuery, projects: Option<&[String]>, problems: &Problems) -> Markup {
    let placed: Vec<String> = [
        "project",
        "environment",
        "resource",
        "actor",
        "action",
        "from",
        "to",
        "cursor",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let (res_bad, res_desc) = invalid(problems, "resource", "f-resource_type");
    let (act_bad, act_desc) = invalid(problems, "action", "f-action");
    let (proj_bad, proj_desc) = invalid(problems, "project", "f-project");
    html! {
        (form::summary(l, problems, &placed, "/audit"))
        form.filters #audit-filters method="get" action="/audit" role="search" novalidate {
            div.field {
                label for="f-project" { (l.t("audit.project")) }
                @match projects {
                    // Owners: their projects only (the API refuses others).
                    Some(owned) => {
                        select #f-project name="project" aria-invalid=[proj_bad] aria-describedby=[proj_desc] {
                            option value="" { (l.t("audit.any")) }
                            @for p in owned { option value=(p) selected[q.project == *p] { (p) } }
                        }
                    }
                    None => {
                        input #f-project type="text" name="project" value=(q.project) aria-invalid=[proj_bad] aria-describedby=[proj_desc];
                    }
                }
                (messages(problems, "project", "f-project"))
            }
            (form::input(problems, "text", "environment", l.t("audit.environment"), &q.environment, None))
            div.field {
                label for="f-resource_type" { (l.t("audit.resource_type")) }
                select #f-resource_type name="resource_type" aria-invalid=[res_bad] aria-describedby=[res_desc] {
                    option value="" { (l.t("audit.any")) }
                    @for t in ResourceType::ALL {
                        option value=(t.as_str()) selected[q.resource_type == t.as_str()] { (t.as_str()) }
                    }
                }
                (messages(problems, "resource", "f-resource_type"))
            }
            div.field {
                label for="f-resource_key" { (l.t("audit.resource_key")) }
                input #f-resource_key type="text" name="resource_key" value=(q.resource_key);
            }
            (form::input(problems, "text", "actor", l.t("audit.actor"), &q.actor, Some(l.t("audit.actor_hint"))))
            div.field {
                label for="f-action" { (l.t("audit.action")) }
                select #f-action name="action" aria-invalid=[act_bad] aria-describedby=[act_desc] {
                    option value="" { (l.t("audit.any")) }
                    @for a in Action::ALL {
                        option value=(a.as_str()) selected[q.action == a.as_str()] { (a.as_str()) }
                    }
                }
                (messages(problems, "action", "f-action"))
            }
            (form::input(problems, "datetime-local", "from", l.t("audit.from"), &q.from, None))
            (form::input(problems, "datetime-local", "to", l.t("audit.to"), &q.to, None))
            button type="submit" { (l.t("audit.apply")) }
        }
    }
}

fn text<'a>(e: &'a Map<String, Value>, k: &str) -> &'a str {
    e.get(k).and_then(Value::as_str).unwrap_or("")
}

fn entries_table(l: L, entries: &[Map<String, Value>]) -> Markup {
    html! {
        table #audit {
            caption.skip { (l.t("audit.title")) }
            thead {
                tr {
                    th scope="col" { (l.t("audit.seq")) }
                    th scope="col" { (l.t("audit.at")) }
                    th scope="col" { (l.t("audit.who")) }
                    th scope="col" { (l.t("audit.what")) }
                    th scope="col" { (l.t("audit.where")) }
                    th scope="col" { (l.t("audit.changes")) }
                }
            }
            tbody {
                @for e in entries {
                    @let actor = e.get("actor");
                    @let field = |k: &str| actor.and_then(|a| a.get(k)).and_then(Value::as_str).unwrap_or("").to_string();
                    @let resource = e.get("resource");
                    @let rtype = resource.and_then(|r| r.get("type")).and_then(Value::as_str).unwrap_or("");
                    @let rkey = resource.and_then(|r| r.get("key")).and_then(Value::as_str).unwrap_or("");
                    tr data-seq=(e.get("seq").map(Value::to_string).unwrap_or_default()) data-action=(text(e, "action")) data-resource=(format!("{rtype}:{rkey}")) {
                        td.num { (e.get("seq").map(Value::to_string).unwrap_or_default()) }
                        td { (short_time(text(e, "at"))) }
                        td {
                            @let name = field("name");
                            (if name.is_empty() { field("id") } else { name })
                            br;
                            span.muted { (field("kind")) @if let Some(role) = e.get("role").and_then(Value::as_str) { " · " (role) } }
                        }
                        td { span.tag { (text(e, "action")) } " " (rtype) " " span.key { (rkey) } }
                        td.key {
                            (text(e, "project"))
                            @if let Some(env) = e.get("environment").and_then(Value::as_str) { " / " (env) }
                        }
                        td { (patch(l, e.get("patch"))) }
                    }
                }
            }
        }
    }
}

/// The change as its JSON Patch operations, one per line: `replace /enabled = true`.
fn patch(l: L, ops: Option<&Value>) -> Markup {
    let ops = ops
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    html! {
        @if !ops.is_empty() {
            ul.key.patch {
                @for op in ops.iter().take(PATCH_OPS) {
                    li {
                        (op.get("op").and_then(Value::as_str).unwrap_or("")) " "
                        (op.get("path").and_then(Value::as_str).filter(|p| !p.is_empty()).unwrap_or("/"))
                        @if let Some(v) = op.get("value") { " = " (short_json(v)) }
                    }
                }
                @if ops.len() > PATCH_OPS {
                    li.muted { (l.f("audit.more_ops", &[("count", &(ops.len() - PATCH_OPS).to_string())])) }
                }
            }
        }
    }
}

/// A value's JSON, cut to a readable length on a character boundary.
fn short_json(v: &Value) -> String {
    const MAX: usize = 200;
    let s = v.to_string();
    match s.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_the_api_query() {
        let q = PageQuery {
            resource_type: "flag".into(),
            resource_key: " checkout ".into(),
            from: "2026-12-06T13:30".into(),
            to: "2026-12-07T00:00:00+09:00".into(),
            ..PageQuery::default()
        };
        let api = q.api();
        assert_eq!(api.resource.as_deref(), Some("flag:checkout"));
        assert_eq!(api.from.as_deref(), Some("2026-12-06T13:30:00Z"));
        assert_eq!(api.to.as_deref(), Some("2026-12-07T00:00:00+09:00"));
        assert_eq!(api.project, None);
    }

    #[test]
    fn long_values_are_cut_on_a_character() {
        let v = Value::String("あ".repeat(300));
        assert!(short_json(&v).ends_with('…'));
        assert_eq!(short_json(&Value::Bool(true)), "true");
    }
}
