//! Where targets and issuers come from. The engine asks a [`Backends`] for
//! each one, so tests inject in-memory backends (see [`super::memory`]) and
//! the binary uses [`Live`]: real files, one HTTP client per run for every
//! remote target, one for every issuer.

use std::sync::OnceLock;

use crate::http::Http;
use crate::identity::Identity;
use crate::issuer::{self, Issuer, IssuerEnv, IssuerError};
use crate::policy::{IssuerPolicy, TargetPolicy};
use crate::project::ProjectFiles;
use crate::registry::Registry;
use crate::targets::{self, Remote, Target, TargetError, TargetId};

pub trait Backends: Send + Sync {
    /// The target a policy entry describes.
    fn target(&self, policy: &TargetPolicy) -> Result<Box<dyn Target>, TargetError>;
    /// The issuer a policy entry describes; `registry:` credentials are read
    /// with `registry` and `identity`.
    fn issuer(
        &self,
        policy: &IssuerPolicy,
        registry: &Registry,
        identity: Option<&Identity>,
    ) -> Result<Box<dyn Issuer>, IssuerError>;
    /// Requests sent to remote targets so far, and how many were retries.
    fn remote_counts(&self) -> (u64, u64) {
        (0, 0)
    }
    /// No paced write starts that would end after `deadline`.
    fn stop_writing_at(&self, _deadline: std::time::Instant) {}
}

/// The real thing. HTTP clients are made on first use, so a run that
/// touches no service builds none.
pub struct Live {
    files: ProjectFiles,
    remote: OnceLock<Result<Remote, String>>,
    deadline: OnceLock<std::time::Instant>,
    issuer_http: OnceLock<Result<Http, String>>,
}

impl Live {
    /// `files` is the project: where .env paths resolve and may write.
    pub fn new(files: ProjectFiles) -> Self {
        Live { files, remote: OnceLock::new(), issuer_http: OnceLock::new(), deadline: OnceLock::new() }
    }

    fn remote(&self, address: &TargetId) -> Result<Remote, TargetError> {
        self.remote
            .get_or_init(|| {
                let remote = Remote::from_env()?;
                if let Some(deadline) = self.deadline.get() {
                    remote.stop_writing_at(*deadline);
                }
                Ok(remote)
            })
            .clone()
            // The same failure for every target, under each target's own
            // address.
            .map_err(|e| TargetError::new(address, e, None))
    }
}

impl Backends for Live {
    fn target(&self, policy: &TargetPolicy) -> Result<Box<dyn Target>, TargetError> {
        let remote = if policy.is_remote() { Some(self.remote(&policy.address())?) } else { None };
        targets::build(policy, &self.files, remote.as_ref())
    }

    fn issuer(
        &self,
        policy: &IssuerPolicy,
        registry: &Registry,
        identity: Option<&Identity>,
    ) -> Result<Box<dyn Issuer>, IssuerError> {
        let http = || {
            self.issuer_http
                .get_or_init(|| Http::new().map(Http::without_rate_limit_retries).map_err(|e| e.to_string()))
                .clone()
                .map_err(|message| IssuerError::Failed { issuer: policy.name.clone(), message })
        };
        issuer::build(policy, IssuerEnv { registry: Some(registry), identity }, http)
    }

    fn stop_writing_at(&self, deadline: std::time::Instant) {
        let _ = self.deadline.set(deadline);
        if let Some(Ok(remote)) = self.remote.get() {
            remote.stop_writing_at(deadline);
        }
    }

    fn remote_counts(&self) -> (u64, u64) {
        match self.remote.get() {
            Some(Ok(remote)) => remote.counts(),
            _ => (0, 0),
        }
    }
}
