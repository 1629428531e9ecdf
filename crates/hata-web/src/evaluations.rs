//! The flag page's evaluations: per environment, how often each variant was served over the
//! last 24 hours (per hour), 7 or 30 days (per UTC day), as a chart (`chart`) and the same
//! numbers as a table. The window is the page's `?window=` (`24h`, `7d`, `30d`), switched
//! with links, no script. The counts are those the serving path stores
//! (`Store::evaluation_series` over `evaluation_counts`); they reach the store within one
//! flush (10 s) of the evaluation.

use std::collections::BTreeMap;

use hata_core::model::Flag;
use hata_store::{EnvironmentRecord, SeriesPoint, SeriesStep, Store, StoreResult};
use maud::{html, Markup};
use time::{Duration, OffsetDateTime, Time};

use crate::chart::{self, grouped, Series};
use crate::i18n::L;
use crate::page::Ui;

/// A window the page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    Day,
    Week,
    Month,
}

impl Window {
    pub const ALL: [Window; 3] = [Window::Day, Window::Week, Window::Month];

    /// Its `?window=` value.
    pub fn code(self) -> &'static str {
        match self {
            Window::Day => "24h",
            Window::Week => "7d",
            Window::Month => "30d",
        }
    }

    /// The page's window; 7 days unless it names another.
    pub fn of(ui: &Ui) -> Window {
        let asked = ui.query.iter().find(|(k, _)| k == "window");
        Window::ALL
            .into_iter()
            .find(|w| asked.is_some_and(|(_, v)| v == w.code()))
            .unwrap_or(Window::Week)
    }

    fn label(self, l: L) -> &'static str {
        match self {
            Window::Day => l.t("chart.window_day"),
            Window::Week => l.t("chart.window_week"),
            Window::Month => l.t("chart.window_month"),
        }
    }
}

/// What to read for a window ending now: `[from, to)` in the store's hour format, the
/// grouping, and every bucket in order as (the store's bucket, its label), empty ones too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub from: String,
    pub to: String,
    pub step: SeriesStep,
    pub buckets: Vec<(String, String)>,
}

fn hour_of(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour()
    )
}

fn day_of(t: OffsetDateTime) -> String {
    format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day())
}

/// `window` ending at `now` (UTC): the current hour or day is the last bucket.
pub fn plan(window: Window, now: OffsetDateTime) -> Plan {
    let now = now.to_offset(time::UtcOffset::UTC);
    let (step, first, count, unit) = match window {
        Window::Day => {
            let hour = now.replace_time(Time::MIDNIGHT) + Duration::hours(now.hour().into());
            (
                SeriesStep::Hour,
                hour - Duration::hours(23),
                24,
                Duration::HOUR,
            )
        }
        Window::Week | Window::Month => {
            let days = if window == Window::Week { 7 } else { 30 };
            let today = now.replace_time(Time::MIDNIGHT);
            (
                SeriesStep::Day,
                today - Duration::days(days - 1),
                days,
                Duration::DAY,
            )
        }
    };
    let buckets = (0..count)
        .map(|i| {
            let t = first + unit * i as i32;
            match step {
                SeriesStep::Hour => (hour_of(t), format!("{} {:02}:00", day_of(t), t.hour())),
                SeriesStep::Day => (day_of(t), day_of(t)),
            }
        })
        .collect();
    let end = first + unit * count as i32;
    Plan {
        from: format!("{}:00:00Z", hour_of(first)),
        to: format!("{}:00:00Z", hour_of(end)),
        step,
        buckets,
    }
}

/// One environment's points as a chart's series: the flag's variants in order (then any
/// variant the counts name that the flag no longer has), every bucket of the plan.
pub fn fill(plan: &Plan, flag: &Flag, points: &[&SeriesPoint]) -> Series {
    let mut variants: Vec<String> = flag.variants.iter().map(|v| v.key.clone()).collect();
    for p in points {
        if !variants.contains(&p.variant) {
            variants.push(p.variant.clone());
        }
    }
    let at: BTreeMap<&str, usize> = plan
        .buckets
        .iter()
        .enumerate()
        .map(|(i, (key, _))| (key.as_str(), i))
        .collect();
    let mut counts = vec![vec![0i64; variants.len()]; plan.buckets.len()];
    for p in points {
        let (Some(&b), Some(v)) = (
            at.get(p.bucket.as_str()),
            variants.iter().position(|v| *v == p.variant),
        ) else {
            continue;
        };
        counts[b][v] += p.count;
    }
    Series {
        buckets: plan
            .buckets
            .iter()
            .map(|(_, label)| label.clone())
            .collect(),
        variants,
        counts,
    }
}

/// Reads what the section shows: the window's points of every environment.
pub async fn load(store: &Store, project: &str, flag: &str, window: Window) -> StoreResult<Loaded> {
    let plan = plan(window, OffsetDateTime::now_utc());
    let points = store
        .evaluation_series(project, flag, &plan.from, &plan.to, plan.step)
        .await?;
    Ok(Loaded {
        window,
        plan,
        points,
    })
}

/// The section's data, read.
pub struct Loaded {
    window: Window,
    plan: Plan,
    points: Vec<SeriesPoint>,
}

