//! `GET /api/v1/reports/daily?date=` and `GET /api/v1/reports/stale?days=`: the reports of
//! `hata-reports`, as JSON. Administrators only: the daily report holds every replica's
//! serving figures and every project's changes and actors.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use hata_core::validate::FieldError;
use hata_reports::{DailyReport, Day, ReportError, StaleOptions, StaleReport};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::error::{AppError, AppResult};
use crate::extract::Query;
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/reports/daily", get(daily))
        .route("/reports/stale", get(stale))
}

/// `?date=`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    /// The UTC day, `YYYY-MM-DD`; default: yesterday. Not after today.
    #[param(format = Date)]
    date: Option<String>,
}

/// `?days=`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StaleQuery {
    /// The window in days, 1 to 3650 (default 30).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 3650)]
    days: Option<String>,
}

/// A report's refusal of a parameter, as a 422 naming it.
impl From<ReportError> for AppError {
    fn from(e: ReportError) -> AppError {
        match e {
            ReportError::Invalid { field, message } => AppError::Invalid(vec![FieldError {
                field: field.to_string(),
                message,
            }]),
            ReportError::Store(e) => e.into(),
        }
    }
}

async fn daily(
    State(s): State<AppState>,
    Query(q): Query<DailyQuery>,
) -> AppResult<Json<DailyReport>> {
    let now = OffsetDateTime::now_utc();
    let day = match &q.date {
        Some(d) => Day::parse("date", d)?,
        None => Day::yesterday(now),
    };
    Ok(Json(hata_reports::daily(&s.store, day, now).await?))
}

async fn stale(
    State(s): State<AppState>,
    Query(q): Query<StaleQuery>,
) -> AppResult<Json<StaleReport>> {
    let days = match &q.days {
        Some(d) => Some(d.parse::<u32>().map_err(|_| {
            AppError::Invalid(vec![FieldError {
                field: "days".into(),
                message: "must be a whole number of days between 1 and 3650".into(),
            }])
        })?),
        None => None,
    };
    let options = StaleOptions::new(days)?;
    let report = hata_reports::stale(&s.store, options, OffsetDateTime::now_utc()).await?;
    Ok(Json(report))
}
