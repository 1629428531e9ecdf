//! The state every handler shares, and the background tasks that keep it current.

use std::sync::Arc;
use std::time::Duration;

use hata_serving::ticket::{Signer, KEY_META};
use hata_serving::Serving;
use hata_store::{ChangeNotice, Store};

use crate::auth;
use crate::error::AppError;

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub tokens: Arc<auth::TokenCache>,
    pub serving: Arc<Serving>,
    pub tickets: Arc<Signer>,
    /// The JWT issuer's verifier, when one is configured (`ServerConfig::jwt`; `router` sets
    /// it).
    pub jwt: Option<Arc<auth::jwt::JwtVerifier>>,
    /// What `GET /metrics` reports; the edge records every request into it.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The scheduled jobs (`hata_jobs`): `/api/v1/jobs` and `/metrics` read it.
    pub jobs: Arc<hata_jobs::Jobs>,
    /// This replica's requests per hour and route class, flushed to the store every minute
    /// (`metrics::hours`) for the daily report.
    pub serving_hours: Arc<crate::metrics::hours::ServingHours>,
}

impl AppState {
    /// Loads what the server keeps in memory (tokens, every environment's rule set) and starts
    /// following store changes and flushing evaluation counts.
    pub async fn start(store: Store) -> hata_store::StoreResult<AppState> {
        AppState::start_with(store, hata_access::token::TokenAges::default()).await
    }

    /// `start`, with tokens ending at this maximum age (`--token-max-age-days`).
    pub async fn start_with(
        store: Store,
        ages: hata_access::token::TokenAges,
    ) -> hata_store::StoreResult<AppState> {
        AppState::start_with_jobs(store, ages, hata_jobs::JobsConfig::default()).await
    }

    /// `start_with`, and the job scheduler (`hata serve` with `--jobs-enabled`; off in
    /// `JobsConfig::default`).
    pub async fn start_with_jobs(
        store: Store,
        ages: hata_access::token::TokenAges,
        jobs: hata_jobs::JobsConfig,
    ) -> hata_store::StoreResult<AppState> {
        let tokens = Arc::new(auth::TokenCache::new(ages));
        tokens.reload(&store).await?;
        let key = {
            use rand::Rng;
            let fresh: [u8; 32] = rand::thread_rng().gen();
            store.meta_init(KEY_META, &hex::encode(fresh)).await?
        };
        let serving = Serving::start(store.clone()).await?;
        store.spawn_listener();
        let metrics = crate::metrics::Metrics::new();
        let state = AppState {
            store: store.clone(),
            tokens,
            serving: serving.clone(),
            tickets: Arc::new(Signer::new(key.as_bytes())),
            jwt: None,
            jobs: hata_jobs::Jobs::start(store.clone(), jobs),
            serving_hours: crate::metrics::hours::ServingHours::new(metrics.clone()),
            metrics,
        };
        tokio::spawn(follow_changes(state.clone()));
        tokio::spawn(hata_serving::follow_changes(serving.clone()));
        tokio::spawn(hata_serving::counts::run_flusher(serving));
        tokio::spawn(auth::run_use_flusher(
            state.tokens.clone(),
            state.store.clone(),
        ));
        tokio::spawn(sign_audit_checkpoints(state.store.clone()));
        tokio::spawn(crate::metrics::hours::run_flusher(
            state.serving_hours.clone(),
            state.store.clone(),
            Duration::from_secs(60),
        ));
        tokio::spawn(auth::run_refusal_recorder(
            state.tokens.clone(),
            state.store.clone(),
        ));
        Ok(state)
    }

    /// The one way handlers change data: `Store::write`, then — before the response goes out —
    /// the rule sets of the environments it touched are reloaded, so the caller's next
    /// evaluation on this server sees its own write.
    pub async fn write(
        &self,
        meta: &hata_store::WriteMeta,
        op: hata_store::WriteOp,
    ) -> Result<hata_store::WriteOutcome, AppError> {
        let outcome = self.store.write(meta, op).await?;
        if let Err(e) = self.serving.refresh_after(&outcome.rule_sets).await {
            // Committed is committed: the change notice and the repair check retry the load.
            tracing::warn!(error = %e, "reloading rule sets after a write failed");
        }
        Ok(outcome)
    }

    /// Graceful shutdown, step 1 (when the signal arrives): end open event streams, so the
    /// HTTP server can finish.
    pub fn begin_shutdown(&self) {
        self.serving.begin_shutdown();
    }

    /// Graceful shutdown, step 2 (after the HTTP server finished): store the evaluation counts
    /// not yet flushed.
    pub async fn finish_shutdown(&self) {
        self.serving.begin_shutdown();
        // Runs in progress are handed back for another replica (or the next start).
        self.jobs.shutdown().await;
        hata_serving::counts::flush_now(&self.serving).await;
        self.tokens.flush_uses(&self.store).await;
        let now = time::OffsetDateTime::now_utc();
        if let Err(e) = self.serving_hours.flush(&self.store, now).await {
            tracing::warn!(error = %e, "storing the last minute's serving hours at shutdown failed");
        }
        // The entries since the last checkpoint are signed before the process goes.
        if let Err(e) = self.store.checkpoint_head().await {
            tracing::warn!(error = %e, "signing the audit chain's head at shutdown failed");
        }
    }
}

/// Signs the audit chain's head every `hata_audit::checkpoint::TIME_INTERVAL` when entries
/// were appended since the last checkpoint (by any replica), so that the unsigned tail a
/// truncation could remove unnoticed is at most that old.
async fn sign_audit_checkpoints(store: hata_store::Store) {
    let period = std::time::Duration::try_from(hata_audit::checkpoint::TIME_INTERVAL)
        .unwrap_or(Duration::from_secs(600));
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = store.checkpoint_head().await {
            tracing::warn!(error = %e, "signing the audit chain's head failed; trying again later");
        }
    }
}

/// How soon a failed token cache reload is tried again.
const TOKEN_RELOAD_RETRY: Duration = Duration::from_secs(5);

/// Keeps the token cache in step with the store (changes made by this or another process).
///
/// A failed reload keeps the previous cache (callers keep being authenticated while the
/// database is down) and is retried every `TOKEN_RELOAD_RETRY` until it succeeds: otherwise a
/// token change that arrived during a database hiccup would stay unseen until the next one.
async fn follow_changes(state: AppState) {
    use tokio::sync::broadcast::error::RecvError;
    let mut notices = state.store.subscribe();
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let retry = async {
            match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let reload = tokio::select! {
            notice = notices.recv() => match notice {
                Ok(ChangeNotice::Tokens | ChangeNotice::Resync) | Err(RecvError::Lagged(_)) => true,
                Ok(_) => false,
                Err(RecvError::Closed) => return,
            },
            _ = retry => true,
        };
        if !reload {
            continue;
        }
        match state.tokens.reload(&state.store).await {
            Ok(()) => retry_at = None,
            Err(e) => {
                if retry_at.is_none() {
                    tracing::warn!(error = %e,
                        "token cache reload failed; serving the previous tokens and retrying");
                }
                retry_at = Some(tokio::time::Instant::now() + TOKEN_RELOAD_RETRY);
            }
        }
    }
}
