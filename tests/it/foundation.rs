use std::process::Command;

use crate::common::*;

#[test]
fn init_rotate_then_get_returns_what_the_env_files_hold() {
    let p = Project::initialised(LOCAL_POLICY);
    assert_eq!(
        std::fs::metadata(p.identity_file())
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .unwrap(),
        0o600
    );
    let out = p.run(&["rotate"]);
    // The manual token cannot be minted: rotate says so and exits 1, the others are done.
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        text(&out).contains("VENDOR_API_KEY is issued by hand")
            || text(&out).contains("chitty-secrets set VENDOR_API_KEY"),
        "{}",
        text(&out)
    );

    let token = p.ok(&["get", "CHITTY_ID_TOKEN"]);
    let token = token.trim_end();
    assert!(token.starts_with("mcp_auth_") && token.len() == 9 + 32, "{token}");
    assert_eq!(env_value(&p.path("app/.env"), "CHITTY_ID_TOKEN").as_deref(), Some(token));
    assert_eq!(env_value(&p.path("app/.env"), "CHITTY_API_KEY").as_deref(), Some(token));
    assert_eq!(env_value(&p.path("worker/.dev.vars"), "CHITTY_ID_TOKEN").as_deref(), Some(token));
    let session = p.ok(&["get", "SESSION_KEY"]);
    assert_eq!(env_value(&p.path("app/.env"), "SESSION_KEY").as_deref(), Some(session.trim_end()));
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p.path("app/.env")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn the_stock_age_cli_decrypts_a_value_file() {
    let p = Project::initialised(LOCAL_POLICY);
    p.run(&["rotate", "CHITTY_ID_TOKEN"]);
    let token = p.ok(&["get", "CHITTY_ID_TOKEN"]);
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(p.identity_file())
        .arg(p.value_file("CHITTY_ID_TOKEN", 1))
        .output()
        .expect("the `age` CLI is installed (apt-get install age)");
    assert!(out.status.success(), "{}", text(&out));
    let plain: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plain["body"]["value"].as_str(), Some(token.trim_end()));
    assert_eq!(plain["body"]["token"].as_str(), Some("CHITTY_ID_TOKEN"));
}

#[test]
fn a_second_rotate_due_right_away_changes_nothing() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN", "SESSION_KEY"]);
    let before = snapshot(p.dir.path());
    let out = p.ok(&["rotate", "--due", "CHITTY_ID_TOKEN", "SESSION_KEY"]);
    assert!(out.contains("nothing to do"), "{out}");
    assert_eq!(before, snapshot(p.dir.path()), "rotate --due wrote something");
    // And a month on, only the token with the shorter period is due.
    let later = (chrono::Utc::now() + chrono::TimeDelta::days(31)).to_rfc3339();
    let plan = p.ok(&["--now", &later, "rotate", "--due", "--dry-run", "CHITTY_ID_TOKEN", "SESSION_KEY"]);
    assert!(plan.contains("SESSION_KEY") && !plan.contains("CHITTY_ID_TOKEN"), "{plan}");
}

#[test]
fn sync_check_finds_a_hand_edit_and_sync_repairs_it() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN", "SESSION_KEY"]);
    assert_eq!(code(&p.run(&["sync", "--check", "CHITTY_ID_TOKEN", "SESSION_KEY"])), 0);

    let env = p
        .read("app/.env")
        .replace(&p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string(), "YOUR_TOKEN_HERE_REPLACE_ME");
    std::fs::write(p.path("app/.env"), env).unwrap();
    let out = p.run(&["sync", "--check", "CHITTY_ID_TOKEN", "SESSION_KEY"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("CHITTY_API_KEY differs from the registry"), "{}", text(&out));
    let env_before = p.read("app/.env");
    assert_eq!(p.read("app/.env"), env_before, "sync --check wrote");

    p.ok(&["sync", "CHITTY_ID_TOKEN", "SESSION_KEY"]);
    assert_eq!(code(&p.run(&["sync", "--check", "CHITTY_ID_TOKEN", "SESSION_KEY"])), 0);
    let token = p.ok(&["get", "CHITTY_ID_TOKEN"]);
    assert_eq!(env_value(&p.path("app/.env"), "CHITTY_API_KEY").as_deref(), Some(token.trim_end()));

    // A deleted file is drift too, and sync recreates it.
    std::fs::remove_file(p.path("worker/.dev.vars")).unwrap();
    assert_eq!(code(&p.run(&["sync", "--check"])), 3);
    p.run(&["sync"]);
    assert_eq!(env_value(&p.path("worker/.dev.vars"), "CHITTY_ID_TOKEN").as_deref(), Some(token.trim_end()));
}

