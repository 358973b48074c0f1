//! A newcomer's first hour (issue 14): one project found from anywhere,
//! help that teaches, messages that say what to do.

use crate::common::*;

/// `init` writes the project file; every command then finds the project
/// from any folder below it, as git and cargo do.
#[test]
fn the_project_is_found_from_a_subfolder() {
    let p = Project::new(LOCAL_POLICY);
    let out = p.ok(&["init"]);
    assert!(out.contains("wrote chitty-secrets.toml"), "{out}");
    assert!(p.read("chitty-secrets.toml").contains("policies = \"policies\""));
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    std::fs::create_dir_all(p.path("app/src")).unwrap();
    let out = p.command(&["status"]).current_dir(p.path("app/src")).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("CHITTY_ID_TOKEN  [local]  v1 current"), "{}", text(&out));
    // Relative target paths still resolve against the project, not the folder.
    let out = p.command(&["sync", "--check", "CHITTY_ID_TOKEN"]).current_dir(p.path("app/src")).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(!p.path("app/src/app").exists());
}

/// `init` in an empty folder, or a nested second project inside one,
/// used to make a second registry and say "next: rotate", which failed.
#[test]
fn init_refuses_an_empty_folder_and_a_nested_second_project() {
    let empty = tempfile::tempdir().unwrap();
    let p = Project::new(LOCAL_POLICY);
    let out = p.command(&["init"]).current_dir(empty.path()).output().unwrap();
    assert_ne!(code(&out), 0);
    let said = text(&out);
    assert!(said.contains("looked for chitty-secrets.toml in") && said.contains("policies/"), "{said}");
    assert!(said.contains("init --starter"), "a starter policy is offered: {said}");
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0, "nothing created");

    p.ok(&["init"]);
    std::fs::create_dir_all(p.path("sub/policies")).unwrap();
    std::fs::write(p.path("sub/policies/p.toml"), "[tokens.X]\nissuer = \"random\"\n").unwrap();
    let out = p.command(&["init"]).current_dir(p.path("sub")).output().unwrap();
    assert_ne!(code(&out), 0);
    assert!(text(&out).contains("inside the project at"), "{}", text(&out));
    assert!(!p.path("sub/.chitty-secrets").exists() && !p.path("sub/chitty-secrets.toml").exists());
}

/// `--policies other/policies` used to pair another project's policies with
/// this folder's registry: a policies folder named alone gets its own.
#[test]
fn a_policies_folder_named_alone_gets_its_own_registry() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    std::fs::create_dir_all(p.path("other/policies")).unwrap();
    std::fs::write(p.path("other/policies/p.toml"), LOCAL_POLICY).unwrap();
    let out = p.run(&["--policies", "other/policies", "status"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("other/.chitty-secrets"), "{}", text(&out));
}

/// A value minted by one issuer (a local demo) is never delivered to a
/// remote target when the policy now names another (a production
/// `chittyid`), unless `--force`; `status` and `check` show it.
#[test]
fn a_value_from_another_issuer_is_not_delivered_remotely_without_force() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    let production = format!(
        "{LOCAL_POLICY}\n[issuers.id]\nkind = \"chittyid\"\nurl = \"https://id.example.com\"\nadmin_password_from = \"env:PW\"\n\n\
         [[tokens.CHITTY_ID_TOKEN.targets]]\nkind = \"github\"\nrepo = \"acme/api\"\n"
    )
    .replacen("[tokens.CHITTY_ID_TOKEN]\nissuer = \"local\"", "[tokens.CHITTY_ID_TOKEN]\nissuer = \"id\"\nscopes = [\"mint\"]", 1);
    assert!(production.contains("issuer = \"id\""));
    std::fs::write(p.path("policies/main.toml"), production).unwrap();

    let status = p.ok(&["status"]);
    assert!(status.contains("issuer mismatch: v1 came from `local` (random), but the policy's issuer is `id` (chittyid, https://id.example.com)"), "{status}");
    let out = p.run(&["check"]);
    assert!(text(&out).contains("error[issuer-mismatch]"), "{}", text(&out));

    let out = p.run(&["sync", "CHITTY_ID_TOKEN"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        text(&out).contains("not delivering to github:acme/api") && text(&out).contains("sync --force"),
        "{}",
        text(&out)
    );
    let out = p.run(&["sync", "--force", "CHITTY_ID_TOKEN"]);
    assert!(!text(&out).contains("not delivering"), "--force passes the guard: {}", text(&out));
}

