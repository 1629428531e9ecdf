//! The OFREP success shape, and success bodies written from pieces serialised once per rule set.
//!
//! [`OfrepEvaluationSuccess`] declares the shape once: the server's OpenAPI document derives
//! its schema from it, and a test checks that the pieces write exactly what serde writes for it.
//!
//! An evaluation's `key`, `value`, `variant` and `flagVersion` depend only on the flag and the
//! variant served, not on the context. serde_json escapes every string byte by byte, and a
//! bulk answer of 100 flags spent half of its instructions doing that again for every request.
//! So each (flag, variant) keeps its JSON before and after the `reason`, and a request writes
//! those pieces around the few parts that do depend on it (reason, rule id, notes).

use std::sync::Arc;

use hata_core::evaluate::{Evaluation, Reason};
use hata_core::snapshot::{Snapshot, Spliced};
use serde::Serialize;

/// OFREP `evaluationSuccess`, as hata answers it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OfrepEvaluationSuccess {
    pub key: String,
    pub value: serde_json::Value,
    pub reason: OfrepReason,
    pub variant: String,
    pub metadata: OfrepFlagMetadata,
}

/// Per-flag metadata: `flagVersion` always, `ruleId` when a rule decided; `hataReason`
/// (`PREREQUISITE_FAILED`) and `hataNote` (`bucket_by attribute missing`) when they apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct OfrepFlagMetadata {
    pub flag_version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hata_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hata_note: Option<String>,
}

/// OpenFeature reasons as OFREP reports them (`PREREQUISITE_FAILED` goes out as `DISABLED`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OfrepReason {
    Static,
    Default,
    TargetingMatch,
    Split,
    Disabled,
    Error,
}

impl OfrepReason {
    /// OpenFeature has no reason for a failed prerequisite: it is `DISABLED`, with hata's own
    /// reason in the metadata (`hataReason`).
    pub fn of(reason: Reason) -> OfrepReason {
        match reason {
            Reason::Static => OfrepReason::Static,
            Reason::Default => OfrepReason::Default,
            Reason::TargetingMatch => OfrepReason::TargetingMatch,
            Reason::Split => OfrepReason::Split,
            Reason::Disabled | Reason::PrerequisiteFailed => OfrepReason::Disabled,
            Reason::Error => OfrepReason::Error,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OfrepReason::Static => "STATIC",
            OfrepReason::Default => "DEFAULT",
            OfrepReason::TargetingMatch => "TARGETING_MATCH",
            OfrepReason::Split => "SPLIT",
            OfrepReason::Disabled => "DISABLED",
            OfrepReason::Error => "ERROR",
        }
    }
}

/// `hataReason` of a failed prerequisite.
const PREREQUISITE_FAILED: &str = "PREREQUISITE_FAILED";
/// `hataNote` of a rollout whose bucket-by attribute was missing.
const BUCKET_BY_MISSING: &str = "bucket_by attribute missing";

impl OfrepEvaluationSuccess {
    /// The success answer of `e`; `None` for an error result.
    pub fn of(e: &Evaluation<'_>) -> Option<OfrepEvaluationSuccess> {
        if e.error_code.is_some() || e.reason == Reason::Error {
            return None;
        }
        Some(OfrepEvaluationSuccess {
            key: e.key.to_string(),
            value: e.value.clone(),
            reason: OfrepReason::of(e.reason),
            variant: e.variant.to_string(),
            metadata: OfrepFlagMetadata {
                flag_version: e.flag_version,
                rule_id: e.rule_id.map(str::to_string),
                hata_reason: (e.reason == Reason::PrerequisiteFailed)
                    .then(|| PREREQUISITE_FAILED.to_string()),
                hata_note: e.bucket_by_missing.then(|| BUCKET_BY_MISSING.to_string()),
            },
        })
    }
}

/// The pieces of one (flag, variant): `head` + reason + `tail` + metadata extras + `}}`.
struct Pieces {
    /// `{"key":…,"value":…,"reason":"`
    head: Box<[u8]>,
    /// `","variant":…,"metadata":{"flagVersion":…`
    tail: Box<[u8]>,
}

/// Per flag of a snapshot (in its order), per variant (in the flag's order).
pub struct OfrepPieces {
    flags: Vec<Arc<[Pieces]>>,
}

