//! Reads that hand values out (`run`, `scan`): decrypted under the
//! identity, held as [`Secret`]s, never written anywhere.

use super::Workspace;
use crate::error::Hinted;
use crate::registry::{Registry, RegistryError};
use crate::scan::Known;
use crate::secret::Secret;

/// What `run` puts into a command's environment.
pub struct Environment {
    /// Variable name and value: each token under its own name and every
    /// name its targets use.
    pub vars: Vec<(String, Secret)>,
    /// Tokens left out (`allow_missing`), and why.
    pub left_out: Vec<(String, String)>,
}

impl Workspace {
    /// The current value of every selected token (all when `only` is empty).
    /// A declared token without a value (none yet, or its value file deleted
    /// or older than its metadata) stops the run, unless `allow_missing`
    /// leaves it out and says so.
    pub fn environment(&self, only: &[String], allow_missing: bool) -> anyhow::Result<Environment> {
        for name in only {
            self.token(name)?;
        }
        let identity = self.identity()?;
        let mut env = Environment { vars: Vec::new(), left_out: Vec::new() };
        for (name, token) in &self.policy.tokens {
            if !only.is_empty() && !only.contains(name) {
                continue;
            }
            let meta = self.registry.load(name)?;
            let Some(current) = meta.current() else {
                env.left_out.push((name.clone(), "it has no value yet".into()));
                continue;
            };
            let values = match self.registry.live_values(&meta, &identity.key) {
                Ok(values) => values,
                Err(e @ RegistryError::ValuesMissing { .. }) => {
                    env.left_out.push((name.clone(), e.to_string()));
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let Some(value) = values.get(current.id) else {
                continue;
            };
            env.vars.push((name.clone(), value.clone()));
            for alias in token.targets.iter().flat_map(|t| &t.names) {
                env.vars.push((alias.clone(), value.clone()));
            }
        }
        if !allow_missing && !env.left_out.is_empty() {
            let why: Vec<String> = env.left_out.iter().map(|(name, why)| format!("{name}: {why}")).collect();
            return Err(Hinted::new(
                format!("not starting the command: declared tokens have no value\n  {}", why.join("\n  ")),
                "set or rotate them (or restore the value files from git), or pass --allow-missing to start without them",
            )
            .into());
        }
        Ok(env)
    }
}

/// Every version's value of every token in the registry, for the leak
/// scan, and the tokens whose files could not be read (their values are
/// not looked for; the others still are).
pub fn known_values(registry: &Registry, key: &age::x25519::Identity) -> anyhow::Result<(Vec<Known>, Vec<String>)> {
    let mut known = Vec::new();
    let mut unreadable = Vec::new();
    for name in registry.token_names()? {
        let read = registry.load(&name).and_then(|meta| Ok((registry.load_values(&meta, key)?, meta)));
        let (values, meta) = match read {
            Ok(read) => read,
            Err(e) => {
                unreadable.push(format!("{name}: {e}"));
                continue;
            }
        };
        for v in &meta.versions {
            if let Some(value) = values.get(v.id) {
                known.push(Known { token: name.clone(), version: v.id, stage: v.stage, value: value.clone() });
            }
        }
    }
    Ok((known, unreadable))
}
