//! `Store::evaluation_series` on both backends: counts summed per environment, variant and
//! hour or day (every reason together), only inside the window, only the flag asked for, in
//! order, and timed.

mod support;

use hata_store::timing::Operation;
use hata_store::{EvaluationCount, SeriesPoint, SeriesStep};

fn count(
    env: &str,
    flag: &str,
    hour: &str,
    variant: &str,
    reason: &str,
    n: i64,
) -> EvaluationCount {
    EvaluationCount {
        project: "p".into(),
        environment: env.into(),
        flag: flag.into(),
        hour: hour.into(),
        variant: variant.into(),
        reason: reason.into(),
        count: n,
    }
}

fn point(env: &str, bucket: &str, variant: &str, count: i64) -> SeriesPoint {
    SeriesPoint {
        environment: env.into(),
        variant: variant.into(),
        bucket: bucket.into(),
        count,
    }
}

#[tokio::test]
async fn series_sum_per_environment_variant_and_bucket_inside_the_window() {
    for t in support::all().await {
        let counts = [
            // Before the window: left out.
            count("prod", "f", "2026-11-09T23:00:00Z", "on", "STATIC", 1000),
            count("prod", "f", "2026-11-10T10:00:00Z", "on", "SPLIT", 3),
            count(
                "prod",
                "f",
                "2026-11-10T10:00:00Z",
                "on",
                "TARGETING_MATCH",
                4,
            ),
            count("prod", "f", "2026-11-10T10:00:00Z", "off", "SPLIT", 5),
            count("prod", "f", "2026-11-10T11:00:00Z", "on", "SPLIT", 6),
            count("prod", "f", "2026-11-11T01:00:00Z", "on", "SPLIT", 7),
            count("dev", "f", "2026-11-10T10:00:00Z", "off", "DISABLED", 8),
            // Another flag: left out.
            count("prod", "g", "2026-11-10T10:00:00Z", "on", "STATIC", 9),
            // At `to`: left out (the window is half open).
            count("prod", "f", "2026-11-12T00:00:00Z", "on", "SPLIT", 2000),
        ];
        t.store
            .record_evaluations(&counts, &[])
            .await
            .expect("record");
        let before = t
            .store
            .timings()
            .read()
            .into_iter()
            .find(|(op, _)| *op == Operation::EvaluationSeries)
            .map(|(_, r)| r.count)
            .expect("timed");

        let (from, to) = ("2026-11-10T00:00:00Z", "2026-11-12T00:00:00Z");
        let hours = t
            .store
            .evaluation_series("p", "f", from, to, SeriesStep::Hour)
            .await
            .expect("hours");
        assert_eq!(
            hours,
            [
                point("dev", "2026-11-10T10", "off", 8),
                point("prod", "2026-11-10T10", "off", 5),
                point("prod", "2026-11-10T10", "on", 7),
                point("prod", "2026-11-10T11", "on", 6),
                point("prod", "2026-11-11T01", "on", 7),
            ],
            "{}",
            t.name
        );
        let days = t
            .store
            .evaluation_series("p", "f", from, to, SeriesStep::Day)
            .await
            .expect("days");
        assert_eq!(
            days,
            [
                point("dev", "2026-11-10", "off", 8),
                point("prod", "2026-11-10", "off", 5),
                point("prod", "2026-11-10", "on", 13),
                point("prod", "2026-11-11", "on", 7),
            ],
            "{}",
            t.name
        );
        let none = t
            .store
            .evaluation_series("p", "nothing", from, to, SeriesStep::Day)
            .await
            .expect("empty");
        assert!(none.is_empty(), "{}", t.name);
        let after = t
            .store
            .timings()
            .read()
            .into_iter()
            .find(|(op, _)| *op == Operation::EvaluationSeries)
            .map(|(_, r)| r.count)
            .expect("timed");
        assert_eq!(after, before + 3, "{}: every read is timed", t.name);
    }
}
