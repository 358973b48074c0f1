//! Shell completions that complete: subcommands, options and values, token
//! names included, for bash, zsh, fish, elvish and PowerShell.
//!
//! `completions SHELL` prints a small script that asks the binary itself
//! what to offer at each TAB (clap_complete's dynamic completion): the
//! script runs `CHITTY_SECRETS_COMPLETE=SHELL chitty-secrets -- WORDS…`,
//! which [`complete_from_env`] answers before anything else runs. Token
//! names come from the policies of the project the shell is in (or of
//! `--policies DIR` on the line). Completing reads policy files only: never
//! the registry, never an identity, never a value; when there are no
//! policies it offers nothing, silently.
//!
//! (clap_complete's static bash script never completed past the subcommand
//! for a binary name with a hyphen, clap-rs/clap#6421.)

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::CommandFactory as _;
use clap_complete::engine::{ArgValueCandidates, CompletionCandidate};
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Shells};

use super::Cli;
use crate::env_vars::COMPLETE;
use crate::policy::{self, Policy};
use crate::project;

/// The command the scripts complete, and the program they call to do it
/// (found on PATH, so a script written to a file keeps working after an
/// upgrade moves the binary).
const BIN: &str = "chitty-secrets";

/// The shells, with zsh's script made to work from `fpath` too.
const SHELLS: Shells<'static> = Shells(&[&Bash, &Elvish, &Fish, &Powershell, &Zsh]);

/// Answers a completion request (the scripts set [`COMPLETE`]) and exits;
/// returns at once when there is none. Call it first in `main`, before
/// anything is written to stdout.
pub fn complete_from_env() {
    let args: Vec<OsString> = std::env::args_os().collect();
    // A request for candidates has `--` and the words after it; without
    // them it asks for the registration script.
    let completing = args.iter().any(|a| a == "--");
    let current_dir = std::env::current_dir().ok();
    let env = clap_complete::CompleteEnv::with_factory(command).var(COMPLETE).shells(SHELLS).bin(BIN).completer(BIN);
    match env.try_complete(args, current_dir.as_deref()) {
        Ok(false) => {}
        Ok(true) => std::process::exit(0),
        // Mid-line at a TAB, a message would be printed into the command
        // being typed: the scripts take a failure as "no candidates".
        Err(_) if completing => std::process::exit(1),
        Err(e) => e.exit(),
    }
}

/// `completions SHELL`: the script to source (the same text as
/// `CHITTY_SECRETS_COMPLETE=SHELL chitty-secrets`).
pub fn print(shell: clap_complete::Shell) -> anyhow::Result<u8> {
    let mut out = Vec::new();
    registration(shell, &mut out)?;
    super::docs::emit(&out)
}

fn registration(shell: clap_complete::Shell, out: &mut Vec<u8>) -> anyhow::Result<()> {
    let name = shell.to_string();
    let completer = SHELLS
        .completer(&name)
        .ok_or_else(|| anyhow::anyhow!("no completion script for {name}: one of {}", shell_names()))?;
    completer.write_registration(COMPLETE, BIN, BIN, BIN, out)?;
    Ok(())
}

fn shell_names() -> String {
    SHELLS.names().collect::<Vec<_>>().join(", ")
}

/// What completion knows of the command line: the plain definitions (no
/// subcommand hidden by `--help`'s grouping, no `help` subcommand, which
/// the parser does not have either) and where values come from.
pub fn command() -> clap::Command {
    let tokens = || ArgValueCandidates::new(|| token_candidates(false));
    Cli::command()
        .disable_help_subcommand(true)
        .mut_subcommand("rotate", |s| s.mut_arg("tokens", |a| a.add(tokens())))
        .mut_subcommand("sync", |s| s.mut_arg("tokens", |a| a.add(tokens())))
        .mut_subcommand("set", |s| s.mut_arg("name", |a| a.add(tokens())))
        .mut_subcommand("run", |s| s.mut_arg("only", |a| a.add(tokens())))
        .mut_subcommand("import", |s| s.mut_arg("only", |a| a.add(tokens())))
        .mut_subcommand("get", |s| {
            s.mut_arg("name", |a| a.add(ArgValueCandidates::new(|| token_candidates(true))))
                .mut_arg("which", |a| a.add(ArgValueCandidates::new(stages)))
        })
}

