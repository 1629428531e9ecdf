//! The compiled, immutable form of one environment's flags and the project's segments.
//!
//! [`Snapshot::compile`] does every piece of work that does not depend on the evaluation
//! context once: it resolves variant, segment and prerequisite references to indices, compiles
//! regexes, parses semvers and timestamps, turns target and `in` lists into hash sets and
//! prehashes rollout salts. Evaluation (see `evaluate`) then only walks indices.
//!
//! Compilation is the last line of defence against bad input: the model normally went through
//! `validate` first, but anything that would make evaluation ambiguous, unbounded or panicky
//! (unknown references, cycles, weights not summing to 100000, unparseable operands) is a
//! [`CompileError`] here, and so are `matches` patterns over the limits of `pattern` (a stored
//! rule set is compiled at every start). Not here: the wire format (`model`) and the
//! user-facing messages of write-time validation (`validate`).

use std::collections::HashMap;
use std::sync::Arc;

use rustc_hash::{FxHashMap, FxHashSet};
use semver::Version;
use serde_json::Value;

use crate::bucketing::{PrefixHash, BUCKETS};
use crate::context::{member, Members};
use crate::model::{Condition, Flag, FlagConfig, FlagType, Operator, Segment, Serve};
use crate::operand::{parse_semver, parse_timestamp, TimestampNanos};
use crate::pattern::{Pattern, PatternTally, Scope, MAX_ENVIRONMENT_PATTERN_BYTES};

/// How deep prerequisite chains and segment-in-segment references may nest. Evaluation
/// recurses along both, so the bound keeps its stack use small and fixed (a few tens of KiB
/// at worst). Write-time validation should enforce the same bound, or a snapshot holding a
/// deeper chain fails to compile.
pub const MAX_NESTING: usize = 64;

/// Why a set of flags and segments could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("flag `{0}` appears more than once")]
    DuplicateFlag(String),
    #[error("segment `{0}` appears more than once")]
    DuplicateSegment(String),
    /// Something inside a flag or segment is invalid; `at` says where.
    #[error("{at}: {problem}")]
    Invalid { at: String, problem: String },
    #[error("segment `{0}` is part of a cycle of segment references")]
    SegmentCycle(String),
    #[error("flag `{0}` is part of a cycle of prerequisites")]
    PrerequisiteCycle(String),
    #[error("{what} `{key}` nests more than {MAX_NESTING} levels deep")]
    TooDeep { what: &'static str, key: String },
    /// The `matches` patterns of the environment's live flags and of all segments together
    /// compile to more than [`MAX_ENVIRONMENT_PATTERN_BYTES`].
    #[error(
        "the `matches` patterns of environment `{env}` compile to {bytes} bytes, more than {MAX_ENVIRONMENT_PATTERN_BYTES}"
    )]
    PatternsTooLarge { env: String, bytes: usize },
}

/// One environment's flags, compiled for evaluation. Immutable, `Send + Sync`; share it with
/// an `Arc` and swap in a new one when the configuration changes.
#[derive(Debug)]
pub struct Snapshot {
    pub(crate) env: String,
    /// Live flags (not archived, configured in `env`), sorted by key. Each behind its own
    /// `Arc`, and the index and segments too, so that [`Snapshot::with_flag`] shares
    /// everything but the one flag it compiles.
    pub(crate) flags: Vec<Arc<CompiledFlag>>,
    /// Key → index in `flags`. The keys are shared between the snapshots a write derives from
    /// one another, so a write re-indexes without allocating a key per flag (10,000 small
    /// allocations per write fragmented the heap of a server with many flags).
    pub(crate) by_key: Arc<FxHashMap<Arc<str>, usize>>,
    pub(crate) segments: Arc<Vec<CompiledSegment>>,
    /// The compiled size of every `matches` pattern in `flags` and `segments`, each time it
    /// appears (`pattern::MAX_ENVIRONMENT_PATTERN_BYTES`).
    pub(crate) pattern_bytes: usize,
}

