//! One environment's configuration of a flag: on/off and the variant served when off,
//! prerequisites, targets (variant ← targeting keys), rules (conditions for every operator of
//! the evaluation spec and segment membership, each serving a variant or a rollout), and the
//! default serve. Saved as the API saves it (`WriteOp::PutFlagConfig`, hata-core validates)
//! with the version the form was opened at as its `If-Match`.
//!
//! Without script, the form works by round trips that keep what was typed: "Preview"
//! re-renders it with a blank row more in every list and the share of subjects each changed
//! serve would switch (`moves`); "Save" saves, unless the change moves someone or the
//! environment is protected and this exact change was not shown yet — then it is shown first
//! (the `reviewed` fingerprint), and the next "Save" commits. A 412 shows the flag's current
//! state above the same form, holding the edits merged with the other change (`merge`: parts
//! this user left alone take the other's edit), whose one button re-applies them onto the new
//! version.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Form;
use hata_access::{authorize, Need};
use hata_core::model::{
    Condition, Flag, FlagConfig, Operator, Prerequisite, Rollout, Rule, Serve, Target, Weight,
};
use hata_core::validate::FieldError;
use hata_server::error::AppError;
use hata_server::routes::Writer;
use hata_server::AppState;
use hata_store::{EnvironmentRecord, Expected, WriteOp};
use maud::{html, Markup};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::flag::{cell, conflict_notice, InputExtra};
use super::merge::{merge, Part};
use super::{moves, split_list, value_text, Errors, Failure, Fields, KEY_PATTERN};
use crate::i18n::L;
use crate::page::{error_page, html, layout, see_other, SignedIn, Ui};

/// The `operator` of a segment condition in the form (not an operator of the spec: the
/// condition is `{segment, negate}`).
const SEGMENT: &str = "segment";

