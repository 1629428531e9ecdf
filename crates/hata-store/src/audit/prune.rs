//! Retention: removing the oldest entries, as an operator's policy may require, without
//! breaking verification. The chain keeps a signed checkpoint of the last removed entry (the
//! anchor): the kept entries then verify from it as they verified from the genesis.

use hata_audit::Checkpoint;
use sqlx::Row;

use super::append::{head_of, insert_checkpoint, lock_and_read_head};
use crate::error::{StoreError, StoreResult};
use crate::Store;

impl Store {
    /// Removes the entries written before `before` (a time as entries write theirs), except
    /// the last entry, which the chain continues from. Returns how many were removed. Needs
    /// the signing key (without it nothing is removed: the rest could not be anchored).
    pub async fn prune_audit(&self, before: &str) -> StoreResult<u64> {
        let Some(key) = self.audit.key.clone() else {
            return Err(StoreError::Internal(
                "audit retention needs the signing key (audit_key): nothing was removed".into(),
            ));
        };
        let mut tx = self.writer().begin().await?;
        let head = lock_and_read_head(&mut tx, self.backend()).await?;
        let last_old = sqlx::query(
            "SELECT id, hash FROM changes WHERE at < $1 AND id < $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(before)
        .bind(super::append::seq_column(head.seq)?)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = last_old else {
            tx.rollback().await?;
            return Ok(0);
        };
        let anchor = head_of(&row)?;
        let anchor_seq = super::append::seq_column(anchor.seq)?;
        let existing: Option<i64> = sqlx::query("SELECT seq FROM audit_checkpoints WHERE seq = $1")
            .bind(anchor_seq)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("seq"))
            .transpose()?;
        if existing.is_none() {
            let checkpoint = Checkpoint::sign(anchor, time::OffsetDateTime::now_utc(), &key)
                .map_err(|e| StoreError::Internal(format!("audit checkpoint: {e}")))?;
            insert_checkpoint(&mut tx, &checkpoint).await?;
            super::log_checkpoint(&checkpoint);
        }
        let removed = sqlx::query("DELETE FROM changes WHERE id <= $1")
            .bind(anchor_seq)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM audit_checkpoints WHERE seq < $1")
            .bind(anchor_seq)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(
            removed,
            kept_from = anchor.seq + 1,
            "audit retention: removed the oldest entries; the chain is anchored at seq {}",
            anchor.seq
        );
        Ok(removed)
    }
}