/// `--help` groups the commands by purpose and ends with examples, the
/// environment and exit codes; a command's own options come before the
/// global ones.
#[test]
fn help_groups_commands_and_teaches() {
    let p = Project::new(LOCAL_POLICY);
    let help = p.ok(&["--help"]);
    let order: Vec<usize> = [
        "Set up:",
        "  init ",
        "Every day:",
        "  rotate ",
        "Check:",
        "  scan ",
        "Shell:",
        "Global options:",
        "Examples:",
        "Environment:",
        "Exit codes:",
    ]
    .iter()
    .map(|s| help.find(s).unwrap_or_else(|| panic!("`{s}` missing from:\n{help}")))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{help}");
    assert!(help.contains("Usage: chitty-secrets [OPTIONS] <COMMAND>"), "{help}");
    assert!(!help.contains("\nCommands:"), "each command once: {help}");
    let sync = p.ok(&["sync", "--help"]);
    assert!(sync.find("--check").unwrap() < sync.find("Global options:").unwrap(), "{sync}");
    assert!(sync.find("Global options:").unwrap() < sync.find("--policies").unwrap(), "{sync}");
    // Typos still get a suggestion.
    let out = p.run(&["rotat"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out).contains("'rotate'"), "{}", text(&out));
}

/// `completions bash | head -1` panicked with a broken pipe (exit 101).
#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let p = Project::initialised(LOCAL_POLICY);
    for args in [&["completions", "zsh"][..], &["man"], &["status", "--json"]] {
        let mut child =
            p.command(args).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take()); // the reader goes away before anything is written
        let out = child.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "{args:?}: {}", text(&out));
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"), "{args:?}: {}", text(&out));
    }
    let man = p.ok(&["man"]);
    assert!(!man.contains("chitty-secrets-init(1)") && man.contains(".SH COMMANDS"), "no pages that do not exist");
}

/// `get` takes aliases, suggests near names, and says how a token gets a
/// value; `--now` takes a date and says the format when it cannot.
#[test]
fn get_and_now_say_what_to_do() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    assert_eq!(p.ok(&["get", "CHITTY_API_KEY"]), p.ok(&["get", "CHITTY_ID_TOKEN"]), "an alias gets its token");
    let out = p.run(&["get", "CHITTY_ID_TOKN"]);
    assert!(text(&out).contains("did you mean `CHITTY_ID_TOKEN`?"), "{}", text(&out));
    let out = p.run(&["get", "VENDOR_API_KEY"]);
    assert!(
        text(&out).contains("has no value yet") && text(&out).contains("chitty-secrets set VENDOR_API_KEY"),
        "{}",
        text(&out)
    );
    let out = p.run(&["get", "SESSION_KEY"]);
    assert!(text(&out).contains("chitty-secrets rotate SESSION_KEY"), "{}", text(&out));
    p.ok(&["--now", "2027-03-01", "status"]);
    let out = p.run(&["--now", "next week", "status"]);
    assert!(text(&out).contains("e.g. 2027-03-01"), "{}", text(&out));
}

/// A GitHub target with no GITHUB_TOKEN: `policy check` and `plan` say so
/// before any request, `sync` fails (exit 1, not "left pending") and names
/// the token once; unreachable targets are each named by `plan`.
#[test]
fn missing_credentials_are_named_before_any_request() {
    let policy = format!(
        "{LOCAL_POLICY}\n[[tokens.CHITTY_ID_TOKEN.targets]]\nkind = \"github\"\nrepo = \"acme/api\"\n\n\
         [[tokens.SESSION_KEY.targets]]\nkind = \"wrangler\"\nworker = \"edge\"\n"
    );
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);
    std::fs::write(p.path("policies/main.toml"), policy).unwrap();
    let out = p.run(&["policy", "check"]);
    assert_eq!(code(&out), 0);
    let said = text(&out);
    assert!(said.contains("warning: GITHUB_TOKEN or GH_TOKEN is not set (github:acme/api needs it)"), "{said}");
    assert!(said.contains("CLOUDFLARE_API_TOKEN is not set (wrangler:edge needs it)"), "{said}");

    let out = p.run(&["plan"]);
    assert!(
        text(&out).contains("remote targets were not listed: GITHUB_TOKEN or GH_TOKEN is not set"),
        "{}",
        text(&out)
    );

    let out = p.run(&["sync", "CHITTY_ID_TOKEN"]);
    let said = text(&out);
    assert_eq!(code(&out), 1, "{said}");
    assert!(said.contains("0 done, 1 failed") && !said.contains("left pending"), "{said}");
    assert!(!said.contains("CHITTY_ID_TOKEN: CHITTY_ID_TOKEN"), "{said}");
    assert!(said.contains("github:acme/api: 1 failed") || said.contains("github:acme/api: 0 created"), "{said}");

    // Offline: every unreachable target is named, not only the first.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = p
        .command(&["plan"])
        .env("GITHUB_TOKEN", "t")
        .env("GITHUB_API_URL", format!("http://127.0.0.1:{closed}"))
        .env("CLOUDFLARE_API_TOKEN", "t")
        .env("CLOUDFLARE_ACCOUNT_ID", "a")
        .env("CLOUDFLARE_API_BASE_URL", format!("http://127.0.0.1:{closed}"))
        .env("CHITTY_SECRETS_RETRY_BASE_MS", "1")
        .output()
        .unwrap();
    let said = text(&out);
    assert!(said.contains("github:acme/api") && said.contains("wrangler:edge"), "{said}");
}

