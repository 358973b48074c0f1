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
    // With a member's identity every line's MAC is checked too; without
    // one, only the hash chain (which anyone can recompute).
    if let Some(identity) = g.optional_identity().ok().flatten() {
        super::unlock(&registry, &identity)?;
    }
    let keys = registry.keys();
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
    match audit::verify(&text, keys.as_deref()) {
        Ok(verified) => {
            for line in &verified.torn {
                println!(
                    "{file}:{line}: cut short by a crash mid-append; kept as it is and left out of the chain (the next entry fences it)"
                );
            }
            if verified.authenticated {
                let whose = match (verified.legacy, verified.accepted) {
                    (_, n) if n > 0 => format!(
                        "the {n} lines before the last `trust accept` were vouched for by a member after review, every line after it is a member's"
                    ),
                    (0, _) => "every line a member's".into(),
                    (n, _) => format!(
                        "every line a member's ({n} from before the registry was authenticated, fixed by the line that began it)"
                    ),
                };
                println!("{file}: {} entries, chain intact, {whose}", verified.entries);
            } else {
                println!("{file}: {} entries, chain intact", verified.entries);
                let why = if registry.is_authenticated() {
                    "no member's identity is at hand"
                } else {
                    "the registry is of the format before authentication (`chitty-secrets upgrade`)"
                };
                eprintln!(
                    "warning: authenticity not verified: {why}; anyone can recompute a hash chain, only the MACs prove a member wrote each line"
                );
            }
            Ok(exit::OK)
        }
        Err(breaks) => {
            for b in &breaks {
                println!("{file}:{}: {}", b.line, b.why);
            }
            eprintln!("error: {file}: the log is broken or not a member's at {} place(s)", breaks.len());
            crate::error::Hint::new(format!(
                "compare the file with its git history (`git log -p -- {file}`) to see what changed"
            ))
            .print();
            Ok(exit::FINDINGS)
        }
    }
}
