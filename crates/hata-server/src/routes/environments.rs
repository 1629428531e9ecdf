//! `/projects/{project}/environments`: list, create (every flag gets a disabled config for the
//! new environment), get, replace, delete, and `…/evaluate` ("what does this user see?").

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use hata_core::evaluate::Context;
use hata_core::model::Environment;
use hata_core::snapshot::Snapshot;
use hata_store::{Page, StoreError, WriteOp};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{versioned, written, Writer};
use crate::error::{AppError, AppResult};
use crate::extract::{IfMatch, JsonBody, Paging, Path, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/projects/{project}/environments", get(list).post(create))
        .route(
            "/projects/{project}/environments/{env}",
            get(show).put(replace).delete(remove),
        )
        .route(
            "/projects/{project}/environments/{env}/evaluate",
            post(evaluate),
        )
}

async fn list(
    State(s): State<AppState>,
    Path(project): Path<String>,
    Query(p): Query<Paging>,
) -> AppResult<Json<Page<hata_store::EnvironmentRecord>>> {
    let after = p
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                AppError::BadRequest(format!(
                    "cursor: {c:?} is not a cursor this list handed out"
                ))
            })
        })
        .transpose()?;
    Ok(Json(
        s.store
            .page_environments(&project, p.limit()?, after)
            .await?,
    ))
}

async fn create(
    State(s): State<AppState>,
    Path(project): Path<String>,
    Writer(w): Writer,
    JsonBody(environment): JsonBody<Environment>,
) -> AppResult<Response> {
    let out = s
        .write(
            &w,
            WriteOp::CreateEnvironment {
                project,
                environment,
            },
        )
        .await?;
    Ok(written(StatusCode::CREATED, out))
}

async fn show(
    State(s): State<AppState>,
    Path((project, env)): Path<(String, String)>,
) -> AppResult<Response> {
    let record = s.store.get_environment(&project, &env).await?;
    Ok(versioned(StatusCode::OK, record.version, &record))
}

/// `PUT …/environments/{env}` body; bookkeeping fields sent back from a GET are ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentUpdate {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,127}$")]
    key: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    name: String,
    #[serde(default)]
    #[schema(max_length = 10000)]
    description: String,
    #[serde(default)]
    protected: bool,
    #[serde(default, rename = "version")]
    _version: Option<i64>,
    #[serde(default, rename = "revision")]
    _revision: Option<i64>,
    #[serde(default, rename = "revised_at")]
    _revised_at: Option<String>,
    #[serde(default, rename = "created_at")]
    _created_at: Option<String>,
    #[serde(default, rename = "updated_at")]
    _updated_at: Option<String>,
}

async fn replace(
    State(s): State<AppState>,
    Path((project, key)): Path<(String, String)>,
    IfMatch(expected_version): IfMatch,
    Writer(w): Writer,
    JsonBody(b): JsonBody<EnvironmentUpdate>,
) -> AppResult<Response> {
    let environment = Environment {
        key: b.key,
        name: b.name,
        description: b.description,
        protected: b.protected,
    };
    let out = s
        .write(
            &w,
            WriteOp::UpdateEnvironment {
                project,
                key,
                expected_version,
                environment,
            },
        )
        .await?;
    Ok(written(StatusCode::OK, out))
}

async fn remove(
    State(s): State<AppState>,
    Path((project, key)): Path<(String, String)>,
    IfMatch(expected_version): IfMatch,
    Writer(w): Writer,
) -> AppResult<StatusCode> {
    s.write(
        &w,
        WriteOp::DeleteEnvironment {
            project,
            key,
            expected_version,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/environments/{env}/evaluate` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvaluateRequest {
    /// The evaluation context: `targetingKey` and attributes.
    #[serde(default)]
    #[schema(value_type = Object)]
    context: serde_json::Map<String, Value>,
}

/// Every flag of the environment for one context, with reasons. A debugging tool: it compiles
/// the environment from the store rather than reading a serving snapshot, so it shows exactly
/// what is stored.
async fn evaluate(
    State(s): State<AppState>,
    Path((project, env)): Path<(String, String)>,
    JsonBody(req): JsonBody<EvaluateRequest>,
) -> AppResult<Json<Value>> {
    let state = s.store.environment_state(&project, &env).await?;
    let snapshot = Snapshot::compile(&env, &state.flags, &state.segments).map_err(|e| {
        AppError::Store(StoreError::Internal(format!(
            "stored rules do not compile: {e}"
        )))
    })?;
    let ctx = Context::new(&req.context);
    let results: Vec<Value> = snapshot
        .evaluate_all(&ctx)
        .map(|e| serde_json::to_value(&e).unwrap_or_default())
        .collect();
    Ok(Json(
        json!({"revision": state.environment.revision, "results": results}),
    ))
}
