//! Test support: a fresh store on each backend. SQLite gets a temp file; PostgreSQL (at
//! `HATA_TEST_POSTGRES_URL`, default the local server's `test` database) gets a new database
//! per test, so tests run in parallel without seeing each other.

// Each test file includes this module and uses part of it.
#![allow(dead_code)]

use hata_store::{Store, StoreConfig};
use sqlx::Executor;

pub struct TestStore {
    pub store: Store,
    pub name: &'static str,
    /// The store's database, for a test that must reach under the store.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// How every test store is opened: with an audit signing key, and a checkpoint every 4
/// entries so that short tests cross several.
pub fn config(url: String) -> StoreConfig {
    let mut config = StoreConfig::new(url);
    config.audit.key = Some(std::sync::Arc::new(hata_audit::SigningKey::generate(
        &mut rand::rngs::OsRng,
    )));
    config.audit.policy = hata_audit::CheckpointPolicy { every: 4 };
    config
}

pub fn postgres_admin_url() -> String {
    std::env::var("HATA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("hata.db").display());
    let store = Store::open(&config(url.clone()))
        .await
        .expect("open sqlite store");
    TestStore {
        store,
        name: "sqlite",
        url,
        _dir: Some(dir),
    }
}

/// A new, empty PostgreSQL database. `None` only when PostgreSQL is unreachable and we are
/// not in CI (under `CI=true` a missing PostgreSQL fails the test).
pub async fn postgres() -> Option<TestStore> {
    let url = new_postgres_database().await?;
    let store = Store::open(&config(url.clone()))
        .await
        .expect("open postgres store");
    Some(TestStore {
        store,
        name: "postgres",
        url,
        _dir: None,
    })
}

/// The URL of a new, empty PostgreSQL database; `None` as for `postgres`.
pub async fn new_postgres_database() -> Option<String> {
    let admin_url = postgres_admin_url();
    let admin = match sqlx::PgPool::connect(&admin_url).await {
        Ok(p) => p,
        Err(e) if std::env::var("CI").is_err() => {
            eprintln!("skipping PostgreSQL: {e}");
            return None;
        }
        Err(e) => panic!("PostgreSQL at {admin_url} is required under CI: {e}"),
    };
    let db = format!("hata_t_{:016x}", rand::random::<u64>());
    admin
        .execute(format!("CREATE DATABASE {db}").as_str())
        .await
        .expect("create database");
    admin.close().await;
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b.to_string())
        .expect("database url has a path");
    Some(format!("{base}/{db}"))
}

/// Every backend available: SQLite always, PostgreSQL when reachable (always under CI).
pub async fn all() -> Vec<TestStore> {
    let mut v = vec![sqlite().await];
    v.extend(postgres().await);
    v
}
