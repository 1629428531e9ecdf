//! The store's error type: what went wrong, in terms the HTTP layer can map to a status.

use hata_core::validate::ValidationErrors;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The addressed resource (or its parent) does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A resource with that key already exists.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The resource cannot be deleted or changed this way because others depend on it.
    #[error("{message}")]
    Conflict {
        message: String,
        dependants: Vec<String>,
    },
    /// `If-Match` named no version that is current; nothing was changed.
    #[error("version mismatch: If-Match is {expected}, the current version is \"{current}\"")]
    VersionMismatch {
        expected: crate::write::Expected,
        current: i64,
    },
    /// The writer may not make this change (a protected environment without the second
    /// factor `WriteMeta::protected_refusal` asks for); nothing was changed.
    #[error("{0}")]
    Forbidden(String),
    /// The new content is invalid; nothing was changed.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// `Store::import` into a store that already holds data (what it found, per table);
    /// nothing was written.
    #[error("the store is not empty ({}); import only into an empty store", .0.join(", "))]
    NotEmpty(Vec<String>),
    /// The database cannot be reached (or timed out); nothing was changed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A bug or a corrupt database: should never happen.
    #[error("storage error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) => {
                // PostgreSQL: class 08 (connection), 57P01..03 (shutdown), 53 (resources).
                // SQLite: BUSY (5) / LOCKED (6) after busy_timeout.
                let code = db.code().unwrap_or_default();
                // PostgreSQL: 22021, a text with U+0000 (or not UTF-8). The write path and the
                // HTTP layer refuse U+0000 before it gets here; should some caller still send
                // it, it is the caller's content, not a broken store.
                if code == "22021" {
                    return StoreError::Invalid(ValidationErrors(vec![
                        hata_core::validate::FieldError::new(
                            "",
                            format!("text {}", hata_core::validate::NUL_MESSAGE),
                        ),
                    ]));
                }
                if code.starts_with("08")
                    || code.starts_with("57P")
                    || code.starts_with("53")
                    || code == "5"
                    || code == "6"
                {
                    StoreError::Unavailable(e.to_string())
                } else {
                    StoreError::Internal(e.to_string())
                }
            }
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        StoreError::Internal(format!("corrupt document: {e}"))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
