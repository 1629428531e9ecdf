//! Increments of the export document: what changed in the store since a known state, for
//! incremental backups (`hata-backup`).
//!
//! An [`ExportDelta`] is read in one consistent read transaction, like `Store::export`, and
//! [`ExportDocument::apply_delta`] turns the document it was taken after into exactly the
//! document an export at the delta's moment gives (byte for byte through `to_json`). It holds:
//!
//! - the change record's entries after the base's last one (`changes`), and the id and hash
//!   the chain had at the base (`base_seq`, `base_hash`), so that a delta onto the wrong base
//!   is refused;
//! - every project any of those changes is about, whole (environments, flags, segments):
//!   side effects of a write stay within its project (revisions, the flags rewritten when an
//!   environment comes or goes), so an untouched project is as in the base; and the keys of
//!   all projects, so that deleted ones go;
//! - the small tables whole: `meta`, `sequences`, tokens (with their secret hashes, which the
//!   change record never holds), users (with password hashes and last logins, likewise),
//!   memberships, the audit checkpoints, the last-evaluated times;
//! - evaluation counts of the hours from `counts_from` on (the flusher writes the hour of its
//!   drain, so older hours no longer change), and the oldest hour still stored (retention
//!   removes from the old end).
//!
//! The change record's oldest id is carried too (`changes_from`): audit retention removes
//! entries from the old end.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};

use crate::error::{StoreError, StoreResult};
use crate::evaluations::{decode_evaluation_count, EvaluationCount, FlagEvaluated};
use crate::export::{
    count_key, decode_change, read_all_except, ExportChange, ExportCheckpoint, ExportDocument,
    ExportMember, ExportProject, ExportToken, ExportUser, Sequences, Tables,
};
use crate::{Backend, Store};

/// The value of `format`.
pub const DELTA_FORMAT: &str = "hata-export-delta";
/// The delta version this build writes and reads.
pub const DELTA_VERSION: u32 = 1;

/// What changed since a base state; see the module doc.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportDelta {
    /// Always [`DELTA_FORMAT`].
    pub format: String,
    /// Always [`DELTA_VERSION`].
    pub version: u32,
    /// The last change id of the base (0: none).
    pub base_seq: i64,
    /// The chain's hash at `base_seq` (`None` with no changes, or none hashed).
    pub base_hash: Option<String>,
    /// The oldest change id still stored (`None`: no changes).
    pub changes_from: Option<i64>,
    /// The changes after `base_seq`, by id.
    pub changes: Vec<ExportChange>,
    pub meta: std::collections::BTreeMap<String, String>,
    pub sequences: Sequences,
    /// Every project key, sorted.
    pub project_keys: Vec<String>,
    /// The projects the changes are about, as exported.
    pub projects: Vec<ExportProject>,
    pub tokens: Vec<ExportToken>,
    pub users: Vec<ExportUser>,
    pub memberships: Vec<ExportMember>,
    pub audit_checkpoints: Vec<ExportCheckpoint>,
    /// Counts of hours before this one are as in the base.
    pub counts_from: String,
    /// The oldest hour stored; the base's counts of earlier hours were removed since.
    pub counts_oldest: Option<String>,
    /// The counts of the hours from `counts_from` on, in the export's order.
    pub evaluation_counts: Vec<EvaluationCount>,
    pub flag_last_evaluated: Vec<FlagEvaluated>,
}

impl Store {
    /// What changed after change `base_seq`, read as one consistent snapshot; evaluation
    /// counts from the hour `counts_from` (RFC 3339, `…T14:00:00Z`) on.
    pub async fn export_delta(&self, base_seq: i64, counts_from: &str) -> StoreResult<ExportDelta> {
        let mut tx = self.reader().begin().await?;
        if self.backend() == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let delta = read_delta(&mut tx, self.backend(), base_seq, counts_from).await?;
        tx.commit().await?;
        Ok(delta)
    }
}

