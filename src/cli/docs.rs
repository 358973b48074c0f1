//! `completions SHELL` and `man`: generated from the clap definitions.

use clap::CommandFactory;

use super::{Cli, exit};

pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<u8> {
    clap_complete::generate(shell, &mut Cli::command(), "chitty-secrets", &mut std::io::stdout());
    Ok(exit::OK)
}

pub fn man() -> anyhow::Result<u8> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(exit::OK)
}
