//! Authentication of API tokens from an in-memory cache of their hashes, so no request waits
//! for the database to learn who is calling. The cache is rebuilt after every token change.
//! `access`: what each route needs, and the admin API's layer that enforces it.
//! `session`: cookie sessions (users); `identity`: their settings; `passwords`: hashing off the
//! async workers; `jwt`: JWT bearer tokens of a configured issuer (a bearer secret shaped like
//! a JWT goes there when one is configured, every other one to the token cache).

pub mod access;
pub mod identity;
pub mod jwt;
pub mod passwords;
pub mod session;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use axum::http::header;
use hata_access::token::{Standing, TokenAges};
use hata_access::{EvaluationAccess, Principal, PrincipalKind};
use hata_store::{Store, StoreResult, TokenKind, TokenRecord};
use rustc_hash::FxHashMap;
use tokio::sync::{mpsc, watch};

use crate::dispatch::scope::Who;
use crate::error::AppError;
use crate::AppState;

/// Token hash → token. Swapped whole on every change.
pub struct TokenCache {
    /// Keyed by the raw SHA-256 (not its hex): the hot path hashes and looks up, nothing more.
    /// FxHash over a SHA-256 is enough: the keys are already uniformly spread, and callers
    /// cannot choose what is inserted.
    by_hash: ArcSwap<FxHashMap<[u8; 32], Entry>>,
    /// Bumped after every reload: open event streams re-check their token then.
    changed: watch::Sender<u64>,
    /// The maximum age and the warning window (`--token-max-age-days`).
    ages: TokenAges,
    /// Token id → when it was last used (Unix seconds), kept across reloads; written by the hot
    /// path at most once a second per token, flushed to the store by `run_use_flusher`.
    uses: Mutex<FxHashMap<String, Arc<AtomicI64>>>,
    /// Token id → the last use stored, and the last due-soon warning logged (Unix seconds).
    flushed: Mutex<FxHashMap<String, (i64, i64)>>,
    /// Token id → when its last refusal was queued for the audit log (Unix seconds): one
    /// entry an hour per token, however often a client retries an ended secret.
    refusals_noted: Mutex<FxHashMap<String, i64>>,
    /// Refusals to record (token id, name, why), for `run_refusal_recorder`; a full queue
    /// drops them rather than slow the refused request.
    refusals: mpsc::Sender<Refusal>,
    refusals_rx: Mutex<Option<mpsc::Receiver<Refusal>>>,
}

/// A refused token, for the audit log.
pub struct Refusal {
    pub id: String,
    pub name: String,
    pub reason: String,
}

/// How often one token's refusals are recorded at most.
const REFUSAL_EVERY_SECS: i64 = 3600;

/// A cached secret: the token (its `expires_at` the moment it stops working: its expiry, its
/// age limit or, for a rotated-out secret, the end of its grace period), why it stops then,
/// and its last-use cell.
#[derive(Clone)]
struct Entry {
    token: Arc<TokenRecord>,
    due: Option<i128>,
    ends_by: Ending,
    used: Arc<AtomicI64>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    Expiry,
    MaxAge,
    Rotation,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::new(TokenAges::default())
    }
}

fn nanos(t: &str) -> Option<i128> {
    hata_core::operand::parse_rfc3339(t)
}

fn rfc3339_of(nanos: i128) -> String {
    hata_store::rfc3339_nanos(nanos).unwrap_or_default()
}

fn now_nanos() -> i128 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos()
}

impl TokenCache {
    pub fn new(ages: TokenAges) -> TokenCache {
        let refusals = mpsc::channel(256);
        TokenCache {
            by_hash: ArcSwap::default(),
            changed: watch::channel(0).0,
            ages,
            uses: Mutex::default(),
            flushed: Mutex::default(),
            refusals_noted: Mutex::default(),
            refusals: refusals.0,
            refusals_rx: Mutex::new(Some(refusals.1)),
        }
    }

