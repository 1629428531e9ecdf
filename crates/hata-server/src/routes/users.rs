//! `/users`: people (admins manage them), and `PUT /users/me/password` (anyone, for oneself).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use hata_access::user::{name_problem, normalize_email};
use hata_access::Role;
use hata_core::validate::FieldError;
use hata_store::{NewUser, Page, UserRecord, UserUpdate, WriteOp};
use serde::{Deserialize, Serialize};

use super::{versioned, written, Writer};
use crate::auth::identity::Identity;
use crate::auth::session::SessionCaller;
use crate::auth::Caller;
use crate::error::{AppError, AppResult};
use crate::extract::{IfMatch, JsonBody, Paging, Path, Query};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{id}", get(show).patch(update).delete(remove))
        .route("/users/me/password", put(change_own_password))
}

/// `POST /users` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    /// An address: one `@`, a non-empty local part, a domain with a dot inside it, no space
    /// or control character (checked trimmed and lower-cased; at most 254 bytes).
    #[schema(
        pattern = "^[!-?A-~]+@[!-\\-/-?A-~][!-?A-~]*\\.[!-?A-~]*[!-\\-/-?A-~]$",
        max_length = 254
    )]
    pub email: String,
    /// Defaults to the email.
    #[serde(default)]
    #[schema(
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
        max_length = 200
    )]
    pub name: Option<String>,
    /// Without one the user logs in only by single sign-on (or after an admin sets one).
    /// At least 12 characters (at most 1024 bytes), not a common password, not the email.
    #[serde(default)]
    #[schema(min_length = 12, max_length = 1024)]
    pub password: Option<String>,
    #[serde(default)]
    pub admin: bool,
}

/// `PATCH /users/{id}` body: the fields to change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    #[schema(
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
        max_length = 200
    )]
    name: Option<String>,
    admin: Option<bool>,
    /// A disabled user cannot log in; its sessions end.
    disabled: Option<bool>,
    /// A new password (an admin's reset): ends the user's sessions and clears a lock.
    #[schema(min_length = 12, max_length = 1024)]
    password: Option<String>,
}

/// `PUT /users/me/password` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    current: String,
    #[schema(min_length = 12, max_length = 1024)]
    new: String,
}

/// `GET /users/{id}`: the user and its roles.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserWithProjects {
    #[serde(flatten)]
    user: UserRecord,
    /// Project key → role.
    #[schema(value_type = BTreeMap<String, Role>)]
    projects: BTreeMap<String, Role>,
}

/// A new password's problems against the policy, named `field`.
fn password_problems(password: &str, email: &str, name: &str) -> Option<FieldError> {
    hata_access::password::check(password, email)
        .err()
        .map(|p| FieldError::new(name, p.to_string()))
}

async fn list(
    State(s): State<AppState>,
    Query(p): Query<Paging>,
) -> AppResult<Json<Page<UserRecord>>> {
    Ok(Json(
        s.store.page_users(p.limit()?, p.cursor.as_deref()).await?,
    ))
}

async fn create(
    State(s): State<AppState>,
    Extension(identity): Extension<Arc<Identity>>,
    Writer(w): Writer,
    JsonBody(req): JsonBody<NewUserRequest>,
) -> AppResult<Response> {
    let out = create_user(&s, &identity, &w, req).await?;
    Ok(written(StatusCode::CREATED, out))
}

