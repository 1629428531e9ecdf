//! The SDK rule set of one environment as bytes: the `GET /api/v1/sdk/config` body and, around
//! the same buffer, its SSE event for `GET /api/v1/sdk/stream`. With 10,000 flags it is
//! megabytes, so it is built once per revision and shared by every request and stream.
//!
//! It remembers where each flag's JSON sits, so that a write of one flag builds the next
//! revision's bytes by copying the others instead of serialising every flag again.

use std::ops::Range;

use bytes::Bytes;
use hata_core::model::{Flag, Segment};
use hata_core::snapshot::Spliced;
use serde::Serialize;

/// The SDK rule set (`GET /api/v1/sdk/config`): the spec's shapes, this environment only. The
/// documented shape of [`SdkBody`]'s JSON, which is written piecewise in this field order.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SdkConfig<'a> {
    project: &'a str,
    environment: &'a str,
    revision: i64,
    etag: &'a str,
    flags: Vec<Flag>,
    segments: &'a [Segment],
}

/// What names one revision of one environment's rule set.
pub struct Header<'a> {
    pub project: &'a str,
    pub environment: &'a str,
    pub id: crate::RuleSetId,
    /// `id` as an entity tag (`RuleSetId::etag`).
    pub etag: &'a str,
}

pub struct SdkBody {
    /// `id: …\nevent: config\ndata: <config>\n\n`
    event: Bytes,
    /// Where the config sits in `event`.
    config: Range<usize>,
    /// Where each flag's JSON sits in `event`, in the order of the `flags` array.
    flags: Vec<Range<usize>>,
    /// Where the part after the flags (`],"segments":[…]}`) starts in `event`.
    tail: usize,
}

impl SdkBody {
    /// Serialises `flags` (only those live in the environment, each with only its config)
    /// and `segments`.
    pub fn build<'f>(
        header: &Header<'_>,
        flags: impl IntoIterator<Item = &'f Flag>,
        segments: &[Segment],
    ) -> serde_json::Result<SdkBody> {
        let mut buf = Vec::new();
        let config_start = write_head(&mut buf, header)?;
        let mut spans = Vec::new();
        for flag in flags {
            let Some(sdk_flag) = for_environment(flag, header.environment) else {
                continue;
            };
            if !spans.is_empty() {
                buf.push(b',');
            }
            let start = buf.len();
            serde_json::to_writer(&mut buf, &sdk_flag)?;
            spans.push(start..buf.len());
        }
        let tail = buf.len();
        buf.extend_from_slice(b"],\"segments\":");
        serde_json::to_writer(&mut buf, segments)?;
        buf.push(b'}');
        Ok(SdkBody::finish(buf, config_start, spans, tail))
    }

    /// The next revision's bytes after a write of one flag: it leaves the `flags` array at
    /// `spliced.removed` and joins it at `spliced.inserted` as `flag` (see
    /// `Snapshot::with_flag`, whose order this array shares); every other flag's bytes are
    /// copied. `None` if `spliced` does not fit these bytes, or names no `flag` to insert.
    pub fn with_flag(
        &self,
        header: &Header<'_>,
        spliced: Spliced,
        flag: Option<&Flag>,
    ) -> serde_json::Result<Option<SdkBody>> {
        let count = (self.flags.len() + usize::from(spliced.inserted.is_some()))
            .checked_sub(usize::from(spliced.removed.is_some()));
        let Some(count) = count else {
            return Ok(None);
        };
        let new_flag = match spliced.inserted {
            Some(at) if at < count => {
                match flag.and_then(|f| for_environment(f, header.environment)) {
                    Some(f) => Some((at, f)),
                    None => return Ok(None),
                }
            }
            Some(_) => return Ok(None),
            None => None,
        };
        if spliced.removed.is_some_and(|i| i >= self.flags.len()) {
            return Ok(None);
        }
        let mut buf = Vec::with_capacity(self.event.len() + 1024);
        let config_start = write_head(&mut buf, header)?;
        let mut spans = Vec::with_capacity(count);
        let mut kept = self
            .flags
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != spliced.removed)
            .map(|(_, span)| span);
        for i in 0..count {
            if i > 0 {
                buf.push(b',');
            }
            let start = buf.len();
            match &new_flag {
                Some((at, f)) if *at == i => serde_json::to_writer(&mut buf, f)?,
                _ => match kept.next() {
                    Some(span) => buf.extend_from_slice(&self.event[span.clone()]),
                    None => return Ok(None),
                },
            }
            spans.push(start..buf.len());
        }
        let tail = buf.len();
        buf.extend_from_slice(&self.event[self.tail..self.config.end]);
        Ok(Some(SdkBody::finish(buf, config_start, spans, tail)))
    }

    fn finish(
        mut buf: Vec<u8>,
        config_start: usize,
        flags: Vec<Range<usize>>,
        tail: usize,
    ) -> SdkBody {
        let config_end = buf.len();
        // Compact JSON has no raw newlines, so the whole document fits one `data:` line.
        buf.extend_from_slice(b"\n\n");
        SdkBody {
            event: Bytes::from(buf),
            config: config_start..config_end,
            flags,
            tail,
        }
    }

    /// The SSE event (`id`, `event: config`, `data`).
    pub fn event(&self) -> Bytes {
        self.event.clone()
    }

    /// The `sdk/config` body: a slice of the event, not a copy.
    pub fn config(&self) -> Bytes {
        self.event.slice(self.config.clone())
    }
}

