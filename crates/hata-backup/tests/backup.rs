//! Backups to a directory, on SQLite and PostgreSQL, restored into both: a full backup and a
//! chain of increments restore to exactly the exports taken at their moments (byte for byte);
//! `--until` picks the newest backup at or before the time; damaged, truncated, unfinished,
//! newer and broken chains are refused before anything is written; a non-empty store is
//! refused without `force` and replaced with it; a backup taken under concurrent writes is one
//! consistent state.

#[path = "../../hata-store/tests/support/mod.rs"]
mod support;

use std::path::Path;

use hata_backup::{restore, take, verify, BackupError, Destination, Kind, RestoreOptions};
use hata_core::model::{Environment, Flag, Project};
use hata_store::{
    Actor, EvaluationCount, Expected, FlagEvaluated, NewToken, NewUser, Store, TokenKind,
    UserUpdate, WriteMeta, WriteOp,
};
use serde_json::json;

fn meta() -> WriteMeta {
    WriteMeta::new(Actor::token("alice", "alice's token"), "req-1".to_string())
}

async fn write(s: &Store, op: WriteOp) {
    s.write(&meta(), op).await.expect("write");
}

fn flag(key: &str) -> Flag {
    serde_json::from_value(json!({"key": key, "type": "boolean", "tags": ["t"]})).expect("flag")
}

async fn create_flag(s: &Store, project: &str, key: &str) {
    write(
        s,
        WriteOp::CreateFlag {
            project: project.into(),
            flag: flag(key),
        },
    )
    .await;
}

async fn export(s: &Store) -> String {
    s.export().await.expect("export").to_json().expect("json")
}

fn count(flag: &str, hour: &str, n: i64) -> EvaluationCount {
    EvaluationCount {
        project: "shop".into(),
        environment: "production".into(),
        flag: flag.into(),
        hour: hour.into(),
        variant: "on".into(),
        reason: "default".into(),
        count: n,
    }
}

fn now_hour() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:00:00Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour()
    )
}

/// The stores to back up and to restore into: SQLite always, PostgreSQL when reachable.
async fn stores() -> Vec<support::TestStore> {
    let mut out = vec![support::sqlite().await];
    if let Some(pg) = support::postgres().await {
        out.push(pg);
    }
    out
}

/// Step 0: projects, flags, a token, a user, counts. Then each later step changes something
/// of every kind a delta carries.
async fn step(s: &Store, n: usize) {
    match n {
        0 => {
            write(
                s,
                WriteOp::CreateProject {
                    project: Project {
                        key: "shop".into(),
                        name: "Shop".into(),
                        description: String::new(),
                    },
                    environments: None,
                },
            )
            .await;
            write(
                s,
                WriteOp::CreateProject {
                    project: Project {
                        key: "blog".into(),
                        name: "Blog".into(),
                        description: String::new(),
                    },
                    environments: None,
                },
            )
            .await;
            create_flag(s, "shop", "a").await;
            create_flag(s, "blog", "untouched").await;
            write(
                s,
                WriteOp::CreateToken {
                    token: NewToken {
                        role: None,
                        id: "tok_admin".into(),
                        name: "admin".into(),
                        kind: TokenKind::Admin,
                        project: None,
                        environment: None,
                        expires_at: None,
                        secret_hash: "sha256:admin-hash".into(),
                    },
                },
            )
            .await;
            write(
                s,
                WriteOp::CreateUser {
                    user: NewUser {
                        id: "usr_ann".into(),
                        email: "ann@example.com".into(),
                        name: "Ann".into(),
                        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
                        admin: true,
                    },
                },
            )
            .await;
            s.record_evaluations(
                &[
                    count("a", "2026-01-01T10:00:00Z", 5),
                    count("a", &now_hour(), 3),
                ],
                &[FlagEvaluated {
                    project: "shop".into(),
                    environment: "production".into(),
                    flag: "a".into(),
                    at: "2026-01-01T10:30:00.000Z".into(),
                }],
            )
            .await
            .expect("counts");
        }
        1 => {
            // An environment comes: every flag of the project is rewritten.
            write(
                s,
                WriteOp::CreateEnvironment {
                    project: "shop".into(),
                    environment: Environment {
                        key: "qa".into(),
                        name: "QA".into(),
                        description: String::new(),
                        protected: false,
                    },
                },
            )
            .await;
            create_flag(s, "shop", "b").await;
            // A password change: the hash is not in the change record.
            write(
                s,
                WriteOp::UpdateUser {
                    id: "usr_ann".into(),
                    expected_version: Expected::Any,
                    update: UserUpdate {
                        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$bmV3$aGFzaA".into()),
                        ..UserUpdate::default()
                    },
                },
            )
            .await;
            s.record_evaluations(&[count("a", &now_hour(), 4)], &[])
                .await
                .expect("counts");
        }
        2 => {
            write(
                s,
                WriteOp::DeleteFlag {
                    project: "shop".into(),
                    key: "a".into(),
                    expected_version: Expected::Any,
                },
            )
            .await;
            write(
                s,
                WriteOp::RotateToken {
                    id: "tok_admin".into(),
                    secret_hash: "sha256:rotated".into(),
                    previous_valid_until: "2030-01-01T00:00:00.000Z".into(),
                },
            )
            .await;
            write(
                s,
                WriteOp::DeleteProject {
                    key: "blog".into(),
                    expected_version: Expected::Any,
                },
            )
            .await;
        }
        _ => {
            // Nothing at all: an increment may be empty.
        }
    }
}

