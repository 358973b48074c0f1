//! .env files on many machines: each machine keeps its own delivery
//! records outside git, a CI runner vouches for no machine's copy, and a
//! value is retired only once every machine a policy names has synced the
//! new one (their check-ins travel through the registry, as git would
//! carry them).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Mutex;

use crate::common::*;

const POLICY: &str = r#"
[tokens.API_TOKEN]
issuer = "random"
overlap = "0s"

[[tokens.API_TOKEN.targets]]
kind = "dotenv"
path = "app/.env"
machines = ["web-1", "web-2"]
"#;

/// One checkout on one machine: its own folder (a clone) and its own
/// config folder (identity, pins, delivery records).
struct Machine {
    name: &'static str,
    p: Project,
}

impl Machine {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.p.command(args);
        cmd.env("CHITTY_SECRETS_MACHINE", self.name);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(code(&out), 0, "{} {args:?}:\n{}", self.name, text(&out));
        text(&out)
    }

    /// A clone of `from`'s checkout, without its .env files, with the same
    /// identity (another member's machine would have its own; the same one
    /// keeps the test short).
    fn clone_of(from: &Machine, name: &'static str) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&from.p.path(".chitty-secrets"), &dir.path().join(".chitty-secrets"));
        copy_tree(&from.p.path("policies"), &dir.path().join("policies"));
        let config = dir.path().join("config/chitty-secrets");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::copy(from.p.identity_file(), config.join("identity.txt")).unwrap();
        Machine { name, p: Project { dir, argv_log: Mutex::new(Vec::new()) } }
    }

    /// What git would bring: the other checkout's registry files.
    fn pull(&self, from: &Machine) {
        copy_tree(&from.p.path(".chitty-secrets"), &self.p.path(".chitty-secrets"));
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    let out = Command::new("cp").arg("-a").arg(format!("{}/.", from.display())).arg(to).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn a_value_is_retired_only_once_every_named_machine_has_synced_the_new_one() {
    let web1 = Machine { name: "web-1", p: Project::initialised(POLICY) };
    web1.ok(&["rotate"]);
    let v1 = web1.p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
    // The delivery record is web-1's, outside git; its check-in is in git.
    let meta = web1.p.read(".chitty-secrets/tokens/API_TOKEN.toml");
    assert!(!meta.contains("dotenv:"), "a .env record went into the repository: {meta}");
    assert!(web1.p.path(".chitty-secrets/machines/web-1.toml").exists());

    // web-2 clones and syncs its own .env.
    let web2 = Machine::clone_of(&web1, "web-2");
    web2.ok(&["sync"]);
    assert_eq!(env_value(&web2.p.path("app/.env"), "API_TOKEN").as_deref(), Some(v1.as_str()));
    web1.pull(&web2);

    // A rotation on web-1: web-2 still holds v1, so v1 is not revoked,
    // and the run names web-2.
    let out = web1.run(&["rotate"]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(text(&out).contains("v1 is not retired yet: web-2 (holds v1 at dotenv:app/.env, synced"), "{}", text(&out));
    let status = web1.p.ok(&["status", "--json"]);
    assert!(status.contains("\"previous\""), "{status}");
    let status = web1.ok(&["status"]);
    assert!(
        status.contains("delivered: 1/2 up to date") && status.contains("dotenv:app/.env#API_TOKEN on web-2: has v1"),
        "{status}"
    );
    // check names the machine behind, on web-1 and on a CI runner alike.
    let out = web1.run(&["check"]);
    assert!(text(&out).contains("machine-not-synced") && text(&out).contains("web-2 (holds v1"), "{}", text(&out));
    let plan = web1.ok(&["plan"]);
    assert!(plan.contains("cannot be retired yet: web-2"), "{plan}");

    // A CI runner (a clone without .env files): it writes none, vouches
    // for none, and tells the truth about web-2.
    let runner = Machine::clone_of(&web1, "runner");
    std::fs::write(runner.p.path(".gitignore"), ".env\n").unwrap();
    let git = Command::new("git").args(["init", "-q"]).current_dir(runner.p.dir.path()).output().unwrap();
    assert!(git.status.success());
    let on_ci = |args: &[&str]| runner.command(args).env("CI", "true").output().unwrap();
    let out = on_ci(&["sync", "--check"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("app/.env lives on web-1, web-2 (this machine is runner)"), "{}", text(&out));
    let out = on_ci(&["check"]);
    assert!(text(&out).contains("machine-not-synced") && text(&out).contains("web-2"), "{}", text(&out));
    // Status on the runner speaks for the named machines by their
    // check-ins, never for itself.
    let out = on_ci(&["status"]);
    assert!(
        text(&out).contains("delivered: 1/2 up to date") && text(&out).contains("on web-2: has v1"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("runner"), "{}", text(&out));
    let out = on_ci(&["rotate", "--due"]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(text(&out).contains("web-2 (holds v1"), "{}", text(&out));
    assert!(!runner.p.path("app/.env").exists());
    assert!(!runner.p.path(".chitty-secrets/machines/runner.toml").exists(), "a CI runner checked in");

    // web-2 pulls and syncs; its check-in reaches web-1; v1 is retired.
    web2.pull(&web1);
    web2.ok(&["sync"]);
    let v2 = web1.p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
    assert_eq!(env_value(&web2.p.path("app/.env"), "API_TOKEN").as_deref(), Some(v2.as_str()));
    web1.pull(&web2);
    let out = web1.ok(&["rotate", "--due"]);
    assert!(out.contains("retired v1"), "{out}");
    let out = web1.run(&["check"]);
    assert!(!text(&out).contains("machine-not-synced"), "{}", text(&out));
}

#[test]
fn machine_names_in_a_policy_are_checked() {
    let p = Project::new(&POLICY.replace("\"web-2\"", "\"web 2/..\""));
    let out = p.run(&["policy", "check"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("`web 2/..` is not a machine's name"), "{}", text(&out));
    let p = Project::new(&POLICY.replace("machines = [\"web-1\", \"web-2\"]", "machines = []"));
    let out = p.run(&["policy", "check"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("`machines` is empty"), "{}", text(&out));
}

#[test]
fn a_forged_checkin_is_refused_not_believed() {
    let web1 = Machine { name: "web-1", p: Project::initialised(POLICY) };
    web1.ok(&["rotate"]);
    // Someone with push access writes web-2's check-in, saying it holds v9.
    std::fs::write(
        web1.p.path(".chitty-secrets/machines/web-2.toml"),
        "mac = \"e0.00\"\nmachine = \"web-2\"\n\n[[holds]]\ntoken = \"API_TOKEN\"\ntarget = \"dotenv:app/.env\"\nname = \"API_TOKEN\"\nversion = 9\nat = \"2026-12-01T00:00:00Z\"\n",
    )
    .unwrap();
    let out = web1.run(&["rotate"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("machines/web-2.toml"), "{}", text(&out));
    let out = web1.run(&["check"]);
    assert!(text(&out).contains("checkin-unreadable") && text(&out).contains("machines/web-2.toml"), "{}", text(&out));
    let status = web1.p.ok(&["status", "--json"]);
    assert!(status.contains("\"previous\""), "v1 was retired on a forged word: {status}");
    // trust status lists it; a member who reviewed it may accept it.
    let out = web1.run(&["trust", "status"]);
    assert!(text(&out).contains("machines/web-2.toml"), "{}", text(&out));
    let out = web1.ok(&["trust", "accept", ".chitty-secrets/machines/web-2.toml"]);
    assert!(out.contains("the check-in of machine web-2"), "{out}");
    web1.ok(&["check"]);
}

#[test]
fn a_machine_without_records_of_its_env_files_records_what_they_hold() {
    // A machine whose records are gone (or from before records were kept
    // per machine): its .env holds the current value, unrecorded.
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    let before = p.read("app/.env");
    std::fs::remove_dir_all(p.path("config/chitty-secrets/deliveries")).unwrap();
    let out = p.run(&["sync", "--check", "CHITTY_ID_TOKEN"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(
        text(&out).contains("holds the current value, but this machine's record does not say so"),
        "{}",
        text(&out)
    );
    p.ok(&["sync", "CHITTY_ID_TOKEN"]);
    p.ok(&["sync", "--check", "CHITTY_ID_TOKEN"]);
    assert_eq!(p.read("app/.env"), before, "the file changed");
    let status = p.ok(&["status"]);
    assert!(status.contains("delivered: 3/3 up to date"), "{status}");
}

#[test]
fn a_machine_named_with_dots_is_matched_whole_and_a_hosts_sync_leaves_git_clean() {
    let policy = POLICY.replace("\"web-1\"", "\"web-1.prod\"");
    let web1 = Machine { name: "web-1.prod", p: Project::initialised(&policy) };
    web1.ok(&["rotate"]);
    assert!(web1.p.path("app/.env").exists());
    assert!(web1.p.path(".chitty-secrets/machines/web-1.prod.toml").exists());

    // web-2's sync records on web-2 and in its check-in only: the token's
    // metadata, which git tracks, is left as it was.
    let web2 = Machine::clone_of(&web1, "web-2");
    let meta = web2.p.read(".chitty-secrets/tokens/API_TOKEN.toml");
    web2.ok(&["sync"]);
    assert_eq!(web2.p.read(".chitty-secrets/tokens/API_TOKEN.toml"), meta, "a host's sync rewrote tracked metadata");
    assert!(web2.p.path(".chitty-secrets/machines/web-2.toml").exists());
}

#[test]
fn abort_does_not_revoke_a_pending_value_another_named_machine_holds() {
    let web1 = Machine { name: "web-1", p: Project::initialised(POLICY) };
    web1.ok(&["rotate"]);
    // A rotation stopped after delivering v2 to web-1's .env.
    let out = web1.command(&["rotate"]).env("CHITTY_SECRETS_CRASH_AT", "before-promote").output().unwrap();
    assert_ne!(code(&out), 0);
    // web-2 says (and a member vouched) that it holds v2 too.
    std::fs::write(
        web1.p.path(".chitty-secrets/machines/web-2.toml"),
        "machine = \"web-2\"\n\n[[holds]]\ntoken = \"API_TOKEN\"\ntarget = \"dotenv:app/.env\"\nname = \"API_TOKEN\"\nversion = 2\nat = \"2026-12-01T00:00:00Z\"\n",
    )
    .unwrap();
    web1.ok(&["trust", "accept", ".chitty-secrets/machines/web-2.toml"]);
    let out = web1.run(&["rotate", "--abort", "API_TOKEN"]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(text(&out).contains("v2 is not revoked: web-2 (holds v2 at dotenv:app/.env"), "{}", text(&out));
    let status = web1.p.ok(&["status", "--json"]);
    assert!(status.contains("\"pending\": 2"), "{status}");
}
