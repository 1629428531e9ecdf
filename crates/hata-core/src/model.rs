//! The flag model: the JSON shapes of `shared/spec/evaluation.md` as Rust types.
//!
//! These types are the wire format of the admin API, the SDK rule set and the store. They carry
//! no evaluation logic (see `snapshot` and `evaluate`) and no cross-object checks (see
//! `validate`). Fields that a writer may omit have serde defaults; `Flag::normalize` fills the
//! defaults that depend on the flag's type or on the project's environments.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A namespace for flags and segments.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9._-]{0,127}$"))]
    pub key: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 10000))]
    pub description: String,
}

/// An environment of a project (`development`, `production`, …). Each has its own FlagConfig.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9._-]{0,127}$"))]
    pub key: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 10000))]
    pub description: String,
    #[serde(default)]
    pub protected: bool,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagType {
    Boolean,
    String,
    Number,
    Json,
}

impl FlagType {
    pub fn as_str(self) -> &'static str {
        match self {
            FlagType::Boolean => "boolean",
            FlagType::String => "string",
            FlagType::Number => "number",
            FlagType::Json => "json",
        }
    }

    /// Whether `value` is a legal variant value for a flag of this type.
    pub fn admits(self, value: &Value) -> bool {
        match self {
            FlagType::Boolean => value.is_boolean(),
            FlagType::String => value.is_string(),
            FlagType::Number => value.is_number(),
            // A JSON flag serves any JSON value except null (null cannot be told apart from
            // "no value" by most SDKs).
            FlagType::Json => !value.is_null(),
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9._-]{0,127}$"))]
    pub key: String,
    pub value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 10000))]
    pub description: Option<String>,
}

/// A flag: its project-level definition plus one `FlagConfig` per environment.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flag {
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9._-]{0,127}$"))]
    pub key: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 10000))]
    pub description: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub owner: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 50))]
    pub tags: Vec<String>,
    #[serde(default)]
    pub temporary: bool,
    /// For a temporary flag: how many days after its creation it is expected to be removed
    /// (the stale-flag report lists it past that; without it, the report's default applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3650))]
    pub lifetime_days: Option<u32>,
    #[serde(default)]
    pub archived: bool,
    #[serde(rename = "type")]
    pub flag_type: FlagType,
    /// Empty on input means "the default variants" (`on`/`off` for boolean flags).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_items = 100))]
    pub variants: Vec<Variant>,
    #[serde(default)]
    pub environments: BTreeMap<String, FlagConfig>,
    /// Set by the store; ignored on input.
    #[serde(default)]
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

/// The configuration of one flag in one environment.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagConfig {
    /// `false` is the kill switch: serve `off_variant` and nothing else.
    #[serde(default)]
    pub enabled: bool,
    /// Empty on input means the flag type's default (see `Flag::default_off_variant`).
    #[serde(default)]
    pub off_variant: String,
    #[serde(default)]
    pub prerequisites: Vec<Prerequisite>,
    #[serde(default)]
    pub targets: Vec<Target>,
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Omitted on input means "serve `off_variant`".
    #[serde(default = "Serve::unspecified")]
    pub default: Serve,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prerequisite {
    pub flag: String,
    pub variants: Vec<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub variant: String,
    pub values: Vec<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Empty on input means "assign one" (`Flag::normalize` picks `rule-N`).
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    pub serve: Serve,
}

/// What a rule or the default serves: one variant, or a percentage rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ServeRepr", into = "ServeRepr")]
pub enum Serve {
    Variant(String),
    Rollout(Rollout),
}

