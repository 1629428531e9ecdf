//! The evaluation context: a JSON object whose `targetingKey` names the subject and whose
//! other members are attributes (`shared/spec/evaluation.md`, "Context").
//!
//! This module only reads members out of a context; it knows nothing of flags. The compiled
//! attribute paths (`snapshot`) and the evaluator (`evaluate`) read contexts through it, so
//! dependencies point one way: `context` ← `snapshot` ← `evaluate`.

use std::borrow::Cow;
use std::sync::LazyLock;

use serde_json::{Map, Value};

/// An evaluation context: a JSON object whose `targetingKey` (a string) names the subject and
/// whose other members are attributes. Borrowed, `Copy` and cheap to build (one member lookup).
#[derive(Debug, Clone, Copy)]
pub struct Context<'c> {
    members: Members<'c>,
    targeting_key: Option<&'c str>,
}

/// The top-level members of a context object.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Members<'c> {
    Map(&'c Map<String, Value>),
    /// In document order, as a server reads them off the wire: building a JSON map would
    /// hash every name (SipHash) for lookups that scan a handful of members anyway. Names
    /// may borrow the request body: most have no escapes, and copying each was an allocation.
    Pairs(&'c [(Cow<'c, str>, Value)]),
}

impl<'c> Members<'c> {
    /// The member called `name`; of duplicates the last, as a JSON map keeps it.
    #[inline]
    pub(crate) fn get(self, name: &str) -> Option<&'c Value> {
        match self {
            Members::Map(map) => member(map, name),
            Members::Pairs(pairs) => pairs
                .iter()
                .rev()
                .find(|(k, _)| k.as_ref() == name)
                .map(|(_, v)| v),
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

    /// A context from an object's members as `(name, value)` pairs, in document order. A
    /// name given twice means its last value, as in [`Context::new`] on the parsed object.
    pub fn from_pairs(pairs: &'c [(Cow<'c, str>, Value)]) -> Context<'c> {
        Context::of(Members::Pairs(pairs))
    }

    fn of(members: Members<'c>) -> Context<'c> {
        Context {
            members,
            targeting_key: members.get("targetingKey").and_then(Value::as_str),
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
    pub(crate) fn members(&self) -> Members<'c> {
        self.members
    }
}