/// Where a written flag left and joined the live order ([`Snapshot::with_flag`]): indices
/// before and after the write. Other flags keep their order; parts kept per live flag (the
/// server's pre-serialised answers) are spliced the same way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spliced {
    /// The flag's index before the write, if it was live.
    pub removed: Option<usize>,
    /// Its index after the write, if it is live.
    pub inserted: Option<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledVariant {
    pub key: String,
    pub value: Value,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledFlag {
    pub key: String,
    pub version: i64,
    pub flag_type: FlagType,
    pub variants: Vec<CompiledVariant>,
    pub enabled: bool,
    pub off_variant: usize,
    /// A fixed default and no prerequisites, targets or rules: reason `STATIC`.
    pub is_static: bool,
    pub prerequisites: Vec<CompiledPrerequisite>,
    /// targetingKey → variant index; the first target listing a key wins.
    pub targets: FxHashMap<Box<str>, usize>,
    pub rules: Vec<CompiledRule>,
    pub default: CompiledServe,
    /// The compiled size of its `matches` patterns.
    pub pattern_bytes: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledPrerequisite {
    /// `None` when the flag is archived or not configured in this environment: it is then
    /// missing, its evaluation is an error, and the prerequisite never holds.
    pub flag: Option<usize>,
    /// Indices into the prerequisite flag's variants.
    pub variants: Vec<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub id: String,
    pub conditions: Vec<CompiledCondition>,
    pub serve: CompiledServe,
}

#[derive(Debug, Clone)]
pub(crate) enum CompiledServe {
    Variant(usize),
    Rollout(CompiledRollout),
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRollout {
    pub bucket_by: AttributePath,
    /// murmur3 state after `salt + "/"`.
    pub prefix: PrefixHash,
    /// (exclusive end of the bucket range, variant index), zero weights dropped; the last end
    /// is 100000.
    pub ranges: Vec<(u32, usize)>,
    /// The first variant with weight > 0: served when the bucket-by attribute is missing.
    pub first: usize,
}

impl CompiledRollout {
    #[inline]
    pub fn variant_for(&self, bucket: u32) -> usize {
        for &(end, variant) in &self.ranges {
            if bucket < end {
                return variant;
            }
        }
        // Unreachable for a compiled rollout (ranges end at 100000 > any bucket).
        self.first
    }
}

/// A condition attribute: a top-level member name, and the dotted path it is read as when no
/// member has exactly that name.
#[derive(Debug, Clone)]
pub(crate) struct AttributePath {
    pub name: Box<str>,
    /// Present only when `name` contains a dot.
    pub path: Option<Box<[Box<str>]>>,
}

impl AttributePath {
    fn new(name: &str) -> AttributePath {
        AttributePath {
            name: name.into(),
            path: name
                .contains('.')
                .then(|| name.split('.').map(Box::from).collect()),
        }
    }

    /// The attribute's value in `attrs`: an exact top-level member first (even a `null` one),
    /// else the dotted path through nested objects.
    #[inline]
    pub fn lookup<'c>(&self, members: &Members<'c>) -> Option<&'c Value> {
        if let Some(v) = members.get(&self.name) {
            return Some(v);
        }
        let (first, rest) = self.path.as_deref()?.split_first()?;
        let mut v = members.get(first)?;
        for part in rest {
            v = member(v.as_object()?, part)?;
        }
        Some(v)
    }
}

#[derive(Debug, Clone)]
pub(crate) enum CompiledCondition {
    Attribute {
        attribute: AttributePath,
        test: Test,
        negate: bool,
    },
    Segment {
        index: usize,
        negate: bool,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    In(InSet),
    Contains(Box<[Box<str>]>),
    StartsWith(Box<[Box<str>]>),
    EndsWith(Box<[Box<str>]>),
    Matches(Box<[Pattern]>),
    Lt(f64),
    Lte(f64),
    Gt(f64),
    Gte(f64),
    Before(TimestampNanos),
    After(TimestampNanos),
    SemverEq(Version),
    SemverLt(Version),
    SemverGt(Version),
    Exists,
}

/// The values of an `in` condition, split by JSON type so that equality is type-aware.
#[derive(Debug, Clone, Default)]
pub(crate) struct InSet {
    pub strings: FxHashSet<Box<str>>,
    /// `number_key` of each number: `2` and `2.0` are the same key.
    pub numbers: FxHashSet<u64>,
    /// `[false is listed, true is listed]`.
    pub bools: [bool; 2],
}

/// A hashable key for a number's value: its IEEE-754 bits, with `-0` folded into `0`.
#[inline]
pub(crate) fn number_key(x: f64) -> u64 {
    if x == 0.0 {
        0
    } else {
        x.to_bits()
    }
}

/// A JSON number as the double the spec compares by.
#[inline]
pub(crate) fn number_value(n: &serde_json::Number) -> Option<f64> {
    n.as_f64()
}

#[derive(Debug)]
pub(crate) struct CompiledSegment {
    pub key: String,
    pub included: FxHashSet<Box<str>>,
    pub excluded: FxHashSet<Box<str>>,
    pub rules: Vec<Vec<CompiledCondition>>,
    /// The compiled size of its `matches` patterns.
    pub pattern_bytes: usize,
}

/// Shared state while compiling: segment indices, the regex cache (the same patterns recur
/// across flags, and compiling a regex is the most expensive step) and the patterns of the
/// flag or segment being compiled.
struct Compiler<'i> {
    segment_index: FxHashMap<&'i str, usize>,
    regexes: HashMap<String, Pattern>,
    tally: PatternTally,
}

impl<'i> Compiler<'i> {
    fn new(segment_index: FxHashMap<&'i str, usize>) -> Compiler<'i> {
        Compiler {
            segment_index,
            regexes: HashMap::new(),
            tally: PatternTally::new(Scope::Flag),
        }
    }
}

impl Snapshot {
    /// Compiles `flags` for environment `env`. Archived flags and flags without a config for
    /// `env` are left out (evaluating them reports `FLAG_NOT_FOUND`). All `segments` are
    /// compiled, referenced or not.
    pub fn compile(
        env: &str,
        flags: &[Flag],
        segments: &[Segment],
    ) -> Result<Snapshot, CompileError> {
        let mut compiler = Compiler::new(FxHashMap::default());
        for (i, s) in segments.iter().enumerate() {
            if compiler.segment_index.insert(&s.key, i).is_some() {
                return Err(CompileError::DuplicateSegment(s.key.clone()));
            }
        }
        let mut compiled_segments = Vec::with_capacity(segments.len());
        let mut pattern_bytes = 0usize;
        for s in segments {
            let compiled = compiler.segment(s)?;
            pattern_bytes = environment_patterns(env, pattern_bytes, compiled.pattern_bytes)?;
            compiled_segments.push(compiled);
        }
        check_nesting(
            compiled_segments.len(),
            |i| segment_children(&compiled_segments[i]),
            |i| CompileError::SegmentCycle(compiled_segments[i].key.clone()),
            |i| CompileError::TooDeep {
                what: "segment",
                key: compiled_segments[i].key.clone(),
            },
        )?;

        let mut all: FxHashMap<&str, &Flag> = FxHashMap::default();
        all.reserve(flags.len());
        for f in flags {
            if all.insert(&f.key, f).is_some() {
                return Err(CompileError::DuplicateFlag(f.key.clone()));
            }
        }
        let mut live: Vec<(&Flag, &FlagConfig)> = flags
            .iter()
            .filter(|f| !f.archived)
            .filter_map(|f| f.environments.get(env).map(|c| (f, c)))
            .collect();
        live.sort_unstable_by(|a, b| a.0.key.cmp(&b.0.key));
        let mut by_key: FxHashMap<Arc<str>, usize> = FxHashMap::default();
        by_key.reserve(live.len());
        for (i, (f, _)) in live.iter().enumerate() {
            by_key.insert(f.key.as_str().into(), i);
        }

        let variants_of = |key: &str| all.get(key).map(|f| Variants::Model(&f.variants));
        let mut compiled = Vec::with_capacity(live.len());
        for (flag, config) in &live {
            let c = compiler
                .flag(flag, config, &variants_of, &by_key)
                .map_err(|e| e.within(&format!("flag `{}` in `{env}`", flag.key)))?;
            pattern_bytes = environment_patterns(env, pattern_bytes, c.pattern_bytes)?;
            compiled.push(Arc::new(c));
        }
        check_flag_nesting(&compiled)?;

        Ok(Snapshot {
            env: env.to_string(),
            flags: compiled,
            by_key: Arc::new(by_key),
            segments: Arc::new(compiled_segments),
            pattern_bytes,
        })
    }

    /// This snapshot after a write of one flag (created, changed, archived or restored),
    /// recompiling only that flag and sharing everything else: the in-memory path for the
    /// most common writes. The result is the snapshot `compile` would build from the same
    /// flags with `flag` in place of its earlier version (if any), and where the flag left or
    /// joined the live order.
    ///
    /// `None` when other flags' compiled form could change in ways this does not follow, and a
    /// full `compile` is needed:
    /// - a live flag keeps its key but changes its variant keys (flags that name it as a
    ///   prerequisite hold indices into them);
    /// - a flag leaves the live set while another live flag names it as a prerequisite;
    /// - a flag joins the live set while some prerequisite is unresolved (it may name this
    ///   flag);
    /// - one of its prerequisites is not live here, or is the flag itself joining the live set
    ///   (their variants are not in the snapshot).
    pub fn with_flag(&self, flag: &Flag) -> Option<Result<(Snapshot, Spliced), CompileError>> {
        let old = self.by_key.get(flag.key.as_str()).copied();
        let config = flag.environments.get(&self.env).filter(|_| !flag.archived);
        let Some(config) = config else {
            return match old {
                // Live flags may name it as a prerequisite that never holds: their compiled
                // form still holds indices into its variants, which may have changed.
                None if self.has_unresolved_prerequisite() => None,
                None => Some(Ok((self.clone_shared(), Spliced::default()))),
                Some(old) => self.without(old).map(Ok),
            };
        };
        if let Some(old) = old {
            let before = &self.flags[old].variants;
            let same_variants = before.len() == flag.variants.len()
                && before
                    .iter()
                    .zip(&flag.variants)
                    .all(|(o, n)| o.key == n.key);
            if !same_variants {
                return None;
            }
        } else if self.has_unresolved_prerequisite() {
            return None;
        }
        // A flag that was live may name itself: that resolves to its old variants (the same
        // keys), and the cycle check below rejects it, as `compile`'s does.
        let unresolved = config.prerequisites.iter().any(|p| {
            if p.flag == flag.key {
                old.is_none()
            } else {
                !self.by_key.contains_key(p.flag.as_str())
            }
        });
        if unresolved {
            return None;
        }
        // The other live flags, numbered as after the write, and the index of every flag.
        let (index, others, by_key) = match old {
            Some(old) => (old, self.flags.clone(), Arc::clone(&self.by_key)),
            None => {
                let index = self
                    .flags
                    .partition_point(|f| f.key.as_str() < flag.key.as_str());
                let shift = |i: usize| if i >= index { i + 1 } else { i };
                let others = self.renumbered(shift);
                let mut by_key = self.reindexed(shift, 1);
                by_key.insert(flag.key.as_str().into(), index);
                (index, others, Arc::new(by_key))
            }
        };
        let variants_of = |key: &str| {
            let &i = by_key.get(key)?;
            let at = match old {
                Some(_) => i,
                None if i == index => return None,
                None if i > index => i - 1,
                None => i,
            };
            Some(Variants::Compiled(&others[at].variants))
        };
        let mut compiler = Compiler::new(
            self.segments
                .iter()
                .enumerate()
                .map(|(i, s)| (s.key.as_str(), i))
                .collect(),
        );
        let compiled = match compiler.flag(flag, config, &variants_of, &by_key) {
            Ok(c) => c,
            Err(e) => {
                return Some(Err(
                    e.within(&format!("flag `{}` in `{}`", flag.key, self.env))
                ))
            }
        };
        let without_old = match old {
            Some(old) => self.pattern_bytes - self.flags[old].pattern_bytes,
            None => self.pattern_bytes,
        };
        let pattern_bytes =
            match environment_patterns(&self.env, without_old, compiled.pattern_bytes) {
                Ok(bytes) => bytes,
                Err(e) => return Some(Err(e)),
            };
        let mut flags = others;
        match old {
            Some(_) => flags[index] = Arc::new(compiled),
            None => flags.insert(index, Arc::new(compiled)),
        }
        // Prerequisites may have changed: a new cycle or a too deep chain is still an error.
        if let Err(e) = check_flag_nesting(&flags) {
            return Some(Err(e));
        }
        let spliced = Spliced {
            removed: old,
            inserted: Some(index),
        };
        Some(Ok((
            Snapshot {
                env: self.env.clone(),
                flags,
                by_key,
                segments: Arc::clone(&self.segments),
                pattern_bytes,
            },
            spliced,
        )))
    }

    /// This snapshot after flag `key` was deleted; `None` when a full `compile` is needed
    /// (another live flag names it as a prerequisite; see [`Snapshot::with_flag`]).
    pub fn without_flag(&self, key: &str) -> Option<(Snapshot, Spliced)> {
        match self.by_key.get(key) {
            Some(&index) => self.without(index),
            None if self.has_unresolved_prerequisite() => None,
            None => Some((self.clone_shared(), Spliced::default())),
        }
    }

    /// This snapshot without the live flag at `index`; `None` if another flag names it as a
    /// prerequisite (that flag's compiled form would change).
    fn without(&self, index: usize) -> Option<(Snapshot, Spliced)> {
        let named = self
            .flags
            .iter()
            .any(|f| f.prerequisites.iter().any(|p| p.flag == Some(index)));
        if named {
            return None;
        }
        let shift = |i: usize| if i > index { i - 1 } else { i };
        let mut flags = self.renumbered(shift);
        flags.remove(index);
        let mut by_key = self.reindexed(shift, 0);
        by_key.remove(self.flags[index].key.as_str());
        Some((
            Snapshot {
                env: self.env.clone(),
                flags,
                by_key: Arc::new(by_key),
                segments: Arc::clone(&self.segments),
                pattern_bytes: self.pattern_bytes - self.flags[index].pattern_bytes,
            },
            Spliced {
                removed: Some(index),
                inserted: None,
            },
        ))
    }

    /// The compiled flags with every prerequisite's flag index mapped by `to`; flags without
    /// prerequisites (most) are shared, not copied.
    fn renumbered(&self, to: impl Fn(usize) -> usize) -> Vec<Arc<CompiledFlag>> {
        self.flags
            .iter()
            .map(|f| {
                let moved = f
                    .prerequisites
                    .iter()
                    .any(|p| p.flag.is_some_and(|i| to(i) != i));
                if !moved {
                    return Arc::clone(f);
                }
                let mut f = CompiledFlag::clone(f);
                for p in &mut f.prerequisites {
                    p.flag = p.flag.map(&to);
                }
                Arc::new(f)
            })
            .collect()
    }

    /// `by_key` with every index mapped by `to`, sharing the keys, with room for `extra` more.
    fn reindexed(&self, to: impl Fn(usize) -> usize, extra: usize) -> FxHashMap<Arc<str>, usize> {
        let mut by_key = FxHashMap::default();
        by_key.reserve(self.by_key.len() + extra);
        by_key.extend(self.by_key.iter().map(|(k, &i)| (Arc::clone(k), to(i))));
        by_key
    }

    /// Whether some live flag has a prerequisite that is not live here.
    fn has_unresolved_prerequisite(&self) -> bool {
        self.flags
            .iter()
            .any(|f| f.prerequisites.iter().any(|p| p.flag.is_none()))
    }

    /// The same snapshot, sharing every part.
    fn clone_shared(&self) -> Snapshot {
        Snapshot {
            env: self.env.clone(),
            flags: self.flags.clone(),
            by_key: Arc::clone(&self.by_key),
            segments: Arc::clone(&self.segments),
            pattern_bytes: self.pattern_bytes,
        }
    }

    /// The environment this snapshot was compiled for.
    pub fn env(&self) -> &str {
        &self.env
    }

    /// The number of live flags.
    pub fn len(&self) -> usize {
        self.flags.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flags.is_empty()
    }

    /// The keys of the live flags, in ascending order (the order of `evaluate_all`).
    pub fn flag_keys(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.flags.iter().map(|f| f.key.as_str())
    }

    /// A live flag's definition as compiled: type, version and variants.
    pub fn flag(&self, key: &str) -> Option<FlagInfo<'_>> {
        self.by_key.get(key).map(|&i| FlagInfo {
            flag: &self.flags[i],
        })
    }

    /// Every live flag, in ascending key order: the flag indices of
    /// [`Evaluation::position`](crate::evaluate::Evaluation::position).
    pub fn flags(&self) -> impl ExactSizeIterator<Item = FlagInfo<'_>> + '_ {
        self.flags.iter().map(|flag| FlagInfo { flag })
    }

    /// The index of a live flag in the order of [`Snapshot::flags`] and `evaluate_all`.
    pub fn index_of(&self, key: &str) -> Option<usize> {
        self.by_key.get(key).copied()
    }
}

/// Read-only facts about one compiled flag.
#[derive(Debug, Clone, Copy)]
pub struct FlagInfo<'a> {
    flag: &'a CompiledFlag,
}

