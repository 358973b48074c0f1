//! `scan [PATH…]`: leak scanning with known values, in files, in what is
//! staged, or in a git repository's history (`--history`). Exit 3 on a
//! finding.

use std::path::PathBuf;
use std::process::Command;

use serde::Serialize;

use super::policy_check::plural;
use super::{Globals, Hinted, exit};
use crate::engine::reads::known_values;
use crate::scan::history::{HistoryError, Revisions, Walk};
use crate::scan::{Hit, Scanner, Totals, is_binary};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Files or folders to scan (default: the current folder); with
    /// --history, the repository (default: the one here).
    pub paths: Vec<PathBuf>,
    /// Scan what is staged in git (for a pre-commit hook) instead of paths.
    #[arg(long, conflicts_with = "paths")]
    pub staged: bool,
    /// Also scan files that .gitignore and .ignore exclude.
    #[arg(long)]
    pub no_ignore: bool,
    /// Search git history instead of files: every file version reachable
    /// from any ref, or from RANGE (git revisions: main..feature, v1.0..,
    /// 'feature ^main'). Each finding names the commit that brought it.
    #[arg(
        long,
        value_name = "RANGE",
        num_args = 0..=1,
        require_equals = true,
        conflicts_with_all = ["staged", "no_ignore"]
    )]
    pub history: Option<Option<String>>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    let registry = g.registry()?;
    let identity = g.optional_identity()?;
    // git walks the history while the values are decrypted (each takes
    // about as long as the other).
    let history_started = std::time::Instant::now();
    let walk = match &args.history {
        Some(revisions) => Some(start_history(args, revisions.as_deref())?),
        None => None,
    };
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
    if let Some(walk) = walk {
        let found = history(args, walk, &scanner, searched, history_started)?;
        return Ok(outcome(found, &unreadable));
    }
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
        print_json(&hits, searched, &totals)?;
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
    Ok(outcome(!hits.is_empty(), &unreadable))
}

/// The exit code: findings, else whether every value was looked for.
fn outcome(found: bool, unreadable: &[String]) -> u8 {
    if found {
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
    }
}

/// `scan --history[=RANGE] [REPOSITORY]`: the repository and revisions
/// checked, and git's walk started.
fn start_history(args: &Args, revisions: Option<&str>) -> anyhow::Result<Walk> {
    let usage = |message: String, hint: &str| {
        let mut usage = Hinted::new(message, hint);
        usage.code = exit::USAGE;
        usage
    };
    let repo = match args.paths.as_slice() {
        [] => PathBuf::from("."),
        [one] => one.clone(),
        [..] => {
            return Err(usage(
                "--history searches one repository, and more than one path was given".into(),
                "give the repository's folder (or none, for the one here); --history=RANGE limits the commits",
            )
            .into());
        }
    };
    let revisions = match revisions {
        Some(given) if given.split_whitespace().any(|r| r.starts_with('-')) => {
            return Err(usage(
                format!("--history={given}: revisions cannot start with '-'"),
                "give revisions, e.g. --history=main..feature; --history alone searches every ref",
            )
            .into());
        }
        Some(given) if !given.trim().is_empty() => Revisions::Given(given),
        _ => Revisions::All,
    };
    Ok(Walk::start(&repo, revisions).map_err(hinted)?)
}

/// A history error as every command's errors are shown: with its hint, and
/// exit 2 for a mistake in what was asked.
fn hinted(e: HistoryError) -> Hinted {
    let mut hinted = Hinted::new(e.to_string(), e.hint());
    if e.is_usage() {
        hinted.code = exit::USAGE;
    }
    hinted
}

/// Searches the walk's blobs and reports; whether anything was found.
fn history(
    args: &Args,
    walk: Walk,
    scanner: &Scanner,
    searched: usize,
    started: std::time::Instant,
) -> anyhow::Result<bool> {
    let (hits, totals) = walk.search(scanner).map_err(hinted)?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        print_json(&hits, searched, &totals)?;
    } else {
        for h in &hits {
            let place = match &h.commit {
                Some(commit) => format!("{} {}", commit.get(..12).unwrap_or(commit), h.hit.file),
                None => format!("(no commit) the blob {} a tag points to", h.blob),
            };
            let place = format!("{place}:{}:{}", h.hit.line, h.hit.col);
            match (&h.hit.token, h.hit.version, h.hit.stage) {
                (Some(t), Some(v), Some(s)) => println!("{place}: {t} v{v} ({})", s.as_str()),
                _ => println!("{place}: a ChittyID-shaped token (mcp_auth_ + 32 hex) the registry does not know"),
            }
        }
        println!(
            "{} finding{} in {} commit{} ({} file version{}, {:.1} MB, {} binary skipped) in {seconds:.2}s; {searched} known value{} searched",
            hits.len(),
            plural(hits.len()),
            totals.commits,
            plural(totals.commits as usize),
            totals.blobs,
            plural(totals.blobs as usize),
            totals.bytes as f64 / 1e6,
            totals.binary_skipped,
            plural(searched),
        );
    }
    if !hits.is_empty() {
        crate::error::Hint::new(
            "a value in history is leaked wherever the repository went: rotate every token found (`chitty-secrets rotate NAME`); rewriting history does not take it back",
        )
        .print();
    }
    Ok(!hits.is_empty())
}

/// `scan --json`, of files or of history: the findings, how many known
/// values were looked for, and what was read.
fn print_json(hits: &[impl Serialize], values_searched: usize, totals: &impl Serialize) -> anyhow::Result<()> {
    #[derive(Serialize)]
    struct Out<'a, H, T> {
        hits: &'a [H],
        values_searched: usize,
        totals: &'a T,
    }
    println!("{}", serde_json::to_string_pretty(&Out { hits, values_searched, totals })?);
    Ok(())
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
