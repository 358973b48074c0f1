//! Checks that cost nothing, leak scanning, the audit chain.

use std::process::Command;

use crate::common::*;

/// The incident: the platform token is a placeholder in a .env file and in
/// the registry. `check` finds both, offline, with no identity.
#[test]
fn check_finds_the_placeholder_incident_offline_without_an_identity() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "SESSION_KEY"]);
    std::fs::create_dir_all(p.path("app")).unwrap();
    let env = format!("# platform\nCHITTY_ID_TOKEN=YOUR_TOKEN_HERE_REPLACE_ME\n{}", p.read("app/.env"));
    std::fs::write(p.path("app/.env"), env).unwrap();
    let out = p.run(&["import", "--allow-placeholders", "--only", "CHITTY_ID_TOKEN", "app/.env"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    std::fs::remove_file(p.identity_file()).unwrap();

    // Any network use would go to a closed port and fail.
    let run = |args: &[&str]| {
        p.command(args)
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("ALL_PROXY", "http://127.0.0.1:9")
            .output()
            .unwrap()
    };
    let out = run(&["check"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("error[placeholder-in-target] app/.env:2: CHITTY_ID_TOKEN in app/.env looks like a placeholder"),
        "{msg}"
    );
    assert!(msg.contains("error[placeholder-in-registry] .chitty-secrets/tokens/CHITTY_ID_TOKEN.toml: CHITTY_ID_TOKEN v1 in the registry is a placeholder"), "{msg}");
    assert!(msg.contains("0 service calls; no identity"), "{msg}");
    assert!(msg.contains("CHITTY_API_KEY is missing from app/.env"), "{msg}");

    let out = run(&["check", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["service_calls"], 0);
    assert_eq!(report["values_compared"], false);
    let codes: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"placeholder-in-target") && codes.contains(&"placeholder-in-registry"), "{codes:?}");

    // --fail-on error still fails; a clean registry passes.
    assert_eq!(code(&run(&["check", "--fail-on", "error"])), 3);
}

#[test]
fn check_passes_a_healthy_project_and_annotates_in_github_actions() {
    let policy = LOCAL_POLICY.split("[tokens.VENDOR_API_KEY]").next().unwrap();
    let p = Project::initialised(policy);
    p.ok(&["rotate"]);
    let out = p.run(&["check"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("0 errors, 0 warnings"), "{}", text(&out));

    // A hand edit is drift (with the identity there to compare).
    let edited = p.read("worker/.dev.vars").replace("mcp_auth_", "mcp_auth_0");
    std::fs::write(p.path("worker/.dev.vars"), edited).unwrap();
    let out = p.command(&["check"]).env("GITHUB_ACTIONS", "true").output().unwrap();
    assert_eq!(code(&out), 3);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .contains("::error title=drift,file=worker/.dev.vars,line=1::CHITTY_ID_TOKEN in worker/.dev.vars differs"),
        "{stdout}"
    );

    // Expiry and due dates, seen from the future.
    let later = (chrono::Utc::now() + chrono::TimeDelta::days(340)).to_rfc3339();
    let out = p.run(&["--now", &later, "check", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = report["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"expiring") && codes.contains(&"rotation-due"), "{codes:?}");
    let out = p.run(&["--now", &later, "status", "--expiring", "30d"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("expiring within 30d: CHITTY_ID_TOKEN"), "{}", text(&out));
    assert_eq!(code(&p.run(&["status", "--expiring", "30d"])), 0);
}

#[test]
fn scan_finds_current_and_retired_values_but_never_prints_them() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "SESSION_KEY"]);
    let retired = p.ok(&["get", "SESSION_KEY"]).trim_end().to_string();
    // SESSION_KEY has no overlap: the second rotation retires v1 at once.
    let out = p.ok(&["rotate", "SESSION_KEY"]);
    assert!(out.contains("retired v1"), "{out}");
    let current = p.ok(&["get", "SESSION_KEY"]).trim_end().to_string();

    let tree = p.path("repo");
    std::fs::create_dir_all(tree.join("src/deep/er")).unwrap();
    std::fs::create_dir_all(tree.join("ignored")).unwrap();
    std::fs::write(tree.join(".gitignore"), "ignored/\n").unwrap();
    std::fs::write(tree.join("src/deep/er/config.js"), format!("const a = 1;\nconst key = \"{current}\";\n")).unwrap();
    std::fs::write(
        tree.join("NOTES.md"),
        format!("old key: {retired}\nstray mcp_auth_00112233445566778899aabbccddeeff here\n"),
    )
    .unwrap();
    std::fs::write(tree.join("ignored/dump.txt"), &current).unwrap();
    std::fs::write(tree.join("blob.bin"), [b"\0\0".as_slice(), current.as_bytes()].concat()).unwrap();

    let out = p.run(&["scan", "repo"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let msg = text(&out);
    assert!(msg.contains("repo/src/deep/er/config.js:2:14: SESSION_KEY v2 (current)"), "{msg}");
    assert!(msg.contains("repo/NOTES.md:1:10: SESSION_KEY v1 (retired)"), "{msg}");
    assert!(msg.contains("repo/NOTES.md:2:7: a ChittyID-shaped token"), "{msg}");
    assert!(!msg.contains("ignored/dump.txt"), "gitignored files are skipped: {msg}");
    assert!(!msg.contains("blob.bin"), "binary files are skipped: {msg}");
    assert!(!msg.contains(&current) && !msg.contains(&retired), "scan printed a value: {msg}");

    let out = p.run(&["scan", "--no-ignore", "repo"]);
    assert!(text(&out).contains("repo/ignored/dump.txt:1:1: SESSION_KEY v2 (current)"), "{}", text(&out));

    std::fs::remove_dir_all(&tree).unwrap();
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("clean.txt"), "nothing here\n").unwrap();
    assert_eq!(code(&p.run(&["scan", "repo"])), 0);
}

#[test]
fn scan_staged_reads_the_index_not_the_work_tree() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "SESSION_KEY"]);
    let value = p.ok(&["get", "SESSION_KEY"]).trim_end().to_string();
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).current_dir(p.dir.path()).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
    };
    git(&["init", "-q"]);
    std::fs::write(p.path("staged.txt"), format!("k={value}\n")).unwrap();
    git(&["add", "staged.txt"]);
    std::fs::write(p.path("staged.txt"), "k=clean now\n").unwrap();
    std::fs::write(p.path("unstaged.txt"), &value).unwrap();
    let out = p.run(&["scan", "--staged"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("staged.txt:1:3: SESSION_KEY v1 (current)"), "{}", text(&out));
    assert!(!text(&out).contains("unstaged.txt"), "{}", text(&out));
}

#[test]
fn a_tampered_audit_line_fails_verification() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "SESSION_KEY"]);
    p.ok(&["rotate", "SESSION_KEY"]);
    let out = p.ok(&["audit", "verify"]);
    assert!(out.contains("entries, chain intact"), "{out}");
    let log = p.read(".chitty-secrets/audit.log");
    for event in ["keys.add", "rotate.mint", "deliver", "rotate.promote", "rotate.retired"] {
        assert!(log.contains(&format!("\"event\":\"{event}\"")), "{event} missing:\n{log}");
    }
    let tampered = log.replacen("\"event\":\"rotate.promote\"", "\"event\":\"rotate.pr0mote\"", 1);
    std::fs::write(p.path(".chitty-secrets/audit.log"), tampered).unwrap();
    let out = p.run(&["audit", "verify"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(
        text(&out).contains("audit.log:") && text(&out).contains("does not follow any line before it"),
        "{}",
        text(&out)
    );
}
