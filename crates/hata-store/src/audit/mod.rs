//! The audit log: the change record as a hash chain (the format is `hata-audit`'s).
//!
//! - `append`: the write path's last step: the chain head is taken under the chain lock (a
//!   PostgreSQL advisory lock held to commit; SQLite's writer already queues), the write's
//!   entries are sealed onto it and stored in `changes`, and a checkpoint is signed where the
//!   policy asks for one.
//! - `rows`: a `changes` row as an entry object, built from its columns: what the API serves,
//!   exports carry and verification hashes, so an edited column is an edited entry.
//! - `backfill`: hashes rows written before the chain existed (and after importing an export
//!   that predates it), oldest first, renumbering them without gaps.
//! - `read`: filtered pages, one flag's history, the export's lines, verification.
//! - `checkpoints`: the signing key the store was given, the policy, and time-based
//!   checkpoints.
//! - `prune`: retention, removing the oldest entries behind a signed anchor checkpoint.

mod append;
mod backfill;
mod checkpoints;
mod prune;
mod read;
mod rows;

use std::sync::Arc;

pub(crate) use append::{append, Appended};
pub(crate) use backfill::backfill;
pub(crate) use checkpoints::log_checkpoint;
pub use hata_audit::{Checkpoint, CheckpointPolicy, PublicKey, SigningKey};
pub use read::{push_line, AuditFilter, AuditLine, AuditLines, FlagChange};

/// How the store keeps the audit chain: the key that signs checkpoints (none: entries are
/// chained but no checkpoint is written, as for a store opened only to read) and at which
/// sequence numbers one is due.
#[derive(Clone, Default)]
pub struct AuditSettings {
    pub key: Option<Arc<SigningKey>>,
    pub policy: CheckpointPolicy,
}

impl std::fmt::Debug for AuditSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditSettings")
            .field("key_id", &self.key.as_ref().map(|k| k.key_id().to_string()))
            .field("policy", &self.policy)
            .finish()
    }
}

/// The advisory lock the chain head is taken under on PostgreSQL (any constant unique to
/// hata; `hata` in ASCII).
const CHAIN_LOCK: i64 = 0x6861_7461;