/// The smaller messages a newcomer tripped on, each now saying what
/// happened and what to do.
#[test]
fn small_messages_say_what_happened() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN"]);

    // import --only with a name no policy declares.
    std::fs::write(p.path("old.env"), "CHITTY_ID_TOKEN=mcp_auth_0123456789abcdef0123456789abcdef\n").unwrap();
    let out = p.run(&["import", "old.env", "--only", "CHITTY_ID_TOKN"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("did you mean `CHITTY_ID_TOKEN`?"), "{}", text(&out));

    // set: a value without the random issuer's prefix.
    let out = p.run_with_stdin(&["set", "CHITTY_ID_TOKEN"], "sk_live_somethingelse\n");
    assert_ne!(code(&out), 0);
    assert!(text(&out).contains("makes values starting `mcp_auth_`"), "{}", text(&out));

    // status: when the next rotation is due; JSON has no `"due": null`.
    let status = p.ok(&["status"]);
    assert!(status.contains("next rotation due: "), "{status}");
    let json = p.ok(&["status", "--json"]);
    assert!(!json.contains("\"due\": null") && json.contains("next_due_at"), "{json}");

    // --json with a broken policy: a JSON error object on stdout.
    std::fs::write(p.path("policies/zz.toml"), "x = \n").unwrap();
    let out = p.run(&["status", "--json"]);
    assert_eq!(code(&out), 2);
    let error: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(error["error"]["problems"][0]["line"], 1, "{error}");
    std::fs::remove_file(p.path("policies/zz.toml")).unwrap();

    // scan --staged outside a git repository: no git usage text.
    let out = p.run(&["scan", "--staged"]);
    assert_ne!(code(&out), 0);
    assert!(text(&out).contains("not inside a git repository") && !text(&out).contains("usage: git"), "{}", text(&out));

    // plan nests tokens under its headings.
    let plan = p.ok(&["plan"]);
    assert!(plan.contains("sync:\n  SESSION_KEY\n    "), "{plan}");

    // A second init: --keyring is not silently ignored, and the next step fits.
    let out = p.ok(&["init", "--keyring"]);
    assert!(out.contains("--keyring applies only when a new identity is created"), "{out}");
    assert!(out.contains("next: `chitty-secrets status`"), "{out}");

    // A target in a folder that did not exist shows as created.
    std::fs::write(p.path("policies/main.toml"), LOCAL_POLICY.replace("worker/.dev.vars", "wroker/.dev.vars")).unwrap();
    let out = p.ok(&["sync", "CHITTY_ID_TOKEN"]);
    assert!(out.contains("dotenv:wroker/.dev.vars: 1 created"), "{out}");
}

/// A `chittyid` token without scopes is refused where the policy is read
/// (the admin API refuses the mint).
#[test]
fn a_chittyid_token_needs_scopes() {
    let p = Project::new(
        "[issuers.id]\nkind = \"chittyid\"\nurl = \"https://id.example.com\"\nadmin_password_from = \"env:PW\"\n[tokens.T]\nissuer = \"id\"\n",
    );
    let out = p.run(&["policy", "check"]);
    assert_eq!(code(&out), 2);
    assert!(text(&out).contains("a `chittyid` issuer needs `scopes`"), "{}", text(&out));
}