#[tokio::test]
async fn a_chain_restores_each_backup_exactly_on_both_backends() {
    for source in stores().await {
        let dir = tempfile::tempdir().expect("dir");
        let dest = Destination::directory(dir.path()).expect("dest");
        let mut taken = Vec::new();
        for n in 0..4 {
            step(&source.store, n).await;
            let kind = if n == 0 {
                Kind::Full
            } else {
                Kind::Incremental
            };
            let manifest = take(&source.store, &dest, kind).await.expect("backup");
            taken.push((manifest, export(&source.store).await));
            // Backups a millisecond apart would share an id.
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(taken[1].0.parent.as_deref(), Some(taken[0].0.id.as_str()));
        assert_eq!(taken[3].0.changes, 0, "the last increment is empty");

        for target in stores().await {
            for (manifest, expected) in &taken {
                let fresh = match target.name {
                    "sqlite" => support::sqlite().await,
                    _ => support::postgres().await.expect("postgres"),
                };
                let restored = restore(
                    &fresh.store,
                    &dest,
                    &manifest.id,
                    &RestoreOptions::default(),
                )
                .await
                .expect("restore");
                assert_eq!(restored.chain.last().map(|m| &m.id), Some(&manifest.id));
                assert_eq!(
                    &export(&fresh.store).await,
                    expected,
                    "{} → {}: backup {}",
                    source.name,
                    target.name,
                    manifest.id
                );
                // With the source's checkpoint key, as an operator restores with it.
                let public = source.store.audit_public_key().expect("a key");
                let report = fresh
                    .store
                    .verify_audit_with(Some(public))
                    .await
                    .expect("verify");
                assert!(report.ok, "audit chain verifies after restore: {report:?}");
            }
        }

        // --until: the newest backup at or before the time, from the newest backup's chain.
        let last = &taken[3].0.id;
        let at = |m: &hata_backup::Manifest| {
            time::OffsetDateTime::parse(&m.taken_at, &time::format_description::well_known::Rfc3339)
                .expect("time")
        };
        for (i, (manifest, expected)) in taken.iter().enumerate().take(3) {
            let fresh = support::sqlite().await;
            let until = at(manifest) + time::Duration::milliseconds(1);
            let options = RestoreOptions {
                until: Some(until),
                force: false,
            };
            let restored = restore(&fresh.store, &dest, last, &options)
                .await
                .expect("pitr");
            assert_eq!(
                restored.chain.last().map(|m| &m.id),
                Some(&manifest.id),
                "step {i}"
            );
            assert_eq!(&export(&fresh.store).await, expected, "point in time {i}");
            // And from the full backup's id.
            let fresh = support::sqlite().await;
            restore(&fresh.store, &dest, &taken[0].0.id, &options)
                .await
                .expect("pitr from full");
            assert_eq!(
                &export(&fresh.store).await,
                expected,
                "point in time {i}, by the full id"
            );
        }
        let fresh = support::sqlite().await;
        let before = at(&taken[0].0) - time::Duration::seconds(60);
        let err = restore(
            &fresh.store,
            &dest,
            last,
            &RestoreOptions {
                until: Some(before),
                force: false,
            },
        )
        .await
        .expect_err("before the chain");
        assert!(matches!(err, BackupError::Until(_)), "{err}");
    }
}

fn part(dir: &Path, id: &str, name: &str) -> std::path::PathBuf {
    dir.join(id).join(name)
}

#[tokio::test]
async fn damaged_backups_are_refused_before_anything_is_written() {
    let source = support::sqlite().await;
    let dir = tempfile::tempdir().expect("dir");
    let dest = Destination::directory(dir.path()).expect("dest");
    step(&source.store, 0).await;
    let full = take(&source.store, &dest, Kind::Full).await.expect("full");
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    step(&source.store, 1).await;
    let inc = take(&source.store, &dest, Kind::Incremental)
        .await
        .expect("inc");
    verify(&dest, &inc.id).await.expect("a good chain verifies");

    let empty = support::sqlite().await;
    let empty_export = export(&empty.store).await;
    let full_part = part(dir.path(), &full.id, "document.json.zst");
    let inc_part = part(dir.path(), &inc.id, "delta.json.zst");
    let original = std::fs::read(&full_part).expect("read");

    let expect_refused = |what: &'static str, check: fn(&BackupError) -> bool| {
        let dest = dest.clone();
        let id = inc.id.clone();
        let store = empty.store.clone();
        let empty_export = empty_export.clone();
        async move {
            let err = verify(&dest, &id).await.expect_err(what);
            assert!(check(&err), "{what}: verify said {err}");
            let err = restore(&store, &dest, &id, &RestoreOptions::default())
                .await
                .expect_err(what);
            assert!(check(&err), "{what}: restore said {err}");
            assert_eq!(
                export(&store).await,
                empty_export,
                "{what}: nothing written"
            );
            err.to_string()
        }
    };

    // One byte flipped.
    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    std::fs::write(&full_part, &flipped).expect("write");
    let message =
        expect_refused("flipped byte", |e| matches!(e, BackupError::Damaged { .. })).await;
    assert!(
        message.contains("SHA-256") && message.contains(&full.id),
        "{message}"
    );

    // Truncated.
    std::fs::write(&full_part, &original[..original.len() - 10]).expect("write");
    let message = expect_refused("truncated", |e| matches!(e, BackupError::Damaged { .. })).await;
    assert!(message.contains("truncated"), "{message}");
    std::fs::write(&full_part, &original).expect("restore the part");

    // The parent's manifest is missing: the chain is broken.
    let manifest_path = part(dir.path(), &full.id, "manifest.json");
    let manifest_text = std::fs::read(&manifest_path).expect("read");
    std::fs::remove_file(&manifest_path).expect("rm");
    let message = expect_refused("missing parent manifest", |e| {
        matches!(e, BackupError::Chain(_))
    })
    .await;
    assert!(message.contains("no manifest.json"), "{message}");
    std::fs::write(&manifest_path, &manifest_text).expect("put back");

    // Its own manifest missing: unfinished.
    let inc_manifest = part(dir.path(), &inc.id, "manifest.json");
    let inc_manifest_text = std::fs::read(&inc_manifest).expect("read");
    std::fs::remove_file(&inc_manifest).expect("rm");
    expect_refused("missing manifest", |e| {
        matches!(e, BackupError::Incomplete(_))
    })
    .await;
    std::fs::write(&inc_manifest, &inc_manifest_text).expect("put back");

    // A newer manifest format.
    let mut newer: serde_json::Value = serde_json::from_slice(&inc_manifest_text).expect("json");
    newer["version"] = json!(99);
    std::fs::write(&inc_manifest, serde_json::to_vec(&newer).expect("json")).expect("write");
    let message = expect_refused("newer", |e| matches!(e, BackupError::Newer { .. })).await;
    assert!(message.contains("99"), "{message}");
    std::fs::write(&inc_manifest, &inc_manifest_text).expect("put back");

    // A broken chain: the increment's delta replaced by one onto another state (its checksum
    // made to match, so only the chain check can tell).
    let other = support::sqlite().await;
    let delta = other
        .store
        .export_delta(0, "2026-01-01T00:00:00Z")
        .await
        .expect("delta");
    let bytes =
        zstd::encode_all(serde_json::to_string(&delta).expect("json").as_bytes(), 3).expect("zstd");
    let mut m: serde_json::Value = serde_json::from_slice(&inc_manifest_text).expect("json");
    let raw_len = serde_json::to_string(&delta).expect("json").len();
    m["parts"][0]["size"] = json!(bytes.len());
    m["parts"][0]["uncompressed_size"] = json!(raw_len);
    m["parts"][0]["sha256"] = json!(hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)));
    std::fs::write(&inc_part, &bytes).expect("write");
    std::fs::write(&inc_manifest, serde_json::to_vec(&m).expect("json")).expect("write");
    let message = expect_refused("broken chain", |e| matches!(e, BackupError::Chain(_))).await;
    assert!(message.contains("does not continue"), "{message}");
}

