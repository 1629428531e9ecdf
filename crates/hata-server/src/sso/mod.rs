//! Single sign-on with any OpenID Connect provider: the authorization code flow with PKCE
//! (`openidconnect`). `GET /auth/oidc/login` sends the browser to the provider with a fresh
//! state, nonce and PKCE challenge, kept in a short-lived signed cookie (`flow`), so the
//! callback may land on any replica; `GET /auth/oidc/callback` checks the state, exchanges the
//! code with the PKCE verifier, checks the ID token (signature, issuer, audience, expiry,
//! nonce), and opens a session for the user the identity is (`WriteOp::SsoUser`: linked by
//! (issuer, subject), created on first login).
//!
//! The provider's metadata and keys are discovered once and cached for an hour; every call to
//! the provider has a deadline, so a provider that is down costs a clear error, not a hang.

pub mod flow;

use std::time::{Duration, Instant};

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use tokio::sync::Mutex;

/// What `--oidc-*` set.
#[derive(Clone, Default)]
pub struct OidcConfig {
    /// The provider's issuer URL (discovery at `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// Where the provider sends the browser back; must be registered there. Default: this
    /// server's `/api/v1/auth/oidc/callback` (through `--public-url`, or the request's host).
    pub redirect_url: Option<String>,
    /// Scopes besides `openid` (default `email profile`).
    pub scopes: Vec<String>,
    /// The role-mapping table (`[[role_mappings]]`, shared with JWTs): what the ID token's
    /// claims make the user at each login. Empty: roles are given by hand.
    pub role_map: hata_access::claims::RoleMap,
}

impl std::fmt::Debug for OidcConfig {
    /// Never prints the client secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_url", &self.redirect_url)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

/// Why single sign-on failed; the HTTP layer answers 401 (or 503 for a provider that cannot
/// be reached), naming it.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("the OpenID provider cannot be reached: {0}")]
    Unreachable(String),
    #[error("the OpenID provider's answer is not acceptable: {0}")]
    Rejected(String),
    #[error("{0}")]
    Config(String),
}

/// How long provider metadata (endpoints, keys) is trusted before it is discovered again.
const METADATA_FOR: Duration = Duration::from_secs(3600);
/// The longest any call to the provider may take.
const DEADLINE: Duration = Duration::from_secs(5);

/// A person the provider vouches for, from the ID token.
#[derive(Debug, Clone)]
pub struct Verified {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// The provider says the person used more than one factor (`amr` has `mfa`, `otp`,
    /// `hwk` or `swk`, RFC 8176).
    pub mfa: bool,
    /// Every claim of the (verified) ID token, for the role mappings.
    pub claims: serde_json::Map<String, serde_json::Value>,
}

pub struct Sso {
    config: OidcConfig,
    issuer: IssuerUrl,
    http: openidconnect::reqwest::Client,
    metadata: Mutex<Option<(CoreProviderMetadata, Instant)>>,
}

impl Sso {
    pub fn new(config: OidcConfig) -> Result<Sso, String> {
        let issuer =
            IssuerUrl::new(config.issuer.clone()).map_err(|e| format!("oidc_issuer: {e}"))?;
        if config.client_id.is_empty() {
            return Err("oidc_client_id is not set: single sign-on needs it".into());
        }
        if let Some(url) = &config.redirect_url {
            RedirectUrl::new(url.clone()).map_err(|e| format!("oidc_redirect_url: {e}"))?;
        }
        // No redirects: a provider's endpoint that redirects is refused, not followed (SSRF).
        let http = openidconnect::reqwest::ClientBuilder::new()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(DEADLINE)
            .build()
            .map_err(|e| format!("oidc: {e}"))?;
        Ok(Sso {
            config,
            issuer,
            http,
            metadata: Mutex::new(None),
        })
    }

