//! One error shape for the user: every layer's error says what to do next
//! through [`hint_of`], and `main` renders `error:` / `caused by:` / `hint:`
//! in one place, so no layer's hint is lost on the way.

use crate::identity::IdentityError;
use crate::issuer::IssuerError;
use crate::registry::{LifecycleError, RegistryError};
use crate::targets::TargetError;

/// Exit codes, as the README documents them.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILURE: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const FINDINGS: u8 = 3;
    pub const PARTIAL: u8 = 4;
}

/// What to do next, after an error or with a finding: the one type every
/// layer's hint has (a target's refusal, an issuer's missing credential, a
/// registry file that is not a member's, a policy's field), and
/// [`Hint::render`] is the one place a hint is turned into text a person
/// reads. JSON output carries it as a plain string.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Hint(String);

impl Hint {
    pub fn new(text: impl Into<String>) -> Self {
        Hint(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hint as every command shows it: `hint: …`, one line per line of
    /// the hint, each after `indent`.
    pub fn render(&self, indent: &str) -> String {
        self.0.lines().map(|line| format!("{indent}hint: {line}\n")).collect()
    }

    /// Writes the hint on stderr (after an error).
    pub fn print(&self) {
        eprint!("{}", self.render(""));
    }

    /// Hints one after another, as one hint (a run that met several).
    pub fn joined(hints: &[Hint]) -> Hint {
        Hint(hints.iter().map(Hint::as_str).collect::<Vec<_>>().join("\n"))
    }
}

impl std::ops::Deref for Hint {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Hint {
    fn from(text: String) -> Self {
        Hint(text)
    }
}

impl From<&str> for Hint {
    fn from(text: &str) -> Self {
        Hint(text.to_string())
    }
}

/// An error with what to do next, and the exit code it ends the run with.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Hinted {
    pub message: String,
    pub hint: Hint,
    pub code: u8,
}

impl Hinted {
    pub fn new(message: impl Into<String>, hint: impl Into<Hint>) -> Self {
        Hinted { message: message.into(), hint: hint.into(), code: exit::FAILURE }
    }
}

/// The hint of one error (not its causes), whichever layer made it.
pub fn hint_of_one(error: &(dyn std::error::Error + 'static)) -> Option<Hint> {
    if let Some(h) = error.downcast_ref::<Hinted>() {
        Some(h.hint.clone())
    } else if let Some(e) = error.downcast_ref::<RegistryError>() {
        e.hint()
    } else if let Some(e) = error.downcast_ref::<IdentityError>() {
        Some(e.hint())
    } else if let Some(e) = error.downcast_ref::<TargetError>() {
        e.hint.clone()
    } else if let Some(e) = error.downcast_ref::<IssuerError>() {
        e.hint()
    } else {
        error.downcast_ref::<LifecycleError>().and_then(LifecycleError::hint)
    }
}

/// Every hint in the chain, outermost first, without repeats.
pub fn hints(error: &anyhow::Error) -> Vec<Hint> {
    let mut out: Vec<Hint> = Vec::new();
    for cause in error.chain() {
        if let Some(h) = hint_of_one(cause)
            && !out.contains(&h)
        {
            out.push(h);
        }
    }
    out
}

/// The exit code an error ends the run with.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    error.chain().find_map(|c| c.downcast_ref::<Hinted>().map(|h| h.code)).unwrap_or(exit::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_is_rendered_one_line_at_a_time_after_its_indent() {
        let hint = Hint::joined(&["fix it".into(), Hint::new("then run again")]);
        assert_eq!(hint.render("  = "), "  = hint: fix it\n  = hint: then run again\n");
        assert_eq!(serde_json::to_string(&hint).unwrap(), "\"fix it\\nthen run again\"");
    }

    #[test]
    fn every_layers_hint_is_found_in_the_chain_once() {
        let inner = anyhow::Error::new(Hinted::new("inner", "do this"));
        let outer = inner.context(Hinted::new("outer", "do this"));
        assert_eq!(hints(&outer), [Hint::new("do this")]);
    }
}
