//! Targets opened once per run step and shared by its parts: `plan`'s
//! listing and its write preview read a Worker's deployments once; a
//! sync's delivery uses the target that read ahead while values were
//! decrypted.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::Workspace;
use crate::policy::TargetPolicy;
use crate::targets::{Target, TargetError, TargetId, TargetSpec};

/// Open targets by target, then by write options (an entry's spec
/// without its names): entries that deliver alike share one.
#[derive(Default)]
pub struct Opened(Mutex<HashMap<TargetId, Vec<OpenTarget>>>);

/// A target opened for an entry's write options.
type OpenTarget = (TargetSpec, Arc<dyn Target>);

impl Opened {
    /// The target `policy` describes: the one opened before for an entry
    /// that delivers alike, or a new one.
    pub fn target(&self, ws: &Workspace, policy: &TargetPolicy) -> Result<Arc<dyn Target>, TargetError> {
        self.open(ws, policy).map(|(target, _)| target)
    }

    /// The target, and whether it was opened just now.
    fn open(&self, ws: &Workspace, policy: &TargetPolicy) -> Result<(Arc<dyn Target>, bool), TargetError> {
        let options = policy.spec.without_names();
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let alike = open.entry(policy.address()).or_default();
        if let Some((_, target)) = alike.iter().find(|(spec, _)| *spec == options) {
            return Ok((Arc::clone(target), false));
        }
        let target: Arc<dyn Target> = Arc::from(ws.backends.target(policy)?);
        if policy.runs_versions() {
            // A Worker builds on the version chitty-secrets made last: the
            // delivery records say which versions those are.
            let (metas, _) = ws.readable_metas(&[]);
            target.know_versions(&super::observe::recorded_worker_versions(&metas, &policy.address()));
        }
        alike.push((options, Arc::clone(&target)));
        Ok((target, true))
    }

    /// Opens a remote target as soon as its first value is ready and reads
    /// ahead what its writes need ([`Target::prepare`]: GitHub's public key,
    /// a Worker's deployments) in the background while the other values
    /// are decrypted. Only targets a value is bound for are opened, so a
    /// run that delivers nothing asks nothing.
    pub fn warm(&self, ws: &Workspace, policy: &TargetPolicy) {
        // A target that cannot be opened is met again, and reported, by
        // its delivery.
        if policy.is_remote()
            && let Ok((target, true)) = self.open(ws, policy)
        {
            tokio::spawn(async move { target.prepare().await });
        }
    }
}
