//! An issuer's own credential, from where the policy says
//! ([`CredentialSource`]): the environment, or a token in this registry.

use crate::identity::Identity;
use crate::policy::CredentialSource;
use crate::registry::Registry;
use crate::secret::Secret;

/// Why the credential is not at hand, and what to do about it.
#[derive(Debug, Clone)]
pub struct Missing {
    pub message: String,
    pub hint: crate::error::Hint,
}

impl Missing {
    fn new(message: impl Into<String>, hint: impl Into<crate::error::Hint>) -> Self {
        Missing { message: message.into(), hint: hint.into() }
    }
}

/// The credential, or what is missing and what to do.
pub fn resolve(
    source: &CredentialSource,
    registry: Option<&Registry>,
    identity: Option<&Identity>,
) -> Result<Secret, Missing> {
    match source {
        CredentialSource::Env(name) => std::env::var(name).ok().filter(|v| !v.is_empty()).map(Secret::new).ok_or_else(|| {
            Missing::new(
                format!("the environment variable {name} is not set"),
                format!(
                    "export {name}; in CI, add it as a secret and pass it to the step (`chitty-secrets ci init` prints the mapping, `chitty-secrets ci doctor` checks it)"
                ),
            )
        }),
        CredentialSource::Registry(name) => {
            let (Some(registry), Some(identity)) = (registry, identity) else {
                return Err(Missing::new(
                    format!("{name} is read from the registry, which needs the identity"),
                    "give the identity: --identity FILE, or CHITTY_SECRETS_IDENTITY in CI",
                ));
            };
            let meta = registry.load(name).map_err(|e| {
                let hint = e.hint().unwrap_or_else(|| format!("see `chitty-secrets check` about {name}").into());
                Missing::new(e.to_string(), hint)
            })?;
            let current = meta.current().ok_or_else(|| {
                Missing::new(
                    format!("the registry has no current value for {name}"),
                    format!("store it once: pipe the value into `chitty-secrets set {name}`"),
                )
            })?;
            let values = registry.load_values(&meta, &identity.key).map_err(|e| {
                let hint = e.hint().unwrap_or_else(|| format!("see `chitty-secrets check` about {name}").into());
                Missing::new(e.to_string(), hint)
            })?;
            values.get(current.id).cloned().ok_or_else(|| {
                Missing::new(
                    format!("the value of {name} v{} is missing", current.id),
                    format!("restore its value file from git (`git log -- .chitty-secrets/tokens/{name}.*`), or `chitty-secrets set {name}` again"),
                )
            })
        }
        CredentialSource::Invalid => Err(Missing::new(
            "the policy's credential source is invalid",
            "write it as `env:NAME` or `registry:TOKEN` in the issuer's policy",
        )),
    }
}
