//! .env files on many machines: which are this machine's to write, and
//! which machines have not synced a value yet (from their check-ins).

use chrono::{DateTime, Utc};

use super::Workspace;
use crate::policy::{TargetPolicy, TokenPolicy};
use crate::registry::RegistryError;
use crate::registry::machine::{self, Checkin};
use crate::rotation::{Step, TokenPlan};
use crate::targets::TargetId;

/// Why a .env target is not this machine's to write, if it is not: the
/// policy names other machines, or this is a CI runner and the file is
/// absent and ignored by git (a throwaway checkout vouches for nobody).
pub fn elsewhere(target: &TargetPolicy, root: &std::path::Path) -> Option<String> {
    let file = target.spec.kind().local_file()?;
    let address = target.address();
    if let Some(machines) = target.spec.kind().machines() {
        let here = machine::this_machine();
        return (!machines.contains(&here))
            .then(|| format!("{address} lives on {} (this machine is {here}): not written here", machines.join(", ")));
    }
    let path = root.join(file);
    (machine::throwaway() && crate::project::absent_and_ignored(&path)).then(|| {
        format!(
            "{address} is not on this machine (a CI runner, and git ignores the file): nothing is written here, and this run vouches for no machine's copy"
        )
    })
}

/// Every .env target of the policies that is not this machine's, with why.
pub fn elsewhere_all(ws: &Workspace) -> Vec<(TargetId, String)> {
    let mut out: Vec<(TargetId, String)> = Vec::new();
    for token in ws.policy.tokens.values() {
        for t in &token.targets {
            let address = t.address();
            if out.iter().any(|(a, _)| *a == address) {
                continue;
            }
            if let Some(why) = elsewhere(t, &ws.policy.root) {
                out.push((address, why));
            }
        }
    }
    out
}

/// Drops the deliveries to targets that are not this machine's.
pub fn drop_elsewhere(plans: &mut [TokenPlan], elsewhere: &[(TargetId, String)]) {
    for plan in plans {
        plan.steps.retain(|s| !matches!(s, Step::Deliver { target, .. } if elsewhere.iter().any(|(a, _)| a == target)));
    }
}

/// What one named machine last synced of a token at a .env target.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineState {
    pub machine: String,
    pub target: TargetId,
    /// The oldest version among the target's names, and when it was synced;
    /// `None`: the machine never synced this target.
    pub holds: Option<(u32, DateTime<Utc>)>,
}

impl std::fmt::Display for MachineState {
    /// `web-2 (holds v1 at dotenv:app/.env, synced 2026-12-01 10:00 UTC)`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.holds {
            Some((v, at)) => write!(
                f,
                "{} (holds v{v} at {}, synced {})",
                self.machine,
                self.target,
                at.format("%Y-%m-%d %H:%M UTC")
            ),
            None => write!(f, "{} (has never synced {})", self.machine, self.target),
        }
    }
}

/// For every .env target of `token` that names its machines: each
/// machine's last sync, from its check-in.
pub fn declared_states(token: &TokenPolicy, checkins: &[Checkin]) -> Vec<MachineState> {
    let mut out = Vec::new();
    for t in &token.targets {
        let Some(machines) = t.spec.kind().machines() else { continue };
        let address = t.address();
        for m in machines {
            let checkin = checkins.iter().find(|c| c.machine == *m);
            let held: Vec<_> = t.names.iter().map(|n| checkin.and_then(|c| c.held(&token.name, &address, n))).collect();
            let holds = if held.iter().all(Option::is_some) {
                held.iter().flatten().map(|h| (h.version, h.at)).min_by_key(|(v, _)| *v)
            } else {
                None
            };
            out.push(MachineState { machine: m.clone(), target: address.clone(), holds });
        }
    }
    out
}

impl Workspace {
    /// The machines that must sync before `version` of `token` may be
    /// retired: each machine a .env target names whose check-in does not
    /// show a newer version there.
    pub fn machines_behind(&self, token: &TokenPolicy, version: u32) -> Result<Vec<MachineState>, RegistryError> {
        if !token.targets.iter().any(|t| t.spec.kind().machines().is_some()) {
            return Ok(Vec::new());
        }
        let checkins = self.registry.checkins_here()?;
        Ok(declared_states(token, &checkins)
            .into_iter()
            .filter(|s| s.holds.is_none_or(|(v, _)| v <= version))
            .collect())
    }
}
