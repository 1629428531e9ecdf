//! Server-Sent Events: the OFREP event stream (`refetchEvaluation` notices, ADR-0008) and the
//! SDK rule-set stream (`GET /api/v1/sdk/stream`).
//!
//! An open stream is a small state machine polled by the connection's own task — no task,
//! channel or buffer per stream. It wakes on a swap of any rule set (one `watch` for all),
//! on a token change (to end when its token is revoked), on its heart-beat, and at shutdown.
//! Events carry the id `<env id>.<revision>`: stable, never reused, and enough to resume
//! after `Last-Event-ID` — the streams are "state changed" signals, so replaying the missed
//! events collapses into sending the current state once.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use hata_store::TokenKind;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::{Instant, Interval};

use super::EvalSettings;
use crate::auth::{authenticate_evaluator, TokenCache};
use crate::error::AppError;
use crate::AppState;
use hata_serving::{EnvServing, RuleSetId, Serving};

/// Sent first on every stream: how long `EventSource` waits before reconnecting (ms).
const RETRY: &[u8] = b"retry: 1000\n\n";
const HEARTBEAT: &[u8] = b": heartbeat\n\n";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Feed {
    /// OFREP `refetchEvaluation` notices.
    Ofrep,
    /// The whole SDK rule set after every change.
    Sdk,
}

struct EventStream {
    serving: Arc<Serving>,
    tokens: Arc<TokenCache>,
    token_id: String,
    project: String,
    environment: String,
    feed: Feed,
    /// The rule set the client has (sent, or resumed from).
    sent: Option<RuleSetId>,
    /// Chunks to send before waiting for changes. Separate chunks, never concatenated: the
    /// SDK frame is the environment's shared rule set (megabytes with 10,000 flags), and a
    /// copy per stream would cost that much memory per connecting client.
    queued: VecDeque<Bytes>,
    changes: watch::Receiver<u64>,
    token_changes: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
    heartbeat: Interval,
}

impl EventStream {
    fn frame(&self, env: &EnvServing) -> Bytes {
        match self.feed {
            Feed::Sdk => env.sdk.event(),
            Feed::Ofrep => ofrep_frame(env),
        }
    }

    fn token_ok(&self) -> bool {
        self.tokens.live_by_id(&self.token_id).is_some_and(|t| {
            t.project.as_deref() == Some(self.project.as_str())
                && t.environment.as_deref() == Some(self.environment.as_str())
        })
    }

    /// The next chunk of the body; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(chunk) = self.queued.pop_front() {
            return Some(chunk);
        }
        if *self.shutdown.borrow() {
            return None;
        }
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.changed() => return None,
                changed = self.changes.changed() => {
                    changed.ok()?;
                    // The environment was deleted: end the stream; a reconnect gets a 404.
                    let env = self.serving.get(&self.project, &self.environment)?;
                    let current = env.id();
                    if self.sent != Some(current) {
                        self.sent = Some(current);
                        return Some(self.frame(&env));
                    }
                }
                changed = self.token_changes.changed() => {
                    changed.ok()?;
                    if !self.token_ok() {
                        return None;
                    }
                }
                _ = self.heartbeat.tick() => {
                    if !self.token_ok() {
                        return None;
                    }
                    return Some(Bytes::from_static(HEARTBEAT));
                }
            }
        }
    }

    fn into_response(mut self, env: &EnvServing) -> Response {
        // Send the current state at once unless the client already has it.
        self.queued.push_back(Bytes::from_static(RETRY));
        let current = env.id();
        if self.sent != Some(current) {
            let frame = self.frame(env);
            self.queued.push_back(frame);
            self.sent = Some(current);
        }
        let body = futures::stream::unfold(self, |mut s| async move {
            s.next().await.map(|chunk| (Ok::<_, Infallible>(chunk), s))
        });
        (
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/event-stream"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
                // Proxies such as nginx would otherwise buffer the stream.
                (
                    header::HeaderName::from_static("x-accel-buffering"),
                    HeaderValue::from_static("no"),
                ),
            ],
            Body::from_stream(body),
        )
            .into_response()
    }
}

fn open(
    s: &AppState,
    settings: &EvalSettings,
    token_id: String,
    env: &EnvServing,
    feed: Feed,
    sent: Option<RuleSetId>,
) -> EventStream {
    let period = settings.heartbeat;
    EventStream {
        serving: s.serving.clone(),
        tokens: s.tokens.clone(),
        token_id,
        project: env.project.clone(),
        environment: env.environment.clone(),
        feed,
        sent,
        queued: VecDeque::new(),
        changes: s.serving.subscribe(),
        token_changes: s.tokens.subscribe(),
        shutdown: s.serving.shutdown_signal(),
        heartbeat: tokio::time::interval_at(Instant::now() + period, period),
    }
}

/// `<env id>.<revision>` from `Last-Event-ID`.
fn last_event_id(headers: &HeaderMap) -> Option<RuleSetId> {
    RuleSetId::from_header(headers.get("last-event-id")?.to_str().ok()?)
}

/// `data` of a `refetchEvaluation` event: `etag` is the rule set's config ETag (what the
/// provider sends back as `flagConfigEtag`), `lastModified` Unix seconds.
fn ofrep_frame(env: &EnvServing) -> Bytes {
    let data = serde_json::json!({
        "type": "refetchEvaluation",
        "etag": env.config_etag,
        "lastModified": env.last_modified,
    });
    Bytes::from(format!(
        "id: {}\nevent: message\ndata: {data}\n\n",
        env.id()
    ))
}

#[derive(Deserialize)]
pub struct TicketQuery {
    ticket: Option<String>,
}

/// `GET /ofrep/v1/events?ticket=…`: the URL handed out in the bulk response's `eventStreams`.
pub async fn ofrep_events(
    State(s): State<AppState>,
    Extension(settings): Extension<Arc<EvalSettings>>,
    Query(q): Query<TicketQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ticket = s
        .tickets
        .verify(q.ticket.as_deref().unwrap_or_default(), now)
        .map_err(|_| AppError::Unauthorized)?;
    let token_ok = s.tokens.live_by_id(&ticket.token_id).is_some_and(|t| {
        t.project.as_deref() == Some(ticket.project.as_str())
            && t.environment.as_deref() == Some(ticket.environment.as_str())
    });
    if !token_ok {
        return Err(AppError::Unauthorized);
    }
    let env = s
        .serving
        .get(&ticket.project, &ticket.environment)
        .ok_or_else(|| AppError::NotFound("the environment no longer exists".into()))?;
    // Without Last-Event-ID the client has what it fetched when the ticket was issued.
    let sent = last_event_id(&headers).or(Some(ticket.rule_set));
    Ok(open(&s, &settings, ticket.token_id, &env, Feed::Ofrep, sent).into_response(&env))
}

/// `GET /api/v1/sdk/stream` (server token): the rule set on connect and after every change.
pub async fn sdk_stream(
    State(s): State<AppState>,
    Extension(settings): Extension<Arc<EvalSettings>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let caller = authenticate_evaluator(&s.tokens, &headers, &[TokenKind::Server])?;
    let env = s
        .serving
        .get(caller.project(), caller.environment())
        .ok_or(AppError::NotLoaded)?;
    let sent = last_event_id(&headers);
    Ok(open(
        &s,
        &settings,
        caller.token.id.clone(),
        &env,
        Feed::Sdk,
        sent,
    )
    .into_response(&env))
}
