//! `matches` patterns: the one place they are compiled, and the limits on the memory they may
//! take. Write-time validation (`validate`) and compilation (`snapshot`) both build patterns
//! here, so a pattern accepted when written compiles the same way, to the same size, at every
//! start.
//!
//! A compiled pattern holds automata (forward and reverse NFAs, maybe a one-pass DFA) and, for
//! each thread searching with it, a lazy-DFA cache that grows as haystacks need. The limits
//! bound one pattern, then the number and total size of the patterns of a flag in one
//! environment (or of a segment), then the total of an environment: each pattern had a
//! limit before, their number had none, and one 11 KB write of 800 patterns took the server to
//! 1.1–1.46 GB. Sizes are the engine's own account of a pattern's automata
//! (`memory_usage`), counted every time a pattern appears; that is why patterns are built with
//! `regex-automata`'s meta engine, which `regex::Regex` wraps but does not let one measure.
//! They are configured exactly as `regex::RegexBuilder::{size_limit, dfa_size_limit}` would.
//!
//! Not here: what `matches` means (`evaluate`) and where a limit is reported (`validate` names
//! the field, `snapshot` the flag or segment).

use std::fmt;

use regex_automata::meta;
use regex_automata::util::syntax;

/// Most memory one automaton of one pattern may take, in bytes (`RegexBuilder::size_limit`).
/// Patterns repeating Unicode classes reach it quickly: `\w{20}` is about the largest one it
/// admits, and its automata take 1.1 MiB in all.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Capacity of a pattern's lazy-DFA cache, for each thread searching with it, in bytes
/// (`RegexBuilder::dfa_size_limit`): half of `regex`'s default, so that a client's strings
/// cannot grow a pattern's caches past 1 MiB per thread. Every pattern that
/// [`REGEX_SIZE_LIMIT`] admits still searches with its lazy DFA at this capacity (measured
/// with `\w{20}x`; at 512 KiB it fell back to an engine 300 times slower).
pub const REGEX_DFA_SIZE_LIMIT: usize = 1 << 20;

/// Most `matches` patterns of a flag in one environment (the values of all its `matches`
/// conditions), or of a segment. Rules that need more are better written as one pattern with
/// alternatives, or as an `in` list.
pub const MAX_PATTERNS: usize = 50;

/// Most compiled size of the patterns of a flag in one environment, or of a segment, in bytes.
/// Typical patterns (an e-mail domain, a version, a country list) compile to 3–100 KiB, so
/// [`MAX_PATTERNS`] of them fit; patterns repeating Unicode classes (`\w{5,10}`: 550 KiB,
/// `\w{20}`: 1.1 MiB) fit only a few times.
pub const MAX_PATTERN_BYTES: usize = 4 << 20;

/// Most compiled size of all the patterns of one environment, in bytes: those of its live flags
/// and of every segment (segments are compiled into every environment). Sixteen flags at
/// [`MAX_PATTERN_BYTES`], or over a thousand typical patterns; 10,000 flags of the benchmark
/// project, 500 of them with a pattern, take 4.5 MiB.
pub const MAX_ENVIRONMENT_PATTERN_BYTES: usize = 64 << 20;

/// A compiled `matches` pattern. Cloning shares the automata (not the search caches).
#[derive(Debug, Clone)]
pub(crate) struct Pattern {
    regex: meta::Regex,
    size: usize,
}

/// Why a pattern does not compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternError {
    /// Not a regex: the one line of the parser's message that says why, in lower case.
    Syntax(String),
    /// An automaton would exceed [`REGEX_SIZE_LIMIT`].
    TooBig,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::Syntax(reason) => write!(f, "invalid regex: {reason}"),
            PatternError::TooBig => write!(
                f,
                "regex too large: it compiles to more than {} (the limit of one pattern)",
                mib(REGEX_SIZE_LIMIT)
            ),
        }
    }
}

impl Pattern {
    /// Compiles `pattern` as `regex::Regex::new` would (unanchored, Unicode, leftmost-first),
    /// with this module's limits.
    pub(crate) fn new(pattern: &str) -> Result<Pattern, PatternError> {
        let config = meta::Config::new()
            .match_kind(regex_automata::MatchKind::LeftmostFirst)
            .utf8_empty(true)
            .nfa_size_limit(Some(REGEX_SIZE_LIMIT))
            .hybrid_cache_capacity(REGEX_DFA_SIZE_LIMIT);
        let regex = meta::Builder::new()
            .configure(config)
            .syntax(syntax::Config::new().utf8(true))
            .build(pattern)
            .map_err(|e| {
                if e.size_limit().is_some() {
                    PatternError::TooBig
                } else {
                    let text = match e.syntax_error() {
                        Some(syntax) => syntax.to_string(),
                        None => e.to_string(),
                    };
                    PatternError::Syntax(reason(&text))
                }
            })?;
        let size = regex.memory_usage();
        Ok(Pattern { regex, size })
    }

