//! Backups of a hata store: full and incremental, to a directory or S3-compatible object
//! storage; listed, verified and restored (`hata backup`, `hata restore`,
//! `GET /api/v1/backups`; the scheduler runs the same functions as jobs).
//!
//! A backup is a folder `<id>/` at the destination holding its parts and, written last, its
//! `manifest.json` ([`Manifest`]): a folder without a manifest is an unfinished backup and is
//! never restored. A full backup's part is the store's export document
//! (`hata_store::ExportDocument`, one consistent read), zstd-compressed; an incremental
//! backup's part is a `hata_store::ExportDelta` onto the backup before it (its parent), so a
//! chain is one full backup and the increments after it. Restoring a chain applies the
//! deltas to the full document, checks the result as an import would, and imports it in one
//! transaction; every part's size and SHA-256, its decompression and the chain's continuity
//! (each delta starts where its parent's change record ended, hash for hash) are checked
//! before anything is written.
//!
//! Not here: when backups run (the scheduler's), and the store's SQL (`hata-store`).
//!
//! - `manifest`: the manifest and its format version.
//! - `destination`: where backups go (`Destination`: a directory or `s3://bucket/prefix`).
//! - `take`: taking a full or incremental backup.
//! - `lane`: taking one while hata serves, on a thread of its own at a lower CPU priority.
//! - `chain`: listing, resolving a chain, verifying it and materialising its document.
//! - `restore`: restoring into a store, to a backup or to a point in time.
//! - `prune`: deleting the backups past their generation count without breaking a chain.

pub mod chain;
pub mod destination;
pub mod lane;
pub mod manifest;
pub mod prune;
pub mod restore;
pub mod take;

pub use chain::{list, verify, Listed, Verified};
pub use destination::{Destination, S3Settings};
pub use lane::take_beside;
pub use manifest::{Kind, Manifest, Part};
pub use prune::{prune, Generations, Pruned};
pub use restore::{restore, RestoreOptions, Restored};
pub use take::take;

/// What can go wrong with a backup. Every message names the backup (and the part) concerned.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The destination could not be read or written (unreachable, refused, full).
    #[error("backup destination {destination}: {message}")]
    Destination {
        destination: String,
        message: String,
    },
    /// No such backup at the destination.
    #[error("no backup {0:?} at {1}")]
    NotFound(String, String),
    /// A backup folder without its manifest: unfinished or damaged.
    #[error("backup {0}: no manifest.json (an unfinished backup, or its manifest was lost)")]
    Incomplete(String),
    /// A part or the manifest is damaged (checksum, size, compression, content).
    #[error("backup {backup}: {what}")]
    Damaged { backup: String, what: String },
    /// Written by a newer hata.
    #[error("backup {backup}: {what} version {found}; this hata reads version {supported}")]
    Newer {
        backup: String,
        what: &'static str,
        found: u32,
        supported: u32,
    },
    /// The increments do not continue one another, or the store does not continue the
    /// backup an increment would follow.
    #[error("{0}")]
    Chain(String),
    /// An incremental backup was asked for with no backup to follow.
    #[error("no complete backup at {0} to follow: take a full backup first")]
    NoParent(String),
    /// `--until` is before the chain's full backup.
    #[error("{0}")]
    Until(String),
    #[error(transparent)]
    Store(#[from] hata_store::StoreError),
}

pub type BackupResult<T> = Result<T, BackupError>;
