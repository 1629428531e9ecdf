//! Versioned documents: flags and segments are each stored whole, as the model type itself
//! (with its version and times), in a table of the same shape (`project, key, doc, version,
//! created_at, updated_at`). One writer serves both: what differs between them (validation, and
//! what a flag write tells the rule sets) stays in `flags` and `segments`.

use std::collections::BTreeMap;

use hata_core::validate::ProjectView;
use serde::Serialize;
use serde_json::Value;

use super::engine::{check_version, is_unique_violation, to_value, WriteTx};
use super::state::{Flags, ProjectState};
use super::Expected;
use crate::change::{Action, ResourceType};
use crate::error::{StoreError, StoreResult};
use crate::flag_list::ListColumns;

/// A resource stored as one versioned JSON document. Implemented with `impl_document!`.
pub(super) trait Document: Serialize + Sized {
    /// Its table; a literal, never input.
    const TABLE: &'static str;
    const TYPE: ResourceType;
    /// Ends "<type> <key> …" in the conflict a delete meets when others depend on it.
    const IN_USE: &'static str;

    fn key(&self) -> &str;
    fn version(&self) -> i64;
    fn created_at(&self) -> Option<&String>;
    /// Sets the fields the store keeps: `version`, `created_at`, `updated_at`.
    fn stamp(&mut self, version: i64, created_at: String, updated_at: String);
    /// The loaded documents of this type.
    fn loaded(state: &ProjectState) -> &BTreeMap<String, Self>;
    /// Who depends on the document `key` (what blocks deleting it).
    fn dependants(key: &str, view: &ProjectView) -> Vec<String>;
    /// The columns a list sorts and filters by, kept beside the document (flags only).
    fn list_columns(&self) -> StoreResult<Option<ListColumns>>;
}

/// Implements `Document` for a model type with `key`, `version`, `created_at` and `updated_at`
/// fields (the model's bookkeeping).
macro_rules! impl_document {
    ($type:ty {
        table: $table:literal,
        resource: $resource:expr,
        in_use: $in_use:literal,
        loaded: $loaded:ident,
        dependants: $dependants:path,
        list_columns: $list_columns:expr $(,)?
    }) => {
        impl $crate::write::document::Document for $type {
            const TABLE: &'static str = $table;
            const TYPE: $crate::change::ResourceType = $resource;
            const IN_USE: &'static str = $in_use;

            fn key(&self) -> &str {
                &self.key
            }

            fn version(&self) -> i64 {
                self.version
            }

            fn created_at(&self) -> Option<&String> {
                self.created_at.as_ref()
            }

            fn stamp(&mut self, version: i64, created_at: String, updated_at: String) {
                self.version = version;
                self.created_at = Some(created_at);
                self.updated_at = Some(updated_at);
            }

            fn loaded(
                state: &$crate::write::state::ProjectState,
            ) -> &std::collections::BTreeMap<String, Self> {
                &state.$loaded
            }

            fn dependants(key: &str, view: &hata_core::validate::ProjectView) -> Vec<String> {
                $dependants(key, view)
            }

            fn list_columns(
                &self,
            ) -> $crate::error::StoreResult<Option<$crate::flag_list::ListColumns>> {
                let columns: fn(
                    &Self,
                ) -> $crate::error::StoreResult<
                    Option<$crate::flag_list::ListColumns>,
                > = $list_columns;
                columns(self)
            }
        }
    };
}
pub(super) use impl_document;

/// How messages name a document: `flag "x" in project "p"`.
fn named<D: Document>(project: &str, key: &str) -> String {
    format!("{} {key:?} in project {project:?}", D::TYPE)
}

/// Fails if `key` already exists (a create).
pub(super) fn absent<D: Document>(
    state: &ProjectState,
    project: &str,
    key: &str,
) -> StoreResult<()> {
    if D::loaded(state).contains_key(key) {
        return Err(StoreError::AlreadyExists(named::<D>(project, key)));
    }
    Ok(())
}

