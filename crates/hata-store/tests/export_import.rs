//! Export and import across backends: export → import into the other backend → export gives
//! the same bytes; import refuses a non-empty store and a bad document, writing nothing; ids,
//! revisions and sequences carry on after an import.

mod support;

use hata_access::lockout::LockoutPolicy;
use hata_access::session::SessionPolicy;
use hata_core::model::{Environment, Flag, Project, Segment};
use hata_store::export::FORMAT;
use hata_store::{
    Action, Actor, EvaluationCount, Expected, ExportDocument, FlagEvaluated, NewSession, NewToken,
    NewUser, Role, Store, StoreError, TokenKind, UserUpdate, WriteMeta, WriteOp,
};
use serde_json::{json, Value};

fn meta(actor: &str) -> WriteMeta {
    WriteMeta::new(
        Actor::token(actor, format!("{actor}'s token")),
        format!("req-{actor}"),
    )
}

async fn write(s: &Store, op: WriteOp) {
    s.write(&meta("alice"), op).await.expect("write");
}

fn project(key: &str, description: &str) -> Project {
    Project {
        key: key.into(),
        name: key.to_uppercase(),
        description: description.into(),
    }
}

fn env(key: &str, protected: bool) -> Environment {
    Environment {
        key: key.into(),
        name: key.into(),
        description: format!("the {key} environment"),
        protected,
    }
}

fn flag(v: Value) -> Flag {
    serde_json::from_value(v).expect("flag json")
}

fn segment(v: Value) -> Segment {
    serde_json::from_value(v).expect("segment json")
}

fn token(id: &str, kind: TokenKind, at: Option<(&str, &str)>, expires: Option<&str>) -> WriteOp {
    WriteOp::CreateToken {
        token: NewToken {
            role: None,
            id: id.into(),
            name: format!("token {id}"),
            kind,
            project: at.map(|(p, _)| p.into()),
            environment: at.map(|(_, e)| e.into()),
            expires_at: expires.map(str::to_string),
            secret_hash: format!("sha256:{id}-hash"),
        },
    }
}

/// A stand-in PHC string: the store keeps whatever the caller hashed, so nothing is hashed here.
fn phc(salt: &str) -> String {
    format!("$argon2id$v=19$m=19456,t=2,p=1${salt}$aGFzaA")
}

fn user(id: &str, email: &str, password: bool, admin: bool) -> WriteOp {
    WriteOp::CreateUser {
        user: NewUser {
            id: id.into(),
            email: email.into(),
            name: format!("User {id}"),
            password_hash: password.then(|| phc(&format!("c2FsdC{id}"))),
            admin,
        },
    }
}

fn member(project: &str, user_id: &str, role: Role) -> WriteOp {
    WriteOp::PutMember {
        project: project.into(),
        user_id: user_id.into(),
        role,
    }
}

