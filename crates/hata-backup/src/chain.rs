//! Reading backups back: the list at a destination, a backup's chain (its full backup and the
//! increments up to it), and verification, which fetches every part of the chain, checks its
//! size and SHA-256, decompresses and parses it, applies the increments in order (each must
//! start where its parent's change record ended, hash for hash) and runs the import's checks
//! on the resulting document without writing anything (`ExportDocument::check`).

use std::collections::BTreeMap;

use hata_store::{ExportDelta, ExportDocument};
use sha2::{Digest, Sha256};

use crate::destination::Destination;
use crate::manifest::{Kind, Manifest, Part, MANIFEST};
use crate::{BackupError, BackupResult};

/// A folder at the destination.
#[derive(Debug, Clone)]
pub enum Listed {
    Complete(Box<Manifest>),
    /// No manifest: unfinished (or its manifest was lost); never restored.
    Incomplete(String),
    /// A manifest that cannot be read (damaged, or of a newer hata).
    Unreadable(String, String),
}

impl Listed {
    pub fn id(&self) -> &str {
        match self {
            Listed::Complete(m) => &m.id,
            Listed::Incomplete(id) | Listed::Unreadable(id, _) => id,
        }
    }
}

/// Every folder at `dest`, by name (= by start time).
pub async fn list(dest: &Destination) -> BackupResult<Vec<Listed>> {
    let mut listed = Vec::new();
    for id in dest.folders().await? {
        listed.push(match dest.get(&id, MANIFEST).await? {
            None => Listed::Incomplete(id),
            Some(bytes) => match Manifest::from_json(&id, &bytes) {
                Ok(m) => Listed::Complete(Box::new(m)),
                Err(e) => Listed::Unreadable(id, e.to_string()),
            },
        });
    }
    Ok(listed)
}

/// Backup `id`'s manifest.
pub async fn manifest(dest: &Destination, id: &str) -> BackupResult<Manifest> {
    match dest.get(id, MANIFEST).await? {
        Some(bytes) => Manifest::from_json(id, &bytes),
        None if dest.has_folder(id).await? => Err(BackupError::Incomplete(id.to_string())),
        None => Err(BackupError::NotFound(id.to_string(), dest.to_string())),
    }
}

/// The manifests from the full backup to `id`, oldest first.
pub async fn chain_of(dest: &Destination, id: &str) -> BackupResult<Vec<Manifest>> {
    let mut chain = vec![manifest(dest, id).await?];
    loop {
        let last = &chain[chain.len() - 1];
        match (&last.kind, &last.parent) {
            (Kind::Full, _) => break,
            (Kind::Incremental, None) => {
                return Err(BackupError::Chain(format!(
                    "backup {}: an increment without a parent",
                    last.id
                )))
            }
            (Kind::Incremental, Some(parent)) => {
                let child = last.id.clone();
                let parent = manifest(dest, parent).await.map_err(|e| {
                    BackupError::Chain(format!("backup {child} follows {parent}: {e}"))
                })?;
                if chain.iter().any(|m| m.id == parent.id) || chain.len() > 100_000 {
                    return Err(BackupError::Chain(format!(
                        "backup {child}: its chain loops at {}",
                        parent.id
                    )));
                }
                chain.push(parent);
            }
        }
    }
    chain.reverse();
    Ok(chain)
}

/// A verified chain and the document it restores.
#[derive(Debug)]
pub struct Verified {
    /// From the full backup to the one verified.
    pub chain: Vec<Manifest>,
    pub document: ExportDocument,
}

/// Verifies backup `id` and its chain; see the module doc.
pub async fn verify(dest: &Destination, id: &str) -> BackupResult<Verified> {
    let chain = chain_of(dest, id).await?;
    materialise(dest, chain).await
}

