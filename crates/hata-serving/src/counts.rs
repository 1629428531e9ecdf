//! Evaluation counts per (environment, flag, variant, reason).
//!
//! The hot path does one relaxed atomic add into a flat array that belongs to the rule set
//! being evaluated (indexed by the evaluation's `position`), so counting takes no lock and
//! allocates nothing. A flusher moves the counts into a pending batch every
//! [`FLUSH_INTERVAL`] and writes the batch to the store in hourly buckets; a replaced rule set
//! hands over its counts when its last reader drops it. The hour and the last-evaluated time
//! are those of the drain, so they are exact to within one flush interval.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hata_core::evaluate::{Evaluation, Reason};
use hata_core::snapshot::Snapshot;
use hata_store::{EvaluationCount, FlagEvaluated, Store};

use crate::catalog::{EnvServing, Serving};

/// How often counts are written to the store.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// Every reason a successful evaluation can have, in counter order.
const REASONS: [Reason; 6] = [
    Reason::Static,
    Reason::Default,
    Reason::TargetingMatch,
    Reason::Split,
    Reason::Disabled,
    Reason::PrerequisiteFailed,
];

#[inline]
fn reason_slot(reason: Reason) -> Option<usize> {
    Some(match reason {
        Reason::Static => 0,
        Reason::Default => 1,
        Reason::TargetingMatch => 2,
        Reason::Split => 3,
        Reason::Disabled => 4,
        Reason::PrerequisiteFailed => 5,
        Reason::Error => return None,
    })
}

/// One counter per (flag, variant, reason) of one rule set.
pub struct Counters {
    /// Index of each flag's first counter.
    offsets: Box<[usize]>,
    cells: Box<[AtomicU64]>,
}

