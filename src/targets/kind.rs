//! What each kind of target knows about itself. A kind's own module
//! implements [`TargetKind`] for its policy entry; [`TargetSpec::kind`] is
//! the one place that lists the kinds, so the generic layers (the engine,
//! the credentials, `plan`) ask the kind and never name a service.

use super::{Remote, Target, TargetError};
use crate::policy::TargetSpec;
use crate::project::ProjectFiles;
use crate::secret::Secret;

pub trait TargetKind {
    /// The address naming the target, the key of its delivery records:
    /// `dotenv:app/.env`, `github:o/r`, `wrangler:api`.
    fn address(&self) -> String;

    /// Whether it lives on a service (listed by name, never read back)
    /// rather than in a file on this machine.
    fn is_remote(&self) -> bool {
        true
    }

    /// Whether the service keeps versions of what it runs (a Worker): a
    /// write makes a version, and the delivery record names it.
    fn runs_versions(&self) -> bool {
        false
    }

    /// The settings it needs from the environment, each a list of
    /// alternatives (`GITHUB_TOKEN` or `GH_TOKEN`): for `ci init`, `ci
    /// doctor` and `plan`.
    fn credentials(&self) -> Vec<&'static [&'static str]> {
        Vec::new()
    }

    /// What is wrong with the entry (its names aside), as (message, hint);
    /// `policy check` shows each at the entry's file:line:col.
    fn problems(&self, _token: &str) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Why `name` cannot be a secret's name here, as (message, hint).
    fn name_problem(&self, token: &str, name: &str) -> Option<(String, String)> {
        crate::policy::generic_name_problem(token, name)
    }

    /// Whether the service compares its places and names without case
    /// (two entries that differ only in case are one).
    fn case_insensitive(&self) -> bool {
        false
    }

    /// Why it cannot take `value`, if it cannot (checked before a value is
    /// stored or sent anywhere).
    fn value_problem(&self, address: &str, value: &Secret) -> Option<String>;

    /// The backend that writes, lists and deletes there.
    fn build(
        &self,
        address: String,
        files: &ProjectFiles,
        remote: Option<&Remote>,
    ) -> Result<Box<dyn Target>, TargetError>;
}

impl TargetSpec {
    /// The kind of this entry: one line per kind.
    pub fn kind(&self) -> &dyn TargetKind {
        match self {
            TargetSpec::Dotenv(spec) => spec,
            TargetSpec::Github(spec) => spec,
            TargetSpec::Wrangler(spec) => spec,
        }
    }
}

/// The HTTP client a remote kind needs, or why there is none.
pub fn need_remote(address: &str, remote: Option<&Remote>) -> Result<Remote, TargetError> {
    remote.cloned().ok_or_else(|| TargetError::new(address, "no HTTP client was set up for a remote target", None))
}
