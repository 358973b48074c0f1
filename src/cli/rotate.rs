//! `rotate`, `sync` and `plan`: plan (pure), then print or execute it.

use serde::Serialize;

use super::{Globals, Need, actions, exit};
use crate::engine::{Event, Outcome, RunRequest, TokenOutcome};
use crate::error::Hint;
use crate::rotation::{Mode, Step, TokenPlan};

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
    /// Close a suspected orphan (`check` shows its TAG) once it is revoked
    /// at the issuer, or known never to have been minted; audited.
    #[arg(long, value_name = "TAG", conflicts_with_all = ["due", "abort", "emergency", "dry_run", "tokens"])]
    pub forget_orphan: Option<String>,
    /// Start no write (and no rotation) that would end after this long,
    /// e.g. 50m inside a 6-hour CI job; the next run continues (exit 4).
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub max_duration: Option<std::time::Duration>,
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
    /// Deliver to remote targets even a value that came from another issuer
    /// than the policy's (e.g. minted locally, now declared `chittyid`).
    #[arg(long)]
    pub force: bool,
    /// Write every name at every target again, whatever the records and
    /// listings say: the repair for a hand edit they cannot see (a GitHub
    /// secret changed in the same second as our write).
    #[arg(long)]
    pub redeliver: bool,
    /// Start no write (and no rotation) that would end after this long,
    /// e.g. 50m inside a 6-hour CI job; the next run continues (exit 4).
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    pub max_duration: Option<std::time::Duration>,
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

pub async fn rotate(g: &Globals<'_>, args: &RotateArgs) -> anyhow::Result<u8> {
    if let Some(tag) = &args.forget_orphan {
        let (token, issuer) = g.workspace(Need::Required)?.forget_orphan(tag)?;
        println!("{token}: forgot the suspected orphan {tag} of issuer `{issuer}` (recorded in the audit log)");
        return Ok(exit::OK);
    }
    let mode = if args.abort {
        Mode::Abort { only: &args.tokens }
    } else {
        Mode::Rotate { only: &args.tokens, due_only: args.due, emergency: args.emergency }
    };
    let request = RunRequest {
        mode,
        dry_run: args.dry_run,
        verify: false,
        prune: false,
        force: false,
        max_duration: args.max_duration,
        redeliver: false,
    };
    execute(g, request, args.json).await
}

pub async fn sync(g: &Globals<'_>, args: &SyncArgs) -> anyhow::Result<u8> {
    let mode = Mode::Sync { only: &args.tokens };
    let request = RunRequest {
        mode,
        dry_run: args.check,
        verify: args.verify,
        prune: args.prune,
        force: args.force,
        max_duration: args.max_duration,
        redeliver: args.redeliver,
    };
    execute(g, request, args.json).await
}

pub async fn plan(g: &Globals<'_>, args: &PlanArgs) -> anyhow::Result<u8> {
    let ws = g.workspace(Need::Optional)?;
    super::say_authenticity(&ws.registry);
    let preview = ws.preview().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&preview)?);
    } else {
        println!("rotate --due:");
        print_plans(&preview.rotate, "nothing is due", "  ");
        println!("sync:");
        print_plans(&preview.sync, "every target is up to date", "  ");
        for u in &preview.unmanaged {
            println!("{}: {} is not managed by chitty-secrets (left alone)", u.address, u.name);
        }
        for note in &preview.remote_notes {
            println!("note: {note}");
        }
        for why in &preview.not_on_this_machine {
            println!("note: {why}");
        }
        for o in &preview.damaged {
            print_outcome(o);
        }
        let load = &preview.budget;
        if load.writes > 0 {
            println!(
                "GitHub: {} write{}; GitHub's budget (80 a minute, 500 an hour) needs at least {}{}",
                load.writes,
                super::policy_check::plural(load.writes),
                crate::policy::Dur::human(chrono::TimeDelta::seconds(load.least_seconds as i64)),
                if load.least_seconds > 50 * 60 {
                    " — more than one CI job: use --max-duration, runs continue"
                } else {
                    ""
                }
            );
        }
        for l in &preview.limits {
            println!("{}: {}: {}", l.severity, l.target, l.message);
        }
        for c in &load.org_candidates {
            println!(
                "note: {} goes to {} repositories of {}: one organization secret is 1 write instead of {}:\n  [[tokens.{}.targets]]\n  kind = \"github\"\n  org = \"{}\"\n  visibility = \"selected\"\n  selected_repository_ids = [ … ]   # the ids of {}",
                c.token,
                c.repos.len(),
                c.owner,
                c.repos.len(),
                c.token,
                c.owner,
                shorten_list(&c.repos)
            );
        }
        if !preview.local_files_compared {
            println!("note: no identity, so .env files were not compared with the registry (delivery records only)");
        }
    }
    let over_a_limit = preview.limits.iter().any(|l| l.severity == "error");
    Ok(if preview.damaged.is_empty() && !over_a_limit { exit::OK } else { exit::FAILURE })
}

