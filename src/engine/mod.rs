//! The engine: everything between the command line and the backends.
//! A [`Workspace`] holds what every command works on (policy, registry,
//! identity, clock, lock and the target/issuer factories); the engine
//! observes targets, plans (with the pure planner in [`crate::rotation`]),
//! executes, and owns every registry write and delivery record. Commands
//! in `cli/` parse arguments, call the engine and render what it returns.

pub mod backends;
pub mod check;
pub mod deliver;
pub mod keys;
pub mod leaks;
pub mod machines;
pub mod memory;
pub mod merge;
pub mod observe;
mod opened;
pub mod outcome;
pub mod reads;
mod runner;
pub mod status;
pub mod store;
mod sync;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use self::opened::Opened;
use crate::error::{Hint, Hinted};
use crate::identity::Identity;
use crate::policy::{self, Policy, TokenPolicy};
use crate::registry::audit;
use crate::registry::{Registry, RegistryError, RegistryLock, TokenMeta};
use crate::rotation::{Mode, Observations, Step, TokenPlan};
use crate::targets::{LimitProblem, TargetId};

pub use backends::{Backends, Live};
pub use deliver::TargetSummary;
pub use observe::Unmanaged;
pub use outcome::{Event, Outcome, TokenOutcome};

pub struct Workspace {
    pub policy: Policy,
    pub registry: Registry,
    /// The age identity, where one is at hand (some commands need none).
    pub identity: Option<Identity>,
    /// "Now" for every decision of the run (`--now` moves it).
    pub now: DateTime<Utc>,
    /// How long a writer waits for another one.
    pub lock_timeout: Duration,
    pub backends: Box<dyn Backends>,
    /// Told as the run goes (the command line draws it on a terminal).
    pub progress: Box<dyn Fn(Progress<'_>) + Send + Sync>,
}

/// What a long run reports while it runs, before its report is ready.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Deliveries to these targets begin, each with the service it counts
    /// under (`GitHub`, `Cloudflare`, `files`).
    Delivering { targets: &'a [(TargetId, &'static str)] },
    /// One target's writes begin.
    TargetStarted(&'a TargetId),
    /// One target is finished.
    TargetDone(&'a TargetSummary),
}

/// A progress sink that ignores everything.
pub fn quiet() -> Box<dyn Fn(Progress<'_>) + Send + Sync> {
    Box::new(|_| {})
}

impl Workspace {
    /// The identity, or an error that says how to get one.
    pub fn identity(&self) -> anyhow::Result<&Identity> {
        self.identity.as_ref().ok_or_else(|| anyhow::Error::new(crate::identity::IdentityError::NotFound))
    }

    /// The writers' lock, held while planning and executing.
    pub fn lock(&self) -> Result<RegistryLock, RegistryError> {
        self.registry.lock(self.lock_timeout)
    }

    /// Metadata of every token the policy declares (fresh records for new ones).
    pub fn metas(&self) -> Result<BTreeMap<String, TokenMeta>, RegistryError> {
        self.load_declared().into_iter().map(|(name, meta)| Ok((name.clone(), meta?))).collect()
    }

    /// Every declared token's metadata file, read and parsed on a few
    /// threads (a registry of thousands of tokens is thousands of small
    /// files), in the policy's order.
    pub fn load_declared(&self) -> Vec<(&String, Result<TokenMeta, RegistryError>)> {
        let names: Vec<&String> = self.policy.tokens.keys().collect();
        let loaded = self.registry.load_many(&names);
        names.into_iter().zip(loaded).collect()
    }

    /// Metadata of every declared token whose file can be read, and the
    /// tokens whose file cannot (each with its error): one damaged file
    /// stops only its own token, never planned as if it had no history.
    pub fn readable_metas(&self, only: &[String]) -> (BTreeMap<String, TokenMeta>, Vec<TokenOutcome>) {
        let mut metas = BTreeMap::new();
        let mut damaged = Vec::new();
        for (name, loaded) in self.load_declared() {
            match loaded {
                Ok(meta) => {
                    metas.insert(name.clone(), meta);
                }
                Err(e) if only.is_empty() || only.contains(name) => damaged
                    .push(TokenOutcome { token: name.clone(), outcome: Outcome::failed(e.to_string(), e.hint()) }),
                Err(_) => {}
            }
        }
        (metas, damaged)
    }

    /// Why `version` of `token` must not reach a remote target without
    /// `--force`: it came from another issuer than the policy's.
    pub fn origin_problem(&self, token: &TokenPolicy, meta: &TokenMeta, version: u32) -> Option<String> {
        let issuer = self.policy.issuer_of(token);
        meta.versions.iter().find(|v| v.id == version)?.origin_mismatch(&issuer.name, &issuer.issued_by())
    }

    /// A token name the policy must declare, with a suggestion when it does not.
    pub fn token(&self, name: &str) -> Result<&TokenPolicy, Hinted> {
        self.policy.token(name).ok_or_else(|| {
            let hint = match policy::closest(name, self.policy.tokens.keys().map(String::as_str)) {
                Some(c) => format!("did you mean `{c}`?"),
                None => format!("declare it as [tokens.{name}] in a policy file"),
            };
            Hinted::new(format!("no policy declares the token `{name}`"), hint)
        })
    }

    /// Appends to the audit log (names and versions, never values).
    pub fn audit(
        &self,
        event: &str,
        token: &str,
        version: Option<u32>,
        detail: Option<String>,
    ) -> Result<(), RegistryError> {
        self.registry.audit(audit::Event { event, token: Some(token), version, detail }, self.now)
    }

    /// The targets of the selected tokens (all when `only` is empty).
    fn selected_targets<'a>(&'a self, only: &'a [String]) -> impl Iterator<Item = &'a policy::TargetPolicy> {
        self.policy.tokens.values().filter(|t| only.is_empty() || only.contains(&t.name)).flat_map(|t| &t.targets)
    }

    /// Whether any selected token delivers to a .env file.
    pub fn has_local_targets(&self, only: &[String]) -> bool {
        self.selected_targets(only).any(|t| !t.is_remote())
    }

    /// Whether any selected token delivers to a remote target.
    pub fn needs_remote(&self, only: &[String]) -> bool {
        self.selected_targets(only).any(|t| t.is_remote())
    }

    /// For each remote target whose service has something to say about
    /// writes (a Worker's deployments): a note of what a write will do, or
    /// a warning that the service would refuse it — before any write.
    async fn write_effects(
        &self,
        notes: &mut Vec<String>,
        opened: &Opened,
        written: &std::collections::BTreeSet<TargetId>,
    ) -> Vec<LimitProblem> {
        let targets = self.policy.remote_targets();
        let effects = futures_util::future::join_all(targets.iter().map(|(address, t)| async move {
            let effect = match opened.target(self, t) {
                Ok(target) => target.write_effect().await,
                Err(e) => Some(Err(e)),
            };
            (address.clone(), effect)
        }))
        .await;
        let mut problems = Vec::new();
        for (address, effect) in effects {
            match effect {
                // What a write will do, only where a plan writes: a note on a
                // write that will not happen is an untruth. That the service
                // would refuse a write is said either way (the next one would).
                Some(Ok(note)) if written.contains(&address) => notes.push(format!("{address}: {note}")),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    problems.push(LimitProblem { severity: "warning", target: address, message: e.message })
                }
                None => {}
            }
        }
        problems
    }

    /// A retirement the run would refuse is shown as what it is: a Worker
    /// still runs a version made before the new value, or a machine a .env
    /// target names has not synced the new value yet.
    fn show_blocked_retirements(
        &self,
        plans: &mut [TokenPlan],
        metas: &BTreeMap<String, TokenMeta>,
        look: &observe::RemoteLook,
    ) {
        for plan in plans {
            let (Some(token), Some(meta)) = (self.policy.token(&plan.token), metas.get(&plan.token)) else { continue };
            for step in &mut plan.steps {
                let Step::Retire { version, .. } = step else { continue };
                let version = *version;
                let runs = look.blocks_retirement(token, meta, version);
                if !runs.is_empty() {
                    *step = Step::Remind {
                        reason: format!(
                            "v{version} cannot be retired yet: {}, made before the new value, may still run it",
                            runs.join("; ")
                        ),
                        hint: format!("{}; the next run retires it", crate::targets::ROLLOUT_HINT).into(),
                    };
                    continue;
                }
                let behind = match self.machines_behind(token, version) {
                    Ok(behind) => behind.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    // The run would stop on it too.
                    Err(e) => vec![format!("a check-in that cannot be trusted ({e})")],
                };
                if !behind.is_empty() {
                    *step = Step::Remind {
                        reason: format!(
                            "v{version} cannot be retired yet: {} has not synced the new value",
                            behind.join(", ")
                        ),
                        hint: format!(
                            "run `chitty-secrets sync` on each of them and commit their check-ins; the next `rotate {}` retires it",
                            token.name
                        ).into(),
                    };
                }
            }
        }
    }

    /// What `rotate --due` and `sync` would do, from the records, the .env
    /// files (with the identity) and one listing of each remote target.
    pub async fn preview(&self) -> anyhow::Result<Preview> {
        let (metas, damaged) = self.readable_metas(&[]);
        let (mut observed, elsewhere) = self.observe_local(&metas).await?;
        // Remote names are read (never values) to report drift and unmanaged
        // secrets; without credentials, plan says so and goes on.
        let mut unmanaged = Vec::new();
        let mut remote_notes = Vec::new();
        let mut reachable = false;
        let mut look = observe::RemoteLook::default();
        // The listing and the write preview share each target (one read of
        // a Worker's deployments).
        let opened = Opened::default();
        let missing: Vec<String> =
            crate::credentials::missing(&crate::credentials::needed(&self.policy, &[]), crate::credentials::env_is_set)
                .into_iter()
                .filter(|n| n.for_targets)
                .map(crate::credentials::Need::unset)
                .collect();
        if !missing.is_empty() {
            // Without credentials a listing can only fail: none is tried.
            remote_notes.extend(missing.into_iter().map(|m| format!("remote targets were not listed: {m}")));
        } else if self.needs_remote(&[]) {
            look = self.observe_remote_all(&metas, &mut observed, &opened).await;
            unmanaged = std::mem::take(&mut look.unmanaged);
            remote_notes.extend(std::mem::take(&mut look.notes));
            reachable = look.unreachable.is_empty();
            remote_notes
                .extend(look.unreachable.iter().map(|e| format!("not listed, judged by delivery records: {e}")));
        }
        if reachable {
            for (address, said) in self.readers(&opened).await {
                match said {
                    Ok(r) if r.warning => remote_notes.push(format!("warning: {address}: {}", r.message)),
                    Ok(r) => remote_notes.push(format!("{address}: {}", r.message)),
                    Err(e) => remote_notes.push(format!("who reads {address} was not found out: {e}")),
                }
            }
        }
        let mut rotate = crate::rotation::plan(
            &self.policy,
            &metas,
            &observed,
            self.now,
            Mode::Rotate { only: &[], due_only: true, emergency: false },
        );
        let mut sync = crate::rotation::plan(&self.policy, &metas, &observed, self.now, Mode::Sync { only: &[] });
        for plans in [&mut rotate, &mut sync] {
            plans.retain(|p| metas.contains_key(&p.token));
            machines::drop_elsewhere(plans, &elsewhere);
        }
        sync.retain(|p| !p.steps.is_empty());
        self.show_blocked_retirements(&mut rotate, &metas, &look);
        let not_on_this_machine = elsewhere.into_iter().map(|(_, why)| why).collect();
        remote_notes.extend(observe::not_deployed_notes(&metas, &observed));
        let budget = crate::targets::write_load(&self.policy, [&rotate, &sync]);
        let mut limits = crate::targets::limits(&self.policy, &unmanaged);
        if reachable {
            let written = planned_writes(&self.policy, [&rotate, &sync]);
            limits.extend(self.write_effects(&mut remote_notes, &opened, &written).await);
        }
        Ok(Preview {
            rotate,
            sync,
            damaged,
            unmanaged,
            remote_notes,
            local_files_compared: self.identity.is_some(),
            not_on_this_machine,
            budget,
            limits,
        })
    }

    /// `rotate`, `rotate --abort` and `sync`: plan under the lock, then
    /// execute (or, for a dry run, only plan).
    pub async fn run(&self, request: RunRequest<'_>) -> anyhow::Result<RunReport> {
        let RunRequest { mode, dry_run, verify, prune, force, max_duration, redeliver } = request;
        let deadline = max_duration.map(|d| std::time::Instant::now() + d);
        if let Some(deadline) = deadline {
            self.backends.stop_writing_at(deadline);
        }
        let only = mode.only();
        for name in only {
            self.token(name)?;
        }
        let is_sync = matches!(mode, Mode::Sync { .. });
        if !dry_run {
            self.identity()?;
            // Nothing leaves this machine (a delivery, a revoke, a prune) on
            // the word of files nobody checked: a run that writes needs the
            // registry unlocked by a member.
            match self.registry.trust() {
                crate::registry::Trust::Verified { .. } => {}
                crate::registry::Trust::Legacy => {
                    return Err(RegistryError::Legacy { path: self.registry.dir().to_path_buf() }.into());
                }
                crate::registry::Trust::Unverified => {
                    return Err(
                        RegistryError::NeedsKey { path: self.registry.key_path(), what: "a run that writes" }.into()
                    );
                }
            }
            // A limit `plan` reports as an error stops the run before its
            // first write: a run that wrote 100 of 101 secrets would leave
            // the last one pending for ever.
            let broken: Vec<String> = crate::targets::limits(&self.policy, &[])
                .into_iter()
                .filter(|l| l.severity == "error")
                .map(|l| format!("{}: {}", l.target, l.message))
                .collect();
            if !broken.is_empty() {
                return Err(Hinted::new(
                    format!(
                        "nothing was written: the policies break a limit of the service\n  {}",
                        broken.join("\n  ")
                    ),
                    "spread the names over more repositories or environments (`chitty-secrets plan` shows every limit)",
                )
                .into());
            }
        }
        // Hold the lock from planning to the last save, so the plan is made
        // from the state it is executed against. A dry run writes nothing.
        let _lock = if dry_run { None } else { Some(self.lock()?) };
        tracing::trace!("locked");
        let (mut metas, mut damaged) = self.readable_metas(only);
        tracing::trace!("{} token file(s) read", metas.len());
        // Values the audit log says were ended are never delivered again,
        // whatever a metadata file put back from before says.
        let ended = if dry_run { Default::default() } else { self.registry.ended_values() };
        // What a git merge left untracked is recorded before anything is planned.
        let merged: Vec<String> = if dry_run {
            Vec::new()
        } else {
            self.adopt_strays(&mut metas, &ended)?.iter().map(ToString::to_string).collect()
        };
        metas.retain(|name, meta| {
            let Some(v) = meta.ended_but_live(&ended).next() else { return true };
            if only.is_empty() || only.contains(name) {
                damaged.push(TokenOutcome {
                    token: name.clone(),
                    outcome: Outcome::failed(
                        meta.ended_but_live_message(v),
                        Some(Hint::new(format!(
                            "nothing was delivered or revoked for {name}; see `git log -p -- {}` and restore the newest version a member wrote",
                            self.registry.meta_path(name).display()
                        ))),
                    ),
                });
            }
            false
        });
        let (mut observed, elsewhere) = if is_sync {
            self.observe_local(&metas).await?
        } else {
            (Observations::new(), machines::elsewhere_all(self))
        };
        let mut looked = Vec::new();
        if verify && self.needs_remote(only) {
            looked = self.observe_remote(&metas, &mut observed).await?.notes;
        }
        if redeliver {
            // Every name is taken as holding something else: all are written.
            for (name, token) in self.policy.tokens.iter().filter(|(n, _)| only.is_empty() || only.contains(n)) {
                for target in &token.targets {
                    let address = target.address();
                    for n in &target.names {
                        observed.insert(
                            (name.clone(), crate::registry::DeliveryKey::new(&address, n.as_str())),
                            crate::rotation::Observed::Redeliver,
                        );
                    }
                }
            }
        }
        let mut remote_notes = observe::not_deployed_notes(&metas, &observed);
        remote_notes.extend(looked);
        remote_notes.extend(merged);
        if dry_run {
            remote_notes.extend(self.strays(&metas).into_iter().map(|(token, file)| {
                format!("{token}: tokens/{token}.{file}.age is a value no metadata names (a merge?): the run records it first")
            }));
        }
        tracing::trace!("observed");
        let mut plans = crate::rotation::plan(&self.policy, &metas, &observed, self.now, mode);
        plans.retain(|p| metas.contains_key(&p.token));
        // A .env file on another machine is that machine's to write.
        machines::drop_elsewhere(&mut plans, &elsewhere);
        if dry_run && !is_sync {
            // What the run would refuse, as `plan` shows it.
            self.show_blocked_retirements(&mut plans, &metas, &observe::RemoteLook::default());
        }
        plans.retain(|p| !p.steps.is_empty() || !is_sync);
        for p in &plans {
            tracing::debug!("plan for {}: {:?}", p.token, p.steps);
        }
        let (away, not_on_this_machine): (Vec<TargetId>, Vec<String>) = elsewhere.into_iter().unzip();
        let mut report = RunReport {
            plans,
            executed: !dry_run,
            outcomes: damaged,
            targets: Vec::new(),
            pruned: Vec::new(),
            requests: (0, 0),
            local_files_compared: self.identity.is_some(),
            not_on_this_machine,
            remote_notes,
        };
        if dry_run {
            return Ok(report);
        }
        if is_sync {
            let (outcomes, targets) = sync::sync_all(self, &report.plans, &metas, only, &away, force).await;
            report.outcomes.extend(outcomes);
            report.targets = targets;
        } else {
            let emergency = mode.is_emergency();
            let plans: Vec<(&policy::TokenPolicy, &[crate::rotation::Step])> = report
                .plans
                .iter()
                .map(|p| (self.policy.token(&p.token).expect("plans are made from the policy"), &p.steps[..]))
                .collect();
            let outcomes = runner::run_all(self, &plans, emergency, deadline).await;
            for (plan, outcome) in report.plans.iter().zip(outcomes) {
                report.outcomes.push(TokenOutcome { token: plan.token.clone(), outcome });
            }
        }
        if prune {
            report.pruned = sync::prune(self).await?;
        }
        report.requests = self.backends.remote_counts();
        Ok(report)
    }
}

