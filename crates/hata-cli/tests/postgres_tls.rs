//! TLS to PostgreSQL, as managed services require it: `sslmode=verify-full&sslrootcert=<CA>`
//! in the database URL encrypts and verifies the connection, for `hata migrate` and for every
//! connection of `hata serve`; a server certificate from another CA is refused with a message
//! that says so.
//!
//! The test makes a CA and a server certificate for `localhost`/127.0.0.1 and points the
//! local PostgreSQL at them: the files are written by the server itself (`COPY … TO PROGRAM`,
//! so they belong to its user with mode 0600, as PostgreSQL demands of a key, whoever runs the
//! test), then `ALTER SYSTEM` and `pg_reload_conf()`. The suite shares that server: the
//! reconfiguration holds an advisory lock against other runs of this test, and plain
//! connections keep working throughout (clients that do not verify accept any certificate).
//! At the end the settings are put back as they were. Without PostgreSQL the test is skipped,
//! except under `CI=true`, where it fails.

mod support;

use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::{Connection, Executor, PgConnection};
use support::{PgDatabase, Replica};

/// `pg_advisory_lock` key of the server's TLS configuration ("hatatls").
const TLS_LOCK: i64 = 0x0068_6174_6174_6c73;

/// The settings the test changes, put back afterwards.
const SETTINGS: [&str; 3] = ["ssl", "ssl_cert_file", "ssl_key_file"];

/// A CA named `name` (its certificate, PEM) and, when `server` is set, a server certificate and
/// key it signs for `localhost` and 127.0.0.1.
fn pki(name: &str, server: bool) -> (String, Option<(String, String)>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let leaf = server.then(|| {
        let key = KeyPair::generate().expect("server key");
        let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("server params")
            .signed_by(&key, &ca)
            .expect("server certificate");
        (cert.pem(), key.serialize_pem())
    });
    (ca.pem(), leaf)
}

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Writes `content` to `path` on the database server, as the server's user and with mode
/// 0600 (PostgreSQL refuses a key file others may read; `COPY … TO 'file'` makes 0644).
async fn write_server_file(admin: &mut PgConnection, path: &str, content: &str) {
    let program = format!("umask 077 && cat > '{}'", path.replace('\'', r"'\''"));
    // One row per line; COPY's text format escapes nothing PEM holds.
    let sql = format!(
        "COPY (SELECT unnest(string_to_array($pem${}$pem$, E'\\n'))) TO PROGRAM {}",
        content.trim(),
        quoted(&program)
    );
    admin
        .execute(sql.as_str())
        .await
        .unwrap_or_else(|e| panic!("write {path} on the server (needs a superuser): {e}"));
}

/// The `postgresql.auto.conf` values of `SETTINGS` (`None`: not set there).
async fn auto_conf(admin: &mut PgConnection) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for name in SETTINGS {
        let value: Option<String> = sqlx::query_scalar(
            "SELECT setting FROM pg_file_settings \
             WHERE name = $1 AND sourcefile LIKE '%postgresql.auto.conf' \
             ORDER BY seqno DESC LIMIT 1",
        )
        .bind(name)
        .fetch_optional(&mut *admin)
        .await
        .expect("read pg_file_settings");
        out.push((name.to_string(), value));
    }
    out
}

async fn set_auto_conf(admin: &mut PgConnection, settings: &[(String, Option<String>)]) {
    for (name, value) in settings {
        let sql = match value {
            Some(value) => format!("ALTER SYSTEM SET {name} = {}", quoted(value)),
            None => format!("ALTER SYSTEM RESET {name}"),
        };
        admin.execute(sql.as_str()).await.expect("ALTER SYSTEM");
    }
    admin
        .execute("SELECT pg_reload_conf()")
        .await
        .expect("pg_reload_conf");
}

/// Whether the connection this is asked on is encrypted.
async fn is_ssl(conn: &mut PgConnection) -> bool {
    sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(conn)
        .await
        .expect("pg_stat_ssl")
}