    /// The memory its automata take, in bytes: what counts against [`MAX_PATTERN_BYTES`] and
    /// [`MAX_ENVIRONMENT_PATTERN_BYTES`].
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Whether the pattern matches anywhere in `s`.
    #[inline]
    pub(crate) fn is_match(&self, s: &str) -> bool {
        self.regex.is_match(s)
    }
}

/// The one line of a regex error that says what is wrong. A syntax error's message spans
/// several lines (a header, the pattern, a caret) with the reason on an `error:` line.
fn reason(text: &str) -> String {
    let reason = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .or_else(|| text.lines().map(str::trim).find(|line| !line.is_empty()))
        .unwrap_or("does not compile");
    reason.to_lowercase()
}

/// Whose patterns a [`PatternTally`] counts, for its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// A flag in one environment.
    Flag,
    Segment,
}

impl Scope {
    fn per(self) -> &'static str {
        match self {
            Scope::Flag => "per flag and environment",
            Scope::Segment => "per segment",
        }
    }
}

/// A running count of the patterns of one flag in one environment, or of one segment, against
/// [`MAX_PATTERNS`] and [`MAX_PATTERN_BYTES`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct PatternTally {
    scope: Scope,
    pub count: usize,
    pub bytes: usize,
}

impl PatternTally {
    pub(crate) fn new(scope: Scope) -> PatternTally {
        PatternTally {
            scope,
            count: 0,
            bytes: 0,
        }
    }

    /// Counts one more pattern, before it is compiled: a write of hundreds of patterns
    /// compiles no more than [`MAX_PATTERNS`] of them.
    pub(crate) fn admit(&mut self) -> Result<(), String> {
        self.count += 1;
        if self.count > MAX_PATTERNS {
            return Err(format!(
                "more than {MAX_PATTERNS} `matches` patterns; at most {MAX_PATTERNS} are allowed {}",
                self.scope.per()
            ));
        }
        Ok(())
    }

    /// Adds a compiled pattern's size.
    pub(crate) fn add(&mut self, size: usize) -> Result<(), String> {
        self.bytes = self.bytes.saturating_add(size);
        if self.bytes > MAX_PATTERN_BYTES {
            return Err(format!(
                "the `matches` patterns up to here compile to {}; at most {} is allowed {}",
                mib(self.bytes),
                mib(MAX_PATTERN_BYTES),
                self.scope.per()
            ));
        }
        Ok(())
    }
}

/// Checks an environment's running total of compiled pattern bytes.
pub(crate) fn check_environment(env: &str, bytes: usize) -> Result<(), String> {
    if bytes > MAX_ENVIRONMENT_PATTERN_BYTES {
        return Err(format!(
            "the `matches` patterns of environment \"{env}\" (its flags' and all segments') would \
             compile to {}; at most {} is allowed",
            mib(bytes),
            mib(MAX_ENVIRONMENT_PATTERN_BYTES)
        ));
    }
    Ok(())
}

/// `1.5 MiB`, `4 MiB`: rounded up, so that a size over a limit never reads as the limit.
fn mib(bytes: usize) -> String {
    let tenths = bytes.saturating_mul(10).div_ceil(1 << 20);
    if tenths.is_multiple_of(10) {
        format!("{} MiB", tenths / 10)
    } else {
        format!("{}.{} MiB", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_regex_does() {
        let cases = [
            (r"^[a-z.]+@hata\.dev$", "jane.doe@hata.dev", true),
            (r"^[a-z.]+@hata\.dev$", "jane@hata.dev.evil", false),
            (r"dev", "hata.dev", true),
            (r"(?i)^DEV", "dev-1", true),
            (r"\w+", "ユーザー", true),
            (r"^$", "", true),
            (r"a|", "xyz", true),
        ];
        for (pattern, haystack, expected) in cases {
            let p = Pattern::new(pattern).expect("compiles");
            assert_eq!(p.is_match(haystack), expected, "{pattern} on {haystack}");
            assert!(p.size() > 0);
        }
    }

    #[test]
    fn errors_say_why_in_one_line() {
        assert_eq!(
            Pattern::new("(abc").unwrap_err(),
            PatternError::Syntax("unclosed group".into())
        );
        assert_eq!(Pattern::new(r"\w{100}").unwrap_err(), PatternError::TooBig);
        assert!(Pattern::new(r"\w{20}").is_ok());
        assert_eq!(mib(4 << 20), "4 MiB");
        assert_eq!(mib(3 << 19), "1.5 MiB");
        assert_eq!(mib((4 << 20) + 1), "4.1 MiB");
    }
}
