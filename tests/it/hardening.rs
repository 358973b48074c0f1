//! Regression tests for the defects an outside probe found (issue 10):
//! nothing lost, nothing leaked, on any input. Each runs the real binary.

use crate::common::*;

/// Points the project's policy at a `command` issuer: `issue.sh` with the
/// given body (and, when given, `revoke.sh`), issuing `SVC_TOKEN`.
fn command_issuer(p: &Project, issue: &str, revoke: Option<&str>) {
    let mut issuer = String::from("[issuers.cmd]\nkind = \"command\"\n");
    for (field, name, body) in [("command", "issue.sh", Some(issue)), ("revoke", "revoke.sh", revoke)] {
        let Some(body) = body else { continue };
        let script = p.path(name);
        std::fs::write(&script, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        issuer.push_str(&format!("{field} = [\"{}\"]\n", script.display()));
    }
    std::fs::write(p.path("policies/main.toml"), format!("{issuer}[tokens.SVC_TOKEN]\nissuer = \"cmd\"\n")).unwrap();
}

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

/// Item 8: a huge `ttl` or `overlap` used to panic in `rotate` (date
/// arithmetic overflow), after delivery and on every later run. Durations
/// are bounded where the policy is read, with the place to fix.
#[test]
fn a_duration_beyond_a_century_is_a_policy_error_not_a_panic() {
    for field in ["ttl", "overlap"] {
        let policy = LOCAL_POLICY.replacen(&format!("{field} = \""), &format!("{field} = \"100000000d\" # was \""), 1);
        let p = Project::new(&policy);
        for args in [&["policy", "check"][..], &["rotate", "CHITTY_ID_TOKEN"]] {
            let out = p.run(args);
            let said = text(&out);
            assert_ne!(code(&out), 101, "no panic: {said}");
            assert_ne!(code(&out), 0, "{said}");
            assert!(said.contains("longer than 100 years") && said.contains(".toml:"), "{field}: {said}");
        }
    }
}

/// Item 6: a write killed between the temp file and the rename left a
/// plaintext `..env.chitty-tmp-*` beside the target that `.env*` ignore
/// patterns miss. Temp files now start with the file's name, and the next
/// write removes any a killed run left.
#[test]
fn temp_files_left_by_a_killed_write_are_removed_by_the_next_run() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    let stale = [p.path("app/.env.chitty-tmp-0123456789ab"), p.path("app/..env.chitty-tmp-0123456789ab")];
    for s in &stale {
        std::fs::write(s, "CHITTY_ID_TOKEN=left-behind\n").unwrap();
    }
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    for s in &stale {
        assert!(!s.exists(), "{} was cleaned up", s.display());
    }
}

/// Item 13: `get ../../outside/x` read `x.toml`/`x.age` outside the
/// registry and printed the value. A name that is not a token name never
/// reaches the filesystem, from any command.
#[test]
fn a_token_name_that_is_a_path_is_refused_before_any_file_is_read() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    // A registry-shaped copy outside: what a traversal would reach.
    let outside = p.path("outside/tokens");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::copy(p.path(".chitty-secrets/tokens/CHITTY_ID_TOKEN.toml"), outside.join("x.toml")).unwrap();
    std::fs::copy(p.value_file("CHITTY_ID_TOKEN", 1), outside.join("x.0123456789abcdef.age")).unwrap();
    for name in ["../../outside/tokens/x", "../tokens/CHITTY_ID_TOKEN", "a/b", "CHITTY_ID_TOKEN/"] {
        let out = p.run(&["get", name]);
        assert_ne!(code(&out), 0, "{name}");
        let said = text(&out);
        assert!(said.contains("is not a token name"), "{name}: {said}");
        assert!(!said.contains("mcp_auth_"), "no value printed: {said}");
    }
}

