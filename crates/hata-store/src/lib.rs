//! hata's persistence: one interface over SQLite (the embedded default) and PostgreSQL.
//!
//! - `Store::open` picks the backend from the URL (`sqlite://…` or `postgres://…`) and runs the
//!   numbered migrations of that backend (`migrations/<backend>/NNNN_*.sql`, embedded).
//! - All changes go through `Store::write` (module `write`): the one write path.
//! - `export` reads the whole store into one JSON document and imports one into an empty
//!   store: the one other writer, a restore rather than a change.
//! - Reads are in `read`. After every commit the store publishes `ChangeNotice`s to
//!   `Store::subscribe`rs, who rebuild what they derive (snapshots, token caches, streams).
//! - `users`: reads of users, memberships and sessions.
//! - `jobs`: scheduled job runs (claimed by one replica at a time) and retention's deletes;
//!   telemetry written outside `Store::write`, like `evaluations`.
//! - `evaluations` and `serving_hours`: telemetry the server adds in batches, outside the
//!   write path (evaluation counts; requests, outcomes and durations per hour).
//! - `sqlite`: SQLite's durability setting and the modes of its database files (0600).
//!
//! The queries are written once, in SQL both backends accept (`$n` parameters, `RETURNING`,
//! `ON CONFLICT`), through sqlx's `Any` driver; what differs per backend lives in the migrations,
//! in `Backend` and in `sqlite`.

pub mod audit;
pub mod change;
pub mod delta;
pub mod error;
pub mod evaluations;
pub mod export;
mod flag_list;
pub mod jobs;
mod listen;
pub mod notice;
pub mod read;
pub mod records;
pub mod serving_hours;
pub mod sqlite;
pub mod timing;
pub mod users;
pub mod write;

use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};
use tokio::sync::broadcast;

pub use change::{Action, Actor, ActorKind, ResourceType};
pub use delta::{DeltaError, ExportDelta};
pub use error::{StoreError, StoreResult};
pub use evaluations::{EvaluationCount, FlagEvaluated, SeriesPoint, SeriesStep, VariantTotal};
pub use export::{ExportDocument, ImportSummary};
pub use jobs::JobRun;
pub use notice::{ChangeNotice, EnvRevision, RuleSetDelta, RuleSetWrite};
pub use records::*;
pub use serving_hours::ServingHour;
pub use sqlite::SqliteSynchronous;
pub use write::{
    Expected, NewSession, NewToken, NewUser, SecondFactor, SsoIdentity, SsoRoles, UserUpdate,
    WriteMeta, WriteOp, WriteOutcome,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Its name in OpenTelemetry's `db.system` attribute (the store's spans carry it).
    pub fn db_system(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
        }
    }
}

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `sqlite:///path/to/hata.db` or `postgres://user@host/db`.
    pub url: String,
    /// Connections for reads (SQLite) or for everything (PostgreSQL).
    pub max_connections: u32,
    /// How long a request waits for a connection before the store reports itself unavailable.
    pub acquire_timeout: Duration,
    /// SQLite only: how durably a commit is written (see `SqliteSynchronous`).
    pub sqlite_synchronous: SqliteSynchronous,
    /// The audit chain's checkpoint key and policy (no key: no checkpoints are signed).
    pub audit: audit::AuditSettings,
    /// How an export paces its longest read, the evaluation counts: after each
    /// `export::PACE_BATCH` rows it pauses this many times as long as reading them took
    /// (0: never). The backup lane's store sets it, so a backup leaves the machine to serving
    /// part of the time; everything else reads at full speed.
    pub export_pace: f64,
}

impl StoreConfig {
    pub fn new(url: impl Into<String>) -> Self {
        StoreConfig {
            url: url.into(),
            max_connections: 8,
            acquire_timeout: Duration::from_secs(3),
            sqlite_synchronous: SqliteSynchronous::default(),
            audit: audit::AuditSettings::default(),
            export_pace: 0.0,
        }
    }
}

/// The store: cheap to clone (pools are shared).
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// SQLite allows one writer at a time; a dedicated single-connection pool makes writers
    /// queue in-process instead of failing with SQLITE_BUSY. On PostgreSQL it is the same pool
    /// as `reader`.
    writer: AnyPool,
    reader: AnyPool,
    notices: broadcast::Sender<ChangeNotice>,
    /// As opened: the database URL (the change listener's own connection) and what
    /// `connect_again` opens a second store with.
    config: std::sync::Arc<StoreConfig>,
    /// Background tasks tied to this store hold a `Weak` of it and stop once every clone of
    /// the store is gone.
    alive: std::sync::Arc<()>,
    /// Whether the change listener (`spawn_listener`) is listening now.
    listening: std::sync::Arc<std::sync::atomic::AtomicBool>,
    audit: std::sync::Arc<audit::AuditSettings>,
    /// How long the timed operations took (`timing::Operation`), for `/metrics`.
    timings: std::sync::Arc<timing::OperationTimings>,
}

