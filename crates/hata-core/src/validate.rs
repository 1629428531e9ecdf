//! Write-time validation of projects, environments, flags and segments.
//!
//! Everything `shared/spec/evaluation.md` constrains is checked here, once, when an object is
//! written, so that the evaluator never meets a bad regex, an unknown variant or a prerequisite
//! cycle. Checks that need the rest of the project (variants of a prerequisite, segments,
//! environments, cycles) read a [`ProjectView`] of it as stored.
//!
//! Validation collects every error rather than stopping at the first. Each [`FieldError`] names
//! the offending field as a path relative to the request body: dotted members and `[i]`
//! indices, e.g. `environments.production.rules[1].conditions[0].values[0]`. A member that is
//! not a plain word (an environment key with a dot in it, say) is written `["prod.eu"]` so the
//! path stays unambiguous. At most [`MAX_ERRORS`] errors are reported, then one more saying the
//! list was cut.
//!
//! `matches` patterns are compiled through `pattern`, as `Snapshot::compile` compiles them, and
//! counted against its limits. One of those is per environment: a write that adds pattern bytes
//! to a flag or segment measures the project's other stored patterns too (each distinct one
//! compiled once; about as long as compiling the environment), while a write that adds none
//! does not.
//!
//! No text may contain U+0000 (NUL): PostgreSQL `text` cannot hold it, so a store that took it
//! on SQLite could not be moved to PostgreSQL. Every string of the object's JSON form, member
//! names included, is checked (`check_text`), so a field added later is covered too.
//!
//! This module does not normalize (see `Flag::normalize`), does no I/O, and never panics on any
//! input. It also answers the reverse question, what depends on a flag or segment
//! ([`flag_dependants`], [`segment_dependants`]), so that the store can refuse a delete that
//! would leave a dangling reference.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;
use serde_json::Value;

use crate::key::{is_valid_key, KEY_PATTERN};
use crate::model::{
    Condition, Environment, Flag, FlagConfig, FlagType, Operator, Project, Segment, Serve, Variant,
    TOTAL_WEIGHT,
};
use crate::operand::{parse_semver, parse_timestamp};
use crate::pattern::{check_environment, Pattern, PatternTally, Scope};
/// Re-exported: the limits of `matches` patterns live with their compilation, in `pattern`.
pub use crate::pattern::{
    MAX_ENVIRONMENT_PATTERN_BYTES, MAX_PATTERNS, MAX_PATTERN_BYTES, REGEX_DFA_SIZE_LIMIT,
    REGEX_SIZE_LIMIT,
};

/// Longest expected lifetime of a temporary flag (`lifetime_days`): ten years.
pub const MAX_LIFETIME_DAYS: u32 = 3650;

/// Longest `name` (and `owner`), in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest `description`, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// Most tags on a flag.
pub const MAX_TAGS: usize = 50;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;
/// Most variants of a flag.
pub const MAX_VARIANTS: usize = 100;
/// Most prerequisites of a flag in one environment.
pub const MAX_PREREQUISITES: usize = 100;
/// Most targeting keys over all targets of a flag in one environment.
pub const MAX_TARGET_VALUES: usize = 100_000;
/// Most rules of a flag in one environment, or of a segment.
pub const MAX_RULES: usize = 1_000;
/// Most conditions of one rule.
pub const MAX_CONDITIONS: usize = 100;
/// Most values of one condition.
pub const MAX_CONDITION_VALUES: usize = 10_000;
/// Longest attribute name (also `bucket_by`), in characters.
pub const MAX_ATTRIBUTE_CHARS: usize = 256;
/// Most weights of one rollout.
pub const MAX_WEIGHTS: usize = 100;
/// Longest rollout salt, in characters.
pub const MAX_SALT_CHARS: usize = 200;
/// Most `included` plus `excluded` keys of a segment.
pub const MAX_SEGMENT_KEYS: usize = 100_000;
/// Most errors reported for one object; the rest are summarized in one final error.
pub const MAX_ERRORS: usize = 200;
/// The message for a string that contains U+0000.
pub const NUL_MESSAGE: &str = "must not contain U+0000";

/// One invalid field: where (a JSON path relative to the request body) and why.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every invalid field of an object. Never empty when returned as `Err`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} invalid field(s): {}", .0.len(), describe_first(.0))]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// These errors with paths relative to the config of `environment` (the errors under
    /// `environments.<environment>`), for a request whose body is that config alone. Errors
    /// elsewhere in the flag keep their full path.
    pub fn relative_to_config(self, environment: &str) -> ValidationErrors {
        let prefix = Checker {
            path: vec![Step::from("environments"), Step::from(environment)],
            ..Checker::default()
        }
        .field();
        let errors = self
            .0
            .into_iter()
            .map(|mut e| {
                let relative = match e.field.strip_prefix(prefix.as_str()) {
                    Some("") => Some(String::new()),
                    Some(rest) if rest.starts_with('[') => Some(rest.to_string()),
                    Some(rest) => rest.strip_prefix('.').map(str::to_string),
                    None => None,
                };
                if let Some(field) = relative {
                    e.field = field;
                }
                e
            })
            .collect();
        ValidationErrors(errors)
    }
}

fn describe_first(errors: &[FieldError]) -> String {
    match errors.first() {
        Some(e) if e.field.is_empty() => e.message.clone(),
        Some(e) => format!("{}: {}", e.field, e.message),
        None => String::new(),
    }
}

/// What a flag or segment is checked against: the rest of its project as stored.
#[derive(Debug, Clone, Copy)]
pub struct ProjectView<'a> {
    /// The project's environment keys.
    pub environments: &'a [String],
    pub segments: &'a BTreeMap<String, Segment>,
    /// May contain the old version of the flag being validated: the new one replaces it.
    pub flags: &'a BTreeMap<String, Flag>,
}

