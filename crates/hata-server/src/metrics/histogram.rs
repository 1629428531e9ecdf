//! A duration histogram of relaxed atomics: observing is two adds, no lock (the crate's
//! `Histogram` takes one). Encoded through `prometheus-client` at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::{MetricEncoder, NoLabelSet};

/// Upper bounds of the buckets, in seconds (`+Inf` follows). 0.2 s is the p95 objective
/// operators alert on.
pub const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.5];

pub struct DurationHistogram {
    /// Counts per bucket, not cumulative; the last is `+Inf`.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Default for DurationHistogram {
    fn default() -> DurationHistogram {
        DurationHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for DurationHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurationHistogram")
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

impl DurationHistogram {
    #[inline]
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(BUCKETS.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Counts per bucket (not cumulative, `+Inf` last) and the sum in nanoseconds, read one
    /// cell at a time: a request observed meanwhile may be in one and not yet the other.
    pub fn read(&self) -> ([u64; BUCKETS.len() + 1], u64) {
        (
            std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
            self.sum_nanos.load(Ordering::Relaxed),
        )
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    pub fn encode(&self, mut encoder: MetricEncoder<'_>) -> std::fmt::Result {
        let mut count = 0;
        // Per bucket: the encoder accumulates.
        let buckets: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let n = cell.load(Ordering::Relaxed);
                count += n;
                (BUCKETS.get(i).copied().unwrap_or(f64::INFINITY), n)
            })
            .collect();
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}
