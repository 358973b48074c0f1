//! `status`: what the registry says about every declared token, from
//! metadata only (no identity, no network).

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::{Workspace, machines};
use crate::registry::{Stage, TokenMeta};
use crate::rotation::due_reason;

#[derive(Serialize)]
pub struct StatusReport {
    pub now: DateTime<Utc>,
    pub tokens: Vec<TokenStatus>,
    /// Tokens in the registry that no policy declares (left alone).
    pub not_in_policy: Vec<String>,
    /// Names of tokens whose current value expires within the asked window.
    pub expiring: Vec<String>,
    /// `verified` (a member's identity checked every file read), `unverified`
    /// (no member's identity) or `not-authenticated` (the older format).
    pub authenticity: &'static str,
}

#[derive(Serialize)]
pub struct TokenStatus {
    pub name: String,
    pub issuer: String,
    pub current: Option<u32>,
    pub pending: Option<u32>,
    pub versions: Vec<VersionStatus>,
    /// Why it is due now; absent when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<String>,
    /// When it falls due next (the schedule), if it ever does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_due_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rotation_in_progress: bool,
    pub deliveries: Vec<DeliveryStatus>,
    /// The current value came from another issuer than the policy's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin_mismatch: Option<String>,
    /// Why the token's metadata could not be read (the others are still shown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
    /// .env targets that are not this machine's and that no check-in
    /// speaks for here (a CI runner): nothing is claimed about them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_on_this_machine: Vec<String>,
}

#[derive(Serialize)]
pub struct VersionStatus {
    pub id: u32,
    pub stage: Stage,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Until when a previous version stays valid (the overlap window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retire_after: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
pub struct DeliveryStatus {
    pub target: crate::targets::TargetId,
    pub name: String,
    pub version: Option<u32>,
    pub up_to_date: bool,
    /// For a .env target: the machine this row speaks for (this one, from
    /// its own records; another, from its check-in). Absent for remote
    /// targets, which the repository's records speak for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
}

impl TokenStatus {
    pub fn current_version(&self) -> Option<&VersionStatus> {
        self.versions.iter().find(|v| Some(v.id) == self.current)
    }
}

impl Workspace {
    /// The status of every declared token; `expiring` lists those whose
    /// current value expires within `window`.
    pub fn status(&self, window: Option<TimeDelta>) -> anyhow::Result<StatusReport> {
        // One damaged metadata file is shown as such; the others still are.
        // A check-in that fails its MAC speaks for nobody here (`check`
        // reports it); the rest of the status stands.
        let checkins = self.registry.checkins_shown();
        let here = Here { machine: crate::registry::machine::this_machine(), elsewhere: machines::elsewhere_all(self) };
        let tokens: Vec<TokenStatus> = self
            .load_declared()
            .into_iter()
            .map(|(name, loaded)| (name, &self.policy.tokens[name], loaded))
            .map(|(name, token, loaded)| match loaded {
                Ok(meta) => TokenStatus {
                    origin_mismatch: meta.current().and_then(|c| self.origin_problem(token, &meta, c.id)),
                    ..token_status(name, token, &meta, self.now, &here, &checkins)
                },
                Err(e) => TokenStatus {
                    damaged: Some(format!("{e}")),
                    ..token_status(name, token, &TokenMeta::new(name), self.now, &here, &checkins)
                },
            })
            .collect();
        let not_in_policy =
            self.registry.token_names()?.into_iter().filter(|n| !self.policy.tokens.contains_key(n)).collect();
        let expiring = match window {
            Some(w) => tokens
                .iter()
                .filter(|t| t.expires_at.is_some_and(|e| e - self.now <= w))
                .map(|t| t.name.clone())
                .collect(),
            None => Vec::new(),
        };
        let authenticity = match self.registry.trust() {
            crate::registry::Trust::Verified { .. } => "verified",
            crate::registry::Trust::Unverified => "unverified",
            crate::registry::Trust::Legacy => "not-authenticated",
        };
        Ok(StatusReport { now: self.now, tokens, not_in_policy, expiring, authenticity })
    }
}

/// This machine, and the .env targets that are not its own.
struct Here {
    machine: String,
    elsewhere: Vec<(crate::targets::TargetId, String)>,
}

fn token_status(
    name: &str,
    token: &crate::policy::TokenPolicy,
    meta: &TokenMeta,
    now: DateTime<Utc>,
    here: &Here,
    checkins: &[crate::registry::machine::Checkin],
) -> TokenStatus {
    let current = meta.current().map(|v| v.id);
    let mut deliveries = Vec::new();
    let mut not_on_this_machine = Vec::new();
    for t in &token.targets {
        let address = t.address();
        let local = t.dotenv_path(std::path::Path::new("")).is_some();
        let away = here.elsewhere.iter().find(|(a, _)| *a == address);
        for n in &t.names {
            if away.is_none() {
                let version = meta.delivered(&address, n).map(|d| d.version);
                deliveries.push(DeliveryStatus {
                    up_to_date: version.is_some() && version == current,
                    target: address.clone(),
                    name: n.clone(),
                    version,
                    machine: local.then(|| here.machine.clone()),
                });
            }
        }
        if let Some((_, why)) = away
            && t.spec.kind().machines().is_none()
        {
            not_on_this_machine.push(why.clone());
        }
    }
    // The machines a .env target names, each as its check-in says.
    for t in &token.targets {
        let Some(machines) = t.spec.kind().machines() else { continue };
        let address = t.address();
        for m in machines.iter().filter(|m| **m != here.machine) {
            let checkin = checkins.iter().find(|c| c.machine == *m);
            for n in &t.names {
                let version = checkin.and_then(|c| c.held(&token.name, &address, n)).map(|h| h.version);
                deliveries.push(DeliveryStatus {
                    up_to_date: version.is_some() && version == current,
                    target: address.clone(),
                    name: n.clone(),
                    version,
                    machine: Some(m.clone()),
                });
            }
        }
    }
    TokenStatus {
        name: name.to_string(),
        issuer: token.issuer.clone(),
        current,
        pending: meta.pending().map(|v| v.id),
        versions: meta
            .versions
            .iter()
            .map(|v| VersionStatus {
                id: v.id,
                stage: v.stage,
                created_at: v.created_at,
                expires_at: v.expires_at,
                retire_after: v.retire_after,
            })
            .collect(),
        due: due_reason(token, meta, now),
        next_due_at: crate::rotation::next_due(token, meta),
        expires_at: meta.current().and_then(|v| v.expires_at),
        rotation_in_progress: meta.rotation.is_some(),
        deliveries,
        origin_mismatch: None,
        damaged: None,
        not_on_this_machine,
    }
}
