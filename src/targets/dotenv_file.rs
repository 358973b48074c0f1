//! A lossless .env editor. Changing one key rewrites only that key's value
//! bytes: comments, blank lines, order, `export ` prefixes, the quoting of
//! every other line, CRLF line endings and a BOM all stay as they were. A
//! line whose extent is in doubt (a quote that does not close, text after a
//! closing quote) is never edited, nor is anything after an unclosed quote:
//! the edit is refused with the line to fix.
//!
//! Values are written in the one form that godotenv (gh), npm dotenv
//! (wrangler), python-dotenv and dotenvy all read back identically (proved
//! against the real parsers by `tests/it/parsers.rs`):
//! - unquoted when the value is `[A-Za-z0-9_./:@+-]*`;
//! - else single-quoted, when it has no `'`, no line break, no `\\` pair,
//!   no trailing `\` and no `${` (python-dotenv expands `${…}` even there);
//! - else double-quoted with `\n` for line breaks, when it has no `"`, `\`
//!   or `$` (escapes and expansion differ between the parsers);
//! - else it is refused.
//!
//! The reader is as strict: a hand-written value the four parsers would read
//! differently is [`Unreadable::Disputed`], never guessed at.

use std::collections::HashMap;
use std::ops::Range;

use zeroize::Zeroizing;

use crate::secret::Secret;

const BOM: &str = "\u{feff}";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValueError {
    #[error(
        "the value for {key} has no .env form that gh (godotenv), wrangler (npm dotenv), python-dotenv and dotenvy all read back the same (it holds `${{`, control characters, or a quote, `$`, backslash or line break that no quoting carries for all four)"
    )]
    NotCarriable { key: String },
    /// The file was left as it was: where `key`'s value ends is in doubt.
    #[error("line {line}: {why}, so {key} was not written")]
    Malformed { key: String, line: usize, why: Unreadable },
}

/// Why a value in the file has no one reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("a {quote} quote opens and never closes")]
    Unclosed { quote: char },
    #[error("there is text after the closing quote")]
    Trailing,
    #[error("it follows line {line}, whose quote never closes (parsers disagree on where that value ends)")]
    AfterUnclosed { line: usize },
    #[error("it is written in a form that gh, wrangler, python-dotenv and dotenvy read differently")]
    Disputed,
}

impl Unreadable {
    /// Whether the bytes of the value are in doubt (an edit could reach into
    /// another assignment), not only their meaning.
    fn extent_in_doubt(self) -> bool {
        !matches!(self, Unreadable::Disputed)
    }

    /// The line a user must fix.
    fn line_to_fix(self, own: usize) -> usize {
        match self {
            Unreadable::AfterUnclosed { line } => line,
            _ => own,
        }
    }
}

/// One `KEY=VALUE` assignment found in the file.
#[derive(Debug, Clone)]
struct Assignment {
    key: String,
    /// The value as written, quotes included.
    value: Range<usize>,
    line: usize,
    /// Set when the value has no one reading (see [`Unreadable`]).
    problem: Option<Unreadable>,
}

/// An assignment of a key: its line and value, or why it has none.
pub struct Found {
    pub line: usize,
    pub value: Result<Secret, Unreadable>,
}

/// A .env file's text, held zeroized: it contains secrets.
pub struct DotenvFile {
    text: Zeroizing<String>,
    bom: bool,
    crlf: bool,
    /// The assignments, by key, parsed once on first look (a check of a
    /// file holding thousands of keys looks each one up).
    index: std::sync::OnceLock<HashMap<String, Vec<Assignment>>>,
}

