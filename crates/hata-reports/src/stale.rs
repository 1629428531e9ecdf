//! The stale-flag report: flags that are candidates for removal, with their owners.
//!
//! A flag (not archived) is a candidate for any of these reasons (`StaleReason`):
//! - `not_evaluated`: no environment evaluated it in the last `days` days (its newest
//!   last-evaluated time is older), or it was never evaluated and was created before them.
//! - `single_variant`: it existed through the whole window, was evaluated in it, and every
//!   evaluation in the window, in every environment, served the same variant. This reads the
//!   evaluation counts (what was served), not the configuration (what could be served): a
//!   rule that matches nobody yet does not keep a flag off the list, and a flag whose
//!   configuration allows one variant only but is never evaluated is `not_evaluated` instead.
//! - `temporary_expired`: it is `temporary` and older than its `lifetime_days` (or, without
//!   one, the report's default lifetime).

use std::collections::BTreeMap;

use hata_store::Store;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::day::{hour_of, second_of};
use crate::{ReportError, ReportResult};

/// `days` when the caller gives none.
pub const DEFAULT_DAYS: u32 = 30;
/// The longest window.
pub const MAX_DAYS: u32 = 3650;
/// A temporary flag's expected lifetime when it states none.
pub const DEFAULT_LIFETIME_DAYS: u32 = 30;

#[derive(Debug, Clone, Copy)]
pub struct StaleOptions {
    /// The window, in days (1..=3650).
    pub days: u32,
    /// A temporary flag's lifetime when it has no `lifetime_days`.
    pub default_lifetime_days: u32,
}

impl StaleOptions {
    /// `days` checked; `None` is the default.
    pub fn new(days: Option<u32>) -> ReportResult<StaleOptions> {
        let days = days.unwrap_or(DEFAULT_DAYS);
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(ReportError::Invalid {
                field: "days",
                message: format!("must be between 1 and {MAX_DAYS}"),
            });
        }
        Ok(StaleOptions {
            days,
            default_lifetime_days: DEFAULT_LIFETIME_DAYS,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StaleReason {
    NotEvaluated,
    SingleVariant,
    TemporaryExpired,
}

impl StaleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StaleReason::NotEvaluated => "not_evaluated",
            StaleReason::SingleVariant => "single_variant",
            StaleReason::TemporaryExpired => "temporary_expired",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StaleReport {
    pub days: u32,
    pub generated_at: String,
    /// Start of the window (RFC 3339 UTC): `days` days before `generated_at`.
    pub since: String,
    pub default_lifetime_days: u32,
    /// Removal candidates, by project then flag.
    pub candidates: Vec<Candidate>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Candidate {
    pub project: String,
    pub flag: String,
    /// The flag's `owner` (empty when nobody is named).
    pub owner: String,
    pub temporary: bool,
    pub created_at: Option<String>,
    /// Newest last-evaluated time over its environments; null if never evaluated.
    pub last_evaluated: Option<String>,
    /// For `single_variant`: the one variant served.
    pub variant: Option<String>,
    /// For temporary flags: when the expected lifetime ends (RFC 3339 UTC).
    pub expires_at: Option<String>,
    pub reasons: Vec<StaleReason>,
}

/// The stale-flag report as of `now`.
pub async fn stale(
    store: &Store,
    options: StaleOptions,
    now: OffsetDateTime,
) -> ReportResult<StaleReport> {
    let since = now - Duration::days(i64::from(options.days));
    let since_text = second_of(since);
    let flags = store.all_flags().await?;
    let mut last: BTreeMap<(String, String), String> = BTreeMap::new();
    for e in store.all_last_evaluated().await? {
        let newest = last.entry((e.project, e.flag)).or_default();
        if e.at > *newest {
            *newest = e.at;
        }
    }
    // Hours that started at or after the window's start: the whole window, less at most the
    // part of an hour at its start.
    let window_from = hour_of(since + Duration::minutes(59));
    let mut served: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for t in store.evaluation_totals(&window_from, "~").await? {
        if t.count > 0 {
            served
                .entry((t.project, t.flag))
                .or_default()
                .push(t.variant);
        }
    }
    let mut candidates = Vec::new();
    for (project, flag) in flags {
        if flag.archived {
            continue;
        }
        let created = flag
            .created_at
            .as_deref()
            .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
        let existed_through_window = created.is_some_and(|c| c <= since);
        let key = (project.clone(), flag.key.clone());
        let last_evaluated = last.get(&key).cloned();
        let mut reasons = Vec::new();
        // Without its zone, `since_text` is a prefix of every time of its second, whatever
        // the width of their fraction (`day`).
        let evaluated_since = last_evaluated
            .as_deref()
            .is_some_and(|at| at >= since_text.trim_end_matches('Z'));
        if !evaluated_since && (last_evaluated.is_some() || existed_through_window) {
            reasons.push(StaleReason::NotEvaluated);
        }
        let variants = served.get(&key);
        let mut variant = None;
        if existed_through_window {
            if let Some([only]) = variants.map(Vec::as_slice) {
                reasons.push(StaleReason::SingleVariant);
                variant = Some(only.clone());
            }
        }
        let mut expires_at = None;
        if flag.temporary {
            let lifetime = flag.lifetime_days.unwrap_or(options.default_lifetime_days);
            if let Some(c) = created {
                let end = c + Duration::days(i64::from(lifetime));
                expires_at = Some(second_of(end));
                if end < now {
                    reasons.push(StaleReason::TemporaryExpired);
                }
            }
        }
        if !reasons.is_empty() {
            candidates.push(Candidate {
                project,
                flag: flag.key,
                owner: flag.owner,
                temporary: flag.temporary,
                created_at: flag.created_at,
                last_evaluated,
                variant,
                expires_at,
                reasons,
            });
        }
    }
    Ok(StaleReport {
        days: options.days,
        generated_at: second_of(now),
        since: since_text,
        default_lifetime_days: options.default_lifetime_days,
        candidates,
    })
}
