//! JWT claims → `Principal`: the registered-claim checks (`iss`, `aud`, `exp`, `nbf`) and the
//! role-mapping table, which turns claims (e.g. `groups`) into admin, project roles and
//! evaluation access. The same table is meant for single sign-on (OIDC ID tokens) later.
//!
//! Pure: it reads a decoded claims object. Verifying the signature, choosing the key and
//! fetching key sets are the server's (`hata-server` `auth::jwt`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::principal::{EvaluationAccess, Principal, PrincipalKind};
use crate::role::Role;

/// Why a token's claims were refused; the message is safe to show the caller (it names
/// claims, never the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the token's issuer (iss) is not the configured issuer")]
    WrongIssuer,
    #[error("the token's audience (aud) does not include {0:?}")]
    WrongAudience(String),
    #[error("the token has no expiry (exp)")]
    NoExpiry,
    #[error("the token's {0} claim is not a number of seconds")]
    NotNumeric(&'static str),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not yet valid (nbf is in the future)")]
    NotYetValid,
    #[error("the token has no subject (sub)")]
    NoSubject,
}

/// What the registered claims must say.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    /// Seconds of clock difference tolerated on `exp` and `nbf`.
    pub leeway: u64,
}

/// Checks `iss`, `aud`, `exp` (required) and `nbf` (when present) at `now` (Unix seconds);
/// returns the expiry, rounded down to whole seconds.
pub fn check_registered(
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
    now: i64,
) -> Result<i64, ClaimsError> {
    if claims.get("iss").and_then(Value::as_str) != Some(expected.issuer) {
        return Err(ClaimsError::WrongIssuer);
    }
    if !strings(claims.get("aud")).any(|a| a == expected.audience) {
        return Err(ClaimsError::WrongAudience(expected.audience.to_string()));
    }
    let leeway = i64::try_from(expected.leeway).unwrap_or(i64::MAX);
    let exp = seconds(claims, "exp")?.ok_or(ClaimsError::NoExpiry)?;
    // Valid while now < exp (RFC 7519 4.1.4), stretched by the leeway.
    if now >= exp.saturating_add(leeway) {
        return Err(ClaimsError::Expired);
    }
    if let Some(nbf) = seconds(claims, "nbf")? {
        if now < nbf.saturating_sub(leeway) {
            return Err(ClaimsError::NotYetValid);
        }
    }
    Ok(exp)
}

/// A NumericDate claim as whole seconds; `Err` when present but not a number.
fn seconds(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, ClaimsError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or(ClaimsError::NotNumeric(name)),
        Some(_) => Err(ClaimsError::NotNumeric(name)),
    }
}

/// The strings of a claim: itself when it is a string, its string elements when it is an
/// array; nothing otherwise.
fn strings(value: Option<&Value>) -> impl Iterator<Item = &str> {
    let (one, many) = match value {
        Some(Value::String(s)) => (Some(s.as_str()), None),
        Some(Value::Array(items)) => (None, Some(items.iter().filter_map(Value::as_str))),
        _ => (None, None),
    };
    one.into_iter().chain(many.into_iter().flatten())
}

/// What a matching rule grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    Admin,
    Role {
        project: String,
        role: Role,
    },
    Evaluate {
        project: String,
        environment: String,
        access: EvaluationAccess,
    },
}

/// One row of the table: when claim `claim` is `value` (or, for an array claim, contains it),
/// grant `grant`. `claim` names a top-level claim, or a nested one by a dotted path
/// (`realm_access.roles`) when no top-level claim has that exact name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RuleFields")]
pub struct RoleRule {
    pub claim: String,
    pub value: String,
    pub grant: Grant,
}

/// A rule as written in configuration (TOML `[[role_mappings]]`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFields {
    claim: String,
    value: String,
    #[serde(default)]
    admin: bool,
    project: Option<String>,
    role: Option<Role>,
    environment: Option<String>,
    evaluate: Option<EvaluationAccess>,
}

impl TryFrom<RuleFields> for RoleRule {
    type Error = String;

