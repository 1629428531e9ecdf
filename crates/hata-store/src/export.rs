//! Export and import: the whole store as one JSON document, for backups and for moving between
//! SQLite and PostgreSQL.
//!
//! `Store::export` reads every table that holds state in one read transaction (a consistent
//! snapshot) into an [`ExportDocument`]; [`ExportDocument::to_json`] writes it
//! deterministically: every list in a defined order (by key, position or id, compared as bytes
//! so both backends agree), pretty-printed, with a trailing newline. Export → import → export
//! therefore gives the same bytes, whichever backends are involved.
//!
//! `Store::import` loads a document into an empty store in one write transaction, keeping
//! everything as it was: keys, environment ids, versions, revisions, timestamps, token hashes
//! and expiries, change ids and contents, and the id high-water marks (`sequences`), so that an
//! environment created after the move never reuses an old environment's id. It is the one
//! writer besides `Store::write`, on purpose: it restores state (including the change record
//! itself) rather than making a change, so there is nothing to version, audit or bump.
//!
//! The document is checked before anything is written: the format marker and version, that
//! references hold together (environments of tokens, configs of flags, projects and users of
//! memberships, unique ids and emails), and every project, environment, flag and segment
//! through `hata_core::validate` and, per environment, `Snapshot::compile`. Users are checked
//! as creating them checks them (an email as normalised, unique after normalisation; a display
//! name), memberships for a known role. No text anywhere in it may contain U+0000 (PostgreSQL
//! cannot store it, and a store written through `Store::write` never holds it): the items
//! `validate` does not see (tokens, users, memberships, changes, `meta`, telemetry) go through
//! `validate::check_text`. Errors are `StoreError::Invalid` whose fields name the item by key,
//! e.g. `projects[shop].flags[dark-mode].environments.production.default` or
//! `memberships[shop/usr_1].role`.
//!
//! The document has no export time: it would differ between two exports of the same state.
//! The `at` of the last change says how recent the content is.
//!
//! Not exported: sessions, users' login throttling (`failed_logins`, `retry_after`,
//! `locked_until`), two-factor authentication (TOTP secrets, recovery codes) and single
//! sign-on links (a user signing in through the provider after a move is linked again by
//! its verified email). Logins start
//! fresh after a move (everyone logs in again, with a clean failure count, and enrols an
//! authenticator again), and session secrets and TOTP seeds never leave the store. Everything else that is state is
//! kept. The document holds the stream-ticket signing key (`meta`), so tickets issued before a
//! move stay valid after it, token hashes and users' password hashes (argon2id PHC strings,
//! never passwords): treat the file like a secret.

use std::collections::{BTreeMap, BTreeSet};

use crate::evaluations::{
    decode_evaluation_count, decode_flag_evaluated, EvaluationCount, FlagEvaluated,
};
use hata_access::user::{name_problem, normalize_email};
use hata_core::model::{Environment, Flag, Project, Segment};
use hata_core::snapshot::Snapshot;
use hata_core::validate::{
    self, FieldError, ProjectView, ValidationErrors, MAX_ERRORS, NUL_MESSAGE,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::change::{Action, Actor, ActorKind, ResourceType};
use crate::error::{StoreError, StoreResult};
use crate::notice::ChangeNotice;
use crate::read::{decode_flag, decode_segment, decode_token, TOKEN_COLUMNS};
use crate::records::{Role, TokenKind};
use crate::{Backend, Store};

/// The value of `format`.
pub const FORMAT: &str = "hata-export";
/// The document version this build writes and reads.
pub const VERSION: u32 = 1;

/// The whole store. Field order is the order in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportDocument {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// Installation settings from the `meta` table (the stream-ticket signing key).
    pub meta: BTreeMap<String, String>,
    /// The highest id ever handed out per table with generated ids. Can exceed the largest id
    /// present (deleted rows); import continues above it.
    pub sequences: Sequences,
    /// By key.
    pub projects: Vec<ExportProject>,
    /// By id.
    pub tokens: Vec<ExportToken>,
    /// By id (absent in documents written before users existed).
    #[serde(default)]
    pub users: Vec<ExportUser>,
    /// Users' roles in projects, by (project, user id) (absent in documents written before
    /// users existed).
    #[serde(default)]
    pub memberships: Vec<ExportMember>,
    /// The change record (the audit log), by id.
    pub changes: Vec<ExportChange>,
    /// The audit chain's signed checkpoints, by seq (absent in documents written before the
    /// chain existed).
    #[serde(default)]
    pub audit_checkpoints: Vec<ExportCheckpoint>,
    /// Telemetry, by (project, environment, flag, hour, variant, reason). May name flags and
    /// environments that no longer exist.
    pub evaluation_counts: Vec<EvaluationCount>,
    /// Telemetry, by (project, environment, flag).
    pub flag_last_evaluated: Vec<FlagEvaluated>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sequences {
    pub environments: i64,
    pub changes: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportProject {
    pub key: String,
    pub name: String,
    pub description: String,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    /// By position (the order the API lists them in).
    pub environments: Vec<ExportEnvironment>,
    /// By key; each as stored, with its version and timestamps.
    pub flags: Vec<Flag>,
    /// By key; each as stored, with its version and timestamps.
    pub segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportEnvironment {
    /// Kept on import: SDK caches, ETags and stream tickets are keyed on (id, revision).
    pub id: i64,
    pub key: String,
    pub name: String,
    pub description: String,
    pub protected: bool,
    pub position: i64,
    pub version: i64,
    pub revision: i64,
    pub revised_at: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportToken {
    pub id: String,
    pub name: String,
    pub kind: TokenKind,
    pub project: Option<String>,
    pub environment: Option<String>,
    pub role: Option<String>,
    /// The secret is never stored; its hash is what authenticates.
    pub secret_hash: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    /// Rotation state (absent in documents written before rotation existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_secret_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_valid_until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<String>,
}

/// A user: every column of `users` but the login throttling (failed logins, retry-after,
/// lock), which starts fresh after an import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportUser {
    pub id: String,
    /// As stored: trimmed and lower-cased.
    pub email: String,
    pub name: String,
    /// The argon2id PHC string (never the password); `None` for a user who logs in only by
    /// single sign-on.
    pub password_hash: Option<String>,
    pub admin: bool,
    pub disabled: bool,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
    pub password_changed_at: Option<String>,
    pub last_login_at: Option<String>,
}

/// A user's role in a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportMember {
    pub project: String,
    pub user_id: String,
    /// `viewer`, `editor` or `owner`.
    pub role: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportChange {
    pub id: i64,
    pub at: String,
    /// The actor's `Actor::qualified_id` (`kind:id`).
    pub actor: String,
    pub request_id: String,
    pub action: Action,
    pub resource_type: ResourceType,
    pub project: Option<String>,
    pub resource_key: String,
    pub old_value: Option<Value>,
    pub new_value: Option<Value>,
    /// The environment revisions the change produced.
    pub revisions: Value,
    /// The audit entry's members the change record did not always have (absent in
    /// documents written before the audit chain; such changes are chained on import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// A signed checkpoint of the audit chain, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportCheckpoint {
    pub seq: i64,
    pub hash: String,
    pub at: String,
    pub key_id: String,
    pub signature: String,
}

/// How much an import loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub projects: usize,
    pub environments: usize,
    pub flags: usize,
    pub segments: usize,
    pub tokens: usize,
    pub users: usize,
    pub memberships: usize,
    pub changes: usize,
    pub evaluation_counts: usize,
    pub flag_last_evaluated: usize,
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} projects, {} environments, {} flags, {} segments, {} tokens, {} users, \
             {} memberships, {} changes, {} evaluation counts, {} last-evaluated times",
            self.projects,
            self.environments,
            self.flags,
            self.segments,
            self.tokens,
            self.users,
            self.memberships,
            self.changes,
            self.evaluation_counts,
            self.flag_last_evaluated
        )
    }
}

