//! `policy check`: load and validate every policy file.

use super::{Globals, exit, shown};

pub fn run(g: &Globals<'_>) -> anyhow::Result<u8> {
    let policy = g.policy()?;
    let targets: usize = policy.tokens.values().map(|t| t.targets.len()).sum();
    println!(
        "{}: {} file{}, {} token{}, {} target{}: ok",
        shown(&g.located()?.policies),
        policy.files.len(),
        plural(policy.files.len()),
        policy.tokens.len(),
        plural(policy.tokens.len()),
        targets,
        plural(targets)
    );
    // Not an error here (the policy is fine), but the first sync would fail.
    let needs = crate::credentials::needed(&policy, &[]);
    for need in crate::credentials::missing(&needs, crate::credentials::env_is_set) {
        eprintln!("warning: {}; sync and rotate will fail without it", need.unset());
    }
    Ok(exit::OK)
}

pub fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
