//! GitHub and Cloudflare delivery against the fakes.

use std::process::{Command, Output};

use crate::common::*;
use crate::fakes::Faults;
use crate::fakes::cloudflare::{self, FakeCloudflare};
use crate::fakes::github::{self, FakeGithub};

const POLICY: &str = r#"
[tokens.API_TOKEN]
issuer = "random"

[[tokens.API_TOKEN.targets]]
kind = "github"
repo = "acme/app"
names = ["API_TOKEN", "API_TOKEN_ALIAS"]

[[tokens.API_TOKEN.targets]]
kind = "github"
repo = "acme/app"
environment = "production"

[[tokens.API_TOKEN.targets]]
kind = "github"
org = "acme"
visibility = "selected"
selected_repository_ids = [11, 12]

[[tokens.API_TOKEN.targets]]
kind = "wrangler"
worker = "api"

[[tokens.API_TOKEN.targets]]
kind = "wrangler"
worker = "api"
env = "production"

[[tokens.API_TOKEN.targets]]
kind = "dotenv"
path = "app/.env"

[tokens.DB_PASSWORD]
issuer = "random"

[[tokens.DB_PASSWORD.targets]]
kind = "github"
repo = "acme/app"

[[tokens.DB_PASSWORD.targets]]
kind = "wrangler"
worker = "api"
"#;

/// Points a command at the fake GitHub and Cloudflare, with their
/// credentials, and shortens retry backoff.
pub fn with_fakes<'c>(cmd: &'c mut Command, gh: &FakeGithub, cf: &FakeCloudflare) -> &'c mut Command {
    cmd.env("GITHUB_API_URL", gh.url())
        .env("GITHUB_TOKEN", github::TOKEN)
        .env("CLOUDFLARE_API_BASE_URL", cf.url())
        .env("CLOUDFLARE_API_TOKEN", cloudflare::TOKEN)
        .env("CLOUDFLARE_ACCOUNT_ID", cloudflare::ACCOUNT)
        .env("CHITTY_SECRETS_RETRY_BASE_MS", "1")
}

/// The fake GitHub and Cloudflare, and the binary run against them.
pub struct Fakes {
    pub gh: FakeGithub,
    pub cf: FakeCloudflare,
}

impl Fakes {
    pub fn start() -> Self {
        Fakes { gh: FakeGithub::start(), cf: FakeCloudflare::start() }
    }

    pub fn run(&self, p: &Project, args: &[&str]) -> Output {
        with_fakes(&mut p.command(args), &self.gh, &self.cf).output().unwrap()
    }

    /// Runs, expects success, and gives what it printed (both streams).
    pub fn ok(&self, p: &Project, args: &[&str]) -> String {
        let out = self.run(p, args);
        assert_eq!(code(&out), 0, "{args:?}:\n{}", text(&out));
        text(&out)
    }
}

struct Remote {
    gh: FakeGithub,
    cf: FakeCloudflare,
}

impl Remote {
    fn start() -> Self {
        let gh = FakeGithub::start();
        gh.add_repo("acme/app");
        gh.add_env("acme/app", "production");
        gh.add_org("acme");
        let cf = FakeCloudflare::start();
        cf.add_script("api");
        cf.add_script("api-production");
        Remote { gh, cf }
    }

    fn run(&self, p: &Project, args: &[&str]) -> Output {
        with_fakes(&mut p.command(args), &self.gh, &self.cf).output().unwrap()
    }