/// The target addresses the plans write to (a mint delivers to every
/// target of its token).
fn planned_writes<'a>(
    policy: &Policy,
    plans: impl IntoIterator<Item = &'a Vec<TokenPlan>>,
) -> std::collections::BTreeSet<TargetId> {
    let mut out = std::collections::BTreeSet::new();
    for plan in plans.into_iter().flatten() {
        for step in &plan.steps {
            match step {
                crate::rotation::Step::Deliver { target, .. } => {
                    out.insert(target.clone());
                }
                crate::rotation::Step::Mint { .. } => {
                    if let Some(token) = policy.token(&plan.token) {
                        out.extend(token.targets.iter().map(|t| t.address()));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// What `plan` shows.
#[derive(serde::Serialize)]
pub struct Preview {
    pub rotate: Vec<TokenPlan>,
    pub sync: Vec<TokenPlan>,
    /// Tokens whose registry file cannot be read: not planned.
    pub damaged: Vec<TokenOutcome>,
    #[serde(skip)]
    pub unmanaged: Vec<Unmanaged>,
    /// What the planned writes cost in the services' write budgets.
    pub budget: crate::targets::WriteLoad,
    /// .env targets that are not this machine's to write, each with why
    /// (the policy names other machines; a CI runner lacks the file).
    pub not_on_this_machine: Vec<String>,
    /// GitHub's limits the policies break (errors) or come near (warnings).
    pub limits: Vec<LimitProblem>,
    /// Remote targets that were not listed, and why (each named).
    #[serde(skip)]
    pub remote_notes: Vec<String>,
    pub local_files_compared: bool,
}

/// How a run was asked for.
pub struct RunRequest<'a> {
    pub mode: Mode<'a>,
    /// Plan only (`--dry-run`, `sync --check`).
    pub dry_run: bool,
    /// List every remote target first (names only), so hand edits show.
    pub verify: bool,
    /// `sync --prune`.
    pub prune: bool,
    /// `sync --force`: deliver to remote targets a value that came from
    /// another issuer than the policy's (see [`crate::registry::Version::origin_mismatch`]).
    pub force: bool,
    /// Stop starting writes (and rotations) that would end after this long;
    /// what is left is done by the next run (exit 4).
    pub max_duration: Option<std::time::Duration>,
    /// `sync --redeliver`: every name at every target is written again,
    /// whatever the records and listings say (a hand edit they cannot see,
    /// such as a GitHub secret changed in the second of our write).
    pub redeliver: bool,
}

/// What a run planned and did.
pub struct RunReport {
    pub plans: Vec<TokenPlan>,
    pub executed: bool,
    pub outcomes: Vec<TokenOutcome>,
    /// Per target, for `sync`.
    pub targets: Vec<TargetSummary>,
    pub pruned: Vec<Event>,
    /// Requests to remote services, and how many were retries.
    pub requests: (u64, u64),
    /// Whether .env files were compared by value (needs the identity).
    pub local_files_compared: bool,
    /// .env targets that are not this machine's to write, each with why
    /// (the policy names other machines; a CI runner lacks the file).
    pub not_on_this_machine: Vec<String>,
    /// What the remote listing found that needs no write but a person's
    /// eye (a Worker version not deployed yet).
    pub remote_notes: Vec<String>,
}

impl RunReport {
    pub fn partial(&self) -> usize {
        self.outcomes.iter().filter(|o| matches!(o.outcome, Outcome::Partial { .. })).count()
    }

    pub fn failed(&self) -> usize {
        self.outcomes.iter().filter(|o| matches!(o.outcome, Outcome::Failed { .. })).count()
    }
}

#[cfg(test)]
mod tests;