/// Several projects; an added and a deleted environment (an id gap); segments referencing
/// segments; flags of every type with targets, rules, rollouts and prerequisites; updates and
/// deletes (old and new values in the change record); an archived flag whose prerequisite was
/// deleted afterwards; tokens incl. an expiring and a deleted one; users (an admin who logged
/// in and has a session, one with memberships in two projects and failed logins, one without
/// a password, one deleted); evaluation telemetry; the ticket key.
async fn build_state(s: &Store) {
    write(
        s,
        WriteOp::CreateProject {
            project: project("shop", "the web shop"),
            environments: None,
        },
    )
    .await;
    write(
        s,
        WriteOp::CreateProject {
            project: project("blog", ""),
            environments: Some(vec![env("dev", false), env("prod", true)]),
        },
    )
    .await;
    write(
        s,
        WriteOp::CreateProject {
            project: project("tmp", "short-lived"),
            environments: None,
        },
    )
    .await;
    for key in ["staging", "qa"] {
        write(
            s,
            WriteOp::CreateEnvironment {
                project: "shop".into(),
                environment: env(key, false),
            },
        )
        .await;
    }
    write(
        s,
        WriteOp::DeleteEnvironment {
            project: "shop".into(),
            key: "qa".into(),
            expected_version: Expected::Any,
        },
    )
    .await;
    write(
        s,
        WriteOp::DeleteProject {
            key: "tmp".into(),
            expected_version: Expected::Any,
        },
    )
    .await;
    write(
        s,
        WriteOp::UpdateProject {
            key: "shop".into(),
            expected_version: Expected::version(1),
            project: project("shop", "the web shop, renamed"),
        },
    )
    .await;

    write(
        s,
        WriteOp::CreateSegment {
            project: "shop".into(),
            segment: segment(json!({
                "key": "beta", "name": "Beta testers",
                "included": ["user-1", "user-2"], "excluded": ["user-9"],
                "rules": [[{"attribute": "email", "operator": "ends_with", "values": ["@example.com"]}]]
            })),
        },
    )
    .await;
    write(
        s,
        WriteOp::CreateSegment {
            project: "shop".into(),
            segment: segment(json!({
                "key": "vip",
                "rules": [[{"segment": "beta"}, {"attribute": "plan", "operator": "in", "values": ["gold", "platinum"]}]]
            })),
        },
    )
    .await;
    write(
        s,
        WriteOp::UpdateSegment {
            project: "shop".into(),
            key: "beta".into(),
            expected_version: Expected::version(1),
            segment: segment(json!({
                "key": "beta", "name": "Beta testers", "included": ["user-1", "user-2", "user-3"],
                "rules": [[{"attribute": "email", "operator": "ends_with", "values": ["@example.com"]}]]
            })),
        },
    )
    .await;

    for f in [
        json!({"key": "dark-mode", "type": "boolean", "tags": ["ui"], "owner": "team-ui"}),
        json!({"key": "banner", "type": "string", "variants": [
            {"key": "a", "value": "Welcome!"}, {"key": "b", "value": "Hello — ようこそ", "name": "B"}]}),
        json!({"key": "limit", "type": "number", "temporary": true, "variants": [
            {"key": "low", "value": 10}, {"key": "high", "value": 2.5e3}]}),
        json!({"key": "theme", "type": "json", "variants": [
            {"key": "light", "value": {"bg": "#fff", "fg": "#000", "sizes": [1, 2.5, -3]}},
            {"key": "dark", "value": {"fg": "#eee", "bg": "#111", "nested": {"z": null, "a": true}}}]}),
        json!({"key": "old", "type": "boolean"}),
        json!({"key": "gone", "type": "boolean"}),
    ] {
        write(
            s,
            WriteOp::CreateFlag {
                project: "shop".into(),
                flag: flag(f),
            },
        )
        .await;
    }
    write(
        s,
        WriteOp::PutFlagConfig {
            project: "shop".into(),
            flag: "dark-mode".into(),
            environment: "production".into(),
            expected_version: Expected::Any,
            config: serde_json::from_value(json!({
                "enabled": true,
                "targets": [{"variant": "on", "values": ["user-1"]}],
                "rules": [
                    {"id": "vips", "description": "VIPs first", "conditions": [{"segment": "vip"}], "serve": {"variant": "on"}},
                    {"conditions": [{"attribute": "version", "operator": "semver_gt", "values": ["2.0.0"], "negate": true}],
                     "serve": {"rollout": {"bucket_by": "accountId", "salt": "s1", "weights": [
                         {"variant": "on", "weight": 25000}, {"variant": "off", "weight": 75000}]}}}
                ],
                "default": {"rollout": {"weights": [{"variant": "on", "weight": 10000}, {"variant": "off", "weight": 90000}]}}
            }))
            .expect("config"),
        },
    )
    .await;
    write(
        s,
        WriteOp::PatchFlagConfig {
            project: "shop".into(),
            flag: "banner".into(),
            environment: "staging".into(),
            expected_version: Expected::Any,
            patch: json!({"enabled": true, "prerequisites": [{"flag": "dark-mode", "variants": ["on"]}],
                          "rules": [{"conditions": [{"attribute": "country", "operator": "in", "values": ["JP"]}], "serve": {"variant": "b"}}],
                          "default": {"variant": "a"}}),
        },
    )
    .await;
    write(
        s,
        WriteOp::UpdateFlag {
            project: "shop".into(),
            key: "limit".into(),
            expected_version: Expected::Any,
            flag: flag(json!({"key": "limit", "type": "number", "description": "request limit",
                "variants": [{"key": "low", "value": 10}, {"key": "high", "value": 2.5e3}, {"key": "max", "value": 1e9}]})),
        },
    )
    .await;
    write(
        s,
        WriteOp::DeleteFlag {
            project: "shop".into(),
            key: "old".into(),
            expected_version: Expected::Any,
        },
    )
    .await;
    // `legacy` depends on `gone`, is archived, and then `gone` is deleted: a store can hold an
    // archived flag with a dangling prerequisite, and its export must import.
    write(
        s,
        WriteOp::CreateFlag {
            project: "shop".into(),
            flag: flag(json!({"key": "legacy", "type": "boolean", "environments": {
                "production": {"enabled": true, "prerequisites": [{"flag": "gone", "variants": ["on"]}], "default": {"variant": "on"}}}})),
        },
    )
    .await;
    let mut legacy = s.get_flag("shop", "legacy").await.expect("legacy");
    legacy.archived = true;
    write(
        s,
        WriteOp::UpdateFlag {
            project: "shop".into(),
            key: "legacy".into(),
            expected_version: Expected::Any,
            flag: legacy,
        },
    )
    .await;
    write(
        s,
        WriteOp::DeleteFlag {
            project: "shop".into(),
            key: "gone".into(),
            expected_version: Expected::Any,
        },
    )
    .await;
    write(
        s,
        WriteOp::CreateFlag {
            project: "blog".into(),
            flag: flag(json!({"key": "comments", "type": "boolean"})),
        },
    )
    .await;

    write(s, token("admin-1", TokenKind::Admin, None, None)).await;
    write(
        s,
        token(
            "srv-1",
            TokenKind::Server,
            Some(("shop", "production")),
            None,
        ),
    )
    .await;
    write(
        s,
        token(
            "cli-1",
            TokenKind::Client,
            Some(("blog", "prod")),
            Some("2031-01-02T03:04:05.678Z"),
        ),
    )
    .await;
    write(
        s,
        token("cli-2", TokenKind::Client, Some(("shop", "staging")), None),
    )
    .await;
    write(s, WriteOp::DeleteToken { id: "cli-2".into() }).await;

    write(s, user("usr_admin", "Root@Example.com", true, true)).await;
    write(s, user("usr_ann", "ann@example.com", true, false)).await;
    write(s, user("usr_sso", "sso@example.org", false, false)).await;
    write(s, user("usr_gone", "gone@example.com", true, false)).await;
    write(s, member("shop", "usr_ann", Role::Editor)).await;
    write(s, member("blog", "usr_ann", Role::Viewer)).await;
    write(s, member("blog", "usr_gone", Role::Owner)).await;
    write(s, member("shop", "usr_sso", Role::Viewer)).await;
    // A changed role, a renamed and disabled user (version 3), a new password.
    write(s, member("blog", "usr_ann", Role::Owner)).await;
    for update in [
        UserUpdate {
            name: Some("Ann Lee".into()),
            ..UserUpdate::default()
        },
        UserUpdate {
            disabled: Some(true),
            ..UserUpdate::default()
        },
    ] {
        write(
            s,
            WriteOp::UpdateUser {
                id: "usr_sso".into(),
                expected_version: Expected::Any,
                update,
            },
        )
        .await;
    }
    write(
        s,
        WriteOp::UpdateUser {
            id: "usr_ann".into(),
            expected_version: Expected::Any,
            update: UserUpdate {
                password_hash: Some(phc("bmV3c2FsdA")),
                ..UserUpdate::default()
            },
        },
    )
    .await;
    write(
        s,
        WriteOp::DeleteUser {
            id: "usr_gone".into(),
            expected_version: Expected::Any,
        },
    )
    .await;
    // Transient login state, which the export leaves out: a session, failed logins.
    write(
        s,
        WriteOp::Login {
            user_id: "usr_admin".into(),
            session: NewSession {
                id: "ses_1".into(),
                secret_hash: "sha256:session-secret".into(),
                csrf_token: "csrf-1".into(),
                mfa: false,
            },
            policy: SessionPolicy::default(),
            second_factor: None,
        },
    )
    .await;
    // Two-factor authentication, which the export leaves out too.
    write(
        s,
        WriteOp::EnrolTotp {
            user_id: "usr_admin".into(),
            secret: hata_access::totp::TotpSecret::generate(),
        },
    )
    .await;
    write(
        s,
        WriteOp::ConfirmTotp {
            user_id: "usr_admin".into(),
            step: 1,
            recovery_code_hashes: vec!["sha256:recovery-1".into()],
            keep_session: Some("ses_1".into()),
        },
    )
    .await;
    for _ in 0..2 {
        write(
            s,
            WriteOp::LoginFailed {
                user_id: "usr_ann".into(),
                policy: LockoutPolicy::default(),
            },
        )
        .await;
    }

    let count = |flag: &str, variant: &str, n| EvaluationCount {
        project: "shop".into(),
        environment: "production".into(),
        flag: flag.into(),
        hour: "2026-11-23T14:00:00Z".into(),
        variant: variant.into(),
        reason: "TARGETING_MATCH".into(),
        count: n,
    };
    s.record_evaluations(
        &[
            count("dark-mode", "on", 7),
            count("dark-mode", "off", 3),
            // Telemetry outlives the flags it counts.
            count("old", "on", 1),
        ],
        &[FlagEvaluated {
            project: "shop".into(),
            environment: "production".into(),
            flag: "dark-mode".into(),
            at: "2026-11-23T14:12:13.456Z".into(),
        }],
    )
    .await
    .expect("record evaluations");
    s.meta_init("stream_ticket_key", "00ff00ff")
        .await
        .expect("meta");
}