/// Items 11 and 16: policies that loaded and then failed later (or wrote
/// over each other) are refused where they are read, each with
/// `file:line:col` and the reason.
#[test]
fn policies_that_cannot_work_are_refused_with_their_place() {
    let base = "[tokens.A]\nissuer = \"random\"\n[[tokens.A.targets]]\nkind = \"dotenv\"\npath = \"app/.env\"\n";
    let long_name = "N".repeat(300);
    let long_prefix = "p".repeat(100_000);
    let cases: Vec<(String, &str)> = vec![
        (base.replace("app/.env", "."), "must name a file"),
        (base.replace("app/.env", "app/"), "must name a file"),
        (base.replace("app/.env", "app/."), "must name a file"),
        (base.replace("app/.env", "app/\\u0000.env"), "must name a file"),
        (base.replace("tokens.A", &format!("tokens.{long_name}")), "is not a valid variable name"),
        (base.replace("issuer = \"random\"", "issuer = \"random\"\nttl = \"0s\""), "ttl is shorter than a minute"),
        (
            base.replace("issuer = \"random\"", "issuer = \"random\"\nttl = \"1d\"\noverlap = \"2d\""),
            "overlap (2d) is not shorter than ttl (1d)",
        ),
        (format!("[issuers.r]\nkind = \"random\"\nprefix = \"a'$b\"\n{}", base.replace("\"random\"", "\"r\"")), "prefix is not safe"),
        (
            format!("[issuers.r]\nkind = \"random\"\nprefix = \"{long_prefix}\"\n{}", base.replace("\"random\"", "\"r\"")),
            "prefix is not safe",
        ),
        (format!("{base}[check]\nplaceholders = [\"\"]\n"), "empty or shorter than 4"),
        (base.replace("path = \"app/.env\"", "path = \"app/.env\"\nnames = [\"A\", \"A\"]"), "listed twice"),
        (
            format!("{base}[tokens.B]\nissuer = \"random\"\n[[tokens.B.targets]]\nkind = \"dotenv\"\npath = \"./app//.env\"\nnames = [\"A\"]\n"),
            "is written by both `A` and `B`",
        ),
        (
            "[tokens.A]\nissuer = \"random\"\n[[tokens.A.targets]]\nkind = \"github\"\nrepo = \"Acme/API\"\n\
             [tokens.B]\nissuer = \"random\"\n[[tokens.B.targets]]\nkind = \"github\"\nrepo = \"acme/api\"\nnames = [\"a\"]\n"
                .to_string(),
            "is written by both",
        ),
    ];
    for (policy, expected) in cases {
        let p = Project::new(&policy);
        let out = p.run(&["policy", "check"]);
        let said = text(&out);
        assert_eq!(code(&out), 2, "{expected}: {said}");
        assert!(said.contains(expected), "{expected}: {said}");
        assert!(said.contains("main.toml:") && !said.contains("main.toml:1:1:"), "{expected}: a place: {said}");
    }
}

/// Item 2: a .env target inside the registry, the policies or an identity
/// file used to load, and `rotate` wrote a plaintext value into the
/// committed registry. Refused at load, by every command.
#[test]
fn a_dotenv_target_inside_a_file_the_tool_owns_is_refused() {
    let p = Project::initialised(LOCAL_POLICY);
    for (path, owner) in [
        (".chitty-secrets/recipients", "the registry"),
        (".chitty-secrets/audit.log", "the registry"),
        (".chitty-secrets/tokens/SESSION_KEY.toml", "the registry"),
        ("policies/main.toml", "the policies folder"),
        ("config/chitty-secrets/identity.txt", "an identity file"),
    ] {
        std::fs::write(p.path("policies/main.toml"), LOCAL_POLICY.replace("worker/.dev.vars", path)).unwrap();
        let before = snapshot(&p.path(".chitty-secrets"));
        for args in [&["policy", "check"][..], &["rotate", "CHITTY_ID_TOKEN"], &["status"]] {
            let out = p.run(args);
            let said = text(&out);
            assert_eq!(code(&out), 2, "{path} {args:?}: {said}");
            assert!(said.contains(&format!("inside {owner}")) && said.contains("main.toml:"), "{path}: {said}");
        }
        assert_eq!(snapshot(&p.path(".chitty-secrets")), before, "{path}: nothing written");
    }
}

