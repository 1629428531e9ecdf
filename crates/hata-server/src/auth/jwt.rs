//! JWT bearer tokens from one configured issuer: signature checked against the issuer's key
//! set (JWKS), fetched over HTTP(S) and cached; the claims checked and mapped to a
//! `Principal` by `hata_access::claims`.
//!
//! - Only asymmetric algorithms are ever accepted (`RS*`, `PS*`, `ES256/384`, `EdDSA`): `none`
//!   and `HS*` are refused before any key is looked at, symmetric (`oct`) keys in a key set
//!   are ignored, and a key is only used with the algorithms of its own type (and its `alg`,
//!   when it names one). So a token "signed" with the public key as an HMAC secret never
//!   verifies.
//! - The key set is fetched on first use, again in the background when older than
//!   `max_key_age`, and on a token with an unknown `kid` — at most once per
//!   `refresh_interval` (so garbage key ids cannot make us hammer the issuer). Each fetch has
//!   a hard deadline (`fetch_timeout`); a request whose key cannot be had gets a 401 saying
//!   so, never a 5xx or a hang.
//! - Verified tokens are cached by the SHA-256 of the token until they expire (bounded), so a
//!   repeated token costs a hash and a lookup, not a signature check.
//!
//! Not here: what the claims grant (`hata_access::claims`), and what a route needs
//! (`hata_access::authorize`). The token itself is never logged nor put in an error.

use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hata_access::claims::{check_registered, ClaimsError, Expected, RoleMap};
use hata_access::Principal;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

/// The asymmetric algorithms accepted by default.
pub const DEFAULT_ALGORITHMS: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::ES256,
    Algorithm::EdDSA,
    Algorithm::PS256,
];

/// The most bytes of a key set or discovery document read.
const MAX_DOCUMENT: usize = 1 << 20;

/// What `--jwt-*` and the `role_mappings` of the configuration file set.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// `iss` must equal this.
    pub issuer: String,
    /// `aud` must be or contain this.
    pub audience: String,
    /// Where the key set is; `None`: the `jwks_uri` of the issuer's
    /// `/.well-known/openid-configuration`.
    pub jwks_url: Option<String>,
    /// Accepted `alg`s; never `HS*` (`new` refuses them).
    pub algorithms: Vec<Algorithm>,
    /// Clock difference tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    pub role_map: RoleMap,
    /// The deadline of one fetch (discovery and key set together).
    pub fetch_timeout: Duration,
    /// The least time between two fetches of the key set.
    pub refresh_interval: Duration,
    /// A key set older than this is fetched again in the background.
    pub max_key_age: Duration,
    /// Verified tokens kept.
    pub cache_size: usize,
}

impl JwtConfig {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> JwtConfig {
        JwtConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_url: None,
            algorithms: DEFAULT_ALGORITHMS.to_vec(),
            leeway: Duration::from_secs(60),
            role_map: RoleMap::default(),
            fetch_timeout: Duration::from_secs(3),
            refresh_interval: Duration::from_secs(30),
            max_key_age: Duration::from_secs(15 * 60),
            cache_size: 10_000,
        }
    }
}

/// `RS256`, `ES256`, … as configured; `HS*` and `none` are refused.
pub fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    let alg = Algorithm::from_str(name).map_err(|_| {
        format!("unknown JWT algorithm {name:?} (use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA)")
    })?;
    if family(alg) == Family::Hmac {
        return Err(format!(
            "JWT algorithm {name} is symmetric: only the issuer's public keys are trusted, so \
             only RS*, PS*, ES* and EdDSA are accepted"
        ));
    }
    Ok(alg)
}

/// Why a JWT was refused: the detail of the 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    #[error("the JWT's algorithm {0:?} is not allowed (allowed: {1})")]
    AlgorithmNotAllowed(String, String),
    #[error("the JWT's key id (kid) is not among the issuer's signing keys")]
    UnknownKey,
    #[error("the issuer's signing keys are unavailable; try again later")]
    KeysUnavailable,
    #[error("the JWT's signature does not verify")]
    BadSignature,
    #[error("{0}")]
    Claims(#[from] ClaimsError),
}