async fn execute(g: &Globals<'_>, request: RunRequest<'_>, json: bool) -> anyhow::Result<u8> {
    let is_sync = matches!(request.mode, Mode::Sync { .. });
    let dry_run = request.dry_run;
    // A dry run or `sync --check` without an identity still plans from the
    // delivery records; a real run needs the identity to read values.
    let ws = g.workspace(if dry_run { Need::Optional } else { Need::Required })?;
    super::say_authenticity(&ws.registry);
    let only = request.mode.only().to_vec();
    let report = ws.run(request).await?;

    if !report.executed {
        let drift = !report.plans.is_empty();
        // Without an identity the .env files cannot be compared by value:
        // `sync --check` then cannot say they are up to date.
        let uncompared = is_sync && !report.local_files_compared && ws.has_local_targets(&only);
        if json {
            println!("{}", serde_json::to_string_pretty(&report.plans)?);
        } else if uncompared && !drift {
            println!("the delivery records show nothing to deliver, but .env files were not compared (no identity)");
        } else {
            print_plans(&report.plans, if is_sync { "every target is up to date" } else { "nothing to do" }, "");
        }
        if is_sync {
            annotate_drift(&report.plans);
        }
        for why in &report.not_on_this_machine {
            println!("note: {why}");
        }
        for note in &report.remote_notes {
            println!("note: {note}");
        }
        if uncompared {
            Hint::new(
                "give the identity (--identity FILE, or CHITTY_SECRETS_IDENTITY in CI) so .env files are compared with the registry",
            )
            .print();
        }
        // Tokens whose registry file cannot be read were not planned.
        for o in &report.outcomes {
            print_outcome(o);
        }
        return Ok(if report.failed() > 0 {
            exit::FAILURE
        } else if is_sync && (drift || uncompared) {
            exit::FINDINGS
        } else {
            exit::OK
        });
    }

    if !json {
        for note in report.remote_notes.iter().chain(&report.not_on_this_machine) {
            println!("note: {note}");
        }
        for o in &report.outcomes {
            print_outcome(o);
        }
        for t in &report.targets {
            println!("{t}");
        }
        for event in &report.pruned {
            println!("{event}");
        }
        let (requests, retries) = report.requests;
        if requests > 0 {
            println!(
                "{requests} request{} to remote services, {retries} retried",
                super::policy_check::plural(requests as usize)
            );
        }
    }
    write_summary(if is_sync { "sync" } else { "rotate" }, &report.outcomes);
    super::usage::step_summary(&ws.policy, ws.registry.dir(), report.outcomes.iter().map(|o| o.token.as_str()));
    let (partial, failed) = (report.partial(), report.failed());
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            tokens: &'a [TokenOutcome],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            targets: &'a [crate::engine::TargetSummary],
            #[serde(skip_serializing_if = "<[_]>::is_empty")]
            pruned: &'a [Event],
        }
        let out = Out { tokens: &report.outcomes, targets: &report.targets, pruned: &report.pruned };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if report.outcomes.is_empty() {
        println!("{}", if is_sync { "every target is up to date" } else { "nothing to do" });
    } else if is_sync {
        // A sync leaves nothing pending: what landed is recorded, and the
        // next sync retries the rest.
        let later =
            report.outcomes.iter().filter(|o| matches!(o.outcome, Outcome::Partial { resumable: true, .. })).count();
        let done = report.outcomes.len() - partial - failed;
        if later > 0 {
            println!(
                "{done} done, {later} to finish in the next run (time limit), {} failed",
                partial + failed - later
            );
        } else {
            println!("{done} done, {} failed", partial + failed);
        }
    } else {
        println!("{} done, {partial} left pending, {failed} failed", report.outcomes.len() - partial - failed);
    }
    // A sync that stopped on a target's failure needs a look (1); one cut
    // short by --max-duration goes on when run again (4).
    let needs_a_look = report
        .outcomes
        .iter()
        .any(|o| matches!(o.outcome, Outcome::Failed { .. } | Outcome::Partial { resumable: false, .. }));
    Ok(if is_sync && needs_a_look {
        exit::FAILURE
    } else if partial > 0 {
        exit::PARTIAL
    } else if failed > 0 {
        exit::FAILURE
    } else {
        exit::OK
    })
}

