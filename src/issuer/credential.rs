//! An issuer's own credential, from where the policy says
//! ([`CredentialSource`]): the environment, or a token in this registry.

use crate::identity::Identity;
use crate::policy::CredentialSource;
use crate::registry::Registry;
use crate::secret::Secret;

/// The credential, or a message that says what is missing.
pub fn resolve(
    source: &CredentialSource,
    registry: Option<&Registry>,
    identity: Option<&Identity>,
) -> Result<Secret, String> {
    match source {
        CredentialSource::Env(name) => std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret::new)
            .ok_or_else(|| format!("the environment variable {name} is not set")),
        CredentialSource::Registry(name) => {
            let (Some(registry), Some(identity)) = (registry, identity) else {
                return Err(format!("{name} is read from the registry, which needs the identity"));
            };
            let meta = registry.load(name).map_err(|e| e.to_string())?;
            let current = meta.current().ok_or_else(|| format!("the registry has no current value for {name}"))?;
            let values = registry.load_values(&meta, &identity.key).map_err(|e| e.to_string())?;
            values.get(current.id).cloned().ok_or_else(|| format!("the value of {name} v{} is missing", current.id))
        }
        CredentialSource::Invalid => Err("the policy's credential source is invalid".into()),
    }
}
