//! Which environment variables a set of tokens needs, derived from the
//! policies: the GitHub token for GitHub targets, Cloudflare's token and
//! account for Workers (over the API), and every issuer's `env:NAME`.
//! Commands use it to say what is missing before any request (and `ci
//! init` to map exactly these into the workflow).

use std::collections::BTreeMap;

use crate::policy::{CredentialSource, Policy};

/// One variable (or a set of alternatives: any one will do) and what needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// The variable names; any one of them set is enough.
    pub any_of: Vec<String>,
    /// Target addresses and issuers that need it.
    pub used_by: Vec<String>,
    /// Whether a remote target (not an issuer) needs it.
    pub for_targets: bool,
}

impl Need {
    /// Whether this is the GitHub token (read from any of its variables).
    pub fn is_github_token(&self) -> bool {
        self.any_of.iter().any(|v| is_github_token(v))
    }

    pub fn names(&self) -> String {
        self.any_of.join(" or ")
    }

    /// `GITHUB_TOKEN or GH_TOKEN is not set (github:o/r needs it)`.
    pub fn unset(&self) -> String {
        let s = if self.used_by.len() == 1 { "s" } else { "" };
        format!("{} is not set ({} need{s} it)", self.names(), self.used_by.join(", "))
    }
}

/// What the selected tokens (all when `only` is empty) need.
pub fn needed(policy: &Policy, only: &[String]) -> Vec<Need> {
    let mut needs: BTreeMap<Vec<String>, (Vec<String>, bool)> = BTreeMap::new();
    let mut add = |vars: &[&str], user: String, for_targets: bool| {
        let entry = needs.entry(vars.iter().map(|v| v.to_string()).collect()).or_default();
        if !entry.0.contains(&user) {
            entry.0.push(user);
        }
        entry.1 |= for_targets;
    };
    for token in policy.tokens.values().filter(|t| only.is_empty() || only.contains(&t.name)) {
        for target in &token.targets {
            for any_of in target.spec.kind().credentials() {
                add(any_of, target.address().to_string(), true);
            }
        }
        let issuer = policy.issuer_of(token);
        if let Some(CredentialSource::Env(var)) = issuer.spec.credential_from() {
            add(&[var.as_str()], format!("issuer `{}`", issuer.name), false);
        }
    }
    needs.into_iter().map(|(any_of, (used_by, for_targets))| Need { any_of, used_by, for_targets }).collect()
}

/// The needs no variable of which is set (empty counts as unset).
pub fn missing(needs: &[Need], is_set: impl Fn(&str) -> bool) -> Vec<&Need> {
    needs.iter().filter(|n| !n.any_of.iter().any(|v| is_set(v))).collect()
}

/// The repository secret that provides `var` in CI. A repository secret
/// may not be named `GITHUB_*`, and the workflow's own `GITHUB_TOKEN`
/// cannot write secrets: the GitHub token comes from its own secret.
pub fn secret_name(var: &str) -> String {
    if is_github_token(var) { "CHITTY_SECRETS_GITHUB_TOKEN".into() } else { var.into() }
}

/// Whether `var` is one of the variables the GitHub token is read from
/// (in CI: a personal token's secret, or a GitHub App's minted token).
pub fn is_github_token(var: &str) -> bool {
    matches!(var, "GITHUB_TOKEN" | "GH_TOKEN")
}

/// Whether the process environment sets `name` (non-empty).
pub fn env_is_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}
