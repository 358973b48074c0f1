//! The executor: runs a token's plan, saving state to the registry after
//! every step so that a crash at any instant leaves something the next run
//! finishes. The caller holds the registry lock.
//!
//! Rotation: journal → mint → save `pending` (values, then metadata) →
//! deliver target by target (each recorded at once) → verify → promote →
//! retire. Sync: deliver `current` where the plan says, recording each.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::deliver::{Batch, Item, ItemResult, deliver_all};
use super::plan::{Step, TokenPlan};
use crate::identity::Identity;
use crate::issuer::{self, IssueRequest, IssuerEnv, Revoked, Verdict};
use crate::policy::{Policy, TokenPolicy};
use crate::registry::audit::Event;
use crate::registry::{Delivery, Journal, JournalStep, Registry, Stage, TokenMeta, Values, Version};
use crate::secret::Secret;
use crate::target::Remote;

pub struct Context<'a> {
    pub policy: &'a Policy,
    pub registry: &'a Registry,
    pub identity: &'a Identity,
    /// The HTTP client and credentials, when any remote target is involved.
    pub remote: Option<Remote>,
    /// `rotate --emergency`: no overlap; the old token is revoked as soon
    /// as no target holds it.
    pub emergency: bool,
    pub now: DateTime<Utc>,
}

/// How one token's run ended.
#[derive(Debug)]
pub enum Outcome {
    /// Everything planned was done; the lines say what.
    Done(Vec<String>),
    /// Stopped with a pending version or undelivered names; a rerun resumes.
    Partial { done: Vec<String>, problem: String, hint: String },
    /// Could not start (nothing changed), or a person must act.
    Failed { problem: String, hint: Option<String> },
}

pub async fn run(ctx: &Context<'_>, plan: &TokenPlan) -> Outcome {
    let token = ctx.policy.token(&plan.token).expect("plans are made from the policy");
    match Runner::new(ctx, token) {
        Ok(mut runner) => runner.run(&plan.steps).await,
        Err(e) => Outcome::Failed { problem: e.to_string(), hint: registry_hint(&e) },
    }
}

fn registry_hint(e: &anyhow::Error) -> Option<String> {
    e.downcast_ref::<crate::registry::RegistryError>().and_then(|r| r.hint())
}

struct Runner<'a> {
    ctx: &'a Context<'a>,
    token: &'a TokenPolicy,
    meta: TokenMeta,
    values: Values,
    done: Vec<String>,
    /// The version being rotated in, once known.
    incoming: Option<u32>,
    /// Stopped for a reason a rerun fixes (quota, no answer): exit 4.
    resumable: bool,
}

impl<'a> Runner<'a> {
    fn new(ctx: &'a Context<'a>, token: &'a TokenPolicy) -> anyhow::Result<Self> {
        // Load under the lock: the plan may have been made from an older read.
        let meta = ctx.registry.load(&token.name)?;
        let values = ctx.registry.load_values(&token.name, &ctx.identity.key)?;
        let incoming = meta.pending().map(|v| v.id);
        Ok(Runner { ctx, token, meta, values, done: Vec::new(), incoming, resumable: false })
    }

    async fn run(&mut self, steps: &[Step]) -> Outcome {
        let mut failed_targets = Vec::new();
        let mut delivered = false;
        for step in steps {
            let result = match step {
                Step::Mint { .. } => self.mint().await,
                Step::Resume { version, .. } => {
                    self.incoming = Some(*version);
                    Ok(())
                }
                Step::Remind { reason, hint } => {
                    return Outcome::Failed {
                        problem: format!("{} {reason}", self.token.name),
                        hint: Some(hint.clone()),
                    };
                }
                // Every target of the token at once: the first Deliver step
                // runs them all.
                Step::Deliver { .. } if delivered => continue,
                Step::Deliver { .. } => {
                    delivered = true;
                    let deliveries: Vec<&Step> = steps.iter().filter(|s| matches!(s, Step::Deliver { .. })).collect();
                    match self.deliver(&deliveries).await {
                        Ok(failures) => {
                            failed_targets.extend(failures);
                            continue;
                        }
                        Err(e) => Err(e),
                    }
                }
                Step::Verify | Step::Promote if !failed_targets.is_empty() => break,
                Step::Verify => self.verify().await,
                Step::Promote => self.promote(),
                Step::Retire { version, .. } => self.retire(*version).await,
                Step::Abort { version } => self.abort(*version).await,
            };
            if let Err(e) = result {
                return self.stopped(format!("{e:#}"));
            }
        }
        if !failed_targets.is_empty() {
            return self.stopped(failed_targets.join("\n  "));
        }
        Outcome::Done(std::mem::take(&mut self.done))
    }

