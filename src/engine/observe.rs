//! Looking at targets: .env files by value (needs the identity), remote
//! targets by name and `updated_at` (never a value).

use std::collections::BTreeMap;

use super::Workspace;
use super::opened::Opened;
use crate::registry::{DeliveryKey, TokenMeta, WorkerVersion};
use crate::rotation::{Observations, Observed};
use crate::targets::{Running, TargetId};

/// A name on a remote that no policy declares there: reported, never touched.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Unmanaged {
    pub address: crate::targets::TargetId,
    pub name: String,
}

impl Workspace {
    /// Reads every readable target (.env files) and compares it with the
    /// current value; nothing without an identity.
    /// A .env file that is not this machine's (the policy names other
    /// machines, or a CI runner's checkout lacks it) is not observed, and
    /// is listed, with why, in the second half of the answer.
    pub async fn observe_local(
        &self,
        metas: &BTreeMap<String, TokenMeta>,
    ) -> anyhow::Result<(Observations, Vec<(TargetId, String)>)> {
        let mut seen = Observations::new();
        let not_here = super::machines::elsewhere_all(self);
        let Some(identity) = &self.identity else {
            return Ok((seen, not_here));
        };
        for (name, meta) in metas {
            let (Some(token), Some(current)) = (self.policy.token(name), meta.current()) else {
                continue;
            };
            if token.targets.iter().all(|t| t.is_remote()) {
                continue;
            }
            let values = self.registry.live_values(meta, &identity.key)?;
            let Some(value) = values.get(current.id) else {
                continue;
            };
            for target_policy in token.targets.iter().filter(|t| !t.is_remote()) {
                // Asked of git once per file, however many tokens it holds.
                let address = target_policy.address();
                if not_here.iter().any(|(a, _)| *a == address) {
                    continue;
                }
                let target = self.backends.target(target_policy)?;
                let Some(read) = target.read(&target_policy.names).await? else {
                    continue;
                };
                for (n, got) in target_policy.names.iter().zip(read) {
                    let observed = match got {
                        Some(v) if v.same_as(value) => Observed::Holds,
                        Some(_) => Observed::Differs,
                        None => Observed::Missing,
                    };
                    seen.insert((name.clone(), DeliveryKey::new(target.address(), n.as_str())), observed);
                }
            }
        }
        Ok((seen, not_here))
    }

    /// Lists every remote target once (names and `updated_at`, never values):
    /// a declared name that is gone is `Missing`, one changed since our write
    /// (GitHub's `updated_at`) is `Differs`; everything else there is unmanaged.
    pub async fn observe_remote(
        &self,
        metas: &BTreeMap<String, TokenMeta>,
        seen: &mut Observations,
    ) -> anyhow::Result<RemoteLook> {
        let look = self.observe_remote_all(metas, seen, &Opened::default()).await;
        match look.unreachable.first() {
            Some(e) => Err(e.clone().into()),
            None => Ok(look),
        }
    }