#[tokio::test]
async fn a_store_that_is_not_empty_is_refused_unless_forced() {
    for target in stores().await {
        let source = support::sqlite().await;
        let dir = tempfile::tempdir().expect("dir");
        let dest = Destination::directory(dir.path()).expect("dest");
        step(&source.store, 0).await;
        step(&source.store, 1).await;
        let full = take(&source.store, &dest, Kind::Full).await.expect("full");

        create_flag_project(&target.store).await;
        let before = export(&target.store).await;
        let err = restore(&target.store, &dest, &full.id, &RestoreOptions::default())
            .await
            .expect_err("not empty");
        assert!(err.to_string().contains("not empty"), "{err}");
        assert_eq!(
            export(&target.store).await,
            before,
            "{}: nothing written",
            target.name
        );

        let forced = RestoreOptions {
            until: None,
            force: true,
        };
        restore(&target.store, &dest, &full.id, &forced)
            .await
            .expect("forced");
        assert_eq!(
            export(&target.store).await,
            export(&source.store).await,
            "{}",
            target.name
        );
    }
}

async fn create_flag_project(s: &Store) {
    write(
        s,
        WriteOp::CreateProject {
            project: Project {
                key: "other".into(),
                name: "Other".into(),
                description: String::new(),
            },
            environments: None,
        },
    )
    .await;
    create_flag(s, "other", "x").await;
}

