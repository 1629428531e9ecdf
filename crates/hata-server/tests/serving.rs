//! Serving over real HTTP: OFREP single and bulk, event streams with tickets, the SDK rule set
//! and its stream, rate limits, CORS, evaluation counts and insights.

mod support;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{secrets, Reply, TestServer};

const DEADLINE: Duration = Duration::from_secs(10);

/// A project `shop` with flags of every type and every reason.
async fn shop(s: &TestServer) {
    s.project("shop").await;
    s.post(
        "/api/v1/projects/shop/segments",
        &json!({"key": "staff", "name": "Staff", "included": ["alice"]}),
    )
    .await
    .expect(StatusCode::CREATED);
    let dev = |config: Value| json!({ "development": config });
    s.flag(
        "shop",
        json!({"key": "static-on", "type": "boolean", "environments": dev(json!({
            "enabled": true, "off_variant": "off", "default": {"variant": "on"}}))}),
    )
    .await;
    s.flag(
        "shop",
        json!({"key": "banner", "type": "string",
            "variants": [{"key": "a", "value": "Hello"}, {"key": "b", "value": "Welcome"}],
            "environments": dev(json!({"enabled": true, "off_variant": "a",
                "rules": [
                    {"id": "staff", "conditions": [{"segment": "staff"}], "serve": {"variant": "b"}},
                    {"id": "pro", "conditions": [{"attribute": "plan", "operator": "in", "values": ["pro"]}],
                     "serve": {"variant": "b"}}],
                "default": {"variant": "a"}}))}),
    )
    .await;
    s.flag(
        "shop",
        json!({"key": "limit", "type": "number",
            "variants": [{"key": "low", "value": 10}, {"key": "high", "value": 2.5}],
            "environments": dev(json!({"enabled": true, "off_variant": "low",
                "default": {"rollout": {"weights": [{"variant": "low", "weight": 50000},
                                                    {"variant": "high", "weight": 50000}]}}}))}),
    )
    .await;
    s.flag(
        "shop",
        json!({"key": "theme", "type": "json",
            "variants": [{"key": "dark", "value": {"bg": "#000", "size": 3}}],
            "environments": dev(json!({"enabled": true, "off_variant": "dark",
                "default": {"variant": "dark"}}))}),
    )
    .await;
    s.flag(
        "shop",
        json!({"key": "killed", "type": "boolean", "environments": dev(json!({
            "enabled": false, "off_variant": "off", "default": {"variant": "on"}}))}),
    )
    .await;
    s.flag(
        "shop",
        json!({"key": "needs-killed", "type": "boolean", "environments": dev(json!({
            "enabled": true, "off_variant": "off",
            "prerequisites": [{"flag": "killed", "variants": ["on"]}],
            "default": {"variant": "on"}}))}),
    )
    .await;
}

/// Creates a token of `kind` for shop/development and returns its secret.
async fn token(s: &TestServer, kind: &str) -> String {
    s.evaluation_token(kind, "shop").await
}

async fn ofrep(s: &TestServer, token: &str, key: &str, context: Value) -> Reply {
    Reply::of(
        s.as_token(
            token,
            Method::POST,
            &format!("/ofrep/v1/evaluate/flags/{key}"),
        )
        .json(&json!({ "context": context })),
    )
    .await
}

async fn bulk(s: &TestServer, token: &str, context: Value) -> Reply {
    Reply::of(
        s.as_token(token, Method::POST, "/ofrep/v1/evaluate/flags")
            .json(&json!({ "context": context })),
    )
    .await
}

fn success(r: &Reply) -> (&Value, &str, &str) {
    (
        &r.body["value"],
        r.body["variant"].as_str().unwrap_or_default(),
        r.body["reason"].as_str().unwrap_or_default(),
    )
}

