//! Evaluation of compiled flags against a context: the order of evaluation, the operators and
//! the result shape of `shared/spec/evaluation.md`.
//!
//! Evaluation never fails for bad data (compilation already rejected it) and never panics; the
//! only errors it reports are `FLAG_NOT_FOUND` and, from the typed accessors, `TYPE_MISMATCH`.
//! An [`Evaluation`] borrows the served value from the [`Snapshot`], so evaluating a flag
//! without rollouts allocates nothing. Not here: reading the context (`context`), compilation
//! (`snapshot`), hashing (`bucketing`) and the OFREP wire mapping (the server's job; see
//! `docs/evaluation.md`).

use std::borrow::Cow;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use crate::bucketing::bucket_value;
/// Re-exported: the context was defined here before it got a module of its own.
pub use crate::context::Context;
use crate::model::FlagType;
use crate::operand::{parse_semver, parse_timestamp};
use crate::snapshot::{
    number_key, number_value, CompiledCondition, CompiledFlag, CompiledServe, Snapshot, Test,
};

/// Why a flag served what it served.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// A fixed default and no prerequisites, targets or rules.
    Static,
    /// The default served a fixed variant, or a rollout could not bucket (attribute missing).
    Default,
    /// A target or a rule serving a fixed variant decided.
    TargetingMatch,
    /// A rollout (in a rule or the default) decided.
    Split,
    /// The flag is disabled in the environment (kill switch).
    Disabled,
    /// A prerequisite did not hold. OFREP reports it as `DISABLED`.
    PrerequisiteFailed,
    Error,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::Default => "DEFAULT",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Disabled => "DISABLED",
            Reason::PrerequisiteFailed => "PREREQUISITE_FAILED",
            Reason::Error => "ERROR",
        }
    }
}

/// The error codes of OpenFeature / OFREP. The engine itself produces `FlagNotFound` and
/// `TypeMismatch`; the others are for callers (a body that is not JSON, a context that is not
/// an object…).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    FlagNotFound,
    TypeMismatch,
    ParseError,
    TargetingKeyMissing,
    InvalidContext,
    General,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::TypeMismatch => "TYPE_MISMATCH",
            ErrorCode::ParseError => "PARSE_ERROR",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
            ErrorCode::InvalidContext => "INVALID_CONTEXT",
            ErrorCode::General => "GENERAL",
        }
    }
}

static NULL: Value = Value::Null;

/// The result of evaluating one flag. Borrows from the snapshot (and, for an unknown flag, the
/// requested key).
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation<'a> {
    pub key: &'a str,
    /// The served variant's value; `null` when `reason` is `ERROR`.
    pub value: &'a Value,
    /// The served variant's key; empty when `reason` is `ERROR`.
    pub variant: &'a str,
    pub reason: Reason,
    /// The id of the rule that decided, if one did.
    pub rule_id: Option<&'a str>,
    pub error_code: Option<ErrorCode>,
    pub error_message: Option<Cow<'static, str>>,
    /// The flag's version (OFREP `metadata.flagVersion`); 0 for an unknown flag.
    pub flag_version: i64,
    /// A rollout decided but its bucket-by attribute was missing, `null`, an object or an
    /// array, so it served its first variant with weight > 0 (reason `DEFAULT`). OFREP adds
    /// `metadata.hataNote = "bucket_by attribute missing"`.
    pub bucket_by_missing: bool,
    /// Where the result sits in the snapshot: `(flag index, variant index)`, in the order of
    /// [`Snapshot::flags`] and [`FlagInfo::variants`](crate::snapshot::FlagInfo::variants).
    /// `None` for an error. Lets callers keep per-variant counters in flat arrays instead of
    /// hashing keys on the hot path.
    pub position: Option<(usize, usize)>,
}

impl<'a> Evaluation<'a> {
    /// An `ERROR` result.
    pub fn error(key: &'a str, code: ErrorCode, message: impl Into<Cow<'static, str>>) -> Self {
        Evaluation {
            key,
            value: &NULL,
            variant: "",
            reason: Reason::Error,
            rule_id: None,
            error_code: Some(code),
            error_message: Some(message.into()),
            flag_version: 0,
            bucket_by_missing: false,
            position: None,
        }
    }

