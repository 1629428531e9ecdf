//! Reading the audit log: filtered pages (newest first), the export's lines (oldest first,
//! checkpoints after their entries), and verification of the whole stored chain.

use serde_json::{Map, Value};
use sqlx::Row;

use super::rows::{checkpoint_line, entry_of, CHECKPOINT_COLUMNS, ENTRY_COLUMNS};
use crate::change::ActorKind;
use crate::error::StoreResult;
use crate::read::MAX_PAGE;
use crate::records::Page;
use crate::Store;

/// Rows read per query when exporting or verifying.
const BATCH: i64 = 1000;

/// What `GET /audit` filters by; every given filter must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub project: Option<String>,
    pub environment: Option<String>,
    /// A resource type (`flag`), optionally with a key (`flag:checkout`).
    pub resource_type: Option<String>,
    pub resource_key: Option<String>,
    /// `kind:id`, or an id of any kind.
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Entries at or after this time (`at` as entries write it, compared as text).
    pub from: Option<String>,
    /// Entries before this time.
    pub to: Option<String>,
    /// Only entries of these projects (the projects a non-admin caller owns).
    pub among: Option<Vec<String>>,
}

/// One line of an export: an entry object or a checkpoint (`{"checkpoint": {…}}`).
pub type AuditLine = Value;

/// A value bound to a placeholder.
enum Bind {
    Text(String),
    Int(i64),
}

/// `$n` placeholders and their values, in order.
struct Clauses {
    sql: Vec<String>,
    binds: Vec<Bind>,
}

impl Clauses {
    fn push(&mut self, clause: impl FnOnce(&str) -> String, value: String) {
        self.push_bind(clause, Bind::Text(value));
    }

    fn push_bind(&mut self, clause: impl FnOnce(&str) -> String, value: Bind) {
        self.binds.push(value);
        let place = format!("${}", self.binds.len());
        self.sql.push(clause(&place));
    }

    fn any_of(&mut self, column: &str, values: Vec<String>) {
        let mut places = Vec::with_capacity(values.len());
        for value in values {
            self.binds.push(Bind::Text(value));
            places.push(format!("${}", self.binds.len()));
        }
        self.sql.push(if places.is_empty() {
            "1 = 0".into()
        } else {
            format!("{column} IN ({})", places.join(", "))
        });
    }
}

impl AuditFilter {
    fn clauses(&self) -> Clauses {
        let mut c = Clauses {
            sql: Vec::new(),
            binds: Vec::new(),
        };
        let eq = |column: &'static str| move |p: &str| format!("{column} = {p}");
        if let Some(v) = &self.project {
            c.push(eq("project"), v.clone());
        }
        if let Some(v) = &self.environment {
            c.push(eq("environment"), v.clone());
        }
        if let Some(v) = &self.resource_type {
            c.push(eq("resource_type"), v.clone());
        }
        if let Some(v) = &self.resource_key {
            c.push(eq("resource_key"), v.clone());
        }
        if let Some(v) = &self.action {
            c.push(eq("action"), v.clone());
        }
        if let Some(v) = &self.actor {
            let candidates = if v.contains(':') {
                vec![v.clone()]
            } else {
                ActorKind::ALL
                    .iter()
                    .map(|k| format!("{}:{v}", k.as_str()))
                    .collect()
            };
            c.any_of("actor", candidates);
        }
        if let Some(v) = &self.from {
            c.push(|p| format!("at >= {p}"), v.clone());
        }
        if let Some(v) = &self.to {
            c.push(|p| format!("at < {p}"), v.clone());
        }
        if let Some(among) = &self.among {
            c.any_of("project", among.clone());
        }
        c
    }
}

