//! What a GitHub Actions workflow (or a local action's `action.yml`)
//! reads: every `secrets.NAME`, `secrets['NAME']` and `secrets["NAME"]`
//! inside a `${{ }}` expression, wherever it is (`with:`, `env:`, `run:`,
//! a job's `secrets:`), with its line and column; each job's
//! `environment`; the secrets a reusable workflow takes from its caller
//! (`on.workflow_call.secrets`); and the plain values of `env:` entries.
//!
//! Read line by line, as the text is, so that positions are exact: block
//! mappings and sequences are followed by their indentation, block scalars
//! (`run: |`) are read whole (GitHub evaluates expressions inside them,
//! shell comments included), YAML comments are not. Flow mappings
//! (`env: {A: b}`) are not looked into for plain values.

use std::collections::{BTreeMap, BTreeSet};

use zeroize::Zeroizing;

/// A `secrets.NAME` in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExprRead {
    /// As written (GitHub's names are case-insensitive).
    pub name: String,
    pub line: usize,
    pub col: usize,
    /// The job it is in (`jobs.<id>`), if any.
    pub job: Option<String>,
}

/// An `env:` entry with a plain value (no expression), at its key.
pub struct EnvValue {
    pub name: String,
    pub value: Zeroizing<String>,
    pub line: usize,
    pub col: usize,
}

/// The environment a job names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEnv {
    Named(String),
    /// An expression, or a mapping without a name: any may be meant.
    Dynamic,
}

impl serde::Serialize for JobEnv {
    /// The name, or `*` for one an expression chooses.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            JobEnv::Named(name) => s.serialize_str(name),
            JobEnv::Dynamic => s.serialize_str("*"),
        }
    }
}

#[derive(Default)]
pub struct Scanned {
    pub reads: Vec<ExprRead>,
    pub env_values: Vec<EnvValue>,
    /// Each job's `environment`, where it names one.
    pub environments: BTreeMap<String, JobEnv>,
    /// Secrets a reusable workflow receives from its caller (upper case).
    pub from_caller: BTreeSet<String>,
}

impl Scanned {
    /// The environment of `job`, if it names one.
    pub fn environment_of(&self, job: Option<&str>) -> Option<&JobEnv> {
        job.and_then(|j| self.environments.get(j))
    }
}

pub fn scan(text: &str) -> Scanned {
    let mut out = Scanned::default();
    // The keys above the current line, with the column of each.
    let mut stack: Vec<(usize, String)> = Vec::new();
    // Inside a block scalar: the column of the key (or `-`) that owns it.
    let mut block: Option<usize> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        if let Some(owner) = block {
            if raw.trim().is_empty() || indent > owner {
                expressions(raw, line, job_of(&stack), &mut out.reads);
                continue;
            }
            block = None;
        }
        let content = strip_comment(raw);
        if content.trim().is_empty() {
            continue;
        }
        // Past any `- ` of sequence entries: the column where the node starts.
        let mut col = indent;
        let mut rest = &content[indent..];
        while rest == "-" || rest.starts_with("- ") {
            let after = rest[1..].trim_start_matches(' ');
            col += rest.len() - after.len();
            rest = after;
        }
        match split_key(rest) {
            Some((key, value)) => {
                while stack.last().is_some_and(|(c, _)| *c >= col) {
                    stack.pop();
                }
                structure(&mut out, &stack, &key, value, line, col + 1);
                stack.push((col, key));
                if is_block_indicator(value) {
                    block = Some(col);
                }
            }
            None if is_block_indicator(rest) => block = Some(col.saturating_sub(2)),
            None => {}
        }
        expressions(content, line, job_of(&stack), &mut out.reads);
    }
    out
}

