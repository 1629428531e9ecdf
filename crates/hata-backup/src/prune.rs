//! Pruning: the backups past their generation count are deleted, without ever breaking a
//! chain.
//!
//! What is kept ([`plan`], pure): the newest `full` full backups and the newest
//! `incremental` incremental ones (newest by `taken_at`), the newest complete backup whatever
//! its kind (the one the next increment follows), and every backup a kept one descends from
//! (its parent, its parent's parent, up to its full backup), even past the counts: a kept
//! increment is never left without the backups it is restored onto. Everything else that is
//! complete goes. Folders without a manifest go once their start (the id's time) is a day old
//! (no backup takes a day; a younger one may be a backup being written), unless a kept backup
//! names it as its parent (its manifest may yet be found). Folders whose manifest cannot be
//! read (damaged, or written by a newer hata) are never deleted: they are an operator's to
//! look at.
//!
//! How ([`prune`]): newest first, and within a backup its manifest first. So at every moment,
//! even if pruning stops half-way, each complete backup's chain is whole (a backup deleted
//! has no kept descendant, and its descendants went before it), and a half-deleted backup is
//! an incomplete folder, never a complete backup missing a part.

use std::collections::{BTreeMap, BTreeSet};

use time::OffsetDateTime;

use crate::chain::{list, Listed};
use crate::destination::Destination;
use crate::manifest::{Kind, Manifest};
use crate::{BackupError, BackupResult};

/// How many backups of each kind are kept (the counts of the operations documents).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generations {
    pub full: usize,
    pub incremental: usize,
}

impl Default for Generations {
    /// 30 full backups (daily: a month) and 24 increments (hourly: a day).
    fn default() -> Self {
        Generations {
            full: 30,
            incremental: 24,
        }
    }
}

impl Generations {
    /// Both counts at least 1: with none of a kind kept, a backup being written could lose
    /// the parent it follows.
    pub fn new(full: usize, incremental: usize) -> Result<Generations, String> {
        if full == 0 {
            return Err("full backups kept must be at least 1".into());
        }
        if incremental == 0 {
            return Err("incremental backups kept must be at least 1".into());
        }
        Ok(Generations { full, incremental })
    }
}

/// How long a folder without a manifest is left alone: it may be a backup being written.
pub const INCOMPLETE_GRACE: time::Duration = time::Duration::DAY;

/// What to delete and what is kept, decided from a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Complete backups to delete, newest first (the order they are deleted in).
    pub delete: Vec<String>,
    /// Folders without a manifest to delete.
    pub delete_incomplete: Vec<String>,
    /// Complete backups kept.
    pub kept: usize,
    /// Of those, the ones past their kind's count, kept because a kept backup descends from
    /// them.
    pub held_for_chains: Vec<String>,
    /// Folders left alone: unreadable manifests, and recent or referenced incomplete folders.
    pub left_alone: Vec<String>,
}

/// Decides what goes (see the module doc) from `listed` (a destination's folders), as of
/// `now`.
pub fn plan(listed: &[Listed], keep: Generations, now: OffsetDateTime) -> Plan {
    let mut complete: Vec<&Manifest> = listed
        .iter()
        .filter_map(|l| match l {
            Listed::Complete(m) => Some(&**m),
            _ => None,
        })
        .collect();
    complete.sort_by(|a, b| (&b.taken_at, &b.id).cmp(&(&a.taken_at, &a.id)));
    let by_id: BTreeMap<&str, &Manifest> = complete.iter().map(|m| (m.id.as_str(), *m)).collect();

    let newest_of = |kind: Kind, n: usize| {
        complete
            .iter()
            .filter(move |m| m.kind == kind)
            .take(n)
            .map(|m| m.id.as_str())
    };
    let counted: BTreeSet<&str> = newest_of(Kind::Full, keep.full)
        .chain(newest_of(Kind::Incremental, keep.incremental))
        .chain(complete.first().map(|m| m.id.as_str()))
        .collect();
    let mut kept = counted.clone();
    let mut parents_named: BTreeSet<&str> = BTreeSet::new();
    for id in &counted {
        let mut at = by_id.get(id).copied();
        // At most one step per backup: a chain that loops stops here.
        for _ in 0..=by_id.len() {
            let Some(parent) = at.and_then(|m| m.parent.as_deref()) else {
                break;
            };
            parents_named.insert(parent);
            kept.insert(parent);
            at = by_id.get(parent).copied();
        }
    }

    let mut out = Plan {
        kept: complete
            .iter()
            .filter(|m| kept.contains(m.id.as_str()))
            .count(),
        ..Plan::default()
    };
    for m in &complete {
        let id = m.id.as_str();
        if !kept.contains(id) {
            out.delete.push(m.id.clone());
        } else if !counted.contains(id) {
            out.held_for_chains.push(m.id.clone());
        }
    }
    for l in listed {
        match l {
            Listed::Complete(_) => {}
            Listed::Unreadable(id, _) => out.left_alone.push(id.clone()),
            Listed::Incomplete(id) => {
                let old = started(id).is_some_and(|at| at + INCOMPLETE_GRACE <= now);
                if old && !parents_named.contains(id.as_str()) {
                    out.delete_incomplete.push(id.clone());
                } else {
                    out.left_alone.push(id.clone());
                }
            }
        }
    }
    out
}