impl DotenvFile {
    pub fn parse(bytes: &[u8]) -> Result<Self, std::str::Utf8Error> {
        let text = std::str::from_utf8(bytes)?;
        let (bom, text) = match text.strip_prefix(BOM) {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let crlf = text.contains("\r\n");
        Ok(DotenvFile { text: Zeroizing::new(text.to_string()), bom, crlf, index: std::sync::OnceLock::new() })
    }

    pub fn empty() -> Self {
        DotenvFile { text: Zeroizing::new(String::new()), bom: false, crlf: false, index: std::sync::OnceLock::new() }
    }

    pub fn render(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.text.len() + 3));
        if self.bom {
            out.extend_from_slice(BOM.as_bytes());
        }
        out.extend_from_slice(self.text.as_bytes());
        out
    }

    /// Every assignment of `key`, in file order.
    pub fn get_all(&self, key: &str) -> Vec<Found> {
        let index = self.index.get_or_init(|| {
            let mut index: HashMap<String, Vec<Assignment>> = HashMap::new();
            for a in assignments(&self.text) {
                index.entry(a.key.clone()).or_default().push(a);
            }
            index
        });
        index.get(key).map(|all| all.iter().map(|a| self.found(a)).collect()).unwrap_or_default()
    }

    /// Every key with its value (or why it has none) and 1-based line.
    pub fn entries(&self) -> Vec<(String, Found)> {
        assignments(&self.text).into_iter().map(|a| (a.key.clone(), self.found(&a))).collect()
    }

    fn found(&self, a: &Assignment) -> Found {
        let value = match a.problem {
            Some(p) => Err(p),
            None => read_value(&self.text[a.value.clone()]).map(Secret::new),
        };
        Found { line: a.line, value }
    }

    /// Sets `key` to `value` in every assignment of it (so parsers that take
    /// the first and those that take the last agree), or appends it.
    pub fn set(&mut self, key: &str, value: &Secret) -> Result<(), ValueError> {
        let encoded = encode(value.expose()).ok_or_else(|| ValueError::NotCarriable { key: key.to_string() })?;
        let all = assignments(&self.text);
        let malformed = |line: usize, why: Unreadable| ValueError::Malformed { key: key.to_string(), line, why };
        for a in all.iter().filter(|a| a.key == key) {
            if let Some(why) = a.problem.filter(|p| p.extent_in_doubt()) {
                return Err(malformed(why.line_to_fix(a.line), why));
            }
        }
        // Appending after an unclosed quote could land inside its value.
        if let Some(unclosed) = all.iter().find(|a| matches!(a.problem, Some(Unreadable::Unclosed { .. })))
            && let Some(why) = unclosed.problem
            && !all.iter().any(|a| a.key == key)
        {
            return Err(malformed(unclosed.line, why));
        }
        let found: Vec<Range<usize>> = all.into_iter().filter(|a| a.key == key).map(|a| a.value).collect();
        let mut text = Zeroizing::new(String::with_capacity(self.text.len() + encoded.len() + key.len() + 4));
        if found.is_empty() {
            text.push_str(&self.text);
            let newline = if self.crlf { "\r\n" } else { "\n" };
            if !text.is_empty() && !text.ends_with('\n') {
                text.push_str(newline);
            }
            text.push_str(key);
            text.push('=');
            text.push_str(&encoded);
            text.push_str(newline);
        } else {
            let mut at = 0;
            for range in found {
                text.push_str(&self.text[at..range.start]);
                text.push_str(&encoded);
                // `KEY= # note` had an empty value: keep the comment a comment.
                if self.text[range.end..].starts_with('#') {
                    text.push(' ');
                }
                at = range.end;
            }
            text.push_str(&self.text[at..]);
        }
        self.text = text;
        self.index = std::sync::OnceLock::new();
        Ok(())
    }
}

/// Whether a value can be written to a .env file so every parser agrees.
pub fn can_carry(value: &Secret) -> bool {
    encode(value.expose()).is_some()
}

/// The value as the writer will put it in the file, or `None` if no form is
/// read back identically by every common parser (see the module's rules).
fn encode(value: &str) -> Option<Zeroizing<String>> {
    // An empty value is written `''`: bare, `KEY= # note` would leave the
    // comment where the value starts, which parsers read differently.
    if value.is_empty() {
        return Some(Zeroizing::new("''".to_string()));
    }
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:@+-".contains(c);
    if value.chars().all(plain) {
        return Some(Zeroizing::new(value.to_string()));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') || value.contains("${") {
        return None;
    }
    if !value.contains(['\'', '\n']) && !value.contains("\\\\") && !value.ends_with('\\') {
        return Some(Zeroizing::new(format!("'{value}'")));
    }
    if value.contains(['"', '\\', '$']) {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(value.len() + 8));
    out.push('"');
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    Some(out)
}

/// Reads a value as written (quotes included), when the four parsers agree
/// on what it is: the inverse of [`encode`], and the same rules for values
/// written by hand (a line break may be written as is inside quotes).
fn read_value(raw: &str) -> Result<String, Unreadable> {
    let quoted = |q: char| raw.len() >= 2 && raw.starts_with(q) && raw.ends_with(q);
    if quoted('\'') {
        let inner = &raw[1..raw.len() - 1];
        if inner.contains("\\\\") || inner.ends_with('\\') || inner.contains("${") {
            return Err(Unreadable::Disputed);
        }
        return Ok(inner.to_string());
    }
    if quoted('"') {
        let inner = &raw[1..raw.len() - 1];
        if inner.contains(['"', '$']) || inner.replace("\\n", "").contains('\\') {
            return Err(Unreadable::Disputed);
        }
        return Ok(inner.replace("\\n", "\n"));
    }
    // dotenvy refuses blanks inside a bare value; npm dotenv ends it at `#`.
    if raw.contains(['\'', '"', '`', '\\', '$', '#', ' ', '\t']) {
        return Err(Unreadable::Disputed);
    }
    Ok(raw.to_string())
}

