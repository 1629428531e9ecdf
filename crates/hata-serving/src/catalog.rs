//! What evaluations are served from: one compiled, immutable [`EnvServing`] per environment,
//! held in a catalog that is swapped whole (`arc-swap`). Requests load the catalog without a
//! lock and never touch the database; a reload builds a new `EnvServing` off to the side and
//! swaps it in.
//!
//! Reloads happen (1) synchronously after a write through this server, before the response is
//! sent, so a client that changed a flag reads its own write; (2) on every store change notice,
//! which also covers other replicas once notices cross processes; (3) in a periodic repair
//! check that compares revisions with the store, for anything missed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use hata_core::model::Flag;
use hata_core::snapshot::Snapshot;
use hata_store::{EnvRevision, RuleSetDelta, RuleSetWrite, Store, StoreError, StoreResult};
use rustc_hash::FxHashMap;
use tokio::sync::watch;

use crate::counts::{Counters, Pending};
use crate::ofrep_json::OfrepPieces;
use crate::sdk_body::{Header, SdkBody};
use crate::RuleSetId;

/// How often the repair check compares every snapshot's revision with the store.
pub const REPAIR_INTERVAL: Duration = Duration::from_secs(10);

/// One environment's rule set, compiled and pre-serialised, at one revision.
pub struct EnvServing {
    pub project: String,
    pub environment: String,
    /// Store id of the environment: a re-created environment gets a new one.
    pub env_id: i64,
    pub revision: i64,
    /// When the revision last increased, in Unix seconds (OFREP `lastModified`).
    pub last_modified: i64,
    /// The same, exactly (the propagation lag is measured from it); `None` if the stored
    /// time does not parse.
    revised_at: Option<time::OffsetDateTime>,
    pub snapshot: Snapshot,
    /// `id()` as an entity tag: names this rule set on every replica.
    pub config_etag: String,
    /// The `GET /api/v1/sdk/config` body and the same rule set as one SSE event of
    /// `GET /api/v1/sdk/stream`, built once and shared by every request and open stream (so
    /// a thousand streams do not hold a thousand copies).
    pub sdk: SdkBody,
    /// The context-independent parts of OFREP answers, per flag and variant.
    pub ofrep: OfrepPieces,
    pub counters: Counters,
    sink: Arc<Pending>,
}

impl EnvServing {
    /// The name of this rule set: the SSE event id of this revision, stable, and never
    /// repeated for another rule set.
    pub fn id(&self) -> RuleSetId {
        RuleSetId::new(self.env_id, self.revision)
    }
}

impl Drop for EnvServing {
    /// A replaced rule set is dropped when its last reader is done with it; its counts go to
    /// the flusher then, so no evaluation counted against it is lost.
    fn drop(&mut self) {
        self.counters.drain_into(&self.sink, self);
    }
}

/// Project → environment → rule set. FxHash, not SipHash: every evaluation looks up twice, and
/// the names are the operator's own, not chosen by callers.
type Catalog = FxHashMap<String, FxHashMap<String, Arc<EnvServing>>>;

/// A write of one flag, with the ids of the environments it bumped (parallel to its
/// revisions) and when.
struct Written<'a> {
    change: FlagChange<'a>,
    env_ids: &'a [i64],
    at: &'a str,
}

