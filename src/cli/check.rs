//! `check`: offline findings (see [`crate::check`]); `--online` adds one
//! cheap issuer verify per token, counted.

use serde::Serialize;

use super::{Globals, Need, actions, exit, parse_duration};
use crate::check::{self, Finding, Inputs, Severity};
use crate::env_vars;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Exit 3 when a finding is at least this severe.
    #[arg(long, value_enum, default_value = "warning")]
    pub fail_on: Severity,
    /// A token expiring within this window is reported.
    #[arg(long, default_value = "30d", value_parser = parse_duration)]
    pub window: std::time::Duration,
    /// Also verify each current value with its issuer (at most one call per
    /// token; never a mint) and list each remote target once (names only).
    #[arg(long)]
    pub online: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    findings: &'a [Finding],
    /// Calls made to any service: zero unless --online.
    service_calls: usize,
    /// Whether values were decrypted to compare .env files and look inside values.
    values_compared: bool,
    fail_on: Severity,
    failed: bool,
}

pub async fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    // No identity is needed; one that is there (and readable) is used.
    let ws = g.workspace(if args.online { Need::Required } else { Need::IfReadable })?;
    let mut identity_files = vec![crate::identity::config_file()];
    identity_files.extend(g.cli.identity.clone());
    identity_files.extend(std::env::var_os(env_vars::IDENTITY_FILE).map(Into::into));
    let inputs = Inputs {
        policy: &ws.policy,
        registry: &ws.registry,
        identity: ws.identity.as_ref(),
        identity_files,
        now: ws.now,
        window: chrono::TimeDelta::from_std(args.window).unwrap_or(chrono::TimeDelta::MAX),
    };
    let mut findings = check::run(&inputs)?;
    let mut service_calls = 0;
    if args.online {
        let (online, calls) = ws.check_online().await?;
        findings.extend(online);
        service_calls = calls;
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    }
    let compared = ws.identity.is_some();
    let failed = findings.iter().any(|f| f.severity >= args.fail_on);
    if args.json {
        let report =
            Report { findings: &findings, service_calls, values_compared: compared, fail_on: args.fail_on, failed };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_human(&findings, service_calls, compared);
    }
    annotate_for_actions(&findings);
    Ok(if failed { exit::FINDINGS } else { exit::OK })
}

fn print_human(findings: &[Finding], service_calls: usize, compared: bool) {
    for f in findings {
        let at = match (&f.file, f.line) {
            (Some(file), Some(line)) => format!("{file}:{line}: "),
            (Some(file), None) => format!("{file}: "),
            _ => String::new(),
        };
        println!("{}[{}] {at}{}", severity_word(f.severity), f.code, f.message);
        if let Some(hint) = &f.hint {
            println!("    hint: {hint}");
        }
    }
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    println!(
        "{} errors, {} warnings, {} notes; {service_calls} service calls{}",
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info),
        if compared { "" } else { "; no identity, so .env values were not compared with the registry" }
    );
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

/// In GitHub Actions, findings become annotations on the files, and a
/// table goes to the job summary.
fn annotate_for_actions(findings: &[Finding]) {
    if !actions::active() {
        return;
    }
    let mut md = String::from("### chitty-secrets check\n\n");
    if findings.is_empty() {
        md.push_str("No findings.\n");
    } else {
        md.push_str("| severity | code | where | finding |\n|---|---|---|---|\n");
    }
    for f in findings {
        let kind = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "notice",
        };
        actions::annotate(&actions::Annotation {
            kind,
            title: f.code,
            file: f.file.as_deref(),
            line: f.line,
            col: None,
            message: &f.message,
        });
        let at = match (&f.file, f.line) {
            (Some(file), Some(line)) => format!("{file}:{line}"),
            (Some(file), None) => file.clone(),
            _ => String::new(),
        };
        md.push_str(&format!("| {kind} | `{}` | {} | {} |\n", f.code, actions::cell(&at), actions::cell(&f.message)));
    }
    actions::summary(&md);
}