    pub fn is_error(&self) -> bool {
        self.reason == Reason::Error
    }
}

/// The spec's Result shape: `{key, value, variant, reason, rule_id?, error_code?,
/// error_message?}`. For an `ERROR`, `value` and `variant` are `null`.
impl Serialize for Evaluation<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(None)?;
        m.serialize_entry("key", self.key)?;
        m.serialize_entry("value", self.value)?;
        if self.is_error() {
            m.serialize_entry("variant", &())?;
        } else {
            m.serialize_entry("variant", self.variant)?;
        }
        m.serialize_entry("reason", &self.reason)?;
        if let Some(id) = self.rule_id {
            m.serialize_entry("rule_id", id)?;
        }
        if let Some(code) = self.error_code {
            m.serialize_entry("error_code", &code)?;
        }
        if let Some(message) = &self.error_message {
            m.serialize_entry("error_message", message)?;
        }
        m.end()
    }
}

/// A successful typed evaluation: the value as `T`, plus the full result.
#[derive(Debug, Clone, PartialEq)]
pub struct Typed<'a, T> {
    pub value: T,
    pub evaluation: Evaluation<'a>,
}

/// What decided, as indices; turned into an [`Evaluation`] only at the top level.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    variant: usize,
    reason: Reason,
    rule: Option<usize>,
    bucket_by_missing: bool,
}

impl Outcome {
    #[inline]
    fn plain(variant: usize, reason: Reason) -> Outcome {
        Outcome {
            variant,
            reason,
            rule: None,
            bucket_by_missing: false,
        }
    }
}

