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
            return Err(
                Hinted::new(format!("cannot read {}: {e}", path.display()), "check the file's permissions").into()
            );
        }
    };
    let file = shown(&path);
    match audit::verify(&text) {
        Ok(n) => {
            println!("{file}: {n} entries, chain intact");
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
