//! Who may do what in hata, as pure functions and types: no I/O, no async, no HTTP, no SQL,
//! so the CLI, the store and the server agree on one definition, and the rules can be tested
//! exhaustively without a server.
//!
//! - `token`: API token kinds, how secrets and ids are made, and how secrets are hashed.
//! - `password`: the password policy and argon2id hashing.
//! - `role`: project roles (`viewer` < `editor` < `owner`).
//! - `principal`: who is calling, reduced to what authorisation reads.
//! - `permission`: what a request needs (`Need`) and `authorize`, the one place that decides.
//! - `user`: user ids, email addresses and display names as stored.
//! - `session`: browser sessions (minting, lifetimes, the CSRF comparison).
//! - `lockout`: what repeated failed logins do to an account.
//! - `totp`: two-factor authentication (RFC 6238 codes, recovery codes).
//! - `claims`: JWT claims → `Principal` (registered-claim checks and the role-mapping table).
//! - `rate`: request budgets (GCRA), shared by the in-process and the Redis limiter.

pub mod claims;
pub mod lockout;
pub mod password;
pub mod permission;
pub mod principal;
pub mod rate;
pub mod role;
pub mod session;
pub mod token;
pub mod totp;
pub mod user;

pub use permission::{authorize, Denied, Need};
pub use principal::{EvaluationAccess, Principal, PrincipalKind};
pub use role::Role;
pub use token::{MintedToken, TokenKind};
