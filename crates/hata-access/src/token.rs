//! API tokens: their kinds, and how a token's secret, id and stored hash are made.
//!
//! A secret is 192 random bits behind a prefix naming its kind (`hata_server_…`), so a leaked
//! one is recognisable in logs and by secret scanners. The store keeps only its SHA-256: with
//! that much entropy there is nothing to brute-force, and a fast hash keeps authentication off
//! the hot path's budget. An operator-chosen secret (`HATA_ADMIN_TOKEN`) has less entropy, so
//! its hash must never leave the store: nothing the API, the change record, tickets or lists
//! show is derived from a secret. Token ids are random for that reason; they used to be the
//! first 64 bits of the hash, an offline guessing oracle for chosen secrets and the same id for
//! the same secret on every install.

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::role::Role;

/// What a token may do: `admin` everything; `project` what its role allows in one project;
/// `server` and `client` evaluate in one project and environment (`client` tokens are safe to
/// ship in browsers).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Admin,
    Project,
    Server,
    Client,
}

impl TokenKind {
    pub const ALL: [TokenKind; 4] = [
        TokenKind::Admin,
        TokenKind::Project,
        TokenKind::Server,
        TokenKind::Client,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Admin => "admin",
            TokenKind::Project => "project",
            TokenKind::Server => "server",
            TokenKind::Client => "client",
        }
    }

    pub fn parse(s: &str) -> Option<TokenKind> {
        TokenKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What is wrong with binding a token of `kind` to this project, environment and role, as
/// (field, message) pairs; empty when the shape is right. Whether the project and environment
/// exist is the store's question. The API, the store and the import all check with this.
pub fn binding_problems(
    kind: TokenKind,
    project: Option<&str>,
    environment: Option<&str>,
    role: Option<Role>,
) -> Vec<(&'static str, &'static str)> {
    let mut problems = Vec::new();
    match kind {
        TokenKind::Admin => {
            if project.is_some() {
                problems.push(("project", "admin tokens are not bound to a project"));
            }
            if environment.is_some() {
                problems.push((
                    "environment",
                    "admin tokens are not bound to an environment",
                ));
            }
        }
        TokenKind::Project => {
            if project.is_none() {
                problems.push(("project", "project tokens need a project"));
            }
            if environment.is_some() {
                problems.push((
                    "environment",
                    "project tokens are bound to a project, not to an environment",
                ));
            }
            if role.is_none() {
                problems.push((
                    "role",
                    "project tokens need a role: viewer, editor or owner",
                ));
            }
        }
        TokenKind::Server | TokenKind::Client => {
            if project.is_none() {
                problems.push(("project", "server and client tokens need a project"));
            }
            if environment.is_none() {
                problems.push((
                    "environment",
                    "server and client tokens need an environment",
                ));
            }
        }
    }
    if kind != TokenKind::Project && role.is_some() {
        problems.push(("role", "only project tokens carry a role"));
    }
    problems
}

/// A new token: the secret (shown once, to its creator), and what the store keeps.
#[derive(Clone)]
pub struct MintedToken {
    pub id: String,
    pub secret: String,
    pub secret_hash: String,
}

impl std::fmt::Debug for MintedToken {
    /// Never prints the secret, so a stray `{:?}` cannot log it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedToken")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl MintedToken {
    /// A token with a new random secret.
    pub fn generate(kind: TokenKind) -> MintedToken {
        MintedToken::with_secret(new_secret(kind))
    }

    /// A token with a secret the operator chose (`HATA_ADMIN_TOKEN`), under a random id.
    pub fn with_secret(secret: String) -> MintedToken {
        MintedToken {
            id: new_id(),
            secret_hash: hash_secret(&secret),
            secret,
        }
    }
}

/// A new random secret with a prefix naming its kind.
pub fn new_secret(kind: TokenKind) -> String {
    let bytes: [u8; 24] = rand::thread_rng().gen();
    format!("hata_{}_{}", kind.as_str(), hex::encode(bytes))
}

/// A new token id, `tok_` and 64 random bits in hex: unique in practice (the store's primary
/// key catches the rest) and unrelated to the secret.
pub fn new_id() -> String {
    let bytes: [u8; 8] = rand::thread_rng().gen();
    format!("tok_{}", hex::encode(bytes))
}

/// The SHA-256 of a secret, as the token cache looks it up.
pub fn secret_digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The SHA-256 of a secret in hex, as the store keeps it.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(secret_digest(secret))
}

