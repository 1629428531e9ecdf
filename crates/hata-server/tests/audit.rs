//! The audit log through the API: what a write records (exact old and new values, their
//! JSON Patch, who, from where, under which request), the filters and one flag's history,
//! and verification finding each kind of tampering made directly in the database, on
//! SQLite and PostgreSQL.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::any::AnyPoolOptions;
use support::{Reply, TestServer};

/// Every test runs on SQLite, and on PostgreSQL when there is one (under CI there must be).
async fn servers() -> Vec<(&'static str, TestServer)> {
    let mut servers = vec![("sqlite", TestServer::start().await)];
    if let Some(pg) = TestServer::start_postgres().await {
        servers.push(("postgres", pg));
    }
    servers
}

async fn verify(s: &TestServer) -> Value {
    s.get("/api/v1/audit/verify")
        .await
        .expect(StatusCode::OK)
        .body
}

#[tokio::test]
async fn a_write_is_an_entry_with_its_exact_values_and_patch() {
    for (backend, s) in servers().await {
        s.project("shop").await;
        let created = s
            .flag("shop", json!({"key": "dark-mode", "type": "boolean"}))
            .await;
        let me = s.get("/api/v1/auth/me").await.expect(StatusCode::OK).body;
        s.patch(
            "/api/v1/projects/shop/flags/dark-mode/environments/production",
            &json!({"enabled": true}),
        )
        .await
        .expect(StatusCode::OK);
        // The kill switch in production, as a browser-less client sends it.
        let killed = Reply::of(
            s.admin(
                Method::PATCH,
                "/api/v1/projects/shop/flags/dark-mode/environments/production",
            )
            .header("user-agent", "audit-test/1.0")
            .header("x-request-id", "req-audit-1")
            .json(&json!({"enabled": false})),
        )
        .await
        .expect(StatusCode::OK);
        let after = s
            .get("/api/v1/projects/shop/flags/dark-mode")
            .await
            .expect(StatusCode::OK)
            .body;

        let page = s
            .get("/api/v1/audit?resource=flag:dark-mode")
            .await
            .expect(StatusCode::OK)
            .body;
        let entries = page["items"].as_array().expect("items");
        assert_eq!(entries.len(), 3, "{backend}: {page}");
        let (update, enable, create) = (&entries[0], &entries[1], &entries[2]);
        assert_eq!(create["action"], "create", "{backend}");
        assert_eq!(create["old"], Value::Null, "{backend}");
        assert_eq!(
            create["new"], created,
            "{backend}: the stored flag as created"
        );
        assert_eq!(update["action"], "update", "{backend}");
        assert_eq!(enable["old"], create["new"], "{backend}");
        assert_eq!(update["old"], enable["new"], "{backend}");
        assert_eq!(update["new"], after, "{backend}: the stored flag after");
        assert_eq!(
            update["new"]["environments"]["production"]["enabled"], false,
            "{backend}: {killed:?}"
        );
        // The patch turns old into new, exactly.
        let patch: json_patch::Patch =
            serde_json::from_value(update["patch"].clone()).expect("an RFC 6902 patch");
        let mut patched = update["old"].clone();
        json_patch::patch(&mut patched, &patch).expect("the patch applies");
        assert_eq!(patched, update["new"], "{backend}");
        assert!(
            update["patch"]
                .as_array()
                .expect("ops")
                .iter()
                .any(|op| op["path"] == "/environments/production/enabled"),
            "{backend}: {}",
            update["patch"]
        );
        assert_eq!(
            update["actor"],
            json!({"kind": "token", "id": me["id"], "name": me["name"]}),
            "{backend}"
        );
        assert_eq!(update["role"], "admin", "{backend}");
        assert_eq!(
            update["resource"],
            json!({"type": "flag", "key": "dark-mode"})
        );
        assert_eq!(update["project"], "shop", "{backend}");
        assert_eq!(
            update["environment"], "production",
            "{backend}: one environment changed"
        );
        assert_eq!(create["environment"], Value::Null, "{backend}");
        assert_eq!(update["ip"], "127.0.0.1", "{backend}");
        assert_eq!(update["user_agent"], "audit-test/1.0", "{backend}");
        assert_eq!(update["request_id"], "req-audit-1", "{backend}");
        assert_eq!(
            update["prev_hash"], enable["hash"],
            "{backend}: consecutive entries"
        );
        assert_eq!(
            update["seq"].as_i64(),
            enable["seq"].as_i64().map(|s| s + 1),
            "{backend}"
        );

        // Filters, one flag's history, paging.
        let production = s
            .get("/api/v1/audit?environment=production&action=update")
            .await
            .expect(StatusCode::OK)
            .body;
        assert_eq!(production["items"][0], *update, "{backend}");
        let history = s
            .get("/api/v1/projects/shop/flags/dark-mode/history?limit=1")
            .await
            .expect(StatusCode::OK)
            .body;
        assert_eq!(history["items"], json!([update]), "{backend}");
        let cursor = history["next_cursor"].as_str().expect("a next page");
        let rest = s
            .get(&format!(
                "/api/v1/projects/shop/flags/dark-mode/history?cursor={cursor}"
            ))
            .await
            .expect(StatusCode::OK)
            .body;
        assert_eq!(rest["items"], json!([enable, create]), "{backend}");
        assert_eq!(rest["next_cursor"], Value::Null, "{backend}");
        let mine = s
            .get(&format!(
                "/api/v1/audit?actor={}",
                me["id"].as_str().expect("id")
            ))
            .await
            .expect(StatusCode::OK)
            .body;
        assert!(
            mine["items"].as_array().expect("items").len() >= 3,
            "{backend}: {mine}"
        );
        let none = s
            .get("/api/v1/audit?from=2100-01-01T00:00:00Z")
            .await
            .expect(StatusCode::OK)
            .body;
        assert_eq!(none["items"], json!([]), "{backend}");

        // Bad filters name the parameter.
        s.get("/api/v1/audit?action=explode&from=yesterday")
            .await
            .problem(StatusCode::UNPROCESSABLE_ENTITY)
            .invalid_at("action", "not an action")
            .invalid_at("from", "not an RFC 3339 time");

        let report = verify(&s).await;
        assert_eq!(report["ok"], true, "{backend}: {report}");
        assert_eq!(report["head"], update["hash"], "{backend}: {report}");
        assert_eq!(report["signatures_checked"], true, "{backend}: {report}");
    }
}

