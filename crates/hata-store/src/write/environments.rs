//! Environments: create, update, delete. Flags hold a config per environment, so creating or
//! deleting one rewrites every flag of the project.

use hata_core::model::{Environment, Flag};
use hata_core::validate;
use serde_json::Value;
use sqlx::Row;

use super::engine::{check_version, is_unique_violation, key_mismatch, to_value, WriteTx};
use super::state::Flags;
use super::Expected;
use crate::change::{Action, ResourceType};
use crate::error::{StoreError, StoreResult};
use crate::notice::{ChangeNotice, EnvRevision};
use crate::read::{decode_environment, ENV_COLUMNS};
use crate::records::EnvironmentRecord;

impl WriteTx {
    pub(super) async fn environments(
        &mut self,
        project: &str,
    ) -> StoreResult<Vec<EnvironmentRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {ENV_COLUMNS} FROM environments WHERE project = $1 ORDER BY position"
        ))
        .bind(project)
        .fetch_all(&mut *self.tx)
        .await?;
        rows.iter().map(decode_environment).collect()
    }

    pub(super) async fn insert_environment(
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
        self.revised(rev, inserted.try_get("id")?);
        Ok(())
    }

    pub(super) async fn environment(
        &mut self,
        project: &str,
        key: &str,
    ) -> StoreResult<EnvironmentRecord> {
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
    pub(super) async fn rewrite_flags(
        &mut self,
        project: &str,
        mut edit: impl FnMut(&mut Flag),
    ) -> StoreResult<()> {
        for mut flag in self.flags(project, Flags::All).await?.into_values() {
            edit(&mut flag);
            let (version, created_at) = (flag.version + 1, flag.created_at.clone());
            self.store_document(project, &mut flag, version, created_at)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn create_environment(
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
        self.bump(project).await?;
        let value = to_value(&self.environment(project, &env.key).await?)?;
        self.change(
            Action::Create,
            ResourceType::Environment,
            Some(project),
            &env.key,
            None,
            Some(value.clone()),
        );
        Ok((Some(value), 1))
    }

    pub(super) async fn update_environment(
        &mut self,
        project: &str,
        key: &str,
        expected: &Expected,
        env: Environment,
    ) -> StoreResult<(Option<Value>, i64)> {
        if env.key != key {
            return Err(key_mismatch("key", key));
        }
        validate::validate_environment(&env)?;
        let old = self.environment(project, key).await?;
        check_version(expected, old.version)?;
        if old.environment.protected || env.protected {
            self.refuse_protected(project, |_| Some(key.to_string()))
                .await?;
        }
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
            Action::Update,
            ResourceType::Environment,
            Some(project),
            key,
            Some(old),
            Some(new_value.clone()),
        );
        Ok((Some(new_value), new.version))
    }

    pub(super) async fn delete_environment(
        &mut self,
        project: &str,
        key: &str,
        expected: &Expected,
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
        self.bump(project).await?;
        self.notices.push(ChangeNotice::EnvironmentRemoved {
            project: project.to_string(),
            environment: key.to_string(),
        });
        self.change(
            Action::Delete,
            ResourceType::Environment,
            Some(project),
            key,
            Some(to_value(&old)?),
            None,
        );
        Ok((None, old.version))
    }
}
