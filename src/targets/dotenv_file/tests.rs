use proptest::prelude::*;

use super::*;

fn set(text: &str, key: &str, value: &str) -> String {
    let mut file = DotenvFile::parse(text.as_bytes()).unwrap();
    file.set(key, &Secret::new(value)).unwrap();
    String::from_utf8(file.render().to_vec()).unwrap()
}

/// What dotenvy (the Rust parser) reads from the text.
fn dotenvy_reads(text: &str) -> Vec<(String, String)> {
    dotenvy::from_read_iter(text.as_bytes()).map(|r| r.expect("dotenvy parses the file")).collect()
}

#[test]
fn replaces_in_place_keeping_everything_else() {
    let before = "# top\r\nexport A=old # trailing\r\n\r\nB='keep me'\r\nA=\"dup\"\r\n";
    let after = set(before, "A", "n3w");
    assert_eq!(after, "# top\r\nexport A=n3w # trailing\r\n\r\nB='keep me'\r\nA=n3w\r\n");
}

#[test]
fn appends_new_keys_with_the_files_line_ending() {
    assert_eq!(set("X=1", "Y", "2"), "X=1\nY=2\n");
    assert_eq!(set("X=1\r\n", "Y", "2"), "X=1\r\nY=2\r\n");
    assert_eq!(set("", "Y", "2"), "Y=2\n");
}

#[test]
fn keeps_a_bom() {
    let after = set("\u{feff}A=1\n", "A", "2");
    assert_eq!(after, "\u{feff}A=2\n");
}

#[test]
fn quoting_follows_the_portable_rules() {
    assert_eq!(set("", "K", "abc_./:@+-9"), "K=abc_./:@+-9\n");
    assert_eq!(set("", "K", "has space # and hash"), "K='has space # and hash'\n");
    assert_eq!(set("", "K", "it's\nmulti"), "K=\"it's\\nmulti\"\n");
    assert_eq!(set("", "K", "back\\slash \"q\""), "K='back\\slash \"q\"'\n");
    for refused in ["it's $HOME", "it's \"q\"", "a\\", "${HOME}", "line\n\\"] {
        let mut file = DotenvFile::empty();
        let err = file.set("K", &Secret::new(refused)).unwrap_err();
        assert_eq!(err, ValueError::NotCarriable { key: "K".into() }, "{refused:?}");
        assert!(!err.to_string().contains("HOME"));
    }
}

#[test]
fn an_empty_value_is_written_quoted() {
    let after = set("K=a # note\n", "K", "");
    assert_eq!(after, "K='' # note\n");
    assert_eq!(dotenvy_reads(&after), [("K".to_string(), String::new())]);
}

#[test]
fn an_empty_value_before_a_comment_stays_separate() {
    let after = set("K= # fill me\n", "K", "v");
    assert_eq!(after, "K= v # fill me\n");
    assert_eq!(dotenvy_reads(&after), [("K".to_string(), "v".to_string())]);
}

#[test]
fn multiline_values_are_replaced_whole() {
    let before = "A=\"line1\nline2\"\nB=2\n";
    let after = set(before, "A", "one");
    assert_eq!(after, "A=one\nB=2\n");
    let file = DotenvFile::parse(before.as_bytes()).unwrap();
    assert_eq!(file.get_all("B")[0].line, 3);
}

#[test]
fn reads_values_and_lines() {
    let file = DotenvFile::parse(b"# c\nA=plain # note\nexport B='single'\nC=\"d\\\"q\"\nD=\"a\\nb\"\n").unwrap();
    let got: Vec<(String, Result<String, Unreadable>, usize)> =
        file.entries().into_iter().map(|(k, f)| (k, f.value.map(|v| v.expose().to_string()), f.line)).collect();
    assert_eq!(
        got,
        [
            ("A".into(), Ok("plain".into()), 2),
            ("B".into(), Ok("single".into()), 3),
            // npm dotenv keeps `\"` as two characters; the others read `"`.
            ("C".into(), Err(Unreadable::Disputed), 4),
            ("D".into(), Ok("a\nb".into()), 5),
        ]
    );
}

