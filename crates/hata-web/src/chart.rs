//! A stacked bar chart as server-rendered SVG: one bar per time bucket, one segment per
//! variant. Pure (no I/O, no clock), so it is tested here on its markup.
//!
//! The CSP allows no inline style, and the chart needs none: sizes and places are SVG
//! presentation attributes (`x`, `y`, `width`, `height`), colours are the stylesheet's
//! classes (`.chart .w0` … `.w4`, the rollout bar's palette). It is an image to assistive
//! technology (`role="img"` labelled by its `<title>` and `<desc>`), each segment carries its
//! own `<title>` (bucket, variant, count), and the page shows the same numbers as a table.

use maud::{html, Markup};

/// Colours in the stylesheet's palette; variants past it reuse it in order.
pub const PALETTE: usize = 5;

/// The plot's size in SVG units (the SVG scales to its box).
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
/// Room for the scale on the left and the bucket labels below.
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;

/// What a chart shows: `counts[bucket][variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// Each bucket's label, in time order.
    pub buckets: Vec<String>,
    /// Each variant's key, in the flag's order.
    pub variants: Vec<String>,
    pub counts: Vec<Vec<i64>>,
}

impl Series {
    /// Every bucket's total.
    pub fn totals(&self) -> Vec<i64> {
        self.counts.iter().map(|row| row.iter().sum()).collect()
    }

    /// Each variant's total over every bucket.
    pub fn variant_totals(&self) -> Vec<i64> {
        (0..self.variants.len())
            .map(|v| self.counts.iter().filter_map(|row| row.get(v)).sum())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.iter().flatten().all(|c| *c == 0)
    }
}

/// The class of variant `i`'s colour.
pub fn colour(i: usize) -> String {
    format!("w{}", i % PALETTE)
}

/// Numbers as the chart writes them: `1234567` → `1,234,567`.
pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// SVG coordinates with two decimals at most (`12.5`, `3`).
fn n(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The chart. `id` makes its `<title>` and `<desc>` ids unique on the page; `title` and
/// `desc` are what assistive technology reads for the whole image.
pub fn svg(series: &Series, id: &str, title: &str, desc: &str) -> Markup {
    let totals = series.totals();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / series.buckets.len().max(1) as f64;
    // A gap between bars, except when they are many and thin.
    let gap = if slot > 6.0 { slot * 0.2 } else { 0.0 };
    let base = TOP + plot_h;
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    // Label every bucket when there are few, else about six of them.
    let label_every = series.buckets.len().div_ceil(8).max(1);
    let scale = |count: i64| plot_h * count as f64 / max as f64;
    let bars: Vec<Bar> = series
        .buckets
        .iter()
        .enumerate()
        .map(|(b, label)| {
            let mut below = 0;
            let mut segments = Vec::new();
            for (v, variant) in series.variants.iter().enumerate() {
                let c = series
                    .counts
                    .get(b)
                    .and_then(|row| row.get(v))
                    .copied()
                    .unwrap_or(0);
                if c <= 0 {
                    continue;
                }
                let (y0, y1) = (base - scale(below), base - scale(below + c));
                segments.push(Segment {
                    class: colour(v),
                    y: y1,
                    // At least half a unit: a tiny count stays visible.
                    h: (y0 - y1).max(0.5),
                    title: format!("{label} · {variant}: {}", grouped(c)),
                });
                below += c;
            }
            Bar {
                x: LEFT + slot * b as f64 + gap / 2.0,
                w: (slot - gap).max(0.5),
                segments,
                label: b.is_multiple_of(label_every).then_some(label.as_str()),
            }
        })
        .collect();
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}"))
            role="img" aria-labelledby=(format!("{title_id} {desc_id}")) {
            title #(title_id) { (title) }
            desc #(desc_id) { (desc) }
            // The scale: zero and the highest bar.
            line.axis x1=(n(LEFT)) y1=(n(base)) x2=(n(WIDTH)) y2=(n(base)) {}
            line.axis x1=(n(LEFT)) y1=(n(TOP)) x2=(n(LEFT)) y2=(n(base)) {}
            text.scale x=(n(LEFT - 4.0)) y=(n(TOP + 8.0)) text-anchor="end" { (grouped(max)) }
            text.scale x=(n(LEFT - 4.0)) y=(n(base)) text-anchor="end" { "0" }
            @for bar in &bars {
                g {
                    @for seg in &bar.segments {
                        rect class=(seg.class) x=(n(bar.x)) y=(n(seg.y)) width=(n(bar.w)) height=(n(seg.h)) {
                            title { (seg.title) }
                        }
                    }
                }
                @if let Some(label) = bar.label {
                    text.scale x=(n(bar.x + bar.w / 2.0)) y=(n(HEIGHT - 6.0)) text-anchor="middle" { (short(label)) }
                }
            }
        }
    }
}