#[tokio::test]
async fn verify_full_to_postgres_for_migrate_and_serve() {
    let Some(db) = PgDatabase::create().await else {
        return;
    };
    let mut admin = PgConnection::connect(&support::postgres_admin_url())
        .await
        .expect("connect as admin");
    // Held by this session until it closes: another run of this test waits here.
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(TLS_LOCK)
        .execute(&mut admin)
        .await
        .expect("advisory lock");
    let before = auto_conf(&mut admin).await;

    let (ca, server) = pki("hata test CA", true);
    let (cert, key) = server.expect("a server certificate");
    let data_directory: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
        .fetch_one(&mut admin)
        .await
        .expect("data_directory");
    // In the data directory: it is the server's to write, and outlives a reboot (a missing
    // certificate file would stop PostgreSQL from starting while the settings name it).
    let cert_path = format!("{data_directory}/hata-test-server.crt");
    let key_path = format!("{data_directory}/hata-test-server.key");
    write_server_file(&mut admin, &cert_path, &cert).await;
    write_server_file(&mut admin, &key_path, &key).await;
    set_auto_conf(
        &mut admin,
        &[
            ("ssl".into(), Some("on".into())),
            ("ssl_cert_file".into(), Some(cert_path)),
            ("ssl_key_file".into(), Some(key_path)),
        ],
    )
    .await;

    // The checks run as a task of their own, so that a failure still puts the settings back.
    let checks = tokio::spawn(checks(db, ca));
    let outcome = checks.await;
    set_auto_conf(&mut admin, &before).await;
    let _ = admin.close().await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn checks(db: PgDatabase, ca: String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, &ca).expect("write CA");
    let (other_ca, _) = pki("another CA", false);
    let other_ca_path = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca_path, other_ca).expect("write the other CA");
    let url = |query: &str| format!("{}?{query}", db.url());
    let verified = url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        ca_path.display()
    ));
    let wrong_ca = url(&format!(
        "sslmode=verify-full&sslrootcert={}",
        other_ca_path.display()
    ));

    // The reload takes effect for new connections once the postmaster has read the files.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut conn = loop {
        match PgConnection::connect(&verified).await {
            Ok(conn) => break conn,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "PostgreSQL never presented the test certificate: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(is_ssl(&mut conn).await, "verify-full is encrypted");
    let _ = conn.close().await;

    // Plain connections still work, and `require` encrypts without verifying.
    let mut plain = PgConnection::connect(&url("sslmode=disable"))
        .await
        .expect("a plain connection");
    assert!(!is_ssl(&mut plain).await);
    let _ = plain.close().await;
    let mut required = PgConnection::connect(&url("sslmode=require"))
        .await
        .expect("sslmode=require");
    assert!(is_ssl(&mut required).await);
    let _ = required.close().await;

    // Another CA: refused, saying why.
    let refused = PgConnection::connect(&wrong_ca)
        .await
        .err()
        .map(|e| e.to_string());
    let refused = refused.expect("verify-full against another CA must fail");
    assert!(
        refused.contains("invalid peer certificate: UnknownIssuer"),
        "{refused}"
    );

    let out = support::hata(&["migrate"], &[("HATA_DATABASE_URL", &wrong_ca)])
        .output()
        .expect("run hata migrate");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "migrate with another CA: {stderr}");
    // The setting, the URL (with its sslmode and sslrootcert) and the reason.
    assert!(
        stderr.contains("database_url: cannot open")
            && stderr.contains("sslmode=verify-full")
            && stderr.contains("invalid peer certificate: UnknownIssuer"),
        "{stderr}"
    );

    let out = support::hata(&["migrate"], &[("HATA_DATABASE_URL", &verified)])
        .output()
        .expect("run hata migrate");
    assert!(
        out.status.success(),
        "hata migrate over TLS: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // `hata serve`: writes work, and every connection it opened (pool and change listener)
    // is encrypted. Earlier connections (the plain one above) may take a moment to leave
    // pg_stat_activity: only the server's own are counted.
    let mut admin = db.connect().await;
    let started: String = sqlx::query_scalar("SELECT clock_timestamp()::text")
        .fetch_one(&mut admin)
        .await
        .expect("the server's clock");
    let replica = Replica::start("tls", &verified).await;
    replica
        .admin_ok(
            Method::POST,
            "/projects",
            Some(json!({"key": "shop"})),
            StatusCode::CREATED,
        )
        .await;
    let (connections, all_ssl): (i64, Option<bool>) = sqlx::query_as(
        "SELECT count(*), bool_and(s.ssl) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
         WHERE a.datname = $1 AND a.pid <> pg_backend_pid() AND a.backend_start >= $2::timestamptz",
    )
    .bind(&db.name)
    .bind(&started)
    .fetch_one(&mut admin)
    .await
    .expect("pg_stat_ssl of the replica");
    let _ = admin.close().await;
    assert!(connections >= 2, "pool and listener: {connections}");
    assert_eq!(all_ssl, Some(true), "{}", replica.log());
    replica.terminate().await;
}
