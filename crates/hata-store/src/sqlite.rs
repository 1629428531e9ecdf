//! What is particular to the SQLite backend: how durably a commit is written
//! ([`SqliteSynchronous`]) and who may read the database files.
//!
//! The database holds token hashes and the stream-ticket signing key, so the file and its
//! `-wal` and `-shm` companions are the owner's alone (0600), whatever the umask. A missing file
//! that the URL asks to create (`mode=rwc`) is created here with that mode before SQLite opens
//! it, so it is never readable by others, not even while still empty; SQLite creates the
//! companions with the database file's mode. Files an older hata created more widely are
//! narrowed when the store opens.
//!
//! Checkpoints run off the write path (`spawn_checkpointer`): SQLite's automatic checkpoint
//! runs inside the commit that crosses its threshold, so after a long read (a backup's
//! transaction keeps the WAL from being copied back) one admin write paid for copying
//! everything written meanwhile.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Weak;
use std::time::Duration;

use sqlx::AnyPool;

use crate::error::{StoreError, StoreResult};

/// `PRAGMA synchronous` on every connection, as `--sqlite-synchronous` chooses it.
///
/// Both are crash-safe with WAL: the database is never corrupted. They differ on a power loss
/// or an operating-system crash (not a crash of hata alone, which loses nothing):
/// - `Normal` (the default) syncs the WAL at checkpoints only, so the last commits before such
///   a crash may be lost; writes are cheaper.
/// - `Full` syncs the WAL at every commit: a commit that returned survives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SqliteSynchronous {
    #[default]
    Normal,
    Full,
}

impl SqliteSynchronous {
    /// The values `--sqlite-synchronous` takes.
    pub const NAMES: [&'static str; 2] = ["normal", "full"];

    pub fn parse(s: &str) -> Option<SqliteSynchronous> {
        match s {
            "normal" => Some(SqliteSynchronous::Normal),
            "full" => Some(SqliteSynchronous::Full),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SqliteSynchronous::Normal => "normal",
            SqliteSynchronous::Full => "full",
        }
    }

    /// What `PRAGMA synchronous` reads back as with this setting (1 and 2).
    pub fn pragma_value(self) -> i64 {
        match self {
            SqliteSynchronous::Normal => 1,
            SqliteSynchronous::Full => 2,
        }
    }
}

/// The mode of the database file and its companions.
#[cfg(unix)]
const FILE_MODE: u32 = 0o600;

/// The database file of a SQLite URL and whether the URL asks for it to be created (`mode=rwc`);
/// `None` for an in-memory database.
fn database_file(url: &str) -> Option<(PathBuf, bool)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    let mode = params
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(key, _)| *key == "mode")
        .map(|(_, value)| value)
        .next_back();
    if database.is_empty() || database == ":memory:" || mode == Some("memory") {
        return None;
    }
    // The file name as sqlx reads it (percent-decoded).
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    Some((options.get_filename().to_path_buf(), mode == Some("rwc")))
}

/// `path` with `suffix` appended to its file name (`hata.db` → `hata.db-wal`).
fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Before SQLite opens `url`: creates its missing database file (if the URL asks for that)
/// with mode 0600, and narrows existing files to 0600. Returns the file, for
/// [`restrict_companions`] once the connections are open.
pub(crate) fn prepare_files(url: &str) -> StoreResult<Option<PathBuf>> {
    let Some((path, create)) = database_file(url) else {
        return Ok(None);
    };
    if create && !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
        match options.open(&path) {
            // Another process created it first: it is narrowed below like any existing file.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot create the SQLite database {}: {e}",
                    path.display()
                )))
            }
            Ok(_) => {}
        }
    }
    restrict(&path);
    restrict_companions(&path);
    Ok(Some(path))
}

/// Narrows the `-wal` and `-shm` files of database `path` to 0600, if they exist.
pub(crate) fn restrict_companions(path: &Path) {
    for suffix in ["-wal", "-shm"] {
        restrict(&companion(path, suffix));
    }
}

/// Sets `path` to 0600 if it exists. The umask only takes bits away from a mode given at
/// creation (and could take the owner's write bit), so the mode is set explicitly. A file
/// that cannot be changed (owned by someone else) is reported and left as it is: hata can
/// still run on it, it is just not as private as it should be.
fn restrict(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(metadata) = std::fs::metadata(path) else {
            return;
        };
        if metadata.permissions().mode() & 0o777 == FILE_MODE {
            return;
        }
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE)) {
            tracing::warn!(
                path = %path.display(),
                error = %e,
                "cannot make the SQLite file readable by its owner only (mode 0600)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// How often the checkpointer copies the WAL into the database file.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies the WAL into the database file every `CHECKPOINT_EVERY`, on a reader connection
/// (`PRAGMA wal_checkpoint(PASSIVE)`: it waits for no reader or writer, and the writer goes on
/// appending meanwhile), for as long as the store lives (`alive`) and its pool is open. Every
/// connection has `wal_autocheckpoint = 0`, so commits never checkpoint themselves; SQLite
/// still checkpoints when the last connection closes.
pub(crate) fn spawn_checkpointer(pool: AnyPool, alive: Weak<()>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if alive.strong_count() == 0 || pool.is_closed() {
                break;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::warn!(error = %e, "SQLite checkpoint failed; retrying");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::database_file;

    #[test]
    fn database_files_of_urls() {
        let file = |url: &str| database_file(url).map(|(p, c)| (p.display().to_string(), c));
        assert_eq!(
            file("sqlite:///data/hata.db?mode=rwc"),
            Some(("/data/hata.db".into(), true))
        );
        assert_eq!(file("sqlite://hata.db"), Some(("hata.db".into(), false)));
        assert_eq!(
            file("sqlite:/a%20b/hata.db?cache=shared&mode=rw"),
            Some(("/a b/hata.db".into(), false))
        );
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("sqlite://:memory:"), None);
        assert_eq!(file("sqlite://x.db?mode=memory"), None);
        assert_eq!(file("postgres://localhost/db"), None);
    }
}