/// Writes a chain for the tamper cases: a checkpoint (by the time-based signer, called
/// here) at a seq of 10 or a little more, and two entries after it. Returns the
/// checkpoint's seq.
async fn chain_with_a_checkpoint(s: &TestServer) -> i64 {
    s.project("shop").await;
    let mut checkpoint = None;
    for i in 0.. {
        let entries = verify(s).await["entries"].as_i64().expect("entries");
        match checkpoint {
            None if entries >= 10 => {
                let signed = s.store.checkpoint_head().await.expect("sign the head");
                checkpoint = Some(signed.expect("a checkpoint").seq as i64);
            }
            Some(seq) if entries >= seq + 2 => return seq,
            _ => {}
        }
        s.flag(
            "shop",
            json!({"key": format!("flag-{i}"), "type": "boolean"}),
        )
        .await;
    }
    unreachable!("the loop returns")
}

/// `GET /audit/export` verified line by line with the key `GET /audit/public-key` serves.
async fn verify_export(s: &TestServer) -> hata_audit::Report {
    let export = Reply::of(s.admin(Method::GET, "/api/v1/audit/export")).await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.header("content-type"), Some("application/jsonl"));
    let pem = Reply::of(s.client.get(s.url("/api/v1/audit/public-key"))).await;
    let key = hata_audit::PublicKey::from_pem(pem.body.as_str().expect("PEM")).expect("a key");
    let mut verifier = hata_audit::Verifier::new().with_public_key(key);
    let text = match &export.body {
        Value::String(text) => text.clone(),
        // A one-line export parses as JSON whole.
        other => other.to_string(),
    };
    for line in text.lines() {
        verifier.push_line(line);
    }
    verifier.finish()
}

async fn sql(s: &TestServer, statements: &[&str]) {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&s.database_url())
        .await
        .expect("connect to the server's database");
    for statement in statements {
        sqlx::query(statement)
            .execute(&pool)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    pool.close().await;
}

/// Every column of a change row but its id.
const COLUMNS: &str = "at, actor, actor_name, role, request_id, action, resource_type, project, environment, resource_key, old_value, new_value, patch, ip, user_agent, revisions, prev_hash, hash";

