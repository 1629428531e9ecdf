//! What is known of the request in flight, readable by any code running in its task without
//! being handed it: its id, its trace id (when traces are exported) and, once authentication
//! has run, who made it. The edge sets it around both serving paths; the JSON log lines
//! (`telemetry::json`) read the id and trace id from it, so every line logged inside a request
//! carries them whatever span is current (or none: the hot paths' spans are DEBUG); the
//! access log reads the principal.
//!
//! A tokio task-local rather than request extensions: the log formatter has no request, and
//! authentication runs deep inside handlers (`auth::authenticate_evaluator` on the fast path,
//! the admin layer on the router) that hand nothing back to the edge.

use std::cell::RefCell;
use std::sync::Arc;

use axum::http::HeaderValue;
use hata_store::TokenRecord;

use crate::auth::jwt::VerifiedJwt;

tokio::task_local! {
    static SCOPE: RequestScope;
}

/// The request in flight.
#[derive(Debug)]
pub struct RequestScope {
    /// `X-Request-Id` (the caller's or one made by the edge).
    pub id: HeaderValue,
    /// The W3C trace id of the request's span, when traces are exported.
    pub trace_id: Option<opentelemetry::trace::TraceId>,
    principal: RefCell<Option<Who>>,
}

/// Who made a request, kept as cheaply as authentication had it (an `Arc` clone on the hot
/// path) and rendered only when a line is written. Never a secret: ids only.
#[derive(Debug, Clone)]
pub enum Who {
    /// An API token: `token:<id>`.
    Token(Arc<TokenRecord>),
    /// A JWT: `jwt:<sub>`.
    Jwt(Arc<VerifiedJwt>),
    /// Anyone else, already rendered (`user:<id>`, `token:<id>`, as the admin layer keys its
    /// rate limits).
    Named(String),
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Who::Token(token) => write!(f, "token:{}", token.id),
            Who::Jwt(jwt) => f.write_str(&jwt.key),
            Who::Named(name) => f.write_str(name),
        }
    }
}

impl RequestScope {
    pub fn new(id: HeaderValue, trace_id: Option<opentelemetry::trace::TraceId>) -> RequestScope {
        RequestScope {
            id,
            trace_id,
            principal: RefCell::new(None),
        }
    }

    /// Who made the request; `None` until authentication succeeded (or when it did not).
    pub fn principal(&self) -> Option<Who> {
        self.principal.borrow().clone()
    }

    /// Runs `fut` with this scope current.
    pub async fn run<F: std::future::Future>(self, fut: F) -> (F::Output, RequestScope) {
        let scoped = SCOPE.scope(self, fut);
        tokio::pin!(scoped);
        let output = (&mut scoped).await;
        let scope = scoped
            .as_mut()
            .take_value()
            .expect("a task-local's value is there until taken");
        (output, scope)
    }

    /// Runs `f` with this scope current (for what the edge logs after the answer).
    pub fn sync<R>(self, f: impl FnOnce() -> R) -> R {
        SCOPE.sync_scope(self, f)
    }
}

/// Records who made the current request (no-op outside a request).
pub fn set_principal(who: Who) {
    let _ = SCOPE.try_with(|scope| *scope.principal.borrow_mut() = Some(who));
}

/// The current request's id and trace id, for a log line (`None` outside a request).
pub fn with_current<R>(f: impl FnOnce(&RequestScope) -> R) -> Option<R> {
    SCOPE.try_with(f).ok()
}
