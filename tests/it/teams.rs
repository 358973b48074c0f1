//! Teams and CI: recipients, GitHub Actions, the workflow, git merges.

use std::process::Command;

use age::secrecy::ExposeSecret;
use clap::Parser;

use crate::common::*;

/// A second person: their own age key in a file.
fn member(p: &Project, name: &str) -> (String, String) {
    let key = age::x25519::Identity::generate();
    let path = p.path(&format!("{name}.key"));
    std::fs::write(&path, key.to_string().expose_secret()).unwrap();
    (path.to_str().unwrap().to_string(), key.to_public().to_string())
}

const TOKENS: [&str; 2] = ["CHITTY_ID_TOKEN", "SESSION_KEY"];

fn can_read_all(p: &Project, identity: &str) -> Vec<bool> {
    TOKENS.iter().map(|t| code(&p.run(&["--identity", identity, "get", t])) == 0).collect()
}

#[test]
fn keys_add_lets_a_member_read_and_keys_remove_locks_them_out() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN", "SESSION_KEY"]);
    let owner = p.identity_file().to_str().unwrap().to_string();
    let (bob, bob_pub) = member(&p, "bob");
    assert_eq!(can_read_all(&p, &bob), [false, false]);

    let out = p.ok(&["keys", "add", &bob_pub, "--name", "bob"]);
    assert!(out.contains("1 recipient added") && out.contains("re-encrypted 2 value files"), "{out}");
    assert_eq!(can_read_all(&p, &bob), [true, true]);
    assert_eq!(p.ok(&["--identity", &bob, "get", "SESSION_KEY"]), p.ok(&["get", "SESSION_KEY"]));
    let list = p.ok(&["keys", "list"]);
    assert!(list.contains(&format!("{bob_pub}  bob")) && list.contains("(you)"), "{list}");

    p.ok(&["keys", "remove", &bob_pub]);
    assert_eq!(can_read_all(&p, &bob), [false, false]);
    assert_eq!(can_read_all(&p, &owner), [true, true]);

    // A recipients file adds every key in it.
    let (carol, carol_pub) = member(&p, "carol");
    let (dave, dave_pub) = member(&p, "dave");
    std::fs::write(p.path("team.txt"), format!("# the team\n{carol_pub}\n{dave_pub}\n")).unwrap();
    let out = p.ok(&["keys", "add", p.path("team.txt").to_str().unwrap()]);
    assert!(out.contains("2 recipients added"), "{out}");
    assert_eq!(can_read_all(&p, &carol), [true, true]);
    assert_eq!(can_read_all(&p, &dave), [true, true]);
    let log = p.read(".chitty-secrets/audit.log");
    assert!(log.contains("\"event\":\"keys.remove\""), "{log}");
}

#[test]
fn keys_refuses_bad_keys_the_last_key_and_self_lockout() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "SESSION_KEY"]);
    let out = p.run(&["keys", "add", "age1notakey"]);
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("is not an age X25519 public key (age1…)"), "{}", text(&out));

    let secret = age::x25519::Identity::generate().to_string().expose_secret().to_string();
    let out = p.run(&["keys", "add", &secret]);
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("that is a secret key") && !text(&out).contains(&secret[15..]), "{}", text(&out));

    let mine = p.read(".chitty-secrets/recipients").lines().find(|l| l.starts_with("age1")).unwrap().to_string();
    let out = p.run(&["keys", "remove", &mine]);
    assert!(text(&out).contains("refusing to remove the last recipient"), "{}", text(&out));
    let (_, bob_pub) = member(&p, "bob");
    p.ok(&["keys", "add", &bob_pub]);
    let out = p.run(&["keys", "remove", &mine]);
    assert!(text(&out).contains("refusing to remove your own key"), "{}", text(&out));
    p.ok(&["keys", "remove", &mine, "--force"]);
    assert_eq!(code(&p.run(&["get", "SESSION_KEY"])), 1, "the owner should now be locked out");
}

