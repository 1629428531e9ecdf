//! `GET /api/v1/projects/{project}/flags/{flag}/insights?env=&from=&to=`: how often the flag
//! served each variant (and why), per hour, plus when it was last evaluated. Counts reach the
//! store within one flush interval (10 s) of the evaluation.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use hata_core::validate::FieldError;
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::error::{AppError, AppResult};
use crate::extract::{Path, Query};
use crate::AppState;

/// Without `from`, insights cover the last 7 days.
const DEFAULT_SPAN: Duration = Duration::days(7);

pub fn router() -> Router<AppState> {
    Router::new().route("/projects/{project}/flags/{flag}/insights", get(insights))
}

/// `?env=&from=&to=`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InsightsQuery {
    /// Only this environment.
    env: Option<String>,
    /// RFC 3339; default: 7 days before `to`.
    #[param(format = DateTime)]
    from: Option<String>,
    /// RFC 3339; default: now.
    #[param(format = DateTime)]
    to: Option<String>,
}

/// Evaluation counts of one flag.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Insights {
    project: String,
    flag: String,
    environment: Option<String>,
    from: String,
    to: String,
    /// Per environment and variant: evaluations in the window.
    totals: BTreeMap<String, BTreeMap<String, i64>>,
    buckets: Vec<hata_store::EvaluationCount>,
    last_evaluated: Vec<hata_store::FlagEvaluated>,
}

fn parse_time(field: &str, value: &str) -> Result<OffsetDateTime, AppError> {
    OffsetDateTime::parse(value, &Rfc3339).map_err(|_| {
        AppError::Invalid(vec![FieldError {
            field: field.to_string(),
            message: "must be an RFC 3339 date-time, e.g. 2026-11-23T14:00:00Z".into(),
        }])
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ` in UTC: the form the store's hour buckets compare against.
fn utc_seconds(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

async fn insights(
    State(s): State<AppState>,
    Path((project, flag)): Path<(String, String)>,
    Query(q): Query<InsightsQuery>,
) -> AppResult<Json<Insights>> {
    s.store.get_flag(&project, &flag).await?;
    if let Some(env) = &q.env {
        s.store.get_environment(&project, env).await?;
    }
    let to = match &q.to {
        Some(t) => parse_time("to", t)?,
        None => OffsetDateTime::now_utc(),
    };
    let from = match &q.from {
        Some(f) => parse_time("from", f)?,
        None => to - DEFAULT_SPAN,
    };
    if from > to {
        return Err(AppError::Invalid(vec![FieldError {
            field: "from".into(),
            message: "must not be after `to`".into(),
        }]));
    }
    // A bucket is in the window if its hour starts in [hour of `from`, `to`).
    let from_hour = from
        .to_offset(time::UtcOffset::UTC)
        .replace_minute(0)
        .and_then(|t| t.replace_second(0))
        .map_err(|e| AppError::BadRequest(e.to_string()))?;
    let (from, to) = (utc_seconds(from_hour), utc_seconds(to));
    let buckets = s
        .store
        .evaluation_counts(&project, &flag, q.env.as_deref(), &from, &to)
        .await?;
    let mut totals: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for b in &buckets {
        *totals
            .entry(b.environment.clone())
            .or_default()
            .entry(b.variant.clone())
            .or_default() += b.count;
    }
    let last_evaluated = s
        .store
        .flag_last_evaluated(&project, &flag)
        .await?
        .into_iter()
        .filter(|e| q.env.as_ref().is_none_or(|env| *env == e.environment))
        .collect();
    Ok(Json(Insights {
        project,
        flag,
        environment: q.env,
        from,
        to,
        totals,
        buckets,
        last_evaluated,
    }))
}
