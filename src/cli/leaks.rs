//! `leaks [--rotate]`: one report of every place a known value is exposed
//! (the working tree, the repository's history, the services' alerts), and
//! with `--rotate` the emergency rotation of exactly the tokens whose live
//! versions leaked, then the alerts closed as revoked. Exit 3 while a
//! value that still works is exposed.

use std::collections::BTreeSet;

use serde::Serialize;

use super::{Globals, Need, exit};
use crate::engine::leaks::Reports;
use crate::engine::reads::known_values;
use crate::engine::{RunRequest, TokenOutcome, Workspace};
use crate::error::Hint;
use crate::leaks::{Leak, Liveness, Place};
use crate::rotation::{Mode, TokenPlan};
use crate::scan::Scanner;
use crate::scan::history::{HistoryError, Revisions, Walk};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Rotate, with no overlap, exactly the tokens whose live versions
    /// leaked (a leaked pending rotation is undone, a leaked previous value
    /// revoked now); then close each alert whose value no longer works as
    /// revoked. Resumable: run it again after a failure.
    #[arg(long)]
    pub rotate: bool,
    /// With --rotate: show what it would do, and change nothing.
    #[arg(long, requires = "rotate")]
    pub dry_run: bool,
    /// Ask no service for its alerts (the working tree and history only).
    #[arg(long)]
    pub offline: bool,
    /// Do not search the repository's history.
    #[arg(long)]
    pub no_history: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// What was found, and what could not be looked at.
struct Found {
    leaks: Vec<Leak>,
    /// For each leak from a service's report: its index in `reports`.
    from_report: Vec<Option<usize>>,
    /// Open alerts whose secret the registry does not know.
    unknown_alerts: Vec<String>,
    /// What could not be searched, and why.
    unsearched: Vec<String>,
    /// What a person should know (a repository without secret scanning).
    notes: Vec<String>,
}

pub async fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    let ws = g.workspace(Need::Required)?;
    super::say_authenticity(&ws.registry);
    let reports = if args.offline { None } else { Some(ws.exposures().await) };
    let mut found = gather(&ws, !args.no_history, reports.as_ref())?;

    let mut rotation = None;
    let mut closed = Vec::new();
    if args.rotate {
        let outcome = respond(&ws, &found, args.dry_run).await?;
        if !args.dry_run {
            // Judge again from what the registry says now.
            let metas = ws.metas()?;
            for leak in &mut found.leaks {
                *leak = Leak::new(&leak.token, leak.version, metas.get(&leak.token), leak.place.clone(), ws.now);
            }
            if let Some(reports) = &reports {
                closed = close_dead_alerts(&ws, reports, &found).await;
            }
        }
        rotation = Some(outcome);
    }

    let live = found.leaks.iter().filter(|l| l.is_live()).count();
    if args.json {
        print_json(&found, rotation.as_ref(), &closed)?;
    } else {
        print_human(&found, rotation.as_ref(), &closed, args);
    }
    let stopped = rotation.as_ref().is_some_and(|r| r.outcomes.iter().any(|o| !o.outcome.is_done()));
    let close_failed = closed.iter().any(|c| c.error.is_some());
    Ok(if stopped {
        exit::PARTIAL
    } else if live > 0 {
        exit::FINDINGS
    } else if close_failed || !found.unsearched.is_empty() {
        exit::FAILURE
    } else {
        exit::OK
    })
}

/// The tokens whose working values are exposed in the working tree or the
/// history (no service asked), for `usage --graph --leaks`.
pub(super) fn exposed_offline(ws: &Workspace) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let found = gather(ws, true, None)?;
    Ok(found.leaks.into_iter().filter(Leak::is_live).map(|l| l.token).collect())
}