/// Every table that holds state; an import needs them all empty (`meta` aside, see
/// `Store::import`). `sessions` is not exported, but a store with sessions has users.
pub(crate) const STATE_TABLES: [&str; 15] = [
    "projects",
    "environments",
    "flags",
    "segments",
    "tokens",
    "users",
    "memberships",
    "sessions",
    "user_totp",
    "recovery_codes",
    "user_identities",
    "changes",
    "audit_checkpoints",
    "evaluation_counts",
    "flag_last_evaluated",
];

fn invalid(field: impl Into<String>, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(ValidationErrors(vec![FieldError::new(field, message)]))
}

impl ExportDocument {
    /// Everything `Store::import` checks before it writes (shape, references, validation,
    /// compilation), without a store: `hata backup verify` runs it on what a restore would
    /// import.
    pub fn check(&self) -> StoreResult<()> {
        check_document(self)
    }

    /// The document as written by `hata export`: pretty-printed, ending in a newline.
    pub fn to_json(&self) -> StoreResult<String> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        Ok(text)
    }

    /// Parses a document, checking the format marker and version before the shape, so that a
    /// file from a newer hata is reported as such rather than as an unknown field.
    pub fn from_json(text: &str) -> StoreResult<ExportDocument> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| invalid("", format!("not a JSON document: {e}")))?;
        match value.get("format").and_then(Value::as_str) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(invalid(
                    "format",
                    format!("must be {FORMAT:?}, got {other:?}"),
                ))
            }
            None => {
                return Err(invalid(
                    "format",
                    format!("missing: not a hata export (expected \"format\": {FORMAT:?})"),
                ))
            }
        }
        match value.get("version").and_then(Value::as_u64) {
            Some(v) if v == u64::from(VERSION) => {}
            other => {
                return Err(invalid(
                    "version",
                    format!(
                        "this hata reads version {VERSION}, the document has {}",
                        other.map_or("none".to_string(), |v| v.to_string())
                    ),
                ))
            }
        }
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            invalid(
                if path == "." { String::new() } else { path },
                e.into_inner().to_string(),
            )
        })
    }
}

// ---- export --------------------------------------------------------------------------------

impl Store {
    /// Everything in the store, read as one consistent snapshot.
    #[tracing::instrument(name = "store.export", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "export"))]
    pub async fn export(&self) -> StoreResult<ExportDocument> {
        let _timer = self.timings.start(crate::timing::Operation::Export);
        let mut tx = self.reader().begin().await?;
        if self.backend() == Backend::Postgres {
            // READ COMMITTED (the default) gives each statement its own snapshot; the export
            // must see one state across all its queries.
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        // On SQLite (WAL) a read transaction sees one snapshot from its first read on.
        let doc = read_all_except(
            &mut tx,
            self.backend(),
            Tables::All,
            self.config.export_pace,
        )
        .await?;
        tx.commit().await?;
        Ok(doc)
    }
}

/// Which tables `read_all_except` reads.
pub(crate) enum Tables<'a> {
    /// Everything: an export.
    All,
    /// For a delta (`crate::delta`): only these projects, and neither the change record nor
    /// evaluation counts (the delta reads what it needs of them itself).
    Delta(&'a BTreeSet<String>),
}

impl Tables<'_> {
    fn project(&self, key: &str) -> bool {
        match self {
            Tables::All => true,
            Tables::Delta(keys) => keys.contains(key),
        }
    }

    fn whole(&self) -> bool {
        matches!(self, Tables::All)
    }
}

/// Evaluation-count rows an export reads between two pauses (`StoreConfig::export_pace`).
pub const PACE_BATCH: usize = 10_000;