impl Store {
    /// A page of entries matching `filter`, newest first; the cursor is the seq of the last
    /// entry of the page.
    #[tracing::instrument(name = "store.page_audit", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "page_audit"))]
    pub async fn page_audit(
        &self,
        filter: &AuditFilter,
        limit: usize,
        before: Option<i64>,
    ) -> StoreResult<Page<Map<String, Value>>> {
        let _timer = self.timings.start(crate::timing::Operation::PageAudit);
        let limit = limit.clamp(1, MAX_PAGE);
        let mut c = filter.clauses();
        if let Some(before) = before {
            c.push_bind(|p| format!("id < {p}"), Bind::Int(before));
        }
        let conditions = if c.sql.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", c.sql.join(" AND "))
        };
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM changes{conditions} ORDER BY id DESC LIMIT {}",
            limit + 1
        );
        let mut query = sqlx::query(&sql);
        for b in c.binds {
            query = match b {
                Bind::Text(t) => query.bind(t),
                Bind::Int(i) => query.bind(i),
            };
        }
        let rows = query.fetch_all(self.reader()).await?;
        let mut items = rows.iter().map(entry_of).collect::<StoreResult<Vec<_>>>()?;
        let next_cursor = (items.len() > limit).then(|| items[limit - 1]["seq"].to_string());
        items.truncate(limit);
        Ok(Page { items, next_cursor })
    }

    /// The first and last seq of an export of the entries in `[from, to)` (times as entries
    /// write them): from just after the last checkpoint before the range (or the chain's
    /// start), so that the export verifies from a signed anchor; `None` when no entry is in
    /// the range.
    pub async fn audit_seq_range(
        &self,
        from: Option<&str>,
        to: Option<&str>,
    ) -> StoreResult<Option<(i64, i64)>> {
        let row = sqlx::query(
            "SELECT MIN(id) AS first, MAX(id) AS last FROM changes WHERE at >= $1 AND at < $2",
        )
        .bind(from.unwrap_or(""))
        .bind(to.unwrap_or("~"))
        .fetch_one(self.reader())
        .await?;
        let first: Option<i64> = row.try_get("first")?;
        let last: Option<i64> = row.try_get("last")?;
        let Some((first, last)) = first.zip(last) else {
            return Ok(None);
        };
        // Back to the entry after the last checkpoint before the range: its first entry's
        // `prev_hash` is then vouched for by a signed anchor (the first line of the export).
        let anchor: Option<i64> =
            sqlx::query("SELECT MAX(seq) AS seq FROM audit_checkpoints WHERE seq < $1")
                .bind(first)
                .fetch_one(self.reader())
                .await?
                .try_get("seq")?;
        let oldest: Option<i64> = sqlx::query("SELECT MIN(id) AS id FROM changes")
            .fetch_one(self.reader())
            .await?
            .try_get("id")?;
        let start = match anchor {
            Some(seq) => seq + 1,
            None => oldest.unwrap_or(first),
        };
        Ok(Some((start.min(first), last)))
    }
}

/// One change of a flag, reduced to what the daily report counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    /// `kind:id` (`Actor::qualified_id`).
    pub actor: String,
    /// The actor's display name when it had one.
    pub actor_name: Option<String>,
    pub action: String,
    pub project: Option<String>,
    pub flag: String,
    pub at: String,
}

impl Store {
    /// The changes of flags with `from <= at < to`, oldest first (the daily report).
    pub async fn flag_changes(&self, from: &str, to: &str) -> StoreResult<Vec<FlagChange>> {
        let rows = sqlx::query(
            "SELECT actor, actor_name, action, project, resource_key, at FROM changes
             WHERE resource_type = 'flag' AND at >= $1 AND at < $2 ORDER BY id",
        )
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FlagChange {
                    actor: r.try_get("actor")?,
                    actor_name: r.try_get("actor_name")?,
                    action: r.try_get("action")?,
                    project: r.try_get("project")?,
                    flag: r.try_get("resource_key")?,
                    at: r.try_get("at")?,
                })
            })
            .collect()
    }
}

/// The export's lines for entries `first..=last` (all when `None`), oldest first, a batch
/// at a time. The checkpoint at `first - 1`, the anchor, comes first when there is one;
/// checkpoints past the last entry (which only a truncated chain has) come last.
pub struct AuditLines {
    /// The last seq read.
    after: i64,
    last: i64,
    /// Checkpoints from this seq on are still to come (the anchor's, at first).
    checkpoints_from: i64,
    done: bool,
}