/// Item 12: a symlinked .env was replaced by a regular copy, a symlinked
/// folder let a target write outside the project, and a 0400 file came
/// back 0600. Links inside the project are edited in place, links out are
/// refused, and a stricter mode is kept.
#[test]
fn symlinks_are_followed_inside_the_project_and_refused_outside_and_modes_kept() {
    use std::os::unix::fs::{PermissionsExt, symlink};
    let p = Project::initialised(LOCAL_POLICY);
    std::fs::create_dir_all(p.path("shared")).unwrap();
    std::fs::create_dir_all(p.path("app")).unwrap();
    std::fs::write(p.path("shared/common.env"), "SHARED=1\n").unwrap();
    symlink("../shared/common.env", p.path("app/.env")).unwrap();
    let outside = tempfile::tempdir().unwrap();
    symlink(outside.path(), p.path("worker")).unwrap();

    let out = p.run(&["rotate", "CHITTY_ID_TOKEN"]);
    let said = text(&out);
    assert_ne!(code(&out), 0, "{said}");
    assert!(said.contains("leads outside the project"), "{said}");
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing written outside");

    // A read-only file stays read-only (its owner can still rewrite it
    // atomically: the folder is writable).
    std::fs::remove_file(p.path("worker")).unwrap();
    std::fs::create_dir(p.path("worker")).unwrap();
    std::fs::write(p.path("worker/.dev.vars"), "X=1\n").unwrap();
    std::fs::set_permissions(p.path("worker/.dev.vars"), std::fs::Permissions::from_mode(0o400)).unwrap();
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    assert!(std::fs::symlink_metadata(p.path("app/.env")).unwrap().file_type().is_symlink(), "the link is kept");
    let shared = p.read("shared/common.env");
    assert!(shared.starts_with("SHARED=1\n") && shared.contains("CHITTY_ID_TOKEN=mcp_auth_"), "{shared}");
    let mode = std::fs::metadata(p.path("worker/.dev.vars")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o400);
    assert!(p.read("worker/.dev.vars").contains("CHITTY_ID_TOKEN="));
}

