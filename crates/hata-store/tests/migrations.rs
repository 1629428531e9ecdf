//! Migrations that rewrite data, run on a store as an earlier version left it.

mod support;

use hata_store::{Store, StoreConfig};
use sqlx::any::AnyPoolOptions;

/// A migrator of the first `n` migrations of `backend`, as an earlier version of hata ran them
/// (same files, so the same checksums: `Store::open` then applies only the rest).
async fn earlier_migrations(
    backend: &str,
    n: usize,
    dir: &std::path::Path,
) -> sqlx::migrate::Migrator {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(backend);
    let mut files: Vec<_> = std::fs::read_dir(&source)
        .expect("migrations dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    for file in files.iter().take(n) {
        std::fs::copy(file, dir.join(file.file_name().expect("name"))).expect("copy");
    }
    sqlx::migrate::Migrator::new(dir).await.expect("migrator")
}

/// On SQLite (a file in `tmp`) and PostgreSQL when there is one: a database with the first
/// `n` migrations applied as an earlier version left it, and a connection to fill it through.
async fn earlier_stores(
    tmp: &std::path::Path,
    n: usize,
) -> Vec<(&'static str, String, sqlx::AnyPool)> {
    sqlx::any::install_default_drivers();
    let mut urls = vec![(
        "sqlite",
        format!("sqlite://{}?mode=rwc", tmp.join("hata.db").display()),
    )];
    if let Some(url) = support::new_postgres_database().await {
        urls.push(("postgres", url));
    }
    let mut stores = Vec::new();
    for (backend, url) in urls {
        let dir = tmp.join(backend);
        std::fs::create_dir(&dir).expect("dir");
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("connect");
        earlier_migrations(backend, n, &dir)
            .await
            .run(&pool)
            .await
            .unwrap_or_else(|e| panic!("{backend}: migrations 1-{n}: {e}"));
        stores.push((backend, url, pool));
    }
    stores
}

/// 0003: tokens whose id was derived from the secret's hash get a random id; the rest of the
/// row and tokens with other ids are kept.
#[tokio::test]
async fn tokens_with_hash_derived_ids_get_random_ids() {
    let tmp = tempfile::tempdir().expect("temp dir");
    for (backend, url, pool) in earlier_stores(tmp.path(), 2).await {
        let hash = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        for (id, name, secret_hash) in [
            ("tok_ba7816bf8f01cfea", "derived", hash),
            ("tok_chosen", "other", &"0".repeat(64)[..]),
        ] {
            sqlx::query(
                "INSERT INTO tokens (id, name, kind, secret_hash, created_at) \
                 VALUES ($1, $2, 'admin', $3, '2026-01-01T00:00:00Z')",
            )
            .bind(id)
            .bind(name)
            .bind(secret_hash)
            .execute(&pool)
            .await
            .expect("insert");
        }
        pool.close().await;

        let store = Store::open(&StoreConfig::new(url)).await.expect("open");
        let tokens = store.list_tokens().await.expect("tokens");
        let derived = tokens.iter().find(|t| t.name == "derived").expect("kept");
        assert_ne!(derived.id, "tok_ba7816bf8f01cfea", "{backend}");
        let hex = derived.id.strip_prefix("tok_").expect("prefix");
        assert_eq!(hex.len(), 16, "{backend}: {}", derived.id);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "{}", derived.id);
        assert!(!hash.starts_with(hex), "{backend}");
        assert_eq!(derived.secret_hash, hash, "the secret still works");
        let other = tokens.iter().find(|t| t.name == "other").expect("kept");
        assert_eq!(other.id, "tok_chosen", "{backend}");
        store.close().await;
    }
}

