//! Segments: create, update, delete (refused while a flag or segment uses it).

use hata_core::model::Segment;
use hata_core::validate;
use serde_json::Value;

use super::engine::{check_version, is_unique_violation, key_mismatch, to_value, WriteTx};
use super::state::Flags;
use crate::change::{Action, ResourceType};
use crate::error::{StoreError, StoreResult};

impl WriteTx {
    pub(super) async fn store_segment(
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

    pub(super) async fn create_segment(
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
            Action::Create,
            ResourceType::Segment,
            Some(project),
            &segment.key,
            None,
            Some(value.clone()),
        );
        Ok((Some(value), 1))
    }

    pub(super) async fn update_segment(
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
            Action::Update,
            ResourceType::Segment,
            Some(project),
            key,
            Some(old_value),
            Some(value.clone()),
        );
        Ok((Some(value), version))
    }

    pub(super) async fn delete_segment(
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
            Action::Delete,
            ResourceType::Segment,
            Some(project),
            key,
            Some(old_value),
            None,
        );
        Ok((None, version))
    }
}