/// A token's expiry as the store keeps it (UTC RFC 3339): the `given` RFC 3339 date-time with
/// an offset, after `now` and before the year 10000. A past one would make a token dead on
/// arrival; one that cannot be written back in four digits used to be stored as no expiry.
pub fn parse_expiry(given: &str, now: time::OffsetDateTime) -> Result<String, &'static str> {
    use time::format_description::well_known::Rfc3339;
    const NOT_RFC3339: &str = "must be an RFC 3339 date-time with an offset";
    const TOO_LATE: &str = "must be before the year 10000 (in UTC)";
    let at = time::OffsetDateTime::parse(given, &Rfc3339).map_err(|_| NOT_RFC3339)?;
    let at = at
        .checked_to_offset(time::UtcOffset::UTC)
        .filter(|t| t.year() <= 9999)
        .ok_or(TOO_LATE)?;
    if at <= now {
        return Err("must be in the future");
    }
    at.format(&Rfc3339).map_err(|_| TOO_LATE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_future_utc_times_before_the_year_10000() {
        let now = time::macros::datetime!(2030-01-01 00:00:00 UTC);
        assert_eq!(
            parse_expiry("2030-01-01T08:59:59+09:00", now),
            Err("must be in the future")
        );
        assert_eq!(
            parse_expiry("2030-01-01T09:00:00.5+08:00", now).as_deref(),
            Ok("2030-01-01T01:00:00.5Z")
        );
        // Its UTC instant is in the year 10000.
        assert_eq!(
            parse_expiry("9999-12-31T23:59:59-23:59", now),
            Err("must be before the year 10000 (in UTC)")
        );
        assert_eq!(
            parse_expiry("9999-12-31T23:59:59Z", now).as_deref(),
            Ok("9999-12-31T23:59:59Z")
        );
        for bad in ["tomorrow", "2031-01-01", "2031-01-01T00:00:00", ""] {
            assert_eq!(
                parse_expiry(bad, now),
                Err("must be an RFC 3339 date-time with an offset"),
                "{bad}"
            );
        }
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in TokenKind::ALL {
            assert_eq!(TokenKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(TokenKind::parse("Admin"), None);
        assert_eq!(TokenKind::parse("user"), None);
    }

    #[test]
    fn each_kind_has_its_binding() {
        let ok = |k, p, e, r| binding_problems(k, p, e, r).is_empty();
        assert!(ok(TokenKind::Admin, None, None, None));
        assert!(ok(
            TokenKind::Project,
            Some("shop"),
            None,
            Some(Role::Editor)
        ));
        assert!(ok(TokenKind::Server, Some("shop"), Some("prod"), None));
        assert!(ok(TokenKind::Client, Some("shop"), Some("prod"), None));
        let fields = |k, p, e, r| -> Vec<&str> {
            binding_problems(k, p, e, r)
                .into_iter()
                .map(|(f, _)| f)
                .collect()
        };
        assert_eq!(
            fields(
                TokenKind::Admin,
                Some("shop"),
                Some("prod"),
                Some(Role::Owner)
            ),
            ["project", "environment", "role"]
        );
        assert_eq!(
            fields(TokenKind::Project, None, Some("prod"), None),
            ["project", "environment", "role"]
        );
        assert_eq!(
            fields(TokenKind::Server, None, None, Some(Role::Viewer)),
            ["project", "environment", "role"]
        );
        assert_eq!(
            fields(TokenKind::Client, Some("shop"), None, None),
            ["environment"]
        );
    }

    #[test]
    fn ids_are_random_and_unrelated_to_the_secret() {
        let a = MintedToken::with_secret("the same chosen secret".into());
        let b = MintedToken::with_secret("the same chosen secret".into());
        assert_eq!(a.secret_hash, b.secret_hash);
        assert_ne!(a.id, b.id);
        for t in [&a, &b] {
            let hex = t.id.strip_prefix("tok_").expect("tok_ prefix");
            assert_eq!(hex.len(), 16);
            assert!(hex.bytes().all(|c| c.is_ascii_hexdigit()));
            assert!(!t.secret_hash.starts_with(hex), "id derived from the hash");
        }
    }

    #[test]
    fn secrets_name_their_kind_and_carry_192_random_bits() {
        let t = MintedToken::generate(TokenKind::Server);
        let hex = t.secret.strip_prefix("hata_server_").expect("prefix");
        assert_eq!(hex.len(), 48);
        assert_ne!(t.secret, MintedToken::generate(TokenKind::Server).secret);
        assert_eq!(t.secret_hash, hash_secret(&t.secret));
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(!format!("{t:?}").contains(&t.secret));
    }
}

/// How old an API token may get (the documents' 90-day key rotation): a token is refused
/// once `max_age` has passed since it was created or last rotated, and is "due" (listed by
/// `hata token list --due` and `GET /tokens?due=true`, warned about in the log) from
/// `warn_within` before that, or before its own expiry, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenAges {
    /// `None`: tokens may get as old as they like (only `expires_at` ends them).
    pub max_age: Option<std::time::Duration>,
    pub warn_within: std::time::Duration,
}

impl Default for TokenAges {
    /// 90 days, due from 14 days before.
    fn default() -> Self {
        TokenAges {
            max_age: Some(std::time::Duration::from_secs(90 * 24 * 3600)),
            warn_within: std::time::Duration::from_secs(14 * 24 * 3600),
        }
    }
}

/// Where a token stands at some time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Good,
    /// Refused from `due_at` on; rotate it.
    DueSoon,
    /// Refused: past its expiry or its maximum age.
    Overdue,
}