impl<'a> FlagInfo<'a> {
    pub fn key(&self) -> &'a str {
        &self.flag.key
    }

    /// The flag's version (OFREP `metadata.flagVersion`).
    pub fn version(&self) -> i64 {
        self.flag.version
    }

    pub fn flag_type(&self) -> FlagType {
        self.flag.flag_type
    }

    /// Whether the flag is enabled in this snapshot's environment.
    pub fn enabled(&self) -> bool {
        self.flag.enabled
    }

    /// `(variant key, value)` in the flag's order.
    pub fn variants(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a Value)> + 'a {
        self.flag
            .variants
            .iter()
            .map(|v| (v.key.as_str(), &v.value))
    }
}

fn segment_children(s: &CompiledSegment) -> Vec<usize> {
    s.rules
        .iter()
        .flatten()
        .filter_map(|c| match c {
            CompiledCondition::Segment { index, .. } => Some(*index),
            CompiledCondition::Attribute { .. } => None,
        })
        .collect()
}

/// `total` plus the compiled size of one more flag's or segment's patterns, unless the sum
/// exceeds `MAX_ENVIRONMENT_PATTERN_BYTES`.
fn environment_patterns(env: &str, total: usize, more: usize) -> Result<usize, CompileError> {
    let bytes = total.saturating_add(more);
    if bytes > MAX_ENVIRONMENT_PATTERN_BYTES {
        return Err(CompileError::PatternsTooLarge {
            env: env.to_string(),
            bytes,
        });
    }
    Ok(bytes)
}

