//! How long things take, kept in relaxed atomics: observing is two adds and no lock, so it
//! may sit on any path (the HTTP edge observes every request with it). `DurationHistogram`
//! is the one histogram of the workspace: the store times its own operations with it
//! (`OperationTimings`, behind `Store::timings`), the serving catalog its propagation lag,
//! the server its requests. It lives here, the lowest crate that times anything; the
//! Prometheus encoding is the server's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Request-sized durations, in seconds (`+Inf` follows). 0.2 s is the p95 objective
/// operators alert on.
pub const REQUEST_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.5];

/// Store operations: from a millisecond (a cached read) to a whole export.
pub const STORE_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Propagation lag, commit to serving: milliseconds through the change listener, up to the
/// 10 s repair check (and beyond) without it.
pub const PROPAGATION_BUCKETS: [f64; 13] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A histogram of durations with fixed upper bounds (seconds) and an `+Inf` bucket.
pub struct DurationHistogram<const N: usize> {
    bounds: &'static [f64; N],
    /// Counts per bucket, not cumulative.
    buckets: [AtomicU64; N],
    above: AtomicU64,
    sum_nanos: AtomicU64,
}

/// A histogram's counts read at one moment (cumulative, as Prometheus wants them).
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramReading {
    /// (upper bound, observations at or below it); the last bound is `+Inf`.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    /// Sum of the observations, in seconds.
    pub sum: f64,
    /// The same in nanoseconds, exactly.
    pub sum_nanos: u64,
}

impl<const N: usize> DurationHistogram<N> {
    pub fn new(bounds: &'static [f64; N]) -> Self {
        DurationHistogram {
            bounds,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            above: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    #[inline]
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let cell = self
            .bounds
            .iter()
            .position(|&le| seconds <= le)
            .map_or(&self.above, |i| &self.buckets[i]);
        cell.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets
            .iter()
            .chain(std::iter::once(&self.above))
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }

    pub fn read(&self) -> HistogramReading {
        let mut count = 0;
        let mut buckets = Vec::with_capacity(N + 1);
        for (le, cell) in self.bounds.iter().zip(&self.buckets) {
            count += cell.load(Ordering::Relaxed);
            buckets.push((*le, count));
        }
        count += self.above.load(Ordering::Relaxed);
        buckets.push((f64::INFINITY, count));
        let sum_nanos = self.sum_nanos.load(Ordering::Relaxed);
        HistogramReading {
            buckets,
            count,
            sum: sum_nanos as f64 / 1e9,
            sum_nanos,
        }
    }
}

impl<const N: usize> std::fmt::Debug for DurationHistogram<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurationHistogram")
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

/// The store operations that are timed: the write path, and the reads that run often or
/// long (the label `hata_store_operation_duration_seconds{operation}` carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `Store::write`: a whole write transaction.
    Write,
    /// One environment's rule set read for compiling (`environment_state`).
    LoadRuleSet,
    /// Every environment's revision (the 10 s repair check).
    RuleSetRevisions,
    /// A session and its user, on every cookie-authenticated request.
    Session,
    /// A session's last use.
    TouchSession,
    /// Every token (the token cache's rebuild).
    ListTokens,
    /// Tokens' last uses, stored every 10 s.
    RecordTokenUse,
    /// Evaluation counts, stored every 10 s.
    RecordEvaluations,
    /// A page of flags.
    ListFlags,
    /// One flag.
    GetFlag,
    /// A page of the audit log.
    PageAudit,
    /// A flag's evaluations per variant over a window (the web UI's chart).
    EvaluationSeries,
    /// A whole export (`hata export`, backups).
    Export,
}

impl Operation {
    pub const ALL: [Operation; 13] = [
        Operation::Write,
        Operation::LoadRuleSet,
        Operation::RuleSetRevisions,
        Operation::Session,
        Operation::TouchSession,
        Operation::ListTokens,
        Operation::RecordTokenUse,
        Operation::RecordEvaluations,
        Operation::ListFlags,
        Operation::GetFlag,
        Operation::PageAudit,
        Operation::EvaluationSeries,
        Operation::Export,
    ];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Write => "write",
            Operation::LoadRuleSet => "load_rule_set",
            Operation::RuleSetRevisions => "rule_set_revisions",
            Operation::Session => "session",
            Operation::TouchSession => "touch_session",
            Operation::ListTokens => "list_tokens",
            Operation::RecordTokenUse => "record_token_use",
            Operation::RecordEvaluations => "record_evaluations",
            Operation::ListFlags => "list_flags",
            Operation::GetFlag => "get_flag",
            Operation::PageAudit => "page_audit",
            Operation::EvaluationSeries => "evaluation_series",
            Operation::Export => "export",
        }
    }
}

/// One histogram per `Operation`, shared by every clone of a store.
#[derive(Debug)]
pub struct OperationTimings {
    cells: [DurationHistogram<{ STORE_BUCKETS.len() }>; Operation::ALL.len()],
}

impl Default for OperationTimings {
    fn default() -> Self {
        OperationTimings {
            cells: std::array::from_fn(|_| DurationHistogram::new(&STORE_BUCKETS)),
        }
    }
}

impl OperationTimings {
    /// Times `operation` until the returned guard is dropped (whatever way the operation
    /// ends: success, error or `?`).
    pub fn start(&self, operation: Operation) -> Timer<'_> {
        Timer {
            cell: &self.cells[operation as usize],
            started: Instant::now(),
        }
    }

    /// Each operation with its histogram so far.
    pub fn read(&self) -> Vec<(Operation, HistogramReading)> {
        Operation::ALL
            .iter()
            .map(|op| (*op, self.cells[*op as usize].read()))
            .collect()
    }
}

/// Records the time since `OperationTimings::start` when dropped.
pub struct Timer<'a> {
    cell: &'a DurationHistogram<{ STORE_BUCKETS.len() }>,
    started: Instant,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.cell.observe(self.started.elapsed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them_and_read_cumulatively() {
        let h = DurationHistogram::new(&REQUEST_BUCKETS);
        h.observe(Duration::from_millis(5)); // on the bound: that bucket
        h.observe(Duration::from_millis(7));
        h.observe(Duration::from_secs(3)); // past the last bound: +Inf
        let r = h.read();
        assert_eq!(r.count, 3);
        assert_eq!(r.buckets.len(), REQUEST_BUCKETS.len() + 1);
        assert_eq!(r.buckets[0], (0.005, 1));
        assert_eq!(r.buckets[1], (0.01, 2));
        assert_eq!(r.buckets[REQUEST_BUCKETS.len() - 1], (2.5, 2));
        assert_eq!(r.buckets[REQUEST_BUCKETS.len()], (f64::INFINITY, 3));
        assert!((r.sum - 3.012).abs() < 1e-9, "{}", r.sum);
    }

    #[test]
    fn operations_index_their_own_cells() {
        for (i, op) in Operation::ALL.iter().enumerate() {
            assert_eq!(*op as usize, i, "{op:?}");
        }
        let timings = OperationTimings::default();
        drop(timings.start(Operation::Export));
        let read = timings.read();
        for (op, reading) in read {
            assert_eq!(reading.count, u64::from(op == Operation::Export), "{op:?}");
        }
    }
}