    pub fn ages(&self) -> TokenAges {
        self.ages
    }

    pub async fn reload(&self, store: &Store) -> StoreResult<()> {
        self.replace(store.list_tokens().await?);
        Ok(())
    }

    /// Replaces the cache's tokens (what `reload` does with the store's).
    pub fn replace(&self, tokens: Vec<TokenRecord>) {
        let mut map = FxHashMap::default();
        let mut uses = self.uses.lock().unwrap_or_else(|e| e.into_inner());
        let mut live_ids = std::collections::HashSet::new();
        for t in tokens {
            live_ids.insert(t.id.clone());
            let used = uses.entry(t.id.clone()).or_default().clone();
            let (due, aged_out) = t.due(&self.ages);
            let ends_by = if aged_out {
                Ending::MaxAge
            } else {
                Ending::Expiry
            };
            // A rotated token's previous secret is the same token, ending at the end of its
            // grace period (or sooner, with the token): the hot path checks one time.
            if let (Some(previous), Some(until)) =
                (&t.previous_secret_hash, &t.previous_valid_until)
            {
                let grace = nanos(until).unwrap_or(i128::MIN);
                let (old_due, old_end) = match due {
                    Some(d) if d < grace => (d, ends_by),
                    _ => (grace, Ending::Rotation),
                };
                // The record of the secret it stands for: streams opened with it follow it.
                let mut old = t.clone();
                old.expires_at = Some(rfc3339_of(old_due));
                old.secret_hash = previous.clone();
                old.previous_secret_hash = None;
                old.previous_valid_until = None;
                if let Some(key) = digest_of(previous) {
                    map.insert(
                        key,
                        Entry {
                            token: Arc::new(old),
                            due: Some(old_due),
                            ends_by: old_end,
                            used: used.clone(),
                        },
                    );
                }
            }
            let mut current = t;
            current.expires_at = due.map(rfc3339_of);
            if let Some(key) = digest_of(&current.secret_hash) {
                map.insert(
                    key,
                    Entry {
                        token: Arc::new(current),
                        due,
                        ends_by,
                        used,
                    },
                );
            }
        }
        uses.retain(|id, _| live_ids.contains(id));
        drop(uses);
        self.by_hash.store(Arc::new(map));
        self.changed.send_modify(|g| *g += 1);
    }

    /// The live token with this secret (and a note that it was used now).
    pub fn authenticate(&self, secret: &str) -> Option<Arc<TokenRecord>> {
        let key = hata_access::token::secret_digest(secret);
        let map = self.by_hash.load();
        let entry = map.get(&key)?;
        let now = now_nanos();
        if entry.due.is_some_and(|due| due <= now) {
            return None;
        }
        // Written once a second at most: every replica's SDKs share a few tokens, and a
        // store per request would bounce one cache line between all cores.
        let seconds = (now / 1_000_000_000) as i64;
        if entry.used.load(Ordering::Relaxed) < seconds {
            entry.used.store(seconds, Ordering::Relaxed);
        }
        Some(entry.token.clone())
    }

    /// Why a secret that `authenticate` refused is refused, if it names a token at all: for
    /// the 401's detail (a token past its expiry or its maximum age, or a rotated-out secret).
    pub fn refusal(&self, secret: &str) -> Option<String> {
        let key = hata_access::token::secret_digest(secret);
        let map = self.by_hash.load();
        let entry = map.get(&key)?;
        let at = entry.token.expires_at.clone().unwrap_or_default();
        let id = &entry.token.id;
        let why = match entry.ends_by {
            Ending::Expiry => format!("token {id} expired at {at}"),
            Ending::Rotation => format!(
                "this secret of token {id} was rotated out; it stopped working at {at}: use the new secret"
            ),
            Ending::MaxAge => format!(
                "token {id} is older than the maximum token age ({} days since it was created or last rotated) and stopped working at {at}: rotate it (POST /api/v1/tokens/{id}/rotate) or create a new one",
                self.ages.max_age.map(|a| a.as_secs() / 86_400).unwrap_or_default()
            ),
        };
        self.note_refusal(&entry.token, &why);
        Some(why)
    }

