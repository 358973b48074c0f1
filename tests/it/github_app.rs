//! `ci init --github-app` and `ci doctor --github-app`: the jobs that reach
//! GitHub mint an installation token (actions/create-github-app-token,
//! pinned) narrowed to what the policies' targets need, and the doctor
//! names the App's secrets instead of a personal token's. The workflow is
//! run with a faked App in `workflow.rs`; here its structure is held exact.

use std::collections::BTreeMap;

use clap::Parser;
use yaml_rust2::{Yaml, YamlLoader};

use crate::common::*;

const WORKFLOW: &str = ".github/workflows/chitty-secrets.yml";
const APP_TOKEN: &str = "actions/create-github-app-token@1b10c78c7865c340bc4f6099eb2f838309f1e8c3";

/// Every kind of GitHub target under one account: a repository's Actions
/// secrets, an environment created when missing, Dependabot secrets of
/// another repository, and an organization secret shared by name.
const POLICY: &str = r#"
[tokens.DEPLOY_TOKEN]
issuer = "random"
rotate_every = "30d"

[[tokens.DEPLOY_TOKEN.targets]]
kind = "github"
repo = "acme/app"

[[tokens.DEPLOY_TOKEN.targets]]
kind = "github"
repo = "acme/app"
environment = "production"
create_environment = true

[[tokens.DEPLOY_TOKEN.targets]]
kind = "github"
repo = "acme/web"
app = "dependabot"

[[tokens.DEPLOY_TOKEN.targets]]
kind = "github"
org = "acme"
visibility = "selected"
selected_repositories = ["acme/api"]
"#;

fn workflow(p: &Project) -> Yaml {
    YamlLoader::load_from_str(&p.read(WORKFLOW)).expect("valid YAML").remove(0)
}

fn steps<'a>(doc: &'a Yaml, job: &str) -> &'a [Yaml] {
    doc["jobs"][job]["steps"].as_vec().unwrap_or_else(|| panic!("no job {job}"))
}

fn step<'a>(doc: &'a Yaml, job: &str, name: &str) -> &'a Yaml {
    steps(doc, job).iter().find(|s| s["name"].as_str() == Some(name)).unwrap_or_else(|| panic!("{job}: no step {name}"))
}

/// A mapping's entries as strings.
fn entries(y: &Yaml) -> BTreeMap<String, String> {
    y.as_hash()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.as_str().map(str::to_string).unwrap_or_default()))
        .collect()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The `with:` of a job's minting step: the App's secrets, the one
/// account, exactly the repositories the policy names, and the permissions.
fn minted_with(permissions: &[(&str, &str)], repositories: Option<&str>) -> BTreeMap<String, String> {
    let mut with = map(&[
        ("client-id", "${{ secrets.CHITTY_SECRETS_APP_CLIENT_ID }}"),
        ("private-key", "${{ secrets.CHITTY_SECRETS_APP_PRIVATE_KEY }}"),
        ("owner", "acme"),
    ]);
    if let Some(r) = repositories {
        with.insert("repositories".into(), r.into());
    }
    with.extend(map(permissions));
    with
}