/// A verified token: who it is and until when.
#[derive(Debug)]
pub struct VerifiedJwt {
    /// Kind `Jwt`, roles from the role map.
    pub principal: Principal,
    /// `jwt:<sub>`: the key of rate limits and stream caps (never equal to a token id).
    pub key: String,
    /// `exp` (Unix seconds).
    pub expires: i64,
    /// `exp` plus the leeway: when the cache drops it.
    valid_until: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

fn family(alg: Algorithm) -> Family {
    use Algorithm::*;
    match alg {
        HS256 | HS384 | HS512 => Family::Hmac,
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Family::Rsa,
        ES256 | ES384 => Family::Ec,
        EdDSA => Family::Ed,
    }
}

/// One usable key of the set, and the algorithms it may verify.
struct SigningKey {
    kid: Option<String>,
    key: DecodingKey,
    algorithms: Vec<Algorithm>,
}

/// The key set as last fetched.
#[derive(Default)]
struct KeySet {
    keys: Vec<SigningKey>,
    fetched: Option<Instant>,
}

impl KeySet {
    /// Keys that may verify `alg` for a token with `kid` (any key of the type when the token
    /// names none).
    fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'a SigningKey> + 'a {
        self.keys.iter().filter(move |k| {
            k.algorithms.contains(&alg) && (kid.is_none() || k.kid.as_deref() == kid)
        })
    }
}

/// The usable keys of a JWKS document; keys that cannot be used (symmetric, for encryption,
/// unknown types or curves, malformed) are skipped, not fatal.
fn parse_key_set(doc: &[u8]) -> Result<Vec<SigningKey>, String> {
    #[derive(serde::Deserialize)]
    struct Doc {
        keys: Vec<Value>,
    }
    let doc: Doc = serde_json::from_slice(doc).map_err(|e| format!("not a JWKS document: {e}"))?;
    Ok(doc
        .keys
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Jwk>(v).ok())
        .filter_map(|jwk| {
            if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
                return None;
            }
            let algorithms: Vec<Algorithm> = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => vec![
                    Algorithm::RS256,
                    Algorithm::RS384,
                    Algorithm::RS512,
                    Algorithm::PS256,
                    Algorithm::PS384,
                    Algorithm::PS512,
                ],
                AlgorithmParameters::EllipticCurve(p) => match p.curve {
                    EllipticCurve::P256 => vec![Algorithm::ES256],
                    EllipticCurve::P384 => vec![Algorithm::ES384],
                    _ => return None,
                },
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                    vec![Algorithm::EdDSA]
                }
                _ => return None,
            };
            // A key that names its algorithm is used with that one only.
            let algorithms: Vec<Algorithm> = match jwk.common.key_algorithm {
                Some(named) => {
                    let named = Algorithm::from_str(&format!("{named:?}")).ok()?;
                    algorithms.into_iter().filter(|a| *a == named).collect()
                }
                None => algorithms,
            };
            let key = DecodingKey::from_jwk(&jwk).ok()?;
            (!algorithms.is_empty()).then(|| SigningKey {
                kid: jwk.common.key_id.clone(),
                key,
                algorithms,
            })
        })
        .collect())
}

/// Verified tokens by the SHA-256 of the token.
struct Verified {
    by_digest: FxHashMap<[u8; 32], Arc<VerifiedJwt>>,
}

struct FetchState {
    /// When the last fetch was started.
    last: Option<Instant>,
    /// Whether it failed.
    failed: bool,
    /// The discovered `jwks_uri`.
    discovered: Option<String>,
}

/// The JWT verifier of one issuer; cheap to share (`Arc`).
pub struct JwtVerifier {
    config: JwtConfig,
    allowed: String,
    http: reqwest::Client,
    keys: ArcSwap<KeySet>,
    fetch: tokio::sync::Mutex<FetchState>,
    verified: RwLock<Verified>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .field("jwks_url", &self.config.jwks_url)
            .finish_non_exhaustive()
    }
}

/// Whether a bearer secret has the shape of a JWT: three base64url segments joined by dots.
/// hata's own tokens (`hata_<kind>_…`) never contain a dot.
pub fn looks_like_jwt(secret: &str) -> bool {
    let mut dots = 0;
    for b in secret.bytes() {
        match b {
            b'.' => dots += 1,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => {}
            _ => return false,
        }
    }
    dots == 2
}

