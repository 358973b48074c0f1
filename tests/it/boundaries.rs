//! Truth at the boundaries (issue 23): what the tool writes is real, and
//! only where it may write.

use crate::common::*;

/// `--now` is for looking ahead: a command that writes the registry
/// refuses it (before this, `rotate --now 2027-…` saved future times, and
/// `status` then showed a version "-289d old"); reading commands take it.
#[test]
fn now_is_refused_on_every_command_that_writes_and_taken_by_every_one_that_reads() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "SESSION_KEY"]);
    let before = snapshot(&p.path(".chitty-secrets"));
    let later = "2027-06-01T00:00:00Z";
    let writes: &[&[&str]] = &[
        &["rotate"],
        &["rotate", "--abort", "SESSION_KEY"],
        &["sync"],
        &["set", "VENDOR_API_KEY"],
        &["import", "app/.env"],
        &["keys", "rekey"],
        &["upgrade"],
        &["trust", "accept", ".chitty-secrets/recipients"],
        &["init"],
    ];
    for args in writes {
        let out = p.run(&[&["--now", later][..], args].concat());
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        assert!(text(&out).contains("is for looking ahead"), "{args:?}: {}", text(&out));
    }
    assert_eq!(snapshot(&p.path(".chitty-secrets")), before, "nothing was written");
    let reads: &[&[&str]] =
        &[&["status"], &["plan"], &["rotate", "--dry-run"], &["sync", "--check"], &["get", "SESSION_KEY"]];
    for args in reads {
        let out = p.run(&[&["--now", later][..], args].concat());
        assert!(!text(&out).contains("is for looking ahead"), "{args:?}: {}", text(&out));
    }
    assert_eq!(snapshot(&p.path(".chitty-secrets")), before, "nothing was written by a read");
}

/// A .env target that is a file the tool or git owns is a policy error
/// with file:line:col, before anything is written: the project file (a
/// value there broke every command after it), anything under `.git/` (git's
/// config, hooks), and git's own files in the work tree.
#[test]
fn a_target_on_the_project_file_or_gits_own_files_is_refused() {
    for path in ["chitty-secrets.toml", ".git/config", ".git/hooks/pre-commit", "app/.gitignore", ".gitattributes"] {
        let policy = format!(
            "[issuers.local]\nkind = \"random\"\n\n[tokens.T]\nissuer = \"local\"\n\n[[tokens.T.targets]]\nkind = \"dotenv\"\npath = \"{path}\"\n"
        );
        let p = Project::new(&policy);
        std::fs::create_dir_all(p.path(".git/hooks")).unwrap();
        std::fs::write(p.path(".git/config"), "[core]\n").unwrap();
        std::fs::write(p.path("chitty-secrets.toml"), "policies = \"policies\"\nregistry = \".chitty-secrets\"\n")
            .unwrap();
        let out = p.run(&["policy", "check"]);
        assert_eq!(code(&out), 2, "{path}: {}", text(&out));
        assert!(text(&out).contains("policies/main.toml:"), "{path}: file:line:col: {}", text(&out));
        assert!(
            text(&out).contains("git's own file") || text(&out).contains("the project file"),
            "{path}: {}",
            text(&out)
        );
        assert_eq!(std::fs::read_to_string(p.path(".git/config")).unwrap(), "[core]\n");
    }
}