    fn ok(&self, p: &Project, args: &[&str]) -> String {
        let out = self.run(p, args);
        assert_eq!(code(&out), 0, "{args:?}:\n{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    fn reset(&self) {
        self.gh.control.reset_counts();
        self.cf.control.reset_counts();
    }

    fn writes(&self) -> u64 {
        self.gh.control.writes() + self.cf.control.writes()
    }

    fn requests(&self) -> u64 {
        self.gh.control.total() + self.cf.control.total()
    }

    /// Every place API_TOKEN and DB_PASSWORD go holds the registry's value.
    fn assert_everywhere(&self, p: &Project) {
        let api = p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
        let db = p.ok(&["get", "DB_PASSWORD"]).trim_end().to_string();
        for (scope, name, want) in [
            ("repo:acme/app", "API_TOKEN", &api),
            ("repo:acme/app", "API_TOKEN_ALIAS", &api),
            ("env:acme/app:production", "API_TOKEN", &api),
            ("org:acme", "API_TOKEN", &api),
            ("repo:acme/app", "DB_PASSWORD", &db),
        ] {
            assert_eq!(self.gh.value(scope, name).as_ref(), Some(want), "{scope} {name}");
        }
        for (script, name, want) in
            [("api", "API_TOKEN", &api), ("api-production", "API_TOKEN", &api), ("api", "DB_PASSWORD", &db)]
        {
            assert_eq!(self.cf.value(script, name).as_ref(), Some(want), "{script} {name}");
        }
        assert_eq!(env_value(&p.path("app/.env"), "API_TOKEN").as_ref(), Some(&api));
    }
}

#[test]
fn delivers_everywhere_and_a_second_sync_makes_no_request() {
    let r = Remote::start();
    let p = Project::initialised(POLICY);
    let out = r.ok(&p, &["rotate"]);
    r.assert_everywhere(&p);
    assert!(out.contains("delivered v1 to github:org:acme (API_TOKEN)"), "{out}");
    // Organization secrets carry their visibility and repositories.
    r.gh.stored("org:acme", "API_TOKEN", |s, _| {
        assert_eq!(s.visibility.as_deref(), Some("selected"));
        assert_eq!(s.selected_repository_ids.as_deref(), Some(&[11, 12][..]));
    });
    // One public-key fetch per scope for the whole run.
    let counts = r.gh.control.counts();
    assert_eq!(counts["GET /repos/{owner}/{repo}/{app}/secrets/public-key"], 1, "{counts:?}");
    assert_eq!(counts["GET /orgs/{org}/{app}/secrets/public-key"], 1, "{counts:?}");

    r.reset();
    let out = r.ok(&p, &["sync"]);
    assert!(out.contains("every target is up to date"), "{out}");
    assert_eq!(r.requests(), 0, "a no-op sync made requests: {:?} {:?}", r.gh.control.counts(), r.cf.control.counts());
    assert_eq!(code(&r.run(&p, &["sync", "--check"])), 0);
    assert_eq!(r.requests(), 0);

    // A sync batches across tokens: one bulk request per Worker, one key
    // fetch per GitHub scope, for every token at once.
    for (script, name) in [("api", "API_TOKEN"), ("api", "DB_PASSWORD")] {
        r.cf.remove_by_hand(script, name);
    }
    r.gh.delete_by_hand("repo:acme/app", "API_TOKEN");
    r.gh.delete_by_hand("repo:acme/app", "DB_PASSWORD");
    r.reset();
    let out = r.ok(&p, &["sync", "--verify"]);
    r.assert_everywhere(&p);
    let cf = r.cf.control.counts();
    assert_eq!(cf["PATCH /client/v4/accounts/{account}/workers/scripts/{script}/secrets-bulk"], 1, "{cf:?}");
    let gh = r.gh.control.counts();
    assert_eq!(gh["PUT /repos/{owner}/{repo}/{app}/secrets/{name}"], 2, "{gh:?}");
    // The scope's public key was kept from the first run on this machine.
    assert_eq!(gh.get("GET /repos/{owner}/{repo}/{app}/secrets/public-key"), None, "{gh:?}");
    assert!(p.path("config/chitty-secrets/cache/github-public-keys.json").exists());
    assert!(out.contains("github:acme/app: 2 created, 0 failed, 1 unchanged"), "{out}");
    assert!(out.contains("github:org:acme: 1 unchanged"), "{out}");
}

#[test]
fn sealed_values_open_with_real_libsodium() {
    let r = Remote::start();
    let p = Project::initialised(POLICY);
    r.ok(&p, &["rotate", "DB_PASSWORD"]);
    let want = p.ok(&["get", "DB_PASSWORD"]).trim_end().to_string();
    let (sealed, secret_key) =
        r.gh.stored("repo:acme/app", "DB_PASSWORD", |s, k| (s.sealed.clone(), k.to_bytes().to_vec()));
    assert_eq!(sealed.len(), want.len() + 48, "a sealed box is the plaintext plus 48 bytes");
    // PyNaCl wraps libsodium's crypto_box_seal_open; inputs go on stdin.
    let script = "import sys, nacl.public\nsk, ct = bytes.fromhex(sys.stdin.readline().strip()), bytes.fromhex(sys.stdin.readline().strip())\nsys.stdout.write(nacl.public.SealedBox(nacl.public.PrivateKey(sk)).decrypt(ct).decode())\n";
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut child = std::process::Command::new(python())
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(format!("{}\n{}\n", hex(&secret_key), hex(&sealed)).as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "PyNaCl (pip install pynacl) failed: {}", text(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
}

#[test]
fn secrets_added_by_hand_survive_every_command_and_plan_reports_them() {
    let r = Remote::start();
    let p = Project::initialised(POLICY);
    r.gh.set_by_hand("repo:acme/app", "MANUAL_SECRET", "keep-me");
    r.cf.set_by_hand("api", "MANUAL_SECRET", "keep-me-too");
    r.ok(&p, &["rotate"]);
    r.ok(&p, &["sync"]);
    r.ok(&p, &["sync", "--verify"]);
    r.ok(&p, &["sync", "--prune"]);
    r.ok(&p, &["rotate", "--due"]);
    let plan = r.ok(&p, &["plan"]);
    assert!(plan.contains("github:acme/app: MANUAL_SECRET is not managed by chitty-secrets (left alone)"), "{plan}");
    assert!(plan.contains("wrangler:api: MANUAL_SECRET is not managed"), "{plan}");
    assert_eq!(r.gh.value("repo:acme/app", "MANUAL_SECRET").as_deref(), Some("keep-me"));
    assert_eq!(r.cf.value("api", "MANUAL_SECRET").as_deref(), Some("keep-me-too"));
}

#[test]
fn verify_repairs_remote_deletions_and_hand_edits() {
    let r = Remote::start();
    let p = Project::initialised(POLICY);
    r.ok(&p, &["rotate"]);
    r.gh.delete_by_hand("repo:acme/app", "API_TOKEN_ALIAS");
    r.gh.set_by_hand("env:acme/app:production", "API_TOKEN", "edited-in-the-web-ui");
    r.cf.remove_by_hand("api-production", "API_TOKEN");
    // Records alone see nothing: zero requests.
    r.reset();
    r.ok(&p, &["sync"]);
    assert_eq!(r.requests(), 0);
    // --verify lists (names and updated_at only) and repairs.
    let check = r.run(&p, &["sync", "--check", "--verify"]);
    assert_eq!(code(&check), 3, "{}", text(&check));
    assert!(text(&check).contains("API_TOKEN_ALIAS is missing"), "{}", text(&check));
    assert!(text(&check).contains("API_TOKEN differs from the registry"), "{}", text(&check));
    assert_eq!(r.writes(), 0, "sync --check wrote");
    r.ok(&p, &["sync", "--verify"]);
    r.assert_everywhere(&p);
    assert_eq!(code(&r.run(&p, &["sync", "--check", "--verify"])), 0);
}

#[test]
fn twenty_percent_faults_still_end_correct_and_retries_are_reported() {
    let r = Remote::start();
    let p = Project::initialised(POLICY);
    let faults = Faults { fail_percent: 15, drop_percent: 5, ..Faults::default() };
    r.gh.control.set_faults(faults);
    r.cf.control.set_faults(faults);
    let mut retried = 0;
    for _ in 0..3 {
        let out = r.run(&p, &["rotate"]);
        // A run may stop pending when one request fails every retry; the next resumes it.
        assert!(matches!(code(&out), 0 | 4), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if let Some(line) = stdout.lines().find(|l| l.contains("to remote services")) {
            retried += line
                .split(", ")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    // Then a sync under the same faults repairs what was lost by hand.
    for scope in ["repo:acme/app", "env:acme/app:production"] {
        r.gh.delete_by_hand(scope, "API_TOKEN");
    }
    r.cf.clear_by_hand("api");
    let mut sync_retries = 0;
    let mut exhausted = 0;
    let rotation_faults = r.gh.control.faults_injected() + r.cf.control.faults_injected();
    r.reset();
    for _ in 0..3 {
        let out = r.run(&p, &["sync", "--verify"]);
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        if let Some(line) = stdout.lines().find(|l| l.contains("to remote services")) {
            sync_retries += line
                .split(", ")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
        if code(&out) == 0 {
            break;
        }
        // A request that failed all its attempts ends the run with its last fault unretried.
        exhausted += 1;
    }
    // Every fault the fakes injected was retried, and the output said so.
    let injected = (r.gh.control.faults_injected() + r.cf.control.faults_injected()) as u64;
    if exhausted == 0 {
        assert_eq!(sync_retries, injected, "sync's reported retries");
    } else {
        assert!(sync_retries < injected && sync_retries > 0, "{sync_retries} retries for {injected} faults");
    }
    r.gh.control.set_faults(Faults::default());
    r.cf.control.set_faults(Faults::default());
    r.ok(&p, &["rotate", "--due"]);
    r.assert_everywhere(&p);
    assert!(rotation_faults + r.gh.control.faults_injected() + r.cf.control.faults_injected() > 0);
    assert!(retried > 0, "no retries were reported");
    assert_eq!(code(&r.run(&p, &["sync", "--check", "--verify"])), 0);
}

#[test]
fn invalid_names_fail_before_any_request() {
    let r = Remote::start();
    let p = Project::new(
        &POLICY
            .replace("names = [\"API_TOKEN\", \"API_TOKEN_ALIAS\"]", "names = [\"API_TOKEN\", \"GITHUB_API_TOKEN\"]"),
    );
    // `init` sets up the registry and says the policy is broken (exit 2).
    assert_eq!(code(&p.run(&["init"])), 2);
    let out = r.run(&p, &["rotate"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains(
            "policies/main.toml:5:1: token `API_TOKEN`: `GITHUB_API_TOKEN` is not a valid GitHub secret name"
        ),
        "{}",
        text(&out)
    );
    assert_eq!(r.requests(), 0);
}

#[test]
fn github_writes_stay_within_eight_in_flight() {
    let r = Remote::start();
    let names: Vec<String> = (0..30).map(|i| format!("\"N{i:02}\"")).collect();
    let policy = format!(
        "[tokens.T]\nissuer = \"random\"\n[[tokens.T.targets]]\nkind = \"github\"\nrepo = \"acme/app\"\nnames = [{}]\n",
        names.join(", ")
    );
    let p = Project::initialised(&policy);
    r.gh.control.set_faults(Faults { latency: std::time::Duration::from_millis(30), ..Faults::default() });
    r.ok(&p, &["rotate"]);
    let max = r.gh.control.max_in_flight();
    assert!((2..=8).contains(&max), "max in flight {max}");
    assert_eq!(r.gh.names("repo:acme/app").len(), 30);
    assert_eq!(r.gh.control.counts()["PUT /repos/{owner}/{repo}/{app}/secrets/{name}"], 30);
}

#[test]
fn cloudflare_falls_back_to_put_and_explains_its_error_codes() {
    let r = Remote::start();
    let p = Project::initialised(POLICY);
    r.cf.state.bulk_disabled.store(true, std::sync::atomic::Ordering::SeqCst);
    r.ok(&p, &["rotate"]);
    r.assert_everywhere(&p);
    let counts = r.cf.control.counts();
    assert!(counts["PUT /client/v4/accounts/{account}/workers/scripts/{script}/secrets"] >= 3, "{counts:?}");

    r.cf.state.bulk_disabled.store(false, std::sync::atomic::Ordering::SeqCst);
    let uploaded = r.cf.upload_version("api");
    r.reset();
    let out = r.run(&p, &["rotate", "DB_PASSWORD"]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(text(&out).contains("is not the deployed one") && text(&out).contains("(10215)"), "{}", text(&out));
    assert!(text(&out).contains("`wrangler versions deploy`"), "{}", text(&out));
    assert_eq!(r.cf.control.writes(), 0, "a write Cloudflare refuses was sent: {:?}", r.cf.control.counts());
    assert!(text(&out).contains("rotate DB_PASSWORD` to resume"), "{}", text(&out));
    r.cf.deploy("api", &[(&uploaded, 100)]);
    r.ok(&p, &["rotate", "DB_PASSWORD"]);
    r.assert_everywhere(&p);

    r.cf.remove_script("api-production");
    let out = r.run(&p, &["rotate", "API_TOKEN"]);
    assert_eq!(code(&out), 4);
    assert!(text(&out).contains("(10007)") && text(&out).contains("no Worker script by that name"), "{}", text(&out));
}

#[test]
fn wrangler_cli_mode_passes_the_value_on_stdin_only() {
    let p = Project::initialised(
        "[tokens.T]\nissuer = \"random\"\n[[tokens.T.targets]]\nkind = \"wrangler\"\nworker = \"api\"\nenv = \"staging\"\nvia = \"cli\"\n",
    );
    let fake = p.path("fake-wrangler.sh");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$@\" >> {0}/argv.log\ncat >> {0}/stdin.log\necho >> {0}/stdin.log\n",
            p.dir.path().display()
        ),
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&fake).unwrap().permissions(), 0o755);
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = p.command(&["rotate"]).env("CHITTY_SECRETS_WRANGLER", &fake).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let value = p.ok(&["get", "T"]).trim_end().to_string();
    let argv = p.read("argv.log");
    assert_eq!(argv.trim(), "secret put T --name api-staging");
    assert!(!argv.contains(&value));
    assert_eq!(p.read("stdin.log").trim(), value);
}

#[test]
fn prune_deletes_only_names_this_tool_wrote() {
    let r = Remote::start();
    let p = Project::initialised(POLICY);
    r.gh.set_by_hand("repo:acme/app", "MANUAL_SECRET", "keep-me");
    r.ok(&p, &["rotate"]);
    // The alias is dropped from the policy.
    std::fs::write(
        p.path("policies/main.toml"),
        POLICY.replace("names = [\"API_TOKEN\", \"API_TOKEN_ALIAS\"]", "names = [\"API_TOKEN\"]"),
    )
    .unwrap();
    r.ok(&p, &["sync"]);
    assert!(r.gh.value("repo:acme/app", "API_TOKEN_ALIAS").is_some(), "sync without --prune deleted");
    let out = r.ok(&p, &["sync", "--prune"]);
    assert!(out.contains("pruned API_TOKEN_ALIAS from github:acme/app"), "{out}");
    assert_eq!(r.gh.value("repo:acme/app", "API_TOKEN_ALIAS"), None);
    assert_eq!(r.gh.value("repo:acme/app", "MANUAL_SECRET").as_deref(), Some("keep-me"));
}

#[test]
fn missing_credentials_and_bad_tokens_are_explained() {
    let r = Remote::start();
    let p = Project::initialised(POLICY);
    let out = p.command(&["rotate", "DB_PASSWORD"]).env("GITHUB_API_URL", r.gh.url()).output().unwrap();
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(text(&out).contains("GITHUB_TOKEN (or GH_TOKEN) is not set"), "{}", text(&out));
    assert!(
        text(&out).contains("CLOUDFLARE_ACCOUNT_ID is not set")
            || text(&out).contains("CLOUDFLARE_API_TOKEN is not set"),
        "{}",
        text(&out)
    );
    let out = p
        .command(&["rotate", "DB_PASSWORD"])
        .env("GITHUB_API_URL", r.gh.url())
        .env("GITHUB_TOKEN", "wrong")
        .env("CLOUDFLARE_API_BASE_URL", "http://api.cloudflare.example")
        .env("CLOUDFLARE_API_TOKEN", "x")
        .env("CLOUDFLARE_ACCOUNT_ID", "y")
        .output()
        .unwrap();
    assert!(text(&out).contains("401 Unauthorized: Bad credentials"), "{}", text(&out));
    assert!(text(&out).contains("the GitHub token is invalid or expired"), "{}", text(&out));
    assert!(text(&out).contains("only travel over HTTPS"), "{}", text(&out));
    // Pending is resumed once the environment is right.
    r.ok(&p, &["rotate", "DB_PASSWORD"]);
    let status: serde_json::Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
    let db = status["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "DB_PASSWORD").unwrap().clone();
    assert_eq!(db["current"], 1, "{db}");
}

#[test]
fn check_is_offline_and_check_online_lists_each_remote_once() {
    let r = Remote::start();
    let p = Project::initialised(POLICY);
    r.ok(&p, &["rotate"]);
    r.gh.delete_by_hand("repo:acme/app", "DB_PASSWORD");
    r.reset();
    let out = r.run(&p, &["check"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(r.requests(), 0, "offline check made requests");
    let out = r.run(&p, &["check", "--online", "--json"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let missing: Vec<&serde_json::Value> =
        report["findings"].as_array().unwrap().iter().filter(|f| f["code"] == "remote-missing").collect();
    assert_eq!(missing.len(), 1, "{report}");
    assert_eq!(missing[0]["message"], "DB_PASSWORD at github:acme/app is missing");
    // Five remote targets: five list calls; each Worker's deployments read
    // once (does what runs hold the value?); no writes.
    let counts = r.cf.control.counts();
    assert_eq!(counts["GET /client/v4/accounts/{account}/workers/scripts/{script}/deployments"], 2, "{counts:?}");
    assert_eq!(r.requests(), 7, "{:?} {counts:?}", r.gh.control.counts());
    assert_eq!(r.writes(), 0);
    // The tokens' issuers are local (`random`): their verify is a shape
    // check here, not a call.
    assert_eq!(report["service_calls"], 7, "five lists and two deployment reads, no verify call for local issuers");
}

/// 20 tokens to 250 repositories is 5,000 writes: more than GitHub's
/// hourly budget allows in one job. With the budget compressed (80 per
/// 100 ms, 500 per second), `sync --max-duration` runs stop cleanly
/// (exit 4), the next run continues, every secret is written exactly
/// once, and no budget window is ever exceeded.
#[test]
fn many_repositories_are_delivered_across_runs_inside_the_budget() {
    const TOKENS: usize = 20;
    const REPOS: usize = 250;
    let gh = FakeGithub::start();
    let cf = FakeCloudflare::start();
    let mut policy = String::new();
    for r in 0..REPOS {
        gh.add_repo(&format!("acme/svc{r:03}"));
    }
    for t in 0..TOKENS {
        policy.push_str(&format!("[tokens.TOKEN_{t:02}]\nissuer = \"manual\"\n"));
        for r in 0..REPOS {
            policy
                .push_str(&format!("[[tokens.TOKEN_{t:02}.targets]]\nkind = \"github\"\nrepo = \"acme/svc{r:03}\"\n"));
        }
    }
    let p = Project::initialised(&policy);
    for t in 0..TOKENS {
        let out = p.run_with_stdin(&["set", &format!("TOKEN_{t:02}")], &format!("value-{t:02}-0123456789"));
        assert_eq!(code(&out), 0, "{}", text(&out));
    }
    // `plan` says what this costs before anything is written.
    let mut cmd = p.command(&["plan"]);
    let out = with_fakes(&mut cmd, &gh, &cf).output().unwrap();
    let said = text(&out);
    assert!(
        said.contains("GitHub: 5000 writes; GitHub's budget (80 a minute, 500 an hour) needs at least 9h"),
        "{said}"
    );
    assert!(
        said.contains("TOKEN_00 goes to 250 repositories of acme: one organization secret is 1 write instead of 250"),
        "{said}"
    );
    assert!(said.contains("org = \"acme\"\n  visibility = \"selected\""), "{said}");
    assert!(gh.state.writes.lock().unwrap().is_empty(), "plan wrote nothing");

    let mut cut = 0;
    for run in 1..=8 {
        let mut cmd = p.command(&["sync", "--max-duration", "4s"]);
        with_fakes(&mut cmd, &gh, &cf).env("CHITTY_SECRETS_GITHUB_BUDGET", "80/100ms,500/1s");
        let out = cmd.output().unwrap();
        match code(&out) {
            0 => break,
            4 => {
                cut += 1;
                assert!(text(&out).contains("before GitHub's request budget allows it"), "{}", text(&out));
            }
            other => panic!("run {run} exited {other}: {}", text(&out)),
        }
        assert!(run < 8, "never finished");
        // Scheduled runs are spaced: more than the longest window here (the
        // budget is per run; GitHub's own "slow down" covers the rest).
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert!(cut >= 2, "5,000 writes at 500 a second should not fit in one 4-second run ({cut} cut)");

    let writes = gh.state.writes.lock().unwrap();
    assert_eq!(writes.len(), TOKENS * REPOS, "every secret exactly once");
    let distinct: std::collections::BTreeSet<&String> = writes.iter().map(|(_, w)| w).collect();
    assert_eq!(distinct.len(), TOKENS * REPOS, "no secret written twice");
    // No window exceeded (a little slack for the fake's own clock).
    let times: Vec<std::time::Instant> = writes.iter().map(|(t, _)| *t).collect();
    for (limit, period) in [(80, 100u64), (500, 1000)] {
        let period = std::time::Duration::from_millis(period.saturating_sub(5));
        let most = (0..times.len())
            .map(|i| times[i..].iter().take_while(|t| t.duration_since(times[i]) < period).count())
            .max()
            .unwrap();
        assert!(most <= limit, "{most} writes within {period:?} (limit {limit})");
    }
    for t in [0, TOKENS - 1] {
        for r in [0, REPOS - 1] {
            assert_eq!(
                gh.value(&format!("repo:acme/svc{r:03}"), &format!("TOKEN_{t:02}")).unwrap(),
                format!("value-{t:02}-0123456789")
            );
        }
    }
}

/// An organization secret's `visibility` is required on every PUT. When the
/// policy does not say, the secret keeps what it has (`all`, or `selected`
/// with its repositories) through `sync` and `rotate`, instead of being
/// narrowed to `private` as `gh secret set` does.
#[test]
fn an_org_secret_keeps_its_visibility_when_the_policy_is_silent() {
    let gh = FakeGithub::start();
    let cf = FakeCloudflare::start();
    gh.add_org("acme");
    let p = Project::initialised(
        "[tokens.ORG_TOKEN]\nissuer = \"random\"\n[[tokens.ORG_TOKEN.targets]]\nkind = \"github\"\norg = \"acme\"\n",
    );
    let run = |args: &[&str]| {
        let mut cmd = p.command(args);
        let out = with_fakes(&mut cmd, &gh, &cf).output().unwrap();
        assert_eq!(code(&out), 0, "{args:?}: {}", text(&out));
    };
    run(&["rotate"]);
    let visibility =
        || gh.stored("org:acme", "ORG_TOKEN", |s, _| (s.visibility.clone(), s.selected_repository_ids.clone()));
    assert_eq!(visibility(), (Some("private".into()), None), "a new secret is private");

    // An admin widens it by hand; the next rotation keeps that.
    gh.state.scopes.lock().unwrap().get_mut("org:acme").unwrap().secrets.get_mut("ORG_TOKEN").unwrap().visibility =
        Some("all".into());
    run(&["rotate"]);
    assert_eq!(visibility(), (Some("all".into()), None));

    {
        let mut scopes = gh.state.scopes.lock().unwrap();
        let s = scopes.get_mut("org:acme").unwrap().secrets.get_mut("ORG_TOKEN").unwrap();
        s.visibility = Some("selected".into());
        s.selected_repository_ids = Some(vec![11, 12]);
    }
    run(&["rotate"]);
    assert_eq!(visibility(), (Some("selected".into()), Some(vec![11, 12])));
    assert!(gh.value("org:acme", "ORG_TOKEN").unwrap().len() >= 32);

    // When the policy does set it, `plan` says what the next write changes.
    std::fs::write(
        p.path("policies/main.toml"),
        "[tokens.ORG_TOKEN]\nissuer = \"random\"\n[[tokens.ORG_TOKEN.targets]]\nkind = \"github\"\norg = \"acme\"\nvisibility = \"private\"\n",
    )
    .unwrap();
    let out = with_fakes(&mut p.command(&["plan"]), &gh, &cf).output().unwrap();
    assert!(
        text(&out).contains(
            "github:org:acme: ORG_TOKEN is visible to `selected` repositories; the policy sets `private`: the next write changes who may use it"
        ),
        "{}",
        text(&out)
    );
    run(&["rotate"]);
    assert_eq!(visibility(), (Some("private".into()), None));
    let out = with_fakes(&mut p.command(&["plan"]), &gh, &cf).output().unwrap();
    assert!(!text(&out).contains("is visible to"), "{}", text(&out));
}

/// Pull requests opened by Dependabot see only Dependabot secrets, and
/// Codespaces have their own: a token goes to each with `app`, sealed with
/// that app's own key (the fake refuses a box sealed with another).
#[test]
fn a_token_reaches_repository_environment_dependabot_and_codespaces_each_with_its_own_key() {
    let gh = FakeGithub::start();
    let cf = FakeCloudflare::start();
    gh.add_repo("acme/app");
    gh.add_repo_app("acme/app", "dependabot");
    gh.add_repo_app("acme/app", "codespaces");
    gh.add_org_app("acme", "dependabot");
    gh.add_env("acme/app", "production");
    let mut policy = String::from("[tokens.NPM_TOKEN]\nissuer = \"random\"\n");
    for app in ["", "app = \"dependabot\"\n", "app = \"codespaces\"\n", "environment = \"production\"\n"] {
        policy.push_str(&format!("[[tokens.NPM_TOKEN.targets]]\nkind = \"github\"\nrepo = \"acme/app\"\n{app}"));
    }
    policy.push_str(
        "[[tokens.NPM_TOKEN.targets]]\nkind = \"github\"\norg = \"acme\"\napp = \"dependabot\"\nvisibility = \"all\"\n",
    );
    let p = Project::initialised(&policy);
    let mut cmd = p.command(&["rotate"]);
    let out = with_fakes(&mut cmd, &gh, &cf).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let value = p.ok(&["get", "NPM_TOKEN"]).trim_end().to_string();
    for scope in [
        "repo:acme/app",
        "dependabot:repo:acme/app",
        "codespaces:repo:acme/app",
        "env:acme/app:production",
        "dependabot:org:acme",
    ] {
        assert_eq!(gh.value(scope, "NPM_TOKEN").as_deref(), Some(value.as_str()), "{scope}");
    }
    assert!(p.ok(&["status", "--json"]).contains("\"github:acme/app@dependabot\""));

    // Environment secrets are Actions secrets only.
    std::fs::write(
        p.path("policies/main.toml"),
        "[tokens.X]\nissuer = \"random\"\n[[tokens.X.targets]]\nkind = \"github\"\nrepo = \"a/b\"\nenvironment = \"prod\"\napp = \"dependabot\"\n",
    )
    .unwrap();
    let out = p.run(&["policy", "check"]);
    assert!(text(&out).contains("environment secrets are Actions secrets"), "{}", text(&out));
}

/// An environment that does not exist gets a clear error, or is created
/// with `create_environment = true`; its secrets use its own key.
#[test]
fn a_missing_environment_is_named_or_created() {
    let gh = FakeGithub::start();
    let cf = FakeCloudflare::start();
    gh.add_repo("acme/app");
    let target = "[tokens.T]\nissuer = \"random\"\n[[tokens.T.targets]]\nkind = \"github\"\nrepo = \"acme/app\"\nenvironment = \"staging\"\n";
    let p = Project::initialised(target);
    let mut cmd = p.command(&["rotate"]);
    let out = with_fakes(&mut cmd, &gh, &cf).output().unwrap();
    assert_ne!(code(&out), 0);
    assert!(text(&out).contains("environment `staging` does not exist in acme/app"), "{}", text(&out));
    assert!(text(&out).contains("create_environment = true"), "{}", text(&out));

    std::fs::write(p.path("policies/main.toml"), format!("{target}create_environment = true\n")).unwrap();
    let mut cmd = p.command(&["rotate"]);
    let out = with_fakes(&mut cmd, &gh, &cf).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let value = p.ok(&["get", "T"]).trim_end().to_string();
    assert_eq!(gh.value("env:acme/app:staging", "T"), Some(value));
}

/// GitHub's limits are caught before any write: more than 100 secrets in a
/// repository (plan, with no request), a value over 48 KB (sync, before
/// its request).
#[test]
fn github_limits_are_caught_before_any_write() {
    let names: Vec<String> = (0..101).map(|i| format!("\"N{i:03}\"")).collect();
    let p = Project::initialised(&format!(
        "[tokens.T]\nissuer = \"random\"\n[[tokens.T.targets]]\nkind = \"github\"\nrepo = \"acme/app\"\nnames = [{}]\n",
        names.join(", ")
    ));
    let out = p.run(&["plan"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        text(&out).contains("error: github:acme/app: 101 secrets (101 declared, 0 already there) — GitHub allows 100"),
        "{}",
        text(&out)
    );
    // And what plan knows stops rotate and sync before their first write
    // (they wrote 100 of the 101 and left the last pending for ever).
    let gh = FakeGithub::start();
    let cf = FakeCloudflare::start();
    gh.add_repo("acme/app");
    for args in [&["rotate"][..], &["sync"]] {
        let mut cmd = p.command(args);
        let out = with_fakes(&mut cmd, &gh, &cf).output().unwrap();
        assert_eq!(code(&out), 1, "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("nothing was written") && text(&out).contains("GitHub allows 100"),
            "{}",
            text(&out)
        );
        assert_eq!(gh.control.total(), 0, "{args:?}: no request");
    }
    let status: serde_json::Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
    assert!(status["tokens"][0]["pending"].is_null(), "nothing minted: {status}");

    let gh = FakeGithub::start();
    let cf = FakeCloudflare::start();
    gh.add_repo("acme/app");
    let p = Project::initialised(
        "[tokens.BIG]\nissuer = \"manual\"\n[[tokens.BIG.targets]]\nkind = \"github\"\nrepo = \"acme/app\"\n",
    );
    // A value a target cannot take is refused before it is stored (so no
    // later sync or rotation is left unfinishable by it).
    let out = p.run_with_stdin(&["set", "BIG"], &"0123456789abcdef".repeat(50 * 64));
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("GitHub keeps at most 48 KB"), "{}", text(&out));
    let mut cmd = p.command(&["sync"]);
    let out = with_fakes(&mut cmd, &gh, &cf).output().unwrap();
    assert!(!text(&out).contains("delivered"), "{}", text(&out));
    assert!(gh.state.writes.lock().unwrap().is_empty());
}

/// `selected_repositories` by name: resolved to ids through the
/// organization's repository list (paginated), once per run.
#[test]
fn selected_repositories_are_named_and_resolved_to_ids() {
    let gh = FakeGithub::start();
    let cf = FakeCloudflare::start();
    gh.add_org("acme");
    for i in 0..150 {
        gh.add_repo(&format!("acme/svc{i:03}"));
    }
    let p = Project::initialised(
        "[tokens.A]\nissuer = \"random\"\n[[tokens.A.targets]]\nkind = \"github\"\norg = \"acme\"\nvisibility = \"selected\"\nselected_repositories = [\"svc007\", \"acme/svc140\"]\n\
         [tokens.B]\nissuer = \"random\"\n[[tokens.B.targets]]\nkind = \"github\"\norg = \"acme\"\nvisibility = \"selected\"\nselected_repositories = [\"svc001\"]\n",
    );
    let mut cmd = p.command(&["rotate"]);
    let out = with_fakes(&mut cmd, &gh, &cf).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let ids = gh.stored("org:acme", "A", |s, _| s.selected_repository_ids.clone());
    assert_eq!(ids, Some(vec![FakeGithub::repo_id("acme/svc007"), FakeGithub::repo_id("acme/svc140")]));
    let counts = gh.control.counts();
    assert_eq!(counts["GET /orgs/{org}/repos"], 2, "two pages of 100, listed once for both tokens: {counts:?}");

    std::fs::write(
        p.path("policies/main.toml"),
        "[tokens.A]\nissuer = \"random\"\n[[tokens.A.targets]]\nkind = \"github\"\norg = \"acme\"\nvisibility = \"selected\"\nselected_repositories = [\"nope\"]\n",
    )
    .unwrap();
    let mut cmd = p.command(&["rotate"]);
    let out = with_fakes(&mut cmd, &gh, &cf).output().unwrap();
    assert!(text(&out).contains("repository `nope` is not in organization acme"), "{}", text(&out));
}

/// Real HTTPS to both services: a CA named by `SSL_CERT_FILE` is trusted
/// (how GitHub Enterprise with a private CA works); without it the
/// certificate is refused and the error names the target.
#[test]
fn delivers_over_https_trusting_the_ca_in_ssl_cert_file() {
    let gh = FakeGithub::start();
    gh.add_repo("acme/app");
    let cf = FakeCloudflare::start();
    cf.add_script("api");
    let (gh_tls, gh_pem) = crate::fakes::serve_tls(gh.addr);
    let (cf_tls, cf_pem) = crate::fakes::serve_tls(cf.addr);
    let p = Project::initialised(
        "[tokens.T]\nissuer = \"random\"\n[[tokens.T.targets]]\nkind = \"github\"\nrepo = \"acme/app\"\n[[tokens.T.targets]]\nkind = \"wrangler\"\nworker = \"api\"\n",
    );
    let ca = p.path("ca.pem");
    std::fs::write(&ca, format!("{gh_pem}{cf_pem}")).unwrap();
    let run = |trust: bool| {
        let mut cmd = p.command(&["rotate"]);
        with_fakes(&mut cmd, &gh, &cf)
            .env("GITHUB_API_URL", format!("https://127.0.0.1:{}/api/v3", gh_tls.port()))
            .env("CLOUDFLARE_API_BASE_URL", format!("https://127.0.0.1:{}/client/v4", cf_tls.port()));
        if trust {
            cmd.env("SSL_CERT_FILE", &ca);
        }
        cmd.output().unwrap()
    };
    let out = run(false);
    assert_ne!(code(&out), 0, "an unknown CA was trusted: {}", text(&out));
    assert!(
        text(&out).contains("github:acme/app") && text(&out).to_lowercase().contains("certificate"),
        "{}",
        text(&out)
    );
    assert_eq!(gh.control.writes() + cf.control.writes(), 0);
    let out = run(true);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let value = p.ok(&["get", "T"]).trim_end().to_string();
    assert_eq!(gh.value("repo:acme/app", "T"), Some(value.clone()));
    assert_eq!(cf.value("api", "T"), Some(value));
}

#[test]
fn a_sync_reads_each_key_once_even_when_it_fails_and_asks_nothing_when_nothing_goes_out() {
    // The key is read ahead while values are decrypted; the delivery uses
    // that read, success or failure, and never asks twice.
    let r = Remote::start();
    let policy = r#"
[tokens.ONE]
issuer = "random"
[[tokens.ONE.targets]]
kind = "github"
repo = "acme/ghost"

[tokens.TWO]
issuer = "random"
[[tokens.TWO.targets]]
kind = "github"
repo = "acme/ghost"
"#;
    // Minted with no target first: the sync below is the first delivery.
    let p = Project::initialised("[tokens.ONE]\nissuer = \"random\"\n[tokens.TWO]\nissuer = \"random\"\n");
    p.ok(&["rotate"]);
    std::fs::write(p.path("policies/main.toml"), policy).unwrap();
    r.reset();
    let out = r.run(&p, &["sync"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("404"), "GitHub's answer is shown: {}", text(&out));
    let counts = r.gh.control.counts();
    assert_eq!(counts.get("GET /repos/{owner}/{repo}/{app}/secrets/public-key"), Some(&1), "{counts:?}");
    assert_eq!(r.writes(), 0, "{counts:?}");

    // Values that cannot be decrypted go nowhere, and nothing is asked.
    r.gh.add_repo("acme/ghost");
    for file in [p.value_files("ONE"), p.value_files("TWO")].concat() {
        std::fs::remove_file(file).unwrap();
    }
    r.reset();
    let out = r.run(&p, &["sync"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert_eq!(r.requests(), 0, "{:?}", r.gh.control.counts());
}

/// A fan-out the budget cuts short reads only what it writes: the keys of
/// the repositories it writes to (and no more read ahead than the budget
/// takes), and no listing (GitHub's answers say when the writes landed);
/// the keys are kept for the run that continues it.
#[test]
fn a_fan_out_cut_short_reads_only_what_it_writes() {
    const REPOS: usize = 100;
    let gh = FakeGithub::start();
    let cf = FakeCloudflare::start();
    let mut policy = String::from("[tokens.T]\nissuer = \"random\"\n");
    for r in 0..REPOS {
        gh.add_repo(&format!("acme/svc{r:03}"));
        policy.push_str(&format!("[[tokens.T.targets]]\nkind = \"github\"\nrepo = \"acme/svc{r:03}\"\n"));
    }
    let p = Project::initialised("[tokens.T]\nissuer = \"random\"\n");
    p.ok(&["rotate"]);
    std::fs::write(p.path("policies/main.toml"), &policy).unwrap();
    let run = |gh: &FakeGithub| {
        gh.control.reset_counts();
        let mut cmd = p.command(&["sync", "--max-duration", "1s"]);
        with_fakes(&mut cmd, gh, &cf).env("CHITTY_SECRETS_GITHUB_BUDGET", "10/3s");
        let out = cmd.output().unwrap();
        assert_eq!(code(&out), 4, "{}", text(&out));
        let counts = gh.control.counts();
        let get = |route: &str| counts.get(route).copied().unwrap_or(0);
        (
            get("PUT /repos/{owner}/{repo}/{app}/secrets/{name}"),
            get("GET /repos/{owner}/{repo}/{app}/secrets/public-key"),
            get("GET /repos/{owner}/{repo}/{app}/secrets"),
        )
    };
    let (writes, keys, lists) = run(&gh);
    assert_eq!(writes, 10, "the budget's first window");
    assert!(keys <= 10 + 10, "keys read: {keys} for {writes} writes (at most the budget's room read ahead)");
    assert_eq!(lists, 0, "GitHub's answer to each write says when it landed: nothing to list");

    std::thread::sleep(std::time::Duration::from_millis(3100));
    let (writes2, keys2, lists2) = run(&gh);
    assert_eq!((writes2, lists2), (10, 0));
    // No key is read twice across the runs (what was read ahead and not
    // written was kept for the continuing run), and at most the budget's
    // room is read ahead beyond what is written.
    assert!(keys + keys2 <= writes + writes2 + 10, "keys read: {keys} then {keys2}");
}

/// A key kept from an earlier run that GitHub has since replaced: the
/// write is refused (422), the key read again once, and the value lands.
#[test]
fn a_kept_key_github_replaced_is_read_again() {
    let f = crate::remote::Fakes::start();
    f.gh.add_repo("acme/app");
    let p = Project::initialised(
        "[tokens.T]\nissuer = \"random\"\n[[tokens.T.targets]]\nkind = \"github\"\nrepo = \"acme/app\"\n",
    );
    f.ok(&p, &["rotate"]);
    f.gh.rotate_key("repo:acme/app");
    f.gh.control.reset_counts();
    f.ok(&p, &["rotate"]);
    let counts = f.gh.control.counts();
    assert_eq!(counts["GET /repos/{owner}/{repo}/{app}/secrets/public-key"], 1, "{counts:?}");
    assert_eq!(counts["PUT /repos/{owner}/{repo}/{app}/secrets/{name}"], 2, "refused once, then written: {counts:?}");
    let value = p.ok(&["get", "T"]).trim_end().to_string();
    assert_eq!(f.gh.value("repo:acme/app", "T").as_deref(), Some(value.as_str()));
}

/// A token recorded as its writes land tells of them in the policy's
/// order, whatever order GitHub's answers came in: its event and its
/// audit line read the same on every run.
#[test]
fn names_recorded_as_they_land_keep_the_policys_order() {
    let f = Fakes::start();
    f.gh.add_repo("acme/app");
    let names = ["ZETA", "ALPHA", "MU", "BETA", "OMEGA", "KAPPA"];
    let p = Project::initialised("[tokens.T]\nissuer = \"random\"\n");
    p.ok(&["rotate"]);
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let policy = format!(
        "[tokens.T]\nissuer = \"random\"\n[[tokens.T.targets]]\nkind = \"github\"\nrepo = \"acme/app\"\nnames = [{}]\n",
        quoted.join(", ")
    );
    std::fs::write(p.path("policies/main.toml"), policy).unwrap();
    // Answers overtake one another.
    f.gh.control.set_faults(Faults { jitter: std::time::Duration::from_millis(30), ..Faults::default() });
    let out = f.run(&p, &["sync", "--json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let shown = out.to_string();
    assert!(shown.contains(&format!("\"names\":[{}]", quoted.join(","))), "{shown}");
    let audit = p.read(".chitty-secrets/audit.log");
    let line = audit.lines().find(|l| l.contains("\"deliver\"")).unwrap();
    assert!(line.contains(&format!("github:acme/app ({})", names.join(", "))), "{line}");
}