/// Writes the SSE lines before `data:` and the config up to the opening `[` of `flags`;
/// returns where the config starts.
fn write_head(buf: &mut Vec<u8>, h: &Header<'_>) -> serde_json::Result<usize> {
    use std::io::Write as _;
    let io = serde_json::Error::io;
    write!(buf, "id: {}\nevent: config\ndata: ", h.id).map_err(io)?;
    let start = buf.len();
    buf.extend_from_slice(b"{\"project\":");
    serde_json::to_writer(&mut *buf, h.project)?;
    buf.extend_from_slice(b",\"environment\":");
    serde_json::to_writer(&mut *buf, h.environment)?;
    write!(buf, ",\"revision\":{},\"etag\":", h.id.revision).map_err(io)?;
    serde_json::to_writer(&mut *buf, h.etag)?;
    buf.extend_from_slice(b",\"flags\":[");
    Ok(start)
}

/// The flag as the SDK rule set shows it: only this environment's config; `None` when it is
/// archived or not configured here (not served).
fn for_environment(flag: &Flag, environment: &str) -> Option<Flag> {
    if flag.archived {
        return None;
    }
    let config = flag.environments.get(environment)?.clone();
    let mut f = Flag {
        environments: Default::default(),
        ..flag.clone()
    };
    f.environments.insert(environment.to_string(), config);
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flag(v: serde_json::Value) -> Flag {
        serde_json::from_value(v).expect("flag")
    }

    fn header(revision: i64, etag: &str) -> Header<'_> {
        Header {
            project: "p",
            environment: "dev",
            id: crate::RuleSetId::new(7, revision),
            etag,
        }
    }

    fn flags() -> Vec<Flag> {
        vec![
            flag(
                json!({"key": "a", "type": "boolean", "environments": {"dev": {"enabled": true}, "prod": {}}}),
            ),
            flag(
                json!({"key": "b", "type": "boolean", "archived": true, "environments": {"dev": {}}}),
            ),
            flag(
                json!({"key": "c", "type": "string", "variants": [{"key": "x", "value": "ü\"x"}],
                        "environments": {"dev": {"enabled": false, "off_variant": "x"}}}),
            ),
            flag(json!({"key": "d", "type": "boolean", "environments": {"prod": {}}})),
            flag(
                json!({"key": "e", "type": "number", "variants": [{"key": "n", "value": 1.5}],
                        "environments": {"dev": {"off_variant": "n"}}}),
            ),
        ]
    }

    #[test]
    fn the_bytes_are_the_documented_shape_and_the_event_wraps_them() {
        let segments: Vec<Segment> =
            vec![serde_json::from_value(json!({"key": "s", "included": ["u"]})).expect("segment")];
        let all = flags();
        let body = SdkBody::build(&header(3, "\"7.3\""), &all, &segments).expect("builds");
        let expected = SdkConfig {
            project: "p",
            environment: "dev",
            revision: 3,
            etag: "\"7.3\"",
            flags: all
                .iter()
                .filter_map(|f| for_environment(f, "dev"))
                .collect(),
            segments: &segments,
        };
        assert_eq!(
            body.config(),
            serde_json::to_vec(&expected).expect("serialises")
        );
        let event = body.event();
        assert!(event.starts_with(b"id: 7.3\nevent: config\ndata: {"));
        assert!(event.ends_with(b"}\n\n"));
        assert_eq!(body.flags.len(), 3, "a, c and e are live in dev");
    }

    /// `flags` after a write of `new` (in place of its earlier version, or added), by key.
    fn written(flags: &[Flag], new: &Flag) -> Vec<Flag> {
        let mut after = flags.to_vec();
        match after.iter_mut().find(|f| f.key == new.key) {
            Some(f) => *f = new.clone(),
            None => after.push(new.clone()),
        }
        after.sort_by(|a, b| a.key.cmp(&b.key));
        after
    }

    /// `body.with_flag` for `new` against a full build of `before` with `new` in place (or
    /// added), at revision `revision`.
    fn check_with_flag(body: &SdkBody, before: &[Flag], new: &Flag, revision: i64) -> SdkBody {
        let live = |flags: &[Flag]| -> Vec<String> {
            flags
                .iter()
                .filter(|f| for_environment(f, "dev").is_some())
                .map(|f| f.key.clone())
                .collect()
        };
        let after = written(before, new);
        let spliced = Spliced {
            removed: live(before).iter().position(|k| *k == new.key),
            inserted: live(&after).iter().position(|k| *k == new.key),
        };
        let etag = format!("\"7.{revision}\"");
        let with = body
            .with_flag(&header(revision, &etag), spliced, Some(new))
            .expect("serialises")
            .expect("fits");
        let full = SdkBody::build(&header(revision, &etag), &after, &[]).expect("builds");
        assert_eq!(with.event(), full.event(), "writing {}", new.key);
        assert_eq!(with.config(), full.config());
        assert_eq!(with.flags, full.flags);
        assert_eq!(with.tail, full.tail);
        with
    }

    #[test]
    fn writing_a_flag_gives_the_bytes_a_full_build_gives() {
        let before = flags();
        let body = SdkBody::build(&header(3, "\"7.3\""), &before, &[]).expect("builds");
        // Each live flag (a, c, e) replaced by a longer and a shorter version of itself;
        // flags joining before, between and after; leaving (archived, or not configured
        // here); and a write of a flag that is not live before or after. Across a revision
        // whose head differs in length ("7.9" → "7.10").
        let writes = [
            json!({"key": "a", "type": "boolean", "version": 2, "description": "longer than before",
                   "environments": {"dev": {"enabled": false}, "prod": {}}}),
            json!({"key": "c", "type": "string", "variants": [{"key": "x", "value": ""}],
                   "environments": {"dev": {"off_variant": "x"}}}),
            json!({"key": "e", "type": "number", "variants": [{"key": "n", "value": 2}],
                   "environments": {"dev": {"off_variant": "n", "enabled": true}}}),
            json!({"key": "0", "type": "boolean", "environments": {"dev": {"enabled": true}}}),
            json!({"key": "bb", "type": "boolean", "environments": {"dev": {}}}),
            json!({"key": "f", "type": "boolean", "environments": {"dev": {}}}),
            json!({"key": "b", "type": "boolean", "environments": {"dev": {}}}),
            json!({"key": "c", "type": "string", "archived": true, "variants": [{"key": "x", "value": ""}],
                   "environments": {"dev": {"off_variant": "x"}}}),
            json!({"key": "a", "type": "boolean", "environments": {"prod": {}}}),
            json!({"key": "d", "type": "boolean", "description": "still prod only",
                   "environments": {"prod": {}}}),
        ];
        for new in writes {
            let new = flag(new);
            let once = check_with_flag(&body, &before, &new, 10);
            // And again on top of the result (the spans it computed are right).
            check_with_flag(&once, &written(&before, &new), &new, 11);
        }
    }

    #[test]
    fn the_last_flag_can_leave_and_the_first_can_join() {
        let only = vec![flag(
            json!({"key": "a", "type": "boolean", "environments": {"dev": {}}}),
        )];
        let body = SdkBody::build(&header(1, "\"7.1\""), &only, &[]).expect("builds");
        let gone = flag(
            json!({"key": "a", "type": "boolean", "archived": true, "environments": {"dev": {}}}),
        );
        let empty = check_with_flag(&body, &only, &gone, 2);
        assert!(empty.config().windows(10).any(|w| w == b"\"flags\":[]"));
        check_with_flag(&empty, &[gone], &only[0], 3);
    }
}
