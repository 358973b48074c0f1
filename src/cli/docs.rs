//! `man`: generated from the clap definitions.

use std::io::Write;

use clap::CommandFactory;

use super::{Cli, exit};

/// One self-contained page: the usual sections, and the commands listed
/// in it (no `chitty-secrets-init(1)` references to pages that do not exist).
pub fn man() -> anyhow::Result<u8> {
    let command = Cli::command();
    let page = clap_mangen::Man::new(command.clone());
    let mut out = Vec::new();
    page.render_title(&mut out)?;
    page.render_name_section(&mut out)?;
    page.render_synopsis_section(&mut out)?;
    page.render_description_section(&mut out)?;
    page.render_options_section(&mut out)?;
    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in command.get_subcommands() {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        writeln!(out, ".TP\n\\fB{}\\fR\n{}", sub.get_name(), about.replace('\\', "\\\\"))?;
    }
    out.extend_from_slice(b".PP\n`chitty-secrets COMMAND --help` gives each command's options.\n");
    page.render_extra_section(&mut out)?;
    page.render_version_section(&mut out)?;
    emit(&out)
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
pub(super) fn emit(bytes: &[u8]) -> anyhow::Result<u8> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(exit::OK),
    }
}