/// Every string in the JSON form of `value` that contains U+0000, and every object member name
/// that does, with its path relative to `value`: for what reaches the store without one of the
/// `validate_*` functions (token names, an export document's change record and telemetry).
pub fn check_text<T: Serialize + ?Sized>(value: &T) -> Result<(), ValidationErrors> {
    let mut c = Checker::default();
    c.text(value);
    c.finish()
}

pub fn validate_project(p: &Project) -> Result<(), ValidationErrors> {
    let mut c = Checker::default();
    c.text(p);
    c.key("key", &p.key);
    c.max_chars("name", &p.name, MAX_NAME_CHARS);
    c.max_chars("description", &p.description, MAX_DESCRIPTION_CHARS);
    c.finish()
}

pub fn validate_environment(e: &Environment) -> Result<(), ValidationErrors> {
    let mut c = Checker::default();
    c.text(e);
    c.key("key", &e.key);
    c.max_chars("name", &e.name, MAX_NAME_CHARS);
    c.max_chars("description", &e.description, MAX_DESCRIPTION_CHARS);
    c.finish()
}

/// Checks a flag against the spec and against its project. `flag` has already been through
/// `Flag::normalize(view.environments)`.
///
/// Whether other flags' prerequisites require variants this flag lacks is found by a walk of
/// every flag of the view: right for one write, quadratic for a whole project (an import, a
/// backup's verification), which validates with [`validate_flag_in`] instead.
pub fn validate_flag(flag: &Flag, view: &ProjectView) -> Result<(), ValidationErrors> {
    validate_flag_with(flag, view, None)
}

/// The variants each flag's prerequisites require, by the flag required: an index of a
/// project's flags, built once ([`Requirements::of`]) to validate all of them in linear time.
#[derive(Debug, Default)]
pub struct Requirements<'a> {
    /// Required flag → (requiring flag, environment, variant), in the order a walk of the
    /// view's flags finds them (so errors come in the order `validate_flag` gives them).
    by_flag: BTreeMap<&'a str, Vec<(&'a str, &'a str, &'a str)>>,
}

impl<'a> Requirements<'a> {
    /// The prerequisites of `view`'s flags that are not archived.
    pub fn of(view: &ProjectView<'a>) -> Requirements<'a> {
        let mut by_flag: BTreeMap<&'a str, Vec<(&'a str, &'a str, &'a str)>> = BTreeMap::new();
        for (other_key, other) in view.flags {
            if other.archived {
                continue;
            }
            for (env, config) in &other.environments {
                for p in &config.prerequisites {
                    for variant in &p.variants {
                        by_flag.entry(p.flag.as_str()).or_default().push((
                            other_key.as_str(),
                            env.as_str(),
                            variant.as_str(),
                        ));
                    }
                }
            }
        }
        Requirements { by_flag }
    }
}

/// [`validate_flag`] for one of many flags of `view`, with `requirements` built from it: the
/// same result, without a walk of every flag.
pub fn validate_flag_in(
    flag: &Flag,
    view: &ProjectView,
    requirements: &Requirements,
) -> Result<(), ValidationErrors> {
    validate_flag_with(flag, view, Some(requirements))
}

fn validate_flag_with(
    flag: &Flag,
    view: &ProjectView,
    requirements: Option<&Requirements>,
) -> Result<(), ValidationErrors> {
    let mut c = Checker::default();
    c.text(flag);
    c.key("key", &flag.key);
    c.max_chars("name", &flag.name, MAX_NAME_CHARS);
    c.max_chars("description", &flag.description, MAX_DESCRIPTION_CHARS);
    c.max_chars("owner", &flag.owner, MAX_NAME_CHARS);
    if let Some(days) = flag.lifetime_days {
        if !(1..=MAX_LIFETIME_DAYS).contains(&days) {
            c.error_at_field(
                "lifetime_days".into(),
                format!("must be between 1 and {MAX_LIFETIME_DAYS} days"),
            );
        }
    }
    c.tags(&flag.tags);
    c.at("variants", |c| {
        c.variants(flag);
        // Unless archived, another flag's prerequisite naming a variant this flag no longer has
        // would leave that flag unable to compile: refuse the change, naming the dependant.
        if !flag.archived {
            match requirements {
                Some(index) => c.variants_required(flag, index),
                None => c.variants_in_use(flag, view),
            }
        }
    });

    let segments = SegmentRefs::for_flag(view.segments);
    let mut stored = StoredPatterns::default();
    c.at("environments", |c| {
        for (env, config) in &flag.environments {
            if !view.environments.iter().any(|e| e == env) {
                c.error_at(
                    env.as_str(),
                    format!(
                        "unknown environment \"{env}\"; the project's environments are {}",
                        list(view.environments.iter().map(String::as_str))
                    ),
                );
                continue;
            }
            c.patterns = PatternWalk::new(Scope::Flag);
            c.at(env.as_str(), |c| {
                c.flag_config(flag, env, config, view, &segments)
            });
            // An archived flag is compiled into no environment. A write that adds no pattern
            // bytes to the stored flag cannot take the environment over its limit, and saves
            // compiling the project's other patterns to measure them.
            if !flag.archived && c.patterns.adds_to_environment() {
                let before = view
                    .flags
                    .get(&flag.key)
                    .filter(|stored| !stored.archived)
                    .and_then(|stored| stored.environments.get(env))
                    .map_or(0, |config| {
                        stored.conditions(config.rules.iter().flat_map(|rule| &rule.conditions))
                    });
                if c.patterns.tally.bytes > before {
                    let others = stored.environment(view, env, Some(&flag.key), None);
                    c.environment_patterns(env, others);
                }
            }
        }
        for env in view.environments {
            if !flag.environments.contains_key(env) {
                c.error_at(
                    env.as_str(),
                    "missing: every environment of the project needs a configuration",
                );
            }
        }
    });
    c.finish()
}