impl Snapshot {
    /// Evaluates flag `key` for `ctx`. An unknown, archived or unconfigured flag gives an
    /// `ERROR` result with `FLAG_NOT_FOUND`.
    #[inline]
    pub fn evaluate<'a>(&'a self, key: &'a str, ctx: &Context<'_>) -> Evaluation<'a> {
        match self.index_of(key) {
            Some(i) => self.evaluate_index(i, ctx),
            None => Evaluation::error(key, ErrorCode::FlagNotFound, "flag not found"),
        }
    }

    /// Evaluates every live flag for `ctx`, in ascending key order. The iterator borrows
    /// `ctx`; the results borrow only the snapshot.
    pub fn evaluate_all<'a, 'x, 'c>(
        &'a self,
        ctx: &'x Context<'c>,
    ) -> impl ExactSizeIterator<Item = Evaluation<'a>> + use<'a, 'x, 'c> {
        (0..self.flags.len()).map(move |i| self.evaluate_index(i, ctx))
    }

    /// Evaluates a boolean flag; `TYPE_MISMATCH` if the flag is of another type.
    pub fn evaluate_bool<'a>(
        &'a self,
        key: &'a str,
        ctx: &Context<'_>,
    ) -> Result<Typed<'a, bool>, Evaluation<'a>> {
        self.evaluate_typed(key, ctx, FlagType::Boolean, Value::as_bool)
    }

    /// Evaluates a string flag; `TYPE_MISMATCH` if the flag is of another type.
    pub fn evaluate_string<'a>(
        &'a self,
        key: &'a str,
        ctx: &Context<'_>,
    ) -> Result<Typed<'a, &'a str>, Evaluation<'a>> {
        self.evaluate_typed(key, ctx, FlagType::String, Value::as_str)
    }

    /// Evaluates a number flag; `TYPE_MISMATCH` if the flag is of another type.
    pub fn evaluate_number<'a>(
        &'a self,
        key: &'a str,
        ctx: &Context<'_>,
    ) -> Result<Typed<'a, f64>, Evaluation<'a>> {
        self.evaluate_typed(key, ctx, FlagType::Number, Value::as_f64)
    }

    /// Evaluates a JSON flag; `TYPE_MISMATCH` if the flag is of another type.
    pub fn evaluate_json<'a>(
        &'a self,
        key: &'a str,
        ctx: &Context<'_>,
    ) -> Result<Typed<'a, &'a Value>, Evaluation<'a>> {
        self.evaluate_typed(key, ctx, FlagType::Json, Some)
    }

    fn evaluate_typed<'a, T>(
        &'a self,
        key: &'a str,
        ctx: &Context<'_>,
        want: FlagType,
        extract: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Typed<'a, T>, Evaluation<'a>> {
        let Some(index) = self.index_of(key) else {
            return Err(self.evaluate(key, ctx));
        };
        let evaluation = self.evaluate_index(index, ctx);
        let actual = self.flags[index].flag_type;
        let value = if actual == want {
            extract(evaluation.value)
        } else {
            None
        };
        match value {
            Some(value) => Ok(Typed { value, evaluation }),
            None => {
                let message = format!("flag is of type {}, not {}", actual.as_str(), want.as_str());
                let mut error = Evaluation::error(evaluation.key, ErrorCode::TypeMismatch, message);
                error.flag_version = evaluation.flag_version;
                Err(error)
            }
        }
    }

    #[inline]
    fn evaluate_index<'a>(&'a self, index: usize, ctx: &Context<'_>) -> Evaluation<'a> {
        let flag = &self.flags[index];
        let o = self.decide(flag, ctx);
        let variant = &flag.variants[o.variant];
        Evaluation {
            key: &flag.key,
            value: &variant.value,
            variant: &variant.key,
            reason: o.reason,
            rule_id: o.rule.map(|r| flag.rules[r].id.as_str()),
            error_code: None,
            error_message: None,
            flag_version: flag.version,
            bucket_by_missing: o.bucket_by_missing,
            position: Some((index, o.variant)),
        }
    }

    /// The order of evaluation (spec steps 2–6; step 1 is the lookup).
    fn decide(&self, flag: &CompiledFlag, ctx: &Context<'_>) -> Outcome {
        if !flag.enabled {
            return Outcome::plain(flag.off_variant, Reason::Disabled);
        }
        if flag.is_static {
            if let CompiledServe::Variant(v) = flag.default {
                return Outcome::plain(v, Reason::Static);
            }
        }
        for p in &flag.prerequisites {
            // Compilation guarantees prerequisites form a DAG of bounded depth.
            let holds = p.flag.is_some_and(|i| {
                let o = self.decide(&self.flags[i], ctx);
                !matches!(
                    o.reason,
                    Reason::Disabled | Reason::PrerequisiteFailed | Reason::Error
                ) && p.variants.contains(&o.variant)
            });
            if !holds {
                return Outcome::plain(flag.off_variant, Reason::PrerequisiteFailed);
            }
        }
        if !flag.targets.is_empty() {
            if let Some(&v) = ctx.targeting_key().and_then(|k| flag.targets.get(k)) {
                return Outcome::plain(v, Reason::TargetingMatch);
            }
        }
        for (r, rule) in flag.rules.iter().enumerate() {
            if rule.conditions.iter().all(|c| self.holds(c, ctx)) {
                return serve(&rule.serve, ctx, Reason::TargetingMatch, Some(r));
            }
        }
        serve(&flag.default, ctx, Reason::Default, None)
    }

    fn holds(&self, condition: &CompiledCondition, ctx: &Context<'_>) -> bool {
        match condition {
            CompiledCondition::Segment { index, negate } => self.in_segment(*index, ctx) != *negate,
            CompiledCondition::Attribute {
                attribute,
                test,
                negate,
            } => {
                let value = attribute.lookup(ctx.members());
                if let Test::Exists = test {
                    return value.is_some_and(|v| !v.is_null()) != *negate;
                }
                // Missing, null or wrongly typed: false whatever `negate` says.
                match value.and_then(|v| apply(test, v)) {
                    Some(result) => result != *negate,
                    None => false,
                }
            }
        }
    }

    fn in_segment(&self, index: usize, ctx: &Context<'_>) -> bool {
        let segment = &self.segments[index];
        if let Some(key) = ctx.targeting_key() {
            if segment.included.contains(key) {
                return true;
            }
            if segment.excluded.contains(key) {
                return false;
            }
        }
        // Compilation guarantees segment references form a DAG of bounded depth.
        segment
            .rules
            .iter()
            .any(|rule| rule.iter().all(|c| self.holds(c, ctx)))
    }
}

