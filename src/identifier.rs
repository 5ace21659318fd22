//! The identifier rule. Device names, serials, device ids, site, group and
//! device-function names become file names (`configs/<name>.cfg`,
//! `credentials/<id>.json`) and URL path segments, so they are
//! `[A-Za-z0-9._-]+` and neither `.` nor `..`, which name directories
//! (SPEC §3). The plan, the file service, credentials, DHCP identities, ZTP
//! hellos and the operator CLI all check this one rule; length limits stay
//! with each caller, since they differ by input.

use std::fmt;
use std::str::FromStr;

/// Why a string is not an identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    #[error("is empty")]
    Empty,
    #[error("`.` and `..` name directories, not files")]
    Dots,
    /// The first character outside `[A-Za-z0-9._-]`.
    #[error("contains {0:?}; only letters, digits, `.`, `_` and `-` are allowed")]
    Char(char),
}

/// The bytes an identifier may hold.
fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Check `s` against the rule.
pub fn check(s: &str) -> Result<(), IdentifierError> {
    if s.is_empty() {
        return Err(IdentifierError::Empty);
    }
    if let Some(c) = s.chars().find(|c| !allowed(*c)) {
        return Err(IdentifierError::Char(c));
    }
    if s == "." || s == ".." {
        return Err(IdentifierError::Dots);
    }
    Ok(())
}

/// `[A-Za-z0-9._-]+`, and not `.` or `..`.
pub fn is_identifier(s: &str) -> bool {
    check(s).is_ok()
}

/// A string known to follow the identifier rule, so it is safe as a file
/// name or a URL path segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier(String);

impl Identifier {
    pub fn new(s: impl Into<String>) -> Result<Identifier, IdentifierError> {
        let s = s.into();
        check(&s)?;
        Ok(Identifier(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Identifier {
    type Err = IdentifierError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Identifier::new(s)
    }
}

impl AsRef<str> for Identifier {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_digits_dot_underscore_dash_are_accepted() {
        for s in [
            "leaf1",
            "JPE12345678",
            "sn-007.888_abc",
            "a..b",
            ".hidden",
            "x.",
            "-",
            "_",
        ] {
            assert!(is_identifier(s), "{s}");
            assert_eq!(Identifier::new(s).unwrap().as_str(), s);
        }
    }

    #[test]
    fn empty_dots_and_other_characters_are_refused() {
        assert_eq!(check(""), Err(IdentifierError::Empty));
        assert_eq!(check("."), Err(IdentifierError::Dots));
        assert_eq!(check(".."), Err(IdentifierError::Dots));
        assert_eq!(check("../x"), Err(IdentifierError::Char('/')));
        assert_eq!(check("a/b"), Err(IdentifierError::Char('/')));
        assert_eq!(check("/"), Err(IdentifierError::Char('/')));
        assert_eq!(check("a b"), Err(IdentifierError::Char(' ')));
        assert_eq!(check("a\\b"), Err(IdentifierError::Char('\\')));
        assert_eq!(check("a\0"), Err(IdentifierError::Char('\0')));
        assert_eq!(check("leaf%2f"), Err(IdentifierError::Char('%')));
        assert_eq!(check("café"), Err(IdentifierError::Char('é')));
        // A non-ASCII digit or letter is not an ASCII one.
        assert_eq!(check("leaf١"), Err(IdentifierError::Char('١')));
        assert!(!is_identifier("Ｌeaf"));
        assert!(Identifier::new("..").is_err());
        assert!("a/b".parse::<Identifier>().is_err());
    }

    #[test]
    fn displays_as_written() {
        let id: Identifier = "leaf1.lab_2-a".parse().unwrap();
        assert_eq!(id.to_string(), "leaf1.lab_2-a");
        assert_eq!(id.as_ref(), "leaf1.lab_2-a");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            check("a b").unwrap_err().to_string(),
            "contains ' '; only letters, digits, `.`, `_` and `-` are allowed"
        );
        assert_eq!(
            check("..").unwrap_err().to_string(),
            "`.` and `..` name directories, not files"
        );
    }
}
