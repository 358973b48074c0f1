use crate::common::*;

#[test]
fn set_reads_stdin_and_refuses_placeholders() {
    let p = Project::initialised(LOCAL_POLICY);
    let out = p.run_with_stdin(&["set", "VENDOR_API_KEY"], "YOUR_TOKEN_HERE_REPLACE_ME\n");
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("refusing to store the value for VENDOR_API_KEY"), "{}", text(&out));
    assert!(!text(&out).contains("YOUR_TOKEN_HERE"), "the refused value was echoed: {}", text(&out));

    let out = p.run_with_stdin(&["set", "VENDOR_API_KEY"], "vendor value with spaces\n");
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(p.ok(&["get", "VENDOR_API_KEY"]), "vendor value with spaces\n");
    p.ok(&["sync", "VENDOR_API_KEY"]);
    assert_eq!(env_value(&p.path("app/.env"), "VENDOR_API_KEY").as_deref(), Some("vendor value with spaces"));
}

#[test]
fn import_takes_real_values_and_refuses_placeholders() {
    let p = Project::initialised(LOCAL_POLICY);
    std::fs::create_dir_all(p.path("app")).unwrap();
    std::fs::write(
        p.path("app/.env"),
        "# existing file\nCHITTY_ID_TOKEN=YOUR_TOKEN_HERE_REPLACE_ME\nSESSION_KEY=real-session-value-123\nUNRELATED=1\n",
    )
    .unwrap();
    let out = p.run(&["import", "app/.env"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let msg = text(&out);
    assert!(msg.contains("app/.env:2: CHITTY_ID_TOKEN looks like a placeholder"), "{msg}");
    assert!(msg.contains("SESSION_KEY: imported as v1"), "{msg}");
    assert!(msg.contains("skipped 1 key no policy declares: UNRELATED"), "{msg}");
    assert_eq!(p.ok(&["get", "SESSION_KEY"]), "real-session-value-123\n");
    assert_eq!(code(&p.run(&["get", "CHITTY_ID_TOKEN"])), 1, "a placeholder was stored");
    // The file it came from is a target: it is recorded as holding v1.
    let status: serde_json::Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
    let session = status["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "SESSION_KEY").unwrap();
    assert_eq!(session["deliveries"][0]["up_to_date"], true, "{session}");
}

/// Every command but `get` and `run` keeps a known value out of stdout,
/// stderr and argv, including in errors.
#[test]
fn a_canary_value_never_leaks() {
    let p = Project::initialised(LOCAL_POLICY);
    let mut outputs = Vec::new();
    outputs.push(p.run_with_stdin(&["set", "VENDOR_API_KEY"], &format!("{CANARY}\n")));
    for args in [
        &["status"][..],
        &["status", "--json"],
        &["plan"],
        &["plan", "--json"],
        &["sync"],
        &["sync", "--check"],
        &["sync", "--json"],
        &["rotate", "--due", "--dry-run"],
        &["rotate", "--json", "SESSION_KEY"],
        &["rotate", "VENDOR_API_KEY"],
        &["policy", "check"],
        &["import", "app/.env"],
    ] {
        outputs.push(p.run(args));
    }
    // Break things and look at the errors too.
    std::fs::write(p.path("app/.env"), format!("VENDOR_API_KEY='{CANARY}' $oops\nVENDOR_API_KEY=other\n")).unwrap();
    outputs.push(p.run(&["sync", "--check"]));
    outputs.push(p.run_with_stdin(&["set", "VENDOR_API_KEY"], &format!("{CANARY}'$x\n")));
    outputs.push(p.run(&["sync", "VENDOR_API_KEY"]));
    for out in &outputs {
        assert!(!text(out).contains(CANARY), "leaked: {}", text(out));
    }
    for argv in p.argv_log.lock().unwrap().iter() {
        assert!(!argv.iter().any(|a| a.contains(CANARY)), "{argv:?}");
    }
    // Nothing in the registry's plaintext either.
    for (path, bytes) in snapshot(&p.path(".chitty-secrets")) {
        assert!(!String::from_utf8_lossy(&bytes).contains(CANARY), "{}", path.display());
    }
    // get is the command that hands it out.
    assert_eq!(p.ok(&["get", "VENDOR_API_KEY"]).trim_end(), CANARY);
}
