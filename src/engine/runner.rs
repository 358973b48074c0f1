//! The rotation executor: runs one token's plan, saving state to the
//! registry after every step so that a crash at any instant leaves
//! something the next run finishes. The caller holds the registry lock.
//!
//! journal → mint → save `pending` (values, then metadata) → deliver to
//! every target (recorded at once) → verify → promote → retire.

use std::collections::BTreeMap;

use super::Workspace;
use super::deliver::{Batch, Item, TargetReport, deliver_all, push_unique, record_unsaved};
use super::opened::Opened;
use super::outcome::{Event, Outcome};
use crate::identity::Identity;
use crate::issuer::{self, IssueRequest, Revoked, Verdict};
use crate::policy::TokenPolicy;
use crate::registry::{NewVersion, Stage, TokenMeta, ValueOrigin, Values};
use crate::rotation::Step;
use crate::secret::Secret;
use crate::targets::Running;

/// Runs every token's plan, side by side: each token's steps up to its
/// delivery (mint, resume), then every token's deliveries at once — a .env
/// file is rewritten once for all the tokens it holds, a GitHub scope's key
/// fetched once — then each token's remaining steps (verify, promote,
/// retire). `emergency` keeps no overlap; no token starts once `deadline`
/// has passed.
pub async fn run_all(
    ws: &Workspace,
    plans: &[(&TokenPolicy, &[Step])],
    emergency: bool,
    deadline: Option<std::time::Instant>,
) -> Vec<Outcome> {
    let identity = match ws.identity() {
        Ok(i) => i,
        Err(e) => {
            let hint = crate::error::hints(&e).into_iter().next();
            return plans.iter().map(|_| Outcome::failed(format!("{e:#}"), hint.clone())).collect();
        }
    };
    // One folder sync and one audit append per phase, not per write; a
    // barrier before anything leaves this machine keeps every crash
    // guarantee.
    ws.registry.defer_durability();
    let outcomes = run_phases(ws, identity, plans, emergency, deadline).await;
    if let Err(e) = ws.registry.end_deferral() {
        let hint = e.hint();
        return outcomes.into_iter().map(|_| Outcome::failed(e.to_string(), hint.clone())).collect();
    }
    outcomes
}

async fn run_phases<'a>(
    ws: &'a Workspace,
    identity: &'a Identity,
    plans: &[(&'a TokenPolicy, &'a [Step])],
    emergency: bool,
    deadline: Option<std::time::Instant>,
) -> Vec<Outcome> {
    let begin = |(token, steps): (&'a TokenPolicy, &'a [Step])| async move {
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return State::Finished(Outcome::Partial {
                done: Vec::new(),
                error: "not started: the run's time limit (--max-duration) was reached".into(),
                hint: "run the same command again: it continues where this run stopped".into(),
                resumable: true,
            });
        }
        match Runner::new(ws, identity, token, emergency) {
            Err(e) => State::Finished(Outcome::failed(e.to_string(), e.hint())),
            Ok(mut runner) => match runner.before_delivery(steps).await {
                Ok(next) => State::Running { runner: Box::new(runner), steps, next },
                Err(outcome) => State::Finished(outcome),
            },
        }
    };
    let local = |token: &TokenPolicy| ws.policy.issuer_of(token).spec.is_local();
    let mut states = in_order(plans.iter().copied(), |(t, _)| local(t), begin).await;

    // Every running token's deliveries, in shared batches.
    let mut batches = Vec::new();
    for state in &mut states {
        if let State::Running { runner, steps, .. } = state {
            match runner.batches(steps) {
                Ok(theirs) => {
                    for b in theirs {
                        Batch::add(&mut batches, &b.target, b.items);
                    }
                }
                Err(e) => *state = State::Finished(runner.stopped_by(&e)),
            }
        }
    }
    let reports = if batches.is_empty() {
        Vec::new()
    } else {
        // Every pending value is durable before it is delivered anywhere.
        if let Err(e) = ws.registry.barrier() {
            let e = anyhow::Error::new(e);
            return states
                .into_iter()
                .map(|s| match s {
                    State::Finished(outcome) => outcome,
                    State::Running { mut runner, .. } => runner.stopped_by(&e),
                })
                .collect();
        }
        deliver_all(ws, batches, &Opened::default(), &|_, _| {}).await
    };

    let finish = |state: State<'a>| {
        let reports = &reports;
        async move {
            match state {
                State::Finished(outcome) => outcome,
                State::Running { mut runner, steps, next } => match runner.take_delivery(reports) {
                    Ok(failures) => runner.after_delivery(&steps[next..], failures).await,
                    Err(e) => runner.stopped_by(&e),
                },
            }
        }
    };
    // Not an abort: it writes its own deliveries, and two tokens' writes to
    // one .env file must not interleave.
    let finished_or_local = |s: &State<'_>| match s {
        State::Finished(_) => true,
        State::Running { runner, steps, next } => {
            local(runner.token) && !steps[*next..].iter().any(|s| matches!(s, Step::Abort { .. }))
        }
    };
    in_order(states, finished_or_local, finish).await
}

