//! The one write path. Every change to projects, environments, flags, segments and tokens is a
//! `WriteOp` applied by `Store::write`, which in a single transaction:
//! 1. loads what the change touches and checks the caller's expected version (`If-Match`),
//! 2. validates the result against the rest of the project (`hata_core::validate`),
//! 3. applies it,
//! 4. bumps the revision of every environment whose evaluations it can affect,
//! 5. records the change (old and new value, actor, request id) in `changes`,
//!
//! and after the commit publishes `ChangeNotice`s. The audit log, webhooks and approvals hang
//! off this one place; nothing else in the store writes.

use std::collections::BTreeMap;
use std::sync::Arc;

use hata_core::model::{Environment, Flag, FlagConfig, Project, Segment};
use hata_core::validate::{self, FieldError, ProjectView, ValidationErrors};
use serde_json::Value;
use sqlx::{Any, Row, Transaction};

use crate::error::{StoreError, StoreResult};
use crate::notice::{ChangeNotice, EnvRevision, RuleSetDelta, RuleSetWrite};
use crate::read::{decode_environment, decode_flag, decode_segment, decode_token, ENV_COLUMNS};
use crate::records::{EnvironmentRecord, TokenKind, TokenRecord};
use crate::{now_rfc3339, Store};

/// Who is writing, for the change record.
#[derive(Debug, Clone)]
pub struct WriteMeta {
    pub actor: String,
    pub request_id: String,
}

/// A token to create; the caller generated the secret and passes only its hash.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: String,
    pub name: String,
    pub kind: TokenKind,
    pub project: Option<String>,
    pub environment: Option<String>,
    pub expires_at: Option<String>,
    pub secret_hash: String,
}

/// Every change the store can make. `expected_version` is the `If-Match` version, if any.
#[derive(Debug, Clone)]
pub enum WriteOp {
    CreateProject {
        project: Project,
        environments: Option<Vec<Environment>>,
    },
    UpdateProject {
        key: String,
        expected_version: Option<i64>,
        project: Project,
    },
    DeleteProject {
        key: String,
        expected_version: Option<i64>,
    },
    CreateEnvironment {
        project: String,
        environment: Environment,
    },
    UpdateEnvironment {
        project: String,
        key: String,
        expected_version: Option<i64>,
        environment: Environment,
    },
    DeleteEnvironment {
        project: String,
        key: String,
        expected_version: Option<i64>,
    },
    CreateFlag {
        project: String,
        flag: Flag,
    },
    UpdateFlag {
        project: String,
        key: String,
        expected_version: Option<i64>,
        flag: Flag,
    },
    DeleteFlag {
        project: String,
        key: String,
        expected_version: Option<i64>,
    },
    PutFlagConfig {
        project: String,
        flag: String,
        environment: String,
        expected_version: Option<i64>,
        config: FlagConfig,
    },
    /// An RFC 7396 JSON Merge Patch applied to the current config inside the transaction.
    PatchFlagConfig {
        project: String,
        flag: String,
        environment: String,
        expected_version: Option<i64>,
        patch: Value,
    },
    CreateSegment {
        project: String,
        segment: Segment,
    },
    UpdateSegment {
        project: String,
        key: String,
        expected_version: Option<i64>,
        segment: Segment,
    },
    DeleteSegment {
        project: String,
        key: String,
        expected_version: Option<i64>,
    },
    CreateToken {
        token: NewToken,
    },
    DeleteToken {
        id: String,
    },
}

/// The result of a write: the resource as now stored (`None` after a delete), its version,
/// and what it did to rule sets.
#[derive(Debug, Clone)]
pub struct WriteOutcome {
    pub value: Option<Value>,
    pub version: i64,
    /// Also published in this process as `ChangeNotice::RuleSets` (when it bumped any
    /// revision), so that the writer and the notice's subscribers apply the same change.
    pub rule_sets: Arc<RuleSetWrite>,
}

const DEFAULT_ENVIRONMENTS: [(&str, &str); 2] =
    [("development", "Development"), ("production", "Production")];

