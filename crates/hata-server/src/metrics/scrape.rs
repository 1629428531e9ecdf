//! The families read at scrape time from what the server already keeps: evaluation totals
//! (`hata_serving::counts`), the rule sets in memory, the store's pools and change listener,
//! and the open event streams. Nothing here is touched by a request.

use std::collections::HashMap;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

use super::histogram::{self, HistogramReading};
use super::{MetricsConfig, OTHER_FLAGS};
use crate::AppState;

/// Evaluation totals keyed by (project, environment, flag label, variant, reason).
type Evaluations = Vec<((String, String, String, String, &'static str), u64)>;

/// One figure of a pool's use.
type PoolFigure = fn(&hata_store::PoolUsage) -> f64;

/// Everything one scrape reads, taken at once.
#[derive(Debug)]
pub struct Reading {
    evaluations: Evaluations,
    /// (project, environment, revision, age in seconds).
    rule_sets: Vec<(String, String, i64, i64)>,
    pools: Vec<hata_store::PoolUsage>,
    listener: Option<bool>,
    streams: Vec<(&'static str, usize)>,
    store_timings: Vec<(hata_store::timing::Operation, HistogramReading)>,
    propagation: HistogramReading,
    /// Whether `/health/ready` would answer 200, and each of its checks.
    ready: bool,
    checks: Vec<(&'static str, bool)>,
    /// The scheduled jobs, by name (`hata_jobs::Jobs::stats`).
    jobs: std::collections::BTreeMap<String, hata_jobs::JobStats>,
}

impl Reading {
    /// The scheduled jobs' families: attempts this replica finished and failed, and each
    /// job's last success by any replica (read back from the store every minute). A job's
    /// series exist once it is registered; backups' last success once a backup job is.
    fn encode_jobs(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        let mut runs = encoder.encode_descriptor(
            "hata_job_runs",
            "Scheduled job attempts this replica finished, by job",
            None,
            MetricType::Counter,
        )?;
        for (job, stats) in &self.jobs {
            ConstCounter::new(stats.runs)
                .encode(runs.encode_family(&[("job_name", job.as_str())])?)?;
        }
        let mut failures = encoder.encode_descriptor(
            "hata_job_failures",
            "Failed scheduled job attempts on this replica, by job",
            None,
            MetricType::Counter,
        )?;
        for (job, stats) in &self.jobs {
            ConstCounter::new(stats.failures)
                .encode(failures.encode_family(&[("job_name", job.as_str())])?)?;
        }
        let mut last = encoder.encode_descriptor(
            "hata_job_last_success_timestamp_seconds",
            "When each job last succeeded (any replica), Unix seconds",
            None,
            MetricType::Gauge,
        )?;
        for (job, stats) in &self.jobs {
            if let Some(at) = stats.last_success {
                ConstGauge::new(at).encode(last.encode_family(&[("job_name", job.as_str())])?)?;
            }
        }
        let backup = encoder.encode_descriptor(
            "hata_backup_last_success_timestamp_seconds",
            "When the last backup (full or incremental) succeeded, Unix seconds",
            None,
            MetricType::Gauge,
        )?;
        let last_backup = hata_jobs::names::BACKUPS
            .iter()
            .filter_map(|name| self.jobs.get(*name)?.last_success)
            .max();
        if let Some(at) = last_backup {
            ConstGauge::new(at).encode(backup)?;
        }
        Ok(())
    }

    pub fn take(
        state: &AppState,
        streams: &crate::routes::sse::StreamSlots,
        config: &MetricsConfig,
        readiness: &crate::routes::health::Readiness,
    ) -> Reading {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut rule_sets: Vec<_> = state
            .serving
            .all()
            .iter()
            .map(|env| {
                (
                    env.project.clone(),
                    env.environment.clone(),
                    env.revision,
                    (now - env.last_modified).max(0),
                )
            })
            .collect();
        rule_sets.sort();
        Reading {
            evaluations: fold_flags(state.serving.pending().totals(), config.max_flags),
            rule_sets,
            pools: state.store.pools(),
            listener: state.store.listener_connected(),
            streams: streams.open_by_kind(),
            store_timings: state.store.timings().read(),
            propagation: state.serving.propagation().read(),
            ready: readiness.ready,
            checks: readiness.checks.iter().map(|c| (c.name, c.up)).collect(),
            jobs: state.jobs.stats(),
        }
    }

    pub fn encode(&self, encoder: &mut DescriptorEncoder<'_>) -> std::fmt::Result {
        self.encode_jobs(encoder)?;
        let mut family = encoder.encode_descriptor(
            "hata_evaluations",
            "Evaluations answered since start, by environment, flag, variant and reason \
             (as of the last drain, at most 10 s behind; flags past the limit are `_other`)",
            None,
            MetricType::Counter,
        )?;
        for ((project, environment, flag, variant, reason), count) in &self.evaluations {
            let labels = [
                ("project", project.as_str()),
                ("environment", environment.as_str()),
                ("flag", flag.as_str()),
                ("variant", variant.as_str()),
                ("reason", reason),
            ];
            ConstCounter::new(*count).encode(family.encode_family(&labels)?)?;
        }
        let mut revision = encoder.encode_descriptor(
            "hata_rule_set_revision",
            "Revision of the rule set served, per environment",
            None,
            MetricType::Gauge,
        )?;
        for (project, environment, rev, _) in &self.rule_sets {
            let labels = [
                ("project", project.as_str()),
                ("environment", environment.as_str()),
            ];
            ConstGauge::new(*rev).encode(revision.encode_family(&labels)?)?;
        }
        let mut age = encoder.encode_descriptor(
            "hata_rule_set_age_seconds",
            "Seconds since the served rule set's revision last increased",
            None,
            MetricType::Gauge,
        )?;
        for (project, environment, _, seconds) in &self.rule_sets {
            let labels = [
                ("project", project.as_str()),
                ("environment", environment.as_str()),
            ];
            ConstGauge::new(*seconds).encode(age.encode_family(&labels)?)?;
        }
        if let Some(connected) = self.listener {
            ConstGauge::new(i64::from(connected)).encode(encoder.encode_descriptor(
                "hata_change_listener_connected",
                "1 while the PostgreSQL change listener is listening (absent on SQLite)",
                None,
                MetricType::Gauge,
            )?)?;
        }
        let pool_gauges: [(&str, &str, PoolFigure); 4] = [
            (
                "db_connection_pool_usage",
                "Connections in use over the pool's maximum",
                |p| f64::from(p.open.saturating_sub(p.idle)) / f64::from(p.max.max(1)),
            ),
            ("db_connection_pool_in_use", "Connections in use", |p| {
                f64::from(p.open.saturating_sub(p.idle))
            }),
            ("db_connection_pool_idle", "Idle connections", |p| {
                f64::from(p.idle)
            }),
            ("db_connection_pool_max", "The pool's maximum", |p| {
                f64::from(p.max)
            }),
        ];
        for (name, help, value) in pool_gauges {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for pool in &self.pools {
                ConstGauge::new(value(pool))
                    .encode(family.encode_family(&[("pool", pool.pool)])?)?;
            }
        }
        let mut streams = encoder.encode_descriptor(
            "hata_sse_streams",
            "Event streams open now, by kind",
            None,
            MetricType::Gauge,
        )?;
        for (kind, open) in &self.streams {
            ConstGauge::new(*open as i64).encode(streams.encode_family(&[("kind", *kind)])?)?;
        }
        let mut store = encoder.encode_descriptor(
            "hata_store_operation_duration_seconds",
            "Time the store took, by operation (`write`: a whole write transaction; \
             `load_rule_set`: one environment read for compiling; …)",
            None,
            MetricType::Histogram,
        )?;
        for (operation, reading) in &self.store_timings {
            histogram::encode(
                reading,
                store.encode_family(&[("operation", operation.as_str())])?,
            )?;
        }
        histogram::encode(
            &self.propagation,
            encoder.encode_descriptor(
                "hata_rule_set_propagation_seconds",
                "From a change's commit (the environment's revised_at) to this replica serving \
                 it; replicas' clocks must agree (NTP)",
                None,
                MetricType::Histogram,
            )?,
        )?;
        ConstGauge::new(i64::from(self.ready)).encode(encoder.encode_descriptor(
            "hata_ready",
            "1 while /health/ready answers 200 (0 while draining or a deciding check fails)",
            None,
            MetricType::Gauge,
        )?)?;
        let mut checks = encoder.encode_descriptor(
            "hata_health_check_up",
            "Each check of /health/ready: 1 up, 0 down",
            None,
            MetricType::Gauge,
        )?;
        for (check, up) in &self.checks {
            ConstGauge::new(i64::from(*up)).encode(checks.encode_family(&[("check", *check)])?)?;
        }
        Ok(())
    }
}

/// Per environment, the first `max_flags` flags counted keep their own series; the rest
/// are summed under `OTHER_FLAGS`. "First counted" is stable across scrapes, so a series
/// never moves between a flag and `_other` while the process runs.
fn fold_flags(totals: Vec<hata_serving::counts::EvaluationTotal>, max_flags: usize) -> Evaluations {
    // Each flag once per environment, with when it was first counted (a map: with 10,000
    // flags a scan per total made the scrape quadratic, 135 ms).
    let mut order: HashMap<(&str, &str), HashMap<&str, u64>> = HashMap::new();
    for t in &totals {
        order
            .entry((&t.project, &t.environment))
            .or_default()
            .entry(&t.flag)
            .or_insert(t.seen);
    }
    let mut kept: std::collections::HashSet<(&str, &str, &str)> = Default::default();
    for ((project, environment), flags) in order {
        let mut flags: Vec<(u64, &str)> = flags.into_iter().map(|(f, seen)| (seen, f)).collect();
        flags.sort_unstable();
        for (_, flag) in flags.into_iter().take(max_flags) {
            kept.insert((project, environment, flag));
        }
    }
    let mut folded: HashMap<(String, String, String, String, &'static str), u64> = HashMap::new();
    for t in &totals {
        let flag = if kept.contains(&(t.project.as_str(), t.environment.as_str(), t.flag.as_str()))
        {
            t.flag.clone()
        } else {
            OTHER_FLAGS.to_string()
        };
        let key = (
            t.project.clone(),
            t.environment.clone(),
            flag,
            t.variant.clone(),
            t.reason.as_str(),
        );
        *folded.entry(key).or_default() += t.count;
    }
    let mut out: Evaluations = folded.into_iter().collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hata_core::evaluate::Reason;
    use hata_serving::counts::EvaluationTotal;

    fn total(env: &str, flag: &str, seen: u64, variant: &str, count: u64) -> EvaluationTotal {
        EvaluationTotal {
            project: "shop".into(),
            environment: env.into(),
            flag: flag.into(),
            seen,
            variant: variant.into(),
            reason: Reason::Static,
            count,
        }
    }

    #[test]
    fn flags_past_the_limit_fold_per_environment_in_first_counted_order() {
        let folded = fold_flags(
            vec![
                total("prod", "c", 3, "on", 5),
                total("prod", "a", 1, "on", 1),
                total("prod", "b", 2, "on", 2),
                total("prod", "b", 2, "off", 7),
                total("dev", "z", 4, "on", 9),
            ],
            1,
        );
        let got: Vec<(&str, &str, &str, u64)> = folded
            .iter()
            .map(|((_, e, f, v, _), n)| (e.as_str(), f.as_str(), v.as_str(), *n))
            .collect();
        assert_eq!(
            got,
            vec![
                ("dev", "z", "on", 9),
                ("prod", "_other", "off", 7),
                ("prod", "_other", "on", 7),
                ("prod", "a", "on", 1),
            ]
        );
    }
}