/// Rejects cycles and nesting deeper than `MAX_NESTING` in a graph of `n` nodes. The DFS
/// itself never recurses deeper than `MAX_NESTING + 1`, whatever the input.
fn check_nesting(
    n: usize,
    children: impl Fn(usize) -> Vec<usize>,
    cycle: impl Fn(usize) -> CompileError,
    too_deep: impl Fn(usize) -> CompileError,
) -> Result<(), CompileError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnStack,
        /// Done, with the node's height (1 for a leaf).
        Done(usize),
    }
    struct Walk<'f> {
        marks: Vec<Mark>,
        children: &'f dyn Fn(usize) -> Vec<usize>,
    }
    enum Fail {
        Cycle(usize),
        TooDeep(usize),
    }
    fn visit(w: &mut Walk<'_>, node: usize, depth: usize) -> Result<usize, Fail> {
        match w.marks[node] {
            Mark::Done(h) => return Ok(h),
            Mark::OnStack => return Err(Fail::Cycle(node)),
            Mark::New => {}
        }
        if depth > MAX_NESTING {
            return Err(Fail::TooDeep(node));
        }
        w.marks[node] = Mark::OnStack;
        let mut height = 1;
        for child in (w.children)(node) {
            height = height.max(1 + visit(w, child, depth + 1)?);
        }
        if height > MAX_NESTING {
            return Err(Fail::TooDeep(node));
        }
        w.marks[node] = Mark::Done(height);
        Ok(height)
    }
    let mut w = Walk {
        marks: vec![Mark::New; n],
        children: &children,
    };
    for node in 0..n {
        match visit(&mut w, node, 1) {
            Ok(_) => {}
            Err(Fail::Cycle(i)) => return Err(cycle(i)),
            Err(Fail::TooDeep(i)) => return Err(too_deep(i)),
        }
    }
    Ok(())
}

