//! The one write path, on both backends: versions, revisions, change records, conflicts.

mod support;

use hata_core::model::{Environment, Flag, Project, Segment};
use hata_store::{Actor, ChangeNotice, Expected, FlagFilter, StoreError, WriteMeta, WriteOp};
use serde_json::json;

fn meta() -> WriteMeta {
    WriteMeta::new(Actor::system("test"), "req-1")
}

fn project(key: &str) -> Project {
    Project {
        key: key.into(),
        name: key.into(),
        description: String::new(),
    }
}

fn flag(v: serde_json::Value) -> Flag {
    serde_json::from_value(v).expect("flag json")
}

#[tokio::test]
async fn project_gets_default_environments_and_flags_get_configs() {
    for t in support::all().await {
        let s = &t.store;
        s.write(
            &meta(),
            WriteOp::CreateProject {
                project: project("shop"),
                environments: None,
            },
        )
        .await
        .unwrap();
        let envs = s.list_environments("shop").await.unwrap();
        let keys: Vec<_> = envs.iter().map(|e| e.environment.key.as_str()).collect();
        assert_eq!(keys, ["development", "production"], "{}", t.name);

        let out = s
            .write(
                &meta(),
                WriteOp::CreateFlag {
                    project: "shop".into(),
                    flag: flag(json!({"key": "dark-mode", "type": "boolean"})),
                },
            )
            .await
            .unwrap();
        assert_eq!(out.version, 1);
        let f = s.get_flag("shop", "dark-mode").await.unwrap();
        assert_eq!(f.environments.len(), 2, "{}", t.name);
        assert!(!f.environments["production"].enabled);
        assert_eq!(f.environments["production"].off_variant, "off");

        // A new environment gives every flag a disabled config for it.
        s.write(
            &meta(),
            WriteOp::CreateEnvironment {
                project: "shop".into(),
                environment: Environment {
                    key: "staging".into(),
                    name: "Staging".into(),
                    description: String::new(),
                    protected: false,
                },
            },
        )
        .await
        .unwrap();
        let f = s.get_flag("shop", "dark-mode").await.unwrap();
        assert!(f.environments.contains_key("staging"), "{}", t.name);
        assert_eq!(f.version, 2);
    }
}

#[tokio::test]
async fn versions_are_checked_and_revisions_bumped() {
    for t in support::all().await {
        let s = &t.store;
        let mut notices = s.subscribe();
        s.write(
            &meta(),
            WriteOp::CreateProject {
                project: project("p"),
                environments: None,
            },
        )
        .await
        .unwrap();
        s.write(
            &meta(),
            WriteOp::CreateFlag {
                project: "p".into(),
                flag: flag(json!({"key": "f", "type": "boolean"})),
            },
        )
        .await
        .unwrap();
        let before = s.get_environment("p", "production").await.unwrap().revision;

        let patch = WriteOp::PatchFlagConfig {
            project: "p".into(),
            flag: "f".into(),
            environment: "production".into(),
            expected_version: Expected::version(1),
            patch: json!({"enabled": true}),
        };
        let out = s.write(&meta(), patch.clone()).await.unwrap();
        assert_eq!(out.version, 2);
        assert_eq!(out.value.unwrap()["enabled"], json!(true));
        let after = s.get_environment("p", "production").await.unwrap().revision;
        assert!(after > before, "{}: revision {before} -> {after}", t.name);

        // The same If-Match again is stale: 412, nothing changed.
        match s.write(&meta(), patch).await {
            Err(StoreError::VersionMismatch {
                expected,
                current: 2,
            }) if expected == Expected::version(1) => {}
            other => panic!("{}: {other:?}", t.name),
        }
        assert_eq!(s.get_flag("p", "f").await.unwrap().version, 2);
        assert_eq!(
            s.get_environment("p", "production").await.unwrap().revision,
            after
        );

        let mut saw = false;
        while let Ok(n) = notices.try_recv() {
            if n == ChangeNotice::Environment(hata_store::EnvRevision {
                project: "p".into(),
                environment: "production".into(),
                revision: after,
            }) {
                saw = true;
            }
        }
        assert!(saw, "{}: no notice for production@{after}", t.name);
    }
}

