//! In-memory backends: every target and every issuer of a policy lives in
//! memory, so the engine (the rotation runner included) is tested with no
//! process, no file outside the registry and no HTTP.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::Backends;
use crate::identity::Identity;
use crate::issuer::memory::{MemoryIssuer, MemoryIssuerState};
use crate::issuer::{Issuer, IssuerError};
use crate::policy::{IssuerPolicy, TargetPolicy};
use crate::registry::Registry;
use crate::targets::memory::{MemoryStore, MemoryTarget};
use crate::targets::{Target, TargetError};

#[derive(Default)]
pub struct MemoryBackends {
    stores: Mutex<BTreeMap<String, Arc<MemoryStore>>>,
    issuers: Mutex<BTreeMap<String, Arc<MemoryIssuerState>>>,
}

impl MemoryBackends {
    /// The store behind a target address (made on first use).
    pub fn store(&self, address: &str) -> Arc<MemoryStore> {
        self.stores.lock().unwrap().entry(address.to_string()).or_default().clone()
    }

    /// The state behind an issuer name (made on first use).
    pub fn issuer_state(&self, name: &str) -> Arc<MemoryIssuerState> {
        self.issuers.lock().unwrap().entry(name.to_string()).or_default().clone()
    }
}

impl Backends for MemoryBackends {
    fn target(&self, policy: &TargetPolicy) -> Result<Box<dyn Target>, TargetError> {
        let address = policy.address();
        Ok(Box::new(MemoryTarget::new(address.clone(), policy.is_remote(), self.store(address.as_str()))))
    }

    fn issuer(
        &self,
        policy: &IssuerPolicy,
        _registry: &Registry,
        _identity: Option<&Identity>,
    ) -> Result<Box<dyn Issuer>, IssuerError> {
        Ok(Box::new(MemoryIssuer::new(&policy.name, self.issuer_state(&policy.name))))
    }
}

impl<T: Backends + ?Sized> Backends for Arc<T> {
    fn target(&self, policy: &TargetPolicy) -> Result<Box<dyn Target>, TargetError> {
        (**self).target(policy)
    }

    fn issuer(
        &self,
        policy: &IssuerPolicy,
        registry: &Registry,
        identity: Option<&Identity>,
    ) -> Result<Box<dyn Issuer>, IssuerError> {
        (**self).issuer(policy, registry, identity)
    }

    fn remote_counts(&self) -> (u64, u64) {
        (**self).remote_counts()
    }
}
