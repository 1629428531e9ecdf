//! The transaction every write runs in: begin, apply the `WriteOp` (the resource modules),
//! bump revisions, record the change, send the cross-process notices, commit, publish. Also
//! the checks every resource shares (expected version, key in the path, unique keys).

use std::sync::Arc;

use hata_core::validate::{FieldError, ValidationErrors};
use serde_json::Value;
use sqlx::{Any, Row, Transaction};

use super::flags::{merge_patch, Unchanged};
use super::{Expected, WriteMeta, WriteOp, WriteOutcome};
use crate::change::{Action, ResourceType};
use crate::error::{StoreError, StoreResult};
use crate::notice::{ChangeNotice, EnvRevision, RuleSetDelta, RuleSetWrite};
use crate::{rfc3339, Store};

impl Store {
    /// Applies `op` as one transaction; see the module doc for what that includes.
    #[tracing::instrument(name = "store.write", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "write"))]
    pub async fn write(&self, meta: &WriteMeta, op: WriteOp) -> StoreResult<WriteOutcome> {
        let _timer = self.timings.start(crate::timing::Operation::Write);
        op.check_text(meta)?;
        let tx = self.writer().begin().await?;
        let at = time::OffsetDateTime::now_utc();
        let mut w = WriteTx {
            tx,
            at,
            now: rfc3339(at),
            revisions: Vec::new(),
            env_ids: Vec::new(),
            notices: Vec::new(),
            changes: Vec::new(),
            delta: RuleSetDelta::Reload,
            protected_refusal: meta.protected_refusal.clone(),
        };
        let (value, version) = w.apply(op).await?;
        let appended = w.record_changes(meta, self).await?;
        let WriteTx {
            mut tx,
            now,
            revisions,
            env_ids,
            notices,
            delta,
            ..
        } = w;
        if self.backend() == crate::Backend::Postgres && !notices.is_empty() {
            // NOTIFY is transactional: other replicas hear of the change exactly when (and
            // only if) it commits. One statement for all notices: a round trip less per
            // environment while the project's row lock is held.
            let calls: Vec<String> = (0..notices.len())
                .map(|i| format!("pg_notify($1, ${})", i + 2))
                .collect();
            let sql = format!("SELECT {}", calls.join(", "));
            let mut query = sqlx::query(&sql).bind(crate::listen::CHANNEL);
            for notice in &notices {
                query = query.bind(serde_json::to_string(notice)?);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        appended
            .checkpoints
            .iter()
            .for_each(crate::audit::log_checkpoint);
        let rule_sets = Arc::new(RuleSetWrite {
            revisions,
            env_ids,
            at: now,
            delta,
        });
        // The write's content first, then the plain notices: a subscriber that applies the
        // content finds itself up to date when the plain ones arrive.
        if !rule_sets.revisions.is_empty() {
            self.publish(vec![ChangeNotice::RuleSets(rule_sets.clone())]);
        }
        self.publish(notices);
        Ok(WriteOutcome {
            value,
            version,
            rule_sets,
        })
    }
}

/// One entry of the change record, queued until the write is applied.
struct Change {
    action: Action,
    resource_type: ResourceType,
    project: Option<String>,
    key: String,
    old: Option<Value>,
    new: Option<Value>,
}

/// An open write: the transaction and what the write has done so far.
pub(super) struct WriteTx {
    pub(super) tx: Transaction<'static, Any>,
    /// The write's time: the audit entry's `at` (with microseconds).
    at: time::OffsetDateTime,
    /// The write's time as the store writes times: `updated_at`, `revised_at`.
    pub(super) now: String,
    revisions: Vec<EnvRevision>,
    /// Parallel to `revisions`.
    env_ids: Vec<i64>,
    pub(super) notices: Vec<ChangeNotice>,
    changes: Vec<Change>,
    pub(super) delta: RuleSetDelta,
    /// `WriteMeta::protected_refusal` (see `protected`).
    pub(super) protected_refusal: Option<String>,
}

pub(super) fn check_version(expected: &Expected, current: i64) -> StoreResult<()> {
    if expected.admits(current) {
        return Ok(());
    }
    Err(StoreError::VersionMismatch {
        expected: expected.clone(),
        current,
    })
}

pub(super) fn key_mismatch(field: &str, path_key: &str) -> StoreError {
    StoreError::Invalid(ValidationErrors(vec![FieldError {
        field: field.to_string(),
        message: format!("must equal the key in the path ({path_key:?}); keys cannot be renamed"),
    }]))
}

pub(super) fn to_value<T: serde::Serialize>(v: &T) -> StoreResult<Value> {
    serde_json::to_value(v).map_err(|e| StoreError::Internal(e.to_string()))
}

pub(super) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

impl WriteTx {
    async fn apply(&mut self, op: WriteOp) -> StoreResult<(Option<Value>, i64)> {
        match op {
            WriteOp::CreateProject {
                project,
                environments,
            } => self.create_project(project, environments).await,
            WriteOp::UpdateProject {
                key,
                expected_version,
                project,
            } => self.update_project(&key, &expected_version, project).await,
            WriteOp::DeleteProject {
                key,
                expected_version,
            } => self.delete_project(&key, &expected_version).await,
            WriteOp::CreateEnvironment {
                project,
                environment,
            } => self.create_environment(&project, environment).await,
            WriteOp::UpdateEnvironment {
                project,
                key,
                expected_version,
                environment,
            } => {
                self.update_environment(&project, &key, &expected_version, environment)
                    .await
            }
            WriteOp::DeleteEnvironment {
                project,
                key,
                expected_version,
            } => {
                self.delete_environment(&project, &key, &expected_version)
                    .await
            }
            WriteOp::CreateFlag { project, flag } => self.create_flag(&project, flag).await,
            WriteOp::UpdateFlag {
                project,
                key,
                expected_version,
                flag,
            } => {
                self.update_flag(&project, &key, &expected_version, flag)
                    .await
            }
            WriteOp::PatchFlag {
                project,
                key,
                expected_version,
                patch,
            } => {
                self.patch_flag(&project, &key, &expected_version, &patch)
                    .await
            }
            WriteOp::DeleteFlag {
                project,
                key,
                expected_version,
            } => self.delete_flag(&project, &key, &expected_version).await,
            WriteOp::PutFlagConfig {
                project,
                flag,
                environment,
                expected_version,
                config,
            } => {
                self.replace_config(
                    &project,
                    &flag,
                    &environment,
                    &expected_version,
                    Unchanged::Rewrite,
                    |_| Ok(config),
                )
                .await
            }
            WriteOp::PatchFlagConfig {
                project,
                flag,
                environment,
                expected_version,
                patch,
            } => {
                self.replace_config(
                    &project,
                    &flag,
                    &environment,
                    &expected_version,
                    Unchanged::Keep,
                    |current| merge_patch(current, &patch),
                )
                .await
            }
            WriteOp::CreateSegment { project, segment } => {
                self.create_segment(&project, segment).await
            }
            WriteOp::UpdateSegment {
                project,
                key,
                expected_version,
                segment,
            } => {
                self.update_segment(&project, &key, &expected_version, segment)
                    .await
            }
            WriteOp::DeleteSegment {
                project,
                key,
                expected_version,
            } => self.delete_segment(&project, &key, &expected_version).await,
            WriteOp::CreateToken { token } => self.create_token(token).await,
            WriteOp::DeleteToken { id } => self.delete_token(&id).await,
            WriteOp::TokenRefused { id, reason } => self.token_refused(&id, &reason).await,
            WriteOp::RotateToken {
                id,
                secret_hash,
                previous_valid_until,
            } => {
                self.rotate_token(&id, &secret_hash, &previous_valid_until)
                    .await
            }
            WriteOp::CreateUser { user } => self.create_user(user).await,
            WriteOp::UpdateUser {
                id,
                expected_version,
                update,
            } => self.update_user(&id, &expected_version, update).await,
            WriteOp::DeleteUser {
                id,
                expected_version,
            } => self.delete_user(&id, &expected_version).await,
            WriteOp::PutMember {
                project,
                user_id,
                role,
            } => self.put_member(&project, &user_id, role).await,
            WriteOp::DeleteMember { project, user_id } => {
                self.delete_member(&project, &user_id).await
            }
            WriteOp::Login {
                user_id,
                session,
                policy,
                second_factor,
            } => {
                self.login(&user_id, session, policy, second_factor.as_ref())
                    .await
            }
            WriteOp::LoginFailed { user_id, policy } => self.login_failed(&user_id, policy).await,
            WriteOp::Logout { session_id } => self.logout(&session_id).await,
            WriteOp::EnrolTotp { user_id, secret } => self.enrol_totp(&user_id, &secret).await,
            WriteOp::ConfirmTotp {
                user_id,
                step,
                recovery_code_hashes,
                keep_session,
            } => {
                self.confirm_totp(
                    &user_id,
                    step,
                    &recovery_code_hashes,
                    keep_session.as_deref(),
                )
                .await
            }
            WriteOp::DisableTotp { user_id } => self.disable_totp(&user_id).await,
            WriteOp::SsoUser { identity } => self.sso_user(identity).await,
            WriteOp::ConfigureSso { config } => self.configure_sso(config).await,
        }
    }

    pub(super) fn change(
        &mut self,
        action: Action,
        resource_type: ResourceType,
        project: Option<&str>,
        key: &str,
        old: Option<Value>,
        new: Option<Value>,
    ) {
        self.changes.push(Change {
            action,
            resource_type,
            project: project.map(str::to_string),
            key: key.to_string(),
            old,
            new,
        });
    }

    /// Appends the write's changes to the audit chain (`audit::append`).
    async fn record_changes(
        &mut self,
        meta: &WriteMeta,
        store: &Store,
    ) -> StoreResult<crate::audit::Appended> {
        let revisions = to_value(&self.revisions)?.to_string();
        let actor = hata_audit::Actor {
            kind: meta.actor.kind,
            id: meta.actor.id.clone(),
            name: meta.actor.name.clone(),
        };
        let entries = std::mem::take(&mut self.changes)
            .into_iter()
            .map(|c| {
                let old = c.old.unwrap_or(Value::Null);
                let new = c.new.unwrap_or(Value::Null);
                hata_audit::NewEntry {
                    at: self.at,
                    actor: actor.clone(),
                    role: meta.role.clone(),
                    action: c.action.as_str().to_string(),
                    environment: environment_of(c.resource_type, &c.key, &old, &new),
                    resource: hata_audit::Resource {
                        kind: c.resource_type.as_str().to_string(),
                        key: c.key,
                    },
                    project: c.project,
                    old,
                    new,
                    patch: None,
                    ip: meta.ip.clone(),
                    user_agent: meta.user_agent.clone(),
                    request_id: (!meta.request_id.is_empty()).then(|| meta.request_id.clone()),
                }
            })
            .collect();
        crate::audit::append(
            &mut self.tx,
            store.backend(),
            &store.audit,
            entries,
            &revisions,
        )
        .await
    }

    /// Bumps the revision of every environment of the project and queues the notices. Row
    /// locks taken here serialize concurrent writers per environment.
    pub(super) async fn bump(&mut self, project: &str) -> StoreResult<()> {
        let rows = sqlx::query("UPDATE environments SET revision = revision + 1, revised_at = $2 WHERE project = $1 RETURNING id, key, revision")
            .bind(project)
            .bind(&self.now)
            .fetch_all(&mut *self.tx)
            .await?;
        for row in rows {
            let rev = EnvRevision {
                project: project.to_string(),
                environment: row.try_get("key")?,
                revision: row.try_get("revision")?,
            };
            self.revised(rev, row.try_get("id")?);
        }
        Ok(())
    }

    /// Records that the write brought an environment (store id `env_id`) to a revision: for
    /// the outcome's `RuleSetWrite`, and as a notice.
    pub(super) fn revised(&mut self, rev: EnvRevision, env_id: i64) {
        self.notices.push(ChangeNotice::Environment(rev.clone()));
        self.revisions.push(rev);
        self.env_ids.push(env_id);
    }

    /// Reads the project's version and locks its row until the transaction ends. Every
    /// project-scoped write starts here, so writes to one project are serialised: PostgreSQL
    /// runs READ COMMITTED, and without the lock two writers that both checked version N would
    /// both commit (a lost update). The no-op `UPDATE` is the portable row lock — SQLite has no
    /// `SELECT … FOR UPDATE`, and there it also takes the database write lock up front.
    pub(super) async fn project_version(&mut self, key: &str) -> StoreResult<i64> {
        sqlx::query("UPDATE projects SET version = version WHERE key = $1 RETURNING version")
            .bind(key)
            .fetch_optional(&mut *self.tx)
            .await?
            .map(|r| r.try_get::<i64, _>("version"))
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("project {key:?}")))
    }
}