/// Backups taken while a writer creates flags hold one state: every flag it holds has its
/// create entry in the change record and the reverse, and the chain verifies.
#[tokio::test]
async fn backups_under_concurrent_writes_are_consistent() {
    for source in stores().await {
        step(&source.store, 0).await;
        let dir = tempfile::tempdir().expect("dir");
        let dest = Destination::directory(dir.path()).expect("dest");
        let writer = {
            let store = source.store.clone();
            tokio::spawn(async move {
                for i in 0..150 {
                    create_flag(&store, "shop", &format!("w{i}")).await;
                }
            })
        };
        let mut ids = Vec::new();
        for n in 0..6 {
            let kind = if n == 0 {
                Kind::Full
            } else {
                Kind::Incremental
            };
            ids.push(take(&source.store, &dest, kind).await.expect("backup").id);
            tokio::time::sleep(std::time::Duration::from_millis(15)).await;
        }
        writer.await.expect("writer");
        for id in &ids {
            let fresh = support::sqlite().await;
            restore(&fresh.store, &dest, id, &RestoreOptions::default())
                .await
                .expect("restore");
            let doc = fresh.store.export().await.expect("export");
            let shop = doc.projects.iter().find(|p| p.key == "shop").expect("shop");
            let flags: std::collections::BTreeSet<&str> =
                shop.flags.iter().map(|f| f.key.as_str()).collect();
            let created: std::collections::BTreeSet<&str> = doc
                .changes
                .iter()
                .filter(|c| {
                    c.resource_type == hata_store::ResourceType::Flag
                        && c.project.as_deref() == Some("shop")
                })
                .map(|c| c.resource_key.as_str())
                .collect();
            assert_eq!(flags, created, "{}: backup {id}", source.name);
            let public = source.store.audit_public_key().expect("a key");
            let report = fresh
                .store
                .verify_audit_with(Some(public))
                .await
                .expect("verify");
            assert!(report.ok, "{report:?}");
        }
    }
}

