//! What a request needs, and whether a principal has it. Every route of the server names one
//! `Need` (the server's route table); `authorize` is the one place that decides.
//!
//! | need | who has it |
//! |---|---|
//! | `Authenticated` | any user, admin or project token, or JWT (lists filter by visibility) |
//! | `User` | any user (a person: their own password, their own session) |
//! | `Admin` | admins |
//! | `Read(p)` | admins; viewers, editors and owners of `p` |
//! | `Write(p)` | admins; editors and owners of `p` (flags, segments) |
//! | `Own(p)` | admins; owners of `p` (environments, tokens, members) |
//! | `Evaluate` | `server` and `client` tokens (their own environment), JWTs mapped to evaluate |
//! | `EvaluateServer` | `server` tokens (the whole rule set), JWTs mapped to `evaluate = "server"` |
//!
//! `server` and `client` tokens have no other need: they only evaluate.

use crate::principal::{EvaluationAccess, Principal, PrincipalKind};
use crate::role::Role;
use crate::token::TokenKind;

/// What a request needs. Project-scoped needs carry the project key from the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    Authenticated,
    User,
    Admin,
    Read(&'a str),
    Write(&'a str),
    Own(&'a str),
    Evaluate,
    EvaluateServer,
}

/// Why a principal was refused; the message is safe to show the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied(pub String);

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Denied {}

/// Whether `principal` has `need`; `Err` says why not.
pub fn authorize(principal: &Principal, need: Need<'_>) -> Result<(), Denied> {
    let evaluator = matches!(
        principal.kind,
        PrincipalKind::Token(TokenKind::Server | TokenKind::Client)
    );
    match need {
        Need::Evaluate | Need::EvaluateServer => {
            let wanted: &[EvaluationAccess] = if need == Need::Evaluate {
                &[EvaluationAccess::Server, EvaluationAccess::Client]
            } else {
                &[EvaluationAccess::Server]
            };
            let may = principal.kind != PrincipalKind::User
                && principal.evaluates_as.is_some_and(|a| wanted.contains(&a));
            if !may {
                let names: Vec<&str> = wanted.iter().map(|k| k.as_str()).collect();
                return Err(Denied(format!(
                    "{} cannot use this endpoint; it needs a {} token",
                    describe(principal),
                    names.join(" or ")
                )));
            }
            if principal.evaluates_in.is_some() {
                Ok(())
            } else {
                Err(Denied(
                    "the token is not bound to a project and environment".into(),
                ))
            }
        }
        _ if evaluator => Err(Denied(format!(
            "{} can only evaluate flags; it cannot use the admin API",
            describe(principal)
        ))),
        Need::User if principal.kind == PrincipalKind::User => Ok(()),
        Need::User => Err(Denied(format!(
            "{} is not a user; only a user (logged in) may do this",
            describe(principal)
        ))),
        _ if principal.admin => Ok(()),
        Need::Authenticated => Ok(()),
        Need::Admin => Err(Denied(format!(
            "{} is not an administrator",
            describe(principal)
        ))),
        Need::Read(p) => at_least(principal, p, Role::Viewer),
        Need::Write(p) => at_least(principal, p, Role::Editor),
        Need::Own(p) => at_least(principal, p, Role::Owner),
    }
}

fn at_least(principal: &Principal, project: &str, role: Role) -> Result<(), Denied> {
    match principal.role_in(project) {
        Some(held) if held >= role => Ok(()),
        Some(held) => Err(Denied(format!(
            "{} is {held} of project {project:?}; this needs {role}",
            describe(principal)
        ))),
        None => Err(Denied(format!(
            "{} has no role in project {project:?}",
            describe(principal)
        ))),
    }
}

/// "a client token", "user alice@example.com", … for messages.
fn describe(principal: &Principal) -> String {
    match principal.kind {
        PrincipalKind::Token(kind) => format!("a {} token", kind.as_str()),
        PrincipalKind::User => format!("user {}", principal.name),
        PrincipalKind::Jwt => format!("JWT subject {}", principal.id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn principal(kind: PrincipalKind, admin: bool, roles: &[(&str, Role)]) -> Principal {
        Principal {
            kind,
            id: "p1".into(),
            name: "someone".into(),
            admin,
            projects: roles
                .iter()
                .map(|(p, r)| (p.to_string(), *r))
                .collect::<BTreeMap<_, _>>(),
            evaluates_in: matches!(
                kind,
                PrincipalKind::Token(TokenKind::Server | TokenKind::Client)
            )
            .then(|| ("shop".to_string(), "production".to_string())),
            evaluates_as: match kind {
                PrincipalKind::Token(TokenKind::Server) => Some(EvaluationAccess::Server),
                PrincipalKind::Token(TokenKind::Client) => Some(EvaluationAccess::Client),
                _ => None,
            },
        }
    }

    /// Every need against every kind of principal, with the expected answer written out.
    #[test]
    fn the_matrix() {
        let user = |roles: &[(&str, Role)]| principal(PrincipalKind::User, false, roles);
        let cases: Vec<(&str, Principal)> = vec![
            ("admin", principal(PrincipalKind::User, true, &[])),
            (
                "admin-token",
                principal(PrincipalKind::Token(TokenKind::Admin), true, &[]),
            ),
            ("owner", user(&[("shop", Role::Owner)])),
            ("editor", user(&[("shop", Role::Editor)])),
            ("viewer", user(&[("shop", Role::Viewer)])),
            ("other", user(&[("blog", Role::Owner)])),
            (
                "server",
                principal(PrincipalKind::Token(TokenKind::Server), false, &[]),
            ),
            (
                "client",
                principal(PrincipalKind::Token(TokenKind::Client), false, &[]),
            ),
        ];
        let needs = [
            Need::Authenticated,
            Need::User,
            Need::Admin,
            Need::Read("shop"),
            Need::Write("shop"),
            Need::Own("shop"),
            Need::Evaluate,
            Need::EvaluateServer,
        ];
        // Rows: cases in order; columns: needs in order. 1 = allowed.
        let expected: [[u8; 8]; 8] = [
            [1, 1, 1, 1, 1, 1, 0, 0],
            [1, 0, 1, 1, 1, 1, 0, 0],
            [1, 1, 0, 1, 1, 1, 0, 0],
            [1, 1, 0, 1, 1, 0, 0, 0],
            [1, 1, 0, 1, 0, 0, 0, 0],
            [1, 1, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 1, 1],
            [0, 0, 0, 0, 0, 0, 1, 0],
        ];
        for ((name, p), row) in cases.iter().zip(expected) {
            for (need, allowed) in needs.iter().zip(row) {
                let got = authorize(p, *need);
                assert_eq!(got.is_ok(), allowed == 1, "{name} × {need:?}: {got:?}");
            }
        }
    }

    #[test]
    fn refusals_say_why() {
        let viewer = principal(PrincipalKind::User, false, &[("shop", Role::Viewer)]);
        let Err(Denied(m)) = authorize(&viewer, Need::Write("shop")) else {
            panic!("allowed")
        };
        assert_eq!(
            m,
            "user someone is viewer of project \"shop\"; this needs editor"
        );
        let client = principal(PrincipalKind::Token(TokenKind::Client), false, &[]);
        let Err(Denied(m)) = authorize(&client, Need::EvaluateServer) else {
            panic!("allowed")
        };
        assert_eq!(
            m,
            "a client token cannot use this endpoint; it needs a server token"
        );
    }
}
