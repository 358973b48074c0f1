//! Issuers: where token values come from. `random` mints locally; `manual`
//! never invents a value (a person supplies it with `set`).

mod manual;
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
}

#[derive(Debug)]
pub struct Issued {
    pub value: Secret,
    pub token_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
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
    #[error("issuer `{issuer}`: {message}")]
    Failed { issuer: String, message: String },
}

impl IssuerError {
    pub fn hint(&self) -> Option<String> {
        match self {
            IssuerError::ManualOnly { token, instructions } => Some(format!(
                "{}pipe the new value into `chitty-secrets set {token}`, then `chitty-secrets sync`",
                instructions.as_deref().map(|i| format!("{i}; then ")).unwrap_or_default()
            )),
            IssuerError::Failed { .. } => None,
        }
    }
}

#[async_trait]
pub trait Issuer: Send + Sync {
    fn name(&self) -> &str;
    /// Whether the issuer can mint on its own (false for `manual`).
    fn can_issue(&self) -> bool {
        true
    }
    async fn issue(&self, request: &IssueRequest<'_>) -> Result<Issued, IssuerError>;
    /// A cheap check of a value; never mints.
    async fn verify(&self, value: &Secret) -> Result<Verdict, IssuerError>;
    async fn revoke(&self, token_id: Option<&str>) -> Result<Revoked, IssuerError>;
}

pub fn build(policy: &IssuerPolicy) -> Box<dyn Issuer> {
    match &policy.spec {
        IssuerSpec::Random(spec) => Box::new(RandomIssuer::new(&policy.name, spec.clone())),
        IssuerSpec::Manual(spec) => Box::new(ManualIssuer::new(&policy.name, spec.instructions.clone())),
    }
}
