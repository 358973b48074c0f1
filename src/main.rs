use std::process::ExitCode;

use clap::FromArgMatches;

use chitty_secrets::cli::{self, Cli, actions};
use chitty_secrets::error::{self, exit};
use chitty_secrets::policy::PolicyError;

/// Loading a large registry is tens of thousands of small allocations
/// (TOML documents, records); glibc's allocator grew slower per token as
/// the heap grew (10,000 tokens took 10.3x the time of 1,000, against
/// 9.1x with mimalloc, which is also ~20% faster at both sizes).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // A shell asking for candidates at a TAB: answered before anything else.
    cli::completions::complete_from_env();
    quiet_on_closed_pipe();
    let args = match Cli::from_arg_matches(&cli::command().get_matches()) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    chitty_secrets::log::init(args.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let json = args.wants_json();
    let result = runtime.block_on(cli::run(args));
    tracing::debug!("finished");
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            if json {
                println!("{}", json_error(&error));
            }
            ExitCode::from(report(&error))
        }
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

/// `{"error": {"message", "causes", "hints", "problems"?}}`: what `--json`
/// prints on stdout when the command fails (the human text still goes to
/// stderr). Policy problems come with their file, line and column.
fn json_error(error: &anyhow::Error) -> serde_json::Value {
    let problems = error.downcast_ref::<PolicyError>().map(|p| {
        p.diagnostics
            .iter()
            .map(|d| {
                serde_json::json!({"file": d.file, "line": d.line, "col": d.col, "message": d.message, "hint": d.hint})
            })
            .collect::<Vec<_>>()
    });
    let message = match error.downcast_ref::<PolicyError>() {
        Some(p) => format!(
            "{} problem{} in the policies",
            p.diagnostics.len(),
            if p.diagnostics.len() == 1 { "" } else { "s" }
        ),
        None => error.to_string(),
    };
    let mut body = serde_json::json!({
        "message": message,
        "causes": error.chain().skip(1).map(ToString::to_string).collect::<Vec<_>>(),
        "hints": error::hints(error),
        "exit_code": error::exit_code(error),
    });
    if let Some(problems) = problems {
        body["problems"] = problems.into();
        body["exit_code"] = exit::USAGE.into();
    }
    serde_json::json!({ "error": body })
}

/// Prints `error:`, the cause chain and a `hint:`; returns the exit code.
fn report(error: &anyhow::Error) -> u8 {
    // The reader went away (`status | head -1`): stop quietly, as a
    // `println!` that met it does (see `quiet_on_closed_pipe`).
    if error
        .chain()
        .any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe))
    {
        return exit::OK;
    }
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
        hint.print();
    }
    error::exit_code(error)
}
