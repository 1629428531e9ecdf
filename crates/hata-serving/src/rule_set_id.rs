//! The name of one environment's rule set at one revision: `<environment id>.<revision>`.
//!
//! It is the SSE event id of both streams, the body of the `sdk/config` ETag and the
//! `refetchEvaluation` event's `etag`, the prefix of the OFREP bulk ETag, and what a stream
//! ticket remembers. Environment ids are never reused and revisions only grow, so an id never
//! names two different rule sets (see ARCHITECTURE.md, invariants).

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleSetId {
    /// The store id of the environment: a re-created environment gets a new one.
    pub env_id: i64,
    pub revision: i64,
}

impl RuleSetId {
    pub fn new(env_id: i64, revision: i64) -> RuleSetId {
        RuleSetId { env_id, revision }
    }

    /// The id as an entity tag: `"<env id>.<revision>"`, quoted.
    pub fn etag(&self) -> String {
        format!("\"{self}\"")
    }

    /// Reads an id that may be quoted and surrounded by whitespace, as clients send it back
    /// in `Last-Event-ID` or `flagConfigEtag`. Anything else (a weak tag, a bulk ETag with a
    /// context digest) is `None`.
    pub fn from_header(value: &str) -> Option<RuleSetId> {
        let value = value.trim();
        let unquoted = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        unquoted.parse().ok()
    }
}

impl fmt::Display for RuleSetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.env_id, self.revision)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a rule set id is `<environment id>.<revision>`, two integers")]
pub struct ParseRuleSetIdError;

impl FromStr for RuleSetId {
    type Err = ParseRuleSetIdError;

    fn from_str(s: &str) -> Result<RuleSetId, ParseRuleSetIdError> {
        let (env_id, revision) = s.split_once('.').ok_or(ParseRuleSetIdError)?;
        // `i64::from_str` takes a leading `+`; an id never has one.
        let number = |s: &str| {
            if s.starts_with('+') {
                return Err(ParseRuleSetIdError);
            }
            s.parse::<i64>().map_err(|_| ParseRuleSetIdError)
        };
        Ok(RuleSetId::new(number(env_id)?, number(revision)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_back() {
        for id in [
            RuleSetId::new(3, 12),
            RuleSetId::new(1, 0),
            RuleSetId::new(i64::MAX, 7),
        ] {
            assert_eq!(id.to_string().parse::<RuleSetId>(), Ok(id));
            assert_eq!(RuleSetId::from_header(&id.etag()), Some(id));
        }
        assert_eq!(RuleSetId::new(3, 12).to_string(), "3.12");
        assert_eq!(RuleSetId::new(3, 12).etag(), "\"3.12\"");
    }

    #[test]
    fn headers_may_be_quoted_and_padded_but_nothing_else() {
        assert_eq!(
            RuleSetId::from_header(" \"3.12\" "),
            Some(RuleSetId::new(3, 12))
        );
        assert_eq!(RuleSetId::from_header("3.12"), Some(RuleSetId::new(3, 12)));
        for bad in [
            "\"3.12-abcd\"",
            "W/\"3.12\"",
            "x",
            "3",
            "3.",
            ".3",
            "3.12.1",
            "+3.12",
            "3.+12",
            "\"3.12",
            "",
        ] {
            assert_eq!(RuleSetId::from_header(bad), None, "{bad:?}");
        }
    }
}