    fn stopped(&mut self, problem: String) -> Outcome {
        let name = &self.token.name;
        match self.meta.pending() {
            Some(p) => Outcome::Partial {
                done: std::mem::take(&mut self.done),
                problem,
                hint: format!(
                    "v{} is saved as pending; fix the problem and run `chitty-secrets rotate {name}` to resume",
                    p.id
                ),
            },
            None if self.resumable || self.meta.rotation.is_some() => Outcome::Partial {
                done: std::mem::take(&mut self.done),
                problem,
                hint: format!("the rotation is saved as it is; run `chitty-secrets rotate {name}` again to resume"),
            },
            None if !self.done.is_empty() => Outcome::Partial {
                done: std::mem::take(&mut self.done),
                problem,
                hint: format!(
                    "fix the problem and run `chitty-secrets rotate {name}` again; what was done is recorded"
                ),
            },
            None => Outcome::Failed { problem, hint: None },
        }
    }

    fn save(&mut self) -> anyhow::Result<()> {
        self.ctx.registry.save(&mut self.meta)?;
        Ok(())
    }

    /// Records a step in the audit log (names and versions, never values).
    fn audit(&self, event: &str, version: u32, detail: Option<String>) -> anyhow::Result<()> {
        let event = Event { event, token: Some(&self.token.name), version: Some(version), detail };
        self.ctx.registry.audit(event, self.ctx.now)?;
        Ok(())
    }

    /// The issuer, with the registry and identity for `registry:` credentials.
    fn issuer(&self, policy: &crate::policy::IssuerPolicy) -> anyhow::Result<Box<dyn issuer::Issuer>> {
        let env = IssuerEnv { registry: Some(self.ctx.registry), identity: Some(self.ctx.identity) };
        Ok(issuer::build(policy, env)?)
    }

    /// Notes an issuer error; a quota answer makes the run "partial" (exit 4).
    fn issuer_error(&mut self, e: issuer::IssuerError) -> anyhow::Error {
        if matches!(e, issuer::IssuerError::Quota { .. } | issuer::IssuerError::Uncertain { .. }) {
            self.resumable = true;
        }
        let hint = e.hint();
        match hint {
            Some(h) => anyhow::Error::new(e).context(h),
            None => anyhow::Error::new(e),
        }
    }

    /// An earlier mint that may have reached the issuer and was never saved
    /// is recorded as a suspected orphan (`check` reports it).
    fn record_orphan(&mut self) -> anyhow::Result<()> {
        let Some(Journal { mint_tag: Some(tag), started_at, .. }) = self.meta.rotation.clone() else {
            return Ok(());
        };
        let issuer = self.token.issuer.clone();
        self.meta.orphans.push(crate::registry::Orphan { issuer: issuer.clone(), tag: tag.clone(), at: started_at });
        self.meta.rotation = None;
        self.save()?;
        let detail = format!(
            "a token may have been issued by `{issuer}` at {started_at} and never recorded; its description carries [chitty-secrets {tag}]"
        );
        self.ctx.registry.audit(
            Event {
                event: "rotate.orphan-suspected",
                token: Some(&self.token.name),
                version: None,
                detail: Some(detail),
            },
            self.ctx.now,
        )?;
        self.done.push(format!("recorded a possibly issued, unrecorded token (tag {tag}): revoke it at `{issuer}`, see `chitty-secrets check`"));
        Ok(())
    }