/// Every exposure of a known value: the working tree, the history (with
/// `history`) and the services' reports.
fn gather(ws: &Workspace, history: bool, reports: Option<&Reports>) -> anyhow::Result<Found> {
    // git walks the history while the values are decrypted.
    let walk = history.then(|| Walk::start(&ws.policy.root, Revisions::All));
    let identity = ws.identity()?;
    let (known, unreadable) = known_values(&ws.registry, &identity.key)?;
    let scanner = &Scanner::new(known)?;
    let metas = ws.metas()?;
    let mut found = Found {
        leaks: Vec::new(),
        from_report: Vec::new(),
        unknown_alerts: Vec::new(),
        unsearched: unreadable.iter().map(|u| format!("the values of {u}")).collect(),
        notes: Vec::new(),
    };
    let add = |found: &mut Found, token: &str, version: u32, place: Place, report: Option<usize>| {
        found.leaks.push(Leak::new(token, version, metas.get(token), place, ws.now));
        found.from_report.push(report);
    };
    let root = ws.policy.root.clone();
    // A .env target is where a value belongs, not a leak (committed, the
    // history search finds it); the registry holds values encrypted.
    let mut skip = vec![ws.registry.dir().to_path_buf()];
    skip.extend(ws.policy.tokens.values().flat_map(|t| &t.targets).filter_map(|t| t.dotenv_path(&root)));
    let (hits, _) = scanner.scan_paths(std::slice::from_ref(&root), false, &skip);
    for h in hits {
        if let (Some(token), Some(version)) = (&h.token, h.version) {
            let file = std::path::Path::new(&h.file)
                .strip_prefix(&root)
                .map_or_else(|_| h.file.clone(), |p| p.display().to_string());
            add(&mut found, token, version, Place::WorkingTree { file, line: h.line, col: h.col }, None);
        }
    }
    match walk.map(|w| w.and_then(|w| w.search(scanner))) {
        None => {}
        Some(Ok((hits, _))) => {
            for h in hits {
                if let (Some(token), Some(version)) = (&h.hit.token, h.hit.version) {
                    // A blob only a tag points to has no commit: the blob names it.
                    let commit = h.commit.unwrap_or_else(|| format!("blob {}", h.blob));
                    let place = Place::History { commit, file: h.hit.file.clone(), line: h.hit.line };
                    add(&mut found, token, version, place, None);
                }
            }
        }
        Some(Err(HistoryError::NotARepository(_) | HistoryError::Missing(_))) => {
            found.notes.push("not in a git repository: no history searched".into());
        }
        Some(Err(e)) => found.unsearched.push(format!("the history: {e} ({})", e.hint())),
    }
    if let Some(reports) = reports {
        for (i, r) in reports.reports.iter().enumerate() {
            let e = &r.exposure;
            match scanner.find(e.value.expose().as_bytes()) {
                Some(k) => add(
                    &mut found,
                    &k.token,
                    k.version,
                    Place::Alert {
                        target: r.target.to_string(),
                        alert: e.id.clone(),
                        kind: e.kind.clone(),
                        url: e.url.clone(),
                        first_seen: e.first_seen.clone(),
                    },
                    Some(i),
                ),
                None => found.unknown_alerts.push(e.id.clone()),
            }
        }
        for e in &reports.unreachable {
            // Secret scanning off (or not visible to the token): there are
            // no alerts to read, which is said, not failed on.
            if e.status == Some(404) {
                found.notes.push(format!("no secret-scanning alerts read from {e}"));
            } else {
                let hint = e.hint.as_ref().map(|h| format!(" — {h}")).unwrap_or_default();
                found.unsearched.push(format!("the alerts of {e}{hint} (or --offline)"));
            }
        }
    }
    Ok(found)
}

/// What `--rotate` did (or, dry, would do).
struct Response {
    plans: Vec<TokenPlan>,
    outcomes: Vec<TokenOutcome>,
}

/// Ends every leaked version that still works and that the tool can end.
/// A leaked rotation in progress is undone first; then a leaked current
/// value is replaced (a second round, from what the first left).
async fn respond(ws: &Workspace, found: &Found, dry_run: bool) -> anyhow::Result<Response> {
    let mut response = Response { plans: Vec::new(), outcomes: Vec::new() };
    let leaked: BTreeSet<(String, u32)> =
        found.leaks.iter().filter(|l| l.liveness == Liveness::Live).map(|l| (l.token.clone(), l.version)).collect();
    if leaked.is_empty() {
        return Ok(response);
    }
    let leaked: Vec<(String, u32)> = leaked.into_iter().collect();
    let only: Vec<String> = leaked.iter().map(|(t, _)| t.clone()).collect::<BTreeSet<_>>().into_iter().collect();
    if !dry_run {
        for token in &only {
            let versions: Vec<String> =
                leaked.iter().filter(|(t, _)| t == token).map(|(_, v)| format!("v{v}")).collect();
            let places: BTreeSet<String> = found
                .leaks
                .iter()
                .filter(|l| &l.token == token && l.liveness == Liveness::Live)
                .map(|l| l.place.to_string())
                .collect();
            let detail = format!(
                "{} exposed at {}: ending it with no overlap",
                versions.join(", "),
                places.into_iter().collect::<Vec<_>>().join("; ")
            );
            ws.audit("leaks.found", token, None, Some(detail))?;
        }
    }
    // Two rounds at most: an undone rotation, then the current value.
    for _ in 0..2 {
        let request = RunRequest {
            mode: Mode::EndLeaked { only: &only, leaked: &leaked },
            dry_run,
            verify: false,
            prune: false,
            force: false,
            max_duration: None,
            redeliver: false,
        };
        let report = ws.run(request).await?;
        let aborted_only =
            report.plans.iter().all(|p| p.steps.iter().all(|s| matches!(s, crate::rotation::Step::Abort { .. })));
        let failed = report.outcomes.iter().any(|o| !o.outcome.is_done());
        let nothing = report.plans.is_empty();
        response.plans.extend(report.plans);
        response.outcomes.extend(report.outcomes);
        if dry_run || nothing || failed || !aborted_only {
            break;
        }
    }
    Ok(response)
}