/// `work` on every item, in `items`' order of results. Items `side_by_side`
/// says may (tokens whose issuer is local: their steps are CPU and saves,
/// and fsyncs issued side by side share the file system's journal commits)
/// run on a few threads that each drive their futures on this runtime; the
/// others run one after another, as they must (a remote issuer's quota and
/// its answers are met in order).
async fn in_order<T, R, F, Fut>(
    items: impl IntoIterator<Item = T>,
    side_by_side: impl Fn(&T) -> bool,
    work: F,
) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> Fut + Sync,
    Fut: std::future::Future<Output = R>,
{
    let mut together = Vec::new();
    let mut alone = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if side_by_side(&item) { together.push((i, item)) } else { alone.push((i, item)) }
    }
    let mut out: Vec<(usize, R)> = Vec::with_capacity(together.len() + alone.len());
    let handle = tokio::runtime::Handle::current();
    if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(4, 8);
        let work = &work;
        out = tokio::task::block_in_place(|| {
            crate::threads::map_on_threads(std::mem::take(&mut together), threads, |(i, item)| {
                (i, handle.block_on(work(item)))
            })
        });
    } else {
        alone.append(&mut together);
    }
    alone.sort_by_key(|(i, _)| *i);
    for (i, item) in alone {
        out.push((i, work(item).await));
    }
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

/// One token's place in [`run_all`].
enum State<'a> {
    Running { runner: Box<Runner<'a>>, steps: &'a [Step], next: usize },
    Finished(Outcome),
}

struct Runner<'a> {
    ws: &'a Workspace,
    identity: &'a Identity,
    token: &'a TokenPolicy,
    emergency: bool,
    meta: TokenMeta,
    values: Values,
    done: Vec<Event>,
    /// What the errors met on the way say to do, besides resuming.
    hints: Vec<crate::error::Hint>,
    /// The version being rotated in, once known.
    incoming: Option<u32>,
    /// Stopped for a reason a rerun fixes (quota, no answer): exit 4.
    resumable: bool,
    /// Delivery records not saved yet (they go with the promotion).
    unsaved: bool,
}

impl<'a> Runner<'a> {
    fn new(
        ws: &'a Workspace,
        identity: &'a Identity,
        token: &'a TokenPolicy,
        emergency: bool,
    ) -> Result<Self, crate::registry::RegistryError> {
        // Load under the lock: the plan may have been made from an older read.
        let meta = ws.registry.load(&token.name)?;
        let values = ws.registry.load_values(&meta, &identity.key)?;
        let incoming = meta.pending().map(|v| v.id);
        Ok(Runner {
            ws,
            identity,
            token,
            emergency,
            meta,
            values,
            done: Vec::new(),
            hints: Vec::new(),
            incoming,
            resumable: false,
            unsaved: false,
        })
    }