/// A serve as typed, under the field prefix `default` or `rules[i].serve`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServeDraft {
    /// `variant` or `rollout`.
    pub kind: String,
    pub variant: String,
    pub bucket_by: String,
    pub salt: String,
    /// (variant, weight in percent as typed); rows left blank are dropped.
    pub weights: Vec<(String, String)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConditionDraft {
    pub negate: bool,
    pub attribute: String,
    /// An operator of the spec, or `segment`.
    pub operator: String,
    /// One value a line.
    pub values: String,
    /// How `in` reads its values: `text`, `number` or `boolean`.
    pub kind: String,
    pub segment: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleDraft {
    pub id: String,
    pub description: String,
    pub conditions: Vec<ConditionDraft>,
    pub serve: ServeDraft,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TargetDraft {
    pub variant: String,
    /// One targeting key a line.
    pub values: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrerequisiteDraft {
    pub flag: String,
    /// Comma-separated variant keys.
    pub variants: String,
}

/// The whole form as typed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigDraft {
    pub enabled: bool,
    pub off_variant: String,
    pub prerequisites: Vec<PrerequisiteDraft>,
    pub targets: Vec<TargetDraft>,
    pub rules: Vec<RuleDraft>,
    pub default: ServeDraft,
}

/// Thousandths of a percent as the form shows them: `30000` → `30`, `12345` → `12.345`.
fn weight_text(weight: u32) -> String {
    crate::flag::percent(weight)
        .trim_end_matches('%')
        .to_string()
}

/// A percentage as typed (`30`, `12.5`, `0.001`) in thousandths of a percent.
pub fn parse_weight(text: &str) -> Option<u32> {
    let text = text.trim();
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !digits(whole) || !digits(frac) || frac.len() > 3 {
        return None;
    }
    let whole: u32 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let frac: u32 = format!("{frac:0<3}").parse().ok()?;
    whole.checked_mul(1000)?.checked_add(frac)
}

impl ServeDraft {
    fn of(serve: &Serve) -> ServeDraft {
        match serve {
            Serve::Variant(v) => ServeDraft {
                kind: "variant".into(),
                variant: v.clone(),
                ..ServeDraft::default()
            },
            Serve::Rollout(r) => ServeDraft {
                kind: "rollout".into(),
                variant: String::new(),
                bucket_by: r.bucket_by.clone().unwrap_or_default(),
                salt: r.salt.clone().unwrap_or_default(),
                weights: r
                    .weights
                    .iter()
                    .map(|w| (w.variant.clone(), weight_text(w.weight)))
                    .collect(),
            },
        }
    }

    fn parse(f: &Fields, p: &str) -> ServeDraft {
        let weights = f
            .indices(&format!("{p}.rollout.weights"))
            .into_iter()
            .map(|i| {
                (
                    f.get(&format!("{p}.rollout.weights[{i}].variant"))
                        .to_string(),
                    f.get(&format!("{p}.rollout.weights[{i}].weight"))
                        .trim()
                        .to_string(),
                )
            })
            .filter(|(v, w)| !v.is_empty() && !w.is_empty())
            .collect();
        ServeDraft {
            kind: f.get(&format!("{p}.kind")).to_string(),
            variant: f.get(&format!("{p}.variant")).to_string(),
            bucket_by: f.get(&format!("{p}.rollout.bucket_by")).trim().to_string(),
            salt: f.get(&format!("{p}.rollout.salt")).to_string(),
            weights,
        }
    }

    fn is_blank(&self) -> bool {
        self.variant.is_empty() && self.weights.is_empty() && self.bucket_by.is_empty()
    }

    fn to_serve(&self, l: L, p: &str, errors: &mut Vec<FieldError>) -> Serve {
        if self.kind != "rollout" {
            return Serve::Variant(self.variant.clone());
        }
        let weights = self
            .weights
            .iter()
            .enumerate()
            .map(|(i, (variant, text))| Weight {
                variant: variant.clone(),
                weight: parse_weight(text).unwrap_or_else(|| {
                    errors.push(FieldError::new(
                        format!("{p}.rollout.weights[{i}].weight"),
                        l.t("edit.error_weight"),
                    ));
                    0
                }),
            })
            .collect();
        Serve::Rollout(Rollout {
            bucket_by: (!self.bucket_by.is_empty()).then(|| self.bucket_by.clone()),
            salt: (!self.salt.is_empty()).then(|| self.salt.clone()),
            weights,
        })
    }
}

fn operator_of(name: &str) -> Option<Operator> {
    Operator::ALL.into_iter().find(|o| o.as_str() == name)
}

impl ConditionDraft {
    fn of(c: &Condition) -> ConditionDraft {
        match c {
            Condition::Attribute {
                attribute,
                operator,
                values,
                negate,
            } => ConditionDraft {
                negate: *negate,
                attribute: attribute.clone(),
                operator: operator.as_str().into(),
                values: values.iter().map(value_text).collect::<Vec<_>>().join("\n"),
                kind: match values.first() {
                    Some(Value::Number(_)) if *operator == Operator::In => "number",
                    Some(Value::Bool(_)) => "boolean",
                    _ => "text",
                }
                .into(),
                segment: String::new(),
            },
            Condition::Segment { segment, negate } => ConditionDraft {
                negate: *negate,
                operator: SEGMENT.into(),
                segment: segment.clone(),
                kind: "text".into(),
                ..ConditionDraft::default()
            },
        }
    }

    fn parse(f: &Fields, p: &str) -> ConditionDraft {
        ConditionDraft {
            negate: f.checked(&format!("{p}.negate")),
            attribute: f.get(&format!("{p}.attribute")).trim().to_string(),
            operator: f.get(&format!("{p}.operator")).to_string(),
            values: f.get(&format!("{p}.values")).replace("\r\n", "\n"),
            kind: f.get(&format!("{p}.kind")).to_string(),
            segment: f.get(&format!("{p}.segment")).to_string(),
        }
    }

    fn is_blank(&self) -> bool {
        self.attribute.is_empty()
            && self.values.trim().is_empty()
            && (self.operator != SEGMENT || self.segment.is_empty())
    }

    /// The values as the operator takes them: numbers for `lt`…`gte` (and `in` over
    /// numbers), epoch milliseconds or RFC 3339 text for `before`/`after`, `true`/`false` for
    /// `in` over booleans, text otherwise. A line that does not read is an error at its
    /// `values[k]`.
    fn values(
        &self,
        l: L,
        operator: Operator,
        p: &str,
        errors: &mut Vec<FieldError>,
    ) -> Vec<Value> {
        use Operator::*;
        if operator == Exists {
            return Vec::new();
        }
        let lines = split_list(&self.values, false);
        let mut out = Vec::with_capacity(lines.len());
        for (k, line) in lines.into_iter().enumerate() {
            let number = || {
                serde_json::from_str::<serde_json::Number>(&line)
                    .ok()
                    .map(Value::Number)
            };
            let value = match operator {
                Lt | Lte | Gt | Gte => number(),
                Before | After if line.bytes().all(|b| b.is_ascii_digit() || b == b'-') => number(),
                In if self.kind == "number" => number(),
                In if self.kind == "boolean" => match line.as_str() {
                    "true" => Some(Value::Bool(true)),
                    "false" => Some(Value::Bool(false)),
                    _ => None,
                },
                _ => Some(Value::String(line.clone())),
            };
            match value {
                Some(v) => out.push(v),
                None => errors.push(FieldError::new(
                    format!("{p}.values[{k}]"),
                    l.f("edit.error_value", &[("value", &line)]),
                )),
            }
        }
        out
    }

    fn to_condition(&self, l: L, p: &str, errors: &mut Vec<FieldError>) -> Condition {
        if self.operator == SEGMENT {
            return Condition::Segment {
                segment: self.segment.clone(),
                negate: self.negate,
            };
        }
        let operator = operator_of(&self.operator).unwrap_or_else(|| {
            errors.push(FieldError::new(
                format!("{p}.operator"),
                l.t("edit.error_operator"),
            ));
            Operator::In
        });
        Condition::Attribute {
            attribute: self.attribute.clone(),
            operator,
            values: self.values(l, operator, p, errors),
            negate: self.negate,
        }
    }
}

impl ConfigDraft {
    pub fn of(config: &FlagConfig) -> ConfigDraft {
        ConfigDraft {
            enabled: config.enabled,
            off_variant: config.off_variant.clone(),
            prerequisites: config
                .prerequisites
                .iter()
                .map(|p| PrerequisiteDraft {
                    flag: p.flag.clone(),
                    variants: p.variants.join(", "),
                })
                .collect(),
            targets: config
                .targets
                .iter()
                .map(|t| TargetDraft {
                    variant: t.variant.clone(),
                    values: t.values.join("\n"),
                })
                .collect(),
            rules: config
                .rules
                .iter()
                .map(|r| RuleDraft {
                    id: r.id.clone(),
                    description: r.description.clone().unwrap_or_default(),
                    conditions: r.conditions.iter().map(ConditionDraft::of).collect(),
                    serve: ServeDraft::of(&r.serve),
                })
                .collect(),
            default: ServeDraft::of(&config.default),
        }
    }

    /// The form's fields. Rows left blank and rows marked for removal are dropped, so the
    /// rows shown again are numbered as the saved config is and hata-core's error paths
    /// (`rules[1].conditions[0].values[0]`) name the inputs they belong to.
    pub fn parse(f: &Fields) -> ConfigDraft {
        let prerequisites = f
            .indices("prerequisites")
            .into_iter()
            .map(|i| PrerequisiteDraft {
                flag: f
                    .get(&format!("prerequisites[{i}].flag"))
                    .trim()
                    .to_string(),
                variants: f.get(&format!("prerequisites[{i}].variants")).to_string(),
            })
            .filter(|p| !p.flag.is_empty() || !p.variants.trim().is_empty())
            .collect();
        let targets = f
            .indices("targets")
            .into_iter()
            .map(|i| TargetDraft {
                variant: f.get(&format!("targets[{i}].variant")).to_string(),
                values: f.get(&format!("targets[{i}].values")).replace("\r\n", "\n"),
            })
            .filter(|t| !t.values.trim().is_empty())
            .collect();
        let rules = f
            .indices("rules")
            .into_iter()
            .filter(|i| !f.checked(&format!("rules[{i}].remove")))
            .map(|i| {
                let p = format!("rules[{i}]");
                let conditions = f
                    .indices(&format!("{p}.conditions"))
                    .into_iter()
                    .filter(|j| !f.checked(&format!("{p}.conditions[{j}].remove")))
                    .map(|j| ConditionDraft::parse(f, &format!("{p}.conditions[{j}]")))
                    .filter(|c| !c.is_blank())
                    .collect();
                RuleDraft {
                    id: f.get(&format!("{p}.id")).to_string(),
                    description: f.get(&format!("{p}.description")).trim().to_string(),
                    conditions,
                    serve: ServeDraft::parse(f, &format!("{p}.serve")),
                }
            })
            .filter(|r| {
                !(r.id.is_empty()
                    && r.description.is_empty()
                    && r.conditions.is_empty()
                    && r.serve.is_blank())
            })
            .collect();
        ConfigDraft {
            enabled: f.checked("enabled"),
            off_variant: f.get("off_variant").to_string(),
            prerequisites,
            targets,
            rules,
            default: ServeDraft::parse(f, "default"),
        }
    }

    /// The config the draft describes, or what of it does not read (numbers, weights) —
    /// everything else is hata-core's to check.
    pub fn to_config(&self, l: L) -> Result<FlagConfig, Vec<FieldError>> {
        let mut errors = Vec::new();
        let rules = self
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| Rule {
                id: r.id.clone(),
                description: (!r.description.is_empty()).then(|| r.description.clone()),
                conditions: r
                    .conditions
                    .iter()
                    .enumerate()
                    .map(|(j, c)| {
                        c.to_condition(l, &format!("rules[{i}].conditions[{j}]"), &mut errors)
                    })
                    .collect(),
                serve: r
                    .serve
                    .to_serve(l, &format!("rules[{i}].serve"), &mut errors),
            })
            .collect();
        let config = FlagConfig {
            enabled: self.enabled,
            off_variant: self.off_variant.clone(),
            prerequisites: self
                .prerequisites
                .iter()
                .map(|p| Prerequisite {
                    flag: p.flag.clone(),
                    variants: split_list(&p.variants, true),
                })
                .collect(),
            targets: self
                .targets
                .iter()
                .map(|t| Target {
                    variant: t.variant.clone(),
                    values: split_list(&t.values, false),
                })
                .collect(),
            rules,
            default: self.default.to_serve(l, "default", &mut errors),
        };
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }
}

/// What the user was shown of this exact change on this version: saving then needs no
/// second look.
fn fingerprint(config: &FlagConfig, version: i64) -> String {
    let json = serde_json::to_string(config).unwrap_or_default();
    hex::encode(Sha256::digest(format!("{version}\n{json}").as_bytes()))
}

/// Everything the page shows besides the draft.
struct View<'a> {
    project: &'a str,
    flag: &'a Flag,
    env: &'a EnvironmentRecord,
    segments: &'a [String],
    /// The version the form saves onto.
    version: i64,
    errors: Errors,
    /// The "who moves" section, with the fingerprint of what it showed.
    review: Option<(Markup, String)>,
    /// The version the user had opened, when someone changed the flag since (412).
    conflict_from: Option<i64>,
    /// The configuration the form was opened on (JSON), carried through the round trips:
    /// the base of the merge after a 412 (`merge`).
    base: String,
    /// After a 412: the parts whose other edit the merge kept, and those both changed.
    merged: Option<(Vec<Part>, Vec<Part>)>,
}