impl Store {
    /// Applies `op` as one transaction; see the module doc for what that includes.
    pub async fn write(&self, meta: &WriteMeta, op: WriteOp) -> StoreResult<WriteOutcome> {
        let tx = self.writer().begin().await?;
        let mut w = WriteTx {
            tx,
            now: now_rfc3339(),
            revisions: Vec::new(),
            env_ids: Vec::new(),
            notices: Vec::new(),
            changes: Vec::new(),
            delta: RuleSetDelta::Reload,
        };
        let (value, version) = w.apply(op).await?;
        w.record_changes(meta).await?;
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

struct Change {
    action: &'static str,
    resource_type: &'static str,
    project: Option<String>,
    key: String,
    old: Option<Value>,
    new: Option<Value>,
}

struct WriteTx {
    tx: Transaction<'static, Any>,
    now: String,
    revisions: Vec<EnvRevision>,
    /// Parallel to `revisions`.
    env_ids: Vec<i64>,
    notices: Vec<ChangeNotice>,
    changes: Vec<Change>,
    delta: RuleSetDelta,
}

/// Which flags a write loads. Validating a flag looks at the project's other flags only for
/// its prerequisites (do they exist, are they archived, is there a cycle), and deleting or
/// archiving one looks for flags that depend on it. Most writes do neither, and loading (and
/// decoding) every flag of the project for each of them made a write cost O(flags): seeding
/// 5,000 flags was quadratic. So writes load the one flag they touch, and all flags only when
/// the checks above need them.
#[derive(Clone, Copy)]
enum Flags<'a> {
    All,
    One(&'a str),
    /// For segment creates and updates: a segment is validated against the other segments only.
    None,
}

/// Whether validating `flag` needs the project's other flags (see `Flags`).
fn has_prerequisites(flag: &Flag) -> bool {
    flag.environments
        .values()
        .any(|config| !config.prerequisites.is_empty())
}

/// A project's flags, segments and environments, loaded inside the write transaction so that
/// validation sees exactly what the write will commit against. `flags` holds what `Flags` asked
/// for.
struct ProjectState {
    env_keys: Vec<String>,
    segments: BTreeMap<String, Segment>,
    flags: BTreeMap<String, Flag>,
}

impl ProjectState {
    fn view(&self) -> ProjectView<'_> {
        ProjectView {
            environments: &self.env_keys,
            segments: &self.segments,
            flags: &self.flags,
        }
    }
}

fn check_version(expected: Option<i64>, current: i64) -> StoreResult<()> {
    match expected {
        Some(expected) if expected != current => {
            Err(StoreError::VersionMismatch { expected, current })
        }
        _ => Ok(()),
    }
}

fn key_mismatch(field: &str, path_key: &str) -> StoreError {
    StoreError::Invalid(ValidationErrors(vec![FieldError {
        field: field.to_string(),
        message: format!("must equal the key in the path ({path_key:?}); keys cannot be renamed"),
    }]))
}

fn to_value<T: serde::Serialize>(v: &T) -> StoreResult<Value> {
    serde_json::to_value(v).map_err(|e| StoreError::Internal(e.to_string()))
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
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
            } => self.update_project(&key, expected_version, project).await,
            WriteOp::DeleteProject {
                key,
                expected_version,
            } => self.delete_project(&key, expected_version).await,
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
                self.update_environment(&project, &key, expected_version, environment)
                    .await
            }
            WriteOp::DeleteEnvironment {
                project,
                key,
                expected_version,
            } => {
                self.delete_environment(&project, &key, expected_version)
                    .await
            }
            WriteOp::CreateFlag { project, flag } => self.create_flag(&project, flag).await,
            WriteOp::UpdateFlag {
                project,
                key,
                expected_version,
                flag,
            } => {
                if flag.key != key {
                    return Err(key_mismatch("key", &key));
                }
                self.replace_flag(&project, &key, expected_version, |_| Ok(flag))
                    .await
            }
            WriteOp::DeleteFlag {
                project,
                key,
                expected_version,
            } => self.delete_flag(&project, &key, expected_version).await,
            WriteOp::PutFlagConfig {
                project,
                flag,
                environment,
                expected_version,
                config,
            } => {
                let (value, version) = self
                    .replace_flag(&project, &flag, expected_version, |old| {
                        with_config(old, &environment, |_| Ok(config))
                    })
                    .await
                    .map_err(|e| relative_to_config(e, &environment))?;
                Ok((config_of(value, &environment), version))
            }
            WriteOp::PatchFlagConfig {
                project,
                flag,
                environment,
                expected_version,
                patch,
            } => {
                let (value, version) = self
                    .replace_flag(&project, &flag, expected_version, |old| {
                        with_config(old, &environment, |current| merge_config(current, &patch))
                    })
                    .await
                    .map_err(|e| relative_to_config(e, &environment))?;
                Ok((config_of(value, &environment), version))
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
                self.update_segment(&project, &key, expected_version, segment)
                    .await
            }
            WriteOp::DeleteSegment {
                project,
                key,
                expected_version,
            } => self.delete_segment(&project, &key, expected_version).await,
            WriteOp::CreateToken { token } => self.create_token(token).await,
            WriteOp::DeleteToken { id } => self.delete_token(&id).await,
        }
    }

    fn change(
        &mut self,
        action: &'static str,
        resource_type: &'static str,
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

    async fn record_changes(&mut self, meta: &WriteMeta) -> StoreResult<()> {
        let revisions = to_value(&self.revisions)?.to_string();
        for c in std::mem::take(&mut self.changes) {
            sqlx::query(
                "INSERT INTO changes (at, actor, request_id, action, resource_type, project, resource_key, old_value, new_value, revisions)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&self.now)
            .bind(&meta.actor)
            .bind(&meta.request_id)
            .bind(c.action)
            .bind(c.resource_type)
            .bind(c.project)
            .bind(c.key)
            .bind(c.old.map(|v| v.to_string()))
            .bind(c.new.map(|v| v.to_string()))
            .bind(&revisions)
            .execute(&mut *self.tx)
            .await?;
        }
        Ok(())
    }

    /// Bumps the revision of `environment` (or of every environment of the project) and queues
    /// the notices. Row locks taken here serialize concurrent writers per environment.
    async fn bump(&mut self, project: &str, environment: Option<&str>) -> StoreResult<()> {
        let rows = match environment {
            Some(env) => {
                sqlx::query("UPDATE environments SET revision = revision + 1, revised_at = $3 WHERE project = $1 AND key = $2 RETURNING id, key, revision")
                    .bind(project)
                    .bind(env)
                    .bind(&self.now)
                    .fetch_all(&mut *self.tx)
                    .await?
            }
            None => {
                sqlx::query("UPDATE environments SET revision = revision + 1, revised_at = $2 WHERE project = $1 RETURNING id, key, revision")
                    .bind(project)
                    .bind(&self.now)
                    .fetch_all(&mut *self.tx)
                    .await?
            }
        };
        for row in rows {
            let rev = EnvRevision {
                project: project.to_string(),
                environment: row.try_get("key")?,
                revision: row.try_get("revision")?,
            };
            self.notices.push(ChangeNotice::Environment(rev.clone()));
            self.revisions.push(rev);
            self.env_ids.push(row.try_get("id")?);
        }
        Ok(())
    }

    /// Reads the project's version and locks its row until the transaction ends. Every
    /// project-scoped write starts here, so writes to one project are serialised: PostgreSQL
    /// runs READ COMMITTED, and without the lock two writers that both checked version N would
    /// both commit (a lost update). The no-op `UPDATE` is the portable row lock — SQLite has no
    /// `SELECT … FOR UPDATE`, and there it also takes the database write lock up front.
    async fn project_version(&mut self, key: &str) -> StoreResult<i64> {
        sqlx::query("UPDATE projects SET version = version WHERE key = $1 RETURNING version")
            .bind(key)
            .fetch_optional(&mut *self.tx)
            .await?
            .map(|r| r.try_get::<i64, _>("version"))
            .transpose()?
            .ok_or_else(|| StoreError::NotFound(format!("project {key:?}")))
    }

    async fn environments(&mut self, project: &str) -> StoreResult<Vec<EnvironmentRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {ENV_COLUMNS} FROM environments WHERE project = $1 ORDER BY position"
        ))
        .bind(project)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(decode_environment).collect()
    }

    /// Locks the project and loads what validating a change needs: its environments' keys,
    /// its segments, and its flags (all of them, or only `Flags::One`; see `Flags`).
    ///
    /// After the lock, one query reads all three (`UNION ALL`): every round trip here is
    /// spent holding the project's lock, which all writes to the project queue for.
    async fn load_state(&mut self, project: &str, flags: Flags<'_>) -> StoreResult<ProjectState> {
        self.project_version(project).await?;
        let flags_sql = match flags {
            Flags::All => "UNION ALL SELECT 1, key, doc, 0 FROM flags WHERE project = $1",
            Flags::One(_) => {
                "UNION ALL SELECT 1, key, doc, 0 FROM flags WHERE project = $1 AND key = $2"
            }
            Flags::None => "",
        };
        let sql = format!(
            "SELECT 0 AS kind, key, NULL AS doc, position AS ord FROM environments WHERE project = $1 \
             {flags_sql} \
             UNION ALL SELECT 2, key, doc, 0 FROM segments WHERE project = $1 \
             ORDER BY kind, ord, key"
        );
        let mut query = sqlx::query(&sql).bind(project);
        if let Flags::One(key) = flags {
            query = query.bind(key);
        }
        let mut state = ProjectState {
            env_keys: Vec::new(),
            segments: BTreeMap::new(),
            flags: BTreeMap::new(),
        };
        for row in query.fetch_all(&mut *self.tx).await? {
            match row.try_get::<i64, _>("kind")? {
                0 => state.env_keys.push(row.try_get("key")?),
                1 => {
                    let f = decode_flag(&row)?;
                    state.flags.insert(f.key.clone(), f);
                }
                _ => {
                    let s = decode_segment(&row)?;
                    state.segments.insert(s.key.clone(), s);
                }
            }
        }
        Ok(state)
    }

    async fn flags(
        &mut self,
        project: &str,
        which: Flags<'_>,
    ) -> StoreResult<BTreeMap<String, Flag>> {
        let rows = match which {
            Flags::None => return Ok(BTreeMap::new()),
            Flags::All => {
                sqlx::query(
                    "SELECT doc, version, created_at, updated_at FROM flags WHERE project = $1",
                )
                .bind(project)
                .fetch_all(&mut *self.tx)
                .await?
            }
            Flags::One(key) => {
                sqlx::query(
                    "SELECT doc, version, created_at, updated_at FROM flags WHERE project = $1 AND key = $2",
                )
                .bind(project)
                .bind(key)
                .fetch_all(&mut *self.tx)
                .await?
            }
        };
        let mut flags = BTreeMap::new();
        for row in rows {
            let f = decode_flag(&row)?;
            flags.insert(f.key.clone(), f);
        }
        Ok(flags)
    }

    async fn tokens_bound_to(
        &mut self,
        project: &str,
        environment: Option<&str>,
    ) -> StoreResult<Vec<String>> {
        let rows =
            sqlx::query("SELECT id, name, environment FROM tokens WHERE project = $1 ORDER BY id")
                .bind(project)
                .fetch_all(&mut *self.tx)
                .await?;
        let mut out = Vec::new();
        for r in rows {
            let env: Option<String> = r.try_get("environment")?;
            if environment.is_none() || env.as_deref() == environment {
                out.push(format!(
                    "token {} ({})",
                    r.try_get::<String, _>("id")?,
                    r.try_get::<String, _>("name")?
                ));
            }
        }
        Ok(out)
    }

    // ---- projects -------------------------------------------------------------------------

    async fn create_project(
        &mut self,
        project: Project,
        environments: Option<Vec<Environment>>,
    ) -> StoreResult<(Option<Value>, i64)> {
        let environments = environments.unwrap_or_else(|| {
            DEFAULT_ENVIRONMENTS
                .iter()
                .map(|(key, name)| Environment {
                    key: key.to_string(),
                    name: name.to_string(),
                    description: String::new(),
                    protected: false,
                })
                .collect()
        });
        let mut errors = validate::validate_project(&project)
            .err()
            .map(|e| e.0)
            .unwrap_or_default();
        for (i, env) in environments.iter().enumerate() {
            if let Err(e) = validate::validate_environment(env) {
                errors.extend(e.0.into_iter().map(|f| FieldError {
                    field: format!("environments[{i}].{}", f.field),
                    message: f.message,
                }));
            }
            if environments[..i].iter().any(|other| other.key == env.key) {
                errors.push(FieldError {
                    field: format!("environments[{i}].key"),
                    message: format!("duplicate environment key {:?}", env.key),
                });
            }
        }
        if !errors.is_empty() {
            return Err(ValidationErrors(errors).into());
        }
        let inserted = sqlx::query("INSERT INTO projects (key, name, description, version, created_at, updated_at) VALUES ($1, $2, $3, 1, $4, $4)")
            .bind(&project.key)
            .bind(&project.name)
            .bind(&project.description)
            .bind(&self.now)
            .execute(&mut *self.tx)
            .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(format!(
                    "project {:?}",
                    project.key
                )))
            }
            other => other?,
        };
        for (position, env) in environments.iter().enumerate() {
            self.insert_environment(&project.key, env, position as i64)
                .await?;
        }
        let value = self.project_value(&project.key).await?;
        self.change(
            "create",
            "project",
            Some(&project.key),
            &project.key,
            None,
            Some(value.clone()),
        );
        Ok((Some(value), 1))
    }

    async fn insert_environment(
        &mut self,
        project: &str,
        env: &Environment,
        position: i64,
    ) -> StoreResult<()> {
        let inserted = sqlx::query(
            "INSERT INTO environments (project, key, name, description, protected, position, version, revision, revised_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 1, 1, $7, $7, $7) RETURNING id",
        )
        .bind(project)
        .bind(&env.key)
        .bind(&env.name)
        .bind(&env.description)
        .bind(env.protected as i64)
        .bind(position)
        .bind(&self.now)
        .fetch_one(&mut *self.tx)
        .await;
        let inserted = match inserted {
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(format!(
                "environment {:?} in project {project:?}",
                env.key
            ))),
            other => other.map_err(StoreError::from),
        }?;
        let rev = EnvRevision {
            project: project.to_string(),
            environment: env.key.clone(),
            revision: 1,
        };
        self.notices.push(ChangeNotice::Environment(rev.clone()));
        self.revisions.push(rev);
        self.env_ids.push(inserted.try_get("id")?);
        Ok(())
    }

    /// A project as the API shows it: its fields plus its environments.
    async fn project_value(&mut self, key: &str) -> StoreResult<Value> {
        let row = sqlx::query("SELECT key, name, description, version, created_at, updated_at FROM projects WHERE key = $1")
            .bind(key)
            .fetch_one(&mut *self.tx)
            .await?;
        let record = crate::read::decode_project(&row)?;
        let envs = self.environments(key).await?;
        let mut value = to_value(&record)?;
        value["environments"] = to_value(&envs)?;
        Ok(value)
    }

    async fn update_project(
        &mut self,
        key: &str,
        expected: Option<i64>,
        project: Project,
    ) -> StoreResult<(Option<Value>, i64)> {
        if project.key != key {
            return Err(key_mismatch("key", key));
        }
        validate::validate_project(&project)?;
        let current = self.project_version(key).await?;
        check_version(expected, current)?;
        let old = self.project_value(key).await?;
        sqlx::query("UPDATE projects SET name = $1, description = $2, version = version + 1, updated_at = $3 WHERE key = $4")
            .bind(&project.name)
            .bind(&project.description)
            .bind(&self.now)
            .bind(key)
            .execute(&mut *self.tx)
            .await?;
        let value = self.project_value(key).await?;
        self.change(
            "update",
            "project",
            Some(key),
            key,
            Some(old),
            Some(value.clone()),
        );
        Ok((Some(value), current + 1))
    }

    async fn delete_project(
        &mut self,
        key: &str,
        expected: Option<i64>,
    ) -> StoreResult<(Option<Value>, i64)> {
        let current = self.project_version(key).await?;
        check_version(expected, current)?;
        let dependants = self.tokens_bound_to(key, None).await?;
        if !dependants.is_empty() {
            return Err(StoreError::Conflict {
                message: format!("project {key:?} has tokens bound to it; delete them first"),
                dependants,
            });
        }
        let old = self.project_value(key).await?;
        for env in self.environments(key).await? {
            self.notices.push(ChangeNotice::EnvironmentRemoved {
                project: key.to_string(),
                environment: env.environment.key,
            });
        }
        for table in ["flags", "segments", "environments"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE project = $1"))
                .bind(key)
                .execute(&mut *self.tx)
                .await?;
        }
        sqlx::query("DELETE FROM projects WHERE key = $1")
            .bind(key)
            .execute(&mut *self.tx)
            .await?;
        self.change("delete", "project", Some(key), key, Some(old), None);
        Ok((None, current))
    }

    // ---- environments ---------------------------------------------------------------------

    async fn environment(&mut self, project: &str, key: &str) -> StoreResult<EnvironmentRecord> {
        self.project_version(project).await?;
        let row = sqlx::query(&format!(
            "SELECT {ENV_COLUMNS} FROM environments WHERE project = $1 AND key = $2"
        ))
        .bind(project)
        .bind(key)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or_else(|| {
            StoreError::NotFound(format!("environment {key:?} in project {project:?}"))
        })?;
        decode_environment(&row)
    }

    /// Rewrites every flag of the project through `edit` (used when environments come and go).
    async fn rewrite_flags(
        &mut self,
        project: &str,
        mut edit: impl FnMut(&mut Flag),
    ) -> StoreResult<()> {
        let rows = sqlx::query(
            "SELECT doc, version, created_at, updated_at FROM flags WHERE project = $1",
        )
        .bind(project)
        .fetch_all(&mut *self.tx)
        .await?;
        for row in rows {
            let mut flag = decode_flag(&row)?;
            edit(&mut flag);
            let version = flag.version + 1;
            self.store_flag(project, &mut flag, version).await?;
        }
        Ok(())
    }

    async fn create_environment(
        &mut self,
        project: &str,
        env: Environment,
    ) -> StoreResult<(Option<Value>, i64)> {
        validate::validate_environment(&env)?;
        self.project_version(project).await?;
        let position: i64 = sqlx::query(
            "SELECT COALESCE(MAX(position), -1) + 1 AS p FROM environments WHERE project = $1",
        )
        .bind(project)
        .fetch_one(&mut *self.tx)
        .await?
        .try_get("p")?;
        self.insert_environment(project, &env, position).await?;
        let key = env.key.clone();
        // Every flag gets a config for the new environment: disabled, serving its off variant.
        self.rewrite_flags(project, |flag| {
            let config = flag.default_config();
            flag.environments.insert(key.clone(), config);
        })
        .await?;
        // The rewrite bumped every flag's version, which evaluations report.
        self.bump(project, None).await?;
        let value = to_value(&self.environment(project, &env.key).await?)?;
        self.change(
            "create",
            "environment",
            Some(project),
            &env.key,
            None,
            Some(value.clone()),
        );
        Ok((Some(value), 1))
    }

    async fn update_environment(
        &mut self,
        project: &str,
        key: &str,
        expected: Option<i64>,
        env: Environment,
    ) -> StoreResult<(Option<Value>, i64)> {
        if env.key != key {
            return Err(key_mismatch("key", key));
        }
        validate::validate_environment(&env)?;
        let old = self.environment(project, key).await?;
        check_version(expected, old.version)?;
        sqlx::query("UPDATE environments SET name = $1, description = $2, protected = $3, version = version + 1, updated_at = $4 WHERE project = $5 AND key = $6")
            .bind(&env.name)
            .bind(&env.description)
            .bind(env.protected as i64)
            .bind(&self.now)
            .bind(project)
            .bind(key)
            .execute(&mut *self.tx)
            .await?;
        let new = self.environment(project, key).await?;
        let (old, new_value) = (to_value(&old)?, to_value(&new)?);
        self.change(
            "update",
            "environment",
            Some(project),
            key,
            Some(old),
            Some(new_value.clone()),
        );
        Ok((Some(new_value), new.version))
    }

    async fn delete_environment(
        &mut self,
        project: &str,
        key: &str,
        expected: Option<i64>,
    ) -> StoreResult<(Option<Value>, i64)> {
        let old = self.environment(project, key).await?;
        check_version(expected, old.version)?;
        if old.environment.protected {
            return Err(StoreError::Conflict {
                message: format!("environment {key:?} is protected; set protected to false first"),
                dependants: Vec::new(),
            });
        }
        let dependants = self.tokens_bound_to(project, Some(key)).await?;
        if !dependants.is_empty() {
            return Err(StoreError::Conflict {
                message: format!("environment {key:?} has tokens bound to it; delete them first"),
                dependants,
            });
        }
        sqlx::query("DELETE FROM environments WHERE project = $1 AND key = $2")
            .bind(project)
            .bind(key)
            .execute(&mut *self.tx)
            .await?;
        self.rewrite_flags(project, |flag| {
            flag.environments.remove(key);
        })
        .await?;
        self.bump(project, None).await?;
        self.notices.push(ChangeNotice::EnvironmentRemoved {
            project: project.to_string(),
            environment: key.to_string(),
        });
        self.change(
            "delete",
            "environment",
            Some(project),
            key,
            Some(to_value(&old)?),
            None,
        );
        Ok((None, old.version))
    }

    // ---- flags ----------------------------------------------------------------------------

    /// Writes `flag` (insert or update) with `version`, stamping bookkeeping fields.
    async fn store_flag(
        &mut self,
        project: &str,
        flag: &mut Flag,
        version: i64,
    ) -> StoreResult<()> {
        flag.version = version;
        flag.updated_at = Some(self.now.clone());
        let created_at = flag
            .created_at
            .get_or_insert_with(|| self.now.clone())
            .clone();
        let doc = serde_json::to_string(&*flag)?;
        let inserted = if version == 1 {
            sqlx::query("INSERT INTO flags (project, key, doc, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(project)
                .bind(&flag.key)
                .bind(&doc)
                .bind(version)
                .bind(&created_at)
                .bind(&self.now)
                .execute(&mut *self.tx)
                .await
        } else {
            sqlx::query("UPDATE flags SET doc = $1, version = $2, updated_at = $3 WHERE project = $4 AND key = $5")
                .bind(&doc)
                .bind(version)
                .bind(&self.now)
                .bind(project)
                .bind(&flag.key)
                .execute(&mut *self.tx)
                .await
        };
        match inserted {
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(format!(
                "flag {:?} in project {project:?}",
                flag.key
            ))),
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    async fn create_flag(
        &mut self,
        project: &str,
        mut flag: Flag,
    ) -> StoreResult<(Option<Value>, i64)> {
        let mut state = self.load_state(project, Flags::One(&flag.key)).await?;
        if state.flags.contains_key(&flag.key) {
            return Err(StoreError::AlreadyExists(format!(
                "flag {:?} in project {project:?}",
                flag.key
            )));
        }
        flag.normalize(state.env_keys.iter().map(String::as_str));
        if has_prerequisites(&flag) {
            state.flags = self.flags(project, Flags::All).await?;
        }
        validate::validate_flag(&flag, &state.view())?;
        flag.created_at = None;
        self.store_flag(project, &mut flag, 1).await?;
        self.bump(project, None).await?;
        let value = to_value(&flag)?;
        self.change(
            "create",
            "flag",
            Some(project),
            &flag.key,
            None,
            Some(value.clone()),
        );
        self.delta = RuleSetDelta::FlagWritten(Box::new(flag));
        Ok((Some(value), 1))
    }

    /// Replaces flag `key` by `build(old)`: the common path of PUT flag, PUT and PATCH config.
    async fn replace_flag(
        &mut self,
        project: &str,
        key: &str,
        expected: Option<i64>,
        build: impl FnOnce(&Flag) -> StoreResult<Flag>,
    ) -> StoreResult<(Option<Value>, i64)> {
        let mut state = self.load_state(project, Flags::One(key)).await?;
        let old =
            state.flags.get(key).cloned().ok_or_else(|| {
                StoreError::NotFound(format!("flag {key:?} in project {project:?}"))
            })?;
        check_version(expected, old.version)?;
        let mut flag = build(&old)?;
        flag.normalize(state.env_keys.iter().map(String::as_str));
        // Other flags matter when this one names prerequisites, when it is being archived
        // (its dependants block that), and when it drops a variant (a dependant's
        // prerequisite may require it).
        let drops_variant = old
            .variants
            .iter()
            .any(|v| !flag.variants.iter().any(|n| n.key == v.key));
        if has_prerequisites(&flag) || (flag.archived && !old.archived) || drops_variant {
            state.flags = self.flags(project, Flags::All).await?;
        }
        validate::validate_flag(&flag, &state.view())?;
        if flag.archived && !old.archived {
            let dependants = validate::flag_dependants(key, &state.view());
            if !dependants.is_empty() {
                return Err(StoreError::Conflict {
                    message: format!(
                        "flag {key:?} is a prerequisite of other flags; it cannot be archived"
                    ),
                    dependants,
                });
            }
        }
        flag.created_at = old.created_at.clone();
        let version = old.version + 1;
        let old_value = to_value(&old)?;
        self.store_flag(project, &mut flag, version).await?;
        // Any change to a flag changes what evaluations report (at least `flagVersion`), so
        // every environment's rule set is affected.
        self.bump(project, None).await?;
        let value = to_value(&flag)?;
        self.change(
            "update",
            "flag",
            Some(project),
            key,
            Some(old_value),
            Some(value.clone()),
        );
        self.delta = RuleSetDelta::FlagWritten(Box::new(flag));
        Ok((Some(value), version))
    }

    async fn delete_flag(
        &mut self,
        project: &str,
        key: &str,
        expected: Option<i64>,
    ) -> StoreResult<(Option<Value>, i64)> {
        let state = self.load_state(project, Flags::All).await?;
        let old = state
            .flags
            .get(key)
            .ok_or_else(|| StoreError::NotFound(format!("flag {key:?} in project {project:?}")))?;
        check_version(expected, old.version)?;
        let dependants = validate::flag_dependants(key, &state.view());
        if !dependants.is_empty() {
            return Err(StoreError::Conflict {
                message: format!("flag {key:?} is a prerequisite of other flags"),
                dependants,
            });
        }
        let (old_value, version) = (to_value(old)?, old.version);
        sqlx::query("DELETE FROM flags WHERE project = $1 AND key = $2")
            .bind(project)
            .bind(key)
            .execute(&mut *self.tx)
            .await?;
        self.bump(project, None).await?;
        self.change("delete", "flag", Some(project), key, Some(old_value), None);
        self.delta = RuleSetDelta::FlagDeleted(key.to_string());
        Ok((None, version))
    }

    // ---- segments -------------------------------------------------------------------------

    async fn store_segment(
        &mut self,
        project: &str,
        segment: &mut Segment,
        version: i64,
    ) -> StoreResult<()> {
        segment.version = version;
        segment.updated_at = Some(self.now.clone());
        let created_at = segment
            .created_at
            .get_or_insert_with(|| self.now.clone())
            .clone();
        let doc = serde_json::to_string(&*segment)?;
        let result = if version == 1 {
            sqlx::query("INSERT INTO segments (project, key, doc, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(project)
                .bind(&segment.key)
                .bind(&doc)
                .bind(version)
                .bind(&created_at)
                .bind(&self.now)
                .execute(&mut *self.tx)
                .await
        } else {
            sqlx::query("UPDATE segments SET doc = $1, version = $2, updated_at = $3 WHERE project = $4 AND key = $5")
                .bind(&doc)
                .bind(version)
                .bind(&self.now)
                .bind(project)
                .bind(&segment.key)
                .execute(&mut *self.tx)
                .await
        };
        match result {
            Err(e) if is_unique_violation(&e) => Err(StoreError::AlreadyExists(format!(
                "segment {:?} in project {project:?}",
                segment.key
            ))),
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    async fn create_segment(
        &mut self,
        project: &str,
        mut segment: Segment,
    ) -> StoreResult<(Option<Value>, i64)> {
        let state = self.load_state(project, Flags::None).await?;
        if state.segments.contains_key(&segment.key) {
            return Err(StoreError::AlreadyExists(format!(
                "segment {:?} in project {project:?}",
                segment.key
            )));
        }
        validate::validate_segment(&segment, &state.view())?;
        segment.created_at = None;
        self.store_segment(project, &mut segment, 1).await?;
        self.bump(project, None).await?;
        let value = to_value(&segment)?;
        self.change(
            "create",
            "segment",
            Some(project),
            &segment.key,
            None,
            Some(value.clone()),
        );
        Ok((Some(value), 1))
    }

    async fn update_segment(
        &mut self,
        project: &str,
        key: &str,
        expected: Option<i64>,
        mut segment: Segment,
    ) -> StoreResult<(Option<Value>, i64)> {
        if segment.key != key {
            return Err(key_mismatch("key", key));
        }
        let state = self.load_state(project, Flags::None).await?;
        let old = state.segments.get(key).ok_or_else(|| {
            StoreError::NotFound(format!("segment {key:?} in project {project:?}"))
        })?;
        check_version(expected, old.version)?;
        validate::validate_segment(&segment, &state.view())?;
        segment.created_at = old.created_at.clone();
        let (old_value, version) = (to_value(old)?, old.version + 1);
        self.store_segment(project, &mut segment, version).await?;
        self.bump(project, None).await?;
        let value = to_value(&segment)?;
        self.change(
            "update",
            "segment",
            Some(project),
            key,
            Some(old_value),
            Some(value.clone()),
        );
        Ok((Some(value), version))
    }

    async fn delete_segment(
        &mut self,
        project: &str,
        key: &str,
        expected: Option<i64>,
    ) -> StoreResult<(Option<Value>, i64)> {
        let state = self.load_state(project, Flags::All).await?;
        let old = state.segments.get(key).ok_or_else(|| {
            StoreError::NotFound(format!("segment {key:?} in project {project:?}"))
        })?;
        check_version(expected, old.version)?;
        let dependants = validate::segment_dependants(key, &state.view());
        if !dependants.is_empty() {
            return Err(StoreError::Conflict {
                message: format!("segment {key:?} is in use"),
                dependants,
            });
        }
        let (old_value, version) = (to_value(old)?, old.version);
        sqlx::query("DELETE FROM segments WHERE project = $1 AND key = $2")
            .bind(project)
            .bind(key)
            .execute(&mut *self.tx)
            .await?;
        self.bump(project, None).await?;
        self.change(
            "delete",
            "segment",
            Some(project),
            key,
            Some(old_value),
            None,
        );
        Ok((None, version))
    }

    // ---- tokens ---------------------------------------------------------------------------

    async fn create_token(&mut self, token: NewToken) -> StoreResult<(Option<Value>, i64)> {
        let mut errors = Vec::new();
        let field = |f: &str, m: &str| FieldError {
            field: f.to_string(),
            message: m.to_string(),
        };
        match token.kind {
            TokenKind::Admin => {
                if token.project.is_some() {
                    errors.push(field("project", "admin tokens are not bound to a project"));
                }
                if token.environment.is_some() {
                    errors.push(field(
                        "environment",
                        "admin tokens are not bound to an environment",
                    ));
                }
            }
            TokenKind::Server | TokenKind::Client => match (&token.project, &token.environment) {
                (Some(p), Some(e)) => {
                    let exists = sqlx::query(
                        "SELECT 1 AS one FROM environments WHERE project = $1 AND key = $2",
                    )
                    .bind(p)
                    .bind(e)
                    .fetch_optional(&mut *self.tx)
                    .await?
                    .is_some();
                    if !exists {
                        errors.push(field(
                            "environment",
                            &format!("no environment {e:?} in project {p:?}"),
                        ));
                    }
                }
                (p, e) => {
                    if p.is_none() {
                        errors.push(field("project", "server and client tokens need a project"));
                    }
                    if e.is_none() {
                        errors.push(field(
                            "environment",
                            "server and client tokens need an environment",
                        ));
                    }
                }
            },
        }
        if !errors.is_empty() {
            return Err(ValidationErrors(errors).into());
        }
        sqlx::query(
            "INSERT INTO tokens (id, name, kind, project, environment, role, secret_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, $8)",
        )
        .bind(&token.id)
        .bind(&token.name)
        .bind(token.kind.as_str())
        .bind(&token.project)
        .bind(&token.environment)
        .bind(&token.secret_hash)
        .bind(&self.now)
        .bind(&token.expires_at)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists(format!("token {:?}", token.id))
            } else {
                e.into()
            }
        })?;
        let record = self.token(&token.id).await?;
        let value = to_value(&record)?;
        self.notices.push(ChangeNotice::Tokens);
        self.change(
            "create",
            "token",
            token.project.as_deref(),
            &token.id,
            None,
            Some(value.clone()),
        );
        Ok((Some(value), 1))
    }

    async fn token(&mut self, id: &str) -> StoreResult<TokenRecord> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM tokens WHERE id = $1",
            crate::read::TOKEN_COLUMNS
        ))
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("token {id:?}")))?;
        decode_token(&row)
    }

    async fn delete_token(&mut self, id: &str) -> StoreResult<(Option<Value>, i64)> {
        let old = self.token(id).await?;
        sqlx::query("DELETE FROM tokens WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        self.notices.push(ChangeNotice::Tokens);
        self.change(
            "delete",
            "token",
            old.project.as_deref(),
            id,
            Some(to_value(&old)?),
            None,
        );
        Ok((None, 1))
    }
}

