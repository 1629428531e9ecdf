//! `hata backup [--to DEST] [--incremental]`, `hata backup list`, `hata backup verify
//! [ID|PATH]`, `hata backup prune` and `hata restore ID|PATH [--until TIME] [--force]`:
//! `hata_backup` wired to the command line. Every failure exits non-zero with a message naming the backup and what is
//! wrong with it.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use hata_backup::{Destination, Kind, Listed, RestoreOptions};

use crate::config::{self, BackupArgs, BackupSettings, StoreArgs};

pub const BACKUP_HELP: &str = "\
A backup is a folder <id>/ at the destination (a directory, or s3://bucket/prefix with the
endpoint, region and http settings of --backup-s3-* and the credentials of AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY): its compressed part, then manifest.json, written last. A full backup
holds the whole store (`hata export`'s document, read as one consistent snapshot while hata
serves); --incremental holds what changed since the newest backup there. Backups hold token and
password hashes and the stream-ticket key: keep them like secrets.

Examples:
  hata backup --to /var/backups/hata
  hata backup --incremental --to s3://backups/hata
  hata backup list --to s3://backups/hata
  hata backup verify 20261206T020000.123Z-full --to /var/backups/hata
  hata backup prune --to s3://backups/hata --backup-keep-full 30 --backup-keep-incremental 24";

pub const RESTORE_HELP: &str = "\
ID is a backup at --from (default: --backup-to); PATH a backup's folder. The whole chain (the
full backup and the increments up to ID) is fetched and verified first — sizes, SHA-256,
decompression, that each increment continues its parent, and the import's own checks — and
only then imported in one transaction: a damaged backup is never half-restored. The store must
be empty unless --force, which replaces everything it holds.

--until TIME (RFC 3339) restores the newest backup of the chain taken at or before TIME: with
an increment every 5 minutes, the state at most 5 minutes before TIME.

Example:
  hata restore 20261206T140500.000Z-incremental --from s3://backups/hata \\
      --database-url postgres://hata@db/hata";

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BackupCommand {
    #[command(subcommand)]
    action: Option<BackupAction>,
    #[command(flatten)]
    take: TakeArgs,
}

#[derive(Args)]
struct TakeArgs {
    /// Where to write it [default: --backup-to]
    #[arg(long)]
    to: Option<String>,
    /// Only what changed since the newest backup at the destination
    #[arg(long)]
    incremental: bool,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    backup: BackupArgs,
}

#[derive(Subcommand)]
enum BackupAction {
    /// List the backups at the destination, oldest first.
    List(ListArgs),
    /// Verify a backup and its chain without restoring it (exit 1 naming what is wrong).
    Verify(VerifyArgs),
    /// Delete the backups past their generation count (--backup-keep-full,
    /// --backup-keep-incremental), never one that a kept backup is restored onto; the backup
    /// jobs of `hata serve` do this after each backup.
    Prune(PruneArgs),
}

#[derive(Args)]
struct PruneArgs {
    /// Where [default: --backup-to]
    #[arg(long)]
    to: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    backup: BackupArgs,
}

#[derive(Args)]
struct ListArgs {
    /// Where [default: --backup-to]
    #[arg(long)]
    to: Option<String>,
    /// Print JSON (the manifests) instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    backup: BackupArgs,
}

#[derive(Args)]
struct VerifyArgs {
    /// A backup id at the destination or a backup's folder [default: the newest backup]
    backup_id: Option<String>,
    /// Where [default: --backup-to]
    #[arg(long)]
    to: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    backup: BackupArgs,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// A backup id at --from, or a backup's folder (a path, or s3://bucket/prefix/ID)
    backup_id: String,
    /// Where the backup is [default: --backup-to]
    #[arg(long)]
    from: Option<String>,
    /// Restore the newest backup of the chain taken at or before this time (RFC 3339)
    #[arg(long)]
    until: Option<String>,
    /// Replace whatever the store holds (otherwise a store that is not empty is refused)
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    backup: BackupArgs,
}

/// `--to`/`--from` if given, else the configured destination.
fn destination(given: Option<&str>, settings: &BackupSettings) -> anyhow::Result<Destination> {
    match given {
        Some(text) => Ok(Destination::parse(text, &settings.s3)?),
        None => settings.to.clone().context(
            "no backup destination: give --to / --from, or set backup_to (--backup-to / HATA_BACKUP_TO)",
        ),
    }
}

/// `ID|PATH`: a backup's folder (a directory holding it, or `s3://…/ID`) names its
/// destination itself; an id is looked up at the given or configured destination.
fn target(
    arg: &str,
    given: Option<&str>,
    settings: &BackupSettings,
) -> anyhow::Result<(Destination, String)> {
    let path = std::path::Path::new(arg);
    if arg.starts_with("s3://") {
        let (dest, id) = arg
            .trim_end_matches('/')
            .rsplit_once('/')
            .filter(|(d, _)| *d != "s3:/")
            .with_context(|| format!("{arg}: expected s3://bucket/prefix/ID"))?;
        return Ok((Destination::parse(dest, &settings.s3)?, id.to_string()));
    }
    if path.is_dir() || arg.contains('/') {
        let dir = path
            .canonicalize()
            .with_context(|| format!("{arg}: no such backup folder"))?;
        let (Some(parent), Some(id)) = (dir.parent(), dir.file_name()) else {
            bail!("{arg}: not a backup folder");
        };
        return Ok((
            Destination::directory(parent)?,
            id.to_string_lossy().into_owned(),
        ));
    }
    Ok((destination(given, settings)?, arg.to_string()))
}