    /// The steps before any delivery (mint, resume, a reminder); returns
    /// where the rest begins, or how the token's run ended.
    async fn before_delivery(&mut self, steps: &[Step]) -> Result<usize, Outcome> {
        for (i, step) in steps.iter().enumerate() {
            tracing::debug!("{}: {step:?}", self.token.name);
            let result = match step {
                Step::Mint { .. } => self.mint().await,
                Step::Resume { version, .. } => {
                    self.incoming = Some(*version);
                    Ok(())
                }
                Step::Remind { reason, hint } => {
                    return Err(Outcome::failed(format!("{} {reason}", self.token.name), Some(hint.clone())));
                }
                _ => return Ok(i),
            };
            if let Err(e) = result {
                return Err(self.stopped_by(&e));
            }
        }
        Ok(steps.len())
    }

    /// Every Deliver step of the plan, as batches (the version about to be
    /// minted is the incoming one).
    fn batches(&self, steps: &[Step]) -> anyhow::Result<Vec<Batch>> {
        let mut batches = Vec::new();
        for step in steps {
            let Step::Deliver { target: address, names, version, .. } = step else { continue };
            let version =
                version.or(self.incoming).ok_or_else(|| anyhow::anyhow!("no version to deliver to {address}"))?;
            let value = self.value(version)?;
            let target = self
                .token
                .targets
                .iter()
                .find(|t| &t.address() == address)
                .ok_or_else(|| anyhow::anyhow!("{address} is no longer in the policy"))?;
            let items = names.iter().map(|name| Item {
                token: self.token.name.clone(),
                name: name.clone(),
                version,
                value: value.clone(),
            });
            Batch::add(&mut batches, target, items);
        }
        Ok(batches)
    }

    /// Records what of this token landed in `reports` (saved with the
    /// promotion, or when the run stops); one line per name that did not
    /// (other targets still land).
    fn take_delivery(&mut self, reports: &[TargetReport]) -> anyhow::Result<Vec<String>> {
        let recorded = record_unsaved(self.ws, &mut self.meta, &self.token.name, reports)?;
        self.unsaved |= !recorded.events.is_empty();
        crate::crash::point("after-deliver");
        for h in recorded.hints() {
            push_unique(&mut self.hints, h);
        }
        self.done.extend(recorded.events);
        Ok(recorded.failures.iter().map(ToString::to_string).collect())
    }

    /// The steps after delivery; verify and promote only when every target
    /// took the new value.
    async fn after_delivery(&mut self, steps: &[Step], failures: Vec<String>) -> Outcome {
        let outcome = self.steps_after_delivery(steps, failures).await;
        // Records of a run that stopped before its promotion.
        if self.unsaved
            && let Err(e) = self.save()
        {
            return self.stopped_by(&e);
        }
        outcome
    }

    async fn steps_after_delivery(&mut self, steps: &[Step], failures: Vec<String>) -> Outcome {
        for step in steps {
            if matches!(step, Step::Deliver { .. } | Step::Mint { .. } | Step::Resume { .. } | Step::Remind { .. }) {
                continue;
            }
            if matches!(step, Step::Verify | Step::Promote) && !failures.is_empty() {
                tracing::debug!(
                    "{}: stopping before {step:?}: {} target(s) did not take the value",
                    self.token.name,
                    failures.len()
                );
                break;
            }
            tracing::debug!("{}: {step:?}", self.token.name);
            let result = match step {
                Step::Verify => self.verify().await,
                Step::Promote => self.promote(),
                Step::Retire { version, .. } => self.retire(*version).await,
                Step::Abort { version } => self.abort(*version).await,
                Step::Deliver { .. } | Step::Mint { .. } | Step::Resume { .. } | Step::Remind { .. } => continue,
            };
            if let Err(e) = result {
                return self.stopped_by(&e);
            }
        }
        if !failures.is_empty() {
            return self.stopped(failures.join("\n  "));
        }
        Outcome::Done { done: std::mem::take(&mut self.done) }
    }

