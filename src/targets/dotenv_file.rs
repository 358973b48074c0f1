//! A lossless .env editor. Changing one key rewrites only that key's value
//! bytes: comments, blank lines, order, `export ` prefixes, the quoting of
//! every other line, CRLF line endings and a BOM all stay as they were.
//!
//! Values are written in the one form that godotenv (gh), dotenv (wrangler)
//! and dotenvy (Rust) all read back identically: unquoted when the value is
//! `[A-Za-z0-9_./:@+-]*`, else single-quoted, else double-quoted with `\n`,
//! `\"` and `\\` escapes; a value none of them can carry is refused.

use std::ops::Range;

use zeroize::Zeroizing;

use crate::secret::Secret;

const BOM: &str = "\u{feff}";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValueError {
    #[error(
        "the value for {key} cannot be written to a .env file so that every parser reads it back the same (it mixes a single quote with `$`, a backslash or a line break, or holds control characters)"
    )]
    NotCarriable { key: String },
}

/// One `KEY=VALUE` assignment found in the file.
#[derive(Debug, Clone)]
struct Assignment {
    key: String,
    /// The value as written, quotes included.
    value: Range<usize>,
    line: usize,
}

/// A .env file's text, held zeroized: it contains secrets.
pub struct DotenvFile {
    text: Zeroizing<String>,
    bom: bool,
    crlf: bool,
}

impl DotenvFile {
    pub fn parse(bytes: &[u8]) -> Result<Self, std::str::Utf8Error> {
        let text = std::str::from_utf8(bytes)?;
        let (bom, text) = match text.strip_prefix(BOM) {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let crlf = text.contains("\r\n");
        Ok(DotenvFile { text: Zeroizing::new(text.to_string()), bom, crlf })
    }

    pub fn empty() -> Self {
        DotenvFile { text: Zeroizing::new(String::new()), bom: false, crlf: false }
    }

    pub fn render(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.text.len() + 3));
        if self.bom {
            out.extend_from_slice(BOM.as_bytes());
        }
        out.extend_from_slice(self.text.as_bytes());
        out
    }

    /// Every value assigned to `key`, with its 1-based line, in file order.
    pub fn get_all(&self, key: &str) -> Vec<(Secret, usize)> {
        assignments(&self.text)
            .into_iter()
            .filter(|a| a.key == key)
            .map(|a| (Secret::new(unquote(&self.text[a.value.clone()])), a.line))
            .collect()
    }

    /// Every key with its value and line (for `import` and checks).
    pub fn entries(&self) -> Vec<(String, Secret, usize)> {
        assignments(&self.text)
            .into_iter()
            .map(|a| {
                let value = Secret::new(unquote(&self.text[a.value.clone()]));
                (a.key, value, a.line)
            })
            .collect()
    }

    /// Sets `key` to `value` in every assignment of it (so parsers that take
    /// the first and those that take the last agree), or appends it.
    pub fn set(&mut self, key: &str, value: &Secret) -> Result<(), ValueError> {
        let encoded = encode(value.expose()).ok_or_else(|| ValueError::NotCarriable { key: key.to_string() })?;
        let found: Vec<Range<usize>> =
            assignments(&self.text).into_iter().filter(|a| a.key == key).map(|a| a.value).collect();
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
        Ok(())
    }
}

/// Whether a value can be written to a .env file so every parser agrees.
pub fn can_carry(value: &Secret) -> bool {
    encode(value.expose()).is_some()
}

/// The value as the writer will put it in the file, or `None` if no form is
/// read back identically by every common parser.
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
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return None;
    }
    // Single quotes are literal everywhere, but a backslash before the
    // closing quote reads as an escape in some parsers.
    if !value.contains(['\'', '\n', '\\']) {
        return Some(Zeroizing::new(format!("'{value}'")));
    }
    // Double quotes expand `$NAME` in dotenv and dotenvy: nothing is safe.
    if value.contains('$') {
        return None;
    }
    let mut out = Zeroizing::new(String::with_capacity(value.len() + 8));
    out.push('"');
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    Some(out)
}

/// Reads a value as written (quotes included) the way dotenvy does for the
/// forms [`encode`] writes, and sensibly for hand-written ones.
fn unquote(raw: &str) -> String {
    if raw.len() >= 2 && raw.starts_with('\'') && raw.ends_with('\'') {
        return raw[1..raw.len() - 1].to_string();
    }
    if raw.len() >= 2 && raw.starts_with('"') && raw.ends_with('"') {
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw[1..raw.len() - 1].chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        }
        return out;
    }
    raw.to_string()
}

/// Finds every assignment with the byte range of its value. Lines that are
/// not assignments (comments, blanks, junk) are simply not listed.
fn assignments(text: &str) -> Vec<Assignment> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut line = 1;
    while pos < bytes.len() {
        let line_end = text[pos..].find('\n').map_or(bytes.len(), |i| pos + i);
        let start_line = line;
        let mut next = line_end + 1;
        if let Some((key, value_start)) = assignment_head(text, pos, line_end) {
            let value_end = match bytes.get(value_start) {
                Some(&q @ (b'\'' | b'"')) => closing_quote(bytes, value_start, q).map(|end| end + 1),
                _ => None,
            };
            let value = match value_end {
                Some(end) => {
                    // A quoted value may span lines; resume after its line.
                    next = text[end..].find('\n').map_or(bytes.len(), |i| end + i) + 1;
                    value_start..end
                }
                None => value_start..unquoted_end(text, value_start, line_end),
            };
            out.push(Assignment { key: key.to_string(), value, line: start_line });
        }
        line += text[pos..next.min(bytes.len())].matches('\n').count();
        pos = next;
    }
    out
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