#[tokio::test]
async fn tampering_in_the_database_is_found_and_named() {
    // (what, SQL given the checkpoint's seq, the first bad seq given it, the reason)
    type Case = (
        &'static str,
        fn(i64) -> Vec<String>,
        fn(i64) -> i64,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "a field edited",
            |_| vec!["UPDATE changes SET actor_name = 'someone else' WHERE id = 5".into()],
            |_| 5,
            "hash_mismatch",
        ),
        (
            "a row deleted",
            |_| vec!["DELETE FROM changes WHERE id = 5".into()],
            |_| 5,
            "gap",
        ),
        (
            // A copy of entry 4 slipped in as 5, the rest moved up by one.
            "a row inserted",
            |_| {
                vec![
                    "UPDATE changes SET id = id + 1000 WHERE id >= 5".into(),
                    "UPDATE changes SET id = id - 999 WHERE id >= 1000".into(),
                    format!("INSERT INTO changes (id, {COLUMNS}) SELECT 5, {COLUMNS} FROM changes WHERE id = 4"),
                ]
            },
            |_| 5,
            "broken_link",
        ),
        (
            "two rows swapped",
            |_| {
                vec![
                    "UPDATE changes SET id = 1005 WHERE id = 5".into(),
                    "UPDATE changes SET id = 5 WHERE id = 6".into(),
                    "UPDATE changes SET id = 6 WHERE id = 1005".into(),
                ]
            },
            |_| 5,
            "broken_link",
        ),
        (
            "the tail cut before the last checkpoint",
            |cp| vec![format!("DELETE FROM changes WHERE id > {}", cp - 2)],
            |cp| cp - 1,
            "truncated",
        ),
        (
            "a checkpoint forged with another key",
            |cp| {
                let other = hata_audit::SigningKey::generate(&mut rand::rngs::OsRng);
                let head = hata_audit::Head {
                    seq: cp as u64,
                    hash: hata_audit::Hash([7; 32]),
                };
                let forged =
                    hata_audit::Checkpoint::sign(head, time::OffsetDateTime::now_utc(), &other)
                        .expect("a checkpoint");
                vec![
                    format!("DELETE FROM audit_checkpoints WHERE seq = {cp}"),
                    format!(
                        "INSERT INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES ({cp}, '{}', '{}', '{}', '{}')",
                        forged.hash, forged.at, forged.key_id, forged.signature
                    ),
                ]
            },
            |cp| cp,
            "bad_signature",
        ),
    ];
    for (what, statements, seq, reason) in cases {
        for (backend, s) in servers().await {
            let cp = chain_with_a_checkpoint(&s).await;
            let before = verify(&s).await;
            assert_eq!(before["ok"], true, "{backend}: {before}");
            assert_eq!(before["checkpoints"], 1, "{backend}: {before}");
            let statements = statements(cp);
            let statements: Vec<&str> = statements.iter().map(String::as_str).collect();
            sql(&s, &statements).await;
            let report = verify(&s).await;
            assert_eq!(report["ok"], false, "{backend}, {what}: {report}");
            assert_eq!(
                (
                    report["first_bad"]["seq"].as_i64(),
                    report["first_bad"]["reason"].as_str()
                ),
                (Some(seq(cp)), Some(reason)),
                "{backend}, {what} (checkpoint at {cp}): {report}"
            );
            // The export, verified offline with the public key alone (as `hata audit verify
            // --from-file` does), finds the same.
            let offline = verify_export(&s).await;
            assert_eq!(
                offline
                    .first_bad
                    .as_ref()
                    .map(|b| (b.seq as i64, b.reason.as_str())),
                Some((seq(cp), reason)),
                "{backend}, {what}, offline: {offline:?}"
            );
        }
    }
}

