//! `init`: create the registry and an identity, or adopt the configured one.

use super::{Globals, exit, shown};
use crate::engine::keys;
use crate::identity;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Keep a new identity in the OS keyring even where it is cleared at
    /// reboot (Linux's kernel keyring); keep a backup of the key elsewhere.
    #[arg(long)]
    pub keyring: bool,
}

pub fn run(g: &Globals<'_>, args: &Args) -> anyhow::Result<u8> {
    let flag = g.cli.identity.as_deref();
    let (identity, how) = match identity::resolve(flag)? {
        Some(id) if identity::is_explicit(flag) => {
            let how = format!("adopted the identity from {}", id.source);
            (id, how)
        }
        Some(id) => {
            let how = format!("using your existing identity from {}", id.source);
            (id, how)
        }
        None => {
            let store = if args.keyring { identity::Store::Keyring } else { identity::Store::Durable };
            let id = identity::create_and_store(store)?;
            let how = match &id.source {
                identity::Source::Keyring { .. } if !identity::keyring_is_durable() => format!(
                    "created an identity and stored it in {}; this keyring is cleared at reboot: back the key up (`chitty-secrets keys add` a second key you keep safe)",
                    id.source
                ),
                identity::Source::Keyring { .. } => format!("created an identity and stored it in {}", id.source),
                other if args.keyring => {
                    format!("created an identity in {other} (mode 0600): no OS keyring works here")
                }
                other => format!(
                    "created an identity in {other} (mode 0600; no durable OS keyring here, which is normal on Linux servers and CI)"
                ),
            };
            (id, how)
        }
    };
    if let Some(warning) = identity.exposure_warning() {
        eprintln!("warning: {warning}");
    }
    let recipient = identity.recipient();
    let user = std::env::var("USER").unwrap_or_else(|_| "someone".into());
    let label = format!("{user}, added by chitty-secrets init");
    let done = keys::init(&g.cli.registry, &recipient, &label, g.now(), g.cli.lock_timeout)?;

    let dir = shown(done.registry.dir());
    println!("{} registry at {dir}", if done.existed { "using the" } else { "created a" });
    println!("{how}");
    println!("public key (recipient): {recipient}");
    if !done.added {
        println!("the key was already a recipient");
    }
    println!("next: `chitty-secrets rotate` mints and delivers every token in {}", shown(&g.cli.policies));
    Ok(exit::OK)
}