/// Checks a segment against the spec and against the other segments of its project.
pub fn validate_segment(segment: &Segment, view: &ProjectView) -> Result<(), ValidationErrors> {
    let mut c = Checker::default();
    c.text(segment);
    c.key("key", &segment.key);
    c.max_chars("name", &segment.name, MAX_NAME_CHARS);
    c.max_chars("description", &segment.description, MAX_DESCRIPTION_CHARS);

    let total = segment
        .included
        .len()
        .saturating_add(segment.excluded.len());
    if total > MAX_SEGMENT_KEYS {
        let field = if segment.included.len() > MAX_SEGMENT_KEYS {
            "included"
        } else {
            "excluded"
        };
        c.error_at(
            field,
            format!("at most {MAX_SEGMENT_KEYS} included and excluded keys in total (got {total})"),
        );
    }
    for (field, keys) in [
        ("included", &segment.included),
        ("excluded", &segment.excluded),
    ] {
        c.at(field, |c| {
            for (i, key) in keys.iter().enumerate().take(MAX_SEGMENT_KEYS) {
                if key.is_empty() {
                    c.error_at(i, "must not be empty");
                }
            }
        });
    }

    let segments = SegmentRefs::for_segment(segment, view.segments);
    c.patterns = PatternWalk::new(Scope::Segment);
    c.at("rules", |c| {
        if segment.rules.len() > MAX_RULES {
            c.error(format!(
                "at most {MAX_RULES} rules (got {})",
                segment.rules.len()
            ));
        }
        for (i, rule) in segment.rules.iter().enumerate().take(MAX_RULES) {
            c.at(i, |c| c.conditions(rule, &segments));
        }
    });
    // A segment is compiled into every environment: check the one with most patterns (unless
    // the write adds no pattern bytes to the stored segment, as for a flag).
    let before = view.segments.get(&segment.key).map_or(0, |stored| {
        StoredPatterns::default().conditions(stored.rules.iter().flatten())
    });
    if c.patterns.adds_to_environment() && c.patterns.tally.bytes > before {
        let mut stored = StoredPatterns::default();
        let fullest = view
            .environments
            .iter()
            .map(|env| (stored.environment(view, env, None, Some(&segment.key)), env))
            .max();
        if let Some((others, env)) = fullest {
            c.environment_patterns(env, others);
        }
    }
    c.finish()
}

/// Human-readable dependants that block deleting (or archiving) flag `key`, e.g.
/// `flag checkout (prerequisite in production)`. Empty = free to delete.
///
/// Archived flags are not dependants: they are treated as missing, and restoring one
/// validates it again, which reports a prerequisite that no longer exists.
pub fn flag_dependants(key: &str, view: &ProjectView) -> Vec<String> {
    let mut dependants = Vec::new();
    for (other_key, other) in view.flags {
        if other_key == key || other.archived {
            continue;
        }
        let envs: Vec<&str> = other
            .environments
            .iter()
            .filter(|(_, config)| config.prerequisites.iter().any(|p| p.flag == key))
            .map(|(env, _)| env.as_str())
            .collect();
        if !envs.is_empty() {
            dependants.push(format!(
                "flag {other_key} (prerequisite in {})",
                envs.join(", ")
            ));
        }
    }
    dependants
}

/// Dependants of segment `key`: flags using it in a rule condition (naming the environments)
/// and segments using it in a rule. Empty = free to delete. Archived flags are not dependants
/// (see [`flag_dependants`]).
pub fn segment_dependants(key: &str, view: &ProjectView) -> Vec<String> {
    let mut dependants = Vec::new();
    for (flag_key, flag) in view.flags {
        if flag.archived {
            continue;
        }
        let envs: Vec<&str> = flag
            .environments
            .iter()
            .filter(|(_, config)| {
                config
                    .rules
                    .iter()
                    .any(|rule| references_segment(&rule.conditions, key))
            })
            .map(|(env, _)| env.as_str())
            .collect();
        if !envs.is_empty() {
            dependants.push(format!("flag {flag_key} (rule in {})", envs.join(", ")));
        }
    }
    for (segment_key, segment) in view.segments {
        if segment_key != key
            && segment
                .rules
                .iter()
                .any(|rule| references_segment(rule, key))
        {
            dependants.push(format!("segment {segment_key}"));
        }
    }
    dependants
}

fn references_segment(conditions: &[Condition], key: &str) -> bool {
    conditions
        .iter()
        .any(|c| matches!(c, Condition::Segment { segment, .. } if segment == key))
}

/// One step of a field path.
enum Step {
    Member(String),
    Index(usize),
}

impl From<&str> for Step {
    fn from(s: &str) -> Step {
        Step::Member(s.to_string())
    }
}

impl From<usize> for Step {
    fn from(i: usize) -> Step {
        Step::Index(i)
    }
}

/// Walks an object, keeping the path to the current field and the errors found so far.
#[derive(Default)]
struct Checker {
    path: Vec<Step>,
    errors: Vec<FieldError>,
    /// Errors not recorded because `MAX_ERRORS` was reached.
    dropped: usize,
    /// The `matches` patterns of the flag configuration or segment being checked.
    patterns: PatternWalk,
}

impl Checker {
    /// Runs `f` with `step` appended to the current path.
    fn at<R>(&mut self, step: impl Into<Step>, f: impl FnOnce(&mut Checker) -> R) -> R {
        self.path.push(step.into());
        let result = f(self);
        self.path.pop();
        result
    }

    /// Records an error at the current path.
    fn error(&mut self, message: impl Into<String>) {
        let field = self.field();
        self.error_at_field(field, message);
    }

    fn error_at(&mut self, step: impl Into<Step>, message: impl Into<String>) {
        self.at(step, |c| c.error(message));
    }

