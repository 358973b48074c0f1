//! `run -- CMD…`: run a command with current values in its environment
//! (under the token's name and every alias its targets use).

use std::process::Command;

use super::{Globals, Hinted, Need, exit};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only this token (repeatable).
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,
    /// Start even if a declared token has no value (it is left out, and said so).
    #[arg(long)]
    pub allow_missing: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    // The identity is asked for after the --only names are checked.
    let ws = g.workspace(Need::Optional)?;
    let env = ws.environment(&args.only, args.allow_missing)?;
    for (name, why) in &env.left_out {
        eprintln!("warning: {name} is not set ({why})");
    }
    let mut command = Command::new(&args.command[0]);
    command.args(&args.command[1..]);
    for (name, value) in &env.vars {
        command.env(name, value.expose());
    }
    let status = command.status().map_err(|e| {
        Hinted::new(format!("cannot run `{}`: {e}", args.command[0]), "check that the command exists and is on PATH")
    })?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(exit::FAILURE),
        (None, Some(signal)) => 128u8.saturating_add(u8::try_from(signal).unwrap_or(0)),
        _ => exit::FAILURE,
    })
}