#[tokio::test]
async fn duplicates_and_missing_parents() {
    for t in support::all().await {
        let s = &t.store;
        s.write(
            &meta(),
            WriteOp::CreateProject {
                project: project("p"),
                environments: None,
            },
        )
        .await
        .unwrap();
        assert!(matches!(
            s.write(
                &meta(),
                WriteOp::CreateProject {
                    project: project("p"),
                    environments: None
                }
            )
            .await,
            Err(StoreError::AlreadyExists(_))
        ));
        assert!(matches!(
            s.write(
                &meta(),
                WriteOp::CreateFlag {
                    project: "nope".into(),
                    flag: flag(json!({"key": "f", "type": "boolean"}))
                }
            )
            .await,
            Err(StoreError::NotFound(_))
        ));
        let seg: Segment =
            serde_json::from_value(json!({"key": "beta", "included": ["u1"]})).unwrap();
        s.write(
            &meta(),
            WriteOp::CreateSegment {
                project: "p".into(),
                segment: seg.clone(),
            },
        )
        .await
        .unwrap();
        assert!(matches!(
            s.write(
                &meta(),
                WriteOp::CreateSegment {
                    project: "p".into(),
                    segment: seg
                }
            )
            .await,
            Err(StoreError::AlreadyExists(_))
        ));
    }
}

#[tokio::test]
async fn concurrent_writers_with_the_same_version_one_wins() {
    for t in support::all().await {
        let s = t.store.clone();
        s.write(
            &meta(),
            WriteOp::CreateProject {
                project: project("p"),
                environments: None,
            },
        )
        .await
        .unwrap();
        s.write(
            &meta(),
            WriteOp::CreateFlag {
                project: "p".into(),
                flag: flag(json!({"key": "f", "type": "boolean"})),
            },
        )
        .await
        .unwrap();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.write(
                    &meta(),
                    WriteOp::PatchFlagConfig {
                        project: "p".into(),
                        flag: "f".into(),
                        environment: "development".into(),
                        expected_version: Expected::version(1),
                        // Each a change of its own: a patch that changes nothing writes
                        // nothing, and would succeed beside the winner.
                        patch: json!({"targets": [{"variant": "on", "values": [format!("u{i}")]}]}),
                    },
                )
                .await
            }));
        }
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => ok += 1,
                Err(StoreError::VersionMismatch { .. }) => {}
                Err(e) => panic!("{}: {e:?}", t.name),
            }
        }
        assert_eq!(ok, 1, "{}", t.name);
        assert_eq!(s.get_flag("p", "f").await.unwrap().version, 2);
    }
}

#[tokio::test]
async fn list_flags_filters_and_pages() {
    for t in support::all().await {
        let s = &t.store;
        s.write(
            &meta(),
            WriteOp::CreateProject {
                project: project("p"),
                environments: None,
            },
        )
        .await
        .unwrap();
        for i in 0..5 {
            let f = flag(
                json!({"key": format!("f{i}"), "type": "boolean", "tags": [if i % 2 == 0 {"even"} else {"odd"}], "owner": "team-a"}),
            );
            s.write(
                &meta(),
                WriteOp::CreateFlag {
                    project: "p".into(),
                    flag: f,
                },
            )
            .await
            .unwrap();
        }
        let page1 = s
            .list_flags("p", &FlagFilter::default(), 2, None)
            .await
            .unwrap();
        assert_eq!(
            page1
                .items
                .iter()
                .map(|f| f.key.as_str())
                .collect::<Vec<_>>(),
            ["f0", "f1"]
        );
        let page2 = s
            .list_flags("p", &FlagFilter::default(), 2, page1.next_cursor.as_deref())
            .await
            .unwrap();
        assert_eq!(page2.items[0].key, "f2");
        let even = FlagFilter {
            tag: Some("even".into()),
            ..Default::default()
        };
        assert_eq!(
            s.list_flags("p", &even, 100, None)
                .await
                .unwrap()
                .items
                .len(),
            3
        );
        let q = FlagFilter {
            q: Some("F4".into()),
            ..Default::default()
        };
        assert_eq!(
            s.list_flags("p", &q, 100, None).await.unwrap().items.len(),
            1
        );
    }
}