    /// Records an error at `field`, a path made by `field()`.
    fn error_at_field(&mut self, field: String, message: impl Into<String>) {
        if self.errors.len() >= MAX_ERRORS {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.errors.push(FieldError::new(field, message));
    }

    fn field(&self) -> String {
        let mut out = String::new();
        for step in &self.path {
            match step {
                Step::Index(i) => {
                    out.push('[');
                    out.push_str(&i.to_string());
                    out.push(']');
                }
                Step::Member(m) if is_plain_member(m) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(m);
                }
                Step::Member(m) => {
                    out.push('[');
                    out.push_str(&Value::String(m.clone()).to_string());
                    out.push(']');
                }
            }
        }
        out
    }

    fn finish(mut self) -> Result<(), ValidationErrors> {
        if self.dropped > 0 {
            self.errors.push(FieldError::new(
                "",
                format!(
                    "{} more error(s) not shown; only the first {MAX_ERRORS} are reported",
                    self.dropped
                ),
            ));
        }
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(self.errors))
        }
    }

    /// Reports every string (and member name) of `value`'s JSON form that contains U+0000, at
    /// its path below the current one.
    fn text<T: Serialize + ?Sized>(&mut self, value: &T) {
        // Serialized into a scanner, not a buffer: a flag with 100,000 targeting keys costs
        // no allocation. Only when an escaped NUL shows up is the JSON form built, to name
        // the fields; one that serde cannot serialize is not stored either, so it is skipped.
        let mut scan = NulScan::default();
        if serde_json::to_writer(&mut scan, value).is_err() || !scan.found {
            return;
        }
        if let Ok(json) = serde_json::to_value(value) {
            self.nul_in(&json);
        }
    }

    fn nul_in(&mut self, value: &Value) {
        match value {
            Value::String(s) if s.contains('\0') => self.error(NUL_MESSAGE),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.at(i, |c| c.nul_in(item));
                }
            }
            Value::Object(members) => {
                for (name, member) in members {
                    self.at(name.as_str(), |c| {
                        if name.contains('\0') {
                            c.error(format!("member name {NUL_MESSAGE}"));
                        }
                        c.nul_in(member);
                    });
                }
            }
            _ => {}
        }
    }

    fn key(&mut self, field: &str, key: &str) {
        if !is_valid_key(key) {
            self.error_at(field, format!("must match {KEY_PATTERN}"));
        }
    }

    fn max_chars(&mut self, field: &str, value: &str, max: usize) {
        if let Some(message) = too_long(value, max) {
            self.error_at(field, message);
        }
    }

    fn tags(&mut self, tags: &[String]) {
        self.at("tags", |c| {
            if tags.len() > MAX_TAGS {
                c.error(format!("at most {MAX_TAGS} tags (got {})", tags.len()));
            }
            let mut seen: HashMap<&str, usize> = HashMap::new();
            for (i, tag) in tags.iter().enumerate() {
                if tag.is_empty() {
                    c.error_at(i, "must not be empty");
                } else if let Some(message) = too_long(tag, MAX_TAG_CHARS) {
                    c.error_at(i, message);
                }
                if let Some(first) = seen.get(tag.as_str()) {
                    c.error_at(i, format!("duplicate tag \"{tag}\" (also tags[{first}])"));
                } else {
                    seen.insert(tag, i);
                }
            }
        });
    }

    /// At `variants`.
    /// Variants of `flag` that other live flags' prerequisites require but `flag` dropped.
    fn variants_in_use(&mut self, flag: &Flag, view: &ProjectView) {
        for (other_key, other) in view.flags {
            if other_key == &flag.key || other.archived {
                continue;
            }
            for (env, config) in &other.environments {
                for p in config.prerequisites.iter().filter(|p| p.flag == flag.key) {
                    for variant in &p.variants {
                        if !flag.variants.iter().any(|v| &v.key == variant) {
                            self.error(format!(
                                "variant \"{variant}\" is required by flag \"{other_key}\" (prerequisite in {env}); change that flag first"
                            ));
                        }
                    }
                }
            }
        }
    }

    /// `variants_in_use` through an index of the project's prerequisites.
    fn variants_required(&mut self, flag: &Flag, requirements: &Requirements) {
        let Some(required) = requirements.by_flag.get(flag.key.as_str()) else {
            return;
        };
        for (other_key, env, variant) in required {
            if *other_key == flag.key {
                continue;
            }
            if !flag.variants.iter().any(|v| v.key == *variant) {
                self.error(format!(
                    "variant \"{variant}\" is required by flag \"{other_key}\" (prerequisite in {env}); change that flag first"
                ));
            }
        }
    }

    fn variants(&mut self, flag: &Flag) {
        let variants = &flag.variants;
        if variants.is_empty() {
            self.error("at least one variant is required");
        } else if variants.len() > MAX_VARIANTS {
            self.error(format!(
                "at most {MAX_VARIANTS} variants (got {})",
                variants.len()
            ));
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, variant) in variants.iter().enumerate() {
            self.at(i, |c| {
                c.key("key", &variant.key);
                if let Some(first) = seen.get(variant.key.as_str()) {
                    c.error_at(
                        "key",
                        format!(
                            "duplicate variant key \"{}\" (also variants[{first}])",
                            variant.key
                        ),
                    );
                } else {
                    seen.insert(&variant.key, i);
                }
                if !flag.flag_type.admits(&variant.value) {
                    c.error_at("value", wrong_variant_type(flag.flag_type));
                }
                if let Some(name) = &variant.name {
                    c.max_chars("name", name, MAX_NAME_CHARS);
                }
                if let Some(description) = &variant.description {
                    c.max_chars("description", description, MAX_DESCRIPTION_CHARS);
                }
            });
        }
    }

    /// Reports `variant` at the current path unless it is one of `variants`. With no variants
    /// at all there is nothing to name, and `variants` itself has been reported.
    fn variant_ref(&mut self, variant: &str, variants: &[Variant]) {
        if !variants.is_empty() && !variants.iter().any(|v| v.key == variant) {
            self.error(format!(
                "unknown variant \"{variant}\"; the flag's variants are {}",
                list(variants.iter().map(|v| v.key.as_str()))
            ));
        }
    }

    /// At `environments.<env>`; `env` is one of the project's environments.
    fn flag_config(
        &mut self,
        flag: &Flag,
        env: &str,
        config: &FlagConfig,
        view: &ProjectView,
        segments: &SegmentRefs,
    ) {
        self.at("off_variant", |c| {
            c.variant_ref(&config.off_variant, &flag.variants)
        });
        self.at("prerequisites", |c| {
            c.prerequisites(flag, env, config, view)
        });
        self.at("targets", |c| c.targets(flag, config));
        self.at("rules", |c| {
            if config.rules.len() > MAX_RULES {
                c.error(format!(
                    "at most {MAX_RULES} rules (got {})",
                    config.rules.len()
                ));
            }
            let mut ids: HashMap<&str, usize> = HashMap::new();
            for (i, rule) in config.rules.iter().enumerate().take(MAX_RULES) {
                c.at(i, |c| {
                    c.key("id", &rule.id);
                    if let Some(first) = ids.get(rule.id.as_str()) {
                        c.error_at(
                            "id",
                            format!("duplicate rule id \"{}\" (also rules[{first}])", rule.id),
                        );
                    } else {
                        ids.insert(&rule.id, i);
                    }
                    if let Some(description) = &rule.description {
                        c.max_chars("description", description, MAX_DESCRIPTION_CHARS);
                    }
                    c.at("conditions", |c| c.conditions(&rule.conditions, segments));
                    c.at("serve", |c| c.serve(&rule.serve, &flag.variants));
                });
            }
        });
        self.at("default", |c| c.serve(&config.default, &flag.variants));
    }

    /// At `environments.<env>.prerequisites`.
    fn prerequisites(&mut self, flag: &Flag, env: &str, config: &FlagConfig, view: &ProjectView) {
        let prerequisites = &config.prerequisites;
        if prerequisites.len() > MAX_PREREQUISITES {
            self.error(format!(
                "at most {MAX_PREREQUISITES} prerequisites (got {})",
                prerequisites.len()
            ));
        }
        let prerequisites = &prerequisites[..prerequisites.len().min(MAX_PREREQUISITES)];
        // Only cycles through this flag can be new; computed once for all prerequisites.
        let toward_flag = if prerequisites.is_empty() {
            HashMap::new()
        } else {
            next_hops_toward(
                &flag.key,
                |node| {
                    view.flags
                        .get(node)
                        .filter(|_| node != flag.key)
                        .and_then(|f| f.environments.get(env))
                        .map(|c| c.prerequisites.iter().map(|p| p.flag.as_str()).collect())
                        .unwrap_or_default()
                },
                view.flags.keys().map(String::as_str),
            )
        };

        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, prerequisite) in prerequisites.iter().enumerate() {
            self.at(i, |c| {
                let key = prerequisite.flag.as_str();
                let target: Option<&Flag> = if key == flag.key {
                    c.error_at("flag", "a flag cannot be its own prerequisite");
                    Some(flag)
                } else {
                    match view.flags.get(key) {
                        None => {
                            c.error_at("flag", format!("unknown flag \"{key}\""));
                            None
                        }
                        Some(target) => {
                            // An archived flag may keep an archived prerequisite; it is not
                            // evaluated, and restoring it validates it again.
                            if target.archived && !flag.archived {
                                c.error_at("flag", format!("flag \"{key}\" is archived"));
                            }
                            if let Some(path) = cycle_through(&flag.key, key, &toward_flag) {
                                c.error_at("flag", format!("prerequisite cycle: {path}"));
                            }
                            Some(target)
                        }
                    }
                };
                if let Some(first) = seen.get(key) {
                    c.error_at(
                        "flag",
                        format!(
                            "flag \"{key}\" is already a prerequisite (prerequisites[{first}])"
                        ),
                    );
                } else {
                    seen.insert(key, i);
                }
                c.at("variants", |c| {
                    c.prerequisite_variants(&prerequisite.variants, target.map(|t| (key, t)))
                });
            });
        }
    }

    /// At `…prerequisites[i].variants`: the variants of the prerequisite flag that satisfy it,
    /// checked against that flag when it is known.
    fn prerequisite_variants(&mut self, variants: &[String], prerequisite: Option<(&str, &Flag)>) {
        if variants.is_empty() {
            self.error("at least one variant is required");
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (j, variant) in variants.iter().enumerate() {
            if let Some(first) = seen.get(variant.as_str()) {
                self.error_at(
                    j,
                    format!("duplicate variant \"{variant}\" (also variants[{first}])"),
                );
                continue;
            }
            seen.insert(variant, j);
            if let Some((key, flag)) = prerequisite {
                if !flag.variants.iter().any(|v| &v.key == variant) {
                    self.error_at(
                        j,
                        format!(
                            "unknown variant \"{variant}\"; flag \"{key}\" has the variants {}",
                            list(flag.variants.iter().map(|v| v.key.as_str()))
                        ),
                    );
                }
            }
        }
    }

    /// At `environments.<env>.targets`.
    fn targets(&mut self, flag: &Flag, config: &FlagConfig) {
        let total = config
            .targets
            .iter()
            .fold(0usize, |n, t| n.saturating_add(t.values.len()));
        if total > MAX_TARGET_VALUES {
            self.error(format!(
                "at most {MAX_TARGET_VALUES} targeting keys in total (got {total})"
            ));
        }
        // targeting key → the first target listing it
        let mut owner: HashMap<&str, usize> = HashMap::new();
        let mut checked = 0usize;
        for (i, target) in config.targets.iter().enumerate() {
            self.at(i, |c| {
                c.at("variant", |c| c.variant_ref(&target.variant, &flag.variants));
                c.at("values", |c| {
                    if target.values.is_empty() {
                        c.error("at least one targeting key is required");
                    }
                    for (j, value) in target.values.iter().enumerate() {
                        checked += 1;
                        if checked > MAX_TARGET_VALUES {
                            return;
                        }
                        if value.is_empty() {
                            c.error_at(j, "must not be empty");
                            continue;
                        }
                        match owner.get(value.as_str()) {
                            Some(&first) if first != i => {
                                let variant = config
                                    .targets
                                    .get(first)
                                    .map(|t| t.variant.as_str())
                                    .unwrap_or_default();
                                c.error_at(
                                    j,
                                    format!(
                                        "\"{value}\" is already in targets[{first}] (variant \"{variant}\")"
                                    ),
                                );
                            }
                            Some(_) => {}
                            None => {
                                owner.insert(value, i);
                            }
                        }
                    }
                });
            });
        }
    }

    /// At `…serve`.
    fn serve(&mut self, serve: &Serve, variants: &[Variant]) {
        match serve {
            Serve::Variant(variant) => self.at("variant", |c| c.variant_ref(variant, variants)),
            Serve::Rollout(rollout) => self.at("rollout", |c| {
                if let Some(bucket_by) = &rollout.bucket_by {
                    c.at("bucket_by", |c| c.attribute_name(bucket_by));
                }
                if let Some(salt) = &rollout.salt {
                    c.max_chars("salt", salt, MAX_SALT_CHARS);
                }
                c.at("weights", |c| {
                    let weights = &rollout.weights;
                    if weights.is_empty() {
                        c.error("at least one weight is required");
                        return;
                    }
                    if weights.len() > MAX_WEIGHTS {
                        c.error(format!(
                            "at most {MAX_WEIGHTS} weights (got {})",
                            weights.len()
                        ));
                    }
                    let sum: u64 = weights.iter().map(|w| u64::from(w.weight)).sum();
                    if sum != u64::from(TOTAL_WEIGHT) {
                        c.error(format!(
                            "weights must sum to {TOTAL_WEIGHT} (100 %); they sum to {sum}"
                        ));
                    }
                    let mut seen: HashMap<&str, usize> = HashMap::new();
                    for (i, weight) in weights.iter().enumerate() {
                        c.at(i, |c| {
                            c.at("variant", |c| {
                                if let Some(first) = seen.get(weight.variant.as_str()) {
                                    c.error(format!(
                                        "duplicate variant \"{}\" (also weights[{first}])",
                                        weight.variant
                                    ));
                                } else {
                                    seen.insert(&weight.variant, i);
                                    c.variant_ref(&weight.variant, variants);
                                }
                            });
                        });
                    }
                });
            }),
        }
    }

    /// At `…conditions` of a flag rule, or `rules[i]` of a segment.
    fn conditions(&mut self, conditions: &[Condition], segments: &SegmentRefs) {
        if conditions.len() > MAX_CONDITIONS {
            self.error(format!(
                "at most {MAX_CONDITIONS} conditions (got {})",
                conditions.len()
            ));
        }
        for (i, condition) in conditions.iter().enumerate().take(MAX_CONDITIONS) {
            self.at(i, |c| c.condition(condition, segments));
        }
    }

    fn condition(&mut self, condition: &Condition, segments: &SegmentRefs) {
        match condition {
            Condition::Segment { segment, .. } => {
                self.at("segment", |c| segments.check(c, segment));
            }
            Condition::Attribute {
                attribute,
                operator,
                values,
                ..
            } => {
                self.at("attribute", |c| c.attribute_name(attribute));
                self.at("values", |c| c.operands(*operator, values));
            }
        }
    }

    fn attribute_name(&mut self, attribute: &str) {
        if attribute.is_empty() {
            self.error("must not be empty");
        } else if let Some(message) = too_long(attribute, MAX_ATTRIBUTE_CHARS) {
            self.error(message);
        }
    }

    /// At `…values` of an attribute condition.
    fn operands(&mut self, operator: Operator, values: &[Value]) {
        let name = operator.as_str();
        if operator == Operator::Exists {
            if !values.is_empty() {
                self.error("exists takes no values");
            }
            return;
        }
        if values.is_empty() {
            self.error(format!("{name} needs at least one value"));
            return;
        }
        if operator.takes_one_value() && values.len() != 1 {
            self.error(format!(
                "{name} takes exactly one value (got {})",
                values.len()
            ));
        }
        if values.len() > MAX_CONDITION_VALUES {
            self.error(format!(
                "at most {MAX_CONDITION_VALUES} values (got {})",
                values.len()
            ));
        }
        for (i, value) in values.iter().enumerate().take(MAX_CONDITION_VALUES) {
            if operator == Operator::Matches {
                self.at(i, |c| c.pattern(value));
            } else if let Some(message) = operand_error(operator, value) {
                self.error_at(i, message);
            }
        }
    }

    /// At `…values[i]` of a `matches` condition: compiles the pattern, counting it against
    /// the limits of its flag configuration or segment. Once a limit is reported, later
    /// patterns are not compiled (a write of 800 patterns compiles 51).
    fn pattern(&mut self, value: &Value) {
        let Some(pattern) = value.as_str() else {
            return self.error("must be a string (a regex)");
        };
        if self.patterns.over {
            return;
        }
        if let Err(message) = self.patterns.tally.admit() {
            self.patterns.over = true;
            return self.error(message);
        }
        match Pattern::new(pattern) {
            Err(e) => self.error(e.to_string()),
            Ok(compiled) => {
                if let Err(message) = self.patterns.tally.add(compiled.size()) {
                    self.patterns.over = true;
                    return self.error(message);
                }
                let field = self.field();
                self.patterns.sizes.push((field, compiled.size()));
            }
        }
    }

    /// Reports the pattern of the flag configuration or segment just checked that takes the
    /// patterns of `env` past `MAX_ENVIRONMENT_PATTERN_BYTES`, `others` being what the rest of
    /// the environment holds.
    fn environment_patterns(&mut self, env: &str, others: usize) {
        let mut total = others;
        let sizes = std::mem::take(&mut self.patterns.sizes);
        for (field, size) in sizes {
            total = total.saturating_add(size);
            if let Err(message) = check_environment(env, total) {
                self.error_at_field(field, message);
                return;
            }
        }
    }
}