/// Fetches, checks and applies `chain` (a full backup and increments, oldest first).
pub(crate) async fn materialise(
    dest: &Destination,
    chain: Vec<Manifest>,
) -> BackupResult<Verified> {
    let mut document: Option<ExportDocument> = None;
    let mut previous: Option<&Manifest> = None;
    for m in &chain {
        let part = only_part(m)?;
        let text = fetch(dest, m, part).await?;
        let damaged = |what: String| BackupError::Damaged {
            backup: m.id.clone(),
            what: format!("{}: {what}", part.name),
        };
        match (m.kind, document.as_mut(), previous) {
            (Kind::Full, None, None) => {
                let doc = ExportDocument::from_json(&text).map_err(|e| {
                    if let hata_store::StoreError::Invalid(errors) = &e {
                        if errors.0.iter().any(|f| f.field == "version")
                            && version_of(&text) > hata_store::export::VERSION
                        {
                            return BackupError::Newer {
                                backup: m.id.clone(),
                                what: "export document",
                                found: version_of(&text),
                                supported: hata_store::export::VERSION,
                            };
                        }
                    }
                    damaged(e.to_string())
                })?;
                document = Some(doc);
            }
            (Kind::Incremental, Some(doc), Some(parent)) => {
                let value: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| damaged(format!("not JSON: {e}")))?;
                let found = value
                    .get("version")
                    .and_then(serde_json::Value::as_u64)
                    .unwrap_or(0);
                if found > u64::from(hata_store::delta::DELTA_VERSION) {
                    return Err(BackupError::Newer {
                        backup: m.id.clone(),
                        what: "export delta",
                        found: u32::try_from(found).unwrap_or(u32::MAX),
                        supported: hata_store::delta::DELTA_VERSION,
                    });
                }
                let delta: ExportDelta =
                    serde_json::from_value(value).map_err(|e| damaged(e.to_string()))?;
                if delta.base_seq != parent.last_seq || delta.base_hash != parent.chain_head {
                    return Err(BackupError::Chain(format!(
                        "backup {} does not continue backup {}: it starts after change {} \
                         (hash {:?}), its parent ends at change {} (hash {:?})",
                        m.id,
                        parent.id,
                        delta.base_seq,
                        delta.base_hash,
                        parent.last_seq,
                        parent.chain_head
                    )));
                }
                doc.apply_delta(delta).map_err(|e| {
                    BackupError::Chain(format!(
                        "backup {} does not continue backup {}: {e}",
                        m.id, parent.id
                    ))
                })?;
            }
            _ => {
                return Err(BackupError::Chain(format!(
                    "backup {}: a {} backup cannot come here in a chain",
                    m.id,
                    m.kind.as_str()
                )))
            }
        }
        let (seq, head) = document.as_ref().map(ExportDocument::chain_end).unzip();
        if seq != Some(m.last_seq) || head.flatten() != m.chain_head {
            return Err(BackupError::Damaged {
                backup: m.id.clone(),
                what: format!(
                    "its content ends at change {:?}, its manifest says {}",
                    seq, m.last_seq
                ),
            });
        }
        previous = Some(m);
    }
    let Some(document) = document else {
        return Err(BackupError::Chain("an empty chain".into()));
    };
    let last = &chain[chain.len() - 1];
    document.check().map_err(|e| BackupError::Damaged {
        backup: last.id.clone(),
        what: format!("the restored document would not import: {e}"),
    })?;
    Ok(Verified { chain, document })
}

fn only_part(m: &Manifest) -> BackupResult<&Part> {
    match m.parts.as_slice() {
        [part] if part.name == m.kind.part_name() => Ok(part),
        _ => Err(BackupError::Damaged {
            backup: m.id.clone(),
            what: format!(
                "a {} backup has one part, {}",
                m.kind.as_str(),
                m.kind.part_name()
            ),
        }),
    }
}

/// The part's bytes, checked (size, SHA-256) and decompressed.
async fn fetch(dest: &Destination, m: &Manifest, part: &Part) -> BackupResult<String> {
    let damaged = |what: String| BackupError::Damaged {
        backup: m.id.clone(),
        what: format!("{}: {what}", part.name),
    };
    let bytes = dest
        .get(&m.id, &part.name)
        .await?
        .ok_or_else(|| damaged("missing".into()))?;
    if bytes.len() as u64 != part.size {
        return Err(damaged(format!(
            "{} bytes, the manifest says {} (truncated or replaced)",
            bytes.len(),
            part.size
        )));
    }
    let sha = hex::encode(Sha256::digest(&bytes));
    if sha != part.sha256 {
        return Err(damaged(format!(
            "SHA-256 {sha}, the manifest says {} (corrupted)",
            part.sha256
        )));
    }
    let expected = part.uncompressed_size;
    let text = tokio::task::spawn_blocking(move || -> Result<String, String> {
        let raw = zstd::decode_all(&bytes[..]).map_err(|e| format!("does not decompress: {e}"))?;
        if raw.len() as u64 != expected {
            return Err(format!(
                "{} bytes decompressed, the manifest says {expected}",
                raw.len()
            ));
        }
        String::from_utf8(raw).map_err(|e| format!("not UTF-8: {e}"))
    })
    .await
    .map_err(|e| damaged(format!("decompression stopped: {e}")))?
    .map_err(damaged)?;
    Ok(text)
}

fn version_of(text: &str) -> u32 {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64))
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0)
}

/// For each complete backup, the chain it belongs to (its full backup's id), for `--until`.
pub(crate) fn chains(listed: &[Listed]) -> BTreeMap<String, Vec<Manifest>> {
    let by_id: BTreeMap<&str, &Manifest> = listed
        .iter()
        .filter_map(|l| match l {
            Listed::Complete(m) => Some((m.id.as_str(), &**m)),
            _ => None,
        })
        .collect();
    let mut out = BTreeMap::new();
    for m in by_id.values() {
        let mut path = vec![(*m).clone()];
        let mut at = *m;
        while let Some(parent) = at.parent.as_deref().and_then(|p| by_id.get(p)) {
            if path.len() > by_id.len() {
                break;
            }
            path.push((*parent).clone());
            at = parent;
        }
        path.reverse();
        out.insert(m.id.clone(), path);
    }
    out
}