    /// The configuration as the audit log records it: everything but the client secret (only
    /// whether there is one).
    pub fn describe(&self) -> serde_json::Value {
        let c = &self.config;
        serde_json::json!({
            "issuer": c.issuer,
            "client_id": c.client_id,
            "client_secret_set": c.client_secret.is_some(),
            "redirect_url": c.redirect_url,
            "scopes": c.scopes,
            "role_mappings": c.role_map.rules.iter().map(|r| r.to_json()).collect::<Vec<_>>(),
        })
    }

    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// What the role mappings make of `claims`: `None` without mappings.
    pub fn roles(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<hata_store::SsoRoles> {
        use hata_access::claims::Grant;
        let rules = &self.config.role_map.rules;
        if rules.is_empty() {
            return None;
        }
        let mut roles = hata_store::SsoRoles::default();
        for rule in rules {
            match &rule.grant {
                Grant::Admin => {
                    let matched = rule.matches(claims);
                    roles.admin = Some(roles.admin.unwrap_or(false) || matched);
                }
                Grant::Role { project, role } => {
                    let entry = roles.projects.entry(project.clone()).or_insert(None);
                    if rule.matches(claims) {
                        *entry = Some(entry.map_or(*role, |held| held.max(*role)));
                    }
                }
                // Evaluation grants are for machines' JWTs, not people.
                Grant::Evaluate { .. } => {}
            }
        }
        Some(roles)
    }

    /// The configured redirect URL, or this server's callback at `base` (`scheme://host`).
    pub fn redirect_url(&self, base: &str) -> String {
        self.config
            .redirect_url
            .clone()
            .unwrap_or_else(|| format!("{base}/api/v1/auth/oidc/callback"))
    }

    async fn metadata(&self) -> Result<CoreProviderMetadata, SsoError> {
        let mut cached = self.metadata.lock().await;
        if let Some((metadata, at)) = cached.as_ref() {
            if at.elapsed() < METADATA_FOR {
                return Ok(metadata.clone());
            }
        }
        let discovered = tokio::time::timeout(
            DEADLINE,
            CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http),
        )
        .await
        .map_err(|_| SsoError::Unreachable("discovery took too long".into()))?
        .map_err(|e| SsoError::Unreachable(format!("discovery: {e}")))?;
        *cached = Some((discovered.clone(), Instant::now()));
        Ok(discovered)
    }

    /// Forgets the provider's metadata, so the next login discovers it (and its keys) again.
    async fn forget(&self) {
        *self.metadata.lock().await = None;
    }

    async fn client(
        &self,
        redirect: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        SsoError,
    > {
        let redirect =
            RedirectUrl::new(redirect.to_string()).map_err(|e| SsoError::Config(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            self.metadata().await?,
            ClientId::new(self.config.client_id.clone()),
            self.config.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }

    /// Where to send the browser, and the flow to keep until the callback.
    pub async fn begin(
        &self,
        redirect: &str,
        return_to: String,
    ) -> Result<(String, flow::Flow), SsoError> {
        let client = self.client(redirect).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let scopes = if self.config.scopes.is_empty() {
            vec!["email".to_string(), "profile".to_string()]
        } else {
            self.config.scopes.clone()
        };
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in scopes {
            request = request.add_scope(Scope::new(scope));
        }
        let (url, state, nonce) = request.url();
        let flow = flow::Flow {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            return_to,
            expires: time::OffsetDateTime::now_utc().unix_timestamp() + flow::LIFETIME,
        };
        Ok((url.to_string(), flow))
    }

    /// Exchanges `code` and checks the ID token against the flow.
    pub async fn finish(
        &self,
        redirect: &str,
        code: String,
        flow: &flow::Flow,
    ) -> Result<Verified, SsoError> {
        let client = self.client(redirect).await?;
        let exchange = client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| SsoError::Config(format!("the provider has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()));
        let response = tokio::time::timeout(DEADLINE, exchange.request_async(&self.http))
            .await
            .map_err(|_| SsoError::Unreachable("the token exchange took too long".into()))?
            .map_err(|e| SsoError::Rejected(format!("token exchange: {e}")))?;
        let id_token = response
            .id_token()
            .ok_or_else(|| SsoError::Rejected("no ID token in the token response".into()))?;
        let verifier = client.id_token_verifier();
        let claims = match id_token.claims(&verifier, &Nonce::new(flow.nonce.clone())) {
            Ok(claims) => claims,
            Err(e) => {
                // Perhaps the provider rotated its keys: the next login discovers them again.
                self.forget().await;
                return Err(SsoError::Rejected(format!("ID token: {e}")));
            }
        };
        // The verified token's own payload: custom claims (groups, roles) the typed claims
        // leave out.
        let all_claims = id_token
            .to_string()
            .split('.')
            .nth(1)
            .and_then(|p| {
                use base64::Engine;
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let mfa = claims.auth_method_refs().is_some_and(|amr| {
            amr.iter()
                .any(|m| matches!(m.as_str(), "mfa" | "otp" | "hwk" | "swk"))
        });
        Ok(Verified {
            subject: claims.subject().as_str().to_string(),
            email: claims.email().map(|e| e.as_str().to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.as_str().to_string()),
            mfa,
            claims: all_claims,
        })
    }
}
