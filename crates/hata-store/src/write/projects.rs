//! Projects: create (with their first environments), update, delete (with everything in them).

use hata_core::model::{Environment, Project};
use hata_core::validate::{self, FieldError, ValidationErrors};
use serde_json::Value;

use super::engine::{check_version, is_unique_violation, key_mismatch, to_value, WriteTx};
use super::Expected;
use crate::change::{Action, ResourceType};
use crate::error::{StoreError, StoreResult};
use crate::notice::ChangeNotice;

/// A project's environments when its creation names none: key, name, protected. Production
/// is protected: deleting it needs unprotecting first, and the MFA policy guards its changes.
const DEFAULT_ENVIRONMENTS: [(&str, &str, bool); 2] = [
    ("development", "Development", false),
    ("production", "Production", true),
];

impl WriteTx {
    pub(super) async fn create_project(
        &mut self,
        project: Project,
        environments: Option<Vec<Environment>>,
    ) -> StoreResult<(Option<Value>, i64)> {
        let environments = environments.unwrap_or_else(|| {
            DEFAULT_ENVIRONMENTS
                .iter()
                .map(|&(key, name, protected)| Environment {
                    key: key.to_string(),
                    name: name.to_string(),
                    description: String::new(),
                    protected,
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
            Action::Create,
            ResourceType::Project,
            Some(&project.key),
            &project.key,
            None,
            Some(value.clone()),
        );
        Ok((Some(value), 1))
    }

    /// A project as the API shows it: its fields plus its environments.
    pub(super) async fn project_value(&mut self, key: &str) -> StoreResult<Value> {
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

    pub(super) async fn update_project(
        &mut self,
        key: &str,
        expected: &Expected,
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
            Action::Update,
            ResourceType::Project,
            Some(key),
            key,
            Some(old),
            Some(value.clone()),
        );
        Ok((Some(value), current + 1))
    }

    pub(super) async fn delete_project(
        &mut self,
        key: &str,
        expected: &Expected,
    ) -> StoreResult<(Option<Value>, i64)> {
        let current = self.project_version(key).await?;
        check_version(expected, current)?;
        self.refuse_protected(key, |protected| protected.first().cloned())
            .await?;
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
        self.change(
            Action::Delete,
            ResourceType::Project,
            Some(key),
            key,
            Some(old),
            None,
        );
        Ok((None, current))
    }
}
