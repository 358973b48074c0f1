//! Issuers: where token values come from. `random` mints locally; `manual`
//! never invents a value (a person supplies it with `set`).

pub mod chitty;
mod command;
pub mod credential;
mod manual;
pub mod memory;
mod random;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

use crate::policy::{IssuerPolicy, IssuerSpec};
use crate::secret::Secret;

pub use manual::ManualIssuer;
pub use random::RandomIssuer;

pub struct IssueRequest<'a> {
    pub token: &'a str,
    pub scopes: &'a [String],
    pub ttl: Option<TimeDelta>,
    pub description: Option<&'a str>,
    pub now: DateTime<Utc>,
    /// A tag that is also in the rotation journal, sent where the service
    /// keeps a description, so a token minted but never recorded (the
    /// process died in between) can be found and revoked.
    pub tag: Option<&'a str>,
}

#[derive(Debug)]
pub struct Issued {
    pub value: Secret,
    pub token_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The scopes the issuer says it granted, where it says (a service may
    /// grant fewer than asked for and still answer 201).
    pub scopes: Option<Vec<String>>,
}

impl Issued {
    /// The asked-for scopes the issuer says it did not grant, if it says.
    pub fn missing_scopes(&self, asked: &[String]) -> Vec<String> {
        match &self.scopes {
            Some(granted) => asked.iter().filter(|a| !granted.contains(a)).cloned().collect(),
            None => Vec::new(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Invalid(String),
}

#[derive(Debug, PartialEq, Eq)]
pub enum Revoked {
    Revoked,
    /// The issuer has no revocation: the old value is retired and left to expire.
    NotSupported,
}

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("{token} is issued by hand: chitty-secrets never invents its value")]
    ManualOnly { token: String, instructions: Option<String> },
    // A service's words may echo what was sent (a credential, the value):
    // they are shown scrubbed.
    #[error("issuer `{issuer}`: {}", crate::secret::scrub(.message))]
    Failed { issuer: String, message: String },
    /// The mint may have reached the service, but no answer came back.
    #[error("issuer `{issuer}`: no answer to the mint ({}); a token may have been issued", crate::secret::scrub(.message))]
    Uncertain { issuer: String, message: String },
    /// The issuer's own credential is not at hand.
    #[error("issuer `{issuer}`: no credential: {}", crate::secret::scrub(.message))]
    Credential { issuer: String, message: String, hint: crate::error::Hint },
    /// The service's quota or rate limit: stop, resumable; never retry in a loop.
    #[error("issuer `{issuer}`: quota or rate limit reached: {}", crate::secret::scrub(.message))]
    Quota { issuer: String, message: String },
}

impl IssuerError {
    pub fn hint(&self) -> Option<crate::error::Hint> {
        self.hint_text().map(crate::error::Hint::from)
    }

    fn hint_text(&self) -> Option<String> {
        match self {
            IssuerError::ManualOnly { token, instructions } => Some(format!(
                "{}pipe the new value into `chitty-secrets set {token}`, then `chitty-secrets sync`",
                instructions.as_deref().map(|i| format!("{i}; then ")).unwrap_or_default()
            )),
            IssuerError::Failed { .. } => None,
            IssuerError::Credential { hint, .. } => Some(hint.to_string()),
            IssuerError::Uncertain { .. } => Some(
                "run `chitty-secrets rotate` again: it records the possibly issued token (see `check`) and mints anew".into(),
            ),
            IssuerError::Quota { .. } => Some(
                "the issuer's quota (the ID service's free tier allows 1,000 key-value operations a day) or the token's own rate limit is used up; nothing was retried and any rotation is saved as it is: run the same command again later".into(),
            ),
        }
    }
}

#[async_trait]
pub trait Issuer: Send + Sync {
    fn name(&self) -> &str;
    async fn issue(&self, request: &IssueRequest<'_>) -> Result<Issued, IssuerError>;
    /// A cheap check of a value; never mints.
    async fn verify(&self, value: &Secret) -> Result<Verdict, IssuerError>;
    async fn revoke(&self, token_id: Option<&str>) -> Result<Revoked, IssuerError>;
}

/// What issuers may need: the registry and identity (for `registry:`
/// credentials). Remote issuers get their own HTTP client.
#[derive(Clone, Copy, Default)]
pub struct IssuerEnv<'a> {
    pub registry: Option<&'a crate::registry::Registry>,
    pub identity: Option<&'a crate::identity::Identity>,
}

/// Builds the issuer a policy entry describes; `http` gives the run's one
/// client for issuers that call a service.
pub fn build(
    policy: &IssuerPolicy,
    env: IssuerEnv<'_>,
    http: impl FnOnce() -> Result<crate::http::Http, IssuerError>,
) -> Result<Box<dyn Issuer>, IssuerError> {
    let credential = || match policy.spec.credential_from() {
        Some(source) => credential::resolve(source, env.registry, env.identity),
        None => Err(credential::Missing {
            message: "no credential source".into(),
            hint: "name one in the issuer's policy (`env:NAME` or `registry:TOKEN`)".into(),
        }),
    };
    Ok(match &policy.spec {
        IssuerSpec::Random(spec) => Box::new(RandomIssuer::new(&policy.name, spec.clone())),
        IssuerSpec::Manual(spec) => Box::new(ManualIssuer::new(&policy.name, spec.instructions.clone())),
        IssuerSpec::Chittyid(spec) => {
            Box::new(chitty::ChittyidIssuer::new(&policy.name, spec.clone(), http()?, credential()))
        }
        IssuerSpec::Chittyauth(spec) => {
            Box::new(chitty::ChittyauthIssuer::new(&policy.name, spec.clone(), http()?, credential()))
        }
        IssuerSpec::Command(spec) => Box::new(command::CommandIssuer::new(&policy.name, spec.clone())),
    })
}