/// The stored document `key`, if it exists and has the `expected` version.
pub(super) fn current<'s, D: Document>(
    state: &'s ProjectState,
    project: &str,
    key: &str,
    expected: &Expected,
) -> StoreResult<&'s D> {
    let old = D::loaded(state)
        .get(key)
        .ok_or_else(|| StoreError::NotFound(named::<D>(project, key)))?;
    check_version(expected, old.version())?;
    Ok(old)
}

impl WriteTx {
    /// Writes `doc` (insert for version 1, else update) with `version`, stamping its
    /// bookkeeping fields: `created_at` (now, if `None`) and `updated_at` now.
    pub(super) async fn store_document<D: Document>(
        &mut self,
        project: &str,
        doc: &mut D,
        version: i64,
        created_at: Option<String>,
    ) -> StoreResult<()> {
        let created_at = created_at.unwrap_or_else(|| self.now.clone());
        doc.stamp(version, created_at.clone(), self.now.clone());
        let text = serde_json::to_string(&*doc)?;
        let table = D::TABLE;
        let result = if version == 1 {
            sqlx::query(&format!("INSERT INTO {table} (project, key, doc, version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)"))
                .bind(project)
                .bind(doc.key())
                .bind(&text)
                .bind(version)
                .bind(&created_at)
                .bind(&self.now)
                .execute(&mut *self.tx)
                .await
        } else {
            sqlx::query(&format!("UPDATE {table} SET doc = $1, version = $2, updated_at = $3 WHERE project = $4 AND key = $5"))
                .bind(&text)
                .bind(version)
                .bind(&self.now)
                .bind(project)
                .bind(doc.key())
                .execute(&mut *self.tx)
                .await
        };
        match result {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AlreadyExists(named::<D>(project, doc.key())))
            }
            other => other?,
        };
        if let Some(columns) = doc.list_columns()? {
            columns
                .write(&mut self.tx, project, doc.key(), version)
                .await?;
        }
        Ok(())
    }

    /// Stores a validated `doc`: new (version 1) without `old`, else the version after `old`,
    /// keeping its `created_at`. Bumps every environment of the project (a flag's version is
    /// in what evaluations report; a segment may be used anywhere) and records the change.
    /// Returns the stored value and the document as stored.
    pub(super) async fn put_document<D: Document>(
        &mut self,
        project: &str,
        mut doc: D,
        old: Option<&D>,
    ) -> StoreResult<(Value, D)> {
        let (action, version, created_at, old_value) = match old {
            None => (Action::Create, 1, None, None),
            Some(old) => (
                Action::Update,
                old.version() + 1,
                old.created_at().cloned(),
                Some(to_value(old)?),
            ),
        };
        self.store_document(project, &mut doc, version, created_at)
            .await?;
        self.bump(project).await?;
        let value = to_value(&doc)?;
        self.change(
            action,
            D::TYPE,
            Some(project),
            doc.key(),
            old_value,
            Some(value.clone()),
        );
        Ok((value, doc))
    }

    /// Deletes document `key`, unless others depend on it.
    pub(super) async fn delete_document<D: Document>(
        &mut self,
        project: &str,
        key: &str,
        expected: &Expected,
    ) -> StoreResult<(Option<Value>, i64)> {
        let state = self.load_state(project, Flags::All).await?;
        let old = current::<D>(&state, project, key, expected)?;
        let dependants = D::dependants(key, &state.view());
        if !dependants.is_empty() {
            return Err(StoreError::Conflict {
                message: format!("{} {key:?} {}", D::TYPE, D::IN_USE),
                dependants,
            });
        }
        let (old_value, version) = (to_value(old)?, old.version());
        sqlx::query(&format!(
            "DELETE FROM {} WHERE project = $1 AND key = $2",
            D::TABLE
        ))
        .bind(project)
        .bind(key)
        .execute(&mut *self.tx)
        .await?;
        self.bump(project).await?;
        self.change(
            Action::Delete,
            D::TYPE,
            Some(project),
            key,
            Some(old_value),
            None,
        );
        Ok((None, version))
    }
}
