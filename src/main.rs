use std::process::ExitCode;

use clap::Parser;

use chitty_secrets::cli::{self, Cli, actions};
use chitty_secrets::error::{self, exit};
use chitty_secrets::policy::PolicyError;

fn main() -> ExitCode {
    let args = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => ExitCode::from(report(&error)),
    }
}

/// Prints `error:`, the cause chain and a `hint:`; returns the exit code.
fn report(error: &anyhow::Error) -> u8 {
    if let Some(policy) = error.downcast_ref::<PolicyError>() {
        eprintln!("error: {policy}");
        for d in &policy.diagnostics {
            let file = d.file.display().to_string();
            let message = match &d.hint {
                Some(hint) => format!("{} ({hint})", d.message),
                None => d.message.clone(),
            };
            actions::annotate(&actions::Annotation {
                kind: "error",
                title: "policy",
                file: Some(&file),
                line: Some(d.line),
                col: Some(d.col),
                message: &message,
            });
        }
        return exit::USAGE;
    }
    eprintln!("error: {error}");
    for cause in error.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    for hint in error::hints(error) {
        eprintln!("hint: {hint}");
    }
    error::exit_code(error)
}
