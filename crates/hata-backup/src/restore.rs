//! Restoring: the chain verified in full (`chain::verify`) and only then imported, in one
//! transaction (`Store::import`, or `Store::import_replacing` with `force`): a damaged,
//! truncated or newer backup, a broken chain or a non-empty store without `force` leaves the
//! store untouched.
//!
//! `until`: the newest backup at or before that time among the chain of the backup named and
//! the increments that follow it (`taken_at <= until`). A point-in-time restore therefore
//! restores the state of a backup, exactly (it equals an export taken at that moment), and its
//! granularity is the increment interval: with an increment every 5 minutes, at most 5
//! minutes before `until`. The change entries between two backups are not replayed one by one:
//! they do not carry what a restore needs (token and password hashes, the flags an
//! environment's creation rewrites), and a restore that is exact beats one that is finer.

use hata_store::{ImportSummary, Store};
use time::OffsetDateTime;

use crate::chain::{chain_of, chains, list, materialise, Verified};
use crate::destination::Destination;
use crate::manifest::Manifest;
use crate::{BackupError, BackupResult};

/// What to restore.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Restore the newest backup at or before this time (see the module doc).
    pub until: Option<OffsetDateTime>,
    /// Replace whatever the store holds (otherwise a non-empty store is refused).
    pub force: bool,
}

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// The chain restored, oldest first; its last backup is the state restored.
    pub chain: Vec<Manifest>,
    pub summary: ImportSummary,
}

/// Restores backup `id` at `dest` (or, with `until`, the backup that time selects) into
/// `store`.
pub async fn restore(
    store: &Store,
    dest: &Destination,
    id: &str,
    options: &RestoreOptions,
) -> BackupResult<Restored> {
    let chain = match options.until {
        None => chain_of(dest, id).await?,
        Some(until) => chain_until(dest, id, until).await?,
    };
    let Verified { chain, document } = materialise(dest, chain).await?;
    let summary = if options.force {
        store.import_replacing(&document).await?
    } else {
        store.import(&document).await?
    };
    Ok(Restored { chain, summary })
}

/// The chain to restore for `id` and `until`: among the backups whose chain contains `id` or
/// lies in `id`'s chain, the newest taken at or before `until`.
async fn chain_until(
    dest: &Destination,
    id: &str,
    until: OffsetDateTime,
) -> BackupResult<Vec<Manifest>> {
    // Named backup first: a clear error when it does not exist or is incomplete.
    let own = chain_of(dest, id).await?;
    let listed = list(dest).await?;
    let all = chains(&listed);
    let related = all.into_values().filter(|chain| {
        chain.iter().any(|m| m.id == id) || own.iter().any(|m| Some(m) == chain.last())
    });
    let mut best: Option<Vec<Manifest>> = None;
    for chain in related {
        // A chain whose full backup is missing or incomplete is not a candidate.
        if chain.first().is_none_or(|m| m.parent.is_some()) {
            continue;
        }
        let Some(last) = chain.last() else { continue };
        let taken = parse(&last.taken_at)?;
        if taken > until {
            continue;
        }
        if best.as_ref().and_then(|b| b.last()).is_none_or(|b| {
            (b.taken_at.as_str(), b.id.as_str()) < (last.taken_at.as_str(), last.id.as_str())
        }) {
            best = Some(chain);
        }
    }
    best.ok_or_else(|| {
        BackupError::Until(format!(
            "no backup in the chain of {id} was taken at or before {}: the chain starts at {}",
            hata_store::rfc3339(until),
            own.first().map_or("?", |m| m.taken_at.as_str())
        ))
    })
}

fn parse(at: &str) -> BackupResult<OffsetDateTime> {
    OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .map_err(|e| BackupError::Chain(format!("a manifest's taken_at {at:?}: {e}")))
}
