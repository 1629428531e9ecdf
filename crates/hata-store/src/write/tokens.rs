//! Tokens: create (the caller brings the secret's hash), delete. Token writes bump no revision;
//! they publish `ChangeNotice::Tokens` for the token caches.

use hata_core::validate::{FieldError, ValidationErrors};
use serde_json::Value;
use sqlx::Row;

use super::engine::{is_unique_violation, to_value, WriteTx};
use super::NewToken;
use crate::change::{Action, ResourceType};
use crate::error::{StoreError, StoreResult};
use crate::notice::ChangeNotice;
use crate::read::decode_token;
use crate::records::{TokenKind, TokenRecord};

impl WriteTx {
    pub(super) async fn create_token(
        &mut self,
        token: NewToken,
    ) -> StoreResult<(Option<Value>, i64)> {
        let mut errors: Vec<FieldError> = hata_access::token::binding_problems(
            token.kind,
            token.project.as_deref(),
            token.environment.as_deref(),
            token.role,
        )
        .into_iter()
        .map(|(field, message)| FieldError {
            field: field.into(),
            message: message.into(),
        })
        .collect();
        if let Some(p) = token.project.as_deref().filter(|_| errors.is_empty()) {
            let missing = match token.environment.as_deref() {
                Some(e) => {
                    sqlx::query("SELECT 1 AS one FROM environments WHERE project = $1 AND key = $2")
                        .bind(p)
                        .bind(e)
                        .fetch_optional(&mut *self.tx)
                        .await?
                        .is_none()
                        .then(|| {
                            (
                                "environment",
                                format!("no environment {e:?} in project {p:?}"),
                            )
                        })
                }
                None => sqlx::query("SELECT 1 AS one FROM projects WHERE key = $1")
                    .bind(p)
                    .fetch_optional(&mut *self.tx)
                    .await?
                    .is_none()
                    .then(|| ("project", format!("no project {p:?}"))),
            };
            if let Some((field, message)) = missing {
                errors.push(FieldError {
                    field: field.into(),
                    message,
                });
            }
        }
        if !errors.is_empty() {
            return Err(ValidationErrors(errors).into());
        }
        sqlx::query(
            "INSERT INTO tokens (id, name, kind, project, environment, role, secret_hash, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&token.id)
        .bind(&token.name)
        .bind(token.kind.as_str())
        .bind(&token.project)
        .bind(&token.environment)
        .bind(token.role.map(|r| r.as_str()))
        .bind(&token.secret_hash)
        .bind(&self.now)
        .bind(&token.expires_at)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists(format!("token {:?}", token.id))
            } else {
                e.into()
            }
        })?;
        let record = self.token(&token.id).await?;
        let value = to_value(&record)?;
        self.notices.push(ChangeNotice::Tokens);
        self.change(
            Action::Create,
            ResourceType::Token,
            token.project.as_deref(),
            &token.id,
            None,
            Some(value.clone()),
        );
        Ok((Some(value), 1))
    }

    pub(super) async fn token(&mut self, id: &str) -> StoreResult<TokenRecord> {
        let row = sqlx::query(&format!(
            "SELECT {} FROM tokens WHERE id = $1",
            crate::read::TOKEN_COLUMNS
        ))
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("token {id:?}")))?;
        decode_token(&row)
    }

    /// Records that token `id` was refused after it ended; changes nothing. The token may
    /// be gone meanwhile: the event is recorded all the same.
    pub(super) async fn token_refused(
        &mut self,
        id: &str,
        reason: &str,
    ) -> StoreResult<(Option<Value>, i64)> {
        let project: Option<String> = sqlx::query("SELECT project FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await?
            .map(|row| row.try_get("project"))
            .transpose()?
            .flatten();
        self.change(
            Action::Refused,
            ResourceType::Token,
            project.as_deref(),
            id,
            None,
            Some(serde_json::json!({ "reason": reason })),
        );
        Ok((None, 0))
    }

    pub(super) async fn delete_token(&mut self, id: &str) -> StoreResult<(Option<Value>, i64)> {
        let old = self.token(id).await?;
        if old.kind == TokenKind::Admin {
            self.keep_an_admin(Some(id), None, "deleting").await?;
        }
        sqlx::query("DELETE FROM tokens WHERE id = $1")
            .bind(id)
            .execute(&mut *self.tx)
            .await?;
        self.notices.push(ChangeNotice::Tokens);
        self.change(
            Action::Delete,
            ResourceType::Token,
            old.project.as_deref(),
            id,
            Some(to_value(&old)?),
            None,
        );
        Ok((None, 1))
    }

    pub(super) async fn rotate_token(
        &mut self,
        id: &str,
        secret_hash: &str,
        previous_valid_until: &str,
    ) -> StoreResult<(Option<Value>, i64)> {
        let old = self.token(id).await?;
        sqlx::query(
            "UPDATE tokens SET previous_secret_hash = secret_hash, previous_valid_until = $2, \
             secret_hash = $3, rotated_at = $4 WHERE id = $1",
        )
        .bind(id)
        .bind(previous_valid_until)
        .bind(secret_hash)
        .bind(&self.now)
        .execute(&mut *self.tx)
        .await?;
        let new = to_value(&self.token(id).await?)?;
        self.notices.push(ChangeNotice::Tokens);
        self.change(
            Action::Update,
            ResourceType::Token,
            old.project.as_deref(),
            id,
            Some(to_value(&old)?),
            Some(new.clone()),
        );
        Ok((Some(new), 1))
    }

    pub(super) async fn tokens_bound_to(
        &mut self,
        project: &str,
        environment: Option<&str>,
    ) -> StoreResult<Vec<String>> {
        let rows =
            sqlx::query("SELECT id, name, environment FROM tokens WHERE project = $1 ORDER BY id")
                .bind(project)
                .fetch_all(&mut *self.tx)
                .await?;
        let mut out = Vec::new();
        for r in rows {
            let env: Option<String> = r.try_get("environment")?;
            if environment.is_none() || env.as_deref() == environment {
                out.push(format!(
                    "token {} ({})",
                    r.try_get::<String, _>("id")?,
                    r.try_get::<String, _>("name")?
                ));
            }
        }
        Ok(out)
    }
}
