//! Flags: create, replace (PUT and PATCH of the flag, PUT and PATCH of one environment's
//! config), delete.
//! A flag write reports itself as the write's `RuleSetDelta`, so rule sets can be updated in
//! memory.

use hata_core::model::{Flag, FlagConfig};
use hata_core::validate::{self, FieldError, ValidationErrors};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::document::{absent, current, impl_document};
use super::engine::{key_mismatch, to_value, WriteTx};
use super::state::Flags;
use super::Expected;
use crate::change::ResourceType;
use crate::error::{StoreError, StoreResult};
use crate::notice::RuleSetDelta;

/// Whether validating `flag` needs the project's other flags (see `Flags`).
fn has_prerequisites(flag: &Flag) -> bool {
    flag.environments
        .values()
        .any(|config| !config.prerequisites.is_empty())
}

impl_document!(Flag {
    table: "flags",
    resource: ResourceType::Flag,
    in_use: "is a prerequisite of other flags",
    loaded: flags,
    dependants: validate::flag_dependants,
    list_columns: |f| crate::flag_list::ListColumns::of(f).map(Some),
});

impl WriteTx {
    pub(super) async fn create_flag(
        &mut self,
        project: &str,
        mut flag: Flag,
    ) -> StoreResult<(Option<Value>, i64)> {
        let mut state = self.load_state(project, Flags::One(&flag.key)).await?;
        absent::<Flag>(&state, project, &flag.key)?;
        // A new flag with a protected environment's config named in the body changes what
        // that environment serves; one that leaves it to the default (off) does not.
        self.refuse_protected(project, |protected| {
            protected
                .iter()
                .find(|e| flag.environments.contains_key(*e))
                .cloned()
        })
        .await?;
        flag.normalize(state.env_keys.iter().map(String::as_str));
        if has_prerequisites(&flag) {
            state.flags = self.flags(project, Flags::All).await?;
        }
        validate::validate_flag(&flag, &state.view())?;
        self.put_flag(project, flag, None).await
    }

    /// PUT of a flag. Environments the body does not name keep their config: a flag-level
    /// edit must not reset targeting it never mentioned.
    pub(super) async fn update_flag(
        &mut self,
        project: &str,
        key: &str,
        expected: &Expected,
        mut flag: Flag,
    ) -> StoreResult<(Option<Value>, i64)> {
        if flag.key != key {
            return Err(key_mismatch("key", key));
        }
        self.replace_flag(project, key, expected, Unchanged::Rewrite, |old| {
            for (environment, config) in &old.environments {
                flag.environments
                    .entry(environment.clone())
                    .or_insert_with(|| config.clone());
            }
            Ok(flag)
        })
        .await
    }

    /// PATCH of a flag: an RFC 7396 merge patch of its flag-level fields. The key and type
    /// cannot change, and configs change one environment at a time (`replace_config`).
    pub(super) async fn patch_flag(
        &mut self,
        project: &str,
        key: &str,
        expected: &Expected,
        patch: &Value,
    ) -> StoreResult<(Option<Value>, i64)> {
        self.replace_flag(project, key, expected, Unchanged::Keep, |old| {
            merge_flag(old, patch)
        })
        .await
    }

    /// Replaces the config of `environment` in flag `key` by `edit(current config)`: PUT and
    /// PATCH of a config. The answer is the config alone, as is every error's field.
    pub(super) async fn replace_config(
        &mut self,
        project: &str,
        key: &str,
        environment: &str,
        expected: &Expected,
        unchanged: Unchanged,
        edit: impl FnOnce(&FlagConfig) -> StoreResult<FlagConfig>,
    ) -> StoreResult<(Option<Value>, i64)> {
        let (value, version) = self
            .replace_flag(project, key, expected, unchanged, |old| {
                with_config(old, environment, edit)
            })
            .await
            .map_err(|e| relative_to_config(e, environment))?;
        Ok((config_of(value, environment), version))
    }

