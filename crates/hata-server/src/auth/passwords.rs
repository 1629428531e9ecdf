//! Password hashing off the async workers, with bounded concurrency. argon2id is slow on
//! purpose (tens of milliseconds and 19 MiB each); a burst of logins must not take every core
//! from evaluation, so at most `concurrency` hashes run at once on the blocking pool, a bounded
//! number wait, and the rest are answered 503 with `Retry-After` at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::AppError;

pub struct PasswordWork {
    permits: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
}

/// How long a hash may wait for its turn before the request is answered 503.
const MAX_WAIT: Duration = Duration::from_secs(10);

impl PasswordWork {
    /// `concurrency` 0: half the cores (at least one).
    pub fn new(concurrency: usize) -> PasswordWork {
        let concurrency = if concurrency == 0 {
            std::thread::available_parallelism()
                .map(|n| (n.get() / 2).max(1))
                .unwrap_or(1)
        } else {
            concurrency
        };
        PasswordWork {
            permits: Semaphore::new(concurrency),
            waiting: AtomicUsize::new(0),
            max_waiting: concurrency * 32,
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let busy = || AppError::Busy {
            detail: "too many logins are being checked at once".into(),
            retry_after: 1,
        };
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(busy());
        }
        let permit = tokio::time::timeout(MAX_WAIT, self.permits.acquire()).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let _permit = permit.map_err(|_| busy())?.map_err(|_| busy())?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AppError::Store(hata_store::StoreError::Internal(e.to_string())))
    }

    /// The argon2id PHC string of `password`.
    pub async fn hash(&self, password: String) -> Result<String, AppError> {
        self.run(move || hata_access::password::hash(&password))
            .await?
            .map_err(|e| AppError::Store(hata_store::StoreError::Internal(e.to_string())))
    }

    /// Whether `password` matches `stored` (the decoy hash for a missing account).
    pub async fn verify(&self, password: String, stored: String) -> Result<bool, AppError> {
        self.run(move || hata_access::password::verify(&password, &stored))
            .await
    }
}
