//! `set NAME`: store a value given on stdin as the token's current version.
//! For `manual` tokens this is how a rotation happens; `sync` delivers it.

use chrono::{DateTime, Utc};

use super::{Globals, Hinted, exit, known_token, read_stdin_value};
use crate::placeholder::placeholder_reason;
use crate::policy::TokenPolicy;
use crate::registry::audit::Event;
use crate::registry::{Registry, Stage, TokenMeta, Values, Version};
use crate::secret::Secret;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The token's name; the value is read from stdin.
    pub name: String,
    /// Store it even if it looks like a placeholder (it is flagged, and `check` reports it).
    #[arg(long)]
    pub allow_placeholder: bool,
}

pub fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    let policy = g.policy()?;
    let token = known_token(&policy, &args.name)?;
    let value = read_stdin_value()?;
    let placeholder = placeholder_reason(value.expose(), &policy.placeholders);
    if let Some(why) = placeholder.filter(|_| !args.allow_placeholder) {
        return Err(Hinted::new(
            format!("refusing to store the value for {}: it {why}", args.name),
            "pipe the real token into `chitty-secrets set`",
        )
        .into());
    }
    if let Some(target) = token.targets.iter().find(|t| t.dotenv_path(&policy.root).is_some())
        && !crate::target::dotenv_file::can_carry(&value)
    {
        return Err(Hinted::new(
            format!(
                "refusing to store the value for {}: its target {} is a .env file, and no .env quoting carries this value so that every parser reads it back the same",
                args.name,
                target.address()
            ),
            "a value with a single quote cannot also hold `$`, a backslash or a line break in .env files",
        )
        .into());
    }
    let registry = g.registry()?;
    let identity = g.identity()?;
    let _lock = g.lock(&registry)?;
    let mut meta = registry.load(&args.name)?;
    let mut values = registry.load_values(&args.name, &identity.key)?;
    let id = store_current(
        &registry,
        &mut meta,
        &mut values,
        token,
        NewValue { value, origin: "set", placeholder: placeholder.is_some() },
        g.now(),
    )?;
    println!("stored {} v{id} as current; run `chitty-secrets sync` to deliver it", args.name);
    Ok(exit::OK)
}

/// A value a person supplied, and how.
pub struct NewValue<'a> {
    pub value: Secret,
    /// "set" or "import", recorded in the version and the audit log.
    pub origin: &'a str,
    pub placeholder: bool,
}

/// Saves `value` as a new current version (the old current becomes
/// previous for the token's overlap). Values are saved before metadata.
pub fn store_current(
    registry: &Registry,
    meta: &mut TokenMeta,
    values: &mut Values,
    token: &TokenPolicy,
    new: NewValue<'_>,
    now: DateTime<Utc>,
) -> anyhow::Result<u32> {
    let NewValue { value, origin, placeholder } = new;
    if let Some(p) = meta.pending() {
        return Err(Hinted::new(
            format!("{} has a rotation in progress (v{} pending)", token.name, p.id),
            format!("finish it first with `chitty-secrets rotate {}`", token.name),
        )
        .into());
    }
    let id = meta.next_version_id();
    values.insert(id, value);
    registry.save_values(&token.name, values)?;
    for v in &mut meta.versions {
        if v.stage == Stage::Current {
            v.stage = Stage::Previous;
            v.retire_after = Some(now + token.overlap.0);
        }
    }
    meta.versions.push(Version {
        id,
        stage: Stage::Current,
        issuer: token.issuer.clone(),
        token_id: None,
        scopes: token.scopes.clone(),
        created_at: now,
        expires_at: token.ttl.map(|t| now + t.0),
        retire_after: None,
        retired_at: None,
        revoked_at: None,
        origin: origin.into(),
        placeholder,
    });
    registry.save(meta)?;
    let event = Event { event: origin, token: Some(&token.name), version: Some(id), detail: None };
    registry.audit(event, now)?;
    Ok(id)
}
