//! One flag, read first: its facts and variants; per environment its state (with the kill
//! switch), targets, rules and what it serves by default (rollout weights as shares and a
//! bar); its JSON; and its history from the audit log (the entries
//! `GET /projects/{p}/flags/{f}/history` serves, for those who may read them: admins and the
//! project's owners); its evaluations per variant (`evaluations`) and the form of "what does
//! this user see" (`whosees`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use hata_access::{authorize, Need, Role};
use hata_core::model::{Condition, FlagConfig, Serve};
use hata_server::error::AppError;
use hata_server::routes::audit::flag_history;
use hata_server::AppState;
use maud::{html, Markup};
use serde_json::{Map, Value};

use crate::flags::{list_url, short_time, switch};
use crate::i18n::L;
use crate::page::{error_page, html, layout, SignedIn, Ui};

/// History entries shown on the page.
const HISTORY: usize = 20;

/// `GET /projects/{project}/flags/{flag}`
pub async fn show(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path((project, key)): Path<(String, String)>,
) -> Response {
    if let Err(d) = authorize(&who.principal, Need::Read(&project)) {
        return error_page(&ui, Some(&who), AppError::Forbidden(d.0));
    }
    let can_write = authorize(&who.principal, Need::Write(&project)).is_ok();
    // The audit log's own rule (routes::audit): admins, and owners for their projects.
    let sees_history =
        who.principal.admin || who.principal.projects.get(&project) == Some(&Role::Owner);
    let loaded = async {
        let flag = s.store.get_flag(&project, &key).await?;
        let envs = s.store.list_environments(&project).await?;
        let history = if sees_history {
            Some(
                s.store
                    .page_audit(&flag_history(project.clone(), key.clone()), HISTORY, None)
                    .await?,
            )
        } else {
            None
        };
        Ok::<_, hata_store::StoreError>((flag, envs, history))
    }
    .await;
    let (flag, envs, history) = match loaded {
        Ok(found) => found,
        Err(e) => return error_page(&ui, Some(&who), e.into()),
    };
    // The evaluations chart and "what does this user see" (their own modules).
    let window = crate::evaluations::Window::of(&ui);
    let evaluations = match crate::evaluations::load(&s.store, &project, &key, window).await {
        Ok(loaded) => loaded,
        Err(e) => return error_page(&ui, Some(&who), e.into()),
    };
    let l = ui.l;
    let back = ui.with(&[]);
    let json = serde_json::to_string_pretty(&flag).unwrap_or_default();
    let body = html! {
        p { a href=(format!("/projects/{project}/flags")) { "← " (l.t("flag.back")) } }
        h1 { span.key { (flag.key) } @if !flag.name.is_empty() { " — " (flag.name) } }
        @if flag.archived { p.notice { (l.t("flag.archived")) } }
        dl.facts {
            dt { (l.t("flag.type")) } dd { (flag.flag_type.as_str()) }
            dt { (l.t("flag.description")) } dd { (flag.description) }
            dt { (l.t("flag.owner")) } dd { (flag.owner) }
            dt { (l.t("flag.tags")) }
            dd { @for tag in &flag.tags { a.tag href=(list_url(&project, &[("tag".into(), tag.clone())])) { (tag) } } }
            dt { (l.t("flag.version")) } dd { (flag.version) }
        }
        @if can_write { p { a.button #edit-flag href=(format!("/projects/{project}/flags/{}/edit", flag.key)) { (l.t("edit.edit_flag")) } } }
        h2 { (l.t("flag.variants")) }
        table #variants {
            thead { tr { th scope="col" { (l.t("flag.variant_key")) } th scope="col" { (l.t("flag.variant_value")) } th scope="col" { (l.t("flag.variant_name")) } } }
            tbody {
                @for v in &flag.variants {
                    tr { td.key { (v.key) } td.key { (v.value.to_string()) } td { (v.name.as_deref().unwrap_or("")) } }
                }
            }
        }
        @for env in &envs {
            @if let Some(config) = flag.environments.get(&env.environment.key) {
                section.card aria-labelledby=(format!("env-{}", env.environment.key)) {
                    h2 #(format!("env-{}", env.environment.key)) {
                        (env.environment.name)
                        @if env.environment.protected { " " span.tag { (l.t("env.protected")) } }
                    }
                    (switch(l, &project, &flag, env, can_write, &who.session.csrf_token, &back))
                    @if can_write {
                        p { a.button href=(format!("/projects/{project}/flags/{}/environments/{}/edit", flag.key, env.environment.key)) { (l.f("edit.edit_config", &[("env", &env.environment.name)])) } }
                    }
                    (environment(l, config))
                }
            }
        }
        h2 { (l.t("flag.json")) }
        details {
            summary { (l.t("flag.show_json")) }
            pre.json { code { (json) } }
        }
        h2 { (l.t("flag.history")) }
        @match &history {
            None => p.muted { (l.t("flag.history_owners")) },
            Some(page) if page.items.is_empty() => p.muted { (l.t("flag.history_none")) },
            Some(page) => (history_table(l, &page.items)),
        }
        (crate::evaluations::section(l, &ui, &flag, &envs, &evaluations))
        (crate::whosees::flag_form(l, &project, &flag.key, &envs, &who.session.csrf_token))
    };
    let title = flag.key.clone();
    html(&ui, StatusCode::OK, layout(&ui, Some(&who), &title, body))
}

