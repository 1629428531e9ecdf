//! The manifest: what a backup holds, written last, so that its presence means the backup is
//! complete. `format`/`version` are checked before anything else, so that a backup of a newer
//! hata is reported as such.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{BackupError, BackupResult};

/// The value of `format`.
pub const FORMAT: &str = "hata-backup";
/// The manifest version this build writes and reads.
pub const VERSION: u32 = 1;
/// The manifest's file name in a backup's folder.
pub const MANIFEST: &str = "manifest.json";

/// A full backup or an increment onto its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Kind {
    Full,
    Incremental,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Full => "full",
            Kind::Incremental => "incremental",
        }
    }

    /// The name of the backup's one part.
    pub fn part_name(self) -> &'static str {
        match self {
            Kind::Full => "document.json.zst",
            Kind::Incremental => "delta.json.zst",
        }
    }
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Part {
    pub name: String,
    /// Bytes as stored (compressed).
    pub size: u64,
    /// SHA-256 of the bytes as stored, lower-case hex.
    pub sha256: String,
    /// Bytes after decompression.
    pub uncompressed_size: u64,
}

/// A backup's manifest (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// The folder's name: the start time and the kind (`20261206T020000.123Z-full`), so that
    /// names sort by time.
    pub id: String,
    pub kind: Kind,
    /// The hata that wrote it.
    pub hata_version: String,
    /// `sqlite` or `postgres`: where it was taken (a restore goes to either).
    pub backend: String,
    /// When the backup started (RFC 3339 UTC).
    pub started_at: String,
    /// When its read of the store ended: the state it holds is no later than this.
    /// `hata restore --until T` picks the newest backup of a chain with `taken_at <= T`.
    pub taken_at: String,
    /// The backup an increment follows; `None` for a full backup.
    pub parent: Option<String>,
    /// The last change (audit entry) it holds; 0 with none.
    pub last_seq: i64,
    /// The audit chain's head hash at `last_seq`.
    pub chain_head: Option<String>,
    /// When that change was made.
    pub last_change_at: Option<String>,
    /// What it holds in numbers (for `hata backup list`).
    pub flags: usize,
    pub changes: usize,
    pub parts: Vec<Part>,
}

impl Manifest {
    pub fn to_json(&self) -> BackupResult<String> {
        let mut text = serde_json::to_string_pretty(self).map_err(|e| BackupError::Damaged {
            backup: self.id.clone(),
            what: e.to_string(),
        })?;
        text.push('\n');
        Ok(text)
    }

    /// Parses `manifest.json` of backup `id`, the version first.
    pub fn from_json(id: &str, bytes: &[u8]) -> BackupResult<Manifest> {
        let damaged = |what: String| BackupError::Damaged {
            backup: id.to_string(),
            what,
        };
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| damaged(format!("{MANIFEST} is not JSON: {e}")))?;
        if value.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(damaged(format!("{MANIFEST} is not a hata backup manifest")));
        }
        match value.get("version").and_then(Value::as_u64) {
            Some(v) if v == u64::from(VERSION) => {}
            Some(v) if v > u64::from(VERSION) => {
                return Err(BackupError::Newer {
                    backup: id.to_string(),
                    what: "manifest",
                    found: u32::try_from(v).unwrap_or(u32::MAX),
                    supported: VERSION,
                })
            }
            other => return Err(damaged(format!("{MANIFEST}: unknown version {other:?}"))),
        }
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| damaged(format!("{MANIFEST}: {e}")))?;
        if manifest.id != id {
            return Err(damaged(format!(
                "{MANIFEST} names backup {:?}, but it is in folder {id:?}",
                manifest.id
            )));
        }
        Ok(manifest)
    }
}