    async fn mint(&mut self) -> anyhow::Result<()> {
        let policy = self.ctx.policy;
        let issuer_policy = policy.issuer_of(self.token);
        let issuer = self.issuer(issuer_policy)?;
        self.record_orphan()?;
        // The journal, with the tag the issuer will see, goes to disk before
        // the issuer is called.
        let tag = random_tag();
        self.meta.rotation = Some(Journal {
            started_at: self.ctx.now,
            step: JournalStep::Minting,
            version: None,
            mint_tag: Some(tag.clone()),
        });
        self.save()?;
        crash_point("before-issue");
        let request = IssueRequest {
            token: &self.token.name,
            scopes: &self.token.scopes,
            ttl: self.token.ttl.map(|t| t.0),
            description: self.token.description.as_deref(),
            now: self.ctx.now,
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
                let quota = matches!(e, issuer::IssuerError::Quota { .. });
                self.meta.rotation = if quota {
                    Some(Journal {
                        started_at: self.ctx.now,
                        step: JournalStep::Minting,
                        version: None,
                        mint_tag: None,
                    })
                } else {
                    None
                };
                self.save()?;
                return Err(self.issuer_error(e));
            }
        };
        let id = self.meta.next_version_id();
        crash_point("after-mint");
        // The value is saved (encrypted) before anything refers to it, and
        // before it is sent anywhere.
        self.values.insert(id, issued.value);
        self.ctx.registry.save_values(&self.token.name, &self.values)?;
        crash_point("after-save-value");
        self.meta.versions.push(Version {
            id,
            stage: Stage::Pending,
            issuer: issuer_policy.name.clone(),
            token_id: issued.token_id,
            scopes: self.token.scopes.clone(),
            created_at: self.ctx.now,
            expires_at: issued.expires_at,
            retire_after: None,
            retired_at: None,
            revoked_at: None,
            origin: "issued".into(),
            placeholder: false,
        });
        self.meta.rotation = Some(Journal {
            started_at: self.ctx.now,
            step: JournalStep::Delivering,
            version: Some(id),
            mint_tag: None,
        });
        self.save()?;
        self.incoming = Some(id);
        self.audit("rotate.mint", id, Some(format!("issuer {}", issuer_policy.name)))?;
        self.done.push(format!("minted v{id} (pending) with issuer `{}`", issuer_policy.name));
        Ok(())
    }

    /// Delivers to every target of the plan at once; records each target's
    /// successes as one save; returns the failures (other targets still land).
    async fn deliver(&mut self, steps: &[&Step]) -> anyhow::Result<Vec<String>> {
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
            let items = names
                .iter()
                .map(|n| Item { token: self.token.name.clone(), name: n.clone(), version, value: value.clone() })
                .collect();
            batches.push(Batch { target: target.clone(), items });
        }
        let reports = deliver_all(&self.ctx.policy.root, self.ctx.remote.as_ref(), batches).await;
        let mut failures = Vec::new();
        for report in reports {
            let (ok, failed): (Vec<_>, Vec<_>) = report.items.iter().partition(|i| i.result.is_ok());
            failures.extend(failed.iter().filter_map(|i| i.failure()));
            if ok.is_empty() {
                continue;
            }
            record(&mut self.meta, &report.address, &ok, self.ctx.now);
            self.save()?;
            let version = ok[0].version;
            let names: Vec<&str> = ok.iter().map(|i| i.name.as_str()).collect();
            self.audit("deliver", version, Some(format!("{} ({})", report.address, names.join(", "))))?;
            crash_point("after-deliver");
            self.done.push(format!("delivered v{version} to {} ({})", report.address, names.join(", ")));
        }
        Ok(failures)
    }

    fn value(&self, version: u32) -> anyhow::Result<Secret> {
        self.values.get(version).cloned().ok_or_else(|| {
            anyhow::anyhow!(
                "the value of {} v{version} is not in {} (the value file is older than the metadata)",
                self.token.name,
                self.ctx.registry.values_path(&self.token.name).display()
            )
        })
    }

    async fn verify(&mut self) -> anyhow::Result<()> {
        let version = self.incoming.ok_or_else(|| anyhow::anyhow!("nothing to verify"))?;
        let value = self.value(version)?;
        let issuer = self.issuer(self.ctx.policy.issuer_of(self.token))?;
        let verdict = match issuer.verify(&value).await {
            Ok(v) => v,
            Err(e) => return Err(self.issuer_error(e)),
        };
        match verdict {
            Verdict::Valid => {
                self.done.push(format!("verified v{version} with issuer `{}`", issuer.name()));
                Ok(())
            }
            Verdict::Invalid(why) => anyhow::bail!("issuer `{}` says v{version} is not valid: it {why}", issuer.name()),
        }
    }

    fn promote(&mut self) -> anyhow::Result<()> {
        let version = self.incoming.ok_or_else(|| anyhow::anyhow!("nothing to promote"))?;
        crash_point("before-promote");
        // An emergency (a leaked token) keeps no overlap.
        let overlap = if self.ctx.emergency { chrono::TimeDelta::zero() } else { self.token.overlap.0 };
        let retire_after = self.ctx.now + overlap;
        for v in &mut self.meta.versions {
            if v.stage == Stage::Current {
                v.stage = Stage::Previous;
                v.retire_after = Some(retire_after);
            }
        }
        let v = self.meta.version_mut(version).ok_or_else(|| anyhow::anyhow!("v{version} is not in the registry"))?;
        v.stage = Stage::Current;
        self.meta.rotation = None;
        self.save()?;
        self.audit("rotate.promote", version, None)?;
        self.done.push(format!("promoted v{version} to current"));
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
            self.done.push("closed a rotation that never saved a new value".into());
            return Ok(());
        };
        let held: Vec<(String, String)> = self
            .meta
            .deliveries
            .iter()
            .filter(|(_, d)| d.version == pending)
            .filter_map(|(k, _)| k.rsplit_once('#').map(|(a, n)| (a.to_string(), n.to_string())))
            .collect();
        let current = self.meta.current().map(|v| v.id);
        if !held.is_empty() {
            let Some(current) = current else {
                anyhow::bail!(
                    "v{pending} is the only value {} targets hold, and there is no current version to put back; finish the rotation instead (`chitty-secrets rotate {}`)",
                    held.len(),
                    self.token.name
                );
            };
            let mut by_target: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
            for (address, name) in held {
                by_target.entry(address).or_default().push(name);
            }
            let steps: Vec<Step> = by_target
                .into_iter()
                .map(|(target, names)| Step::Deliver { target, names, version: Some(current), reason: "abort".into() })
                .collect();
            let failures = self.deliver(&steps.iter().collect::<Vec<_>>()).await?;
            if !failures.is_empty() {
                anyhow::bail!(
                    "could not put v{current} back everywhere ({}); v{pending} is not revoked: run `rotate --abort` again",
                    failures.join("; ")
                );
            }
        }
        let stage = self.revoke_version(pending).await?;
        self.meta.rotation = None;
        self.incoming = None;
        self.save()?;
        self.audit("rotate.abort", pending, Some(format!("v{pending} {}", stage.as_str())))?;
        self.done.push(format!("aborted: v{pending} {}", stage.as_str()));
        Ok(())
    }

    /// Revokes a version at its issuer (or retires it, where the issuer
    /// cannot revoke) and marks it so in memory; the caller saves.
    async fn revoke_version(&mut self, version: u32) -> anyhow::Result<Stage> {
        let found = self.meta.versions.iter().find(|v| v.id == version);
        let (issuer_name, token_id) = found
            .map(|v| (v.issuer.clone(), v.token_id.clone()))
            .ok_or_else(|| anyhow::anyhow!("v{version} is not in the registry"))?;
        crash_point("before-revoke");
        let revoked = match self.ctx.policy.issuers.get(&issuer_name) {
            Some(p) => match self.issuer(p)?.revoke(token_id.as_deref()).await {
                Ok(r) => r,
                Err(e) => return Err(self.issuer_error(e)),
            },
            None => Revoked::NotSupported,
        };
        crash_point("after-revoke");
        let now = self.ctx.now;
        let v = self.meta.version_mut(version).expect("found above");
        match revoked {
            Revoked::Revoked => {
                v.stage = Stage::Revoked;
                v.revoked_at = Some(now);
            }
            Revoked::NotSupported => {
                v.stage = Stage::Retired;
                v.retired_at = Some(now);
            }
        }
        Ok(v.stage)
    }

    async fn retire(&mut self, version: u32) -> anyhow::Result<()> {
        // Never retire a value a target still holds.
        let holders: BTreeSet<&str> =
            self.meta.deliveries.iter().filter(|(_, d)| d.version == version).map(|(k, _)| k.as_str()).collect();
        if !holders.is_empty() {
            anyhow::bail!(
                "v{version} is still held by {}; not retiring it",
                holders.into_iter().collect::<Vec<_>>().join(", ")
            );
        }
        let stage = self.revoke_version(version).await?;
        let dropped = self.meta.prune_history();
        self.save()?;
        self.audit(&format!("rotate.{}", stage.as_str()), version, None)?;
        if !dropped.is_empty() {
            // Metadata first: it must never name a value that is gone.
            self.values.retain(|id| !dropped.contains(&id));
            self.ctx.registry.save_values(&self.token.name, &self.values)?;
        }
        self.done.push(format!("{} v{version}", stage.as_str()));
        Ok(())
    }
}