impl JwtVerifier {
    /// Checks the configuration; the message names the setting that is wrong.
    pub fn new(config: JwtConfig) -> Result<JwtVerifier, String> {
        if config.issuer.trim().is_empty() {
            return Err("--jwt-issuer is empty".into());
        }
        if config.audience.trim().is_empty() {
            return Err("--jwt-audience is empty: a JWT must name this server as audience".into());
        }
        if config.algorithms.is_empty() {
            return Err("--jwt-algorithms lists no algorithm".into());
        }
        if let Some(alg) = config
            .algorithms
            .iter()
            .find(|a| family(**a) == Family::Hmac)
        {
            return Err(format!(
                "--jwt-algorithms: {alg:?} is symmetric; only RS*, PS*, ES* and EdDSA are accepted"
            ));
        }
        let url = config
            .jwks_url
            .clone()
            .unwrap_or_else(|| config.issuer.clone());
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(format!(
                "{} must be an http:// or https:// URL",
                if config.jwks_url.is_some() {
                    "--jwt-jwks-url"
                } else {
                    "--jwt-issuer (the key set is found through its OpenID configuration)"
                }
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(config.fetch_timeout)
            .connect_timeout(config.fetch_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| format!("the HTTP client for the JWT key set: {e}"))?;
        let allowed = config
            .algorithms
            .iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(JwtVerifier {
            config,
            allowed,
            http,
            keys: ArcSwap::default(),
            fetch: tokio::sync::Mutex::new(FetchState {
                last: None,
                failed: false,
                discovered: None,
            }),
            verified: RwLock::new(Verified {
                by_digest: FxHashMap::default(),
            }),
        })
    }

    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// The verified token, from the cache when it was verified before.
    pub async fn verify(self: &Arc<Self>, token: &str) -> Result<Arc<VerifiedJwt>, JwtError> {
        let digest = hata_access::token::secret_digest(token);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        if let Some(hit) = self.cached(&digest, now) {
            return Ok(hit);
        }
        let verified = Arc::new(self.verify_uncached(token, now).await?);
        self.remember(digest, verified.clone(), now);
        Ok(verified)
    }

    fn cached(&self, digest: &[u8; 32], now: i64) -> Option<Arc<VerifiedJwt>> {
        let verified = self.verified.read().unwrap_or_else(|e| e.into_inner());
        verified
            .by_digest
            .get(digest)
            .filter(|v| now < v.valid_until)
            .cloned()
    }

    fn remember(&self, digest: [u8; 32], v: Arc<VerifiedJwt>, now: i64) {
        let mut verified = self.verified.write().unwrap_or_else(|e| e.into_inner());
        let map = &mut verified.by_digest;
        if map.len() >= self.config.cache_size {
            map.retain(|_, v| now < v.valid_until);
        }
        if map.len() >= self.config.cache_size {
            // Full of live tokens: make room for this one by dropping any other.
            if let Some(k) = map.keys().next().copied() {
                map.remove(&k);
            }
        }
        if self.config.cache_size > 0 {
            map.insert(digest, v);
        }
    }

    async fn verify_uncached(
        self: &Arc<Self>,
        token: &str,
        now: i64,
    ) -> Result<VerifiedJwt, JwtError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header = decode_object(header)?;
        let alg_name = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(JwtError::Malformed)?;
        let alg = Algorithm::from_str(alg_name)
            .ok()
            .filter(|a| self.config.algorithms.contains(a))
            .ok_or_else(|| JwtError::AlgorithmNotAllowed(alg_name.into(), self.allowed.clone()))?;
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(kid)) => Some(kid.as_str()),
            Some(_) => return Err(JwtError::Malformed),
        };
        let message = &token[..header_len(token)];
        self.refresh_if_old();
        let mut result = self.check_signature(kid, alg, message, signature);
        if result == Err(JwtError::UnknownKey) && self.refresh().await.is_err() {
            result = Err(JwtError::KeysUnavailable);
        }
        if result == Err(JwtError::UnknownKey) {
            result = self.check_signature(kid, alg, message, signature);
        }
        result?;
        let claims = decode_object(payload)?;
        let expected = Expected {
            issuer: &self.config.issuer,
            audience: &self.config.audience,
            leeway: self.config.leeway.as_secs(),
        };
        let expires = check_registered(&claims, &expected, now)?;
        let principal = self.config.role_map.principal(&claims)?;
        Ok(VerifiedJwt {
            key: format!("jwt:{}", principal.id),
            principal,
            expires,
            valid_until: expires.saturating_add(expected.leeway.try_into().unwrap_or(i64::MAX)),
        })
    }

    /// `Ok` when a key of the set verifies the signature.
    fn check_signature(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        message: &str,
        signature: &str,
    ) -> Result<(), JwtError> {
        let keys = self.keys.load();
        let mut any = false;
        for key in keys.candidates(kid, alg) {
            any = true;
            if jsonwebtoken::crypto::verify(signature, message.as_bytes(), &key.key, alg)
                .unwrap_or(false)
            {
                return Ok(());
            }
        }
        Err(if any {
            JwtError::BadSignature
        } else {
            JwtError::UnknownKey
        })
    }

    /// Fetches the key set unless one was fetched (or tried) within `refresh_interval`;
    /// `Err` when there is no key set to use because the fetch failed.
    async fn refresh(&self) -> Result<(), ()> {
        let mut state = self.fetch.lock().await;
        if let Some(last) = state.last {
            if last.elapsed() < self.config.refresh_interval {
                return if state.failed { Err(()) } else { Ok(()) };
            }
        }
        state.last = Some(Instant::now());
        let fetched = tokio::time::timeout(self.config.fetch_timeout, self.fetch_keys(&mut state))
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no answer within {} ms",
                    self.config.fetch_timeout.as_millis()
                ))
            });
        match fetched {
            Ok(keys) => {
                tracing::info!(
                    issuer = %self.config.issuer,
                    keys = keys.len(),
                    "fetched the JWT issuer's key set"
                );
                self.keys.store(Arc::new(KeySet {
                    keys,
                    fetched: Some(Instant::now()),
                }));
                state.failed = false;
                Ok(())
            }
            Err(e) => {
                tracing::warn!(issuer = %self.config.issuer, error = %e, "fetching the JWT issuer's key set failed");
                state.failed = true;
                Err(())
            }
        }
    }

    /// A background refresh when the key set is older than `max_key_age`, so keys the issuer
    /// dropped stop being trusted.
    fn refresh_if_old(self: &Arc<Self>) {
        let stale = self
            .keys
            .load()
            .fetched
            .is_some_and(|at| at.elapsed() >= self.config.max_key_age);
        if stale {
            let this = self.clone();
            tokio::spawn(async move {
                let _ = this.refresh().await;
            });
        }
    }

    async fn fetch_keys(&self, state: &mut FetchState) -> Result<Vec<SigningKey>, String> {
        let url = match (&self.config.jwks_url, &state.discovered) {
            (Some(url), _) | (None, Some(url)) => url.clone(),
            (None, None) => {
                let at = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim_end_matches('/')
                );
                let doc = self.get(&at).await?;
                let uri = serde_json::from_slice::<Value>(&doc)
                    .ok()
                    .and_then(|d| d.get("jwks_uri")?.as_str().map(str::to_string))
                    .ok_or_else(|| format!("{at} names no jwks_uri"))?;
                state.discovered = Some(uri.clone());
                uri
            }
        };
        parse_key_set(&self.get(&url).await?).map_err(|e| format!("{url}: {e}"))
    }

    /// The body of a GET, at most `MAX_DOCUMENT` bytes.
    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut response = self
            .http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| e.without_url().to_string())
            .map_err(|e| format!("{url}: {e}"))?;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("{url}: {}", e.without_url()))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT {
                return Err(format!("{url}: larger than {MAX_DOCUMENT} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// The length of `header.payload`, the signed part.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

fn decode_object(segment: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| JwtError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed),
    }
}

/// For tests and benchmarks: keys given instead of fetched.
impl JwtVerifier {
    pub fn set_key_set(&self, jwks: &[u8]) -> Result<usize, String> {
        let keys = parse_key_set(jwks)?;
        let n = keys.len();
        self.keys.store(Arc::new(KeySet {
            keys,
            fetched: Some(Instant::now()),
        }));
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_asymmetric_algorithms_are_configurable() {
        for ok in ["RS256", "PS512", "ES256", "ES384", "EdDSA"] {
            assert!(parse_algorithm(ok).is_ok(), "{ok}");
        }
        for bad in ["HS256", "HS384", "HS512", "none", "None", "rs256", ""] {
            assert!(parse_algorithm(bad).is_err(), "{bad}");
        }
        let mut config = JwtConfig::new("https://id.example.com", "hata");
        config.algorithms.push(Algorithm::HS256);
        assert!(JwtVerifier::new(config).unwrap_err().contains("symmetric"));
        let config = JwtConfig::new("id.example.com", "hata");
        assert!(JwtVerifier::new(config).is_err());
        let config = JwtConfig::new("https://id.example.com", "");
        assert!(JwtVerifier::new(config).is_err());
    }

    #[test]
    fn the_jwt_shape() {
        assert!(looks_like_jwt("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"));
        assert!(looks_like_jwt("a.b."));
        assert!(!looks_like_jwt("hata_server_abcdef"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a.b=.c"));
        assert!(!looks_like_jwt("a.b c.d"));
    }

    #[test]
    fn key_sets_keep_only_asymmetric_signing_keys() {
        let jwks = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "X25519", "kid": "x", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "EC", "crv": "P-256", "kid": "ec",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
             "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "RSA", "kid": "rsa-rs256", "alg": "RS256", "n": "sXch", "e": "AQAB"},
            {"kty": "what", "kid": "?"},
            "not even an object"
        ]});
        let keys = parse_key_set(jwks.to_string().as_bytes()).unwrap();
        let kids: Vec<(&str, Vec<Algorithm>)> = keys
            .iter()
            .map(|k| (k.kid.as_deref().unwrap(), k.algorithms.clone()))
            .collect();
        assert_eq!(
            kids,
            vec![
                ("ed", vec![Algorithm::EdDSA]),
                ("ec", vec![Algorithm::ES256]),
                ("rsa-rs256", vec![Algorithm::RS256]),
            ]
        );
        assert!(parse_key_set(b"{}").is_err());
        assert!(parse_key_set(b"<html>").is_err());
    }
}
