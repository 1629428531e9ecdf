//! The audit chain kept by the store, on both backends: concurrent writers make one chain;
//! retention removes the oldest entries behind a signed anchor and what is kept verifies.

mod support;

use hata_core::model::Project;
use hata_store::audit::AuditLines;
use hata_store::{Actor, WriteMeta, WriteOp};

fn create_project(key: &str) -> WriteOp {
    WriteOp::CreateProject {
        project: Project {
            key: key.into(),
            name: key.into(),
            description: String::new(),
        },
        environments: None,
    }
}

async fn export_lines(store: &hata_store::Store) -> Vec<serde_json::Value> {
    let mut lines = AuditLines::new(None, None);
    let mut all = Vec::new();
    while let Some(batch) = lines.next(store).await.expect("read the chain") {
        all.extend(batch);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_make_one_chain() {
    for t in support::all().await {
        let writers = (0..8).map(|w| {
            let store = t.store.clone();
            tokio::spawn(async move {
                for i in 0..5 {
                    let meta = WriteMeta::new(Actor::system("test"), format!("w{w}-{i}"));
                    store
                        .write(&meta, create_project(&format!("p{w}-{i}")))
                        .await
                        .expect("write");
                }
            })
        });
        for writer in writers {
            writer.await.expect("writer");
        }
        let report = t.store.verify_audit().await.expect("verify");
        assert!(report.ok, "{}: {report:?}", t.name);
        assert_eq!(report.entries, 40, "{}: {report:?}", t.name);
        assert_eq!(report.checkpoints, 10, "{}: one every 4", t.name);
    }
}

#[tokio::test]
async fn retention_removes_the_oldest_entries_and_the_rest_verifies() {
    for t in support::all().await {
        let meta = WriteMeta::new(Actor::system("test"), "");
        for i in 0..6 {
            t.store
                .write(&meta, create_project(&format!("old-{i}")))
                .await
                .expect("write");
        }
        let cutoff = hata_audit::format_at(time::OffsetDateTime::now_utc()).expect("now");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        for i in 0..3 {
            t.store
                .write(&meta, create_project(&format!("new-{i}")))
                .await
                .expect("write");
        }
        let removed = t.store.prune_audit(&cutoff).await.expect("prune");
        assert_eq!(removed, 6, "{}", t.name);
        assert_eq!(
            t.store.prune_audit(&cutoff).await.expect("prune again"),
            0,
            "{}: nothing more to remove",
            t.name
        );
        let lines = export_lines(&t.store).await;
        assert_eq!(
            lines[0]["checkpoint"]["seq"], 6,
            "{}: the anchor first: {lines:?}",
            t.name
        );
        assert_eq!(lines[1]["seq"], 7, "{}", t.name);
        let report = t.store.verify_audit().await.expect("verify");
        assert!(report.ok, "{}: {report:?}", t.name);
        assert_eq!(report.entries, 3, "{}: {report:?}", t.name);
        assert!(
            matches!(
                report.start,
                Some(hata_audit::Start::Anchored {
                    seq: 6,
                    signature_checked: true
                })
            ),
            "{}: {report:?}",
            t.name
        );
        // The chain goes on from the kept entries.
        t.store
            .write(&meta, create_project("after"))
            .await
            .expect("write");
        let report = t.store.verify_audit().await.expect("verify");
        assert!(report.ok && report.entries == 4, "{}: {report:?}", t.name);
    }
}

/// An export carries the chain and its checkpoints unchanged: restored into an empty store
/// of either kind that signs with the same key, it verifies; with another key, its
/// checkpoints do not.
#[tokio::test]
async fn a_restored_store_still_verifies() {
    for source in support::all().await {
        let meta = WriteMeta::new(Actor::system("test"), "");
        for i in 0..6 {
            source
                .store
                .write(&meta, create_project(&format!("p{i}")))
                .await
                .expect("write");
        }
        let before = source.store.verify_audit().await.expect("verify");
        assert!(before.ok && before.checkpoints > 0, "{before:?}");
        let document = source.store.export().await.expect("export");
        let public = source.store.audit_public_key().expect("a key");
        for target in support::all().await {
            target.store.import(&document).await.expect("import");
            let same_key = target
                .store
                .verify_audit_with(Some(public))
                .await
                .expect("verify");
            assert!(
                same_key.ok,
                "{} -> {}: {same_key:?}",
                source.name, target.name
            );
            assert_eq!(same_key.head, before.head);
            let other_key = target.store.verify_audit().await.expect("verify");
            assert_eq!(
                other_key.first_bad.map(|b| b.reason.as_str()),
                Some("bad_signature"),
                "{} -> {}",
                source.name,
                target.name
            );
        }
    }
}
