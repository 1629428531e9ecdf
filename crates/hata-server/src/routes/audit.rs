//! The audit log (`hata-audit`'s chain, kept by the store): filtered pages, one flag's
//! history, the JSON Lines export, verification and the checkpoint key.
//!
//! Admins see every entry; a project's owners see that project's entries (its flags'
//! history, and `GET /audit` limited to their projects); nobody else sees any.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use hata_access::Role;
use hata_core::key::is_valid_key;
use hata_core::validate::FieldError;
use hata_store::audit::{AuditFilter, AuditLines};
use hata_store::{Action, Page, ResourceType};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::auth::Caller;
use crate::error::{AppError, AppResult};
use crate::extract::{page_limit, Path, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/audit", get(list))
        .route("/audit/export", get(export))
        .route("/audit/verify", get(verify))
        .route("/audit/public-key", get(public_key))
        .route("/projects/{project}/flags/{flag}/history", get(history))
}

/// `GET /audit` query (also the web UI's audit page's filters).
#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only entries of this project.
    pub project: Option<String>,
    /// Only entries about this environment (its own changes, and flag changes to its
    /// configuration alone).
    pub environment: Option<String>,
    /// A resource type (`flag`), or a type and key (`flag:new-checkout`).
    #[param(
        pattern = r"^(project|environment|flag|segment|token|user|member|session|totp|sso)(:.+)?$"
    )]
    pub resource: Option<String>,
    /// `kind:id` (`user:u_…`, `token:tok_…`), or an id of any kind.
    pub actor: Option<String>,
    /// `create`, `update`, `delete`, `login`, `login_failed`, `logout`, `refused`.
    #[param(pattern = r"^(create|update|delete|login|login_failed|logout|refused)$")]
    pub action: Option<String>,
    /// Entries at or after this time (RFC 3339).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// Entries before this time (RFC 3339).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[0-9]{1,19}$")]
    pub cursor: Option<String>,
}

/// `GET /audit/export` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Entries at or after this time (RFC 3339).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Entries before this time (RFC 3339).
    #[param(format = DateTime)]
    to: Option<String>,
}

/// `GET /projects/{p}/flags/{f}/history` query.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[param(pattern = r"^[0-9]{1,19}$")]
    cursor: Option<String>,
}

/// An RFC 3339 time as entries write theirs (UTC, microseconds), so that it compares with
/// `at` as text; a 422 naming `field` otherwise.
fn entry_time(field: &str, value: Option<&str>) -> Result<Option<String>, FieldError> {
    let Some(value) = value else { return Ok(None) };
    let parsed = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| FieldError::new(field, format!("not an RFC 3339 time: {value:?}")))?;
    hata_audit::format_at(parsed)
        .map(Some)
        .map_err(|_| FieldError::new(field, format!("out of range: {value:?}")))
}

