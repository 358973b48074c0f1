//! `audit verify`: check the audit log's hash chain.

use super::{Globals, Hinted, exit, shown};
use crate::registry::audit;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Check that no line was edited, removed or reordered.
    Verify,
}

pub fn run(g: &Globals<'_>, command: &Command) -> anyhow::Result<u8> {
    let Command::Verify = command;
    let registry = g.registry()?;
    let path = registry.audit_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
                "check the file's permissions"
            } else {
                "restore it from git (`git checkout -- FILE`)"
            };
            return Err(Hinted::new(format!("cannot read {}: {e}", path.display()), hint).into());
        }
    };
    let file = shown(&path);
    match audit::verify(&text) {
        Ok(verified) => {
            for line in &verified.torn {
                println!(
                    "{file}:{line}: cut short by a crash mid-append; kept as it is and left out of the chain (the next entry fences it)"
                );
            }
            println!("{file}: {} entries, chain intact", verified.entries);
            Ok(exit::OK)
        }
        Err(breaks) => {
            for b in &breaks {
                println!("{file}:{}: {}", b.line, b.why);
            }
            eprintln!("error: {file}: the hash chain is broken at {} place(s)", breaks.len());
            eprintln!("hint: compare the file with its git history (`git log -p -- {file}`) to see what changed");
            Ok(exit::FINDINGS)
        }
    }
}