impl Counters {
    pub fn new(snapshot: &Snapshot) -> Counters {
        let mut offsets = Vec::with_capacity(snapshot.len());
        let mut total = 0;
        for flag in snapshot.flags() {
            offsets.push(total);
            total += flag.variants().len() * REASONS.len();
        }
        Counters {
            offsets: offsets.into_boxed_slice(),
            cells: (0..total).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Counts one evaluation (errors are not counted: they have no variant).
    #[inline]
    pub fn record(&self, evaluation: &Evaluation<'_>) {
        let Some((flag, variant)) = evaluation.position else {
            return;
        };
        let Some(reason) = reason_slot(evaluation.reason) else {
            return;
        };
        if let Some(&offset) = self.offsets.get(flag) {
            if let Some(cell) = self.cells.get(offset + variant * REASONS.len() + reason) {
                cell.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Moves every non-zero counter of `env` into `pending`, leaving zeros.
    pub(super) fn drain_into(&self, pending: &Pending, env: &EnvServing) {
        let mut drained = Vec::new();
        for (i, flag) in env.snapshot.flags().enumerate() {
            let offset = self.offsets[i];
            for (v, (variant, _)) in flag.variants().enumerate() {
                for (r, reason) in REASONS.iter().enumerate() {
                    let n = self.cells[offset + v * REASONS.len() + r].swap(0, Ordering::Relaxed);
                    if n > 0 {
                        drained.push((flag.key(), variant, *reason, n));
                    }
                }
            }
        }
        if !drained.is_empty() {
            pending.add(&env.project, &env.environment, drained);
        }
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct CountKey {
    project: String,
    environment: String,
    flag: String,
    hour: String,
    variant: String,
    reason: Reason,
}

/// Counts drained from rule sets but not yet stored. Touched by drains and the flusher only,
/// never by evaluations.
#[derive(Default)]
pub struct Pending {
    inner: Mutex<PendingBatch>,
    /// Everything drained since the process started, never taken by the flusher: what
    /// `totals` reports (monitoring reads monotonic counters, the store reads hourly deltas).
    totals: Mutex<Totals>,
}

/// One flag's totals: when it was first drained, and its counts per (variant, reason).
type FlagTotals = (u64, HashMap<(String, Reason), u64>);

#[derive(Default)]
struct Totals {
    /// Per (project, environment, flag): when it was first drained (an order), and its
    /// counts per (variant, reason).
    flags: HashMap<(String, String, String), FlagTotals>,
    next: u64,
}

/// One evaluation total since the process started (`Pending::totals`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluationTotal {
    pub project: String,
    pub environment: String,
    pub flag: String,
    /// Which flag of its environment was counted first: a lower `seen` was drained earlier.
    pub seen: u64,
    pub variant: String,
    pub reason: Reason,
    pub count: u64,
}

#[derive(Default)]
struct PendingBatch {
    counts: HashMap<CountKey, u64>,
    last: HashMap<(String, String, String), String>,
}

impl Pending {
    fn add(&self, project: &str, environment: &str, drained: Vec<(&str, &str, Reason, u64)>) {
        let now = time::OffsetDateTime::now_utc();
        let hour = hour_of(now);
        let at = hata_store::now_rfc3339();
        if let Ok(mut totals) = self.totals.lock() {
            let totals = &mut *totals;
            for &(flag, variant, reason, n) in &drained {
                let key = (
                    project.to_string(),
                    environment.to_string(),
                    flag.to_string(),
                );
                let (_, counts) = totals.flags.entry(key).or_insert_with(|| {
                    totals.next += 1;
                    (totals.next, HashMap::new())
                });
                *counts.entry((variant.to_string(), reason)).or_default() += n;
            }
        }
        let Ok(mut batch) = self.inner.lock() else {
            return;
        };
        for (flag, variant, reason, n) in drained {
            let key = CountKey {
                project: project.to_string(),
                environment: environment.to_string(),
                flag: flag.to_string(),
                hour: hour.clone(),
                variant: variant.to_string(),
                reason,
            };
            *batch.counts.entry(key).or_default() += n;
            batch.last.insert(
                (
                    project.to_string(),
                    environment.to_string(),
                    flag.to_string(),
                ),
                at.clone(),
            );
        }
    }

    /// Every evaluation counted since the process started, as of the last drain (at most
    /// `FLUSH_INTERVAL` behind): monotonic, for a monitoring system's counters.
    pub fn totals(&self) -> Vec<EvaluationTotal> {
        let Ok(totals) = self.totals.lock() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for ((project, environment, flag), (seen, counts)) in &totals.flags {
            for ((variant, reason), count) in counts {
                out.push(EvaluationTotal {
                    project: project.clone(),
                    environment: environment.clone(),
                    flag: flag.clone(),
                    seen: *seen,
                    variant: variant.clone(),
                    reason: *reason,
                    count: *count,
                });
            }
        }
        out
    }

    fn take(&self) -> PendingBatch {
        self.inner
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    }

    /// Puts a batch that could not be stored back, to be retried with the next one.
    fn restore(&self, failed: PendingBatch) {
        let Ok(mut batch) = self.inner.lock() else {
            return;
        };
        for (k, n) in failed.counts {
            *batch.counts.entry(k).or_default() += n;
        }
        for (k, at) in failed.last {
            let entry = batch.last.entry(k).or_default();
            if at > *entry {
                *entry = at;
            }
        }
    }

    /// Writes everything pending to the store; on failure keeps it for the next attempt.
    pub async fn flush(&self, store: &Store) -> hata_store::StoreResult<()> {
        let batch = self.take();
        if batch.counts.is_empty() && batch.last.is_empty() {
            return Ok(());
        }
        let counts: Vec<EvaluationCount> = batch
            .counts
            .iter()
            .map(|(k, n)| EvaluationCount {
                project: k.project.clone(),
                environment: k.environment.clone(),
                flag: k.flag.clone(),
                hour: k.hour.clone(),
                variant: k.variant.clone(),
                reason: k.reason.as_str().to_string(),
                count: i64::try_from(*n).unwrap_or(i64::MAX),
            })
            .collect();
        let evaluated: Vec<FlagEvaluated> = batch
            .last
            .iter()
            .map(|((project, environment, flag), at)| FlagEvaluated {
                project: project.clone(),
                environment: environment.clone(),
                flag: flag.clone(),
                at: at.clone(),
            })
            .collect();
        match store.record_evaluations(&counts, &evaluated).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.restore(batch);
                Err(e)
            }
        }
    }
}

/// The start of `t`'s hour as RFC 3339 UTC (`2026-11-23T14:00:00Z`).
fn hour_of(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:00:00Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour()
    )
}

/// Every `FLUSH_INTERVAL`: drain live counters and store the batch. Returns at shutdown after a
/// last drain and flush.
///
/// While the database is down every flush fails and the batch is kept and retried; only the
/// first failure of an outage is a warning (and its end is logged), so an outage of an hour
/// does not write 360 warnings.
pub async fn run_flusher(serving: Arc<Serving>) {
    let mut tick = tokio::time::interval(FLUSH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = serving.shutdown_signal();
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        serving.drain_counts();
        match serving.pending().flush(serving.store()).await {
            Ok(()) if failing => {
                tracing::info!("evaluation counts stored again, including those kept meanwhile");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!(error = %e,
                    "storing evaluation counts failed; they are kept and retried every {} s",
                    FLUSH_INTERVAL.as_secs());
                failing = true;
            }
            Err(e) => tracing::debug!(error = %e, "storing evaluation counts failed again"),
        }
    }
}

/// Drains and stores all counts now (the last step of a graceful shutdown).
pub async fn flush_now(serving: &Serving) {
    serving.drain_counts();
    if let Err(e) = serving.pending().flush(serving.store()).await {
        tracing::warn!(error = %e, "storing evaluation counts failed; they are lost");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_are_rfc3339_bucket_starts() {
        let t = time::macros::datetime!(2026-11-23 14:59:59.9 UTC);
        assert_eq!(hour_of(t), "2026-11-23T14:00:00Z");
    }
}