    /// Replaces flag `key` by `build(old)`: the common path of PUT and PATCH of a flag and of
    /// a config.
    async fn replace_flag(
        &mut self,
        project: &str,
        key: &str,
        expected: &Expected,
        unchanged: Unchanged,
        build: impl FnOnce(&Flag) -> StoreResult<Flag>,
    ) -> StoreResult<(Option<Value>, i64)> {
        let mut state = self.load_state(project, Flags::One(key)).await?;
        let old = current::<Flag>(&state, project, key, expected)?.clone();
        let mut flag = build(&old)?;
        flag.normalize(state.env_keys.iter().map(String::as_str));
        if unchanged == Unchanged::Keep && flag == old {
            // Nothing to write: no version, revision or change record for a no-op.
            return Ok((Some(to_value(&old)?), old.version));
        }
        self.refuse_protected(project, |protected| {
            super::protected::flag_change_touches(&old, &flag, protected)
        })
        .await?;
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
        self.put_flag(project, flag, Some(&old)).await
    }

    /// Stores a validated flag (`put_document`); the write's delta is that flag, as stored.
    async fn put_flag(
        &mut self,
        project: &str,
        flag: Flag,
        old: Option<&Flag>,
    ) -> StoreResult<(Option<Value>, i64)> {
        let (value, flag) = self.put_document(project, flag, old).await?;
        let version = flag.version;
        self.delta = RuleSetDelta::FlagWritten(Box::new(flag));
        Ok((Some(value), version))
    }

    pub(super) async fn delete_flag(
        &mut self,
        project: &str,
        key: &str,
        expected: &Expected,
    ) -> StoreResult<(Option<Value>, i64)> {
        // Deleting a flag removes it from every environment.
        self.refuse_protected(project, |protected| protected.first().cloned())
            .await?;
        let deleted = self.delete_document::<Flag>(project, key, expected).await?;
        self.delta = RuleSetDelta::FlagDeleted(key.to_string());
        Ok(deleted)
    }
}

/// What a replace does when the result equals the stored flag.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Unchanged {
    /// Writes it anyway, as a new version (PUT: the caller said "this is the flag").
    Rewrite,
    /// Writes nothing and answers the stored flag (a merge patch that changes nothing).
    Keep,
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

/// Applies an RFC 7396 merge patch to `current`; a result that no longer deserialises as `T`
/// is a validation error at the offending field. The patch must be an object (RFC 7396 would
/// replace the whole document by anything else).
pub(super) fn merge_patch<T: Serialize + DeserializeOwned>(
    current: &T,
    patch: &Value,
) -> StoreResult<T> {
    if !patch.is_object() {
        return Err(invalid(
            "",
            "a merge patch must be a JSON object".to_string(),
        ));
    }
    let mut doc = to_value(current)?;
    json_patch::merge(&mut doc, patch);
    serde_path_to_error::deserialize::<_, T>(doc).map_err(|e| {
        let path = e.path().to_string();
        invalid(
            if path == "." { "" } else { &path },
            e.into_inner().to_string(),
        )
    })
}

/// `old` with a merge patch of its flag-level fields applied. The bookkeeping fields (version,
/// times) are the store's: ignored in the patch, as in a PUT.
fn merge_flag(old: &Flag, patch: &Value) -> StoreResult<Flag> {
    let current = to_value(old)?;
    for (field, why) in [
        ("key", "keys cannot be renamed"),
        ("type", "a flag's type cannot be changed"),
    ] {
        if patch.get(field).is_some_and(|v| *v != current[field]) {
            return Err(invalid(field, why.to_string()));
        }
    }
    if patch.get("environments").is_some() {
        return Err(invalid(
            "environments",
            "a flag's configs are patched one environment at a time: \
             PATCH …/flags/{flag}/environments/{env}"
                .to_string(),
        ));
    }
    let mut flag: Flag = merge_patch(old, patch)?;
    flag.version = old.version;
    flag.created_at.clone_from(&old.created_at);
    flag.updated_at.clone_from(&old.updated_at);
    Ok(flag)
}

fn invalid(field: &str, message: String) -> StoreError {
    StoreError::Invalid(ValidationErrors(vec![FieldError {
        field: field.to_string(),
        message,
    }]))
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
