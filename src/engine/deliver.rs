//! The one delivery executor: puts batches of values to their targets,
//! every target at once, checks each write (read back where the target
//! allows, listed where it is remote), and records what landed — one save
//! of each token's metadata and one audit line per target — for rotation,
//! `rotate --abort` and `sync` alike.

use std::collections::HashMap;

use super::opened::Opened;
use super::outcome::Event;
use super::{Progress, Workspace};
use crate::error::Hint;
use crate::policy::TargetPolicy;
use crate::registry::{DeliveryKey, Landing, RegistryError, TokenMeta};
use crate::secret::Secret;
use crate::targets::{TargetError, TargetId, Written};

/// One name of one token's version, bound for one target.
pub struct Item {
    pub token: String,
    pub name: String,
    pub version: u32,
    pub value: Secret,
}

/// Everything bound for one target.
pub struct Batch {
    pub target: TargetPolicy,
    pub items: Vec<Item>,
}

impl Batch {
    /// Adds `items` for `target` to the batch that delivers alike (same
    /// address and options), or starts one: a .env file is rewritten once,
    /// a GitHub scope's key fetched once, for every token it holds.
    pub fn add(batches: &mut Vec<Batch>, target: &TargetPolicy, items: impl IntoIterator<Item = Item>) {
        match batches.iter_mut().find(|b| b.target.delivers_like(target)) {
            Some(batch) => batch.items.extend(items),
            None => batches.push(Batch { target: target.clone(), items: items.into_iter().collect() }),
        }
    }
}

/// A write, and what the remote said about it (GitHub's `updated_at`, the
/// Worker version).
pub type WriteResult = Result<(Written, Landing), TargetError>;

#[derive(Clone)]
pub struct ItemResult {
    pub token: String,
    pub name: String,
    pub version: u32,
    pub result: WriteResult,
}

pub struct TargetReport {
    pub address: TargetId,
    pub items: Vec<ItemResult>,
}

/// Per target: what a run wrote there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetSummary {
    pub target: TargetId,
    pub created: usize,
    pub updated: usize,
    /// Written where the service does not say created or updated.
    pub written: usize,
    pub failed: usize,
    /// Declared names that were already in sync.
    pub unchanged: usize,
}

impl TargetSummary {
    /// Nothing written yet at `target`.
    pub fn empty(target: TargetId) -> Self {
        TargetSummary { target, created: 0, updated: 0, written: 0, failed: 0, unchanged: 0 }
    }
}

impl TargetReport {
    pub fn summary(&self) -> TargetSummary {
        let count = |w: Written| self.items.iter().filter(|i| matches!(&i.result, Ok((x, _)) if *x == w)).count();
        TargetSummary {
            target: self.address.clone(),
            created: count(Written::Created),
            updated: count(Written::Updated),
            written: count(Written::Written),
            failed: self.items.iter().filter(|i| i.result.is_err()).count(),
            unchanged: 0,
        }
    }
}

impl std::fmt::Display for TargetSummary {
    /// `github:o/r: 2 created, 1 updated, 0 failed, 3 unchanged`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        for (n, label) in [(self.created, "created"), (self.updated, "updated"), (self.written, "written")] {
            if n > 0 {
                parts.push(format!("{n} {label}"));
            }
        }
        if self.created + self.updated + self.written + self.failed > 0 {
            parts.push(format!("{} failed", self.failed));
        }
        parts.push(format!("{} unchanged", self.unchanged));
        write!(f, "{}: {}", self.target, parts.join(", "))
    }
}

/// Told of each remote write as soon as it is final (answered, and dated
/// by the service or confirmed by a listing), before the whole delivery
/// ends: `sync` records a token whose writes are all final while others
/// are still on the wire. Every remote item is told once; local files are
/// final only once their folders are synced, at the end.
pub type Final<'a> = dyn Fn(&TargetId, &ItemResult) + Sync + 'a;

