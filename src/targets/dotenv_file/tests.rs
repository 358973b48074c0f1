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
    assert_eq!(set("", "K", "it's\nmulti \"q\" \\"), "K=\"it's\\nmulti \\\"q\\\" \\\\\"\n");
    let mut file = DotenvFile::empty();
    let err = file.set("K", &Secret::new("it's $HOME")).unwrap_err();
    assert_eq!(err, ValueError::NotCarriable { key: "K".into() });
    assert!(!err.to_string().contains("HOME"));
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
    assert_eq!(file.get_all("B")[0].1, 3);
}

#[test]
fn reads_values_and_lines() {
    let file = DotenvFile::parse(b"# c\nA=plain # note\nexport B='single'\nC=\"d\\\"q\"\n").unwrap();
    let got: Vec<(String, String, usize)> =
        file.entries().into_iter().map(|(k, v, l)| (k, v.expose().to_string(), l)).collect();
    assert_eq!(
        got,
        [("A".into(), "plain".into(), 2), ("B".into(), "single".into(), 3), ("C".into(), "d\"q".into(), 4)]
    );
}

/// A line of a hand-written .env file that dotenvy accepts.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        "# [ -~]{0,20}".prop_map(|s| s),
        Just(String::new()),
        ("[A-Z][A-Z0-9_]{0,6}", "[A-Za-z0-9_./:@+-]{0,12}").prop_map(|(k, v)| format!("{k}={v}")),
        ("[A-Z][A-Z0-9_]{0,6}", "[A-Za-z0-9 #]{0,12}").prop_map(|(k, v)| format!("export {k}='{v}'")),
        ("[A-Z][A-Z0-9_]{0,6}", "[A-Za-z0-9 ]{0,12}").prop_map(|(k, v)| format!("{k}=\"{v}\"")),
        ("[A-Z][A-Z0-9_]{0,6}", "[A-Za-z0-9]{1,8}").prop_map(|(k, v)| format!("{k}={v} # note")),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9a-f]{32}", "[A-Za-z0-9_-]{43}", "[ -~]{0,24}", "[ -~\n]{0,24}",]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn rewriting_one_key_changes_only_its_value(
        lines in prop::collection::vec(line(), 0..12),
        crlf in any::<bool>(),
        key in "(K|A|B|[A-Z][A-Z0-9_]{0,6})",
        value in value(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let before: String = lines.iter().map(|l| format!("{l}{eol}")).collect();
        let mut file = DotenvFile::parse(before.as_bytes()).unwrap();
        let old = assignments(&file.text);
        let secret = Secret::new(value.clone());
        if file.set(&key, &secret).is_err() {
            // Refused values are ones no portable form exists for.
            prop_assert!(value.contains(['\'', '\n', '\\']) && value.contains('$'));
            return Ok(());
        }
        let after = String::from_utf8(file.render().to_vec()).unwrap();

        // Every byte outside the key's values is unchanged.
        let spans: Vec<Range<usize>> = old.iter().filter(|a| a.key == key).map(|a| a.value.clone()).collect();
        if spans.is_empty() {
            prop_assert!(after.starts_with(&before));
            let appended = format!("{key}=");
            prop_assert!(after[before.len()..].starts_with(&appended));
        } else {
            let new_spans: Vec<Range<usize>> =
                assignments(&after).into_iter().filter(|a| a.key == key).map(|a| a.value).collect();
            prop_assert_eq!(new_spans.len(), spans.len());
            let outside = |text: &str, spans: &[Range<usize>]| {
                let mut parts = Vec::new();
                let mut at = 0;
                for s in spans {
                    parts.push(text[at..s.start].to_string());
                    at = s.end;
                }
                parts.push(text[at..].to_string());
                parts
            };
            prop_assert_eq!(outside(&before, &spans), outside(&after, &new_spans));
        }

        // dotenvy reads the value back identically, and every other key as before.
        let read = dotenvy_reads(&after);
        let got: Vec<&String> = read.iter().filter(|(k, _)| *k == key).map(|(_, v)| v).collect();
        prop_assert!(!got.is_empty());
        for v in got {
            prop_assert_eq!(v, &value);
        }
        let others = |pairs: Vec<(String, String)>| pairs.into_iter().filter(|(k, _)| *k != key).collect::<Vec<_>>();
        prop_assert_eq!(others(dotenvy_reads(&before)), others(read));
        // And our own reader agrees.
        for (v, _) in DotenvFile::parse(after.as_bytes()).unwrap().get_all(&key) {
            prop_assert_eq!(v.expose(), value.as_str());
        }
    }
}