    /// How the run ends after `e`: its hints kept, the way to resume said.
    fn stopped_by(&mut self, e: &anyhow::Error) -> Outcome {
        for h in crate::error::hints(e) {
            push_unique(&mut self.hints, h);
        }
        self.stopped(error_text(e))
    }

    fn stopped(&mut self, error: String) -> Outcome {
        let name = &self.token.name;
        let resume = match self.meta.pending() {
            Some(p) => Some(format!(
                "v{} is saved as pending; fix the problem and run `chitty-secrets rotate {name}` to resume",
                p.id
            )),
            None if self.resumable || self.meta.rotation.is_some() => {
                Some(format!("the rotation is saved as it is; run `chitty-secrets rotate {name}` again to resume"))
            }
            None if !self.done.is_empty() => {
                Some(format!("fix the problem and run `chitty-secrets rotate {name}` again; what was done is recorded"))
            }
            None => None,
        };
        let mut hints = std::mem::take(&mut self.hints);
        match resume {
            Some(resume) => {
                hints.push(resume.into());
                Outcome::Partial {
                    done: std::mem::take(&mut self.done),
                    error,
                    hint: crate::error::Hint::joined(&hints),
                    resumable: true,
                }
            }
            None => Outcome::failed(error, (!hints.is_empty()).then(|| crate::error::Hint::joined(&hints))),
        }
    }

    fn save(&mut self) -> anyhow::Result<()> {
        self.ws.registry.save(&mut self.meta)?;
        self.unsaved = false;
        Ok(())
    }

    /// Records a step in the audit log (names and versions, never values).
    fn audit(&self, event: &str, version: Option<u32>, detail: Option<String>) -> anyhow::Result<()> {
        self.ws.audit(event, &self.token.name, version, detail)?;
        Ok(())
    }

    /// Notes an issuer error; a quota or no-answer makes the run "partial" (exit 4).
    fn issuer_error(&mut self, e: issuer::IssuerError) -> anyhow::Error {
        if matches!(e, issuer::IssuerError::Quota { .. } | issuer::IssuerError::Uncertain { .. }) {
            self.resumable = true;
        }
        anyhow::Error::new(e)
    }

    fn issuer(&self, policy: &crate::policy::IssuerPolicy) -> anyhow::Result<Box<dyn issuer::Issuer>> {
        Ok(self.ws.backends.issuer(policy, &self.ws.registry, Some(self.identity))?)
    }

    /// An earlier mint that may have reached the issuer and was never saved
    /// is recorded as a suspected orphan (`check` reports it).
    fn record_orphan(&mut self) -> anyhow::Result<()> {
        let Some(orphan) = self.meta.take_orphan(&self.token.issuer) else {
            return Ok(());
        };
        if self.ws.policy.issuer_of(self.token).spec.is_local() {
            // A value made here and never saved exists nowhere: nothing to
            // find or revoke.
            self.meta.orphans.retain(|o| o.tag != orphan.tag);
            self.save()?;
            return Ok(());
        }
        self.save()?;
        let detail = format!(
            "a token may have been issued by `{}` at {} and never recorded; its description carries [chitty-secrets {}]",
            orphan.issuer, orphan.at, orphan.tag
        );
        self.audit("rotate.orphan-suspected", None, Some(detail))?;
        self.done.push(Event::OrphanRecorded { tag: orphan.tag, issuer: orphan.issuer });
        Ok(())
    }

