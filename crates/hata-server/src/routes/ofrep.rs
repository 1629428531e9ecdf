//! OFREP 0.3 core (`/ofrep/v1/evaluate/flags[/{key}]`) and its event stream, answered from
//! the in-memory rule set of the token's environment; the database is never asked.
//!
//! Bodies follow `../shared/spec/ofrep/openapi.yaml`: successes `{key, value, reason, variant,
//! metadata}`, failures `{key, errorCode, errorDetails}`. Reasons are OpenFeature's; hata's
//! `PREREQUISITE_FAILED` goes out as `DISABLED` with `metadata.hataReason`.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use hata_core::context::ContextError;
use hata_core::evaluate::{Context, ErrorCode, Evaluation};
use hata_serving::ticket::{ticket_period, Ticket};
use hata_serving::{EnvServing, RuleSetId};
use hata_store::TokenKind;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::sse;
use super::EvalSettings;
use crate::auth::{authenticate_evaluator, Evaluator};
use crate::error::AppError;
use crate::forwarded::Origin;
use crate::AppState;

/// Seconds of client inactivity after which providers close the stream (OFREP default).
const INACTIVITY_DELAY_SEC: u64 = 120;

/// How long a bulk request carrying `flagConfigEtag` of a revision this replica has not loaded
/// yet waits for it (changes reach replicas in milliseconds; this bounds a stuck one).
const CATCH_UP_WAIT: Duration = Duration::from_secs(2);

pub fn router() -> Router<AppState> {
    // CORS (preflights included) is the dispatch edge's (`dispatch::cors`); a plain OPTIONS
    // without `Access-Control-Request-Method` reaches these routes and gets a 204.
    Router::new()
        .route(
            "/ofrep/v1/evaluate/flags/{key}",
            post(single).options(preflight),
        )
        .route("/ofrep/v1/evaluate/flags", post(bulk).options(preflight))
        .route(
            "/ofrep/v1/events",
            get(sse::ofrep_events).options(preflight),
        )
}

async fn preflight() -> StatusCode {
    StatusCode::NO_CONTENT
}

const EVALUATOR_KINDS: &[TokenKind] = &[TokenKind::Server, TokenKind::Client];

/// Why a request was not admitted.
enum Refused {
    /// 401, 403, 429 as problem+json.
    App(AppError),
    /// The token's environment has no rule set in memory yet (see `AppError::NotLoaded`).
    NotLoaded,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Refused::App(e) => e.into_response(),
            Refused::NotLoaded => {
                let mut response = json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({ "errorDetails": AppError::NotLoaded.to_string() }),
                );
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(crate::error::NOT_LOADED_RETRY_AFTER),
                );
                response
            }
        }
    }
}

/// Auth, rate limit and the token's rule set: everything before evaluation.
async fn admit(
    s: &AppState,
    settings: &EvalSettings,
    headers: &HeaderMap,
) -> Result<(Evaluator, Arc<EnvServing>), Refused> {
    let caller = authenticate_evaluator(&s.tokens, s.jwt.as_ref(), headers, EVALUATOR_KINDS)
        .await
        .map_err(Refused::App)?;
    settings.check_rate(caller.key()).map_err(Refused::App)?;
    let env = s
        .serving
        .get(caller.project(), caller.environment())
        .ok_or(Refused::NotLoaded)?;
    Ok((caller, env))
}

async fn single(
    State(s): State<AppState>,
    Extension(settings): Extension<Arc<EvalSettings>>,
    key: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(Path(key)) = key else {
        return failure(
            StatusCode::BAD_REQUEST,
            None,
            ErrorCode::ParseError,
            "the flag key in the path does not decode to UTF-8",
        );
    };
    evaluate_single(&s, &settings, &key, &headers, body.map_err(body_rejection)).await
}

/// Where single-flag evaluations are served; the key is the one segment after it.
pub const SINGLE_PREFIX: &str = "/ofrep/v1/evaluate/flags/";