impl Serve {
    /// The placeholder for an omitted `default`; `Flag::normalize` replaces it.
    fn unspecified() -> Serve {
        Serve::Variant(String::new())
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rollout: Option<Rollout>,
}

impl TryFrom<ServeRepr> for Serve {
    type Error = &'static str;
    fn try_from(r: ServeRepr) -> Result<Self, Self::Error> {
        match (r.variant, r.rollout) {
            (Some(v), None) => Ok(Serve::Variant(v)),
            (None, Some(r)) => Ok(Serve::Rollout(r)),
            _ => Err("a serve needs exactly one of `variant` or `rollout`"),
        }
    }
}

impl From<Serve> for ServeRepr {
    fn from(s: Serve) -> Self {
        match s {
            Serve::Variant(v) => ServeRepr {
                variant: Some(v),
                rollout: None,
            },
            Serve::Rollout(r) => ServeRepr {
                variant: None,
                rollout: Some(r),
            },
        }
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollout {
    /// The attribute to bucket by; `targetingKey` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket_by: Option<String>,
    /// The bucketing salt; the flag key when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    pub weights: Vec<Weight>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weight {
    pub variant: String,
    /// Thousandths of a percent; the weights of a rollout sum to 100000.
    pub weight: u32,
}

/// The total of a rollout's weights: 100 % in thousandths of a percent.
pub const TOTAL_WEIGHT: u32 = 100_000;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    In,
    Contains,
    StartsWith,
    EndsWith,
    Matches,
    Lt,
    Lte,
    Gt,
    Gte,
    Before,
    After,
    SemverEq,
    SemverLt,
    SemverGt,
    Exists,
}

impl Operator {
    pub const ALL: [Operator; 15] = [
        Operator::In,
        Operator::Contains,
        Operator::StartsWith,
        Operator::EndsWith,
        Operator::Matches,
        Operator::Lt,
        Operator::Lte,
        Operator::Gt,
        Operator::Gte,
        Operator::Before,
        Operator::After,
        Operator::SemverEq,
        Operator::SemverLt,
        Operator::SemverGt,
        Operator::Exists,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::Contains => "contains",
            Operator::StartsWith => "starts_with",
            Operator::EndsWith => "ends_with",
            Operator::Matches => "matches",
            Operator::Lt => "lt",
            Operator::Lte => "lte",
            Operator::Gt => "gt",
            Operator::Gte => "gte",
            Operator::Before => "before",
            Operator::After => "after",
            Operator::SemverEq => "semver_eq",
            Operator::SemverLt => "semver_lt",
            Operator::SemverGt => "semver_gt",
            Operator::Exists => "exists",
        }
    }

    /// Operators that take exactly one value.
    pub fn takes_one_value(self) -> bool {
        matches!(
            self,
            Operator::Lt
                | Operator::Lte
                | Operator::Gt
                | Operator::Gte
                | Operator::Before
                | Operator::After
                | Operator::SemverEq
                | Operator::SemverLt
                | Operator::SemverGt
        )
    }
}

/// One condition of a rule: an attribute test, or membership of a segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ConditionRepr", into = "ConditionRepr")]
pub enum Condition {
    Attribute {
        attribute: String,
        operator: Operator,
        values: Vec<Value>,
        negate: bool,
    },
    Segment {
        segment: String,
        negate: bool,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConditionRepr {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operator: Option<Operator>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    values: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    segment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    negate: bool,
}

impl TryFrom<ConditionRepr> for Condition {
    type Error = &'static str;
    fn try_from(r: ConditionRepr) -> Result<Self, Self::Error> {
        match (r.attribute, r.operator, r.segment) {
            (Some(attribute), Some(operator), None) => Ok(Condition::Attribute {
                attribute,
                operator,
                values: r.values.unwrap_or_default(),
                negate: r.negate,
            }),
            (None, None, Some(segment)) if r.values.is_none() => {
                Ok(Condition::Segment { segment, negate: r.negate })
            }
            (Some(_), None, None) => Err("an attribute condition needs an `operator`"),
            (None, Some(_), None) => Err("an attribute condition needs an `attribute`"),
            _ => Err(
                "a condition is either {attribute, operator, values, negate?} or {segment, negate?}",
            ),
        }
    }
}

impl From<Condition> for ConditionRepr {
    fn from(c: Condition) -> Self {
        match c {
            Condition::Attribute {
                attribute,
                operator,
                values,
                negate,
            } => ConditionRepr {
                attribute: Some(attribute),
                operator: Some(operator),
                values: Some(values),
                segment: None,
                negate,
            },
            Condition::Segment { segment, negate } => ConditionRepr {
                attribute: None,
                operator: None,
                values: None,
                segment: Some(segment),
                negate,
            },
        }
    }
}

/// A reusable set of subjects: explicit lists plus rules.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z0-9][a-z0-9._-]{0,127}$"))]
    pub key: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 200))]
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 10000))]
    pub description: String,
    #[serde(default)]
    pub included: Vec<String>,
    #[serde(default)]
    pub excluded: Vec<String>,
    /// Each inner list is an AND of conditions; the segment matches if any list holds.
    #[serde(default)]
    pub rules: Vec<Vec<Condition>>,
    #[serde(default)]
    pub version: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl Flag {
    /// The variant served when a config names none: `off` for boolean flags, else the last.
    pub fn default_off_variant(&self) -> String {
        if self.flag_type == FlagType::Boolean && self.variants.iter().any(|v| v.key == "off") {
            return "off".to_string();
        }
        self.variants
            .last()
            .map(|v| v.key.clone())
            .unwrap_or_default()
    }

    /// The config a flag gets in an environment nobody configured: disabled, serving
    /// `off_variant`.
    pub fn default_config(&self) -> FlagConfig {
        let off = self.default_off_variant();
        FlagConfig {
            enabled: false,
            off_variant: off.clone(),
            prerequisites: Vec::new(),
            targets: Vec::new(),
            rules: Vec::new(),
            default: Serve::Variant(off),
        }
    }

    /// Fills the defaults a writer may omit: boolean variants, a config for every
    /// environment in `env_keys`, `off_variant`, `default`, and rule ids. Does not validate;
    /// configs for unknown environments are kept so that validation can report them.
    pub fn normalize<'a>(&mut self, env_keys: impl IntoIterator<Item = &'a str>) {
        if self.variants.is_empty() && self.flag_type == FlagType::Boolean {
            self.variants = vec![
                Variant {
                    key: "on".into(),
                    value: Value::Bool(true),
                    name: None,
                    description: None,
                },
                Variant {
                    key: "off".into(),
                    value: Value::Bool(false),
                    name: None,
                    description: None,
                },
            ];
        }
        let off = self.default_off_variant();
        for env in env_keys {
            if !self.environments.contains_key(env) {
                self.environments
                    .insert(env.to_string(), self.default_config());
            }
        }
        for config in self.environments.values_mut() {
            config.normalize(&off);
        }
    }
}

