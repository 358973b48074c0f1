//! An in-memory issuer, for tests: behind the same [`Issuer`] trait and run
//! through the same conformance suite as the real ones. It mints, verifies
//! and revokes for real (in memory), keeps a quota, and can lose the
//! answer to a mint (the token exists, the caller never hears of it).

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{IssueRequest, Issued, Issuer, IssuerError, Revoked, Verdict};
use crate::secret::Secret;

/// One token the issuer minted.
#[derive(Debug, Clone)]
pub struct Minted {
    pub token_id: String,
    pub value: String,
    pub description: Option<String>,
    pub revoked: bool,
}

/// The issuer's state; shared, so a test can look and set faults.
#[derive(Default)]
pub struct MemoryIssuerState {
    pub minted: Mutex<Vec<Minted>>,
    /// Calls of any kind still allowed; `None` is unlimited.
    pub quota: Mutex<Option<usize>>,
    /// The next mint is made but its answer is lost.
    pub lose_next_answer: Mutex<bool>,
    /// Every call is refused with this message.
    pub refuse: Mutex<Option<String>>,
    pub calls: Mutex<usize>,
}

impl MemoryIssuerState {
    pub fn is_valid(&self, value: &str) -> bool {
        self.minted.lock().unwrap().iter().any(|m| m.value == value && !m.revoked)
    }

    pub fn calls(&self) -> usize {
        *self.calls.lock().unwrap()
    }
}

pub struct MemoryIssuer {
    name: String,
    state: Arc<MemoryIssuerState>,
}

impl MemoryIssuer {
    pub fn new(name: &str, state: Arc<MemoryIssuerState>) -> Self {
        MemoryIssuer { name: name.to_string(), state }
    }

    /// Counts a call against the quota; refused calls are answered "no".
    fn spend(&self) -> Result<(), IssuerError> {
        *self.state.calls.lock().unwrap() += 1;
        if let Some(message) = self.state.refuse.lock().unwrap().clone() {
            return Err(IssuerError::Failed { issuer: self.name.clone(), message });
        }
        let mut quota = self.state.quota.lock().unwrap();
        match quota.as_mut() {
            Some(0) => Err(IssuerError::Quota { issuer: self.name.clone(), message: "quota exhausted".into() }),
            Some(n) => {
                *n -= 1;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Issuer for MemoryIssuer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn issue(&self, request: &IssueRequest<'_>) -> Result<Issued, IssuerError> {
        self.spend()?;
        let mut minted = self.state.minted.lock().unwrap();
        let token_id = format!("mem-{}", minted.len() + 1);
        let mut bytes = [0u8; 16];
        getrandom::getrandom(&mut bytes).expect("the OS random source");
        let value: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let value = format!("mem_{value}");
        let description = match (request.description, request.tag) {
            (d, Some(tag)) => Some(format!("{} [chitty-secrets {tag}]", d.unwrap_or(request.token))),
            (d, None) => d.map(str::to_string),
        };
        minted.push(Minted { token_id: token_id.clone(), value: value.clone(), description, revoked: false });
        if std::mem::take(&mut *self.state.lose_next_answer.lock().unwrap()) {
            return Err(IssuerError::Uncertain { issuer: self.name.clone(), message: "the answer was lost".into() });
        }
        Ok(Issued {
            value: Secret::new(value),
            token_id: Some(token_id),
            expires_at: request.ttl.map(|ttl| request.now + ttl),
            scopes: None,
        })
    }

    async fn verify(&self, value: &Secret) -> Result<Verdict, IssuerError> {
        self.spend()?;
        Ok(if self.state.is_valid(value.expose()) {
            Verdict::Valid
        } else {
            Verdict::Invalid("is not a live token of this issuer".into())
        })
    }

    async fn revoke(&self, token_id: Option<&str>) -> Result<Revoked, IssuerError> {
        let Some(token_id) = token_id else {
            return Ok(Revoked::NotSupported);
        };
        self.spend()?;
        let mut minted = self.state.minted.lock().unwrap();
        match minted.iter_mut().find(|m| m.token_id == token_id) {
            Some(m) => {
                m.revoked = true;
                Ok(Revoked::Revoked)
            }
            None => Err(IssuerError::Failed { issuer: self.name.clone(), message: format!("no token {token_id}") }),
        }
    }
}