    /// Queues a refusal for the audit log, unless this token's last one was queued within
    /// the hour.
    fn note_refusal(&self, token: &TokenRecord, why: &str) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        {
            let mut noted = self
                .refusals_noted
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match noted.get(&token.id) {
                Some(last) if now - last < REFUSAL_EVERY_SECS => return,
                _ => noted.insert(token.id.clone(), now),
            };
        }
        let _ = self.refusals.try_send(Refusal {
            id: token.id.clone(),
            name: token.name.clone(),
            reason: why.to_string(),
        });
    }

    /// The live token record of the secret with this (hex) hash: event streams hold hashes,
    /// never secrets, and follow their own secret through rotations.
    pub fn live_by_hash(&self, secret_hash: &str) -> Option<Arc<TokenRecord>> {
        let map = self.by_hash.load();
        let entry = map.get(&digest_of(secret_hash)?)?;
        entry
            .due
            .is_none_or(|due| due > now_nanos())
            .then(|| entry.token.clone())
    }

    /// The live token with this id (event streams hold ids, never secrets).
    pub fn live_by_id(&self, id: &str) -> Option<Arc<TokenRecord>> {
        let tokens = self.by_hash.load();
        let now = now_nanos();
        // The current secret over one rotated out: the one that works longest.
        tokens
            .values()
            .filter(|e| e.token.id == id && e.due.is_none_or(|due| due > now))
            .max_by_key(|e| e.due.unwrap_or(i128::MAX))
            .map(|e| e.token.clone())
    }

    /// A receiver that changes after every reload.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Uses not yet stored, as `(id, RFC 3339)`, and logs a warning (once a day per token)
    /// for each used token that is due soon. Marks them stored; `unflushed` puts them back
    /// when the store refused them.
    fn take_uses(&self) -> Vec<(String, String)> {
        let uses = self.uses.lock().unwrap_or_else(|e| e.into_inner());
        let mut flushed = self.flushed.lock().unwrap_or_else(|e| e.into_inner());
        let map = self.by_hash.load();
        let now = now_nanos();
        let mut out = Vec::new();
        for (id, cell) in uses.iter() {
            let used = cell.load(Ordering::Relaxed);
            let (stored, warned) = flushed.entry(id.clone()).or_default();
            if used <= *stored {
                continue;
            }
            *stored = used;
            out.push((id.clone(), rfc3339_of(i128::from(used) * 1_000_000_000)));
            let Some(entry) = map.values().find(|e| &e.token.id == id) else {
                continue;
            };
            let standing = self.ages.standing(entry.due, now);
            if standing == Standing::DueSoon && used - *warned >= 86_400 {
                *warned = used;
                tracing::warn!(
                    token = %id,
                    name = %entry.token.name,
                    stops_at = entry.token.expires_at.as_deref().unwrap_or(""),
                    "token in use is due for rotation: it stops working soon; rotate it (POST /api/v1/tokens/{{id}}/rotate)"
                );
            }
        }
        flushed.retain(|id, _| uses.contains_key(id));
        out
    }

    /// Puts back uses the store did not take, so the next flush tries them again.
    fn unflushed(&self, uses: &[(String, String)]) {
        let mut flushed = self.flushed.lock().unwrap_or_else(|e| e.into_inner());
        for (id, _) in uses {
            if let Some((stored, _)) = flushed.get_mut(id) {
                *stored = 0;
            }
        }
    }

    /// Stores the uses since the last flush.
    pub async fn flush_uses(&self, store: &Store) {
        let uses = self.take_uses();
        if let Err(e) = store.record_token_use(&uses).await {
            tracing::warn!(error = %e, "recording tokens' last use failed; retrying later");
            self.unflushed(&uses);
        }
    }
}

