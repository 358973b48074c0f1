//! ChittyID / ChittyAuth issuers and crash-safe staged rotation, against
//! the fake ID service and the fake GitHub and Cloudflare.

use std::process::{Command, Output};

use crate::common::*;
use crate::fakes::Faults;
use crate::fakes::chitty::{self, FakeChitty};
use crate::fakes::cloudflare::FakeCloudflare;
use crate::fakes::github::FakeGithub;
use crate::remote::with_fakes;

pub struct Services {
    pub id: FakeChitty,
    pub gh: FakeGithub,
    pub cf: FakeCloudflare,
}

impl Services {
    pub fn start() -> Self {
        let gh = FakeGithub::start();
        gh.add_repo("acme/app");
        let cf = FakeCloudflare::start();
        cf.add_script("platform");
        Services { id: FakeChitty::start(), gh, cf }
    }

    pub fn policy(&self, overlap: &str) -> String {
        format!(
            r#"
[issuers.chittyid]
kind = "chittyid"
url = "{url}"
admin_password_from = "env:CHITTY_ADMIN_PASSWORD"
revoke_path = "/admin/tokens/{{token_id}}/revoke"

[tokens.CHITTY_ID_TOKEN]
issuer = "chittyid"
scopes = ["mint", "validate", "read"]
ttl = "365d"
rotate_every = "90d"
overlap = "{overlap}"

[[tokens.CHITTY_ID_TOKEN.targets]]
kind = "dotenv"
path = "app/.env"
names = ["CHITTY_ID_TOKEN", "CHITTY_API_KEY"]

[[tokens.CHITTY_ID_TOKEN.targets]]
kind = "github"
repo = "acme/app"

[[tokens.CHITTY_ID_TOKEN.targets]]
kind = "wrangler"
worker = "platform"
"#,
            url = self.id.url()
        )
    }

    pub fn command(&self, p: &Project, args: &[&str]) -> Command {
        let mut cmd = p.command(args);
        with_fakes(&mut cmd, &self.gh, &self.cf).env("CHITTY_ADMIN_PASSWORD", chitty::ADMIN_PASSWORD);
        cmd
    }

    pub fn run(&self, p: &Project, args: &[&str]) -> Output {
        self.command(p, args).output().unwrap()
    }

