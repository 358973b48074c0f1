use std::process::ExitCode;

use clap::FromArgMatches;

use chitty_secrets::cli::{self, Cli, actions};
use chitty_secrets::error::{self, exit};
use chitty_secrets::policy::PolicyError;

fn main() -> ExitCode {
    quiet_on_closed_pipe();
    let args = match Cli::from_arg_matches(&cli::command().get_matches()) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
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

/// `chitty-secrets status | head -1`: when the reader goes away, stop
/// quietly with exit 0, as other command-line tools do, instead of
/// panicking in `println!` (Rust ignores SIGPIPE, so writes fail instead).
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let text = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if text.contains("Broken pipe") || text.contains("BrokenPipe") {
            std::process::exit(0);
        }
        default(info);
    }));
}

/// Prints `error:`, the cause chain and a `hint:`; returns the exit code.
fn report(error: &anyhow::Error) -> u8 {
    if let Some(policy) = error.downcast_ref::<PolicyError>() {
        eprintln!("{policy}");
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
