//! `sync` and `sync --prune`: every planned delivery, grouped by target
//! across tokens (one .env rewrite, one GitHub key fetch, one Cloudflare
//! bulk request per target), all targets at once; each token's records
//! saved once as its targets report.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::Workspace;
use super::deliver::{
    Batch, Item, ItemResult, Recorded, TargetReport, TargetSummary, deliver_all, record_many, record_one,
};
use super::opened::Opened;
use super::outcome::{Event, Outcome, TokenOutcome};
use crate::error::Hint;
use crate::registry::{DeliveryKey, RegistryError, TokenMeta};
use crate::rotation::{Step, TokenPlan};
use crate::targets::TargetId;

/// Delivers every planned value; `metas` are the tokens' records the plans
/// were made from (read under the lock the caller holds), `only` the tokens
/// asked for (all when empty), whose names at each target count as
/// unchanged when in sync; `away` the .env targets that are not this
/// machine's (neither written nor counted).
pub async fn sync_all(
    ws: &Workspace,
    plans: &[TokenPlan],
    metas: &BTreeMap<String, TokenMeta>,
    only: &[String],
    away: &[TargetId],
    force: bool,
) -> (Vec<TokenOutcome>, Vec<TargetSummary>) {
    let mut outcomes: Vec<TokenOutcome> = Vec::new();
    let fail = |token: &str, error: String, hint: Option<Hint>| TokenOutcome {
        token: token.to_string(),
        outcome: Outcome::failed(error, hint),
    };
    let identity = match ws.identity() {
        Ok(i) => i,
        Err(e) => {
            let hint = crate::error::hints(&e).into_iter().next();
            return (plans.iter().map(|p| fail(&p.token, format!("{e:#}"), hint.clone())).collect(), Vec::new());
        }
    };
    let mut batches: Vec<Batch> = Vec::new();
    let opened = Opened::default();
    for plan in plans {
        let Some(token) = ws.policy.token(&plan.token) else { continue };
        if let Some(Step::Remind { reason, hint }) = plan.steps.iter().find(|s| matches!(s, Step::Remind { .. })) {
            outcomes.push(fail(&plan.token, format!("{} {reason}", plan.token), Some(hint.clone())));
            continue;
        }
        let Some(meta) = metas.get(&plan.token) else { continue };
        // A value from another issuer (another project's registry, a changed
        // policy) never reaches a remote service unasked; the token is left
        // whole (nothing delivered, nothing recorded) until it is settled.
        if !force && let Some((address, why)) = remote_origin_problem(ws, token, meta, &plan.steps) {
            let hint = format!(
                "run `chitty-secrets rotate {}` to mint from the policy's issuer, or `sync --force` if this value is right",
                plan.token
            );
            outcomes.push(fail(&plan.token, format!("not delivering to {address}: {why}"), Some(hint.into())));
            continue;
        }
        let values = match ws.registry.live_values(meta, &identity.key) {
            Ok(v) => v,
            Err(e) => {
                outcomes.push(fail(&plan.token, e.to_string(), e.hint()));
                continue;
            }
        };
        for step in &plan.steps {
            let Step::Deliver { target: address, names, version: Some(version), .. } = step else { continue };
            let Some(value) = values.get(*version) else {
                let error = format!("the value of {} v{version} is missing from its value file", plan.token);
                outcomes.push(fail(
                    &plan.token,
                    error,
                    Some("restore tokens/*.age from git, or rotate the token".into()),
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
            Batch::add(&mut batches, target, items);
            opened.warm(ws, target);
        }
    }
    tracing::trace!("values ready");
    // The records of every token made durable together: one folder sync
    // and one fsync of the audit log, at the end.
    ws.registry.defer_durability();
    let early = Early::new(ws, metas, &batches, &outcomes);
    let handle = tokio::runtime::Handle::current();
    let reports = if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread && early.any() {
        // Tokens are recorded on a thread of their own: the thread that
        // drives the writes goes on starting them meanwhile.
        tokio::task::block_in_place(|| {
            std::thread::scope(|scope| {
                let (done, to_record) = std::sync::mpsc::channel::<(String, Vec<TargetReport>)>();
                scope.spawn(|| to_record.into_iter().for_each(|(token, reports)| early.record(&token, &reports)));
                let tell = |address: &TargetId, item: &ItemResult| {
                    if let Some(complete) = early.tell(address, item) {
                        let _ = done.send(complete);
                    }
                };
                let reports = handle.block_on(deliver_all(ws, batches, &opened, &tell));
                drop(done);
                reports
            })
        })
    } else {
        let tell = |address: &TargetId, item: &ItemResult| {
            if let Some((token, reports)) = early.tell(address, item) {
                early.record(&token, &reports);
            }
        };
        deliver_all(ws, batches, &opened, &tell).await
    };
    let mut early = early.recorded.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);

    // Per target: what was written, and how many declared names were
    // already in sync (unchanged) — every target of the synced tokens.
    let mut declared: BTreeMap<TargetId, usize> = BTreeMap::new();
    // A token that failed before delivering anything leaves its targets
    // neither written nor "unchanged".
    let stopped = |name: &str| outcomes.iter().any(|o: &TokenOutcome| o.token == name);
    for token in
        ws.policy.tokens.values().filter(|t| only.is_empty() || only.contains(&t.name)).filter(|t| !stopped(&t.name))
    {
        // A .env file that is not this machine's is neither written nor
        // "unchanged" here.
        for t in token.targets.iter().filter(|t| !away.iter().any(|a| *a == t.address())) {
            *declared.entry(t.address()).or_default() += t.names.len();
        }
    }
    let summaries = declared
        .into_iter()
        .map(|(address, n)| {
            // One address can have two batches (entries whose options differ).
            let mut total = TargetSummary::empty(address.clone());
            let mut written = 0;
            for r in reports.iter().filter(|r| r.address == address) {
                let s = r.summary();
                (total.created, total.updated, total.written, total.failed) = (
                    total.created + s.created,
                    total.updated + s.updated,
                    total.written + s.written,
                    total.failed + s.failed,
                );
                written += r.items.len();
            }
            TargetSummary { unchanged: n.saturating_sub(written), ..total }
        })
        .collect();

    // Record per token, from every target's report: one save each (those
    // recorded as their writes landed are done).
    let pending: Vec<&str> =
        plans.iter().map(|p| p.token.as_str()).filter(|t| !outcomes.iter().any(|o| o.token == *t)).collect();
    let mut loaded: Vec<(String, TokenMeta)> = pending
        .into_iter()
        .filter(|t| !early.contains_key(*t))
        .filter_map(|t| Some((t.to_string(), metas.get(t)?.clone())))
        .collect();
    tracing::debug!("recording what landed, for {} token(s) ({} recorded as they landed)", loaded.len(), early.len());
    let recorded = record_many(ws, &mut loaded, &reports);
    tracing::debug!("recorded");
    let late = loaded.into_iter().map(|(token, _)| token).zip(recorded);
    for (token, recorded) in late.chain(std::mem::take(&mut early)) {
        let outcome = match recorded {
            Err(e) => Outcome::failed(e.to_string(), e.hint()),
            Ok(recorded) if recorded.failures.is_empty() => Outcome::Done { done: recorded.events },
            Ok(recorded) => {
                let mut hints = recorded.hints();
                hints.push(Hint::new(format!(
                    "fix the problem and run `chitty-secrets sync {token}`; what was delivered is recorded"
                )));
                let lines: Vec<String> = recorded.failures.iter().map(ToString::to_string).collect();
                let resumable = recorded.failures.iter().all(|f| f.deferred);
                Outcome::Partial {
                    done: recorded.events,
                    error: lines.join("\n  "),
                    hint: Hint::joined(&hints),
                    resumable,
                }
            }
        };
        outcomes.push(TokenOutcome { token, outcome });
    }
    if let Err(e) = ws.registry.end_deferral() {
        for o in &mut outcomes {
            o.outcome = Outcome::failed(e.to_string(), e.hint());
        }
    }
    outcomes.sort_by(|a, b| a.token.cmp(&b.token));
    (outcomes, summaries)
}

/// Records a token as soon as every write of it has landed, while other
/// writes are still on the wire: a fan-out paced by GitHub's budget ends
/// with the last round's tokens to record, not all of them. A token with a
/// write that failed, or a .env file (final only once its folder is synced),
/// is recorded at the end with the rest.
struct Early<'a> {
    ws: &'a Workspace,
    metas: &'a BTreeMap<String, TokenMeta>,
    /// Where each write is in the batches (batch, item), by token, target
    /// and name: a token's reports, events and audit lines follow the
    /// batches, whatever order the answers came in.
    positions: HashMap<(String, TargetId, String), (usize, usize)>,
    /// Per token that may be recorded early: its writes not yet final, and
    /// those that are.
    waiting: std::sync::Mutex<BTreeMap<String, Waiting>>,
    recorded: std::sync::Mutex<BTreeMap<String, Result<Recorded, RegistryError>>>,
}

/// A token's writes not yet final, and those that are (with their target).
type Waiting = (usize, Vec<(TargetId, ItemResult)>);

impl<'a> Early<'a> {
    fn new(
        ws: &'a Workspace,
        metas: &'a BTreeMap<String, TokenMeta>,
        batches: &[Batch],
        stopped: &[TokenOutcome],
    ) -> Self {
        let mut waiting: BTreeMap<String, Waiting> = BTreeMap::new();
        let mut local = BTreeSet::new();
        let mut positions = HashMap::new();
        for (b, batch) in batches.iter().enumerate() {
            let address = batch.target.address();
            for (i, item) in batch.items.iter().enumerate() {
                if batch.target.is_remote() {
                    waiting.entry(item.token.clone()).or_default().0 += 1;
                    positions.insert((item.token.clone(), address.clone(), item.name.clone()), (b, i));
                } else {
                    local.insert(item.token.as_str());
                }
            }
        }
        waiting.retain(|token, _| !local.contains(token.as_str()) && !stopped.iter().any(|o| &o.token == token));
        Early { ws, metas, positions, waiting: std::sync::Mutex::new(waiting), recorded: std::sync::Mutex::default() }
    }

    /// Whether any token may be recorded before the end (remote targets).
    fn any(&self) -> bool {
        !self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty()
    }

    /// One write of a token is final: when it was its last, and every one
    /// landed, the token and its reports, to record.
    fn tell(&self, address: &TargetId, item: &ItemResult) -> Option<(String, Vec<TargetReport>)> {
        let done = {
            let mut waiting = self.waiting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let (left, told) = waiting.get_mut(&item.token)?;
            if item.result.is_err() {
                waiting.remove(&item.token);
                return None;
            }
            told.push((address.clone(), item.clone()));
            *left -= 1;
            if *left > 0 {
                return None;
            }
            waiting.remove(&item.token).map(|(_, told)| told).unwrap_or_default()
        };
        // One report per batch, in the batches' order, each in its items'.
        let position = |(address, item): &(TargetId, ItemResult)| {
            self.positions.get(&(item.token.clone(), address.clone(), item.name.clone())).copied()
        };
        let mut done = done;
        done.sort_by_key(|told| position(told));
        let mut reports: Vec<(Option<usize>, TargetReport)> = Vec::new();
        for told in done {
            let batch = position(&told).map(|(b, _)| b);
            match reports.last_mut() {
                Some((b, report)) if *b == batch && report.address == told.0 => report.items.push(told.1),
                _ => reports.push((batch, TargetReport { address: told.0, items: vec![told.1] })),
            }
        }
        let reports = reports.into_iter().map(|(_, report)| report).collect();
        Some((item.token.clone(), reports))
    }

    /// Records `token` from its reports, and appends its audit lines right
    /// after (synced at the end of the run): a run killed later has them in
    /// the log as well as in the records.
    fn record(&self, token: &str, reports: &[TargetReport]) {
        let Some(meta) = self.metas.get(token) else { return };
        let result = record_one(self.ws, &mut meta.clone(), token, reports)
            .and_then(|recorded| self.ws.registry.barrier().map(|()| recorded));
        self.recorded.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(token.to_string(), result);
    }
}

/// The first remote delivery in `steps` of a value from another issuer
/// than the policy's, and why.
fn remote_origin_problem(
    ws: &Workspace,
    token: &crate::policy::TokenPolicy,
    meta: &crate::registry::TokenMeta,
    steps: &[Step],
) -> Option<(TargetId, String)> {
    steps.iter().find_map(|step| {
        let Step::Deliver { target, version: Some(version), .. } = step else { return None };
        let remote = token.targets.iter().any(|t| &t.address() == target && t.is_remote());
        remote.then(|| ws.origin_problem(token, meta, *version)).flatten().map(|why| (target.clone(), why))
    })
}

/// `sync --prune`: deletes remote secrets that this tool's own records say
/// it wrote, under names no policy declares at that target any more.
/// Nothing the records do not name is ever deleted.
pub async fn prune(ws: &Workspace) -> anyhow::Result<Vec<Event>> {
    let targets = ws.policy.remote_targets();
    let declared: BTreeSet<(TargetId, String)> = ws
        .policy
        .tokens
        .values()
        .flat_map(|t| &t.targets)
        .filter(|t| t.is_remote())
        .flat_map(|t| t.names.iter().map(|n| (t.address(), n.to_ascii_uppercase())))
        .collect();
    let mut events = Vec::new();
    let mut moved: BTreeMap<TargetId, Vec<crate::targets::RemoteSecret>> = BTreeMap::new();
    for name in ws.registry.token_names()? {
        let mut meta = ws.registry.load(&name)?;
        let stale: Vec<DeliveryKey> = meta
            .deliveries
            .keys()
            .filter(|key| {
                targets.contains_key(&key.target)
                    && !declared.contains(&(key.target.clone(), key.name.to_ascii_uppercase()))
            })
            .cloned()
            .collect();
        for key in stale {
            let target = ws.backends.target(targets[&key.target])?;
            target.delete(&key.name).await?;
            meta.deliveries.remove(&key);
            ws.registry.save(&mut meta)?;
            ws.audit("prune", &name, None, Some(format!("{} ({})", key.target, key.name)))?;
            // A Worker: the delete made a version of ours, which holds the
            // names left there; the records say so, or the next look would
            // take it for a change by someone else.
            if let Some(listed) = target.list().await?
                && listed.iter().any(|s| s.worker_version.is_some())
            {
                moved.insert(key.target.clone(), listed);
            }
            events.push(Event::Pruned { token: name.clone(), target: key.target, name: key.name });
        }
    }
    if !moved.is_empty() {
        for name in ws.registry.token_names()? {
            let mut meta = ws.registry.load(&name)?;
            let mut changed = false;
            for (key, d) in meta.deliveries.iter_mut() {
                let Some(listed) = moved.get(&key.target) else { continue };
                let now = listed
                    .iter()
                    .find(|s| s.name.eq_ignore_ascii_case(&key.name))
                    .and_then(|s| s.worker_version.clone());
                if now.is_some() && d.worker_version != now {
                    d.worker_version = now;
                    changed = true;
                }
            }
            if changed {
                ws.registry.save(&mut meta)?;
            }
        }
    }
    Ok(events)
}