    fn try_from(f: RuleFields) -> Result<RoleRule, String> {
        if f.claim.is_empty() {
            return Err("a role mapping's `claim` is empty".into());
        }
        let grant = match (f.admin, f.project, f.role, f.environment, f.evaluate) {
            (true, None, None, None, None) => Grant::Admin,
            (false, Some(project), Some(role), None, None) => Grant::Role { project, role },
            (false, Some(project), None, Some(environment), Some(access)) => Grant::Evaluate {
                project,
                environment,
                access,
            },
            _ => {
                return Err(format!(
                    "the role mapping for claim {:?} = {:?} must grant exactly one of: \
                     `admin = true`; `project` and `role`; or `project`, `environment` and \
                     `evaluate` (\"server\" or \"client\")",
                    f.claim, f.value
                ))
            }
        };
        Ok(RoleRule {
            claim: f.claim,
            value: f.value,
            grant,
        })
    }
}

impl RoleRule {
    /// The rule as configuration writes it (`[[role_mappings]]`), e.g. for the audit log.
    pub fn to_json(&self) -> Value {
        let mut rule = serde_json::json!({"claim": self.claim, "value": self.value});
        let grant = match &self.grant {
            Grant::Admin => serde_json::json!({"admin": true}),
            Grant::Role { project, role } => {
                serde_json::json!({"project": project, "role": role.as_str()})
            }
            Grant::Evaluate {
                project,
                environment,
                access,
            } => serde_json::json!({
                "project": project,
                "environment": environment,
                "evaluate": access.as_str(),
            }),
        };
        if let (Some(rule), Value::Object(grant)) = (rule.as_object_mut(), grant) {
            rule.extend(grant);
        }
        rule
    }

    /// Whether `claims` satisfy this rule.
    pub fn matches(&self, claims: &Map<String, Value>) -> bool {
        strings(lookup(claims, &self.claim)).any(|v| v == self.value)
    }
}

/// A claim by name, or by dotted path through objects when no claim has that exact name.
fn lookup<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    let mut parts = name.split('.');
    let mut here = claims.get(parts.next()?)?;
    for part in parts {
        here = here.as_object()?.get(part)?;
    }
    Some(here)
}

/// The role-mapping table. Every matching rule applies: admin if any grants it, the highest
/// role per project, and the first matching evaluation grant (a principal evaluates in one
/// environment).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct RoleMap {
    pub rules: Vec<RoleRule>,
}

impl RoleMap {
    pub fn new(rules: Vec<RoleRule>) -> RoleMap {
        RoleMap { rules }
    }

