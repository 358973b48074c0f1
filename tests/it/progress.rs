//! What a long delivery shows while it runs: plain lines in a log (not a
//! terminal), a live line per service on a terminal, nothing with --json.

use std::process::Command;

use crate::common::*;
use crate::remote::{Fakes, with_fakes};

/// One token delivered to `repos` GitHub repositories and a Worker.
fn fan_out(f: &Fakes, repos: usize) -> Project {
    let mut policy =
        String::from("[tokens.T]\nissuer = \"random\"\n[[tokens.T.targets]]\nkind = \"wrangler\"\nworker = \"api\"\n");
    for i in 0..repos {
        f.gh.add_repo(&format!("acme/r{i}"));
        policy.push_str(&format!("[[tokens.T.targets]]\nkind = \"github\"\nrepo = \"acme/r{i}\"\n"));
    }
    f.cf.add_script("api");
    Project::initialised(&policy)
}

#[test]
fn a_log_gets_plain_lines_with_the_waits_for_a_budget_and_json_gets_none() {
    let f = Fakes::start();
    let p = fan_out(&f, 6);
    // A budget of 3 writes in 2 seconds: the fan-out waits for it.
    let out = with_fakes(&mut p.command(&["rotate"]), &f.gh, &f.cf)
        .env("CHITTY_SECRETS_GITHUB_BUDGET", "3/2s")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("delivering to 7 targets…"), "{log}");
    assert_eq!(log.lines().filter(|l| l.starts_with("  done: github:acme/r")).count(), 6, "{log}");
    assert!(log.contains("  done: wrangler:api"), "{log}");
    assert!(log.lines().any(|l| l.starts_with("  waiting for GitHub's request budget until ")), "{log}");

    let out = with_fakes(&mut p.command(&["rotate", "--json"]), &f.gh, &f.cf)
        .env("CHITTY_SECRETS_GITHUB_BUDGET", "2/1s")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("delivering") && !log.contains("waiting") && !log.contains("done:"), "{log}");
}

#[test]
fn a_terminal_gets_one_live_line_per_service() {
    if Command::new("script").arg("--version").output().is_err() {
        assert!(!outside_tools_required(), "`script` (util-linux) is needed to give the run a terminal");
        return;
    }
    let f = Fakes::start();
    let p = fan_out(&f, 4);
    // `script` runs the command on a pseudo-terminal, as a person would.
    let bin = env!("CARGO_BIN_EXE_chitty-secrets");
    let mut cmd = p.command(&[]);
    let cmd = with_fakes(&mut cmd, &f.gh, &f.cf)
        .env("CHITTY_SECRETS_GITHUB_BUDGET", "2/1s")
        .env("COLUMNS", "120")
        .env("TERM", "xterm");
    let out = Command::new("script")
        .args(["-qec", &format!("{bin} rotate"), "/dev/null"])
        .env_clear()
        .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .current_dir(p.path(""))
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), 0, "{screen}");
    assert!(screen.contains("GitHub") && screen.contains("Cloudflare"), "{screen}");
    assert!(screen.contains("/4 targets") && screen.contains("/1 targets"), "{screen}");
    assert!(screen.contains("in flight") && screen.contains("left"), "{screen}");
    assert!(!screen.contains("  done: github:"), "a live display, not a line per target: {screen}");
}