impl FlagConfig {
    /// Fills `off_variant` (with `flag_off`), an omitted `default` and missing rule ids.
    pub fn normalize(&mut self, flag_off: &str) {
        if self.off_variant.is_empty() {
            self.off_variant = flag_off.to_string();
        }
        if self.default == Serve::unspecified() {
            self.default = Serve::Variant(self.off_variant.clone());
        }
        let mut next = 1;
        for i in 0..self.rules.len() {
            if self.rules[i].id.is_empty() {
                // Pick the first `rule-N` no other rule of this config uses, so ids stay unique.
                let id = loop {
                    let candidate = format!("rule-{next}");
                    next += 1;
                    if !self.rules.iter().any(|r| r.id == candidate) {
                        break candidate;
                    }
                };
                self.rules[i].id = id;
            }
        }
    }
}

/// Schemas of the types whose serde shape is not their Rust shape (`Serve` and `Condition` go
/// through a `*Repr`): written by hand next to the `Repr`s they must stay in step with. The
/// server's OpenAPI test validates real responses against them.
#[cfg(feature = "openapi")]
mod schemas {
    use std::borrow::Cow;

    use utoipa::openapi::schema::{
        AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
    };
    use utoipa::openapi::{Ref, RefOr};
    use utoipa::{PartialSchema, ToSchema};

    use super::{Condition, Operator, Rollout, Serve};

    fn string() -> ObjectBuilder {
        ObjectBuilder::new().schema_type(SchemaType::new(Type::String))
    }

    fn closed(object: ObjectBuilder) -> RefOr<Schema> {
        object
            .additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
            .into()
    }

    impl PartialSchema for Serve {
        fn schema() -> RefOr<Schema> {
            OneOfBuilder::new()
                .description(Some(
                    "What a rule or the default serves: exactly one of `variant` or `rollout`.",
                ))
                .item(closed(
                    ObjectBuilder::new()
                        .title(Some("ServeVariant"))
                        .property("variant", string().description(Some("A variant key")))
                        .required("variant"),
                ))
                .item(closed(
                    ObjectBuilder::new()
                        .title(Some("ServeRollout"))
                        .property("rollout", Ref::from_schema_name(Rollout::name()))
                        .required("rollout"),
                ))
                .into()
        }
    }

    impl ToSchema for Serve {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Serve")
        }

        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((Rollout::name().into(), Rollout::schema()));
            Rollout::schemas(schemas);
        }
    }

    impl PartialSchema for Condition {
        fn schema() -> RefOr<Schema> {
            let negate = || {
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::Boolean))
                    .description(Some("Inverts the condition; omitted when false"))
            };
            OneOfBuilder::new()
                .description(Some(
                    "An attribute test `{attribute, operator, values, negate?}` or segment \
                     membership `{segment, negate?}`.",
                ))
                .item(closed(
                    ObjectBuilder::new()
                        .title(Some("AttributeCondition"))
                        .property(
                            "attribute",
                            string().description(Some(
                                "A top-level context member or a dotted path into nested objects",
                            )),
                        )
                        .required("attribute")
                        .property("operator", Ref::from_schema_name(Operator::name()))
                        .required("operator")
                        .property(
                            "values",
                            ArrayBuilder::new()
                                .items(ObjectBuilder::new().schema_type(SchemaType::AnyValue))
                                .description(Some("Required for every operator but `exists`")),
                        )
                        .property("negate", negate()),
                ))
                .item(closed(
                    ObjectBuilder::new()
                        .title(Some("SegmentCondition"))
                        .property("segment", string().description(Some("A segment key")))
                        .required("segment")
                        .property("negate", negate()),
                ))
                .into()
        }
    }

    impl ToSchema for Condition {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Condition")
        }

        fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
            schemas.push((Operator::name().into(), Operator::schema()));
        }
    }
}