/// The other backend than `name`, empty; SQLite when PostgreSQL is not available.
async fn other_than(name: &str) -> support::TestStore {
    if name == "sqlite" {
        if let Some(pg) = support::postgres().await {
            return pg;
        }
    }
    support::sqlite().await
}

async fn export_text(s: &Store) -> String {
    s.export()
        .await
        .expect("export")
        .to_json()
        .expect("to json")
}

#[tokio::test]
async fn export_import_export_is_byte_identical_across_backends() {
    for source in support::all().await {
        build_state(&source.store).await;
        let first = export_text(&source.store).await;
        assert!(first.ends_with("}\n"), "trailing newline");
        // Exporting twice gives the same bytes (no export time, defined order).
        assert_eq!(first, export_text(&source.store).await);

        let target = other_than(source.name).await;
        let doc = ExportDocument::from_json(&first).expect("parse export");
        let summary = target.store.import(&doc).await.expect("import");
        assert_eq!(summary.projects, 2, "{}", source.name);
        assert_eq!(summary.environments, 5);
        assert_eq!(summary.flags, 6);
        assert_eq!(summary.segments, 2);
        assert_eq!(summary.tokens, 3);
        assert_eq!(summary.users, 3);
        assert_eq!(summary.memberships, 3);
        assert_eq!(summary.evaluation_counts, 3);
        assert_eq!(summary.flag_last_evaluated, 1);
        assert!(summary.changes > 20);
        let second = export_text(&target.store).await;
        assert!(
            first == second,
            "{} -> {}: export after import differs:\n{}",
            source.name,
            target.name,
            first_difference(&first, &second)
        );

        // What the document says was kept, as the read API sees it.
        let d: Value = serde_json::from_str(&first).expect("json");
        assert_eq!(d["format"], FORMAT);
        assert!(d.get("exported_at").is_none());
        let shop = &d["projects"][1];
        assert_eq!(shop["key"], "shop");
        let envs: Vec<&str> = shop["environments"]
            .as_array()
            .expect("environments")
            .iter()
            .map(|e| e["key"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(envs, ["development", "production", "staging"]);
        let changes = d["changes"].as_array().expect("changes");
        // The change record keeps the words it has always had.
        assert_eq!(changes[0]["actor"], "token:alice");
        assert_eq!(changes[0]["action"], "create");
        assert_eq!(changes[0]["resource_type"], "project");
        assert!(changes
            .iter()
            .any(|c| c["action"] == "update" && c["old_value"].is_object()));
        assert_eq!(d["tokens"][1]["expires_at"], "2031-01-02T03:04:05.678Z");

        // Users by id, every column but the login throttling; memberships by (project, user).
        let users = d["users"].as_array().expect("users");
        let ids: Vec<&str> = users
            .iter()
            .map(|u| u["id"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(ids, ["usr_admin", "usr_ann", "usr_sso"]);
        let keys: Vec<&str> = users[0]
            .as_object()
            .expect("user")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "email",
                "name",
                "password_hash",
                "admin",
                "disabled",
                "version",
                "created_at",
                "updated_at",
                "password_changed_at",
                "last_login_at"
            ]
        );
        assert_eq!(users[0]["email"], "root@example.com");
        assert_eq!(users[0]["admin"], true);
        assert!(users[0]["last_login_at"].is_string());
        assert_eq!(users[1]["password_hash"], phc("bmV3c2FsdA"));
        assert!(users[1]["password_changed_at"].is_string());
        assert!(users[1]["last_login_at"].is_null());
        assert_eq!(users[2]["password_hash"], Value::Null);
        assert_eq!(users[2]["password_changed_at"], Value::Null);
        assert_eq!(
            (
                &users[2]["name"],
                &users[2]["disabled"],
                &users[2]["version"]
            ),
            (&json!("Ann Lee"), &json!(true), &json!(3))
        );
        let members: Vec<(&str, &str, &str)> = d["memberships"]
            .as_array()
            .expect("memberships")
            .iter()
            .map(|m| {
                (
                    m["project"].as_str().unwrap_or(""),
                    m["user_id"].as_str().unwrap_or(""),
                    m["role"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            members,
            [
                ("blog", "usr_ann", "owner"),
                ("shop", "usr_ann", "editor"),
                ("shop", "usr_sso", "viewer")
            ]
        );
        // Sessions stay behind and logins start fresh; the rest is as it was.
        let ann = target.store.user_credentials("usr_ann").await.expect("ann");
        assert_eq!(ann.failed_logins, 0, "{}", target.name);
        assert_eq!(ann.retry_after, None);
        assert_eq!(
            ann.password_hash.as_deref(),
            Some(phc("bmV3c2FsdA").as_str())
        );
        assert_eq!(
            source
                .store
                .user_credentials("usr_ann")
                .await
                .expect("ann")
                .failed_logins,
            2
        );
        assert!(source
            .store
            .session_user("sha256:session-secret")
            .await
            .expect("session")
            .is_some());
        assert!(target
            .store
            .session_user("sha256:session-secret")
            .await
            .expect("session")
            .is_none());
        // No TOTP seed or recovery code leaves the store: the imported admin enrols again.
        let totp = source
            .store
            .user_totp("usr_admin")
            .await
            .expect("totp")
            .expect("enrolled");
        assert!(totp.confirmed);
        assert!(source.store.get_user("usr_admin").await.expect("admin").mfa);
        let text = source
            .store
            .export()
            .await
            .expect("export")
            .to_json()
            .expect("json");
        assert!(!text.contains(totp.secret.as_str()));
        assert!(!text.contains("sha256:recovery-1"));
        assert!(!target.store.get_user("usr_admin").await.expect("admin").mfa);
        assert!(target
            .store
            .user_totp("usr_admin")
            .await
            .expect("totp")
            .is_none());
        let projects = target.store.user_projects("usr_ann").await.expect("roles");
        assert_eq!(projects.get("shop"), Some(&Role::Editor));
        assert_eq!(projects.get("blog"), Some(&Role::Owner));
        assert_eq!(
            source.store.get_user("usr_sso").await.expect("sso"),
            target.store.get_user("usr_sso").await.expect("sso")
        );
        for (a, b) in [
            (&source.store, &target.store),
            (&target.store, &source.store),
        ] {
            let (ea, eb) = (
                a.get_environment("shop", "production").await.expect("env"),
                b.get_environment("shop", "production").await.expect("env"),
            );
            assert_eq!((ea.id, ea.revision), (eb.id, eb.revision));
        }

        // Writes continue: ids above the old high-water marks (the deleted `qa` and `tmp`
        // environments had ids too), revisions on from where they were.
        let sequences = doc.sequences;
        let before = target
            .store
            .get_environment("shop", "production")
            .await
            .expect("env");
        write(
            &target.store,
            WriteOp::CreateEnvironment {
                project: "shop".into(),
                environment: env("qa", false),
            },
        )
        .await;
        let qa = target
            .store
            .get_environment("shop", "qa")
            .await
            .expect("qa");
        assert_eq!(qa.id, sequences.environments + 1, "{}", target.name);
        let after = target
            .store
            .get_environment("shop", "production")
            .await
            .expect("env");
        assert_eq!(after.revision, before.revision + 1);
        let third = target.store.export().await.expect("export");
        let last = third.changes.last().expect("a change");
        assert_eq!(last.id, sequences.changes + 1);
        assert_eq!(last.action, Action::Create);
        assert_eq!(last.resource_key, "qa");
        assert!(third.sequences.environments > sequences.environments);
    }
}

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}:\n- {x}\n+ {y}", i + 1);
        }
    }
    format!("lengths {} and {}", a.len(), b.len())
}

#[tokio::test]
async fn import_refuses_a_store_that_is_not_empty() {
    let source = support::sqlite().await;
    build_state(&source.store).await;
    let doc = source.store.export().await.expect("export");
    for t in support::all().await {
        write(
            &t.store,
            WriteOp::CreateProject {
                project: project("existing", ""),
                environments: None,
            },
        )
        .await;
        let before = export_text(&t.store).await;
        match t.store.import(&doc).await {
            Err(StoreError::NotEmpty(found)) => {
                assert!(found.iter().any(|f| f.starts_with("projects")), "{found:?}")
            }
            other => panic!("{}: expected NotEmpty, got {other:?}", t.name),
        }
        assert_eq!(before, export_text(&t.store).await, "{}", t.name);
    }

    // A user alone (the first-start admin user) also makes it non-empty.
    let only_user = support::sqlite().await;
    write(
        &only_user.store,
        user("usr_boot", "boot@example.com", true, true),
    )
    .await;
    match only_user.store.import(&doc).await {
        Err(StoreError::NotEmpty(found)) => {
            assert!(found.iter().any(|f| f == "users: 1 rows"), "{found:?}")
        }
        other => panic!("expected NotEmpty, got {other:?}"),
    }

    // A token alone (a server's bootstrap admin token) also makes it non-empty.
    let only_token = support::sqlite().await;
    write(
        &only_token.store,
        token("boot", TokenKind::Admin, None, None),
    )
    .await;
    assert!(matches!(
        only_token.store.import(&doc).await,
        Err(StoreError::NotEmpty(_))
    ));
}

/// `doc` as JSON with `edit` applied, parsed and imported into a fresh store of each backend;
/// returns the error fields and messages, after checking nothing was written.
async fn import_edited(doc: &Value, edit: impl Fn(&mut Value)) -> Vec<(String, String)> {
    let mut doc = doc.clone();
    edit(&mut doc);
    let text = serde_json::to_string_pretty(&doc).expect("json");
    let mut seen = None;
    for t in support::all().await {
        let result = match ExportDocument::from_json(&text) {
            Ok(parsed) => t.store.import(&parsed).await.map(|_| ()),
            Err(e) => Err(e),
        };
        let errors = match result {
            Err(StoreError::Invalid(v)) => {
                v.0.into_iter()
                    .map(|e| (e.field, e.message))
                    .collect::<Vec<_>>()
            }
            other => panic!("{}: expected Invalid, got {other:?}", t.name),
        };
        let empty = t.store.export().await.expect("export");
        assert!(empty.projects.is_empty() && empty.tokens.is_empty() && empty.changes.is_empty());
        assert!(empty.users.is_empty() && empty.memberships.is_empty());
        assert!(empty.meta.is_empty(), "{}: meta written", t.name);
        seen = Some(errors);
    }
    seen.expect("at least SQLite")
}

#[tokio::test]
async fn import_refuses_bad_documents_naming_the_problem() {
    let source = support::sqlite().await;
    build_state(&source.store).await;
    let good: Value =
        serde_json::from_str(&export_text(&source.store).await).expect("export is JSON");
    let has = |errors: &[(String, String)], field: &str, message: &str| {
        assert!(
            errors
                .iter()
                .any(|(f, m)| f == field && m.contains(message)),
            "expected {field}: …{message}… in {errors:?}"
        );
    };

    let e = import_edited(&good, |d| d["format"] = json!("something-else")).await;
    has(&e, "format", "hata-export");
    let e = import_edited(&good, |d| d["version"] = json!(2)).await;
    has(&e, "version", "reads version 1");
    let e = import_edited(&good, |d| d["projects"][1]["colour"] = json!("red")).await;
    has(&e, "projects[1].colour", "unknown field `colour`");
    let e = import_edited(&good, |d| {
        d["projects"][1]["environments"][1]["revision"] = json!("seven")
    })
    .await;
    has(&e, "projects[1].environments[1].revision", "invalid type");

    // Hand-edited content that parses but that the domain rejects, named by keys.
    let e = import_edited(&good, |d| {
        d["projects"][1]["flags"][1]["environments"]["production"]["default"] =
            json!({"variant": "purple"})
    })
    .await;
    has(
        &e,
        "projects[shop].flags[dark-mode].environments.production.default.variant",
        "unknown variant",
    );
    let e = import_edited(&good, |d| {
        d["projects"][1]["segments"][1]["rules"][0][0]["segment"] = json!("nobody")
    })
    .await;
    has(
        &e,
        "projects[shop].segments[vip].rules[0][0].segment",
        "unknown segment",
    );
    let e = import_edited(&good, |d| d["tokens"][2]["environment"] = json!("nowhere")).await;
    has(
        &e,
        "tokens[srv-1].environment",
        "no environment \"nowhere\"",
    );
    let e = import_edited(&good, |d| {
        d["projects"][0]["environments"][1]["id"] =
            d["projects"][1]["environments"][0]["id"].clone()
    })
    .await;
    has(
        &e,
        "projects[shop].environments[development].id",
        "used once",
    );
    let e = import_edited(&good, |d| d["sequences"]["changes"] = json!(1)).await;
    has(&e, "sequences.changes", "below the largest change id");
    let e = import_edited(&good, |d| d["changes"][0]["at"] = json!("yesterday")).await;
    has(&e, "changes[1].at", "RFC 3339");
    let e = import_edited(&good, |d| d["changes"][0]["actor"] = json!("alice")).await;
    has(&e, "changes[1].actor", "not an actor");
    let e = import_edited(&good, |d| d["changes"][0]["action"] = json!("rename")).await;
    has(&e, "changes[0].action", "unknown variant `rename`");
}

/// PostgreSQL cannot hold U+0000 in text, SQLite can: a document with it anywhere is refused on
/// both, naming every place, rather than loading into SQLite and failing midway (a 500) on
/// PostgreSQL.
#[tokio::test]
async fn import_refuses_nul_anywhere_in_the_document() {
    let source = support::sqlite().await;
    build_state(&source.store).await;
    let good: Value =
        serde_json::from_str(&export_text(&source.store).await).expect("export is JSON");
    let e = import_edited(&good, |d| {
        d["meta"]["note"] = json!("\u{0}");
        d["projects"][1]["description"] = json!("shop\u{0}");
        d["projects"][1]["environments"][0]["name"] = json!("\u{0}");
        d["projects"][1]["flags"][1]["variants"][0]["name"] = json!("On\u{0}");
        d["projects"][1]["segments"][1]["included"] = json!(["a\u{0}"]);
        d["tokens"][2]["name"] = json!("n\u{0}");
        d["users"][1]["name"] = json!("Ann\u{0}");
        d["memberships"][0]["created_at"] = json!("\u{0}");
        d["changes"][0]["request_id"] = json!("req\u{0}");
        d["changes"][0]["new_value"] = json!({"x": ["\u{0}"]});
        d["evaluation_counts"][0]["variant"] = json!("\u{0}");
        d["flag_last_evaluated"][0]["flag"] = json!("dark-mode\u{0}");
    })
    .await;
    let nul: Vec<&str> = e
        .iter()
        .filter(|(_, m)| m == "must not contain U+0000")
        .map(|(f, _)| f.as_str())
        .collect();
    assert_eq!(
        nul,
        [
            "meta.note",
            "projects[shop].description",
            "projects[shop].environments[development].name",
            "projects[shop].segments[vip].included[0]",
            "projects[shop].flags[dark-mode].variants[0].name",
            "tokens[srv-1].name",
            "users[usr_ann].name",
            "memberships[blog/usr_ann].created_at",
            "changes[1].request_id",
            "changes[1].new_value.x[0]",
            "evaluation_counts[shop/production/dark-mode/2026-11-23T14:00:00Z].variant",
            "flag_last_evaluated[shop/production/dark-mode\\u0000].flag",
        ],
        "{e:?}"
    );
}

#[tokio::test]
async fn import_refuses_bad_users_and_memberships() {
    let source = support::sqlite().await;
    build_state(&source.store).await;
    let good: Value =
        serde_json::from_str(&export_text(&source.store).await).expect("export is JSON");
    let has = |errors: &[(String, String)], field: &str, message: &str| {
        assert!(
            errors
                .iter()
                .any(|(f, m)| f == field && m.contains(message)),
            "expected {field}: …{message}… in {errors:?}"
        );
    };

    // users: usr_admin, usr_ann, usr_sso; memberships: blog/usr_ann, shop/usr_ann,
    // shop/usr_sso.
    let e = import_edited(&good, |d| {
        d["memberships"][1]["user_id"] = json!("usr_nobody")
    })
    .await;
    has(
        &e,
        "memberships[shop/usr_nobody].user_id",
        "no user \"usr_nobody\"",
    );
    let e = import_edited(&good, |d| d["memberships"][0]["project"] = json!("nowhere")).await;
    has(
        &e,
        "memberships[nowhere/usr_ann].project",
        "no project \"nowhere\"",
    );
    let e = import_edited(&good, |d| d["memberships"][2]["role"] = json!("admin")).await;
    has(
        &e,
        "memberships[shop/usr_sso].role",
        "unknown role \"admin\"",
    );
    let e = import_edited(&good, |d| {
        d["memberships"][2]["user_id"] = json!("usr_ann");
    })
    .await;
    has(&e, "memberships[shop/usr_ann]", "duplicate membership");
    let e = import_edited(&good, |d| d["users"][2]["email"] = json!("ann@example.com")).await;
    has(&e, "users[usr_sso].email", "duplicate email");
    // Compared as logins compare them, and stored only normalised.
    let e = import_edited(&good, |d| d["users"][2]["email"] = json!("Ann@Example.com")).await;
    has(&e, "users[usr_sso].email", "duplicate email");
    has(
        &e,
        "users[usr_sso].email",
        "lower-case: \"ann@example.com\"",
    );
    let e = import_edited(&good, |d| d["users"][0]["email"] = json!("root")).await;
    has(&e, "users[usr_admin].email", "must be an email address");
    let e = import_edited(&good, |d| d["users"][2]["id"] = json!("usr_ann")).await;
    has(&e, "users[usr_ann]", "duplicate user id");
    let e = import_edited(&good, |d| d["users"][1]["name"] = json!("  ")).await;
    has(&e, "users[usr_ann].name", "must not be empty");
    let e = import_edited(&good, |d| d["users"][1]["last_login_at"] = json!("never")).await;
    has(&e, "users[usr_ann].last_login_at", "RFC 3339");
    let e = import_edited(&good, |d| d["users"][1]["failed_logins"] = json!(3)).await;
    has(
        &e,
        "users[1].failed_logins",
        "unknown field `failed_logins`",
    );
    let e = import_edited(&good, |d| d["memberships"][0]["role"] = json!(null)).await;
    has(&e, "memberships[0].role", "invalid type");
}

/// A document written before users existed has no `users` or `memberships`: it imports, and
/// exports again as the same document with both empty.
#[tokio::test]
async fn a_document_without_users_still_imports() {
    let source = support::sqlite().await;
    build_state(&source.store).await;
    let mut old: Value =
        serde_json::from_str(&export_text(&source.store).await).expect("export is JSON");
    let top = old.as_object_mut().expect("object");
    top.remove("users").expect("users");
    top.remove("memberships").expect("memberships");
    let text = serde_json::to_string_pretty(&old).expect("json");
    let expected = ExportDocument::from_json(&text).expect("parse old document");
    assert!(expected.users.is_empty() && expected.memberships.is_empty());
    for t in support::all().await {
        let summary = t.store.import(&expected).await.expect("import");
        assert_eq!((summary.users, summary.memberships), (0, 0), "{}", t.name);
        assert_eq!(summary.tokens, 3);
        assert!(summary.to_string().contains(" 0 users, 0 memberships,"));
        let again = t.store.export().await.expect("export");
        assert_eq!(again, expected, "{}", t.name);
    }
}
