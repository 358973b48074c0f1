//! Regression tests for the defects an outside probe found (issue 10):
//! nothing lost, nothing leaked, on any input. Each runs the real binary.

use crate::common::*;

/// Item 1: an unterminated quote on the managed line used to widen the edit
/// to the next quote in the file and delete `DB_PASSWORD` and `GREETING`.
#[test]
fn an_unterminated_quote_is_refused_with_its_line_and_no_other_key_is_touched() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    let before = "CHITTY_ID_TOKEN=\"old\nDB_PASSWORD=hunter2\nGREETING=\"hi\"\nLAST=1\nCHITTY_API_KEY=x\n";
    std::fs::write(p.path("app/.env"), before).unwrap();
    for _ in 0..2 {
        let out = p.run(&["sync", "CHITTY_ID_TOKEN"]);
        assert_ne!(code(&out), 0, "{}", text(&out));
        let said = text(&out);
        assert!(said.contains("app/.env:1:") && said.contains("never closes"), "{said}");
        assert!(said.contains("fix line 1 by hand"), "{said}");
        assert_eq!(p.read("app/.env"), before, "the file is untouched");
    }
    // `check` names the line too.
    let out = p.run(&["check"]);
    assert!(text(&out).contains("unreadable-value"), "{}", text(&out));
    // Fixed by hand, the next sync delivers and keeps every other key.
    std::fs::write(p.path("app/.env"), before.replacen("\"old", "old", 1)).unwrap();
    p.ok(&["sync", "CHITTY_ID_TOKEN"]);
    let after = p.read("app/.env");
    for kept in ["DB_PASSWORD=hunter2\n", "GREETING=\"hi\"\n", "LAST=1\n"] {
        assert!(after.contains(kept), "{after}");
    }
}

/// Item 3: a hand-written value the parsers read differently is drift, so
/// `sync --check` reports it and `sync` rewrites it in the portable form.
#[test]
fn a_value_the_parsers_read_differently_is_drift_and_sync_rewrites_it() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    let value = env_value(&p.path("app/.env"), "CHITTY_ID_TOKEN").unwrap();
    let text_before = p.read("app/.env");
    // The same value, double-quoted with a needless escape: npm dotenv and
    // python-dotenv keep the backslash, godotenv drops it.
    let escaped = format!("\"{}\"", value.replacen("mcp_auth_", "mcp_auth\\_", 1));
    let edited = text_before.replacen(&format!("CHITTY_ID_TOKEN={value}"), &format!("CHITTY_ID_TOKEN={escaped}"), 1);
    assert_ne!(edited, text_before);
    std::fs::write(p.path("app/.env"), edited).unwrap();
    let out = p.run(&["sync", "--check", "CHITTY_ID_TOKEN"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    p.ok(&["sync", "CHITTY_ID_TOKEN"]);
    assert_eq!(env_value(&p.path("app/.env"), "CHITTY_ID_TOKEN").unwrap(), value);
    assert!(p.read("app/.env").contains(&format!("CHITTY_ID_TOKEN={value}\n")));
}
