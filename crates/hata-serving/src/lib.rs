//! hata's in-memory rule sets: what evaluations are answered from, without HTTP.
//!
//! - [`catalog`]: one compiled, immutable [`EnvServing`] per environment in a catalog swapped
//!   whole, and [`Serving`], which keeps it in step with the store.
//! - [`sdk_body`]: the SDK rule set's bytes (`sdk/config` and its SSE event), spliceable per flag.
//! - [`ofrep_json`]: the OFREP success shape, and its answers pre-serialised per (flag, variant).
//! - [`counts`]: lock-free evaluation counters and the flusher that stores them.
//! - [`ticket`]: signed tickets that stand in for a token in event-stream URLs.
//! - [`rule_set_id`]: `<environment id>.<revision>`, the name of a rule set everywhere.
//!
//! This crate knows nothing of HTTP (no axum, no hyper): the server maps requests onto it, and
//! an edge mode or a Rust SDK can fill the same catalog from a stream.

pub mod catalog;
pub mod counts;
pub mod ofrep_json;
pub mod rule_set_id;
pub mod sdk_body;
pub mod ticket;

pub use catalog::{follow_changes, EnvServing, Serving, REPAIR_INTERVAL};
pub use rule_set_id::RuleSetId;
pub use sdk_body::SdkConfig;