/// Each token and its steps, indented by `indent` (plan nests them under
/// `rotate --due:` and `sync:`).
pub(super) fn print_plans(plans: &[TokenPlan], nothing: &str, indent: &str) {
    if plans.is_empty() {
        println!("{indent}{nothing}");
    }
    for plan in plans {
        println!("{indent}{}", plan.token);
        for step in &plan.steps {
            println!("{indent}  {}", describe(step));
        }
    }
}

/// `a, b, c and 247 more`.
fn shorten_list(items: &[String]) -> String {
    match items.len() {
        0..=3 => items.join(", "),
        n => format!("{} and {} more", items[..3].join(", "), n - 3),
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

pub(super) fn print_outcome(o: &TokenOutcome) {
    println!("{}", o.token);
    for event in o.outcome.events() {
        println!("  {event}");
    }
    let (error, hint) = match &o.outcome {
        Outcome::Done { .. } => return,
        Outcome::Partial { error, hint, .. } => (error, Some(hint)),
        Outcome::Failed { error, hint } => (error, hint.as_ref()),
    };
    // Say the token's name once, whether or not the error starts with it.
    let error = if error.starts_with(&format!("{} ", o.token)) || error.starts_with(&format!("{}:", o.token)) {
        error.clone()
    } else {
        format!("{}: {error}", o.token)
    };
    eprintln!("error: {error}");
    actions::annotate(&actions::Annotation {
        kind: if matches!(o.outcome, Outcome::Partial { .. }) { "warning" } else { "error" },
        title: "chitty-secrets",
        file: None,
        line: None,
        col: None,
        message: &error,
    });
    if let Some(hint) = hint {
        hint.print();
    }
}

/// In GitHub Actions, `sync --check`'s drift as annotations: one per
/// target that needs a write, naming it (a .env target on its file).
fn annotate_drift(plans: &[TokenPlan]) {
    for plan in plans {
        for step in &plan.steps {
            let message = format!("{}: {}", plan.token, describe(step));
            let file = match step {
                Step::Deliver { target, .. } => target.local_file(),
                _ => None,
            };
            actions::annotate(&actions::Annotation {
                kind: "error",
                title: "chitty-secrets sync --check",
                file,
                line: None,
                col: None,
                message: &message,
            });
        }
    }
}

/// In GitHub Actions, a table of what each token's run did.
fn write_summary(command: &str, results: &[TokenOutcome]) {
    let mut md = format!("### chitty-secrets {command}\n\n");
    if results.is_empty() {
        md.push_str("Nothing to do.\n");
    } else {
        md.push_str("| token | result | details |\n|---|---|---|\n");
    }
    for o in results {
        let (result, details) = match &o.outcome {
            Outcome::Done { done } => ("done", done.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")),
            Outcome::Partial { error, hint, .. } => ("pending", format!("{error} — {hint}")),
            Outcome::Failed { error, .. } => ("failed", error.clone()),
        };
        md.push_str(&format!("| {} | {result} | {} |\n", o.token, actions::cell(&details)));
    }
    actions::summary(&md);
}