    /// Like [`Self::observe_remote`], but a target that cannot be listed is
    /// returned with the others' results, not in their place: every
    /// unreachable target is named.
    pub async fn observe_remote_all(
        &self,
        metas: &BTreeMap<String, TokenMeta>,
        seen: &mut Observations,
        opened: &Opened,
    ) -> RemoteLook {
        let targets = self.policy.remote_targets();
        let lists = futures_util::future::join_all(targets.iter().map(|(address, t)| async move {
            let target = opened.target(self, t)?;
            let listed = target.list().await?.unwrap_or_default();
            tracing::debug!("{address}: {} name(s) listed", listed.len());
            // A Worker: the versions holding current values that something
            // older still runs beside or instead of, and the changes made
            // since our newest write by someone else.
            let mut overtaken = BTreeMap::new();
            let mut changed = Vec::new();
            let versions = current_worker_versions(metas, address);
            if !versions.is_empty() {
                let running = target.running(&versions).await?.unwrap_or_default();
                for v in &versions {
                    let older: Vec<String> = Running::older_than(&running, v).iter().map(ToString::to_string).collect();
                    if !older.is_empty() {
                        overtaken.insert(v.id.clone(), older.join(" and "));
                    }
                }
                changed = target.changed_by_others(&recorded_worker_versions(metas, address)).await?;
            }
            Ok::<_, crate::targets::TargetError>((address.clone(), listed, overtaken, changed))
        }))
        .await;
        let mut look = RemoteLook::default();
        let RemoteLook { unmanaged, unreachable, notes, changed_by_others, runs_older } = &mut look;
        for listed in lists {
            let (address, listed, overtaken, changed) = match listed {
                Ok(listed) => listed,
                Err(e) => {
                    unreachable.push(e);
                    continue;
                }
            };
            let mut declared = Vec::new();
            for (name, token) in &self.policy.tokens {
                let Some(meta) = metas.get(name) else { continue };
                for t in token.targets.iter().filter(|t| t.address() == address) {
                    for n in &t.names {
                        declared.push(n.to_ascii_uppercase());
                        let listed_here = listed.iter().find(|s| s.name.eq_ignore_ascii_case(n));
                        if let Some(change) = crate::targets::visibility_change(t, listed_here) {
                            notes.push(format!("{address}: {} {change}", listed_here.map_or(n, |s| &s.name)));
                        }
                        let observed = match (listed_here, meta.delivered(&address, n)) {
                            (None, _) => Some(Observed::Missing),
                            // Changed on the service by someone else since
                            // our write: nothing there can be vouched for.
                            (Some(_), Some(_)) if !changed.is_empty() => Some(Observed::Differs),
                            (Some(s), Some(d)) if changed_since(s.updated_at, d.remote_updated_at) => {
                                Some(Observed::Differs)
                            }
                            (Some(_), Some(d)) => match &d.worker_version {
                                Some(w) if overtaken.contains_key(&w.id) => {
                                    // Ours deployed it, yet an older version runs:
                                    // rolled back. Not deployed by us: a rollout
                                    // left to the team.
                                    Some(if w.deployed { Observed::Differs } else { Observed::NotDeployed })
                                }
                                _ => None,
                            },
                            // Present and untouched: the delivery records decide.
                            _ => None,
                        };
                        if let Some(o) = observed {
                            seen.insert((name.clone(), DeliveryKey::new(&address, n.as_str())), o);
                        }
                    }
                }
            }
            for s in listed {
                if !declared.contains(&s.name.to_ascii_uppercase()) {
                    unmanaged.push(Unmanaged { address: address.clone(), name: s.name });
                }
            }
            for (id, older) in overtaken {
                runs_older.insert((address.clone(), id), older);
            }
            if !changed.is_empty() {
                notes.extend(changed.iter().map(|c| {
                    format!("{address}: {c}: its values cannot be vouched for; `chitty-secrets sync --verify` delivers them again")
                }));
                changed_by_others.insert(address, changed.join("; "));
            }
        }
        look
    }
}

impl Workspace {
    /// Who reads each remote target's declared secrets, where the target
    /// can say (`plan`, `check --online`); a target that cannot be asked
    /// says why instead.
    pub async fn readers(&self, opened: &Opened) -> Vec<(TargetId, Result<crate::targets::Reader, String>)> {
        let targets = self.policy.remote_targets();
        let asked = futures_util::future::join_all(targets.iter().map(|(address, t)| async move {
            let names: Vec<String> = self
                .policy
                .tokens
                .values()
                .flat_map(|token| &token.targets)
                .filter(|x| x.address() == *address)
                .flat_map(|x| x.names.iter().cloned())
                .collect();
            let read = match opened.target(self, t) {
                Ok(target) => target.readers(&names).await,
                Err(e) => Err(e),
            };
            (address.clone(), read)
        }))
        .await;
        let mut out = Vec::new();
        for (address, read) in asked {
            match read {
                Ok(readers) => out.extend(readers.into_iter().map(|r| (address.clone(), Ok(r)))),
                Err(e) => out.push((address, Err(e.to_string()))),
            }
        }
        out
    }
}

/// What one listing of every remote target found.
#[derive(Default)]
pub struct RemoteLook {
    pub unmanaged: Vec<Unmanaged>,
    pub unreachable: Vec<crate::targets::TargetError>,
    pub notes: Vec<String>,
    /// Per target: the changes the service says someone else made since
    /// our newest write there (a Worker secret changed by hand).
    pub changed_by_others: BTreeMap<TargetId, String>,
    /// Per target and Worker version holding a current value: the older
    /// versions that still run (`version #3 (0a1b…) at 100%`).
    pub runs_older: BTreeMap<(TargetId, String), String>,
}

impl RemoteLook {
    /// Where a retirement of `version` of `token` would be refused: a
    /// Worker that runs a version made before the one holding a newer
    /// value (a rollout not finished, or a rollback).
    pub fn blocks_retirement(&self, token: &crate::policy::TokenPolicy, meta: &TokenMeta, version: u32) -> Vec<String> {
        let mut out = Vec::new();
        for target in &token.targets {
            let address = target.address();
            if let Some(older) = first_version_after(meta, &address, version)
                .and_then(|w| self.runs_older.get(&(address.clone(), w.id.clone())))
            {
                out.push(format!("{address} runs {older}"));
            }
        }
        out
    }
}

