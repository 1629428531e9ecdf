//! Cookie sessions: reading the session cookie, turning it into the user's `Principal`, the
//! CSRF and same-origin checks on cookie-authenticated writes, and the `Set-Cookie` values.
//!
//! A session is looked up in the store on every request (the admin API and the UI, not the
//! evaluation path): a logout, a disabled user or a changed role is then effective on every
//! replica at once, with nothing to invalidate. The last-seen time is written at most once a
//! minute per session, for the idle timeout.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use hata_access::session::{same_secret, COOKIE, CSRF_HEADER};
use hata_access::totp::MfaPolicy;
use hata_access::{Principal, PrincipalKind};
use hata_store::SessionUser;

use super::identity::Identity;
use crate::error::AppError;
use crate::forwarded::Origin;
use crate::routes::EvalSettings;
use crate::AppState;

/// The session behind a cookie-authenticated request, put in its extensions next to `Caller`.
#[derive(Clone)]
pub struct SessionCaller {
    pub id: String,
    pub csrf_token: String,
    pub email: String,
    /// The user has two-factor authentication on.
    pub mfa: bool,
    /// An admin acting without its admin rights until it turns MFA on (`MfaPolicy::admins`).
    pub admin_needs_mfa: bool,
}

/// How stale `last_seen_at` may get before a request writes it again.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// The session cookie's secret, if the request carries one.
pub fn cookie_secret(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE)
}

/// The value of the cookie `name`, if the request carries a non-empty one.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value.trim())
        .filter(|v| !v.is_empty())
}

fn nanos(t: &str) -> i128 {
    hata_core::operand::parse_rfc3339(t).unwrap_or_default()
}

