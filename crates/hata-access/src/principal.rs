//! Who is calling, reduced to what authorisation needs: whether it is a global admin, its role
//! in each project, and (for server and client tokens) the one environment it evaluates in.
//! The server builds a `Principal` from a token, a session's user or a JWT; `authorize` reads
//! only this.

use std::collections::BTreeMap;

use crate::role::Role;
use crate::token::TokenKind;

/// What kind of credential the caller presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A person, by session cookie.
    User,
    /// An API token of this kind.
    Token(TokenKind),
    /// A JWT from a configured issuer.
    Jwt,
}

impl PrincipalKind {
    /// `user`, `token` or `jwt`: the actor kind of the change record.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Token(_) => "token",
            PrincipalKind::Jwt => "jwt",
        }
    }
}

/// What an evaluating principal may fetch: `Server` the whole rule set (SDK config and
/// stream) and OFREP; `Client` OFREP only. A `server` or `client` token's kind; for a JWT, what
/// the role mapping grants (`evaluate = "server"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvaluationAccess {
    Server,
    Client,
}

impl EvaluationAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            EvaluationAccess::Server => "server",
            EvaluationAccess::Client => "client",
        }
    }

    /// The token kind that carries this access.
    pub fn token_kind(self) -> TokenKind {
        match self {
            EvaluationAccess::Server => TokenKind::Server,
            EvaluationAccess::Client => TokenKind::Client,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// The user id, token id or JWT subject.
    pub id: String,
    /// A display name (user name, token name, JWT subject).
    pub name: String,
    /// A global administrator: may do everything.
    pub admin: bool,
    /// Project key → role. Empty for admins (they need none) and for evaluation-only tokens.
    pub projects: BTreeMap<String, Role>,
    /// For `server` and `client` tokens (and JWTs mapped to evaluate): the (project,
    /// environment) they evaluate in.
    pub evaluates_in: Option<(String, String)>,
    /// What it may fetch there; `None` for principals that do not evaluate.
    pub evaluates_as: Option<EvaluationAccess>,
}

impl Principal {
    /// The role this principal holds in `project`, if any (admins hold every role).
    pub fn role_in(&self, project: &str) -> Option<Role> {
        if self.admin {
            return Some(Role::Owner);
        }
        self.projects.get(project).copied()
    }

    /// Whether the principal can see `project` at all.
    pub fn sees(&self, project: &str) -> bool {
        self.role_in(project).is_some()
    }

    /// The most this principal may hand out in `project` (to a token or a member): its own
    /// role there, and only when that role may manage tokens and members.
    pub fn grantable_in(&self, project: &str) -> Option<Role> {
        self.role_in(project).filter(|r| *r == Role::Owner)
    }
}