pub(crate) async fn read_all_except(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    tables: Tables<'_>,
    pace: f64,
) -> StoreResult<ExportDocument> {
    let mut meta = BTreeMap::new();
    for r in sqlx::query("SELECT key, value FROM meta")
        .fetch_all(&mut **tx)
        .await?
    {
        meta.insert(r.try_get("key")?, r.try_get("value")?);
    }

    let mut projects: Vec<ExportProject> = Vec::new();
    for r in
        sqlx::query("SELECT key, name, description, version, created_at, updated_at FROM projects")
            .fetch_all(&mut **tx)
            .await?
    {
        let key: String = r.try_get("key")?;
        if !tables.project(&key) {
            continue;
        }
        projects.push(ExportProject {
            key,
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            version: r.try_get("version")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            environments: Vec::new(),
            flags: Vec::new(),
            segments: Vec::new(),
        });
    }
    // Sorted here, not by ORDER BY: PostgreSQL sorts text by the database's collation, which
    // need not be byte order, and both backends must write the same file.
    projects.sort_by(|a, b| a.key.cmp(&b.key));
    let index: BTreeMap<String, usize> = projects
        .iter()
        .enumerate()
        .map(|(i, p)| (p.key.clone(), i))
        .collect();
    let project_of = |key: &str| {
        index
            .get(key)
            .copied()
            .ok_or_else(|| StoreError::Internal(format!("row of unknown project {key:?}")))
    };

    for r in sqlx::query(
        "SELECT project, id, key, name, description, protected, position, version, revision, revised_at, created_at, updated_at FROM environments",
    )
    .fetch_all(&mut **tx)
    .await?
    {
        let project: String = r.try_get("project")?;
        if !tables.project(&project) {
            continue;
        }
        let env = ExportEnvironment {
            id: r.try_get("id")?,
            key: r.try_get("key")?,
            name: r.try_get("name")?,
            description: r.try_get("description")?,
            protected: r.try_get::<i64, _>("protected")? != 0,
            position: r.try_get("position")?,
            version: r.try_get("version")?,
            revision: r.try_get("revision")?,
            revised_at: r.try_get("revised_at")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        };
        projects[project_of(&project)?].environments.push(env);
    }
    for r in sqlx::query("SELECT project, doc FROM flags")
        .fetch_all(&mut **tx)
        .await?
    {
        let project: String = r.try_get("project")?;
        if !tables.project(&project) {
            continue;
        }
        projects[project_of(&project)?].flags.push(decode_flag(&r)?);
    }
    for r in sqlx::query("SELECT project, doc FROM segments")
        .fetch_all(&mut **tx)
        .await?
    {
        let project: String = r.try_get("project")?;
        if !tables.project(&project) {
            continue;
        }
        projects[project_of(&project)?]
            .segments
            .push(decode_segment(&r)?);
    }
    for p in &mut projects {
        p.environments
            .sort_by(|a, b| (a.position, &a.key).cmp(&(b.position, &b.key)));
        p.flags.sort_by(|a, b| a.key.cmp(&b.key));
        p.segments.sort_by(|a, b| a.key.cmp(&b.key));
    }

    let mut tokens = Vec::new();
    for r in sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM tokens"))
        .fetch_all(&mut **tx)
        .await?
    {
        let t = decode_token(&r)?;
        tokens.push(ExportToken {
            id: t.id,
            name: t.name,
            kind: t.kind,
            project: t.project,
            environment: t.environment,
            role: t.role.map(|r| r.as_str().to_string()),
            secret_hash: t.secret_hash,
            created_at: t.created_at,
            expires_at: t.expires_at,
            previous_secret_hash: t.previous_secret_hash,
            previous_valid_until: t.previous_valid_until,
            rotated_at: t.rotated_at,
        });
    }
    tokens.sort_by(|a, b| a.id.cmp(&b.id));

    let mut users = Vec::new();
    for r in sqlx::query(
        "SELECT id, email, name, password_hash, admin, disabled, version, created_at, updated_at, password_changed_at, last_login_at FROM users",
    )
    .fetch_all(&mut **tx)
    .await?
    {
        users.push(ExportUser {
            id: r.try_get("id")?,
            email: r.try_get("email")?,
            name: r.try_get("name")?,
            password_hash: r.try_get("password_hash")?,
            admin: r.try_get::<i64, _>("admin")? != 0,
            disabled: r.try_get::<i64, _>("disabled")? != 0,
            version: r.try_get("version")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            password_changed_at: r.try_get("password_changed_at")?,
            last_login_at: r.try_get("last_login_at")?,
        });
    }
    users.sort_by(|a, b| a.id.cmp(&b.id));

    let mut memberships = Vec::new();
    for r in sqlx::query("SELECT project, user_id, role, created_at, updated_at FROM memberships")
        .fetch_all(&mut **tx)
        .await?
    {
        memberships.push(ExportMember {
            project: r.try_get("project")?,
            user_id: r.try_get("user_id")?,
            role: r.try_get("role")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        });
    }
    memberships.sort_by(|a, b| (&a.project, &a.user_id).cmp(&(&b.project, &b.user_id)));

    let mut changes = Vec::new();
    if tables.whole() {
        for r in sqlx::query(
            "SELECT id, at, actor, request_id, action, resource_type, project, resource_key, old_value, new_value, revisions, actor_name, role, environment, patch, ip, user_agent, prev_hash, hash FROM changes ORDER BY id",
        )
        .fetch_all(&mut **tx)
        .await?
        {
            changes.push(decode_change(&r)?);
        }
    }
    let mut audit_checkpoints = Vec::new();
    for r in
        sqlx::query("SELECT seq, hash, at, key_id, signature FROM audit_checkpoints ORDER BY seq")
            .fetch_all(&mut **tx)
            .await?
    {
        audit_checkpoints.push(ExportCheckpoint {
            seq: r.try_get("seq")?,
            hash: r.try_get("hash")?,
            at: r.try_get("at")?,
            key_id: r.try_get("key_id")?,
            signature: r.try_get("signature")?,
        });
    }

    let mut evaluation_counts = Vec::new();
    if tables.whole() {
        // A stream, not one fetch: the largest table, read in batches with a pause after each
        // when paced.
        let mut rows = sqlx::query(
            "SELECT project, environment, flag, hour, variant, reason, count FROM evaluation_counts",
        )
        .fetch(&mut **tx);
        let mut batch = std::time::Instant::now();
        while let Some(r) = futures::TryStreamExt::try_next(&mut rows).await? {
            evaluation_counts.push(decode_evaluation_count(&r)?);
            if pace > 0.0 && evaluation_counts.len() % PACE_BATCH == 0 {
                tokio::time::sleep(batch.elapsed().mul_f64(pace)).await;
                batch = std::time::Instant::now();
            }
        }
    }
    evaluation_counts.sort_by(|a, b| count_key(a).cmp(&count_key(b)));

    let mut flag_last_evaluated = Vec::new();
    for r in sqlx::query("SELECT project, environment, flag, at FROM flag_last_evaluated")
        .fetch_all(&mut **tx)
        .await?
    {
        flag_last_evaluated.push(decode_flag_evaluated(&r)?);
    }
    flag_last_evaluated.sort_by(|a, b| {
        (&a.project, &a.environment, &a.flag).cmp(&(&b.project, &b.environment, &b.flag))
    });

    let max_env_id = projects
        .iter()
        .flat_map(|p| p.environments.iter().map(|e| e.id))
        .max()
        .unwrap_or(0);
    let max_change_id = changes.last().map_or(0, |c| c.id);
    let sequences = Sequences {
        environments: read_sequence(tx, backend, "environments")
            .await?
            .max(max_env_id),
        changes: read_sequence(tx, backend, "changes")
            .await?
            .max(max_change_id),
    };

    Ok(ExportDocument {
        format: FORMAT.to_string(),
        version: VERSION,
        meta,
        sequences,
        projects,
        tokens,
        users,
        memberships,
        changes,
        audit_checkpoints,
        evaluation_counts,
        flag_last_evaluated,
    })
}

