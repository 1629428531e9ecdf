//! Logins and logouts: what a login attempt changes. A successful login resets the user's
//! failure count and creates a session (ending the user's dead ones); a failed one counts the
//! failure and, as `hata_access::lockout` says, slows the next attempt down or locks the
//! account. Both are recorded like every other change, for the audit log; the record names
//! sessions by id, never by secret.

use hata_access::lockout::{AfterFailure, LockoutPolicy};
use hata_access::session::SessionPolicy;
use serde_json::{json, Value};
use sqlx::Row;

use super::engine::{to_value, WriteTx};
use super::{NewSession, SecondFactor};
use crate::change::{Action, ResourceType};
use crate::error::{StoreError, StoreResult};
use crate::rfc3339;

fn nanos(t: &str) -> i128 {
    hata_core::operand::parse_rfc3339(t).unwrap_or_default()
}

impl WriteTx {
    pub(super) async fn login(
        &mut self,
        user_id: &str,
        session: NewSession,
        policy: SessionPolicy,
        second_factor: Option<&SecondFactor>,
    ) -> StoreResult<(Option<Value>, i64)> {
        let user = self.user(user_id).await?;
        if user.disabled {
            return Err(StoreError::NotFound(format!("user {user_id:?}")));
        }
        let factor = match second_factor {
            Some(f) => Some(self.consume_second_factor(user_id, f).await?),
            None => None,
        };
        sqlx::query(
            "UPDATE users SET failed_logins = 0, retry_after = NULL, locked_until = NULL, last_login_at = $2 WHERE id = $1",
        )
        .bind(user_id)
        .bind(&self.now)
        .execute(&mut *self.tx)
        .await?;
        let now = nanos(&self.now);
        let sessions =
            sqlx::query("SELECT id, created_at, last_seen_at FROM sessions WHERE user_id = $1")
                .bind(user_id)
                .fetch_all(&mut *self.tx)
                .await?;
        for row in sessions {
            let (created, seen): (String, String) =
                (row.try_get("created_at")?, row.try_get("last_seen_at")?);
            if !policy.alive(nanos(&created), nanos(&seen), now) {
                sqlx::query("DELETE FROM sessions WHERE id = $1")
                    .bind(row.try_get::<String, _>("id")?)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        sqlx::query(
            "INSERT INTO sessions (id, secret_hash, user_id, csrf_token, created_at, last_seen_at, mfa)
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
        )
        .bind(&session.id)
        .bind(&session.secret_hash)
        .bind(user_id)
        .bind(&session.csrf_token)
        .bind(&self.now)
        .bind(i64::from(session.mfa || factor.is_some()))
        .execute(&mut *self.tx)
        .await?;
        self.change(
            Action::Login,
            ResourceType::Session,
            None,
            &session.id,
            None,
            Some(match factor {
                Some(f) => json!({"user_id": user_id, "created_at": self.now, "second_factor": f}),
                None => json!({"user_id": user_id, "created_at": self.now}),
            }),
        );
        let user = self.user(user_id).await?;
        Ok((Some(to_value(&user)?), user.version))
    }

    /// Counts a failed login of `user_id`. The value is `{failed_logins, retry_after?,
    /// locked_until?}` as now stored.
    pub(super) async fn login_failed(
        &mut self,
        user_id: &str,
        policy: LockoutPolicy,
    ) -> StoreResult<(Option<Value>, i64)> {
        let row = sqlx::query(
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 RETURNING failed_logins",
        )
        .bind(user_id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("user {user_id:?}")))?;
        let failures: i64 = row.try_get("failed_logins")?;
        let after = policy.after_failure(u32::try_from(failures).unwrap_or(u32::MAX));
        let now = time::OffsetDateTime::now_utc();
        let (failed_logins, retry_after, locked_until) = match after {
            AfterFailure::Nothing => (failures, None, None),
            AfterFailure::SlowDown(wait) => (failures, Some(rfc3339(now + wait)), None),
            AfterFailure::Lock(wait) => (0, None, Some(rfc3339(now + wait))),
        };
        sqlx::query(
            "UPDATE users SET failed_logins = $2, retry_after = $3, locked_until = COALESCE($4, locked_until) WHERE id = $1",
        )
        .bind(user_id)
        .bind(failed_logins)
        .bind(&retry_after)
        .bind(&locked_until)
        .execute(&mut *self.tx)
        .await?;
        let mut value = json!({ "failed_logins": failures });
        if let Some(t) = retry_after {
            value["retry_after"] = Value::String(t);
        }
        if let Some(t) = locked_until {
            value["locked_until"] = Value::String(t);
        }
        self.change(
            Action::LoginFailed,
            ResourceType::User,
            None,
            user_id,
            None,
            Some(value.clone()),
        );
        Ok((Some(value), 1))
    }

    pub(super) async fn logout(&mut self, session_id: &str) -> StoreResult<(Option<Value>, i64)> {
        let row = sqlx::query("DELETE FROM sessions WHERE id = $1 RETURNING user_id")
            .bind(session_id)
            .fetch_optional(&mut *self.tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("session {session_id:?}")))?;
        let user_id: String = row.try_get("user_id")?;
        self.change(
            Action::Logout,
            ResourceType::Session,
            None,
            session_id,
            Some(json!({ "user_id": user_id })),
            None,
        );
        Ok((None, 1))
    }
}