async fn read_delta(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    base_seq: i64,
    counts_from: &str,
) -> StoreResult<ExportDelta> {
    // The changes first: what they name decides which projects are read whole. Everything
    // after this runs in the same snapshot.
    let mut changes = Vec::new();
    for r in sqlx::query(
        "SELECT id, at, actor, request_id, action, resource_type, project, resource_key, old_value, new_value, revisions, actor_name, role, environment, patch, ip, user_agent, prev_hash, hash FROM changes WHERE id > $1 ORDER BY id",
    )
    .bind(base_seq)
    .fetch_all(&mut **tx)
    .await?
    {
        changes.push(decode_change(&r)?);
    }
    let base_hash: Option<String> = if base_seq == 0 {
        None
    } else {
        match sqlx::query("SELECT hash FROM changes WHERE id = $1")
            .bind(base_seq)
            .fetch_optional(&mut **tx)
            .await?
        {
            Some(r) => r.try_get("hash")?,
            // Removed by audit retention since: the next entry names it.
            None => changes
                .first()
                .filter(|c| c.id == base_seq + 1)
                .and_then(|c| c.prev_hash.clone()),
        }
    };
    let changes_from: Option<i64> = sqlx::query("SELECT MIN(id) AS m FROM changes")
        .fetch_one(&mut **tx)
        .await?
        .try_get("m")?;
    let touched: BTreeSet<String> = changes
        .iter()
        .filter_map(|c| match c.resource_type {
            crate::change::ResourceType::Project => Some(c.resource_key.clone()),
            _ => c.project.clone(),
        })
        .collect();

    // Whole tables but changes and evaluation counts, through the export's own reader; only
    // the projects the changes touched.
    // Unpaced: a delta reads no evaluation counts here.
    let mut doc = read_all_except(tx, backend, Tables::Delta(&touched), 0.0).await?;
    // The export takes the larger of each sequence and the largest id present; the ids of
    // rows the delta did not read count too.
    let max_ids = sqlx::query(
        "SELECT (SELECT MAX(id) FROM environments) AS e, (SELECT MAX(id) FROM changes) AS c",
    )
    .fetch_one(&mut **tx)
    .await?;
    let (max_env, max_change): (Option<i64>, Option<i64>) =
        (max_ids.try_get("e")?, max_ids.try_get("c")?);
    doc.sequences.environments = doc.sequences.environments.max(max_env.unwrap_or(0));
    doc.sequences.changes = doc.sequences.changes.max(max_change.unwrap_or(0));
    let mut project_keys = Vec::new();
    for r in sqlx::query("SELECT key FROM projects")
        .fetch_all(&mut **tx)
        .await?
    {
        project_keys.push(r.try_get::<String, _>("key")?);
    }
    project_keys.sort();

    let mut evaluation_counts = Vec::new();
    for r in sqlx::query(
        "SELECT project, environment, flag, hour, variant, reason, count FROM evaluation_counts WHERE hour >= $1",
    )
    .bind(counts_from)
    .fetch_all(&mut **tx)
    .await?
    {
        evaluation_counts.push(decode_evaluation_count(&r)?);
    }
    evaluation_counts.sort_by(|a, b| count_key(a).cmp(&count_key(b)));
    let counts_oldest: Option<String> = sqlx::query("SELECT MIN(hour) AS m FROM evaluation_counts")
        .fetch_one(&mut **tx)
        .await?
        .try_get("m")?;

    Ok(ExportDelta {
        format: DELTA_FORMAT.to_string(),
        version: DELTA_VERSION,
        base_seq,
        base_hash,
        changes_from,
        changes,
        meta: doc.meta,
        sequences: doc.sequences,
        project_keys,
        projects: doc.projects,
        tokens: doc.tokens,
        users: doc.users,
        memberships: doc.memberships,
        audit_checkpoints: doc.audit_checkpoints,
        counts_from: counts_from.to_string(),
        counts_oldest,
        evaluation_counts,
        flag_last_evaluated: doc.flag_last_evaluated,
    })
}

/// Why a delta does not apply to a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    #[error("not a hata export delta (format {0:?})")]
    Format(String),
    #[error("delta version {0}: this hata reads version {DELTA_VERSION}")]
    Version(u32),
    #[error("the delta continues change {delta}, but the state before it ends at change {base}")]
    Seq { base: i64, delta: i64 },
    #[error(
        "the delta continues the chain at hash {delta:?}, but the state before it has {base:?}"
    )]
    Hash {
        base: Option<String>,
        delta: Option<String>,
    },
    #[error("change {id} does not follow change {previous}")]
    Gap { previous: i64, id: i64 },
}

impl From<DeltaError> for StoreError {
    fn from(e: DeltaError) -> Self {
        StoreError::Internal(e.to_string())
    }
}

impl ExportDocument {
    /// The last change's id (0 with none) and hash.
    pub fn chain_end(&self) -> (i64, Option<String>) {
        self.changes
            .last()
            .map_or((0, None), |c| (c.id, c.hash.clone()))
    }

    /// Applies `delta`, taken after this document's state; see the module doc. Nothing is
    /// changed when it does not apply.
    pub fn apply_delta(&mut self, delta: ExportDelta) -> Result<(), DeltaError> {
        if delta.format != DELTA_FORMAT {
            return Err(DeltaError::Format(delta.format));
        }
        if delta.version != DELTA_VERSION {
            return Err(DeltaError::Version(delta.version));
        }
        let (seq, hash) = self.chain_end();
        if seq != delta.base_seq {
            return Err(DeltaError::Seq {
                base: seq,
                delta: delta.base_seq,
            });
        }
        if hash != delta.base_hash {
            return Err(DeltaError::Hash {
                base: hash,
                delta: delta.base_hash,
            });
        }
        let mut previous = seq;
        for c in &delta.changes {
            if c.id <= previous {
                return Err(DeltaError::Gap { previous, id: c.id });
            }
            previous = c.id;
        }

        let keys: BTreeSet<&str> = delta.project_keys.iter().map(String::as_str).collect();
        self.projects.retain(|p| keys.contains(p.key.as_str()));
        for p in delta.projects {
            match self.projects.binary_search_by(|q| q.key.cmp(&p.key)) {
                Ok(i) => self.projects[i] = p,
                Err(i) => self.projects.insert(i, p),
            }
        }
        self.meta = delta.meta;
        self.sequences = delta.sequences;
        self.tokens = delta.tokens;
        self.users = delta.users;
        self.memberships = delta.memberships;
        self.audit_checkpoints = delta.audit_checkpoints;
        self.flag_last_evaluated = delta.flag_last_evaluated;
        match delta.changes_from {
            Some(from) => self.changes.retain(|c| c.id >= from),
            None => self.changes.clear(),
        }
        self.changes.extend(delta.changes);

        let from = delta.counts_from.as_str();
        let oldest = delta.counts_oldest.as_deref();
        self.evaluation_counts
            .retain(|c| c.hour.as_str() < from && oldest.is_some_and(|o| c.hour.as_str() >= o));
        // The kept rows all sort before the delta's (hour is compared after project,
        // environment and flag, so a merge, not an append).
        self.evaluation_counts.extend(delta.evaluation_counts);
        self.evaluation_counts
            .sort_by(|a, b| count_key(a).cmp(&count_key(b)));
        Ok(())
    }
}
