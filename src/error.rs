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

/// An error with what to do next, and the exit code it ends the run with.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Hinted {
    pub message: String,
    pub hint: String,
    pub code: u8,
}

impl Hinted {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Hinted { message: message.into(), hint: hint.into(), code: exit::FAILURE }
    }
}

/// The hint of one error (not its causes), whichever layer made it.
pub fn hint_of_one(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(h) = error.downcast_ref::<Hinted>() {
        Some(h.hint.clone())
    } else if let Some(e) = error.downcast_ref::<RegistryError>() {
        e.hint()
    } else if let Some(e) = error.downcast_ref::<IdentityError>() {
        Some(e.hint().to_string())
    } else if let Some(e) = error.downcast_ref::<TargetError>() {
        e.hint.clone()
    } else if let Some(e) = error.downcast_ref::<IssuerError>() {
        e.hint()
    } else {
        error.downcast_ref::<LifecycleError>().and_then(LifecycleError::hint)
    }
}

/// Every hint in the chain, outermost first, without repeats.
pub fn hints(error: &anyhow::Error) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for cause in error.chain() {
        if let Some(h) = hint_of_one(cause)
            && !out.contains(&h)
        {
            out.push(h);
        }
    }
    out
}

/// A hint as every command shows it: `hint: …`, one line per line of the
/// hint, after `indent`. The one place hints are rendered.
pub fn hint_lines(hint: &str, indent: &str) -> String {
    hint.lines().map(|line| format!("{indent}hint: {line}\n")).collect()
}

/// Writes a hint on stderr (after an error).
pub fn print_hint(hint: &str) {
    eprint!("{}", hint_lines(hint, ""));
}

/// The exit code an error ends the run with.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    error.chain().find_map(|c| c.downcast_ref::<Hinted>().map(|h| h.code)).unwrap_or(exit::FAILURE)
}
