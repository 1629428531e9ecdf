//! hata's reports, assembled from the store and rendered as JSON or Markdown; no HTTP, so
//! `hata report …` (offline, against the store) and `GET /api/v1/reports/…` (the server)
//! produce the same document from the same code.
//!
//! - `day`: the UTC day a daily report covers and the text bounds its queries compare with.
//! - `latency`: average and p95 from the stored duration histogram.
//! - `daily`: `daily` — requests, latency, evaluations, flag changes, jobs, uptime and the
//!   error budget of one day.
//! - `stale`: `stale` — removal candidates: flags not evaluated, serving one variant, or
//!   temporary past their expected lifetime.
//! - `jobs`: backup and job outcomes, from the scheduler's `job_runs`.
//! - `markdown`: the Markdown form of both reports.
//! - `slack`: the daily report as a Slack-compatible webhook message (`text` and a
//!   `markdown` block).

pub mod daily;
pub mod day;
pub mod jobs;
pub mod latency;
pub mod markdown;
pub mod slack;
pub mod stale;

pub use daily::{daily, DailyReport};
pub use day::Day;
pub use stale::{stale, StaleOptions, StaleReport};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A parameter the caller gave is unusable: the parameter's name and why.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] hata_store::StoreError),
}

pub type ReportResult<T> = Result<T, ReportError>;
