//! `/projects`: create (with default environments), list, get, replace, delete.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Json, Router};
use hata_core::model::{Environment, Project};
use hata_store::{Page, ProjectRecord, WriteOp};
use serde::Deserialize;

use super::{versioned, written, Writer};
use crate::auth::Caller;
use crate::error::AppResult;
use crate::extract::{IfMatch, JsonBody, Paging, Path, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/projects", get(list).post(create))
        .route("/projects/{project}", get(show).put(replace).delete(remove))
}

/// `POST /projects` body: a project plus, optionally, its environments.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProject {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,127}$")]
    key: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    name: String,
    #[serde(default)]
    #[schema(max_length = 10000)]
    description: String,
    environments: Option<Vec<Environment>>,
}

/// Admins see every project; everyone else the projects they hold a role in.
async fn list(
    State(s): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Query(p): Query<Paging>,
) -> AppResult<Json<Page<ProjectRecord>>> {
    let visible: Option<Vec<String>> =
        (!caller.admin).then(|| caller.projects.keys().cloned().collect());
    Ok(Json(
        s.store
            .list_projects_among(visible.as_deref(), p.limit()?, p.cursor.as_deref())
            .await?,
    ))
}

async fn create(
    State(s): State<AppState>,
    Writer(w): Writer,
    JsonBody(body): JsonBody<NewProject>,
) -> AppResult<Response> {
    let project = Project {
        key: body.key,
        name: body.name,
        description: body.description,
    };
    let out = s
        .write(
            &w,
            WriteOp::CreateProject {
                project,
                environments: body.environments,
            },
        )
        .await?;
    Ok(written(StatusCode::CREATED, out))
}

async fn show(State(s): State<AppState>, Path(key): Path<String>) -> AppResult<Response> {
    let project = s.store.get_project(&key).await?;
    let mut body = serde_json::to_value(&project).unwrap_or_default();
    body["environments"] =
        serde_json::to_value(s.store.list_environments(&key).await?).unwrap_or_default();
    Ok(versioned(StatusCode::OK, project.version, &body))
}

/// `PUT /projects/{project}` body. Bookkeeping fields a client may send back from a GET are
/// ignored.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectUpdate {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,127}$")]
    key: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    name: String,
    #[serde(default)]
    #[schema(max_length = 10000)]
    description: String,
    #[serde(default, rename = "version")]
    _version: Option<i64>,
    #[serde(default, rename = "created_at")]
    _created_at: Option<String>,
    #[serde(default, rename = "updated_at")]
    _updated_at: Option<String>,
    #[serde(default, rename = "environments")]
    #[schema(value_type = Option<Vec<Object>>)]
    _environments: Option<serde_json::Value>,
}

async fn replace(
    State(s): State<AppState>,
    Path(key): Path<String>,
    IfMatch(expected_version): IfMatch,
    Writer(w): Writer,
    JsonBody(body): JsonBody<ProjectUpdate>,
) -> AppResult<Response> {
    let project = Project {
        key: body.key,
        name: body.name,
        description: body.description,
    };
    let out = s
        .write(
            &w,
            WriteOp::UpdateProject {
                key,
                expected_version,
                project,
            },
        )
        .await?;
    Ok(written(StatusCode::OK, out))
}

async fn remove(
    State(s): State<AppState>,
    Path(key): Path<String>,
    IfMatch(expected_version): IfMatch,
    Writer(w): Writer,
) -> AppResult<StatusCode> {
    s.write(
        &w,
        WriteOp::DeleteProject {
            key,
            expected_version,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
