//! `/projects/{project}/segments`: list, create, get, replace, delete (409 while in use).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use hata_core::model::Segment;
use hata_store::{Page, WriteOp};

use super::{versioned, written, Writer};
use crate::error::AppResult;
use crate::extract::{IfMatch, JsonBody, Paging, Path, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/projects/{project}/segments", get(list).post(create))
        .route(
            "/projects/{project}/segments/{segment}",
            get(show).put(replace).delete(remove),
        )
}

async fn list(
    State(s): State<AppState>,
    Path(project): Path<String>,
    Query(p): Query<Paging>,
) -> AppResult<Json<Page<Segment>>> {
    Ok(Json(
        s.store
            .list_segments(&project, p.limit()?, p.cursor.as_deref())
            .await?,
    ))
}

async fn create(
    State(s): State<AppState>,
    Path(project): Path<String>,
    Writer(w): Writer,
    JsonBody(segment): JsonBody<Segment>,
) -> AppResult<Response> {
    let out = s
        .write(&w, WriteOp::CreateSegment { project, segment })
        .await?;
    Ok(written(StatusCode::CREATED, out))
}

async fn show(
    State(s): State<AppState>,
    Path((project, key)): Path<(String, String)>,
) -> AppResult<Response> {
    let segment = s.store.get_segment(&project, &key).await?;
    Ok(versioned(StatusCode::OK, segment.version, &segment))
}

async fn replace(
    State(s): State<AppState>,
    Path((project, key)): Path<(String, String)>,
    IfMatch(expected_version): IfMatch,
    Writer(w): Writer,
    JsonBody(segment): JsonBody<Segment>,
) -> AppResult<Response> {
    let out = s
        .write(
            &w,
            WriteOp::UpdateSegment {
                project,
                key,
                expected_version,
                segment,
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
        WriteOp::DeleteSegment {
            project,
            key,
            expected_version,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