#[tokio::test]
async fn owners_see_their_projects_entries_and_nobody_else_any() {
    let s = TestServer::start().await;
    s.project("shop").await;
    s.project("other").await;
    let owner = s
        .user("owner@example.com", "owner password 2026", false)
        .await;
    let editor = s
        .user("editor@example.com", "editor password 2026", false)
        .await;
    s.member("shop", &owner, "owner").await;
    s.member("shop", &editor, "editor").await;
    let owner = s.login("owner@example.com", "owner password 2026").await;
    let editor = s.login("editor@example.com", "editor password 2026").await;

    let seen = Reply::of(s.as_session(&owner, Method::GET, "/api/v1/audit?limit=1000"))
        .await
        .expect(StatusCode::OK)
        .body;
    let projects: std::collections::BTreeSet<&str> = seen["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["project"].as_str().unwrap_or("(none)"))
        .collect();
    assert_eq!(projects, ["shop"].into(), "{seen}");
    Reply::of(s.as_session(&owner, Method::GET, "/api/v1/audit?project=other"))
        .await
        .problem(StatusCode::FORBIDDEN);
    Reply::of(s.as_session(&editor, Method::GET, "/api/v1/audit"))
        .await
        .problem(StatusCode::FORBIDDEN);
    Reply::of(s.as_session(&owner, Method::GET, "/api/v1/audit/verify"))
        .await
        .problem(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_public_key_verifies_the_checkpoints() {
    let s = TestServer::start().await;
    s.project("shop").await;
    let checkpoint = s
        .store
        .checkpoint_head()
        .await
        .expect("sign")
        .expect("a checkpoint");
    let r = Reply::of(s.client.get(s.url("/api/v1/audit/public-key"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain")));
    let pem = r.body.as_str().expect("PEM text");
    let key = hata_audit::PublicKey::from_pem(pem).expect("an Ed25519 public key");
    checkpoint.verify(&key).expect("signed by the served key");
}

/// A token presented after it ended is refused, and the refusal is a security event in the
/// audit log: once an hour per token however often it is retried.
#[tokio::test]
async fn an_ended_token_presented_is_recorded_once() {
    let s = TestServer::start().await;
    s.project("shop").await;
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time");
    let created = s
        .post(
            "/api/v1/tokens",
            &json!({"name": "short-lived", "kind": "project", "project": "shop",
                    "role": "viewer", "expires_at": soon}),
        )
        .await
        .expect(StatusCode::CREATED)
        .body;
    let (id, secret) = (
        created["id"].as_str().expect("id"),
        created["secret"].as_str().expect("secret"),
    );
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    for _ in 0..3 {
        Reply::of(s.as_token(secret, Method::GET, "/api/v1/projects/shop"))
            .await
            .problem(StatusCode::UNAUTHORIZED);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let refused = loop {
        let page = s
            .get(&format!("/api/v1/audit?action=refused&resource=token:{id}"))
            .await
            .expect(StatusCode::OK)
            .body;
        let items = page["items"].as_array().expect("items").clone();
        if !items.is_empty() || std::time::Instant::now() > deadline {
            break items;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        refused.len(),
        1,
        "one entry for three refusals: {refused:?}"
    );
    let entry = &refused[0];
    assert_eq!(
        entry["actor"],
        json!({"kind": "token", "id": id, "name": "short-lived"})
    );
    assert_eq!(entry["project"], "shop");
    assert!(
        entry["new"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("expired")),
        "{entry}"
    );
    assert_eq!(verify(&s).await["ok"], true);
}

/// The single sign-on configuration servers start with is recorded when it changes (never
/// its client secret); the same configuration again records nothing.
#[tokio::test]
async fn single_sign_on_configuration_changes_are_recorded() {
    let s = TestServer::start().await;
    let sso = |scopes: &[&str]| {
        hata_server::sso::Sso::new(hata_server::sso::OidcConfig {
            issuer: "https://id.example.com".into(),
            client_id: "hata".into(),
            client_secret: Some("sso-client-secret-0123456789".into()),
            redirect_url: None,
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            role_map: Default::default(),
        })
        .expect("a configuration")
    };
    let record = |sso: Option<hata_server::sso::Sso>| {
        let store = s.store.clone();
        async move {
            hata_server::bootstrap::record_sso_config(&store, sso.as_ref())
                .await
                .expect("record")
        }
    };
    record(None).await;
    record(Some(sso(&["email"]))).await;
    record(Some(sso(&["email"]))).await;
    record(Some(sso(&["email", "groups"]))).await;
    record(None).await;
    let page = s
        .get("/api/v1/audit?resource=sso")
        .await
        .expect(StatusCode::OK)
        .body;
    let actions: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(actions, ["delete", "update", "create"], "{page}");
    let update = &page["items"][1];
    assert_eq!(update["actor"]["id"], "config");
    assert_eq!(update["new"]["scopes"], json!(["email", "groups"]));
    assert_eq!(update["new"]["client_secret_set"], true);
    assert!(!page.to_string().contains("sso-client-secret"), "{page}");
}
