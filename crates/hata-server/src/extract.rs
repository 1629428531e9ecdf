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
/// tags (`W/"3"`) never match, nor do strong tags this server never issues (not
/// `"<version>"`). A value that is not `*` or a list of entity tags (an empty one too: a list of
/// no tags) names no version either: the condition is false and the write is a 412 that changes
/// nothing, never an unconditional write. No header is `Expected::Any`.
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
            let Ok(raw) = value.to_str() else {
                return Ok(IfMatch(Expected::OneOf(Vec::new())));
            };
            if raw.trim() == "*" {
                return Ok(IfMatch(Expected::Any));
            }
            if parse_etags(raw, &mut versions).is_none() {
                return Ok(IfMatch(Expected::OneOf(Vec::new())));
            }
        }
        Ok(IfMatch(Expected::OneOf(versions)))
    }
}

/// Adds the versions named by the strong tags of one `If-Match` value (`"1", W/"2", "3"`) to
/// `versions`; weak tags and other strong tags add nothing. `None` if the value is not a list
/// of entity tags (RFC 9110 §8.8.3; an empty list included).
fn parse_etags(raw: &str, versions: &mut Vec<i64>) -> Option<()> {
    let is_ows = |c: char| c == ' ' || c == '\t';
    let mut rest = raw.trim_matches(is_ows);
    loop {
        let (weak, tagged) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let quoted = tagged.strip_prefix('"')?;
        let end = quoted.find('"')?;
        let tag = &quoted[..end];
        // etagc: %x21 / %x23-7E (obs-text is not ASCII: refused by the caller).
        if !tag.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b)) {
            return None;
        }
        if !weak && !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_digit()) {
            // A version this server could have issued; an overflowing one names none.
            if let Ok(version) = tag.parse::<i64>() {
                versions.push(version);
            }
        }
        rest = quoted[end + 1..].trim_start_matches(is_ows);
        if rest.is_empty() {
            return Some(());
        }
        rest = rest.strip_prefix(',')?.trim_start_matches(is_ows);
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

/// A query string of type `T`; one that does not parse is a problem+json 400 naming the
/// parameter (a value of the wrong type, a parameter given twice, U+0000).
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

/// Parses a query string (without the `?`) as `T`, decoding as axum's `Query` does.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, AppError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|e| AppError::BadRequest(format!("the query string does not parse: {e}")))?;
    refuse_nul(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        if path != "." {
            return AppError::BadParameters(vec![FieldError::new(path, message)]);
        }
        // Errors about the whole map (a field given twice, one missing) have no path: name
        // the parameters given more than once, else the one the message names.
        let mut repeated: Vec<&str> = pairs
            .iter()
            .enumerate()
            .filter(|(i, (name, _))| pairs[..*i].iter().any(|(n, _)| n == name))
            .map(|(_, (name, _))| name.as_str())
            .collect();
        repeated.dedup();
        if repeated.is_empty() {
            let named = message.split('`').nth(1).unwrap_or_default().to_string();
            AppError::BadParameters(vec![FieldError::new(named, message)])
        } else {
            AppError::BadParameters(
                repeated
                    .into_iter()
                    .map(|name| FieldError::new(name, "given more than once"))
                    .collect(),
            )
        }
    })
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

/// A page size when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

/// The largest page size (the store's `MAX_PAGE`); the OpenAPI document states the same
/// bounds on every `limit` (`#[param(maximum = 1000)]`, checked by a test).
pub const MAX_LIMIT: usize = hata_store::read::MAX_PAGE;

/// `?limit=&cursor=` of list endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl Paging {
    /// The page size; a 422 naming `limit` outside 1..=`MAX_LIMIT`.
    pub fn limit(&self) -> Result<usize, AppError> {
        page_limit(self.limit)
    }
}

/// A list's page size: `DEFAULT_LIMIT` when not given, a 422 naming `limit` outside
/// 1..=`MAX_LIMIT`.
pub fn page_limit(limit: Option<usize>) -> Result<usize, AppError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(AppError::Invalid(vec![FieldError::new(
            "limit",
            format!("must be between 1 and {MAX_LIMIT} (got {n})"),
        )])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Versions named, or `None` for what is not a list of entity tags.
    #[test]
    fn if_match_lists() {
        let parse = |value: &str| {
            let mut versions = Vec::new();
            parse_etags(value, &mut versions).map(|()| versions)
        };
        for (value, expected) in [
            (r#""1""#, Some(vec![1])),
            (r#""123456789012345678""#, Some(vec![123456789012345678])),
            (r#"W/"1", "2""#, Some(vec![2])),
            ("\"1\"\t,  W/\"!#~\"", Some(vec![1])),
            (r#""abc", W/"""#, Some(vec![])),
            (r#""+1", "-1", "99999999999999999999""#, Some(vec![])),
            ("", None),
            (" ", None),
            (r#"W/"a b""#, None),
            (r#""1" "2""#, None),
            (r#""1",,"2""#, None),
            (r#""1", *"#, None),
            (r#"W/1"#, None),
            (r#""1"#, None),
            ("0", None),
        ] {
            assert_eq!(parse(value), expected, "{value:?}");
        }
    }

    #[test]
    fn limits_outside_the_documented_bounds_are_422() {
        assert_eq!(page_limit(None).ok(), Some(DEFAULT_LIMIT));
        assert_eq!(page_limit(Some(1)).ok(), Some(1));
        assert_eq!(page_limit(Some(MAX_LIMIT)).ok(), Some(MAX_LIMIT));
        for n in [0, MAX_LIMIT + 1] {
            match page_limit(Some(n)) {
                Err(AppError::Invalid(errors)) => assert_eq!(errors[0].field, "limit"),
                other => panic!("limit={n}: {:?}", other.map_err(|e| e.to_string())),
            }
        }
    }

    #[test]
    fn query_errors_name_the_parameter() {
        #[derive(Debug, Deserialize)]
        struct Q {
            #[allow(dead_code)]
            env: Option<String>,
            #[allow(dead_code)]
            limit: Option<usize>,
        }
        let fields = |query: &str| match parse_query::<Q>(query) {
            Err(AppError::BadParameters(errors)) => {
                errors.into_iter().map(|e| e.field).collect::<Vec<_>>()
            }
            other => panic!("{query}: {:?}", other.map_err(|e| e.to_string())),
        };
        assert_eq!(fields("env=a&env=b"), ["env"]);
        assert_eq!(fields("limit=ten"), ["limit"]);
        assert_eq!(fields("limit=99999999999999999999999"), ["limit"]);
        assert_eq!(fields("env=a%00"), ["env"]);
        assert!(parse_query::<Q>("env=a&other=1&other=2").is_ok());
    }
}
