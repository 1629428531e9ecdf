//! `GET /api/v1/backups`: the backups at the configured destination (`--backup-to`), read
//! through `hata_backup::list` (admin only: manifests name the store's backups, and the
//! destination holds secrets' hashes).

use axum::extract::State;
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Serialize;

use crate::error::{AppError, AppResult};
use crate::AppState;

/// The configured destination, shared as an extension.
#[derive(Clone)]
pub struct Backups(pub Option<hata_backup::Destination>);

pub fn router() -> Router<AppState> {
    Router::new().route("/backups", get(list))
}

/// What `GET /backups` answers.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BackupList {
    /// The destination as configured (`null`: none, and the lists are empty).
    destination: Option<String>,
    /// Complete backups, oldest first, each its manifest.
    backups: Vec<hata_backup::Manifest>,
    /// Folders without a manifest (unfinished backups), and manifests that cannot be read,
    /// with why.
    incomplete: Vec<Incomplete>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Incomplete {
    id: String,
    reason: String,
}

async fn list(
    State(_): State<AppState>,
    Extension(Backups(destination)): Extension<Backups>,
) -> AppResult<Json<BackupList>> {
    let Some(dest) = destination else {
        return Ok(Json(BackupList {
            destination: None,
            backups: Vec::new(),
            incomplete: Vec::new(),
        }));
    };
    let listed = hata_backup::list(&dest)
        .await
        .map_err(|e| AppError::BackupDestination(e.to_string()))?;
    let mut backups = Vec::new();
    let mut incomplete = Vec::new();
    for l in listed {
        match l {
            hata_backup::Listed::Complete(m) => backups.push(*m),
            hata_backup::Listed::Incomplete(id) => incomplete.push(Incomplete {
                id,
                reason: "no manifest.json: unfinished, or its manifest was lost".into(),
            }),
            hata_backup::Listed::Unreadable(id, reason) => {
                incomplete.push(Incomplete { id, reason })
            }
        }
    }
    Ok(Json(BackupList {
        destination: Some(dest.to_string()),
        backups,
        incomplete,
    }))
}