#[test]
fn a_kill_during_re_encryption_leaves_every_value_readable_and_a_rerun_finishes() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN", "SESSION_KEY"]);
    let owner = p.identity_file().to_str().unwrap().to_string();
    let (bob, bob_pub) = member(&p, "bob");

    // Killed while adding: every file stays readable by the old set.
    let out = p
        .command(&["keys", "add", &bob_pub])
        .env("CHITTY_SECRETS_CRASH_AT", "rekey-after-first-file")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None, "{}", text(&out));
    assert_eq!(can_read_all(&p, &owner), [true, true]);
    let bob_reads = can_read_all(&p, &bob);
    assert_eq!(bob_reads.iter().filter(|r| **r).count(), 1, "{bob_reads:?}");
    let check = p.run(&["check", "--json"]);
    assert!(String::from_utf8_lossy(&check.stdout).contains("rekey-pending"), "{}", text(&check));
    p.ok(&["keys", "add", &bob_pub]);
    assert_eq!(can_read_all(&p, &bob), [true, true]);
    assert!(!p.path(".chitty-secrets/rekey-pending").exists());

    // Killed while removing: each file is readable by the old set or the
    // new one (the stock CLI opens every one with the owner's key, who is
    // in both), but no command but `keys rekey` reads them: some are still
    // under the key bob knows.
    let out = p
        .command(&["keys", "remove", &bob_pub])
        .env("CHITTY_SECRETS_CRASH_AT", "rekey-after-first-file")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None, "{}", text(&out));
    for token in TOKENS {
        for file in p.value_files(token) {
            let out = Command::new("age").arg("-d").arg("-i").arg(&owner).arg(file).output().unwrap();
            assert!(out.status.success(), "{}", text(&out));
        }
    }
    let out = p.run(&["get", "SESSION_KEY"]);
    assert!(
        text(&out).contains("a recipients change is under way") && text(&out).contains("keys rekey"),
        "{}",
        text(&out)
    );
    p.ok(&["keys", "rekey"]);
    assert_eq!(can_read_all(&p, &bob), [false, false]);
    assert_eq!(can_read_all(&p, &owner), [true, true]);
}

#[test]
fn ci_init_writes_a_workflow_whose_commands_exist() {
    let p = Project::initialised(LOCAL_POLICY);
    let out = p.ok(&["ci", "init"]);
    assert!(out.contains("wrote .github/workflows/chitty-secrets.yml"), "{out}");
    let text = p.read(".github/workflows/chitty-secrets.yml");
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).expect("valid YAML");
    let doc = &docs[0];
    let jobs = doc["jobs"].as_hash().expect("jobs");
    assert_eq!(jobs.len(), 3);
    assert_eq!(doc["on"]["schedule"][0]["cron"].as_str(), Some("23 5 * * *"));
    let mut commands = Vec::new();
    for (_, job) in jobs {
        for step in job["steps"].as_vec().unwrap() {
            for line in step["run"].as_str().unwrap_or("").lines() {
                if line.trim_start().starts_with("chitty-secrets ") {
                    commands.push(line.trim().to_string());
                }
            }
        }
    }
    assert_eq!(commands.len(), 5, "{commands:?}");
    for cmd in &commands {
        let argv: Vec<&str> = cmd.split_whitespace().collect();
        chitty_secrets::cli::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("`{cmd}` does not parse: {e}"));
    }
    assert!(commands.iter().any(|c| c.ends_with(" check")));
    assert!(commands.iter().any(|c| c.ends_with(" sync --check --verify")));
    assert!(commands.iter().any(|c| c.ends_with(" ci doctor --for rotate")));
    assert!(commands.iter().any(|c| c.ends_with(" rotate --due --max-duration 50m")));
    assert_eq!(code(&p.run(&["ci", "init"])), 1, "overwrote without --force");
    // With the project's action: a release binary, no compiling.
    p.ok(&["ci", "init", "--force", "--action", "acme/chitty-secrets@0123456789abcdef0123456789abcdef01234567"]);
    let text = p.read(".github/workflows/chitty-secrets.yml");
    assert!(
        text.contains("uses: acme/chitty-secrets@0123456789abcdef0123456789abcdef01234567")
            && !text.contains("cargo install"),
        "{text}"
    );
    // A protected branch: the scheduled job opens a pull request instead of pushing.
    p.ok(&["ci", "init", "--force", "--pull-request"]);
    let text = p.read(".github/workflows/chitty-secrets.yml");
    let doc = &yaml_rust2::YamlLoader::load_from_str(&text).expect("valid YAML")[0];
    assert_eq!(doc["jobs"]["rotate"]["permissions"]["pull-requests"].as_str(), Some("write"), "{text}");
    assert!(text.contains("gh pr create --fill --head \"$branch\"") && !text.contains("git push && exit 0"), "{text}");
}

