//! Request extractors with problem+json errors: a JSON body (400 on bad syntax, 422 naming the
//! field on bad content, 413 over the limit), `If-Match`, path parameters and query strings
//! (400), list paging.
//!
//! Path parameters and query values that decode to text with U+0000 are a 400 naming the
//! parameter: PostgreSQL cannot hold U+0000 in text (a query binding it fails), so nothing
//! stored can be named by one, and SQLite must answer the same.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use hata_core::validate::{FieldError, NUL_MESSAGE};
use hata_store::Expected;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::AppError;

/// A JSON body of type `T`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The whole body: 413 over the limit, 408 when it stalls (the edge's errors), else 400.
async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, AppError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge
        } else {
            AppError::from_body_error(&e).unwrap_or_else(|| AppError::Malformed(e.body_text()))
        }
    })
}

/// A JSON body that may be left out: an empty body is `T::default()`.
pub struct OptionalJsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        parse_json(&bytes).map(OptionalJsonBody)
    }
}

/// Parses `bytes` as `T`: syntax errors are 400, shape errors 422 at the offending path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    // First as untyped JSON, so that syntax errors (400) are told apart from content (422).
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| AppError::Malformed(e.to_string()))?;
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        AppError::Invalid(vec![FieldError {
            field: if path == "." { String::new() } else { path },
            message: e.into_inner().to_string(),
        }])
    })
}

/// `If-Match` (RFC 9110 §13.1.1): `*`, or a list of entity tags. Comparison is strong, so weak
/// tags (`W/"3"`) never match: a list of weak tags only admits no version (412). A strong tag
/// must be one this server issues (`"<version>"`), else 400. No header is `Expected::Any`.
pub struct IfMatch(pub Expected);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(header::IF_MATCH).iter().peekable();
        if values.peek().is_none() {
            return Ok(IfMatch(Expected::Any));
        }
        let mut versions = Vec::new();
        for value in values {
            let raw = value
                .to_str()
                .map_err(|_| AppError::BadRequest("If-Match is not ASCII".into()))?;
            if raw.trim() == "*" {
                return Ok(IfMatch(Expected::Any));
            }
            parse_etags(raw, &mut versions)?;
        }
        Ok(IfMatch(Expected::OneOf(versions)))
    }
}

/// Adds the versions of the strong tags in one `If-Match` value (`"1", W/"2", "3"`) to
/// `versions`; weak tags add nothing.
fn parse_etags(raw: &str, versions: &mut Vec<i64>) -> Result<(), AppError> {
    let bad = || {
        AppError::BadRequest(format!(
            "If-Match must be `*` or a list of ETags this server issued, like \"3\"; got {raw}"
        ))
    };
    let mut rest = raw.trim();
    loop {
        let (weak, tagged) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let quoted = tagged.strip_prefix('"').ok_or_else(bad)?;
        let end = quoted.find('"').ok_or_else(bad)?;
        let tag = &quoted[..end];
        if !weak {
            versions.push(tag.parse::<i64>().map_err(|_| bad())?);
        }
        rest = quoted[end + 1..].trim_start();
        if rest.is_empty() {
            return Ok(());
        }
        rest = rest.strip_prefix(',').ok_or_else(bad)?.trim_start();
    }
}

/// Path parameters of type `T`; ones that do not decode (not UTF-8) are a problem+json 400.
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Parameters that do not decode are left to the typed extractor's own message.
        if let Ok(raw) = RawPathParams::from_request_parts(parts, state).await {
            refuse_nul(raw.iter())?;
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| AppError::BadRequest(e.body_text()))
    }
}

/// A query string of type `T`; one that does not parse is a problem+json 400.
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // Every pair, decoded as the typed extractor decodes them; a query that does not parse
        // is left to its message.
        if let Ok(axum::extract::Query(pairs)) =
            axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
        {
            refuse_nul(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        }
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| AppError::BadRequest(e.body_text()))
    }
}

/// A 400 naming every parameter (path or query) whose name or value holds U+0000.
fn refuse_nul<'a>(params: impl Iterator<Item = (&'a str, &'a str)>) -> Result<(), AppError> {
    let errors: Vec<FieldError> = params
        .filter(|(name, value)| name.contains('\0') || value.contains('\0'))
        .map(|(name, _)| FieldError::new(name.replace('\0', "\\u0000"), NUL_MESSAGE))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::BadParameters(errors))
    }
}

/// `?limit=&cursor=` of list endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Page size (default 100).
    #[param(minimum = 1)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Paging {
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(100)
    }
}