/// `from` and `to` as entries write times; each one that is not a time adds its error.
fn time_range(
    from: Option<&str>,
    to: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> (Option<String>, Option<String>) {
    let mut read = |field: &str, value: Option<&str>| {
        entry_time(field, value).unwrap_or_else(|e| {
            errors.push(e);
            None
        })
    };
    (read("from", from), read("to", to))
}

/// An empty `project`, `environment` or `actor` (`?project=`) is one not given; the other
/// parameters have a syntax that an empty value does not meet.
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn cursor(cursor: Option<&str>) -> AppResult<Option<i64>> {
    cursor
        .map(|c| {
            c.parse::<i64>().map_err(|_| {
                AppError::BadRequest(format!(
                    "cursor: {c:?} is not a cursor this list handed out"
                ))
            })
        })
        .transpose()
}

/// The projects whose entries a caller sees: `None` for an admin (all), else those it owns
/// (403 when none: the audit log is for admins and owners).
pub fn visible_projects(caller: &hata_access::Principal) -> AppResult<Option<Vec<String>>> {
    if caller.admin {
        return Ok(None);
    }
    let owned: Vec<String> = caller
        .projects
        .iter()
        .filter(|(_, role)| **role == Role::Owner)
        .map(|(project, _)| project.clone())
        .collect();
    if owned.is_empty() {
        return Err(AppError::Forbidden(
            "the audit log is open to admins and to project owners (for their projects)".into(),
        ));
    }
    Ok(Some(owned))
}

async fn list(
    State(s): State<AppState>,
    Extension(Caller(caller)): Extension<Caller>,
    Query(q): Query<AuditQuery>,
) -> AppResult<Json<Page<Map<String, Value>>>> {
    Ok(Json(audit_page(&s, &caller, q).await?))
}

/// A page of the entries `caller` may see that match `q` (this route's and the web UI's
/// rules): 403 for a project the caller does not own (unless admin), 422 naming each
/// parameter that is not a resource, action or time.
pub async fn audit_page(
    s: &AppState,
    caller: &hata_access::Principal,
    q: AuditQuery,
) -> AppResult<Page<Map<String, Value>>> {
    let q = AuditQuery {
        project: given(q.project),
        environment: given(q.environment),
        actor: given(q.actor),
        ..q
    };
    let among = visible_projects(caller)?;
    if let (Some(project), Some(among)) = (&q.project, &among) {
        if !among.contains(project) {
            return Err(AppError::Forbidden(format!(
                "only the owners of project {project:?} (and admins) see its audit entries"
            )));
        }
    }
    let mut errors = Vec::new();
    let (resource_type, resource_key) = match q
        .resource
        .as_deref()
        .map(|r| r.split_once(':').unwrap_or((r, "")))
    {
        None => (None, None),
        Some((kind, key)) => {
            if q.resource.as_deref().is_some_and(|r| r.ends_with(':')) {
                errors.push(FieldError::new(
                    "resource",
                    "a key must follow the colon (`flag:new-checkout`)",
                ));
            } else if ResourceType::parse(kind).is_none() {
                errors.push(FieldError::new(
                    "resource",
                    format!(
                        "{kind:?} is not a resource type ({})",
                        ResourceType::ALL.map(ResourceType::as_str).join(", ")
                    ),
                ));
            }
            (
                Some(kind.to_string()),
                (!key.is_empty()).then(|| key.to_string()),
            )
        }
    };
    if let Some(action) = q.action.as_deref().filter(|a| Action::parse(a).is_none()) {
        errors.push(FieldError::new(
            "action",
            format!(
                "{action:?} is not an action ({})",
                Action::ALL.map(Action::as_str).join(", ")
            ),
        ));
    }
    let (from, to) = time_range(q.from.as_deref(), q.to.as_deref(), &mut errors);
    let limit = page_limit(q.limit)?;
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let filter = AuditFilter {
        project: q.project,
        environment: q.environment,
        resource_type,
        resource_key,
        actor: q.actor,
        action: q.action,
        from,
        to,
        among,
    };
    Ok(s.store
        .page_audit(&filter, limit, cursor(q.cursor.as_deref())?)
        .await?)
}

/// The filter of one flag's entries (this route's and the web UI's flag page).
pub fn flag_history(project: String, flag: String) -> AuditFilter {
    AuditFilter {
        project: Some(project),
        resource_type: Some(ResourceType::Flag.as_str().into()),
        resource_key: Some(flag),
        ..AuditFilter::default()
    }
}

/// One flag's entries, newest first (also after the flag was deleted). Owners only: the
/// route's access.
async fn history(
    State(s): State<AppState>,
    Path((project, flag)): Path<(String, String)>,
    Query(q): Query<HistoryQuery>,
) -> AppResult<Json<Page<Map<String, Value>>>> {
    // As every path naming a key: one no key can have names nothing.
    if !is_valid_key(&project) || !is_valid_key(&flag) {
        return Err(AppError::NotFound(format!(
            "no flag {flag:?} in project {project:?}: not a valid key"
        )));
    }
    let filter = flag_history(project, flag);
    let page = s
        .store
        .page_audit(&filter, page_limit(q.limit)?, cursor(q.cursor.as_deref())?)
        .await?;
    Ok(Json(page))
}

/// JSON Lines, oldest first: entries and checkpoints (see `hata_store::audit::AuditLines`),
/// streamed a batch at a time. A failure midway ends the body early: the verifier then
/// reports where the export stops.
async fn export(State(s): State<AppState>, Query(q): Query<ExportQuery>) -> AppResult<Response> {
    let mut errors = Vec::new();
    let (from, to) = time_range(q.from.as_deref(), q.to.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let lines = if from.is_some() || to.is_some() {
        // Nothing in the range: an empty export (first 1, last 0).
        let (first, last) = s
            .store
            .audit_seq_range(from.as_deref(), to.as_deref())
            .await?
            .unwrap_or((1, 0));
        AuditLines::new(Some(first), Some(last))
    } else {
        AuditLines::new(None, None)
    };
    let store = s.store.clone();
    let body = futures::stream::unfold(Some((lines, store)), |state| async move {
        let (mut lines, store) = state?;
        match lines.next(&store).await {
            Ok(Some(batch)) => {
                let mut out = Vec::with_capacity(batch.len() * 512);
                for line in batch {
                    if serde_json::to_writer(&mut out, &line).is_err() {
                        break;
                    }
                    out.push(b'\n');
                }
                Some((Ok::<_, std::io::Error>(out), Some((lines, store))))
            }
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "audit export stopped early");
                Some((Err(std::io::Error::other(e.to_string())), None))
            }
        }
    });
    let mut response = Body::from_stream(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jsonl"),
    );
    Ok(response)
}

/// The whole stored chain recomputed: `{ok: true, entries, head}` or `{ok: false, entries,
/// first_bad: {seq, reason}}`, both 200 (the request succeeded; the chain may not have).
async fn verify(State(s): State<AppState>) -> AppResult<Json<hata_audit::Report>> {
    Ok(Json(s.store.verify_audit().await?))
}