impl AuditLines {
    pub fn new(first: Option<i64>, last: Option<i64>) -> AuditLines {
        let after = first.unwrap_or(1).max(1) - 1;
        AuditLines {
            after,
            last: last.unwrap_or(i64::MAX),
            checkpoints_from: after,
            done: false,
        }
    }

    /// The next batch; `None` when the range is done.
    pub async fn next(&mut self, store: &Store) -> StoreResult<Option<Vec<AuditLine>>> {
        while !self.done {
            let rows = sqlx::query(&format!(
                "SELECT {ENTRY_COLUMNS} FROM changes WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3"
            ))
            .bind(self.after)
            .bind(self.last)
            .bind(BATCH)
            .fetch_all(store.reader())
            .await?;
            let full = rows.len() as i64 == BATCH;
            let upto = match rows.last() {
                Some(row) => row.try_get::<i64, _>("id")?,
                None => self.after,
            };
            // The last batch of an unbounded range also takes the checkpoints past the last
            // entry, which only a cut tail has: the verifier reports them as `truncated`.
            let checkpoints_upto = if !full && self.last == i64::MAX {
                i64::MAX
            } else {
                upto
            };
            let checkpoints = sqlx::query(&format!(
                "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE seq >= $1 AND seq <= $2 ORDER BY seq"
            ))
            .bind(self.checkpoints_from)
            .bind(checkpoints_upto)
            .fetch_all(store.reader())
            .await?;
            let seq_of = |cp: &sqlx::any::AnyRow| cp.try_get::<i64, _>("seq").unwrap_or(i64::MAX);
            let mut lines = Vec::with_capacity(rows.len() + checkpoints.len());
            let mut pending = checkpoints.iter().peekable();
            for row in &rows {
                let seq: i64 = row.try_get("id")?;
                // Checkpoints up to the entry before this one (the anchor, first).
                while let Some(cp) = pending.next_if(|cp| seq_of(cp) < seq) {
                    lines.push(checkpoint_line(cp)?);
                }
                lines.push(Value::Object(entry_of(row)?));
            }
            for cp in pending {
                lines.push(checkpoint_line(cp)?);
            }
            self.done = !full;
            self.after = upto;
            self.checkpoints_from = upto.saturating_add(1);
            if !lines.is_empty() {
                return Ok(Some(lines));
            }
        }
        Ok(None)
    }
}

impl Store {
    /// Recomputes the stored chain: every entry's links and hash, every checkpoint's
    /// signature (with this store's key) and place, and, when this store signs checkpoints,
    /// that none the policy requires is missing.
    pub async fn verify_audit(&self) -> StoreResult<hata_audit::Report> {
        self.verify_audit_with(None).await
    }

    /// `verify_audit`, checking signatures with `key` instead of this store's own key.
    pub async fn verify_audit_with(
        &self,
        key: Option<hata_audit::PublicKey>,
    ) -> StoreResult<hata_audit::Report> {
        let mut verifier = hata_audit::Verifier::new();
        if let Some(key) = key.or_else(|| self.audit_public_key()) {
            verifier = verifier
                .with_public_key(key)
                .with_policy(self.audit_policy());
        }
        let mut lines = AuditLines::new(None, None);
        while let Some(batch) = lines.next(self).await? {
            for line in batch {
                push_line(&mut verifier, line);
            }
            if verifier.failed() {
                break;
            }
        }
        Ok(verifier.finish())
    }
}

/// Feeds an export line to a verifier: a checkpoint as its text (the verifier judges its
/// form), an entry as parsed.
pub fn push_line(verifier: &mut hata_audit::Verifier, line: AuditLine) {
    if line.get("checkpoint").is_some() {
        verifier.push_line(&line.to_string());
    } else {
        verifier.push_entry(&line);
    }
}