/// Item 16 (issuers): a `command` issuer that printed a placeholder, an
/// expired or an unreadable `expires_at` had its answer promoted. The mint
/// fails, nothing is stored, and a token with an id is revoked.
#[test]
fn an_issued_placeholder_or_expired_token_is_refused_and_revoked() {
    let p = Project::new("");
    for (answer, expected, revoked) in [
        (r#"{"token": "YOUR_TOKEN_HERE_REPLACE_ME", "token_id": "id-1"}"#, "looks like a placeholder", true),
        (
            r#"{"token": "svc_ok_1234567890", "token_id": "id-2", "expires_at": "2001-01-01T00:00:00Z"}"#,
            "expired already",
            true,
        ),
        (
            r#"{"token": "svc_ok_1234567890", "token_id": "id-3", "expires_at": "next tuesday"}"#,
            "not an RFC 3339 time",
            false,
        ),
    ] {
        let _ = std::fs::remove_file(p.path("revoked"));
        command_issuer(
            &p,
            &format!("cat <<'JSON'\n{answer}\nJSON\n"),
            Some(&format!("echo \"$CHITTY_TOKEN_ID\" >> {}\n", p.path("revoked").display())),
        );
        if !p.path(".chitty-secrets").exists() {
            p.ok(&["init"]);
        }
        let out = p.run(&["rotate"]);
        let said = text(&out);
        assert_eq!(code(&out), 1, "{said}");
        assert!(said.contains(expected), "{expected}: {said}");
        assert!(!said.contains("svc_ok_") && !said.contains("YOUR_TOKEN_HERE"), "no value in messages: {said}");
        assert!(p.run(&["get", "SVC_TOKEN"]).status.code() != Some(0), "nothing stored");
        assert_eq!(p.path("revoked").exists(), revoked, "{expected}");
        let status: serde_json::Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
        assert!(status["tokens"][0]["pending"].is_null(), "no rotation left open: {status}");
    }
}

/// Item 4: a deleted value file went unnoticed by `check`, `sync --check`
/// and `plan`, and `run` started the command without the token. Every one
/// of them now says which value is missing: every value file gone, or the
/// current version's alone (what restoring an older copy of the folder does).
#[test]
fn a_missing_or_older_value_file_is_reported_everywhere_and_run_refuses() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    p.ok(&["rotate", "SESSION_KEY"]);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    let newest = p.value_file("CHITTY_ID_TOKEN", 2);
    let kept: Vec<(std::path::PathBuf, Vec<u8>)> =
        p.value_files("CHITTY_ID_TOKEN").into_iter().map(|f| (f.clone(), std::fs::read(&f).unwrap())).collect();
    for (damage, expected) in [("deleted", "value"), ("older", "lacks the value of CHITTY_ID_TOKEN v2")] {
        match damage {
            "deleted" => kept.iter().for_each(|(f, _)| std::fs::remove_file(f).unwrap()),
            _ => std::fs::remove_file(&newest).unwrap(),
        }
        let out = p.run(&["check"]);
        assert_eq!(code(&out), 3, "{damage}: {}", text(&out));
        assert!(text(&out).contains("value-missing") && text(&out).contains(expected), "{damage}: {}", text(&out));
        for args in [&["sync", "--check"][..], &["plan"]] {
            let out = p.run(args);
            assert_ne!(code(&out), 0, "{damage} {args:?}: {}", text(&out));
            assert!(text(&out).contains("CHITTY_ID_TOKEN"), "{damage} {args:?}: {}", text(&out));
        }
        let out = p.run(&["run", "--", "sh", "-c", "echo started"]);
        assert_ne!(code(&out), 0, "{damage}: {}", text(&out));
        assert!(!text(&out).contains("started") && text(&out).contains("CHITTY_ID_TOKEN"), "{}", text(&out));
        let out = p.ok(&["run", "--allow-missing", "--only", "SESSION_KEY", "--", "sh", "-c", "echo started"]);
        assert_eq!(out, "started\n");
        for (path, bytes) in &kept {
            std::fs::write(path, bytes).unwrap();
        }
    }
    p.ok(&["sync", "--check", "CHITTY_ID_TOKEN"]);
}

/// Item 5: `A.age` copied over `B.age` made `get B` print A's value. The
/// token's name is inside the encrypted payload, and a mismatch is refused.
#[test]
fn a_value_file_copied_over_another_tokens_is_refused() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    p.ok(&["rotate", "SESSION_KEY"]);
    let a = p.ok(&["get", "CHITTY_ID_TOKEN"]);
    std::fs::copy(p.value_file("CHITTY_ID_TOKEN", 1), p.value_file("SESSION_KEY", 1)).unwrap();
    let out = p.run(&["get", "SESSION_KEY"]);
    assert_ne!(code(&out), 0);
    let said = text(&out);
    assert!(said.contains("it is CHITTY_ID_TOKEN's value file"), "{said}");
    assert!(!said.contains(a.trim()), "no value printed");
    assert!(!said.contains("not a recipient") && !said.contains("not one of its recipients"), "{said}");
}

