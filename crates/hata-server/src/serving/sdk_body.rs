//! The SDK rule set of one environment as bytes: the `GET /api/v1/sdk/config` body and, around
//! the same buffer, its SSE event for `GET /api/v1/sdk/stream`. With 10,000 flags it is
//! megabytes, so it is built once per revision and shared by every request and stream.
//!
//! It remembers where each flag's JSON sits, so that a write that replaced one flag builds the
//! next revision's bytes by copying the others instead of serialising every flag again.

use std::ops::Range;

use bytes::Bytes;
use hata_core::model::{Flag, Segment};
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
    pub env_id: i64,
    pub revision: i64,
    /// `"<env id>.<revision>"`, quoted.
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

    /// The next revision's bytes: the flag at `index` of the `flags` array replaced by `flag`
    /// (same key, still live here), every other byte copied.
    pub fn with_flag_replaced(
        &self,
        header: &Header<'_>,
        index: usize,
        flag: &Flag,
    ) -> serde_json::Result<Option<SdkBody>> {
        let (Some(old), Some(sdk_flag)) = (
            self.flags.get(index),
            for_environment(flag, header.environment),
        ) else {
            return Ok(None);
        };
        let mut buf = Vec::with_capacity(self.event.len() + 256);
        let config_start = write_head(&mut buf, header)?;
        let (first, last) = (self.flags[0].start, self.tail);
        // Everything before the replaced flag, shifted by the difference in head length.
        let shift_before = buf.len() as isize - first as isize;
        buf.extend_from_slice(&self.event[first..old.start]);
        let start = buf.len();
        serde_json::to_writer(&mut buf, &sdk_flag)?;
        let end = buf.len();
        let shift_after = end as isize - old.end as isize;
        buf.extend_from_slice(&self.event[old.end..last]);
        let tail = buf.len();
        buf.extend_from_slice(&self.event[last..self.config.end]);
        let spans = self
            .flags
            .iter()
            .enumerate()
            .map(|(i, r)| match i.cmp(&index) {
                std::cmp::Ordering::Less => shifted(r, shift_before),
                std::cmp::Ordering::Equal => start..end,
                std::cmp::Ordering::Greater => shifted(r, shift_after),
            })
            .collect();
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
    write!(
        buf,
        "id: {}.{}\nevent: config\ndata: ",
        h.env_id, h.revision
    )
    .map_err(io)?;
    let start = buf.len();
    buf.extend_from_slice(b"{\"project\":");
    serde_json::to_writer(&mut *buf, h.project)?;
    buf.extend_from_slice(b",\"environment\":");
    serde_json::to_writer(&mut *buf, h.environment)?;
    write!(buf, ",\"revision\":{},\"etag\":", h.revision).map_err(io)?;
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

fn shifted(r: &Range<usize>, by: isize) -> Range<usize> {
    r.start.wrapping_add_signed(by)..r.end.wrapping_add_signed(by)
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
            env_id: 7,
            revision,
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

    #[test]
    fn replacing_a_flag_gives_the_bytes_a_full_build_gives() {
        let segments: Vec<Segment> = Vec::new();
        let before = flags();
        let body = SdkBody::build(&header(3, "\"7.3\""), &before, &segments).expect("builds");
        // Replace each live flag in turn (index in the flags array: a=0, c=1, e=2) by a
        // longer and a shorter version of itself, across a revision whose head differs in
        // length ("7.9" → "7.10").
        let replacements = [
            (
                0,
                json!({"key": "a", "type": "boolean", "version": 2, "description": "longer than before",
                       "environments": {"dev": {"enabled": false}, "prod": {}}}),
            ),
            (
                1,
                json!({"key": "c", "type": "string", "variants": [{"key": "x", "value": ""}],
                       "environments": {"dev": {"off_variant": "x"}}}),
            ),
            (
                2,
                json!({"key": "e", "type": "number", "variants": [{"key": "n", "value": 2}],
                       "environments": {"dev": {"off_variant": "n", "enabled": true}}}),
            ),
        ];
        for (index, new) in replacements {
            let new = flag(new);
            let mut after = before.clone();
            for f in &mut after {
                if f.key == new.key {
                    *f = new.clone();
                }
            }
            let replaced = body
                .with_flag_replaced(&header(10, "\"7.10\""), index, &new)
                .expect("serialises")
                .expect("in place");
            let full = SdkBody::build(&header(10, "\"7.10\""), &after, &segments).expect("builds");
            assert_eq!(replaced.event(), full.event(), "replacing {}", new.key);
            assert_eq!(replaced.config(), full.config());
            assert_eq!(replaced.flags, full.flags);
            assert_eq!(replaced.tail, full.tail);
            // And again on top of the replaced one (the spans it computed are right).
            let again = replaced
                .with_flag_replaced(&header(11, "\"7.11\""), index, &new)
                .expect("serialises")
                .expect("in place");
            let full = SdkBody::build(&header(11, "\"7.11\""), &after, &segments).expect("builds");
            assert_eq!(again.event(), full.event());
        }
    }
}
