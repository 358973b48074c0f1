//! `scan [PATH…]`: leak scanning with known values. Exit 3 on a finding.

use std::path::PathBuf;
use std::process::Command;

use serde::Serialize;

use super::policy_check::plural;
use super::{Globals, Hinted, exit};
use crate::engine::reads::known_values;
use crate::scan::{Hit, Scanner, Totals, is_binary};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files or folders to scan (default: the current folder).
    pub paths: Vec<PathBuf>,
    /// Scan what is staged in git (for a pre-commit hook) instead of paths.
    #[arg(long, conflicts_with = "paths")]
    pub staged: bool,
    /// Also scan files that .gitignore and .ignore exclude.
    #[arg(long)]
    pub no_ignore: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    let registry = g.registry()?;
    let identity = g.optional_identity()?;
    let (known, unreadable) = match &identity {
        Some(id) => {
            super::unlock(&registry, id)?;
            known_values(&registry, &id.key)?
        }
        None => {
            eprintln!(
                "note: no identity, so only unknown ChittyID-shaped tokens are looked for (not the registry's values)"
            );
            (Vec::new(), Vec::new())
        }
    };
    for problem in &unreadable {
        eprintln!("warning: not looking for the values of {problem}");
    }
    let searched = known.len();
    let scanner = Scanner::new(known)?;
    let started = std::time::Instant::now();
    let (hits, totals) = if args.staged {
        scan_staged(&scanner)?
    } else {
        let paths = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths.clone() };
        for p in &paths {
            if !p.exists() {
                return Err(
                    Hinted::new(format!("{} does not exist", p.display()), "give files or folders to scan").into()
                );
            }
        }
        scanner.scan_paths(&paths, args.no_ignore, &[registry.dir().to_path_buf()])
    };
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        #[derive(Serialize)]
        struct Out<'a> {
            hits: &'a [Hit],
            values_searched: usize,
            totals: &'a Totals,
        }
        println!("{}", serde_json::to_string_pretty(&Out { hits: &hits, values_searched: searched, totals: &totals })?);
    } else {
        for h in &hits {
            match (&h.token, h.version, h.stage) {
                (Some(t), Some(v), Some(s)) => {
                    println!("{}:{}:{}: {t} v{v} ({})", h.file, h.line, h.col, s.as_str())
                }
                _ => println!(
                    "{}:{}:{}: a ChittyID-shaped token (mcp_auth_ + 32 hex) the registry does not know",
                    h.file, h.line, h.col
                ),
            }
        }
        let mb = totals.bytes as f64 / 1e6;
        println!(
            "{} finding{} in {} file{} ({mb:.1} MB, {} binary skipped) in {seconds:.2}s; {searched} known value{} searched",
            hits.len(),
            plural(hits.len()),
            totals.files,
            plural(totals.files as usize),
            totals.binary_skipped,
            plural(searched),
        );
    }
    if !hits.is_empty() {
        crate::error::Hint::new(
            "remove these values from the files (and from git history if committed), and rotate every token found: `chitty-secrets rotate NAME`",
        )
        .print();
    }
    Ok(if !hits.is_empty() {
        exit::FINDINGS
    } else if !unreadable.is_empty() {
        // Not every value was looked for: not a clean result.
        eprintln!(
            "error: {} token file{} could not be read; restore from git what is damaged",
            unreadable.len(),
            plural(unreadable.len())
        );
        exit::FAILURE
    } else {
        exit::OK
    })
}

/// What `git commit` would record: the staged blobs, not the work tree.
fn scan_staged(scanner: &Scanner) -> anyhow::Result<(Vec<Hit>, Totals)> {
    let git = |args: &[&str]| -> anyhow::Result<Vec<u8>> {
        let out = Command::new("git").args(args).output().map_err(|e| {
            Hinted::new(format!("cannot run git: {e}"), "install git, or scan paths instead of --staged")
        })?;
        if !out.status.success() {
            return Err(Hinted::new(
                format!("git {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()),
                "run inside a git repository",
            )
            .into());
        }
        Ok(out.stdout)
    };
    // Outside a repository git answers with its usage text: ask first.
    let inside = Command::new("git").args(["rev-parse", "--is-inside-work-tree"]).output();
    if !inside.is_ok_and(|o| o.status.success()) {
        return Err(Hinted::new(
            "--staged scans what is staged for a commit, and this is not inside a git repository",
            "run it in a git work tree (e.g. from a pre-commit hook), or give files or folders to scan",
        )
        .into());
    }
    let names = git(&["diff", "--cached", "--name-only", "-z", "--diff-filter=ACMR"])?;
    let mut hits = Vec::new();
    let mut totals = Totals::default();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = String::from_utf8_lossy(name).into_owned();
        let data = zeroize::Zeroizing::new(git(&["show", &format!(":{name}")])?);
        totals.files += 1;
        totals.bytes += data.len() as u64;
        if is_binary(&data) {
            totals.binary_skipped += 1;
            continue;
        }
        hits.extend(scanner.scan(&name, &data));
    }
    Ok((hits, totals))
}
