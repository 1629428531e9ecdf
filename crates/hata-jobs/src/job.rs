//! What a job is: something the scheduler runs by name (`Job`), with the store and its run at
//! hand (`JobContext`), that succeeds with a line for the record or fails with an error.

use std::future::Future;
use std::pin::Pin;

use hata_store::{JobRun, Store, StoreError};

/// What a run of a job returns: on success, a short line for the run's `detail`.
pub type JobFuture<'a> = Pin<Box<dyn Future<Output = Result<String, JobError>> + Send + 'a>>;

/// A job the scheduler can run. Implementations hold their own settings (a destination, a
/// generation count); the scheduler gives each run the store and the run's record.
pub trait Job: Send + Sync + 'static {
    fn run<'a>(&'a self, context: &'a JobContext) -> JobFuture<'a>;
}

/// What a run gets.
#[derive(Clone)]
pub struct JobContext {
    pub store: Store,
    /// The run being attempted (`attempts` counts this attempt).
    pub run: JobRun,
}

/// Why a run failed: recorded in `job_runs.error`, logged, and counted.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct JobError(pub String);

impl JobError {
    pub fn new(message: impl std::fmt::Display) -> JobError {
        JobError(message.to_string())
    }
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        JobError(e.to_string())
    }
}