#[tokio::test]
async fn ofrep_single_flag_reasons_values_and_metadata() {
    let s = TestServer::start().await;
    shop(&s).await;
    let t = token(&s, "server").await;

    let r = ofrep(&s, &t, "static-on", json!({"targetingKey": "u1"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(success(&r), (&json!(true), "on", "STATIC"));
    assert_eq!(r.body["key"], "static-on");
    assert!(r.body["metadata"]["flagVersion"]
        .as_i64()
        .is_some_and(|v| v >= 1));
    assert_eq!(r.header("content-type"), Some("application/json"));

    let r = ofrep(
        &s,
        &t,
        "banner",
        json!({"targetingKey": "u1", "plan": "pro"}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(success(&r), (&json!("Welcome"), "b", "TARGETING_MATCH"));
    assert_eq!(r.body["metadata"]["ruleId"], "pro");
    let r = ofrep(&s, &t, "banner", json!({"targetingKey": "alice"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["metadata"]["ruleId"], "staff", "segment rule");
    let r = ofrep(
        &s,
        &t,
        "banner",
        json!({"targetingKey": "u1", "plan": "free"}),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(success(&r), (&json!("Hello"), "a", "DEFAULT"));
    assert!(r.body["metadata"].get("ruleId").is_none());

    let r = ofrep(&s, &t, "limit", json!({"targetingKey": "user-7"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["reason"], "SPLIT");
    assert!(r.body["value"] == json!(10) || r.body["value"] == json!(2.5));
    // Without targetingKey the rollout cannot bucket: first variant, DEFAULT, and a note.
    let r = ofrep(&s, &t, "limit", json!({}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(success(&r), (&json!(10), "low", "DEFAULT"));
    assert_eq!(
        r.body["metadata"]["hataNote"],
        "bucket_by attribute missing"
    );

    let r = ofrep(&s, &t, "theme", json!({"targetingKey": "u1"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["value"], json!({"bg": "#000", "size": 3}));

    let r = ofrep(&s, &t, "killed", json!({"targetingKey": "u1"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(success(&r), (&json!(false), "off", "DISABLED"));
    let r = ofrep(&s, &t, "needs-killed", json!({"targetingKey": "u1"}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(success(&r), (&json!(false), "off", "DISABLED"));
    assert_eq!(r.body["metadata"]["hataReason"], "PREREQUISITE_FAILED");

    // A client token evaluates too, and X-API-Key is accepted.
    let c = token(&s, "client").await;
    let r = Reply::of(
        s.client
            .post(s.url("/ofrep/v1/evaluate/flags/static-on"))
            .header("x-api-key", &c)
            .json(&json!({"context": {"targetingKey": "u1"}})),
    )
    .await
    .expect(StatusCode::OK);
    assert_eq!(r.body["value"], true);
}

#[tokio::test]
async fn ofrep_failures_have_the_protocols_shapes() {
    let s = TestServer::start().await;
    shop(&s).await;
    let t = token(&s, "server").await;

    let r = ofrep(&s, &t, "nope", json!({"targetingKey": "u1"}))
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(r.body["key"], "nope");
    assert_eq!(r.body["errorCode"], "FLAG_NOT_FOUND");
    assert!(r.body["errorDetails"]
        .as_str()
        .is_some_and(|d| d.contains("nope")));

    let raw = |body: &'static str| {
        s.as_token(&t, Method::POST, "/ofrep/v1/evaluate/flags/banner")
            .header("content-type", "application/json")
            .body(body)
    };
    for (body, code) in [
        ("{not json", "PARSE_ERROR"),
        ("[1,2]", "PARSE_ERROR"),
        ("{}", "INVALID_CONTEXT"),
        (r#"{"context": "u1"}"#, "INVALID_CONTEXT"),
        (r#"{"context": {"targetingKey": 42}}"#, "INVALID_CONTEXT"),
    ] {
        let r = Reply::of(raw(body)).await.expect(StatusCode::BAD_REQUEST);
        assert_eq!(r.body["errorCode"], code, "{body}");
        assert!(r.body["errorDetails"].is_string(), "{body}");
    }
    let r = Reply::of(
        s.as_token(&t, Method::POST, "/ofrep/v1/evaluate/flags")
            .header("content-type", "application/json")
            .body("{}"),
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
    assert_eq!(r.body["errorCode"], "INVALID_CONTEXT");

    // Auth: none, unknown, admin (not an evaluator).
    Reply::of(
        s.client
            .post(s.url("/ofrep/v1/evaluate/flags/banner"))
            .json(&json!({"context": {}})),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED);
    ofrep(&s, "hata_server_not-a-token", "banner", json!({}))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    ofrep(&s, &s.token, "banner", json!({}))
        .await
        .problem(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_write_is_served_before_its_response_returns() {
    let s = TestServer::start().await;
    shop(&s).await;
    let t = token(&s, "server").await;
    for i in 0..20 {
        let enabled = i % 2 == 0;
        s.patch(
            "/api/v1/projects/shop/flags/killed/environments/development",
            &json!({ "enabled": enabled }),
        )
        .await
        .expect(StatusCode::OK);
        let r = ofrep(&s, &t, "killed", json!({"targetingKey": "u1"}))
            .await
            .expect(StatusCode::OK);
        assert_eq!(r.body["value"], json!(enabled), "round {i}");
    }
}

#[tokio::test]
async fn bulk_evaluates_every_flag_with_etag_and_event_stream() {
    let s = TestServer::start().await;
    shop(&s).await;
    let t = token(&s, "client").await;
    let ctx = json!({"targetingKey": "u1", "plan": "pro"});
    let r = bulk(&s, &t, ctx.clone()).await.expect(StatusCode::OK);
    let flags = r.body["flags"].as_array().expect("flags");
    let keys: Vec<&str> = flags.iter().filter_map(|f| f["key"].as_str()).collect();
    assert_eq!(
        keys,
        [
            "banner",
            "killed",
            "limit",
            "needs-killed",
            "static-on",
            "theme"
        ]
    );
    assert!(flags
        .iter()
        .all(|f| f["reason"].is_string() && f.get("value").is_some()));
    let etag = r.header("etag").expect("bulk ETag").to_string();
    let streams = r.body["eventStreams"].as_array().expect("eventStreams");
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0]["type"], "sse");
    assert_eq!(streams[0]["inactivityDelaySec"], 120);
    let url = streams[0]["url"].as_str().expect("url");
    assert!(url.starts_with(&s.url("/ofrep/v1/events?ticket=")), "{url}");
    assert!(!url.contains(&t), "the stream URL must not carry the token");
    assert_eq!(r.body["metadata"]["project"], "shop");

    // Same context, same rule set: 304. Another context: 200.
    let again = Reply::of(
        s.as_token(&t, Method::POST, "/ofrep/v1/evaluate/flags")
            .header("if-none-match", &etag)
            .json(&json!({ "context": ctx })),
    )
    .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let other = Reply::of(
        s.as_token(&t, Method::POST, "/ofrep/v1/evaluate/flags")
            .header("if-none-match", &etag)
            .json(&json!({"context": {"targetingKey": "u2"}})),
    )
    .await
    .expect(StatusCode::OK);
    assert_ne!(other.header("etag"), Some(etag.as_str()));

    // After a change the old ETag no longer matches.
    s.patch(
        "/api/v1/projects/shop/flags/killed/environments/development",
        &json!({"enabled": true}),
    )
    .await
    .expect(StatusCode::OK);
    let changed = Reply::of(
        s.as_token(&t, Method::POST, "/ofrep/v1/evaluate/flags")
            .header("if-none-match", &etag)
            .json(&json!({ "context": ctx })),
    )
    .await
    .expect(StatusCode::OK);
    let killed = changed.body["flags"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["key"] == "killed"))
        .expect("killed in bulk");
    assert_eq!(killed["value"], true);
}

#[tokio::test]
async fn rate_limited_tokens_get_429_with_retry_after() {
    let s = TestServer::start_with(hata_server::ServerConfig {
        eval_rate_limit: 3,
        ..Default::default()
    })
    .await;
    shop(&s).await;
    let limited = token(&s, "server").await;
    let other = token(&s, "server").await;
    let mut refused = None;
    for _ in 0..20 {
        let r = ofrep(&s, &limited, "static-on", json!({})).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status, StatusCode::OK);
    }
    let r = refused
        .expect("20 requests at once exceed 3/s")
        .problem(StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    // Limits are per token.
    ofrep(&s, &other, "static-on", json!({}))
        .await
        .expect(StatusCode::OK);
}

#[tokio::test]
async fn browsers_may_call_ofrep_cross_origin() {
    let s = TestServer::start().await;
    let r = s
        .client
        .request(Method::OPTIONS, s.url("/ofrep/v1/evaluate/flags"))
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("preflight");
    assert!(r.status().is_success(), "{}", r.status());
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    assert_eq!(h("access-control-allow-origin"), "*");
    assert!(h("access-control-allow-methods").contains("post"));
    assert!(h("access-control-allow-headers").contains("authorization"));
}

/// Reads Server-Sent Events from a streaming response.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

#[derive(Debug, Default)]
struct Event {
    id: Option<String>,
    event: Option<String>,
    data: String,
    /// The block was only a comment (a heart-beat).
    comment: bool,
}

impl Sse {
    async fn open(request: reqwest::RequestBuilder) -> Sse {
        let response = request.send().await.expect("open the stream");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Sse {
            response,
            buffer: String::new(),
        }
    }

    /// The next block (event, comment or `retry:`); `None` when the stream ended or nothing
    /// arrived within `wait`.
    async fn next_block(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut e = Event::default();
                let mut only_comments = true;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        e.id = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        e.event = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        e.data.push_str(v);
                    }
                    if !line.starts_with(':') && !line.is_empty() {
                        only_comments = false;
                    }
                }
                e.comment = only_comments;
                return Some(e);
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .ok()??;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next real event (skipping comments and `retry:`).
    async fn next_event(&mut self, wait: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = self.next_block(left).await?;
            if e.id.is_some() || !e.data.is_empty() {
                return Some(e);
            }
        }
    }
}

#[tokio::test]
async fn ofrep_event_stream_signals_changes_and_resumes() {
    let s = TestServer::start_with(hata_server::ServerConfig {
        heartbeat: Duration::from_millis(200),
        ..Default::default()
    })
    .await;
    shop(&s).await;
    let t = token(&s, "client").await;
    let r = bulk(&s, &t, json!({"targetingKey": "u1"}))
        .await
        .expect(StatusCode::OK);
    let url = r.body["eventStreams"][0]["url"]
        .as_str()
        .expect("url")
        .to_string();

    // Up to date: nothing but heart-beats until something changes.
    let mut sse = Sse::open(s.client.get(&url)).await;
    let mut saw_heartbeat = false;
    let quiet_until = tokio::time::Instant::now() + Duration::from_millis(700);
    loop {
        let left = quiet_until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let Some(block) = sse.next_block(left).await else {
            break;
        };
        assert!(block.id.is_none(), "no event before a change: {block:?}");
        saw_heartbeat |= block.comment;
    }
    assert!(saw_heartbeat, "heart-beats every 200 ms");

    s.patch(
        "/api/v1/projects/shop/flags/killed/environments/development",
        &json!({"enabled": true}),
    )
    .await
    .expect(StatusCode::OK);
    let e = sse.next_event(DEADLINE).await.expect("refetchEvaluation");
    assert_eq!(e.event.as_deref(), Some("message"));
    let data: Value = serde_json::from_str(&e.data).expect("JSON data");
    assert_eq!(data["type"], "refetchEvaluation");
    let id = e.id.expect("event id");
    assert_eq!(data["etag"], format!("\"{id}\""));
    assert!(data["lastModified"]
        .as_i64()
        .is_some_and(|t| t > 1_700_000_000));

    // The re-fetch the provider makes with the event's metadata sees the change.
    let refetch = Reply::of(
        s.as_token(
            &t,
            Method::POST,
            &format!(
                "/ofrep/v1/evaluate/flags?flagConfigEtag={}&flagConfigLastModified={}",
                data["etag"].as_str().unwrap_or_default(),
                data["lastModified"]
            ),
        )
        .json(&json!({"context": {"targetingKey": "u1"}})),
    )
    .await
    .expect(StatusCode::OK);
    let killed = refetch.body["flags"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["key"] == "killed"))
        .expect("killed");
    assert_eq!(killed["value"], true);

    // Reconnecting with the last id: nothing to replay. With an older id (or none, on the old
    // ticket): the current state at once, under the same stable id.
    let mut resumed = Sse::open(s.client.get(&url).header("last-event-id", id.as_str())).await;
    assert!(resumed
        .next_event(Duration::from_millis(500))
        .await
        .is_none());
    let mut behind = Sse::open(s.client.get(&url)).await;
    let replayed = behind.next_event(DEADLINE).await.expect("replayed event");
    assert_eq!(replayed.id.as_deref(), Some(id.as_str()));

    // A tampered ticket is refused; deleting the token ends the stream and kills the ticket.
    let tampered = url.replacen("ticket=", "ticket=x", 1);
    Reply::of(s.client.get(&tampered))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    let id_of_token = s.get("/api/v1/tokens").await.expect(StatusCode::OK).body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["kind"] == "client"))
        .and_then(|i| i["id"].as_str())
        .expect("client token listed")
        .to_string();
    s.delete(&format!("/api/v1/tokens/{id_of_token}"))
        .await
        .expect(StatusCode::NO_CONTENT);
    let mut ended = false;
    for _ in 0..50 {
        if behind.next_block(DEADLINE).await.is_none() {
            ended = true;
            break;
        }
    }
    assert!(ended, "the stream ends when its token is deleted");
    Reply::of(s.client.get(&url))
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn sdk_config_and_stream_carry_the_rule_set() {
    let s = TestServer::start().await;
    shop(&s).await;
    let t = token(&s, "server").await;
    let r = Reply::of(s.as_token(&t, Method::GET, "/api/v1/sdk/config"))
        .await
        .expect(StatusCode::OK);
    let etag = r.header("etag").expect("ETag").to_string();
    assert_eq!(r.body["etag"], etag.as_str());
    assert_eq!(r.body["environment"], "development");
    let revision = r.body["revision"].as_i64().expect("revision");
    assert_eq!(revision, s.revision("shop", "development").await);
    let flags = r.body["flags"].as_array().expect("flags");
    assert_eq!(flags.len(), 6);
    for f in flags {
        let envs: Vec<&String> = f["environments"].as_object().expect("map").keys().collect();
        assert_eq!(envs, ["development"], "only this environment's config");
    }
    assert_eq!(r.body["segments"][0]["key"], "staff");
    let not_modified = Reply::of(
        s.as_token(&t, Method::GET, "/api/v1/sdk/config")
            .header("if-none-match", &etag),
    )
    .await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    let client = token(&s, "client").await;
    Reply::of(s.as_token(&client, Method::GET, "/api/v1/sdk/config"))
        .await
        .problem(StatusCode::FORBIDDEN);
    Reply::of(s.as_token(&s.token, Method::GET, "/api/v1/sdk/stream"))
        .await
        .problem(StatusCode::FORBIDDEN);

    let mut stream = Sse::open(s.as_token(&t, Method::GET, "/api/v1/sdk/stream")).await;
    let first = stream
        .next_event(DEADLINE)
        .await
        .expect("rule set on connect");
    assert_eq!(first.event.as_deref(), Some("config"));
    let doc: Value = serde_json::from_str(&first.data).expect("JSON");
    assert_eq!(doc["revision"], revision);
    s.delete("/api/v1/projects/shop/flags/theme")
        .await
        .expect(StatusCode::NO_CONTENT);
    let next = stream
        .next_event(DEADLINE)
        .await
        .expect("rule set after the change");
    let doc: Value = serde_json::from_str(&next.data).expect("JSON");
    assert!(doc["revision"].as_i64() > Some(revision));
    assert_eq!(doc["flags"].as_array().map(Vec::len), Some(5));
    assert_ne!(next.id, first.id);
    // Resuming at the current id sends nothing; at the old one, the current rule set.
    let mut resumed = Sse::open(
        s.as_token(&t, Method::GET, "/api/v1/sdk/stream")
            .header("last-event-id", next.id.clone().unwrap_or_default()),
    )
    .await;
    assert!(resumed
        .next_event(Duration::from_millis(500))
        .await
        .is_none());
    let mut behind = Sse::open(
        s.as_token(&t, Method::GET, "/api/v1/sdk/stream")
            .header("last-event-id", first.id.clone().unwrap_or_default()),
    )
    .await;
    assert_eq!(
        behind.next_event(DEADLINE).await.and_then(|e| e.id),
        next.id
    );
}

#[tokio::test]
async fn evaluations_are_counted_and_survive_a_graceful_restart() {
    let mut s = TestServer::start().await;
    shop(&s).await;
    let t = token(&s, "server").await;
    for _ in 0..5 {
        ofrep(
            &s,
            &t,
            "banner",
            json!({"targetingKey": "u1", "plan": "pro"}),
        )
        .await
        .expect(StatusCode::OK);
    }
    // A change swaps the rule set; counts made against the old one must not be lost.
    s.patch(
        "/api/v1/projects/shop/flags/banner/environments/development",
        &json!({"rules": []}),
    )
    .await
    .expect(StatusCode::OK);
    for _ in 0..3 {
        ofrep(
            &s,
            &t,
            "banner",
            json!({"targetingKey": "u1", "plan": "pro"}),
        )
        .await
        .expect(StatusCode::OK);
    }
    bulk(&s, &t, json!({"targetingKey": "u1"}))
        .await
        .expect(StatusCode::OK);
    // Unknown flags are not counted (and must not break counting).
    ofrep(&s, &t, "nope", json!({}))
        .await
        .expect(StatusCode::NOT_FOUND);
    s.restart().await;

    let r = s
        .get("/api/v1/projects/shop/flags/banner/insights?env=development")
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["totals"]["development"]["b"], 5, "{:#}", r.body);
    assert_eq!(r.body["totals"]["development"]["a"], 4, "{:#}", r.body);
    let buckets = r.body["buckets"].as_array().expect("buckets");
    assert!(buckets
        .iter()
        .any(|b| b["reason"] == "TARGETING_MATCH" && b["variant"] == "b" && b["count"] == 5));
    assert!(buckets
        .iter()
        .all(|b| b["hour"].as_str().is_some_and(|h| h.ends_with(":00:00Z"))));
    let last = r.body["last_evaluated"].as_array().expect("last_evaluated");
    assert_eq!(last.len(), 1);
    assert_eq!(last[0]["environment"], "development");

    // A window that ends before the evaluations holds nothing; bad times are 422.
    let r = s
        .get("/api/v1/projects/shop/flags/banner/insights?to=2020-01-01T00:00:00Z&from=2019-12-01T00:00:00Z")
        .await
        .expect(StatusCode::OK);
    assert_eq!(r.body["buckets"], json!([]));
    s.get("/api/v1/projects/shop/flags/banner/insights?from=yesterday")
        .await
        .invalid_at("from", "RFC 3339");
    s.get("/api/v1/projects/shop/flags/nope/insights")
        .await
        .problem(StatusCode::NOT_FOUND);
}

/// A replica that missed both the delete and the re-creation of an environment (here: a
/// second store on the same SQLite file, which hears none of the first one's notices) finds
/// the new environment in its repair check, although its revision is lower than the old one's.
#[tokio::test]
async fn the_repair_check_reloads_an_environment_created_again() {
    let s = TestServer::start().await;
    s.project("shop").await;
    s.flag("shop", json!({"key": "f", "type": "boolean"})).await;
    for enabled in [true, false, true] {
        s.patch(
            "/api/v1/projects/shop/flags/f/environments/development",
            &json!({"enabled": enabled}),
        )
        .await
        .expect(StatusCode::OK);
    }
    let other = hata_store::Store::open(&hata_store::StoreConfig::new(support::database_url(
        s.data_dir(),
    )))
    .await
    .expect("a second store on the same file");
    let replica = hata_server::AppState::start(other)
        .await
        .expect("the replica's state");
    let before = replica
        .serving
        .get("shop", "development")
        .expect("loaded at start");

    s.delete("/api/v1/projects/shop/environments/development")
        .await
        .expect(StatusCode::NO_CONTENT);
    s.post(
        "/api/v1/projects/shop/environments",
        &json!({"key": "development", "name": "development"}),
    )
    .await
    .expect(StatusCode::CREATED);
    let recreated = s.revision("shop", "development").await;
    assert!(
        recreated < before.revision,
        "the test needs a lower revision: {recreated} vs {}",
        before.revision
    );

    replica.serving.reload_all().await.expect("repair check");
    let after = replica
        .serving
        .get("shop", "development")
        .expect("still served");
    assert_ne!(
        after.env_id, before.env_id,
        "the re-created environment is served"
    );
    assert_eq!(after.revision, recreated);
}

/// Writes that replace one flag are applied to the rule sets in memory instead of reading the
/// project back; what that serves must be exactly what a fresh load from the store serves.
#[tokio::test]
async fn rule_sets_updated_in_memory_equal_a_fresh_load() {
    let s = TestServer::start().await;
    shop(&s).await;
    let loads = s.state().serving.store_loads();
    s.patch(
        "/api/v1/projects/shop/flags/banner/environments/development",
        &json!({"enabled": false}),
    )
    .await
    .expect(StatusCode::OK);
    s.put(
        "/api/v1/projects/shop/flags/banner/environments/development",
        &json!({"enabled": true, "off_variant": "a",
            "targets": [{"variant": "b", "values": ["u-7"]}],
            "rules": [{"id": "plan-pro", "conditions": [{"attribute": "plan", "operator": "in", "values": ["pro", 3]}],
                       "serve": {"rollout": {"weights": [{"variant": "a", "weight": 25000},
                                                         {"variant": "b", "weight": 75000}]}}}],
            "default": {"variant": "b"}}),
    )
    .await
    .expect(StatusCode::OK);
    // `needs-killed` depends on `killed`: it must see the new `killed`.
    s.patch(
        "/api/v1/projects/shop/flags/killed/environments/development",
        &json!({"enabled": true}),
    )
    .await
    .expect(StatusCode::OK);
    s.put(
        "/api/v1/projects/shop/flags/limit",
        &json!({"key": "limit", "type": "number", "description": "now with a \"description\"",
            "variants": [{"key": "low", "value": 10}, {"key": "high", "value": 2.5}],
            "environments": {"development": {"enabled": true, "off_variant": "low",
                "prerequisites": [{"flag": "static-on", "variants": ["on"]}],
                "default": {"variant": "high"}}}}),
    )
    .await
    .expect(StatusCode::OK);
    // Flags joining and leaving: `c-new` sorts between `banner` and `killed` and names
    // `killed`, so `killed`'s index and `needs-killed`'s prerequisite on it both move.
    s.flag(
        "shop",
        json!({"key": "c-new", "type": "boolean", "environments": {"development": {
            "enabled": true, "off_variant": "off", "default": {"variant": "on"},
            "prerequisites": [{"flag": "killed", "variants": ["on"]}],
            "targets": [{"variant": "off", "values": ["u-7"]}]}}}),
    )
    .await;
    s.flag("shop", json!({"key": "a-first", "type": "boolean"}))
        .await;
    let theme = |archived: bool| {
        json!({"key": "theme", "type": "json", "archived": archived,
            "variants": [{"key": "dark", "value": {"bg": "#000", "size": 3}}],
            "environments": {"development": {"enabled": true, "off_variant": "dark",
                "default": {"variant": "dark"}}}})
    };
    s.put("/api/v1/projects/shop/flags/theme", &theme(true))
        .await
        .expect(StatusCode::OK);
    s.put("/api/v1/projects/shop/flags/theme", &theme(false))
        .await
        .expect(StatusCode::OK);
    s.flag("shop", json!({"key": "gone-again", "type": "boolean"}))
        .await;
    s.delete("/api/v1/projects/shop/flags/gone-again")
        .await
        .expect(StatusCode::NO_CONTENT);
    s.put("/api/v1/projects/shop/flags/banner", &json!({"key": "banner", "type": "string",
            "archived": true, "variants": [{"key": "a", "value": "Hello"}, {"key": "b", "value": "Welcome"}]}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        s.state().serving.store_loads(),
        loads,
        "the in-memory path was taken"
    );

    let fresh = hata_store::Store::open(&hata_store::StoreConfig::new(support::database_url(
        s.data_dir(),
    )))
    .await
    .expect("a second store on the same file");
    let fresh = hata_server::AppState::start(fresh)
        .await
        .expect("a fresh load");
    for env in ["development", "production"] {
        let kept = s.state().serving.get("shop", env).expect("served");
        let loaded = fresh.serving.get("shop", env).expect("loaded");
        assert_eq!(
            (kept.env_id, kept.revision, kept.last_modified),
            (loaded.env_id, loaded.revision, loaded.last_modified)
        );
        assert_eq!(kept.sdk.config(), loaded.sdk.config(), "{env}");
        assert_eq!(kept.sdk.event(), loaded.sdk.event(), "{env}");
        for context in [
            json!({"targetingKey": "u-7"}),
            json!({"targetingKey": "u-8", "plan": 3}),
            json!({"targetingKey": "alice", "plan": "pro"}),
            json!({}),
        ] {
            let attrs = context.as_object().expect("object");
            let ctx = hata_core::evaluate::Context::new(attrs);
            let a: Vec<_> = kept.snapshot.evaluate_all(&ctx).collect();
            let b: Vec<_> = loaded.snapshot.evaluate_all(&ctx).collect();
            assert_eq!(a, b, "{env} {context}");
            // The OFREP answers, from the pieces kept per flag and variant.
            for (a, b) in a.iter().zip(&b) {
                let (mut x, mut y) = (Vec::new(), Vec::new());
                kept.ofrep.write_success(a, &mut x);
                loaded.ofrep.write_success(b, &mut y);
                assert_eq!(x, y, "{env} {context} {}", a.key);
            }
        }
    }
    let dev = s
        .state()
        .serving
        .get("shop", "development")
        .expect("served");
    let attrs = json!({"targetingKey": "x"});
    let ctx = hata_core::evaluate::Context::new(attrs.as_object().expect("object"));
    assert_eq!(dev.snapshot.evaluate("needs-killed", &ctx).variant, "on");
    assert_eq!(dev.snapshot.evaluate("c-new", &ctx).variant, "on");
    assert!(dev.snapshot.flag("banner").is_none(), "archived");
    assert!(dev.snapshot.flag("gone-again").is_none(), "deleted");

    // New variant keys for a flag that another names as a prerequisite: read back.
    s.put(
        "/api/v1/projects/shop/flags/killed",
        &json!({"key": "killed", "type": "boolean",
            "variants": [{"key": "on", "value": true}, {"key": "off", "value": false},
                         {"key": "maybe", "value": false}],
            "environments": {"development": {"enabled": true, "off_variant": "off",
                "default": {"variant": "on"}}}}),
    )
    .await
    .expect(StatusCode::OK);
    assert!(s.state().serving.store_loads() > loads);
}

/// A write committed by this process also reaches `follow_changes`, as
/// `ChangeNotice::RuleSets`, and it applies the write in memory as the writer does. The notice
/// used to make it read the whole rule set back; on a multi-threaded runtime it often got the
/// environment's load turn before the writer, so toggling a flag in a 10,000-flag project
/// took a second instead of milliseconds.
#[tokio::test]
async fn change_notices_of_this_process_are_applied_in_memory() {
    let s = TestServer::start().await;
    shop(&s).await;
    let serving = &s.state().serving;
    let before = serving.get("shop", "development").expect("served");
    let loads = serving.store_loads();
    // Straight to the store, past `AppState::write`: only the notice can bring the rule set
    // up to date.
    let outcome = serving
        .store()
        .write(
            &hata_store::WriteMeta::new(hata_store::Actor::system("test"), "notice-path"),
            hata_store::WriteOp::PatchFlagConfig {
                project: "shop".into(),
                flag: "banner".into(),
                environment: "development".into(),
                expected_version: hata_store::Expected::Any,
                patch: json!({"enabled": false}),
            },
        )
        .await
        .expect("write");
    assert!(
        outcome
            .rule_sets
            .revisions
            .iter()
            .any(|r| r.environment == "development" && r.revision == before.revision + 1),
        "{outcome:?}"
    );
    serving
        .wait_for(
            "shop",
            "development",
            before.env_id,
            before.revision + 1,
            Duration::from_secs(10),
        )
        .await;
    let after = serving.get("shop", "development").expect("served");
    assert_eq!(after.revision, before.revision + 1);
    assert_eq!(serving.store_loads(), loads, "applied in memory");
    let attrs = json!({"targetingKey": "u-1"});
    let ctx = hata_core::evaluate::Context::new(attrs.as_object().expect("object"));
    assert_eq!(
        after.snapshot.evaluate("banner", &ctx).reason,
        hata_core::evaluate::Reason::Disabled
    );
}

/// `http_requests_total` of POSTs to the single-flag route template, any status, from
/// `GET /metrics`.
async fn single_flag_requests(s: &TestServer) -> u64 {
    let text = s
        .client
        .get(s.url("/metrics"))
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("metrics");
    let prefix = r#"http_requests_total{method="POST",route="/ofrep/v1/evaluate/flags/{key}","#;
    text.lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|rest| {
            let (_, n) = rest.rsplit_once(' ').expect("a value");
            n.parse::<u64>().expect("a count")
        })
        .sum()
}

/// Single-flag evaluations skip the router (the hot path, see `dispatch`); they must answer
/// exactly as the routed handler does, with everything the edge adds to every answer. An
/// escaped key (`%6E` is `n`) goes through the router, which decodes it: the same request set
/// goes both ways and the answers are compared status, header and body, and so are their
/// access log lines (every evaluation logged here: a sample share of 1).
#[tokio::test]
async fn single_flag_evaluations_off_the_router_answer_as_the_router_does() {
    let s = TestServer::start_with(hata_server::ServerConfig {
        body_limit: 1024,
        access_log: hata_server::dispatch::access_log::AccessLogConfig {
            enabled: true,
            sample_evaluations: 1.0,
        },
        ..hata_server::ServerConfig::default()
    })
    .await;
    shop(&s).await;
    let t = token(&s, "client").await;
    let server = token(&s, "server").await;
    let admin = s.token.clone();
    let ctx = br#"{"context": {"targetingKey": "u-1", "plan": "pro"}}"#.to_vec();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("context", ctx),
        ("empty context", br#"{"context": {}}"#.to_vec()),
        ("context not an object", br#"{"context": 1}"#.to_vec()),
        ("no context", b"{}".to_vec()),
        ("not JSON", b"{".to_vec()),
        ("not UTF-8", b"{\"context\": {\"a\": \"\xff\"}}".to_vec()),
        ("empty body", Vec::new()),
        (
            "too large",
            format!(
                r#"{{"context": {{"targetingKey": "{}"}}}}"#,
                "x".repeat(2000)
            )
            .into_bytes(),
        ),
    ];
    // (key as sent directly, the same key escaped)
    let keys = [("banner", "ban%6Eer"), ("nope", "%6Eope")];
    let tokens: [(&str, Option<&str>); 5] = [
        ("client", Some(&t)),
        ("server", Some(&server)),
        ("admin", Some(&admin)),
        ("unknown", Some("hata_client_nope")),
        ("none", None),
    ];
    let headers = |r: &Reply| {
        let mut all: Vec<(String, String)> = r
            .headers
            .iter()
            .filter(|(name, _)| *name != "date" && *name != "x-request-id")
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("?").to_string()))
            .collect();
        all.sort();
        all
    };
    // Both paths are counted by the edge, under the same route template.
    let counted_before = single_flag_requests(&s).await;
    let mut compared = 0;
    for (direct_key, routed_key) in keys {
        for (body_name, body) in &bodies {
            for (token_name, secret) in tokens {
                for origin in [None, Some("https://app.example")] {
                    let ask = |key: &str, request_id: &str| {
                        let mut r = s
                            .client
                            .post(s.url(&format!("/ofrep/v1/evaluate/flags/{key}")))
                            .header("content-type", "application/json")
                            .header("x-request-id", request_id)
                            .header("user-agent", "both-ways/1")
                            .body(body.clone());
                        if let Some(secret) = secret {
                            r = r.bearer_auth(secret);
                        }
                        if let Some(origin) = origin {
                            r = r.header("origin", origin);
                        }
                        r
                    };
                    let case = format!("{direct_key} / {body_name} / {token_name} / {origin:?}");
                    let counted = single_flag_requests(&s).await;
                    let (direct_id, routed_id) = (
                        format!("req-ofrep-{compared}-direct"),
                        format!("req-ofrep-{compared}-routed"),
                    );
                    let direct = Reply::of(ask(direct_key, &direct_id)).await;
                    assert_eq!(
                        single_flag_requests(&s).await,
                        counted + 1,
                        "fast path counted: {case}"
                    );
                    let routed = Reply::of(ask(routed_key, &routed_id)).await;
                    assert_eq!(
                        single_flag_requests(&s).await,
                        counted + 2,
                        "router path counted: {case}"
                    );
                    assert_eq!(direct.status, routed.status, "{case}");
                    assert_eq!(headers(&direct), headers(&routed), "{case}");
                    assert_eq!(direct.body, routed.body, "{case}");
                    // One access log line each, alike but for the request id and duration.
                    let logged = |id: &str| {
                        let lines = secrets::access_lines(id);
                        assert_eq!(lines.len(), 1, "one access line for {id}: {case}");
                        let mut line = lines[0].clone();
                        for varies in ["timestamp", "duration_ms", "request_id"] {
                            assert!(line.remove(varies).is_some(), "{varies}: {case}");
                        }
                        line
                    };
                    let line = logged(&direct_id);
                    assert_eq!(line, logged(&routed_id), "{case}");
                    assert_eq!(line["route"], "/ofrep/v1/evaluate/flags/{key}", "{case}");
                    assert_eq!(line["method"], "POST", "{case}");
                    assert_eq!(line["status"], direct.status.as_u16(), "{case}");
                    assert_eq!(line["client_ip"], "127.0.0.1", "{case}");
                    assert_eq!(line["user_agent"], "both-ways/1", "{case}");
                    let principal = line["principal"].as_str().unwrap_or("");
                    match (token_name, direct.status) {
                        ("unknown" | "none", _) => assert_eq!(principal, "anonymous", "{case}"),
                        _ => assert!(principal.starts_with("token:"), "{case}: {principal}"),
                    }
                    if let Some(secret) = secret {
                        assert!(!principal.contains(secret), "{case}");
                    }
                    // What the edge adds, on every answer of either path.
                    for (r, id) in [(&direct, &direct_id), (&routed, &routed_id)] {
                        assert_eq!(r.header("x-request-id"), Some(id.as_str()), "{case}");
                        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{case}");
                        assert_eq!(
                            r.header("x-content-type-options"),
                            Some("nosniff"),
                            "{case}"
                        );
                        assert_eq!(r.header("x-frame-options"), Some("DENY"), "{case}");
                        assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{case}");
                    }
                    compared += 1;
                }
            }
        }
    }
    assert_eq!(compared, 2 * 8 * 5 * 2);
    assert_eq!(
        single_flag_requests(&s).await - counted_before,
        2 * compared
    );
    // Spot checks that the set covers what it means to.
    let ask = |path: &str, body: &[u8]| {
        s.as_token(&t, Method::POST, path)
            .header("content-type", "application/json")
            .body(body.to_vec())
    };
    let ok = Reply::of(ask("/ofrep/v1/evaluate/flags/banner", &bodies[0].1)).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["variant"], "b");
    assert_eq!(ok.header("content-type"), Some("application/json"));
    let missing = Reply::of(ask("/ofrep/v1/evaluate/flags/nope", &bodies[1].1)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["errorCode"], "FLAG_NOT_FOUND");
    let bad = Reply::of(ask("/ofrep/v1/evaluate/flags/banner", &bodies[2].1)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["errorCode"], "INVALID_CONTEXT");
    Reply::of(ask("/ofrep/v1/evaluate/flags/banner", &bodies[7].1))
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    Reply::of(
        s.as_token(&admin, Method::POST, "/ofrep/v1/evaluate/flags/banner")
            .json(&json!({"context": {}})),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    // Without a request id, one is made up, on both paths.
    for path in [
        "/ofrep/v1/evaluate/flags/banner",
        "/ofrep/v1/evaluate/flags/ban%6Eer",
    ] {
        let r = Reply::of(ask(path, &bodies[1].1)).await;
        assert!(
            r.header("x-request-id").is_some_and(|id| id.len() > 8),
            "{path}"
        );
        assert_eq!(r.body["key"], "banner");
    }
    // A preflight is answered before any route, for both paths alike; other methods on the
    // path get the router's 405 (with the same edge headers).
    for path in [
        "/ofrep/v1/evaluate/flags/banner",
        "/ofrep/v1/evaluate/flags/ban%6Eer",
    ] {
        let preflight = Reply::of(
            s.client
                .request(Method::OPTIONS, s.url(path))
                .header("origin", "https://app.example")
                .header("access-control-request-method", "POST"),
        )
        .await;
        assert!(preflight.status.is_success(), "{path}");
        assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
        assert_eq!(preflight.header("access-control-max-age"), Some("86400"));
        let wrong = Reply::of(s.as_token(&t, Method::GET, path))
            .await
            .problem(StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(wrong.header("access-control-allow-origin"), Some("*"));
        assert_eq!(wrong.header("x-content-type-options"), Some("nosniff"));
    }
    // Outside `/ofrep/` nothing is cross-origin; the security headers are everywhere.
    let admin_api = Reply::of(
        s.as_token(&admin, Method::GET, "/api/v1/projects")
            .header("origin", "https://app.example"),
    )
    .await;
    assert_eq!(admin_api.status, StatusCode::OK);
    assert_eq!(admin_api.header("access-control-allow-origin"), None);
    assert_eq!(admin_api.header("x-frame-options"), Some("DENY"));
}

/// An environment whose rule set this server has not loaded (yet) gets one answer on every
/// evaluation endpoint: 503 with `Retry-After`, problem+json on the SDK endpoints and OFREP's
/// `{errorDetails}` on OFREP.
#[tokio::test]
async fn an_environment_not_loaded_is_a_503_to_retry_everywhere() {
    let s = TestServer::start().await;
    shop(&s).await;
    let client = token(&s, "client").await;
    let server = token(&s, "server").await;
    // As if the environment had just been created on another replica and its change notice
    // had not arrived here yet (the repair check would load it within 10 s).
    s.state().serving.remove("shop", "development");
    let context = json!({"context": {"targetingKey": "u-1"}});
    for path in [
        "/ofrep/v1/evaluate/flags/banner",
        "/ofrep/v1/evaluate/flags/ban%6Eer",
        "/ofrep/v1/evaluate/flags",
    ] {
        let r = Reply::of(s.as_token(&client, Method::POST, path).json(&context)).await;
        assert_eq!(
            r.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path}: {}",
            r.body
        );
        assert_eq!(r.header("retry-after"), Some("1"), "{path}");
        assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
        assert!(
            r.body["errorDetails"]
                .as_str()
                .is_some_and(|d| d.contains("not loaded")),
            "{path}: {}",
            r.body
        );
    }
    for path in ["/api/v1/sdk/config", "/api/v1/sdk/stream"] {
        let r = Reply::of(s.as_token(&server, Method::GET, path))
            .await
            .problem(StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.header("retry-after"), Some("1"), "{path}");
    }
    // Loaded again, it answers.
    s.state().serving.reload_all().await.expect("reload");
    let r = Reply::of(
        s.as_token(&client, Method::POST, "/ofrep/v1/evaluate/flags/banner")
            .json(&context),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// The OFREP event-stream URL carries a bearer ticket, so it must not point where a caller
/// says: `X-Forwarded-*` count only from trusted proxies, and `Host` must be a host.
#[tokio::test]
async fn event_stream_urls_believe_forwarding_headers_only_from_trusted_proxies() {
    let bulk = |s: &TestServer, t: &str, headers: &[(&str, &str)]| {
        let mut r = s
            .as_token(t, Method::POST, "/ofrep/v1/evaluate/flags")
            .json(&json!({"context": {}}));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        Reply::of(r)
    };
    let url_of = |r: &Reply| {
        r.body["eventStreams"][0]["url"]
            .as_str()
            .map(|u| u.split("/ofrep/").next().unwrap_or_default().to_string())
    };
    let forwarded = [
        ("host", "hata.internal:7070"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("x-forwarded-for", "203.0.113.7"),
    ];
    // Nobody trusted (the default): the headers are ignored.
    let s = TestServer::start().await;
    shop(&s).await;
    let t = token(&s, "client").await;
    let r = bulk(&s, &t, &forwarded).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(url_of(&r).as_deref(), Some("http://hata.internal:7070"));
    // A Host that is not a host: no URL is made from it.
    for host in ["evil.example/x?", "a b", "evil.example:99999"] {
        bulk(&s, &t, &[("host", host)])
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
    // Behind a trusted proxy (the test client's own address), they are believed.
    let s = TestServer::start_with(hata_server::ServerConfig {
        trusted_proxies: hata_server::forwarded::TrustedProxies::parse("127.0.0.1").expect("valid"),
        ..hata_server::ServerConfig::default()
    })
    .await;
    shop(&s).await;
    let t = token(&s, "client").await;
    let r = bulk(&s, &t, &forwarded).await;
    assert_eq!(url_of(&r).as_deref(), Some("https://evil.example"));
    // --public-url wins over everything.
    let s = TestServer::start_with(hata_server::ServerConfig {
        public_url: Some("https://flags.example.com".into()),
        ..hata_server::ServerConfig::default()
    })
    .await;
    shop(&s).await;
    let t = token(&s, "client").await;
    let r = bulk(&s, &t, &[("host", "evil.example/x?")]).await;
    assert_eq!(url_of(&r).as_deref(), Some("https://flags.example.com"));
}

/// A context wider than `max_context_members` is OFREP `INVALID_CONTEXT`, single and bulk.
#[tokio::test]
async fn contexts_wider_than_the_limit_are_invalid() {
    let s = TestServer::start_with(hata_server::ServerConfig {
        max_context_members: 100,
        ..hata_server::ServerConfig::default()
    })
    .await;
    shop(&s).await;
    let t = token(&s, "client").await;
    let wide = |n: usize| {
        let members: serde_json::Map<String, Value> =
            (0..n).map(|i| (format!("a{i}"), json!(i))).collect();
        json!({ "context": members })
    };
    for path in [
        "/ofrep/v1/evaluate/flags/banner",
        "/ofrep/v1/evaluate/flags/ban%6Eer",
        "/ofrep/v1/evaluate/flags",
    ] {
        let ok = Reply::of(s.as_token(&t, Method::POST, path).json(&wide(100))).await;
        assert_eq!(ok.status, StatusCode::OK, "{path}: {}", ok.body);
        let r = Reply::of(s.as_token(&t, Method::POST, path).json(&wide(5_000))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(r.body["errorCode"], "INVALID_CONTEXT", "{path}");
        assert!(
            r.body["errorDetails"]
                .as_str()
                .is_some_and(|d| d.contains("5000 members")),
            "{path}: {}",
            r.body
        );
    }
}
