//! Users and their project memberships: create, update (name, admin, disabled, password),
//! delete; put and remove a member. User writes bump no revision: nothing they change is
//! evaluated. A password change or a disabled user ends the user's sessions in the same
//! transaction. The last live administrator (admin user or admin token) cannot be demoted,
//! disabled or deleted.

use hata_access::user::{name_problem, normalize_email};
use hata_access::Role;
use hata_core::validate::{FieldError, ValidationErrors};
use serde_json::Value;
use sqlx::Row;

use super::engine::{check_version, is_unique_violation, to_value, WriteTx};
use super::{Expected, NewUser, UserUpdate};
use crate::change::{Action, ResourceType};
use crate::error::{StoreError, StoreResult};
use crate::records::{token_expired, MemberRecord, UserRecord};
use crate::users::{decode_member, decode_user, MEMBER_SELECT, USER_COLUMNS};

fn invalid(field: &str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(ValidationErrors(vec![FieldError {
        field: field.into(),
        message: message.into(),
    }]))
}

impl WriteTx {
    pub(super) async fn create_user(&mut self, user: NewUser) -> StoreResult<(Option<Value>, i64)> {
        let email = normalize_email(&user.email).map_err(|m| invalid("email", m))?;
        if let Some(m) = name_problem(&user.name) {
            return Err(invalid("name", m));
        }
        sqlx::query(
            "INSERT INTO users (id, email, name, password_hash, admin, disabled, version, created_at, updated_at, password_changed_at)
             VALUES ($1, $2, $3, $4, $5, 0, 1, $6, $6, $7)",
        )
        .bind(&user.id)
        .bind(&email)
        .bind(user.name.trim())
        .bind(&user.password_hash)
        .bind(i64::from(user.admin))
        .bind(&self.now)
        .bind(user.password_hash.as_ref().map(|_| self.now.clone()))
        .execute(&mut *self.tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists(format!("user with email {email:?}"))
            } else {
                e.into()
            }
        })?;
        let value = to_value(&self.user(&user.id).await?)?;
        self.change(
            Action::Create,
            ResourceType::User,
            None,
            &user.id,
            None,
            Some(value.clone()),
        );
        Ok((Some(value), 1))
    }

    /// The user `id`, its row locked until the transaction ends (the portable row lock, see
    /// `project_version`).
    pub(super) async fn user(&mut self, id: &str) -> StoreResult<UserRecord> {
        let row = sqlx::query(&format!(
            "UPDATE users SET version = version WHERE id = $1 RETURNING {USER_COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("user {id:?}")))?;
        decode_user(&row)
    }

    pub(super) async fn update_user(
        &mut self,
        id: &str,
        expected: &Expected,
        update: UserUpdate,
    ) -> StoreResult<(Option<Value>, i64)> {
        let old = self.user(id).await?;
        check_version(expected, old.version)?;
        if let Some(m) = update.name.as_deref().and_then(name_problem) {
            return Err(invalid("name", m));
        }
        let admin = update.admin.unwrap_or(old.admin);
        let disabled = update.disabled.unwrap_or(old.disabled);
        let stays_admin = admin && !disabled;
        if old.admin && !old.disabled && !stays_admin {
            self.keep_an_admin(None, Some(id), "demoting or disabling")
                .await?;
        }
        let name = update.name.as_deref().map(str::trim).unwrap_or(&old.name);
        let new_password = update.password_hash.is_some();
        let unchanged = name == old.name && admin == old.admin && disabled == old.disabled;
        if unchanged && !new_password {
            return Ok((Some(to_value(&old)?), old.version));
        }
        sqlx::query(
            "UPDATE users SET name = $2, admin = $3, disabled = $4, version = version + 1, updated_at = $5, \
             password_hash = COALESCE($6, password_hash), \
             password_changed_at = CASE WHEN $6 IS NULL THEN password_changed_at ELSE $5 END, \
             failed_logins = CASE WHEN $6 IS NULL THEN failed_logins ELSE 0 END, \
             retry_after = CASE WHEN $6 IS NULL THEN retry_after ELSE NULL END, \
             locked_until = CASE WHEN $6 IS NULL THEN locked_until ELSE NULL END \
             WHERE id = $1",
        )
        .bind(id)
        .bind(name)
        .bind(i64::from(admin))
        .bind(i64::from(disabled))
        .bind(&self.now)
        .bind(&update.password_hash)
        .execute(&mut *self.tx)
        .await?;
        if new_password || disabled {
            // A new password ends every other session (the one that changed it may stay); a
            // disabled user keeps none.
            let keep = if disabled { None } else { update.keep_session };
            sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
                .bind(id)
                .bind(keep.unwrap_or_default())
                .execute(&mut *self.tx)
                .await?;
        }
        let new = self.user(id).await?;
        let mut recorded = to_value(&new)?;
        if new_password {
            // The change record says that the password changed, never what to.
            recorded["password_changed"] = Value::Bool(true);
        }
        self.change(
            Action::Update,
            ResourceType::User,
            None,
            id,
            Some(to_value(&old)?),
            Some(recorded),
        );
        Ok((Some(to_value(&new)?), new.version))
    }

    pub(super) async fn delete_user(
        &mut self,
        id: &str,
        expected: &Expected,
    ) -> StoreResult<(Option<Value>, i64)> {
        let old = self.user(id).await?;
        check_version(expected, old.version)?;
        if old.admin && !old.disabled {
            self.keep_an_admin(None, Some(id), "deleting").await?;
        }
        // Memberships and sessions go with the user (ON DELETE CASCADE).
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        self.change(
            Action::Delete,
            ResourceType::User,
            None,
            id,
            Some(to_value(&old)?),
            None,
        );
        Ok((None, old.version))
    }

    /// 409 unless a live administrator other than the token `token` and the user `user`
    /// remains: an admin token that has not expired, or an enabled admin user. Every admin row
    /// is locked first, so two concurrent removals of the last two admins cannot both pass.
    pub(super) async fn keep_an_admin(
        &mut self,
        token: Option<&str>,
        user: Option<&str>,
        doing: &str,
    ) -> StoreResult<()> {
        let tokens = sqlx::query(
            "UPDATE tokens SET kind = kind WHERE kind = 'admin' AND id <> $1 RETURNING expires_at",
        )
        .bind(token.unwrap_or_default())
        .fetch_all(&mut *self.tx)
        .await?;
        let users = sqlx::query(
            "UPDATE users SET admin = admin WHERE admin = 1 AND disabled = 0 AND id <> $1 RETURNING id",
        )
        .bind(user.unwrap_or_default())
        .fetch_all(&mut *self.tx)
        .await?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
        let mut live = users.len();
        for row in tokens {
            let expires_at: Option<String> = row.try_get("expires_at")?;
            live += usize::from(!token_expired(expires_at.as_deref(), now));
        }
        if live > 0 {
            return Ok(());
        }
        let what = match (token, user) {
            (Some(t), _) => format!("token {t:?}"),
            (_, Some(u)) => format!("user {u:?}"),
            _ => "this".into(),
        };
        Err(StoreError::Conflict {
            message: format!(
                "{doing} {what} would leave no live administrator (admin user or admin \
                 token); make another administrator first (or offline: `hata user create \
                 --admin`, `hata token create --admin`)"
            ),
            dependants: Vec::new(),
        })
    }

    pub(super) async fn put_member(
        &mut self,
        project: &str,
        user_id: &str,
        role: Role,
    ) -> StoreResult<(Option<Value>, i64)> {
        self.project_version(project).await?;
        self.user(user_id).await?;
        let old = self.member(project, user_id).await?;
        if old.as_ref().is_some_and(|m| m.role == role) {
            return Ok((old.as_ref().map(to_value).transpose()?, 1));
        }
        sqlx::query(
            "INSERT INTO memberships (project, user_id, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (project, user_id) DO UPDATE SET role = $3, updated_at = $4",
        )
        .bind(project)
        .bind(user_id)
        .bind(role.as_str())
        .bind(&self.now)
        .execute(&mut *self.tx)
        .await?;
        let new = self
            .member(project, user_id)
            .await?
            .ok_or_else(|| StoreError::Internal("membership vanished".into()))?;
        let new = to_value(&new)?;
        self.change(
            if old.is_some() {
                Action::Update
            } else {
                Action::Create
            },
            ResourceType::Member,
            Some(project),
            user_id,
            old.as_ref().map(to_value).transpose()?,
            Some(new.clone()),
        );
        Ok((Some(new), 1))
    }

    pub(super) async fn delete_member(
        &mut self,
        project: &str,
        user_id: &str,
    ) -> StoreResult<(Option<Value>, i64)> {
        self.project_version(project).await?;
        let old = self.member(project, user_id).await?.ok_or_else(|| {
            StoreError::NotFound(format!("member {user_id:?} of project {project:?}"))
        })?;
        sqlx::query("DELETE FROM memberships WHERE project = $1 AND user_id = $2")
            .bind(project)
            .bind(user_id)
            .execute(&mut *self.tx)
            .await?;
        self.change(
            Action::Delete,
            ResourceType::Member,
            Some(project),
            user_id,
            Some(to_value(&old)?),
            None,
        );
        Ok((None, 1))
    }

    pub(super) async fn member(
        &mut self,
        project: &str,
        user_id: &str,
    ) -> StoreResult<Option<MemberRecord>> {
        let row = sqlx::query(&format!(
            "{MEMBER_SELECT} WHERE m.project = $1 AND m.user_id = $2"
        ))
        .bind(project)
        .bind(user_id)
        .fetch_optional(&mut *self.tx)
        .await?;
        row.as_ref().map(decode_member).transpose()
    }
}
