//! hata's domain: the flag model, validation, the evaluation engine and bucketing.
//!
//! Pure Rust: no I/O, no async runtime, no HTTP or SQL. Shared by the server and (later) the
//! Rust SDK, so everything here must be deterministic and panic-free on any input.

pub mod bucketing;
pub mod context;
pub mod evaluate;
pub mod key;
pub mod model;
pub mod movement;
pub mod operand;
pub mod pattern;
pub mod snapshot;
pub mod validate;

#[doc(hidden)]
pub mod fuzzing;
