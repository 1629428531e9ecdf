//! What a commit announces: `ChangeNotice`s for everyone holding state derived from the store
//! (snapshots, token caches, SSE streams), and `RuleSetWrite`, what one write did to the rule
//! sets of the environments it bumped. Plain data: how notices are produced is `write`, how
//! they cross processes is `listen`.

use std::sync::Arc;

use hata_core::model::Flag;
use serde::{Deserialize, Serialize};

/// An environment's revision, as a write bumped it or as the store currently has it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EnvRevision {
    pub project: String,
    pub environment: String,
    pub revision: i64,
}

/// What changed, published after a commit to everyone holding derived state (snapshots,
/// token caches, SSE streams), in this process and — on PostgreSQL — in every replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChangeNotice {
    /// The environment's rule set changed; reload it if your revision is older.
    Environment(EnvRevision),
    /// What a write committed by this process did to rule sets, published just before its
    /// `Environment` notices. A subscriber can apply it in memory, as the writer does, instead
    /// of reading the rule sets back. It never crosses processes (other replicas hear only
    /// the `Environment` notices).
    #[serde(skip)]
    RuleSets(Arc<RuleSetWrite>),
    /// The environment (or its whole project) no longer exists.
    EnvironmentRemoved {
        project: String,
        environment: String,
    },
    /// Tokens were created or deleted.
    Tokens,
    /// Notices may have been missed (the cross-process channel was down): reload everything
    /// derived from the store.
    Resync,
}

/// The environment revisions a write produced, and what it did to their rule sets.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSetWrite {
    pub revisions: Vec<EnvRevision>,
    /// The store ids of the environments in `revisions`, in the same order (a deleted and
    /// re-created environment has a new id, so a revision alone does not name a rule set).
    pub env_ids: Vec<i64>,
    /// When the revisions were bumped (the environments' `revised_at`).
    pub at: String,
    /// What the write did to the rule sets of those environments.
    pub delta: RuleSetDelta,
}

/// What a write did to the rule sets of the environments it bumped, so a server holding them
/// can update them in memory instead of reading every flag of the project back after each
/// write (which made a write cost O(flags), twice over with two environments).
#[derive(Debug, Clone, PartialEq)]
pub enum RuleSetDelta {
    /// Exactly one flag was created or replaced by this one (as stored: version and times
    /// included), and nothing else changed. The most common writes by far: toggles, kill
    /// switches, rollout steps, targeting edits, new flags.
    FlagWritten(Box<Flag>),
    /// Exactly this flag was deleted, and nothing else changed.
    FlagDeleted(String),
    /// Anything else: read the rule sets back from the store.
    Reload,
}
