//! Taking a backup while hata serves: one consistent read of the store (the export's read
//! transaction: one SQLite read transaction, one PostgreSQL `REPEATABLE READ` transaction, so
//! writers are never blocked), compressed, its part written, then its manifest.
//!
//! An incremental backup follows the newest complete backup at the destination (full or
//! incremental): it holds `Store::export_delta` after that backup's last change, and is
//! refused when the store's change record does not continue that backup's (a store restored
//! or replaced since): then only a full backup makes sense.

use bytes::Bytes;
use hata_store::{ExportDocument, Store};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::chain::{list, Listed};
use crate::destination::Destination;
use crate::manifest::{Kind, Manifest, Part, FORMAT, MANIFEST, VERSION};
use crate::{BackupError, BackupResult};

/// zstd level 3 (zstd's default): a 10,000-flag document compresses about tenfold at a few
/// hundred MB/s; higher levels cost much more time for little.
const LEVEL: i32 = 3;

/// Takes a backup of `store` to `dest` and returns its manifest.
pub async fn take(store: &Store, dest: &Destination, kind: Kind) -> BackupResult<Manifest> {
    take_paced(store, dest, kind, 0.0).await
}

/// `take`, pausing `pace` times as long as each `PACE_BYTES` of the part's JSON took to
/// write (0: never): the backup lane's share of the CPU (`lane`; the store's own read is
/// paced by `StoreConfig::export_pace`).
pub async fn take_paced(
    store: &Store,
    dest: &Destination,
    kind: Kind,
    pace: f64,
) -> BackupResult<Manifest> {
    let started = OffsetDateTime::now_utc();
    let id = backup_id(started, kind);
    if dest.has_folder(&id).await? {
        return Err(BackupError::Destination {
            destination: dest.to_string(),
            message: format!("a backup {id} exists already"),
        });
    }
    let reading = std::time::Instant::now();
    let (json, parent, last_seq, chain_head, last_change_at, flags, changes) = match kind {
        Kind::Full => {
            let doc = store.export().await?;
            let (seq, head) = doc.chain_end();
            let at = doc.changes.last().map(|c| c.at.clone());
            let flags = count_flags(&doc);
            let changes = doc.changes.len();
            // Compact, like an increment's part: `to_json`'s pretty printing (for people
            // reading `hata export`) doubled a large store's part before compression.
            (encode(&doc, pace)?, None, seq, head, at, flags, changes)
        }
        Kind::Incremental => {
            let parent = newest_complete(dest).await?;
            let counts_from = counts_from(&parent.started_at)?;
            let delta = store.export_delta(parent.last_seq, &counts_from).await?;
            if delta.base_hash != parent.chain_head {
                return Err(BackupError::Chain(format!(
                    "the store's change record does not continue backup {} (its change {} \
                     has hash {:?} here, {:?} in the backup): the store was restored or \
                     replaced since; take a full backup",
                    parent.id, parent.last_seq, delta.base_hash, parent.chain_head
                )));
            }
            let (seq, head, at) = match delta.changes.last() {
                Some(c) => (c.id, c.hash.clone(), Some(c.at.clone())),
                None => (
                    parent.last_seq,
                    parent.chain_head.clone(),
                    parent.last_change_at.clone(),
                ),
            };
            let flags = delta.projects.iter().map(|p| p.flags.len()).sum();
            let changes = delta.changes.len();
            (
                encode(&delta, pace)?,
                Some(parent.id),
                seq,
                head,
                at,
                flags,
                changes,
            )
        }
    };
    let taken = OffsetDateTime::now_utc();
    let read = reading.elapsed();

    let uncompressed_size = json.len() as u64;
    let compressing = std::time::Instant::now();
    let compressed = tokio::task::spawn_blocking(move || zstd::encode_all(json.as_slice(), LEVEL))
        .await
        .map_err(|e| damaged(&id, format!("compression stopped: {e}")))?
        .map_err(|e| damaged(&id, format!("compression failed: {e}")))?;
    // Where a backup's time goes, for whoever tunes it: the consistent read and its JSON,
    // then zstd.
    tracing::info!(backup = %id, read_and_encode_ms = read.as_millis() as u64,
        compress_ms = compressing.elapsed().as_millis() as u64,
        uncompressed_bytes = uncompressed_size, compressed_bytes = compressed.len() as u64,
        "backup part ready");
    let part = Part {
        name: kind.part_name().to_string(),
        size: compressed.len() as u64,
        sha256: hex::encode(Sha256::digest(&compressed)),
        uncompressed_size,
    };
    dest.put(&id, &part.name, Bytes::from(compressed)).await?;
    let manifest = Manifest {
        format: FORMAT.to_string(),
        version: VERSION,
        id: id.clone(),
        kind,
        hata_version: env!("CARGO_PKG_VERSION").to_string(),
        backend: match store.backend() {
            hata_store::Backend::Sqlite => "sqlite",
            hata_store::Backend::Postgres => "postgres",
        }
        .to_string(),
        started_at: hata_store::rfc3339(started),
        taken_at: hata_store::rfc3339(taken),
        parent,
        last_seq,
        chain_head,
        last_change_at,
        flags,
        changes,
        parts: vec![part],
    };
    // Last: only now is the backup complete.
    dest.put(&id, MANIFEST, Bytes::from(manifest.to_json()?))
        .await?;
    Ok(manifest)
}