async fn load(
    s: &AppState,
    project: &str,
    key: &str,
    env: &str,
) -> Result<(Flag, EnvironmentRecord, Vec<String>), AppError> {
    let flag = s.store.get_flag(project, key).await?;
    let env = s.store.get_environment(project, env).await?;
    if !flag.environments.contains_key(&env.environment.key) {
        return Err(AppError::NotFound(format!(
            "environment {:?} of flag {key:?}",
            env.environment.key
        )));
    }
    let segments = s
        .store
        .list_segments(project, hata_store::read::MAX_PAGE, None)
        .await?
        .items
        .into_iter()
        .map(|seg| seg.key)
        .collect();
    Ok((flag, env, segments))
}

/// `GET /projects/{project}/flags/{flag}/environments/{env}/edit`
pub async fn show(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path((project, key, env)): Path<(String, String, String)>,
) -> Response {
    if let Err(d) = authorize(&who.principal, Need::Write(&project)) {
        return error_page(&ui, Some(&who), AppError::Forbidden(d.0));
    }
    let (flag, env, segments) = match load(&s, &project, &key, &env).await {
        Ok(found) => found,
        Err(e) => return error_page(&ui, Some(&who), e),
    };
    let config = &flag.environments[&env.environment.key];
    let draft = ConfigDraft::of(config);
    let view = View {
        project: &project,
        flag: &flag,
        env: &env,
        segments: &segments,
        version: flag.version,
        errors: Errors::default(),
        review: None,
        conflict_from: None,
        base: serde_json::to_string(config).unwrap_or_default(),
        merged: None,
    };
    page(&ui, &who, &draft, view)
}

