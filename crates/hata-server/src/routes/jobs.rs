//! `GET /api/v1/jobs`: the scheduled jobs (schedule, next run, last run) and their recent
//! runs; `POST /api/v1/jobs/{job}/run`: a run now (202 with the run; a replica running jobs
//! takes it, this one at once). Admins only. The scheduler is `hata_jobs`; the runs are the
//! store's `job_runs`, so every replica answers alike.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use hata_core::validate::FieldError;
use hata_jobs::RequestError;
use hata_store::{JobRun, StoreError};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{AppError, AppResult};
use crate::extract::{Path, Query};
use crate::AppState;

/// Runs listed without `?limit=`.
const DEFAULT_LIMIT: u32 = 50;
/// The most runs one answer lists.
const MAX_LIMIT: u32 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/jobs", get(list))
        .route("/jobs/{job}/run", post(run_now))
}

/// `?job=&limit=`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    /// Only this job's runs.
    job: Option<String>,
    /// How many runs, newest first (1 to 500; default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// A registered job.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobView {
    /// The job's name, as `POST /api/v1/jobs/{job}/run` and the metrics' `job_name` use it.
    name: String,
    /// Its cron pattern (UTC), or `off`: then it runs only when asked for.
    schedule: String,
    /// Its next scheduled run as this replica sees it (none while jobs are off here).
    next_run: Option<String>,
    /// Its most recent run, if any.
    last_run: Option<JobRun>,
}

/// The jobs and their recent runs.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobsOverview {
    /// Whether this replica runs jobs (`jobs_enabled`).
    enabled: bool,
    /// This replica's name in the runs' `replica`.
    replica: String,
    jobs: Vec<JobView>,
    /// The most recent runs, newest first.
    runs: Vec<JobRun>,
}

async fn list(
    State(s): State<AppState>,
    Query(q): Query<JobsQuery>,
) -> AppResult<Json<JobsOverview>> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(AppError::Invalid(vec![FieldError {
            field: "limit".into(),
            message: format!("must be from 1 to {MAX_LIMIT}"),
        }]));
    }
    let runs = s.store.job_runs(q.job.as_deref(), i64::from(limit)).await?;
    let mut jobs = Vec::new();
    for job in s.jobs.overview() {
        let last_run = s
            .store
            .job_runs(Some(&job.name), 1)
            .await?
            .into_iter()
            .next();
        jobs.push(JobView {
            name: job.name,
            schedule: job.schedule,
            next_run: job.next_run,
            last_run,
        });
    }
    Ok(Json(JobsOverview {
        enabled: s.jobs.enabled(),
        replica: s.jobs.replica().to_string(),
        jobs,
        runs,
    }))
}

async fn run_now(
    State(s): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path(job): Path<String>,
) -> AppResult<(StatusCode, Json<JobRun>)> {
    match s.jobs.request(&job, &caller.id).await {
        Ok(run) => Ok((StatusCode::ACCEPTED, Json(run))),
        Err(e @ RequestError::Unknown(..)) => Err(AppError::NotFound(e.to_string())),
        Err(e @ RequestError::Off) => Err(AppError::Store(StoreError::Conflict {
            message: e.to_string(),
            dependants: Vec::new(),
        })),
        Err(RequestError::Store(e)) => Err(e.into()),
    }
}