#[tokio::test]
async fn a_variant_another_flag_requires_cannot_be_dropped() {
    for t in support::all().await {
        let s = &t.store;
        let create = |f: serde_json::Value| WriteOp::CreateFlag {
            project: "shop".into(),
            flag: flag(f),
        };
        s.write(
            &meta(),
            WriteOp::CreateProject {
                project: project("shop"),
                environments: None,
            },
        )
        .await
        .unwrap();
        let theme = |variants: serde_json::Value| json!({"key": "theme", "type": "string", "variants": variants});
        s.write(
            &meta(),
            create(theme(
                json!([{"key": "light", "value": "l"}, {"key": "dark", "value": "d"}]),
            )),
        )
        .await
        .unwrap();
        s.write(
            &meta(),
            create(
                json!({"key": "checkout", "type": "boolean", "environments": {"production":
                {"enabled": true, "prerequisites": [{"flag": "theme", "variants": ["dark"]}]}}}),
            ),
        )
        .await
        .unwrap();
        let dropped = s
            .write(
                &meta(),
                WriteOp::UpdateFlag {
                    project: "shop".into(),
                    key: "theme".into(),
                    expected_version: Expected::Any,
                    flag: flag(theme(json!([{"key": "light", "value": "l"}]))),
                },
            )
            .await;
        match dropped {
            Err(StoreError::Invalid(e)) => {
                let text = format!("{e:?}");
                assert!(text.contains("checkout"), "{}: {text}", t.name);
            }
            other => panic!("{}: dropping a required variant: {other:?}", t.name),
        }
        let stored = s.get_flag("shop", "theme").await.unwrap();
        assert_eq!(stored.variants.len(), 2, "{}: nothing changed", t.name);
    }
}

/// U+0000 is refused before any statement binds it: PostgreSQL cannot hold it in text, SQLite
/// can, and both must answer alike. Content is `Invalid` naming the field; a key that names a
/// resource cannot hold it, so that is `NotFound`.
#[tokio::test]
async fn nul_is_refused_alike_on_both_backends() {
    for t in support::all().await {
        let s = &t.store;
        s.write(
            &meta(),
            WriteOp::CreateProject {
                project: project("shop"),
                environments: None,
            },
        )
        .await
        .unwrap();
        let fields = |result: Result<hata_store::WriteOutcome, StoreError>| match result {
            Err(StoreError::Invalid(v)) => {
                v.0.into_iter()
                    .map(|e| {
                        assert_eq!(e.message, "must not contain U+0000");
                        e.field
                    })
                    .collect::<Vec<_>>()
            }
            other => panic!("{}: expected Invalid, got {other:?}", t.name),
        };
        let token = |name: &str, project: Option<&str>| hata_store::NewToken {
            role: None,
            id: "tok_1".into(),
            name: name.into(),
            kind: hata_store::TokenKind::Server,
            project: project.map(str::to_string),
            environment: Some("production".into()),
            expires_at: None,
            secret_hash: "hash".into(),
        };

        // The flag's key is read from the store before the flag is validated.
        let created = s
            .write(
                &meta(),
                WriteOp::CreateFlag {
                    project: "shop".into(),
                    flag: flag(json!({"key": "a\u{0}", "type": "boolean", "owner": "\u{0}"})),
                },
            )
            .await;
        assert_eq!(fields(created), ["key", "owner"], "{}", t.name);
        let created = s
            .write(
                &meta(),
                WriteOp::CreateToken {
                    token: token("ci\u{0}", Some("shop\u{0}")),
                },
            )
            .await;
        assert_eq!(fields(created), ["name", "project"], "{}", t.name);
        let with_request_id = WriteMeta::new(Actor::system("test"), "req\u{0}");
        let created = s
            .write(
                &with_request_id,
                WriteOp::CreateToken {
                    token: token("ci", Some("shop")),
                },
            )
            .await;
        assert_eq!(fields(created), ["request_id"], "{}", t.name);
        let deleted = s
            .write(
                &meta(),
                WriteOp::DeleteFlag {
                    project: "shop".into(),
                    key: "dark\u{0}mode".into(),
                    expected_version: Expected::Any,
                },
            )
            .await;
        assert!(
            matches!(&deleted, Err(StoreError::NotFound(m)) if m == "flag \"dark\\0mode\""),
            "{}: {deleted:?}",
            t.name
        );
        assert!(s.list_tokens().await.unwrap().is_empty(), "{}", t.name);
        let page = s
            .list_flags("shop", &FlagFilter::default(), 10, None)
            .await
            .unwrap();
        assert!(page.items.is_empty(), "{}", t.name);
    }
}

