//! `rotate`, `sync` and `plan`: plan (pure), then print or execute it.

use serde::Serialize;

use std::sync::atomic::Ordering;

use super::{Globals, actions, exit, known_token, load_metas, needs_remote, observe, observe_remote};
use crate::rotation::apply::{self, Context, Outcome};
use crate::rotation::{Mode, Observations, Step, TokenPlan, plan as make_plan};
use crate::target::Remote;

#[derive(clap::Args, Debug)]
pub struct RotateArgs {
    /// Tokens to rotate (default: every token in the policies).
    pub tokens: Vec<String>,
    /// Only what the policy says is due (age, expiry), plus pending resumes and retirements.
    #[arg(long)]
    pub due: bool,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// A leaked token: rotate now with no overlap, and revoke the old token
    /// as soon as no target holds it. Name the tokens.
    #[arg(long, conflicts_with_all = ["due", "abort"], requires = "tokens")]
    pub emergency: bool,
    /// Undo a pending rotation: put `current` back on every target that got
    /// `pending`, then revoke `pending`.
    #[arg(long, conflicts_with = "due")]
    pub abort: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct SyncArgs {
    /// Tokens to sync (default: all).
    pub tokens: Vec<String>,
    /// Write nothing; exit 3 if any target lacks its current value.
    #[arg(long)]
    pub check: bool,
    /// Also list every remote target (names only) and repair secrets that
    /// were deleted or changed by hand; without it, remote targets are
    /// judged by the delivery records alone (zero requests when in sync).
    #[arg(long)]
    pub verify: bool,
    /// Delete remote secrets this tool wrote earlier (per its own records)
    /// under names the policy no longer declares. Nothing else is ever deleted.
    #[arg(long)]
    pub prune: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// How a run was asked for.
struct Run<'a> {
    only: &'a [String],
    mode: Mode<'a>,
    dry_run: bool,
    json: bool,
    verify: bool,
    prune: bool,
}

pub async fn rotate(g: &Globals<'_>, args: &RotateArgs) -> anyhow::Result<u8> {
    let mode = if args.abort {
        Mode::Abort { only: &args.tokens }
    } else {
        Mode::Rotate { only: &args.tokens, due_only: args.due, emergency: args.emergency }
    };
    let run = Run { only: &args.tokens, mode, dry_run: args.dry_run, json: args.json, verify: false, prune: false };
    execute(g, run).await
}

pub async fn sync(g: &Globals<'_>, args: &SyncArgs) -> anyhow::Result<u8> {
    let mode = Mode::Sync { only: &args.tokens };
    let run =
        Run { only: &args.tokens, mode, dry_run: args.check, json: args.json, verify: args.verify, prune: args.prune };
    execute(g, run).await
}

pub async fn plan(g: &Globals<'_>, args: &PlanArgs) -> anyhow::Result<u8> {
    let policy = g.policy()?;
    let registry = g.registry()?;
    let metas = load_metas(&policy, &registry)?;
    let identity = g.optional_identity()?;
    let mut observed = match &identity {
        Some(id) => observe(&policy, &registry, id, &metas).await?,
        None => Observations::new(),
    };
    // Remote names are read (never values) to report drift and unmanaged
    // secrets; without credentials, plan says so and goes on.
    let mut unmanaged = Vec::new();
    let mut remote_note = None;
    if needs_remote(&policy, &[]) {
        let listed = match Remote::from_env() {
            Ok(remote) => observe_remote(&policy, &metas, &remote, &mut observed).await,
            Err(e) => Err(e.into()),
        };
        match listed {
            Ok(u) => unmanaged = u,
            Err(e) => {
                remote_note = Some(format!("remote targets were not listed ({e:#}); judged by delivery records only"))
            }
        }
    }
    let now = g.now();
    let rotate =
        make_plan(&policy, &metas, &observed, now, Mode::Rotate { only: &[], due_only: true, emergency: false });
    let sync = make_plan(&policy, &metas, &observed, now, Mode::Sync { only: &[] });
    if args.json {
        #[derive(Serialize)]
        struct Out<'a> {
            rotate: &'a [TokenPlan],
            sync: &'a [TokenPlan],
            local_files_compared: bool,
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&Out {
                rotate: &rotate,
                sync: &sync,
                local_files_compared: identity.is_some()
            })?
        );
    } else {
        println!("rotate --due:");
        print_plans(&rotate, "  nothing is due");
        println!("sync:");
        print_plans(&sync, "  every target is up to date");
        for u in &unmanaged {
            println!("{}: {} is not managed by chitty-secrets (left alone)", u.address, u.name);
        }
        if let Some(note) = &remote_note {
            println!("note: {note}");
        }
        if identity.is_none() {
            println!("note: no identity, so .env files were not compared with the registry (delivery records only)");
        }
    }
    Ok(exit::OK)
}