/// One alert closed (or not) after the rotation.
#[derive(Serialize)]
struct Closed {
    alert: String,
    token: String,
    version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Closes, as revoked, every matched alert whose value no longer works.
async fn close_dead_alerts(ws: &Workspace, reports: &Reports, found: &Found) -> Vec<Closed> {
    let mut out = Vec::new();
    for (leak, report) in found.leaks.iter().zip(&found.from_report) {
        let Some(i) = report else { continue };
        if leak.is_live() {
            continue;
        }
        let report = &reports.reports[*i];
        let note = format!(
            "chitty-secrets: {} v{} no longer works ({} on {}); closed by `chitty-secrets leaks --rotate`",
            leak.token,
            leak.version,
            leak.stage.as_str(),
            ws.now.format("%Y-%m-%d %H:%M UTC")
        );
        let result = ws.close_exposure(reports, report, &note).await;
        let error = match result {
            Ok(()) => {
                let detail = format!("{} closed as revoked at {}", report.exposure.id, report.target);
                if let Err(e) = ws.audit("leaks.alert-closed", &leak.token, Some(leak.version), Some(detail)) {
                    Some(e.to_string())
                } else {
                    None
                }
            }
            Err(e) => Some(e.to_string()),
        };
        out.push(Closed { alert: report.exposure.id.clone(), token: leak.token.clone(), version: leak.version, error });
    }
    out
}

fn print_human(found: &Found, rotation: Option<&Response>, closed: &[Closed], args: &Args) {
    for l in &found.leaks {
        let state = match l.liveness {
            Liveness::Live => "LIVE",
            Liveness::Unrevoked => "not revoked",
            Liveness::Dead => "dead",
        };
        println!("{}: {} v{} ({}, {state})", l.place, l.token, l.version, l.stage.as_str());
        if l.is_live() && rotation.is_none() {
            print!("{}", Hint::new(l.action.clone()).render("    "));
        }
    }
    if !found.unknown_alerts.is_empty() {
        println!(
            "note: {} open alert{} ({}) hold values the registry does not know",
            found.unknown_alerts.len(),
            super::policy_check::plural(found.unknown_alerts.len()),
            found.unknown_alerts.join(", ")
        );
    }
    for note in &found.notes {
        println!("note: {note}");
    }
    for what in &found.unsearched {
        eprintln!("warning: not searched: {what}");
    }
    if let Some(r) = rotation {
        if args.dry_run {
            println!("--rotate would:");
            super::rotate::print_plans(&r.plans, "change nothing (no live leaked version the tool can end)", "  ");
        } else {
            for o in &r.outcomes {
                super::rotate::print_outcome(o);
            }
        }
    }
    for c in closed {
        match &c.error {
            None => println!("closed alert {} as revoked ({} v{})", c.alert, c.token, c.version),
            Some(e) => eprintln!("error: alert {} not closed: {e}", c.alert),
        }
    }
    let live = found.leaks.iter().filter(|l| l.is_live()).count();
    println!(
        "{} exposure{} of known values, {live} still working",
        found.leaks.len(),
        super::policy_check::plural(found.leaks.len())
    );
}

fn print_json(found: &Found, rotation: Option<&Response>, closed: &[Closed]) -> anyhow::Result<()> {
    #[derive(Serialize)]
    struct Out<'a> {
        leaks: &'a [Leak],
        live: usize,
        unknown_alerts: &'a [String],
        unsearched: &'a [String],
        notes: &'a [String],
        #[serde(skip_serializing_if = "Option::is_none")]
        plans: Option<&'a [TokenPlan]>,
        #[serde(skip_serializing_if = "Option::is_none")]
        rotated: Option<&'a [TokenOutcome]>,
        closed: &'a [Closed],
    }
    let out = Out {
        leaks: &found.leaks,
        live: found.leaks.iter().filter(|l| l.is_live()).count(),
        unknown_alerts: &found.unknown_alerts,
        unsearched: &found.unsearched,
        notes: &found.notes,
        plans: rotation.map(|r| &r.plans[..]),
        rotated: rotation.map(|r| &r.outcomes[..]),
        closed,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
