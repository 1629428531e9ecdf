//! Users' identity as stored: ids and email addresses.
//!
//! An email is the login name. It is compared without regard to case, so it is stored trimmed
//! and lower-cased: "Ann@Example.com" and "ann@example.com" are one account.

use rand::Rng;

/// The longest email accepted (RFC 5321's limit on a path).
pub const MAX_EMAIL_BYTES: usize = 254;
/// The longest display name accepted.
pub const MAX_NAME_CHARS: usize = 200;

/// A new user id, `usr_` and 64 random bits in hex.
pub fn new_id() -> String {
    let bytes: [u8; 8] = rand::thread_rng().gen();
    format!("usr_{}", hex::encode(bytes))
}

/// `email` as stored and compared (trimmed, lower-cased), or why it is not an address.
///
/// The check is deliberately plain (one `@`, a non-empty local part, a domain with a dot and
/// no spaces or control characters): whether an address receives mail is not for hata to
/// decide, and single sign-on brings addresses that providers already checked.
pub fn normalize_email(email: &str) -> Result<String, &'static str> {
    let email = email.trim().to_lowercase();
    if email.len() > MAX_EMAIL_BYTES {
        return Err("must be at most 254 bytes");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err("must be an email address (name@domain)");
    };
    let plain = |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if !plain(local) || !plain(domain) || domain.contains('@') || !domain.contains('.') {
        return Err("must be an email address (name@domain)");
    }
    if domain.starts_with('.') || domain.ends_with('.') {
        return Err("must be an email address (name@domain)");
    }
    Ok(email)
}

/// Why a display name is refused.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("must not be empty")
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some("must be at most 200 characters")
    } else if name.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_lower_cased_and_plainly_checked() {
        assert_eq!(
            normalize_email("  Ann.Lee+x@Example.COM ").as_deref(),
            Ok("ann.lee+x@example.com")
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@localhost",
            "ann@@example.com",
            "a b@example.com",
            "ann@.example.com",
            "ann@example.com.",
            "ann@exa\u{7}mple.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(normalize_email(&long), Err("must be at most 254 bytes"));
    }

    #[test]
    fn names_are_short_visible_text() {
        assert_eq!(name_problem("Ann Lee"), None);
        assert_eq!(name_problem("  "), Some("must not be empty"));
        assert!(name_problem(&"x".repeat(201)).is_some());
        assert!(name_problem("a\nb").is_some());
    }

    #[test]
    fn ids_are_random() {
        let (a, b) = (new_id(), new_id());
        assert!(a.starts_with("usr_") && a.len() == 20);
        assert_ne!(a, b);
    }
}