/// One bucket's bar, laid out.
struct Bar<'a> {
    x: f64,
    w: f64,
    segments: Vec<Segment>,
    /// Shown under the bar (only some buckets are labelled).
    label: Option<&'a str>,
}

/// One variant's part of a bar, bottom up.
struct Segment {
    class: String,
    y: f64,
    h: f64,
    title: String,
}

/// A bucket's label under its bar: the hour of an hour (`2026-11-23 14:00` → `14:00`), the
/// month and day of a day (`2026-11-23` → `11-23`).
fn short(label: &str) -> &str {
    match label.split_once(' ') {
        Some((_, hour)) => hour,
        None => label.get(5..).unwrap_or(label),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Series {
        Series {
            buckets: vec!["2026-11-22".into(), "2026-11-23".into()],
            variants: vec!["on".into(), "off".into()],
            counts: vec![vec![0, 0], vec![300, 100]],
        }
    }

    #[test]
    fn bars_stack_variants_scaled_to_the_highest_bucket() {
        let svg = svg(&series(), "chart-prod", "Evaluations", "Per day").into_string();
        assert!(svg.starts_with("<svg class=\"chart\""), "{svg}");
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("aria-labelledby=\"chart-prod-title chart-prod-desc\""));
        assert!(svg.contains("<title id=\"chart-prod-title\">Evaluations</title>"));
        assert!(svg.contains("<desc id=\"chart-prod-desc\">Per day</desc>"));
        // Two segments (the empty bucket draws none): `on` at the bottom, `off` on top,
        // together the whole plot's height (150) since this bucket is the highest.
        assert_eq!(svg.matches("<rect").count(), 2, "{svg}");
        assert!(
            svg.contains("class=\"w0\" x=\"421.2\" y=\"45.5\" width=\"265.6\" height=\"112.5\""),
            "{svg}"
        );
        assert!(
            svg.contains("class=\"w1\" x=\"421.2\" y=\"8\" width=\"265.6\" height=\"37.5\""),
            "{svg}"
        );
        assert!(svg.contains("<title>2026-11-23 · on: 300</title>"));
        assert!(
            svg.contains(">400</text>"),
            "the scale's top is the highest total"
        );
        assert!(svg.contains(">11-23</text>"));
        // The CSP allows no inline style.
        assert!(!svg.contains("style"), "{svg}");
    }

    #[test]
    fn an_empty_series_draws_axes_only() {
        let s = Series {
            buckets: (0..24).map(|h| format!("2026-11-23 {h:02}:00")).collect(),
            variants: vec!["on".into()],
            counts: vec![vec![0]; 24],
        };
        assert!(s.is_empty());
        let svg = svg(&s, "c", "t", "d").into_string();
        assert_eq!(svg.matches("<rect").count(), 0);
        // 24 hours: every third labelled.
        assert_eq!(svg.matches("text-anchor=\"middle\"").count(), 8, "{svg}");
        assert!(svg.contains(">00:00</text>") && svg.contains(">21:00</text>"));
    }

    #[test]
    fn labels_and_text_are_escaped() {
        let mut s = series();
        s.variants[0] = "<b>".into();
        let svg = svg(&s, "c", "a & b", "d").into_string();
        assert!(svg.contains("a &amp; b"));
        assert!(svg.contains("&lt;b&gt;: 300"));
    }

    #[test]
    fn totals_and_numbers() {
        let s = series();
        assert_eq!(s.totals(), [0, 400]);
        assert_eq!(s.variant_totals(), [300, 100]);
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(grouped(-1234), "-1,234");
        assert_eq!(colour(6), "w1");
    }
}