    /// The principal these claims make: kind `Jwt`, id `sub`, name `name`, else
    /// `preferred_username`, else `sub`; roles from the table. A token no rule matches is
    /// authenticated with no roles.
    pub fn principal(&self, claims: &Map<String, Value>) -> Result<Principal, ClaimsError> {
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(ClaimsError::NoSubject)?;
        let name = ["name", "preferred_username"]
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .unwrap_or(sub);
        let mut admin = false;
        let mut projects: BTreeMap<String, Role> = BTreeMap::new();
        let mut evaluates = None;
        for rule in self.rules.iter().filter(|r| r.matches(claims)) {
            match &rule.grant {
                Grant::Admin => admin = true,
                Grant::Role { project, role } => {
                    let held = projects.entry(project.clone()).or_insert(*role);
                    *held = (*held).max(*role);
                }
                Grant::Evaluate {
                    project,
                    environment,
                    access,
                } => {
                    if evaluates.is_none() {
                        evaluates = Some(((project.clone(), environment.clone()), *access));
                    }
                }
            }
        }
        if admin {
            // Admins need no project roles (as for users).
            projects.clear();
        }
        let (evaluates_in, evaluates_as) = evaluates.unzip();
        Ok(Principal {
            kind: PrincipalKind::Jwt,
            id: sub.to_string(),
            name: name.to_string(),
            admin,
            projects,
            evaluates_in,
            evaluates_as,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    const TABLE: &str = r#"
        [[role_mappings]]
        claim = "groups"
        value = "flag-admins"
        admin = true

        [[role_mappings]]
        claim = "groups"
        value = "shop-editors"
        project = "shop"
        role = "editor"

        [[role_mappings]]
        claim = "groups"
        value = "shop-owners"
        project = "shop"
        role = "owner"

        [[role_mappings]]
        claim = "department"
        value = "blog"
        project = "blog"
        role = "viewer"

        [[role_mappings]]
        claim = "realm_access.roles"
        value = "shop-viewer"
        project = "shop"
        role = "viewer"

        [[role_mappings]]
        claim = "scope"
        value = "evaluate:shop"
        project = "shop"
        environment = "production"
        evaluate = "server"

        [[role_mappings]]
        claim = "scope"
        value = "evaluate:shop-client"
        project = "shop"
        environment = "staging"
        evaluate = "client"
    "#;

    #[derive(Deserialize)]
    struct File {
        role_mappings: RoleMap,
    }

    fn table() -> RoleMap {
        toml::from_str::<File>(TABLE).expect("table").role_mappings
    }

    #[test]
    fn rules_parse_from_toml() {
        let map = table();
        assert_eq!(map.rules.len(), 7);
        assert_eq!(map.rules[0].grant, Grant::Admin);
        assert_eq!(
            map.rules[1].grant,
            Grant::Role {
                project: "shop".into(),
                role: Role::Editor
            }
        );
        assert_eq!(
            map.rules[6].grant,
            Grant::Evaluate {
                project: "shop".into(),
                environment: "staging".into(),
                access: EvaluationAccess::Client
            }
        );
    }

    #[test]
    fn rules_grant_exactly_one_thing() {
        let bad = [
            // nothing granted
            r#"claim = "g"
               value = "x""#,
            // admin and a role
            r#"claim = "g"
               value = "x"
               admin = true
               project = "shop"
               role = "owner""#,
            // a role without a project
            r#"claim = "g"
               value = "x"
               role = "owner""#,
            // a project without a role
            r#"claim = "g"
               value = "x"
               project = "shop""#,
            // evaluation without an environment
            r#"claim = "g"
               value = "x"
               project = "shop"
               evaluate = "server""#,
            // a role and evaluation
            r#"claim = "g"
               value = "x"
               project = "shop"
               role = "viewer"
               environment = "production"
               evaluate = "server""#,
            // an unknown evaluation access
            r#"claim = "g"
               value = "x"
               project = "shop"
               environment = "production"
               evaluate = "admin""#,
            // an unknown role
            r#"claim = "g"
               value = "x"
               project = "shop"
               role = "god""#,
            // an unknown field
            r#"claim = "g"
               value = "x"
               admin = true
               colour = "red""#,
            // an empty claim name
            r#"claim = ""
               value = "x"
               admin = true"#,
            // admin = false alone
            r#"claim = "g"
               value = "x"
               admin = false"#,
        ];
        for text in bad {
            assert!(
                toml::from_str::<RoleRule>(text).is_err(),
                "accepted: {text}"
            );
        }
        let err = toml::from_str::<RoleRule>("claim = \"g\"\nvalue = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("exactly one of"), "{err}");
    }

    #[test]
    fn identity_comes_from_sub_name_and_preferred_username() {
        let map = RoleMap::default();
        let p = map
            .principal(&claims(
                json!({"sub": "svc-1", "name": "Deploy bot", "preferred_username": "deploy"}),
            ))
            .unwrap();
        assert_eq!(p.kind, PrincipalKind::Jwt);
        assert_eq!((p.id.as_str(), p.name.as_str()), ("svc-1", "Deploy bot"));
        let p = map
            .principal(&claims(
                json!({"sub": "svc-1", "preferred_username": "deploy"}),
            ))
            .unwrap();
        assert_eq!(p.name, "deploy");
        let p = map
            .principal(&claims(json!({"sub": "svc-1", "name": ""})))
            .unwrap();
        assert_eq!(p.name, "svc-1");
        let p = map.principal(&claims(json!({"sub": "svc-1"}))).unwrap();
        assert_eq!(p.name, "svc-1");
        // No roles from an empty table: authenticated, nothing more.
        assert!(!p.admin && p.projects.is_empty() && p.evaluates_in.is_none());
        for bad in [
            json!({}),
            json!({"sub": ""}),
            json!({"sub": 7}),
            json!({"sub": null}),
        ] {
            assert_eq!(
                map.principal(&claims(bad)).unwrap_err(),
                ClaimsError::NoSubject
            );
        }
    }

    /// Claims → (admin, roles, evaluation), one row per case.
    #[test]
    fn the_mapping() {
        let map = table();
        type Row = (
            Value,
            bool,
            &'static [(&'static str, Role)],
            Option<(&'static str, &'static str, EvaluationAccess)>,
        );
        let server = EvaluationAccess::Server;
        let client = EvaluationAccess::Client;
        let cases: Vec<Row> = vec![
            (json!({"groups": ["flag-admins"]}), true, &[], None),
            (json!({"groups": "flag-admins"}), true, &[], None),
            // Admin clears project roles (admins need none).
            (
                json!({"groups": ["shop-editors", "flag-admins"]}),
                true,
                &[],
                None,
            ),
            (
                json!({"groups": ["shop-editors"]}),
                false,
                &[("shop", Role::Editor)],
                None,
            ),
            // The highest role of a project wins, in either order.
            (
                json!({"groups": ["shop-owners", "shop-editors"]}),
                false,
                &[("shop", Role::Owner)],
                None,
            ),
            (
                json!({"groups": ["shop-editors", "shop-owners"], "realm_access": {"roles": ["shop-viewer"]}}),
                false,
                &[("shop", Role::Owner)],
                None,
            ),
            // Roles in several projects; a nested claim by dotted path.
            (
                json!({"department": "blog", "realm_access": {"roles": ["shop-viewer"]}}),
                false,
                &[("blog", Role::Viewer), ("shop", Role::Viewer)],
                None,
            ),
            // Exact comparison: case, prefixes and whitespace do not match.
            (
                json!({"groups": ["Flag-Admins", "flag-admins ", "flag-admin", "shop-editors-x"]}),
                false,
                &[],
                None,
            ),
            // Only strings and arrays of strings match.
            (
                json!({"groups": {"flag-admins": true}, "department": ["blog", 1]}),
                false,
                &[("blog", Role::Viewer)],
                None,
            ),
            (json!({"groups": null, "department": 7}), false, &[], None),
            (json!({"groups": [["flag-admins"]]}), false, &[], None),
            // Evaluation access; the first matching evaluation rule wins.
            (
                json!({"scope": "evaluate:shop"}),
                false,
                &[],
                Some(("shop", "production", server)),
            ),
            (
                json!({"scope": ["evaluate:shop-client", "evaluate:shop"]}),
                false,
                &[],
                Some(("shop", "production", server)),
            ),
            (
                json!({"scope": ["evaluate:shop-client"], "groups": ["shop-editors"]}),
                false,
                &[("shop", Role::Editor)],
                Some(("shop", "staging", client)),
            ),
            // A space-separated OAuth scope string is one value, not a list.
            (json!({"scope": "openid evaluate:shop"}), false, &[], None),
            // A claim of the rule's name wins over the dotted path.
            (
                json!({"realm_access.roles": "other", "realm_access": {"roles": ["shop-viewer"]}}),
                false,
                &[],
                None,
            ),
            (json!({"realm_access": ["shop-viewer"]}), false, &[], None),
        ];
        for (i, (c, admin, roles, evaluates)) in cases.into_iter().enumerate() {
            let mut c = claims(c);
            c.insert("sub".into(), json!("s"));
            let p = map.principal(&c).unwrap();
            assert_eq!(p.admin, admin, "case {i}: admin");
            let want: BTreeMap<String, Role> =
                roles.iter().map(|(p, r)| (p.to_string(), *r)).collect();
            assert_eq!(p.projects, want, "case {i}: roles");
            let want = evaluates.map(|(p, e, a)| ((p.to_string(), e.to_string()), a));
            assert_eq!(p.evaluates_in.clone().zip(p.evaluates_as), want, "case {i}");
        }
    }

    #[test]
    fn mapped_principals_are_authorized_like_others() {
        use crate::permission::{authorize, Need};
        let map = table();
        let p = |v: Value| {
            let mut c = claims(v);
            c.insert("sub".into(), json!("s"));
            map.principal(&c).unwrap()
        };
        let editor = p(json!({"groups": ["shop-editors"]}));
        assert!(authorize(&editor, Need::Write("shop")).is_ok());
        assert!(authorize(&editor, Need::Own("shop")).is_err());
        assert!(authorize(&editor, Need::Read("blog")).is_err());
        assert!(authorize(&editor, Need::Evaluate).is_err());
        assert!(authorize(&editor, Need::User).is_err());
        let server = p(json!({"scope": "evaluate:shop"}));
        assert!(authorize(&server, Need::Evaluate).is_ok());
        assert!(authorize(&server, Need::EvaluateServer).is_ok());
        assert!(authorize(&server, Need::Read("shop")).is_err());
        let client = p(json!({"scope": "evaluate:shop-client"}));
        assert!(authorize(&client, Need::Evaluate).is_ok());
        let Err(denied) = authorize(&client, Need::EvaluateServer) else {
            panic!("allowed")
        };
        assert_eq!(
            denied.0,
            "JWT subject s cannot use this endpoint; it needs a server token"
        );
        let admin = p(json!({"groups": "flag-admins"}));
        assert!(authorize(&admin, Need::Admin).is_ok());
        assert!(authorize(&admin, Need::Evaluate).is_err());
    }

    fn registered(extra: Value) -> Map<String, Value> {
        let mut c = claims(json!({
            "iss": "https://id.example.com",
            "aud": "hata",
            "exp": 1_000,
            "sub": "s",
        }));
        for (k, v) in claims(extra) {
            if v.is_null() {
                c.remove(&k);
            } else {
                c.insert(k, v);
            }
        }
        c
    }

    const EXPECTED: Expected<'static> = Expected {
        issuer: "https://id.example.com",
        audience: "hata",
        leeway: 60,
    };

    #[test]
    fn registered_claims() {
        use ClaimsError::*;
        let wrong_aud = || Err(WrongAudience("hata".into()));
        let cases: Vec<(Value, i64, Result<i64, ClaimsError>)> = vec![
            (json!({}), 500, Ok(1_000)),
            (json!({"aud": ["other", "hata"]}), 500, Ok(1_000)),
            (json!({"exp": 1_000.9}), 500, Ok(1_000)),
            // The leeway: expired only 60 s after exp.
            (json!({}), 1_059, Ok(1_000)),
            (json!({}), 1_060, Err(Expired)),
            (json!({"exp": -5}), 500, Err(Expired)),
            (json!({"exp": null}), 500, Err(NoExpiry)),
            (json!({"exp": "2000"}), 500, Err(NotNumeric("exp"))),
            (json!({"exp": true}), 500, Err(NotNumeric("exp"))),
            (
                json!({"iss": "https://id.example.com/"}),
                500,
                Err(WrongIssuer),
            ),
            (json!({"iss": null}), 500, Err(WrongIssuer)),
            (
                json!({"iss": ["https://id.example.com"]}),
                500,
                Err(WrongIssuer),
            ),
            (json!({"aud": "other"}), 500, wrong_aud()),
            (json!({"aud": ["other"]}), 500, wrong_aud()),
            (json!({"aud": []}), 500, wrong_aud()),
            (json!({"aud": null}), 500, wrong_aud()),
            (json!({"aud": "HATA"}), 500, wrong_aud()),
            // nbf, with the same leeway.
            (json!({"nbf": 560}), 500, Ok(1_000)),
            (json!({"nbf": 561}), 500, Err(NotYetValid)),
            (json!({"nbf": "0"}), 500, Err(NotNumeric("nbf"))),
            (json!({"nbf": 0}), 500, Ok(1_000)),
        ];
        for (i, (extra, now, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                check_registered(&registered(extra), &EXPECTED, now),
                want,
                "case {i}"
            );
        }
        let no_leeway = Expected {
            leeway: 0,
            ..EXPECTED
        };
        assert_eq!(
            check_registered(&registered(json!({})), &no_leeway, 1_000),
            Err(Expired)
        );
        assert_eq!(
            check_registered(&registered(json!({})), &no_leeway, 999),
            Ok(1_000)
        );
        let huge = Expected {
            leeway: u64::MAX,
            ..EXPECTED
        };
        assert_eq!(
            check_registered(&registered(json!({"exp": i64::MAX})), &huge, i64::MAX - 1),
            Ok(i64::MAX)
        );
    }

    #[test]
    fn messages_name_the_claim_not_the_token() {
        assert_eq!(
            ClaimsError::WrongAudience("hata".into()).to_string(),
            "the token's audience (aud) does not include \"hata\""
        );
        assert_eq!(
            ClaimsError::NotYetValid.to_string(),
            "the token is not yet valid (nbf is in the future)"
        );
    }
}