/// `POST /ofrep/v1/evaluate/flags/{key}` served without the router (see `crate::dispatch`,
/// which decides which requests come here and applies the edge concerns to both paths): the
/// same evaluation as the routed handler `single`.
pub async fn single_request<B>(
    s: &AppState,
    settings: &EvalSettings,
    req: axum::http::Request<crate::dispatch::edge::Body<B>>,
) -> Response
where
    B: axum::body::HttpBody<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    use http_body_util::BodyExt;
    let (parts, body) = req.into_parts();
    let key = parts
        .uri
        .path()
        .strip_prefix(SINGLE_PREFIX)
        .unwrap_or_default();
    let body = match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => Err(match AppError::from_body_error(&*e) {
            Some(refused) => refused.into_response(),
            None => failure(
                StatusCode::BAD_REQUEST,
                None,
                ErrorCode::ParseError,
                &format!("failed to read the request body: {e}"),
            ),
        }),
    };
    evaluate_single(s, settings, key, &parts.headers, body).await
}

async fn evaluate_single(
    s: &AppState,
    settings: &EvalSettings,
    key: &str,
    headers: &HeaderMap,
    body: Result<Bytes, Response>,
) -> Response {
    match admit(s, settings, headers).await {
        Ok((_, env)) => evaluate_admitted(&env, key, body, settings.max_context_members),
        Err(refused) => refused.into_response(),
    }
}

/// A single-flag evaluation, once the caller is admitted to `env`.
fn evaluate_admitted(
    env: &EnvServing,
    key: &str,
    body: Result<Bytes, Response>,
    max_members: usize,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejected) => return rejected,
    };
    let attrs = match parse_context(&body, max_members) {
        Ok(attrs) => attrs,
        Err((code, details)) => return failure(StatusCode::BAD_REQUEST, Some(key), code, &details),
    };
    let evaluation = env.snapshot.evaluate(key, &Context::from_pairs(&attrs));
    if let Some(code) = evaluation.error_code {
        let status = if code == ErrorCode::FlagNotFound {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::BAD_REQUEST
        };
        let details = evaluation.error_message.as_deref().unwrap_or("");
        let details = if code == ErrorCode::FlagNotFound {
            format!("flag {key:?} was not found")
        } else {
            details.to_string()
        };
        return failure(status, Some(key), code, &details);
    }
    env.counters.record(&evaluation);
    let mut body = Vec::with_capacity(256);
    write_evaluation(env, &evaluation, &mut body);
    json_body(StatusCode::OK, body)
}

