//! `set NAME`: store a value given on stdin as the token's current version.
//! For `manual` tokens this is how a rotation happens; `sync` delivers it.

use super::{Globals, Need, exit, read_stdin_value};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The token's name; the value is read from stdin.
    pub name: String,
    /// Store it even if it looks like a placeholder (it is flagged, and `check` reports it).
    #[arg(long)]
    pub allow_placeholder: bool,
    /// Store it even if it does not have the shape the token's issuer gives
    /// its values (e.g. a `random` issuer's prefix).
    #[arg(long)]
    pub force: bool,
}

pub fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    let ws = g.workspace(Need::Optional)?;
    ws.token(&args.name)?;
    let value = read_stdin_value()?;
    let id = ws.set_value(&args.name, value, args.allow_placeholder, args.force)?;
    println!("stored {} v{id} as current; run `chitty-secrets sync` to deliver it", args.name);
    Ok(exit::OK)
}
