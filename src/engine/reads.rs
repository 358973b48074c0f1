//! Reads that hand values out (`run`, `scan`): decrypted under the
//! identity, held as [`Secret`]s, never written anywhere.

use super::Workspace;
use crate::registry::Registry;
use crate::scan::Known;
use crate::secret::Secret;

/// What `run` puts into a command's environment.
pub struct Environment {
    /// Variable name and value: each token under its own name and every
    /// name its targets use.
    pub vars: Vec<(String, Secret)>,
    /// Tokens left out because they have no value yet.
    pub without_value: Vec<String>,
}

impl Workspace {
    /// The current value of every selected token (all when `only` is empty).
    pub fn environment(&self, only: &[String]) -> anyhow::Result<Environment> {
        for name in only {
            self.token(name)?;
        }
        let identity = self.identity()?;
        let mut env = Environment { vars: Vec::new(), without_value: Vec::new() };
        for (name, token) in &self.policy.tokens {
            if !only.is_empty() && !only.contains(name) {
                continue;
            }
            let meta = self.registry.load(name)?;
            let Some(current) = meta.current() else {
                env.without_value.push(name.clone());
                continue;
            };
            let values = self.registry.load_values(name, &identity.key)?;
            let Some(value) = values.get(current.id) else {
                continue;
            };
            env.vars.push((name.clone(), value.clone()));
            for alias in token.targets.iter().flat_map(|t| &t.names) {
                env.vars.push((alias.clone(), value.clone()));
            }
        }
        Ok(env)
    }
}

/// Every version's value of every token in the registry, for the leak scan.
pub fn known_values(registry: &Registry, key: &age::x25519::Identity) -> anyhow::Result<Vec<Known>> {
    let mut known = Vec::new();
    for name in registry.token_names()? {
        let meta = registry.load(&name)?;
        let values = registry.load_values(&name, key)?;
        for v in &meta.versions {
            if let Some(value) = values.get(v.id) {
                known.push(Known { token: name.clone(), version: v.id, stage: v.stage, value: value.clone() });
            }
        }
    }
    Ok(known)
}
