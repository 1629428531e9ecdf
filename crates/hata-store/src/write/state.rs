//! What a write loads to validate against: the project's environments, segments and (some of)
//! its flags, read under the project's lock.

use std::collections::BTreeMap;

use hata_core::model::{Flag, Segment};
use hata_core::validate::ProjectView;
use sqlx::Row;

use super::engine::WriteTx;
use crate::error::StoreResult;
use crate::read::{decode_flag, decode_segment};

/// Which flags a write loads. Validating a flag looks at the project's other flags only for
/// its prerequisites (do they exist, are they archived, is there a cycle), and deleting or
/// archiving one looks for flags that depend on it. Most writes do neither, and loading (and
/// decoding) every flag of the project for each of them made a write cost O(flags): seeding
/// 5,000 flags was quadratic. So writes load the one flag they touch, and all flags only when
/// the checks above need them.
#[derive(Clone, Copy)]
pub(super) enum Flags<'a> {
    All,
    One(&'a str),
    /// For segment creates and updates: a segment is validated against the other segments only.
    None,
}

/// A project's flags, segments and environments, loaded inside the write transaction so that
/// validation sees exactly what the write will commit against. `flags` holds what `Flags` asked
/// for.
pub(super) struct ProjectState {
    pub(super) env_keys: Vec<String>,
    pub(super) segments: BTreeMap<String, Segment>,
    pub(super) flags: BTreeMap<String, Flag>,
}

impl ProjectState {
    pub(super) fn view(&self) -> ProjectView<'_> {
        ProjectView {
            environments: &self.env_keys,
            segments: &self.segments,
            flags: &self.flags,
        }
    }
}

impl WriteTx {
    /// Locks the project and loads what validating a change needs: its environments' keys,
    /// its segments, and its flags (all of them, or only `Flags::One`; see `Flags`).
    ///
    /// After the lock, one query reads all three (`UNION ALL`): every round trip here is
    /// spent holding the project's lock, which all writes to the project queue for.
    pub(super) async fn load_state(
        &mut self,
        project: &str,
        flags: Flags<'_>,
    ) -> StoreResult<ProjectState> {
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

    pub(super) async fn flags(
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
}