/// A prerequisite's variants, from its model (`compile`) or its compiled form (`with_flag`):
/// the same keys in the same order.
enum Variants<'a> {
    Model(&'a [crate::model::Variant]),
    Compiled(&'a [CompiledVariant]),
}

impl Variants<'_> {
    fn position(&self, key: &str) -> Option<usize> {
        match self {
            Variants::Model(v) => v.iter().position(|v| v.key == key),
            Variants::Compiled(v) => v.iter().position(|v| v.key == key),
        }
    }
}

/// Rejects prerequisite cycles and chains deeper than `MAX_NESTING`.
fn check_flag_nesting(flags: &[Arc<CompiledFlag>]) -> Result<(), CompileError> {
    check_nesting(
        flags.len(),
        |i| {
            flags[i]
                .prerequisites
                .iter()
                .filter_map(|p| p.flag)
                .collect()
        },
        |i| CompileError::PrerequisiteCycle(flags[i].key.clone()),
        |i| CompileError::TooDeep {
            what: "flag",
            key: flags[i].key.clone(),
        },
    )
}

/// An error without its outer location yet; `within` prefixes one.
struct Problem {
    at: Vec<String>,
    problem: String,
}

impl Problem {
    fn new(problem: impl Into<String>) -> Problem {
        Problem {
            at: Vec::new(),
            problem: problem.into(),
        }
    }