    async fn mint(&mut self) -> anyhow::Result<()> {
        let issuer_policy = self.ws.policy.issuer_of(self.token);
        let issuer = self.issuer(issuer_policy)?;
        self.ws.registry.check_writable(&self.token.name)?;
        self.record_orphan()?;
        // The journal, with the tag the issuer will see, goes to disk before
        // a service is called. A value made here (a local issuer) exists
        // nowhere until it is saved below: its journal only says a
        // rotation was begun (a killed run is resumed), so it is put in
        // place without a sync — one fsync a token fewer.
        let tag = random_tag();
        self.meta.begin_mint(self.ws.now, Some(tag.clone()));
        if issuer_policy.spec.is_local() {
            self.ws.registry.save_unsynced(&mut self.meta)?;
        } else {
            self.save()?;
            self.ws.registry.barrier()?;
        }
        crate::crash::point("before-issue");
        let request = IssueRequest {
            token: &self.token.name,
            scopes: &self.token.scopes,
            ttl: self.token.ttl.map(|t| t.0),
            description: self.token.description.as_deref(),
            now: self.ws.now,
            tag: Some(&tag),
        };
        let issued = match issuer.issue(&request).await {
            Ok(issued) => issued,
            // No answer: a token may exist. The journal keeps the tag, and the
            // next run records it as a suspected orphan before minting again.
            Err(e @ issuer::IssuerError::Uncertain { .. }) => return Err(self.issuer_error(e)),
            Err(e) => {
                // The service answered "no": nothing was minted. A quota
                // answer leaves the rotation open (resumable); anything else
                // puts the state back as it was.
                if matches!(e, issuer::IssuerError::Quota { .. }) {
                    self.meta.begin_mint(self.ws.now, None);
                } else {
                    self.meta.rotation = None;
                }
                self.save()?;
                return Err(self.issuer_error(e));
            }
        };
        let unfit = || self.token.targets.iter().find_map(|t| crate::targets::value_problem(t, &issued.value));
        // A service may grant fewer scopes than asked for and still answer
        // 201: such a token would fail where the missing scope is needed.
        let narrowed = || {
            let missing = issued.missing_scopes(&self.token.scopes);
            (!missing.is_empty()).then(|| {
                format!(
                    "lacks scope {} that the policy asks for (the issuer granted {})",
                    missing.join(", "),
                    issued.scopes.as_deref().unwrap_or_default().join(", ")
                )
            })
        };
        if let Some(why) = unusable(&issued, self.ws.now, &self.ws.policy.placeholders).or_else(narrowed).or_else(unfit)
        {
            // Never promoted: the answer is refused, the token revoked where
            // the issuer can, and the state put back as it was.
            let revoked = matches!(issuer.revoke(issued.token_id.as_deref()).await, Ok(issuer::Revoked::Revoked));
            self.meta.rotation = None;
            self.save()?;
            let what = if revoked { "it was revoked and not stored" } else { "it was not stored" };
            return Err(self.issuer_error(issuer::IssuerError::Failed {
                issuer: issuer_policy.name.clone(),
                message: format!("the issued token {why}; {what}"),
            }));
        }
        let new = NewVersion {
            issuer: issuer_policy.name.clone(),
            issued_by: issuer_policy.issued_by(),
            token_id: issued.token_id,
            scopes: self.token.scopes.clone(),
            created_at: self.ws.now,
            expires_at: issued.expires_at,
            origin: ValueOrigin::Issued,
            placeholder: false,
            value: None,
        };
        let mut new = new;
        let id = self.meta.next_version_id();
        crate::crash::point("after-mint");
        // The value is saved (encrypted) before anything refers to it, and
        // before it is sent anywhere.
        new.value = Some(self.ws.registry.save_value(&self.token.name, id, new.minted(), &issued.value)?);
        self.values.insert(id, issued.value);
        crate::crash::point("after-save-value");
        self.meta.add_pending(new, self.ws.now);
        self.save()?;
        self.incoming = Some(id);
        self.audit("rotate.mint", Some(id), Some(format!("issuer {}", issuer_policy.name)))?;
        self.done.push(Event::Minted { version: id, issuer: issuer_policy.name.clone() });
        Ok(())
    }

    fn value(&self, version: u32) -> anyhow::Result<Secret> {
        self.values.get(version).cloned().ok_or_else(|| {
            anyhow::anyhow!(
                "the value of {} v{version} is not in {} (the value file is older than the metadata)",
                self.token.name,
                self.ws.registry.values_dir(&self.token.name).display()
            )
        })
    }