/// Item 17: a truncated value file or a newer format was blamed on the
/// identity; a deleted `recipients` said "no registry, run init"; one
/// corrupt `B.toml` stopped `check` for every token.
#[test]
fn a_damaged_registry_is_named_for_what_is_wrong_and_check_goes_on() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    p.ok(&["rotate", "SESSION_KEY"]);
    let age_file = p.value_file("CHITTY_ID_TOKEN", 1);
    let whole = std::fs::read(&age_file).unwrap();
    std::fs::write(&age_file, &whole[..whole.len() / 2]).unwrap();
    let out = p.run(&["get", "CHITTY_ID_TOKEN"]);
    assert!(text(&out).contains("damaged or truncated"), "{}", text(&out));
    assert!(!text(&out).contains("not a recipient"), "{}", text(&out));
    std::fs::write(&age_file, &whole).unwrap();

    let meta = p.path(".chitty-secrets/tokens/SESSION_KEY.toml");
    let meta_text = p.read(".chitty-secrets/tokens/SESSION_KEY.toml");
    std::fs::write(&meta, meta_text.replacen("schema = 2", "schema = 99", 1)).unwrap();
    let out = p.run(&["status"]);
    assert!(text(&out).contains("newer than this chitty-secrets") && text(&out).contains("upgrade"), "{}", text(&out));
    std::fs::write(&meta, "this is [not toml").unwrap();
    let out = p.run(&["check"]);
    let said = text(&out);
    assert_eq!(code(&out), 3, "a finding, not a failure: {said}");
    assert!(said.contains("registry-damaged") && said.contains("SESSION_KEY"), "{said}");
    assert!(said.contains("VENDOR_API_KEY has no value"), "the other tokens are still checked: {said}");
    // sync delivers the others and fails only the damaged one; scan still
    // looks for the other values; plan reports it.
    std::fs::remove_file(p.path("app/.env")).unwrap();
    let out = p.run(&["sync", "CHITTY_ID_TOKEN", "SESSION_KEY"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("SESSION_KEY") && p.read("app/.env").contains("CHITTY_ID_TOKEN="), "{}", text(&out));
    let value = p.ok(&["get", "CHITTY_ID_TOKEN"]);
    std::fs::write(p.path("leak.txt"), &value).unwrap();
    let out = p.run(&["scan", "leak.txt"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("not looking for the values of SESSION_KEY"), "{}", text(&out));
    let out = p.run(&["plan"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("SESSION_KEY"), "{}", text(&out));
    std::fs::write(&meta, meta_text).unwrap();

    std::fs::remove_file(p.path(".chitty-secrets/recipients")).unwrap();
    let out = p.run(&["status"]);
    assert!(text(&out).contains("damaged") && !text(&out).contains("run `chitty-secrets init`"), "{}", text(&out));
}

/// Item 7: `keys add` by a stranger wrote its key into `recipients` before
/// failing, and `init` with a new identity on an existing registry added
/// its key silently. Only a member changes the recipients.
#[test]
fn only_a_member_changes_who_can_read_the_registry() {
    use age::secrecy::ExposeSecret;
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "SESSION_KEY"]);
    let stranger = age::x25519::Identity::generate();
    let stranger_file = p.path("stranger.key");
    std::fs::write(&stranger_file, stranger.to_string().expose_secret()).unwrap();
    let stranger_pub = stranger.to_public().to_string();
    let recipients = p.read(".chitty-secrets/recipients");

    let out = p.run(&["--identity", stranger_file.to_str().unwrap(), "keys", "add", &stranger_pub]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("is not one of the registry's recipients"), "{}", text(&out));
    assert_eq!(p.read(".chitty-secrets/recipients"), recipients);
    assert!(!p.path(".chitty-secrets/rekey-pending").exists());

    let out = p.command(&["init"]).env("CHITTY_SECRETS_IDENTITY_FILE", &stranger_file).output().unwrap();
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains(&format!("chitty-secrets keys add {stranger_pub}")), "{}", text(&out));
    assert_eq!(p.read(".chitty-secrets/recipients"), recipients, "init added no key");

    // A member adds them; then they read.
    p.ok(&["keys", "add", &stranger_pub]);
    p.ok(&["--identity", stranger_file.to_str().unwrap(), "get", "SESSION_KEY"]);
}

/// Item 9: with an empty or invalid `recipients`, every `rotate` minted,
/// failed to save, and recorded an orphan (burning quota). The registry is
/// proven writable before any issuer call.
#[test]
fn a_registry_that_cannot_keep_a_value_is_found_before_any_mint() {
    let p = Project::new("");
    let calls = p.path("calls");
    command_issuer(
        &p,
        &format!("echo x >> {}\necho '{{\"token\": \"svc_0123456789abcdef\"}}'\n", calls.display()),
        None,
    );
    p.ok(&["init"]);
    // A hand edit of the recipients file is not a member's (no MAC); the
    // point here is that it is found before any mint.
    for (recipients, expected) in [
        ("# nobody\n", "recipients was not written by a member"),
        ("age1notakey\n", "recipients was not written by a member"),
    ] {
        std::fs::write(p.path(".chitty-secrets/recipients"), recipients).unwrap();
        for _ in 0..2 {
            let out = p.run(&["rotate"]);
            assert_ne!(code(&out), 0, "{}", text(&out));
            assert!(text(&out).contains(expected), "{}", text(&out));
        }
        assert!(!calls.exists(), "the issuer was called");
        let out = p.run(&["check"]);
        assert!(!text(&out).contains("orphan"), "{}", text(&out));
    }
}

