//! `keys list | add | remove | rekey`: who can read the registry. Every change
//! re-encrypts every value file in the same step (crash-safe: see
//! [`Registry::rekey_all`]).

use std::str::FromStr;

use super::{Globals, Hinted, exit, shown};
use crate::registry::audit::Event;
use crate::registry::{Registry, parse_recipients};

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
    match command {
        Command::List => list(g, &registry),
        Command::Add { recipient, name } => add(g, &registry, recipient, name.as_deref()),
        Command::Remove { recipient, force } => remove(g, &registry, recipient, *force),
        Command::Rekey => {
            let identity = g.identity()?;
            let _lock = g.lock(&registry)?;
            let n = rekey(&registry, &identity.key)?;
            println!("re-encrypted {n} value file{} to the current recipients", if n == 1 { "" } else { "s" });
            Ok(exit::OK)
        }
    }
}

fn list(g: &Globals<'_>, registry: &Registry) -> anyhow::Result<u8> {
    let mine = g.optional_identity().ok().flatten().map(|i| i.recipient().to_string());
    let text = std::fs::read_to_string(registry.recipients_path())?;
    let mut comment = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(c) = trimmed.strip_prefix('#') {
            comment = Some(c.trim().to_string());
            continue;
        }
        if trimmed.is_empty() {
            comment = None;
            continue;
        }
        let key = trimmed.split('#').next().unwrap_or("").trim();
        let you = if mine.as_deref() == Some(key) { "  (you)" } else { "" };
        println!("{key}  {}{you}", comment.take().unwrap_or_default());
    }
    if registry.rekey_marker().exists() {
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

fn shorten(text: &str) -> String {
    if text.chars().count() > 24 {
        format!("{}…", text.chars().take(20).collect::<String>())
    } else {
        text.to_string()
    }
}

fn add(g: &Globals<'_>, registry: &Registry, given: &str, name: Option<&str>) -> anyhow::Result<u8> {
    let keys = parse_given(given)?;
    let identity = g.identity()?;
    let _lock = g.lock(registry)?;
    let label = name.unwrap_or("added with chitty-secrets keys add");
    let mut added = Vec::new();
    for key in &keys {
        if registry.add_recipient(key, label)? {
            added.push(key.to_string());
        }
    }
    // Re-encrypt even when nothing was new: a rerun finishes an interrupted add.
    let n = rekey(registry, &identity.key)?;
    for key in &added {
        registry.audit(
            Event { event: "keys.add", token: None, version: None, detail: Some(format!("{key} ({label})")) },
            g.now(),
        )?;
    }
    println!(
        "{} recipient{} added ({} already listed); re-encrypted {n} value file{}",
        added.len(),
        if added.len() == 1 { "" } else { "s" },
        keys.len() - added.len(),
        if n == 1 { "" } else { "s" }
    );
    println!("commit {} so the new key can read the values", shown(registry.dir()));
    Ok(exit::OK)
}

fn remove(g: &Globals<'_>, registry: &Registry, given: &str, force: bool) -> anyhow::Result<u8> {
    let key = age::x25519::Recipient::from_str(given).map_err(|_| {
        Hinted::new(
            format!("`{}` is not an age X25519 public key (age1…)", shorten(given)),
            "`chitty-secrets keys list` shows the keys",
        )
    })?;
    let key = key.to_string();
    let identity = g.identity()?;
    let _lock = g.lock(registry)?;
    let text = std::fs::read_to_string(registry.recipients_path())?;
    let current = parse_recipients(&text, &registry.recipients_path())?;
    if !current.iter().any(|r| r.to_string() == key) {
        return Err(Hinted::new(
            format!("{} is not a recipient", shorten(&key)),
            "`chitty-secrets keys list` shows the keys",
        )
        .into());
    }
    if current.len() == 1 {
        return Err(Hinted::new(
            "refusing to remove the last recipient: nobody could read the values",
            "add another key first",
        )
        .into());
    }
    if identity.recipient().to_string() == key && !force {
        return Err(Hinted::new(
            "refusing to remove your own key: you would lock yourself out",
            "pass --force if that is what you want (another recipient must then re-run `keys rekey`)",
        )
        .into());
    }
    // Drop the key's line and the comment line naming it just above.
    let lines: Vec<&str> = text.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    for line in &lines {
        if line.split('#').next().unwrap_or("").trim() == key {
            if kept.last().is_some_and(|l| l.trim_start().starts_with('#')) {
                kept.pop();
            }
            continue;
        }
        kept.push(line);
    }
    let mut new_text = kept.join("\n");
    new_text.push('\n');
    registry.write_recipients(&new_text)?;
    // With --force on our own key we can still decrypt: the files are not
    // re-encrypted yet. After this, we cannot.
    let n = rekey(registry, &identity.key)?;
    registry.audit(Event { event: "keys.remove", token: None, version: None, detail: Some(key.clone()) }, g.now())?;
    println!("removed {}; re-encrypted {n} value file{}", shorten(&key), if n == 1 { "" } else { "s" });
    println!(
        "note: the removed key can still read old copies (git history): rotate the tokens it could read (`chitty-secrets rotate`)"
    );
    Ok(exit::OK)
}

fn rekey(registry: &Registry, key: &age::x25519::Identity) -> anyhow::Result<usize> {
    let mut first = true;
    Ok(registry.rekey_all(key, |_| {
        if first {
            crate::crash::point("rekey-after-first-file");
            first = false;
        }
    })?)
}