/// What a key line says about the file's structure.
fn structure(out: &mut Scanned, stack: &[(usize, String)], key: &str, value: &str, line: usize, col: usize) {
    let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
    match path.as_slice() {
        ["jobs", job] if key == "environment" => {
            let env =
                if value.is_empty() || value.contains("${{") { JobEnv::Dynamic } else { JobEnv::Named(unquote(value)) };
            out.environments.insert(job.to_string(), env);
        }
        ["jobs", job, "environment"] if key == "name" && !value.is_empty() && !value.contains("${{") => {
            out.environments.insert(job.to_string(), JobEnv::Named(unquote(value)));
        }
        [on, "workflow_call", "secrets"] if is_on(on) => {
            out.from_caller.insert(key.to_ascii_uppercase());
        }
        [.., "env"] => {
            let plain = !value.is_empty()
                && !is_block_indicator(value)
                && !value.starts_with(['&', '*', '{', '['])
                && !value.contains("${{");
            if plain {
                out.env_values.push(EnvValue {
                    name: key.to_string(),
                    value: Zeroizing::new(unquote(value)),
                    line,
                    col,
                });
            }
        }
        _ => {}
    }
}

/// `on` as GitHub reads it (YAML 1.1 would make a bare `on` true).
fn is_on(key: &str) -> bool {
    matches!(key, "on" | "true")
}

fn job_of(stack: &[(usize, String)]) -> Option<String> {
    match stack {
        [(_, jobs), (_, job), ..] if jobs == "jobs" => Some(job.clone()),
        _ => None,
    }
}

fn is_block_indicator(value: &str) -> bool {
    let v = value.trim();
    (v.starts_with('|') || v.starts_with('>'))
        && v[1..].chars().all(|c| c == '-' || c == '+' || c.is_ascii_digit() || c == ' ')
}

/// `key: value` → the key (unquoted) and the value (trimmed); `None` when
/// `s` is no mapping entry.
fn split_key(s: &str) -> Option<(String, &str)> {
    let (key, after) = match s.chars().next()? {
        q @ ('"' | '\'') => {
            let end = s[1..].find(q)? + 1;
            (s[1..end].to_string(), &s[end + 1..])
        }
        '{' | '[' | '#' | '&' | '*' | '!' | '|' | '>' | '%' | '@' | '`' => return None,
        _ => {
            let colon =
                s.match_indices(':').map(|(i, _)| i).find(|&i| s[i + 1..].is_empty() || s[i + 1..].starts_with(' '))?;
            (s[..colon].trim_end().to_string(), &s[colon..])
        }
    };
    let after = after.strip_prefix(':')?;
    if !(after.is_empty() || after.starts_with(' ')) || key.is_empty() {
        return None;
    }
    Some((key, after.trim()))
}

/// The line up to a YAML comment: a `#` at the start or after a space,
/// outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut prev = ' ';
    let mut last_token_char = ' ';
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match quote {
            Some('\'') if c == '\'' => {
                if chars.peek().is_some_and(|(_, n)| *n == '\'') {
                    chars.next();
                } else {
                    quote = None;
                }
            }
            Some('"') if c == '\\' => {
                chars.next();
            }
            Some('"') if c == '"' => quote = None,
            Some(_) => {}
            None if c == '#' && prev.is_whitespace() => return &line[..i],
            None if (c == '\'' || c == '"') && matches!(last_token_char, ' ' | ':' | '-' | '[' | '{' | ',') => {
                quote = Some(c)
            }
            None => {}
        }
        if quote.is_none() && !c.is_whitespace() {
            last_token_char = c;
        }
        prev = c;
    }
    line
}

/// A plain or quoted scalar's text.
fn unquote(value: &str) -> String {
    let v = value.trim();
    if v.len() >= 2 && v.starts_with('\'') && v.ends_with('\'') {
        return v[1..v.len() - 1].replace("''", "'");
    }
    if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') {
        let inner = &v[1..v.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => {}
                },
                (c, false) => out.push(c),
            }
        }
        return out;
    }
    v.to_string()
}

/// Every `secrets.X` inside the `${{ }}` expressions of `text`.
fn expressions(text: &str, line: usize, job: Option<String>, out: &mut Vec<ExprRead>) {
    let mut from = 0;
    while let Some(open) = text[from..].find("${{") {
        let start = from + open + 3;
        let end = text[start..].find("}}").map_or(text.len(), |e| start + e);
        for (offset, name) in secret_refs(&text[start..end]) {
            let col = text[..start + offset].chars().count() + 1;
            out.push(ExprRead { name, line, col, job: job.clone() });
        }
        from = (end + 2).min(text.len());
    }
}

