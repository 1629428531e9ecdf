//! The UI's static files, embedded in the binary and served under a URL that names their
//! content's hash (`/assets/app.<hash>.css`), so browsers may keep them for a year: a new
//! build with other content has another URL. No script is shipped: every action is a plain
//! form.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    /// `app.<first 16 hex digits of SHA-256>.css`
    pub name: String,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

fn hashed(stem: &str, ext: &str, bytes: &[u8]) -> String {
    let digest = hex::encode(Sha256::digest(bytes));
    format!("{stem}.{}.{ext}", &digest[..16])
}

pub static CSS: LazyLock<Asset> = LazyLock::new(|| {
    let bytes = include_bytes!("../assets/app.css");
    Asset {
        name: hashed("app", "css", bytes),
        content_type: "text/css; charset=utf-8",
        bytes,
    }
});

/// The stylesheet's URL.
pub fn css_url() -> String {
    format!("/assets/{}", CSS.name)
}

/// `GET /assets/{name}`: the file whose hashed name this is; 404 for any other name (an old
/// page asking for an earlier build's file reloads and gets the new name).
pub async fn serve(Path(name): Path<String>) -> Response {
    let asset = &*CSS;
    if name != asset.name {
        return StatusCode::NOT_FOUND.into_response();
    }
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}