/// Eight random hex digits, to find a token at its issuer by description.
fn random_tag() -> String {
    let mut b = [0u8; 4];
    let _ = getrandom::getrandom(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Dies at once, as `kill -9` would, when the crash hook names this point.
pub fn crash_point(point: &str) {
    if std::env::var(crate::env_vars::CRASH_AT).is_ok_and(|p| p == point) {
        let _ = std::process::Command::new("kill").arg("-9").arg(std::process::id().to_string()).status();
        std::process::abort();
    }
}

/// Notes successful deliveries in the token's records.
fn record(meta: &mut TokenMeta, address: &str, ok: &[&ItemResult], at: DateTime<Utc>) {
    for item in ok {
        let remote_updated_at = item.result.as_ref().ok().and_then(|(_, updated)| *updated);
        meta.deliveries.insert(
            TokenMeta::delivery_key(address, &item.name),
            Delivery { version: item.version, at, remote_updated_at },
        );
    }
}

/// `sync`: every planned delivery, grouped by target across tokens (one
/// .env rewrite, one GitHub key fetch, one Cloudflare bulk request per
/// target), all targets at once; each token's records saved as its
/// targets report. Returns each token's outcome and each target's summary.
pub async fn sync_all(ctx: &Context<'_>, plans: &[TokenPlan]) -> (Vec<(String, Outcome)>, Vec<String>) {
    let mut outcomes = Vec::new();
    let mut batches: Vec<Batch> = Vec::new();
    for plan in plans {
        let Some(token) = ctx.policy.token(&plan.token) else { continue };
        if let Some(Step::Remind { reason, hint }) = plan.steps.iter().find(|s| matches!(s, Step::Remind { .. })) {
            outcomes.push((
                plan.token.clone(),
                Outcome::Failed { problem: format!("{} {reason}", plan.token), hint: Some(hint.clone()) },
            ));
            continue;
        }
        let values = match ctx.registry.load_values(&plan.token, &ctx.identity.key) {
            Ok(v) => v,
            Err(e) => {
                outcomes.push((plan.token.clone(), Outcome::Failed { problem: e.to_string(), hint: e.hint() }));
                continue;
            }
        };
        for step in &plan.steps {
            let Step::Deliver { target: address, names, version: Some(version), .. } = step else { continue };
            let Some(value) = values.get(*version) else {
                let problem = format!("the value of {} v{version} is missing from its value file", plan.token);
                outcomes.push((
                    plan.token.clone(),
                    Outcome::Failed {
                        problem,
                        hint: Some("restore tokens/*.age from git, or rotate the token".into()),
                    },
                ));
                break;
            };
            let Some(target) = token.targets.iter().find(|t| &t.address() == address) else { continue };
            let items = names.iter().map(|n| Item {
                token: plan.token.clone(),
                name: n.clone(),
                version: *version,
                value: value.clone(),
            });
            match batches.iter_mut().find(|b| &b.target.address() == address) {
                Some(batch) => batch.items.extend(items),
                None => batches.push(Batch { target: target.clone(), items: items.collect() }),
            }
        }
    }
    let reports = deliver_all(&ctx.policy.root, ctx.remote.as_ref(), batches).await;
    // Per target: what was written, and how many declared names were
    // already in sync (unchanged) — every target of the synced tokens.
    let mut declared: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for plan_token in ctx.policy.tokens.values().filter(|t| plans.iter().any(|p| p.token == t.name) || plans.is_empty())
    {
        for t in &plan_token.targets {
            *declared.entry(t.address()).or_default() += t.names.len();
        }
    }
    let summaries = declared
        .iter()
        .map(|(address, n)| match reports.iter().find(|r| &r.address == address) {
            Some(r) => format!("{}, {} unchanged", r.summary(), n.saturating_sub(r.items.len())),
            None => format!("{address}: {n} unchanged"),
        })
        .collect();

    // Record per token, from every target's report.
    let mut tokens: Vec<&str> = plans.iter().map(|p| p.token.as_str()).collect();
    tokens.retain(|t| !outcomes.iter().any(|(o, _)| o == t));
    for token in tokens {
        let mut done = Vec::new();
        let mut failures = Vec::new();
        let mut meta = match ctx.registry.load(token) {
            Ok(m) => m,
            Err(e) => {
                outcomes.push((token.to_string(), Outcome::Failed { problem: e.to_string(), hint: e.hint() }));
                continue;
            }
        };
        let mut audits = Vec::new();
        for report in &reports {
            let mine: Vec<&ItemResult> = report.items.iter().filter(|i| i.token == token).collect();
            let (ok, failed): (Vec<&ItemResult>, Vec<&ItemResult>) = mine.into_iter().partition(|i| i.result.is_ok());
            failures.extend(failed.iter().filter_map(|i| i.failure()));
            if ok.is_empty() {
                continue;
            }
            record(&mut meta, &report.address, &ok, ctx.now);
            let names: Vec<&str> = ok.iter().map(|i| i.name.as_str()).collect();
            done.push(format!("delivered v{} to {} ({})", ok[0].version, report.address, names.join(", ")));
            audits.push((ok[0].version, format!("{} ({})", report.address, names.join(", "))));
        }
        let saved = ctx.registry.save(&mut meta).map_err(anyhow::Error::from).and_then(|()| {
            for (version, detail) in audits {
                ctx.registry.audit(
                    Event { event: "deliver", token: Some(token), version: Some(version), detail: Some(detail) },
                    ctx.now,
                )?;
            }
            Ok(())
        });
        let outcome = match (saved, failures.is_empty()) {
            (Err(e), _) => Outcome::Failed { problem: format!("{e:#}"), hint: registry_hint(&e) },
            (Ok(()), true) => Outcome::Done(done),
            (Ok(()), false) => Outcome::Partial {
                done,
                problem: failures.join("\n  "),
                hint: format!("fix the problem and run `chitty-secrets sync {token}`; what was delivered is recorded"),
            },
        };
        outcomes.push((token.to_string(), outcome));
    }
    outcomes.sort_by(|a, b| a.0.cmp(&b.0));
    (outcomes, summaries)
}

/// `sync --prune`: deletes remote secrets that this tool's own records say
/// it wrote, under names no policy declares at that target any more.
/// Nothing the records do not name is ever deleted.
pub async fn prune(ctx: &Context<'_>, remote: &Remote) -> anyhow::Result<Vec<String>> {
    let targets = ctx.policy.remote_targets();
    let declared: BTreeSet<(String, String)> = ctx
        .policy
        .tokens
        .values()
        .flat_map(|t| &t.targets)
        .filter(|t| t.is_remote())
        .flat_map(|t| t.names.iter().map(|n| (t.address(), n.to_ascii_uppercase())))
        .collect();
    let mut lines = Vec::new();
    for name in ctx.registry.token_names()? {
        let mut meta = ctx.registry.load(&name)?;
        let stale: Vec<(String, String, String)> = meta
            .deliveries
            .keys()
            .filter_map(|key| {
                let (address, secret) = key.rsplit_once('#')?;
                let known_target = targets.contains_key(address);
                let still_declared = declared.contains(&(address.to_string(), secret.to_ascii_uppercase()));
                (known_target && !still_declared).then(|| (key.clone(), address.to_string(), secret.to_string()))
            })
            .collect();
        for (key, address, secret) in stale {
            let target = crate::target::build(targets[&address], &ctx.policy.root, Some(remote))?;
            target.delete(&secret).await?;
            meta.deliveries.remove(&key);
            ctx.registry.save(&mut meta)?;
            ctx.registry.audit(
                Event {
                    event: "prune",
                    token: Some(&name),
                    version: None,
                    detail: Some(format!("{address} ({secret})")),
                },
                ctx.now,
            )?;
            lines.push(format!(
                "pruned {secret} from {address} (written earlier for {name}; no policy declares it now)"
            ));
        }
    }
    Ok(lines)
}
