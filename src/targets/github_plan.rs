//! GitHub's limits and write budget, as `plan` shows them before any
//! request: what a repository, an environment or an organization may hold,
//! and how long GitHub's budget lets the planned writes take.

use std::collections::BTreeMap;

use super::kind::KindEntry;
use super::{LimitProblem, TargetId};
use crate::engine::Unmanaged;
use crate::policy::{GithubSpec, Policy};
use crate::rotation::TokenPlan;

/// The GitHub writes a plan makes, the least time GitHub's budget lets
/// them take, and tokens that one organization secret would deliver in one
/// write instead of many.
#[derive(serde::Serialize, Default)]
pub struct GithubLoad {
    pub writes: usize,
    pub least_seconds: u64,
    pub org_candidates: Vec<OrgCandidate>,
}

/// A token delivered to many repositories of one owner.
#[derive(serde::Serialize)]
pub struct OrgCandidate {
    pub token: String,
    pub owner: String,
    pub repos: Vec<String>,
}

/// Secrets a repository or an environment may hold, and an organization.
const GITHUB_REPO_SECRETS: usize = 100;
const GITHUB_ORG_SECRETS: usize = 1000;
/// A workflow sees only this many organization secrets (alphabetically).
const GITHUB_ORG_VISIBLE: usize = 100;

/// Whether `id` is a GitHub target.
fn is_github(id: &TargetId) -> bool {
    id.kind() == GithubSpec::KIND
}

/// Whether `id` is a GitHub organization's secrets.
fn is_org(id: &TargetId) -> bool {
    is_github(id) && id.locator().starts_with("org:")
}

/// GitHub's per-scope limits against what the policies declare there (and
/// what the listing found besides): no request is made for it.
pub fn limits(policy: &Policy, unmanaged: &[Unmanaged]) -> Vec<LimitProblem> {
    let mut names: BTreeMap<TargetId, (std::collections::BTreeSet<String>, std::collections::BTreeSet<String>)> =
        BTreeMap::new();
    for t in policy.tokens.values().flat_map(|t| &t.targets).filter(|t| is_github(&t.address())) {
        names.entry(t.address()).or_default().0.extend(t.names.iter().map(|n| n.to_ascii_uppercase()));
    }
    for u in unmanaged {
        if let Some(entry) = names.get_mut(&u.address) {
            entry.1.insert(u.name.to_ascii_uppercase());
        }
    }
    let mut out = Vec::new();
    for (address, (declared, others)) in names {
        let org = is_org(&address);
        let limit = if org { GITHUB_ORG_SECRETS } else { GITHUB_REPO_SECRETS };
        let total = declared.union(&others).count();
        if total > limit {
            out.push(LimitProblem {
                severity: "error",
                target: address.clone(),
                message: format!(
                    "{total} secrets ({} declared, {} already there) — GitHub allows {limit} per {}",
                    declared.len(),
                    others.len(),
                    if org { "organization" } else { "repository or environment" }
                ),
            });
        }
        if org {
            let all: Vec<&String> = declared.union(&others).collect();
            for (position, name) in all.iter().enumerate().skip(GITHUB_ORG_VISIBLE) {
                if declared.contains(*name) {
                    out.push(LimitProblem {
                        severity: "warning",
                        target: address.clone(),
                        message: format!(
                            "{name} is organization secret #{} alphabetically: a workflow sees only the first {GITHUB_ORG_VISIBLE}",
                            position + 1
                        ),
                    });
                }
            }
        }
    }
    out
}

/// Repositories of one owner from which an org-level secret is suggested.
const ORG_SUGGESTION_FROM: usize = 5;

pub fn load(policy: &Policy, plans: [&Vec<TokenPlan>; 2]) -> GithubLoad {
    use crate::policy::{GithubScope, TargetSpec};
    let writes = plans
        .iter()
        .flat_map(|p| p.iter())
        .flat_map(|p| &p.steps)
        .map(|s| match s {
            crate::rotation::Step::Deliver { target, names, .. } if is_github(target) => names.len(),
            _ => 0,
        })
        .sum();
    let mut org_candidates = Vec::new();
    for token in policy.tokens.values() {
        let mut by_owner: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for t in &token.targets {
            if let TargetSpec::Github(g) = &t.spec
                && let GithubScope::Repo { owner, repo } = &g.scope
            {
                by_owner.entry(owner).or_default().push(repo.clone());
            }
        }
        for (owner, repos) in by_owner.into_iter().filter(|(_, r)| r.len() >= ORG_SUGGESTION_FROM) {
            org_candidates.push(OrgCandidate { token: token.name.clone(), owner: owner.to_string(), repos });
        }
    }
    let least = super::pacer::Budget::github().time_for(writes);
    GithubLoad { writes, least_seconds: least.as_secs(), org_candidates }
}

/// `is visible to `all` repositories; the policy sets `private`: …` when an
/// organization secret's visibility differs from what the policy sets.
pub fn visibility_change(
    target: &crate::policy::TargetPolicy,
    listed: Option<&crate::targets::RemoteSecret>,
) -> Option<String> {
    let crate::policy::TargetSpec::Github(g) = &target.spec else { return None };
    let crate::policy::GithubScope::Org { visibility: Some(wanted), .. } = &g.scope else { return None };
    let now = listed?.visibility.as_deref()?;
    (now != wanted.as_str()).then(|| {
        format!(
            "is visible to `{now}` repositories; the policy sets `{}`: the next write changes who may use it",
            wanted.as_str()
        )
    })
}