/// One item of a generated .env file, as the generator knows it: what the
/// editor must leave alone, and what it may change.
#[derive(Debug, Clone)]
enum Item {
    /// Not an assignment of K (comments, blanks, other keys, junk, a value
    /// spanning lines that holds a `K=` line): must stay byte for byte.
    Other(String),
    /// A well-formed one-line assignment of K: only `old` may change.
    Managed { prefix: String, old: String, suffix: String },
    /// K with text after its closing quote: where it ends is in doubt.
    Trailing(String),
    /// A double quote that never closes: no line after it holds a `"`
    /// followed only by blanks or a comment.
    Unclosed(String),
}

fn item() -> impl Strategy<Value = Item> {
    let key = "[A-J][A-Z0-9_]{0,5}";
    prop_oneof![
        "# [ -!#-~]{0,20}".prop_map(Item::Other),
        Just(Item::Other(String::new())),
        (key, "[A-Za-z0-9_./:@+-]{0,12}").prop_map(|(k, v)| Item::Other(format!("{k}={v}"))),
        (key, "[A-Za-z0-9 #]{0,12}").prop_map(|(k, v)| Item::Other(format!("export {k}='{v}'"))),
        (key, "[A-Za-z0-9 ']{0,12}").prop_map(|(k, v)| Item::Other(format!("{k}=\"{v}\""))),
        (key, "[A-Za-z0-9]{1,8}").prop_map(|(k, v)| Item::Other(format!("{k}={v} # note"))),
        (key, "[a-z]{1,6}").prop_map(|(k, v)| Item::Other(format!("{k}=\"{v}\nK=inside-{v}\nend\""))),
        "[a-z][a-z0-9 =]{0,19}".prop_map(Item::Other),
        (key, 5000..12000usize).prop_map(|(k, n)| Item::Other(format!("{k}={}", "x".repeat(n)))),
        (
            prop_oneof![Just("K="), Just("export K="), Just("K = "), Just("  K=")],
            prop_oneof!["[A-Za-z0-9_]{1,10}", "'[A-Za-z0-9 #]{0,10}'", "\"[A-Za-z0-9 ]{0,10}\""],
            prop_oneof![Just(""), Just(" # note"), Just("  ")],
        )
            .prop_map(|(p, old, s)| Item::Managed { prefix: p.into(), old, suffix: s.into() }),
        Just(Item::Managed { prefix: "K=".into(), old: String::new(), suffix: String::new() }),
        prop_oneof![Just("K='a'b"), Just("K=\"a\"b c")].prop_map(|t| Item::Trailing(t.into())),
        (prop_oneof![Just("K"), Just("OTHER")], "[A-Za-z0-9 ]{0,7}[A-Za-z0-9]")
            .prop_map(|(k, v)| Item::Unclosed(format!("{k}=\"{v}"))),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9a-f]{32}", "[A-Za-z0-9_-]{43}", "[ -~]{0,24}", "[ -~\n]{0,24}",]
}

