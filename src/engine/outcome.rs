//! What the engine did, as typed events: the human renderer, `--json` and
//! the GitHub Actions summary all read these.

use serde::Serialize;

use crate::error::Hint;
use crate::registry::Stage;
use crate::targets::TargetId;

/// One thing a run did to one token.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Minted {
        version: u32,
        issuer: String,
    },
    Delivered {
        version: u32,
        target: TargetId,
        names: Vec<String>,
    },
    Verified {
        version: u32,
        issuer: String,
    },
    Promoted {
        version: u32,
    },
    /// Retired (left to expire) or revoked at the issuer.
    Ended {
        version: u32,
        stage: Stage,
    },
    Aborted {
        version: u32,
        stage: Stage,
    },
    /// A rotation journal with no saved value was closed.
    JournalClosed,
    /// A mint that may have reached the issuer was never recorded.
    OrphanRecorded {
        tag: String,
        issuer: String,
    },
    Pruned {
        token: String,
        target: TargetId,
        name: String,
    },
    /// Done, but something a person must see (e.g. an emergency revocation
    /// of a value a deployed Worker version may still run).
    Warning {
        message: String,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Event::Minted { version, issuer } => write!(f, "minted v{version} (pending) with issuer `{issuer}`"),
            Event::Delivered { version, target, names } => {
                write!(f, "delivered v{version} to {target} ({})", names.join(", "))
            }
            Event::Verified { version, issuer } => write!(f, "verified v{version} with issuer `{issuer}`"),
            Event::Promoted { version } => write!(f, "promoted v{version} to current"),
            Event::Ended { version, stage } => write!(f, "{} v{version}", stage.as_str()),
            Event::Aborted { version, stage } => write!(f, "aborted: v{version} {}", stage.as_str()),
            Event::JournalClosed => write!(f, "closed a rotation that never saved a new value"),
            Event::OrphanRecorded { tag, issuer } => write!(
                f,
                "recorded a possibly issued, unrecorded token (tag {tag}): revoke it at `{issuer}`, see `chitty-secrets check`"
            ),
            Event::Warning { message } => write!(f, "warning: {message}"),
            Event::Pruned { token, target, name } => {
                write!(f, "pruned {name} from {target} (written earlier for {token}; no policy declares it now)")
            }
        }
    }
}

/// How one token's run ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Everything planned was done.
    Done { done: Vec<Event> },
    /// Stopped with a pending version or undelivered names. `resumable`:
    /// nothing needs fixing, the same command run again goes on (a pending
    /// rotation, writes deferred by `--max-duration`); otherwise a target
    /// failed and needs a look first.
    Partial { done: Vec<Event>, error: String, hint: Hint, resumable: bool },
    /// Could not start (nothing changed), or a person must act.
    Failed {
        error: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<Hint>,
    },
}

impl Outcome {
    /// Whether everything planned was done.
    pub fn is_done(&self) -> bool {
        matches!(self, Outcome::Done { .. })
    }

    pub fn events(&self) -> &[Event] {
        match self {
            Outcome::Done { done } | Outcome::Partial { done, .. } => done,
            Outcome::Failed { .. } => &[],
        }
    }

    pub fn failed(error: impl Into<String>, hint: Option<Hint>) -> Self {
        Outcome::Failed { error: error.into(), hint }
    }
}

/// A token's outcome. `--json` prints every field for every result (the
/// README's shape): `{token, result, done, error, hint, resumable}`, with
/// `error` and `hint` null where there is none.
#[derive(Debug, Clone)]
pub struct TokenOutcome {
    pub token: String,
    pub outcome: Outcome,
}

impl Serialize for TokenOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shape<'a> {
            token: &'a str,
            result: &'static str,
            done: &'a [Event],
            error: Option<&'a str>,
            hint: Option<&'a str>,
            resumable: bool,
        }
        let (result, error, hint, resumable) = match &self.outcome {
            Outcome::Done { .. } => ("done", None, None, false),
            Outcome::Partial { error, hint, resumable, .. } => {
                ("partial", Some(error.as_str()), Some(hint.as_str()), *resumable)
            }
            Outcome::Failed { error, hint } => ("failed", Some(error.as_str()), hint.as_ref().map(Hint::as_str), false),
        };
        Shape { token: &self.token, result, done: self.outcome.events(), error, hint, resumable }.serialize(serializer)
    }
}