/// Item 10: a mint that never reached the service (DNS, refused) was taken
/// for "may have been issued" and became an orphan; a `random` value lost
/// to a kill became an orphan no one could revoke, failing `check` forever;
/// and nothing could close an orphan. Now only a mint that may have reached
/// a service makes one, and `rotate --forget-orphan TAG` closes it, audited.
#[test]
fn only_a_mint_that_may_have_reached_a_service_leaves_an_orphan_and_one_can_be_closed() {
    // (a) Nothing listens on the port: the request was never sent.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let p = Project::new(&format!(
        "[issuers.id]\nkind = \"chittyid\"\nurl = \"http://127.0.0.1:{port}\"\nadmin_password_from = \"env:PW\"\n\
         [tokens.ID_TOKEN]\nissuer = \"id\"\nscopes = [\"mint\"]\n"
    ));
    p.ok(&["init"]);
    for _ in 0..2 {
        let out = p.command(&["rotate"]).env("PW", "pw").env("CHITTY_SECRETS_RETRY_BASE_MS", "1").output().unwrap();
        assert_eq!(code(&out), 1, "{}", text(&out));
        assert!(text(&out).contains("not reached, so nothing was minted"), "{}", text(&out));
    }
    assert!(!text(&p.run(&["check"])).contains("orphan"));

    // (b) A random value lost to a kill is no orphan.
    let p = Project::initialised(LOCAL_POLICY);
    let out = p.command(&["rotate", "SESSION_KEY"]).env("CHITTY_SECRETS_CRASH_AT", "after-mint").output().unwrap();
    assert_eq!(out.status.code(), None, "{}", text(&out));
    p.ok(&["rotate", "SESSION_KEY"]);
    assert!(!text(&p.run(&["check"])).contains("orphan"), "{}", text(&p.run(&["check"])));

    // (c) A command issuer (a service behind it) killed after the mint: an
    // orphan with its tag, closed by hand.
    let p = Project::new("");
    command_issuer(&p, "echo '{\"token\": \"svc_0123456789abcdef\"}'\n", None);
    p.ok(&["init"]);
    let out = p.command(&["rotate"]).env("CHITTY_SECRETS_CRASH_AT", "after-mint").output().unwrap();
    assert_eq!(out.status.code(), None, "{}", text(&out));
    p.ok(&["rotate"]);
    let out = p.run(&["check"]);
    let said = text(&out);
    assert_eq!(code(&out), 3, "{said}");
    let tag = said.split("--forget-orphan ").nth(1).and_then(|t| t.split('`').next()).expect("a tag").to_string();
    let out = p.ok(&["rotate", "--forget-orphan", &tag]);
    assert!(out.contains("forgot the suspected orphan"), "{out}");
    let out = p.run(&["check"]);
    assert!(!text(&out).contains("orphan"), "{}", text(&out));
    assert!(p.read(".chitty-secrets/audit.log").contains("rotate.orphan-forgotten"));
    assert_ne!(code(&p.run(&["rotate", "--forget-orphan", &tag])), 0, "a tag is forgotten once");
}

