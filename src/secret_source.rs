//! Where an issuer's own credential comes from: `env:NAME` or
//! `registry:TOKEN`. Never the credential itself in a policy file.

use crate::identity::Identity;
use crate::registry::Registry;
use crate::secret::Secret;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    Registry(String),
}

impl SecretSource {
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, name) = text.split_once(':')?;
        let valid = crate::policy::is_secret_name(name);
        match kind {
            "env" if valid => Some(SecretSource::Env(name.into())),
            "registry" if valid => Some(SecretSource::Registry(name.into())),
            _ => None,
        }
    }

    /// The credential, or a message that says what is missing.
    pub fn resolve(&self, registry: Option<&Registry>, identity: Option<&Identity>) -> Result<Secret, String> {
        match self {
            SecretSource::Env(name) => std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .map(Secret::new)
                .ok_or_else(|| format!("the environment variable {name} is not set")),
            SecretSource::Registry(name) => {
                let (Some(registry), Some(identity)) = (registry, identity) else {
                    return Err(format!("{name} is read from the registry, which needs the identity"));
                };
                let meta = registry.load(name).map_err(|e| e.to_string())?;
                let current = meta.current().ok_or_else(|| format!("the registry has no current value for {name}"))?;
                let values = registry.load_values(name, &identity.key).map_err(|e| e.to_string())?;
                values.get(current.id).cloned().ok_or_else(|| format!("the value of {name} v{} is missing", current.id))
            }
        }
    }
}