/// Cases per run: 1,000 by default (CI); `CHITTY_SECRETS_DOTENV_CASES=100000`
/// for the long run the README describes.
fn cases() -> u32 {
    std::env::var("CHITTY_SECRETS_DOTENV_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(1000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Every byte outside K's values is unchanged, or the edit is refused;
    /// refused only where the file gives a reason.
    #[test]
    fn an_edit_changes_only_the_managed_values_or_is_refused(
        items in prop::collection::vec(item(), 0..14),
        crlf in any::<bool>(),
        bom in any::<bool>(),
        value in value(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let text_of = |i: &Item| match i {
            Item::Other(t) | Item::Trailing(t) | Item::Unclosed(t) => t.replace('\n', eol),
            Item::Managed { prefix, old, suffix } => format!("{prefix}{old}{suffix}"),
        };
        let body: String = items.iter().map(|i| format!("{}{eol}", text_of(i))).collect();
        let before = format!("{}{body}", if bom { "\u{feff}" } else { "" });
        let mut file = DotenvFile::parse(before.as_bytes()).unwrap();
        let result = file.set("K", &Secret::new(value.clone()));

        let first_unclosed = items.iter().position(|i| matches!(i, Item::Unclosed(_)));
        let managed: Vec<usize> =
            items.iter().enumerate().filter(|(_, i)| matches!(i, Item::Managed { .. })).map(|(n, _)| n).collect();
        let refusal_expected = encode(&value).is_none()
            || items.iter().any(|i| matches!(i, Item::Trailing(_)))
            || items.iter().enumerate().any(|(n, i)| {
                matches!(i, Item::Unclosed(t) if t.starts_with("K=")) || (first_unclosed.is_some_and(|u| n > u) && managed.contains(&n))
            })
            || (managed.is_empty() && first_unclosed.is_some());
        prop_assert_eq!(result.is_err(), refusal_expected, "{:?}", result);
        if result.is_err() {
            prop_assert_eq!(String::from_utf8(file.render().to_vec()).unwrap(), before, "a refusal changes nothing");
            return Ok(());
        }
        let after = String::from_utf8(file.render().to_vec()).unwrap();
        let mut rest = after.as_str();
        if bom {
            rest = rest.strip_prefix('\u{feff}').expect("the BOM is kept");
        }
        // Walk the items: others byte for byte, managed lines by their
        // prefix and suffix around a new value that reads back.
        for i in &items {
            match i {
                Item::Managed { prefix, suffix, .. } => {
                    prop_assert!(rest.starts_with(prefix.as_str()));
                    let line_end = rest.find('\n').unwrap();
                    let line = &rest[..line_end + 1];
                    let tail = format!("{suffix}{eol}");
                    prop_assert!(line.ends_with(&tail), "{:?} keeps {:?}", line, tail);
                    let new = &line[prefix.len()..line.len() - tail.len()];
                    prop_assert_eq!(read_value(new).unwrap(), value.clone());
                    rest = &rest[line_end + 1..];
                }
                other => {
                    let expected = format!("{}{eol}", text_of(other));
                    prop_assert!(rest.starts_with(&expected), "{:?} unchanged in {:?}", expected, rest);
                    rest = &rest[expected.len()..];
                }
            }
        }
        if managed.is_empty() {
            // An empty file has no line ending to follow: it gets `\n`.
            let new_eol = if items.is_empty() { "\n" } else { eol };
            let appended = rest.strip_prefix("K=").and_then(|r| r.strip_suffix(new_eol)).expect("K is appended");
            prop_assert_eq!(read_value(appended).unwrap(), value.clone());
        } else {
            prop_assert_eq!(rest, "");
        }
        // And our own reader agrees, in every place K is assigned.
        for found in DotenvFile::parse(after.as_bytes()).unwrap().get_all("K") {
            let read = found.value.unwrap();
            prop_assert_eq!(read.expose(), value.as_str());
        }
    }
}

/// The probe's reproduction: an unterminated quote on the managed line used
/// to widen the edit to the next quote and delete two other keys.
#[test]
fn an_unterminated_quote_on_the_managed_line_is_refused_and_nothing_changes() {
    let before = "CHITTY_ID_TOKEN=\"old\nDB_PASSWORD=hunter2\nGREETING=\"hi\"\nLAST=1\n";
    let mut file = DotenvFile::parse(before.as_bytes()).unwrap();
    let err = file.set("CHITTY_ID_TOKEN", &Secret::new("new")).unwrap_err();
    assert_eq!(
        err,
        ValueError::Malformed { key: "CHITTY_ID_TOKEN".into(), line: 1, why: Unreadable::Unclosed { quote: '"' } }
    );
    assert_eq!(String::from_utf8(file.render().to_vec()).unwrap(), before);
    assert!(matches!(file.get_all("CHITTY_ID_TOKEN")[0].value, Err(Unreadable::Unclosed { .. })));
}
