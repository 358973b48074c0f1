//! `trust status | accept | forget` and `upgrade`: the registry's
//! authenticity (see [`crate::registry::auth`]).

use std::path::PathBuf;

use super::policy_check::plural;
use super::{Globals, Hinted, exit, shown};
use crate::registry::{Accepted, RegistryError, Trust, auth::Pin, auth::Pins};

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// The registry's id and key epoch, and every file that is not a member's.
    Status,
    /// Vouch for files changed without the registry key, after reviewing them (audited).
    Accept {
        /// Files of the registry: recipients, tokens/NAME.toml, tokens/NAME.ID.age, audit.log.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Forget the registry key this machine knew here (a member made a new registry).
    Forget,
    /// Print the registry's pin (id, key epoch and key id) for CI's CHITTY_SECRETS_REGISTRY_ID.
    Pin,
    /// The git merge driver for tokens/NAME.toml (set up by `init`): keeps one side whole.
    #[command(hide = true)]
    MergeFile { base: PathBuf, ours: PathBuf, theirs: PathBuf, path: Option<String> },
}

pub fn run(g: &Globals<'_>, command: &Command) -> anyhow::Result<u8> {
    if let Command::MergeFile { ours, theirs, .. } = command {
        return merge_file(ours, theirs);
    }
    let registry = g.registry()?;
    match command {
        Command::Status => {
            let identity = g.optional_identity()?;
            if let Some(identity) = &identity {
                // The key alone: the recipients file is one of the files
                // this lists, not a reason to list nothing.
                registry.unlock_keys_only(&identity.key).or_else(|e| match e {
                    RegistryError::Decrypt { .. } => Ok(false),
                    e => Err(e),
                })?;
            }
            match registry.trust() {
                Trust::Legacy => {
                    println!("{}: not authenticated (the format before authentication)", shown(registry.dir()));
                    crate::error::Hint::new("a member runs `chitty-secrets upgrade` once, then commits the registry")
                        .print();
                    return Ok(exit::FINDINGS);
                }
                Trust::Unverified => {
                    println!(
                        "{}: authenticated format, but not verified here: no member's identity",
                        shown(registry.dir())
                    );
                    return Ok(exit::FINDINGS);
                }
                Trust::Verified { id, epoch } => {
                    println!("{}: registry {id}, key epoch {epoch}", shown(registry.dir()));
                    if let Some(keys) = registry.keys() {
                        println!("pin (for CI's {}): {}", crate::env_vars::REGISTRY_ID, Pin::of(&keys));
                    }
                }
            }
            let identity = identity.expect("verified with an identity");
            let doubts = registry.doubts(&identity.key)?;
            for doubt in &doubts {
                println!("{}: {}", shown(&doubt.path), doubt.why);
            }
            if doubts.is_empty() {
                println!("every file is a member's");
                Ok(exit::OK)
            } else {
                eprintln!(
                    "error: {} not a member's: nothing acts on {}",
                    plural_files(doubts.len()),
                    if doubts.len() == 1 { "it" } else { "them" }
                );
                crate::error::Hint::new(
                    "review each with `git log -p -- FILE`; restore it (`git checkout COMMIT -- FILE`) or accept it (`chitty-secrets trust accept FILE`)",
                )
                .print();
                Ok(exit::FINDINGS)
            }
        }
        Command::Accept { files } => {
            let identity = g.identity()?;
            if !registry.unlock_keys_only(&identity.key)? {
                return Err(RegistryError::Legacy { path: registry.dir().to_path_buf() }.into());
            }
            let _lock = registry.lock(g.cli.lock_timeout)?;
            for file in files {
                let what = match registry.accept(file, &identity.key, g.now())? {
                    Accepted::Recipients { keys } => {
                        format!("the recipients ({keys} key{}; the registry key re-encrypted to them)", plural(keys))
                    }
                    Accepted::Metadata { token } => format!("the metadata of {token}"),
                    Accepted::Value { token, minted } => format!("a value file of {token} ({minted})"),
                    Accepted::AuditLog => "the audit log as it is".into(),
                    Accepted::Checkin { machine } => format!("the check-in of machine {machine}"),
                };
                println!("accepted {what}: {}", shown(file));
            }
            println!("the audit log says who accepted what; commit {}", shown(registry.dir()));
            Ok(exit::OK)
        }
        Command::MergeFile { .. } => unreachable!("handled above"),
        Command::Pin => {
            let identity = g.identity()?;
            super::unlock(&registry, &identity)?;
            let keys = registry.keys().ok_or(RegistryError::NeedsKey { path: registry.key_path(), what: "the pin" })?;
            println!("{}", Pin::of(&keys));
            Ok(exit::OK)
        }
        Command::Forget => {
            if Pins::of_user().forget(registry.dir()) {
                println!("forgot the registry key this machine knew at {}", shown(registry.dir()));
            } else {
                println!("this machine knew no registry key at {}", shown(registry.dir()));
            }
            Ok(exit::OK)
        }
    }
}

