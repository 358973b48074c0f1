//! `scan`: find known token values — every version, current to revoked — in
//! files. Because it searches for the exact values (one Aho-Corasick
//! automaton over a gitignore-aware parallel walk) it has no false
//! positives; it also flags ChittyID-shaped tokens (`mcp_auth_` + 32 hex)
//! the registry does not know. A hit names the token and version, never the
//! value. [`history`] searches a git repository's history the same way.

pub mod history;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use aho_corasick::{AhoCorasick, MatchKind};
use serde::Serialize;

use crate::registry::Stage;
use crate::secret::Secret;

/// Values shorter than this are not searched for: they would match by chance.
pub const MIN_LEN: usize = 8;
const SHAPE_PREFIX: &[u8] = b"mcp_auth_";
const SHAPE_HEX: usize = 32;

pub struct Known {
    pub token: String,
    pub version: u32,
    pub stage: Stage,
    pub value: Secret,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Hit {
    pub file: String,
    pub line: usize,
    pub col: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
    /// `known-value` or `unknown-chittyid-token`.
    pub kind: &'static str,
}

pub struct Scanner {
    /// Searches for the values of at least [`MIN_LEN`] bytes; pattern `i`
    /// is `known[searched[i]]`.
    automaton: Option<AhoCorasick>,
    searched: Vec<usize>,
    known: Vec<Known>,
    /// Every known value, as indexes into `known` by a keyed hash of it
    /// (no plain copy is kept; a match is confirmed against the value
    /// itself): a ChittyID-shaped candidate that is known is not also
    /// "unknown", and a service's report of a secret is told by it.
    by_hash: HashMap<u64, Vec<usize>>,
    hasher: RandomState,
}

#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub files: u64,
    pub bytes: u64,
    pub binary_skipped: u64,
}

impl Scanner {
    pub fn new(known: Vec<Known>) -> anyhow::Result<Self> {
        let searched: Vec<usize> = (0..known.len()).filter(|&i| known[i].value.expose().len() >= MIN_LEN).collect();
        let automaton = if searched.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(searched.iter().map(|&i| known[i].value.expose().as_bytes()))?,
            )
        };
        let hasher = RandomState::new();
        let mut by_hash: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, k) in known.iter().enumerate() {
            by_hash.entry(hasher.hash_one(k.value.expose().as_bytes())).or_default().push(i);
        }
        Ok(Scanner { automaton, searched, known, by_hash, hasher })
    }

    /// The token and version `value` is, if the registry knows it (a whole
    /// value, compared in constant time; any length).
    pub fn find(&self, value: &[u8]) -> Option<&Known> {
        use subtle::ConstantTimeEq;
        let ids = self.by_hash.get(&self.hasher.hash_one(value))?;
        ids.iter().map(|&i| &self.known[i]).find(|k| bool::from(k.value.expose().as_bytes().ct_eq(value)))
    }

    /// Every hit in one file's bytes.
    pub fn scan(&self, file: &str, bytes: &[u8]) -> Vec<Hit> {
        let mut hits = Vec::new();
        let locate = |offset: usize| {
            let before = &bytes[..offset];
            let line = memchr::memchr_iter(b'\n', before).count() + 1;
            let col = offset - before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
            (line, col)
        };
        if let Some(ac) = &self.automaton {
            for m in ac.find_iter(bytes) {
                let k = &self.known[self.searched[m.pattern().as_usize()]];
                let (line, col) = locate(m.start());
                hits.push(Hit {
                    file: file.to_string(),
                    line,
                    col,
                    token: Some(k.token.clone()),
                    version: Some(k.version),
                    stage: Some(k.stage),
                    kind: "known-value",
                });
            }
        }
        for start in memchr::memmem::find_iter(bytes, SHAPE_PREFIX) {
            let end = start + SHAPE_PREFIX.len() + SHAPE_HEX;
            let Some(candidate) = bytes.get(start..end) else {
                continue;
            };
            let boundary = bytes.get(end).is_none_or(|b| !b.is_ascii_alphanumeric());
            if is_shape(candidate) && boundary && self.find(candidate).is_none() {
                let (line, col) = locate(start);
                hits.push(Hit {
                    file: file.to_string(),
                    line,
                    col,
                    token: None,
                    version: None,
                    stage: None,
                    kind: "unknown-chittyid-token",
                });
            }
        }
        hits
    }

    /// Walks `paths` (gitignore-aware unless `no_ignore`), in parallel.
    pub fn scan_paths(&self, paths: &[PathBuf], no_ignore: bool, skip: &[PathBuf]) -> (Vec<Hit>, Totals) {
        let hits = Mutex::new(Vec::new());
        let (files, bytes_total, binary) = (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
        let mut builder = ignore::WalkBuilder::new(&paths[0]);
        for p in &paths[1..] {
            builder.add(p);
        }
        let skip: Vec<PathBuf> = skip.iter().filter_map(|p| p.canonicalize().ok()).collect();
        builder
            .hidden(false)
            .require_git(false)
            .git_ignore(!no_ignore)
            .git_exclude(!no_ignore)
            .git_global(!no_ignore)
            .ignore(!no_ignore)
            .parents(!no_ignore)
            .filter_entry(move |e| {
                e.file_name() != ".git" && !skip.iter().any(|s| e.path().canonicalize().is_ok_and(|p| &p == s))
            })
            .threads(std::thread::available_parallelism().map_or(2, |n| n.get()));
        builder.build_parallel().run(|| {
            Box::new(|entry| {
                let Ok(entry) = entry else {
                    return ignore::WalkState::Continue;
                };
                if !entry.file_type().is_some_and(|t| t.is_file()) {
                    return ignore::WalkState::Continue;
                }
                let Ok(data) = std::fs::read(entry.path()) else {
                    return ignore::WalkState::Continue;
                };
                files.fetch_add(1, Ordering::Relaxed);
                bytes_total.fetch_add(data.len() as u64, Ordering::Relaxed);
                if is_binary(&data) {
                    binary.fetch_add(1, Ordering::Relaxed);
                    return ignore::WalkState::Continue;
                }
                let found = self.scan(&display(entry.path()), &data);
                drop(zeroize::Zeroizing::new(data));
                if !found.is_empty() {
                    hits.lock().expect("no panics while holding it").extend(found);
                }
                ignore::WalkState::Continue
            })
        });
        let mut hits = hits.into_inner().expect("walk finished");
        hits.sort();
        let totals =
            Totals { files: files.into_inner(), bytes: bytes_total.into_inner(), binary_skipped: binary.into_inner() };
        (hits, totals)
    }
}

