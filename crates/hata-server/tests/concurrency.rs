//! Concurrent writers over HTTP: optimistic concurrency holds (exactly one winner per
//! version), and writes without `If-Match` are serialised without losing any.

mod support;

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{Reply, TestServer};
use tokio::sync::Barrier;

const P: &str = "/api/v1/projects/shop";
const WRITERS: usize = 8;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_with_the_same_if_match_have_one_winner() {
    let s = Arc::new(TestServer::start().await);
    s.project("shop").await;
    s.flag("shop", json!({"key": "checkout", "type": "boolean"}))
        .await;
    let path = format!("{P}/flags/checkout/environments/production");
    let old = s.get(&path).await.expect(StatusCode::OK).etag();

    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (s, barrier, path) = (s.clone(), barrier.clone(), path.clone());
            tokio::spawn(async move {
                // Each writer targets a different user, so the winner is recognisable.
                let body = json!({"enabled": true, "targets": [{"variant": "on", "values": [format!("user-{i}")]}]});
                let request = s
                    .admin(Method::PUT, &path)
                    .header("if-match", format!("\"{old}\""))
                    .json(&body);
                barrier.wait().await;
                (i, Reply::of(request).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut losers = 0;
    for task in tasks {
        let (i, r) = task.await.expect("writer task");
        match r.status {
            StatusCode::OK => winners.push((i, r)),
            StatusCode::PRECONDITION_FAILED => {
                r.problem(StatusCode::PRECONDITION_FAILED);
                losers += 1;
            }
            other => panic!("writer {i}: unexpected {other}: {}", r.body),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one 200");
    assert_eq!(losers, WRITERS - 1, "the rest 412");
    let (winner, reply) = &winners[0];
    assert_eq!(reply.etag(), old + 1);

    let now = s.get(&path).await.expect(StatusCode::OK);
    assert_eq!(now.etag(), old + 1, "final version = old + 1");
    assert_eq!(
        now.body["targets"][0]["values"],
        json!([format!("user-{winner}")])
    );
    assert_eq!(now.body, reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_without_if_match_are_all_applied_in_turn() {
    let s = Arc::new(TestServer::start().await);
    s.project("shop").await;
    s.flag("shop", json!({"key": "checkout", "type": "boolean"}))
        .await;
    let old = s.get(&format!("{P}/flags/checkout")).await.etag();
    let revision = s.revision("shop", "production").await;

    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (s, barrier) = (s.clone(), barrier.clone());
            tokio::spawn(async move {
                // Each writer patches a different environment's config… of the same flag, and
                // each to a state of its own (a patch that changes nothing writes nothing).
                let env = if i % 2 == 0 {
                    "production"
                } else {
                    "development"
                };
                let request = s
                    .admin(
                        Method::PATCH,
                        &format!("{P}/flags/checkout/environments/{env}"),
                    )
                    .json(&json!({"enabled": i % 3 == 0,
                        "targets": [{"variant": "on", "values": [format!("user-{i}")]}]}));
                barrier.wait().await;
                Reply::of(request).await.expect(StatusCode::OK).etag()
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.expect("writer task"));
    }
    versions.sort_unstable();
    let expected: Vec<i64> = (1..=WRITERS as i64).map(|n| old + n).collect();
    assert_eq!(
        versions, expected,
        "every write got its own version; none was lost"
    );
    assert_eq!(
        s.get(&format!("{P}/flags/checkout")).await.etag(),
        old + WRITERS as i64
    );
    assert_eq!(
        s.revision("shop", "production").await,
        revision + WRITERS as i64,
        "one revision per write"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_of_one_key_have_one_winner() {
    let s = Arc::new(TestServer::start().await);
    s.project("shop").await;
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let (s, barrier) = (s.clone(), barrier.clone());
            tokio::spawn(async move {
                let request = s.admin(Method::POST, &format!("{P}/flags")).json(
                    &json!({"key": "race", "type": "boolean", "name": format!("writer {i}")}),
                );
                barrier.wait().await;
                Reply::of(request).await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        let r = task.await.expect("writer task");
        match r.status {
            StatusCode::CREATED => created += 1,
            _ => {
                r.problem(StatusCode::CONFLICT);
            }
        }
    }
    assert_eq!(created, 1);
    let flag = s
        .get(&format!("{P}/flags/race"))
        .await
        .expect(StatusCode::OK);
    assert_eq!(flag.etag(), 1);
}
