//! A small JSON-with-comments reader that keeps where each value is, for
//! `wrangler.json` / `wrangler.jsonc` (comments and trailing commas, as
//! wrangler accepts them). serde_json gives no positions, and findings
//! point at lines.

/// A value and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub at: usize,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    /// A number, `true`, `false` or `null`: never a secret we look at.
    Other,
    Arr(Vec<Node>),
    /// Members in file order, each with the offset of its key.
    Obj(Vec<(String, usize, Node)>),
}

impl Node {
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Obj(members) => members.iter().rev().find(|(k, _, _)| k == key).map(|(_, _, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Arr(items) => items,
            _ => &[],
        }
    }

    pub fn members(&self) -> &[(String, usize, Node)] {
        match &self.value {
            Value::Obj(members) => members,
            _ => &[],
        }
    }
}

/// Why a text is not JSONC, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub at: usize,
    pub message: String,
}

/// Deeper than this is refused (no stack overflow on a hostile file).
const MAX_DEPTH: usize = 128;

pub fn parse(text: &str) -> Result<Node, ParseError> {
    let mut p = Parser { text, pos: 0 };
    p.skip()?;
    let node = p.value(0)?;
    p.skip()?;
    if p.pos < text.len() {
        return Err(p.error("text after the end of the document"));
    }
    Ok(node)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> ParseError {
        ParseError { at: self.pos, message: message.to_string() }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// Whitespace and comments.
    fn skip(&mut self) -> Result<(), ParseError> {
        loop {
            let rest = &self.text[self.pos..];
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("//") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if let Some(comment) = trimmed.strip_prefix("/*") {
                let end = comment.find("*/").ok_or_else(|| self.error("a comment is not closed"))?;
                self.pos += end + 4;
            } else {
                return Ok(());
            }
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nested too deeply"));
        }
        let at = self.pos;
        let value = match self.peek() {
            Some(b'{') => self.object(depth)?,
            Some(b'[') => self.array(depth)?,
            Some(b'"') => Value::Str(self.string()?),
            Some(c) if c == b'-' || c.is_ascii_alphanumeric() => {
                let len = self.text[self.pos..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
                    .unwrap_or(self.text.len() - self.pos);
                let word = &self.text[self.pos..self.pos + len];
                let number = word.parse::<f64>().is_ok() && !word.starts_with(['i', 'I', 'n', 'N']);
                if !(number || matches!(word, "true" | "false" | "null")) {
                    return Err(self.error("expected a value"));
                }
                self.pos += len;
                Value::Other
            }
            Some(_) => return Err(self.error("expected a value")),
            None => return Err(self.error("the document ends where a value should be")),
        };
        Ok(Node { at, value })
    }

    fn object(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.pos += 1;
        let mut members = Vec::new();
        loop {
            self.skip()?;
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Obj(members));
                }
                Some(b'"') => {}
                _ => return Err(self.error("expected a quoted key or `}`")),
            }
            let key_at = self.pos;
            let key = self.string()?;
            self.skip()?;
            if self.peek() != Some(b':') {
                return Err(self.error("expected `:` after a key"));
            }
            self.pos += 1;
            self.skip()?;
            let value = self.value(depth + 1)?;
            members.push((key, key_at, value));
            self.skip()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {}
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, ParseError> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            self.skip()?;
            if self.peek() == Some(b']') {
                self.pos += 1;
                return Ok(Value::Arr(items));
            }
            items.push(self.value(depth + 1)?);
            self.skip()?;
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {}
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        let mut chars = self.text[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    match e {
                        '"' => out.push('"'),
                        '\\' => out.push('\\'),
                        '/' => out.push('/'),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            let hex: String = chars.by_ref().take(4).map(|(_, c)| c).collect();
                            let unit = u32::from_str_radix(&hex, 16)
                                .map_err(|_| ParseError { at: self.pos + i, message: "a bad \\u escape".into() })?;
                            // A surrogate pair arrives as two escapes; a
                            // lone half becomes U+FFFD (never a secret's
                            // name anyway).
                            out.push(char::from_u32(unit).unwrap_or('\u{fffd}'));
                        }
                        _ => return Err(ParseError { at: self.pos + i, message: "an unknown escape".into() }),
                    }
                }
                c => out.push(c),
            }
        }
        self.pos = start;
        Err(self.error("a string is not closed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_comments_trailing_commas_and_positions() {
        let text = "// top\n{\n  /* a */ \"name\": \"w\", // x\n  \"vars\": {\"A\": \"b // not a comment\", \"N\": 3,},\n  \"list\": [1, true, null,],\n}\n";
        let root = parse(text).unwrap();
        assert_eq!(root.get("name").unwrap().as_str(), Some("w"));
        let vars = root.get("vars").unwrap();
        assert_eq!(vars.get("A").unwrap().as_str(), Some("b // not a comment"));
        assert_eq!(vars.get("N").unwrap().value, Value::Other);
        assert_eq!(root.get("list").unwrap().items().len(), 3);
        let at = root.get("vars").unwrap().members()[0].1;
        assert_eq!(&text[at..at + 3], "\"A\"");
    }

    #[test]
    fn refuses_broken_documents() {
        for bad in ["{", "{\"a\" 1}", "{\"a\": }", "[1 2]", "/* open", "{\"a\": \"x}", "{} x", "{\"a\": nope}"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(500);
        assert!(parse(&deep).is_err());
    }
}
