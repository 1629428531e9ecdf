//! Chaining rows that have no hash yet: every change recorded before the audit chain
//! existed, and those of an import from an export that predates it. Oldest first, each row
//! is given the next sequence number (old ids may have gaps: PostgreSQL's sequences skip the
//! ids of rolled-back transactions), its `at` with microseconds, its JSON Patch, and its
//! hashes. Idempotent and safe with several replicas migrating at once (the chain lock).

use hata_audit::{Actor, Head, NewEntry, Resource};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::append::{head_of, insert_checkpoint, lock_chain, seq_column};
use crate::error::{StoreError, StoreResult};
use crate::Store;

/// Rows chained per transaction: a long history is chained in bounded transactions.
const BATCH: i64 = 500;

/// Chains every unchained row; returns how many there were.
pub(crate) async fn backfill(store: &Store) -> StoreResult<u64> {
    let mut done = 0;
    loop {
        let mut tx = store.writer().begin().await?;
        lock_chain(&mut tx, store.backend()).await?;
        let rows = sqlx::query(
            "SELECT id, at, actor, actor_name, action, resource_type, resource_key, project, old_value, new_value, request_id
             FROM changes WHERE hash IS NULL ORDER BY id LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(done);
        }
        let first: i64 = rows[0].try_get("id")?;
        // The head is the last chained row before the unchained ones.
        let mut head = {
            let chained =
                sqlx::query("SELECT COUNT(*) AS n FROM changes WHERE hash IS NOT NULL AND id > $1")
                    .bind(first)
                    .fetch_one(&mut *tx)
                    .await?;
            if chained.try_get::<i64, _>("n")? > 0 {
                return Err(StoreError::Internal(format!(
                    "the audit chain has unchained rows (from id {first}) before chained ones: restore from a backup or an export"
                )));
            }
            last_chained(&mut tx).await?
        };
        for row in &rows {
            let old_id: i64 = row.try_get("id")?;
            let sealed = entry_of_legacy(row)?
                .seal(&head)
                .map_err(|e| StoreError::Internal(format!("audit entry {old_id}: {e}")))?;
            sqlx::query(
                "UPDATE changes SET id = $1, at = $2, environment = $3, patch = $4, prev_hash = $5, hash = $6 WHERE id = $7",
            )
            .bind(seq_column(sealed.entry.seq)?)
            .bind(&sealed.entry.at)
            .bind(&sealed.entry.environment)
            .bind(sealed.entry.patch.to_string())
            .bind(sealed.entry.prev_hash.to_hex())
            .bind(sealed.entry.hash.to_hex())
            .bind(old_id)
            .execute(&mut *tx)
            .await?;
            head = sealed.head();
            if let Some(key) = store
                .audit
                .key
                .as_deref()
                .filter(|_| store.audit.policy.due(head.seq))
            {
                let checkpoint =
                    hata_audit::Checkpoint::sign(head, time::OffsetDateTime::now_utc(), key)
                        .map_err(|e| StoreError::Internal(format!("audit checkpoint: {e}")))?;
                insert_checkpoint(&mut tx, &checkpoint).await?;
            }
            done += 1;
        }
        tx.commit().await?;
    }
}

/// The last chained row (genesis when there is none): every row before the first
/// unchained one is chained, and none after it.
async fn last_chained(tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> StoreResult<Head> {
    let row =
        sqlx::query("SELECT id, hash FROM changes WHERE hash IS NOT NULL ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
    match row {
        None => Ok(Head::genesis()),
        Some(row) => head_of(&row),
    }
}

/// The entry of a row written before the chain: what the change record held then, with
/// the environment of an environment's own change.
fn entry_of_legacy(row: &AnyRow) -> StoreResult<NewEntry> {
    let json = |column: &str| -> StoreResult<Value> {
        let text: Option<String> = row.try_get(column)?;
        Ok(text
            .map(|t| serde_json::from_str(&t))
            .transpose()?
            .unwrap_or(Value::Null))
    };
    let id: i64 = row.try_get("id")?;
    let at: String = row.try_get("at")?;
    let at = time::OffsetDateTime::parse(&at, &time::format_description::well_known::Rfc3339)
        .map_err(|e| StoreError::Internal(format!("changes[{id}].at {at:?}: {e}")))?;
    let actor: String = row.try_get("actor")?;
    let (kind, actor_id) = actor
        .split_once(':')
        .ok_or_else(|| StoreError::Internal(format!("changes[{id}].actor {actor:?}")))?;
    let kind = hata_audit::ActorKind::parse(kind)
        .ok_or_else(|| StoreError::Internal(format!("changes[{id}].actor {actor:?}")))?;
    let resource_type: String = row.try_get("resource_type")?;
    let resource_key: String = row.try_get("resource_key")?;
    let request_id: String = row.try_get("request_id")?;
    Ok(NewEntry {
        at,
        actor: Actor {
            kind,
            id: actor_id.to_string(),
            name: row.try_get("actor_name")?,
        },
        role: None,
        action: row.try_get("action")?,
        environment: (resource_type == "environment").then(|| resource_key.clone()),
        resource: Resource {
            kind: resource_type,
            key: resource_key,
        },
        project: row.try_get("project")?,
        old: json("old_value")?,
        new: json("new_value")?,
        patch: None,
        ip: None,
        user_agent: None,
        request_id: (!request_id.is_empty()).then_some(request_id),
    })
}
