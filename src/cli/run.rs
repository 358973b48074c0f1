//! `run -- CMD…`: run a command with current values in its environment
//! (under the token's name and every alias its targets use).

use std::process::Command;

use super::{Globals, Hinted, Need, exit};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Only this token (repeatable).
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

pub fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    let ws = g.workspace(Need::Nothing)?;
    for name in &args.only {
        ws.token(name)?;
    }
    let (policy, registry) = (&ws.policy, &ws.registry);
    let identity = g.identity()?;
    let mut command = Command::new(&args.command[0]);
    command.args(&args.command[1..]);
    for (name, token) in &policy.tokens {
        if !args.only.is_empty() && !args.only.contains(name) {
            continue;
        }
        let meta = registry.load(name)?;
        let Some(current) = meta.current() else {
            eprintln!("warning: {name} has no value yet; not set");
            continue;
        };
        let values = registry.load_values(name, &identity.key)?;
        let Some(value) = values.get(current.id) else {
            continue;
        };
        command.env(name, value.expose());
        for n in token.targets.iter().flat_map(|t| &t.names) {
            command.env(n, value.expose());
        }
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
