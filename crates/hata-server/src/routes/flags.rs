//! `/projects/{project}/flags`: list with filters, create, get, replace, JSON Merge Patch of
//! the flag-level fields, delete; and one environment's `FlagConfig`: get, replace, JSON Merge
//! Patch (the kill switch).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use hata_core::model::{Flag, FlagConfig};
use hata_store::{FlagFilter, Page, StoreError, WriteOp};
use serde::Deserialize;
use serde_json::Value;

use super::{versioned, written, Writer};
use crate::error::{AppError, AppResult};
use crate::extract::{page_limit, IfMatch, JsonBody, Path, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/projects/{project}/flags", get(list).post(create))
        .route(
            "/projects/{project}/flags/{flag}",
            get(show).put(replace).patch(patch_flag).delete(remove),
        )
        .route(
            "/projects/{project}/flags/{flag}/environments/{env}",
            get(show_config).put(replace_config).patch(patch_config),
        )
}

/// `GET /projects/{project}/flags` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlagQuery {
    /// Case-insensitive substring of key, name or description.
    q: Option<String>,
    /// Only flags with this tag.
    tag: Option<String>,
    /// Only flags with this owner.
    owner: Option<String>,
    /// `true`: only archived flags; omitted or `false`: only live ones.
    archived: Option<bool>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

async fn list(
    State(s): State<AppState>,
    Path(project): Path<String>,
    Query(q): Query<FlagQuery>,
) -> AppResult<Json<Page<Flag>>> {
    let filter = FlagFilter {
        q: q.q,
        tag: q.tag,
        owner: q.owner,
        archived: q.archived,
        ..FlagFilter::default()
    };
    Ok(Json(
        s.store
            .list_flags(&project, &filter, page_limit(q.limit)?, q.cursor.as_deref())
            .await?,
    ))
}

async fn create(
    State(s): State<AppState>,
    Path(project): Path<String>,
    Writer(w): Writer,
    JsonBody(flag): JsonBody<Flag>,
) -> AppResult<Response> {
    let out = s.write(&w, WriteOp::CreateFlag { project, flag }).await?;
    Ok(written(StatusCode::CREATED, out))
}

async fn show(
    State(s): State<AppState>,
    Path((project, key)): Path<(String, String)>,
) -> AppResult<Response> {
    let flag = s.store.get_flag(&project, &key).await?;
    Ok(versioned(StatusCode::OK, flag.version, &flag))
}

async fn replace(
    State(s): State<AppState>,
    Path((project, key)): Path<(String, String)>,
    IfMatch(expected_version): IfMatch,
    Writer(w): Writer,
    JsonBody(flag): JsonBody<Flag>,
) -> AppResult<Response> {
    let out = s
        .write(
            &w,
            WriteOp::UpdateFlag {
                project,
                key,
                expected_version,
                flag,
            },
        )
        .await?;
    Ok(written(StatusCode::OK, out))
}

/// `PATCH /projects/{project}/flags/{flag}`: a JSON Merge Patch of the flag-level fields
/// (name, description, owner, tags, temporary, archived, variants).
async fn patch_flag(
    State(s): State<AppState>,
    Path((project, key)): Path<(String, String)>,
    IfMatch(expected_version): IfMatch,
    Writer(w): Writer,
    JsonBody(patch): JsonBody<Value>,
) -> AppResult<Response> {
    let out = s
        .write(
            &w,
            WriteOp::PatchFlag {
                project,
                key,
                expected_version,
                patch,
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
        WriteOp::DeleteFlag {
            project,
            key,
            expected_version,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn show_config(
    State(s): State<AppState>,
    Path((project, key, env)): Path<(String, String, String)>,
) -> AppResult<Response> {
    let flag = s.store.get_flag(&project, &key).await?;
    let config = flag.environments.get(&env).ok_or_else(|| {
        AppError::Store(StoreError::NotFound(format!(
            "environment {env:?} of flag {key:?}"
        )))
    })?;
    Ok(versioned(StatusCode::OK, flag.version, config))
}

async fn replace_config(
    State(s): State<AppState>,
    Path((project, flag, environment)): Path<(String, String, String)>,
    IfMatch(expected_version): IfMatch,
    Writer(w): Writer,
    JsonBody(config): JsonBody<FlagConfig>,
) -> AppResult<Response> {
    let out = s
        .write(
            &w,
            WriteOp::PutFlagConfig {
                project,
                flag,
                environment,
                expected_version,
                config,
            },
        )
        .await?;
    Ok(written(StatusCode::OK, out))
}

async fn patch_config(
    State(s): State<AppState>,
    Path((project, flag, environment)): Path<(String, String, String)>,
    IfMatch(expected_version): IfMatch,
    Writer(w): Writer,
    JsonBody(patch): JsonBody<Value>,
) -> AppResult<Response> {
    let out = s
        .write(
            &w,
            WriteOp::PatchFlagConfig {
                project,
                flag,
                environment,
                expected_version,
                patch,
            },
        )
        .await?;
    Ok(written(StatusCode::OK, out))
}
