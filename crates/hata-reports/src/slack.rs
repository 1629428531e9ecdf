//! The daily report as a Slack-compatible incoming-webhook message: `text` (a one-line
//! summary: what notifications and clients without blocks show) and `blocks`, one `markdown`
//! block holding the report's Markdown (`markdown::daily`). Slack renders standard Markdown
//! in that block type, tables included, up to 12,000 characters per message; a longer report
//! is cut at a line and says where the whole one is. Services that read only `text`
//! (Mattermost, Rocket.Chat and other "Slack-compatible" receivers) still get the summary.

use serde_json::{json, Value};

use crate::daily::DailyReport;

/// Slack's limit on the Markdown of all `markdown` blocks of one message.
pub const MARKDOWN_LIMIT: usize = 12_000;

/// The webhook message for `report`.
pub fn daily_message(report: &DailyReport) -> Value {
    let markdown = crate::markdown::daily(report);
    json!({
        "text": summary(report),
        "blocks": [{"type": "markdown", "text": fit(&markdown, &report.date)}],
    })
}

/// `hata daily report 2026-11-23: 1234 requests, 0.010 % failed, uptime 100.00 %, …`.
pub fn summary(r: &DailyReport) -> String {
    let failed_jobs: i64 = r.jobs.iter().map(|j| j.failed).sum();
    let succeeded_jobs: i64 = r.jobs.iter().map(|j| j.succeeded).sum();
    let percent = |v: Option<f64>, digits: usize| {
        v.map_or_else(
            || "–".to_string(),
            |v| format!("{:.*} %", digits, v * 100.0),
        )
    };
    format!(
        "hata daily report {}: {} requests, {} failed, uptime {}, {} evaluations, {} flag changes, \
         job runs {} succeeded / {} failed",
        r.date,
        r.requests.total,
        percent(r.requests.error_rate, 3),
        percent(r.availability.uptime, 2),
        r.evaluations.total,
        r.changes.total,
        succeeded_jobs,
        failed_jobs,
    )
}

/// `markdown`, or its first lines within `MARKDOWN_LIMIT` and a note where the rest is.
fn fit(markdown: &str, date: &str) -> String {
    if markdown.chars().count() <= MARKDOWN_LIMIT {
        return markdown.to_string();
    }
    let note = format!(
        "\n… (cut to fit the message; the whole report: `hata report daily --date {date}` or \
         `GET /api/v1/reports/daily?date={date}`)\n"
    );
    let budget = MARKDOWN_LIMIT - note.chars().count();
    let mut out = String::new();
    let mut used = 0;
    for line in markdown.split_inclusive('\n') {
        let n = line.chars().count();
        if used + n > budget {
            break;
        }
        out.push_str(line);
        used += n;
    }
    out.push_str(&note);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_report_is_cut_at_a_line_within_the_limit() {
        let long: String = (0..2_000)
            .map(|i| format!("| flag-{i} | {i} |\n"))
            .collect();
        let cut = fit(&long, "2026-11-23");
        assert!(cut.chars().count() <= MARKDOWN_LIMIT, "{}", cut.len());
        assert!(cut.contains("--date 2026-11-23"));
        let kept = cut.split("\n…").next().unwrap_or_default();
        assert!(kept.lines().all(|l| l.ends_with(" |")), "whole lines only");
        let short = "# report\n";
        assert_eq!(fit(short, "2026-11-23"), short);
    }
}