#[test]
fn concurrent_rotations_never_corrupt_the_registry() {
    let p = Project::initialised(LOCAL_POLICY);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            p.command(&["--lock-timeout", "60s", "rotate", "CHITTY_ID_TOKEN", "SESSION_KEY"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for h in handles {
        let out = h.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "{}", text(&out));
    }
    let status: serde_json::Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
    let token = status["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "CHITTY_ID_TOKEN").unwrap();
    // Four runs at once: four versions, exactly one current, none pending.
    let stages: Vec<&str> =
        token["versions"].as_array().unwrap().iter().map(|v| v["stage"].as_str().unwrap()).collect();
    assert_eq!(stages.iter().filter(|s| **s == "current").count(), 1, "{stages:?}");
    assert_eq!(stages.iter().filter(|s| **s == "pending").count(), 0, "{stages:?}");
    assert_eq!(token["current"], 4);
    let value = p.ok(&["get", "CHITTY_ID_TOKEN"]);
    assert_eq!(env_value(&p.path("app/.env"), "CHITTY_ID_TOKEN").as_deref(), Some(value.trim_end()));
    assert_eq!(code(&p.run(&["sync", "--check", "CHITTY_ID_TOKEN", "SESSION_KEY"])), 0);
}

#[test]
fn a_held_lock_makes_a_writer_give_up_with_a_clear_message() {
    let p = Project::initialised(LOCAL_POLICY);
    let mut holder = Command::new("flock")
        .arg(p.path(".chitty-secrets/lock"))
        .args(["sleep", "20"])
        .spawn()
        .expect("flock (util-linux) is installed");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = p.run(&["--lock-timeout", "1s", "rotate", "SESSION_KEY"]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(code(&out), 1, "{}", text(&out));
    let msg = text(&out);
    assert!(msg.contains("locked by another chitty-secrets; gave up after 1s"), "{msg}");
    assert!(msg.contains("hint: wait for the other run to finish, or raise --lock-timeout"), "{msg}");
    assert!(!p.path("app/.env").exists(), "nothing may be written without the lock");
}

#[test]
fn a_malformed_policy_is_reported_with_file_line_and_column() {
    let p = Project::new(LOCAL_POLICY);
    std::fs::write(p.path("policies/broken.toml"), "[tokens.EXTRA]\nissuer = \"local\"\nrotate_evry = \"30d\"\n")
        .unwrap();
    for args in [&["policy", "check"][..], &["rotate"][..], &["status"][..]] {
        let out = p.run(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("policies/broken.toml:3:1: unknown field `rotate_evry`"), "{err}");
        assert!(err.contains("did you mean `rotate_every`?"), "{err}");
    }
    std::fs::remove_file(p.path("policies/broken.toml")).unwrap();
    assert!(p.ok(&["policy", "check"]).contains("3 tokens, 4 targets: ok"));
}

#[test]
fn commands_without_a_registry_or_identity_say_what_to_do() {
    let p = Project::new(LOCAL_POLICY);
    let out = p.run(&["status"]);
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("hint: run `chitty-secrets init`"), "{}", text(&out));
    p.ok(&["init"]);
    std::fs::remove_file(p.identity_file()).unwrap();
    let out = p.run(&["rotate", "SESSION_KEY"]);
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("error: no identity"), "{}", text(&out));
}

#[test]
fn run_passes_values_in_the_environment_only() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    let token = p.ok(&["get", "CHITTY_ID_TOKEN"]);
    let out = p.ok(&["run", "--only", "CHITTY_ID_TOKEN", "--", "sh", "-c", "echo \"$CHITTY_API_KEY\"; exit 0"]);
    assert_eq!(out, token);
    let out = p.run(&["run", "--allow-missing", "--", "sh", "-c", "exit 7"]);
    assert_eq!(code(&out), 7);
}

#[test]
fn github_actions_masks_a_value_before_printing_it() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "SESSION_KEY"]);
    let out = p.command(&["get", "SESSION_KEY"]).env("GITHUB_ACTIONS", "true").output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0], format!("::add-mask::{}", lines[1]));
}

#[test]
fn many_local_tokens_rotated_side_by_side_end_whole_and_in_order() {
    // Tokens with a local issuer mint and promote on several threads; the
    // .env files they share are still written once per run, by one writer.
    let mut policy = String::new();
    for i in 0..60 {
        policy.push_str(&format!(
            "[tokens.T{i:02}]\nissuer = \"random\"\n[[tokens.T{i:02}.targets]]\nkind = \"dotenv\"\npath = \"env/s{}.env\"\n",
            i % 3
        ));
    }
    let p = Project::initialised(&policy);
    for round in 1..=2 {
        let out = p.ok(&["rotate"]);
        let named: Vec<&str> = out.lines().filter(|l| l.starts_with('T')).collect();
        let mut sorted = named.clone();
        sorted.sort();
        assert_eq!(named, sorted, "tokens are reported in order");
        assert_eq!(named.len(), 60, "{out}");
        assert!(out.contains("60 done, 0 left pending, 0 failed"), "{out}");
        for i in 0..60 {
            let value = p.ok(&["get", &format!("T{i:02}")]);
            let held = env_value(&p.path(&format!("env/s{}.env", i % 3)), &format!("T{i:02}"));
            assert_eq!(held.as_deref(), Some(value.trim_end()), "round {round}: T{i:02}");
        }
    }
    let status: serde_json::Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
    for token in status["tokens"].as_array().unwrap() {
        assert_eq!(token["current"], 2, "{token}");
    }
    assert!(p.ok(&["audit", "verify"]).contains("chain intact"));
    assert_eq!(code(&p.run(&["check"])), 0);
}
