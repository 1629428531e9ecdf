//! `/projects/{project}/members`: users' roles in a project. Owners manage them (up to their
//! own role), as they manage the project's tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use hata_access::{Principal, Role};
use hata_core::validate::FieldError;
use hata_store::{MemberRecord, Page, WriteMeta, WriteOp, WriteOutcome};
use serde::Deserialize;

use super::Writer;
use crate::auth::Caller;
use crate::error::{AppError, AppResult};
use crate::extract::{JsonBody, Paging, Path, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/projects/{project}/members", get(list))
        .route(
            "/projects/{project}/members/{user_id}",
            put(set).delete(remove),
        )
}

/// `PUT /projects/{project}/members/{user_id}` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    /// `viewer`, `editor` or `owner`.
    #[schema(value_type = Role)]
    role: String,
}

async fn list(
    State(s): State<AppState>,
    Path(project): Path<String>,
    Query(p): Query<Paging>,
) -> AppResult<Json<Page<MemberRecord>>> {
    Ok(Json(
        s.store
            .page_members(&project, p.limit()?, p.cursor.as_deref())
            .await?,
    ))
}

async fn set(
    State(s): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Path((project, user_id)): Path<(String, String)>,
    Writer(w): Writer,
    JsonBody(req): JsonBody<MemberRequest>,
) -> AppResult<Json<serde_json::Value>> {
    let out = put_member(&s, &caller, &w, project, user_id, &req.role).await?;
    Ok(Json(out.value.unwrap_or_default()))
}

/// Gives `user_id` the role `role` (`viewer`, `editor` or `owner`) in `project`: this route's
/// and the web UI's rule, that a caller hands out at most the role it may grant there.
pub async fn put_member(
    s: &AppState,
    caller: &Principal,
    w: &WriteMeta,
    project: String,
    user_id: String,
    role: &str,
) -> AppResult<WriteOutcome> {
    let role = Role::parse(role).ok_or_else(|| {
        AppError::Invalid(vec![FieldError {
            field: "role".into(),
            message: format!("{role:?} is not a role: viewer, editor or owner"),
        }])
    })?;
    if caller.grantable_in(&project).is_none_or(|most| role > most) {
        return Err(AppError::Forbidden(format!(
            "you cannot make anyone {role} of project {project:?}"
        )));
    }
    s.write(
        w,
        WriteOp::PutMember {
            project,
            user_id,
            role,
        },
    )
    .await
}

async fn remove(
    State(s): State<AppState>,
    Path((project, user_id)): Path<(String, String)>,
    Writer(w): Writer,
) -> AppResult<StatusCode> {
    s.write(&w, WriteOp::DeleteMember { project, user_id })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