/// The Ed25519 public key that verifies checkpoints, as PEM text.
async fn public_key(State(s): State<AppState>) -> AppResult<Response> {
    let key = s.store.audit_public_key().ok_or_else(|| {
        AppError::NotFound("this server signs no audit checkpoints (no key configured)".into())
    })?;
    let pem = key.to_pem().map_err(|e| {
        AppError::Store(hata_store::StoreError::Internal(format!(
            "audit public key: {e}"
        )))
    })?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        pem,
    )
        .into_response())
}

/// The OpenAPI shapes of what these routes answer. The answers themselves are built by
/// `hata-audit` and the store (an entry is read from its row as a JSON object, so that a
/// tampered row is shown as it is); these types only describe them.
pub mod schema {
    use serde_json::Value;

    /// One audit entry (`docs/audit.md`): `hash` is SHA-256 over `prev_hash` and the
    /// entry's canonical JSON (RFC 8785) without `hash`.
    #[derive(serde::Serialize, utoipa::ToSchema)]
    #[schema(as = AuditEntry)]
    #[allow(dead_code)]
    pub struct Entry {
        /// 1, 2, 3, … without gaps.
        seq: u64,
        /// UTC with microseconds: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
        at: String,
        actor: Actor,
        /// What the actor acted as: `admin`, its role in the project, a token's kind.
        role: Option<String>,
        /// `create`, `update`, `delete`, `login`, `login_failed`, `logout`, `refused`.
        action: String,
        resource: Resource,
        project: Option<String>,
        environment: Option<String>,
        /// The resource before (`null` for a create).
        old: Value,
        /// The resource after (`null` for a delete).
        new: Value,
        /// RFC 6902 JSON Patch from `old` to `new`.
        patch: Vec<Value>,
        ip: Option<String>,
        user_agent: Option<String>,
        request_id: Option<String>,
        /// 64 hex digits; the first entry's is 64 zeros.
        prev_hash: String,
        hash: String,
    }

    #[derive(serde::Serialize, utoipa::ToSchema)]
    #[schema(as = AuditActor)]
    #[allow(dead_code)]
    pub struct Actor {
        /// `user`, `token`, `jwt`, `system` or `anonymous`.
        kind: String,
        id: String,
        name: Option<String>,
    }

    #[derive(serde::Serialize, utoipa::ToSchema)]
    #[schema(as = AuditResource)]
    #[allow(dead_code)]
    pub struct Resource {
        /// `project`, `environment`, `flag`, `segment`, `token`, `user`, `member`,
        /// `session` or `totp`.
        #[serde(rename = "type")]
        kind: String,
        key: String,
    }

    /// `GET /audit/verify`'s verdict.
    #[derive(serde::Serialize, utoipa::ToSchema)]
    #[schema(as = AuditVerification)]
    #[allow(dead_code)]
    pub struct Verification {
        ok: bool,
        /// Entries verified (before the first problem, if any).
        entries: u64,
        /// The last verified entry's hash.
        head: Option<String>,
        first_seq: Option<u64>,
        last_seq: Option<u64>,
        /// How the chain starts: `{kind: genesis}`, or after an anchoring checkpoint.
        start: Option<Value>,
        /// Checkpoints matched against their entries.
        checkpoints: u64,
        /// Whether checkpoint signatures were verified (the server has its key).
        signatures_checked: bool,
        /// The highest seq a verified signature vouches for.
        signed_through: Option<u64>,
        /// Every this many entries a checkpoint must exist (when checked).
        policy_every: Option<u64>,
        first_bad: Option<Bad>,
    }

    /// Where the chain stops verifying, and why.
    #[derive(serde::Serialize, utoipa::ToSchema)]
    #[schema(as = AuditBad)]
    #[allow(dead_code)]
    pub struct Bad {
        seq: u64,
        /// `malformed`, `hash_mismatch`, `broken_link`, `gap`, `reorder`, `bad_signature`,
        /// `checkpoint_mismatch`, `misplaced_checkpoint`, `truncated`, `missing_checkpoint`,
        /// `unanchored_start`.
        reason: String,
        message: String,
        /// Position in the export (1-based line).
        line: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::IntoParams;

    /// The patterns the OpenAPI document states for `resource` and `action` name exactly the
    /// store's resource types and actions.
    #[test]
    fn documented_patterns_are_the_vocabulary() {
        let params = AuditQuery::into_params(|| Some(utoipa::openapi::path::ParameterIn::Query));
        let pattern = |name: &str| -> String {
            let param = params.iter().find(|p| p.name == name).expect("documented");
            let schema = serde_json::to_value(&param.schema).expect("a schema");
            schema["pattern"].as_str().expect("a pattern").to_string()
        };
        let words = |pattern: &str| -> Vec<String> {
            let inner = pattern
                .split_once("^(")
                .and_then(|(_, rest)| rest.split_once(')'))
                .map(|(words, _)| words)
                .unwrap_or_default();
            inner.split('|').map(str::to_string).collect()
        };
        assert_eq!(
            words(&pattern("resource")),
            ResourceType::ALL.map(|r| r.as_str().to_string())
        );
        assert_eq!(
            words(&pattern("action")),
            Action::ALL.map(|a| a.as_str().to_string())
        );
    }
}
