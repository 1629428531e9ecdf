//! Duration histograms in the Prometheus text format. The histogram itself (relaxed atomics:
//! observing is two adds, no lock; the crate's `Histogram` takes one) is
//! `hata_store::timing::DurationHistogram`, shared with the store's operation timings and the
//! serving catalog's propagation lag; this module only encodes readings.

use prometheus_client::encoding::{MetricEncoder, NoLabelSet};

pub use hata_store::timing::{HistogramReading, REQUEST_BUCKETS as BUCKETS};

/// A request's duration (`http_request_duration_seconds`).
pub type DurationHistogram = hata_store::timing::DurationHistogram<{ BUCKETS.len() }>;

/// A new request-duration histogram.
pub fn request_histogram() -> DurationHistogram {
    DurationHistogram::new(&BUCKETS)
}

/// Writes one histogram's reading as a family member.
pub fn encode(reading: &HistogramReading, mut encoder: MetricEncoder<'_>) -> std::fmt::Result {
    // The encoder takes counts per bucket and accumulates them itself.
    let mut below = 0;
    let per_bucket: Vec<(f64, u64)> = reading
        .buckets
        .iter()
        .map(|&(le, cumulative)| {
            let n = cumulative - below;
            below = cumulative;
            (le, n)
        })
        .collect();
    encoder.encode_histogram::<NoLabelSet>(reading.sum, reading.count, &per_bucket, None)
}
