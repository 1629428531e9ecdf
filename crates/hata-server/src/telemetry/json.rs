//! Log lines as JSON, one object per line: `timestamp` (RFC 3339, UTC), `level`, `target`,
//! `message`, then `request_id` and `trace_id` when the line is written inside a request (from
//! `dispatch::scope`, whatever span is current), then the event's own fields by name. A field
//! named like one of those wins over it (the access log's `request_id` is the same value).
//!
//! Written here rather than with `tracing-subscriber`'s JSON format, which nests the fields
//! under `fields` and the request id under the span that carries it (and has none when the
//! hot paths' DEBUG spans are filtered out).

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::dispatch::scope;

/// The JSON line format (`tracing_subscriber::fmt::Layer::event_format`).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let line = line(event);
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// The object of one line.
pub fn line(event: &Event<'_>) -> Map<String, Value> {
    let meta = event.metadata();
    let mut line = Map::new();
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    line.insert("timestamp".into(), now.into());
    line.insert("level".into(), meta.level().as_str().into());
    line.insert("target".into(), meta.target().into());
    // First among the fields, whatever order the event names them in.
    line.insert("message".into(), Value::String(String::new()));
    scope::with_current(|request| {
        if let Ok(id) = request.id.to_str() {
            line.insert("request_id".into(), id.into());
        }
        if let Some(trace) = request.trace_id {
            line.insert("trace_id".into(), trace.to_string().into());
        }
    });
    event.record(&mut Fields(&mut line));
    line
}

struct Fields<'a>(&'a mut Map<String, Value>);

impl Fields<'_> {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_string(), value);
    }
}

impl Visit for Fields<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number);
        self.put(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt as _;

    /// The lines written while `f` runs, parsed.
    fn lines_of(f: impl FnOnce()) -> Vec<Map<String, Value>> {
        let out = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink = out.clone();
        let layer = tracing_subscriber::fmt::layer()
            .event_format(JsonLines)
            .with_writer(move || Sink(sink.clone()));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(out.lock().expect("lock").clone()).expect("UTF-8");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_has_the_fixed_members_first_and_the_fields_flat() {
        let lines = lines_of(|| {
            tracing::warn!(target: "hata::test", count = 3u64, ratio = 0.5, ok = true, who = %"me",
                text = "a \"quoted\"\nline", "something {}", "happened");
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        let keys: Vec<&str> = line.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "timestamp",
                "level",
                "target",
                "message",
                "count",
                "ratio",
                "ok",
                "who",
                "text"
            ]
        );
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["target"], "hata::test");
        assert_eq!(line["message"], "something happened");
        assert_eq!(line["count"], 3);
        assert_eq!(line["ratio"], 0.5);
        assert_eq!(line["ok"], true);
        assert_eq!(line["who"], "me");
        assert_eq!(line["text"], "a \"quoted\"\nline");
        let at = line["timestamp"].as_str().expect("text");
        assert!(
            time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).is_ok(),
            "{at}"
        );
        assert!(at.ends_with('Z'), "{at}");
    }

    #[test]
    fn inside_a_request_a_line_carries_its_id_and_trace_id() {
        let trace = opentelemetry::trace::TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736")
            .expect("hex");
        let scope =
            scope::RequestScope::new(axum::http::HeaderValue::from_static("req-7"), Some(trace));
        let lines = lines_of(|| {
            tracing::info!("outside");
            scope.sync(|| tracing::info!("inside"));
        });
        assert_eq!(lines.len(), 2);
        assert!(lines[0].get("request_id").is_none());
        assert!(lines[0].get("trace_id").is_none());
        assert_eq!(lines[1]["request_id"], "req-7");
        assert_eq!(lines[1]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    }
}