/// `old` with the config of `environment` replaced by `edit(current config)`.
fn with_config(
    old: &Flag,
    environment: &str,
    edit: impl FnOnce(&FlagConfig) -> StoreResult<FlagConfig>,
) -> StoreResult<Flag> {
    let current = old.environments.get(environment).ok_or_else(|| {
        StoreError::NotFound(format!("environment {environment:?} of flag {:?}", old.key))
    })?;
    let mut flag = old.clone();
    let config = edit(current)?;
    flag.environments.insert(environment.to_string(), config);
    Ok(flag)
}

/// Applies an RFC 7396 merge patch to a config; a result that is no longer a FlagConfig is a
/// validation error at the offending field.
fn merge_config(current: &FlagConfig, patch: &Value) -> StoreResult<FlagConfig> {
    let mut doc = to_value(current)?;
    json_patch::merge(&mut doc, patch);
    serde_path_to_error::deserialize::<_, FlagConfig>(doc).map_err(|e| {
        let path = e.path().to_string();
        StoreError::Invalid(ValidationErrors(vec![FieldError {
            field: if path == "." { String::new() } else { path },
            message: e.into_inner().to_string(),
        }]))
    })
}

/// A write of one config validates the whole flag; its errors must name fields of the request
/// body, which is the config alone.
fn relative_to_config(e: StoreError, environment: &str) -> StoreError {
    match e {
        StoreError::Invalid(errors) => StoreError::Invalid(errors.relative_to_config(environment)),
        other => other,
    }
}

/// The config of `environment` out of a flag document (the answer to PUT/PATCH of a config).
fn config_of(flag: Option<Value>, environment: &str) -> Option<Value> {
    flag.and_then(|mut f| {
        f.get_mut("environments")?
            .get_mut(environment)
            .map(Value::take)
    })
}
