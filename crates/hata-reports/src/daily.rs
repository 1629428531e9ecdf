//! The daily report: what one UTC day looked like.
//!
//! Definitions (also in `docs/operations.md`, "Reports"):
//! - **Requests** are every answer the servers gave (all replicas, all route classes), from
//!   `serving_hours`. **Failed** means 5xx: the service failed. 4xx are the client's mistakes
//!   and count as succeeded (the usual SRE convention), though they are shown apart.
//!   `error_rate` = failed / total.
//! - **Latency**: the average is the sum of durations over the count; the p95 is interpolated
//!   within the histogram's buckets (`latency`).
//! - **Uptime**: the share of the day's minutes (up to now, for today) in which at least one
//!   replica was up and wrote its rows, and no replica had more than 5 % of its requests in
//!   that minute fail. A minute with no replica's row counts as down: the report cannot tell
//!   a stopped service from one not yet installed.
//! - **Error budget**: the objective is 99.9 % of requests succeeding, so 0.1 % may fail.
//!   `consumed` = failed / (0.1 % × total): 1.0 is the whole budget. Given for the day and for
//!   the 30 days ending with it.

use std::collections::BTreeMap;

use hata_store::serving_hours::{ServingHour, BUCKETS, ROUTE_CLASSES};
use hata_store::Store;
use serde::Serialize;
use time::OffsetDateTime;

use crate::day::{hour_of, second_of, Day};
use crate::jobs::{job_outcomes, BackupRun, JobOutcome};
use crate::latency::{millis, quantile};
use crate::{ReportError, ReportResult};

/// The availability objective: 99.9 % of requests succeed.
pub const OBJECTIVE: f64 = 0.999;

/// Days in the error budget's window (ending with the report's day).
pub const BUDGET_WINDOW_DAYS: i64 = 30;

/// A replica's minute is down when more than this share of its requests failed.
pub const BAD_MINUTE_FAILURE_SHARE: f64 = 0.05;

/// Flags in `top_flags`.
pub const TOP_FLAGS: usize = 10;

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DailyReport {
    /// The UTC day, `YYYY-MM-DD`.
    pub date: String,
    /// When the report was made (RFC 3339 UTC); for today, its figures end there.
    pub generated_at: String,
    pub requests: Requests,
    /// Requests per route class (`evaluation`, `stream`, `admin`, `health`, `other`), classes
    /// without requests left out.
    pub by_route_class: Vec<ClassRequests>,
    pub evaluations: Evaluations,
    /// The flags evaluated most, at most 10, most first.
    pub top_flags: Vec<FlagEvaluations>,
    pub changes: Changes,
    /// How the day's runs of each job ended (`job_runs`), by job name.
    pub jobs: Vec<JobOutcome>,
    /// Each run of a backup job that day, oldest first: the backup it took, or why it failed.
    pub backups: Vec<BackupRun>,
    pub availability: Availability,
}