/// An `io::Write` that looks for the escape serde_json writes for U+0000 (`\u0000`; JSON
/// text never holds a raw NUL) across however the writes are cut. An escaped backslash
/// followed by `u0000` matches too: then the walk over the JSON form finds nothing.
#[derive(Default)]
struct NulScan {
    /// How many bytes of the escape the last bytes written match.
    matched: usize,
    found: bool,
}

impl std::io::Write for NulScan {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        const ESCAPE: &[u8] = br"\u0000";
        for &b in buf {
            // The escape's first byte occurs nowhere else in it, so a mismatch restarts the
            // match at that byte or before it.
            if ESCAPE.get(self.matched) == Some(&b) {
                self.matched += 1;
                if self.matched == ESCAPE.len() {
                    self.found = true;
                    self.matched = 0;
                }
            } else {
                self.matched = usize::from(b == b'\\');
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `matches` patterns of the flag configuration or segment being checked.
struct PatternWalk {
    tally: PatternTally,
    /// Each compiled pattern's field and size, in order, for the environment's limit.
    sizes: Vec<(String, usize)>,
    /// A limit was reported: later patterns are not compiled.
    over: bool,
}

impl PatternWalk {
    fn new(scope: Scope) -> PatternWalk {
        PatternWalk {
            tally: PatternTally::new(scope),
            sizes: Vec::new(),
            over: false,
        }
    }

    /// Whether its patterns are within their own limits and add to their environment's.
    fn adds_to_environment(&self) -> bool {
        !self.over && !self.sizes.is_empty()
    }
}

impl Default for PatternWalk {
    fn default() -> PatternWalk {
        PatternWalk::new(Scope::Flag)
    }
}

/// The compiled sizes of the stored patterns of a project, each distinct pattern compiled once
/// per validation. Patterns that do not compile count nothing (stored data was validated).
#[derive(Default)]
struct StoredPatterns<'a> {
    sizes: HashMap<&'a str, usize>,
}

impl<'a> StoredPatterns<'a> {
    /// What the patterns of environment `env` compile to as stored, every live flag and every
    /// segment, but flag `skip_flag` and segment `skip_segment` (being replaced), each pattern
    /// counted every time it appears, as `Snapshot::compile` counts them.
    fn environment(
        &mut self,
        view: &ProjectView<'a>,
        env: &str,
        skip_flag: Option<&str>,
        skip_segment: Option<&str>,
    ) -> usize {
        let flags = view
            .flags
            .iter()
            .filter(|(key, flag)| Some(key.as_str()) != skip_flag && !flag.archived)
            .filter_map(|(_, flag)| flag.environments.get(env))
            .flat_map(|config| config.rules.iter().flat_map(|rule| &rule.conditions));
        let segments = view
            .segments
            .iter()
            .filter(|(key, _)| Some(key.as_str()) != skip_segment)
            .flat_map(|(_, segment)| segment.rules.iter().flatten());
        self.conditions(flags.chain(segments))
    }

    /// What the patterns of `conditions` compile to, each counted every time it appears.
    fn conditions(&mut self, conditions: impl Iterator<Item = &'a Condition>) -> usize {
        let mut total = 0usize;
        for condition in conditions {
            if let Condition::Attribute {
                operator: Operator::Matches,
                values,
                ..
            } = condition
            {
                for pattern in values.iter().filter_map(Value::as_str) {
                    let size = *self.sizes.entry(pattern).or_insert_with(|| {
                        Pattern::new(pattern).map_or(0, |compiled| compiled.size())
                    });
                    total = total.saturating_add(size);
                }
            }
        }
        total
    }
}

/// Why `value` is not a legal operand of `operator`, if it is not.
fn operand_error(operator: Operator, value: &Value) -> Option<String> {
    match operator {
        Operator::In => (!matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)))
            .then(|| "must be a string, number or boolean".to_string()),
        Operator::Contains | Operator::StartsWith | Operator::EndsWith => {
            (!value.is_string()).then(|| "must be a string".to_string())
        }
        // Checked with the pattern limits, by `Checker::pattern`.
        Operator::Matches => None,
        Operator::Lt | Operator::Lte | Operator::Gt | Operator::Gte => {
            (!value.is_number()).then(|| "must be a number".to_string())
        }
        Operator::Before | Operator::After => parse_timestamp(value).is_none().then(|| {
            "must be an RFC 3339 date-time with an offset (like 2024-01-02T03:04:05Z) \
             or a number of epoch milliseconds"
                .to_string()
        }),
        Operator::SemverEq | Operator::SemverLt | Operator::SemverGt => {
            if parse_semver(value).is_some() {
                return None;
            }
            let reason = match value.as_str() {
                Some(s) => semver::Version::parse(s)
                    .err()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default(),
                None => String::new(),
            };
            Some(format!(
                "must be a semantic version like 1.2.3 (no leading v){reason}"
            ))
        }
        Operator::Exists => None,
    }
}