/// One entry of an OFREP answer: `evaluationSuccess`, or `evaluationFailure` for an error.
fn write_evaluation(env: &EnvServing, e: &Evaluation<'_>, out: &mut Vec<u8>) {
    if !env.ofrep.write_success(e, out) {
        let code = e.error_code.unwrap_or(ErrorCode::General);
        let failure = Failure {
            key: Some(e.key),
            error_code: code.as_str(),
            error_details: e.error_message.as_deref().unwrap_or(""),
        };
        // Serialising strings into a `Vec` cannot fail.
        let _ = serde_json::to_writer(out, &failure);
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BulkQuery {
    flag_config_etag: Option<String>,
    /// Accepted as OFREP asks; the ETag alone decides freshness here.
    #[allow(dead_code)]
    flag_config_last_modified: Option<String>,
}

async fn bulk(
    State(s): State<AppState>,
    Extension(settings): Extension<Arc<EvalSettings>>,
    query: Result<Query<BulkQuery>, QueryRejection>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (caller, mut env) = match admit(&s, &settings, &headers).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused.into_response(),
    };
    let body = match body {
        Ok(body) => body,
        Err(e) => return body_rejection(e),
    };
    let attrs = match parse_context(&body, settings.max_context_members) {
        Ok(attrs) => attrs,
        Err((code, details)) => return failure(StatusCode::BAD_REQUEST, None, code, &details),
    };
    // An event stream (possibly another replica's) announced a revision: make sure this
    // answer is at least that new.
    if let Some(announced) = query
        .as_ref()
        .ok()
        .and_then(|q| q.flag_config_etag.as_deref())
        .and_then(RuleSetId::from_header)
    {
        if announced.env_id == env.env_id && announced.revision > env.revision {
            s.serving
                .wait_for(
                    &env.project,
                    &env.environment,
                    announced.env_id,
                    announced.revision,
                    CATCH_UP_WAIT,
                )
                .await;
            if let Some(newer) = s.serving.get(&env.project, &env.environment) {
                env = newer;
            }
        }
    }
    // The answer depends on the rule set, the context and the stream ticket's period (see
    // `ticket_period`), so the ETag names all three.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (period, _) = ticket_period(now);
    let digest = Sha256::new()
        .chain_update(&body)
        .chain_update(period.to_le_bytes())
        .finalize();
    let etag = format!("\"{}-{}\"", env.id(), hex::encode(&digest[..8]));
    if if_none_match(&headers, &etag) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        set_etag(&mut response, &etag);
        return response;
    }
    let ctx = Context::from_pairs(&attrs);
    let evaluations: Vec<Evaluation<'_>> = env.snapshot.evaluate_all(&ctx).collect();
    for e in &evaluations {
        env.counters.record(e);
    }
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr);
    let request = (peer, &uri, &headers);
    // A stream's ticket names a token, whose revocation ends the stream; a JWT caller gets
    // no stream (an empty `eventStreams`: providers poll).
    let stream_url = match &caller {
        Evaluator::Token(token) => match stream_url(&s, &settings, token, &env, request, now) {
            Ok(url) => Some(url),
            Err(refused) => return refused.into_response(),
        },
        Evaluator::Jwt(_) => None,
    };
    // `bulkEvaluationSuccess`: {"flags": [...], "eventStreams": [...], "metadata": {...}}
    let mut out = Vec::with_capacity(512 + 160 * evaluations.len());
    out.extend_from_slice(b"{\"flags\":[");
    for (i, e) in evaluations.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_evaluation(&env, e, &mut out);
    }
    out.extend_from_slice(b"],\"eventStreams\":");
    let streams: Vec<EventStream> = stream_url
        .into_iter()
        .map(|url| EventStream {
            kind: "sse",
            url,
            inactivity_delay_sec: INACTIVITY_DELAY_SEC,
        })
        .collect();
    let rest = serde_json::to_writer(&mut out, &streams).and_then(|()| {
        out.extend_from_slice(b",\"metadata\":");
        serde_json::to_writer(
            &mut out,
            &BulkMetadata {
                project: &env.project,
                environment: &env.environment,
                revision: env.revision,
            },
        )
    });
    if let Err(e) = rest {
        return general(format!("cannot serialise the response: {e}"));
    }
    out.push(b'}');
    let mut response = json_body(StatusCode::OK, out);
    set_etag(&mut response, &etag);
    response
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

/// The URL of this environment's OFREP event stream, with a ticket in place of the token.
fn stream_url(
    s: &AppState,
    settings: &EvalSettings,
    token: &hata_store::TokenRecord,
    env: &EnvServing,
    (peer, uri, headers): (Option<SocketAddr>, &Uri, &HeaderMap),
    now: i64,
) -> Result<String, AppError> {
    let (_, period_end) = ticket_period(now);
    let token_expiry = token.expires_at.as_deref().and_then(|e| {
        time::OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(|t| t.unix_timestamp())
    });
    let expires = token_expiry.map_or(period_end, |t| t.min(period_end));
    let ticket = s.tickets.issue(&Ticket {
        token_id: token.id.clone(),
        project: env.project.clone(),
        environment: env.environment.clone(),
        rule_set: env.id(),
        expires,
    });
    let base = match &settings.public_url {
        Some(url) => url.clone(),
        None => {
            let origin = Origin::of(
                peer,
                uri,
                headers,
                &settings.trusted_proxies,
                settings.scheme,
            );
            let host = origin.host.ok_or_else(|| {
                AppError::BadRequest(
                    "the Host header is missing or not a valid host[:port], so no event-stream \
                     URL can be made (the server's public_url setting avoids this)"
                        .into(),
                )
            })?;
            format!("{}://{host}", origin.scheme)
        }
    };
    Ok(format!("{base}/ofrep/v1/events?ticket={ticket}"))
}