/// Request counts and latency of some requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Requests {
    pub total: i64,
    /// Not 5xx (4xx included).
    pub succeeded: i64,
    /// 5xx.
    pub failed: i64,
    /// 4xx, counted in `succeeded`.
    pub client_errors: i64,
    /// failed / total; null without requests.
    pub error_rate: Option<f64>,
    /// Mean duration in milliseconds; null without requests.
    pub average_ms: Option<f64>,
    /// 95th percentile in milliseconds, interpolated within the histogram's buckets; null
    /// without requests.
    pub p95_ms: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClassRequests {
    pub route_class: String,
    #[serde(flatten)]
    pub requests: Requests,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Evaluations {
    pub total: i64,
    /// Per project: evaluations of all its flags.
    pub by_project: BTreeMap<String, i64>,
    /// Per flag (all environments together), with its variants, by project then flag.
    pub by_flag: Vec<FlagEvaluations>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlagEvaluations {
    pub project: String,
    pub flag: String,
    pub total: i64,
    /// Evaluations per variant served.
    pub variants: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Changes {
    /// Changes of flags (audit log entries of resource type `flag`).
    pub total: i64,
    /// The flags changed, with their number of changes, by project then flag.
    pub flags: Vec<FlagChanges>,
    /// Who changed flags: per actor, changes per action; most changes first.
    pub by_actor: Vec<ActorChanges>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlagChanges {
    pub project: Option<String>,
    pub flag: String,
    pub changes: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActorChanges {
    /// `kind:id`, as the audit log names actors (`user:usr_…`, `token:tok_…`).
    pub actor: String,
    /// The actor's name at its latest change of the day, when it had one.
    pub name: Option<String>,
    pub total: i64,
    /// Changes per action (`create`, `update`, `delete`, …).
    pub actions: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Availability {
    /// The objective: share of requests that succeed (0.999).
    pub objective: f64,
    /// Minutes of the day counted: 1440, or those elapsed for today.
    pub minutes: i64,
    /// Minutes in which some replica served and none failed more than 5 % of its requests.
    pub up_minutes: i64,
    /// up_minutes / minutes; null when no minute is counted.
    pub uptime: Option<f64>,
    pub budget_day: ErrorBudget,
    /// The 30 days ending with the report's day.
    pub budget_window: ErrorBudget,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBudget {
    /// First day (`YYYY-MM-DD`).
    pub from: String,
    /// Last day, included.
    pub to: String,
    pub total: i64,
    pub failed: i64,
    /// Failures the objective allows: 0.1 % of total.
    pub allowed_failures: f64,
    /// failed / allowed_failures (1.0: the whole budget); null without requests.
    pub consumed: Option<f64>,
}

/// The daily report of `day`, as of `now`. A day after `now`'s is refused (`date`).
pub async fn daily(store: &Store, day: Day, now: OffsetDateTime) -> ReportResult<DailyReport> {
    let today = Day::of(now);
    if day > today {
        return Err(ReportError::Invalid {
            field: "date",
            message: format!("must not be after today ({today})"),
        });
    }
    let (from, to) = (day.start_bound(), day.plus(1).start_bound());
    let window_start = day.minus(BUDGET_WINDOW_DAYS - 1);
    let rows = store
        .serving_hours(&window_start.start_bound(), &to)
        .await?;
    let evaluations = store.evaluation_totals(&from, &to).await?;
    let changes = store.flag_changes(&from, &to).await?;
    let (jobs, backups) = job_outcomes(store, &from, &to).await?;

    let of_day: Vec<&ServingHour> = rows
        .iter()
        .filter(|r| r.hour.as_str() >= from.as_str())
        .collect();
    let minutes = if day == today {
        let since = now - day.start();
        since.whole_minutes().clamp(0, 1440)
    } else {
        1440
    };
    let up = up_minutes(&of_day, &hour_of(now), now.minute());
    let evaluations = evaluations_of(evaluations);
    let mut top_flags = evaluations.by_flag.clone();
    top_flags.sort_by(|a, b| {
        b.total
            .cmp(&a.total)
            .then_with(|| (&a.project, &a.flag).cmp(&(&b.project, &b.flag)))
    });
    top_flags.truncate(TOP_FLAGS);
    Ok(DailyReport {
        date: day.to_string(),
        generated_at: second_of(now),
        requests: requests_of(of_day.iter().copied()),
        by_route_class: ROUTE_CLASSES
            .iter()
            .map(|class| ClassRequests {
                route_class: class.to_string(),
                requests: requests_of(of_day.iter().copied().filter(|r| r.route_class == *class)),
            })
            .filter(|c| c.requests.total > 0)
            .collect(),
        evaluations,
        top_flags,
        changes: changes_of(changes),
        jobs,
        backups,
        availability: Availability {
            objective: OBJECTIVE,
            minutes,
            up_minutes: up,
            uptime: (minutes > 0).then(|| up as f64 / minutes as f64),
            budget_day: budget(day, day, of_day.iter().copied()),
            budget_window: budget(window_start, day, rows.iter()),
        },
    })
}

/// Totals and latency of `rows`.
fn requests_of<'a>(rows: impl Iterator<Item = &'a ServingHour>) -> Requests {
    let (mut total, mut failed, mut client_errors, mut micros) = (0i64, 0i64, 0i64, 0i64);
    let mut buckets = [0i64; BUCKETS];
    for r in rows {
        total += r.requests;
        failed += r.server_errors;
        client_errors += r.client_errors;
        micros += r.duration_micros;
        for (sum, b) in buckets.iter_mut().zip(r.buckets) {
            *sum += b;
        }
    }
    let counted: i64 = buckets.iter().sum();
    Requests {
        total,
        succeeded: total - failed,
        failed,
        client_errors,
        error_rate: (total > 0).then(|| failed as f64 / total as f64),
        // Mean microseconds, printed as milliseconds.
        average_ms: (counted > 0).then(|| (micros as f64 / counted as f64).round() / 1e3),
        p95_ms: quantile(0.95, &buckets).map(millis),
    }
}

fn evaluations_of(totals: Vec<hata_store::VariantTotal>) -> Evaluations {
    let mut e = Evaluations::default();
    // `totals` come ordered by project, flag and variant.
    for t in totals {
        e.total += t.count;
        *e.by_project.entry(t.project.clone()).or_default() += t.count;
        match e.by_flag.last_mut() {
            Some(f) if f.project == t.project && f.flag == t.flag => {
                f.total += t.count;
                *f.variants.entry(t.variant).or_default() += t.count;
            }
            _ => e.by_flag.push(FlagEvaluations {
                project: t.project,
                flag: t.flag,
                total: t.count,
                variants: BTreeMap::from([(t.variant, t.count)]),
            }),
        }
    }
    e
}

fn changes_of(changes: Vec<hata_store::audit::FlagChange>) -> Changes {
    let mut flags: BTreeMap<(Option<String>, String), i64> = BTreeMap::new();
    let mut actors: BTreeMap<String, ActorChanges> = BTreeMap::new();
    let total = changes.len() as i64;
    for c in changes {
        *flags.entry((c.project, c.flag)).or_default() += 1;
        let a = actors
            .entry(c.actor.clone())
            .or_insert_with(|| ActorChanges {
                actor: c.actor.clone(),
                name: None,
                total: 0,
                actions: BTreeMap::new(),
            });
        // Oldest first: the last name seen is the latest.
        if c.actor_name.is_some() {
            a.name = c.actor_name;
        }
        a.total += 1;
        *a.actions.entry(c.action).or_default() += 1;
    }
    let mut by_actor: Vec<ActorChanges> = actors.into_values().collect();
    by_actor.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.actor.cmp(&b.actor)));
    Changes {
        total,
        flags: flags
            .into_iter()
            .map(|((project, flag), changes)| FlagChanges {
                project,
                flag,
                changes,
            })
            .collect(),
        by_actor,
    }
}

/// Minutes of the day's rows that are up: some replica marked it, none marked it bad. In the
/// current hour only minutes before `minute_now` count (the current one is not over).
fn up_minutes(rows: &[&ServingHour], current_hour: &str, minute_now: u8) -> i64 {
    let mut per_hour: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for r in rows {
        let (up, bad) = per_hour.entry(r.hour.as_str()).or_default();
        *up |= r.minutes;
        *bad |= r.bad_minutes;
    }
    per_hour
        .into_iter()
        .map(|(hour, (up, bad))| {
            let mut mask = up & !bad & ((1i64 << 60) - 1);
            if hour == current_hour {
                mask &= (1i64 << minute_now) - 1;
            }
            i64::from(mask.count_ones())
        })
        .sum()
}

fn budget<'a>(from: Day, to: Day, rows: impl Iterator<Item = &'a ServingHour>) -> ErrorBudget {
    let (mut total, mut failed) = (0i64, 0i64);
    for r in rows {
        total += r.requests;
        failed += r.server_errors;
    }
    let allowed = total as f64 * (1.0 - OBJECTIVE);
    ErrorBudget {
        from: from.to_string(),
        to: to.to_string(),
        total,
        failed,
        allowed_failures: (allowed * 1e6).round() / 1e6,
        consumed: (total > 0).then(|| failed as f64 / allowed),
    }
}
