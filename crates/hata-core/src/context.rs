//! The evaluation context: a JSON object whose `targetingKey` names the subject and whose
//! other members are attributes (`shared/spec/evaluation.md`, "Context").
//!
//! This module only reads members out of a context; it knows nothing of flags. The compiled
//! attribute paths (`snapshot`) and the evaluator (`evaluate`) read contexts through it, so
//! dependencies point one way: `context` ← `snapshot` ← `evaluate`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

/// Most top-level members a context may have unless the caller sets its own limit
/// ([`Context::try_from_pairs`], [`Context::try_new`]). Contexts describe one subject; a few
/// dozen attributes is typical and a thousand is generous. The cap bounds what one request
/// costs to read and index, not evaluation: lookups do not depend on the width either way.
pub const MAX_MEMBERS: usize = 1_000;

/// From this many member pairs on, a context indexes its members by name when it is built,
/// so that each attribute lookup is one hash instead of a scan of every member. Indexing
/// costs 25–35 ns a member (`benches/evaluate.rs`, group `width`): below 32 members the scan
/// is as fast or faster even for all 100 flags of the bench project, and no allocation is
/// made; at 32 the index halves the time of all 100 flags (a single flag still prefers the
/// scan, but by under a microsecond). A scan thus never passes more than 31 members.
const INDEX_FROM: usize = 32;

/// Why a context was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContextError {
    /// More top-level members than the caller allows. OFREP reports it as
    /// `INVALID_CONTEXT`.
    #[error("the context has {got} members; at most {limit} are allowed")]
    TooManyMembers { limit: usize, got: usize },
}

/// An evaluation context: a JSON object whose `targetingKey` (a string) names the subject and
/// whose other members are attributes. Borrowed and cheap to build: one member lookup, plus
/// an index of the member names for a wide context given as pairs.
#[derive(Debug, Clone)]
pub struct Context<'c> {
    members: Members<'c>,
    targeting_key: Option<&'c str>,
}

/// The top-level members of a context object.
#[derive(Debug, Clone)]
pub(crate) enum Members<'c> {
    /// A parsed object: an `IndexMap` (serde_json's `preserve_order`), so a wide one is
    /// already hashed by name (see [`member`]).
    Map(&'c Map<String, Value>),
    /// Fewer than `INDEX_FROM` members in document order, as a server reads them off the
    /// wire: building a JSON map would hash every name (SipHash) for lookups that scan a
    /// handful of members anyway. Names may borrow the request body: most have no escapes,
    /// and copying each was an allocation.
    Pairs(&'c [(Cow<'c, str>, Value)]),
    /// Wider member pairs, by name; of duplicate names the last. The hasher is std's keyed
    /// SipHash on purpose: the names come from clients, and a fixed hash (Fx) lets a client
    /// send names that all collide.
    Indexed(HashMap<&'c str, &'c Value>),
}

impl<'c> Members<'c> {
    /// The member called `name`; of duplicates the last, as a JSON map keeps it.
    #[inline]
    pub(crate) fn get(&self, name: &str) -> Option<&'c Value> {
        match self {
            Members::Map(map) => member(map, name),
            Members::Pairs(pairs) => pairs
                .iter()
                .rev()
                .find(|(k, _)| k.as_ref() == name)
                .map(|(_, v)| v),
            Members::Indexed(index) => index.get(name).copied(),
        }
    }
}

/// `map.get(name)`, but a linear scan for the small objects contexts usually are: comparing a
/// few lengths is cheaper than hashing the name with the map's SipHash.
#[inline]
pub(crate) fn member<'c>(map: &'c Map<String, Value>, name: &str) -> Option<&'c Value> {
    if map.len() <= 12 {
        map.iter().find(|(k, _)| k.as_str() == name).map(|(_, v)| v)
    } else {
        map.get(name)
    }
}

static EMPTY: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

impl<'c> Context<'c> {
    pub fn new(attrs: &'c Map<String, Value>) -> Context<'c> {
        Context::of(Members::Map(attrs))
    }

    /// [`Context::new`], refusing an object of more than `limit` members.
    pub fn try_new(
        attrs: &'c Map<String, Value>,
        limit: usize,
    ) -> Result<Context<'c>, ContextError> {
        check_width(attrs.len(), limit)?;
        Ok(Context::new(attrs))
    }

    /// A context from an object's members as `(name, value)` pairs, in document order. A
    /// name given twice means its last value, as in [`Context::new`] on the parsed object.
    /// From `INDEX_FROM` (32) pairs on, the names are indexed here, once: one allocation, and
    /// lookups cost the same however many members the context has. No limit on the number of
    /// members; see [`Context::try_from_pairs`].
    pub fn from_pairs(pairs: &'c [(Cow<'c, str>, Value)]) -> Context<'c> {
        if pairs.len() < INDEX_FROM {
            return Context::of(Members::Pairs(pairs));
        }
        let mut index = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            // In document order, so a later duplicate replaces an earlier one.
            index.insert(name.as_ref(), value);
        }
        Context::of(Members::Indexed(index))
    }

    /// [`Context::from_pairs`], refusing more than `limit` pairs (duplicate names count
    /// each time: they were all sent). [`MAX_MEMBERS`] is the default limit.
    pub fn try_from_pairs(
        pairs: &'c [(Cow<'c, str>, Value)],
        limit: usize,
    ) -> Result<Context<'c>, ContextError> {
        check_width(pairs.len(), limit)?;
        Ok(Context::from_pairs(pairs))
    }

    fn of(members: Members<'c>) -> Context<'c> {
        let targeting_key = members.get("targetingKey").and_then(Value::as_str);
        Context {
            members,
            targeting_key,
        }
    }

    /// A context from any JSON value; `None` unless it is an object.
    pub fn from_value(value: &'c Value) -> Option<Context<'c>> {
        value.as_object().map(Context::new)
    }

    /// The context with no targetingKey and no attributes.
    pub fn empty() -> Context<'c> {
        Context::new(&EMPTY)
    }

    /// The `targetingKey` member if it is a string. A non-string one matches no target or
    /// segment list (it can still be bucketed by, like any attribute).
    pub fn targeting_key(&self) -> Option<&'c str> {
        self.targeting_key
    }

    /// The top-level member called `name`.
    pub fn attribute(&self, name: &str) -> Option<&'c Value> {
        self.members.get(name)
    }

    /// The top-level members, for attribute paths to read.
    #[inline]
    pub(crate) fn members(&self) -> &Members<'c> {
        &self.members
    }
}

fn check_width(got: usize, limit: usize) -> Result<(), ContextError> {
    if got > limit {
        return Err(ContextError::TooManyMembers { limit, got });
    }
    Ok(())
}