/// The environment an entry is about: an environment's own change, or a flag change that
/// touched the configuration of exactly one environment (what a kill switch or a rollout
/// is), so that `GET /audit?environment=production` finds it.
fn environment_of(kind: ResourceType, key: &str, old: &Value, new: &Value) -> Option<String> {
    match kind {
        ResourceType::Environment => Some(key.to_string()),
        ResourceType::Flag => {
            let (old, new) = (old.as_object()?, new.as_object()?);
            let o = old.get("environments").and_then(Value::as_object)?;
            let n = new.get("environments").and_then(Value::as_object)?;
            // Nothing but configurations changed (a renamed flag is about every environment;
            // the version and times change with every write).
            let bookkeeping = ["environments", "version", "updated_at"];
            let same_rest = old
                .iter()
                .filter(|(k, _)| !bookkeeping.contains(&k.as_str()))
                .all(|(k, v)| new.get(k) == Some(v))
                && new
                    .keys()
                    .filter(|k| !bookkeeping.contains(&k.as_str()))
                    .all(|k| old.contains_key(k));
            if !same_rest {
                return None;
            }
            let mut changed = o
                .keys()
                .chain(n.keys().filter(|k| !o.contains_key(*k)))
                .filter(|env| o.get(*env) != n.get(*env));
            let first = changed.next()?;
            changed.next().is_none().then(|| first.clone())
        }
        _ => None,
    }
}
