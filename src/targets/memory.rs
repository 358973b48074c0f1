//! An in-memory target, for tests: behind the same [`Target`] trait and run
//! through the same conformance suite as the real ones. It can act as a
//! local target (values read back) or a remote one (names listed, values
//! write-only), and fail on demand.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{PutResults, RemoteSecret, Target, TargetError, TargetId, Written};
use crate::secret::Secret;

/// What the target holds; shared, so a test can look and meddle.
#[derive(Default)]
pub struct MemoryStore {
    secrets: Mutex<BTreeMap<String, (Secret, DateTime<Utc>)>>,
    failing: Mutex<BTreeSet<String>>,
    down: Mutex<Option<String>>,
    writes: Mutex<usize>,
}

impl MemoryStore {
    /// The value held under `name`.
    pub fn value(&self, name: &str) -> Option<Secret> {
        self.secrets.lock().unwrap().get(name).map(|(v, _)| v.clone())
    }

    pub fn names(&self) -> Vec<String> {
        self.secrets.lock().unwrap().keys().cloned().collect()
    }

    /// A change made by hand, outside chitty-secrets.
    pub fn set_by_hand(&self, name: &str, value: &str) {
        self.secrets.lock().unwrap().insert(name.into(), (Secret::new(value), Utc::now()));
    }

    pub fn delete_by_hand(&self, name: &str) {
        self.secrets.lock().unwrap().remove(name);
    }

    /// Writes of `name` fail from now on (until [`MemoryStore::heal`]).
    pub fn fail_writes_of(&self, name: &str) {
        self.failing.lock().unwrap().insert(name.into());
    }

    /// Every call fails with `why` (until [`MemoryStore::heal`]).
    pub fn take_down(&self, why: &str) {
        *self.down.lock().unwrap() = Some(why.into());
    }

    pub fn heal(&self) {
        self.failing.lock().unwrap().clear();
        *self.down.lock().unwrap() = None;
    }

    /// Successful writes so far.
    pub fn writes(&self) -> usize {
        *self.writes.lock().unwrap()
    }
}

pub struct MemoryTarget {
    address: TargetId,
    /// Remote targets never give values back, only names.
    remote: bool,
    store: Arc<MemoryStore>,
}

impl MemoryTarget {
    pub fn new(address: TargetId, remote: bool, store: Arc<MemoryStore>) -> Self {
        MemoryTarget { address, remote, store }
    }

    fn down(&self) -> Result<(), TargetError> {
        match &*self.store.down.lock().unwrap() {
            Some(why) => {
                Err(TargetError::new(&self.address, why.clone(), Some("bring the target back, then run again"))
                    .answered(503, Vec::new()))
            }
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Target for MemoryTarget {
    fn address(&self) -> &TargetId {
        &self.address
    }

    async fn put_many(&self, items: &[(String, Secret)]) -> PutResults {
        if let Err(e) = self.down() {
            return super::all_failed(items, &e);
        }
        let failing = self.store.failing.lock().unwrap().clone();
        let mut secrets = self.store.secrets.lock().unwrap();
        items
            .iter()
            .map(|(name, value)| {
                if failing.contains(name) {
                    let e = TargetError::new(&self.address, format!("{name}: refused by the target"), None);
                    return (name.clone(), Err(e.answered(500, Vec::new())));
                }
                let existed = secrets.insert(name.clone(), (value.clone(), Utc::now())).is_some();
                *self.store.writes.lock().unwrap() += 1;
                (name.clone(), Ok(if existed { Written::Updated } else { Written::Created }))
            })
            .collect()
    }

    async fn read(&self, names: &[String]) -> Result<Option<Vec<Option<Secret>>>, TargetError> {
        self.down()?;
        if self.remote {
            return Ok(None);
        }
        Ok(Some(names.iter().map(|n| self.store.value(n)).collect()))
    }

    async fn list(&self) -> Result<Option<Vec<RemoteSecret>>, TargetError> {
        self.down()?;
        if !self.remote {
            return Ok(None);
        }
        let secrets = self.store.secrets.lock().unwrap();
        Ok(Some(
            secrets
                .iter()
                .map(|(name, (_, at))| RemoteSecret { updated_at: Some(*at), ..RemoteSecret::named(name.clone()) })
                .collect(),
        ))
    }

    async fn delete(&self, name: &str) -> Result<(), TargetError> {
        self.down()?;
        self.store.secrets.lock().unwrap().remove(name);
        Ok(())
    }
}
