//! `check`: offline findings (see [`crate::check`]); `--online` adds one
//! cheap issuer verify per token, counted.

use serde::Serialize;

use super::policy_check::plural;
use super::{Globals, Need, actions, exit, parse_duration};
use crate::check::{Finding, Severity};
use crate::engine::check::CheckReport;
use crate::identity;

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
    #[serde(flatten)]
    check: &'a CheckReport,
    fail_on: Severity,
    failed: bool,
}

pub async fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    // No identity is needed; one that is there (and readable) is used. One
    // named on purpose (flag or environment) that cannot be read is an
    // error: a check that silently compared nothing would pass.
    let need = if args.online {
        Need::Required
    } else if identity::is_explicit(g.cli.identity.as_deref()) {
        Need::Optional
    } else {
        Need::IfReadable
    };
    let ws = g.workspace(need)?;
    let window = chrono::TimeDelta::from_std(args.window).unwrap_or(chrono::TimeDelta::MAX);
    let report = ws.check(window, args.online, identity::possible_files(g.cli.identity.as_deref())).await?;
    let failed = report.findings.iter().any(|f| f.severity >= args.fail_on);
    if args.json {
        let out = Report { check: &report, fail_on: args.fail_on, failed };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_human(&report.findings, report.service_calls, report.values_compared);
    }
    annotate_for_actions(&report.findings);
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
            print!("{}", hint.render("    "));
        }
    }
    let count = |s| findings.iter().filter(|f| f.severity == s).count();
    let (errors, warnings) = (count(Severity::Error), count(Severity::Warning));
    println!(
        "{errors} error{}, {warnings} warning{}, {} info; {service_calls} service call{}{}",
        plural(errors),
        plural(warnings),
        count(Severity::Info),
        plural(service_calls),
        if compared { "" } else { "; no identity, so .env values were not compared with the registry" }
    );
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "info",
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