/// Pruning a directory: two chains of a full backup and increments; keeping one full backup
/// and two increments removes the older chain and the newer chain's first increments, except
/// those the kept increments are restored onto; every backup left verifies and the newest
/// restores to the export taken at its moment. An unfinished backup of a day ago goes with
/// them, an unfinished one of now stays.
#[tokio::test]
async fn pruning_keeps_the_generations_and_every_kept_chain_whole() {
    let source = support::sqlite().await;
    let dir = tempfile::tempdir().expect("dir");
    let dest = Destination::directory(dir.path()).expect("dest");
    let mut ids = Vec::new();
    let mut newest_export = String::new();
    for n in 0..8 {
        step(&source.store, n.min(3)).await;
        create_flag(&source.store, "shop", &format!("p{n}")).await;
        let kind = if n % 4 == 0 {
            Kind::Full
        } else {
            Kind::Incremental
        };
        ids.push(take(&source.store, &dest, kind).await.expect("backup").id);
        newest_export = export(&source.store).await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // An unfinished backup started a day and a minute ago, and one started now.
    let old = time::OffsetDateTime::now_utc() - time::Duration::minutes(24 * 60 + 1);
    let old_id = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.000Z-full",
        old.year(),
        u8::from(old.month()),
        old.day(),
        old.hour(),
        old.minute(),
        old.second()
    );
    let recent_id = "29991231T000000.000Z-full";
    for id in [old_id.as_str(), recent_id] {
        std::fs::create_dir_all(dir.path().join(id)).expect("dir");
        std::fs::write(part(dir.path(), id, "document.json.zst"), b"partial").expect("write");
    }

    let keep = hata_backup::Generations::new(1, 2).expect("counts");
    let pruned = hata_backup::prune(&dest, keep, time::OffsetDateTime::now_utc())
        .await
        .expect("prune");
    // Kept: the second chain's full backup (ids[4]) and increments 5, 6, 7 (7 and 6 counted,
    // 5 held for their chain). Gone: the first chain, newest first.
    let first_chain: Vec<String> = ids[..4].iter().rev().cloned().collect();
    assert_eq!(pruned.plan.delete, first_chain, "{pruned}");
    assert_eq!(pruned.plan.held_for_chains, [ids[5].clone()]);
    assert_eq!(pruned.plan.delete_incomplete, std::slice::from_ref(&old_id));
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    let mut expected: Vec<String> = ids[4..].to_vec();
    expected.push(recent_id.to_string());
    assert_eq!(left, expected, "no empty folders left behind");
    for id in &ids[4..] {
        verify(&dest, id).await.expect("a kept backup verifies");
    }
    let fresh = support::sqlite().await;
    restore(&fresh.store, &dest, &ids[7], &RestoreOptions::default())
        .await
        .expect("restore the newest");
    assert_eq!(export(&fresh.store).await, newest_export);

    // Pruning again removes nothing; an increment taken next follows the newest backup.
    let again = hata_backup::prune(&dest, keep, time::OffsetDateTime::now_utc())
        .await
        .expect("prune again");
    assert!(again.plan.delete.is_empty() && again.plan.delete_incomplete.is_empty());
    let next = take(&source.store, &dest, Kind::Incremental)
        .await
        .expect("increment");
    assert_eq!(next.parent.as_deref(), Some(ids[7].as_str()));
}

/// Flags in the restore drill (the figure).
const DRILL_FLAGS: usize = 10_000;