#[derive(Clone, Copy)]
enum FlagChange<'a> {
    /// Created or replaced by this (as stored).
    Written(&'a Flag),
    /// Deleted.
    Deleted(&'a str),
}

/// Held while loading one environment (see `Serving::refresh`).
type LoadTurn = Arc<tokio::sync::Mutex<()>>;

/// The catalog of every environment's rule set, and the machinery that keeps it current.
pub struct Serving {
    store: Store,
    catalog: ArcSwap<Catalog>,
    /// Bumped after every swap; open streams wait on it.
    changed: watch::Sender<u64>,
    pending: Arc<Pending>,
    loaded: AtomicBool,
    shutdown: watch::Sender<bool>,
    /// One load at a time per environment (see `refresh`).
    loaders: std::sync::Mutex<HashMap<(String, String), LoadTurn>>,
    /// Rule sets read back from the store (the others were updated in memory after a write).
    store_loads: AtomicU64,
    /// From a change's commit to its rule set being served here (`install`).
    propagation: PropagationLag,
}

/// The propagation lag's histogram (`Serving::propagation`).
pub type PropagationLag =
    hata_store::timing::DurationHistogram<{ hata_store::timing::PROPAGATION_BUCKETS.len() }>;

impl Serving {
    /// Loads every environment, then keeps following the store.
    pub async fn start(store: Store) -> StoreResult<Arc<Serving>> {
        let serving = Arc::new(Serving {
            store,
            catalog: ArcSwap::from_pointee(Catalog::default()),
            changed: watch::channel(0).0,
            pending: Arc::new(Pending::default()),
            loaded: AtomicBool::new(false),
            shutdown: watch::channel(false).0,
            loaders: std::sync::Mutex::default(),
            store_loads: AtomicU64::new(0),
            propagation: PropagationLag::new(&hata_store::timing::PROPAGATION_BUCKETS),
        });
        serving.reload_all().await?;
        serving.loaded.store(true, Ordering::Release);
        Ok(serving)
    }

    /// How long changes took from their commit to being served here: observed for every
    /// newer revision of a rule set already served (not at start, not for a new environment),
    /// from the environment's `revised_at` (stamped in the write's transaction, so the commit
    /// itself is included). Across replicas, clocks must agree.
    pub fn propagation(&self) -> &PropagationLag {
        &self.propagation
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The current rule set of an environment.
    pub fn get(&self, project: &str, environment: &str) -> Option<Arc<EnvServing>> {
        self.catalog.load().get(project)?.get(environment).cloned()
    }

    /// Every rule set currently served.
    pub fn all(&self) -> Vec<Arc<EnvServing>> {
        self.catalog
            .load()
            .values()
            .flat_map(|envs| envs.values().cloned())
            .collect()
    }

    /// How many rule sets were read back from the store since start; writes that replaced
    /// one flag are applied in memory instead (see `refresh_after`).
    pub fn store_loads(&self) -> u64 {
        self.store_loads.load(Ordering::Relaxed)
    }

    /// Whether the first load finished (`/health/ready`).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// A receiver that changes after every swap.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// A receiver that turns `true` when the server shuts down (streams end then).
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn pending(&self) -> &Arc<Pending> {
        &self.pending
    }

    /// Brings the named environments up to at least the given revisions.
    ///
    /// Concurrent refreshes of one environment share loads instead of each doing its own. A
    /// load reads the latest committed state, so one that starts after revision `r` committed
    /// covers `r` and everything before it. Callers therefore take turns per environment, and
    /// whoever gets its turn after someone else's load already brought the environment far
    /// enough has nothing left to do. Under concurrent writes (each of which refreshes before
    /// it answers, and whose change notice refreshes again) this turns one load per write into
    /// about one per batch of writes that committed together.
    pub async fn refresh(&self, revisions: &[EnvRevision]) -> StoreResult<()> {
        self.bring_up(revisions, None).await
    }

    /// Brings the rule sets a write bumped up to date. A write of one flag (created, changed
    /// or deleted) is applied in memory when this server holds the revision just before it
    /// (then nothing else can have changed in between): only that flag is compiled and
    /// serialised. Anything else is read back from the store.
    ///
    /// Two callers race to do this for every write made through this server: the writer,
    /// before its response goes out, and `follow_changes`, which hears the write's
    /// `ChangeNotice::RuleSets` the moment it commits. Both apply the same change, and
    /// whichever comes second finds the revision in place.
    pub async fn refresh_after(&self, write: &RuleSetWrite) -> StoreResult<()> {
        let change = match &write.delta {
            RuleSetDelta::FlagWritten(flag) => Some(FlagChange::Written(flag)),
            RuleSetDelta::FlagDeleted(key) => Some(FlagChange::Deleted(key)),
            RuleSetDelta::Reload => None,
        };
        let written = change.map(|change| Written {
            change,
            env_ids: &write.env_ids,
            at: &write.at,
        });
        self.bring_up(&write.revisions, written).await
    }

    /// `refresh`, applying `written` in memory where it can (see `refresh_after`).
    async fn bring_up(
        &self,
        revisions: &[EnvRevision],
        written: Option<Written<'_>>,
    ) -> StoreResult<()> {
        for (i, r) in revisions.iter().enumerate() {
            if self.has_revision(r) {
                continue;
            }
            let turn = self.loader(&r.project, &r.environment);
            let _turn = turn.lock().await;
            if self.has_revision(r) {
                continue;
            }
            let next = written.as_ref().and_then(|w| {
                let env_id = *w.env_ids.get(i)?;
                let current = self
                    .get(&r.project, &r.environment)
                    .filter(|e| e.env_id == env_id && e.revision + 1 == r.revision)?;
                self.with_change(&current, w.change, r.revision, w.at)
            });
            match next {
                Some(next) => self.install(next),
                None => self.load(&r.project, &r.environment).await?,
            }
        }
        Ok(())
    }

    /// `current` after `change`, at `revision`; `None` when that needs a full load (see
    /// `Snapshot::with_flag`) or fails (the load then reports it).
    fn with_change(
        &self,
        current: &EnvServing,
        change: FlagChange<'_>,
        revision: i64,
        revised_at: &str,
    ) -> Option<Arc<EnvServing>> {
        let (snapshot, spliced) = match change {
            FlagChange::Written(flag) => current.snapshot.with_flag(flag)?.ok()?,
            FlagChange::Deleted(key) => current.snapshot.without_flag(key)?,
        };
        let id = RuleSetId::new(current.env_id, revision);
        let config_etag = id.etag();
        let header = Header {
            project: &current.project,
            environment: &current.environment,
            id,
            etag: &config_etag,
        };
        let flag = match change {
            FlagChange::Written(flag) => Some(flag),
            FlagChange::Deleted(_) => None,
        };
        let sdk = current.sdk.with_flag(&header, spliced, flag).ok()??;
        let ofrep = current.ofrep.with_flag(&snapshot, spliced)?;
        Some(Arc::new(EnvServing {
            project: current.project.clone(),
            environment: current.environment.clone(),
            env_id: current.env_id,
            revision,
            last_modified: unix_seconds(revised_at),
            revised_at: parse_time(revised_at),
            counters: Counters::new(&snapshot),
            ofrep,
            snapshot,
            config_etag,
            sdk,
            sink: self.pending.clone(),
        }))
    }

    fn has_revision(&self, r: &EnvRevision) -> bool {
        self.get(&r.project, &r.environment)
            .is_some_and(|e| e.revision >= r.revision)
    }

    fn loader(&self, project: &str, environment: &str) -> LoadTurn {
        let mut loaders = self
            .loaders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        loaders
            .entry((project.to_string(), environment.to_string()))
            .or_default()
            .clone()
    }

    /// Compares every snapshot with the store's revisions; loads what is behind, drops what
    /// is gone.
    pub async fn reload_all(&self) -> StoreResult<()> {
        let current = self.store.environment_revisions().await?;
        // An environment deleted and created again under the same key while this replica
        // missed both notices has a new id and a lower revision: reload it whatever the
        // revision says.
        for (id, r) in &current {
            if self
                .get(&r.project, &r.environment)
                .is_some_and(|e| e.env_id != *id)
            {
                let turn = self.loader(&r.project, &r.environment);
                let _turn = turn.lock().await;
                self.load(&r.project, &r.environment).await?;
            }
        }
        let revisions: Vec<EnvRevision> = current.into_iter().map(|(_, r)| r).collect();
        self.refresh(&revisions).await?;
        let live: std::collections::HashSet<(&str, &str)> = revisions
            .iter()
            .map(|r| (r.project.as_str(), r.environment.as_str()))
            .collect();
        let gone: Vec<(String, String)> = self
            .all()
            .iter()
            .filter(|e| !live.contains(&(e.project.as_str(), e.environment.as_str())))
            .map(|e| (e.project.clone(), e.environment.clone()))
            .collect();
        for (project, environment) in gone {
            self.remove(&project, &environment);
        }
        Ok(())
    }

    /// Reads one environment from the store, compiles it and swaps it in (unless a newer one
    /// got there first).
    pub async fn load(&self, project: &str, environment: &str) -> StoreResult<()> {
        self.store_loads.fetch_add(1, Ordering::Relaxed);
        let state = match self.store.environment_state(project, environment).await {
            Ok(state) => state,
            Err(StoreError::NotFound(_)) => {
                self.remove(project, environment);
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let env = &state.environment;
        let snapshot = match Snapshot::compile(&env.environment.key, &state.flags, &state.segments)
        {
            Ok(s) => s,
            Err(e) => {
                // Stored data passed validation, so this is a bug; keep serving the last good
                // rule set rather than nothing.
                tracing::error!(project, environment, revision = env.revision, error = %e,
                    "stored rule set does not compile; still serving the previous one");
                return Err(StoreError::Internal(format!(
                    "compile {project}/{environment}: {e}"
                )));
            }
        };
        let id = RuleSetId::new(env.id, env.revision);
        let config_etag = id.etag();
        let header = Header {
            project,
            environment,
            id,
            etag: &config_etag,
        };
        // In key order (as the snapshot's flags), whatever order the database sorts text in:
        // `with_change` relies on the two agreeing.
        let mut flags: Vec<&Flag> = state.flags.iter().collect();
        flags.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let sdk = SdkBody::build(&header, flags, &state.segments)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let serving = Arc::new(EnvServing {
            project: project.to_string(),
            environment: environment.to_string(),
            env_id: env.id,
            revision: env.revision,
            last_modified: unix_seconds(&env.revised_at),
            revised_at: parse_time(&env.revised_at),
            counters: Counters::new(&snapshot),
            ofrep: OfrepPieces::build(&snapshot),
            snapshot,
            config_etag,
            sdk,
            sink: self.pending.clone(),
        });
        self.install(serving);
        Ok(())
    }

    fn install(&self, new: Arc<EnvServing>) {
        let mut installed = false;
        let mut newer_revision = false;
        self.catalog.rcu(|catalog| {
            let current = catalog
                .get(&new.project)
                .and_then(|envs| envs.get(&new.environment));
            newer_revision =
                current.is_some_and(|c| c.env_id == new.env_id && c.revision < new.revision);
            // Loads can race (a write's own refresh and the change notice); never go back.
            // Ids only grow, so a re-created environment (new id) replaces the old one, and
            // a late load of the old one cannot come back.
            installed = current.is_none_or(|c| {
                c.env_id < new.env_id || (c.env_id == new.env_id && c.revision < new.revision)
            });
            if !installed {
                return Arc::clone(catalog);
            }
            let mut next = Catalog::clone(catalog);
            next.entry(new.project.clone())
                .or_default()
                .insert(new.environment.clone(), new.clone());
            Arc::new(next)
        });
        if installed {
            if newer_revision && self.is_loaded() {
                if let Some(at) = new.revised_at {
                    let lag = time::OffsetDateTime::now_utc() - at;
                    // A replica whose clock is behind the writer's sees a negative lag.
                    self.propagation
                        .observe(lag.try_into().unwrap_or(std::time::Duration::ZERO));
                }
            }
            tracing::debug!(project = %new.project, environment = %new.environment,
                revision = new.revision, flags = new.snapshot.len(), "rule set swapped in");
            self.changed.send_modify(|g| *g += 1);
        }
    }

    /// Stops serving an environment (deleted, or its project deleted).
    pub fn remove(&self, project: &str, environment: &str) {
        let mut removed = false;
        self.catalog.rcu(|catalog| {
            removed = catalog
                .get(project)
                .is_some_and(|envs| envs.contains_key(environment));
            if !removed {
                return Arc::clone(catalog);
            }
            let mut next = Catalog::clone(catalog);
            if let Some(envs) = next.get_mut(project) {
                envs.remove(environment);
                if envs.is_empty() {
                    next.remove(project);
                }
            }
            Arc::new(next)
        });
        if removed {
            self.changed.send_modify(|g| *g += 1);
        }
    }

    /// Waits until the environment is at `revision` or newer, or `timeout` passes. Used when a
    /// client says (via `flagConfigEtag`) that it was told of a revision this replica may not
    /// have loaded yet.
    pub async fn wait_for(
        &self,
        project: &str,
        environment: &str,
        env_id: i64,
        revision: i64,
        timeout: Duration,
    ) {
        let mut changes = self.subscribe();
        let reached = || {
            self.get(project, environment)
                .is_none_or(|e| e.env_id != env_id || e.revision >= revision)
        };
        let _ = tokio::time::timeout(timeout, async {
            while !reached() {
                if changes.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
    }

    /// Tells open streams to end (graceful shutdown cannot finish while they are open).
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Whether `begin_shutdown` was called: the server is draining (readiness says so).
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Moves every live counter into the pending batch (the flusher then writes it).
    pub fn drain_counts(&self) {
        for env in self.all() {
            env.counters.drain_into(&self.pending, &env);
        }
    }
}

/// Follows the store: reloads environments named by change notices, and every
/// `REPAIR_INTERVAL` compares all revisions with the store.
pub async fn follow_changes(serving: Arc<Serving>) {
    use hata_store::ChangeNotice;
    use tokio::sync::broadcast::error::RecvError;
    let mut notices = serving.store.subscribe();
    let mut repair = tokio::time::interval(REPAIR_INTERVAL);
    repair.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = serving.shutdown_signal();
    loop {
        tokio::select! {
            notice = notices.recv() => match notice {
                Ok(ChangeNotice::RuleSets(write)) => {
                    if let Err(e) = serving.refresh_after(&write).await {
                        tracing::warn!(error = %e, "reload after a write failed; the repair check retries");
                    }
                }
                Ok(ChangeNotice::Environment(r)) => {
                    if let Err(e) = serving.refresh(std::slice::from_ref(&r)).await {
                        tracing::warn!(project = %r.project, environment = %r.environment,
                            error = %e, "reload failed; the repair check retries");
                    }
                }
                Ok(ChangeNotice::EnvironmentRemoved { project, environment }) => {
                    serving.remove(&project, &environment);
                }
                Ok(ChangeNotice::Tokens) => {}
                Ok(ChangeNotice::Resync) | Err(RecvError::Lagged(_)) => {
                    if let Err(e) = serving.reload_all().await {
                        tracing::warn!(error = %e, "reload after missed notices failed; the repair check retries");
                    }
                }
                Err(RecvError::Closed) => return,
            },
            _ = repair.tick() => {
                if let Err(e) = serving.reload_all().await {
                    tracing::debug!(error = %e, "repair check failed; serving the last rule sets");
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// RFC 3339 → Unix seconds; 0 if it does not parse (only metadata depends on it).
fn unix_seconds(rfc3339: &str) -> i64 {
    parse_time(rfc3339).map_or(0, time::OffsetDateTime::unix_timestamp)
}

fn parse_time(rfc3339: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339).ok()
}