/// The names an expression reads from the `secrets` context, with the
/// byte offset of each `secrets`.
fn secret_refs(expr: &str) -> Vec<(usize, String)> {
    let lower = expr.to_ascii_lowercase();
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    for (i, _) in lower.match_indices("secrets") {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-') {
            continue;
        }
        let rest = &expr[i + "secrets".len()..];
        let name = if let Some(after) = rest.strip_prefix('.') {
            let len = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).unwrap_or(after.len());
            Some(&after[..len])
        } else if let Some(after) = rest.strip_prefix('[') {
            let after = after.trim_start();
            after.chars().next().filter(|q| *q == '\'' || *q == '"').and_then(|q| {
                let inner = &after[1..];
                let end = inner.find(q)?;
                inner[end + 1..].trim_start().starts_with(']').then_some(&inner[..end])
            })
        } else {
            None
        };
        if let Some(name) = name.filter(|n| n.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')) {
            out.push((i, name.to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKFLOW: &str = r#"# reads ${{ secrets.IN_A_COMMENT }}
name: ci
"on":
  push:
  workflow_call:
    secrets:
      PASSED_IN:
        required: true
env:
  NODE_VERSION: "20"
  API_TOKEN: 'plain-value-here' # a comment
jobs:
  build:
    environment: production
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          token: ${{ secrets.GITHUB_TOKEN }}
      - name: deploy
        env:
          KEY: ${{ secrets.DEPLOY_KEY }}
          OTHER: ${{secrets['BRACKETED']}} and ${{ secrets["DOUBLE"] }}
        run: |
          # a shell comment: ${{ secrets.IN_A_SCRIPT }}
          echo "chitty-secrets.yml ${{ toJSON(secrets) }}"
      - run: echo ${{ secrets.passed_in }}
  release:
    environment:
      name: ${{ inputs.env }}
    steps:
      - run: deploy
        env:
          TOKEN: ${{ secrets.RELEASE_TOKEN || 'x' }}
"#;

    #[test]
    fn finds_every_read_with_its_job_and_position() {
        let s = scan(WORKFLOW);
        let got: Vec<(&str, usize, usize, Option<&str>)> =
            s.reads.iter().map(|r| (r.name.as_str(), r.line, r.col, r.job.as_deref())).collect();
        assert_eq!(
            got,
            [
                ("GITHUB_TOKEN", 19, 22, Some("build")),
                ("DEPLOY_KEY", 22, 20, Some("build")),
                ("BRACKETED", 23, 21, Some("build")),
                ("DOUBLE", 23, 52, Some("build")),
                ("IN_A_SCRIPT", 25, 34, Some("build")),
                ("passed_in", 27, 23, Some("build")),
                ("RELEASE_TOKEN", 34, 22, Some("release")),
            ]
        );
        assert_eq!(s.environments["build"], JobEnv::Named("production".into()));
        assert_eq!(s.environments["release"], JobEnv::Dynamic);
        assert_eq!(s.from_caller, BTreeSet::from(["PASSED_IN".to_string()]));
        let env: Vec<(&str, &str, usize, usize)> =
            s.env_values.iter().map(|e| (e.name.as_str(), e.value.as_str(), e.line, e.col)).collect();
        assert_eq!(env, [("NODE_VERSION", "20", 10, 3), ("API_TOKEN", "plain-value-here", 11, 3)]);
    }

    #[test]
    fn comments_and_quotes() {
        assert_eq!(strip_comment("a: b # c"), "a: b ");
        assert_eq!(strip_comment("a: 'b # c' # d"), "a: 'b # c' ");
        assert_eq!(strip_comment("a: \"b \\\" # c\" # d"), "a: \"b \\\" # c\" ");
        assert_eq!(strip_comment("a: b#c"), "a: b#c");
        assert_eq!(strip_comment("  # all"), "  ");
        assert_eq!(strip_comment("run: echo it's # ok"), "run: echo it's ");
        assert_eq!(split_key("key: value"), Some(("key".into(), "value")));
        assert_eq!(split_key("\"on\":"), Some(("on".into(), "")));
        assert_eq!(split_key("url: http://x"), Some(("url".into(), "http://x")));
        assert_eq!(split_key("plain scalar"), None);
        assert_eq!(unquote("'it''s'"), "it's");
        assert_eq!(unquote("\"a\\\"b\""), "a\"b");
    }
}