/// Records queued token refusals in the audit log (`WriteOp::TokenRefused`, the token as
/// actor), off the request path. Runs once per cache (it takes the queue).
pub async fn run_refusal_recorder(tokens: Arc<TokenCache>, store: Store) {
    let receiver = tokens
        .refusals_rx
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let Some(mut receiver) = receiver else { return };
    while let Some(refusal) = receiver.recv().await {
        let meta = hata_store::WriteMeta::new(
            hata_store::Actor::token(refusal.id.clone(), refusal.name),
            "",
        );
        let op = hata_store::WriteOp::TokenRefused {
            id: refusal.id,
            reason: refusal.reason,
        };
        if let Err(e) = store.write(&meta, op).await {
            tracing::warn!(error = %e, "recording a token refusal in the audit log failed");
        }
    }
}

/// How often tokens' last use is stored.
pub const USE_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Stores tokens' last use every `USE_FLUSH_EVERY`, off the request path.
pub async fn run_use_flusher(tokens: Arc<TokenCache>, store: Store) {
    let mut every = tokio::time::interval(USE_FLUSH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        tokens.flush_uses(&store).await;
    }
}

/// A stored hex SHA-256 as the cache's key; `None` for a corrupt one (that token then never
/// authenticates).
fn digest_of(hex_hash: &str) -> Option<[u8; 32]> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(hex_hash, &mut key).ok()?;
    Some(key)
}

/// Whether a token with this expiry has expired at `now`: the store's one definition.
pub use hata_store::token_expired as is_expired;