/// The user and session behind a cookie's secret: 401 unless the session exists, is alive
/// (idle and absolute limits) and its user is enabled.
pub async fn authenticate(
    state: &AppState,
    identity: &Identity,
    secret: &str,
) -> Result<(Principal, SessionCaller), AppError> {
    let hash = hata_access::token::hash_secret(secret);
    let Some(found) = state.store.session_user(&hash).await? else {
        return Err(AppError::Unauthorized);
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let last_seen = nanos(&found.last_seen_at);
    if found.user.disabled
        || !identity
            .sessions
            .alive(nanos(&found.created_at), last_seen, now)
    {
        return Err(AppError::Unauthorized);
    }
    if now - last_seen >= TOUCH_EVERY.as_nanos() as i128 {
        // Telemetry: a failure costs at most an earlier idle expiry, never the request.
        if let Err(e) = state
            .store
            .touch_session(&found.session_id, &hata_store::now_rfc3339())
            .await
        {
            tracing::warn!(error = %e, "recording a session's last use failed");
        }
    }
    Ok(principal_of(found, &identity.mfa))
}

fn principal_of(found: SessionUser, mfa: &MfaPolicy) -> (Principal, SessionCaller) {
    // The session's own second factor, not the user's: a single sign-on login skips the
    // authenticator.
    let admin = found.user.admin && mfa.admin_acts_as_admin(found.mfa);
    let principal = Principal {
        kind: PrincipalKind::User,
        id: found.user.id.clone(),
        name: found.user.name.clone(),
        admin,
        // An admin needs no memberships; keeping them would only make lists differ.
        projects: if admin {
            Default::default()
        } else {
            found.projects
        },
        evaluates_in: None,
        evaluates_as: None,
    };
    let session = SessionCaller {
        id: found.session_id,
        csrf_token: found.csrf_token,
        email: found.user.email,
        mfa: found.mfa,
        admin_needs_mfa: found.user.admin && !admin,
    };
    (principal, session)
}

/// Whether `method` changes something (and so needs the CSRF checks under a cookie).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// A cookie-authenticated write must carry the session's CSRF token in `X-CSRF-Token`, and come
/// from this server's origin when the browser names one.
pub fn check_csrf(parts: &Parts, session: &SessionCaller) -> Result<(), AppError> {
    let given = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !same_secret(given, &session.csrf_token) {
        return Err(AppError::Forbidden(
            "a cookie-authenticated write needs the session's CSRF token in X-CSRF-Token \
             (from the login response or GET /api/v1/auth/me)"
                .into(),
        ));
    }
    check_origin(parts)
}

/// 403 when the request's `Origin` (sent by browsers) is not this server's own.
pub fn check_origin(parts: &Parts) -> Result<(), AppError> {
    let Some(origin) = parts.headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let own = own_origin(parts);
    match (origin.to_str(), own) {
        (Ok(given), Some(own)) if given.eq_ignore_ascii_case(&own) => Ok(()),
        (given, _) => Err(AppError::Forbidden(format!(
            "cross-origin request refused: Origin {:?} is not this server's",
            given.unwrap_or("(not text)")
        ))),
    }
}

/// `scheme://host[:port]` as this server is reached: `--public-url`'s, or the request's own
/// (through trusted proxies).
fn own_origin(parts: &Parts) -> Option<String> {
    let settings = parts.extensions.get::<std::sync::Arc<EvalSettings>>()?;
    if let Some(url) = &settings.public_url {
        let (scheme, rest) = url.split_once("://")?;
        let host = rest.split('/').next()?;
        return Some(format!("{scheme}://{host}"));
    }
    let origin = request_origin(parts, settings);
    Some(format!("{}://{}", origin.scheme, origin.host?))
}

fn request_origin(parts: &Parts, settings: &EvalSettings) -> Origin {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    Origin::of(
        peer,
        &parts.uri,
        &parts.headers,
        &settings.trusted_proxies,
        settings.scheme,
    )
}

/// Where the request came from, as far as it can be believed.
pub fn origin_of(parts: &Parts) -> Option<Origin> {
    let settings = parts.extensions.get::<std::sync::Arc<EvalSettings>>()?;
    Some(request_origin(parts, settings))
}

/// The client's address as the log and the budgets name it (through trusted proxies), or
/// `unknown`.
pub fn client_ip(parts: &Parts) -> String {
    name_ip(origin_of(parts).and_then(|o| o.client_ip))
}

fn name_ip(ip: Option<std::net::IpAddr>) -> String {
    ip.map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Where a login or logout comes from: refused (403) when a browser names another origin,
/// else the client's address (for the record and the log) and whether it came over HTTPS (the
/// cookie's `Secure`).
pub struct Source {
    pub client_ip: Option<std::net::IpAddr>,
    pub https: bool,
    /// `scheme://host` the request reached this server at (through trusted proxies).
    pub reached_at: Option<String>,
}

impl Source {
    /// The client's address as the log and the change record name it, or `unknown`.
    pub fn client(&self) -> String {
        name_ip(self.client_ip)
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Source {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        check_origin(parts)?;
        let origin = origin_of(parts);
        Ok(Source {
            client_ip: origin.as_ref().and_then(|o| o.client_ip),
            https: origin.as_ref().is_some_and(|o| o.scheme == "https"),
            reached_at: origin.and_then(|o| Some(format!("{}://{}", o.scheme, o.host?))),
        })
    }
}

/// The `Set-Cookie` of a new session: `Secure` when the request came over HTTPS (directly or
/// through a trusted proxy), for the session's absolute lifetime.
pub fn set_cookie(secret: &str, secure: bool, max_age: Duration) -> HeaderValue {
    let value = format!(
        "{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    HeaderValue::from_static(if secure {
        "hata_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Secure"
    } else {
        "hata_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; hata_session=abc ; b=2"),
        );
        assert_eq!(cookie_secret(&headers), Some("abc"));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("hata_session_x=1; hata_session="),
        );
        assert_eq!(cookie_secret(&headers), None);
    }

    #[test]
    fn cookies_are_http_only_lax_and_secure_under_tls() {
        let c = set_cookie("s3cr3t", true, Duration::from_secs(60));
        assert_eq!(
            c,
            "hata_session=s3cr3t; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Secure"
        );
        let c = set_cookie("s3cr3t", false, Duration::from_secs(60));
        assert!(!c.to_str().unwrap().contains("Secure"));
    }
}