#[test]
fn ci_init_github_app_mints_a_token_narrowed_to_what_the_targets_need() {
    let p = Project::initialised(POLICY);
    let out = p.ok(&[
        "ci",
        "init",
        "--github-app",
        "--action",
        "acme/chitty-secrets@0123456789abcdef0123456789abcdef01234567",
    ]);
    assert!(
        out.contains("gh secret set CHITTY_SECRETS_APP_CLIENT_ID")
            && out.contains("gh secret set CHITTY_SECRETS_APP_PRIVATE_KEY < the-app.private-key.pem")
            && out.contains("installed on acme with repository Metadata: read, repository Secrets: write, repository Environments: write, repository Administration: write, repository Dependabot secrets: write, organization Secrets: write, repository Secret scanning alerts: write"),
        "{out}"
    );
    let text = p.read(WORKFLOW);
    assert!(!text.contains("CHITTY_SECRETS_GITHUB_TOKEN") && !out.contains("CHITTY_SECRETS_GITHUB_TOKEN"), "{text}");
    assert!(text.contains(&format!("uses: {APP_TOKEN} # v3.1.1")), "{text}");
    let doc = workflow(&p);

    // The check job reaches no service: no token.
    assert!(steps(&doc, "check").iter().all(|s| s["id"].as_str() != Some("app-token")));
    for (job, doctor, command) in [
        ("predeploy", "Every credential the gate needs is here", "Targets hold the current values"),
        ("rotate", "Every credential rotation needs is here", "Rotate what is due"),
    ] {
        let names: Vec<&str> = steps(&doc, job).iter().skip(2).map(|s| s["name"].as_str().unwrap()).collect();
        let mut expected = vec![doctor, "Mint a GitHub App installation token", command];
        if job == "rotate" {
            expected.push("Commit the registry");
        }
        assert_eq!(names, expected, "{job}");
        // The doctor checks the App's two secrets (not a token: none is minted yet).
        assert_eq!(
            entries(&step(&doc, job, doctor)["env"]),
            map(&[
                ("CHITTY_SECRETS_IDENTITY", "${{ secrets.CHITTY_SECRETS_IDENTITY }}"),
                ("CHITTY_SECRETS_APP_CLIENT_ID", "${{ secrets.CHITTY_SECRETS_APP_CLIENT_ID }}"),
                ("CHITTY_SECRETS_APP_PRIVATE_KEY", "${{ secrets.CHITTY_SECRETS_APP_PRIVATE_KEY }}"),
                ("CHITTY_SECRETS_REGISTRY_ID", "${{ secrets.CHITTY_SECRETS_REGISTRY_ID }}"),
            ]),
            "{job}"
        );
        assert!(step(&doc, job, doctor)["run"].as_str().unwrap().ends_with(" --github-app"), "{job}");
        // The command gets the minted token, never the key.
        assert_eq!(
            entries(&step(&doc, job, command)["env"]),
            map(&[
                ("CHITTY_SECRETS_IDENTITY", "${{ secrets.CHITTY_SECRETS_IDENTITY }}"),
                ("GITHUB_TOKEN", "${{ steps.app-token.outputs.token }}"),
                ("CHITTY_SECRETS_REGISTRY_ID", "${{ secrets.CHITTY_SECRETS_REGISTRY_ID }}"),
            ]),
            "{job}"
        );
        let mint = step(&doc, job, "Mint a GitHub App installation token");
        assert_eq!(mint["id"].as_str(), Some("app-token"));
        assert!(mint["uses"].as_str().unwrap().starts_with(APP_TOKEN), "{job}");
    }
    // The gate lists: read. Rotation writes, and creates the missing environment.
    let gate = &step(&doc, "predeploy", "Mint a GitHub App installation token")["with"];
    assert_eq!(
        entries(gate),
        minted_with(
            &[
                ("permission-metadata", "read"),
                ("permission-secrets", "read"),
                ("permission-environments", "read"),
                ("permission-dependabot-secrets", "read"),
                ("permission-organization-secrets", "read"),
            ],
            Some("api,app,web")
        )
    );
    let rotate = &step(&doc, "rotate", "Mint a GitHub App installation token")["with"];
    assert_eq!(
        entries(rotate),
        minted_with(
            &[
                ("permission-metadata", "read"),
                ("permission-secrets", "write"),
                ("permission-environments", "write"),
                ("permission-administration", "write"),
                ("permission-dependabot-secrets", "write"),
                ("permission-organization-secrets", "write"),
            ],
            Some("api,app,web")
        )
    );
    // The registry is pushed with the run's own token, as without an App.
    assert_eq!(doc["jobs"]["rotate"]["permissions"]["contents"].as_str(), Some("write"));
    // Every command in it is one this binary parses.
    for s in steps(&doc, "predeploy").iter().chain(steps(&doc, "rotate")) {
        let Some(cmd) = s["run"].as_str().filter(|r| r.starts_with("chitty-secrets ")) else { continue };
        let argv: Vec<&str> = cmd.split_whitespace().collect();
        chitty_secrets::cli::Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("`{cmd}` does not parse: {e}"));
    }
}

/// Codespaces secrets (and an organization's Dependabot and Codespaces
/// secrets) have no input the action declares: the permission is asked for
/// all the same, and said so. Organization permissions alone need no
/// repository.
#[test]
fn ci_init_github_app_asks_for_permissions_the_action_does_not_declare() {
    let p = Project::initialised(
        r#"
[tokens.DEV_TOKEN]
issuer = "random"

[[tokens.DEV_TOKEN.targets]]
kind = "github"
repo = "acme/app"
app = "codespaces"
"#,
    );
    let out = p.ok(&["ci", "init", "--github-app"]);
    assert!(out.contains("does not declare permission-codespaces-secrets"), "{out}");
    let doc = workflow(&p);
    for job in ["predeploy", "rotate"] {
        // GitHub asks Codespaces secrets: write even to list them.
        assert_eq!(
            entries(&step(&doc, job, "Mint a GitHub App installation token")["with"]),
            minted_with(&[("permission-metadata", "read"), ("permission-codespaces-secrets", "write")], Some("app")),
            "{job}"
        );
    }

    let p = Project::initialised(
        r#"
[tokens.NPM_TOKEN]
issuer = "manual"

[[tokens.NPM_TOKEN.targets]]
kind = "github"
org = "acme"
app = "dependabot"
visibility = "all"
"#,
    );
    p.ok(&["ci", "init", "--github-app"]);
    let doc = workflow(&p);
    assert_eq!(
        entries(&step(&doc, "rotate", "Mint a GitHub App installation token")["with"]),
        minted_with(&[("permission-organization-dependabot-secrets", "write")], None)
    );
    // zizmor exempts an installation-wide owner only for the organization
    // permissions it knows; this one it does not, so the line says why.
    assert!(p.read(WORKFLOW).contains("owner: acme # zizmor: ignore[github-app] organization permissions only"));
}