/// The bearer token of a request (`Authorization: Bearer …` or `X-API-Key`).
pub fn presented_secret(headers: &axum::http::HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .map(str::trim);
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The authenticated caller, put in request extensions by the admin API's layer
/// (`access::authorize_route`).
#[derive(Clone)]
pub struct Caller(pub Arc<Principal>);

/// The principal behind a request's bearer credentials: 401 when there are none or they are
/// not valid (the detail says why for a JWT, or a token that ended).
pub async fn authenticate(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Principal, AppError> {
    let secret = presented_secret(headers).ok_or(AppError::Unauthorized)?;
    if let Some(verifier) = state.jwt.as_ref().filter(|_| jwt::looks_like_jwt(secret)) {
        let verified = verifier.verify(secret).await?;
        return Ok(verified.principal.clone());
    }
    let token = state
        .tokens
        .authenticate(secret)
        .ok_or_else(|| refused(&state.tokens, secret))?;
    Ok(token_principal(&token))
}

/// The 401 of a refused secret: why, when it names a token that ended (off the hot path:
/// only refused requests look).
fn refused(tokens: &TokenCache, secret: &str) -> AppError {
    match tokens.refusal(secret) {
        Some(why) => AppError::TokenRefused(why),
        None => AppError::Unauthorized,
    }
}

/// What a token may do, as a `Principal`.
pub fn token_principal(token: &TokenRecord) -> Principal {
    let projects = match (token.kind, &token.project, token.role) {
        (TokenKind::Project, Some(project), Some(role)) => {
            std::iter::once((project.clone(), role)).collect()
        }
        _ => Default::default(),
    };
    Principal {
        kind: PrincipalKind::Token(token.kind),
        id: token.id.clone(),
        name: token.name.clone(),
        admin: token.kind == TokenKind::Admin,
        projects,
        evaluates_in: token.project.clone().zip(token.environment.clone()),
        evaluates_as: match token.kind {
            TokenKind::Server => Some(EvaluationAccess::Server),
            TokenKind::Client => Some(EvaluationAccess::Client),
            _ => None,
        },
    }
}

/// A caller that may evaluate: a `server` or `client` token, or a JWT mapped to evaluate; bound
/// to one project and environment.
#[derive(Clone)]
pub enum Evaluator {
    Token(Arc<TokenRecord>),
    Jwt(Arc<jwt::VerifiedJwt>),
}

impl Evaluator {
    pub fn project(&self) -> &str {
        match self {
            Evaluator::Token(t) => t.project.as_deref().unwrap_or_default(),
            Evaluator::Jwt(j) => j.principal.evaluates_in.as_ref().map_or("", |(p, _)| p),
        }
    }

    pub fn environment(&self) -> &str {
        match self {
            Evaluator::Token(t) => t.environment.as_deref().unwrap_or_default(),
            Evaluator::Jwt(j) => j.principal.evaluates_in.as_ref().map_or("", |(_, e)| e),
        }
    }

    /// The key of rate limits and stream caps: the token id, or `jwt:<sub>`.
    pub fn key(&self) -> &String {
        match self {
            Evaluator::Token(t) => &t.id,
            Evaluator::Jwt(j) => &j.key,
        }
    }
}

/// Authenticates an evaluation request: 401 without a live token or valid JWT, 403 unless it
/// may evaluate (a token of one of `kinds`, a JWT mapped to the same access) and is bound to
/// an environment. Only a JWT whose key is not cached yet waits (for the issuer's key set).
pub async fn authenticate_evaluator(
    tokens: &TokenCache,
    jwt: Option<&Arc<jwt::JwtVerifier>>,
    headers: &axum::http::HeaderMap,
    kinds: &[TokenKind],
) -> Result<Evaluator, AppError> {
    let secret = presented_secret(headers).ok_or(AppError::Unauthorized)?;
    if let Some(verifier) = jwt.filter(|_| jwt::looks_like_jwt(secret)) {
        let verified = verifier.verify(secret).await?;
        let need = if kinds.contains(&TokenKind::Client) {
            hata_access::Need::Evaluate
        } else {
            hata_access::Need::EvaluateServer
        };
        crate::dispatch::scope::set_principal(Who::Jwt(verified.clone()));
        hata_access::authorize(&verified.principal, need)
            .map_err(|denied| AppError::Forbidden(denied.0))?;
        return Ok(Evaluator::Jwt(verified));
    }
    let token = tokens
        .authenticate(secret)
        .ok_or_else(|| refused(tokens, secret))?;
    crate::dispatch::scope::set_principal(Who::Token(token.clone()));
    if !kinds.contains(&token.kind) {
        let allowed: Vec<&str> = kinds.iter().map(|k| k.as_str()).collect();
        return Err(AppError::Forbidden(format!(
            "a {} token cannot use this endpoint; it needs a {} token",
            token.kind.as_str(),
            allowed.join(" or ")
        )));
    }
    if token.project.is_none() || token.environment.is_none() {
        return Err(AppError::Forbidden(
            "the token is not bound to a project and environment".into(),
        ));
    }
    Ok(Evaluator::Token(token))
}

#[cfg(test)]
mod tests {
    use super::is_expired;

    #[test]
    fn expiry_compares_instants_not_text() {
        let at = |s: &str| hata_core::operand::parse_rfc3339(s).expect("timestamp");
        let now = at("2030-01-01T00:00:05.300Z");
        assert!(!is_expired(None, now));
        // Text comparison gets these two wrong: 'Z' sorts after '.' and after digits.
        assert!(is_expired(Some("2030-01-01T00:00:05Z"), now));
        assert!(is_expired(Some("2030-01-01T00:00:05.29Z"), now));
        assert!(is_expired(Some("2030-01-01T00:00:05.300Z"), now));
        assert!(!is_expired(Some("2030-01-01T00:00:05.31Z"), now));
        assert!(!is_expired(
            Some("2030-01-01T09:00:05+09:00"),
            at("2030-01-01T00:00:04.999Z")
        ));
        assert!(is_expired(Some("not a time"), now));
    }
}
