//! The backup jobs `hata serve` schedules once a destination is configured (`--backup-to`):
//! `hata_backup`'s functions as `hata_jobs::Job`s. Wiring only: what a backup is, how it is
//! checked and which backups pruning keeps is `hata-backup`'s; when it runs and how it is
//! retried, `hata-jobs`'.

use std::sync::Arc;

use hata_backup::{Destination, Generations, Kind, Listed};
use hata_jobs::{names, Job, JobContext, JobError, JobFuture, JobsConfig};

/// Registers `backup-full`, `backup-incremental` and `backup-verify` for `destination`; the
/// backups prune the destination to `keep` after each success.
pub fn register(jobs: &mut JobsConfig, destination: &Destination, keep: Generations) {
    jobs.register(
        names::BACKUP_FULL,
        Arc::new(TakeBackup {
            destination: destination.clone(),
            kind: Kind::Full,
            keep,
        }),
    );
    jobs.register(
        names::BACKUP_INCREMENTAL,
        Arc::new(TakeBackup {
            destination: destination.clone(),
            kind: Kind::Incremental,
            keep,
        }),
    );
    jobs.register(
        names::BACKUP_VERIFY,
        Arc::new(VerifyLatest {
            destination: destination.clone(),
        }),
    );
}

/// Takes a full or incremental backup, then prunes the destination. An incremental one with
/// no full backup to follow yet is a full one: the first hourly run after configuring a
/// destination starts the chain.
///
/// A pruning that fails does not fail the backup (which was taken: a retry would take
/// another); it is logged and said in the run's detail, and the retention job's own pruning
/// step, which does fail its run, tries again.
struct TakeBackup {
    destination: Destination,
    kind: Kind,
    keep: Generations,
}

impl Job for TakeBackup {
    fn run<'a>(&'a self, context: &'a JobContext) -> JobFuture<'a> {
        Box::pin(async move {
            let kind = match self.kind {
                Kind::Incremental if !has_complete(&self.destination).await? => Kind::Full,
                kind => kind,
            };
            // Beside serving: on the backup lane's lower-priority thread.
            let manifest = hata_backup::take_beside(&context.store, &self.destination, kind)
                .await
                .map_err(JobError::new)?;
            let pruned = match hata_backup::prune(
                &self.destination,
                self.keep,
                time::OffsetDateTime::now_utc(),
            )
            .await
            {
                Ok(pruned) => format!("pruned: {pruned}"),
                Err(e) => {
                    tracing::warn!(destination = %self.destination, error = %e,
                        "pruning the backups failed; the retention job tries again");
                    format!("pruning failed: {e}")
                }
            };
            Ok(format!(
                "backup {} ({:?}, {} flags, up to change {}); {pruned}",
                manifest.id, manifest.kind, manifest.flags, manifest.last_seq
            ))
        })
    }
}

/// Verifies the newest complete backup and its chain (checksums, decompression, continuity,
/// the document's own checks).
struct VerifyLatest {
    destination: Destination,
}

impl Job for VerifyLatest {
    fn run<'a>(&'a self, _context: &'a JobContext) -> JobFuture<'a> {
        Box::pin(async move {
            let listed = hata_backup::list(&self.destination)
                .await
                .map_err(JobError::new)?;
            let Some(newest) = listed
                .iter()
                .rev()
                .find(|l| matches!(l, Listed::Complete(_)))
            else {
                return Err(JobError::new(format!(
                    "no complete backup at {} to verify",
                    self.destination
                )));
            };
            let verified = hata_backup::verify(&self.destination, newest.id())
                .await
                .map_err(JobError::new)?;
            Ok(format!(
                "backup {} verified ({} backups in its chain)",
                newest.id(),
                verified.chain.len()
            ))
        })
    }
}

async fn has_complete(destination: &Destination) -> Result<bool, JobError> {
    let listed = hata_backup::list(destination)
        .await
        .map_err(JobError::new)?;
    Ok(listed.iter().any(|l| matches!(l, Listed::Complete(_))))
}

/// The retention job's step: prunes the destination to `keep` (its failure fails the
/// retention run, which is retried).
pub fn prune_step(destination: &Destination, keep: Generations) -> Arc<dyn Job> {
    Arc::new(PruneBackups {
        destination: destination.clone(),
        keep,
    })
}

struct PruneBackups {
    destination: Destination,
    keep: Generations,
}

impl Job for PruneBackups {
    fn run<'a>(&'a self, _context: &'a JobContext) -> JobFuture<'a> {
        Box::pin(async move {
            let pruned = hata_backup::prune(
                &self.destination,
                self.keep,
                time::OffsetDateTime::now_utc(),
            )
            .await
            .map_err(JobError::new)?;
            Ok(pruned.to_string())
        })
    }
}