fn wrong_variant_type(flag_type: FlagType) -> String {
    let what = match flag_type {
        FlagType::Boolean => "must be a boolean",
        FlagType::String => "must be a string",
        FlagType::Number => "must be a number",
        FlagType::Json => "must not be null",
    };
    format!("{what} (the flag's type is {})", flag_type.as_str())
}

fn too_long(value: &str, max: usize) -> Option<String> {
    let chars = value.chars().count();
    (chars > max).then(|| format!("must be at most {max} characters (got {chars})"))
}

/// `a, b, c` for an error message; long lists are cut.
fn list<'a>(items: impl ExactSizeIterator<Item = &'a str>) -> String {
    const SHOWN: usize = 20;
    let total = items.len();
    if total == 0 {
        return "(none)".to_string();
    }
    let mut out = items.take(SHOWN).collect::<Vec<_>>().join(", ");
    if total > SHOWN {
        out.push_str(&format!(" and {} more", total - SHOWN));
    }
    out
}

/// A member that can be written after a dot without ambiguity.
fn is_plain_member(m: &str) -> bool {
    !m.is_empty()
        && m.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A breadth-first search backwards from `target` over the graph whose edges `edges` gives:
/// for every node that reaches `target`, the next node on a shortest path to it. `nodes` are
/// the nodes whose edges are to be read (edges from other nodes are ignored).
fn next_hops_toward<'a>(
    target: &'a str,
    edges: impl Fn(&'a str) -> Vec<&'a str>,
    nodes: impl Iterator<Item = &'a str>,
) -> HashMap<&'a str, &'a str> {
    let mut reverse: HashMap<&'a str, Vec<&'a str>> = HashMap::new();
    for node in nodes {
        for to in edges(node) {
            reverse.entry(to).or_default().push(node);
        }
    }
    let mut next: HashMap<&'a str, &'a str> = HashMap::new();
    let mut queue = VecDeque::from([target]);
    while let Some(node) = queue.pop_front() {
        for &from in reverse.get(node).map(Vec::as_slice).unwrap_or_default() {
            if from != target && !next.contains_key(from) {
                next.insert(from, node);
                queue.push_back(from);
            }
        }
    }
    next
}

/// `owner → first → … → owner` if `first` reaches `owner` according to `next_hops`.
fn cycle_through(owner: &str, first: &str, next_hops: &HashMap<&str, &str>) -> Option<String> {
    let mut path = vec![owner, first];
    let mut node = next_hops.get(first).copied()?;
    // A shortest-path tree: the walk ends at `owner` within `next_hops.len()` steps.
    for _ in 0..=next_hops.len() {
        path.push(node);
        if node == owner {
            return Some(path.join(" → "));
        }
        node = next_hops.get(node).copied()?;
    }
    None
}

/// What a segment condition may refer to: the project's segments, minus the segment being
/// validated (if any) and anything that would close a cycle through it.
struct SegmentRefs<'a> {
    segments: &'a BTreeMap<String, Segment>,
    /// The segment whose rules are being checked.
    owner: Option<&'a str>,
    /// For every segment that (transitively) references `owner`, the next hop toward it.
    toward_owner: HashMap<&'a str, &'a str>,
}

