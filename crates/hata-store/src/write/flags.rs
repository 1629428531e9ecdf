//! Flags: create, replace (PUT of the flag, PUT and PATCH of one environment's config), delete.
//! A flag write reports itself as the write's `RuleSetDelta`, so rule sets can be updated in
//! memory.

use hata_core::model::{Flag, FlagConfig};
use hata_core::validate::{self, FieldError, ValidationErrors};
use serde_json::Value;

use super::engine::{check_version, is_unique_violation, key_mismatch, to_value, WriteTx};
use super::state::Flags;
use crate::change::{Action, ResourceType};
use crate::error::{StoreError, StoreResult};
use crate::notice::RuleSetDelta;

/// Whether validating `flag` needs the project's other flags (see `Flags`).
fn has_prerequisites(flag: &Flag) -> bool {
    flag.environments
        .values()
        .any(|config| !config.prerequisites.is_empty())
}

impl WriteTx {
    /// Writes `flag` (insert or update) with `version`, stamping bookkeeping fields.
    pub(super) async fn store_flag(
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

    pub(super) async fn create_flag(
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
            Action::Create,
            ResourceType::Flag,
            Some(project),
            &flag.key,
            None,
            Some(value.clone()),
        );
        self.delta = RuleSetDelta::FlagWritten(Box::new(flag));
        Ok((Some(value), 1))
    }

    pub(super) async fn update_flag(
        &mut self,
        project: &str,
        key: &str,
        expected: Option<i64>,
        flag: Flag,
    ) -> StoreResult<(Option<Value>, i64)> {
        if flag.key != key {
            return Err(key_mismatch("key", key));
        }
        self.replace_flag(project, key, expected, |_| Ok(flag))
            .await
    }

    /// Replaces the config of `environment` in flag `key` by `edit(current config)`: PUT and
    /// PATCH of a config. The answer is the config alone, as is every error's field.
    pub(super) async fn replace_config(
        &mut self,
        project: &str,
        key: &str,
        environment: &str,
        expected: Option<i64>,
        edit: impl FnOnce(&FlagConfig) -> StoreResult<FlagConfig>,
    ) -> StoreResult<(Option<Value>, i64)> {
        let (value, version) = self
            .replace_flag(project, key, expected, |old| {
                with_config(old, environment, edit)
            })
            .await
            .map_err(|e| relative_to_config(e, environment))?;
        Ok((config_of(value, environment), version))
    }

    /// Replaces flag `key` by `build(old)`: the common path of PUT flag, PUT and PATCH config.
    pub(super) async fn replace_flag(
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
            Action::Update,
            ResourceType::Flag,
            Some(project),
            key,
            Some(old_value),
            Some(value.clone()),
        );
        self.delta = RuleSetDelta::FlagWritten(Box::new(flag));
        Ok((Some(value), version))
    }

    pub(super) async fn delete_flag(
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
        self.change(
            Action::Delete,
            ResourceType::Flag,
            Some(project),
            key,
            Some(old_value),
            None,
        );
        self.delta = RuleSetDelta::FlagDeleted(key.to_string());
        Ok((None, version))
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
pub(super) fn merge_config(current: &FlagConfig, patch: &Value) -> StoreResult<FlagConfig> {
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