/// `StoreConfig::sqlite_synchronous` reaches the writer's connection and the readers': SQLite
/// reads `PRAGMA synchronous` back as 1 (NORMAL, the default) or 2 (FULL).
#[tokio::test]
async fn sqlite_synchronous_is_applied_to_every_connection() {
    for (setting, expected) in [
        (None, 1),
        (Some(hata_store::SqliteSynchronous::Full), 2),
        (Some(hata_store::SqliteSynchronous::Normal), 1),
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());
        let mut config = hata_store::StoreConfig::new(url);
        if let Some(setting) = setting {
            config.sqlite_synchronous = setting;
        }
        let store = hata_store::Store::open(&config).await.expect("open");
        assert_eq!(
            store.sqlite_synchronous().await.expect("read back"),
            Some(expected),
            "{setting:?}"
        );
        store.close().await;
    }
    if let Some(t) = support::postgres().await {
        assert_eq!(t.store.sqlite_synchronous().await.expect("read"), None);
    }
}

/// Commits never checkpoint (`wal_autocheckpoint = 0`); the store's checkpointer copies the WAL
/// into the database file soon after: a copy of the file alone, without its WAL, then holds the
/// write.
#[tokio::test]
async fn sqlite_checkpoints_run_off_the_write_path() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("hata.db");
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let store = hata_store::Store::open(&hata_store::StoreConfig::new(url.clone()))
        .await
        .expect("open");
    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(&url).await.expect("connect");
    let pragma: i64 = sqlx::query_scalar("PRAGMA wal_autocheckpoint")
        .fetch_one(&raw)
        .await
        .expect("pragma");
    assert_eq!(
        pragma, 1000,
        "a connection of its own keeps SQLite's default"
    );
    raw.close().await;
    store
        .write(
            &meta(),
            WriteOp::CreateProject {
                project: project("checkpointed"),
                environments: None,
            },
        )
        .await
        .unwrap();
    let in_file_alone = |n: usize| {
        let copy = dir.path().join(format!("copy-{n}.db"));
        std::fs::copy(&db, &copy).expect("copy the file alone");
        let url = format!("sqlite://{}?mode=ro", copy.display());
        async move {
            let pool = sqlx::AnyPool::connect(&url).await.expect("open the copy");
            let found: Option<String> =
                sqlx::query_scalar("SELECT key FROM projects WHERE key = 'checkpointed'")
                    .fetch_optional(&pool)
                    .await
                    .unwrap_or(None);
            pool.close().await;
            found.is_some()
        }
    };
    // Within a few of the checkpointer's seconds (generous for a loaded machine).
    let mut checkpointed = false;
    for n in 0..100 {
        if in_file_alone(n).await {
            checkpointed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        checkpointed,
        "the checkpointer copied the commit into the file"
    );
    store.close().await;
}

/// The database file and its `-wal` and `-shm` are the owner's alone, whatever the umask that
/// created them or the mode an older version left.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("hata.db");
    let files = ["", "-wal", "-shm"].map(|s| format!("{}{s}", db.display()));
    let mode = |path: &str| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let store = hata_store::Store::open(&hata_store::StoreConfig::new(url.clone()))
        .await
        .expect("open");
    for file in &files {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    store.close().await;

    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let store = hata_store::Store::open(&hata_store::StoreConfig::new(url))
        .await
        .expect("open again");
    for file in &files {
        assert_eq!(mode(file), 0o600, "{file} after reopening");
    }
    store.close().await;
}