async fn execute(g: &Globals<'_>, run: Run<'_>) -> anyhow::Result<u8> {
    let Run { only, mode, dry_run, json, verify, prune } = run;
    let policy = g.policy()?;
    for name in only {
        known_token(&policy, name)?;
    }
    let registry = g.registry()?;
    let is_sync = matches!(mode, Mode::Sync { .. });
    // A dry run or `sync --check` without an identity still plans from the
    // delivery records; a real run needs the identity to read values.
    let identity = if dry_run { g.optional_identity()? } else { Some(g.identity()?) };
    // Hold the lock from planning to the last save, so the plan is made from
    // the state it is executed against. A dry run writes nothing: no lock.
    let _lock = if dry_run { None } else { Some(g.lock(&registry)?) };
    let metas = load_metas(&policy, &registry)?;
    let mut observed = match &identity {
        Some(id) if is_sync => observe(&policy, &registry, id, &metas).await?,
        _ => Observations::new(),
    };
    // One HTTP client for the run, only when a remote target is involved.
    let remote = if needs_remote(&policy, only) && (!dry_run || verify) { Some(Remote::from_env()?) } else { None };
    if let (true, Some(remote)) = (verify, &remote) {
        observe_remote(&policy, &metas, remote, &mut observed).await?;
    }
    let now = g.now();
    let plans = make_plan(&policy, &metas, &observed, now, mode);

    if dry_run {
        let drift = !plans.is_empty();
        if json {
            println!("{}", serde_json::to_string_pretty(&plans)?);
        } else {
            print_plans(&plans, if is_sync { "every target is up to date" } else { "nothing to do" });
            if is_sync && identity.is_none() {
                println!("note: no identity, so .env files were compared by delivery records only");
            }
        }
        return Ok(if is_sync && drift { exit::FINDINGS } else { exit::OK });
    }

    let identity = identity.expect("required above for a real run");
    let emergency = matches!(mode, Mode::Rotate { emergency: true, .. });
    let ctx =
        Context { policy: &policy, registry: &registry, identity: &identity, now, remote: remote.clone(), emergency };
    let mut results = Vec::new();
    if is_sync {
        let (outcomes, summaries) = apply::sync_all(&ctx, &plans).await;
        for (token, outcome) in outcomes {
            if !json {
                print_outcome(&token, &outcome);
            }
            results.push((token, outcome));
        }
        if !json {
            for line in summaries {
                println!("{line}");
            }
        }
    } else {
        for plan in &plans {
            let outcome = apply::run(&ctx, plan).await;
            if !json {
                print_outcome(&plan.token, &outcome);
            }
            results.push((plan.token.clone(), outcome));
        }
    }
    if prune && let Some(remote) = &remote {
        for line in apply::prune(&ctx, remote).await? {
            println!("{line}");
        }
    }
    if let Some(remote) = &remote
        && !json
    {
        let stats = &remote.http.stats;
        let (requests, retries) = (stats.requests.load(Ordering::Relaxed), stats.retries.load(Ordering::Relaxed));
        if requests > 0 {
            println!("{requests} requests to remote services, {retries} retried");
        }
    }
    write_summary(if is_sync { "sync" } else { "rotate" }, &results);
    let partial = results.iter().filter(|(_, o)| matches!(o, Outcome::Partial { .. })).count();
    let failed = results.iter().filter(|(_, o)| matches!(o, Outcome::Failed { .. })).count();
    if json {
        println!("{}", serde_json::to_string_pretty(&json_results(&results))?);
    } else if results.is_empty() {
        println!("{}", if is_sync { "every target is up to date" } else { "nothing to do" });
    } else {
        println!("{} done, {partial} left pending, {failed} failed", results.len() - partial - failed);
    }
    Ok(if partial > 0 {
        exit::PARTIAL
    } else if failed > 0 {
        exit::FAILURE
    } else {
        exit::OK
    })
}