/// The merge driver: `%A` (ours) becomes the side [`pick_side`] keeps;
/// exit 1 (a conflict git leaves to a person) when a side is not metadata.
fn merge_file(ours: &std::path::Path, theirs: &std::path::Path) -> anyhow::Result<u8> {
    let (a, b) = (std::fs::read_to_string(ours)?, std::fs::read_to_string(theirs)?);
    match crate::registry::pick_side(&a, &b) {
        Some(crate::registry::Side::Ours) => Ok(exit::OK),
        Some(crate::registry::Side::Theirs) => {
            crate::fsutil::write_atomic(ours, b.as_bytes())?;
            Ok(exit::OK)
        }
        None => Ok(exit::FAILURE),
    }
}

/// Sets this repository's git up to merge registry metadata with
/// `trust merge-file` (where the registry is in a git work tree); says
/// what it did. Best effort: without git nothing happens.
pub fn set_up_merge_driver(registry: &crate::registry::Registry) {
    let dir = registry.dir();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !git(&["rev-parse", "--is-inside-work-tree"]) || registry.update_gitattributes().is_err() {
        return;
    }
    let program = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "chitty-secrets".into());
    if crate::registry::merge_driver_config(&program).iter().all(|(key, value)| git(&["config", key, value])) {
        println!("git merges registry metadata with chitty-secrets here (one side whole: nothing minted is lost)");
    }
}

fn plural_files(n: usize) -> String {
    format!("{n} file{} {}", plural(n), if n == 1 { "is" } else { "are" })
}

/// `upgrade`: a registry from before authentication, in the new format.
pub fn upgrade(g: &Globals<'_>) -> anyhow::Result<u8> {
    let registry = g.registry()?;
    if registry.is_authenticated() {
        println!("{} is authenticated already: nothing to do", shown(registry.dir()));
        return Ok(exit::OK);
    }
    let identity = g.identity()?;
    let _lock = registry.lock(g.cli.lock_timeout)?;
    let done = registry.upgrade(&identity.key, g.now()).map_err(|e| match e {
        RegistryError::NotMember { .. } => anyhow::Error::new(Hinted::new(
            e.to_string(),
            "the upgrade is a member's: run it with the identity of a key in the recipients file",
        )),
        e => e.into(),
    })?;
    println!(
        "upgraded {}: {} token{}, {} value file{} (one a version); every file now carries a MAC under the registry key (key.age)",
        shown(registry.dir()),
        done.tokens,
        plural(done.tokens),
        done.values,
        plural(done.values)
    );
    println!(
        "the upgrade vouches for the registry as it was: if anyone without the identity could have changed it, review `git log -p -- {}` first",
        shown(registry.dir())
    );
    set_up_merge_driver(&registry);
    println!("commit {} (older chitty-secrets refuse the new format: upgrade them too)", shown(registry.dir()));
    Ok(exit::OK)
}