/// The request's `context`, as its members in document order: `PARSE_ERROR` for a body that
/// is not JSON, `INVALID_CONTEXT` for one without an object `context` or with a non-string
/// `targetingKey`. A context without `targetingKey` is fine (`evaluation.md`: it matches no
/// target, rollouts serve a fallback).
///
/// Read straight into pairs, not into a `serde_json` map: a map would hash every member name
/// for the few lookups an evaluation makes, and this is on every request. Names without
/// escapes borrow the body.
///
/// A context with more than `max_members` members is `INVALID_CONTEXT`; the members past the
/// limit are skipped while reading, never collected.
fn parse_context(body: &[u8], max_members: usize) -> Result<ContextPairs<'_>, (ErrorCode, String)> {
    // UTF-8 checked once for the whole body: `from_slice` checks every string on its own,
    // which cost more than the rest of reading a typical context's strings.
    let text = std::str::from_utf8(body).map_err(|e| {
        (
            ErrorCode::ParseError,
            format!("request body is not valid JSON: it is not UTF-8 ({e})"),
        )
    })?;
    let mut reader = serde_json::Deserializer::from_str(text);
    let request = serde::de::DeserializeSeed::deserialize(BodySeed { max_members }, &mut reader)
        .and_then(|request| reader.end().map(|()| request))
        .map_err(|e| {
            let details = if e.classify() == serde_json::error::Category::Data {
                "request body must be a JSON object with a `context`".to_string()
            } else {
                format!("request body is not valid JSON: {e}")
            };
            (ErrorCode::ParseError, details)
        })?;
    match request.context {
        ContextMember::Object(members) => {
            // The last `targetingKey` counts, as in a JSON map (and in `Context`).
            match members
                .iter()
                .rev()
                .find(|(name, _)| name == "targetingKey")
            {
                None | Some((_, Value::String(_))) => Ok(members),
                Some(_) => Err((
                    ErrorCode::InvalidContext,
                    "context.targetingKey must be a string".into(),
                )),
            }
        }
        ContextMember::TooMany { got } => Err((
            ErrorCode::InvalidContext,
            ContextError::TooManyMembers {
                limit: max_members,
                got,
            }
            .to_string(),
        )),
        ContextMember::Missing | ContextMember::Null => Err((
            ErrorCode::InvalidContext,
            "`context` is required (an object; it may be empty)".into(),
        )),
        ContextMember::Other => Err((
            ErrorCode::InvalidContext,
            "`context` must be a JSON object".into(),
        )),
    }
}

/// A context's members in document order, as `Context::from_pairs` reads them.
type ContextPairs<'a> = Vec<(Cow<'a, str>, Value)>;

/// An evaluation request body: a JSON object whose `context` is all that is read (other
/// members are skipped; of duplicate `context`s the last counts, as in a JSON map).
struct RequestBody<'de> {
    context: ContextMember<'de>,
}

enum ContextMember<'de> {
    Missing,
    Null,
    Object(ContextPairs<'de>),
    /// An object with more members than allowed (`got` of them).
    TooMany {
        got: usize,
    },
    /// Any other JSON value: an array, string, number or boolean.
    Other,
}

/// A member name of the body or its context: borrowed from the body unless it has escapes.
/// (serde's own `Cow<str>` always copies.)
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(Visit)
    }
}

