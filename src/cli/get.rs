//! `get NAME`: print a token's value. One of the two commands (with `run`)
//! whose job is to hand a value out.

use super::{Globals, Hinted, Need, actions, exit};
use crate::policy::IssuerSpec;
use crate::registry::{RegistryError, Stage};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The token's name, or a name one of its targets receives it under.
    pub name: String,
    /// A version other than the current one: pending, previous, or a number.
    #[arg(long, value_name = "STAGE|N")]
    pub which: Option<String>,
}

pub fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    // A name that is not a token name never reaches the file system.
    if !crate::policy::is_secret_name(&args.name) {
        return Err(RegistryError::BadName(args.name.clone()).into());
    }
    let ws = g.workspace(Need::Nothing)?;
    // An alias (a name a target receives the token under) means its token.
    let name = match ws.policy.tokens.values().find(|t| t.targets.iter().any(|x| x.names.contains(&args.name))) {
        Some(t) if ws.policy.token(&args.name).is_none() => t.name.clone(),
        _ => ws.token(&args.name)?.name.clone(),
    };
    let token = ws.token(&name)?;
    let meta = ws.registry.load(&name)?;
    let first = || {
        let how = match ws.policy.issuer_of(token).spec {
            IssuerSpec::Manual(_) => format!("`chitty-secrets set {name} < FILE`"),
            _ => format!("`chitty-secrets rotate {name}`"),
        };
        Hinted::new(format!("{name} has no value yet"), format!("give it one with {how}"))
    };
    if meta.versions.is_empty() {
        return Err(first().into());
    }
    let wanted = args.which.as_deref().unwrap_or("current");
    let version = match wanted {
        "current" => meta.current(),
        "pending" => meta.in_stage(Stage::Pending),
        "previous" => meta.in_stage(Stage::Previous),
        n => n.trim_start_matches('v').parse::<u32>().ok().and_then(|id| meta.versions.iter().find(|v| v.id == id)),
    }
    .ok_or_else(|| {
        Hinted::new(format!("{name} has no {wanted} version"), "`chitty-secrets status` lists the versions there are")
    })?;
    let identity = g.identity()?;
    super::unlock(&ws.registry, &identity)?;
    // The metadata again, now checked against its MAC.
    let meta = ws.registry.load(&name)?;
    let values = ws.registry.load_values(&meta, &identity.key)?;
    let value = values.get(version.id).ok_or_else(|| RegistryError::ValuesMissing {
        path: ws.registry.values_dir(&name),
        token: name.clone(),
        versions: vec![version.id],
    })?;
    actions::mask(value.expose());
    println!("{}", value.expose());
    Ok(exit::OK)
}
