//! Single sign-on: the user a provider's identity is, linked or created in one transaction.
//! Users are found by the (issuer, subject) link, never by email alone: an existing user is
//! linked by email only when the provider verified that email.

use hata_access::user::{name_problem, normalize_email};
use hata_core::validate::{FieldError, ValidationErrors};
use serde_json::{json, Value};
use sqlx::Row;

use super::engine::{to_value, WriteTx};
use super::{SsoIdentity, SsoRoles};
use crate::change::{Action, ResourceType};
use crate::error::{StoreError, StoreResult};

/// The `meta` key of the single sign-on configuration last recorded.
const SSO_CONFIG_META: &str = "sso_config";

impl WriteTx {
    /// Records a change of the single sign-on configuration (`None`: none configured), as
    /// servers start with it; the same configuration again records nothing.
    pub(super) async fn configure_sso(
        &mut self,
        config: Option<Value>,
    ) -> StoreResult<(Option<Value>, i64)> {
        let stored: Option<String> = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(SSO_CONFIG_META)
            .fetch_optional(&mut *self.tx)
            .await?
            .map(|r| r.try_get("value"))
            .transpose()?;
        let old = stored
            .map(|t| serde_json::from_str::<Value>(&t))
            .transpose()?;
        if old == config {
            return Ok((config, 0));
        }
        let action = match (&old, &config) {
            (None, _) => Action::Create,
            (_, None) => Action::Delete,
            _ => Action::Update,
        };
        match &config {
            Some(value) => {
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(SSO_CONFIG_META)
                .bind(value.to_string())
                .execute(&mut *self.tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM meta WHERE key = $1")
                    .bind(SSO_CONFIG_META)
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        self.change(action, ResourceType::Sso, None, "oidc", old, config.clone());
        Ok((config, 0))
    }

    pub(super) async fn sso_user(
        &mut self,
        identity: SsoIdentity,
    ) -> StoreResult<(Option<Value>, i64)> {
        let linked =
            sqlx::query("SELECT user_id FROM user_identities WHERE issuer = $1 AND subject = $2")
                .bind(&identity.issuer)
                .bind(&identity.subject)
                .fetch_optional(&mut *self.tx)
                .await?
                .map(|r| r.try_get::<String, _>("user_id"))
                .transpose()?;
        let user_id = match linked {
            Some(id) => id,
            None => self.link_or_create(&identity).await?,
        };
        let user = self.user(&user_id).await?;
        if user.disabled {
            return Err(StoreError::NotFound(format!("user {user_id:?}")));
        }
        if let Some(roles) = &identity.roles {
            self.sync_roles(&user_id, user.admin, roles).await?;
        }
        let user = self.user(&user_id).await?;
        Ok((Some(to_value(&user)?), user.version))
    }

    /// Sets what the role mappings govern: the admin flag (the last administrator stays,
    /// `update_user`'s rule) and the memberships of the projects they name. Each change is
    /// recorded like a change by hand.
    async fn sync_roles(
        &mut self,
        user_id: &str,
        admin_now: bool,
        roles: &SsoRoles,
    ) -> StoreResult<()> {
        if let Some(admin) = roles.admin.filter(|a| *a != admin_now) {
            let update = super::UserUpdate {
                admin: Some(admin),
                ..super::UserUpdate::default()
            };
            self.update_user(user_id, &super::Expected::Any, update)
                .await?;
        }
        for (project, role) in &roles.projects {
            let held = match self.member(project, user_id).await {
                Ok(held) => held,
                Err(StoreError::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            let result = match (role, held) {
                (Some(role), _) => self.put_member(project, user_id, *role).await.map(|_| ()),
                (None, Some(_)) => self.delete_member(project, user_id).await.map(|_| ()),
                (None, None) => Ok(()),
            };
            match result {
                // A project that does not exist (yet): nothing to be a member of.
                Err(StoreError::NotFound(_)) => {}
                other => other?,
            }
        }
        Ok(())
    }

    async fn link_or_create(&mut self, identity: &SsoIdentity) -> StoreResult<String> {
        let invalid = |field: &str, message: String| {
            StoreError::Invalid(ValidationErrors(vec![FieldError::new(field, message)]))
        };
        let email = normalize_email(&identity.email)
            .map_err(|m| invalid("email", format!("the provider's email claim {m}")))?;
        let existing = sqlx::query("SELECT id FROM users WHERE email = $1")
            .bind(&email)
            .fetch_optional(&mut *self.tx)
            .await?
            .map(|r| r.try_get::<String, _>("id"))
            .transpose()?;
        let (user_id, created) = match existing {
            Some(_) if !identity.email_verified => {
                return Err(StoreError::Conflict {
                    message: format!(
                        "a user with email {email:?} exists and the provider has not verified that this account owns it"
                    ),
                    dependants: Vec::new(),
                })
            }
            Some(id) => (id, false),
            None => {
                let id = hata_access::user::new_id();
                let name = if name_problem(&identity.name).is_none() {
                    identity.name.trim().to_string()
                } else {
                    email.clone()
                };
                sqlx::query(
                    "INSERT INTO users (id, email, name, password_hash, admin, disabled, version, created_at, updated_at)
                     VALUES ($1, $2, $3, NULL, 0, 0, 1, $4, $4)",
                )
                .bind(&id)
                .bind(&email)
                .bind(&name)
                .bind(&self.now)
                .execute(&mut *self.tx)
                .await?;
                (id, true)
            }
        };
        sqlx::query(
            "INSERT INTO user_identities (issuer, subject, user_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&identity.issuer)
        .bind(&identity.subject)
        .bind(&user_id)
        .bind(&self.now)
        .execute(&mut *self.tx)
        .await?;
        let user = self.user(&user_id).await?;
        if created {
            self.change(
                Action::Create,
                ResourceType::User,
                None,
                &user_id,
                None,
                Some(to_value(&user)?),
            );
        }
        self.change(
            Action::Update,
            ResourceType::User,
            None,
            &user_id,
            None,
            Some(json!({ "linked": { "issuer": identity.issuer, "subject": identity.subject } })),
        );
        Ok(user_id)
    }
}