/// Creates a user (this route's and the web UI's checks): the email normalised, the name
/// (the email when none), the password against the policy, every problem named by field.
pub async fn create_user(
    s: &AppState,
    identity: &Identity,
    w: &hata_store::WriteMeta,
    req: NewUserRequest,
) -> AppResult<hata_store::WriteOutcome> {
    let mut errors = Vec::new();
    let email = normalize_email(&req.email)
        .map_err(|m| errors.push(FieldError::new("email", m)))
        .unwrap_or_default();
    let name = req.name.unwrap_or_else(|| email.clone());
    if let Some(m) = name_problem(&name) {
        errors.push(FieldError::new("name", m));
    }
    if let Some(p) = req.password.as_deref() {
        errors.extend(password_problems(p, &email, "password"));
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let password_hash = match req.password {
        Some(p) => Some(identity.passwords.hash(p).await?),
        None => None,
    };
    let user = NewUser {
        id: hata_access::user::new_id(),
        email,
        name,
        password_hash,
        admin: req.admin,
    };
    s.write(w, WriteOp::CreateUser { user }).await
}

async fn show(State(s): State<AppState>, Path(id): Path<String>) -> AppResult<Response> {
    let user = s.store.get_user(&id).await?;
    let projects = s.store.user_projects(&id).await?;
    let version = user.version;
    Ok(versioned(
        StatusCode::OK,
        version,
        &UserWithProjects { user, projects },
    ))
}

async fn update(
    State(s): State<AppState>,
    Extension(identity): Extension<Arc<Identity>>,
    session: Option<Extension<SessionCaller>>,
    Path(id): Path<String>,
    IfMatch(expected_version): IfMatch,
    Writer(w): Writer,
    JsonBody(req): JsonBody<UserPatch>,
) -> AppResult<Response> {
    let mut errors = Vec::new();
    if let Some(m) = req.name.as_deref().and_then(name_problem) {
        errors.push(FieldError::new("name", m));
    }
    let password_hash = match req.password {
        Some(p) => {
            let user = s.store.get_user(&id).await?;
            errors.extend(password_problems(&p, &user.email, "password"));
            if !errors.is_empty() {
                return Err(AppError::Invalid(errors));
            }
            Some(identity.passwords.hash(p).await?)
        }
        None => None,
    };
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    // An admin resetting their own password stays logged in here.
    let keep_session = session
        .filter(|_| w.actor.id == id)
        .map(|Extension(s)| s.id);
    let update = UserUpdate {
        name: req.name,
        admin: req.admin,
        disabled: req.disabled,
        password_hash,
        keep_session,
    };
    let out = s
        .write(
            &w,
            WriteOp::UpdateUser {
                id,
                expected_version,
                update,
            },
        )
        .await?;
    Ok(written(StatusCode::OK, out))
}

async fn remove(
    State(s): State<AppState>,
    Path(id): Path<String>,
    IfMatch(expected_version): IfMatch,
    Writer(w): Writer,
) -> AppResult<StatusCode> {
    s.write(
        &w,
        WriteOp::DeleteUser {
            id,
            expected_version,
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's credentials, once `password` (the body's `field`) is checked to be their
/// current password: for what a person confirms with it (a new password, turning two-factor
/// authentication off). A wrong one is a 422 naming `field` and counts as a failed login
/// (slow-down and lockout), as a guess at the login would.
pub(super) async fn check_own_password(
    s: &AppState,
    identity: &Identity,
    w: &hata_store::WriteMeta,
    user_id: &str,
    password: String,
    field: &str,
) -> AppResult<hata_store::UserCredentials> {
    let creds = s.store.user_credentials(user_id).await?;
    let stored = creds
        .password_hash
        .clone()
        .unwrap_or_else(|| hata_access::password::decoy_hash().to_string());
    let ok = identity.passwords.verify(password, stored).await? && creds.password_hash.is_some();
    if !ok {
        s.store
            .write(
                w,
                WriteOp::LoginFailed {
                    user_id: user_id.to_string(),
                    policy: identity.lockout,
                },
            )
            .await?;
        return Err(AppError::Invalid(vec![FieldError::new(
            field,
            "is not the current password",
        )]));
    }
    Ok(creds)
}

/// A user changes their own password: the current one is checked (a wrong one counts as a
/// failed login), the new one against the policy; every other session of the user ends.
async fn change_own_password(
    State(s): State<AppState>,
    Extension(identity): Extension<Arc<Identity>>,
    Extension(Caller(caller)): Extension<Caller>,
    session: Option<Extension<SessionCaller>>,
    Writer(w): Writer,
    JsonBody(req): JsonBody<PasswordChange>,
) -> AppResult<StatusCode> {
    let creds = check_own_password(&s, &identity, &w, &caller.id, req.current, "current").await?;
    if let Some(problem) = password_problems(&req.new, &creds.user.email, "new") {
        return Err(AppError::Invalid(vec![problem]));
    }
    let password_hash = identity.passwords.hash(req.new).await?;
    s.write(
        &w,
        WriteOp::UpdateUser {
            id: caller.id.clone(),
            expected_version: hata_store::Expected::Any,
            update: UserUpdate {
                password_hash: Some(password_hash),
                keep_session: session.map(|Extension(s)| s.id),
                ..UserUpdate::default()
            },
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
