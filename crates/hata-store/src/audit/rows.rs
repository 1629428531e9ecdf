//! A `changes` row as an entry object, member for member as `hata-audit` defines it. Built
//! from the columns, never from a stored copy of the JSON: verification hashes exactly what
//! the API serves and exports carry, so an edited column is an edited entry.

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::StoreResult;

/// The columns `entry_of` reads, in a `SELECT`.
pub(crate) const ENTRY_COLUMNS: &str = "id, at, actor, actor_name, role, action, resource_type, resource_key, project, environment, old_value, new_value, patch, ip, user_agent, request_id, prev_hash, hash";

/// `changes.actor`: `kind:id`, as the change record has always written it.
pub(crate) fn actor_column(actor: &hata_audit::Actor) -> String {
    format!("{}:{}", actor.kind.as_str(), actor.id)
}

/// The entry a row holds.
pub(crate) fn entry_of(row: &AnyRow) -> StoreResult<Map<String, Value>> {
    let text = |column: &str| -> StoreResult<Value> {
        let value: Option<String> = row.try_get(column)?;
        Ok(value.map_or(Value::Null, Value::String))
    };
    // A stored JSON column that does not parse is kept as its text: the entry then fails
    // its hash, naming the row, instead of failing the whole read.
    let json = |column: &str| -> StoreResult<Value> {
        let value: Option<String> = row.try_get(column)?;
        Ok(value.map_or(Value::Null, |t| {
            serde_json::from_str(&t).unwrap_or(Value::String(t))
        }))
    };
    let actor: String = row.try_get("actor")?;
    let (kind, id) = actor.split_once(':').unwrap_or(("", actor.as_str()));
    let request_id: String = row.try_get("request_id")?;
    let seq: i64 = row.try_get("id")?;
    let mut entry = Map::with_capacity(16);
    entry.insert("seq".into(), Value::from(seq));
    entry.insert("at".into(), text("at")?);
    entry.insert(
        "actor".into(),
        serde_json::json!({"kind": kind, "id": id, "name": text("actor_name")?}),
    );
    entry.insert("role".into(), text("role")?);
    entry.insert("action".into(), text("action")?);
    entry.insert(
        "resource".into(),
        serde_json::json!({"type": text("resource_type")?, "key": text("resource_key")?}),
    );
    entry.insert("project".into(), text("project")?);
    entry.insert("environment".into(), text("environment")?);
    entry.insert("old".into(), json("old_value")?);
    entry.insert("new".into(), json("new_value")?);
    entry.insert("patch".into(), json("patch")?);
    entry.insert("ip".into(), text("ip")?);
    entry.insert("user_agent".into(), text("user_agent")?);
    entry.insert(
        "request_id".into(),
        if request_id.is_empty() {
            Value::Null
        } else {
            Value::String(request_id)
        },
    );
    entry.insert("prev_hash".into(), text("prev_hash")?);
    entry.insert("hash".into(), text("hash")?);
    Ok(entry)
}

/// A checkpoint row as its export line, `{"checkpoint": {…}}`, read as stored: whether it
/// parses and verifies is the verifier's to judge.
pub(crate) fn checkpoint_line(row: &AnyRow) -> StoreResult<Value> {
    let seq: i64 = row.try_get("seq")?;
    Ok(serde_json::json!({"checkpoint": {
        "seq": seq,
        "hash": row.try_get::<String, _>("hash")?,
        "at": row.try_get::<String, _>("at")?,
        "key_id": row.try_get::<String, _>("key_id")?,
        "signature": row.try_get::<String, _>("signature")?,
    }}))
}

/// The columns `checkpoint_line` reads.
pub(crate) const CHECKPOINT_COLUMNS: &str = "seq, hash, at, key_id, signature";
