//! The flags list: a project's flags filtered, sorted and cut into numbered pages
//! (`Store::sorted_flags`, the web UI's list), found in SQL over list columns kept beside each
//! flag's document (migration 0012), so that only the page's own flags are decoded.
//!
//! The columns are derived from the document (`ListColumns::of`) and written with it: by the
//! one write path (`WriteTx::store_document`) and by imports and restores. A row without them
//! (written before the migration, or by a replica of an earlier version during a rolling
//! upgrade) is filled from its document at start-up and before a list reads its project
//! (`fill`).

use std::collections::BTreeMap;

use hata_core::model::Flag;
use sqlx::{AnyConnection, Row};

use crate::error::StoreResult;
use crate::read::{decode_flag, MAX_PAGE};
use crate::records::{FlagFilter, FlagSort, OffsetPage};
use crate::Store;

/// A flag's list columns, as stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ListColumns {
    name_lower: String,
    description_lower: String,
    owner: String,
    flag_type: &'static str,
    /// A JSON array of the lower-cased tags.
    tags_lower: String,
    archived: i64,
}

impl ListColumns {
    pub(crate) fn of(flag: &Flag) -> StoreResult<ListColumns> {
        let tags: Vec<String> = flag.tags.iter().map(|t| t.to_lowercase()).collect();
        Ok(ListColumns {
            name_lower: flag.name.to_lowercase(),
            description_lower: flag.description.to_lowercase(),
            owner: flag.owner.clone(),
            flag_type: flag.flag_type.as_str(),
            tags_lower: serde_json::to_string(&tags)?,
            archived: i64::from(flag.archived),
        })
    }

    /// Sets the columns of flag `key` in `project`, if its row still holds `version` (a fill
    /// racing a write never puts an older document's columns over the newer one's).
    pub(crate) async fn write(
        &self,
        conn: &mut AnyConnection,
        project: &str,
        key: &str,
        version: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE flags SET name_lower = $1, description_lower = $2, owner = $3, flag_type = $4, \
             tags_lower = $5, archived = $6 WHERE project = $7 AND key = $8 AND version = $9",
        )
        .bind(&self.name_lower)
        .bind(&self.description_lower)
        .bind(&self.owner)
        .bind(self.flag_type)
        .bind(&self.tags_lower)
        .bind(self.archived)
        .bind(project)
        .bind(key)
        .bind(version)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// Fills the list columns of the rows without them (of `project`, or of every project), from
/// their documents. Returns how many it filled.
pub(crate) async fn fill(store: &Store, project: Option<&str>) -> StoreResult<usize> {
    let rows = sqlx::query(
        "SELECT project, key, version, doc FROM flags \
         WHERE name_lower IS NULL AND ($1 = '' OR project = $1)",
    )
    .bind(project.unwrap_or(""))
    .fetch_all(store.reader())
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut conn = store.writer().acquire().await?;
    for row in &rows {
        let flag = decode_flag(row)?;
        let project: String = row.try_get("project")?;
        let version: i64 = row.try_get("version")?;
        ListColumns::of(&flag)?
            .write(&mut conn, &project, &flag.key, version)
            .await?;
    }
    Ok(rows.len())
}

/// `text` as a `LIKE` pattern that matches it literally, with `ESCAPE '\'`.
fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

impl Store {
    /// One page of a project's flags, filtered like `list_flags` (search, tag and type
    /// case-insensitively), sorted by `sort` (`descending` reverses it, ties by key), `limit`
    /// flags from position `offset`, with the count of all that match (the web UI's list: page
    /// numbers and column sorting).
    ///
    /// One query finds the matching keys in order over the list columns; a second reads the
    /// page's documents.
    #[tracing::instrument(name = "store.sorted_flags", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "sorted_flags"))]
    pub async fn sorted_flags(
        &self,
        project: &str,
        filter: &FlagFilter,
        sort: FlagSort,
        descending: bool,
        offset: usize,
        limit: usize,
    ) -> StoreResult<OffsetPage<Flag>> {
        self.get_project(project).await?;
        fill(self, Some(project)).await?;
        let limit = limit.clamp(1, MAX_PAGE);
        let mut sql = String::from("SELECT key FROM flags WHERE project = $1 AND archived = $2");
        let mut binds: Vec<String> = Vec::new();
        let mut bind = |sql: &mut String, condition: &str, value: String| {
            binds.push(value);
            sql.push_str(&condition.replace('?', &format!("${}", binds.len() + 2)));
        };
        if let Some(q) = &filter.q {
            let q = like_literal(&q.to_lowercase());
            bind(
                &mut sql,
                " AND (key LIKE ? ESCAPE '\\' OR name_lower LIKE ? ESCAPE '\\' \
                 OR description_lower LIKE ? ESCAPE '\\')",
                format!("%{q}%"),
            );
        }
        if let Some(tag) = &filter.tag {
            // The tag JSON-encoded, quotes included: one whole element of the array.
            let element = serde_json::to_string(&tag.to_lowercase())?;
            bind(
                &mut sql,
                " AND tags_lower LIKE ? ESCAPE '\\'",
                format!("%{}%", like_literal(&element)),
            );
        }
        if let Some(owner) = &filter.owner {
            bind(&mut sql, " AND owner = ?", owner.clone());
        }
        if let Some(flag_type) = filter.flag_type {
            bind(
                &mut sql,
                " AND flag_type = ?",
                flag_type.as_str().to_string(),
            );
        }
        let dir = if descending { "DESC" } else { "ASC" };
        sql.push_str(&match sort {
            FlagSort::Key => format!(" ORDER BY key {dir}"),
            FlagSort::Name => format!(" ORDER BY name_lower {dir}, key {dir}"),
            FlagSort::Updated => format!(" ORDER BY updated_at {dir}, key {dir}"),
        });
        let mut query = sqlx::query(&sql)
            .bind(project)
            .bind(i64::from(filter.archived.unwrap_or(false)));
        for b in &binds {
            query = query.bind(b);
        }
        let mut keys = Vec::new();
        for row in query.fetch_all(self.reader()).await? {
            let key: String = row.try_get("key")?;
            if filter.only.as_ref().is_none_or(|only| only.contains(&key)) {
                keys.push(key);
            }
        }
        let total = keys.len();
        let wanted: Vec<&String> = keys.iter().skip(offset).take(limit).collect();
        if wanted.is_empty() {
            return Ok(OffsetPage {
                items: Vec::new(),
                total,
            });
        }
        let placeholders: Vec<String> = (0..wanted.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT doc FROM flags WHERE project = $1 AND key IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(project);
        for key in &wanted {
            query = query.bind(key.as_str());
        }
        let mut found: BTreeMap<String, Flag> = BTreeMap::new();
        for row in query.fetch_all(self.reader()).await? {
            let flag = decode_flag(&row)?;
            found.insert(flag.key.clone(), flag);
        }
        // A flag deleted between the two queries drops out of the page.
        let items = wanted.iter().filter_map(|k| found.remove(*k)).collect();
        Ok(OffsetPage { items, total })
    }
}

#[cfg(test)]
mod tests {
    use super::like_literal;

    #[test]
    fn like_literal_escapes_the_wildcards_and_the_escape() {
        assert_eq!(like_literal(r"50%_a\b"), r"50\%\_a\\b");
    }
}