/// Delivers every batch, all targets concurrently (GitHub's own pacing
/// still applies across its targets), through the targets `opened` has
/// open where it has them.
pub async fn deliver_all(
    ws: &Workspace,
    batches: Vec<Batch>,
    opened: &Opened,
    on_final: &Final<'_>,
) -> Vec<TargetReport> {
    let targets: Vec<(TargetId, &'static str)> =
        batches.iter().map(|b| (b.target.address(), b.target.spec.kind().service())).collect();
    (ws.progress)(Progress::Delivering { targets: &targets });
    let local: Vec<bool> = batches.iter().map(|b| !b.target.is_remote()).collect();
    let mut reports = futures_util::future::join_all(batches.into_iter().map(|b| async move {
        let report = deliver_one(ws, b, opened, on_final).await;
        (ws.progress)(Progress::TargetDone(&report.summary()));
        report
    }))
    .await;
    // Files written here share their folders' syncs, made before anything
    // is recorded as delivered.
    if let Some((dir, e)) = crate::fsutil::sync_later_folders().first() {
        for report in reports.iter_mut().zip(&local).filter_map(|(r, local)| local.then_some(r)) {
            for item in report.items.iter_mut().filter(|i| i.result.is_ok()) {
                let message =
                    format!("{} was written, but {} could not be synced to disk: {e}", item.name, dir.display());
                item.result = Err(TargetError::new(&report.address, message, None));
            }
        }
    }
    reports
}

async fn deliver_one(ws: &Workspace, batch: Batch, opened: &Opened, on_final: &Final<'_>) -> TargetReport {
    let address = batch.target.address();
    let remote = batch.target.is_remote();
    (ws.progress)(Progress::TargetStarted(&address));
    tracing::debug!(
        "{address}: delivering {}",
        batch.items.iter().map(|i| format!("{} v{} as {}", i.token, i.version, i.name)).collect::<Vec<_>>().join(", ")
    );
    let fail_all = |error: TargetError| TargetReport {
        address: address.clone(),
        items: batch
            .items
            .iter()
            .map(|i| ItemResult {
                token: i.token.clone(),
                name: i.name.clone(),
                version: i.version,
                result: Err(error.clone()),
            })
            .collect(),
    };
    let target = match opened.target(ws, &batch.target) {
        Ok(t) => t,
        Err(e) => {
            let report = fail_all(e);
            if remote {
                report.items.iter().for_each(|i| on_final(&address, i));
            }
            return report;
        }
    };
    let pairs: Vec<(String, Secret)> = batch.items.iter().map(|i| (i.name.clone(), i.value.clone())).collect();
    // A remote write the service dates (GitHub's `Date`) is final as soon
    // as it is answered: told at once.
    let told = std::sync::Mutex::new(std::collections::HashSet::<String>::new());
    let answered = |name: &str, result: &Result<Written, TargetError>| {
        let (true, Ok(written), Some(at)) = (remote, result, target.landed_at(name)) else { return };
        let Some(item) = batch.items.iter().find(|i| i.name == name) else { return };
        told.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.to_string());
        let landing = Landing { updated_at: Some(at), ..Landing::default() };
        let result = Ok((*written, landing));
        on_final(
            &address,
            &ItemResult { token: item.token.clone(), name: name.to_string(), version: item.version, result },
        );
    };
    let mut results: HashMap<String, WriteResult> = target
        .put_each(&pairs, &answered)
        .await
        .into_iter()
        .map(|(name, r)| (name, r.map(|w| (w, Landing::default()))))
        .collect();
    crate::crash::point("after-put");

    let problem = |message: String, hint: Option<&str>| TargetError::new(&address, message, hint);
    // Where the service said when a write landed, by its own clock, that
    // is what a later listing is compared with: no listing for it now.
    let mut written: Vec<&(String, Secret)> = Vec::new();
    for pair in pairs.iter() {
        let Some(Ok((_, landing))) = results.get_mut(&pair.0) else { continue };
        match target.landed_at(&pair.0) {
            Some(at) => landing.updated_at = Some(at),
            None => written.push(pair),
        }
    }
    let names: Vec<String> = written.iter().map(|(n, _)| n.clone()).collect();
    if !written.is_empty() {
        // Trust only what reads back (local) or is listed (remote).
        match target.read(&names).await {
            Ok(Some(read)) => {
                for ((name, value), got) in written.iter().zip(read) {
                    if !got.is_some_and(|g| g.same_as(value)) {
                        let e = problem(format!("{name} was written but reads back differently"), None);
                        results.insert(name.clone(), Err(e));
                    }
                }
            }
            Ok(None) => match target.list().await {
                Ok(Some(listed)) => {
                    for name in &names {
                        match listed.iter().find(|s| s.name.eq_ignore_ascii_case(name)) {
                            Some(s) => {
                                if let Some(Ok((_, landing))) = results.get_mut(name) {
                                    landing.updated_at = s.updated_at;
                                    landing.worker_version.clone_from(&s.worker_version);
                                }
                            }
                            None => {
                                let e = problem(format!("{name} was written but is not listed"), None);
                                results.insert(name.clone(), Err(e));
                            }
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    for name in &names {
                        let mut e = e.clone();
                        e.message = format!("{name}: written, but the list to confirm it failed: {}", e.message);
                        results.insert(name.clone(), Err(e));
                    }
                }
            },
            Err(e) => {
                for name in &names {
                    let mut e = e.clone();
                    e.message = format!("{name}: written, but reading it back failed: {}", e.message);
                    results.insert(name.clone(), Err(e));
                }
            }
        }
    }
    let report = TargetReport {
        address: address.clone(),
        items: batch
            .items
            .into_iter()
            .map(|i| {
                let result = results
                    .remove(&i.name)
                    .unwrap_or_else(|| Err(TargetError::new(&address, "the target gave no result", None)));
                ItemResult { token: i.token, name: i.name, version: i.version, result }
            })
            .collect(),
    };
    if remote {
        let told = told.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        report.items.iter().filter(|i| !told.contains(&i.name)).for_each(|i| on_final(&address, i));
    }
    report
}

/// What a delivery did for one token, once recorded.
#[derive(Default)]
pub struct Recorded {
    pub events: Vec<Event>,
    /// One error per name that did not land.
    pub failures: Vec<TargetError>,
}

impl Recorded {
    /// What the failed targets say to do, each once.
    pub fn hints(&self) -> Vec<Hint> {
        let mut out = Vec::new();
        for h in self.failures.iter().filter_map(|f| f.hint.clone()) {
            push_unique(&mut out, h);
        }
        out
    }
}

/// Adds `hint` unless it is there already (hints from many names repeat).
pub fn push_unique(hints: &mut Vec<Hint>, hint: Hint) {
    if !hints.contains(&hint) {
        hints.push(hint);
    }
}

/// Records each token's successful writes from `reports` in its metadata:
/// one save per token — the saves side by side (the file system commits
/// concurrent fsyncs together) — then one audit line per target. The
/// bookkeeping of `sync`. One result per `(token, meta)`, in order.
pub fn record_many(
    ws: &Workspace,
    metas: &mut [(String, TokenMeta)],
    reports: &[TargetReport],
) -> Vec<Result<Recorded, RegistryError>> {
    let noted: Vec<(Recorded, Vec<(u32, String)>)> =
        metas.iter_mut().map(|(token, meta)| note_deliveries(ws, meta, token, reports)).collect();
    // A sync's records are put in place whole but not synced (one fsync a
    // token fewer): each survives a killed process, and one a machine's
    // crash loses only makes the next sync deliver that value again —
    // written, listed and recorded as if for the first time. The audit
    // lines are synced at the end of the run as ever. With no fsync to
    // wait on, more threads than cores only queue on the folder's lock.
    let saved =
        crate::threads::map_on_threads(metas.iter_mut().zip(&noted).collect(), 2, |((_, meta), (_, audits))| {
            if audits.is_empty() { Ok(()) } else { ws.registry.save_unsynced(meta) }
        });
    let mut out = Vec::with_capacity(metas.len());
    for (((token, _), (recorded, audits)), save) in metas.iter().zip(noted).zip(saved) {
        out.push(save.and_then(|()| audit_deliveries(ws, token, audits)).map(|()| recorded));
    }
    crate::crash::point("after-deliver");
    out
}

/// [`record_many`] for one token, now: a `sync` records a token whose
/// writes are all final while others are still on the wire.
pub fn record_one(
    ws: &Workspace,
    meta: &mut TokenMeta,
    token: &str,
    reports: &[TargetReport],
) -> Result<Recorded, RegistryError> {
    record(ws, meta, token, reports, true)
}

/// [`record_many`] for one token, without the save: a rotation saves the records with its
/// promotion, in one write (a record lost to a crash only means the next
/// run delivers the pending value again). Whether `meta` changed is
/// `!recorded.events.is_empty()`.
pub fn record_unsaved(
    ws: &Workspace,
    meta: &mut TokenMeta,
    token: &str,
    reports: &[TargetReport],
) -> Result<Recorded, RegistryError> {
    record(ws, meta, token, reports, false)
}

/// Notes the landed writes in `meta`, saves it (`save`, when something
/// landed), then audits them.
fn record(
    ws: &Workspace,
    meta: &mut TokenMeta,
    token: &str,
    reports: &[TargetReport],
    save: bool,
) -> Result<Recorded, RegistryError> {
    let (recorded, audits) = note_deliveries(ws, meta, token, reports);
    if save && !audits.is_empty() {
        ws.registry.save_unsynced(meta)?;
    }
    audit_deliveries(ws, token, audits)?;
    Ok(recorded)
}

/// One audit line per target a token's value landed at.
fn audit_deliveries(ws: &Workspace, token: &str, audits: Vec<(u32, String)>) -> Result<(), RegistryError> {
    for (version, detail) in audits {
        ws.audit("deliver", token, Some(version), Some(detail))?;
    }
    Ok(())
}

/// Notes the landed writes in `meta`; the audit lines to write.
fn note_deliveries(
    ws: &Workspace,
    meta: &mut TokenMeta,
    token: &str,
    reports: &[TargetReport],
) -> (Recorded, Vec<(u32, String)>) {
    let mut out = Recorded::default();
    let mut audits = Vec::new();
    for report in reports {
        let mut landed: Vec<&ItemResult> = Vec::new();
        for item in report.items.iter().filter(|i| i.token == token) {
            match &item.result {
                Ok((_, landing)) => {
                    meta.record_delivery(
                        DeliveryKey::new(&report.address, item.name.as_str()),
                        item.version,
                        ws.now,
                        landing.clone(),
                    );
                    landed.push(item);
                }
                Err(e) => {
                    let mut e = e.clone();
                    // The token's own name is said once, by whoever reports it.
                    if item.name != token && !e.message.starts_with(&item.name) {
                        e.message = format!("{}: {}", item.name, e.message);
                    }
                    out.failures.push(e);
                }
            }
        }
        if let Some(first) = landed.first() {
            let names: Vec<String> = landed.iter().map(|i| i.name.clone()).collect();
            audits.push((first.version, format!("{} ({})", report.address, names.join(", "))));
            out.events.push(Event::Delivered { version: first.version, target: report.address.clone(), names });
        }
    }
    (out, audits)
}
