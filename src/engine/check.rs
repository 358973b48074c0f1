//! `check`: the offline findings (see [`crate::check`]) and, with
//! `--online`, one cheap issuer verify per token (never a mint) and one
//! listing of each remote target (names only).

use std::path::PathBuf;

use super::Workspace;
use super::observe::not_deployed_message;
use crate::check::{Finding, Inputs, Severity};
use crate::issuer::Verdict;
use crate::rotation::{Observations, Observed};

/// What `check` found.
#[derive(serde::Serialize)]
pub struct CheckReport {
    /// Most severe first.
    pub findings: Vec<Finding>,
    /// Calls made to any service: zero unless online.
    pub service_calls: usize,
    /// Whether values were decrypted to compare .env files and look inside values.
    pub values_compared: bool,
}

impl Workspace {
    /// Every finding: offline ones always, online ones when asked.
    /// `identity_files` are the files that may hold an identity.
    pub async fn check(
        &self,
        window: chrono::TimeDelta,
        online: bool,
        identity_files: Vec<PathBuf>,
    ) -> anyhow::Result<CheckReport> {
        let inputs = Inputs {
            policy: &self.policy,
            registry: &self.registry,
            identity: self.identity.as_ref(),
            identity_files,
            now: self.now,
            window,
        };
        let mut findings = crate::check::run(&inputs)?;
        let mut service_calls = 0;
        if online {
            let (more, calls) = self.check_online().await?;
            findings.extend(more);
            service_calls = calls;
            findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        }
        Ok(CheckReport { findings, service_calls, values_compared: self.identity.is_some() })
    }

    /// The online findings, and how many calls they cost.
    async fn check_online(&self) -> anyhow::Result<(Vec<Finding>, usize)> {
        let identity = self.identity()?;
        let mut findings = Vec::new();
        let mut service_calls = 0;
        for (name, token) in &self.policy.tokens {
            let meta = self.registry.load(name)?;
            let Some(current) = meta.current() else {
                continue;
            };
            let values = self.registry.live_values(&meta, &identity.key)?;
            let Some(value) = values.get(current.id) else {
                continue;
            };
            // A local issuer's verify (a shape check) is no service call.
            if !self.policy.issuer_of(token).spec.is_local() {
                service_calls += 1;
            }
            let issuer = self.backends.issuer(self.policy.issuer_of(token), &self.registry, Some(identity))?;
            if let Verdict::Invalid(why) = issuer.verify(value).await? {
                findings.push(Finding {
                    severity: Severity::Error,
                    code: "issuer-rejects",
                    token: Some(name.clone()),
                    file: None,
                    line: None,
                    message: format!("issuer `{}` says {name} v{} is not valid: it {why}", token.issuer, current.id),
                    hint: Some("run `chitty-secrets rotate`".into()),
                });
            }
        }
        // One list call per remote target: names and `updated_at`, never values.
        if self.needs_remote(&[]) {
            let before = self.backends.remote_counts().0;
            let metas = self.metas()?;
            let mut seen = Observations::new();
            let look = self.observe_remote(&metas, &mut seen).await?;
            for (address, said) in self.readers(&super::opened::Opened::default()).await {
                let (severity, code, message) = match said {
                    Ok(r) if r.warning => (Severity::Warning, "shadowed-secret", r.message),
                    Ok(r) => (Severity::Info, "read-by", r.message),
                    Err(e) => (Severity::Warning, "readers-unknown", format!("who reads it was not found out: {e}")),
                };
                findings.push(Finding {
                    severity,
                    code,
                    token: None,
                    file: Some(address.to_string()),
                    line: None,
                    message,
                    hint: None,
                });
            }
            service_calls += (self.backends.remote_counts().0 - before) as usize;
            for ((token, key), observed) in seen {
                let drift = |what: &str| format!("{} at {} {what}", key.name, key.target);
                let sync_hint = "run `chitty-secrets sync --verify`";
                let (severity, code, message, hint) = match observed {
                    Observed::Missing => (Severity::Error, "remote-missing", drift("is missing"), sync_hint),
                    Observed::Differs => (
                        Severity::Error,
                        "remote-changed",
                        match look.changed_by_others.get(&key.target) {
                            Some(how) => drift(&format!("cannot be vouched for: {how}")),
                            None => drift("was changed by someone else since it was delivered"),
                        },
                        sync_hint,
                    ),
                    Observed::NotDeployed => (
                        Severity::Warning,
                        "not-deployed",
                        not_deployed_message(&metas, &token, &key),
                        crate::targets::ROLLOUT_HINT,
                    ),
                    Observed::Holds | Observed::Redeliver => continue,
                };
                findings.push(Finding {
                    severity,
                    code,
                    token: Some(token),
                    file: Some(key.target.to_string()),
                    line: None,
                    message,
                    hint: Some(hint.into()),
                });
            }
        }
        Ok((findings, service_calls))
    }
}
