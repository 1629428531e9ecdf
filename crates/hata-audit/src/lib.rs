//! hata's tamper-evident audit chain: the entry format, its canonical form and hash, signed
//! checkpoints, the export's lines, and the streaming verifier. The format is specified in
//! `docs/audit.md`, with an independent Python verifier.
//!
//! Pure: no files, no network, no async, no SQL and no other hata crate, so the store
//! (appending in its write transaction), the server (`/audit/verify`, `/audit/export`,
//! `/audit/public-key`) and the CLI (`hata audit verify --from-file`, offline) share one
//! definition.
//!
//! - `jcs`: RFC 8785 canonical JSON, what hashes and signatures cover.
//! - `chain`: `Hash`, `Head` and `entry_hash`.
//! - `at`: the timestamps' one spelling.
//! - `entry`: `Entry`, and `NewEntry::seal` for the store to append one.
//! - `key`: Ed25519 keys in PEM, and key ids.
//! - `checkpoint`: signed checkpoints and `CheckpointPolicy`.
//! - `export`: the JSON Lines of an export.
//! - `tree`: a line parsed for hashing, fast (private to the verifier).
//! - `shape`: what a well-formed entry object is (private to the verifier).
//! - `verify`: `Verifier` and its `Report`.

pub mod at;
pub mod chain;
pub mod checkpoint;
pub mod entry;
pub mod export;
pub mod jcs;
pub mod key;
mod shape;
mod tree;
pub mod verify;

pub use at::{format_at, AtError};
pub use chain::{entry_hash, Hash, Head};
pub use checkpoint::{Checkpoint, CheckpointError, CheckpointPolicy, Signature};
pub use entry::{Actor, ActorKind, Entry, EntryError, NewEntry, Resource, SealedEntry};
pub use export::{checkpoint_line, parse_line, Line, LineError};
pub use key::{KeyError, KeyId, PublicKey, SigningKey};
pub use verify::{Bad, Reason, Report, Start, Verifier};
