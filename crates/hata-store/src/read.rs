//! Reads: single resources, pages of lists, an environment's whole state for a snapshot.
//! Reads never write; on SQLite they use their own connections so they never wait for a writer.

use std::collections::BTreeSet;

use hata_core::model::{Environment, Flag, Project, Segment};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::{StoreError, StoreResult};
use crate::notice::EnvRevision;
use crate::records::{
    EnvironmentRecord, EnvironmentState, FlagFilter, Page, ProjectRecord, Role, TokenKind,
    TokenRecord,
};
use crate::Store;

pub(crate) const ENV_COLUMNS: &str =
    "id, key, name, description, protected, version, revision, revised_at, created_at, updated_at";
pub(crate) const TOKEN_COLUMNS: &str =
    "id, name, kind, project, environment, role, secret_hash, created_at, expires_at, \
     previous_secret_hash, previous_valid_until, rotated_at, last_used_at";

/// The largest page a list returns, whatever `limit` asks for.
pub const MAX_PAGE: usize = 1000;

pub(crate) fn decode_project(row: &AnyRow) -> StoreResult<ProjectRecord> {
    Ok(ProjectRecord {
        project: Project {
            key: row.try_get("key")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
        },
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(crate) fn decode_environment(row: &AnyRow) -> StoreResult<EnvironmentRecord> {
    Ok(EnvironmentRecord {
        environment: Environment {
            key: row.try_get("key")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            protected: row.try_get::<i64, _>("protected")? != 0,
        },
        id: row.try_get("id")?,
        version: row.try_get("version")?,
        revision: row.try_get("revision")?,
        revised_at: row.try_get("revised_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(crate) fn decode_flag(row: &AnyRow) -> StoreResult<Flag> {
    let doc: String = row.try_get("doc")?;
    Ok(serde_json::from_str(&doc)?)
}

pub(crate) fn decode_segment(row: &AnyRow) -> StoreResult<Segment> {
    let doc: String = row.try_get("doc")?;
    Ok(serde_json::from_str(&doc)?)
}

pub(crate) fn decode_token(row: &AnyRow) -> StoreResult<TokenRecord> {
    let kind: String = row.try_get("kind")?;
    Ok(TokenRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        kind: TokenKind::parse(&kind)
            .ok_or_else(|| StoreError::Internal(format!("unknown token kind {kind:?}")))?,
        project: row.try_get("project")?,
        environment: row.try_get("environment")?,
        role: row
            .try_get::<Option<String>, _>("role")?
            .map(|r| {
                Role::parse(&r).ok_or_else(|| StoreError::Internal(format!("unknown role {r:?}")))
            })
            .transpose()?,
        secret_hash: row.try_get("secret_hash")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        previous_secret_hash: row.try_get("previous_secret_hash")?,
        previous_valid_until: row.try_get("previous_valid_until")?,
        rotated_at: row.try_get("rotated_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

/// ` AND <column> IN ($first, $first+1, …)` with one placeholder per key of `among` (bound
/// by the caller, in order, after its own parameters); empty without `among`.
fn among_filter(column: &str, among: Option<&[String]>, first: usize) -> String {
    among
        .map(|keys| {
            let places: Vec<String> = (0..keys.len()).map(|i| format!("${}", i + first)).collect();
            format!(" AND {column} IN ({})", places.join(", "))
        })
        .unwrap_or_default()
}

/// Cuts `items` (sorted by key, all after the cursor) into a page of `limit`.
pub(crate) fn page<T>(items: Vec<T>, limit: usize, key: impl Fn(&T) -> &str) -> Page<T> {
    page_by(items, limit, |t| key(t).to_string())
}

/// Like `page`, with a cursor built from the last item.
fn page_by<T>(mut items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> String) -> Page<T> {
    let limit = limit.clamp(1, MAX_PAGE);
    let next_cursor = (items.len() > limit).then(|| cursor(&items[limit - 1]));
    items.truncate(limit);
    Page { items, next_cursor }
}

impl Store {
    #[tracing::instrument(name = "store.list_projects", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "list_projects"))]
    pub async fn list_projects(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Page<ProjectRecord>> {
        self.list_projects_among(None, limit, cursor).await
    }

    /// A page of projects, only those in `among` when it is given (the projects a caller may
    /// see).
    #[tracing::instrument(name = "store.list_projects_among", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "list_projects_among"))]
    pub async fn list_projects_among(
        &self,
        among: Option<&[String]>,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Page<ProjectRecord>> {
        let limit = limit.clamp(1, MAX_PAGE);
        if among.is_some_and(|keys| keys.is_empty()) {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let filter = among_filter("key", among, 3);
        let sql = format!(
            "SELECT key, name, description, version, created_at, updated_at FROM projects WHERE key > $1{filter} ORDER BY key LIMIT $2"
        );
        let mut query = sqlx::query(&sql)
            .bind(cursor.unwrap_or(""))
            .bind(limit as i64 + 1);
        for key in among.unwrap_or_default() {
            query = query.bind(key);
        }
        let rows = query.fetch_all(self.reader()).await?;
        let items = rows
            .iter()
            .map(decode_project)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page(items, limit, |p| &p.project.key))
    }

    #[tracing::instrument(name = "store.get_project", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "get_project"))]
    pub async fn get_project(&self, key: &str) -> StoreResult<ProjectRecord> {
        let row = sqlx::query("SELECT key, name, description, version, created_at, updated_at FROM projects WHERE key = $1")
            .bind(key)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("project {key:?}")))?;
        decode_project(&row)
    }

    #[tracing::instrument(name = "store.list_environments", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "list_environments"))]
    pub async fn list_environments(&self, project: &str) -> StoreResult<Vec<EnvironmentRecord>> {
        self.get_project(project).await?;
        let rows = sqlx::query(&format!(
            "SELECT {ENV_COLUMNS} FROM environments WHERE project = $1 ORDER BY position"
        ))
        .bind(project)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(decode_environment).collect()
    }

    /// A page of a project's environments in their order (creation order). The cursor is
    /// the last item's position, which never changes and is never reused within a project.
    #[tracing::instrument(name = "store.page_environments", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "page_environments"))]
    pub async fn page_environments(
        &self,
        project: &str,
        limit: usize,
        after_position: Option<i64>,
    ) -> StoreResult<Page<EnvironmentRecord>> {
        self.get_project(project).await?;
        let limit = limit.clamp(1, MAX_PAGE);
        let rows = sqlx::query(&format!(
            "SELECT {ENV_COLUMNS}, position FROM environments WHERE project = $1 AND position > $2 ORDER BY position LIMIT $3"
        ))
        .bind(project)
        .bind(after_position.unwrap_or(-1))
        .bind(limit as i64 + 1)
        .fetch_all(self.reader())
        .await?;
        let mut items = Vec::with_capacity(rows.len());
        let mut positions = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push(decode_environment(row)?);
            positions.push(row.try_get::<i64, _>("position")?);
        }
        let next_cursor = (items.len() > limit).then(|| positions[limit - 1].to_string());
        items.truncate(limit);
        Ok(Page { items, next_cursor })
    }

    #[tracing::instrument(name = "store.get_environment", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "get_environment"))]
    pub async fn get_environment(
        &self,
        project: &str,
        key: &str,
    ) -> StoreResult<EnvironmentRecord> {
        self.get_project(project).await?;
        let row = sqlx::query(&format!(
            "SELECT {ENV_COLUMNS} FROM environments WHERE project = $1 AND key = $2"
        ))
        .bind(project)
        .bind(key)
        .fetch_optional(self.reader())
        .await?
        .ok_or_else(|| {
            StoreError::NotFound(format!("environment {key:?} in project {project:?}"))
        })?;
        decode_environment(&row)
    }

    /// Flags of a project in key order, filtered. Filters run in Rust over the project's flags:
    /// a project holds thousands of flags at most, and tags live inside the JSON document.
    #[tracing::instrument(name = "store.list_flags", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "list_flags"))]
    pub async fn list_flags(
        &self,
        project: &str,
        filter: &FlagFilter,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Flag>> {
        let _timer = self.timings.start(crate::timing::Operation::ListFlags);
        self.get_project(project).await?;
        let rows =
            sqlx::query("SELECT doc FROM flags WHERE project = $1 AND key > $2 ORDER BY key")
                .bind(project)
                .bind(cursor.unwrap_or(""))
                .fetch_all(self.reader())
                .await?;
        let q = filter.q.as_ref().map(|q| q.to_lowercase());
        let wanted_archived = filter.archived.unwrap_or(false);
        let limit = limit.clamp(1, MAX_PAGE);
        let mut items = Vec::new();
        for row in &rows {
            let flag = decode_flag(row)?;
            let matches = flag.archived == wanted_archived
                && filter.tag.as_ref().is_none_or(|t| flag.tags.contains(t))
                && filter.owner.as_ref().is_none_or(|o| &flag.owner == o)
                && filter.flag_type.is_none_or(|t| flag.flag_type == t)
                && filter
                    .only
                    .as_ref()
                    .is_none_or(|keys| keys.contains(&flag.key))
                && q.as_ref().is_none_or(|q| {
                    flag.key.contains(q.as_str())
                        || flag.name.to_lowercase().contains(q.as_str())
                        || flag.description.to_lowercase().contains(q.as_str())
                });
            if matches {
                items.push(flag);
                if items.len() > limit {
                    break;
                }
            }
        }
        Ok(page(items, limit, |f| &f.key))
    }

    /// Every flag of every project, archived ones too, as (project, flag), in key order (the
    /// stale-flag report).
    pub async fn all_flags(&self) -> StoreResult<Vec<(String, Flag)>> {
        let rows = sqlx::query("SELECT project, doc FROM flags ORDER BY project, key")
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("project")?, decode_flag(r)?)))
            .collect()
    }

    #[tracing::instrument(name = "store.get_flag", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "get_flag"))]
    pub async fn get_flag(&self, project: &str, key: &str) -> StoreResult<Flag> {
        let _timer = self.timings.start(crate::timing::Operation::GetFlag);
        self.get_project(project).await?;
        let row = sqlx::query("SELECT doc FROM flags WHERE project = $1 AND key = $2")
            .bind(project)
            .bind(key)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("flag {key:?} in project {project:?}")))?;
        decode_flag(&row)
    }

    #[tracing::instrument(name = "store.list_segments", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "list_segments"))]
    pub async fn list_segments(
        &self,
        project: &str,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Page<Segment>> {
        self.get_project(project).await?;
        let limit = limit.clamp(1, MAX_PAGE);
        let rows = sqlx::query(
            "SELECT doc FROM segments WHERE project = $1 AND key > $2 ORDER BY key LIMIT $3",
        )
        .bind(project)
        .bind(cursor.unwrap_or(""))
        .bind(limit as i64 + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows
            .iter()
            .map(decode_segment)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page(items, limit, |s| &s.key))
    }

    #[tracing::instrument(name = "store.get_segment", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "get_segment"))]
    pub async fn get_segment(&self, project: &str, key: &str) -> StoreResult<Segment> {
        self.get_project(project).await?;
        let row = sqlx::query("SELECT doc FROM segments WHERE project = $1 AND key = $2")
            .bind(project)
            .bind(key)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!("segment {key:?} in project {project:?}"))
            })?;
        decode_segment(&row)
    }

    /// Every token (without secrets, but with their hashes for the server's token cache).
    /// Records when tokens were last used: `(token id, RFC 3339 time)` pairs, batched by the
    /// server. Telemetry, outside the write path (nothing is versioned or recorded); a time
    /// never moves backwards, and a deleted token is skipped.
    pub async fn record_token_use(&self, uses: &[(String, String)]) -> StoreResult<()> {
        let _timer = self.timings.start(crate::timing::Operation::RecordTokenUse);
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer().begin().await?;
        for (id, at) in uses {
            sqlx::query(
                "UPDATE tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
            )
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    #[tracing::instrument(name = "store.list_tokens", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "list_tokens"))]
    pub async fn list_tokens(&self) -> StoreResult<Vec<TokenRecord>> {
        let _timer = self.timings.start(crate::timing::Operation::ListTokens);
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens ORDER BY created_at, id"
        ))
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(decode_token).collect()
    }

    /// A page of tokens, oldest first. The cursor is `<created_at>|<id>` of the last item.
    #[tracing::instrument(name = "store.page_tokens", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "page_tokens"))]
    pub async fn page_tokens(
        &self,
        limit: usize,
        after: Option<(&str, &str)>,
    ) -> StoreResult<Page<TokenRecord>> {
        self.page_tokens_among(None, limit, after).await
    }

    #[tracing::instrument(name = "store.get_token", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "get_token"))]
    pub async fn get_token(&self, id: &str) -> StoreResult<TokenRecord> {
        let row = sqlx::query(&format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("token {id:?}")))?;
        decode_token(&row)
    }

    /// A page of tokens, only those bound to a project in `among` when it is given (the
    /// projects whose tokens a caller manages).
    #[tracing::instrument(name = "store.page_tokens_among", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "page_tokens_among"))]
    pub async fn page_tokens_among(
        &self,
        among: Option<&[String]>,
        limit: usize,
        after: Option<(&str, &str)>,
    ) -> StoreResult<Page<TokenRecord>> {
        let limit = limit.clamp(1, MAX_PAGE);
        if among.is_some_and(|keys| keys.is_empty()) {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let (created_at, id) = after.unwrap_or(("", ""));
        let filter = among_filter("project", among, 4);
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE (created_at > $1 OR (created_at = $1 AND id > $2)){filter} ORDER BY created_at, id LIMIT $3"
        );
        let mut query = sqlx::query(&sql)
            .bind(created_at)
            .bind(id)
            .bind(limit as i64 + 1);
        for key in among.unwrap_or_default() {
            query = query.bind(key);
        }
        let rows = query.fetch_all(self.reader()).await?;
        let items = rows
            .iter()
            .map(decode_token)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page_by(items, limit, |t| {
            format!("{}|{}", t.created_at, t.id)
        }))
    }

    /// One environment's flags and segments at one revision, read in one transaction so the
    /// revision matches the content.
    #[tracing::instrument(name = "store.environment_state", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "environment_state"))]
    pub async fn environment_state(
        &self,
        project: &str,
        environment: &str,
    ) -> StoreResult<EnvironmentState> {
        let _timer = self.timings.start(crate::timing::Operation::LoadRuleSet);
        let mut tx = self.reader().begin().await?;
        let env_row = sqlx::query(&format!(
            "SELECT {ENV_COLUMNS} FROM environments WHERE project = $1 AND key = $2"
        ))
        .bind(project)
        .bind(environment)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| {
            StoreError::NotFound(format!(
                "environment {environment:?} in project {project:?}"
            ))
        })?;
        let env = decode_environment(&env_row)?;
        let flags = sqlx::query("SELECT doc FROM flags WHERE project = $1 ORDER BY key")
            .bind(project)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(decode_flag)
            .collect::<StoreResult<Vec<_>>>()?;
        let segments = sqlx::query("SELECT doc FROM segments WHERE project = $1 ORDER BY key")
            .bind(project)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(decode_segment)
            .collect::<StoreResult<Vec<_>>>()?;
        tx.commit().await?;
        Ok(EnvironmentState {
            project: project.to_string(),
            environment: env,
            flags,
            segments,
        })
    }

    /// The id and current revision of every environment: what a replica compares its
    /// snapshots with at start and in its periodic repair check. The id matters as much as
    /// the revision: an environment deleted and created again starts again at revision 1.
    pub async fn environment_revisions(&self) -> StoreResult<Vec<(i64, EnvRevision)>> {
        let _timer = self
            .timings
            .start(crate::timing::Operation::RuleSetRevisions);
        let rows = sqlx::query(
            "SELECT id, project, key, revision FROM environments ORDER BY project, key",
        )
        .fetch_all(self.reader())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    EnvRevision {
                        project: r.try_get("project")?,
                        environment: r.try_get("key")?,
                        revision: r.try_get("revision")?,
                    },
                ))
            })
            .collect()
    }

    /// Keys of every project (for loading all snapshots at start).
    pub async fn project_keys(&self) -> StoreResult<BTreeSet<String>> {
        let rows = sqlx::query("SELECT key FROM projects")
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(|r| Ok(r.try_get("key")?)).collect()
    }

    /// A value from the `meta` table (installation-wide settings such as the ticket secret).
    pub async fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(self.reader())
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    /// Sets `key` to `value` unless it already has one; returns the value that is stored.
    /// Installation settings only; resources go through `write`.
    pub async fn meta_init(&self, key: &str, value: &str) -> StoreResult<String> {
        sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
            .bind(key)
            .bind(value)
            .execute(self.writer())
            .await?;
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_one(self.writer())
            .await?;
        Ok(row.try_get("value")?)
    }
}