pub async fn run_backup(command: BackupCommand) -> anyhow::Result<()> {
    match command.action {
        None => take(command.take).await,
        Some(BackupAction::List(args)) => list(args).await,
        Some(BackupAction::Verify(args)) => verify(args).await,
        Some(BackupAction::Prune(args)) => prune(args).await,
    }
}

async fn prune(args: PruneArgs) -> anyhow::Result<()> {
    let (_, settings) = config::resolve_backup(args.store, args.backup)?;
    let dest = destination(args.to.as_deref(), &settings)?;
    let pruned = hata_backup::prune(&dest, settings.keep, time::OffsetDateTime::now_utc())
        .await
        .with_context(|| format!("pruning the backups at {dest} failed"))?;
    for id in pruned
        .plan
        .delete
        .iter()
        .chain(&pruned.plan.delete_incomplete)
    {
        println!("removed {id}");
    }
    println!(
        "{dest}: {pruned} (keeping {} full, {} incremental)",
        settings.keep.full, settings.keep.incremental
    );
    Ok(())
}

async fn take(args: TakeArgs) -> anyhow::Result<()> {
    let (store_settings, settings) = config::resolve_backup(args.store, args.backup)?;
    let dest = destination(args.to.as_deref(), &settings)?;
    let store = crate::open_existing_store(&store_settings).await?;
    let kind = if args.incremental {
        Kind::Incremental
    } else {
        Kind::Full
    };
    let result = hata_backup::take(&store, &dest, kind).await;
    store.close().await;
    let m = result.context("backup failed")?;
    let bytes: u64 = m.parts.iter().map(|p| p.size).sum();
    println!(
        "backup {} written to {dest}: {}, {} flags, changes up to {} ({} new), {bytes} bytes",
        m.id,
        m.kind.as_str(),
        m.flags,
        m.last_seq,
        m.changes,
    );
    Ok(())
}

async fn list(args: ListArgs) -> anyhow::Result<()> {
    let (_, settings) = config::resolve_backup(args.store, args.backup)?;
    let dest = destination(args.to.as_deref(), &settings)?;
    let listed = hata_backup::list(&dest).await?;
    if args.json {
        let manifests: Vec<&hata_backup::Manifest> = listed
            .iter()
            .filter_map(|l| match l {
                Listed::Complete(m) => Some(&**m),
                _ => None,
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&manifests)?);
        return Ok(());
    }
    println!(
        "{:<36} {:<12} {:<25} {:>8} {:>10}  parent",
        "id", "kind", "taken at", "changes", "bytes"
    );
    for l in &listed {
        match l {
            Listed::Complete(m) => println!(
                "{:<36} {:<12} {:<25} {:>8} {:>10}  {}",
                m.id,
                m.kind.as_str(),
                m.taken_at,
                m.last_seq,
                m.parts.iter().map(|p| p.size).sum::<u64>(),
                m.parent.as_deref().unwrap_or("-")
            ),
            Listed::Incomplete(id) => println!("{id:<36} incomplete (no manifest.json)"),
            Listed::Unreadable(id, why) => println!("{id:<36} unreadable: {why}"),
        }
    }
    Ok(())
}

async fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let (_, settings) = config::resolve_backup(args.store, args.backup)?;
    let (dest, id) = match args.backup_id.as_deref() {
        Some(arg) => target(arg, args.to.as_deref(), &settings)?,
        None => {
            let dest = destination(args.to.as_deref(), &settings)?;
            let newest = hata_backup::list(&dest)
                .await?
                .into_iter()
                .filter_map(|l| match l {
                    Listed::Complete(m) => Some(*m),
                    _ => None,
                })
                .max_by(|a, b| (&a.taken_at, &a.id).cmp(&(&b.taken_at, &b.id)))
                .with_context(|| format!("no complete backup at {dest}"))?;
            (dest, newest.id)
        }
    };
    let verified = hata_backup::verify(&dest, &id)
        .await
        .with_context(|| format!("backup {id} at {dest} is not restorable"))?;
    let flags: usize = verified
        .document
        .projects
        .iter()
        .map(|p| p.flags.len())
        .sum();
    println!(
        "backup {id} at {dest}: OK ({} backups in its chain, from {}; {} projects, {flags} flags, {} changes)",
        verified.chain.len(),
        verified.chain[0].id,
        verified.document.projects.len(),
        verified.document.changes.len()
    );
    Ok(())
}

pub async fn run_restore(args: RestoreArgs) -> anyhow::Result<()> {
    let (store_settings, settings) = config::resolve_backup(args.store, args.backup)?;
    let (dest, id) = target(&args.backup_id, args.from.as_deref(), &settings)?;
    let until = args
        .until
        .as_deref()
        .map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .with_context(|| format!("--until: not an RFC 3339 time: {t:?}"))
        })
        .transpose()?;
    let store = crate::open_store(&store_settings).await?;
    let options = RestoreOptions {
        until,
        force: args.force,
    };
    let result = hata_backup::restore(&store, &dest, &id, &options).await;
    store.close().await;
    let restored = result.with_context(|| format!("cannot restore backup {id} from {dest}"))?;
    let last = &restored.chain[restored.chain.len() - 1];
    println!(
        "restored backup {} (taken {}, {} backups in its chain) into {}: {}",
        last.id,
        last.taken_at,
        restored.chain.len(),
        hata_store::redact(&store_settings.database_url),
        restored.summary
    );
    Ok(())
}
