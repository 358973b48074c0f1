//! The debug log, on stderr: `-v` (debug), `-vv` (trace), or
//! `CHITTY_SECRETS_LOG=debug` (any of `error`, `warn`, `info`, `debug`,
//! `trace`). It shows each request to a service (method, URL, status,
//! duration, attempt, rate-limit headers, sizes) and each decision of the
//! engine — never a value, a token or a header that carries one: only this
//! crate's own events are shown (an HTTP library's trace would print
//! headers), and URLs are shown without credentials.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The variable that sets the level when no `-v` is given.
pub const ENV: &str = "CHITTY_SECRETS_LOG";

/// Starts the log at the level `-v`/`-vv` or [`ENV`] asks for; off without
/// either. An unknown level in [`ENV`] is said, and the log stays off.
pub fn init(verbose: u8) {
    let level = match verbose {
        0 => match std::env::var(ENV).ok().filter(|v| !v.is_empty()) {
            None => return,
            Some(text) => match text.trim().to_ascii_lowercase().parse::<LevelFilter>() {
                Ok(level) => level,
                Err(_) => {
                    eprintln!("warning: {ENV}={text} is not a level (error, warn, info, debug, trace): no debug log");
                    return;
                }
            },
        },
        1 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    use std::io::IsTerminal;
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let only_ours = Targets::new().with_target(env!("CARGO_CRATE_NAME"), level);
    let _ = tracing_subscriber::registry().with(layer).with(only_ours).try_init();
}

/// `url` as the log shows it: no user or password, and the value of any
/// query parameter whose name could carry a secret replaced by `***`.
pub fn shown_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else { return "(a URL that does not parse)".into() };
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let lower = k.to_ascii_lowercase();
                let secret =
                    ["token", "key", "secret", "password", "sig", "auth", "code"].iter().any(|s| lower.contains(s));
                (k.into_owned(), if secret { "***".to_string() } else { v.into_owned() })
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_what_could_be_a_credential() {
        assert_eq!(
            shown_url("https://user:pw@api.example.com/v1/x?state=open&access_token=abc&per_page=100"),
            "https://api.example.com/v1/x?state=open&access_token=***&per_page=100"
        );
        assert_eq!(shown_url("http://127.0.0.1:8080/repos/o/r"), "http://127.0.0.1:8080/repos/o/r");
    }
}