/// `POST /projects/{project}/flags/{flag}/environments/{env}/edit`: `action=preview` shows
/// the form again with who moves, `action=save` saves (after showing who moves, and asking
/// in a protected environment, once).
pub async fn submit(
    ui: Ui,
    State(s): State<AppState>,
    who: SignedIn,
    Path((project, key, env)): Path<(String, String, String)>,
    Writer(w): Writer,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let l = ui.l;
    let f = Fields::new(with_rule_moved(pairs));
    if let Err(e) = who.check_csrf(f.get("csrf")) {
        return error_page(&ui, Some(&who), e);
    }
    if let Err(d) = authorize(&who.principal, Need::Write(&project)) {
        return error_page(&ui, Some(&who), AppError::Forbidden(d.0));
    }
    let Ok(opened) = f.get("version").parse::<i64>() else {
        return error_page(
            &ui,
            Some(&who),
            AppError::BadRequest("version: not a number".into()),
        );
    };
    let (flag, env, segments) = match load(&s, &project, &key, &env).await {
        Ok(found) => found,
        Err(e) => return error_page(&ui, Some(&who), e),
    };
    let env_key = env.environment.key.clone();
    let current = &flag.environments[&env_key];
    let draft = ConfigDraft::parse(&f);
    let mut view = View {
        project: &project,
        flag: &flag,
        env: &env,
        segments: &segments,
        version: opened,
        errors: Errors::default(),
        review: None,
        conflict_from: None,
        base: f.get("base").to_string(),
        merged: None,
    };
    let config = match draft.to_config(l) {
        Ok(config) => config,
        Err(errors) => {
            view.errors = Errors::new(errors);
            return page(&ui, &who, &draft, view);
        }
    };
    // Who moves, against what is current (a save onto an older version is a 412 anyway).
    let changes = moves::changes(current, &config);
    let enabled_change = (config.enabled != current.enabled).then_some(config.enabled);
    let review = |version: i64| {
        (
            moves::section(l, &changes, enabled_change),
            fingerprint(&config, version),
        )
    };
    let protected = env.environment.protected;
    let needs_review = (protected || moves::moves_anyone(&changes))
        && f.get("reviewed") != fingerprint(&config, opened);
    if f.get("action") != "save" || needs_review {
        view.review = Some(review(opened));
        return page(&ui, &who, &draft, view);
    }
    let op = WriteOp::PutFlagConfig {
        project: project.clone(),
        flag: key.clone(),
        environment: env_key.clone(),
        expected_version: Expected::version(opened),
        config: config.clone(),
    };
    let failure: Failure = match s.write(&w, op).await {
        // Written and the rule sets refreshed: evaluations serve it now.
        Ok(_) => return see_other(&format!("/projects/{project}/flags/{key}#env-{env_key}")),
        Err(e) => e.into(),
    };
    match failure {
        Failure::Invalid(errors) => {
            view.errors = Errors::new(errors);
            page(&ui, &who, &draft, view)
        }
        Failure::Conflict => {
            // The edits, merged with the other change (`merge`: what this user left alone
            // takes the other's edit), in the form onto the current version, with who moves
            // against the current state: one click re-applies them. Without a base to merge
            // from (a form from an earlier page), the edits alone.
            let base = serde_json::from_str::<FlagConfig>(f.get("base")).ok();
            let (config, draft, merged) = match base {
                Some(base) => {
                    let m = merge(&round_trip(l, &base), &config, &round_trip(l, current));
                    let draft = ConfigDraft::of(&m.config);
                    (m.config, draft, Some((m.kept_theirs, m.both)))
                }
                None => (config, draft, None),
            };
            let changes = moves::changes(current, &config);
            let enabled_change = (config.enabled != current.enabled).then_some(config.enabled);
            view.version = flag.version;
            view.conflict_from = Some(opened);
            view.review = Some((
                moves::section(l, &changes, enabled_change),
                fingerprint(&config, flag.version),
            ));
            view.base = serde_json::to_string(current).unwrap_or_default();
            view.merged = merged;
            page(&ui, &who, &draft, view)
        }
        Failure::Other(e) => error_page(&ui, Some(&who), e),
    }
}

/// The posted fields with a rule and its neighbour swapped, when one of a rule's "move up" /
/// "move down" buttons was pressed (`action=up:i` / `down:i`, `i` its index in the form): a
/// round trip like Preview, whose page then shows the new order and who it moves.
fn with_rule_moved(mut pairs: Vec<(String, String)>) -> Vec<(String, String)> {
    let moved = pairs
        .iter()
        .find(|(name, _)| name == "action")
        .and_then(|(_, action)| rule_move(action));
    let Some((i, j)) = moved else {
        return pairs;
    };
    let (a, b) = (format!("rules[{i}]"), format!("rules[{j}]"));
    // `rules[1]` is a prefix of `rules[10].id` too: only `.` or `[` may follow it.
    let of = |name: &str, prefix: &str| {
        name.strip_prefix(prefix)
            .filter(|rest| rest.starts_with('.') || rest.starts_with('['))
            .map(str::to_string)
    };
    for (name, _) in &mut pairs {
        if let Some(rest) = of(name, &a) {
            *name = format!("{b}{rest}");
        } else if let Some(rest) = of(name, &b) {
            *name = format!("{a}{rest}");
        }
    }
    pairs
}

/// `up:i` → `(i, i - 1)`, `down:i` → `(i, i + 1)`.
fn rule_move(action: &str) -> Option<(usize, usize)> {
    let (direction, i) = action.split_once(':')?;
    let i: usize = i.parse().ok()?;
    match direction {
        "up" => Some((i, i.checked_sub(1)?)),
        "down" => Some((i, i.checked_add(1)?)),
        _ => None,
    }
}

/// `config` as the form would make it again: what the merge compares the user's edits with,
/// so that a part the user left alone compares equal.
fn round_trip(l: L, config: &FlagConfig) -> FlagConfig {
    ConfigDraft::of(config)
        .to_config(l)
        .unwrap_or_else(|_| config.clone())
}

/// The merge's parts by name, in the page's language.
fn part_names(l: L, parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| l.t(p.label_key()))
        .collect::<Vec<_>>()
        .join(l.t("edit.merge_separator"))
}