/// One connection pool's use (`Store::pools`), for monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// `reader` or `writer` (on PostgreSQL one pool serves both: only `reader` is listed).
    pub pool: &'static str,
    /// Connections open, busy or idle.
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects (creating a SQLite file if needed) and runs pending migrations.
    pub async fn open(config: &StoreConfig) -> StoreResult<Store> {
        let store = Store::connect(config).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating (`hata migrate` and tests use this).
    pub async fn connect(config: &StoreConfig) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let backend = if config.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if config.url.starts_with("postgres:") || config.url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(StoreError::Internal(format!(
                "unsupported database URL {:?}: use sqlite://… or postgres://…",
                redact(&config.url)
            )));
        };
        let options: AnyConnectOptions = config
            .url
            .parse::<AnyConnectOptions>()
            .map_err(|e| StoreError::Internal(format!("bad database URL: {e}")))?
            // No per-statement log: sqlx asks `tracing::enabled!` after every statement, and
            // with per-layer filters (logs and traces filter apart) that call leaves a stale
            // answer in tracing-subscriber's thread-local filter state, which then hides the
            // next span on that thread from the trace layer (tokio-rs/tracing#2519): on
            // PostgreSQL, where queries run on the request's own thread, requests lost their
            // spans and log lines their trace ids. The store times its operations itself
            // (`timing`); statements slower than 500 ms are still logged (rare, so rarely
            // asking).
            .log_statements(tracing::log::LevelFilter::Off)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_millis(500));
        let (tx, _) = broadcast::channel(1024);
        match backend {
            Backend::Sqlite => {
                let file = sqlite::prepare_files(&config.url)?;
                // WAL: readers never wait for the writer. Either `synchronous` is crash-safe
                // in WAL mode; NORMAL may lose the last commits on power loss (`sqlite`).
                // No checkpoint inside a commit: `sqlite::spawn_checkpointer` does them.
                let pragmas: &'static str = match config.sqlite_synchronous {
                    SqliteSynchronous::Normal => {
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                         PRAGMA wal_autocheckpoint = 0;"
                    }
                    SqliteSynchronous::Full => {
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                         PRAGMA wal_autocheckpoint = 0;"
                    }
                };
                let pool = |max: u32| {
                    AnyPoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(config.acquire_timeout)
                        .after_connect(move |conn, _| {
                            Box::pin(async move {
                                conn.execute(pragmas).await?;
                                Ok(())
                            })
                        })
                };
                let writer = pool(1).connect_with(options.clone()).await?;
                let reader = pool(config.max_connections.max(1))
                    .connect_with(options)
                    .await?;
                // The first connection switched the file to WAL, creating `-wal` and `-shm`.
                if let Some(file) = &file {
                    sqlite::restrict_companions(file);
                }
                let alive = std::sync::Arc::new(());
                sqlite::spawn_checkpointer(reader.clone(), std::sync::Arc::downgrade(&alive));
                Ok(Store {
                    backend,
                    writer,
                    reader,
                    notices: tx,
                    config: std::sync::Arc::new(config.clone()),
                    alive,
                    listening: Default::default(),
                    audit: std::sync::Arc::new(config.audit.clone()),
                    timings: Default::default(),
                })
            }
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(config.max_connections.max(2))
                    .acquire_timeout(config.acquire_timeout)
                    .connect_with(options)
                    .await?;
                Ok(Store {
                    backend,
                    writer: pool.clone(),
                    reader: pool,
                    notices: tx,
                    config: std::sync::Arc::new(config.clone()),
                    alive: std::sync::Arc::new(()),
                    listening: Default::default(),
                    audit: std::sync::Arc::new(config.audit.clone()),
                    timings: Default::default(),
                })
            }
        }
    }

    /// A second store on the same database, with pools of its own (`connections` for reads;
    /// on SQLite one more for writes), neither migrated nor listening: for work on another
    /// runtime, whose connections must belong to it (the backup lane, `hata_backup::lane`).
    /// `export_pace` as `StoreConfig::export_pace`.
    pub async fn connect_again(&self, connections: u32, export_pace: f64) -> StoreResult<Store> {
        let mut config = (*self.config).clone();
        config.max_connections = connections;
        config.export_pace = export_pace;
        Store::connect(&config).await
    }

    /// Runs the pending migrations of this backend. Safe with several replicas starting at once:
    /// on PostgreSQL the migrator holds an advisory lock while it runs.
    pub async fn migrate(&self) -> StoreResult<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.writer)
            .await
            .map_err(|e| StoreError::Internal(format!("migration failed: {e}")))?;
        let listed = flag_list::fill(self, None).await?;
        if listed > 0 {
            tracing::info!(flags = listed, "filled the flags list's columns");
        }
        // Changes recorded before the audit chain existed join it now.
        let chained = audit::backfill(self).await?;
        if chained > 0 {
            tracing::info!(
                entries = chained,
                "audit log: chained the earlier change record"
            );
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn writer(&self) -> &AnyPool {
        &self.writer
    }

    pub(crate) fn reader(&self) -> &AnyPool {
        &self.reader
    }

    /// Change notices published after each commit. A receiver that lags behind gets
    /// `RecvError::Lagged` and must reload everything it derives.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeNotice> {
        self.notices.subscribe()
    }

    /// Starts relaying change notices between processes (PostgreSQL `LISTEN/NOTIFY`), so that
    /// every replica's subscribers hear of every replica's commits. A no-op on SQLite, which
    /// has one process. The relay reconnects by itself and publishes `ChangeNotice::Resync`
    /// after every (re)connect, since notices sent while it was away are lost.
    pub fn spawn_listener(&self) {
        if self.backend == Backend::Postgres {
            tokio::spawn(listen::relay(
                self.config.url.clone(),
                self.notices.clone(),
                std::sync::Arc::downgrade(&self.alive),
                self.listening.clone(),
            ));
        }
    }

    /// Whether the change listener is connected and listening; `None` on SQLite, which has
    /// none.
    pub fn listener_connected(&self) -> Option<bool> {
        (self.backend == Backend::Postgres)
            .then(|| self.listening.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// How long the timed store operations took so far (`/metrics`).
    pub fn timings(&self) -> &timing::OperationTimings {
        &self.timings
    }

    /// How the connection pools are used now (no query: the pools' own counts).
    pub fn pools(&self) -> Vec<PoolUsage> {
        let usage = |pool: &'static str, p: &AnyPool| PoolUsage {
            pool,
            open: p.size(),
            idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
            max: p.options().get_max_connections(),
        };
        match self.backend {
            Backend::Sqlite => vec![usage("reader", &self.reader), usage("writer", &self.writer)],
            Backend::Postgres => vec![usage("reader", &self.reader)],
        }
    }

    pub(crate) fn publish(&self, notices: Vec<ChangeNotice>) {
        for notice in notices {
            // No receivers is fine: nobody derives state yet.
            let _ = self.notices.send(notice);
        }
    }

    /// On SQLite, `PRAGMA synchronous` as the writer's connection and a reader's report it
    /// (1 NORMAL, 2 FULL), so that a start can say how durable its commits are; `None` on
    /// PostgreSQL. The two pools are set up alike: a difference is an `Internal` error.
    pub async fn sqlite_synchronous(&self) -> StoreResult<Option<i64>> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        let read = |pool: AnyPool| async move {
            sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
                .fetch_one(&pool)
                .await
        };
        let writer = read(self.writer.clone()).await?;
        let reader = read(self.reader.clone()).await?;
        if writer != reader {
            return Err(StoreError::Internal(format!(
                "PRAGMA synchronous is {writer} on the writer but {reader} on a reader"
            )));
        }
        Ok(Some(writer))
    }

    /// Whether the database answers (for `/health/ready`).
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    /// Closes all connections, waiting for the ones in use to be returned.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// The current time as RFC 3339 UTC with exactly three fraction digits (what the store
/// writes). Fixed width, so that timestamps sort as text: the `Rfc3339` well-known format drops a
/// zero fraction, and `…:05Z` sorts after `…:05.300Z`.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// `nanos` (Unix nanoseconds) as `rfc3339` writes it; `None` out of `time`'s range.
pub fn rfc3339_nanos(nanos: i128) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .map(rfc3339)
}

/// `at` in UTC as the store writes every time: RFC 3339 with milliseconds, so that times it
/// wrote compare as text in the order they happened.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_default()
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_fixed_width_rfc3339() {
        let t = super::now_rfc3339();
        assert_eq!(t.len(), "2026-11-23T18:40:05.300Z".len(), "{t}");
        assert_eq!(t.as_bytes()[19], b'.', "{t}");
        let parsed =
            time::OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339);
        assert!(parsed.is_ok(), "{t}: {parsed:?}");
    }
}