pub(crate) fn environment(l: L, config: &FlagConfig) -> Markup {
    html! {
        dl.facts {
            dt { (l.t("flag.off_variant")) } dd.key { (config.off_variant) }
            dt { (l.t("flag.default")) } dd { (serve(l, &config.default)) }
        }
        @if !config.prerequisites.is_empty() {
            h3 { (l.t("flag.prerequisites")) }
            ul { @for p in &config.prerequisites { li { span.key { (p.flag) } " → " (p.variants.join(", ")) } } }
        }
        @if !config.targets.is_empty() {
            h3 { (l.t("flag.targets")) }
            ul { @for t in &config.targets { li { span.key { (t.variant) } ": " (t.values.join(", ")) } } }
        }
        @if !config.rules.is_empty() {
            h3 { (l.t("flag.rules")) }
            ol {
                @for rule in &config.rules {
                    li {
                        span.key { (rule.id) }
                        @if let Some(d) = &rule.description { " — " (d) }
                        ul {
                            @for c in &rule.conditions { li.key { (condition(c)) } }
                        }
                        (l.t("flag.serves")) " " (serve(l, &rule.serve))
                    }
                }
            }
        }
    }
}

/// A condition as one line: `country in ["jp","us"]`, `not segment beta`.
fn condition(c: &Condition) -> String {
    match c {
        Condition::Attribute {
            attribute,
            operator,
            values,
            negate,
        } => format!(
            "{}{attribute} {} {}",
            if *negate { "not " } else { "" },
            operator.as_str(),
            Value::Array(values.clone())
        ),
        Condition::Segment { segment, negate } => {
            format!("{}segment {segment}", if *negate { "not " } else { "" })
        }
    }
}

/// A variant, or a rollout's weights as percentages with a bar.
fn serve(l: L, s: &Serve) -> Markup {
    match s {
        Serve::Variant(v) => html! { span.key { (v) } },
        Serve::Rollout(r) => html! {
            span { (l.t("flag.rollout")) }
            @if let Some(by) = &r.bucket_by { " (" (l.f("flag.bucket_by", &[("attribute", by)])) ")" }
            ul.weights {
                @for w in &r.weights {
                    li { span.key { (w.variant) } ": " (percent(w.weight)) }
                }
            }
            div.bar role="img" aria-label=(r.weights.iter().map(|w| format!("{} {}", w.variant, percent(w.weight))).collect::<Vec<_>>().join(", ")) {
                @for (i, w) in r.weights.iter().enumerate() {
                    // Widths are classes of 1 % steps (no inline styles under the CSP).
                    span class=(format!("w{} p{}", i % 5, (w.weight + 500) / 1000)) {}
                }
            }
        },
    }
}

/// Thousandths of a percent as a percentage: `30000` → `30%`, `12345` → `12.345%`.
pub(crate) fn percent(weight: u32) -> String {
    let whole = weight / 1000;
    let frac = weight % 1000;
    if frac == 0 {
        format!("{whole}%")
    } else {
        format!("{whole}.{}%", format!("{frac:03}").trim_end_matches('0'))
    }
}

fn history_table(l: L, entries: &[Map<String, Value>]) -> Markup {
    let text = |e: &Map<String, Value>, k: &str| {
        e.get(k).and_then(Value::as_str).unwrap_or("").to_string()
    };
    html! {
        table #history {
            thead {
                tr {
                    th scope="col" { (l.t("history.at")) }
                    th scope="col" { (l.t("history.actor")) }
                    th scope="col" { (l.t("history.action")) }
                    th scope="col" { (l.t("history.environment")) }
                    th scope="col" { (l.t("history.changes")) }
                }
            }
            tbody {
                @for e in entries {
                    tr {
                        td { (short_time(&text(e, "at"))) }
                        td {
                            @let actor = e.get("actor");
                            (actor.and_then(|a| a.get("name")).and_then(Value::as_str)
                                .or_else(|| actor.and_then(|a| a.get("id")).and_then(Value::as_str))
                                .unwrap_or(""))
                        }
                        td { (text(e, "action")) }
                        td { (text(e, "environment")) }
                        td {
                            ul.key {
                                @for op in e.get("patch").and_then(Value::as_array).into_iter().flatten().take(10) {
                                    li {
                                        (op.get("op").and_then(Value::as_str).unwrap_or("")) " "
                                        (op.get("path").and_then(Value::as_str).unwrap_or(""))
                                        @if let Some(v) = op.get("value") { " = " (v.to_string()) }
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

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn weights_read_as_percentages() {
        assert_eq!(percent(30_000), "30%");
        assert_eq!(percent(12_345), "12.345%");
        assert_eq!(percent(500), "0.5%");
        assert_eq!(percent(0), "0%");
    }
}