#[test]
fn github_actions_gets_a_summary_and_policy_annotations() {
    let p = Project::initialised(LOCAL_POLICY);
    let summary = p.path("summary.md");
    let out = p
        .command(&["rotate", "SESSION_KEY"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("### chitty-secrets rotate") && md.contains("| SESSION_KEY | done |"), "{md}");

    std::fs::write(p.path("policies/bad.toml"), "[tokens.X]\nissuer = \"random\"\nttl = \"soon\"\n").unwrap();
    let out = p.command(&["policy", "check"]).env("GITHUB_ACTIONS", "true").output().unwrap();
    assert_eq!(code(&out), 2);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("::error title=policy,file=policies/bad.toml,line=3,col=7::invalid duration `soon`"),
        "{stdout}"
    );
}

#[test]
fn completions_and_man_page_are_generated() {
    let p = Project::new(LOCAL_POLICY);
    assert!(p.ok(&["completions", "bash"]).contains("chitty-secrets"));
    assert!(p.ok(&["completions", "zsh"]).contains("#compdef chitty-secrets"));
    let man = p.ok(&["man"]);
    assert!(man.contains(".TH chitty-secrets") && man.contains("rotate"), "{}", &man[..200.min(man.len())]);
}

/// Two members rotate different tokens on two branches; git merges them
/// with no conflict, and the registry and its audit chain stay whole.
#[test]
fn two_branches_rotating_different_tokens_merge_cleanly() {
    let p = Project::initialised(LOCAL_POLICY);
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"])
            .args(args)
            .current_dir(p.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    std::fs::write(p.path(".gitignore"), "app/\nworker/\n").unwrap();
    p.ok(&["rotate", "CHITTY_ID_TOKEN", "SESSION_KEY"]);
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "base"]);
    git(&["checkout", "-qb", "alice"]);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "alice rotates the ID token"]);
    git(&["checkout", "-q", "main"]);
    git(&["checkout", "-qb", "bob"]);
    p.ok(&["rotate", "SESSION_KEY"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "bob rotates the session key"]);
    git(&["merge", "-q", "--no-edit", "alice"]);
    assert!(git(&["status", "--porcelain"]).is_empty());

    let status: serde_json::Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
    for t in status["tokens"].as_array().unwrap().iter().filter(|t| TOKENS.contains(&t["name"].as_str().unwrap())) {
        assert_eq!(t["current"], 2, "{t}");
    }
    for t in TOKENS {
        p.ok(&["get", t]);
    }
    assert!(p.ok(&["audit", "verify"]).contains("chain intact"));
    // And the next writer carries on from the merged log.
    p.ok(&["rotate", "SESSION_KEY"]);
    assert!(p.ok(&["audit", "verify"]).contains("chain intact"));
}