    pub fn ok(&self, p: &Project, args: &[&str]) -> String {
        let out = self.run(p, args);
        assert_eq!(code(&out), 0, "{args:?}:\n{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }

    /// What each target holds for the token.
    pub fn held(&self, p: &Project) -> Vec<(&'static str, Option<String>)> {
        vec![
            (
                "app/.env CHITTY_ID_TOKEN",
                p.path("app/.env").exists().then(|| env_value(&p.path("app/.env"), "CHITTY_ID_TOKEN")).flatten(),
            ),
            (
                "app/.env CHITTY_API_KEY",
                p.path("app/.env").exists().then(|| env_value(&p.path("app/.env"), "CHITTY_API_KEY")).flatten(),
            ),
            ("github", self.gh.value("repo:acme/app", "CHITTY_ID_TOKEN")),
            ("cloudflare", self.cf.value("platform", "CHITTY_ID_TOKEN")),
        ]
    }
}

/// The registry's metadata for a token, as written (no values in it).
fn meta(p: &Project, name: &str) -> toml::Table {
    toml::from_str(&p.read(&format!(".chitty-secrets/tokens/{name}.toml"))).unwrap()
}

#[test]
fn a_rotation_costs_one_mint_one_verify_and_at_most_one_revoke() {
    let s = Services::start();
    let p = Project::initialised(&s.policy("0s"));
    s.ok(&p, &["rotate"]);
    let v1 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    assert!(v1.starts_with("mcp_auth_") && v1.len() == 41, "{v1}");
    assert!(s.id.is_valid(&v1));
    assert_eq!((s.id.count("POST /admin/tokens/generate"), s.id.count("GET /health")), (1, 1));
    let id = meta(&p, "CHITTY_ID_TOKEN")["versions"][0]["token_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("CHITTY-APIKEY-"), "{id}");

    s.id.control.reset_counts();
    s.ok(&p, &["rotate"]);
    let v2 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    assert_eq!(s.id.control.total(), 3, "mint + verify + revoke: {:?}", s.id.control.counts());
    assert!(!s.id.is_valid(&v1), "the old token is revoked once no target holds it");
    assert!(s.id.is_valid(&v2));
    for (place, held) in s.held(&p) {
        assert_eq!(held.as_deref(), Some(v2.as_str()), "{place}");
    }
    // Checks, status, plan and a no-op sync cost the ID service nothing.
    s.id.control.reset_counts();
    for args in [&["check"][..], &["status"], &["plan"], &["sync"], &["rotate", "--due"], &["sync", "--check"]] {
        s.run(&p, args);
    }
    assert_eq!(s.id.control.total(), 0, "{:?}", s.id.control.counts());
}

#[test]
fn chittyauth_live_provisions_validates_once_revokes_and_never_refreshes() {
    let s = Services::start();
    let p = chittyauth_project(&s, "scopes = [\"chittyid:read\", \"chittyid:validate\"]\nttl = \"30d\"\n");
    s.ok(&p, &["rotate", "CHAT_TOKEN"]);
    s.ok(&p, &["rotate", "CHAT_TOKEN"]);
    let value = p.ok(&["get", "CHAT_TOKEN"]).trim_end().to_string();
    assert!(value.starts_with("ca_live_"), "{value}");
    assert_eq!(env_value(&p.path("chat/.env"), "CHAT_TOKEN").as_deref(), Some(value.as_str()));
    let counts = s.id.control.counts();
    assert_eq!(counts.get("POST /v1/tokens/provision"), Some(&2), "{counts:?}");
    assert_eq!(counts.get("POST /v1/tokens/validate"), Some(&2), "one validate per rotation: {counts:?}");
    assert_eq!(counts.get("POST /v1/tokens/refresh"), None, "refresh revokes at once; staged rotation must not use it");
    let tokens = s.id.tokens();
    assert_eq!(tokens.len(), 2);
    assert!(tokens[0].id.starts_with("tok_") && tokens[0].revoked && !tokens[1].revoked);
    assert_eq!(tokens[1].scopes, serde_json::json!(["chittyid:read", "chittyid:validate"]));
    assert_eq!(s.id.find(&value).unwrap().validations, 1);
}

#[test]
fn a_fallback_answer_or_one_without_a_token_is_a_failure_not_a_token() {
    let s = Services::start();
    let p = Project::initialised(&s.policy("0s"));
    s.id.state.fallback.store(true, std::sync::atomic::Ordering::SeqCst);
    let out = s.run(&p, &["rotate"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(text(&out).contains("\"fallback\": true"), "{}", text(&out));
    assert_eq!(code(&p.run(&["get", "CHITTY_ID_TOKEN"])), 1, "a fallback was stored as a token");
    assert!(meta(&p, "CHITTY_ID_TOKEN").get("rotation").is_none(), "a refused mint leaves no journal");

    let script = p.path("issue.sh");
    std::fs::write(&script, "#!/bin/sh\necho '{\"token_id\": \"x\"}'\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let policy = format!(
        "[issuers.cmd]\nkind = \"command\"\ncommand = [\"{}\"]\n[tokens.T]\nissuer = \"cmd\"\n",
        script.display()
    );
    std::fs::write(p.path("policies/main.toml"), policy).unwrap();
    let out = p.run(&["rotate"]);
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("the command printed no token"), "{}", text(&out));
}

#[test]
fn the_command_issuer_runs_a_program_that_prints_json() {
    let p = Project::new("");
    let script = p.path("issue.sh");
    std::fs::write(&script, "#!/bin/sh\nprintf '{\"token\": \"svc_%s_%s\", \"token_id\": \"id-1\"}' \"$CHITTY_TOKEN_NAME\" \"$CHITTY_TOKEN_TTL_SECONDS\"\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let policy = format!(
        "[issuers.cmd]\nkind = \"command\"\ncommand = [\"{}\"]\n[tokens.SVC_TOKEN]\nissuer = \"cmd\"\nttl = \"1d\"\n",
        script.display()
    );
    std::fs::write(p.path("policies/main.toml"), policy).unwrap();
    p.ok(&["init"]);
    p.ok(&["rotate"]);
    assert_eq!(p.ok(&["get", "SVC_TOKEN"]), "svc_SVC_TOKEN_86400\n");
    assert_eq!(meta(&p, "SVC_TOKEN")["versions"][0]["token_id"].as_str(), Some("id-1"));
}

#[test]
fn the_quota_stops_a_rotation_pending_and_a_later_rotate_resumes_without_minting_again() {
    let s = Services::start();
    let p = Project::initialised(&s.policy("0s"));
    s.ok(&p, &["rotate"]);
    // Enough quota for the mint (2 operations), none left for the verify.
    let used = s.id.state.kv_ops.load(std::sync::atomic::Ordering::SeqCst);
    s.id.state.quota.store(used + 2, std::sync::atomic::Ordering::SeqCst);
    s.id.control.reset_counts();
    let out = s.run(&p, &["rotate"]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(text(&out).contains("quota") && text(&out).contains("run the same command again later"), "{}", text(&out));
    assert_eq!(s.id.count("GET /health"), 1, "the quota answer is not retried in a loop");
    let status: serde_json::Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["tokens"][0]["pending"], 2, "{status}");

    s.id.state.quota.store(10_000, std::sync::atomic::Ordering::SeqCst);
    s.ok(&p, &["rotate", "--due"]);
    assert_eq!(s.id.count("POST /admin/tokens/generate"), 1, "the resumed rotation minted again");
    let v2 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    for (place, held) in s.held(&p) {
        assert_eq!(held.as_deref(), Some(v2.as_str()), "{place}");
    }

    // A quota answer to the mint itself: nothing is minted, the rotation stays open.
    let used = s.id.state.kv_ops.load(std::sync::atomic::Ordering::SeqCst);
    s.id.state.quota.store(used, std::sync::atomic::Ordering::SeqCst);
    let out = s.run(&p, &["rotate"]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(meta(&p, "CHITTY_ID_TOKEN")["rotation"]["step"].as_str() == Some("minting"));
    s.id.state.quota.store(10_000, std::sync::atomic::Ordering::SeqCst);
    s.ok(&p, &["rotate", "--due"]);
    assert!(meta(&p, "CHITTY_ID_TOKEN").get("orphans").is_none(), "a refused mint is not an orphan");
}

#[test]
fn abort_puts_the_current_token_back_and_revokes_the_pending_one() {
    let s = Services::start();
    let p = Project::initialised(&s.policy("1h"));
    s.ok(&p, &["rotate"]);
    let v1 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    s.gh.control.set_faults(Faults { fail_percent: 100, ..Faults::default() });
    let out = s.run(&p, &["rotate"]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    let v2 = p.ok(&["get", "CHITTY_ID_TOKEN", "--which", "pending"]).trim_end().to_string();
    assert_eq!(env_value(&p.path("app/.env"), "CHITTY_ID_TOKEN").as_deref(), Some(v2.as_str()));
    assert_eq!(s.gh.value("repo:acme/app", "CHITTY_ID_TOKEN").as_deref(), Some(v1.as_str()));
    s.gh.control.set_faults(Faults::default());

    let out = s.ok(&p, &["rotate", "--abort"]);
    assert!(out.contains("aborted: v2 revoked"), "{out}");
    for (place, held) in s.held(&p) {
        assert_eq!(held.as_deref(), Some(v1.as_str()), "{place}");
    }
    assert!(!s.id.is_valid(&v2) && s.id.is_valid(&v1));
    assert_eq!(p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end(), v1);
    let status: serde_json::Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
    assert_eq!(status["tokens"][0]["pending"], serde_json::Value::Null);
    assert!(p.ok(&["audit", "verify"]).contains("chain intact"));
}

#[test]
fn emergency_revokes_the_old_token_right_after_delivery() {
    let s = Services::start();
    let p = Project::initialised(&s.policy("24h"));
    s.ok(&p, &["rotate"]);
    let v1 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    s.ok(&p, &["rotate"]);
    assert!(s.id.is_valid(&v1), "a normal rotation keeps the overlap");
    let v2 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();

    let out = s.ok(&p, &["rotate", "--emergency", "CHITTY_ID_TOKEN"]);
    assert!(out.contains("revoked v2"), "{out}");
    let v3 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
    assert!(!s.id.is_valid(&v2), "the leaked token is revoked at once");
    assert!(s.id.is_valid(&v3));
    for (place, held) in s.held(&p) {
        assert_eq!(held.as_deref(), Some(v3.as_str()), "{place}");
    }
    assert!(s.id.is_valid(&v1), "v1 keeps its overlap (it was not the leaked one)");
}

/// Kill the process (SIGKILL) at every step of a rotation across a .env, a
/// GitHub and a Cloudflare target; rerun; every target ends with the new
/// token, the registry agrees, no minted token is lost unrecorded, and the
/// old token was never revoked while a target held it.
#[test]
fn killed_at_any_step_the_rotation_is_finished_by_the_next_run() {
    let points = [
        "before-issue",
        "after-mint",
        "after-save-value",
        "after-put",
        "after-deliver",
        "before-promote",
        "before-revoke",
        "after-revoke",
    ];
    for point in points {
        let s = Services::start();
        let p = Project::initialised(&s.policy("0s"));
        s.ok(&p, &["rotate"]);
        let v1 = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();

        let out = s.command(&p, &["rotate"]).env("CHITTY_SECRETS_CRASH_AT", point).output().unwrap();
        assert_eq!(out.status.code(), None, "{point}: expected SIGKILL: {}", text(&out));
        for (place, held) in s.held(&p) {
            let held = held.unwrap_or_else(|| panic!("{point}: {place} holds nothing"));
            assert!(s.id.is_valid(&held), "{point}: {place} holds a revoked token");
        }

        let out = s.run(&p, &["rotate", "--due"]);
        assert_eq!(code(&out), 0, "{point}: {}", text(&out));
        let current = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
        assert_ne!(current, v1, "{point}: not rotated");
        assert!(s.id.is_valid(&current), "{point}");
        assert!(!s.id.is_valid(&v1), "{point}: the old token was not revoked in the end");
        for (place, held) in s.held(&p) {
            assert_eq!(held.as_deref(), Some(current.as_str()), "{point}: {place}");
        }
        // Every token the service issued is in the registry or recorded as a suspected orphan.
        let m = meta(&p, "CHITTY_ID_TOKEN");
        let ids: Vec<&str> = m["versions"].as_array().unwrap().iter().filter_map(|v| v["token_id"].as_str()).collect();
        let tags: Vec<&str> = m
            .get("orphans")
            .and_then(|o| o.as_array())
            .map(|o| o.iter().filter_map(|x| x["tag"].as_str()).collect())
            .unwrap_or_default();
        for t in s.id.tokens() {
            let recorded = ids.contains(&t.id.as_str()) || tags.iter().any(|tag| t.description.contains(tag));
            assert!(recorded, "{point}: {} was issued and lost", t.id);
        }
        if point == "after-mint" {
            assert_eq!(tags.len(), 1, "{point}: the lost mint is recorded");
            let check = s.run(&p, &["check", "--json"]);
            assert!(String::from_utf8_lossy(&check.stdout).contains("orphan-suspected"), "{}", text(&check));
        }
        assert!(meta(&p, "CHITTY_ID_TOKEN").get("rotation").is_none(), "{point}: journal left open");
    }
}

#[test]
fn injected_http_failures_leave_the_rotation_pending_and_the_old_token_valid() {
    let s = Services::start();
    let p = Project::initialised(&s.policy("0s"));
    s.ok(&p, &["rotate"]);
    // GitHub down, then Cloudflare down (each a fresh rotation), then both.
    for faults in [[100, 0], [0, 100], [100, 100]] {
        let before = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
        s.gh.control.set_faults(Faults { fail_percent: faults[0], ..Faults::default() });
        s.cf.control.set_faults(Faults { fail_percent: faults[1], ..Faults::default() });
        for _ in 0..2 {
            // The first run mints and stops pending; the second resumes it.
            let out = s.run(&p, &["rotate"]);
            assert_eq!(code(&out), 4, "{faults:?}: {}", text(&out));
            assert!(s.id.is_valid(&before), "{faults:?}: the old token was revoked while a target held it");
            assert!(text(&out).contains("is saved as pending"), "{}", text(&out));
        }
        s.gh.control.set_faults(Faults::default());
        s.cf.control.set_faults(Faults::default());
        s.ok(&p, &["rotate", "--due"]);
        let current = p.ok(&["get", "CHITTY_ID_TOKEN"]).trim_end().to_string();
        assert_ne!(current, before);
        for (place, held) in s.held(&p) {
            assert_eq!(held.as_deref(), Some(current.as_str()), "{faults:?}: {place}");
        }
        assert!(!s.id.is_valid(&before), "{faults:?}");
    }
    assert_eq!(s.id.count("POST /admin/tokens/generate"), 4, "a pending rotation never mints again");
}

#[test]
fn chittyauth_runbook_preset_generates_with_an_existing_token() {
    let s = Services::start();
    let policy = format!(
        "[issuers.auth]\nkind = \"chittyauth\"\npreset = \"runbook\"\nurl = \"{}\"\nbearer_from = \"env:CHITTY_EXISTING_TOKEN\"\n[tokens.CHITTY_CHAT_TOKEN]\nissuer = \"auth\"\n[[tokens.CHITTY_CHAT_TOKEN.targets]]\nkind = \"dotenv\"\npath = \"chat/.env\"\n",
        s.id.url()
    );
    let p = Project::initialised(&policy);
    let out = p.command(&["rotate"]).env("CHITTY_EXISTING_TOKEN", chitty::SERVICE_TOKEN).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let value = p.ok(&["get", "CHITTY_CHAT_TOKEN"]).trim_end().to_string();
    assert!(s.id.is_valid(&value));
    assert_eq!(s.id.count("POST /api/tokens/generate"), 1);
    assert_eq!(s.id.count("GET /health"), 1, "verified with GET /health, never a mint");
    // Without the credential: a clear error naming the variable, nothing minted.
    let out = p.run(&["rotate"]);
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("the environment variable CHITTY_EXISTING_TOKEN is not set"), "{}", text(&out));
    assert_eq!(s.id.count("POST /api/tokens/generate"), 1);
}

/// No token value shows up in any output of the remote paths, failures
/// included (only `get` hands values out).
#[test]
fn token_values_never_appear_in_output_of_remote_commands() {
    let s = Services::start();
    let p = Project::initialised(&s.policy("0s"));
    let mut outputs = vec![s.run(&p, &["rotate"])];
    s.gh.control.set_faults(Faults { fail_percent: 100, ..Faults::default() });
    s.cf.upload_version("platform");
    for args in [
        &["rotate"][..],
        &["sync", "--verify"],
        &["plan"],
        &["check", "--online"],
        &["status", "--json"],
        &["rotate", "--abort"],
    ] {
        outputs.push(s.run(&p, args));
    }
    s.gh.control.set_faults(Faults::default());
    s.cf.deploy("platform", &[(&s.cf.latest_id("platform"), 100)]);
    outputs.push(s.run(&p, &["rotate", "--emergency", "CHITTY_ID_TOKEN"]));
    let values: Vec<String> = s.id.tokens().into_iter().map(|t| t.token).collect();
    assert!(values.len() >= 2, "{values:?}");
    for out in &outputs {
        for v in &values {
            assert!(!text(out).contains(v.as_str()), "a token value leaked: {}", text(out));
        }
    }
}

/// The scopes the ChittyAuth tests ask for.
const ASKED: &str = "scopes = [\"chittyid:mint\", \"github:write\"]\n";

/// A ChittyAuth issuer (live) and one token it issues into a .env file;
/// `token_options` are the token's table (scopes, ttl, …).
fn chittyauth_project(s: &Services, token_options: &str) -> Project {
    let policy = format!(
        r#"
[issuers.auth]
kind = "chittyauth"
preset = "live"
url = "{}"
chitty_id = "03-1-USA-1234-P-2601-3-NN"
bearer_from = "registry:CHITTY_AUTH_SERVICE_TOKEN"

[tokens.CHITTY_AUTH_SERVICE_TOKEN]
issuer = "manual"

[tokens.CHAT_TOKEN]
issuer = "auth"
{token_options}

[[tokens.CHAT_TOKEN.targets]]
kind = "dotenv"
path = "chat/.env"
"#,
        s.id.url()
    );
    let p = Project::initialised(&policy);
    let out = p.run_with_stdin(&["set", "CHITTY_AUTH_SERVICE_TOKEN"], chitty::SERVICE_TOKEN);
    assert_eq!(code(&out), 0, "{}", text(&out));
    p
}

#[test]
fn a_token_granted_fewer_scopes_than_asked_for_is_revoked_not_stored() {
    let s = Services::start();
    let p = chittyauth_project(&s, ASKED);
    *s.id.state.grantable.lock().unwrap() = Some(vec!["chittyid:mint".into()]);
    let out = s.run(&p, &["rotate", "CHAT_TOKEN"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("lacks scope github:write that the policy asks for (the issuer granted chittyid:mint)")
            && text(&out).contains("it was revoked and not stored"),
        "{}",
        text(&out)
    );
    let tokens = s.id.tokens();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].revoked, "the narrowed token is still live");
    assert!(!p.path("chat/.env").exists() || env_value(&p.path("chat/.env"), "CHAT_TOKEN").is_none());
    // Granted in full, the same rotation goes through.
    *s.id.state.grantable.lock().unwrap() = None;
    s.ok(&p, &["rotate", "CHAT_TOKEN"]);
}

#[test]
fn chittyauth_lifetimes_fit_what_the_service_can_do() {
    let s = Services::start();
    // Workers KV takes no expiry under a minute and validate rewrites the
    // record: a 1-minute token could never be verified.
    let p = Project::new(&format!(
        "[issuers.auth]\nkind = \"chittyauth\"\npreset = \"live\"\nurl = \"{}\"\nchitty_id = \"x\"\nbearer_from = \"env:T\"\n\n[tokens.CHAT_TOKEN]\nissuer = \"auth\"\nttl = \"1m\"\n",
        s.id.url()
    ));
    let out = p.run(&["policy", "check"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("ttl (1m) is shorter than issuer `auth` can serve (at least 10m)")
            && text(&out).contains("main.toml:"),
        "{}",
        text(&out)
    );

    // The default lifetime (30 days) is not "expiring" the moment it is minted.
    let p = chittyauth_project(&s, ASKED);
    s.ok(&p, &["rotate", "CHAT_TOKEN"]);
    let out = s.run(&p, &["check", "--online"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(!text(&out).contains("expiring"), "{}", text(&out));
    // Inside its renewal window it is.
    let out = s.run(&p, &["--now", &(chrono::Utc::now() + chrono::TimeDelta::days(28)).to_rfc3339(), "check"]);
    assert!(text(&out).contains("CHAT_TOKEN v1 expires in"), "{}", text(&out));
}

#[test]
fn validate_is_called_once_a_rotation_and_its_rate_limit_is_a_quota_answer() {
    let s = Services::start();
    let p = chittyauth_project(&s, ASKED);
    // A 500 from validate is not sent again (each call spends the token's
    // own limit); the rotation stays pending and the next run finishes it.
    s.id.state.validate_failures.store(1, std::sync::atomic::Ordering::SeqCst);
    let out = s.run(&p, &["rotate", "CHAT_TOKEN"]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(text(&out).contains("the token was not judged"), "{}", text(&out));
    assert_eq!(s.id.count("POST /v1/tokens/validate"), 1, "validate was retried");
    s.ok(&p, &["rotate", "CHAT_TOKEN"]);
    assert_eq!(s.id.count("POST /v1/tokens/validate"), 2);
    assert_eq!(s.id.count("POST /v1/tokens/provision"), 1, "a pending rotation minted again");

    // Its rate limit is a 500 "Rate limit exceeded": a quota answer.
    let value = p.ok(&["get", "CHAT_TOKEN"]).trim_end().to_string();
    {
        let mut tokens = s.id.state.tokens.lock().unwrap();
        tokens.iter_mut().for_each(|t| t.validations = chitty::VALIDATIONS_PER_HOUR);
    }
    s.id.control.reset_counts();
    let out = s.run(&p, &["check", "--online"]);
    assert!(text(&out).contains("quota or rate limit reached"), "{}", text(&out));
    assert_eq!(s.id.count("POST /v1/tokens/validate"), 1, "validate was retried");
    assert!(!text(&out).contains(&value));
}

#[test]
fn a_chittyid_the_service_cannot_verify_is_not_blamed_on_the_credential() {
    let s = Services::start();
    let p = chittyauth_project(&s, ASKED);
    s.id.state.chitty_id_unverifiable.store(true, std::sync::atomic::Ordering::SeqCst);
    let out = s.run(&p, &["rotate", "CHAT_TOKEN"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("403") && text(&out).contains("ChittyID verification failed"), "{}", text(&out));
    assert!(text(&out).contains("check `chitty_id` in the policy"), "{}", text(&out));
    assert!(!text(&out).contains("check the issuer's credential"), "{}", text(&out));
}

#[test]
fn a_pending_version_that_expired_is_undone_not_left_pending_for_ever() {
    let s = Services::start();
    let p = chittyauth_project(&s, &format!("{ASKED}ttl = \"10m\"\n"));
    s.id.state.validate_failures.store(1, std::sync::atomic::Ordering::SeqCst);
    let out = s.run(&p, &["rotate", "CHAT_TOKEN"]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    // Later than its expiry: it can never be verified, so it is undone…
    let later = (chrono::Utc::now() + chrono::TimeDelta::minutes(30)).to_rfc3339();
    let plan = s.ok(&p, &["--now", &later, "plan"]);
    assert!(plan.contains("abort"), "{plan}");
}

#[test]
fn a_missing_issuer_credential_says_what_to_do() {
    let s = Services::start();
    let p = Project::initialised(&s.policy("0s"));
    let out = with_fakes(&mut p.command(&["rotate"]), &s.gh, &s.cf).output().unwrap();
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out)
            .contains("issuer `chittyid`: no credential: the environment variable CHITTY_ADMIN_PASSWORD is not set"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("hint: export CHITTY_ADMIN_PASSWORD; in CI"), "{}", text(&out));
    assert_eq!(s.id.control.total(), 0, "a request was sent without the credential");
}
