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
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use hata_store::{TokenKind, TokenRecord};
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::{Instant, Interval};

use super::EvalSettings;
use crate::auth::{authenticate_evaluator, Evaluator, TokenCache};
use crate::error::AppError;
use crate::extract::Query;
use crate::AppState;
use hata_serving::{EnvServing, RuleSetId, Serving};

/// Sent first on every stream: how long `EventSource` waits before reconnecting (ms).
const RETRY: &[u8] = b"retry: 1000\n\n";
const HEARTBEAT: &[u8] = b": heartbeat\n\n";
/// Sent last when the server shuts down: a short reconnection delay, so clients come back
/// (through the balancer, to a replica that is not draining) at once rather than after
/// `RETRY`. The stream then ends, which is what makes `EventSource` reconnect.
const GOODBYE: &[u8] = b": shutting down, reconnect\nretry: 250\n\n";

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
    /// The hash of the token secret the stream was opened with: it ends when that secret
    /// does (revoked, expired, aged out, or rotated out at the end of its grace period).
    /// `None` for a JWT (it cannot be revoked: its stream ends at its expiry).
    secret_hash: Option<String>,
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
    /// Whether `GOODBYE` was sent (the next call ends the stream).
    said_goodbye: bool,
    heartbeat: Interval,
    /// When the secret stops working: the stream ends then, not at the next heart-beat.
    /// Reset when a token change moves it (a rotation).
    expiry: std::pin::Pin<Box<tokio::time::Sleep>>,
    /// This stream's place under the caps; given back when the stream is dropped.
    _slot: StreamSlot,
}

impl EventStream {
    fn frame(&self, env: &EnvServing) -> Bytes {
        match self.feed {
            Feed::Sdk => env.sdk.event(),
            Feed::Ofrep => ofrep_frame(env),
        }
    }

    /// Whether the stream's secret still works for its environment; follows a moved end.
    fn token_ok(&mut self) -> bool {
        let Some(secret_hash) = &self.secret_hash else {
            return true;
        };
        let Some(token) = self.tokens.live_by_hash(secret_hash) else {
            return false;
        };
        self.expiry
            .as_mut()
            .reset(expiry_instant(token.expires_at.as_deref()));
        token.project.as_deref() == Some(self.project.as_str())
            && token.environment.as_deref() == Some(self.environment.as_str())
    }

    /// At shutdown: `GOODBYE` once, then the end.
    fn goodbye(&mut self) -> Option<Bytes> {
        if std::mem::replace(&mut self.said_goodbye, true) {
            return None;
        }
        Some(Bytes::from_static(GOODBYE))
    }

