//! Who moves: for each serve an edit changes (the default, and each rule kept by its id), the
//! exact share of the subjects it serves that would get another variant, from the bucket
//! ranges of the old and new weights (`hata_core::movement::compare_serves`), and the moves
//! by (from, to). A new salt or bucket-by attribute rehashes everyone, which is said instead.

use hata_core::model::{FlagConfig, Serve};
use hata_core::movement::{compare_serves, Movement};
use maud::{html, Markup};

use crate::flag::percent;
use crate::i18n::L;

/// Which serve of a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Default,
    Rule(String),
}

/// The serves `new` changes against `old`, with what each change moves. Rules are matched
/// by id (a new rule serves subjects no rule served before: nothing to compare); serves whose
/// weights do not add up are left out (validation reports them).
pub fn changes(old: &FlagConfig, new: &FlagConfig) -> Vec<(Place, Movement)> {
    let mut out = Vec::new();
    let mut compare = |place: Place, a: &Serve, b: &Serve| {
        if a != b {
            if let Ok(m) = compare_serves(a, b) {
                out.push((place, m));
            }
        }
    };
    compare(Place::Default, &old.default, &new.default);
    for rule in &new.rules {
        if let Some(before) = old
            .rules
            .iter()
            .find(|r| !rule.id.is_empty() && r.id == rule.id)
        {
            compare(Place::Rule(rule.id.clone()), &before.serve, &rule.serve);
        }
    }
    out
}

/// Whether saving `new` over `old` moves anyone (and so is shown before it is saved).
pub fn moves_anyone(changes: &[(Place, Movement)]) -> bool {
    changes.iter().any(|(_, m)| m.rehashed || m.moved > 0)
}

/// The "who moves" section.
pub fn section(l: L, changes: &[(Place, Movement)], enabled_change: Option<bool>) -> Markup {
    html! {
        section.card #who-moves aria-labelledby="who-moves-title" {
            h2 #who-moves-title { (l.t("edit.moves_title")) }
            @if let Some(on) = enabled_change {
                p.notice { (if on { l.t("edit.moves_turn_on") } else { l.t("edit.moves_turn_off") }) }
            }
            @if changes.is_empty() {
                p #moves-none { (l.t("edit.moves_none")) }
            }
            ul {
                @for (place, m) in changes {
                    @let place_text = match place {
                        Place::Default => l.t("edit.moves_default").to_string(),
                        Place::Rule(id) => l.f("edit.moves_rule", &[("rule", id)]),
                    };
                    li.moves data-place=(match place { Place::Default => "default".to_string(), Place::Rule(id) => format!("rule:{id}") }) {
                        strong { (place_text) } ": "
                        @if m.rehashed {
                            (l.t("edit.moves_rehashed"))
                        } @else {
                            span.share { (l.f("edit.moves_share", &[("share", &percent(m.share_millipercent()))])) }
                            @if !m.moves.is_empty() {
                                ul {
                                    @for mv in &m.moves {
                                        li { span.key { (mv.from) " → " (mv.to) } ": " (percent(mv.buckets)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hata_core::model::{Rollout, Rule, Weight};

    fn config(default: Serve, rules: Vec<(&str, Serve)>) -> FlagConfig {
        FlagConfig {
            enabled: true,
            off_variant: "off".into(),
            prerequisites: vec![],
            targets: vec![],
            rules: rules
                .into_iter()
                .map(|(id, serve)| Rule {
                    id: id.into(),
                    description: None,
                    conditions: vec![],
                    serve,
                })
                .collect(),
            default,
        }
    }

    fn rollout(on: u32) -> Serve {
        Serve::Rollout(Rollout {
            bucket_by: None,
            salt: None,
            weights: vec![
                Weight {
                    variant: "on".into(),
                    weight: on,
                },
                Weight {
                    variant: "off".into(),
                    weight: 100_000 - on,
                },
            ],
        })
    }

    #[test]
    fn a_rollout_from_off_to_thirty_percent_moves_thirty_percent() {
        let old = config(
            Serve::Variant("off".into()),
            vec![("rule-1", rollout(10_000))],
        );
        let new = config(
            rollout(30_000),
            vec![("rule-1", rollout(20_000)), ("", rollout(50_000))],
        );
        let found = changes(&old, &new);
        assert_eq!(
            found.len(),
            2,
            "the default and rule-1; the new rule has nothing to compare"
        );
        assert_eq!(found[0].0, Place::Default);
        assert_eq!(found[0].1.moved, 30_000);
        assert_eq!(found[1].0, Place::Rule("rule-1".into()));
        assert_eq!(found[1].1.moved, 10_000);
        assert!(moves_anyone(&found));
        assert!(!moves_anyone(&changes(&old, &old)));
    }
}
