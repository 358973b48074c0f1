//! The .env encoding against the parsers that read our files: godotenv (gh),
//! npm dotenv (wrangler), python-dotenv and dotenvy. Every value the writer
//! accepts must read back identically in all four; every hand-written value
//! our reader accepts must read the same in all four too.
//!
//! The three outside parsers are programs (tests/parsers/read.*). `.ci/run`
//! installs them and sets CHITTY_SECRETS_PARSERS=required; elsewhere a
//! parser that is not installed is skipped and named on stderr (dotenvy,
//! a dev-dependency, always runs).

use std::path::{Path, PathBuf};
use std::process::Command;

use chitty_secrets::secret::Secret;

use crate::common::{python, unavailable};
use chitty_secrets::targets::dotenv_file::{DotenvFile, can_carry};

/// Per file, the keys and values a parser read (`None`: it refused the file).
type Reading = Vec<Option<serde_json::Map<String, serde_json::Value>>>;
/// Reads files; `None` when the parser is not installed.
type ReadFiles = Box<dyn Fn(&[PathBuf]) -> Option<Reading>>;

struct Parser {
    name: &'static str,
    read: ReadFiles,
}

fn parsers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/parsers")
}

/// Runs a program over `command` and returns its stdout; `None` when it
/// cannot run here.
fn output(name: &str, command: &mut Command) -> Option<Vec<u8>> {
    match command.output() {
        Ok(out) if out.status.success() => Some(out.stdout),
        Ok(out) => unavailable(name, &String::from_utf8_lossy(&out.stderr)),
        Err(e) => unavailable(name, &e.to_string()),
    }
}

/// Runs a reader program over the files; `None` when it is not installed.
fn run_reader(name: &str, mut command: Command, files: &[PathBuf]) -> Option<Reading> {
    let stdout = output(name, command.args(files))?;
    let list: Vec<serde_json::Value> = serde_json::from_slice(&stdout).expect("the reader prints JSON");
    Some(list.into_iter().map(|v| v.as_object().cloned()).collect())
}

fn go_binary() -> Option<PathBuf> {
    // Debian's golang-github-joho-godotenv-dev, in GOPATH mode: no network.
    let out = std::env::temp_dir().join(format!("chitty-godotenv-read-{}", std::process::id()));
    output(
        "godotenv",
        Command::new("go")
            .args(["build", "-o"])
            .arg(&out)
            .arg(parsers_dir().join("read.go"))
            .env("GOPATH", "/usr/share/gocode")
            .env("GO111MODULE", "off")
            .env("GOFLAGS", "")
            .env("GOCACHE", std::env::temp_dir().join("chitty-gocache")),
    )?;
    Some(out)
}

fn parsers() -> Vec<Parser> {
    let mut all: Vec<Parser> = vec![Parser {
        name: "dotenvy",
        read: Box::new(|files| {
            Some(
                files
                    .iter()
                    .map(|f| {
                        // dotenvy stops at a line it cannot parse; the lines
                        // before it are what it read.
                        let mut map = serde_json::Map::new();
                        for item in dotenvy::from_path_iter(f).ok()? {
                            let Ok((k, v)) = item else { break };
                            map.insert(k, v.into());
                        }
                        Some(map)
                    })
                    .collect(),
            )
        }),
    }];
    all.push(Parser {
        name: "python-dotenv",
        read: Box::new(|files| {
            let mut c = Command::new(python());
            c.arg(parsers_dir().join("read.py"));
            run_reader("python-dotenv", c, files)
        }),
    });
    all.push(Parser {
        name: "npm dotenv",
        read: Box::new(|files| {
            let mut c = Command::new("node");
            // `npm ci --prefix tests/parsers` puts dotenv beside the script.
            c.arg(parsers_dir().join("read.js"));
            run_reader("npm dotenv", c, files)
        }),
    });
    if let Some(bin) = go_binary() {
        all.push(Parser {
            name: "godotenv",
            read: Box::new(move |files| run_reader("godotenv", Command::new(&bin), files)),
        });
    }
    all
}

/// Value shapes: every printable ASCII character alone, inside, leading and
/// trailing; pairs of the characters parsers treat specially; escapes,
/// expansions, blanks, line breaks and non-ASCII text.
fn corpus() -> Vec<String> {
    let mut values = Vec::new();
    for c in (0x20u8..0x7f).map(char::from) {
        values.extend([c.to_string(), format!("a{c}b"), format!("{c}ab"), format!("ab{c}")]);
    }
    let special = [" ", "\"", "'", "\\", "$", "#", "`", "=", "{", "}", "\n", "\t", "n", "{A}"];
    for x in special {
        for y in special {
            values.extend([format!("a{x}{y}b"), format!("{x}{y}"), format!("x{x}{y}")]);
        }
    }
    values.extend(
        [
            "",
            "plain",
            "with space",
            "  padded  ",
            "${HOME}",
            "$HOME",
            "\\n",
            "\\\\n",
            "end\\",
            "end\\\\",
            "multi\nline\nvalue",
            "-----BEGIN KEY-----\nabc\n-----END KEY-----",
            "é日本🔑",
            "a#b",
            "a #b",
            "'quoted'",
            "\"dq\"",
            "`bt`",
            "a\\\"b",
            "=start",
            "mcp_auth_0123456789abcdef",
        ]
        .map(String::from),
    );
    values.sort();
    values.dedup();
    values
}

fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_value_the_writer_accepts_reads_back_identically_in_all_four_parsers() {
    let dir = tempfile::tempdir().unwrap();
    let values = corpus();
    // A file for each carried value, with a key before and after it: a
    // value that breaks a parser must not take its neighbours down with it.
    let mut expected = Vec::new();
    let mut files = Vec::new();
    for v in &values {
        let value = Secret::new(v.as_str());
        if !can_carry(&value) {
            continue;
        }
        let mut file = DotenvFile::parse(b"BEFORE=ok\n").unwrap();
        file.set("K", &value).unwrap();
        file.set("AFTER", &Secret::new("ok")).unwrap();
        files.push(write(dir.path(), &format!("{}.env", files.len()), &file.render()));
        expected.push(v.clone());
    }
    let mut problems = Vec::new();
    let mut ran = Vec::new();
    for parser in parsers() {
        let Some(reading) = (parser.read)(&files) else { continue };
        ran.push(parser.name);
        for (value, map) in expected.iter().zip(&reading) {
            let Some(map) = map else {
                problems.push(format!("{}: refuses the file holding {value:?}", parser.name));
                continue;
            };
            let got = map.get("K").and_then(|v| v.as_str());
            if got != Some(value.as_str()) {
                problems.push(format!("{}: {value:?} read as {got:?}", parser.name));
            }
            for other in ["BEFORE", "AFTER"] {
                if map.get(other).and_then(|v| v.as_str()) != Some("ok") {
                    problems.push(format!("{}: {other} is lost beside {value:?}", parser.name));
                }
            }
        }
    }
    eprintln!("writer: {} of {} values carried; checked with {}", expected.len(), values.len(), ran.join(", "));
    assert!(problems.is_empty(), "{} misreads:\n{}", problems.len(), problems.join("\n"));
    // The rules are not so strict that ordinary tokens are refused.
    assert!(expected.len() * 10 >= values.len() * 7, "only {} of {} carried", expected.len(), values.len());
}

#[test]
fn every_hand_written_value_our_reader_accepts_reads_the_same_in_all_four_parsers() {
    let dir = tempfile::tempdir().unwrap();
    // Each value written by hand in every common form: bare, single-,
    // double- and backtick-quoted, with and without escapes.
    let mut forms = Vec::new();
    for v in corpus() {
        let escaped = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        for raw in [v.clone(), format!("'{v}'"), format!("\"{v}\""), format!("\"{escaped}\""), format!("`{v}`")] {
            forms.push(raw);
        }
    }
    forms.sort();
    forms.dedup();
    let files: Vec<PathBuf> = forms
        .iter()
        .enumerate()
        .map(|(i, raw)| write(dir.path(), &format!("{i}.env"), format!("K={raw}\nAFTER=ok\n").as_bytes()))
        .collect();
    let ours: Vec<Option<String>> = forms
        .iter()
        .map(|raw| {
            let file = DotenvFile::parse(format!("K={raw}\nAFTER=ok\n").as_bytes()).unwrap();
            let k = file.get_all("K");
            let after = file.get_all("AFTER");
            // Accepted: one value for K, and AFTER intact.
            match (&k[..], &after[..]) {
                ([k], [a]) if a.value.as_ref().is_ok_and(|a| a.expose() == "ok") => {
                    k.value.as_ref().ok().map(|v| v.expose().to_string())
                }
                _ => None,
            }
        })
        .collect();
    let mut problems = Vec::new();
    let mut ran = Vec::new();
    for parser in parsers() {
        let Some(reading) = (parser.read)(&files) else { continue };
        ran.push(parser.name);
        for ((raw, ours), theirs) in forms.iter().zip(&ours).zip(&reading) {
            let Some(ours) = ours else { continue };
            // A bare line break turns the rest of the form into a junk line,
            // which godotenv refuses the whole file for: not about K's value.
            if theirs.is_none() && raw.contains('\n') {
                continue;
            }
            let got = theirs.as_ref().and_then(|m| m.get("K")).and_then(|v| v.as_str());
            if got != Some(ours.as_str()) {
                problems.push(format!("{}: K={raw:?} is {ours:?} to us, {got:?} to it", parser.name));
            }
        }
    }
    let accepted = ours.iter().filter(|o| o.is_some()).count();
    eprintln!("reader: {accepted} of {} hand-written forms accepted; checked with {}", forms.len(), ran.join(", "));
    assert!(problems.is_empty(), "{} disagreements:\n{}", problems.len(), problems.join("\n"));
}