/// A store holding project `shop` with `DRILL_FLAGS` flags (of three kinds, with targets and
/// rules), loaded through an import of a generated document (writing them one by one would
/// take most of the test's time), then the change record grown through the write path. The
/// document comes from a seed store with the same checkpoint key, so that the imported
/// checkpoints verify with it.
async fn drill_source() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("dir");
    let url = |name: &str| format!("sqlite://{}?mode=rwc", dir.path().join(name).display());
    let seed_config = support::config(url("seed.db"));
    let mut config = support::config(url("source.db"));
    config.audit.key = seed_config.audit.key.clone();
    let seed = Store::open(&seed_config).await.expect("seed store");
    step(&seed, 0).await;
    let mut doc: serde_json::Value = serde_json::from_str(&export(&seed).await).expect("json");
    let shop = doc["projects"]
        .as_array_mut()
        .and_then(|ps| ps.iter_mut().find(|p| p["key"] == "shop"))
        .expect("shop");
    let at = shop["created_at"].clone();
    let flags = shop["flags"].as_array_mut().expect("flags");
    for i in 0..DRILL_FLAGS {
        let mut flag = match i % 3 {
            0 => json!({"key": format!("d{i:05}"), "type": "boolean", "tags": ["drill"]}),
            1 => json!({"key": format!("d{i:05}"), "type": "string",
                "variants": [{"key": "a", "value": "A"}, {"key": "b", "value": "B"}],
                "environments": {"production": {"enabled": true, "off_variant": "a",
                    "default": {"rollout": {"weights": [
                        {"variant": "a", "weight": 50000}, {"variant": "b", "weight": 50000}]}}}}}),
            _ => json!({"key": format!("d{i:05}"), "type": "boolean",
                "environments": {"production": {"enabled": true,
                    "targets": [{"variant": "on", "values": [format!("user-{i}")]}],
                    "rules": [{"id": "pro", "conditions": [
                        {"attribute": "plan", "operator": "in", "values": ["pro"]}],
                        "serve": {"variant": "on"}}]}}}),
        };
        let mut normalised: Flag = serde_json::from_value(flag.clone()).expect("flag");
        normalised.normalize(["development", "production"]);
        flag = serde_json::to_value(&normalised).expect("json");
        flag["version"] = json!(1);
        flag["created_at"] = at.clone();
        flag["updated_at"] = at.clone();
        flags.push(flag);
    }
    let doc = hata_store::ExportDocument::from_json(&doc.to_string()).expect("a valid document");
    let source = Store::open(&config).await.expect("source store");
    source.import(&doc).await.expect("import");
    // A long change record: a thousand writes, of flags, their configurations and tokens.
    history(&source, 0, 1_000).await;
    (source, dir)
}

/// Writes `from..to`: each creates a flag `w<n>` or changes an existing flag's description,
/// its production configuration, or rotates the admin token.
async fn history(s: &Store, from: usize, to: usize) {
    for n in from..to {
        let target = format!("d{:05}", (n * 7919) % DRILL_FLAGS);
        let op = match n % 4 {
            0 => WriteOp::CreateFlag {
                project: "shop".into(),
                flag: flag(&format!("w{n}")),
            },
            1 => WriteOp::PatchFlag {
                project: "shop".into(),
                key: target,
                expected_version: Expected::Any,
                patch: json!({"description": format!("change {n}")}),
            },
            2 => WriteOp::PatchFlagConfig {
                project: "shop".into(),
                flag: target,
                environment: "development".into(),
                expected_version: Expected::Any,
                patch: json!({"enabled": n % 8 == 2}),
            },
            _ => WriteOp::RotateToken {
                id: "tok_admin".into(),
                secret_hash: format!("sha256:rotated-{n}"),
                previous_valid_until: "2030-01-01T00:00:00.000Z".into(),
            },
        };
        write(s, op).await;
    }
}

