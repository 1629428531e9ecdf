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

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::http::header;
use hata_access::{EvaluationAccess, Principal, PrincipalKind};
use hata_store::{Store, StoreResult, TokenKind, TokenRecord};
use rustc_hash::FxHashMap;
use tokio::sync::watch;

use crate::error::AppError;
use crate::AppState;

/// Token hash → token. Swapped whole on every change.
pub struct TokenCache {
    /// Keyed by the raw SHA-256 (not its hex): the hot path hashes and looks up, nothing more.
    /// FxHash over a SHA-256 is enough: the keys are already uniformly spread, and callers
    /// cannot choose what is inserted.
    by_hash: ArcSwap<FxHashMap<[u8; 32], Arc<TokenRecord>>>,
    /// Bumped after every reload: open event streams re-check their token then.
    changed: watch::Sender<u64>,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache {
            by_hash: ArcSwap::default(),
            changed: watch::channel(0).0,
        }
    }
}

impl TokenCache {
    pub async fn reload(&self, store: &Store) -> StoreResult<()> {
        self.replace(store.list_tokens().await?);
        Ok(())
    }

    /// The live (unexpired) token with this secret.
    pub fn authenticate(&self, secret: &str) -> Option<Arc<TokenRecord>> {
        let key = hata_access::token::secret_digest(secret);
        let token = self.by_hash.load().get(&key)?.clone();
        // Most tokens never expire: no clock read for them.
        let expired = token.expires_at.is_some()
            && is_expired(
                token.expires_at.as_deref(),
                time::OffsetDateTime::now_utc().unix_timestamp_nanos(),
            );
        (!expired).then_some(token)
    }

    /// Replaces the cache's tokens (what `reload` does with the store's).
    pub fn replace(&self, tokens: Vec<TokenRecord>) {
        let mut map = FxHashMap::default();
        for t in tokens {
            // A rotated token's previous secret is the same token, expiring at the end of its
            // grace period (or its own expiry, if sooner): the hot path checks one expiry.
            if let (Some(previous), Some(until)) =
                (&t.previous_secret_hash, &t.previous_valid_until)
            {
                let mut old = t.clone();
                old.expires_at = Some(earlier(t.expires_at.as_deref(), until).to_string());
                if let Some(key) = digest_of(previous) {
                    map.insert(key, Arc::new(old));
                }
            }
            if let Some(key) = digest_of(&t.secret_hash) {
                map.insert(key, Arc::new(t));
            }
        }
        self.by_hash.store(Arc::new(map));
        self.changed.send_modify(|g| *g += 1);
    }

    /// The live token with this id (event streams hold ids, never secrets).
    pub fn live_by_id(&self, id: &str) -> Option<Arc<TokenRecord>> {
        let tokens = self.by_hash.load();
        let token = tokens.values().find(|t| t.id == id)?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        (!is_expired(token.expires_at.as_deref(), now)).then(|| token.clone())
    }

    /// A receiver that changes after every reload.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// A stored hex SHA-256 as the cache's key; `None` for a corrupt one (that token then never
/// authenticates).
fn digest_of(hex_hash: &str) -> Option<[u8; 32]> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(hex_hash, &mut key).ok()?;
    Some(key)
}

/// The earlier of an optional expiry and a time, compared as instants.
fn earlier<'a>(expires_at: Option<&'a str>, until: &'a str) -> &'a str {
    let at = |t: &str| hata_core::operand::parse_rfc3339(t);
    match expires_at {
        Some(e) if at(e).zip(at(until)).is_some_and(|(e, u)| e < u) => e,
        _ => until,
    }
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
/// not valid (for a JWT, the detail says why).
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
        .ok_or(AppError::Unauthorized)?;
    Ok(token_principal(&token))
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
        hata_access::authorize(&verified.principal, need)
            .map_err(|denied| AppError::Forbidden(denied.0))?;
        return Ok(Evaluator::Jwt(verified));
    }
    let token = tokens.authenticate(secret).ok_or(AppError::Unauthorized)?;
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
