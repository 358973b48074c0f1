//! `status`: versions, stages, ages, expiries and delivery state. Reads only
//! metadata: no value, no network; with a member's identity at hand, every
//! file is checked against its MAC. The report is the engine's; this
//! module renders it.

use std::io::{self, Write};

use chrono::{DateTime, TimeDelta, Utc};

use super::{Globals, Need, exit, parse_duration};
use crate::engine::status::{StatusReport, TokenStatus};
use crate::policy::Dur;
use crate::registry::Stage;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// List tokens expiring within this window (e.g. 30d) and exit 3 if any.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub expiring: Option<std::time::Duration>,
}

pub fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    let ws = g.workspace(Need::IfReadable)?;
    super::say_authenticity(&ws.registry);
    let window = args.expiring.map(|w| TimeDelta::from_std(w).unwrap_or(TimeDelta::MAX));
    let report = ws.status(window)?;
    // One buffer for the whole report: stdout is line-buffered, and a
    // registry of 10,000 tokens is 40,000 lines (a write call each).
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report)?;
        writeln!(out)?;
    } else {
        print_report(&mut out, &report, window)?;
    }
    out.flush()?;
    drop(out);
    let damaged = report.tokens.iter().filter(|t| t.damaged.is_some()).count();
    if damaged > 0 {
        eprintln!(
            "error: {damaged} token file{} could not be read\nhint: restore {} from git (`git log -p -- FILE`, `git checkout COMMIT -- FILE`; on a conflicted merge `git checkout --ours|--theirs -- FILE`), or upgrade chitty-secrets if a newer one wrote {}",
            super::policy_check::plural(damaged),
            if damaged == 1 { "it" } else { "them" },
            if damaged == 1 { "it" } else { "them" },
        );
        return Ok(exit::FAILURE);
    }
    Ok(if report.expiring.is_empty() { exit::OK } else { exit::FINDINGS })
}

fn print_report(out: &mut impl Write, report: &StatusReport, window: Option<TimeDelta>) -> io::Result<()> {
    let now = report.now;
    for row in &report.tokens {
        print_row(out, row, now)?;
    }
    for name in &report.not_in_policy {
        writeln!(out, "{name}: in the registry but in no policy (left alone)")?;
    }
    if let Some(w) = window {
        if report.expiring.is_empty() {
            writeln!(out, "nothing expires within {}", Dur::human(w))?;
        }
        for row in report.tokens.iter().filter(|r| report.expiring.contains(&r.name)) {
            let e = row.expires_at.expect("expiring tokens have an expiry");
            writeln!(out, "expiring within {}: {} ({})", Dur::human(w), row.name, when(now, e))?;
        }
    }
    Ok(())
}

fn print_row(out: &mut impl Write, row: &TokenStatus, now: DateTime<Utc>) -> io::Result<()> {
    if let Some(why) = &row.damaged {
        return writeln!(out, "{}  [{}]  cannot be read: {why}", row.name, row.issuer);
    }
    let current = match row.current_version() {
        Some(v) => format!("v{} current, {} old", v.id, Dur::human(now - v.created_at)),
        None => "no value yet".into(),
    };
    writeln!(out, "{}  [{}]  {current}", row.name, row.issuer)?;
    if let Some(e) = row.expires_at {
        writeln!(out, "  expires: {}", when(now, e))?;
    }
    if let Some(why) = &row.origin_mismatch {
        writeln!(out, "  issuer mismatch: {why} (not delivered to remote targets without `sync --force`)")?;
    }
    if let Some(p) = row.pending {
        writeln!(out, "  pending: v{p} (rotation in progress; `chitty-secrets rotate {}` resumes it)", row.name)?;
    }
    for v in row.versions.iter().filter(|v| v.stage == Stage::Previous) {
        let until = v.retire_after.map(|r| format!(", valid until {}", when(now, r))).unwrap_or_default();
        writeln!(out, "  previous: v{}{until}", v.id)?;
    }
    match (&row.due, row.next_due_at) {
        (Some(due), _) => writeln!(out, "  due now: {due}")?,
        (None, Some(at)) => writeln!(out, "  next rotation due: {}", when(now, at))?,
        (None, None) => {}
    }
    let fresh = row.deliveries.iter().filter(|d| d.up_to_date).count();
    writeln!(out, "  delivered: {fresh}/{} up to date", row.deliveries.len())?;
    for d in row.deliveries.iter().filter(|d| !d.up_to_date) {
        let holds = d.version.map_or("never delivered".to_string(), |v| format!("has v{v}"));
        let on = d.machine.as_deref().map(|m| format!(" on {m}")).unwrap_or_default();
        writeln!(out, "    {}#{}{on}: {holds}", d.target, d.name)?;
    }
    for why in &row.not_on_this_machine {
        writeln!(out, "  {why}")?;
    }
    Ok(())
}

fn when(now: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let stamp = at.format("%Y-%m-%d %H:%M UTC");
    if at >= now {
        format!("{stamp}, in {}", Dur::human(at - now))
    } else {
        format!("{stamp}, {} ago", Dur::human(now - at))
    }
}
