//! The Markdown form of the reports: what a person reads in a terminal or a chat message.
//! Same figures as the JSON, fewer details (the JSON has every flag and variant).

use std::fmt::Write;

use crate::daily::{DailyReport, Requests};
use crate::stale::StaleReport;

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.1} ms"))
}

fn percent(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{:.*} %", digits, v * 100.0))
}

/// Cells of text in a table, with `|` escaped.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

fn request_row(out: &mut String, label: &str, r: &Requests) {
    let _ = writeln!(
        out,
        "| {label} | {} | {} | {} | {} | {} | {} | {} |",
        r.total,
        r.succeeded,
        r.failed,
        r.client_errors,
        percent(r.error_rate, 3),
        ms(r.average_ms),
        ms(r.p95_ms)
    );
}

pub fn daily(r: &DailyReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# hata daily report: {}\n", r.date);
    let _ = writeln!(out, "Generated at {}.\n", r.generated_at);
    let _ = writeln!(out, "## Requests\n");
    let _ = writeln!(
        out,
        "| | total | succeeded | failed (5xx) | 4xx | error rate | average | p95 |\n|---|---:|---:|---:|---:|---:|---:|---:|"
    );
    request_row(&mut out, "all", &r.requests);
    for c in &r.by_route_class {
        request_row(&mut out, &c.route_class, &c.requests);
    }
    let a = &r.availability;
    let _ = writeln!(out, "\n## Availability\n");
    let _ = writeln!(
        out,
        "- Uptime: {} ({} of {} minutes)",
        percent(a.uptime, 2),
        a.up_minutes,
        a.minutes
    );
    for (label, b) in [("day", &a.budget_day), ("30 days", &a.budget_window)] {
        let _ = writeln!(
            out,
            "- Error budget ({label}, {} to {}, objective {:.1} %): {} failed of {} allowed → {} consumed",
            b.from,
            b.to,
            a.objective * 100.0,
            b.failed,
            b.allowed_failures,
            percent(b.consumed, 1)
        );
    }
    let _ = writeln!(
        out,
        "\n## Evaluations\n\n{} evaluations.\n",
        r.evaluations.total
    );
    if !r.evaluations.by_project.is_empty() {
        let _ = writeln!(out, "| project | evaluations |\n|---|---:|");
        for (p, n) in &r.evaluations.by_project {
            let _ = writeln!(out, "| {} | {n} |", cell(p));
        }
    }
    if !r.top_flags.is_empty() {
        let _ = writeln!(
            out,
            "\nTop flags:\n\n| project | flag | evaluations | variants |\n|---|---|---:|---|"
        );
        for f in &r.top_flags {
            let variants: Vec<String> = f
                .variants
                .iter()
                .map(|(v, n)| format!("{v}: {n}"))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(&f.project),
                cell(&f.flag),
                f.total,
                cell(&variants.join(", "))
            );
        }
    }
    let _ = writeln!(
        out,
        "\n## Flag changes\n\n{} changes to {} flags.\n",
        r.changes.total,
        r.changes.flags.len()
    );
    if !r.changes.by_actor.is_empty() {
        let _ = writeln!(out, "| who | changes | actions |\n|---|---:|---|");
        for a in &r.changes.by_actor {
            let who = match &a.name {
                Some(name) => format!("{name} ({})", a.actor),
                None => a.actor.clone(),
            };
            let actions: Vec<String> = a.actions.iter().map(|(k, n)| format!("{k}: {n}")).collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                cell(&who),
                a.total,
                actions.join(", ")
            );
        }
    }
    let _ = writeln!(out, "\n## Backups and jobs\n");
    if r.jobs.is_empty() {
        let _ = writeln!(out, "No job runs recorded.");
    } else {
        let _ = writeln!(
            out,
            "| job | succeeded | failed | unfinished | failed attempts |\n|---|---:|---:|---:|---:|"
        );
        for j in &r.jobs {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                cell(&j.job),
                j.succeeded,
                j.failed,
                j.unfinished,
                j.failed_attempts
            );
        }
    }
    if !r.backups.is_empty() {
        let _ = writeln!(
            out,
            "\n| backup run | scheduled | outcome | what |\n|---|---|---|---|"
        );
        for b in &r.backups {
            let what = b.detail.as_deref().or(b.error.as_deref()).unwrap_or("");
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(&b.job),
                b.scheduled_at,
                b.outcome,
                cell(what)
            );
        }
    }
    out
}

pub fn stale(r: &StaleReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# hata stale flags: last {} days\n", r.days);
    let _ = writeln!(
        out,
        "Generated at {} (window from {}; temporary flags without a lifetime: {} days).\n",
        r.generated_at, r.since, r.default_lifetime_days
    );
    if r.candidates.is_empty() {
        let _ = writeln!(out, "No removal candidates.");
        return out;
    }
    let _ = writeln!(out, "| project | flag | owner | reasons | last evaluated | details |\n|---|---|---|---|---|---|");
    for c in &r.candidates {
        let reasons: Vec<&str> = c.reasons.iter().map(|r| r.as_str()).collect();
        let mut details = Vec::new();
        if let Some(v) = &c.variant {
            details.push(format!("serves only {v}"));
        }
        if let Some(e) = &c.expires_at {
            details.push(format!("expected removal {e}"));
        }
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            cell(&c.project),
            cell(&c.flag),
            if c.owner.is_empty() {
                "–".to_string()
            } else {
                cell(&c.owner)
            },
            reasons.join(", "),
            c.last_evaluated.as_deref().unwrap_or("never"),
            cell(&details.join("; "))
        );
    }
    out
}