    async fn verify(&mut self) -> anyhow::Result<()> {
        let version = self.incoming.ok_or_else(|| anyhow::anyhow!("nothing to verify"))?;
        let value = self.value(version)?;
        let issuer = self.issuer(self.ws.policy.issuer_of(self.token))?;
        let verdict = match issuer.verify(&value).await {
            Ok(v) => v,
            Err(e) => return Err(self.issuer_error(e)),
        };
        match verdict {
            Verdict::Valid => {
                self.done.push(Event::Verified { version, issuer: issuer.name().to_string() });
                Ok(())
            }
            Verdict::Invalid(why) => anyhow::bail!("issuer `{}` says v{version} is not valid: it {why}", issuer.name()),
        }
    }

    fn promote(&mut self) -> anyhow::Result<()> {
        let version = self.incoming.ok_or_else(|| anyhow::anyhow!("nothing to promote"))?;
        crate::crash::point("before-promote");
        // An emergency (a leaked token) keeps no overlap.
        let overlap = if self.emergency { chrono::TimeDelta::zero() } else { self.token.overlap.0 };
        self.meta.promote(version, self.ws.now + overlap)?;
        self.save()?;
        self.audit("rotate.promote", Some(version), None)?;
        self.done.push(Event::Promoted { version });
        Ok(())
    }

    /// `rotate --abort`: `current` goes back wherever `pending` went (each
    /// target recorded as it lands), then `pending` is revoked. Without a
    /// current version to put back, targets holding `pending` would be left
    /// with a revoked token: refused.
    async fn abort(&mut self, version: Option<u32>) -> anyhow::Result<()> {
        let Some(pending) = version else {
            self.record_orphan()?;
            self.meta.rotation = None;
            self.save()?;
            self.done.push(Event::JournalClosed);
            return Ok(());
        };
        // Another machine a .env target names may hold the pending value
        // (its check-in says so): only it can put the current one back, so
        // it is not revoked from here. An expired one is dead anyway.
        let expired = self.meta.version(pending).and_then(|v| v.expires_at).is_some_and(|e| e <= self.ws.now);
        let elsewhere: Vec<String> = super::machines::declared_states(self.token, &self.ws.registry.checkins_here()?)
            .into_iter()
            .filter(|s| s.machine != crate::registry::machine::this_machine())
            .filter(|s| s.holds.is_some_and(|(v, _)| v == pending))
            .map(|s| s.to_string())
            .collect();
        if !elsewhere.is_empty() && !expired {
            self.resumable = true;
            return Err(crate::error::Hinted::new(
                format!("v{pending} is not revoked: {} still holds it", elsewhere.join(", ")),
                format!(
                    "run `chitty-secrets rotate --abort {0}` on each of them first (or finish the rotation: `chitty-secrets rotate {0}`)",
                    self.token.name
                ),
            )
            .into());
        }
        let held: Vec<_> = self.meta.holders(pending).into_iter().cloned().collect();
        if !held.is_empty() {
            let Some(current) = self.meta.current().map(|v| v.id) else {
                anyhow::bail!(
                    "v{pending} is the only value {} targets hold, and there is no current version to put back; finish the rotation instead (`chitty-secrets rotate {}`)",
                    held.len(),
                    self.token.name
                );
            };
            let mut by_target: BTreeMap<crate::targets::TargetId, Vec<String>> = BTreeMap::new();
            for key in held {
                by_target.entry(key.target).or_default().push(key.name);
            }
            let put_back: Vec<Step> = by_target
                .into_iter()
                .map(|(target, names)| Step::Deliver { target, names, version: Some(current), reason: "abort".into() })
                .collect();
            self.ws.registry.barrier()?;
            let reports = deliver_all(self.ws, self.batches(&put_back)?, &Opened::default(), &|_, _| {}).await;
            let failures = self.take_delivery(&reports)?;
            // Where the current value went back is on disk before the
            // pending one is revoked.
            self.save()?;
            if !failures.is_empty() {
                anyhow::bail!(
                    "could not put v{current} back everywhere ({}); v{pending} is not revoked: run `rotate --abort` again",
                    failures.join("; ")
                );
            }
        }
        let file = self.value_file_note(pending);
        let stage = self.revoke_version(pending).await?;
        self.meta.rotation = None;
        self.incoming = None;
        self.save()?;
        self.audit("rotate.abort", Some(pending), Some(format!("v{pending} {}{file}", stage.as_str())))?;
        self.done.push(Event::Aborted { version: pending, stage });
        Ok(())
    }