/// The first Worker version at `address` that holds a value newer than
/// `version`: a deployed version made before it may still run `version`.
pub fn first_version_after<'a>(meta: &'a TokenMeta, address: &TargetId, version: u32) -> Option<&'a WorkerVersion> {
    meta.deliveries
        .iter()
        .filter(|(key, d)| key.target == *address && d.version > version)
        .filter_map(|(_, d)| d.worker_version.as_ref())
        .min_by_key(|w| w.number)
}

/// Every Worker version the delivery records at `address` name.
pub fn recorded_worker_versions(metas: &BTreeMap<String, TokenMeta>, address: &TargetId) -> Vec<WorkerVersion> {
    worker_versions(metas, address, |_, _| true)
}

/// The Worker versions the records say hold current values at `address`.
fn current_worker_versions(metas: &BTreeMap<String, TokenMeta>, address: &TargetId) -> Vec<WorkerVersion> {
    worker_versions(metas, address, |meta, version| meta.current().is_some_and(|c| c.id == version))
}

/// The Worker versions named by the records at `address` that `keep`
/// (given the token and the value's version) keeps, each once.
fn worker_versions(
    metas: &BTreeMap<String, TokenMeta>,
    address: &TargetId,
    keep: impl Fn(&TokenMeta, u32) -> bool,
) -> Vec<WorkerVersion> {
    let mut out: Vec<WorkerVersion> = Vec::new();
    for meta in metas.values() {
        for (_, d) in meta.deliveries.iter().filter(|(key, d)| key.target == *address && keep(meta, d.version)) {
            if let Some(w) = &d.worker_version
                && !out.iter().any(|o| o.id == w.id)
            {
                out.push(w.clone());
            }
        }
    }
    out
}

/// `API_TOKEN at wrangler:api holds v3 in Worker version #12 (0a1b…), which is not deployed yet`
pub fn not_deployed_message(metas: &BTreeMap<String, TokenMeta>, token: &str, key: &DeliveryKey) -> String {
    let record = metas.get(token).and_then(|m| m.delivered(&key.target, &key.name));
    match record.and_then(|d| d.worker_version.as_ref().map(|w| (d.version, w))) {
        Some((version, w)) => format!(
            "{} at {} holds v{version} in Worker version #{} ({}), which is not deployed yet",
            key.name,
            key.target,
            w.number,
            crate::targets::short_version(&w.id)
        ),
        None => format!("{} at {} is in a Worker version that is not deployed yet", key.name, key.target),
    }
}

/// One note per value delivered into a Worker version not yet deployed.
pub fn not_deployed_notes(metas: &BTreeMap<String, TokenMeta>, observed: &Observations) -> Vec<String> {
    observed
        .iter()
        .filter(|(_, o)| **o == Observed::NotDeployed)
        .map(|((token, key), _)| {
            format!("{}; {}", not_deployed_message(metas, token, key), crate::targets::ROLLOUT_HINT)
        })
        .collect()
}

/// Whether a listing's `updated_at` says the secret changed after our
/// write, recorded as `ours` (the service's own clock: its answer to the
/// write, or its listing then). Compared to the second, as GitHub keeps
/// it, with one second's grace: the answer's `Date` and the stored
/// `updated_at` come from different machines of the service, and a write
/// that straddles a second must not read as someone else's change (the
/// pre-deploy gate would fail on it). A change within a second of our
/// write is not seen (`sync --redeliver` is the repair).
fn changed_since(listed: Option<chrono::DateTime<chrono::Utc>>, ours: Option<chrono::DateTime<chrono::Utc>>) -> bool {
    match (listed, ours) {
        (Some(listed), Some(ours)) => listed.timestamp() > ours.timestamp() + GRACE_SECONDS,
        _ => false,
    }
}

/// How much later than our write a listing may say it was made.
const GRACE_SECONDS: i64 = 1;

#[cfg(test)]
mod tests {
    use super::changed_since;

    #[test]
    fn a_listing_is_a_change_only_in_a_later_second_than_our_write() {
        let at = |s: &str| Some(chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc());
        // GitHub's answer to the write says 10:00:00; its listing keeps seconds.
        assert!(!changed_since(at("2026-12-07T10:00:00.700Z"), at("2026-12-07T10:00:00Z")));
        assert!(!changed_since(at("2026-12-07T10:00:00Z"), at("2026-12-07T10:00:00Z")));
        // A write that straddled a second, stored by a clock a little ahead.
        assert!(!changed_since(at("2026-12-07T10:00:01Z"), at("2026-12-07T10:00:00Z")));
        assert!(changed_since(at("2026-12-07T10:00:02Z"), at("2026-12-07T10:00:00Z")));
        assert!(!changed_since(None, at("2026-12-07T10:00:00Z")));
        assert!(!changed_since(at("2026-12-07T10:00:01Z"), None));
    }
}
