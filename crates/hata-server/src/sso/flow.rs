//! The login flow between `GET /auth/oidc/login` and the callback: state (against CSRF), nonce
//! (against ID token replay), the PKCE verifier and where to go afterwards. It travels in an
//! `HttpOnly`, `SameSite=Lax` cookie signed with the server's key (the same on every replica),
//! scoped to the callback's path and valid for `LIFETIME`.

use axum::http::{HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The flow cookie's name.
pub const COOKIE: &str = "hata_oidc";
/// Seconds a login at the provider may take.
pub const LIFETIME: i64 = 600;
const PATH: &str = "/api/v1/auth/oidc";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// A path on this server (`/…`), never another site.
    pub return_to: String,
    /// Unix seconds.
    pub expires: i64,
}

/// A `return_to` the login may go back to: a path on this server, else `/`.
pub fn safe_return_to(given: Option<&str>) -> String {
    match given {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/".to_string(),
    }
}

impl Flow {
    fn payload(&self) -> String {
        [
            "1",
            &self.state,
            &self.nonce,
            &self.verifier,
            &URL_SAFE_NO_PAD.encode(&self.return_to),
            &self.expires.to_string(),
        ]
        .join("|")
    }

    fn parse(payload: &[u8]) -> Option<Flow> {
        let text = std::str::from_utf8(payload).ok()?;
        let [version, state, nonce, verifier, return_to, expires] =
            text.split('|').collect::<Vec<_>>()[..]
        else {
            return None;
        };
        (version == "1").then_some(())?;
        Some(Flow {
            state: state.to_string(),
            nonce: nonce.to_string(),
            verifier: verifier.to_string(),
            return_to: String::from_utf8(URL_SAFE_NO_PAD.decode(return_to).ok()?).ok()?,
            expires: expires.parse().ok()?,
        })
    }

    /// The `Set-Cookie` that carries this flow.
    pub fn cookie(&self, signer: &hata_serving::ticket::Signer, secure: bool) -> HeaderValue {
        let value = format!(
            "{COOKIE}={}; Path={PATH}; HttpOnly; SameSite=Lax; Max-Age={LIFETIME}{}",
            signer.sign(self.payload().as_bytes()),
            if secure { "; Secure" } else { "" }
        );
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The flow in the request's cookie, if it is ours, intact and not expired.
    pub fn from_request(
        headers: &HeaderMap,
        signer: &hata_serving::ticket::Signer,
        now: i64,
    ) -> Option<Flow> {
        let value = crate::auth::session::cookie(headers, COOKIE)?;
        let flow = Flow::parse(&signer.open(value).ok()?)?;
        (flow.expires > now).then_some(flow)
    }
}

/// The `Set-Cookie` that removes the flow cookie.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    let value = format!(
        "{COOKIE}=; Path={PATH}; HttpOnly; SameSite=Lax; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hata_serving::ticket::Signer;

    fn flow() -> Flow {
        Flow {
            state: "s".into(),
            nonce: "n".into(),
            verifier: "v".into(),
            return_to: "/flags?x=1|2".into(),
            expires: 2_000,
        }
    }

    fn request_with(cookie: &HeaderValue) -> HeaderMap {
        let pair = cookie
            .to_str()
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .to_string();
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_str(&format!("other=1; {pair}")).expect("header"),
        );
        headers
    }

    #[test]
    fn a_flow_comes_back_only_signed_by_us_and_in_time() {
        let signer = Signer::new(b"key");
        let cookie = flow().cookie(&signer, true);
        let text = cookie.to_str().expect("text");
        for attribute in [
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/api/v1/auth/oidc",
        ] {
            assert!(text.contains(attribute), "{text}");
        }
        let headers = request_with(&cookie);
        assert_eq!(Flow::from_request(&headers, &signer, 1_000), Some(flow()));
        assert_eq!(
            Flow::from_request(&headers, &signer, 2_000),
            None,
            "expired"
        );
        assert_eq!(
            Flow::from_request(&headers, &Signer::new(b"another key"), 1_000),
            None
        );
    }

    #[test]
    fn only_paths_on_this_server_are_returned_to() {
        assert_eq!(safe_return_to(Some("/flags")), "/flags");
        for bad in ["https://evil.example", "//evil.example", "/\\evil", "flags"] {
            assert_eq!(safe_return_to(Some(bad)), "/", "{bad}");
        }
        assert_eq!(safe_return_to(None), "/");
    }
}
