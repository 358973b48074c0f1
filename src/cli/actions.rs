//! GitHub Actions: masking, annotations and the job summary. Active only
//! when `GITHUB_ACTIONS=true`.

use std::io::Write;

use crate::env_vars;

pub fn active() -> bool {
    std::env::var(env_vars::GITHUB_ACTIONS).is_ok_and(|v| v == "true")
}

/// Masks a value in the job log before it is printed.
pub fn mask(value: &str) {
    if active() {
        for line in value.lines().filter(|l| !l.trim().is_empty()) {
            println!("::add-mask::{line}");
        }
    }
}

/// An annotation on a file (shown on the pull request).
pub struct Annotation<'a> {
    pub kind: &'a str,
    pub title: &'a str,
    pub file: Option<&'a str>,
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub message: &'a str,
}

pub fn annotate(a: &Annotation<'_>) {
    if !active() {
        return;
    }
    let mut props = vec![format!("title={}", escape_property(a.title))];
    if let Some(file) = a.file {
        props.push(format!("file={}", escape_property(file)));
    }
    if let Some(line) = a.line {
        props.push(format!("line={line}"));
    }
    if let Some(col) = a.col {
        props.push(format!("col={col}"));
    }
    println!("::{} {}::{}", a.kind, props.join(","), escape_data(a.message));
}

/// Appends markdown to the job summary (`$GITHUB_STEP_SUMMARY`).
pub fn summary(markdown: &str) {
    if !active() {
        return;
    }
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return;
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(markdown.as_bytes()));
    if let Err(e) = written {
        eprintln!("warning: cannot write the job summary: {e}");
    }
}

/// Workflow commands need %, CR and LF escaped in data…
fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// …and also `:` and `,` in properties.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// A markdown table cell: no pipes or line breaks.
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}
