//! The retention job on both backends: evaluation data past the retention goes, recent data
//! stays, the audit log is pruned behind its anchor, and a further step (the backups' hook)
//! runs after them; its failure fails the run without undoing the rest.

#[path = "../../hata-store/tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use hata_jobs::{Job, JobContext, JobError, JobFuture, Retention};
use hata_store::EvaluationCount;

struct Step(Result<&'static str, &'static str>);

impl Job for Step {
    fn run<'a>(&'a self, _: &'a JobContext) -> JobFuture<'a> {
        Box::pin(async move { self.0.map(String::from).map_err(JobError::new) })
    }
}

#[tokio::test]
async fn retention_prunes_old_data_and_runs_its_steps() {
    for t in support::all().await {
        let count = |hour: &str| EvaluationCount {
            project: "p".into(),
            environment: "production".into(),
            flag: "f".into(),
            hour: hour.into(),
            variant: "on".into(),
            reason: "STATIC".into(),
            count: 1,
        };
        let now = time::OffsetDateTime::now_utc();
        let hour = |t: time::OffsetDateTime| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:00:00Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour()
            )
        };
        let (old, recent) = (
            hour(now - time::Duration::days(31)),
            hour(now - time::Duration::days(29)),
        );
        t.store
            .record_evaluations(&[count(&old), count(&recent)], &[])
            .await
            .expect("record");
        let (run, _) = t
            .store
            .enqueue_job_run("retention", &hata_store::now_rfc3339(), "manual", None)
            .await
            .expect("a run");
        let context = JobContext {
            store: t.store.clone(),
            run,
        };
        let days = |d: u64| Some(Duration::from_secs(d * 86_400));
        let job =
            Retention::new(days(30), days(30)).also("backups", Arc::new(Step(Ok("2 pruned"))));
        let detail = job.run(&context).await.expect("retention runs");
        assert!(detail.contains("1 count rows"), "{}: {detail}", t.name);
        assert!(
            detail.contains("audit entries before"),
            "{}: {detail}",
            t.name
        );
        assert!(
            detail.ends_with("backups: 2 pruned"),
            "{}: {detail}",
            t.name
        );
        let kept = t
            .store
            .evaluation_counts(
                "p",
                "f",
                None,
                "2000-01-01T00:00:00Z",
                "2100-01-01T00:00:00Z",
            )
            .await
            .expect("read");
        assert_eq!(
            kept.iter().map(|c| c.hour.as_str()).collect::<Vec<_>>(),
            [recent.as_str()],
            "{}",
            t.name
        );

        t.store
            .record_evaluations(&[count(&old)], &[])
            .await
            .expect("record");
        let failing =
            Retention::new(days(30), None).also("backups", Arc::new(Step(Err("bucket gone"))));
        let err = failing.run(&context).await.expect_err("the step failed");
        assert!(err.to_string().contains("backups: bucket gone"), "{err}");
        assert!(
            err.to_string().contains("1 count rows"),
            "the rest was done: {err}"
        );
        let kept = t
            .store
            .evaluation_counts(
                "p",
                "f",
                None,
                "2000-01-01T00:00:00Z",
                "2100-01-01T00:00:00Z",
            )
            .await
            .expect("read");
        assert_eq!(kept.len(), 1, "{}", t.name);
    }
}
