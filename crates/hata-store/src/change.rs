//! The change record's vocabulary: who (`Actor`) did what (`Action`) to which kind of resource
//! (`ResourceType`). The write path records them in `changes` as the strings they have always
//! been there and in the export (`token:tok_…`, `update`, `flag`). Plain data: the recording is
//! `write`'s.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a change did to its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    /// A user logged in: a session was created.
    Login,
    /// A login with a wrong password; the user's failure count (and lock) changed.
    #[serde(rename = "login_failed")]
    LoginFailed,
    /// A session was ended by its user.
    Logout,
    /// A credential was presented and refused because it ended (an expired, rotated-out or
    /// too old token): a security event, recorded at most once an hour per token.
    Refused,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::Create,
        Action::Update,
        Action::Delete,
        Action::Login,
        Action::LoginFailed,
        Action::Logout,
        Action::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Login => "login",
            Action::LoginFailed => "login_failed",
            Action::Logout => "logout",
            Action::Refused => "refused",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// The kind of resource a change is to. Its `Display` is also how messages name the kind
/// ("flag \"x\" in project \"p\"").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceType {
    Project,
    Environment,
    Flag,
    Segment,
    Token,
    User,
    /// A user's role in a project (key: the user id).
    Member,
    /// A browser session (key: the session id, never its secret).
    Session,
    /// A user's two-factor authentication (key: the user id; never the secret or codes).
    Totp,
    /// The single sign-on configuration (key: `oidc`; never the client secret).
    Sso,
}

impl ResourceType {
    pub const ALL: [ResourceType; 10] = [
        ResourceType::Project,
        ResourceType::Environment,
        ResourceType::Flag,
        ResourceType::Segment,
        ResourceType::Token,
        ResourceType::User,
        ResourceType::Member,
        ResourceType::Session,
        ResourceType::Totp,
        ResourceType::Sso,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Project => "project",
            ResourceType::Environment => "environment",
            ResourceType::Flag => "flag",
            ResourceType::Segment => "segment",
            ResourceType::Token => "token",
            ResourceType::User => "user",
            ResourceType::Member => "member",
            ResourceType::Session => "session",
            ResourceType::Totp => "totp",
            ResourceType::Sso => "sso",
        }
    }

    pub fn parse(s: &str) -> Option<ResourceType> {
        ResourceType::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What kind of principal an `Actor` is: the audit entry's own vocabulary.
pub use hata_audit::ActorKind;

/// Who makes a change. `changes.actor` keeps `kind:id` (`qualified_id`); `name` is what the
/// actor was called at the time (`changes.actor_name`), for those who read the entry later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: String,
    pub name: Option<String>,
}

impl Actor {
    /// The token with this id and name.
    pub fn token(id: impl Into<String>, name: impl Into<String>) -> Actor {
        Actor {
            kind: ActorKind::Token,
            id: id.into(),
            name: Some(name.into()),
        }
    }

    /// The user with this id and name.
    pub fn user(id: impl Into<String>, name: impl Into<String>) -> Actor {
        Actor {
            kind: ActorKind::User,
            id: id.into(),
            name: Some(name.into()),
        }
    }

    /// hata itself, doing `id` (e.g. `bootstrap`).
    pub fn system(id: impl Into<String>) -> Actor {
        Actor {
            kind: ActorKind::System,
            id: id.into(),
            name: None,
        }
    }

    /// `kind:id`, e.g. `token:tok_…`: how `changes.actor` names the actor.
    pub fn qualified_id(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.id)
    }

    /// The actor named by a `qualified_id` (without a name); `None` if `s` is not one.
    pub fn parse(s: &str) -> Option<Actor> {
        let (kind, id) = s.split_once(':').filter(|(_, id)| !id.is_empty())?;
        Some(Actor {
            kind: ActorKind::parse(kind)?,
            id: id.to_string(),
            name: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_stored_as_before() {
        let stored: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(
            stored,
            [
                "create",
                "update",
                "delete",
                "login",
                "login_failed",
                "logout",
                "refused"
            ]
        );
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(action));
            let json = serde_json::to_value(action).unwrap();
            assert_eq!(json, action.as_str());
            assert_eq!(serde_json::from_value::<Action>(json).unwrap(), action);
        }
        assert_eq!(Action::parse("Create"), None);
    }

    #[test]
    fn resource_types_are_stored_as_before() {
        let stored: Vec<&str> = ResourceType::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            stored,
            [
                "project",
                "environment",
                "flag",
                "segment",
                "token",
                "user",
                "member",
                "session",
                "totp",
                "sso"
            ]
        );
        for resource in ResourceType::ALL {
            assert_eq!(ResourceType::parse(resource.as_str()), Some(resource));
            let json = serde_json::to_value(resource).unwrap();
            assert_eq!(json, resource.as_str());
            assert_eq!(
                serde_json::from_value::<ResourceType>(json).unwrap(),
                resource
            );
            assert_eq!(resource.to_string(), resource.as_str());
        }
        assert_eq!(ResourceType::parse("flags"), None);
    }

    #[test]
    fn actors_are_stored_as_before() {
        let token = Actor::token("tok_0123456789abcdef", "deploy bot");
        assert_eq!(token.qualified_id(), "token:tok_0123456789abcdef");
        assert_eq!(token.name.as_deref(), Some("deploy bot"));
        assert_eq!(
            Actor::system("bootstrap").qualified_id(),
            "system:bootstrap"
        );
        for kind in ActorKind::ALL {
            assert_eq!(ActorKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }

    #[test]
    fn qualified_ids_parse_back_without_the_name() {
        let token = Actor::token("tok_1", "ci");
        let parsed = Actor::parse(&token.qualified_id()).unwrap();
        assert_eq!(
            parsed,
            Actor {
                name: None,
                ..token
            }
        );
        assert_eq!(
            Actor::parse("system:bootstrap"),
            Some(Actor::system("bootstrap"))
        );
        // The id is everything after the first colon.
        assert_eq!(Actor::parse("token:a:b").unwrap().id, "a:b");
        for bad in ["", "test", "robot:1", "Token:1", ":1", "token:"] {
            assert_eq!(Actor::parse(bad), None, "{bad:?}");
        }
    }
}
