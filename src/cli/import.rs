//! `import FILE.env`: bootstrap the registry from an existing .env file.
//! Keys that a policy declares (as a token or a target alias) are stored as
//! the token's current value; placeholders are refused, never stored.

use std::path::PathBuf;

use super::policy_check::plural;
use super::{Globals, Hinted, Need, exit, shown};
use crate::engine::store::Refusal;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The .env file to read.
    pub file: PathBuf,
    /// Import only this token (repeatable).
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,
    /// Store placeholders too, flagged so that `check` reports them (to record the state as found).
    #[arg(long)]
    pub allow_placeholders: bool,
}

pub fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    let ws = g.workspace(Need::Optional)?;
    let report = ws.import(&args.file, &args.only, args.allow_placeholders)?;
    let shown_file = shown(&args.file);
    for refusal in &report.refused {
        match refusal {
            Refusal::Placeholder { key, line, why } => eprintln!("{shown_file}:{line}: {key} {why}; not imported"),
            Refusal::Unreadable { key, line, why } => {
                eprintln!("{shown_file}:{line}: {key} has no one value ({why}); not imported")
            }
            Refusal::Conflict { token, first, other } => eprintln!(
                "{shown_file}: {token} has different values at line {} ({}) and line {} ({}); not imported",
                first.1, first.0, other.1, other.0
            ),
        }
    }
    let mut imported = 0;
    for stored in &report.stored {
        match stored.version {
            Some(id) => {
                println!("{}: imported as v{id} from {shown_file}:{}", stored.token, stored.line);
                imported += 1;
            }
            None => println!("{}: already current", stored.token),
        }
    }
    let unknown = &report.unknown;
    if !unknown.is_empty() {
        println!("skipped {} key{} no policy declares: {}", unknown.len(), plural(unknown.len()), unknown.join(", "));
    }
    let refused = report.refused.len();
    println!("{imported} imported, {refused} refused");
    if refused > 0 {
        return Err(Hinted::new(
            format!("{refused} value{} in {shown_file} not imported", plural(refused)),
            "fix the lines named above; placeholders are not tokens: mint real ones with `chitty-secrets rotate`, or `set` the real value",
        )
        .into());
    }
    Ok(exit::OK)
}
