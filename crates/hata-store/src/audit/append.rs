//! Appending a write's entries to the chain, in the write's transaction.

use hata_audit::{Checkpoint, Hash, Head, NewEntry, SealedEntry};
use sqlx::{Any, Row, Transaction};

use super::{AuditSettings, CHAIN_LOCK};
use crate::error::{StoreError, StoreResult};
use crate::Backend;

/// What an append did: the new head and the checkpoints it signed (logged once committed).
pub(crate) struct Appended {
    pub checkpoints: Vec<Checkpoint>,
}

/// Takes the chain lock, reads the head, and stores `entries` after it, each with the
/// environment revisions the write produced (`revisions`, the change record's own column).
/// Call it last in a transaction: the lock is held until commit, and every writer takes it
/// after its other locks, so it cannot be part of a deadlock.
pub(crate) async fn append(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    settings: &AuditSettings,
    entries: Vec<NewEntry>,
    revisions: &str,
) -> StoreResult<Appended> {
    let mut appended = Appended {
        checkpoints: Vec::new(),
    };
    if entries.is_empty() {
        return Ok(appended);
    }
    let mut head = lock_and_read_head(tx, backend).await?;
    for entry in entries {
        let at = entry.at;
        let sealed = entry
            .seal(&head)
            .map_err(|e| StoreError::Internal(format!("audit entry: {e}")))?;
        insert(tx, &sealed, revisions).await?;
        head = sealed.head();
        if let Some(key) = settings
            .key
            .as_deref()
            .filter(|_| settings.policy.due(head.seq))
        {
            let checkpoint = Checkpoint::sign(head, at, key)
                .map_err(|e| StoreError::Internal(format!("audit checkpoint: {e}")))?;
            insert_checkpoint(tx, &checkpoint).await?;
            appended.checkpoints.push(checkpoint);
        }
    }
    Ok(appended)
}

/// Takes the chain lock and reads the head after it: one round trip on PostgreSQL (the
/// `hata_audit_head` function of migration 0009), where every write pays it.
pub(super) async fn lock_and_read_head(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
) -> StoreResult<Head> {
    match backend {
        Backend::Postgres => {
            let row = sqlx::query("SELECT id, hash FROM hata_audit_head($1)")
                .bind(CHAIN_LOCK)
                .fetch_optional(&mut **tx)
                .await?;
            match row {
                None => Ok(Head::genesis()),
                Some(row) => head_of(&row),
            }
        }
        Backend::Sqlite => read_head(tx).await,
    }
}

/// Serialises appenders across replicas until this transaction ends.
pub(super) async fn lock_chain(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
) -> StoreResult<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CHAIN_LOCK)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The last entry's seq and hash (genesis for an empty chain). Under the chain lock.
async fn read_head(tx: &mut Transaction<'static, Any>) -> StoreResult<Head> {
    let row = sqlx::query("SELECT id, hash FROM changes ORDER BY id DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        None => Ok(Head::genesis()),
        Some(row) => head_of(&row),
    }
}

/// The head a row (`id`, `hash`) makes.
pub(super) fn head_of(row: &sqlx::any::AnyRow) -> StoreResult<Head> {
    let seq: i64 = row.try_get("id")?;
    let hash: Option<String> = row.try_get("hash")?;
    let hash = hash.as_deref().and_then(Hash::parse).ok_or_else(|| {
        StoreError::Internal(format!(
            "the audit chain's entry at seq {seq} has no valid hash: run `hata audit verify`"
        ))
    })?;
    Ok(Head {
        seq: u64::try_from(seq)
            .map_err(|_| StoreError::Internal(format!("negative change id {seq}")))?,
        hash,
    })
}

/// Stores a sealed entry in its `changes` row (the columns `rows::entry_of` reads back).
pub(super) async fn insert(
    tx: &mut Transaction<'static, Any>,
    sealed: &SealedEntry,
    revisions: &str,
) -> StoreResult<()> {
    let e = &sealed.entry;
    let json = |v: &serde_json::Value| (!v.is_null()).then(|| v.to_string());
    sqlx::query(
        "INSERT INTO changes (id, at, actor, actor_name, role, request_id, action, resource_type, project, environment, resource_key, old_value, new_value, patch, ip, user_agent, revisions, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
    )
    .bind(seq_column(e.seq)?)
    .bind(&e.at)
    .bind(super::rows::actor_column(&e.actor))
    .bind(&e.actor.name)
    .bind(&e.role)
    .bind(e.request_id.as_deref().unwrap_or(""))
    .bind(&e.action)
    .bind(&e.resource.kind)
    .bind(&e.project)
    .bind(&e.environment)
    .bind(&e.resource.key)
    .bind(json(&e.old))
    .bind(json(&e.new))
    .bind(e.patch.to_string())
    .bind(&e.ip)
    .bind(&e.user_agent)
    .bind(revisions)
    .bind(e.prev_hash.to_hex())
    .bind(e.hash.to_hex())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(super) fn seq_column(seq: u64) -> StoreResult<i64> {
    i64::try_from(seq).map_err(|_| StoreError::Internal(format!("seq {seq} out of range")))
}

pub(crate) async fn insert_checkpoint(
    tx: &mut Transaction<'static, Any>,
    c: &Checkpoint,
) -> StoreResult<()> {
    // Replicas may sign the same head at once (time-based checkpoints): one row per seq.
    sqlx::query(
        "INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (seq) DO NOTHING",
    )
    .bind(seq_column(c.seq)?)
    .bind(c.hash.to_hex())
    .bind(&c.at)
    .bind(c.key_id.to_string())
    .bind(c.signature.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