fn page(ui: &Ui, who: &SignedIn, draft: &ConfigDraft, view: View<'_>) -> Response {
    let l = ui.l;
    let flag = view.flag;
    let env = &view.env.environment;
    let variants: Vec<&str> = flag.variants.iter().map(|v| v.key.as_str()).collect();
    let errors = &view.errors;
    let flag_url = format!("/projects/{}/flags/{}", view.project, flag.key);
    let edit_url = format!("{flag_url}/environments/{}/edit", env.key);
    let protected_review = env.protected && view.review.is_some();
    let save_label = if view.conflict_from.is_some() {
        l.f("edit.reapply", &[("version", &view.version.to_string())])
    } else if protected_review {
        l.f("edit.confirm_save", &[("env", &env.name)])
    } else {
        l.t("edit.save").to_string()
    };
    let form = html! {
        form.edit #config method="post" action=(edit_url) {
            input type="hidden" name="csrf" value=(who.session.csrf_token);
            input type="hidden" name="version" value=(view.version);
            input type="hidden" name="base" value=(view.base);
            // The default button, first in the form: Enter in a field previews, as before the
            // rules' move buttons came ahead of the actions.
            button type="submit" name="action" value="preview" hidden { (l.t("edit.preview")) }
            @if let Some((_, print)) = &view.review { input type="hidden" name="reviewed" value=(print); }
            fieldset {
                legend { (l.t("edit.state")) }
                label.check {
                    input #enabled type="checkbox" name="enabled" value="1" checked[draft.enabled];
                    span { (l.f("edit.enabled", &[("env", &env.name)])) }
                }
                (errors.at("enabled"))
                (variant_select(l.t("flag.off_variant"), "off_variant", &draft.off_variant, &variants, errors, false, true))
            }
            (prerequisites(l, draft, errors))
            (targets(l, draft, &variants, errors))
            fieldset #rules-edit {
                legend { (l.t("flag.rules")) }
                p.muted { (l.t("edit.rules_help")) }
                (errors.at("rules"))
                @for (i, rule) in draft.rules.iter().cloned().chain([RuleDraft::default()]).enumerate() {
                    (rule_fields(l, i, draft.rules.len(), &rule, &variants, view.segments, errors))
                }
            }
            (serve_fields(l, "default", l.t("flag.default"), &draft.default, &variants, errors))
            div.actions {
                button #preview type="submit" name="action" value="preview" { (l.t("edit.preview")) }
                button.primary #save type="submit" name="action" value="save" { (save_label) }
                a href=(flag_url) { (l.t("switch.cancel")) }
            }
        }
    };
    let title = l.f(
        "edit.config_title",
        &[("flag", &flag.key), ("env", &env.name)],
    );
    let body = html! {
        p { a href=(flag_url) { "← " (flag.key) } }
        h1 {
            (title)
            @if env.protected { " " span.tag { (l.t("env.protected")) } }
        }
        @if let Some(opened) = view.conflict_from {
            (conflict_notice(l, opened, flag,
                &serde_json::to_string_pretty(&flag.environments.get(&env.key)).unwrap_or_default(),
                &edit_url))
            @if let Some(current) = flag.environments.get(&env.key) {
                div.card { (crate::flag::environment(l, current)) }
            }
            @if let Some((kept, both)) = &view.merged {
                @if !kept.is_empty() {
                    p.notice #merge-kept { (l.f("edit.merge_kept", &[("parts", &part_names(l, kept))])) }
                }
                @if !both.is_empty() {
                    p.error #merge-both { (l.f("edit.merge_both", &[("parts", &part_names(l, both))])) }
                }
            }
        }
        (errors.unclaimed(l))
        @if let Some((section, _)) = &view.review {
            (section)
            @if protected_review && view.conflict_from.is_none() {
                p.notice #protected-confirm { (l.f("edit.protected_confirm", &[("env", &env.name)])) }
            }
        }
        (form)
    };
    let status = if view.conflict_from.is_some() {
        StatusCode::PRECONDITION_FAILED
    } else if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    html(ui, status, layout(ui, Some(who), &title, body))
}

/// A labelled select of the flag's variants (with an empty choice when `empty`).
fn variant_select(
    label: &str,
    name: &str,
    selected: &str,
    variants: &[&str],
    errors: &Errors,
    empty: bool,
    visible_label: bool,
) -> Markup {
    let (invalid, described) = errors.aria(name);
    html! {
        label {
            @if visible_label { span { (label) } } @else { span.vh { (label) } }
            select name=(name) aria-invalid=[invalid] aria-describedby=[described] {
                @if empty { option value="" selected[selected.is_empty()] { "—" } }
                // A variant no longer in the flag stays selectable, so the error names it.
                @if !selected.is_empty() && !variants.contains(&selected) {
                    option value=(selected) selected { (selected) }
                }
                @for v in variants { option value=(v) selected[*v == selected] { (v) } }
            }
        }
        (errors.at(name))
    }
}

fn prerequisites(l: L, draft: &ConfigDraft, errors: &Errors) -> Markup {
    let rows = draft
        .prerequisites
        .iter()
        .cloned()
        .chain([PrerequisiteDraft::default()]);
    html! {
        fieldset #prerequisites-edit {
            legend { (l.t("flag.prerequisites")) }
            p.muted { (l.t("edit.prerequisites_help")) }
            (errors.at("prerequisites"))
            table.edit {
                thead { tr { th scope="col" { (l.t("edit.prerequisite_flag")) } th scope="col" { (l.t("edit.prerequisite_variants")) } } }
                tbody {
                    @for (i, p) in rows.enumerate() {
                        @let n = (i + 1).to_string();
                        tr {
                            td { (cell(errors, &l.f("edit.prerequisite_flag_n", &[("n", &n)]), &format!("prerequisites[{i}].flag"), &p.flag,
                                InputExtra { pattern: Some(KEY_PATTERN), ..Default::default() })) }
                            td { (cell(errors, &l.f("edit.prerequisite_variants_n", &[("n", &n)]), &format!("prerequisites[{i}].variants"), &p.variants,
                                InputExtra { placeholder: Some("on"), ..Default::default() })) }
                        }
                    }
                }
            }
        }
    }
}