/// Bytes of JSON between two pauses of a paced backup.
const PACE_BYTES: usize = 4 << 20;

/// `value` as compact JSON, paced (`take_paced`).
fn encode<T: serde::Serialize>(value: &T, pace: f64) -> BackupResult<Vec<u8>> {
    let mut out = Paced {
        out: Vec::new(),
        pace,
        since: std::time::Instant::now(),
        at_last: 0,
    };
    serde_json::to_writer(&mut out, value).map_err(hata_store::StoreError::from)?;
    Ok(out.out)
}

/// A buffer that pauses its writer (this thread: only the lane paces) `pace` times as long as
/// each `PACE_BYTES` took to arrive.
struct Paced {
    out: Vec<u8>,
    pace: f64,
    since: std::time::Instant,
    at_last: usize,
}

impl std::io::Write for Paced {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.extend_from_slice(buf);
        if self.pace > 0.0 && self.out.len() - self.at_last >= PACE_BYTES {
            std::thread::sleep(self.since.elapsed().mul_f64(self.pace));
            self.since = std::time::Instant::now();
            self.at_last = self.out.len();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn damaged(id: &str, what: String) -> BackupError {
    BackupError::Damaged {
        backup: id.to_string(),
        what,
    }
}

fn count_flags(doc: &ExportDocument) -> usize {
    doc.projects.iter().map(|p| p.flags.len()).sum()
}

/// `20261206T020000.123Z-full`: sorts by time, names the kind.
fn backup_id(at: OffsetDateTime, kind: Kind) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z-{}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond(),
        kind.as_str()
    )
}

/// The newest complete backup at `dest`, by `taken_at`.
async fn newest_complete(dest: &Destination) -> BackupResult<Manifest> {
    list(dest)
        .await?
        .into_iter()
        .filter_map(|l| match l {
            Listed::Complete(m) => Some(*m),
            _ => None,
        })
        .max_by(|a, b| (&a.taken_at, &a.id).cmp(&(&b.taken_at, &b.id)))
        .ok_or_else(|| BackupError::NoParent(dest.to_string()))
}

/// The first hour whose evaluation counts an increment after a backup started at `started`
/// carries: the hour before the one it started in. The flusher writes each batch under the
/// hour it drained it, so a batch drained just before the parent's read may land after it;
/// earlier hours are complete in the parent (a batch held through a database outage of more
/// than an hour is the exception, and reaches the next full backup).
fn counts_from(started: &str) -> BackupResult<String> {
    let at = OffsetDateTime::parse(started, &time::format_description::well_known::Rfc3339)
        .map_err(|e| BackupError::Chain(format!("parent's started_at {started:?}: {e}")))?;
    let hour = at - time::Duration::hours(1);
    Ok(format!(
        "{:04}-{:02}-{:02}T{:02}:00:00Z",
        hour.year(),
        u8::from(hour.month()),
        hour.day(),
        hour.hour()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_name_the_kind() {
        let at = time::macros::datetime!(2026-12-06 02:00:01.5 UTC);
        assert_eq!(backup_id(at, Kind::Full), "20261206T020001.500Z-full");
        let later = time::macros::datetime!(2026-12-06 10:00:00 UTC);
        assert!(backup_id(at, Kind::Full) < backup_id(later, Kind::Incremental));
    }

    #[test]
    fn counts_from_is_the_hour_before() {
        assert_eq!(
            counts_from("2026-12-06T00:30:00.123456Z").unwrap(),
            "2026-12-05T23:00:00Z"
        );
    }
}
