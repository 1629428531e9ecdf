//! Latency figures from the stored duration histogram (`hata_store::serving_hours`).
//!
//! The p95 is estimated as Prometheus' `histogram_quantile` does: find the bucket holding
//! the 95th-percentile rank and interpolate linearly between its bounds (from 0 for the
//! first). When the rank falls in the `+Inf` bucket the estimate is the last finite bound
//! (2.5 s): the histogram cannot say how far beyond it the slow requests were.

use hata_store::serving_hours::{BUCKETS, BUCKET_BOUNDS};

/// The `q`-quantile in seconds of requests counted per bucket; `None` without requests.
pub fn quantile(q: f64, buckets: &[i64; BUCKETS]) -> Option<f64> {
    let total: i64 = buckets.iter().sum();
    if total <= 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0i64;
    for (i, &count) in buckets.iter().enumerate() {
        if count > 0 && (below + count) as f64 >= rank {
            let Some(&upper) = BUCKET_BOUNDS.get(i) else {
                return BUCKET_BOUNDS.last().copied();
            };
            let lower = if i == 0 { 0.0 } else { BUCKET_BOUNDS[i - 1] };
            return Some(lower + (upper - lower) * (rank - below as f64) / count as f64);
        }
        below += count;
    }
    BUCKET_BOUNDS.last().copied()
}

/// Milliseconds, rounded to microseconds (what reports print).
pub fn millis(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quantile_interpolates_within_its_bucket() {
        let mut b = [0; BUCKETS];
        assert_eq!(quantile(0.95, &b), None);
        // 100 requests: 90 under 5 ms, 10 between 10 and 25 ms. Rank 95 is the 5th of the
        // 10 in (0.01, 0.025]: 0.01 + 0.015 × 5/10.
        b[0] = 90;
        b[2] = 10;
        let p95 = quantile(0.95, &b).unwrap();
        assert!((p95 - 0.0175).abs() < 1e-12, "{p95}");
        // Rank inside the first bucket: from 0.
        let p50 = quantile(0.5, &b).unwrap();
        assert!((p50 - 0.005 * 50.0 / 90.0).abs() < 1e-12, "{p50}");
        // Beyond the last bound: the last bound.
        let mut slow = [0; BUCKETS];
        slow[BUCKETS - 1] = 3;
        assert_eq!(quantile(0.95, &slow), Some(2.5));
    }
}