pub(crate) fn count_key(c: &EvaluationCount) -> (&str, &str, &str, &str, &str, &str) {
    (
        &c.project,
        &c.environment,
        &c.flag,
        &c.hour,
        &c.variant,
        &c.reason,
    )
}

pub(crate) fn decode_change(r: &AnyRow) -> StoreResult<ExportChange> {
    let json = |column: &str| -> StoreResult<Option<Value>> {
        let text: Option<String> = r.try_get(column)?;
        Ok(text.map(|t| serde_json::from_str(&t)).transpose()?)
    };
    Ok(ExportChange {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        request_id: r.try_get("request_id")?,
        action: column(r, "action", Action::parse)?,
        resource_type: column(r, "resource_type", ResourceType::parse)?,
        project: r.try_get("project")?,
        resource_key: r.try_get("resource_key")?,
        old_value: json("old_value")?,
        new_value: json("new_value")?,
        revisions: json("revisions")?.unwrap_or(Value::Null),
        actor_name: r.try_get("actor_name")?,
        role: r.try_get("role")?,
        environment: r.try_get("environment")?,
        patch: json("patch")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// A text column holding one of a fixed set of words.
fn column<T>(r: &AnyRow, name: &str, parse: fn(&str) -> Option<T>) -> StoreResult<T> {
    let text: String = r.try_get(name)?;
    parse(&text).ok_or_else(|| StoreError::Internal(format!("unknown {name} {text:?} in changes")))
}

/// The highest id `table` has handed out (0 if none). `table` is a literal of this module
/// (`environments` or `changes`, the tables with generated ids), never input.
pub(crate) async fn read_sequence(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    table: &str,
) -> StoreResult<i64> {
    let row = match backend {
        Backend::Sqlite => {
            sqlx::query("SELECT seq AS last FROM sqlite_sequence WHERE name = $1")
                .bind(table)
                .fetch_optional(&mut **tx)
                .await?
        }
        Backend::Postgres => {
            // A fresh sequence has last_value 1 with is_called false: nothing handed out yet.
            let sequence: String = sqlx::query("SELECT pg_get_serial_sequence($1, 'id') AS name")
                .bind(table)
                .fetch_one(&mut **tx)
                .await?
                .try_get("name")?;
            sqlx::query(&format!(
                "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END AS last FROM {sequence}"
            ))
            .fetch_optional(&mut **tx)
            .await?
        }
    };
    Ok(row
        .map(|r| r.try_get::<i64, _>("last"))
        .transpose()?
        .unwrap_or(0))
}

// ---- import --------------------------------------------------------------------------------

impl Store {
    /// Loads `doc` into this store, which must be empty (no projects, tokens, users, sessions,
    /// changes or evaluation data; `StoreError::NotEmpty` otherwise). The document is checked first
    /// (`StoreError::Invalid`, naming each bad item); then everything is written in one
    /// transaction, so an import is either complete or leaves the store as it was.
    ///
    /// `meta` entries overwrite the store's: a server started on the empty store may have
    /// created its own ticket key, and the document's must win for old tickets to stay valid.
    pub async fn import(&self, doc: &ExportDocument) -> StoreResult<ImportSummary> {
        self.load(doc, Existing::Refuse).await
    }

    /// Like [`Store::import`], but whatever the store holds is deleted first, in the same
    /// transaction (`hata restore --force`): the store ends up holding exactly the document,
    /// or, if anything fails, exactly what it held before.
    pub async fn import_replacing(&self, doc: &ExportDocument) -> StoreResult<ImportSummary> {
        self.load(doc, Existing::Replace).await
    }

    async fn load(&self, doc: &ExportDocument, existing: Existing) -> StoreResult<ImportSummary> {
        check_document(doc)?;
        let mut tx = self.writer().begin().await?;
        match self.backend() {
            // Concurrent writers (another process, a running server) wait until the import
            // committed; without the lock one could slip in between the emptiness check and
            // the commit.
            Backend::Postgres => {
                sqlx::query(
                    "LOCK TABLE projects, environments, flags, segments, tokens, users, memberships, \
                     sessions, user_totp, recovery_codes, user_identities, changes, audit_checkpoints, \
                     evaluation_counts, flag_last_evaluated, meta \
                     IN SHARE ROW EXCLUSIVE MODE",
                )
                .execute(&mut *tx)
                .await?;
            }
            // A write as the first statement takes SQLite's database write lock up front.
            Backend::Sqlite => {
                sqlx::query("UPDATE meta SET value = value WHERE key = ''")
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let mut found = Vec::new();
        for table in STATE_TABLES {
            let n: i64 = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table}"))
                .fetch_one(&mut *tx)
                .await?
                .try_get("n")?;
            if n > 0 {
                found.push(format!("{table}: {n} rows"));
            }
        }
        if !found.is_empty() {
            if existing == Existing::Refuse {
                return Err(StoreError::NotEmpty(found));
            }
            // Children before parents; the rest cascades from projects and users anyway.
            for table in STATE_TABLES.iter().rev() {
                sqlx::query(&format!("DELETE FROM {table}"))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if self.backend() == Backend::Postgres {
            // Changes of a document written before the audit chain have no hashes; the
            // trigger that refuses such rows from outdated replicas lets an import through.
            sqlx::query("SET LOCAL hata.importing = 'on'")
                .execute(&mut *tx)
                .await?;
        }
        let summary = write_all(&mut tx, doc).await?;
        // Last, because PostgreSQL's setval is not undone by a rollback; an import that failed
        // earlier leaves the sequences alone.
        for (table, last) in [
            ("environments", doc.sequences.environments),
            ("changes", doc.sequences.changes),
        ] {
            set_sequence(&mut tx, self.backend(), table, last).await?;
        }
        if self.backend() == Backend::Postgres {
            // Servers on other replicas reload everything they derive, as after a lost
            // connection.
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(crate::listen::CHANNEL)
                .bind(serde_json::to_string(&ChangeNotice::Resync)?)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        // Changes of a document written before the audit chain existed join it now.
        crate::audit::backfill(self).await?;
        self.publish(vec![ChangeNotice::Resync]);
        Ok(summary)
    }
}

/// What an import does with a store that is not empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Existing {
    Refuse,
    Replace,
}

async fn write_all(
    tx: &mut Transaction<'static, Any>,
    doc: &ExportDocument,
) -> StoreResult<ImportSummary> {
    let mut summary = ImportSummary::default();
    for (key, value) in &doc.meta {
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&mut **tx)
        .await?;
    }
    for p in &doc.projects {
        sqlx::query("INSERT INTO projects (key, name, description, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&p.key)
            .bind(&p.name)
            .bind(&p.description)
            .bind(p.version)
            .bind(&p.created_at)
            .bind(&p.updated_at)
            .execute(&mut **tx)
            .await?;
        summary.projects += 1;
        for e in &p.environments {
            sqlx::query(
                "INSERT INTO environments (id, project, key, name, description, protected, position, version, revision, revised_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(e.id)
            .bind(&p.key)
            .bind(&e.key)
            .bind(&e.name)
            .bind(&e.description)
            .bind(e.protected as i64)
            .bind(e.position)
            .bind(e.version)
            .bind(e.revision)
            .bind(&e.revised_at)
            .bind(&e.created_at)
            .bind(&e.updated_at)
            .execute(&mut **tx)
            .await?;
            summary.environments += 1;
        }
        for (table, key, doc_text, version, created_at, updated_at) in p
            .flags
            .iter()
            .map(|f| {
                stored_doc(f).map(|text| {
                    (
                        "flags",
                        &f.key,
                        text,
                        f.version,
                        &f.created_at,
                        &f.updated_at,
                    )
                })
            })
            .chain(p.segments.iter().map(|s| {
                stored_doc(s).map(|text| {
                    (
                        "segments",
                        &s.key,
                        text,
                        s.version,
                        &s.created_at,
                        &s.updated_at,
                    )
                })
            }))
            .collect::<StoreResult<Vec<_>>>()?
        {
            sqlx::query(&format!(
                "INSERT INTO {table} (project, key, doc, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)"
            ))
            .bind(&p.key)
            .bind(key)
            .bind(doc_text)
            .bind(version)
            .bind(created_at)
            .bind(updated_at)
            .execute(&mut **tx)
            .await?;
        }
        for f in &p.flags {
            crate::flag_list::ListColumns::of(f)?
                .write(tx, &p.key, &f.key, f.version)
                .await?;
        }
        summary.flags += p.flags.len();
        summary.segments += p.segments.len();
    }
    for t in &doc.tokens {
        sqlx::query(
            "INSERT INTO tokens (id, name, kind, project, environment, role, secret_hash, created_at, expires_at, previous_secret_hash, previous_valid_until, rotated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&t.id)
        .bind(&t.name)
        .bind(t.kind.as_str())
        .bind(&t.project)
        .bind(&t.environment)
        .bind(&t.role)
        .bind(&t.secret_hash)
        .bind(&t.created_at)
        .bind(&t.expires_at)
        .bind(&t.previous_secret_hash)
        .bind(&t.previous_valid_until)
        .bind(&t.rotated_at)
        .execute(&mut **tx)
        .await?;
        summary.tokens += 1;
    }
    for u in &doc.users {
        // The login throttling starts fresh: failed_logins takes its default 0, retry_after and
        // locked_until stay NULL.
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, admin, disabled, version, created_at, updated_at, password_changed_at, last_login_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&u.id)
        .bind(&u.email)
        .bind(&u.name)
        .bind(&u.password_hash)
        .bind(i64::from(u.admin))
        .bind(i64::from(u.disabled))
        .bind(u.version)
        .bind(&u.created_at)
        .bind(&u.updated_at)
        .bind(&u.password_changed_at)
        .bind(&u.last_login_at)
        .execute(&mut **tx)
        .await?;
        summary.users += 1;
    }
    for m in &doc.memberships {
        sqlx::query(
            "INSERT INTO memberships (project, user_id, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&m.project)
        .bind(&m.user_id)
        .bind(&m.role)
        .bind(&m.created_at)
        .bind(&m.updated_at)
        .execute(&mut **tx)
        .await?;
        summary.memberships += 1;
    }
    for c in &doc.changes {
        // Stored compactly, as the write path stores them; serde_json keeps member order, so
        // the text reads back as the same value.
        sqlx::query(
            "INSERT INTO changes (id, at, actor, request_id, action, resource_type, project, resource_key, old_value, new_value, revisions, actor_name, role, environment, patch, ip, user_agent, prev_hash, hash)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .bind(c.id)
        .bind(&c.at)
        .bind(&c.actor)
        .bind(&c.request_id)
        .bind(c.action.as_str())
        .bind(c.resource_type.as_str())
        .bind(&c.project)
        .bind(&c.resource_key)
        .bind(c.old_value.as_ref().map(Value::to_string))
        .bind(c.new_value.as_ref().map(Value::to_string))
        .bind(c.revisions.to_string())
        .bind(&c.actor_name)
        .bind(&c.role)
        .bind(&c.environment)
        .bind(c.patch.as_ref().map(Value::to_string))
        .bind(&c.ip)
        .bind(&c.user_agent)
        .bind(&c.prev_hash)
        .bind(&c.hash)
        .execute(&mut **tx)
        .await?;
        summary.changes += 1;
    }
    // The chain and its checkpoints as they were: a restored store still verifies.
    for c in &doc.audit_checkpoints {
        sqlx::query(
            "INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(c.seq)
        .bind(&c.hash)
        .bind(&c.at)
        .bind(&c.key_id)
        .bind(&c.signature)
        .execute(&mut **tx)
        .await?;
    }
    for c in &doc.evaluation_counts {
        sqlx::query(
            "INSERT INTO evaluation_counts (project, environment, flag, hour, variant, reason, count)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&c.project)
        .bind(&c.environment)
        .bind(&c.flag)
        .bind(&c.hour)
        .bind(&c.variant)
        .bind(&c.reason)
        .bind(c.count)
        .execute(&mut **tx)
        .await?;
        summary.evaluation_counts += 1;
    }
    for e in &doc.flag_last_evaluated {
        sqlx::query(
            "INSERT INTO flag_last_evaluated (project, environment, flag, at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&e.project)
        .bind(&e.environment)
        .bind(&e.flag)
        .bind(&e.at)
        .execute(&mut **tx)
        .await?;
        summary.flag_last_evaluated += 1;
    }
    Ok(summary)
}

/// A flag or segment as the `doc` column holds it (compact JSON, like the write path).
fn stored_doc<T: Serialize>(item: &T) -> StoreResult<String> {
    Ok(serde_json::to_string(item)?)
}

/// Makes `table`'s generated ids continue above `last`. The rows were inserted with explicit
/// ids, which neither backend's generator notices by itself.
async fn set_sequence(
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    table: &str,
    last: i64,
) -> StoreResult<()> {
    match backend {
        Backend::Sqlite => {
            // AUTOINCREMENT takes max(largest id present, sqlite_sequence.seq) + 1. The table
            // has no key on `name`, hence delete-then-insert.
            sqlx::query("DELETE FROM sqlite_sequence WHERE name = $1")
                .bind(table)
                .execute(&mut **tx)
                .await?;
            if last > 0 {
                sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES ($1, $2)")
                    .bind(table)
                    .bind(last)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Backend::Postgres => {
            // setval(…, 0) is out of range; (1, false) means "next is 1".
            let sql = if last > 0 {
                "SELECT setval(pg_get_serial_sequence($1, 'id'), $2) AS v"
            } else {
                "SELECT setval(pg_get_serial_sequence($1, 'id'), 1, false) AS v"
            };
            let mut query = sqlx::query(sql).bind(table);
            if last > 0 {
                query = query.bind(last);
            }
            query.execute(&mut **tx).await?;
        }
    }
    Ok(())
}

// ---- checks --------------------------------------------------------------------------------

/// Collects what is wrong with a document, by the path of the offending item.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, at: impl Into<String>, message: impl Into<String>) {
        if self.0.len() < MAX_ERRORS {
            self.0.push(FieldError::new(at, message));
        }
    }

    /// Adds validation errors of the item at `at`, whose fields are relative to it.
    fn nested(&mut self, at: &str, errors: ValidationErrors) {
        for e in errors.0 {
            let field = if e.field.is_empty() {
                at.to_string()
            } else if e.field.starts_with('[') {
                format!("{at}{}", e.field)
            } else {
                format!("{at}.{}", e.field)
            };
            self.add(field, e.message);
        }
    }

    fn timestamp(&mut self, at: impl std::fmt::Display, field: &str, value: &str) {
        if time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
            .is_err()
        {
            self.add(
                format!("{at}.{field}"),
                format!("not an RFC 3339 timestamp: {value:?}"),
            );
        }
    }

    fn unique<'a>(&mut self, seen: &mut BTreeSet<&'a str>, at: &str, what: &str, key: &'a str) {
        if !seen.insert(key) {
            self.add(at, format!("duplicate {what} {key:?}"));
        }
    }
}

/// Everything `Store::import` checks before it writes; see the module doc.
pub(crate) fn check_document(doc: &ExportDocument) -> StoreResult<()> {
    let mut p = Problems::default();
    if doc.format != FORMAT {
        p.add("format", format!("must be {FORMAT:?}"));
    }
    if doc.version != VERSION {
        p.add("version", format!("this hata reads version {VERSION}"));
    }

    if let Err(e) = validate::check_text(&doc.meta) {
        p.nested("meta", e);
    }

    let mut project_keys = BTreeSet::new();
    let mut env_ids = BTreeSet::new();
    // (project, environment) pairs, for tokens.
    let mut environments: BTreeSet<(&str, &str)> = BTreeSet::new();
    for project in &doc.projects {
        let at = format!("projects[{}]", shown(&project.key));
        p.unique(&mut project_keys, &at, "project", &project.key);
        let as_project = Project {
            key: project.key.clone(),
            name: project.name.clone(),
            description: project.description.clone(),
        };
        if let Err(e) = validate::validate_project(&as_project) {
            p.nested(&at, e);
        }
        if project.version < 1 {
            p.add(format!("{at}.version"), "must be at least 1");
        }
        p.timestamp(&at, "created_at", &project.created_at);
        p.timestamp(&at, "updated_at", &project.updated_at);
        check_project(&mut p, &at, project, &mut env_ids);
        for e in &project.environments {
            environments.insert((&project.key, &e.key));
        }
    }
    if let Some(&max) = env_ids.last() {
        if doc.sequences.environments < max {
            p.add(
                "sequences.environments",
                format!(
                    "is {}, below the largest environment id {max}",
                    doc.sequences.environments
                ),
            );
        }
    }

    let mut token_ids = BTreeSet::new();
    let mut hashes = BTreeSet::new();
    for t in &doc.tokens {
        let at = format!("tokens[{}]", shown(&t.id));
        p.unique(&mut token_ids, &at, "token id", &t.id);
        if let Err(e) = validate::check_text(t) {
            p.nested(&at, e);
        }
        if t.secret_hash.is_empty() {
            p.add(format!("{at}.secret_hash"), "must not be empty");
        } else if !hashes.insert(t.secret_hash.as_str()) {
            p.add(
                format!("{at}.secret_hash"),
                "the same hash as another token",
            );
        }
        let role = match t.role.as_deref().map(|r| (r, Role::parse(r))) {
            None => None,
            Some((_, Some(role))) => Some(role),
            Some((r, None)) => {
                p.add(
                    format!("{at}.role"),
                    format!("unknown role {r:?}: viewer, editor or owner"),
                );
                None
            }
        };
        let problems = hata_access::token::binding_problems(
            t.kind,
            t.project.as_deref(),
            t.environment.as_deref(),
            role,
        );
        for (field, message) in &problems {
            p.add(format!("{at}.{field}"), *message);
        }
        match (&t.project, &t.environment) {
            (Some(project), Some(env))
                if problems.is_empty()
                    && !environments.contains(&(project.as_str(), env.as_str())) =>
            {
                p.add(
                    format!("{at}.environment"),
                    format!("no environment {env:?} in project {project:?}"),
                );
            }
            (Some(project), None)
                if problems.is_empty() && !doc.projects.iter().any(|p| p.key == *project) =>
            {
                p.add(format!("{at}.project"), format!("no project {project:?}"));
            }
            _ => {}
        }
        p.timestamp(&at, "created_at", &t.created_at);
        if let Some(expires) = &t.expires_at {
            p.timestamp(&at, "expires_at", expires);
        }
        if let Some(until) = &t.previous_valid_until {
            p.timestamp(&at, "previous_valid_until", until);
        }
        if let Some(rotated) = &t.rotated_at {
            p.timestamp(&at, "rotated_at", rotated);
        }
        if t.previous_secret_hash.is_some() != t.previous_valid_until.is_some() {
            p.add(
                format!("{at}.previous_valid_until"),
                "a previous secret hash and its end come together",
            );
        }
    }

    check_users(&mut p, doc, &project_keys);

    let mut last_id = 0;
    let mut unchained = None;
    for c in &doc.changes {
        let at = format!("changes[{}]", c.id);
        // Chained changes (with hashes) come first; the rest are chained after import.
        match (&c.hash, unchained) {
            (None, None) => unchained = Some(c.id),
            (Some(_), Some(first)) => p.add(
                format!("{at}.hash"),
                format!("a chained change cannot follow unchained ones (from changes[{first}])"),
            ),
            _ => {}
        }
        if let Err(e) = validate::check_text(c) {
            p.nested(&at, e);
        }
        if c.id <= last_id {
            p.add(&at, "change ids must be positive and ascending");
        }
        last_id = last_id.max(c.id);
        p.timestamp(&at, "at", &c.at);
        if Actor::parse(&c.actor).is_none() {
            p.add(
                format!("{at}.actor"),
                format!(
                    "not an actor (kind:id, kind one of {}): {:?}",
                    ActorKind::ALL.map(ActorKind::as_str).join(", "),
                    c.actor
                ),
            );
        }
    }
    if doc.sequences.changes < last_id {
        p.add(
            "sequences.changes",
            format!(
                "is {}, below the largest change id {last_id}",
                doc.sequences.changes
            ),
        );
    }

    let mut counts = BTreeSet::new();
    for c in &doc.evaluation_counts {
        let at = format!(
            "evaluation_counts[{}/{}/{}/{}]",
            shown(&c.project),
            shown(&c.environment),
            shown(&c.flag),
            shown(&c.hour)
        );
        if let Err(e) = validate::check_text(c) {
            p.nested(&at, e);
        }
        if !counts.insert(count_key(c)) {
            p.add(
                &at,
                format!(
                    "duplicate count for variant {:?}, reason {:?}",
                    c.variant, c.reason
                ),
            );
        }
        if c.count < 0 {
            p.add(&at, "count must not be negative");
        }
    }
    let mut evaluated = BTreeSet::new();
    for e in &doc.flag_last_evaluated {
        let at = format!(
            "flag_last_evaluated[{}/{}/{}]",
            shown(&e.project),
            shown(&e.environment),
            shown(&e.flag)
        );
        if let Err(errors) = validate::check_text(e) {
            p.nested(&at, errors);
        }
        if !evaluated.insert((&e.project, &e.environment, &e.flag)) {
            p.add(&at, "duplicate entry");
        }
        p.timestamp(&at, "at", &e.at);
    }

    if p.0.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid(ValidationErrors(p.0)))
    }
}

/// Users (unique ids and emails, each email as normalised, a display name) and memberships
/// (an existing project and user, a known role, one per project and user).
fn check_users(p: &mut Problems, doc: &ExportDocument, project_keys: &BTreeSet<&str>) {
    let mut user_ids = BTreeSet::new();
    let mut emails = BTreeSet::new();
    for u in &doc.users {
        let at = format!("users[{}]", shown(&u.id));
        p.unique(&mut user_ids, &at, "user id", &u.id);
        if let Err(e) = validate::check_text(u) {
            p.nested(&at, e);
        }
        if u.id.is_empty() {
            p.add(format!("{at}.id"), "must not be empty");
        }
        // Compared as logins compare them: "Ann@x.org" and "ann@x.org" are one account.
        match normalize_email(&u.email) {
            Err(m) => p.add(format!("{at}.email"), m),
            Ok(email) => {
                if email != u.email {
                    p.add(
                        format!("{at}.email"),
                        format!("must be as stored, trimmed and lower-case: {email:?}"),
                    );
                }
                if !emails.insert(email) {
                    p.add(
                        format!("{at}.email"),
                        format!("duplicate email {:?}", u.email),
                    );
                }
            }
        }
        if let Some(m) = name_problem(&u.name) {
            p.add(format!("{at}.name"), m);
        }
        if u.password_hash.as_deref() == Some("") {
            p.add(
                format!("{at}.password_hash"),
                "must not be empty (null for a user without a password)",
            );
        }
        if u.version < 1 {
            p.add(format!("{at}.version"), "must be at least 1");
        }
        p.timestamp(&at, "created_at", &u.created_at);
        p.timestamp(&at, "updated_at", &u.updated_at);
        if let Some(changed) = &u.password_changed_at {
            p.timestamp(&at, "password_changed_at", changed);
        }
        if let Some(login) = &u.last_login_at {
            p.timestamp(&at, "last_login_at", login);
        }
    }

    let mut members = BTreeSet::new();
    for m in &doc.memberships {
        let at = format!("memberships[{}/{}]", shown(&m.project), shown(&m.user_id));
        if let Err(e) = validate::check_text(m) {
            p.nested(&at, e);
        }
        if !members.insert((m.project.as_str(), m.user_id.as_str())) {
            p.add(&at, "duplicate membership");
        }
        if !project_keys.contains(m.project.as_str()) {
            p.add(
                format!("{at}.project"),
                format!("no project {:?}", m.project),
            );
        }
        if !user_ids.contains(m.user_id.as_str()) {
            p.add(format!("{at}.user_id"), format!("no user {:?}", m.user_id));
        }
        if Role::parse(&m.role).is_none() {
            p.add(
                format!("{at}.role"),
                format!("unknown role {:?}: viewer, editor or owner", m.role),
            );
        }
        p.timestamp(&at, "created_at", &m.created_at);
        p.timestamp(&at, "updated_at", &m.updated_at);
    }
}

/// A project's environments, segments and flags: unique keys, what a write would have
/// validated, and that every environment compiles.
fn check_project(p: &mut Problems, at: &str, project: &ExportProject, env_ids: &mut BTreeSet<i64>) {
    let mut env_keys = BTreeSet::new();
    let mut positions = BTreeSet::new();
    for e in &project.environments {
        let at = format!("{at}.environments[{}]", shown(&e.key));
        p.unique(&mut env_keys, &at, "environment", &e.key);
        if e.id < 1 || !env_ids.insert(e.id) {
            p.add(
                format!("{at}.id"),
                format!("must be a positive id used once, got {}", e.id),
            );
        }
        if !positions.insert(e.position) {
            p.add(
                format!("{at}.position"),
                format!("position {} is used twice", e.position),
            );
        }
        let env = Environment {
            key: e.key.clone(),
            name: e.name.clone(),
            description: e.description.clone(),
            protected: e.protected,
        };
        if let Err(errors) = validate::validate_environment(&env) {
            p.nested(&at, errors);
        }
        if e.version < 1 || e.revision < 1 {
            p.add(&at, "version and revision must be at least 1");
        }
        for (field, value) in [
            ("revised_at", &e.revised_at),
            ("created_at", &e.created_at),
            ("updated_at", &e.updated_at),
        ] {
            p.timestamp(&at, field, value);
        }
    }
    let env_keys: Vec<String> = project.environments.iter().map(|e| e.key.clone()).collect();

    let mut segments = BTreeMap::new();
    for s in &project.segments {
        if segments.insert(s.key.clone(), s.clone()).is_some() {
            p.add(
                format!("{at}.segments[{}]", shown(&s.key)),
                "duplicate segment",
            );
        }
    }
    let mut flags = BTreeMap::new();
    for f in &project.flags {
        if flags.insert(f.key.clone(), f.clone()).is_some() {
            p.add(format!("{at}.flags[{}]", shown(&f.key)), "duplicate flag");
        }
    }
    let view = ProjectView {
        environments: &env_keys,
        segments: &segments,
        flags: &flags,
    };
    for s in &project.segments {
        let at = format!("{at}.segments[{}]", shown(&s.key));
        if let Err(e) = validate::validate_segment(s, &view) {
            p.nested(&at, e);
        }
        stored_fields(p, &at, s.version, &s.created_at, &s.updated_at);
    }
    // Built once: a walk of every flag per flag made a 10,000-flag import take a minute.
    let requirements = validate::Requirements::of(&view);
    for f in &project.flags {
        let at = format!("{at}.flags[{}]", shown(&f.key));
        if let Err(e) = validate::validate_flag_in(f, &view, &requirements) {
            let mut errors = e.0;
            if f.archived {
                // An archived flag may point at flags and segments deleted since it was
                // archived: it is not evaluated, it is not a dependant that blocks those
                // deletes, and restoring it validates it again (see
                // `validate::flag_dependants`). A real store holds such flags, so a real
                // export must import.
                // U+0000 is refused wherever it is: no store may hold it.
                errors.retain(|e| e.message == NUL_MESSAGE || !is_reference(&e.field));
            }
            if !errors.is_empty() {
                p.nested(&at, ValidationErrors(errors));
            }
        }
        stored_fields(p, &at, f.version, &f.created_at, &f.updated_at);
    }

    // The backstop the server relies on: what would not compile could not be served.
    let flags: Vec<Flag> = project.flags.clone();
    for env in &env_keys {
        if let Err(e) = Snapshot::compile(env, &flags, &project.segments) {
            p.add(
                format!("{at}.environments[{env}]"),
                format!("does not compile: {e}"),
            );
        }
    }
}

/// A key as it appears in an error's path: U+0000 (refused, but it must be named) spelled
/// `\\u0000`, so that the path prints.
fn shown(key: &str) -> std::borrow::Cow<'_, str> {
    if key.contains('\0') {
        key.replace('\0', "\\u0000").into()
    } else {
        key.into()
    }
}

/// Whether a flag validation error is about a reference to another flag or segment:
/// `environments.<env>.prerequisites[i].flag`, `….prerequisites[i].variants[j]`, or
/// `….conditions[k].segment`.
fn is_reference(field: &str) -> bool {
    field.contains(".prerequisites[") || field.ends_with(".segment")
}

/// The bookkeeping the store stamps on every flag and segment.
fn stored_fields(
    p: &mut Problems,
    at: &str,
    version: i64,
    created_at: &Option<String>,
    updated_at: &Option<String>,
) {
    if version < 1 {
        p.add(format!("{at}.version"), "must be at least 1");
    }
    for (field, value) in [("created_at", created_at), ("updated_at", updated_at)] {
        match value {
            Some(v) => p.timestamp(at, field, v),
            None => p.add(format!("{at}.{field}"), "missing"),
        }
    }
}