    fn at(mut self, place: impl Into<String>) -> Problem {
        self.at.push(place.into());
        self
    }

    fn within(mut self, outer: &str) -> CompileError {
        self.at.push(outer.to_string());
        self.at.reverse();
        CompileError::Invalid {
            at: self.at.join(", "),
            problem: self.problem,
        }
    }
}

impl<'i> Compiler<'i> {
    fn segment(&mut self, s: &Segment) -> Result<CompiledSegment, CompileError> {
        self.tally = PatternTally::new(Scope::Segment);
        let mut rules = Vec::with_capacity(s.rules.len());
        for (r, conditions) in s.rules.iter().enumerate() {
            let mut compiled = Vec::with_capacity(conditions.len());
            for (c, condition) in conditions.iter().enumerate() {
                compiled.push(self.condition(condition).map_err(|e| {
                    e.at(format!("condition {}", c + 1))
                        .at(format!("rule {}", r + 1))
                        .within(&format!("segment `{}`", s.key))
                })?);
            }
            rules.push(compiled);
        }
        Ok(CompiledSegment {
            key: s.key.clone(),
            included: s.included.iter().map(|k| k.as_str().into()).collect(),
            excluded: s.excluded.iter().map(|k| k.as_str().into()).collect(),
            rules,
            pattern_bytes: self.tally.bytes,
        })
    }

