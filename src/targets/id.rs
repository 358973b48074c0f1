//! [`TargetId`]: the typed name of one target, `KIND:LOCATOR`
//! (`dotenv:app/.env`, `github:o/r@env:prod`, `wrangler:api`). It is the key
//! of delivery records, plan steps, events and check-ins, so that nothing
//! takes a target apart by string prefixes: the kind and the place are its
//! fields, and a .env target's file is asked of it, not stripped off it.

use std::fmt;

/// One target, as its kind names it. Written and read as its text
/// (`dotenv:app/.env`) in the registry, JSON output and messages.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetId {
    /// `KIND:LOCATOR`, kept whole so that it is shown and compared as one.
    text: String,
    /// Where the kind ends in `text`.
    colon: usize,
}

/// Why a text is not a target id.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a target address (KIND:PLACE, e.g. `dotenv:app/.env` or `github:owner/repo`)")]
pub struct NotATargetId(String);

impl TargetId {
    /// The target of `kind` at `locator` (`"dotenv"`, `"app/.env"`).
    pub fn new(kind: &str, locator: impl fmt::Display) -> Self {
        TargetId { text: format!("{kind}:{locator}"), colon: kind.len() }
    }

    /// Reads `KIND:LOCATOR` (a registry file's key, a command-line value).
    pub fn parse(text: &str) -> Result<Self, NotATargetId> {
        match text.split_once(':') {
            Some((kind, locator))
                if !locator.is_empty()
                    && !kind.is_empty()
                    && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()) =>
            {
                Ok(TargetId { text: text.to_string(), colon: kind.len() })
            }
            _ => Err(NotATargetId(text.chars().take(80).collect())),
        }
    }

    /// The kind's name, as its address writes it (`dotenv`, `github`).
    pub fn kind(&self) -> &str {
        &self.text[..self.colon]
    }

    /// Where, in the kind's own terms (`app/.env`, `o/r@env:prod`).
    pub fn locator(&self) -> &str {
        &self.text[self.colon + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The project file it names, where it names a file on this machine
    /// (a .env target): `app/.env` for `dotenv:app/.env`.
    pub fn local_file(&self) -> Option<&str> {
        use super::kind::KindEntry;
        (self.kind() == <crate::policy::DotenvSpec as KindEntry>::KIND).then(|| self.locator())
    }
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

impl std::borrow::Borrow<str> for TargetId {
    fn borrow(&self) -> &str {
        &self.text
    }
}

impl AsRef<str> for TargetId {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl PartialEq<str> for TargetId {
    fn eq(&self, other: &str) -> bool {
        self.text == other
    }
}

impl PartialEq<&str> for TargetId {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl std::str::FromStr for TargetId {
    type Err = NotATargetId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TargetId::parse(s)
    }
}

impl serde::Serialize for TargetId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for TargetId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        TargetId::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_its_kind_and_its_place() {
        let id = TargetId::new("github", "o/r@env:prod");
        assert_eq!(id.as_str(), "github:o/r@env:prod");
        assert_eq!((id.kind(), id.locator()), ("github", "o/r@env:prod"));
        assert_eq!(TargetId::parse("github:o/r@env:prod").unwrap(), id);
        assert_eq!(id.local_file(), None);
        assert_eq!(TargetId::new("dotenv", "app/.env").local_file(), Some("app/.env"));
    }

    #[test]
    fn text_without_a_kind_is_not_an_id() {
        for bad in ["", "app/.env", ":x", "dotenv:", "Dot env:x"] {
            assert!(TargetId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn it_is_written_and_read_as_its_text() {
        let id = TargetId::new("wrangler", "api");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"wrangler:api\"");
        assert_eq!(serde_json::from_str::<TargetId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<TargetId>("\"api\"").is_err());
    }
}