/// `get --which`: the stages (a version number is also taken).
fn stages() -> Vec<CompletionCandidate> {
    [
        ("current", "the value in use (the default)"),
        ("pending", "a rotation's new value, not yet promoted"),
        ("previous", "the value before the current one, while its overlap lasts"),
    ]
    .into_iter()
    .map(|(value, help)| CompletionCandidate::new(value).help(Some(help.into())))
    .collect()
}

/// The declared token names, with their descriptions; with `aliases`, also
/// the names targets receive them under (what `get` takes). Nothing when
/// the policies cannot be found or read.
fn token_candidates(aliases: bool) -> Vec<CompletionCandidate> {
    let words: Vec<OsString> = std::env::args_os().collect();
    let Some(policy) = std::env::current_dir().ok().and_then(|cwd| policies_for(&cwd, &words)) else {
        return Vec::new();
    };
    names(&policy, aliases)
        .into_iter()
        .map(|(name, help)| CompletionCandidate::new(name).help(help.map(Into::into)))
        .collect()
}

/// The names to offer, each with its help line, sorted and once each.
fn names(policy: &Policy, aliases: bool) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = policy
        .tokens
        .values()
        .map(|t| (t.name.clone(), t.description.as_ref().and_then(|d| d.lines().next()).map(str::to_string)))
        .collect();
    if aliases {
        for token in policy.tokens.values() {
            for alias in token.targets.iter().flat_map(|t| &t.names) {
                if !out.iter().any(|(name, _)| name == alias) {
                    out.push((alias.clone(), Some(format!("{}, as a target receives it", token.name))));
                }
            }
        }
    }
    out.sort();
    out
}

/// The policies of the line being completed: `--policies DIR` when it is
/// on the line, else the project found from `cwd` upwards.
fn policies_for(cwd: &Path, args: &[OsString]) -> Option<Policy> {
    let dir = match policies_flag(args) {
        Some(dir) => cwd.join(dir),
        None => project::locate(cwd).ok()?.policies,
    };
    policy::load(&dir).ok()
}

/// `--policies DIR` or `--policies=DIR` among the words being completed
/// (those after the first `--`, up to the command's own `--`).
fn policies_flag(args: &[OsString]) -> Option<PathBuf> {
    let mut words = args.iter().skip_while(|a| *a != "--").skip(1).take_while(|a| *a != "--");
    let mut found = None;
    while let Some(word) = words.next() {
        let Some(word) = word.to_str() else { continue };
        if word == "--policies" {
            found = words.next().map(PathBuf::from);
        } else if let Some(dir) = word.strip_prefix("--policies=") {
            found = Some(PathBuf::from(dir));
        }
    }
    found.filter(|d| !d.as_os_str().is_empty())
}

/// clap_complete's zsh script ends with `compdef`, which only works when
/// the script is sourced. Installed as `_chitty-secrets` in `fpath` (as the
/// release archives' file is meant to be), zsh runs the file as the
/// completion function itself: then it must complete, not register.
struct Zsh;