    /// Compiles one flag. `variants_of` finds a prerequisite's variants; `live` is the index
    /// of every live flag.
    fn flag<'v>(
        &mut self,
        flag: &Flag,
        config: &FlagConfig,
        variants_of: &dyn Fn(&str) -> Option<Variants<'v>>,
        live: &FxHashMap<Arc<str>, usize>,
    ) -> Result<CompiledFlag, Problem> {
        self.tally = PatternTally::new(Scope::Flag);
        if flag.variants.is_empty() {
            return Err(Problem::new("a flag needs at least one variant"));
        }
        let mut variants = Vec::with_capacity(flag.variants.len());
        for v in &flag.variants {
            if variants.iter().any(|c: &CompiledVariant| c.key == v.key) {
                return Err(Problem::new(format!(
                    "variant `{}` appears more than once",
                    v.key
                )));
            }
            if !flag.flag_type.admits(&v.value) {
                return Err(Problem::new(format!(
                    "variant `{}` has a value that is not of type {}",
                    v.key,
                    flag.flag_type.as_str()
                )));
            }
            variants.push(CompiledVariant {
                key: v.key.clone(),
                value: v.value.clone(),
            });
        }
        let variant = |key: &str| -> Result<usize, Problem> {
            flag.variants
                .iter()
                .position(|v| v.key == key)
                .ok_or_else(|| Problem::new(format!("unknown variant `{key}`")))
        };
        let off_variant = variant(&config.off_variant).map_err(|e| e.at("off_variant"))?;

        let mut prerequisites = Vec::with_capacity(config.prerequisites.len());
        for p in &config.prerequisites {
            let at = || format!("prerequisite `{}`", p.flag);
            let target =
                variants_of(&p.flag).ok_or_else(|| Problem::new("unknown flag").at(at()))?;
            let mut indices = Vec::with_capacity(p.variants.len());
            for v in &p.variants {
                let i = target.position(v).ok_or_else(|| {
                    Problem::new(format!("flag `{}` has no variant `{v}`", p.flag)).at(at())
                })?;
                indices.push(i);
            }
            prerequisites.push(CompiledPrerequisite {
                flag: live.get(p.flag.as_str()).copied(),
                variants: indices,
            });
        }

        let mut targets = FxHashMap::default();
        for t in &config.targets {
            let v = variant(&t.variant).map_err(|e| e.at("targets"))?;
            for key in &t.values {
                targets.entry(key.as_str().into()).or_insert(v);
            }
        }

        let mut rules = Vec::with_capacity(config.rules.len());
        for (r, rule) in config.rules.iter().enumerate() {
            let at = || {
                if rule.id.is_empty() {
                    format!("rule {}", r + 1)
                } else {
                    format!("rule `{}`", rule.id)
                }
            };
            let mut conditions = Vec::with_capacity(rule.conditions.len());
            for (c, condition) in rule.conditions.iter().enumerate() {
                conditions.push(
                    self.condition(condition)
                        .map_err(|e| e.at(format!("condition {}", c + 1)).at(at()))?,
                );
            }
            rules.push(CompiledRule {
                id: rule.id.clone(),
                conditions,
                serve: serve(&flag.key, &rule.serve, &variant).map_err(|e| e.at(at()))?,
            });
        }
        let default = serve(&flag.key, &config.default, &variant).map_err(|e| e.at("default"))?;
        let is_static = config.prerequisites.is_empty()
            && config.targets.is_empty()
            && config.rules.is_empty()
            && matches!(default, CompiledServe::Variant(_));
        Ok(CompiledFlag {
            key: flag.key.clone(),
            version: flag.version,
            flag_type: flag.flag_type,
            variants,
            enabled: config.enabled,
            off_variant,
            is_static,
            prerequisites,
            targets,
            rules,
            default,
            pattern_bytes: self.tally.bytes,
        })
    }

    fn condition(&mut self, condition: &Condition) -> Result<CompiledCondition, Problem> {
        match condition {
            Condition::Segment { segment, negate } => {
                let index = *self
                    .segment_index
                    .get(segment.as_str())
                    .ok_or_else(|| Problem::new(format!("unknown segment `{segment}`")))?;
                Ok(CompiledCondition::Segment {
                    index,
                    negate: *negate,
                })
            }
            Condition::Attribute {
                attribute,
                operator,
                values,
                negate,
            } => Ok(CompiledCondition::Attribute {
                attribute: AttributePath::new(attribute),
                test: self.test(*operator, values)?,
                negate: *negate,
            }),
        }
    }

    fn test(&mut self, op: Operator, values: &[Value]) -> Result<Test, Problem> {
        let name = op.as_str();
        if op == Operator::Exists {
            if !values.is_empty() {
                return Err(Problem::new("`exists` takes no values"));
            }
            return Ok(Test::Exists);
        }
        if values.is_empty() {
            return Err(Problem::new(format!("`{name}` needs at least one value")));
        }
        if op.takes_one_value() && values.len() != 1 {
            return Err(Problem::new(format!("`{name}` takes exactly one value")));
        }
        let strings = || -> Result<Box<[Box<str>]>, Problem> {
            values
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(Box::from)
                        .ok_or_else(|| Problem::new(format!("`{name}` takes strings")))
                })
                .collect()
        };
        let one = &values[0];
        let number = || {
            one.as_f64()
                .ok_or_else(|| Problem::new(format!("`{name}` takes a number")))
        };
        let timestamp = || {
            parse_timestamp(one).ok_or_else(|| {
                Problem::new(format!(
                    "`{name}` takes an RFC 3339 date-time with offset or epoch milliseconds"
                ))
            })
        };
        let version = || {
            parse_semver(one)
                .ok_or_else(|| Problem::new(format!("`{name}` takes a SemVer 2.0.0 string")))
        };
        Ok(match op {
            Operator::In => {
                let mut set = InSet::default();
                for v in values {
                    match v {
                        Value::String(s) => {
                            set.strings.insert(s.as_str().into());
                        }
                        Value::Number(n) => {
                            let x = number_value(n)
                                .ok_or_else(|| Problem::new("`in` number out of range"))?;
                            set.numbers.insert(number_key(x));
                        }
                        Value::Bool(b) => set.bools[*b as usize] = true,
                        _ => {
                            return Err(Problem::new(
                                "`in` takes strings, numbers and booleans only",
                            ))
                        }
                    }
                }
                Test::In(set)
            }
            Operator::Contains => Test::Contains(strings()?),
            Operator::StartsWith => Test::StartsWith(strings()?),
            Operator::EndsWith => Test::EndsWith(strings()?),
            Operator::Matches => {
                let mut regexes = Vec::with_capacity(values.len());
                for pattern in strings()?.iter() {
                    self.tally.admit().map_err(Problem::new)?;
                    let compiled = self.regex(pattern)?;
                    self.tally.add(compiled.size()).map_err(Problem::new)?;
                    regexes.push(compiled);
                }
                Test::Matches(regexes.into())
            }
            Operator::Lt => Test::Lt(number()?),
            Operator::Lte => Test::Lte(number()?),
            Operator::Gt => Test::Gt(number()?),
            Operator::Gte => Test::Gte(number()?),
            Operator::Before => Test::Before(timestamp()?),
            Operator::After => Test::After(timestamp()?),
            Operator::SemverEq => Test::SemverEq(version()?),
            Operator::SemverLt => Test::SemverLt(version()?),
            Operator::SemverGt => Test::SemverGt(version()?),
            Operator::Exists => Test::Exists,
        })
    }

    fn regex(&mut self, pattern: &str) -> Result<Pattern, Problem> {
        if let Some(re) = self.regexes.get(pattern) {
            // A clone shares the compiled program.
            return Ok(re.clone());
        }
        let re = Pattern::new(pattern).map_err(|e| Problem::new(e.to_string()))?;
        self.regexes.insert(pattern.to_string(), re.clone());
        Ok(re)
    }
}

