//! Two-factor authentication: enrol an authenticator (pending), confirm it with a code (on,
//! with fresh recovery codes), turn it off. The secret and the codes are checked by the
//! caller (`hata_access::totp`); here they are stored, and steps and codes consumed. The
//! change record names what happened, never the secret or a code. `users.mfa` mirrors "has a
//! confirmed authenticator" and bumps the user's version, as any change of the user does.

use hata_access::totp::TotpSecret;
use serde_json::{json, Value};
use sqlx::Row;

use super::engine::{to_value, WriteTx};
use super::SecondFactor;
use crate::change::{Action, ResourceType};
use crate::error::{StoreError, StoreResult};

impl WriteTx {
    pub(super) async fn enrol_totp(
        &mut self,
        user_id: &str,
        secret: &TotpSecret,
    ) -> StoreResult<(Option<Value>, i64)> {
        let user = self.user(user_id).await?;
        if user.mfa {
            return Err(StoreError::Conflict {
                message: "two-factor authentication is already on; turn it off first".into(),
                dependants: Vec::new(),
            });
        }
        sqlx::query("DELETE FROM user_totp WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("INSERT INTO user_totp (user_id, secret, created_at) VALUES ($1, $2, $3)")
            .bind(user_id)
            .bind(secret.as_str())
            .bind(&self.now)
            .execute(&mut *self.tx)
            .await?;
        self.change(
            Action::Create,
            ResourceType::Totp,
            None,
            user_id,
            None,
            Some(json!({ "confirmed": false })),
        );
        Ok((None, user.version))
    }

    pub(super) async fn confirm_totp(
        &mut self,
        user_id: &str,
        step: u64,
        recovery_code_hashes: &[String],
        keep_session: Option<&str>,
    ) -> StoreResult<(Option<Value>, i64)> {
        let user = self.user(user_id).await?;
        if user.mfa {
            return Err(StoreError::Conflict {
                message: "two-factor authentication is already on".into(),
                dependants: Vec::new(),
            });
        }
        let step = i64::try_from(step).map_err(|_| StoreError::Internal("step".into()))?;
        let confirmed = sqlx::query(
            "UPDATE user_totp SET confirmed_at = $2, last_step = $3 WHERE user_id = $1 AND last_step < $3",
        )
        .bind(user_id)
        .bind(&self.now)
        .bind(step)
        .execute(&mut *self.tx)
        .await?
        .rows_affected();
        if confirmed == 0 {
            return Err(StoreError::NotFound(format!(
                "a pending authenticator of user {user_id:?}"
            )));
        }
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        for hash in recovery_code_hashes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(user_id)
                .bind(hash)
                .execute(&mut *self.tx)
                .await?;
        }
        self.set_mfa(user_id, true).await?;
        // The session that confirmed proved the second factor just now.
        sqlx::query("UPDATE sessions SET mfa = 1 WHERE user_id = $1 AND id = $2")
            .bind(user_id)
            .bind(keep_session.unwrap_or_default())
            .execute(&mut *self.tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
            .bind(user_id)
            .bind(keep_session.unwrap_or_default())
            .execute(&mut *self.tx)
            .await?;
        let new = self.user(user_id).await?;
        self.change(
            Action::Update,
            ResourceType::Totp,
            None,
            user_id,
            Some(json!({ "confirmed": false })),
            Some(json!({ "confirmed": true, "recovery_codes": recovery_code_hashes.len() })),
        );
        Ok((Some(to_value(&new)?), new.version))
    }

    pub(super) async fn disable_totp(
        &mut self,
        user_id: &str,
    ) -> StoreResult<(Option<Value>, i64)> {
        let user = self.user(user_id).await?;
        let removed = sqlx::query("DELETE FROM user_totp WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        if removed == 0 && !user.mfa {
            // Already off: the caller's wish holds, and nothing changed to record.
            return Ok((Some(to_value(&user)?), user.version));
        }
        self.set_mfa(user_id, false).await?;
        // Turning it off is conservative: no open session of the user counts as two-factor
        // any more (a later login says again how it was made).
        sqlx::query("UPDATE sessions SET mfa = 0 WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        let new = self.user(user_id).await?;
        self.change(
            Action::Delete,
            ResourceType::Totp,
            None,
            user_id,
            Some(json!({ "confirmed": user.mfa })),
            None,
        );
        Ok((Some(to_value(&new)?), new.version))
    }

    async fn set_mfa(&mut self, user_id: &str, on: bool) -> StoreResult<()> {
        sqlx::query(
            "UPDATE users SET mfa = $2, version = version + 1, updated_at = $3 WHERE id = $1",
        )
        .bind(user_id)
        .bind(i64::from(on))
        .bind(&self.now)
        .execute(&mut *self.tx)
        .await?;
        Ok(())
    }

    /// Consumes a login's second factor: an authenticator step later than the last one used,
    /// or an unused recovery code. `NotFound` when it was used meanwhile (a replay or a race).
    /// Returns what the change record says of it.
    pub(super) async fn consume_second_factor(
        &mut self,
        user_id: &str,
        factor: &SecondFactor,
    ) -> StoreResult<Value> {
        let used = match factor {
            SecondFactor::Totp { step } => {
                let step = i64::try_from(*step).map_err(|_| StoreError::Internal("step".into()))?;
                sqlx::query(
                    "UPDATE user_totp SET last_step = $2 WHERE user_id = $1 AND confirmed_at IS NOT NULL AND last_step < $2",
                )
                .bind(user_id)
                .bind(step)
                .execute(&mut *self.tx)
                .await?
                .rows_affected()
            }
            SecondFactor::RecoveryCode { hash } => sqlx::query(
                "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
            )
            .bind(user_id)
            .bind(hash)
            .bind(&self.now)
            .execute(&mut *self.tx)
            .await?
            .rows_affected(),
        };
        if used == 0 {
            return Err(StoreError::NotFound(format!(
                "an unused second factor of user {user_id:?}"
            )));
        }
        Ok(match factor {
            SecondFactor::Totp { .. } => json!("totp"),
            SecondFactor::RecoveryCode { .. } => {
                let left: i64 = sqlx::query(
                    "SELECT COUNT(*) AS n FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user_id)
                .fetch_one(&mut *self.tx)
                .await?
                .try_get("n")?;
                json!({ "recovery_code": { "left": left } })
            }
        })
    }
}
