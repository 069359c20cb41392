//! Login names: an account (user name), a phone number and an e-mail address are all names a
//! user can log in with, and they share one namespace. Every name is normalised by
//! [`login_key`] before it is stored or looked up, so a lookup never depends on how the user
//! typed it, and `13800000000` as one user's account and another's phone cannot coexist.

use super::StoreError;

/// Which field a login name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginKind {
    /// A user name (the `account` field).
    Account,
    /// A phone number (its [`login_key`] is its digits only).
    Phone,
    /// An e-mail address.
    Email,
}

impl LoginKind {
    /// The field's name, as stored and shown (`account`, `phone`, `email`).
    pub fn as_str(self) -> &'static str {
        match self {
            LoginKind::Account => "account",
            LoginKind::Phone => "phone",
            LoginKind::Email => "email",
        }
    }
}

const MAX_LEN: usize = 254;

/// Characters that may appear in a written phone number besides digits.
fn is_phone_punctuation(c: char) -> bool {
    matches!(c, ' ' | '+' | '-' | '(' | ')' | '.')
}

/// Does `text` look like a phone number (digits and phone punctuation, at least one digit)?
fn looks_like_phone(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || is_phone_punctuation(c))
}

/// The one normalisation used for storing and for lookup: trimmed and lower-cased, and if what
/// is left looks like a phone number, its digits only (`+86 138-0000-0000` → `8613800000000`).
pub fn login_key(text: &str) -> String {
    let text = text.trim();
    if looks_like_phone(text) {
        text.chars().filter(char::is_ascii_digit).collect()
    } else {
        text.to_lowercase()
    }
}

/// Validates and normalises a login name of `kind` for storing.
pub fn normalize(kind: LoginKind, text: &str) -> Result<String, StoreError> {
    let invalid = |message: &str| StoreError::Invalid {
        field: kind.as_str(),
        message: message.to_owned(),
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(invalid("must not be empty"));
    }
    if trimmed.len() > MAX_LEN {
        return Err(invalid("is longer than 254 bytes"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(invalid("must not contain control characters"));
    }
    match kind {
        LoginKind::Phone if !looks_like_phone(trimmed) => {
            return Err(invalid(
                "must be digits, optionally with spaces, +, -, ( ) or .",
            ));
        }
        LoginKind::Email => {
            let valid = trimmed.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && !domain.is_empty() && !domain.contains('@')
            });
            if !valid || trimmed.contains(char::is_whitespace) {
                return Err(invalid("is not an e-mail address like name@example.com"));
            }
        }
        LoginKind::Account
            if trimmed.contains(char::is_whitespace) && !looks_like_phone(trimmed) =>
        {
            return Err(invalid("must not contain spaces"));
        }
        _ => {}
    }
    Ok(login_key(trimmed))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_normalisation_for_every_kind() {
        assert_eq!(login_key("  Alice@Example.COM "), "alice@example.com");
        assert_eq!(login_key("+86 138-0000-0000"), "8613800000000");
        assert_eq!(login_key("(138) 0000.0000"), "13800000000");
        assert_eq!(login_key("User_ZDEZ5543"), "user_zdez5543");
        // An all-digit account and the same phone number normalise to the same key.
        assert_eq!(
            normalize(LoginKind::Account, "13800000000").unwrap(),
            normalize(LoginKind::Phone, "138 0000 0000").unwrap()
        );
    }

    #[test]
    fn invalid_names_are_refused_with_the_field() {
        for (kind, text) in [
            (LoginKind::Account, "  "),
            (LoginKind::Account, "two words"),
            (LoginKind::Phone, "call me"),
            (LoginKind::Email, "nobody"),
            (LoginKind::Email, "a@b@c"),
            (LoginKind::Email, "@example.com"),
        ] {
            let error = normalize(kind, text).unwrap_err().to_string();
            assert!(error.starts_with(kind.as_str()), "{error}");
        }
    }
}