/// 0009: the change record written before the audit chain joins it, oldest first and
/// renumbered without gaps (PostgreSQL's sequences skip the ids of rolled-back writes), with
/// checkpoints where the policy asks; the chain then verifies, and the next write links to it.
#[tokio::test]
async fn the_earlier_change_record_is_chained() {
    let tmp = tempfile::tempdir().expect("temp dir");
    for (backend, url, pool) in earlier_stores(tmp.path(), 8).await {
        // Ids 1, 2, 5, 6, 7 (3 and 4 rolled back), as hata wrote them: milliseconds.
        for (id, action, key, old, new) in [
            (
                1,
                "create",
                "shop",
                None,
                Some(r#"{"key":"shop","name":"Shop"}"#),
            ),
            (
                2,
                "create",
                "dark-mode",
                None,
                Some(r#"{"key":"dark-mode","on":true}"#),
            ),
            (
                5,
                "update",
                "dark-mode",
                Some(r#"{"key":"dark-mode","on":true}"#),
                Some(r#"{"key":"dark-mode","on":false}"#),
            ),
            (
                6,
                "delete",
                "dark-mode",
                Some(r#"{"key":"dark-mode","on":false}"#),
                None,
            ),
            (
                7,
                "update",
                "production",
                Some(r#"{"protected":false}"#),
                Some(r#"{"protected":true}"#),
            ),
        ] {
            let resource = match key {
                "shop" => "project",
                "production" => "environment",
                _ => "flag",
            };
            sqlx::query(
                "INSERT INTO changes (id, at, actor, request_id, action, resource_type, project, resource_key, old_value, new_value, revisions) \
                 VALUES ($1, $2, 'token:tok_admin', 'req-1', $3, $4, 'shop', $5, $6, $7, '[]')",
            )
            .bind(id as i64)
            .bind(format!("2026-01-0{id}T10:00:00.123Z"))
            .bind(action)
            .bind(resource)
            .bind(key)
            .bind(old)
            .bind(new)
            .execute(&pool)
            .await
            .expect("insert");
        }
        pool.close().await;

        let key = hata_audit::SigningKey::generate(&mut rand::rngs::OsRng);
        let mut config = StoreConfig::new(url);
        config.audit.key = Some(std::sync::Arc::new(key));
        config.audit.policy = hata_audit::CheckpointPolicy { every: 2 };
        let store = Store::open(&config).await.expect("open");
        let page = store
            .page_audit(&Default::default(), 100, None)
            .await
            .expect("entries");
        let seqs: Vec<i64> = page
            .items
            .iter()
            .map(|e| e["seq"].as_i64().expect("seq"))
            .collect();
        assert_eq!(seqs, [5, 4, 3, 2, 1], "{backend}: newest first, renumbered");
        let update = &page.items[2];
        assert_eq!(update["at"], "2026-01-05T10:00:00.123000Z", "{backend}");
        assert_eq!(update["actor"]["kind"], "token", "{backend}");
        assert_eq!(update["actor"]["id"], "tok_admin", "{backend}");
        assert_eq!(
            update["patch"],
            serde_json::json!([{"op": "replace", "path": "/on", "value": false}]),
            "{backend}"
        );
        assert_eq!(page.items[0]["environment"], "production", "{backend}");
        assert_eq!(page.items[4]["prev_hash"], "0".repeat(64), "{backend}");
        let report = store.verify_audit().await.expect("verify");
        assert!(report.ok, "{backend}: {report:?}");
        assert_eq!(report.entries, 5, "{backend}");
        assert_eq!(report.checkpoints, 2, "{backend}: at seqs 2 and 4");
        assert!(report.signatures_checked, "{backend}");

        // Opening again changes nothing; the next write links to the chained head.
        store.close().await;
        let store = Store::open(&config).await.expect("open again");
        let meta = hata_store::WriteMeta::new(hata_store::Actor::system("test"), "");
        store
            .write(
                &meta,
                hata_store::WriteOp::CreateProject {
                    project: serde_json::from_value(
                        serde_json::json!({"key": "next", "name": "Next"}),
                    )
                    .expect("a project"),
                    environments: None,
                },
            )
            .await
            .expect("a write after the backfill");
        let report = store.verify_audit().await.expect("verify");
        assert!(report.ok, "{backend}: {report:?}");
        assert!(report.entries > 5, "{backend}: {report:?}");
        store.close().await;
    }
}

/// On PostgreSQL, a replica of the previous version (appending changes without hashes during
/// a rolling upgrade) is refused by the database instead of breaking the chain.
#[tokio::test]
async fn an_outdated_replica_cannot_append_unchained_changes() {
    sqlx::any::install_default_drivers();
    let Some(url) = support::new_postgres_database().await else {
        return;
    };
    let store = Store::open(&StoreConfig::new(url.clone()))
        .await
        .expect("open");
    store.close().await;
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect");
    // What the previous version's write path inserts.
    let refused = sqlx::query(
        "INSERT INTO changes (at, actor, request_id, action, resource_type, project, resource_key, old_value, new_value, revisions) \
         VALUES ('2026-12-01T00:00:00.000Z', 'token:tok_old', '', 'create', 'project', 'p', 'p', NULL, '{}', '[]')",
    )
    .execute(&pool)
    .await
    .expect_err("refused");
    assert!(
        refused.to_string().contains("upgrade this hata replica"),
        "{refused}"
    );
    pool.close().await;
}

/// 0012: flags written before the list columns get them from their documents at start-up,
/// so the web UI's list finds, filters and sorts them.
#[tokio::test]
async fn earlier_flags_get_their_list_columns() {
    let tmp = tempfile::tempdir().expect("temp dir");
    for (backend, url, pool) in earlier_stores(tmp.path(), 11).await {
        sqlx::query(
            "INSERT INTO projects (key, name, description, version, created_at, updated_at) \
             VALUES ('shop', 'Shop', '', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
        )
        .execute(&pool)
        .await
        .expect("insert project");
        for (key, doc) in [
            (
                "checkout",
                r#"{"key":"checkout","name":"Checkout","type":"boolean","tags":["Web"],"owner":"team-a","version":1}"#,
            ),
            (
                "banner",
                r#"{"key":"banner","name":"Zebra","type":"string","archived":true,"version":1}"#,
            ),
            (
                "price",
                r#"{"key":"price","name":"Ärger","description":"Old price","type":"number","version":1}"#,
            ),
        ] {
            sqlx::query(
                "INSERT INTO flags (project, key, doc, version, created_at, updated_at) \
                 VALUES ('shop', $1, $2, 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
            )
            .bind(key)
            .bind(doc)
            .execute(&pool)
            .await
            .expect("insert flag");
        }
        pool.close().await;

        let store = Store::open(&StoreConfig::new(url)).await.expect("open");
        let keys = |filter: hata_store::FlagFilter| {
            let store = &store;
            async move {
                store
                    .sorted_flags("shop", &filter, hata_store::FlagSort::Name, false, 0, 10)
                    .await
                    .expect("list")
                    .items
                    .into_iter()
                    .map(|f| f.key)
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            keys(Default::default()).await,
            ["checkout", "price"],
            "{backend}"
        );
        let search = hata_store::FlagFilter {
            q: Some("ärger".into()),
            ..Default::default()
        };
        assert_eq!(keys(search).await, ["price"], "{backend}");
        let tag = hata_store::FlagFilter {
            tag: Some("web".into()),
            owner: Some("team-a".into()),
            ..Default::default()
        };
        assert_eq!(keys(tag).await, ["checkout"], "{backend}");
        let archived = hata_store::FlagFilter {
            archived: Some(true),
            ..Default::default()
        };
        assert_eq!(keys(archived).await, ["banner"], "{backend}");
        store.close().await;
    }
}