/// On a fresh clone (a CI runner) the delivered .env files are not there:
/// git ignores them, as it should. `check` and `sync --check` then judge
/// them by the delivery records and say so, instead of failing with
/// `target-missing`; a file that is missing and not ignored still fails.
#[test]
fn a_fresh_clone_without_its_ignored_env_files_passes_check_and_the_gate() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN", "SESSION_KEY"]);
    let git = |args: &[&str]| {
        let out = Command::new("git").args(args).current_dir(p.dir.path()).output().unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
    };
    git(&["init", "-q"]);
    std::fs::write(p.path(".gitignore"), ".env\n.dev.vars\nconfig/\nhome/\n").unwrap();
    for f in ["app/.env", "worker/.dev.vars"] {
        std::fs::remove_file(p.path(f)).unwrap();
    }
    // A CI runner: the files are not on this machine, and it vouches for
    // no one's copy.
    let on_ci = |args: &[&str]| p.command(args).env("CI", "true").output().unwrap();
    let out = on_ci(&["check", "--fail-on", "warning"]);
    let said = text(&out);
    assert!(said.contains("not-on-this-machine") && !said.contains("target-missing"), "{said}");
    assert!(!said.contains("never-delivered"), "{said}");
    assert!(!said.contains("error[") || said.contains("VENDOR_API_KEY"), "{said}");
    let out = on_ci(&["sync", "--check", "CHITTY_ID_TOKEN", "SESSION_KEY"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("app/.env is not on this machine (a CI runner"), "{}", text(&out));
    let out = on_ci(&["sync", "CHITTY_ID_TOKEN", "SESSION_KEY"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(!p.path("app/.env").exists(), "a CI runner wrote a .env file nobody keeps");

    // A person's machine: the file is this machine's, and missing until
    // its sync writes it.
    let out = p.run(&["sync", "--check", "CHITTY_ID_TOKEN"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    p.ok(&["sync", "CHITTY_ID_TOKEN", "SESSION_KEY"]);
    p.ok(&["sync", "--check", "CHITTY_ID_TOKEN", "SESSION_KEY"]);

    // Not ignored: missing is missing, on CI too.
    std::fs::remove_file(p.path("app/.env")).unwrap();
    std::fs::write(p.path(".gitignore"), "config/\nhome/\n").unwrap();
    let out = on_ci(&["sync", "--check", "CHITTY_ID_TOKEN"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let out = on_ci(&["check"]);
    assert!(text(&out).contains("target-missing"), "{}", text(&out));
}

/// `ci init` maps exactly what the policies need into the steps that use
/// it (the gate gets no issuer credential), lists the secrets to create,
/// and `ci doctor` names every one that is missing before any call.
#[test]
fn ci_init_maps_the_credentials_the_policies_need_and_doctor_names_the_missing() {
    let policy = format!(
        "{LOCAL_POLICY}\n[issuers.id]\nkind = \"chittyid\"\nurl = \"https://id.example.com\"\nadmin_password_from = \"env:CHITTY_ADMIN_PASSWORD\"\n\
         [tokens.ID]\nissuer = \"id\"\nscopes = [\"mint\"]\n[[tokens.ID.targets]]\nkind = \"github\"\nrepo = \"acme/api\"\n\
         [[tokens.ID.targets]]\nkind = \"wrangler\"\nworker = \"edge\"\n"
    );
    let p = Project::initialised(&policy);
    let out = p.ok(&["ci", "init"]);
    for secret in
        ["CHITTY_ADMIN_PASSWORD", "CLOUDFLARE_API_TOKEN", "CLOUDFLARE_ACCOUNT_ID", "CHITTY_SECRETS_GITHUB_TOKEN"]
    {
        assert!(out.contains(&format!("gh secret set {secret}\n")), "{secret}: {out}");
    }
    let workflow = p.read(".github/workflows/chitty-secrets.yml");
    let doc = &yaml_rust2::YamlLoader::load_from_str(&workflow).unwrap()[0];
    let step_env = |job: &str, run_suffix: &str| {
        let steps = doc["jobs"][job]["steps"].as_vec().unwrap();
        let step = steps.iter().find(|s| s["run"].as_str().is_some_and(|r| r.ends_with(run_suffix))).unwrap();
        step["env"]
            .as_hash()
            .map(|h| h.keys().map(|k| k.as_str().unwrap().to_string()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let gate = step_env("predeploy", "sync --check --verify");
    assert!(
        gate.contains(&"GITHUB_TOKEN".to_string()) && !gate.contains(&"CHITTY_ADMIN_PASSWORD".to_string()),
        "{gate:?}"
    );
    let rotate = step_env("rotate", "--max-duration 50m");
    assert!(
        rotate.contains(&"CHITTY_ADMIN_PASSWORD".to_string())
            && rotate.contains(&"CHITTY_SECRETS_IDENTITY".to_string()),
        "{rotate:?}"
    );
    assert!(step_env("check", " check").is_empty(), "the check job gets no secret");
    assert!(
        !workflow.contains("run: ${{") && !workflow.lines().any(|l| l.contains("run:") && l.contains("${{")),
        "no expression in run:"
    );
    assert!(!workflow.contains("@v4\n"), "actions pinned to a commit");

    let out = p.run(&["ci", "doctor", "--for", "rotate"]);
    assert_eq!(code(&out), 1);
    let said = text(&out);
    assert!(said.contains("set the repository secret CHITTY_SECRETS_GITHUB_TOKEN"), "{said}");
    assert!(said.contains("CHITTY_ADMIN_PASSWORD is not set (issuer `id` needs it)"), "{said}");
    let out = p
        .command(&["ci", "doctor", "--for", "rotate"])
        .env("CHITTY_SECRETS_IDENTITY", "x")
        .env("CHITTY_ADMIN_PASSWORD", "x")
        .env("CLOUDFLARE_API_TOKEN", "x")
        .env("CLOUDFLARE_ACCOUNT_ID", "x")
        .env("GH_TOKEN", "x")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    p.ok(&["ci", "doctor", "--for", "check"]);
}
