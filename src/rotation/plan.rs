//! The planner: a pure function from policy + registry + observations + now
//! to the steps each token needs. `plan`, `--dry-run` and `sync --check`
//! print it; `rotate` and `sync` execute it.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::policy::{Dur, IssuerSpec, Policy, TokenPolicy};
use crate::registry::{DeliveryKey, JournalStep, Stage, TokenMeta};
use crate::targets::TargetId;

/// What a readable target (a .env file) was seen to hold, keyed by
/// `(token, ADDRESS#NAME)`. Absent entries were not looked at.
pub type Observations = BTreeMap<(String, DeliveryKey), Observed>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Observed {
    /// Holds the current value.
    Holds,
    /// Holds something else (edited by hand, or an older version).
    Differs,
    /// The name is not there.
    Missing,
    /// Asked to be written again whatever it holds (`sync --redeliver`).
    Redeliver,
    /// Delivered into a Worker version that is not deployed yet
    /// (`deploy = "version"`): the rollout is the team's, nothing to write.
    NotDeployed,
}

#[derive(Debug, Clone, Copy)]
pub enum Mode<'a> {
    /// `rotate`: `only` empty means every token; `due_only` is `--due`;
    /// `emergency` (a leaked token) keeps no overlap.
    Rotate { only: &'a [String], due_only: bool, emergency: bool },
    /// `rotate --abort`: put `current` back where `pending` went, revoke `pending`.
    Abort { only: &'a [String] },
    /// `sync`: deliver `current` where a target lacks it.
    Sync { only: &'a [String] },
    /// `leaks --rotate`: end the `leaked` versions (token, version) that
    /// still work, with no overlap: a leaked pending rotation is undone, a
    /// leaked current value is replaced and revoked as soon as no target
    /// holds it, a leaked previous value is revoked now. `only` names the
    /// tokens `leaked` names.
    EndLeaked { only: &'a [String], leaked: &'a [(String, u32)] },
}

impl Mode<'_> {
    /// The tokens the run is about (empty: every token).
    pub fn only(&self) -> &[String] {
        match self {
            Mode::Rotate { only, .. } | Mode::Abort { only } | Mode::Sync { only } | Mode::EndLeaked { only, .. } => {
                only
            }
        }
    }

    /// Whether the run keeps no overlap (a leak).
    pub fn is_emergency(&self) -> bool {
        matches!(self, Mode::Rotate { emergency: true, .. } | Mode::EndLeaked { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Mint a new version and save it as pending.
    Mint {
        reason: String,
    },
    /// A pending version exists: carry on with it.
    Resume {
        version: u32,
        reason: String,
    },
    /// Nothing can be minted automatically: a person must act.
    Remind {
        reason: String,
        hint: crate::error::Hint,
    },
    /// Put a version (None: the one about to be minted) under these names.
    Deliver {
        target: TargetId,
        names: Vec<String>,
        version: Option<u32>,
        reason: String,
    },
    Verify,
    Promote,
    Retire {
        version: u32,
        reason: String,
    },
    /// Undo a pending rotation (None: only a journal, nothing minted yet).
    Abort {
        version: Option<u32>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenPlan {
    pub token: String,
    pub steps: Vec<Step>,
}

/// Plans every selected token in policy order.
pub fn plan(
    policy: &Policy,
    metas: &BTreeMap<String, TokenMeta>,
    observed: &Observations,
    now: DateTime<Utc>,
    mode: Mode<'_>,
) -> Vec<TokenPlan> {
    let selected = |name: &str, only: &[String]| only.is_empty() || only.iter().any(|o| o == name);
    let mut out = Vec::new();
    for (name, token) in &policy.tokens {
        let empty = TokenMeta::new(name);
        let meta = metas.get(name).unwrap_or(&empty);
        let steps = match mode {
            Mode::Rotate { only, due_only, emergency } if selected(name, only) => {
                rotate_steps(policy, token, meta, now, due_only, emergency, !only.is_empty())
            }
            Mode::Abort { only } if selected(name, only) => match (meta.pending(), &meta.rotation) {
                (Some(p), _) => vec![Step::Abort { version: Some(p.id) }],
                (None, Some(_)) => vec![Step::Abort { version: None }],
                (None, None) => Vec::new(),
            },
            Mode::Sync { only } if selected(name, only) => sync_steps(token, meta, observed),
            Mode::EndLeaked { only, leaked } if selected(name, only) => {
                let versions: Vec<u32> = leaked.iter().filter(|(t, _)| t == name).map(|(_, v)| *v).collect();
                leak_steps(policy, token, meta, now, &versions)
            }
            _ => continue,
        };
        if !steps.is_empty() {
            out.push(TokenPlan { token: name.clone(), steps });
        }
    }
    out
}

/// What ends the leaked `versions` of one token that still work.
fn leak_steps(
    policy: &Policy,
    token: &TokenPolicy,
    meta: &TokenMeta,
    now: DateTime<Utc>,
    versions: &[u32],
) -> Vec<Step> {
    let leaked = |stage: Stage| meta.versions.iter().any(|v| v.stage == stage && versions.contains(&v.id));
    // A leaked rotation in progress is undone (its value revoked); a
    // leaked current value, if any, is replaced by the next round.
    if let Some(pending) = meta.pending().filter(|p| versions.contains(&p.id)) {
        return vec![Step::Abort { version: Some(pending.id) }];
    }
    let mut steps =
        if leaked(Stage::Current) { rotate_steps(policy, token, meta, now, false, true, true) } else { Vec::new() };
    let leaked_previous = meta.versions.iter().filter(|v| v.stage == Stage::Previous && versions.contains(&v.id));
    for previous in leaked_previous {
        if steps.iter().any(|s| matches!(s, Step::Retire { version, .. } if *version == previous.id)) {
            continue;
        }
        let held = meta.deliveries.values().any(|d| d.version == previous.id);
        if held && !steps.is_empty() {
            // The rotation replaces it where it is held; the next run revokes it.
            continue;
        }
        if held {
            steps.push(Step::Remind {
                reason: format!("v{} leaked, and a target still holds it", previous.id),
                hint: format!(
                    "run `chitty-secrets sync {}` so every target holds the current value, then `leaks --rotate` again",
                    token.name
                )
                .into(),
            });
        } else {
            steps.push(Step::Retire {
                version: previous.id,
                reason: "leaked: revoked now, its overlap cut short".into(),
            });
        }
    }
    steps
}

/// Why a token is rotated when nothing else makes it due: it was asked for.
const REQUESTED: &str = "requested";

fn rotate_steps(
    policy: &Policy,
    token: &TokenPolicy,
    meta: &TokenMeta,
    now: DateTime<Utc>,
    due_only: bool,
    emergency: bool,
    named: bool,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let manual = matches!(policy.issuer_of(token).spec, IssuerSpec::Manual(_));
    // A pending version that expired (or is in its last minute) can never
    // be verified: the rotation is undone, and the next run mints anew.
    if let Some(pending) = meta.pending()
        && pending.expires_at.is_some_and(|e| e <= now + TimeDelta::minutes(1))
    {
        return vec![Step::Abort { version: Some(pending.id) }];
    }
    let incoming = if let Some(pending) = meta.pending() {
        steps.push(Step::Resume {
            version: pending.id,
            reason: format!("v{} was minted {} ago and is not yet promoted", pending.id, ago(now, pending.created_at)),
        });
        Some(Some(pending.id))
    } else {
        let reason = match (&meta.rotation, due_reason(token, meta, now)) {
            (Some(j), _) if j.step == JournalStep::Minting => {
                Some("an earlier rotation stopped before its new value was saved".to_string())
            }
            _ if emergency => Some("emergency: the current token is treated as leaked".to_string()),
            (_, Some(due)) => Some(due),
            (_, None) if !due_only => Some(REQUESTED.to_string()),
            _ => None,
        };
        match reason {
            // A bare `rotate` rotates what it can: a token issued by hand
            // that has a value and is not due is left alone (named, or due,
            // it is a reminder that stops the run, as before).
            Some(reason) if manual && reason == REQUESTED && !named && meta.current().is_some() => None,
            Some(reason) if manual => {
                steps.push(Step::Remind {
                    reason,
                    hint: format!(
                        "{} is issued by hand: pipe the new value into `chitty-secrets set {}`",
                        token.name, token.name
                    )
                    .into(),
                });
                None
            }
            Some(reason) => {
                steps.push(Step::Mint { reason });
                Some(None)
            }
            None => None,
        }
    };
    if let Some(version) = incoming {
        for target in &token.targets {
            let address = target.address();
            let names: Vec<String> = target
                .names
                .iter()
                .filter(|n| version.is_none() || meta.delivered(&address, n).map(|d| Some(d.version)) != Some(version))
                .cloned()
                .collect();
            if !names.is_empty() {
                steps.push(Step::Deliver { target: address, names, version, reason: "new version".into() });
            }
        }
        steps.push(Step::Verify);
        steps.push(Step::Promote);
        if (emergency || token.overlap.0 <= TimeDelta::zero())
            && let Some(current) = meta.current()
        {
            let reason = if emergency {
                "emergency: revoked as soon as no target holds it"
            } else {
                "replaced, and the policy sets no overlap"
            };
            steps.push(Step::Retire { version: current.id, reason: reason.into() });
        }
    }
    // After a merge joined two rotations, no record from before it says
    // for sure which value a target holds: nothing is retired until every
    // target has been given the current value again (`sync`).
    let doubt = token.targets.iter().any(|t| {
        let address = t.address();
        t.names.iter().any(|n| meta.in_doubt(&address, n))
    });
    for previous in meta.versions.iter().filter(|v| v.stage == Stage::Previous) {
        // A value some target still holds is never retired: `sync` first.
        let held = doubt || meta.deliveries.values().any(|d| d.version == previous.id);
        if let Some(after) = previous.retire_after
            && after <= now
            && !held
        {
            steps.push(Step::Retire { version: previous.id, reason: format!("overlap ended {} ago", ago(now, after)) });
        }
    }
    // Retirements come last: oldest first, as a person would read them.
    let first_retire = steps.iter().position(|s| matches!(s, Step::Retire { .. })).unwrap_or(steps.len());
    steps[first_retire..].sort_by_key(|s| match s {
        Step::Retire { version, .. } => *version,
        _ => u32::MAX,
    });
    steps
}

fn sync_steps(token: &TokenPolicy, meta: &TokenMeta, observed: &Observations) -> Vec<Step> {
    let Some(current) = meta.current() else {
        return vec![Step::Remind {
            reason: "has no value yet".into(),
            hint: format!("run `chitty-secrets rotate {}` (or `set` for a manual token)", token.name).into(),
        }];
    };
    // Mid-rotation some targets hold the pending value: delivering the
    // current one would undo the rotation. `rotate` finishes or undoes it.
    if let Some(pending) = meta.pending() {
        return vec![Step::Remind {
            reason: format!("has a rotation in progress (v{} pending)", pending.id),
            hint: format!(
                "`chitty-secrets rotate {0}` finishes it, `chitty-secrets rotate --abort {0}` undoes it; sync leaves it alone meanwhile",
                token.name
            ).into(),
        }];
    }
    let mut steps = Vec::new();
    for target in &token.targets {
        let address = target.address();
        let mut names = Vec::new();
        let mut reasons = Vec::new();
        for name in &target.names {
            let key = DeliveryKey::new(&address, name.as_str());
            let local = crate::registry::machine::is_machine_local(&key);
            let reason = match (observed.get(&(token.name.clone(), key)), meta.delivered(&address, name)) {
                _ if meta.in_doubt(&address, name) => {
                    Some(format!("{name} may hold the value of another branch (a merge joined two rotations)"))
                }
                // Holds the value, but this machine has no record of it
                // (records of .env files are each machine's own): written
                // again, which records it.
                (Some(Observed::Holds), d) if local && d.is_none_or(|d| d.version != current.id) => {
                    Some(format!("{name} holds the current value, but this machine's record does not say so"))
                }
                (Some(Observed::Holds | Observed::NotDeployed), _) => None,
                (Some(Observed::Differs), _) => Some(format!("{name} differs from the registry")),
                (Some(Observed::Redeliver), _) => Some(format!("{name} is written again (--redeliver)")),
                (Some(Observed::Missing), _) => Some(format!("{name} is missing")),
                (None, None) => Some(format!("{name} was never delivered")),
                (None, Some(d)) if d.version != current.id => {
                    Some(format!("{name} holds v{}, current is v{}", d.version, current.id))
                }
                (None, Some(_)) => None,
            };
            if let Some(reason) = reason {
                names.push(name.clone());
                reasons.push(reason);
            }
        }
        if !names.is_empty() {
            steps.push(Step::Deliver { target: address, names, version: Some(current.id), reason: reasons.join("; ") });
        }
    }
    steps
}

/// Why a token is due for rotation now, or `None` (the one due rule; see [`super::due`]).
pub fn due_reason(token: &TokenPolicy, meta: &TokenMeta, now: DateTime<Utc>) -> Option<String> {
    super::due::due(token, meta, now).map(|d| d.to_string())
}

fn ago(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    Dur::human(now - then)
}

#[cfg(test)]
mod tests;