impl OfrepPieces {
    pub fn build(snapshot: &Snapshot) -> OfrepPieces {
        OfrepPieces {
            flags: snapshot
                .flags()
                .map(|flag| flag_pieces(flag.key(), flag.version(), flag.variants()))
                .collect(),
        }
    }

    /// These pieces after a write of one flag: `snapshot` is the snapshot after it and
    /// `spliced` where the flag left and joined (both from `Snapshot::with_flag`). The
    /// written flag's pieces are built again; the others are shared.
    pub fn with_flag(&self, snapshot: &Snapshot, spliced: Spliced) -> Option<OfrepPieces> {
        let mut flags = self.flags.clone();
        if let Some(i) = spliced.removed {
            if i >= flags.len() {
                return None;
            }
            flags.remove(i);
        }
        if let Some(i) = spliced.inserted {
            let flag = snapshot.flags().nth(i)?;
            if i > flags.len() {
                return None;
            }
            flags.insert(i, flag_pieces(flag.key(), flag.version(), flag.variants()));
        }
        (flags.len() == snapshot.len()).then_some(OfrepPieces { flags })
    }

    /// Appends the OFREP `evaluationSuccess` of `e` (which must come from the snapshot these
    /// pieces were built from); `false`, writing nothing, for an error result.
    pub fn write_success(&self, e: &Evaluation<'_>, out: &mut Vec<u8>) -> bool {
        let Some(p) = e
            .position
            .and_then(|(flag, variant)| self.flags.get(flag)?.get(variant))
        else {
            return false;
        };
        out.extend_from_slice(&p.head);
        out.extend_from_slice(OfrepReason::of(e.reason).as_str().as_bytes());
        out.extend_from_slice(&p.tail);
        if let Some(rule) = e.rule_id {
            out.extend_from_slice(b",\"ruleId\":");
            json_string(rule, out);
        }
        if e.reason == Reason::PrerequisiteFailed {
            out.extend_from_slice(b",\"hataReason\":");
            json_string(PREREQUISITE_FAILED, out);
        }
        if e.bucket_by_missing {
            out.extend_from_slice(b",\"hataNote\":");
            json_string(BUCKET_BY_MISSING, out);
        }
        out.extend_from_slice(b"}}");
        true
    }
}

fn flag_pieces<'a>(
    key: &str,
    version: i64,
    variants: impl Iterator<Item = (&'a str, &'a serde_json::Value)>,
) -> Arc<[Pieces]> {
    variants
        .map(|(variant, value)| {
            let mut head = b"{\"key\":".to_vec();
            json_string(key, &mut head);
            head.extend_from_slice(b",\"value\":");
            // A `Value` always serialises.
            let _ = serde_json::to_writer(&mut head, value);
            head.extend_from_slice(b",\"reason\":\"");
            let mut tail = b"\",\"variant\":".to_vec();
            json_string(variant, &mut tail);
            tail.extend_from_slice(format!(",\"metadata\":{{\"flagVersion\":{version}").as_bytes());
            Pieces {
                head: head.into(),
                tail: tail.into(),
            }
        })
        .collect()
}