fn targets(l: L, draft: &ConfigDraft, variants: &[&str], errors: &Errors) -> Markup {
    let rows = draft
        .targets
        .iter()
        .cloned()
        .chain([TargetDraft::default()]);
    html! {
        fieldset #targets-edit {
            legend { (l.t("flag.targets")) }
            p.muted { (l.t("edit.targets_help")) }
            (errors.at("targets"))
            table.edit {
                thead { tr { th scope="col" { (l.t("flag.variant_key")) } th scope="col" { (l.t("edit.target_keys")) } } }
                tbody {
                    @for (i, t) in rows.enumerate() {
                        @let n = (i + 1).to_string();
                        @let name = format!("targets[{i}].values");
                        tr {
                            td { (variant_select(&l.f("edit.target_variant_n", &[("n", &n)]), &format!("targets[{i}].variant"), &t.variant, variants, errors, false, false)) }
                            td {
                                label {
                                    span.vh { (l.f("edit.target_keys_n", &[("n", &n)])) }
                                    @let (invalid, described) = errors.aria(&name);
                                    textarea name=(name) rows="2" aria-invalid=[invalid] aria-describedby=[described] { (t.values) }
                                }
                                (errors.at(&name))
                            }
                        }
                    }
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn rule_fields(
    l: L,
    i: usize,
    rules: usize,
    rule: &RuleDraft,
    variants: &[&str],
    segments: &[String],
    errors: &Errors,
) -> Markup {
    let p = format!("rules[{i}]");
    let n = (i + 1).to_string();
    let legend = if rule.id.is_empty() {
        l.f("edit.rule_new", &[("n", &n)])
    } else {
        l.f("edit.rule_n", &[("n", &n), ("id", &rule.id)])
    };
    let conditions = rule.conditions.iter().cloned().chain([ConditionDraft {
        kind: "text".into(),
        ..ConditionDraft::default()
    }]);
    html! {
        fieldset.rule data-rule=(i) {
            legend { (legend) }
            input type="hidden" name=(format!("{p}.id")) value=(rule.id);
            (errors.at(&p))
            div.grid {
                (super::flag::text_input(errors, l.t("edit.rule_description"), &format!("{p}.description"), &rule.description, InputExtra::default()))
                @if !rule.id.is_empty() {
                    label.check {
                        input type="checkbox" name=(format!("{p}.remove")) value="1";
                        span { (l.f("edit.remove_rule", &[("rule", &rule.id)])) }
                    }
                }
            }
            // Rules are evaluated in order: moving one is a round trip (`with_rule_moved`).
            @if i < rules && rules > 1 {
                div.order {
                    @if i > 0 {
                        button type="submit" name="action" value=(format!("up:{i}")) {
                            (l.f("edit.rule_up", &[("n", &n)]))
                        }
                    }
                    @if i + 1 < rules {
                        button type="submit" name="action" value=(format!("down:{i}")) {
                            (l.f("edit.rule_down", &[("n", &n)]))
                        }
                    }
                }
            }
            (errors.at(&format!("{p}.conditions")))
            table.edit.conditions {
                caption.muted { (l.t("edit.conditions_help")) }
                thead {
                    tr {
                        th scope="col" { (l.t("edit.negate")) }
                        th scope="col" { (l.t("edit.attribute")) }
                        th scope="col" { (l.t("edit.operator")) }
                        th scope="col" { (l.t("edit.values")) }
                        th scope="col" { (l.t("edit.values_kind")) }
                        th scope="col" { (l.t("edit.segment")) }
                        th scope="col" { (l.t("edit.remove")) }
                    }
                }
                tbody {
                    @for (j, c) in conditions.enumerate() {
                        (condition_row(l, &format!("{p}.conditions[{j}]"), &l.f("edit.condition_n", &[("n", &(j + 1).to_string()), ("rule", &n)]), &c, segments, errors))
                    }
                }
            }
            (serve_fields(l, &format!("{p}.serve"), &l.f("edit.rule_serves", &[("n", &n)]), &rule.serve, variants, errors))
        }
    }
}

/// The HTML checks a single value gets while typed, by operator.
fn single_value_input(operator: Option<Operator>) -> Option<InputExtra<'static>> {
    use Operator::*;
    let operator = operator?;
    if !operator.takes_one_value() {
        return None;
    }
    Some(match operator {
        Lt | Lte | Gt | Gte => InputExtra {
            kind: "number",
            step: Some("any"),
            required: true,
            ..Default::default()
        },
        Before | After => InputExtra {
            required: true,
            pattern: Some(
                r"-?[0-9]+|[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+\-][0-9]{2}:[0-9]{2})",
            ),
            placeholder: Some("2026-12-31T00:00:00Z"),
            ..Default::default()
        },
        _ => InputExtra {
            required: true,
            pattern: Some(
                r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*)?(\+[0-9A-Za-z\-]+(\.[0-9A-Za-z\-]+)*)?",
            ),
            placeholder: Some("1.2.3"),
            ..Default::default()
        },
    })
}

fn condition_row(
    l: L,
    p: &str,
    label: &str,
    c: &ConditionDraft,
    segments: &[String],
    errors: &Errors,
) -> Markup {
    let values = format!("{p}.values");
    let (invalid, described) = errors.aria(&values);
    let operator = operator_of(&c.operator);
    let segment_name = format!("{p}.segment");
    html! {
        tr {
            td {
                label.check {
                    input type="checkbox" name=(format!("{p}.negate")) value="1" checked[c.negate];
                    span.vh { (l.f("edit.negate_n", &[("condition", label)])) }
                }
            }
            td { (cell(errors, &l.f("edit.attribute_n", &[("condition", label)]), &format!("{p}.attribute"), &c.attribute, InputExtra { placeholder: Some("country"), ..Default::default() })) }
            td {
                label {
                    span.vh { (l.f("edit.operator_n", &[("condition", label)])) }
                    select name=(format!("{p}.operator")) {
                        @for o in Operator::ALL {
                            option value=(o.as_str()) selected[c.operator == o.as_str()] { (operator_label(l, o)) }
                        }
                        option value=(SEGMENT) selected[c.operator == SEGMENT] { (l.t("edit.op_segment")) }
                    }
                }
                (errors.at(&format!("{p}.operator")))
            }
            td {
                label {
                    span.vh { (l.f("edit.values_n", &[("condition", label)])) }
                    @match single_value_input(operator) {
                        Some(extra) if !c.attribute.is_empty() => {
                            input type=(extra.kind) name=(values) value=(c.values.trim()) required[extra.required]
                                pattern=[extra.pattern] step=[extra.step] placeholder=[extra.placeholder]
                                autocomplete="off" aria-invalid=[invalid] aria-describedby=[described];
                        }
                        _ => {
                            textarea name=(values) rows="2" required[operator.is_some_and(|o| o != Operator::Exists) && !c.attribute.is_empty()]
                                aria-invalid=[invalid] aria-describedby=[described] { (c.values) }
                        }
                    }
                }
                (errors.at(&values))
            }
            td {
                label {
                    span.vh { (l.f("edit.values_kind_n", &[("condition", label)])) }
                    select name=(format!("{p}.kind")) {
                        option value="text" selected[c.kind != "number" && c.kind != "boolean"] { (l.t("edit.kind_text")) }
                        option value="number" selected[c.kind == "number"] { (l.t("edit.kind_number")) }
                        option value="boolean" selected[c.kind == "boolean"] { (l.t("edit.kind_boolean")) }
                    }
                }
            }
            td {
                @let (s_invalid, s_described) = errors.aria(&segment_name);
                label {
                    span.vh { (l.f("edit.segment_n", &[("condition", label)])) }
                    select name=(segment_name) aria-invalid=[s_invalid] aria-describedby=[s_described] {
                        option value="" selected[c.segment.is_empty()] { "—" }
                        @if !c.segment.is_empty() && !segments.contains(&c.segment) {
                            option value=(c.segment) selected { (c.segment) }
                        }
                        @for s in segments { option value=(s) selected[*s == c.segment] { (s) } }
                    }
                }
                (errors.at(&segment_name))
            }
            td {
                @if !c.is_blank() {
                    label.check {
                        input type="checkbox" name=(format!("{p}.remove")) value="1";
                        span.vh { (l.f("edit.remove_condition", &[("condition", label)])) }
                    }
                }
            }
        }
    }
}

fn operator_label(l: L, o: Operator) -> &'static str {
    use Operator::*;
    match o {
        In => l.t("edit.op_in"),
        Contains => l.t("edit.op_contains"),
        StartsWith => l.t("edit.op_starts_with"),
        EndsWith => l.t("edit.op_ends_with"),
        Matches => l.t("edit.op_matches"),
        Lt => l.t("edit.op_lt"),
        Lte => l.t("edit.op_lte"),
        Gt => l.t("edit.op_gt"),
        Gte => l.t("edit.op_gte"),
        Before => l.t("edit.op_before"),
        After => l.t("edit.op_after"),
        SemverEq => l.t("edit.op_semver_eq"),
        SemverLt => l.t("edit.op_semver_lt"),
        SemverGt => l.t("edit.op_semver_gt"),
        Exists => l.t("edit.op_exists"),
    }
}

/// A serve: a fixed variant, or rollout weights (a row per variant, in percent, checked as
/// typed: 0 to 100 in steps of 0.001), bucketed by an attribute and a salt.
fn serve_fields(
    l: L,
    p: &str,
    legend: &str,
    serve: &ServeDraft,
    variants: &[&str],
    errors: &Errors,
) -> Markup {
    let mut rows: Vec<(String, String)> = serve.weights.clone();
    for v in variants {
        if !rows.iter().any(|(w, _)| w == v) {
            rows.push((v.to_string(), String::new()));
        }
    }
    let weights = format!("{p}.rollout.weights");
    let slug = p.replace(['[', ']', '.'], "-");
    html! {
        fieldset.serve #(format!("serve-{slug}")) {
            legend { (legend) }
            (errors.at(p))
            label {
                span { (l.t("edit.serve_kind")) }
                select name=(format!("{p}.kind")) {
                    option value="variant" selected[serve.kind != "rollout"] { (l.t("edit.serve_variant")) }
                    option value="rollout" selected[serve.kind == "rollout"] { (l.t("edit.serve_rollout")) }
                }
            }
            (variant_select(l.t("edit.variant"), &format!("{p}.variant"), &serve.variant, variants, errors, true, true))
            fieldset.rollout {
                legend { (l.t("edit.weights")) }
                (errors.at(&format!("{p}.rollout")))
                (errors.at(&weights))
                table.edit {
                    tbody {
                        @for (k, (variant, weight)) in rows.iter().enumerate() {
                            tr {
                                th scope="row" { span.key { (variant) } }
                                td {
                                    input type="hidden" name=(format!("{weights}[{k}].variant")) value=(variant);
                                    (cell(errors, &l.f("edit.weight_of", &[("variant", variant), ("serve", legend)]), &format!("{weights}[{k}].weight"), weight,
                                        InputExtra { kind: "number", step: Some("0.001"), min: Some("0"), max: Some("100"), ..Default::default() }))
                                    (errors.at(&format!("{weights}[{k}].variant")))
                                }
                                td { "%" }
                            }
                        }
                    }
                }
                div.grid {
                    (super::flag::text_input(errors, l.t("edit.bucket_by"), &format!("{p}.rollout.bucket_by"), &serve.bucket_by, InputExtra { placeholder: Some("targetingKey"), ..Default::default() }))
                    (super::flag::text_input(errors, l.t("edit.salt"), &format!("{p}.rollout.salt"), &serve.salt, InputExtra { placeholder: Some(l.t("edit.salt_default")), ..Default::default() }))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Fields {
        Fields::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn en() -> L {
        L::new(crate::i18n::Lang::En)
    }

    fn pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_move_button_swaps_a_rule_with_its_neighbour() {
        let posted = pairs(&[
            ("action", "down:1"),
            ("rules[1].id", "b"),
            ("rules[1].conditions[0].attribute", "plan"),
            ("rules[2].id", "c"),
            ("rules[2].serve.variant", "on"),
            ("rules[10].id", "k"),
            ("rules[0].id", "a"),
        ]);
        let moved = with_rule_moved(posted.clone());
        let value = |name: &str| {
            moved
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(value("rules[2].id"), Some("b"));
        assert_eq!(value("rules[2].conditions[0].attribute"), Some("plan"));
        assert_eq!(value("rules[1].id"), Some("c"));
        assert_eq!(value("rules[1].serve.variant"), Some("on"));
        assert_eq!(
            value("rules[10].id"),
            Some("k"),
            "rules[1] is not rules[10]"
        );
        assert_eq!(value("rules[0].id"), Some("a"));
        let up = with_rule_moved(pairs(&[("action", "up:2"), ("rules[2].id", "c")]));
        assert_eq!(up[1], ("rules[1].id".to_string(), "c".to_string()));
        for untouched in ["preview", "save", "up:0", "up:x", "left:1"] {
            let p = pairs(&[("action", untouched), ("rules[0].id", "a")]);
            assert_eq!(with_rule_moved(p.clone()), p, "{untouched}");
        }
    }

    #[test]
    fn blank_and_removed_rows_are_dropped_and_the_rest_renumbered() {
        let f = form(&[
            ("enabled", "1"),
            ("off_variant", "off"),
            ("rules[0].id", "rule-1"),
            ("rules[0].remove", "1"),
            ("rules[0].serve.kind", "variant"),
            ("rules[0].serve.variant", "on"),
            ("rules[1].id", ""),
            ("rules[1].conditions[0].attribute", "plan"),
            ("rules[1].conditions[0].operator", "in"),
            ("rules[1].conditions[0].kind", "number"),
            ("rules[1].conditions[0].values", "1\r\n2.5\r\n"),
            ("rules[1].conditions[1].attribute", ""),
            ("rules[1].conditions[1].operator", "in"),
            ("rules[1].conditions[2].operator", "segment"),
            ("rules[1].conditions[2].segment", "beta"),
            ("rules[1].conditions[2].negate", "1"),
            ("rules[1].serve.kind", "rollout"),
            ("rules[1].serve.rollout.weights[0].variant", "on"),
            ("rules[1].serve.rollout.weights[0].weight", "12.5"),
            ("rules[1].serve.rollout.weights[1].variant", "off"),
            ("rules[1].serve.rollout.weights[1].weight", "87.5"),
            ("rules[2].id", ""),
            ("rules[2].serve.kind", "variant"),
            ("rules[2].serve.variant", ""),
            ("targets[0].variant", "on"),
            ("targets[0].values", "user-1\nuser-2"),
            ("targets[1].variant", "on"),
            ("targets[1].values", " "),
            ("default.kind", "variant"),
            ("default.variant", "off"),
        ]);
        let config = ConfigDraft::parse(&f).to_config(en()).expect("reads");
        assert!(config.enabled);
        assert_eq!(
            config.rules.len(),
            1,
            "rule-1 removed, the blank rule dropped"
        );
        let rule = &config.rules[0];
        assert_eq!(
            serde_json::to_value(&rule.conditions).unwrap(),
            serde_json::json!([
                {"attribute": "plan", "operator": "in", "values": [1, 2.5]},
                {"segment": "beta", "negate": true},
            ])
        );
        assert_eq!(
            serde_json::to_value(&rule.serve).unwrap(),
            serde_json::json!({"rollout": {"weights": [
                {"variant": "on", "weight": 12500}, {"variant": "off", "weight": 87500}]}})
        );
        assert_eq!(config.targets.len(), 1);
        assert_eq!(config.targets[0].values, vec!["user-1", "user-2"]);
        // And back: the draft of the config is what the form shows.
        assert_eq!(ConfigDraft::of(&config).to_config(en()).unwrap(), config);
    }

    #[test]
    fn values_that_do_not_read_are_errors_at_their_path() {
        let f = form(&[
            ("rules[0].conditions[0].attribute", "age"),
            ("rules[0].conditions[0].operator", "gte"),
            ("rules[0].conditions[0].values", "eighteen"),
            ("rules[0].serve.kind", "variant"),
            ("rules[0].serve.variant", "on"),
            ("default.kind", "rollout"),
            ("default.rollout.weights[0].variant", "on"),
            ("default.rollout.weights[0].weight", "1.0001"),
        ]);
        let errors = ConfigDraft::parse(&f).to_config(en()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "rules[0].conditions[0].values[0]",
                "default.rollout.weights[0].weight"
            ]
        );
    }

    #[test]
    fn weights_read_in_percent_to_thousandths() {
        assert_eq!(parse_weight("30"), Some(30_000));
        assert_eq!(parse_weight("12.345"), Some(12_345));
        assert_eq!(parse_weight("0.5"), Some(500));
        assert_eq!(parse_weight(".5"), Some(500));
        assert_eq!(parse_weight("100"), Some(100_000));
        assert_eq!(parse_weight("1.2345"), None, "finer than the unit");
        assert_eq!(parse_weight("-1"), None);
        assert_eq!(parse_weight("abc"), None);
        assert_eq!(parse_weight("."), None);
        assert_eq!(parse_weight("99999999999"), None);
        assert_eq!(weight_text(12_500), "12.5");
    }
}