    /// Revokes a version at its issuer (or retires it, where the issuer
    /// cannot revoke) and marks it so in memory; the caller saves.
    async fn revoke_version(&mut self, version: u32) -> anyhow::Result<Stage> {
        let (issuer_name, token_id) = self
            .meta
            .version(version)
            .map(|v| (v.issuer.clone(), v.token_id.clone()))
            .ok_or_else(|| anyhow::anyhow!("v{version} is not in the registry"))?;
        self.check_minted_here(version, token_id.as_deref())?;
        crate::crash::point("before-revoke");
        let revoked = match self.ws.policy.issuers.get(&issuer_name) {
            Some(p) if !p.spec.is_local() => {
                // What the registry says now is durable before the issuer acts.
                self.ws.registry.barrier()?;
                match self.issuer(p)?.revoke(token_id.as_deref()).await {
                    Ok(r) => r,
                    Err(e) => return Err(self.issuer_error(e)),
                }
            }
            Some(p) => match self.issuer(p)?.revoke(token_id.as_deref()).await {
                Ok(r) => r,
                Err(e) => return Err(self.issuer_error(e)),
            },
            None => Revoked::NotSupported,
        };
        crate::crash::point("after-revoke");
        Ok(self.meta.end_version(version, revoked == Revoked::Revoked, self.ws.now)?)
    }

    /// `; value file ID` for an audit line that ends `version`: the
    /// authenticated record that this value must never be delivered again
    /// (see `Registry::ended_values`).
    fn value_file_note(&self, version: u32) -> String {
        self.meta
            .version(version)
            .and_then(|v| v.value.as_deref())
            .map_or_else(String::new, |id| format!("; {}{id}", crate::registry::audit::ENDED_FILE))
    }

    /// A revoke names only a token id this token minted: the version's
    /// value file (a member's, bound to this token) must say the same id
    /// as its metadata.
    fn check_minted_here(&self, version: u32, token_id: Option<&str>) -> anyhow::Result<()> {
        let (Some(token_id), Some(file)) = (token_id, self.meta.version(version).and_then(|v| v.value.as_deref()))
        else {
            return Ok(());
        };
        let found = match self.ws.registry.open_value(&self.token.name, file, &self.identity.key) {
            Ok(found) => found,
            // A value file that is gone says nothing either way.
            Err(crate::registry::RegistryError::Io { error, .. }) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        if found.minted.token_id.as_deref() != Some(token_id) {
            return Err(crate::error::Hinted::new(
                format!(
                    "refusing to revoke v{version} of {}: its metadata names token id {token_id}, but its value file says it minted {}",
                    self.token.name,
                    found.minted.token_id.as_deref().unwrap_or("none")
                ),
                "the metadata was changed after the mint: review `git log -p -- FILE` before anything is revoked",
            )
            .into());
        }
        Ok(())
    }

    /// The deployed Worker versions (Cloudflare) made before every version
    /// that holds a newer value than `version`: they may still run it.
    /// One line per target, e.g. `wrangler:api runs version #3 (0a1b…) at 90%`.
    async fn still_running(&self, version: u32) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        for target in &self.token.targets {
            let address = target.address();
            let Some(oldest_newer) = super::observe::first_version_after(&self.meta, &address, version) else {
                continue;
            };
            let target = self.ws.backends.target(target)?;
            let running = target.running(std::slice::from_ref(oldest_newer)).await?.unwrap_or_default();
            let older = Running::older_than(&running, oldest_newer);
            if !older.is_empty() {
                let older: Vec<String> = older.iter().map(ToString::to_string).collect();
                out.push(format!("{address} runs {}", older.join(" and ")));
            }
        }
        Ok(out)
    }