/// What git would diff as binary: a NUL in the first 8 KB.
pub fn is_binary(data: &[u8]) -> bool {
    memchr::memchr(0, &data[..data.len().min(8000)]).is_some()
}

fn is_shape(candidate: &[u8]) -> bool {
    candidate.len() == SHAPE_PREFIX.len() + SHAPE_HEX
        && candidate.starts_with(SHAPE_PREFIX)
        && candidate[SHAPE_PREFIX.len()..].iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn display(path: &Path) -> String {
    path.strip_prefix("./").unwrap_or(path).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(token: &str, version: u32, stage: Stage, value: &str) -> Known {
        Known { token: token.into(), version, stage, value: Secret::new(value) }
    }

    #[test]
    fn a_whole_value_is_found_by_its_hash_and_confirmed_against_itself() {
        let scanner = Scanner::new(vec![
            known("A", 1, Stage::Current, "value-one-1234"),
            known("A", 2, Stage::Current, "value-two-1234"),
            known("S", 1, Stage::Current, "short"),
        ])
        .unwrap();
        let found = scanner.find(b"value-two-1234").unwrap();
        assert_eq!((found.token.as_str(), found.version), ("A", 2));
        assert!(scanner.find(b"value-two-123").is_none());
        // Too short to search files for, but a whole value is still known.
        assert_eq!(scanner.find(b"short").map(|k| k.token.as_str()), Some("S"));
        assert!(scanner.scan("f", b"x short x").is_empty());
    }

    #[test]
    fn finds_known_values_with_line_and_column_and_unknown_shapes() {
        let known_value = "mcp_auth_0123456789abcdef0123456789abcdef";
        let scanner = Scanner::new(vec![
            known("A", 2, Stage::Current, known_value),
            known("B", 1, Stage::Revoked, "revoked-value-xyz"),
            known("C", 1, Stage::Current, "short"),
        ])
        .unwrap();
        let text = format!(
            "first line\n  token = \"{known_value}\"\nold=revoked-value-xyz\nshort\nmcp_auth_ffffffffffffffffffffffffffffffff\nmcp_auth_fffffffffffffffffffffffffffffffffff\n"
        );
        let hits = scanner.scan("f.txt", text.as_bytes());
        let got: Vec<(usize, usize, Option<&str>, &str)> =
            hits.iter().map(|h| (h.line, h.col, h.token.as_deref(), h.kind)).collect();
        assert_eq!(
            got,
            [
                (2, 12, Some("A"), "known-value"),
                (3, 5, Some("B"), "known-value"),
                (5, 1, None, "unknown-chittyid-token")
            ]
        );
    }

    #[test]
    fn binary_is_detected() {
        assert!(is_binary(b"abc\0def"));
        assert!(!is_binary(b"plain text"));
    }
}