/// An installation token is for one account: targets under two are refused
/// before anything is written.
#[test]
fn ci_init_github_app_refuses_targets_under_two_accounts() {
    let p = Project::initialised(
        r#"
[tokens.T]
issuer = "random"

[[tokens.T.targets]]
kind = "github"
repo = "acme/app"

[[tokens.T.targets]]
kind = "github"
repo = "other/app"
"#,
    );
    let out = p.run(&["ci", "init", "--github-app"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        text(&out).contains("the policies deliver to GitHub under 2 accounts (acme, other)")
            && text(&out).contains("without --github-app"),
        "{}",
        text(&out)
    );
    assert!(!p.path(WORKFLOW).exists());
}

/// No policy delivers to GitHub: no token is minted, and `ci init` says so.
#[test]
fn ci_init_github_app_without_github_targets_mints_nothing() {
    let p = Project::initialised(LOCAL_POLICY);
    let out = p.ok(&["ci", "init", "--github-app"]);
    assert!(out.contains("no policy delivers to GitHub"), "{out}");
    assert!(!p.read(WORKFLOW).contains("create-github-app-token"));
}

/// The names are the user's to choose, checked as GitHub allows them, and
/// the doctor in the workflow is told them.
#[test]
fn ci_init_github_app_takes_other_secret_names() {
    let p = Project::initialised(POLICY);
    let out = p.run(&["ci", "init", "--github-app", "--app-key-secret", "GITHUB_APP_KEY"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("--app-key-secret `GITHUB_APP_KEY` is not a name GitHub allows"), "{}", text(&out));
    assert_eq!(code(&p.run(&["ci", "init", "--app-key-secret", "KEY"])), 2, "the name without --github-app");

    p.ok(&[
        "ci",
        "init",
        "--github-app",
        "--app-client-id-secret",
        "DEPLOY_APP_ID",
        "--app-key-secret",
        "DEPLOY_APP_KEY",
    ]);
    let doc = workflow(&p);
    let doctor = step(&doc, "rotate", "Every credential rotation needs is here");
    assert!(
        doctor["run"].as_str().unwrap().ends_with(
            " ci doctor --for rotate --github-app --app-client-id-secret DEPLOY_APP_ID --app-key-secret DEPLOY_APP_KEY"
        ),
        "{doctor:?}"
    );
    assert_eq!(entries(&doctor["env"])["DEPLOY_APP_KEY"], "${{ secrets.DEPLOY_APP_KEY }}");
    let with = entries(&step(&doc, "rotate", "Mint a GitHub App installation token")["with"]);
    assert_eq!(with["client-id"], "${{ secrets.DEPLOY_APP_ID }}");
    assert_eq!(with["private-key"], "${{ secrets.DEPLOY_APP_KEY }}");
}

/// `ci doctor --github-app` names the App's client ID and key secrets
/// (exit 1) instead of a personal token, and says which App permissions
/// the job's token asks for.
#[test]
fn ci_doctor_github_app_names_the_app_secrets() {
    let p = Project::initialised(POLICY);
    let out = p.run(&["ci", "doctor", "--github-app", "--for", "rotate"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: CHITTY_SECRETS_APP_CLIENT_ID is not set (github:acme/app,")
            && stderr.contains(
                "set the repository secret CHITTY_SECRETS_APP_CLIENT_ID (`gh secret set CHITTY_SECRETS_APP_CLIENT_ID`"
            )
            && stderr.contains("error: CHITTY_SECRETS_APP_PRIVATE_KEY is not set")
            && stderr.contains("`gh secret set CHITTY_SECRETS_APP_PRIVATE_KEY < the-app.private-key.pem`"),
        "{stderr}"
    );
    assert!(!stderr.contains("GITHUB_TOKEN") && !stderr.contains("GH_TOKEN"), "{stderr}");
    // Without the App, the same policy needs the personal token's secret.
    let out = p.run(&["ci", "doctor", "--for", "rotate"]);
    assert!(text(&out).contains("set the repository secret CHITTY_SECRETS_GITHUB_TOKEN"), "{}", text(&out));

    let out = p
        .command(&["ci", "doctor", "--github-app", "--for", "gate"])
        .env("CHITTY_SECRETS_IDENTITY", "set")
        .env("CHITTY_SECRETS_APP_CLIENT_ID", "Iv23liTestClientId0001")
        .env("CHITTY_SECRETS_APP_PRIVATE_KEY", "set")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("the GitHub App token this job mints asks for repository Metadata: read, repository Secrets: read, repository Environments: read, repository Dependabot secrets: read, organization Secrets: read (the App's installation on acme must have them)")
            && stdout.contains("every variable this job needs is set (CHITTY_SECRETS_IDENTITY, CHITTY_SECRETS_APP_CLIENT_ID, CHITTY_SECRETS_APP_PRIVATE_KEY)"),
        "{stdout}"
    );
}