/// The section: window links, then per environment a chart and its table.
pub fn section(l: L, ui: &Ui, flag: &Flag, envs: &[EnvironmentRecord], loaded: &Loaded) -> Markup {
    let window_label = loaded.window.label(l);
    html! {
        section #evaluations aria-labelledby="evaluations-title" {
            h2 #evaluations-title { (l.t("chart.title")) }
            nav.windows aria-label=(l.t("chart.windows")) {
                @for w in Window::ALL {
                    @if w == loaded.window {
                        span aria-current="true" { (w.label(l)) }
                    } @else {
                        a href=(format!("{}#evaluations", ui.with(&[("window", Some(w.code()))]))) { (w.label(l)) }
                    }
                }
            }
            p.muted { (l.t("chart.delay")) }
            @for env in envs {
                @let key = &env.environment.key;
                @let points: Vec<&SeriesPoint> = loaded.points.iter().filter(|p| &p.environment == key).collect();
                @let series = fill(&loaded.plan, flag, &points);
                @let heading = format!("chart-{key}");
                div.chart-env {
                    h3 #(heading) { (env.environment.name) }
                    @if series.is_empty() {
                        p.muted { (l.f("chart.none", &[("window", window_label)])) }
                    } @else {
                        @let totals = series.variant_totals();
                        @let title = l.f("chart.svg_title", &[("env", &env.environment.name), ("window", window_label)]);
                        @let desc = l.f("chart.svg_desc", &[("summary", &summary(&series.variants, &totals))]);
                        (chart::svg(&series, &format!("chart-svg-{key}"), &title, &desc))
                        table.totals aria-labelledby=(heading) {
                            thead { tr { th scope="col" { (l.t("chart.variant")) } th scope="col" { (l.f("chart.total", &[("window", window_label)])) } } }
                            tbody {
                                @for (i, (variant, total)) in series.variants.iter().zip(&totals).enumerate() {
                                    tr {
                                        th scope="row" { span class=(format!("sw {}", chart::colour(i))) {} " " span.key { (variant) } }
                                        td.num { (grouped(*total)) }
                                    }
                                }
                            }
                        }
                        details {
                            summary { (l.t("chart.table")) }
                            table.buckets {
                                caption.vh { (title) }
                                thead {
                                    tr {
                                        th scope="col" { (l.t("chart.when")) }
                                        @for v in &series.variants { th scope="col" { span.key { (v) } } }
                                    }
                                }
                                tbody {
                                    @for (b, label) in series.buckets.iter().enumerate() {
                                        tr {
                                            th scope="row" { (label) }
                                            @for c in &series.counts[b] { td.num { (grouped(*c)) } }
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

/// `on 1,200, off 300`: the chart's description.
fn summary(variants: &[String], totals: &[i64]) -> String {
    variants
        .iter()
        .zip(totals)
        .map(|(v, t)| format!("{v} {}", grouped(*t)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_day_is_the_last_24_hours_by_hour() {
        let p = plan(Window::Day, datetime!(2026-11-23 14:35:10 UTC));
        assert_eq!(p.step, SeriesStep::Hour);
        assert_eq!(p.from, "2026-11-22T15:00:00Z");
        assert_eq!(p.to, "2026-11-23T15:00:00Z");
        assert_eq!(p.buckets.len(), 24);
        assert_eq!(
            p.buckets[0],
            ("2026-11-22T15".into(), "2026-11-22 15:00".into())
        );
        assert_eq!(
            p.buckets[23],
            ("2026-11-23T14".into(), "2026-11-23 14:00".into())
        );
    }

    #[test]
    fn weeks_and_months_are_whole_utc_days_ending_today() {
        // 09:00 in Tokyo is midnight in UTC: still the previous UTC day's hours.
        let now = datetime!(2026-03-01 08:59:00 +9);
        let week = plan(Window::Week, now);
        assert_eq!(week.step, SeriesStep::Day);
        assert_eq!(week.from, "2026-02-22T00:00:00Z");
        assert_eq!(week.to, "2026-03-01T00:00:00Z");
        assert_eq!(week.buckets.len(), 7);
        assert_eq!(week.buckets[6].0, "2026-02-28");
        let month = plan(Window::Month, datetime!(2026-03-01 00:00:00 UTC));
        assert_eq!(month.buckets.len(), 30);
        assert_eq!(month.from, "2026-01-31T00:00:00Z");
        assert_eq!(month.to, "2026-03-02T00:00:00Z");
        assert_eq!(month.buckets[29].0, "2026-03-01");
    }

    #[test]
    fn points_fill_their_buckets_in_the_flags_variant_order() {
        let flag: Flag = serde_json::from_value(serde_json::json!({
            "key": "f", "type": "boolean",
            "variants": [{"key": "on", "value": true}, {"key": "off", "value": false}],
        }))
        .expect("flag");
        let p = plan(Window::Week, datetime!(2026-11-23 10:00:00 UTC));
        let point = |bucket: &str, variant: &str, count| SeriesPoint {
            environment: "prod".into(),
            variant: variant.into(),
            bucket: bucket.into(),
            count,
        };
        let points = [
            point("2026-11-23", "off", 5),
            point("2026-11-17", "on", 2),
            point("2026-11-23", "gone", 1),
            // Outside the plan: ignored.
            point("2026-11-01", "on", 100),
        ];
        let refs: Vec<&SeriesPoint> = points.iter().collect();
        let s = fill(&p, &flag, &refs);
        assert_eq!(s.variants, ["on", "off", "gone"]);
        assert_eq!(s.counts[0], [2, 0, 0]);
        assert_eq!(s.counts[6], [0, 5, 1]);
        assert_eq!(s.variant_totals(), [2, 5, 1]);
        assert_eq!(
            summary(&s.variants, &s.variant_totals()),
            "on 2, off 5, gone 1"
        );
    }
}
