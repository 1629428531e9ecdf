//! `hata report daily | stale`: the reports of `hata-reports`, read from the store (the same
//! store settings as `serve`), printed as JSON or Markdown. The same documents as
//! `GET /api/v1/reports/…`.

use clap::{Subcommand, ValueEnum};
use hata_reports::{Day, StaleOptions};
use time::OffsetDateTime;

use crate::config::StoreArgs;

#[derive(Subcommand)]
pub enum ReportCommand {
    /// One UTC day: requests, latency, evaluations, flag changes, jobs, uptime and the error
    /// budget against 99.9 % (definitions: docs/operations.md, "Reports").
    Daily(DailyArgs),
    /// Removal candidates with their owners: flags not evaluated for N days, serving one
    /// variant for N days, or temporary past their expected lifetime.
    Stale(StaleArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Json,
    Markdown,
}

#[derive(clap::Args)]
pub struct DailyArgs {
    /// The UTC day, YYYY-MM-DD [default: yesterday]
    #[arg(long)]
    date: Option<String>,
    #[arg(long, value_enum, default_value = "markdown")]
    format: Format,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(clap::Args)]
pub struct StaleArgs {
    /// The window in days, 1 to 3650 [default: 30]
    #[arg(long)]
    days: Option<u32>,
    #[arg(long, value_enum, default_value = "markdown")]
    format: Format,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn run(command: ReportCommand) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    let text = match command {
        ReportCommand::Daily(args) => {
            let day = match &args.date {
                Some(d) => Day::parse("--date", d)?,
                None => Day::yesterday(now),
            };
            let store = crate::open_existing_store(&args.store.resolve()?).await?;
            let report = hata_reports::daily(&store, day, now).await;
            store.close().await;
            let report = report?;
            match args.format {
                Format::Json => serde_json::to_string_pretty(&report)?,
                Format::Markdown => hata_reports::markdown::daily(&report),
            }
        }
        ReportCommand::Stale(args) => {
            let options = StaleOptions::new(args.days).map_err(|e| match e {
                hata_reports::ReportError::Invalid { message, .. } => {
                    anyhow::anyhow!("--days: {message}")
                }
                e => e.into(),
            })?;
            let store = crate::open_existing_store(&args.store.resolve()?).await?;
            let report = hata_reports::stale(&store, options, now).await;
            store.close().await;
            let report = report?;
            match args.format {
                Format::Json => serde_json::to_string_pretty(&report)?,
                Format::Markdown => hata_reports::markdown::stale(&report),
            }
        }
    };
    println!("{}", text.trim_end());
    Ok(())
}