impl EnvCompleter for Zsh {
    fn name(&self) -> &'static str {
        clap_complete::env::Zsh.name()
    }

    fn is(&self, name: &str) -> bool {
        clap_complete::env::Zsh.is(name)
    }

    fn write_registration(
        &self,
        var: &str,
        name: &str,
        bin: &str,
        completer: &str,
        buf: &mut dyn std::io::Write,
    ) -> Result<(), std::io::Error> {
        let mut script = Vec::new();
        clap_complete::env::Zsh.write_registration(var, name, bin, completer, &mut script)?;
        let script = String::from_utf8_lossy(&script);
        let function = format!("_clap_dynamic_completer_{}", name.replace('-', "_"));
        let compdef = format!("compdef {function} {bin}");
        let Some(start) = script.rfind(&compdef) else {
            // Another clap_complete: its script as it is.
            return buf.write_all(script.as_bytes());
        };
        let either = format!(
            "if [[ \"${{funcstack[1]}}\" == \"_{bin}\" ]]; then\n    {function} \"$@\"\nelse\n    {compdef}\nfi"
        );
        buf.write_all(script[..start].as_bytes())?;
        buf.write_all(either.as_bytes())?;
        buf.write_all(script[start + compdef.len()..].as_bytes())
    }

    fn write_complete(
        &self,
        cmd: &mut clap::Command,
        args: Vec<OsString>,
        current_dir: Option<&Path>,
        buf: &mut dyn std::io::Write,
    ) -> Result<(), std::io::Error> {
        clap_complete::env::Zsh.write_complete(cmd, args, current_dir, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Completion offers exactly the subcommands the parser takes (a
    /// renamed argument would also panic here, in `mut_arg`, not at a TAB).
    #[test]
    fn completion_knows_the_commands_the_parser_takes() {
        let mut parser = super::super::command();
        parser.build();
        let mut completing = command();
        completing.build();
        let names = |c: &clap::Command| {
            let mut names: Vec<String> = c.get_subcommands().map(|s| s.get_name().to_string()).collect();
            names.sort();
            names
        };
        assert_eq!(names(&parser), names(&completing));
        assert!(completing.get_subcommands().all(|s| !s.is_hide_set()), "a hidden subcommand is never offered");
    }

    #[test]
    fn every_shell_has_a_script() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Elvish,
            clap_complete::Shell::Fish,
            clap_complete::Shell::PowerShell,
            clap_complete::Shell::Zsh,
        ] {
            let mut out = Vec::new();
            registration(shell, &mut out).unwrap();
            let script = String::from_utf8(out).unwrap();
            assert!(script.contains(COMPLETE) && script.contains(BIN), "{shell}: {script}");
        }
    }

    #[test]
    fn the_zsh_script_completes_from_fpath_and_registers_when_sourced() {
        let mut out = Vec::new();
        registration(clap_complete::Shell::Zsh, &mut out).unwrap();
        let script = String::from_utf8(out).unwrap();
        assert!(script.starts_with("#compdef chitty-secrets\n"), "{script}");
        assert!(script.contains("if [[ \"${funcstack[1]}\" == \"_chitty-secrets\" ]]; then"), "{script}");
        assert!(script.contains("    _clap_dynamic_completer_chitty_secrets \"$@\"\nelse"), "{script}");
        assert!(script.trim_end().ends_with("compdef _clap_dynamic_completer_chitty_secrets chitty-secrets\nfi"));
    }

    #[test]
    fn policies_on_the_line_are_found() {
        let line = |words: &[&str]| -> Vec<OsString> { words.iter().map(OsString::from).collect() };
        let cases: &[(&[&str], Option<&str>)] = &[
            (&["cs", "--", "chitty-secrets", "--policies", "p", "rotate", ""], Some("p")),
            (&["cs", "--", "chitty-secrets", "rotate", "--policies=q/r", "C"], Some("q/r")),
            (&["cs", "--", "chitty-secrets", "rotate", "C"], None),
            (&["cs", "--", "chitty-secrets", "run", "--", "x", "--policies", "p"], None),
            (&["cs", "--", "chitty-secrets", "--policies"], None),
            (&["cs", "--policies", "p"], None),
        ];
        for (words, want) in cases {
            assert_eq!(policies_flag(&line(words)), want.map(PathBuf::from), "{words:?}");
        }
    }
}