#[inline]
fn serve(serve: &CompiledServe, ctx: &Context<'_>, reason: Reason, rule: Option<usize>) -> Outcome {
    match serve {
        CompiledServe::Variant(v) => Outcome {
            variant: *v,
            reason,
            rule,
            bucket_by_missing: false,
        },
        CompiledServe::Rollout(r) => {
            let bucket = r
                .bucket_by
                .lookup(ctx.members())
                .and_then(|v| bucket_value(r.prefix, v));
            match bucket {
                Some(b) => Outcome {
                    variant: r.variant_for(b),
                    reason: Reason::Split,
                    rule,
                    bucket_by_missing: false,
                },
                None => Outcome {
                    variant: r.first,
                    reason: Reason::Default,
                    rule,
                    bucket_by_missing: true,
                },
            }
        }
    }
}

/// Applies an operator to a present attribute value: `None` when the value is of the wrong
/// type for the operator (the condition is then false, negated or not).
fn apply(test: &Test, v: &Value) -> Option<bool> {
    Some(match test {
        Test::In(set) => match v {
            Value::String(s) => set.strings.contains(s.as_str()),
            Value::Number(n) => set.numbers.contains(&number_key(number_value(n)?)),
            Value::Bool(b) => set.bools[*b as usize],
            Value::Null | Value::Array(_) | Value::Object(_) => return None,
        },
        Test::Contains(list) => {
            let s = v.as_str()?;
            list.iter().any(|x| s.contains(&**x))
        }
        Test::StartsWith(list) => {
            let s = v.as_str()?;
            list.iter().any(|x| s.starts_with(&**x))
        }
        Test::EndsWith(list) => {
            let s = v.as_str()?;
            list.iter().any(|x| s.ends_with(&**x))
        }
        Test::Matches(patterns) => {
            let s = v.as_str()?;
            patterns.iter().any(|p| p.is_match(s))
        }
        Test::Lt(x) => number(v)? < *x,
        Test::Lte(x) => number(v)? <= *x,
        Test::Gt(x) => number(v)? > *x,
        Test::Gte(x) => number(v)? >= *x,
        Test::Before(t) => parse_timestamp(v)? < *t,
        Test::After(t) => parse_timestamp(v)? > *t,
        Test::SemverEq(x) => parse_semver(v)?.cmp_precedence(x).is_eq(),
        Test::SemverLt(x) => parse_semver(v)?.cmp_precedence(x).is_lt(),
        Test::SemverGt(x) => parse_semver(v)?.cmp_precedence(x).is_gt(),
        Test::Exists => !v.is_null(),
    })
}

#[inline]
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => number_value(n),
        _ => None,
    }
}

/// The schema of `Evaluation`'s hand-written `Serialize` above; keep the two in step.
#[cfg(feature = "openapi")]
mod schema {
    use std::borrow::Cow;

    use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
    use utoipa::openapi::{Ref, RefOr};
    use utoipa::{PartialSchema, ToSchema};

    use super::{ErrorCode, Evaluation, Reason};

    fn string(description: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .description(Some(description))
    }

    impl PartialSchema for Evaluation<'_> {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .description(Some("The result of evaluating one flag for a context"))
                .property("key", string("The flag key"))
                .required("key")
                .property(
                    "value",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::AnyValue)
                        .description(Some("The served variant's value; null on ERROR")),
                )
                .required("value")
                .property(
                    "variant",
                    ObjectBuilder::new()
                        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                        .description(Some("The served variant's key; null on ERROR")),
                )
                .required("variant")
                .property("reason", Ref::from_schema_name(Reason::name()))
                .required("reason")
                .property("rule_id", string("The rule that decided, if one did"))
                .property("error_code", Ref::from_schema_name(ErrorCode::name()))
                .property("error_message", string("What went wrong, on ERROR"))
                .into()
        }
    }

    impl ToSchema for Evaluation<'_> {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Evaluation")
        }

        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((Reason::name().into(), Reason::schema()));
            schemas.push((ErrorCode::name().into(), ErrorCode::schema()));
        }
    }
}
