//! `leaks`: every place a known value is exposed — the working tree, the
//! repository's history, and the services' own reports (GitHub's
//! secret-scanning alerts) — each said as the token and version it is,
//! whether that version still works, and what to do. Values are matched in
//! memory only: a service's report is looked up by a keyed hash of its
//! secret ([`crate::scan::Scanner::find`]), then confirmed against the
//! value, and never shown.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::registry::{Stage, TokenMeta};

/// Where a value was found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum Place {
    /// A file of the working tree: `file:line:col`.
    WorkingTree { file: String, line: usize, col: usize },
    /// A blob of the repository's history, and the commit that introduced it.
    History { commit: String, file: String, line: usize },
    /// A service's report (a GitHub secret-scanning alert).
    Alert {
        target: String,
        alert: String,
        kind: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        url: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        first_seen: Option<String>,
    },
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::WorkingTree { file, line, col } => write!(f, "{file}:{line}:{col}"),
            Place::History { commit, file, line } => {
                write!(f, "{file}:{line} in commit {}", commit.get(..12).unwrap_or(commit))
            }
            Place::Alert { alert, kind, first_seen, .. } => {
                write!(f, "secret-scanning alert {alert} ({kind}")?;
                if let Some(at) = first_seen {
                    write!(f, ", first seen at {at}")?;
                }
                write!(f, ")")
            }
        }
    }
}

/// Whether a leaked version still opens anything.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Liveness {
    /// Current, previous or pending: it works, and the tool can end it.
    Live,
    /// Retired but not revoked (the issuer cannot revoke it) and not
    /// expired: it may still work where it was issued.
    Unrevoked,
    /// Revoked at the issuer, expired, or a value only its targets ever
    /// accepted and none holds any more.
    Dead,
}

/// How alive `version` of `meta` is at `now`.
pub fn liveness(meta: &TokenMeta, version: u32, now: DateTime<Utc>) -> Liveness {
    let Some(v) = meta.version(version) else { return Liveness::Dead };
    let expired = v.expires_at.is_some_and(|e| e <= now);
    match v.stage {
        _ if expired => Liveness::Dead,
        Stage::Current | Stage::Previous | Stage::Pending => Liveness::Live,
        // A random value means something only where it was delivered; once
        // retired no target holds it.
        Stage::Retired if v.issuer_kind.as_deref() == Some("random") => Liveness::Dead,
        Stage::Retired => Liveness::Unrevoked,
        Stage::Revoked => Liveness::Dead,
    }
}

/// One exposure of one known value.
#[derive(Debug, Clone, Serialize)]
pub struct Leak {
    pub token: String,
    pub version: u32,
    pub stage: Stage,
    pub liveness: Liveness,
    #[serde(flatten)]
    pub place: Place,
    /// What to do about it.
    pub action: String,
}

impl Leak {
    pub fn new(token: &str, version: u32, meta: Option<&TokenMeta>, place: Place, now: DateTime<Utc>) -> Self {
        let (stage, liveness) = match meta.and_then(|m| m.version(version).map(|v| (v.stage, m))) {
            Some((stage, m)) => (stage, liveness(m, version, now)),
            None => (Stage::Revoked, Liveness::Dead),
        };
        let action = action(token, version, stage, liveness, &place);
        Leak { token: token.to_string(), version, stage, liveness, place, action }
    }

    /// Whether the exposed value still works somewhere.
    pub fn is_live(&self) -> bool {
        self.liveness != Liveness::Dead
    }
}

fn action(token: &str, version: u32, stage: Stage, liveness: Liveness, place: &Place) -> String {
    let cleanup = match place {
        Place::WorkingTree { .. } => "remove it from the file",
        Place::History { .. } => "it stays in git history; rewriting history is optional once the value is dead",
        Place::Alert { .. } => "`leaks --rotate` closes the alert as revoked",
    };
    match (liveness, stage) {
        (Liveness::Live, Stage::Pending) => {
            format!("`chitty-secrets leaks --rotate` undoes the rotation of {token} and revokes v{version}; {cleanup}")
        }
        (Liveness::Live, Stage::Previous) => {
            format!("`chitty-secrets leaks --rotate` revokes v{version} now, cutting its overlap short; {cleanup}")
        }
        (Liveness::Live, _) => format!(
            "`chitty-secrets leaks --rotate` replaces {token} everywhere and revokes v{version} (or `rotate --emergency {token}`); {cleanup}"
        ),
        (Liveness::Unrevoked, _) => format!(
            "v{version} was retired but its issuer cannot revoke it: revoke it where it was issued, by hand; {cleanup}"
        ),
        (Liveness::Dead, _) => format!("v{version} no longer works; {cleanup}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_never_shows_a_value() {
        let place = Place::Alert {
            target: "github:o/r".into(),
            alert: "o/r#3".into(),
            kind: "Generic token".into(),
            url: None,
            first_seen: Some("app.js:3 in commit abc1234".into()),
        };
        assert_eq!(
            place.to_string(),
            "secret-scanning alert o/r#3 (Generic token, first seen at app.js:3 in commit abc1234)"
        );
    }
}
