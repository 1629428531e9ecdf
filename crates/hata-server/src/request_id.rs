//! Request ids: every request has one (`X-Request-Id`: the caller's, or one made here), and
//! it appears in the response, in every log line of the request and in the change record of
//! any write it makes. A caller's id is kept only when it is 1 to 128 printable ASCII
//! characters (`MAX_LEN`); any other is replaced by a new one, so that what a client sends
//! cannot bloat or forge log lines and change records.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderName, HeaderValue};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest caller's id that is kept.
pub const MAX_LEN: usize = 128;

/// Whether a caller's id is kept: 1 to `MAX_LEN` printable ASCII characters (space to `~`).
pub fn is_acceptable(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty() && bytes.len() <= MAX_LEN && bytes.iter().all(|b| (b' '..=b'~').contains(b))
}

/// Makes request ids: a random per-process prefix and a counter (`3f9a…c2-000000000000002a`).
/// Unique across replicas and restarts like a UUID, but without a `getrandom` system call
/// per request.
#[derive(Clone)]
pub struct RequestIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        use rand::Rng;
        let prefix: [u8; 8] = rand::thread_rng().gen();
        RequestIds {
            prefix: hex::encode(prefix).into(),
            next: Arc::default(),
        }
    }
}

impl RequestIds {
    /// The request's id: the caller's `X-Request-Id` if it sent one acceptable one
    /// (`is_acceptable`), else a new one, which is put into `headers` (replacing every id the
    /// caller sent) so that handlers read it the same way.
    pub fn ensure(&self, headers: &mut HeaderMap) -> HeaderValue {
        let mut sent = headers.get_all(&REQUEST_ID).iter();
        if let (Some(id), None) = (sent.next(), sent.next()) {
            if is_acceptable(id) {
                return id.clone();
            }
        }
        let id = self.next();
        headers.insert(REQUEST_ID, id.clone());
        id
    }

    /// A new id.
    pub fn next(&self) -> HeaderValue {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let id = format!("{}-{n:016x}", self.prefix);
        // Hex digits and a dash are always a valid header value.
        HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("-"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_a_callers_id_is_kept() {
        let ids = RequestIds::default();
        let all: std::collections::HashSet<_> = (0..1000).map(|_| ids.next()).collect();
        assert_eq!(all.len(), 1000);
        let id = ids.next();
        let id = id.to_str().expect("ASCII");
        assert_eq!(id.len(), 33, "{id}");
        assert_eq!(&id[16..17], "-", "{id}");
        assert!(id[..16] == *ids.prefix && id[17..].bytes().all(|b| b.is_ascii_hexdigit()));
        // Another process (another prefix) never makes the same id.
        assert_ne!(RequestIds::default().next(), ids.next());

        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("mine"));
        assert_eq!(ids.ensure(&mut headers), "mine");
        let mut headers = HeaderMap::new();
        let made = ids.ensure(&mut headers);
        assert_eq!(headers.get(&REQUEST_ID), Some(&made));
    }

    #[test]
    fn only_short_printable_ascii_ids_are_kept() {
        let ids = RequestIds::default();
        let longest = "x".repeat(MAX_LEN);
        for kept in ["a", "spaced id ~!", longest.as_str()] {
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID, HeaderValue::from_str(kept).expect("header"));
            assert_eq!(ids.ensure(&mut headers), kept);
        }
        let too_long = HeaderValue::from_str(&"x".repeat(MAX_LEN + 1)).expect("header");
        let tab = HeaderValue::from_static("a\tb");
        let latin1 = HeaderValue::from_bytes(b"caf\xe9").expect("header");
        let empty = HeaderValue::from_static("");
        for replaced in [too_long, tab, latin1, empty] {
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID, replaced.clone());
            let id = ids.ensure(&mut headers);
            assert_ne!(id, replaced);
            assert_eq!(id.len(), 33, "{id:?}");
            assert_eq!(
                headers.get_all(&REQUEST_ID).iter().collect::<Vec<_>>(),
                [&id]
            );
        }
        // Two ids: which one would be the request's is unclear, so neither is.
        let mut headers = HeaderMap::new();
        headers.append(REQUEST_ID, HeaderValue::from_static("one"));
        headers.append(REQUEST_ID, HeaderValue::from_static("two"));
        let id = ids.ensure(&mut headers);
        assert_eq!(id.len(), 33, "{id:?}");
        assert_eq!(headers.get_all(&REQUEST_ID).iter().count(), 1);
    }
}
