//! Segments: create, update, delete (refused while a flag or segment uses it).

use hata_core::model::Segment;
use hata_core::validate;
use serde_json::Value;

use super::document::{absent, current, impl_document};
use super::engine::{key_mismatch, WriteTx};
use super::state::Flags;
use super::Expected;
use crate::change::ResourceType;
use crate::error::StoreResult;

impl_document!(Segment {
    table: "segments",
    resource: ResourceType::Segment,
    in_use: "is in use",
    loaded: segments,
    dependants: validate::segment_dependants,
    list_columns: |_| Ok(None),
});

impl WriteTx {
    pub(super) async fn create_segment(
        &mut self,
        project: &str,
        segment: Segment,
    ) -> StoreResult<(Option<Value>, i64)> {
        let state = self.load_state(project, Flags::None).await?;
        absent::<Segment>(&state, project, &segment.key)?;
        validate::validate_segment(&segment, &state.view())?;
        let (value, segment) = self.put_document(project, segment, None).await?;
        Ok((Some(value), segment.version))
    }

    pub(super) async fn update_segment(
        &mut self,
        project: &str,
        key: &str,
        expected: &Expected,
        segment: Segment,
    ) -> StoreResult<(Option<Value>, i64)> {
        if segment.key != key {
            return Err(key_mismatch("key", key));
        }
        let state = self.load_state(project, Flags::None).await?;
        let old = current::<Segment>(&state, project, key, expected)?;
        validate::validate_segment(&segment, &state.view())?;
        let (value, segment) = self.put_document(project, segment, Some(old)).await?;
        Ok((Some(value), segment.version))
    }

    pub(super) async fn delete_segment(
        &mut self,
        project: &str,
        key: &str,
        expected: &Expected,
    ) -> StoreResult<(Option<Value>, i64)> {
        self.delete_document::<Segment>(project, key, expected)
            .await
    }
}