    async fn retire(&mut self, version: u32) -> anyhow::Result<()> {
        // Never retire a value a target still holds.
        let holders = self.meta.holders(version);
        if !holders.is_empty() {
            let holders: Vec<String> = holders.iter().map(ToString::to_string).collect();
            anyhow::bail!("v{version} is still held by {}; not retiring it", holders.join(", "));
        }
        // Nor one a machine a .env target names may still hold: it has not
        // synced (its check-in says so) since the new value.
        let behind = self.ws.machines_behind(self.token, version)?;
        if !behind.is_empty() {
            let name = &self.token.name;
            let who: Vec<String> = behind.iter().map(ToString::to_string).collect();
            if !self.emergency {
                self.resumable = true;
                return Err(crate::error::Hinted::new(
                    format!("v{version} is not retired yet: {} has not synced the new value", who.join(", ")),
                    format!(
                        "run `chitty-secrets sync` on each of them (their check-ins reach this registry through git), then `chitty-secrets rotate {name}` again"
                    ),
                )
                .into());
            }
            self.done.push(Event::Warning {
                message: format!(
                    "emergency: v{version} is revoked although {} has not synced the new value; run `chitty-secrets sync` there now",
                    who.join(", ")
                ),
            });
        }
        // Nor one a deployed Worker version may still run (a rollout not
        // finished, or a rollback): revoking it would break that version.
        let running = self.still_running(version).await?;
        if !running.is_empty() {
            let name = &self.token.name;
            let where_ = running.join("; ");
            if !self.emergency {
                self.resumable = true;
                return Err(crate::error::Hinted::new(
                    format!("v{version} is not revoked yet: {where_}, made before the new value, may still run it"),
                    format!("{}, then run `chitty-secrets rotate {name}` again", crate::targets::ROLLOUT_HINT),
                )
                .into());
            }
            self.done.push(Event::Warning {
                message: format!(
                    "emergency: v{version} is revoked although {where_} may still run it; {} now",
                    crate::targets::ROLLOUT_HINT
                ),
            });
        }
        let file = self.value_file_note(version);
        let stage = self.revoke_version(version).await?;
        let dropped = self.meta.prune_history();
        self.save()?;
        self.audit(&format!("rotate.{}", stage.as_str()), Some(version), Some(format!("ended{file}")))?;
        if !dropped.is_empty() {
            // Metadata first: it must never name a value that is gone.
            self.values.retain(|id| !dropped.iter().any(|v| v.id == id));
            self.ws.registry.remove_values(&self.token.name, &dropped)?;
        }
        self.done.push(Event::Ended { version, stage });
        Ok(())
    }
}

/// The error's own text and its causes, without the hints (rendered apart).
fn error_text(e: &anyhow::Error) -> String {
    e.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

/// Eight random hex digits, to find a token at its issuer by description.
fn random_tag() -> String {
    crate::fsutil::random_hex(4)
}

/// Why a freshly issued token cannot be used, if it cannot: a placeholder,
/// or already expired.
fn unusable(issued: &issuer::Issued, now: chrono::DateTime<chrono::Utc>, placeholders: &[String]) -> Option<String> {
    if let Some(why) = crate::placeholder::placeholder_reason(issued.value.expose(), placeholders) {
        return Some(why.to_string());
    }
    match issued.expires_at {
        Some(at) if at <= now => Some(format!("expired already ({})", at.to_rfc3339())),
        _ => None,
    }
}
