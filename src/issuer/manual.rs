//! The `manual` issuer: values come from a person via `chitty-secrets set`;
//! rotation reminds, never invents.

use async_trait::async_trait;

use super::{IssueRequest, Issued, Issuer, IssuerError, Revoked, Verdict};
use crate::secret::Secret;

pub struct ManualIssuer {
    name: String,
    instructions: Option<String>,
}

impl ManualIssuer {
    pub fn new(name: &str, instructions: Option<String>) -> Self {
        ManualIssuer { name: name.to_string(), instructions }
    }
}

#[async_trait]
impl Issuer for ManualIssuer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn issue(&self, request: &IssueRequest<'_>) -> Result<Issued, IssuerError> {
        Err(IssuerError::ManualOnly { token: request.token.to_string(), instructions: self.instructions.clone() })
    }

    async fn verify(&self, value: &Secret) -> Result<Verdict, IssuerError> {
        Ok(if value.is_empty() { Verdict::Invalid("is empty".into()) } else { Verdict::Valid })
    }

    async fn revoke(&self, _token_id: Option<&str>) -> Result<Revoked, IssuerError> {
        Ok(Revoked::NotSupported)
    }
}
