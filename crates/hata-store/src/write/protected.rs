//! Protected environments and the writers that may not change them (`WriteMeta::
//! protected_refusal`: today, sessions without the second factor the server's policy asks
//! for). What counts as changing a protected environment:
//! - a flag write that changes its config there, or its variants, type or archived state (the
//!   values that environment serves); a flag's name, description, owner and tags do not;
//! - creating a flag whose body names a config for it (a flag left to the default is off);
//! - deleting a flag (it disappears from every environment), or the project;
//! - updating the environment itself while it is, or to make it, protected.
//!
//! Segments are shared by all of a project's environments and are not guarded: their
//! changes reach a protected environment only through flags there that use them.

use hata_core::model::Flag;
use sqlx::Row;

use super::engine::WriteTx;
use crate::error::{StoreError, StoreResult};

impl WriteTx {
    /// Refuses the write when this writer may not change protected environments and
    /// `touches(the project's protected environment keys, in order)` names one.
    pub(super) async fn refuse_protected(
        &mut self,
        project: &str,
        touches: impl FnOnce(&[String]) -> Option<String>,
    ) -> StoreResult<()> {
        let Some(why) = self.protected_refusal.clone() else {
            return Ok(());
        };
        let protected = sqlx::query(
            "SELECT key FROM environments WHERE project = $1 AND protected <> 0 ORDER BY position, key",
        )
        .bind(project)
        .fetch_all(&mut *self.tx)
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("key"))
        .collect::<Result<Vec<_>, _>>()?;
        if protected.is_empty() {
            return Ok(());
        }
        match touches(&protected) {
            Some(env) => Err(StoreError::Forbidden(format!(
                "environment {env:?} is protected: {why}"
            ))),
            None => Ok(()),
        }
    }
}

/// The first protected environment a change of flag `old` into `new` touches, if any.
pub(super) fn flag_change_touches(old: &Flag, new: &Flag, protected: &[String]) -> Option<String> {
    let serves_differently = old.variants != new.variants
        || old.flag_type != new.flag_type
        || old.archived != new.archived;
    protected
        .iter()
        .find(|e| serves_differently || old.environments.get(*e) != new.environments.get(*e))
        .cloned()
}
