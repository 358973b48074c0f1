//! The usage map: who reads each secret (workflows, actions, Workers),
//! whether a policy delivers it there, `usage --graph`, and `init
//! --discover`. Offline: real files in temp dirs, the real binary.

use std::process::{Command, Output};

use crate::common::*;

/// The local policy without its manual token, so a rotated project passes `check`.
fn healthy() -> Project {
    let p = Project::initialised(LOCAL_POLICY.split("[tokens.VENDOR_API_KEY]").next().unwrap());
    p.ok(&["rotate"]);
    p
}

fn write(p: &Project, rel: &str, text: &str) {
    let path = p.path(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The 1-based line of `text` holding `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle} not in {text}")) + 1
}

fn run_in(p: &Project, repo: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = p.command(args);
    if let Some(repo) = repo {
        cmd.env("GITHUB_REPOSITORY", repo);
    }
    cmd.output().unwrap()
}

fn findings(out: &Output) -> Vec<serde_json::Value> {
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)));
    report["findings"].as_array().unwrap().clone()
}

/// `(code, file, line)` of every finding with `code`.
fn located(found: &[serde_json::Value], code: &str) -> Vec<(String, u64)> {
    found
        .iter()
        .filter(|f| f["code"] == code)
        .map(|f| (f["file"].as_str().unwrap_or_default().to_string(), f["line"].as_u64().unwrap_or(0)))
        .collect()
}

fn git(p: &Project, args: &[&str]) {
    let out = Command::new("git").args(args).current_dir(p.dir.path()).env("HOME", p.path("home")).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

const WORKFLOW: &str = r#"name: deploy
on: push
jobs:
  deploy:
    environment: production
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          token: ${{ secrets.GITHUB_TOKEN }}
      - run: ./deploy.sh
        env:
          CHITTY_ID_TOKEN: ${{ secrets.CHITTY_ID_TOKEN }}
          SESSION: ${{ secrets["SESSION_KEY"] }}
      # a comment is not read: ${{ secrets.IN_A_COMMENT }}
  publish:
    runs-on: ubuntu-latest
    steps:
      - run: npm publish
        env:
          NODE_AUTH_TOKEN: ${{ secrets['NPM_TOKEN'] }}
"#;

/// What delivers the workflow's secrets to acme/app: the repository, and
/// the `production` environment its deploy job names.
const DELIVERED: &str = r#"
[[tokens.CHITTY_ID_TOKEN.targets]]
kind = "github"
repo = "acme/app"

[[tokens.SESSION_KEY.targets]]
kind = "github"
repo = "acme/app"
environment = "production"

[check]
set_elsewhere = ["NPM_TOKEN"]
"#;

#[test]
fn a_workflow_secret_no_policy_delivers_fails_check_at_its_line_until_it_is_delivered() {
    let p = healthy();
    let out = run_in(&p, Some("acme/app"), &["check"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    write(&p, ".github/workflows/deploy.yml", WORKFLOW);

    let out = run_in(&p, Some("acme/app"), &["check", "--fail-on", "error"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let msg = text(&out);
    let at = |needle| format!(".github/workflows/deploy.yml:{}: ", line_of(WORKFLOW, needle));
    assert!(
        msg.contains(&format!(
            "error[secret-not-delivered] {}workflow .github/workflows/deploy.yml reads secret CHITTY_ID_TOKEN in job `deploy` (environment `production`), and no policy delivers it to acme/app: the job fails or runs with an empty value",
            at("secrets.CHITTY_ID_TOKEN")
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{}workflow .github/workflows/deploy.yml reads secret SESSION_KEY", at("SESSION_KEY"))),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "{}workflow .github/workflows/deploy.yml reads secret NPM_TOKEN in job `publish`",
            at("NPM_TOKEN")
        )),
        "{msg}"
    );
    assert!(msg.contains("hint: declare a token with a `github` target for acme/app"), "{msg}");
    assert!(!msg.contains("GITHUB_TOKEN") && !msg.contains("IN_A_COMMENT"), "{msg}");

    // --json carries them, each with its file and line.
    let found = findings(&run_in(&p, Some("acme/app"), &["check", "--json"]));
    let mut got = located(&found, "secret-not-delivered");
    got.sort();
    let file = ".github/workflows/deploy.yml".to_string();
    let mut want: Vec<(String, u64)> = ["secrets.CHITTY_ID_TOKEN", "SESSION_KEY", "NPM_TOKEN"]
        .iter()
        .map(|n| (file.clone(), line_of(WORKFLOW, n) as u64))
        .collect();
    want.sort();
    assert_eq!(got, want);
    assert!(found.iter().all(|f| f["code"] != "secret-not-delivered" || f["severity"] == "error"));

    // In GitHub Actions: an annotation on the workflow's line.
    let out =
        p.command(&["check"]).env("GITHUB_ACTIONS", "true").env("GITHUB_REPOSITORY", "acme/app").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "::error title=secret-not-delivered,file=.github/workflows/deploy.yml,line={}::workflow .github/workflows/deploy.yml reads secret NPM_TOKEN",
            line_of(WORKFLOW, "NPM_TOKEN")
        )),
        "{stdout}"
    );

    // Delivered (to the repository, to the job's environment, or set by
    // hand and said so): nothing to report.
    let policy = p.read("policies/main.toml") + DELIVERED;
    write(&p, "policies/main.toml", &policy);
    let out = run_in(&p, Some("acme/app"), &["check", "--fail-on", "error"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(!text(&out).contains("secret-not-delivered"), "{}", text(&out));
}

#[test]
fn this_repository_is_github_repository_else_the_origin_remote() {
    let p = healthy();
    write(&p, ".github/workflows/deploy.yml", WORKFLOW);
    let policy = p.read("policies/main.toml") + DELIVERED;
    write(&p, "policies/main.toml", &policy);
    let undelivered = |repo: Option<&str>| {
        let out = run_in(&p, repo, &["check", "--json"]);
        let found = findings(&out);
        (located(&found, "secret-not-delivered").len(), found)
    };

    // Neither: matched by name only, and said so.
    let (n, found) = undelivered(None);
    assert_eq!(n, 0);
    assert_eq!(located(&found, "repository-unknown").len(), 1, "{found:?}");

    // The git remote, in each of its spellings.
    git(&p, &["init", "-q"]);
    for url in ["git@github.com:acme/app.git", "https://github.com/acme/app", "ssh://git@github.com/acme/app.git"] {
        // (Fails on the first round, when there is no remote yet.)
        let _ = Command::new("git").args(["remote", "remove", "origin"]).current_dir(p.dir.path()).output();
        git(&p, &["remote", "add", "origin", url]);
        let (n, found) = undelivered(None);
        assert_eq!(n, 0, "{url}: {found:?}");
        assert!(located(&found, "repository-unknown").is_empty(), "{url}");
    }
    git(&p, &["remote", "set-url", "origin", "git@github.com:acme/elsewhere.git"]);
    let out = run_in(&p, None, &["check", "--fail-on", "error"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("no policy delivers it to acme/elsewhere"), "{}", text(&out));
    // GITHUB_REPOSITORY (what Actions sets) wins over the remote.
    assert_eq!(undelivered(Some("acme/app")).0, 0);
    let out = run_in(&p, Some("acme/other"), &["usage"]);
    assert!(text(&out).contains("this repository: acme/other (from GITHUB_REPOSITORY)"), "{}", text(&out));
}

#[test]
fn composite_actions_count_and_an_environment_secret_needs_the_jobs_environment() {
    let p = healthy();
    let action = "name: deploy\nruns:\n  using: composite\n  steps:\n    - run: ./upload\n      shell: bash\n      env:\n        KEY: ${{ secrets.UPLOAD_KEY }}\n";
    write(&p, ".github/actions/upload/action.yml", action);
    // The job that reads the environment's secret names no environment.
    let workflow = "on: push\njobs:\n  build:\n    runs-on: ubuntu-latest\n    steps:\n      - run: make\n        env:\n          S: ${{ secrets.SESSION_KEY }}\n";
    write(&p, ".github/workflows/build.yml", workflow);
    let policy = p.read("policies/main.toml")
        + "\n[[tokens.SESSION_KEY.targets]]\nkind = \"github\"\nrepo = \"acme/app\"\nenvironment = \"production\"\n";
    write(&p, "policies/main.toml", &policy);

    let out = run_in(&p, Some("acme/app"), &["check", "--fail-on", "error"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains("error[secret-not-delivered] .github/actions/upload/action.yml:8: action .github/actions/upload/action.yml reads secret UPLOAD_KEY"),
        "{msg}"
    );
    assert!(
        msg.contains("error[secret-not-delivered] .github/workflows/build.yml:8: workflow .github/workflows/build.yml reads secret SESSION_KEY in job `build`, and no policy delivers it to acme/app; it goes only to github:acme/app@env:production (an environment this job does not name)"),
        "{msg}"
    );

    // The job names the environment: delivered.
    write(
        &p,
        ".github/workflows/build.yml",
        &workflow.replace("    runs-on:", "    environment: production\n    runs-on:"),
    );
    let out = run_in(&p, Some("acme/app"), &["check", "--json"]);
    let found = findings(&out);
    assert_eq!(located(&found, "secret-not-delivered"), [(".github/actions/upload/action.yml".to_string(), 8)]);
}

const WRANGLER_TOML: &str = r#"name = "api"
main = "src/index.ts"

[vars]
MODE = "production"

[[secrets_store_secrets]]
binding = "VENDOR"
store_id = "0123456789abcdef0123456789abcdef"
secret_name = "VENDOR_KEY"
"#;

const WRANGLER_JSONC: &str = r#"{
  // the site's Worker
  "name": "site",
  "secrets": { "required": ["SESSION_KEY", "COOKIE_SECRET"] },
  "env": {
    "staging": {
      /* its own bindings: they are not inherited */
      "secrets_store_secrets": [
        { "binding": "V", "store_id": "0123456789abcdef0123456789abcdef", "secret_name": "VENDOR_KEY_STAGING" },
      ],
    },
  },
}
"#;

#[test]
fn a_workers_store_bindings_and_required_secrets_must_be_delivered() {
    let p = healthy();
    write(&p, "workers/api/wrangler.toml", WRANGLER_TOML);
    write(&p, "workers/site/wrangler.jsonc", WRANGLER_JSONC);
    // A Worker config in node_modules or ignored by git is not this project's.
    write(&p, "node_modules/pkg/wrangler.toml", WRANGLER_TOML.replace("VENDOR_KEY", "NOT_OURS").as_str());
    write(&p, ".gitignore", "build/\n");
    write(&p, "build/wrangler.toml", WRANGLER_TOML.replace("VENDOR_KEY", "NOT_OURS_EITHER").as_str());

    let out = p.run(&["check", "--fail-on", "error"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let msg = text(&out);
    assert!(
        msg.contains(&format!(
            "error[secret-not-delivered] workers/api/wrangler.toml:{}: Worker api (workers/api/wrangler.toml) binds Secrets Store secret VENDOR_KEY (binding VENDOR, store 0123456789abcdef0123456789abcdef), and no policy delivers it to the Secrets Store: reading env.VENDOR fails at run time",
            line_of(WRANGLER_TOML, "secret_name")
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "error[secret-not-delivered] workers/site/wrangler.jsonc:{}: Worker site-staging (workers/site/wrangler.jsonc) binds Secrets Store secret VENDOR_KEY_STAGING",
            line_of(WRANGLER_JSONC, "VENDOR_KEY_STAGING")
        )),
        "{msg}"
    );
    let required = line_of(WRANGLER_JSONC, "required");
    for name in ["SESSION_KEY", "COOKIE_SECRET"] {
        assert!(
            msg.contains(&format!("error[secret-not-delivered] workers/site/wrangler.jsonc:{required}: Worker site (workers/site/wrangler.jsonc) lists secret {name} in secrets.required, and no policy delivers it to that Worker: it runs without it")),
            "{msg}"
        );
    }
    assert!(msg.contains("hint: declare a token with a `wrangler` target (worker = \"site\")"), "{msg}");
    assert!(!msg.contains("NOT_OURS"), "{msg}");

    // Delivered: to the binding's store, and as the site Worker's secrets
    // (one name the Worker does not list: read by nothing, an info).
    let policy = p.read("policies/main.toml")
        + r#"
[tokens.VENDOR_KEY]
issuer = "random"

[[tokens.VENDOR_KEY.targets]]
kind = "secrets_store"
store = "0123456789abcdef0123456789abcdef"
names = ["VENDOR_KEY", "VENDOR_KEY_STAGING"]

[[tokens.SESSION_KEY.targets]]
kind = "wrangler"
worker = "site"
names = ["SESSION_KEY", "COOKIE_SECRET", "LEGACY_SESSION"]
"#;
    write(&p, "policies/main.toml", &policy);
    let found = findings(&p.run(&["check", "--json"]));
    assert!(located(&found, "secret-not-delivered").is_empty(), "{found:?}");
    let unread: Vec<&serde_json::Value> = found.iter().filter(|f| f["code"] == "secret-not-read").collect();
    assert_eq!(unread.len(), 1, "{found:?}");
    assert_eq!(unread[0]["severity"], "info");
    assert_eq!(unread[0]["token"], "SESSION_KEY");
    assert_eq!(unread[0]["file"], "policies/main.toml");
    assert_eq!(unread[0]["line"].as_u64().unwrap() as usize, line_of(&policy, "worker = \"site\"") - 2);
    assert!(
        unread[0]["message"].as_str().unwrap().starts_with(
            "LEGACY_SESSION is delivered to wrangler:site, but Worker site does not list it in secrets.required"
        ),
        "{found:?}"
    );
}

#[test]
fn secret_looking_plain_values_are_errors_with_their_line_and_are_never_printed() {
    let p = healthy();
    let known = p.ok(&["get", "SESSION_KEY"]).trim_end().to_string();
    let random = "Zx81-_aQm3Pq7Rt9Uv2Wy4Ab6Cd8Ef0GhJk";
    let github = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
    let wrangler = format!(
        "name = \"api\"\n\n[vars]\nMODE = \"production\"\nACCOUNT_ID = \"ede6590ac0d2fb7daf155b35653457b2\"\nUPSTREAM = \"{random}\"\nCOPIED = \"{known}\"\nAPI_TOKEN = \"YOUR_TOKEN_HERE_REPLACE_ME\"\n\n[env.staging.vars]\nSTRIPE_SECRET = \"whsec-by-hand\"\n"
    );
    write(&p, "wrangler.toml", &wrangler);
    let workflow = format!(
        "on: push\nenv:\n  NODE_VERSION: \"20\"\njobs:\n  t:\n    runs-on: ubuntu-latest\n    env:\n      GH_PAT: {github}\n      FROM_SECRET: ${{{{ secrets.GITHUB_TOKEN }}}}\n    steps:\n      - run: make\n"
    );
    write(&p, ".github/workflows/t.yml", &workflow);

    let out = p.run(&["check", "--json"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let found = findings(&out);
    let mut got = located(&found, "secret-in-config");
    got.sort();
    let mut want = vec![
        ("wrangler.toml".to_string(), line_of(&wrangler, "UPSTREAM") as u64),
        ("wrangler.toml".to_string(), line_of(&wrangler, "COPIED") as u64),
        ("wrangler.toml".to_string(), line_of(&wrangler, "STRIPE_SECRET") as u64),
        (".github/workflows/t.yml".to_string(), line_of(&workflow, "GH_PAT") as u64),
    ];
    want.sort();
    assert_eq!(got, want, "{found:?}");
    assert_eq!(
        located(&found, "placeholder-in-config"),
        [("wrangler.toml".to_string(), line_of(&wrangler, "API_TOKEN") as u64)]
    );
    // With the identity, a registry value is recognised as that token's.
    let copied = found.iter().find(|f| f["line"].as_u64() == Some(line_of(&wrangler, "COPIED") as u64)).unwrap();
    assert_eq!(copied["token"], "SESSION_KEY");
    assert!(
        copied["message"].as_str().unwrap().contains("is a live value of SESSION_KEY from the registry"),
        "{copied}"
    );
    assert!(copied["hint"].as_str().unwrap().contains("`chitty-secrets rotate SESSION_KEY`"), "{copied}");

    // Human output and `usage` too; no value anywhere.
    for args in [&["check"][..], &["usage"], &["usage", "--json"], &["usage", "--graph"]] {
        let msg = text(&p.run(args));
        for value in [known.as_str(), random, github, "whsec-by-hand"] {
            assert!(!msg.contains(value), "{args:?} printed a value: {msg}");
        }
    }
    let msg = text(&p.run(&["check"]));
    assert!(
        msg.contains(&format!(
            "error[secret-in-config] .github/workflows/t.yml:{}: GH_PAT is a plain `env:` value and looks like a GitHub token: anyone who can read the repository has it",
            line_of(&workflow, "GH_PAT")
        )),
        "{msg}"
    );
}

#[test]
fn a_delivered_secret_nothing_reads_is_a_note_only_where_there_are_workflows() {
    let p = healthy();
    let policy = p.read("policies/main.toml")
        + "\n[[tokens.SESSION_KEY.targets]]\nkind = \"github\"\nrepo = \"acme/app\"\nnames = [\"SESSION_KEY\", \"OLD_SESSION_KEY\"]\n";
    write(&p, "policies/main.toml", &policy);
    // No workflow: nothing is said about who reads GitHub secrets.
    let found = findings(&run_in(&p, Some("acme/app"), &["check", "--json"]));
    assert!(located(&found, "secret-not-read").is_empty(), "{found:?}");

    write(
        &p,
        ".github/workflows/ci.yml",
        "on: push\njobs:\n  a:\n    steps:\n      - run: echo ${{ secrets.SESSION_KEY }}\n",
    );
    let out = run_in(&p, Some("acme/app"), &["check", "--fail-on", "error"]);
    assert_eq!(code(&out), 0, "an info finding does not fail check: {}", text(&out));
    let target_line = line_of(&policy, "repo = \"acme/app\"") - 2;
    assert!(
        text(&out).contains(&format!("info[secret-not-read] policies/main.toml:{target_line}: OLD_SESSION_KEY is delivered to github:acme/app, but no workflow or action of acme/app reads it")),
        "{}",
        text(&out)
    );
    // Another repository's target is none of this one's business.
    let found = findings(&run_in(&p, Some("acme/other"), &["check", "--json"]));
    assert!(located(&found, "secret-not-read").is_empty(), "{found:?}");
}

#[test]
fn usage_graph_is_mermaid_with_token_target_reader_and_undelivered_edges() {
    let p = healthy();
    write(&p, ".github/workflows/deploy.yml", WORKFLOW);
    write(&p, "workers/api/wrangler.toml", WRANGLER_TOML);
    let policy =
        p.read("policies/main.toml") + "\n[[tokens.CHITTY_ID_TOKEN.targets]]\nkind = \"github\"\nrepo = \"acme/app\"\n";
    write(&p, "policies/main.toml", &policy);

    let out = run_in(&p, Some("acme/app"), &["usage", "--graph"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let graph = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = graph.lines().collect();
    assert_eq!(lines[0], "flowchart LR");
    for line in [
        "  tok_CHITTY_ID_TOKEN(\"CHITTY_ID_TOKEN\")",
        "  tgt_github_acme_app[\"github:acme/app\"]",
        "  tgt_dotenv_app__env[\"dotenv:app/.env\"]",
        "  tok_CHITTY_ID_TOKEN -->|CHITTY_ID_TOKEN, CHITTY_API_KEY| tgt_dotenv_app__env",
        "  tok_CHITTY_ID_TOKEN --> tgt_github_acme_app",
        "  wf__github_workflows_deploy_yml[[\"workflow .github/workflows/deploy.yml\"]]",
        "  tgt_github_acme_app -->|CHITTY_ID_TOKEN| wf__github_workflows_deploy_yml",
        "  miss_NPM_TOKEN[\"NPM_TOKEN: no policy delivers it\"]",
        "  miss_NPM_TOKEN -.->|NPM_TOKEN| wf__github_workflows_deploy_yml",
        "  miss_SESSION_KEY -.->|SESSION_KEY| wf__github_workflows_deploy_yml",
        "  wk_api[[\"Worker api (workers/api/wrangler.toml)\"]]",
        "  miss_VENDOR_KEY -.->|VENDOR_KEY| wk_api",
        "  class miss_SESSION_KEY,miss_NPM_TOKEN,miss_VENDOR_KEY undelivered",
    ] {
        assert!(lines.contains(&line), "missing {line:?} in:\n{graph}");
    }
    // Every node id is safe; the red dashed style names exactly the undelivered edges.
    let edges: Vec<&str> = lines.iter().copied().filter(|l| l.contains("-->") || l.contains("-.->")).collect();
    let red: Vec<usize> = edges.iter().enumerate().filter(|(_, l)| l.contains("-.->")).map(|(i, _)| i).collect();
    let style = format!(
        "  linkStyle {} stroke:#c62828,stroke-width:2px,stroke-dasharray:5 5",
        red.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
    );
    assert!(lines.contains(&style.as_str()), "{style} not in:\n{graph}");
    for edge in &edges {
        let words: Vec<&str> = edge.split_whitespace().collect();
        let ids = [words[0], words[words.len() - 1]];
        assert!(ids.iter().all(|id| id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')), "{edge}");
    }
    assert!(!graph.contains("GITHUB_TOKEN"), "{graph}");
    assert!(lines.iter().any(|l| l.starts_with("  classDef undelivered ")), "{graph}");

    // The table and --json say the same.
    let table = p.command(&["usage"]).env("GITHUB_REPOSITORY", "acme/app").output().unwrap();
    let table = text(&table);
    assert!(table.contains("NPM_TOKEN") && table.contains("NOTHING: no policy delivers it"), "{table}");
    assert!(table.contains("CHITTY_ID_TOKEN → github:acme/app"), "{table}");
    let json: serde_json::Value =
        serde_json::from_slice(&run_in(&p, Some("acme/app"), &["usage", "--json"]).stdout).unwrap();
    assert_eq!(json["repository"]["owner"], "acme");
    let states: Vec<(&str, &str)> = json["reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["secret"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert!(states.contains(&("GITHUB_TOKEN", "provided-by-github")), "{states:?}");
    assert!(states.contains(&("CHITTY_ID_TOKEN", "delivered")), "{states:?}");
    assert!(states.contains(&("VENDOR_KEY", "not-delivered")), "{states:?}");
}

#[test]
fn rotate_in_github_actions_adds_the_diagram_of_what_it_touched_to_the_step_summary() {
    let p = healthy();
    write(&p, ".github/workflows/deploy.yml", WORKFLOW);
    let summary = p.path("summary.md");
    let out = p
        .command(&["rotate", "SESSION_KEY"])
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_REPOSITORY", "acme/app")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("| SESSION_KEY | done |"), "{md}");
    let block = md.split("```mermaid\n").nth(1).and_then(|b| b.split("```").next()).unwrap_or_else(|| panic!("{md}"));
    assert!(block.starts_with("flowchart LR\n"), "{md}");
    assert!(block.contains("  tok_SESSION_KEY(\"SESSION_KEY\")\n"), "{md}");
    assert!(block.contains("  tok_SESSION_KEY --> tgt_dotenv_app__env\n"), "{md}");
    // Only what the run touched: no other token, no undelivered reads.
    assert!(!block.contains("CHITTY_ID_TOKEN") && !block.contains("miss_"), "{md}");
}

#[test]
fn init_discover_drafts_a_policy_policy_check_accepts_with_names_never_values() {
    let dir = tempfile::tempdir().unwrap();
    let p = Project { dir, argv_log: Default::default() };
    git(&p, &["init", "-q"]);
    git(&p, &["remote", "add", "origin", "https://github.com/acme/site.git"]);
    write(&p, ".gitignore", "app/.env\nnode_modules/\n");
    write(&p, ".github/workflows/deploy.yml", WORKFLOW);
    write(
        &p,
        ".github/actions/upload/action.yml",
        "runs:\n  using: composite\n  steps:\n    - run: up ${{ secrets.UPLOAD_KEY }}\n      shell: bash\n",
    );
    write(&p, "app/.env", &format!("VENDOR_API_KEY={CANARY}\nCHITTY_ID_TOKEN=YOUR_TOKEN_HERE_REPLACE_ME\n"));
    write(&p, "app/.env.example", "FROM_THE_EXAMPLE=changeme\n");
    write(&p, "workers/api/wrangler.toml", WRANGLER_TOML);
    write(&p, "workers/site/wrangler.jsonc", WRANGLER_JSONC);
    write(&p, "node_modules/x/.env", "NOT_OURS=1\n");

    let out = p.run(&["init", "--discover"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("next: `chitty-secrets import app/.env` brings its values in"), "{}", text(&out));
    let drafted = p.read("policies/discovered.toml");
    assert!(!drafted.contains(CANARY) && !drafted.contains("YOUR_TOKEN_HERE"), "a value was copied:\n{drafted}");
    for expected in [
        "[tokens.VENDOR_API_KEY]\nissuer = \"manual\"",
        "[[tokens.VENDOR_API_KEY.targets]]\nkind = \"dotenv\"\npath = \"app/.env\"",
        "# app/.env:2 looks like a placeholder, not a token: not a value to import; `chitty-secrets set CHITTY_ID_TOKEN` the real one",
        "[[tokens.CHITTY_ID_TOKEN.targets]]\nkind = \"github\"\nrepo = \"acme/site\"\nenvironment = \"production\"",
        "[[tokens.NPM_TOKEN.targets]]\nkind = \"github\"\nrepo = \"acme/site\"\n",
        "[[tokens.UPLOAD_KEY.targets]]\nkind = \"github\"\nrepo = \"acme/site\"\n",
        "[[tokens.VENDOR_KEY.targets]]\nkind = \"secrets_store\"\nstore = \"0123456789abcdef0123456789abcdef\"",
        "[[tokens.VENDOR_KEY_STAGING.targets]]\nkind = \"secrets_store\"",
        "[[tokens.COOKIE_SECRET.targets]]\nkind = \"wrangler\"\nworker = \"site\"",
    ] {
        assert!(drafted.contains(expected), "missing {expected:?} in:\n{drafted}");
    }
    assert!(
        !drafted.contains("GITHUB_TOKEN") && !drafted.contains("FROM_THE_EXAMPLE") && !drafted.contains("NOT_OURS"),
        "{drafted}"
    );

    // A policy `policy check` accepts, and `import` fills from the .env file.
    let out = p.run(&["policy", "check"]);
    assert_eq!(code(&out), 0, "{}\n{drafted}", text(&out));
    let out = p.run(&["import", "--only", "VENDOR_API_KEY", "app/.env"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(p.ok(&["get", "VENDOR_API_KEY"]).trim_end(), CANARY);
    // Every read is now delivered by the draft.
    let found = findings(&p.run(&["check", "--json"]));
    assert!(located(&found, "secret-not-delivered").is_empty(), "{found:?}");

    // Where policies exist, --discover is refused (and nothing is written).
    let before = p.read("policies/discovered.toml");
    let out = p.run(&["init", "--discover"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out)
            .contains("policies already holds policy files: --discover drafts a first policy where there is none"),
        "{}",
        text(&out)
    );
    assert_eq!(p.read("policies/discovered.toml"), before);
}

#[test]
fn usage_graph_with_leaks_draws_a_token_whose_working_value_is_exposed_in_red() {
    let p = healthy();
    let policy =
        p.read("policies/main.toml") + "\n[[tokens.CHITTY_ID_TOKEN.targets]]\nkind = \"github\"\nrepo = \"acme/app\"\n";
    write(&p, "policies/main.toml", &policy);
    write(&p, ".github/workflows/deploy.yml", WORKFLOW);
    let plain = run_in(&p, Some("acme/app"), &["usage", "--graph", "--leaks"]);
    assert_eq!(code(&plain), 0, "{}", text(&plain));
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("class tok_CHITTY_ID_TOKEN leaked"), "{}", text(&plain));

    let value = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    write(&p, "notes/handover.md", &format!("use {value} for now\n"));
    let out = run_in(&p, Some("acme/app"), &["usage", "--graph", "--leaks"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let graph = String::from_utf8(out.stdout).unwrap();
    assert!(graph.contains("tok_CHITTY_ID_TOKEN ==>"), "{graph}");
    assert!(
        graph.lines().any(|l| l.starts_with("  class ") && l.contains("tok_CHITTY_ID_TOKEN") && l.ends_with(" leaked")),
        "{graph}"
    );
    assert!(!graph.contains(&value));
}