impl Standing {
    /// `good`, `due_soon` or `overdue`, as the API and `hata token list` say it.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Good => "good",
            Standing::DueSoon => "due_soon",
            Standing::Overdue => "overdue",
        }
    }
}

impl TokenAges {
    /// `--token-max-age-days`: `0` means no maximum age.
    pub fn with_max_age_days(days: u64) -> TokenAges {
        TokenAges {
            max_age: (days > 0).then(|| std::time::Duration::from_secs(days * 24 * 3600)),
            ..TokenAges::default()
        }
    }

    /// When the token stops working (Unix nanoseconds): the earlier of its expiry and its
    /// age limit (counted from `issued`, its creation or last rotation). `None`: never.
    pub fn due_at(&self, issued: i128, expires: Option<i128>) -> Option<i128> {
        let aged = self.max_age.map(|age| issued + age.as_nanos() as i128);
        match (aged, expires) {
            (Some(a), Some(e)) => Some(a.min(e)),
            (a, e) => a.or(e),
        }
    }

    /// Whether the age limit (not the token's own expiry) is what ends it at `due_at`.
    pub fn aged_out(&self, issued: i128, expires: Option<i128>) -> bool {
        let aged = self.max_age.map(|age| issued + age.as_nanos() as i128);
        matches!((aged, expires), (Some(a), e) if e.is_none_or(|e| a < e))
    }

    pub fn standing(&self, due_at: Option<i128>, now: i128) -> Standing {
        match due_at {
            None => Standing::Good,
            Some(at) if at <= now => Standing::Overdue,
            Some(at) if at - (self.warn_within.as_nanos() as i128) <= now => Standing::DueSoon,
            Some(_) => Standing::Good,
        }
    }
}

#[cfg(test)]
mod age_tests {
    use super::*;

    const DAY: i128 = 24 * 3600 * 1_000_000_000;

    #[test]
    fn tokens_are_due_from_14_days_before_90_days_or_their_expiry() {
        let ages = TokenAges::default();
        let issued = 1_000 * DAY;
        let due = ages.due_at(issued, None);
        assert_eq!(due, Some(issued + 90 * DAY));
        assert!(ages.aged_out(issued, None));
        assert_eq!(ages.standing(due, issued + 75 * DAY), Standing::Good);
        assert_eq!(ages.standing(due, issued + 76 * DAY), Standing::DueSoon);
        assert_eq!(ages.standing(due, issued + 90 * DAY), Standing::Overdue);
        // An earlier expiry wins, and then it is the expiry, not the age, that ends it.
        let expires = Some(issued + 10 * DAY);
        assert_eq!(ages.due_at(issued, expires), expires);
        assert!(!ages.aged_out(issued, expires));
        // Without a maximum age only the expiry counts.
        let unlimited = TokenAges {
            max_age: None,
            ..TokenAges::default()
        };
        assert_eq!(unlimited.due_at(issued, None), None);
        assert_eq!(unlimited.standing(None, i128::MAX), Standing::Good);
        assert_eq!(unlimited.due_at(issued, expires), expires);
    }
}
