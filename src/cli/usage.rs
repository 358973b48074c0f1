//! `usage`: who reads each secret (workflows, actions, Workers) and which
//! token and target deliver it, offline (see [`crate::usage`]): a table,
//! `--json`, or `--graph` (a Mermaid flowchart). Also the diagram `rotate`
//! and `sync` add to the GitHub Actions step summary, and the draft policy
//! of `init --discover`.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Serialize;

use super::{Globals, Hinted, actions, exit, shown};
use crate::policy::Policy;
use crate::usage::{self, Map, State, graph};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print the map as a Mermaid flowchart (token → target → reader).
    #[arg(long, conflicts_with = "json")]
    pub graph: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// With --graph: also search the working tree and the git history for
    /// the registry's values (needs the identity; no service is asked) and
    /// draw the tokens whose working values are exposed in red.
    #[arg(long, requires = "graph")]
    pub leaks: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    repository: Option<&'a usage::Repository>,
    readers: &'a [usage::Reader],
    reads: &'a [usage::Resolved],
    unread: &'a [usage::Unread],
    /// Plain values that look like secrets (where, and why; never the value).
    looks_like_secrets: Vec<Looking>,
}

#[derive(Serialize)]
struct Looking {
    #[serde(flatten)]
    at: usage::At,
    name: String,
    code: &'static str,
    message: String,
}

pub fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    let policy = g.policy()?;
    let registry = g.located()?.registry.clone();
    let map = Map::build(&policy, usage::scan(&policy.root, &[registry], false));
    if args.graph {
        let marks = if args.leaks {
            graph::Marks { leaked: super::leaks::exposed_offline(&g.workspace(super::Need::Required)?)? }
        } else {
            graph::Marks::default()
        };
        print!("{}", graph::mermaid(&policy, &map, None, &marks));
        return Ok(exit::OK);
    }
    // Without the identity: values are not compared with the registry's
    // here (`check` does that, with it).
    let looking: Vec<Looking> = map
        .suspicious(&policy.placeholders, &[])
        .into_iter()
        .map(|(l, looks)| Looking {
            at: l.at.clone(),
            name: l.name.clone(),
            code: if looks.is_secret() { "secret-in-config" } else { "placeholder-in-config" },
            message: looks.describe(),
        })
        .collect();
    if args.json {
        let report = Report {
            repository: map.repository.as_ref(),
            readers: &map.usage.readers,
            reads: &map.reads,
            unread: &map.unread,
            looks_like_secrets: looking,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(exit::OK);
    }
    print_table(&map, &looking);
    Ok(exit::OK)
}

fn print_table(map: &Map, looking: &[Looking]) {
    match &map.repository {
        Some(r) => println!("this repository: {r} (from {})", r.from),
        None if map.reads.iter().any(|r| matches!(r.read.via, usage::Via::Expression { .. })) => {
            println!(
                "this repository: unknown (no GITHUB_REPOSITORY, no `origin` remote): github targets are matched by name only"
            )
        }
        None => {}
    }
    if map.reads.is_empty() {
        println!("no workflow, action or Worker here reads a secret");
    } else {
        let rows: Vec<[String; 3]> = map
            .reads
            .iter()
            .map(|r| {
                let reader = &map.usage.readers[r.read.reader];
                let who = match (&r.read.via, &reader.worker) {
                    (usage::Via::Expression { job: Some(j), .. }, _) => format!("{}, job {j}", kind_word(reader.kind)),
                    (usage::Via::Expression { .. }, _) => kind_word(reader.kind).to_string(),
                    (usage::Via::StoreBinding { binding, .. }, Some(w)) => format!("Worker {w}, binding {binding}"),
                    (usage::Via::StoreBinding { binding, .. }, None) => format!("Worker, binding {binding}"),
                    (usage::Via::Required, Some(w)) => format!("Worker {w}, secrets.required"),
                    (usage::Via::Required, None) => "Worker, secrets.required".into(),
                };
                let by = match &r.state {
                    State::Delivered => r
                        .delivered_by
                        .iter()
                        .map(|d| format!("{} → {}", d.token, d.target))
                        .collect::<Vec<_>>()
                        .join(", "),
                    State::NotDelivered { .. } => "NOTHING: no policy delivers it".into(),
                    State::ProvidedByGithub => "GitHub (the job's own token)".into(),
                    State::OwnCredential => "set by hand: chitty-secrets' own credential (`ci init` lists it)".into(),
                    State::SetElsewhere => "set elsewhere ([check] set_elsewhere)".into(),
                };
                [r.read.secret.clone(), format!("{} ({who})", r.read.at), by]
            })
            .collect();
        let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0).max(6);
        let (w0, w1) = (width(0), width(1));
        println!("{:<w0$}  {:<w1$}  DELIVERED BY", "SECRET", "READ BY");
        for [a, b, c] in &rows {
            println!("{a:<w0$}  {b:<w1$}  {c}");
        }
    }
    if !map.unread.is_empty() {
        println!("\ndelivered, but read by nothing here:");
        for u in &map.unread {
            println!("  {} → {} as {} ({}:{}): {} reads it", u.token, u.target, u.name, u.file, u.line, u.readers);
        }
    }
    if !looking.is_empty() {
        println!("\nplain values that look like secrets (`chitty-secrets check` reports them):");
        for l in looking {
            println!("  {}: {} {}", l.at, l.name, l.message);
        }
    }
    for (at, why) in &map.usage.unreadable {
        println!("\nnote: {at}: {} {why}", at.file);
    }
}