/// `init` with a broken policy said "next: rotate", which then failed: it
/// now sets up the registry and the identity, then names every problem in
/// the policies (file:line:col) and exits 2.
#[test]
fn init_with_a_broken_policy_names_its_problems_instead_of_saying_rotate() {
    let p = Project::new("[tokens.T]\nissuer = \"nope\"\n");
    let out = p.run(&["init"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("policies/main.toml:2:10") && !text(&out).contains("next: "), "{}", text(&out));
    assert!(p.path(".chitty-secrets/key.age").exists() && p.identity_file().exists());
}

/// A service whose error message echoes what it was sent (the request body
/// with the value, the `Authorization` header with the admin password):
/// nothing of it reaches the terminal or `--json`, whatever the service
/// (item 6).
#[test]
fn a_service_that_echoes_the_request_shows_no_value_and_no_credential() {
    use crate::fakes::Faults;
    use base64::Engine as _;
    let s = crate::chitty::Services::start();
    let p = Project::initialised(&s.policy("24h"));
    let hostile = Faults { echo: true, ..Faults::default() };
    s.ok(&p, &["rotate"]);

    // Cloudflare echoes the secret it was sent (GitHub's body is sealed).
    s.cf.control.set_faults(hostile);
    for args in [&["rotate", "CHITTY_ID_TOKEN"][..], &["rotate", "--json", "CHITTY_ID_TOKEN"]] {
        let out = s.run(&p, args);
        assert_ne!(code(&out), 0, "{}", text(&out));
        let said = text(&out);
        assert!(said.contains("[redacted]"), "the service's words are shown, scrubbed: {said}");
        let pending = p.ok(&["get", "CHITTY_ID_TOKEN", "--which", "pending"]).trim_end().to_string();
        assert!(!said.contains(&pending), "{args:?} printed the value");
    }
    s.cf.control.set_faults(Faults::default());
    s.ok(&p, &["rotate", "CHITTY_ID_TOKEN"]);

    // The ID service echoes the Authorization header (Basic admin:password).
    s.id.control.set_faults(hostile);
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", crate::fakes::chitty::ADMIN_PASSWORD));
    for args in [&["rotate", "CHITTY_ID_TOKEN"][..], &["rotate", "--json", "CHITTY_ID_TOKEN"]] {
        let out = s.run(&p, args);
        assert_ne!(code(&out), 0, "{}", text(&out));
        let said = text(&out);
        assert!(!said.contains(&basic) && !said.contains(crate::fakes::chitty::ADMIN_PASSWORD), "{args:?}: {said}");
    }
}

/// An issuer URL with `user:password@` is a policy error that never prints
/// the password.
#[test]
fn an_issuer_url_with_credentials_is_refused_without_showing_them() {
    let p = Project::new(
        "[issuers.id]\nkind = \"chittyid\"\nurl = \"https://admin:hunter2-secret@id.example.com\"\nadmin_password_from = \"env:P\"\n\n[tokens.T]\nissuer = \"id\"\n",
    );
    let out = p.run(&["policy", "check"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("user name or password") && !text(&out).contains("hunter2-secret"), "{}", text(&out));
}

/// GitHub's `updated_at` has one-second resolution: a secret edited by hand
/// in the second of our write looks untouched to `sync --verify`. One
/// documented flag writes every name again, whatever the records and
/// listings say (item 4).
#[test]
fn sync_redeliver_writes_every_name_again_whatever_the_records_say() {
    let s = crate::chitty::Services::start();
    let p = Project::initialised(&s.policy("24h"));
    s.ok(&p, &["rotate"]);
    s.gh.control.reset_counts();
    s.cf.control.reset_counts();
    s.ok(&p, &["sync", "--verify"]);
    assert_eq!(s.gh.control.writes() + s.cf.control.writes(), 0, "in sync: nothing written");
    let out = s.ok(&p, &["sync", "--redeliver"]);
    assert!(out.contains("written again") || out.contains("updated") || out.contains("written"), "{out}");
    assert!(s.gh.control.writes() >= 1 && s.cf.control.writes() >= 1, "every remote target written again");
    let current = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    for (place, held) in s.held(&p) {
        assert_eq!(held.as_deref(), Some(current.as_str()), "{place}");
    }
}

/// A minted token one of the token's targets cannot take (an ESC for a .env
/// file, a NUL anywhere, 6 KB for a Worker) was stored and delivered
/// to some targets before another refused it, leaving a rotation that could
/// never finish. Every target's constraints are checked before anything is
/// stored or sent: the token is refused and revoked at its issuer (item 6).
#[test]
fn a_minted_token_a_target_cannot_take_is_refused_before_anything_is_stored_or_sent() {
    let p = Project::new("");
    let revoked = p.path("revoked");
    let issue = p.path("issue.sh");
    let revoke = p.path("revoke.sh");
    for (name, body) in [
        (&issue, "printf '{\"token\": \"svc_%s\", \"token_id\": \"id-1\"}' \"$VALUE\"\n".to_string()),
        (&revoke, format!("echo revoked >> {}\n", revoked.display())),
    ] {
        std::fs::write(name, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(name, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        p.path("policies/main.toml"),
        format!(
            "[issuers.cmd]\nkind = \"command\"\ncommand = [\"{}\"]\nrevoke = [\"{}\"]\n\n[tokens.SVC_TOKEN]\nissuer = \"cmd\"\n\n[[tokens.SVC_TOKEN.targets]]\nkind = \"dotenv\"\npath = \"app/.env\"\n\n[[tokens.SVC_TOKEN.targets]]\nkind = \"wrangler\"\nworker = \"api\"\n",
            issue.display(),
            revoke.display()
        ),
    )
    .unwrap();
    p.ok(&["init"]);
    let huge = "x".repeat(6 * 1024);
    for (value, expected) in
        [("a\\u001bb", "any .env quoting"), ("a\\u0000b", "NUL byte"), (huge.as_str(), "at most 5 KB")]
    {
        let _ = std::fs::remove_file(&revoked);
        let out = p.command(&["rotate"]).env("VALUE", value).output().unwrap();
        assert_ne!(code(&out), 0, "{}", text(&out));
        assert!(text(&out).contains(expected), "{expected}: {}", text(&out));
        assert!(revoked.exists(), "{expected}: the token is revoked at the issuer");
        assert!(!p.path("app/.env").exists(), "{expected}: nothing delivered");
        let status: serde_json::Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
        assert!(status["tokens"][0]["current"].is_null() && status["tokens"][0]["pending"].is_null(), "{status}");
    }
}

/// A service that answers 100 MB is not read into memory: the answer is
/// refused once it passes what is read from that service (item 6).
#[test]
fn a_huge_answer_is_refused_once_it_passes_the_cap() {
    use crate::fakes::Faults;
    let s = crate::chitty::Services::start();
    let p = Project::initialised(&s.policy("24h"));
    s.id.control.set_faults(Faults { huge: true, ..Faults::default() });
    let out = s.run(&p, &["rotate"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    s.id.control.set_faults(Faults::default());
    s.gh.control.set_faults(Faults { huge: true, ..Faults::default() });
    let out = s.run(&p, &["rotate"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("more than"), "{}", text(&out));
}

/// `init` in a folder with no policy offers a starter policy (one locally
/// minted token into .env) instead of only an error; asked for, it is
/// written, and it runs as it is.
#[test]
fn init_without_a_policy_offers_a_starter_that_runs() {
    let p = Project::new("");
    std::fs::remove_dir_all(p.path("policies")).unwrap();
    let out = p.run(&["init"]);
    assert_ne!(code(&out), 0);
    assert!(text(&out).contains("chitty-secrets init --starter"), "{}", text(&out));
    let out = p.ok(&["init", "--starter"]);
    assert!(out.contains("wrote a starter policy at policies/starter.toml"), "{out}");
    p.ok(&["policy", "check"]);
    p.ok(&["rotate"]);
    assert!(env_value(&p.path(".env"), "APP_TOKEN").is_some_and(|v| v.len() > 20));
}

/// `rotate --json` prints every field the README lists for every result,
/// a failure included (it lacked `done`, and `hint` when there was none).
#[test]
fn rotate_json_has_every_documented_field_for_a_failure_too() {
    let p = Project::new("");
    let issue = p.path("issue.sh");
    std::fs::write(&issue, "#!/bin/sh\necho 'the service said no' >&2\nexit 1\n").unwrap();
    std::fs::set_permissions(&issue, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        p.path("policies/main.toml"),
        format!(
            "[issuers.cmd]\nkind = \"command\"\ncommand = [\"{}\"]\n\n[tokens.T]\nissuer = \"cmd\"\n",
            issue.display()
        ),
    )
    .unwrap();
    p.ok(&["init"]);
    let out = p.run(&["rotate", "--json"]);
    assert_ne!(code(&out), 0);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = &json["tokens"][0];
    for field in ["token", "result", "done", "error", "hint", "resumable"] {
        assert!(token.get(field).is_some(), "{field} missing: {token}");
    }
    assert_eq!(token["result"], "failed", "{token}");
    assert!(token["done"].is_array(), "{token}");
}

/// A bare `rotate` rotates what it can: a token issued by hand that has a
/// value and is not due no longer fails the run (the README's ChittyAuth
/// example keeps its bearer token this way). Named, it still says how to
/// rotate it by hand, and fails.
#[test]
fn a_bare_rotate_leaves_a_hand_issued_token_with_a_value_alone() {
    let p = Project::initialised(LOCAL_POLICY);
    let out = p.run_with_stdin(&["set", "VENDOR_API_KEY"], "vendor_key_0123456789abcdef\n");
    assert_eq!(code(&out), 0, "{}", text(&out));
    p.ok(&["rotate"]);
    let out = p.ok(&["rotate"]);
    assert!(!out.contains("VENDOR_API_KEY"), "{out}");
    let out = p.run(&["rotate", "VENDOR_API_KEY"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("chitty-secrets set VENDOR_API_KEY"), "{}", text(&out));
}
