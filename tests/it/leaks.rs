//! `leaks` and `leaks --rotate`: known values found in the working tree and
//! in GitHub's secret-scanning alerts, the leaked token rotated with no
//! overlap against the fake ChittyID issuer, the alert closed as revoked.

use crate::chitty::Services;
use crate::common::*;

const MINT: &str = "POST /admin/tokens/generate";

fn leaks_json(s: &Services, p: &Project, args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["leaks", "--json"];
    all.extend(args);
    let out = s.run(p, &all);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (code(&out), json)
}

fn audit_text(p: &Project) -> String {
    std::fs::read_to_string(p.path(".chitty-secrets/audit.log")).unwrap_or_default()
}

#[test]
fn a_leaked_token_is_rotated_its_old_value_revoked_and_the_alert_closed_once() {
    let s = Services::start();
    let p = Project::initialised(&s.policy("24h"));
    s.ok(&p, &["rotate"]);
    let v1 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    let alert =
        s.gh.add_alert("acme/app", &v1, Some(("deploy/notes.md", 3, "0123456789abcdef0123456789abcdef01234567")));
    // An alert for a secret the registry does not know is named, not acted on.
    let other = s.gh.add_alert("acme/app", "ghp_unrelated0000000000000000000000000000", None);

    let out = s.run(&p, &["leaks"]);
    let shown = text(&out);
    assert_eq!(code(&out), 3, "{shown}");
    assert!(shown.contains(&format!("secret-scanning alert acme/app#{alert}")), "{shown}");
    assert!(shown.contains("deploy/notes.md:3 in commit 0123456"), "{shown}");
    assert!(shown.contains("CHITTY_ID_TOKEN v1 (current, LIVE)"), "{shown}");
    assert!(shown.contains(&format!("acme/app#{other}")) && shown.contains("the registry does not know"), "{shown}");
    assert!(!shown.contains(&v1) && !shown.contains("ghp_unrelated"), "no value is ever shown: {shown}");

    // A dry run says what it would do and changes nothing.
    let mints = s.id.count(MINT);
    assert_eq!(mints, 1);
    let out = s.run(&p, &["leaks", "--rotate", "--dry-run"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("mint"), "{}", text(&out));
    assert_eq!(s.id.count(MINT), mints);
    assert!(s.id.is_valid(&v1));
    assert_eq!(s.gh.alert("acme/app", alert).state, "open");

    let out = s.run(&p, &["leaks", "--rotate"]);
    let shown = text(&out);
    assert_eq!(code(&out), 0, "{shown}");
    let v2 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    assert_ne!(v1, v2);
    assert_eq!(s.id.count(MINT), 2, "one mint for the leaked token");
    assert!(!s.id.is_valid(&v1), "the leaked token is revoked at the issuer, with no overlap");
    assert!(s.id.is_valid(&v2));
    for (place, held) in s.held(&p) {
        assert_eq!(held.as_deref(), Some(v2.as_str()), "{place}");
    }
    let closed = s.gh.alert("acme/app", alert);
    assert_eq!((closed.state.as_str(), closed.resolution.as_deref()), ("resolved", Some("revoked")));
    let comment = closed.resolution_comment.unwrap();
    assert!(comment.contains("CHITTY_ID_TOKEN v1") && comment.contains("revoked"), "{comment}");
    assert_eq!(s.gh.alert("acme/app", other).state, "open", "an alert nobody matched stays open");
    let log = audit_text(&p);
    assert!(log.contains("leaks.found") && log.contains("leaks.alert-closed"), "{log}");
    assert!(!log.contains(&v1) && !log.contains(&v2));
    assert!(p.ok(&["audit", "verify"]).contains("chain intact"));

    // A second run finds the value dead and the alert closed: nothing to do.
    let mints = s.id.count(MINT);
    let (code2, json) = leaks_json(&s, &p, &["--rotate"]);
    assert_eq!(code2, 0, "{json}");
    assert_eq!(s.id.count(MINT), mints, "a second run mints nothing");
    assert_eq!(json["closed"], serde_json::json!([]));
    assert_eq!(json["live"], 0);
}

#[test]
fn an_alert_for_a_value_already_revoked_is_closed_without_rotating() {
    let s = Services::start();
    let p = Project::initialised(&s.policy("0s"));
    s.ok(&p, &["rotate"]);
    let v1 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    s.ok(&p, &["rotate"]);
    assert!(!s.id.is_valid(&v1), "no overlap: v1 was revoked by the rotation");
    let alert = s.gh.add_alert("acme/app", &v1, None);

    let (code1, json) = leaks_json(&s, &p, &[]);
    assert_eq!(code1, 0, "a dead value exposed is not a live leak: {json}");
    assert_eq!(json["leaks"][0]["liveness"], "dead");
    assert_eq!(json["leaks"][0]["stage"], "revoked");

    let mints = s.id.count(MINT);
    assert_eq!(mints, 2);
    let (code2, json) = leaks_json(&s, &p, &["--rotate"]);
    assert_eq!(code2, 0, "{json}");
    assert_eq!(s.id.count(MINT), mints, "nothing is rotated for a dead value");
    assert_eq!(json["closed"][0]["alert"], format!("acme/app#{alert}"));
    assert_eq!(s.gh.alert("acme/app", alert).resolution.as_deref(), Some("revoked"));
}

#[test]
fn alerts_are_read_across_pages_and_a_file_in_the_working_tree_is_named_by_line() {
    let s = Services::start();
    let p = Project::initialised(&s.policy("24h"));
    s.ok(&p, &["rotate"]);
    let v1 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    for i in 0..130 {
        s.gh.add_alert("acme/app", &format!("unrelated-secret-{i:04}-0000000000"), None);
    }
    let known = s.gh.add_alert("acme/app", &v1, None);
    std::fs::write(p.path("config.js"), format!("// settings\nconst token = \"{v1}\";\n")).unwrap();

    let (code1, json) = leaks_json(&s, &p, &[]);
    assert_eq!(code1, 3, "{json}");
    let leaks = json["leaks"].as_array().unwrap();
    let sources: Vec<&str> = leaks.iter().map(|l| l["source"].as_str().unwrap()).collect();
    assert!(sources.contains(&"alert") && sources.contains(&"working-tree"), "{json}");
    let alert = leaks.iter().find(|l| l["source"] == "alert").unwrap();
    assert_eq!(alert["alert"], format!("acme/app#{known}"), "the alert on the second page is read");
    let file = leaks.iter().find(|l| l["source"] == "working-tree").unwrap();
    assert_eq!((file["file"].as_str(), file["line"].as_u64()), (Some("config.js"), Some(2)));
    assert_eq!(json["unknown_alerts"].as_array().unwrap().len(), 130);
    // The .env target holds the value by design: not a leak.
    assert!(!leaks.iter().any(|l| l["file"].as_str().is_some_and(|f| f.contains(".env"))), "{json}");
    assert!(!json.to_string().contains(&v1));
}

#[test]
fn a_repository_without_secret_scanning_is_said_and_the_rest_still_searched() {
    let s = Services::start();
    let p = Project::initialised(&s.policy("24h"));
    s.ok(&p, &["rotate"]);
    s.gh.turn_off_scanning("acme/app");
    let (code1, json) = leaks_json(&s, &p, &[]);
    assert_eq!(code1, 0, "{json}");
    let notes = json["notes"].to_string();
    assert!(notes.contains("github:acme/app") && notes.contains("Secret scanning is disabled"), "{notes}");
}

#[test]
fn a_leaked_pending_value_undoes_the_rotation() {
    use crate::fakes::Faults;
    let s = Services::start();
    let p = Project::initialised(&s.policy("1h"));
    s.ok(&p, &["rotate"]);
    let v1 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    s.gh.control.set_faults(Faults { fail_percent: 100, ..Faults::default() });
    assert_eq!(code(&s.run(&p, &["rotate"])), 4);
    s.gh.control.set_faults(Faults::default());
    let v2 = p.ok(&["get", "CHITTY_ID_TOKEN", "--which", "pending"]).trim_end().to_string();
    s.gh.add_alert("acme/app", &v2, None);

    let out = s.run(&p, &["leaks", "--rotate"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(!s.id.is_valid(&v2), "the leaked pending value is revoked");
    assert!(s.id.is_valid(&v1), "the current value, not leaked, stays");
    for (place, held) in s.held(&p) {
        assert_eq!(held.as_deref(), Some(v1.as_str()), "{place}");
    }
}

#[test]
fn a_leaked_previous_value_is_revoked_now_and_the_current_one_is_kept() {
    let s = Services::start();
    let p = Project::initialised(&s.policy("24h"));
    s.ok(&p, &["rotate"]);
    let v1 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    s.ok(&p, &["rotate"]);
    let v2 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    assert!(s.id.is_valid(&v1), "v1 is in its overlap");
    std::fs::write(p.path("old-notes.txt"), format!("token was {v1}\n")).unwrap();

    let (code1, json) = leaks_json(&s, &p, &[]);
    assert_eq!(code1, 3, "{json}");
    assert_eq!(
        (json["leaks"][0]["stage"].as_str(), json["leaks"][0]["liveness"].as_str()),
        (Some("previous"), Some("live"))
    );
    let mints = s.id.count(MINT);
    let out = s.run(&p, &["leaks", "--rotate"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(!s.id.is_valid(&v1), "the leaked previous value is revoked, its overlap cut short");
    assert!(s.id.is_valid(&v2), "the current value was not leaked: kept");
    assert_eq!(s.id.count(MINT), mints, "nothing is minted for it");
    assert_eq!(p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end(), v2);
}

/// `git` in the project, with a fixed author.
fn git(p: &Project, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(p.path(""))
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
}

#[test]
fn a_value_committed_then_deleted_is_found_in_history_and_ended() {
    let s = Services::start();
    let p = Project::initialised(&s.policy("24h"));
    s.ok(&p, &["rotate"]);
    let v1 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    git(&p, &["init", "-q", "-b", "main"]);
    std::fs::write(p.path(".gitignore"), "app/.env\n").unwrap();
    std::fs::write(p.path("deploy.sh"), format!("#!/bin/sh\n# for now\nexport CHITTY_ID_TOKEN={v1}\n")).unwrap();
    git(&p, &["add", "-A"]);
    git(&p, &["commit", "-q", "-m", "deploy script"]);
    std::fs::write(p.path("deploy.sh"), "#!/bin/sh\n").unwrap();
    git(&p, &["commit", "-q", "-am", "take the token out"]);

    let (code1, json) = leaks_json(&s, &p, &[]);
    assert_eq!(code1, 3, "{json}");
    let leaks = json["leaks"].as_array().unwrap();
    let hit = leaks.iter().find(|l| l["source"] == "history").unwrap_or_else(|| panic!("{json}"));
    assert_eq!((hit["file"].as_str(), hit["line"].as_u64()), (Some("deploy.sh"), Some(3)));
    assert_eq!(hit["commit"].as_str().map(str::len), Some(40));
    assert!(!leaks.iter().any(|l| l["source"] == "working-tree"), "the file no longer holds it: {json}");

    let out = s.run(&p, &["leaks", "--rotate"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(!s.id.is_valid(&v1));
    let (code2, json) = leaks_json(&s, &p, &[]);
    assert_eq!(code2, 0, "history keeps the value, but it no longer works: {json}");
    assert_eq!(json["leaks"][0]["liveness"], "dead");
    let (_, offline) = leaks_json(&s, &p, &["--no-history", "--offline"]);
    assert_eq!(offline["leaks"], serde_json::json!([]));
}