impl<'a> SegmentRefs<'a> {
    fn for_flag(segments: &'a BTreeMap<String, Segment>) -> SegmentRefs<'a> {
        SegmentRefs {
            segments,
            owner: None,
            toward_owner: HashMap::new(),
        }
    }

    fn for_segment(owner: &'a Segment, segments: &'a BTreeMap<String, Segment>) -> SegmentRefs<'a> {
        let key = owner.key.as_str();
        let uses_segments = owner
            .rules
            .iter()
            .flatten()
            .any(|c| matches!(c, Condition::Segment { .. }));
        let toward_owner = if uses_segments {
            next_hops_toward(
                key,
                |node| {
                    segments
                        .get(node)
                        .filter(|_| node != key)
                        .map(|s| segment_refs(&s.rules))
                        .unwrap_or_default()
                },
                segments.keys().map(String::as_str),
            )
        } else {
            HashMap::new()
        };
        SegmentRefs {
            segments,
            owner: Some(key),
            toward_owner,
        }
    }

    /// At `…segment` of a segment condition.
    fn check(&self, c: &mut Checker, segment: &str) {
        if self.owner == Some(segment) {
            c.error("a segment cannot reference itself");
        } else if !self.segments.contains_key(segment) {
            c.error(format!("unknown segment \"{segment}\""));
        } else if let Some(owner) = self.owner {
            if let Some(path) = cycle_through(owner, segment, &self.toward_owner) {
                c.error(format!("segment cycle: {path}"));
            }
        }
    }
}

fn segment_refs(rules: &[Vec<Condition>]) -> Vec<&str> {
    rules
        .iter()
        .flatten()
        .filter_map(|c| match c {
            Condition::Segment { segment, .. } => Some(segment.as_str()),
            Condition::Attribute { .. } => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::NulScan;

    fn scan(chunks: &[&[u8]]) -> bool {
        let mut scan = NulScan::default();
        for chunk in chunks {
            let _ = scan.write(chunk);
        }
        scan.found
    }

    #[test]
    fn the_nul_escape_is_found_however_the_writes_are_cut() {
        assert!(scan(&[br#""a\u0000b""#]));
        assert!(scan(&[br#""a\u00"#, br#"00b""#]));
        assert!(scan(&[b"\\", b"u", b"0", b"0", b"0", b"0"]));
        assert!(scan(&[br#""\u000\u0000""#]));
        assert!(scan(&[br#""\\\u0000""#]));
        assert!(!scan(&[br#""\u0001 \u000 u0000""#]));
        assert!(!scan(&[br#""\u001"#, br#"0""#]));
    }
}