/// Finds every assignment with the byte range of its value. Lines that are
/// not assignments (comments, blanks, junk) are simply not listed.
fn assignments(text: &str) -> Vec<Assignment> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut line = 1;
    // After a quote that never closes, where any value ends is in doubt.
    let mut unclosed: Option<usize> = None;
    while pos < bytes.len() {
        let line_end = text[pos..].find('\n').map_or(bytes.len(), |i| pos + i);
        let start_line = line;
        let mut next = line_end + 1;
        if let Some((key, value_start)) = assignment_head(text, pos, line_end) {
            let (value, mut problem) = match bytes.get(value_start) {
                Some(&q @ (b'\'' | b'"')) => match closing_quote(bytes, value_start, q) {
                    Some(end) => {
                        let eol = text[end..].find('\n').map_or(bytes.len(), |i| end + i);
                        if !only_comment_after(&text[end + 1..eol]) {
                            // `K='a'b`, or a quote that "closes" inside a later
                            // line's text: where the value ends is in doubt.
                            if eol == line_end {
                                (value_start..end + 1, Some(Unreadable::Trailing))
                            } else {
                                (
                                    value_start..trim_cr(text, value_start, line_end),
                                    Some(Unreadable::Unclosed { quote: q.into() }),
                                )
                            }
                        } else {
                            // A quoted value may span lines; resume after its line.
                            next = eol + 1;
                            (value_start..end + 1, None)
                        }
                    }
                    None => (
                        value_start..trim_cr(text, value_start, line_end),
                        Some(Unreadable::Unclosed { quote: q.into() }),
                    ),
                },
                _ => {
                    let end = unquoted_end(text, value_start, line_end);
                    // `K= # note`: empty to some parsers, `# note` to others.
                    let disputed = end == value_start && bytes.get(value_start) == Some(&b'#');
                    (value_start..end, disputed.then_some(Unreadable::Disputed))
                }
            };
            if let Some(line) = unclosed {
                problem = problem.or(Some(Unreadable::AfterUnclosed { line }));
            }
            if matches!(problem, Some(Unreadable::Unclosed { .. })) {
                unclosed.get_or_insert(start_line);
            }
            out.push(Assignment { key: key.to_string(), value, line: start_line, problem });
        }
        line += text[pos..next.min(bytes.len())].matches('\n').count();
        pos = next;
    }
    out
}

/// Whether what follows a closing quote on its line is blanks and at most
/// a comment.
fn only_comment_after(rest: &str) -> bool {
    let rest = rest.strip_suffix('\r').unwrap_or(rest);
    let trimmed = rest.trim_start_matches([' ', '\t']);
    // dotenvy wants a blank before the `#`.
    trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < rest.len())
}

fn trim_cr(text: &str, start: usize, line_end: usize) -> usize {
    if line_end > start && text.as_bytes()[line_end - 1] == b'\r' { line_end - 1 } else { line_end }
}

/// `[export ]KEY = ` at the start of a line: the key and where its value starts.
fn assignment_head(text: &str, start: usize, end: usize) -> Option<(&str, usize)> {
    let line = &text[start..end];
    let trimmed = line.trim_start_matches([' ', '\t']);
    let mut offset = start + (line.len() - trimmed.len());
    let mut rest = trimmed;
    if let Some(after) = rest.strip_prefix("export")
        && after.starts_with([' ', '\t'])
    {
        let after_ws = after.trim_start_matches([' ', '\t']);
        offset += rest.len() - after_ws.len();
        rest = after_ws;
    }
    let key_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || "_.-".contains(c))).unwrap_or(rest.len());
    if key_len == 0 {
        return None;
    }
    let key = &rest[..key_len];
    let after_key = &rest[key_len..];
    let eq = after_key.trim_start_matches([' ', '\t']);
    let after_eq = eq.strip_prefix('=')?;
    let value = after_eq.trim_start_matches([' ', '\t']);
    let value_start = offset + key_len + (after_key.len() - value.len());
    Some((key, value_start))
}

fn closing_quote(bytes: &[u8], open: usize, quote: u8) -> Option<usize> {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quote == b'"' => i += 2,
            b if b == quote => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// An unquoted value ends at the line end (before `\r`) or at a `#` that
/// follows a blank (a comment), with trailing blanks trimmed.
fn unquoted_end(text: &str, start: usize, line_end: usize) -> usize {
    let raw = &text[start..line_end];
    let raw = raw.strip_suffix('\r').unwrap_or(raw);
    let bytes = raw.as_bytes();
    let blank_before = |i: usize| {
        let b = if i == 0 { text.as_bytes()[start - 1] } else { bytes[i - 1] };
        b == b' ' || b == b'\t'
    };
    let end = (0..bytes.len()).find(|&i| bytes[i] == b'#' && blank_before(i)).unwrap_or(bytes.len());
    start + raw[..end].trim_end_matches([' ', '\t']).len()
}

#[cfg(test)]
mod tests;
