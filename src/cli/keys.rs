//! `keys list | add | remove | rekey`: who can read the registry. The
//! changes are the engine's ([`crate::engine::keys`]); this module parses the
//! keys given and renders what changed.

use std::str::FromStr;

use super::policy_check::plural;
use super::{Globals, Hinted, exit, shown};
use crate::engine::keys::{Keys, shorten};
use crate::registry::parse_recipients;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// The recipients, with their names; yours is marked.
    List,
    /// Let a key (age1…) or every key in a recipients file read every value.
    Add {
        /// An age X25519 public key (age1…), or a file of them.
        recipient: String,
        /// A name for the key (a person, a CI runner), kept as a comment.
        #[arg(long)]
        name: Option<String>,
    },
    /// Stop a key from reading values written from now on (rotate what it could read).
    Remove {
        /// The age public key (age1…) to remove.
        recipient: String,
        /// Allow removing your own key, locking yourself out.
        #[arg(long)]
        force: bool,
    },
    /// Re-encrypt every value file to the current recipients (finishes an interrupted change).
    Rekey,
}

pub fn run(g: &Globals<'_>, command: &Command) -> anyhow::Result<u8> {
    let registry = g.registry()?;
    let keys = Keys { registry: &registry, now: g.now(), lock_timeout: g.cli.lock_timeout };
    match command {
        Command::List => list(g, &keys),
        Command::Add { recipient, name } => {
            let given = parse_given(recipient)?;
            let identity = g.identity()?;
            let label = name.as_deref().unwrap_or("added with chitty-secrets keys add");
            let change = keys.add(&identity, &given, label)?;
            println!(
                "{} recipient{} added ({} already listed); re-encrypted {}",
                change.added.len(),
                plural(change.added.len()),
                change.already,
                files(change.reencrypted)
            );
            println!("commit {} so the new key can read the values", shown(registry.dir()));
            Ok(exit::OK)
        }
        Command::Remove { recipient, force } => {
            let key = age::x25519::Recipient::from_str(recipient).map_err(|_| {
                Hinted::new(
                    format!("`{}` is not an age X25519 public key (age1…)", shorten(recipient)),
                    "`chitty-secrets keys list` shows the keys",
                )
            })?;
            let identity = g.identity()?;
            let n = keys.remove(&identity, &key, *force)?;
            println!("removed {}; re-encrypted {}", shorten(&key.to_string()), files(n));
            println!(
                "note: the removed key can still read old copies (git history): rotate the tokens it could read (`chitty-secrets rotate`)"
            );
            println!(
                "note: the registry key changed (a new epoch): where CI pins the registry, set the pin again: gh secret set {} --body \"$(chitty-secrets trust pin)\"",
                crate::env_vars::REGISTRY_ID
            );
            Ok(exit::OK)
        }
        Command::Rekey => {
            let identity = g.identity()?;
            let n = keys.rekey(&identity)?;
            println!("re-encrypted {} to the current recipients", files(n));
            Ok(exit::OK)
        }
    }
}

fn files(n: usize) -> String {
    format!("{n} value file{}", plural(n))
}

fn list(g: &Globals<'_>, keys: &Keys<'_>) -> anyhow::Result<u8> {
    let mine = g.optional_identity().ok().flatten().map(|i| i.recipient().to_string());
    for entry in keys.list()? {
        let you = if mine.as_deref() == Some(entry.key.as_str()) { "  (you)" } else { "" };
        println!("{}  {}{you}", entry.key, entry.label);
    }
    if keys.rekey_pending() {
        eprintln!("warning: a recipients change did not finish; run `chitty-secrets keys rekey`");
    }
    Ok(exit::OK)
}

/// Parses what the user gave: one key, or a recipients file. Never echoes a
/// secret key back.
fn parse_given(given: &str) -> anyhow::Result<Vec<age::x25519::Recipient>> {
    let hint = "give an age X25519 public key (age1…), e.g. from `chitty-secrets init` or `age-keygen -y KEYFILE`";
    if given.starts_with("AGE-SECRET-KEY-") {
        return Err(Hinted::new("that is a secret key, not a public one: it was not stored or printed", hint).into());
    }
    if let Ok(r) = age::x25519::Recipient::from_str(given) {
        return Ok(vec![r]);
    }
    let path = std::path::Path::new(given);
    if path.is_file() {
        let text = std::fs::read_to_string(path)?;
        if text.contains("AGE-SECRET-KEY-") {
            return Err(Hinted::new(format!("{given} holds a secret key, not public keys"), hint).into());
        }
        let keys = parse_recipients(&text, path)?;
        if keys.is_empty() {
            return Err(Hinted::new(format!("{given} lists no recipients"), hint).into());
        }
        return Ok(keys);
    }
    let what = if given.starts_with("ssh-") {
        "an SSH key (not supported; use an age X25519 key)"
    } else {
        "not an age X25519 public key (age1…)"
    };
    Err(Hinted::new(format!("`{}` is {what}", shorten(given)), hint).into())
}
