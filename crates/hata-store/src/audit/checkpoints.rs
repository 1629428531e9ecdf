//! Checkpoints besides those the policy puts in write transactions: the server signs the
//! head whenever entries were appended since the last checkpoint, at least every
//! `hata_audit::TIME_INTERVAL` and when it shuts down, so the unsigned tail stays short.

use hata_audit::Checkpoint;
use sqlx::Row;

use super::append::{insert_checkpoint, lock_and_read_head, seq_column};
use crate::error::{StoreError, StoreResult};
use crate::Store;

impl Store {
    /// The key that verifies this store's checkpoints, if it was given one to sign them.
    pub fn audit_public_key(&self) -> Option<hata_audit::PublicKey> {
        self.audit.key.as_ref().map(|k| k.public_key())
    }

    /// The policy checkpoints follow.
    pub fn audit_policy(&self) -> hata_audit::CheckpointPolicy {
        self.audit.policy
    }

    /// Signs the chain head when entries came after the last checkpoint; `None` when there
    /// is nothing new to sign or no key. Safe with several replicas (the chain lock, and one
    /// checkpoint per seq).
    pub async fn checkpoint_head(&self) -> StoreResult<Option<Checkpoint>> {
        let Some(key) = self.audit.key.clone() else {
            return Ok(None);
        };
        let mut tx = self.writer().begin().await?;
        let head = lock_and_read_head(&mut tx, self.backend()).await?;
        let last: Option<i64> = sqlx::query("SELECT MAX(seq) AS seq FROM audit_checkpoints")
            .fetch_one(&mut *tx)
            .await?
            .try_get("seq")?;
        if head.seq == 0
            || last.is_some_and(|last| last >= seq_column(head.seq).unwrap_or(i64::MAX))
        {
            tx.rollback().await?;
            return Ok(None);
        }
        let checkpoint = Checkpoint::sign(head, time::OffsetDateTime::now_utc(), &key)
            .map_err(|e| StoreError::Internal(format!("audit checkpoint: {e}")))?;
        insert_checkpoint(&mut tx, &checkpoint).await?;
        tx.commit().await?;
        log_checkpoint(&checkpoint);
        Ok(Some(checkpoint))
    }
}

/// Every checkpoint is also a structured log line: shipped to a log collector, it is a copy
/// outside the database that a truncation of the chain and its checkpoints cannot reach.
pub(crate) fn log_checkpoint(c: &Checkpoint) {
    tracing::info!(
        target: "hata::audit::checkpoint",
        seq = c.seq,
        hash = %c.hash,
        at = %c.at,
        key_id = %c.key_id,
        signature = %c.signature,
        "audit checkpoint"
    );
}