fn json_string(s: &str, out: &mut Vec<u8>) {
    // Serialising a `str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hata_core::evaluate::Context;
    use hata_core::model::Flag;
    use serde_json::{json, Value};

    fn snapshot(flags: Value) -> Snapshot {
        let flags: Vec<Flag> = serde_json::from_value(flags).expect("flags");
        let flags: Vec<Flag> = flags.into_iter().map(normalized).collect();
        Snapshot::compile("dev", &flags, &[]).expect("compiles")
    }

    fn normalized(mut f: Flag) -> Flag {
        f.normalize(["dev"]);
        f
    }

    fn answer(pieces: &OfrepPieces, snap: &Snapshot, key: &str, context: Value) -> Value {
        let ctx = context.as_object().cloned().unwrap_or_default();
        let e = snap.evaluate(key, &Context::new(&ctx));
        let mut out = Vec::new();
        assert!(pieces.write_success(&e, &mut out), "{key} evaluates");
        // Byte for byte what serde writes for the declared shape.
        let declared = OfrepEvaluationSuccess::of(&e).expect("a success");
        assert_eq!(
            String::from_utf8_lossy(&out),
            serde_json::to_string(&declared).expect("serialises"),
            "{key}"
        );
        serde_json::from_slice(&out).expect("the pieces make valid JSON")
    }

    #[test]
    fn pieces_make_the_ofrep_success_shape() {
        let flags = json!([
            {"key": "off", "type": "boolean", "version": 3, "environments": {"dev": {"enabled": false, "off_variant": "off"}}},
            {"key": "needs", "type": "boolean", "version": 1, "environments": {"dev": {"enabled": true, "off_variant": "off",
                "prerequisites": [{"flag": "off", "variants": ["on"]}], "default": {"variant": "on"}}}},
            {"key": "say", "type": "string", "version": 7,
             "variants": [{"key": "q", "value": "\"quoted\" ü"}, {"key": "r", "value": "r"}],
             "environments": {"dev": {"enabled": true, "off_variant": "q",
                "rules": [{"id": "pro", "conditions": [{"attribute": "plan", "operator": "in", "values": ["pro"]}],
                           "serve": {"variant": "r"}}],
                "default": {"rollout": {"bucket_by": "team", "weights": [{"variant": "q", "weight": 100000}, {"variant": "r", "weight": 0}]}}}}}
        ]);
        let snap = snapshot(flags);
        let pieces = OfrepPieces::build(&snap);
        assert_eq!(
            answer(&pieces, &snap, "off", json!({})),
            json!({"key": "off", "value": false, "reason": "DISABLED", "variant": "off",
                   "metadata": {"flagVersion": 3}})
        );
        assert_eq!(
            answer(&pieces, &snap, "needs", json!({})),
            json!({"key": "needs", "value": false, "reason": "DISABLED", "variant": "off",
                   "metadata": {"flagVersion": 1, "hataReason": "PREREQUISITE_FAILED"}})
        );
        assert_eq!(
            answer(&pieces, &snap, "say", json!({"plan": "pro"})),
            json!({"key": "say", "value": "r", "reason": "TARGETING_MATCH", "variant": "r",
                   "metadata": {"flagVersion": 7, "ruleId": "pro"}})
        );
        assert_eq!(
            answer(&pieces, &snap, "say", json!({"targetingKey": "u"})),
            json!({"key": "say", "value": "\"quoted\" ü", "reason": "DEFAULT", "variant": "q",
                   "metadata": {"flagVersion": 7, "hataNote": "bucket_by attribute missing"}})
        );
        // An error writes nothing.
        let e = snap.evaluate("nope", &Context::empty());
        let mut out = Vec::new();
        assert!(!pieces.write_success(&e, &mut out));
        assert!(out.is_empty());
        assert_eq!(OfrepEvaluationSuccess::of(&e), None);
    }

    #[test]
    fn writing_a_flag_rebuilds_its_pieces_only() {
        let v1 = json!([
            {"key": "a", "type": "boolean", "version": 1, "environments": {"dev": {"enabled": true, "default": {"variant": "on"}}}},
            {"key": "b", "type": "boolean", "version": 1, "environments": {"dev": {"enabled": true}}}
        ]);
        let before = snapshot(v1);
        let pieces = OfrepPieces::build(&before);
        let writes = [
            json!({"key": "a", "type": "boolean", "version": 2, "environments": {"dev": {"enabled": false}}}),
            json!({"key": "0", "type": "string", "version": 1, "variants": [{"key": "x", "value": "é\""}],
                   "environments": {"dev": {"enabled": true}}}),
            json!({"key": "c", "type": "boolean", "version": 1, "environments": {"dev": {"enabled": true}}}),
            json!({"key": "a", "type": "boolean", "version": 3, "archived": true, "environments": {"dev": {}}}),
        ];
        for write in writes {
            let flag: Flag = normalized(serde_json::from_value(write.clone()).expect("flag"));
            let (after, spliced) = before
                .with_flag(&flag)
                .expect("in place")
                .expect("compiles");
            let written = pieces.with_flag(&after, spliced).expect("fits");
            let fresh = OfrepPieces::build(&after);
            for key in after.flag_keys() {
                assert_eq!(
                    answer(&written, &after, key, json!({})),
                    answer(&fresh, &after, key, json!({})),
                    "{write}"
                );
            }
        }
        let a2: Flag = normalized(serde_json::from_value(json!(
            {"key": "a", "type": "boolean", "version": 2, "environments": {"dev": {"enabled": false}}}))
        .expect("flag"));
        let (after, spliced) = before.with_flag(&a2).expect("in place").expect("compiles");
        let replaced = pieces.with_flag(&after, spliced).expect("fits");
        assert_eq!(
            answer(&replaced, &after, "a", json!({}))["metadata"]["flagVersion"],
            2
        );
    }
}
