//! Reads of people: users, their project memberships and their sessions. Writes go through
//! `Store::write` (`write/users.rs`, `write/sessions.rs`); the one exception is
//! `touch_session`, which records that a session was used: telemetry for the idle timeout,
//! like evaluation counts, not a change anyone made.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::{StoreError, StoreResult};
use crate::read::page;
use crate::records::{
    MemberRecord, Page, Role, SessionUser, TotpState, UserCredentials, UserRecord,
};
use crate::Store;

pub(crate) const USER_COLUMNS: &str =
    "id, email, name, password_hash, admin, disabled, version, created_at, updated_at, \
     last_login_at, failed_logins, retry_after, locked_until, mfa";

/// The `users` columns under the alias `u` (for joins).
fn user_columns_of_u() -> String {
    USER_COLUMNS
        .split(", ")
        .map(|c| format!("u.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn decode_user(row: &AnyRow) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        admin: row.try_get::<i64, _>("admin")? != 0,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        password_set: row.try_get::<Option<String>, _>("password_hash")?.is_some(),
        mfa: row.try_get::<i64, _>("mfa")? != 0,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_login_at: row.try_get("last_login_at")?,
        locked_until: row.try_get("locked_until")?,
    })
}

pub(crate) fn decode_credentials(row: &AnyRow) -> StoreResult<UserCredentials> {
    Ok(UserCredentials {
        user: decode_user(row)?,
        password_hash: row.try_get("password_hash")?,
        failed_logins: row.try_get("failed_logins")?,
        retry_after: row.try_get("retry_after")?,
    })
}