/// What a pruning did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pruned {
    pub plan: Plan,
}

impl std::fmt::Display for Pruned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.plan;
        write!(
            f,
            "{} backups removed, {} kept",
            p.delete.len() + p.delete_incomplete.len(),
            p.kept
        )?;
        if !p.held_for_chains.is_empty() {
            write!(
                f,
                " ({} past their count, kept for the chains that need them)",
                p.held_for_chains.len()
            )?;
        }
        if !p.left_alone.is_empty() {
            write!(f, "; left alone: {}", p.left_alone.join(", "))?;
        }
        Ok(())
    }
}

/// Deletes the backups at `dest` past their generation count (see the module doc).
pub async fn prune(
    dest: &Destination,
    keep: Generations,
    now: OffsetDateTime,
) -> BackupResult<Pruned> {
    let listed = list(dest).await?;
    let plan = plan(&listed, keep, now);
    for id in plan.delete.iter().chain(&plan.delete_incomplete) {
        dest.remove(id).await.map_err(|e| match e {
            BackupError::Destination {
                destination,
                message,
            } => BackupError::Destination {
                destination,
                message: format!("removing backup {id}: {message}"),
            },
            other => other,
        })?;
    }
    Ok(Pruned { plan })
}

/// When a backup started, from its id (`20261206T020000.123Z-full`).
fn started(id: &str) -> Option<OffsetDateTime> {
    let stamp = id.get(..19)?;
    let format = time::macros::format_description!(
        "[year][month][day]T[hour][minute][second].[subsecond digits:3]"
    );
    let at = time::PrimitiveDateTime::parse(stamp, &format).ok()?;
    (id.as_bytes().get(19) == Some(&b'Z')).then(|| at.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn manifest(id: &str, kind: Kind, parent: Option<&str>) -> Listed {
        Listed::Complete(Box::new(Manifest {
            format: crate::manifest::FORMAT.into(),
            version: crate::manifest::VERSION,
            id: id.into(),
            kind,
            hata_version: "0".into(),
            backend: "sqlite".into(),
            started_at: String::new(),
            // Ids here sort like their times.
            taken_at: id.into(),
            parent: parent.map(String::from),
            last_seq: 0,
            chain_head: None,
            last_change_at: None,
            flags: 0,
            changes: 0,
            parts: Vec::new(),
        }))
    }

    /// Day d's full backup and its increments at hours 1..=n, each following the one before.
    fn day(d: u32, n: u32) -> Vec<Listed> {
        let full = format!("202612{d:02}T000000.000Z-full");
        let mut out = vec![manifest(&full, Kind::Full, None)];
        let mut parent = full;
        for h in 1..=n {
            let id = format!("202612{d:02}T{h:02}0000.000Z-incremental");
            out.push(manifest(&id, Kind::Incremental, Some(&parent)));
            parent = id;
        }
        out
    }

    const NOW: OffsetDateTime = datetime!(2026-12-20 12:00 UTC);

    #[test]
    fn keeps_the_counts_newest_first() {
        let listed: Vec<Listed> = (1..=5).flat_map(|d| day(d, 3)).collect();
        let p = plan(&listed, Generations::new(2, 4).unwrap(), NOW);
        // Fulls of days 4 and 5; increments: day 5's three and day 4's last, which needs
        // day 4's first two to restore (held), onto day 4's full (counted).
        assert_eq!(p.kept, 2 + 4 + 2);
        assert_eq!(
            p.held_for_chains,
            [
                "20261204T020000.000Z-incremental",
                "20261204T010000.000Z-incremental"
            ]
        );
        assert_eq!(
            p.delete.first().map(String::as_str),
            Some("20261203T030000.000Z-incremental"),
            "newest first"
        );
        assert_eq!(p.delete.len(), 20 - 8);
        assert!(p.delete.iter().all(|id| id.as_str() < "20261204"));
    }

    #[test]
    fn a_kept_increment_keeps_its_full_backup_past_the_count() {
        // Day 1's full and nine increments, then day 2's full. One full kept (day 2's) and
        // two increments (day 1's last two): they need day 1's full and its other increments.
        let mut listed = day(1, 9);
        listed.extend(day(2, 0));
        let p = plan(&listed, Generations::new(1, 2).unwrap(), NOW);
        // The two newest increments (day 1, hours 8 and 9) hold hours 1..7 and day 1's full.
        assert_eq!(p.kept, 1 + 2 + 7 + 1);
        assert!(p.delete.is_empty(), "{p:?}");
        assert!(p
            .held_for_chains
            .contains(&"20261201T000000.000Z-full".to_string()));
    }

    #[test]
    fn the_newest_backup_is_always_kept_and_deletions_never_break_a_kept_chain() {
        let listed: Vec<Listed> = (1..=3).flat_map(|d| day(d, 5)).collect();
        for (full, inc) in [(1, 1), (1, 3), (2, 1), (3, 30), (30, 1)] {
            let p = plan(&listed, Generations::new(full, inc).unwrap(), NOW);
            assert!(
                !p.delete
                    .contains(&"20261203T050000.000Z-incremental".to_string()),
                "{full}/{inc}"
            );
            let deleted: BTreeSet<&str> = p.delete.iter().map(String::as_str).collect();
            for l in &listed {
                let Listed::Complete(m) = l else { continue };
                if deleted.contains(m.id.as_str()) {
                    continue;
                }
                if let Some(parent) = &m.parent {
                    assert!(
                        !deleted.contains(parent.as_str()),
                        "{full}/{inc}: {} kept, its parent {parent} deleted",
                        m.id
                    );
                }
            }
        }
    }

    #[test]
    fn incomplete_folders_go_after_a_day_unless_named_and_unreadable_ones_stay() {
        let mut listed = day(19, 1);
        listed.push(Listed::Incomplete("20261218T000000.000Z-full".into()));
        listed.push(Listed::Incomplete("20261220T110000.000Z-full".into()));
        listed.push(Listed::Incomplete("not-a-backup".into()));
        listed.push(Listed::Unreadable(
            "20261201T000000.000Z-full".into(),
            "newer".into(),
        ));
        // An increment whose parent lost its manifest: the parent's folder stays.
        listed.push(manifest(
            "20261219T050000.000Z-incremental",
            Kind::Incremental,
            Some("20261217T000000.000Z-full"),
        ));
        listed.push(Listed::Incomplete("20261217T000000.000Z-full".into()));
        let p = plan(&listed, Generations::default(), NOW);
        assert_eq!(p.delete_incomplete, ["20261218T000000.000Z-full"]);
        assert!(p.delete.is_empty());
        for id in [
            "20261220T110000.000Z-full",
            "not-a-backup",
            "20261201T000000.000Z-full",
            "20261217T000000.000Z-full",
        ] {
            assert!(p.left_alone.contains(&id.to_string()), "{id}: {p:?}");
        }
    }

    #[test]
    fn counts_of_zero_are_refused() {
        assert!(Generations::new(0, 24).is_err());
        assert!(Generations::new(30, 0).is_err());
        assert_eq!(Generations::new(30, 24), Ok(Generations::default()));
    }

    #[test]
    fn the_start_is_read_from_the_id() {
        assert_eq!(
            started("20261206T020001.500Z-full"),
            Some(datetime!(2026-12-06 02:00:01.5 UTC))
        );
        assert_eq!(started("20261206T020001.500-full"), None);
        assert_eq!(started("x"), None);
    }
}
