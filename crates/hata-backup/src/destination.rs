//! Where backups go: a local directory or S3-compatible object storage, both through the
//! `object_store` crate, so the rest of this crate has one code path.
//!
//! A directory is created (mode 0700: backups hold token and password hashes and the
//! stream-ticket key) when missing; `object_store` writes each file under a temporary name and
//! renames it, so a file is either whole or absent. On S3 an object appears whole when its
//! upload completes. Either way the manifest, written last, is what makes a backup complete.
//!
//! S3: `s3://bucket/prefix`; the endpoint (any S3-compatible service), region and whether
//! plain HTTP is allowed come from [`S3Settings`] (hata's configuration), the credentials
//! from the standard `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (/ `AWS_SESSION_TOKEN`)
//! environment variables.

use std::fmt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt as _;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, PutPayload, RetryConfig};

use crate::{BackupError, BackupResult};

/// S3 settings besides the bucket and prefix (which the destination names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    /// e.g. `https://s3.eu-central-1.amazonaws.com` or `http://127.0.0.1:9000` [default: AWS]
    pub endpoint: Option<String>,
    /// [default: `AWS_REGION` / `AWS_DEFAULT_REGION`, else us-east-1]
    pub region: Option<String>,
    /// Allow an `http://` endpoint (a local S3-compatible server).
    pub allow_http: bool,
}

/// A backup destination, opened.
#[derive(Clone)]
pub struct Destination {
    store: Arc<dyn ObjectStore>,
    /// Where backups go below the store's root (S3: the prefix).
    prefix: Path,
    /// As the operator wrote it, for messages.
    shown: String,
    /// What it was opened from (`reopened`).
    origin: Origin,
}

#[derive(Clone)]
enum Origin {
    Directory(PathBuf),
    S3 {
        bucket: String,
        prefix: String,
        settings: S3Settings,
    },
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Destination {
    /// `s3://bucket[/prefix]` or a directory path. Nothing is contacted yet.
    pub fn parse(text: &str, s3: &S3Settings) -> BackupResult<Destination> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(BackupError::Destination {
                    destination: text.to_string(),
                    message: "no bucket: expected s3://bucket/prefix".into(),
                });
            }
            Destination::s3(bucket, prefix.trim_matches('/'), s3, text)
        } else if text.contains("://") {
            Err(BackupError::Destination {
                destination: text.to_string(),
                message: "expected a directory path or s3://bucket/prefix".into(),
            })
        } else if text.is_empty() {
            Err(BackupError::Destination {
                destination: text.to_string(),
                message: "empty: expected a directory path or s3://bucket/prefix".into(),
            })
        } else {
            Destination::directory(FsPath::new(text))
        }
    }

    /// A local directory, created (0700) if missing.
    pub fn directory(dir: &FsPath) -> BackupResult<Destination> {
        let shown = dir.display().to_string();
        let fail = |message: String| BackupError::Destination {
            destination: shown.clone(),
            message,
        };
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder
                .create(dir)
                .map_err(|e| fail(format!("cannot create it: {e}")))?;
        }
        let root: PathBuf = dir
            .canonicalize()
            .map_err(|e| fail(format!("cannot open it: {e}")))?;
        if !root.is_dir() {
            return Err(fail("not a directory".into()));
        }
        // Automatic cleanup: deleting a backup's last file removes its folder too, so a
        // pruned backup leaves no empty folder to be listed as an incomplete one.
        let store = LocalFileSystem::new_with_prefix(&root)
            .map_err(|e| fail(e.to_string()))?
            .with_automatic_cleanup(true);
        Ok(Destination {
            store: Arc::new(store),
            prefix: Path::default(),
            shown,
            origin: Origin::Directory(root),
        })
    }

    fn s3(bucket: &str, prefix: &str, s3: &S3Settings, shown: &str) -> BackupResult<Destination> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_allow_http(s3.allow_http)
            // A destination that does not answer fails the backup within a minute, rather than
            // after object_store's default ten retries with backoff.
            .with_retry(RetryConfig {
                max_retries: 2,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(300))
                    .with_allow_http(s3.allow_http),
            );
        if let Some(endpoint) = &s3.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = &s3.region {
            builder = builder.with_region(region);
        }
        let store = builder.build().map_err(|e| BackupError::Destination {
            destination: shown.to_string(),
            message: e.to_string(),
        })?;
        Ok(Destination {
            store: Arc::new(store),
            prefix: Path::from(prefix),
            shown: shown.to_string(),
            origin: Origin::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
                settings: s3.clone(),
            },
        })
    }

    /// The same destination opened again, with clients of its own: for another runtime,
    /// whose connections must belong to it (`lane`).
    pub fn reopened(&self) -> BackupResult<Destination> {
        match &self.origin {
            Origin::Directory(root) => {
                let mut again = Destination::directory(root)?;
                again.shown.clone_from(&self.shown);
                Ok(again)
            }
            Origin::S3 {
                bucket,
                prefix,
                settings,
            } => Destination::s3(bucket, prefix, settings, &self.shown),
        }
    }

    fn path(&self, id: &str, name: &str) -> Path {
        self.prefix.child(id).child(name)
    }

    fn error(&self, e: object_store::Error) -> BackupError {
        BackupError::Destination {
            destination: self.shown.clone(),
            message: e.to_string(),
        }
    }

    /// Writes file `name` of backup `id`.
    pub(crate) async fn put(&self, id: &str, name: &str, bytes: Bytes) -> BackupResult<()> {
        self.store
            .put(&self.path(id, name), PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Reads file `name` of backup `id`; `None` if it does not exist.
    pub(crate) async fn get(&self, id: &str, name: &str) -> BackupResult<Option<Bytes>> {
        match self.store.get(&self.path(id, name)).await {
            Ok(result) => Ok(Some(result.bytes().await.map_err(|e| self.error(e))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// The names of the folders at the destination (backups, complete or not), sorted.
    pub(crate) async fn folders(&self) -> BackupResult<Vec<String>> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let listed = self
            .store
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| self.error(e))?;
        let mut names: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Deletes backup folder `id`: its manifest first (from then on it is an incomplete
    /// backup, never a complete one missing a part), then its other files. A file already
    /// gone is no error (another pruning got there first).
    pub(crate) async fn remove(&self, id: &str) -> BackupResult<()> {
        let folder = self.prefix.child(id);
        let mut files: Vec<Path> = self
            .store
            .list(Some(&folder))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await
            .map_err(|e| self.error(e))?;
        let manifest = self.path(id, crate::manifest::MANIFEST);
        files.sort_by_key(|f| *f != manifest);
        for file in files {
            match self.store.delete(&file).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.error(e)),
            }
        }
        Ok(())
    }

    /// Whether folder `id` exists at all (has any file).
    pub(crate) async fn has_folder(&self, id: &str) -> BackupResult<bool> {
        Ok(self.folders().await?.iter().any(|f| f == id))
    }
}