pub(crate) fn decode_member(row: &AnyRow) -> StoreResult<MemberRecord> {
    let role: String = row.try_get("role")?;
    Ok(MemberRecord {
        project: row.try_get("project")?,
        user_id: row.try_get("user_id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Internal(format!("stored role {role:?}")))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

pub(crate) const MEMBER_SELECT: &str =
    "SELECT m.project, m.user_id, u.email, u.name, m.role, m.created_at, m.updated_at \
     FROM memberships m JOIN users u ON u.id = m.user_id";

impl Store {
    /// A page of users ordered by email; the cursor is the last email.
    #[tracing::instrument(name = "store.page_users", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "page_users"))]
    pub async fn page_users(
        &self,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<Page<UserRecord>> {
        let limit = limit.clamp(1, crate::read::MAX_PAGE);
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email > $1 ORDER BY email LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(limit as i64 + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows
            .iter()
            .map(decode_user)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page(items, limit, |u| &u.email))
    }

    #[tracing::instrument(name = "store.get_user", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "get_user"))]
    pub async fn get_user(&self, id: &str) -> StoreResult<UserRecord> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {id:?}")))?;
        decode_user(&row)
    }

    /// Whether the store has any user (the first-start bootstrap creates one only if not).
    pub async fn has_users(&self) -> StoreResult<bool> {
        Ok(sqlx::query("SELECT 1 AS one FROM users LIMIT 1")
            .fetch_optional(self.reader())
            .await?
            .is_some())
    }

    /// The user with this (normalised) email and what a login checks, if there is one.
    #[tracing::instrument(name = "store.user_credentials_by_email", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "user_credentials_by_email"))]
    pub async fn user_credentials_by_email(
        &self,
        email: &str,
    ) -> StoreResult<Option<UserCredentials>> {
        self.credentials_where("email", email).await
    }

    pub async fn user_credentials(&self, id: &str) -> StoreResult<UserCredentials> {
        self.credentials_where("id", id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {id:?}")))
    }

    /// `column` is `id` or `email` (both unique), never input.
    async fn credentials_where(
        &self,
        column: &str,
        value: &str,
    ) -> StoreResult<Option<UserCredentials>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE {column} = $1"
        ))
        .bind(value)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(decode_credentials).transpose()
    }

    /// The user's authenticator (pending or confirmed), if any.
    pub async fn user_totp(&self, user_id: &str) -> StoreResult<Option<TotpState>> {
        let row = sqlx::query(
            "SELECT t.secret, t.confirmed_at, t.last_step, \
             (SELECT COUNT(*) FROM recovery_codes r WHERE r.user_id = t.user_id AND r.used_at IS NULL) AS left_codes \
             FROM user_totp t WHERE t.user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TotpState {
            secret: hata_access::totp::TotpSecret::from_stored(row.try_get("secret")?),
            confirmed: row.try_get::<Option<String>, _>("confirmed_at")?.is_some(),
            last_step: u64::try_from(row.try_get::<i64, _>("last_step")?).unwrap_or(0),
            recovery_codes_left: row.try_get("left_codes")?,
        }))
    }

    /// Whether `user_id` has an unused recovery code with this hash.
    pub async fn recovery_code_unused(&self, user_id: &str, code_hash: &str) -> StoreResult<bool> {
        Ok(sqlx::query(
            "SELECT 1 AS one FROM recovery_codes WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
        )
        .bind(user_id)
        .bind(code_hash)
        .fetch_optional(self.reader())
        .await?
        .is_some())
    }

    /// Project key → role for a user.
    pub async fn user_projects(&self, user_id: &str) -> StoreResult<BTreeMap<String, Role>> {
        let rows = sqlx::query(&format!("{MEMBER_SELECT} WHERE m.user_id = $1"))
            .bind(user_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter()
            .map(|r| decode_member(r).map(|m| (m.project, m.role)))
            .collect()
    }

    /// A page of a project's members, by email; the cursor is the last email.
    #[tracing::instrument(name = "store.page_members", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "page_members"))]
    pub async fn page_members(
        &self,
        project: &str,
        limit: usize,
        after: Option<&str>,
    ) -> StoreResult<Page<MemberRecord>> {
        self.get_project(project).await?;
        let limit = limit.clamp(1, crate::read::MAX_PAGE);
        let rows = sqlx::query(&format!(
            "{MEMBER_SELECT} WHERE m.project = $1 AND u.email > $2 ORDER BY u.email LIMIT $3"
        ))
        .bind(project)
        .bind(after.unwrap_or(""))
        .bind(limit as i64 + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows
            .iter()
            .map(decode_member)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page(items, limit, |m| &m.email))
    }

    /// The session whose secret hashes to `secret_hash`, with its user and the user's roles,
    /// read in one query plus one for the roles. Read on every cookie-authenticated request,
    /// so a logout, a disabled user or a changed role takes effect at once on every replica.
    #[tracing::instrument(name = "store.session_user", level = "debug", skip_all,
        fields(otel.kind = "client", db.system = self.backend().db_system(), db.operation = "session_user"))]
    pub async fn session_user(&self, secret_hash: &str) -> StoreResult<Option<SessionUser>> {
        let _timer = self.timings.start(crate::timing::Operation::Session);
        let row = sqlx::query(&format!(
            "SELECT s.id AS session_id, s.csrf_token, s.created_at AS session_created_at, s.mfa AS session_mfa, \
             s.last_seen_at, {} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.secret_hash = $1",
            user_columns_of_u()
        ))
        .bind(secret_hash)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user = decode_user(&row)?;
        let projects = self.user_projects(&user.id).await?;
        Ok(Some(SessionUser {
            session_id: row.try_get("session_id")?,
            mfa: row.try_get::<i64, _>("session_mfa")? != 0,
            csrf_token: row.try_get("csrf_token")?,
            created_at: row.try_get("session_created_at")?,
            last_seen_at: row.try_get("last_seen_at")?,
            user,
            projects,
        }))
    }

    /// Records that a session was used at `now` (for its idle timeout).
    pub async fn touch_session(&self, session_id: &str, now: &str) -> StoreResult<()> {
        let _timer = self.timings.start(crate::timing::Operation::TouchSession);
        sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id = $1")
            .bind(session_id)
            .bind(now)
            .execute(self.writer())
            .await?;
        Ok(())
    }
}