fn print_plans(plans: &[TokenPlan], nothing: &str) {
    if plans.is_empty() {
        println!("{nothing}");
    }
    for plan in plans {
        println!("{}", plan.token);
        for step in &plan.steps {
            println!("  {}", describe(step));
        }
    }
}

fn describe(step: &Step) -> String {
    match step {
        Step::Mint { reason } => format!("mint a new version ({reason})"),
        Step::Resume { reason, .. } => format!("resume: {reason}"),
        Step::Remind { reason, hint } => format!("needs a person: {reason}; {hint}"),
        Step::Deliver { target, names, version, reason } => {
            let v = version.map_or("the new version".to_string(), |v| format!("v{v}"));
            format!("deliver {v} to {target}: {} ({reason})", names.join(", "))
        }
        Step::Verify => "verify with the issuer".into(),
        Step::Promote => "promote to current".into(),
        Step::Retire { version, reason } => format!("retire v{version} ({reason})"),
        Step::Abort { version: Some(v) } => {
            format!("abort: put the current version back where v{v} went, then revoke v{v}")
        }
        Step::Abort { version: None } => "abort: close a rotation that never saved a new value".into(),
    }
}

fn print_outcome(token: &str, outcome: &Outcome) {
    println!("{token}");
    let (done, problem, hint) = match outcome {
        Outcome::Done(done) => (done.as_slice(), None, None),
        Outcome::Partial { done, problem, hint } => (done.as_slice(), Some(problem), Some(hint)),
        Outcome::Failed { problem, hint } => (&[][..], Some(problem), hint.as_ref()),
    };
    for line in done {
        println!("  {line}");
    }
    if let Some(problem) = problem {
        eprintln!("error: {token}: {problem}");
    }
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}

fn json_results(results: &[(String, Outcome)]) -> serde_json::Value {
    let items: Vec<serde_json::Value> = results
        .iter()
        .map(|(token, outcome)| match outcome {
            Outcome::Done(done) => serde_json::json!({"token": token, "result": "done", "done": done}),
            Outcome::Partial { done, problem, hint } => {
                serde_json::json!({"token": token, "result": "partial", "done": done, "error": problem, "hint": hint})
            }
            Outcome::Failed { problem, hint } => {
                serde_json::json!({"token": token, "result": "failed", "error": problem, "hint": hint})
            }
        })
        .collect();
    serde_json::json!({ "tokens": items })
}

/// In GitHub Actions, a table of what each token's run did.
fn write_summary(command: &str, results: &[(String, Outcome)]) {
    let mut md = format!("### chitty-secrets {command}\n\n");
    if results.is_empty() {
        md.push_str("Nothing to do.\n");
    } else {
        md.push_str("| token | result | details |\n|---|---|---|\n");
    }
    for (token, outcome) in results {
        let (result, details) = match outcome {
            Outcome::Done(done) => ("done", done.join("; ")),
            Outcome::Partial { problem, hint, .. } => ("pending", format!("{problem} — {hint}")),
            Outcome::Failed { problem, .. } => ("failed", problem.clone()),
        };
        md.push_str(&format!("| {token} | {result} | {} |\n", actions::cell(&details)));
    }
    actions::summary(&md);
}