fn serve(
    flag_key: &str,
    serve: &Serve,
    variant: &impl Fn(&str) -> Result<usize, Problem>,
) -> Result<CompiledServe, Problem> {
    match serve {
        Serve::Variant(v) => Ok(CompiledServe::Variant(variant(v)?)),
        Serve::Rollout(r) => {
            let mut ranges = Vec::with_capacity(r.weights.len());
            let mut end: u64 = 0;
            for w in &r.weights {
                let v = variant(&w.variant).map_err(|e| e.at("rollout"))?;
                if w.weight > 0 {
                    end += u64::from(w.weight);
                    // Clamped only to keep the type; a wrong total is rejected below.
                    ranges.push((end.min(u64::from(u32::MAX)) as u32, v));
                }
            }
            if end != u64::from(BUCKETS) {
                return Err(Problem::new(format!(
                    "rollout weights sum to {end}, not {BUCKETS}"
                )));
            }
            let first = ranges.first().map(|&(_, v)| v).unwrap_or_default();
            Ok(CompiledServe::Rollout(CompiledRollout {
                bucket_by: AttributePath::new(r.bucket_by.as_deref().unwrap_or("targetingKey")),
                prefix: PrefixHash::for_salt(r.salt.as_deref().unwrap_or(flag_key)),
                ranges,
                first,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Snapshot>();
    }
}
