//! The export format, JSON Lines oldest first: each line is an entry object, or
//! `{"checkpoint": {…}}` right after the entry at the checkpoint's seq. An export that starts
//! after seq 1 (a range, or a pruned chain) starts with the checkpoint at the seq before its
//! first entry, the anchor, when there is one.
//!
//! This module reads and writes single lines; putting them in order is the exporter's job,
//! and judging them the verifier's.

use serde_json::{Map, Value};

use crate::checkpoint::Checkpoint;

/// One line of an export.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    /// An entry object as parsed: what its hash is computed over.
    Entry(Map<String, Value>),
    Checkpoint(Checkpoint),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a JSON object")]
    NotObject,
    #[error("not a checkpoint: {0}")]
    BadCheckpoint(String),
}

/// Reads one line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Line, LineError> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| LineError::NotJson(e.to_string()))?;
    classify(value)
}

/// Sorts a parsed line into entry or checkpoint: an object whose only member is
/// `checkpoint` is a checkpoint, any other object an entry.
pub fn classify(value: Value) -> Result<Line, LineError> {
    let Value::Object(mut map) = value else {
        return Err(LineError::NotObject);
    };
    if map.len() == 1 {
        if let Some(checkpoint) = map.remove("checkpoint") {
            return serde_json::from_value(checkpoint)
                .map(Line::Checkpoint)
                .map_err(|e| LineError::BadCheckpoint(e.to_string()));
        }
    }
    Ok(Line::Entry(map))
}

/// The line of a checkpoint (no newline).
pub fn checkpoint_line(checkpoint: &Checkpoint) -> String {
    let mut line = String::from("{\"checkpoint\":");
    line.push_str(&serde_json::to_string(checkpoint).unwrap_or_default());
    line.push('}');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{Hash, Head};
    use crate::key::SigningKey;
    use time::macros::datetime;

    #[test]
    fn checkpoint_lines_round_trip() {
        let key = SigningKey::generate(&mut rand::rngs::OsRng);
        let head = Head {
            seq: 5,
            hash: Hash([9; 32]),
        };
        let cp = Checkpoint::sign(head, datetime!(2026-12-06 11:01:06 UTC), &key).expect("ok");
        let line = checkpoint_line(&cp);
        assert!(
            line.starts_with("{\"checkpoint\":{\"seq\":5,\"hash\":\""),
            "{line}"
        );
        assert_eq!(parse_line(line.as_bytes()), Ok(Line::Checkpoint(cp)));
    }

    #[test]
    fn other_lines() {
        assert!(matches!(parse_line(b"{\"seq\":1}"), Ok(Line::Entry(_))));
        assert!(matches!(parse_line(b"[1]"), Err(LineError::NotObject)));
        assert!(matches!(
            parse_line(b"{\"seq\":"),
            Err(LineError::NotJson(_))
        ));
        assert!(matches!(parse_line(b"\xff"), Err(LineError::NotJson(_))));
        assert!(matches!(
            parse_line(b"{\"checkpoint\":{\"seq\":1}}"),
            Err(LineError::BadCheckpoint(_))
        ));
        // A checkpoint member beside others is no checkpoint line (the entry check refuses it).
        assert!(matches!(
            parse_line(b"{\"checkpoint\":{},\"seq\":1}"),
            Ok(Line::Entry(_))
        ));
    }
}
