//! Re-applying an environment edit after a conflict (412) without undoing the other person's
//! edit: a three-way merge of the configuration, part by part (on/off, the variant served
//! when off, prerequisites, targets, rules, the default serve), between what the form was
//! opened on (`base`), what the user made of it (`mine`) and what is stored now (`theirs`).
//!
//! A part only one side changed takes that side's value; a part both changed alike is that
//! value; a part both changed differently keeps the user's and is named, so the page can say
//! which of theirs the re-apply would replace. Nothing is saved here: the merged form is shown
//! for the user to check and re-apply.

use hata_core::model::FlagConfig;

/// A part of an environment's configuration, as the merge tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Enabled,
    OffVariant,
    Prerequisites,
    Targets,
    Rules,
    Default,
}

impl Part {
    /// The catalogue key of its label.
    pub fn label_key(self) -> &'static str {
        match self {
            Part::Enabled => "edit.state",
            Part::OffVariant => "flag.off_variant",
            Part::Prerequisites => "flag.prerequisites",
            Part::Targets => "flag.targets",
            Part::Rules => "flag.rules",
            Part::Default => "flag.default",
        }
    }
}

/// The merged configuration, and what it took from whom.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub config: FlagConfig,
    /// Parts only the other side changed: their values are in `config`.
    pub kept_theirs: Vec<Part>,
    /// Parts both changed differently: the user's values are in `config`.
    pub both: Vec<Part>,
}

/// Merges `mine` and `theirs`, both made from `base`.
pub fn merge(base: &FlagConfig, mine: &FlagConfig, theirs: &FlagConfig) -> Merged {
    let mut merged = Merged {
        config: mine.clone(),
        kept_theirs: Vec::new(),
        both: Vec::new(),
    };
    macro_rules! part {
        ($field:ident, $part:expr) => {
            if theirs.$field != base.$field && theirs.$field != mine.$field {
                if mine.$field == base.$field {
                    merged.config.$field = theirs.$field.clone();
                    merged.kept_theirs.push($part);
                } else {
                    merged.both.push($part);
                }
            }
        };
    }
    part!(enabled, Part::Enabled);
    part!(off_variant, Part::OffVariant);
    part!(prerequisites, Part::Prerequisites);
    part!(targets, Part::Targets);
    part!(rules, Part::Rules);
    part!(default, Part::Default);
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(v: serde_json::Value) -> FlagConfig {
        serde_json::from_value(v).expect("config")
    }

    fn base() -> FlagConfig {
        config(json!({
            "enabled": false, "off_variant": "off",
            "targets": [{"variant": "on", "values": ["ann"]}],
            "rules": [],
            "default": {"variant": "off"},
        }))
    }

    #[test]
    fn their_edit_of_a_part_i_did_not_touch_is_kept() {
        let base = base();
        let mut mine = base.clone();
        mine.default = config(json!({"default": {"rollout": {"weights": [
            {"variant": "on", "weight": 30000}, {"variant": "off", "weight": 70000}]}}}))
        .default;
        let mut theirs = base.clone();
        theirs.enabled = true;
        theirs.targets = Vec::new();
        let merged = merge(&base, &mine, &theirs);
        assert!(merged.config.enabled, "their switch kept");
        assert!(merged.config.targets.is_empty(), "their targets kept");
        assert_eq!(merged.config.default, mine.default, "my rollout kept");
        assert_eq!(merged.kept_theirs, [Part::Enabled, Part::Targets]);
        assert!(merged.both.is_empty());
    }

    #[test]
    fn a_part_both_changed_keeps_mine_and_is_named() {
        let base = base();
        let mut mine = base.clone();
        mine.off_variant = "on".into();
        mine.enabled = true;
        let mut theirs = base.clone();
        theirs.off_variant = "other".into();
        theirs.enabled = true;
        let merged = merge(&base, &mine, &theirs);
        assert_eq!(merged.config.off_variant, "on");
        assert_eq!(
            merged.both,
            [Part::OffVariant],
            "the same change is no conflict"
        );
        assert!(merged.kept_theirs.is_empty());
        assert_eq!(merged.config, mine);
    }

    #[test]
    fn nothing_of_theirs_changed_leaves_mine_alone() {
        let base = base();
        let mut mine = base.clone();
        mine.rules = config(json!({"rules": [{"conditions": [
            {"attribute": "country", "operator": "in", "values": ["jp"]}],
            "serve": {"variant": "on"}}]}))
        .rules;
        let merged = merge(&base, &mine, &base);
        assert_eq!(merged.config, mine);
        assert!(merged.kept_theirs.is_empty() && merged.both.is_empty());
    }
}
