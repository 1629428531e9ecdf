//! The morning report: a scheduled job (`report-webhook`) that posts the previous UTC day's
//! daily report to a Slack-compatible incoming webhook (`hata_reports::slack`: `text` and a
//! `markdown` block). A failure (unreachable, timeout, an answer other than 2xx) fails the
//! attempt, so the scheduler's retries apply; the URL is a secret (whoever holds it can post
//! to the channel), so it appears in no message, log line or run record: errors name the
//! host only.

use std::time::Duration;

use hata_jobs::{Job, JobContext, JobError, JobFuture};
use hata_reports::Day;

/// How long one delivery may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Posts yesterday's daily report to `url`.
pub struct ReportWebhook {
    url: reqwest::Url,
    client: reqwest::Client,
}

impl std::fmt::Debug for ReportWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReportWebhook({})", host(&self.url))
    }
}

impl ReportWebhook {
    /// `url` must be an `http://` or `https://` URL with a host. The error does not repeat
    /// the URL.
    pub fn new(url: &str) -> Result<ReportWebhook, String> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| format!("not a URL ({e}); expected https://host/path"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err("expected an http:// or https:// URL with a host".into());
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            // A redirect could carry the report elsewhere; webhooks answer where they are.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("the HTTP client: {e}"))?;
        Ok(ReportWebhook {
            url: parsed,
            client,
        })
    }

    async fn deliver(&self, context: &JobContext) -> Result<String, JobError> {
        let now = time::OffsetDateTime::now_utc();
        let day = Day::yesterday(now);
        let report = hata_reports::daily(&context.store, day, now)
            .await
            .map_err(JobError::new)?;
        let message = hata_reports::slack::daily_message(&report);
        let to = host(&self.url);
        let answer = self
            .client
            .post(self.url.clone())
            .json(&message)
            .send()
            .await
            .map_err(|e| JobError::new(format!("posting to {to}: {}", e.without_url())))?;
        let status = answer.status();
        if !status.is_success() {
            let body = answer.text().await.unwrap_or_default();
            let body: String = body.chars().take(200).collect();
            return Err(JobError::new(format!(
                "{to} answered {status}: {}",
                body.trim()
            )));
        }
        Ok(format!("the daily report of {day} posted to {to}"))
    }
}

impl Job for ReportWebhook {
    fn run<'a>(&'a self, context: &'a JobContext) -> JobFuture<'a> {
        Box::pin(self.deliver(context))
    }
}

/// `https://hooks.slack.com` (with a port when the URL has one): what messages may say
/// about the URL; its path is the secret.
fn host(url: &reqwest::Url) -> String {
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{}{port}", url.scheme(), url.host_str().unwrap_or("?"))
}
