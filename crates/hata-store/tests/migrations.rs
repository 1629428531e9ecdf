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

/// 0003: tokens whose id was derived from the secret's hash get a random id; the rest of the
/// row and tokens with other ids are kept.
#[tokio::test]
async fn tokens_with_hash_derived_ids_get_random_ids() {
    sqlx::any::install_default_drivers();
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut urls = vec![(
        "sqlite",
        format!("sqlite://{}?mode=rwc", tmp.path().join("hata.db").display()),
    )];
    if let Some(url) = support::new_postgres_database().await {
        urls.push(("postgres", url));
    }
    for (backend, url) in urls {
        let dir = tmp.path().join(backend);
        std::fs::create_dir(&dir).expect("dir");
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .expect("connect");
        earlier_migrations(backend, 2, &dir)
            .await
            .run(&pool)
            .await
            .expect("migrations 1-2");
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