/// Reads a `RequestBody`, with at most `max_members` context members.
struct BodySeed {
    max_members: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for BodySeed {
    type Value = RequestBody<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<RequestBody<'de>, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, Visitor};

        struct Body {
            max_members: usize,
        }
        impl<'de> Visitor<'de> for Body {
            type Value = RequestBody<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object with a `context`")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RequestBody<'de>, A::Error> {
                let mut context = ContextMember::Missing;
                while let Some(Name(name)) = map.next_key()? {
                    if name == "context" {
                        context = map.next_value_seed(MemberSeed {
                            max_members: self.max_members,
                        })?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(RequestBody { context })
            }
        }
        d.deserialize_map(Body {
            max_members: self.max_members,
        })
    }
}

/// Reads the body's `context` member, with at most `max_members` members.
struct MemberSeed {
    max_members: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for MemberSeed {
    type Value = ContextMember<'de>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> Result<ContextMember<'de>, D::Error> {
        use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};

        struct Member {
            max_members: usize,
        }
        impl<'de> Visitor<'de> for Member {
            type Value = ContextMember<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ContextMember<'de>, A::Error> {
                let hint = map.size_hint().unwrap_or(8).min(self.max_members);
                let mut members = Vec::with_capacity(hint);
                while let Some((Name(name), value)) = map.next_entry::<Name, Value>()? {
                    if members.len() == self.max_members {
                        // Past the limit: count the rest without keeping it.
                        let mut got = members.len() + 1;
                        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                            got += 1;
                        }
                        return Ok(ContextMember::TooMany { got });
                    }
                    members.push((name, value));
                }
                Ok(ContextMember::Object(members))
            }
            fn visit_unit<E>(self) -> Result<ContextMember<'de>, E> {
                Ok(ContextMember::Null)
            }
            fn visit_none<E>(self) -> Result<ContextMember<'de>, E> {
                Ok(ContextMember::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ContextMember<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(ContextMember::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<ContextMember<'de>, E> {
                Ok(ContextMember::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<ContextMember<'de>, E> {
                Ok(ContextMember::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<ContextMember<'de>, E> {
                Ok(ContextMember::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<ContextMember<'de>, E> {
                Ok(ContextMember::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<ContextMember<'de>, E> {
                Ok(ContextMember::Other)
            }
        }
        d.deserialize_any(Member {
            max_members: self.max_members,
        })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventStream {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
    inactivity_delay_sec: u64,
}

#[derive(Serialize)]
struct BulkMetadata<'a> {
    project: &'a str,
    environment: &'a str,
    revision: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Failure<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    error_code: &'static str,
    error_details: &'a str,
}

fn failure(status: StatusCode, key: Option<&str>, code: ErrorCode, details: &str) -> Response {
    json(
        status,
        &Failure {
            key,
            error_code: code.as_str(),
            error_details: details,
        },
    )
}

/// OFREP's `generalErrorResponse` (500).
fn general(details: String) -> Response {
    tracing::error!(details, "OFREP request failed");
    json(
        StatusCode::INTERNAL_SERVER_ERROR,
        &serde_json::json!({ "errorDetails": details }),
    )
}

fn body_rejection(e: BytesRejection) -> Response {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::TooLarge.into_response()
    } else if let Some(e) = AppError::from_body_error(&e) {
        e.into_response()
    } else {
        failure(
            StatusCode::BAD_REQUEST,
            None,
            ErrorCode::ParseError,
            &e.body_text(),
        )
    }
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => json_body(status, bytes),
        Err(e) => general(format!("cannot serialise the response: {e}")),
    }
}

fn json_body(status: StatusCode, body: Vec<u8>) -> Response {
    // Built directly: `(status, headers, Vec<u8>).into_response()` first sets
    // `application/octet-stream` and then replaces it, on every evaluation.
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn set_etag(response: &mut Response, etag: &str) {
    if let Ok(v) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_context_(body: &[u8]) -> Result<ContextPairs<'_>, (ErrorCode, String)> {
        parse_context(body, hata_core::context::MAX_MEMBERS)
    }

    #[test]
    fn contexts_wider_than_the_limit_are_invalid_and_not_collected() {
        let body = |n: usize| {
            let members: Vec<String> = (0..n).map(|i| format!("\"a{i}\":{i}")).collect();
            format!(r#"{{"context":{{{}}},"x":1}}"#, members.join(","))
        };
        assert_eq!(parse_context(body(3).as_bytes(), 3).map(|m| m.len()), Ok(3));
        let (code, details) = parse_context(body(5).as_bytes(), 3).unwrap_err();
        assert_eq!(code, ErrorCode::InvalidContext);
        assert_eq!(details, "the context has 5 members; at most 3 are allowed");
        // Past the limit the body must still be JSON.
        let (code, _) = parse_context(br#"{"context":{"a":1,"b":2,"c":"#, 1).unwrap_err();
        assert_eq!(code, ErrorCode::ParseError);
    }

    #[test]
    fn contexts_are_checked_as_ofrep_asks() {
        assert!(parse_context_(br#"{"context":{}}"#).is_ok());
        assert!(parse_context_(br#"{"context":{"targetingKey":"u","plan":"pro"}}"#).is_ok());
        assert_eq!(parse_context_(b"{").unwrap_err().0, ErrorCode::ParseError);
        assert_eq!(parse_context_(b"[]").unwrap_err().0, ErrorCode::ParseError);
        assert_eq!(
            parse_context_(b"{}").unwrap_err().0,
            ErrorCode::InvalidContext
        );
        assert_eq!(
            parse_context_(br#"{"context":[1]}"#).unwrap_err().0,
            ErrorCode::InvalidContext
        );
        assert_eq!(
            parse_context_(br#"{"context":{"targetingKey":7}}"#)
                .unwrap_err()
                .0,
            ErrorCode::InvalidContext
        );
        for other in ["\"x\"", "1", "1.5", "-1", "true", "[{\"a\":1}]"] {
            let body = format!(r#"{{"context":{other}}}"#);
            assert_eq!(
                parse_context_(body.as_bytes()).unwrap_err(),
                (
                    ErrorCode::InvalidContext,
                    "`context` must be a JSON object".into()
                ),
                "{body}"
            );
        }
        assert_eq!(
            parse_context_(br#"{"context":null}"#).unwrap_err().0,
            ErrorCode::InvalidContext
        );
        // Trailing garbage and a truncated context are not JSON.
        assert_eq!(
            parse_context_(br#"{"context":{}} x"#).unwrap_err().0,
            ErrorCode::ParseError
        );
        assert_eq!(
            parse_context_(br#"{"context":{"a":"#).unwrap_err().0,
            ErrorCode::ParseError
        );
        assert_eq!(
            parse_context_(b"\"context\"").unwrap_err().0,
            ErrorCode::ParseError
        );
        // JSON is UTF-8: a byte that is not, inside a string or outside one, is a parse error.
        for body in [
            &b"{\"context\":{\"a\":\"\xff\"}}"[..],
            b"{\"context\":{}}\xff",
        ] {
            let (code, details) = parse_context_(body).unwrap_err();
            assert_eq!(code, ErrorCode::ParseError);
            assert!(details.contains("not UTF-8"), "{details}");
        }
    }

    #[test]
    fn contexts_are_read_in_document_order_with_other_members_skipped() {
        let members = parse_context_(
            br#"{"flags":["a"],"context":{"x":1},"context":{"targetingKey":"u","a":{"b":[1]},"a":2,"pl\u0061n":"pro"},"z":{}}"#,
        )
        .expect("valid");
        let names: Vec<&str> = members.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(names, ["targetingKey", "a", "a", "plan"]);
        // Plain names borrow the body; a name with an escape is decoded into its own string.
        let borrowed: Vec<bool> = members
            .iter()
            .map(|(k, _)| matches!(k, Cow::Borrowed(_)))
            .collect();
        assert_eq!(borrowed, [true, true, true, false]);
        let ctx = Context::from_pairs(&members);
        assert_eq!(ctx.targeting_key(), Some("u"));
        assert_eq!(ctx.attribute("a"), Some(&Value::from(2)));
        assert_eq!(ctx.attribute("plan"), Some(&Value::from("pro")));
        assert_eq!(ctx.attribute("x"), None);
    }
}
