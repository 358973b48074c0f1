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
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn at(file: &Path, source: &str, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        let span = span.unwrap_or(0..0);
        let start = span.start.min(source.len());
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..].find('\n').map_or(source.len(), |i| start + i);
        let line = source[..start].matches('\n').count() + 1;
        let col = source[line_start..start].chars().count() + 1;
        let text = source[line_start..line_end].trim_end_matches('\r').to_string();
        let width = source[start..span.end.clamp(start, line_end)].chars().count().max(1);
        let message = message.into();
        let hint = did_you_mean_from_serde(&message);
        Diagnostic { file: file.to_path_buf(), line, col, message, snippet: Some((text, width)), hint }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
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
            writeln!(f, "{:w$} = hint: {hint}", "", w = self.line.to_string().len())?;
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
            Path::new("p.toml"),
            src,
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
