//! The key syntax shared by projects, environments, flags, segments and variants:
//! `^[a-z0-9][a-z0-9._-]{0,127}$`.

/// The pattern, for error messages and the OpenAPI document.
pub const KEY_PATTERN: &str = "^[a-z0-9][a-z0-9._-]{0,127}$";

/// Whether `key` is a legal key. Hand-written because it runs on every write and every
/// evaluation path lookup; equivalent to `KEY_PATTERN`.
pub fn is_valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && matches!(b[0], b'a'..=b'z' | b'0'..=b'9')
        && b[1..]
            .iter()
            .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(is_valid_key("a"));
        assert!(is_valid_key("new-checkout_v2.1"));
        assert!(is_valid_key(&"a".repeat(128)));
        assert!(!is_valid_key(&"a".repeat(129)));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key("-a"));
        assert!(!is_valid_key("A"));
        assert!(!is_valid_key("a b"));
        assert!(!is_valid_key("é"));
    }
}