    /// The next chunk of the body; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(chunk) = self.queued.pop_front() {
            return Some(chunk);
        }
        if *self.shutdown.borrow() {
            return self.goodbye();
        }
        loop {
            tokio::select! {
                biased;
                _ = self.shutdown.changed() => return self.goodbye(),
                () = self.expiry.as_mut() => return None,
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

/// Who holds a stream open: a token, or a verified JWT.
enum Holder<'a> {
    Token(&'a TokenRecord),
    Jwt(&'a crate::auth::jwt::VerifiedJwt),
}

fn open(
    s: &AppState,
    settings: &EvalSettings,
    holder: Holder<'_>,
    env: &EnvServing,
    feed: Feed,
    sent: Option<RuleSetId>,
) -> Result<EventStream, AppError> {
    let (key, secret_hash, expires) = match holder {
        Holder::Token(token) => (
            &token.id,
            Some(token.secret_hash.clone()),
            expiry_instant(token.expires_at.as_deref()),
        ),
        Holder::Jwt(jwt) => (&jwt.key, None, unix_instant(jwt.expires)),
    };
    let slot = settings.streams.take(key, feed)?;
    let period = settings.heartbeat;
    Ok(EventStream {
        serving: s.serving.clone(),
        tokens: s.tokens.clone(),
        secret_hash,
        project: env.project.clone(),
        environment: env.environment.clone(),
        feed,
        sent,
        queued: VecDeque::new(),
        changes: s.serving.subscribe(),
        token_changes: s.tokens.subscribe(),
        shutdown: s.serving.shutdown_signal(),
        said_goodbye: false,
        heartbeat: tokio::time::interval_at(Instant::now() + period, period),
        expiry: Box::pin(tokio::time::sleep_until(expires)),
        _slot: slot,
    })
}

/// The monotonic instant of an RFC 3339 expiry (now, if it is past or does not parse: the
/// stream then ends at once, as the token check would end it); a century away for none.
fn expiry_instant(expires_at: Option<&str>) -> Instant {
    let Some(expires_at) = expires_at else {
        return Instant::now() + std::time::Duration::from_secs(100 * 365 * 86_400);
    };
    let now_nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let left = hata_core::operand::parse_rfc3339(expires_at)
        .map_or(0, |at| at.saturating_sub(now_nanos).max(0));
    let left = u64::try_from(left).unwrap_or(u64::MAX);
    Instant::now() + std::time::Duration::from_nanos(left)
}

/// The monotonic instant of a Unix time in seconds (now, if it is past).
fn unix_instant(at: i64) -> Instant {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let left = u64::try_from(at.saturating_sub(now)).unwrap_or(0);
    // Far-future expiries are capped (an `Instant` overflows somewhere past centuries).
    Instant::now() + std::time::Duration::from_secs(left.min(100 * 365 * 86_400))
}

/// Caps on open event streams, in total and per token, so that no caller (a leaked token
/// above all) can hold every connection slot. Beyond either: 429 with `Retry-After`.
pub struct StreamSlots {
    max_total: usize,
    max_per_token: usize,
    open: std::sync::Mutex<StreamCounts>,
}

#[derive(Default)]
struct StreamCounts {
    total: usize,
    /// Open streams per kind (`ofrep`, `sdk`), for metrics.
    ofrep: usize,
    sdk: usize,
    per_token: std::collections::HashMap<String, usize>,
}

/// How long a refused stream is told to wait before trying again.
const STREAMS_FULL_RETRY: u64 = 5;

impl StreamSlots {
    pub fn new(max_total: usize, max_per_token: usize) -> Arc<StreamSlots> {
        Arc::new(StreamSlots {
            max_total,
            max_per_token,
            open: std::sync::Mutex::default(),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, StreamCounts> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for one more stream of `token_id`.
    fn take(self: &Arc<Self>, token_id: &str, feed: Feed) -> Result<StreamSlot, AppError> {
        let mut counts = self.counts();
        let of_token = counts.per_token.get(token_id).copied().unwrap_or(0);
        if counts.total >= self.max_total {
            return Err(AppError::Throttled {
                detail: format!(
                    "this server has {} event streams open, its limit",
                    counts.total
                ),
                retry_after: STREAMS_FULL_RETRY,
            });
        }
        if of_token >= self.max_per_token {
            return Err(AppError::Throttled {
                detail: format!("this token has {of_token} event streams open, its limit"),
                retry_after: STREAMS_FULL_RETRY,
            });
        }
        counts.total += 1;
        *counts.kind(feed) += 1;
        *counts.per_token.entry(token_id.to_string()).or_default() += 1;
        Ok(StreamSlot {
            slots: self.clone(),
            token_id: token_id.to_string(),
            feed,
        })
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.counts().total
    }

    /// Streams open now, per kind (`hata_sse_streams{kind}`).
    pub fn open_by_kind(&self) -> Vec<(&'static str, usize)> {
        let counts = self.counts();
        vec![("ofrep", counts.ofrep), ("sdk", counts.sdk)]
    }
}

impl StreamCounts {
    fn kind(&mut self, feed: Feed) -> &mut usize {
        match feed {
            Feed::Ofrep => &mut self.ofrep,
            Feed::Sdk => &mut self.sdk,
        }
    }
}

/// One open stream's place under the caps.
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    token_id: String,
    feed: Feed,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts();
        counts.total = counts.total.saturating_sub(1);
        let kind = counts.kind(self.feed);
        *kind = kind.saturating_sub(1);
        if let Some(n) = counts.per_token.get_mut(&self.token_id) {
            *n -= 1;
            if *n == 0 {
                counts.per_token.remove(&self.token_id);
            }
        }
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
    let token = s
        .tokens
        .live_by_id(&ticket.token_id)
        .filter(|t| {
            t.project.as_deref() == Some(ticket.project.as_str())
                && t.environment.as_deref() == Some(ticket.environment.as_str())
        })
        .ok_or(AppError::Unauthorized)?;
    let env = s
        .serving
        .get(&ticket.project, &ticket.environment)
        .ok_or_else(|| AppError::NotFound("the environment no longer exists".into()))?;
    // Without Last-Event-ID the client has what it fetched when the ticket was issued.
    let sent = last_event_id(&headers).or(Some(ticket.rule_set));
    Ok(open(
        &s,
        &settings,
        Holder::Token(&token),
        &env,
        Feed::Ofrep,
        sent,
    )?
    .into_response(&env))
}

/// `GET /api/v1/sdk/stream` (server token): the rule set on connect and after every change.
pub async fn sdk_stream(
    State(s): State<AppState>,
    Extension(settings): Extension<Arc<EvalSettings>>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let caller =
        authenticate_evaluator(&s.tokens, s.jwt.as_ref(), &headers, &[TokenKind::Server]).await?;
    let env = s
        .serving
        .get(caller.project(), caller.environment())
        .ok_or(AppError::NotLoaded)?;
    let sent = last_event_id(&headers);
    let holder = match &caller {
        Evaluator::Token(token) => Holder::Token(token),
        Evaluator::Jwt(jwt) => Holder::Jwt(jwt),
    };
    Ok(open(&s, &settings, holder, &env, Feed::Sdk, sent)?.into_response(&env))
}
