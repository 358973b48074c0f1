//! `get NAME`: print a token's value. One of the two commands (with `run`)
//! whose job is to hand a value out.

use super::{Globals, Hinted, actions, exit};
use crate::registry::Stage;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The token's name.
    pub name: String,
    /// A version other than the current one: pending, previous, or a number.
    #[arg(long, value_name = "STAGE|N")]
    pub version: Option<String>,
}

pub fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    let registry = g.registry()?;
    let meta = registry.load_existing(&args.name)?.ok_or_else(|| {
        Hinted::new(
            format!("the registry has no token `{}`", args.name),
            format!("run `chitty-secrets rotate {0}` (or `chitty-secrets set {0}`) first", args.name),
        )
    })?;
    let wanted = args.version.as_deref().unwrap_or("current");
    let version = match wanted {
        "current" => meta.current(),
        "pending" => meta.in_stage(Stage::Pending),
        "previous" => meta.in_stage(Stage::Previous),
        n => n.parse::<u32>().ok().and_then(|id| meta.versions.iter().find(|v| v.id == id)),
    }
    .ok_or_else(|| {
        Hinted::new(
            format!("{} has no {wanted} version", args.name),
            "`chitty-secrets status` lists the versions there are",
        )
    })?;
    let identity = g.identity()?;
    let values = registry.load_values(&args.name, &identity.key)?;
    let value = values.get(version.id).ok_or_else(|| {
        Hinted::new(
            format!("the value of {} v{} is missing from its value file", args.name, version.id),
            "restore tokens/*.age from git, or rotate the token",
        )
    })?;
    actions::mask(value.expose());
    println!("{}", value.expose());
    Ok(exit::OK)
}
