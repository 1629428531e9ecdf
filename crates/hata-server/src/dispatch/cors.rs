//! CORS for the evaluation endpoints under `/ofrep/`: browsers call them with `client` tokens
//! from any origin. Tokens travel in headers, never cookies, so there is no credentials mode.
//!
//! The one answer: **every** answer under `/ofrep/` carries `Access-Control-Allow-Origin: *`
//! (and the exposed headers), whether the request had an `Origin` or not. The answer is the
//! same for every origin, so caches need no `Vary`, and a shared cache can never hand a
//! browser a copy stored for a server SDK without the headers. Preflights
//! (`OPTIONS` with `Access-Control-Request-Method`) are answered here, before any route.
//! Nothing else is cross-origin: the admin API and the SDK endpoints get no CORS headers.

use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::Response;

/// The paths CORS applies to.
pub fn applies(path: &str) -> bool {
    path.starts_with("/ofrep/")
}

/// A preflight request: what a browser sends before a cross-origin call with headers.
pub fn is_preflight<B>(req: &Request<B>) -> bool {
    req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The answer to a preflight (before `add`): allowed methods and headers, cached for a day.
pub fn preflight() -> Response {
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET,POST,OPTIONS"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "authorization,content-type,if-none-match,x-api-key,last-event-id",
        ),
    );
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

/// The headers every answer under `/ofrep/` carries.
pub fn add(headers: &mut HeaderMap) {
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("etag,retry-after"),
    );
}