/// Item 14: `check` ignored an identity named with `--identity` (or the
/// environment) that could not be read, and exited 0 after a hand edit;
/// `sync --check` without any identity said "every target is up to date"
/// though no .env value was compared.
#[test]
fn a_check_that_could_not_compare_never_says_all_is_well() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    let out = p.run(&["--identity", "/nonexistent/key.txt", "check"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("/nonexistent/key.txt"), "{}", text(&out));
    let out = p.command(&["check"]).env("CHITTY_SECRETS_IDENTITY_FILE", "/nonexistent/key.txt").output().unwrap();
    assert_ne!(code(&out), 0, "{}", text(&out));

    // No identity anywhere: the config-dir one is moved away.
    std::fs::rename(p.identity_file(), p.path("moved.key")).unwrap();
    let out = p.run(&["sync", "--check", "CHITTY_ID_TOKEN"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(!text(&out).contains("up to date") && text(&out).contains("not compared"), "{}", text(&out));
}

/// Item 15: mid-rotation, `check` reported `drift` and `stale-delivery`
/// with "run `chitty-secrets sync`", and following it wrote the old value
/// over the pending one. Check and sync now know a rotation is under way.
#[test]
fn during_a_pending_rotation_check_and_sync_point_to_rotate_not_backwards() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    let out =
        p.command(&["rotate", "CHITTY_ID_TOKEN"]).env("CHITTY_SECRETS_CRASH_AT", "after-deliver").output().unwrap();
    assert_eq!(out.status.code(), None, "{}", text(&out));
    let delivered = p.read("app/.env");

    let out = p.run(&["check"]);
    let said = text(&out);
    assert!(said.contains("rotation-pending") && said.contains("rotate --abort CHITTY_ID_TOKEN"), "{said}");
    for wrong in ["error[drift]", "stale-delivery"] {
        assert!(!said.contains(wrong), "{wrong}: {said}");
    }

    let out = p.run(&["sync", "CHITTY_ID_TOKEN"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("rotation in progress"), "{}", text(&out));
    assert_eq!(p.read("app/.env"), delivered, "sync left the pending value in place");

    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    let out = p.run(&["check"]);
    assert!(!text(&out).contains("rotation-pending"), "{}", text(&out));
}

/// Item 17 (audit log): a kill mid-append left a partial last line, and
/// `audit verify` failed forever with a raw parser message while `seq`
/// restarted at 0. The torn line is kept, fenced by the next write, and
/// named by `verify`.
#[test]
fn a_torn_audit_tail_is_fenced_and_the_chain_goes_on() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    let log = p.path(".chitty-secrets/audit.log");
    let whole = p.read(".chitty-secrets/audit.log");
    let entries = whole.lines().count();
    std::fs::write(&log, &whole[..whole.len() - 20]).unwrap();
    let out = p.ok(&["audit", "verify"]);
    assert!(out.contains(&format!(":{entries}: cut short by a crash")), "{out}");

    p.ok(&["rotate", "SESSION_KEY"]);
    let out = p.ok(&["audit", "verify"]);
    assert!(out.contains("chain intact") && out.contains("cut short"), "{out}");
    let text = p.read(".chitty-secrets/audit.log");
    assert!(text.contains("audit.torn-tail"), "{text}");
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert!(last["seq"].as_u64().unwrap() >= entries as u64, "seq goes on: {last}");
    // An edit elsewhere is still a break.
    std::fs::write(&log, text.replacen("rotate.mint", "rotate.mlnt", 1)).unwrap();
    assert_eq!(code(&p.run(&["audit", "verify"])), 3);
}

/// Item 17 (files): an identity file readable by others was only flagged by
/// `check`; an unreadable .env was reported as "does not exist".
#[test]
fn an_exposed_identity_is_warned_by_every_command_and_an_unreadable_env_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    std::fs::set_permissions(p.identity_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    for args in [&["get", "CHITTY_ID_TOKEN"][..], &["sync"], &["rotate", "SESSION_KEY"], &["plan"]] {
        let out = p.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("readable by group or others"), "{args:?}: {}", text(&out));
    }
    std::fs::set_permissions(p.identity_file(), std::fs::Permissions::from_mode(0o600)).unwrap();

    std::fs::write(p.path("worker/.dev.vars"), b"CHITTY_ID_TOKEN=\xff\xfe\n").unwrap();
    let out = p.run(&["check"]);
    let said = text(&out);
    assert!(said.contains("target-unreadable") && said.contains("is not UTF-8"), "{said}");
    assert!(!said.contains("worker/.dev.vars does not exist"), "{said}");
}