/// The restore drill (the item 8) at scale: 10,000 flags and a change record of a
/// thousand writes, backed up while a writer keeps writing (a full backup, then increments
/// taken under load and at quiet moments). Every restore is checked: the increments taken under
/// load hold one consistent state (each `w<n>` flag present exactly when its creation is in
/// the change record, and the audit chain verifies); the chain's last backup, restored into a
/// fresh SQLite and a fresh PostgreSQL, exports byte for byte what the source exported at that
/// moment; and `--until` a quiet increment's time restores, from the newest backup's chain,
/// exactly the export taken at that moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_drill_at_scale() {
    let started = std::time::Instant::now();
    let (source, _dir) = drill_source().await;
    let dir = tempfile::tempdir().expect("dir");
    let dest = Destination::directory(dir.path()).expect("dest");
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(5));
    take(&source, &dest, Kind::Full).await.expect("full");
    pause().await;

    // Under load: increments while a writer writes.
    let mut under_load = Vec::new();
    let writer = {
        let store = source.clone();
        tokio::spawn(async move { history(&store, 1_000, 1_300).await })
    };
    while !writer.is_finished() {
        under_load.push(
            take(&source, &dest, Kind::Incremental)
                .await
                .expect("increment under load"),
        );
        pause().await;
    }
    writer.await.expect("writer");
    // A quiet moment: the increment and the export then are the same state.
    let quiet = take(&source, &dest, Kind::Incremental)
        .await
        .expect("quiet increment");
    let at_quiet = export(&source).await;
    pause().await;
    history(&source, 1_300, 1_400).await;
    let last = take(&source, &dest, Kind::Incremental)
        .await
        .expect("last increment");
    let at_last = export(&source).await;
    assert!(!under_load.is_empty());
    let public = source.audit_public_key().expect("a key");

    // The first and the last taken under load (each restore materialises its whole chain).
    let checked = [under_load.first(), under_load.last()];
    for m in checked.into_iter().flatten() {
        let fresh = support::sqlite().await;
        restore(&fresh.store, &dest, &m.id, &RestoreOptions::default())
            .await
            .expect("restore an increment taken under load");
        let doc = fresh.store.export().await.expect("export");
        let shop = doc.projects.iter().find(|p| p.key == "shop").expect("shop");
        let written: std::collections::BTreeSet<&str> = shop
            .flags
            .iter()
            .map(|f| f.key.as_str())
            .filter(|k| k.starts_with('w'))
            .collect();
        let created: std::collections::BTreeSet<&str> = doc
            .changes
            .iter()
            .filter(|c| {
                c.resource_type == hata_store::ResourceType::Flag && c.resource_key.starts_with('w')
            })
            .map(|c| c.resource_key.as_str())
            .collect();
        assert_eq!(written, created, "backup {}", m.id);
        assert_eq!(
            shop.flags.len(),
            DRILL_FLAGS + 1 + written.len(),
            "backup {}",
            m.id
        );
        let report = fresh
            .store
            .verify_audit_with(Some(public))
            .await
            .expect("verify");
        assert!(report.ok, "backup {}: {report:?}", m.id);
    }

    let mut targets = vec![support::sqlite().await];
    targets.extend(support::postgres().await);
    for target in &targets {
        let restored = restore(&target.store, &dest, &last.id, &RestoreOptions::default())
            .await
            .expect("restore the chain");
        assert_eq!(restored.chain.len(), under_load.len() + 3);
        assert!(
            export(&target.store).await == at_last,
            "{}: the restore differs from the export at the last backup",
            target.name
        );
    }

    let taken = time::OffsetDateTime::parse(
        &quiet.taken_at,
        &time::format_description::well_known::Rfc3339,
    )
    .expect("time");
    let fresh = support::sqlite().await;
    let options = RestoreOptions {
        until: Some(taken + time::Duration::milliseconds(1)),
        force: false,
    };
    let restored = restore(&fresh.store, &dest, &last.id, &options)
        .await
        .expect("point in time");
    assert_eq!(restored.chain.last().map(|m| &m.id), Some(&quiet.id));
    assert!(
        export(&fresh.store).await == at_quiet,
        "the point-in-time restore differs from the export at that moment"
    );
    eprintln!(
        "restore drill: {DRILL_FLAGS} flags, {} changes, {} increments under load, {:?}",
        last.last_seq,
        under_load.len(),
        started.elapsed()
    );
}