/// The web UI's list (`Store::sorted_flags`): filters, sorting and pages found in SQL over the
/// list columns, which follow every write, and which a row without them (an earlier version's
/// write) gets from its document before the list reads it.
#[tokio::test]
async fn sorted_flags_filter_sort_and_page_over_the_list_columns() {
    use hata_core::model::FlagType;
    use hata_store::FlagSort;
    for t in support::all().await {
        let s = &t.store;
        let name = t.name;
        s.write(
            &meta(),
            WriteOp::CreateProject {
                project: project("p"),
                environments: None,
            },
        )
        .await
        .unwrap();
        let flags = [
            json!({"key": "a-ui", "name": "Zärger Banner", "type": "boolean", "tags": ["Beta", "web"], "owner": "team-a"}),
            json!({"key": "b-price", "name": "price 50%", "type": "number", "tags": ["ab"], "owner": "team-b", "variants": [{"key": "low", "value": 1}]}),
            json!({"key": "c-copy", "name": "banner", "type": "string", "tags": ["a\"b", "back\\slash"], "owner": "team-a", "description": "Under_score copy", "variants": [{"key": "a", "value": "x"}]}),
            json!({"key": "d-old", "name": "Old", "type": "boolean", "archived": true, "owner": "team-a"}),
            json!({"key": "e-json", "name": "Banner", "type": "json", "tags": ["under_score"], "owner": "team-b", "variants": [{"key": "a", "value": {}}]}),
        ];
        for f in flags {
            s.write(
                &meta(),
                WriteOp::CreateFlag {
                    project: "p".into(),
                    flag: flag(f),
                },
            )
            .await
            .unwrap();
        }
        let keys = |filter: FlagFilter, sort: FlagSort, desc: bool| async move {
            let page = s
                .sorted_flags("p", &filter, sort, desc, 0, 100)
                .await
                .unwrap();
            assert_eq!(page.total, page.items.len(), "{name}");
            page.items.into_iter().map(|f| f.key).collect::<Vec<_>>()
        };
        let q = |text: &str| FlagFilter {
            q: Some(text.into()),
            ..Default::default()
        };
        let tag = |text: &str| FlagFilter {
            tag: Some(text.into()),
            ..Default::default()
        };
        // Archived flags only when asked for.
        let all = keys(FlagFilter::default(), FlagSort::Key, false).await;
        assert_eq!(all, ["a-ui", "b-price", "c-copy", "e-json"], "{name}");
        let archived = FlagFilter {
            archived: Some(true),
            ..Default::default()
        };
        assert_eq!(keys(archived, FlagSort::Key, false).await, ["d-old"]);
        // Search: key, name or description, any case (Unicode too); wildcards are literal.
        assert_eq!(keys(q("zärger"), FlagSort::Key, false).await, ["a-ui"]);
        assert_eq!(keys(q("ZÄRGER"), FlagSort::Key, false).await, ["a-ui"]);
        assert_eq!(keys(q("PRICE"), FlagSort::Key, false).await, ["b-price"]);
        assert_eq!(keys(q("50%"), FlagSort::Key, false).await, ["b-price"]);
        assert_eq!(keys(q("%"), FlagSort::Key, false).await, ["b-price"]);
        assert_eq!(
            keys(q("e_j"), FlagSort::Key, false).await,
            Vec::<String>::new()
        );
        assert_eq!(
            keys(q("under_score"), FlagSort::Key, false).await,
            ["c-copy"]
        );
        assert_eq!(
            keys(q("banner"), FlagSort::Key, false).await,
            ["a-ui", "c-copy", "e-json"]
        );
        // Tags: one whole tag, any case; quotes, backslashes and wildcards are literal.
        assert_eq!(keys(tag("beta"), FlagSort::Key, false).await, ["a-ui"]);
        assert_eq!(
            keys(tag("a"), FlagSort::Key, false).await,
            Vec::<String>::new()
        );
        assert_eq!(keys(tag("a\"b"), FlagSort::Key, false).await, ["c-copy"]);
        assert_eq!(
            keys(tag("back\\slash"), FlagSort::Key, false).await,
            ["c-copy"]
        );
        assert_eq!(
            keys(tag("under_score"), FlagSort::Key, false).await,
            ["e-json"]
        );
        assert_eq!(
            keys(tag("under%"), FlagSort::Key, false).await,
            Vec::<String>::new()
        );
        // Owner, type and a key set.
        let owner = FlagFilter {
            owner: Some("team-b".into()),
            ..Default::default()
        };
        assert_eq!(
            keys(owner, FlagSort::Key, false).await,
            ["b-price", "e-json"]
        );
        let boolean = FlagFilter {
            flag_type: Some(FlagType::Boolean),
            ..Default::default()
        };
        assert_eq!(keys(boolean, FlagSort::Key, false).await, ["a-ui"]);
        let only = FlagFilter {
            only: Some(["c-copy".to_string(), "d-old".to_string()].into()),
            ..Default::default()
        };
        assert_eq!(keys(only, FlagSort::Key, false).await, ["c-copy"]);
        // Sorting by name ignores case; equal names go by key, in the same direction.
        assert_eq!(
            keys(FlagFilter::default(), FlagSort::Name, false).await,
            ["c-copy", "e-json", "b-price", "a-ui"],
            "{name}"
        );
        assert_eq!(
            keys(FlagFilter::default(), FlagSort::Name, true).await,
            ["a-ui", "b-price", "e-json", "c-copy"],
            "{name}"
        );
        assert_eq!(
            keys(FlagFilter::default(), FlagSort::Key, true).await,
            ["e-json", "c-copy", "b-price", "a-ui"]
        );
        // Pages: the total counts every match; only the page is returned.
        let page = s
            .sorted_flags("p", &FlagFilter::default(), FlagSort::Key, false, 1, 2)
            .await
            .unwrap();
        assert_eq!(page.total, 4);
        let got: Vec<_> = page.items.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(got, ["b-price", "c-copy"], "{name}");
        let past = s
            .sorted_flags("p", &FlagFilter::default(), FlagSort::Key, false, 10, 2)
            .await
            .unwrap();
        assert_eq!((past.total, past.items.len()), (4, 0));

        // An update moves the columns with the document, and the last changed sorts first
        // (descending).
        let mut renamed = s.get_flag("p", "b-price").await.unwrap();
        renamed.name = "Yak".into();
        renamed.tags = vec!["Gamma".into()];
        s.write(
            &meta(),
            WriteOp::UpdateFlag {
                project: "p".into(),
                key: "b-price".into(),
                expected_version: Expected::OneOf(vec![1]),
                flag: renamed,
            },
        )
        .await
        .unwrap();
        assert_eq!(keys(q("YAK"), FlagSort::Key, false).await, ["b-price"]);
        assert_eq!(
            keys(q("price 50"), FlagSort::Key, false).await,
            Vec::<String>::new()
        );
        assert_eq!(keys(tag("gamma"), FlagSort::Key, false).await, ["b-price"]);
        assert_eq!(
            keys(FlagFilter::default(), FlagSort::Updated, true).await[0],
            "b-price"
        );

        // A row without its columns is filled from its document before the list reads it.
        sqlx::any::install_default_drivers();
        let raw = sqlx::AnyPool::connect(&t.url).await.unwrap();
        sqlx::query("UPDATE flags SET name_lower = NULL, owner = NULL, archived = NULL")
            .execute(&raw)
            .await
            .unwrap();
        raw.close().await;
        assert_eq!(
            keys(q("zärger"), FlagSort::Key, false).await,
            ["a-ui"],
            "{name}"
        );
        assert_eq!(
            keys(FlagFilter::default(), FlagSort::Name, false).await,
            ["c-copy", "e-json", "b-price", "a-ui"],
            "{name}"
        );
    }
}
