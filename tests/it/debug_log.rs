//! The debug log (`-v`, `-vv`, `CHITTY_SECRETS_LOG`): every request and
//! decision on stderr, and never a value, a token or a credential, through
//! every command that talks to a service.

use crate::chitty::Services;
use crate::common::*;
use crate::fakes::{chitty, cloudflare, github};

#[test]
fn the_debug_log_shows_requests_and_decisions_and_never_a_secret() {
    let s = Services::start();
    let p = Project::initialised(&s.policy("0s"));
    let mut logs = Vec::new();
    let mut run = |args: &[&str], level: Option<&str>| {
        let mut cmd = s.command(&p, args);
        if let Some(level) = level {
            cmd.env("CHITTY_SECRETS_LOG", level);
        }
        let out = cmd.output().unwrap();
        logs.push((args.join(" "), String::from_utf8_lossy(&out.stderr).into_owned(), text(&out)));
    };
    run(&["rotate", "-vv"], None);
    run(&["rotate"], Some("trace"));
    for args in [&["sync", "--verify"][..], &["plan"], &["check", "--online"], &["status"], &["leaks"]] {
        run(args, Some("debug"));
    }
    run(&["rotate", "--emergency", "CHITTY_ID_TOKEN", "-v"], None);

    let (_, first, _) = &logs[0];
    // Requests: method, URL, status, time, attempt, sizes.
    assert!(
        first.lines().any(|l| l.contains("PUT http://127.0.0.1:")
            && l.contains("/repos/acme/app/actions/secrets/CHITTY_ID_TOKEN → 201")
            && l.contains(" ms (attempt 1, sent ")),
        "{first}"
    );
    assert!(first.contains("POST http://127.0.0.1:") && first.contains("/admin/tokens/generate → "), "{first}");
    // Decisions: the plan and each step.
    assert!(first.contains("plan for CHITTY_ID_TOKEN:") && first.contains("CHITTY_ID_TOKEN: Promote"), "{first}");
    assert!(first.contains("github:acme/app: delivering CHITTY_ID_TOKEN v1 as CHITTY_ID_TOKEN"), "{first}");

    let mut secrets: Vec<String> = s.id.tokens().into_iter().map(|t| t.token).collect();
    assert!(secrets.len() >= 3, "{secrets:?}");
    secrets.extend([chitty::ADMIN_PASSWORD, github::TOKEN, cloudflare::TOKEN].map(str::to_string));
    for (args, stderr, all) in &logs {
        assert!(!stderr.is_empty(), "{args}: no debug log");
        for secret in &secrets {
            assert!(!all.contains(secret.as_str()), "{args}: a secret is in the output:\n{all}");
        }
        assert!(!stderr.to_ascii_lowercase().contains("authorization"), "{args}: {stderr}");
        assert!(!stderr.contains("Bearer") && !stderr.contains("Basic "), "{args}: {stderr}");
    }

    // Commands that hand a value out print it on stdout only: their log
    // (stderr) never holds it.
    let current = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    for args in [
        &["get", "CHITTY_ID_TOKEN", "-vv"][..],
        &["run", "-vv", "--", "sh", "-c", "true"],
        &["scan", "-vv"],
        &["usage", "-vv"],
        &["keys", "list", "-vv"],
        &["audit", "verify", "-vv"],
        &["trust", "status", "-vv"],
        &["policy", "check", "-vv"],
    ] {
        let out = s.command(&p, args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        for secret in secrets.iter().chain([&current]) {
            assert!(!stderr.contains(secret.as_str()), "{args:?}: {stderr}");
        }
    }

    // Off by default; an unknown level is said, not guessed at.
    let out = s.command(&p, &["status"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("DEBUG"), "{}", text(&out));
    let out = s.command(&p, &["status"]).env("CHITTY_SECRETS_LOG", "loud").output().unwrap();
    assert!(text(&out).contains("CHITTY_SECRETS_LOG=loud is not a level"), "{}", text(&out));
}