fn kind_word(kind: usage::ReaderKind) -> &'static str {
    match kind {
        usage::ReaderKind::Workflow => "workflow",
        usage::ReaderKind::Action => "action",
        usage::ReaderKind::Worker => "Worker",
    }
}

/// In GitHub Actions, the part of the map a `rotate` or `sync` touched,
/// as a Mermaid diagram in the step summary.
pub fn step_summary<'a>(policy: &Policy, registry: &Path, tokens: impl Iterator<Item = &'a str>) {
    if !actions::active() {
        return;
    }
    let only: BTreeSet<String> = tokens.map(str::to_string).collect();
    if only.is_empty() {
        return;
    }
    let map = Map::build(policy, usage::scan(&policy.root, &[registry.to_path_buf()], false));
    let chart = graph::mermaid(policy, &map, Some(&only), &graph::Marks::default());
    actions::summary(&format!("\n#### Who reads what this run touched\n\n```mermaid\n{chart}```\n"));
}

/// `init --discover`: drafts `discovered.toml` in `policies` from the
/// project around it. Refused where policies exist.
pub fn discover(policies: &Path) -> anyhow::Result<()> {
    let existing = std::fs::read_dir(policies)
        .map(|d| d.flatten().any(|e| e.path().extension().is_some_and(|x| x == "toml")))
        .unwrap_or(false);
    if existing {
        let mut refused = Hinted::new(
            format!(
                "{} already holds policy files: --discover drafts a first policy where there is none",
                shown(policies)
            ),
            "run `chitty-secrets usage` to see what is read and not delivered, and add it to the policies by hand",
        );
        refused.code = exit::USAGE;
        return Err(refused.into());
    }
    std::fs::create_dir_all(policies)?;
    let root = policies.canonicalize()?.parent().map(Path::to_path_buf).unwrap_or_else(|| policies.join(".."));
    let scanned = usage::scan(&root, &[], true);
    let repo = if scanned.reads.iter().any(|r| matches!(r.via, usage::Via::Expression { .. })) {
        usage::repository(&root)
    } else {
        None
    };
    let own = [
        "GITHUB_TOKEN",
        crate::env_vars::IDENTITY,
        crate::env_vars::REGISTRY_ID,
        &crate::credentials::secret_name("GITHUB_TOKEN"),
    ];
    let drafted = usage::discover::draft(&root, &scanned, repo.as_ref(), &own);
    let file = policies.join("discovered.toml");
    crate::fsutil::write_atomic(&file, drafted.text.as_bytes())?;
    println!(
        "wrote {} with {} token{} (names only, every one `manual`: review it and choose issuers)",
        shown(&file),
        drafted.tokens,
        super::policy_check::plural(drafted.tokens)
    );
    if drafted.placeholders > 0 {
        println!(
            "{} placeholder value{} flagged in it: set the real ones with `chitty-secrets set NAME`",
            drafted.placeholders,
            super::policy_check::plural(drafted.placeholders)
        );
    }
    for env in &drafted.env_files {
        println!("next: `chitty-secrets import {env}` brings its values in");
    }
    Ok(())
}
