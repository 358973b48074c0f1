//! Policy problems with `file:line:col`, the offending line and a caret, and a
//! "did you mean" where a name is close to a known one.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    pub message: String,
    /// The source line and the caret under the span; policies hold no secrets
    /// (values come from the environment or the registry), so showing it is safe.
    pub snippet: Option<(String, usize)>,
    pub hint: Option<crate::error::Hint>,
}

/// A policy file's text and where its lines start, so that a place is
/// found by a binary search (finding it by counting from the top made
/// loading quadratic in the file's size).
pub struct Source<'a> {
    pub file: &'a Path,
    pub text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        let line_starts =
            std::iter::once(0).chain(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1)).collect();
        Source { file, text, line_starts }
    }

    /// The 1-based line and column of a byte offset, and where its line
    /// starts and ends.
    fn locate(&self, offset: usize) -> (usize, usize, Range<usize>) {
        let offset = offset.min(self.text.len());
        let index = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[index];
        let end = self.line_starts.get(index + 1).map_or(self.text.len(), |next| next - 1);
        let col = self.text.get(start..offset).map_or(1, |s| s.chars().count() + 1);
        (index + 1, col, start..end)
    }

    /// Line and column only (for the places the model remembers).
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let (line, col, _) = self.locate(offset);
        (line, col)
    }
}

impl Diagnostic {
    pub fn at(source: &Source<'_>, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        let span = span.unwrap_or(0..0);
        let start = span.start.min(source.text.len());
        let (line, col, extent) = source.locate(start);
        let text = source.text[extent.clone()].trim_end_matches('\r').to_string();
        let width = source.text.get(start..span.end.clamp(start, extent.end)).map_or(1, |s| s.chars().count().max(1));
        let message = message.into();
        let hint = did_you_mean_from_serde(&message).map(crate::error::Hint::from);
        Diagnostic { file: source.file.to_path_buf(), line, col, message, snippet: Some((text, width)), hint }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(crate::error::Hint::new(hint));
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}:{}:{}: {}", self.file.display(), self.line, self.col, self.message)?;
        if let Some((text, width)) = &self.snippet {
            let gutter = self.line.to_string().len();
            writeln!(f, "{:gutter$} |", "")?;
            writeln!(f, "{} | {}", self.line, text)?;
            writeln!(f, "{:gutter$} | {}{}", "", " ".repeat(self.col - 1), "^".repeat(*width))?;
        }
        if let Some(hint) = &self.hint {
            // Under the snippet's gutter, as compilers show it.
            let indent = format!("{:w$} = ", "", w = self.line.to_string().len());
            write!(f, "{}", hint.render(&indent))?;
        }
        Ok(())
    }
}

/// serde says "unknown field `x`, expected one of `a`, `b`" (or "unknown
/// variant"); turn that into "did you mean `b`?" when one is close.
fn did_you_mean_from_serde(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `").or_else(|| message.strip_prefix("unknown variant `"))?;
    let (given, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    closest(given, candidates.iter().copied()).map(|c| format!("did you mean `{c}`?"))
}

/// The candidate nearest to `given` by edit distance, if it is near enough to
/// be a typo.
pub fn closest<'a>(given: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::levenshtein(given, c), c))
        .filter(|(d, c)| *d <= (c.len().max(given.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_line_and_column_with_caret() {
        let src = "[tokens.A]\nissuer = \"x\"\nrotate_evry = \"9d\"\n";
        let start = src.find("rotate_evry").unwrap();
        let d = Diagnostic::at(
            &Source::new(Path::new("p.toml"), src),
            Some(start..start + 11),
            "unknown field `rotate_evry`, expected one of `issuer`, `rotate_every`, `ttl`",
        );
        let text = d.to_string();
        assert!(text.starts_with("error: p.toml:3:1: unknown field"), "{text}");
        assert!(text.contains("3 | rotate_evry = \"9d\""), "{text}");
        assert!(text.contains("  | ^^^^^^^^^^^\n"), "{text}");
        assert!(text.contains("did you mean `rotate_every`?"), "{text}");
    }

    #[test]
    fn closest_ignores_far_names() {
        assert_eq!(closest("dotnev", ["dotenv", "github"].into_iter()), Some("dotenv"));
        assert_eq!(closest("zzz", ["dotenv", "github"].into_iter()), None);
    }
}

#[cfg(test)]
mod source_tests {
    use super::*;

    #[test]
    fn places_are_found_on_every_line_including_the_last() {
        let text = "a = 1\r\nbé = \"x\"\n\nlast = 2";
        let src = Source::new(Path::new("p.toml"), text);
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(text.find("= \"x\"").unwrap()), (2, 4), "columns count characters");
        assert_eq!(src.line_col(text.find("last").unwrap()), (4, 1));
        assert_eq!(src.line_col(text.len()), (4, 9));
        let d = Diagnostic::at(&src, Some(text.find("a = 1").unwrap()..text.find("a = 1").unwrap() + 1), "m");
        assert_eq!(d.snippet, Some(("a = 1".to_string(), 1)), "the CR is not part of the line");
    }
}
