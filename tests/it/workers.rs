//! Cloudflare Workers as versions and deployments: a write deploys, and is
//! refused while the latest version is not what runs; `deploy = "version"`
//! makes a version and leaves the rollout to the team; the old token is not
//! revoked while a deployed version may still run it.

use crate::common::*;
use crate::remote::Fakes;

type Workers = Fakes;

fn start() -> Workers {
    let w = Fakes::start();
    w.cf.add_script("api");
    w
}

fn policy(target_options: &str) -> String {
    format!(
        "[tokens.API_TOKEN]\nissuer = \"random\"\noverlap = \"0s\"\n\n[[tokens.API_TOKEN.targets]]\nkind = \"wrangler\"\nworker = \"api\"\n{target_options}"
    )
}

#[test]
fn a_worker_mid_gradual_deployment_is_reported_before_any_write() {
    let w = start();
    let p = Project::initialised(&policy(""));
    // Before the first rotation a write is planned, and plan says what it does.
    let out = w.ok(&p, &["plan"]);
    assert!(out.contains("wrangler:api: a write makes a new version of the Worker and deploys it at 100%"), "{out}");
    w.ok(&p, &["rotate"]);
    // Nothing to write now: no note on what a write would do.
    let out = w.ok(&p, &["plan"]);
    assert!(!out.contains("a write makes a new version"), "{out}");
    let first = p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
    assert_eq!(w.cf.value("api", "API_TOKEN").as_ref(), Some(&first));

    // The team uploads new code and starts a gradual deployment.
    let deployed = w.cf.deployed("api")[0].0.clone();
    let canary = w.cf.upload_version("api");
    w.cf.deploy("api", &[(&canary, 10), (&deployed, 90)]);
    w.cf.control.reset_counts();
    let out = w.run(&p, &["plan"]);
    assert!(
        text(&out).contains("warning: wrangler:api: a gradual deployment is in progress")
            && text(&out).contains("at 10%")
            && text(&out).contains("at 90%"),
        "{}",
        text(&out)
    );
    // What runs is read once: the listing and the write preview share it.
    let counts = w.cf.control.counts();
    assert_eq!(counts["GET /client/v4/accounts/{account}/workers/scripts/{script}/deployments"], 1, "{counts:?}");
    let out = w.run(&p, &["rotate"]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(
        text(&out).contains("Cloudflare would refuse a secret write (10215), so nothing was written"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("deploy = \"version\""), "{}", text(&out));
    assert_eq!(w.cf.control.writes(), 0, "a refused write was sent: {:?}", w.cf.control.counts());
    assert_eq!(w.cf.deployed("api"), vec![(canary.clone(), 10), (deployed, 90)], "the rollout was touched");

    // Once the rollout finishes, the pending rotation resumes and deploys.
    w.cf.deploy("api", &[(&canary, 100)]);
    w.ok(&p, &["rotate"]);
    let second = p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
    assert_ne!(first, second);
    assert_eq!(w.cf.value("api", "API_TOKEN").as_ref(), Some(&second));
    assert_eq!(w.cf.deployed("api"), vec![(w.cf.latest_id("api"), 100)]);
}

#[test]
fn deploy_version_makes_a_version_and_the_old_token_lives_until_it_runs() {
    let w = start();
    let p = Project::initialised(
        &policy("deploy = \"version\"\n").replace("overlap = \"0s\"", "overlap = \"0s\"\nrotate_every = \"30d\""),
    );
    let v1_id = w.cf.latest_id("api");

    // v1 of the token goes into Worker version #2, which is not deployed.
    w.ok(&p, &["rotate"]);
    // Looking ahead to when the next rotation is due (a write is planned),
    // plan says what the write will do.
    let out = w.ok(&p, &["--now", "2030-01-01T00:00:00Z", "plan"]);
    assert!(out.contains("a write makes a new version from the one chitty-secrets made last"), "{out}");
    assert!(out.contains("not deployed yet), not deployed: you roll it out"), "{out}");
    let first = p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
    let made = w.cf.latest_id("api");
    assert_ne!(made, v1_id);
    assert_eq!(w.cf.value_in("api", &made, "API_TOKEN").as_ref(), Some(&first));
    assert_eq!(w.cf.deployed("api"), vec![(v1_id.clone(), 100)], "the version was deployed");
    let script = w.cf.script("api");
    let (base, new) = (&script.versions[0], script.versions.last().unwrap());
    assert_eq!(new.modules, base.modules, "the code was not carried over");
    assert_eq!(new.bindings, base.bindings, "the other bindings were not inherited");
    assert!(new.message.as_deref().is_some_and(|m| m.contains("API_TOKEN")), "{:?}", new.message);

    // The gate and check know the current value is not running yet.
    let out = w.ok(&p, &["sync", "--check", "--verify"]);
    assert!(out.contains("holds v1 in Worker version #2") && out.contains("not deployed yet"), "{out}");
    let out = w.run(&p, &["check", "--online"]);
    assert!(text(&out).contains("not-deployed"), "{}", text(&out));
    assert!(!text(&out).contains(&first), "a value leaked");

    // The team rolls #2 out; a rotation makes #3 from it (deployed #2).
    w.cf.deploy("api", &[(&made, 100)]);
    let out = w.ok(&p, &["sync", "--check", "--verify"]);
    assert!(!out.contains("not deployed yet"), "{out}");
    let out = w.run(&p, &["rotate"]);
    let second = p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
    let third_version = w.cf.latest_id("api");
    assert_eq!(w.cf.value_in("api", &third_version, "API_TOKEN").as_ref(), Some(&second));
    // v1 is still what runs (#2): not revoked, and the run says why.
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(
        text(&out).contains("v1 is not revoked yet: wrangler:api runs version #2")
            && text(&out).contains("wrangler versions deploy"),
        "{}",
        text(&out)
    );
    let status = p.ok(&["status", "--json"]);
    assert!(status.contains("\"previous\""), "{status}");
    // Again on the next scheduled run, with no new mint.
    let out = w.run(&p, &["rotate", "--due"]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(!text(&out).contains("minted"), "{}", text(&out));

    // Rolled out: the next run retires v1.
    w.cf.deploy("api", &[(&third_version, 100)]);
    let out = w.ok(&p, &["rotate", "--due"]);
    assert!(out.contains("retired v1"), "{out}");

    // A leaked token is revoked at once, and the run says what still runs it.
    let out = w.ok(&p, &["rotate", "--emergency", "API_TOKEN"]);
    assert!(out.contains("warning: emergency: v2 is revoked although wrangler:api runs version #3"), "{out}");
    assert!(out.contains("retired v2"), "{out}");
}

#[test]
fn rollout_100_deploys_the_new_version_and_a_rollback_is_repaired() {
    let w = start();
    let p = Project::initialised(&policy("deploy = \"version\"\nrollout = \"100%\"\n"));
    w.ok(&p, &["rotate"]);
    let made = w.cf.latest_id("api");
    assert_eq!(w.cf.deployed("api"), vec![(made.clone(), 100)]);
    let value = p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
    assert_eq!(w.cf.value_in("api", &made, "API_TOKEN").as_ref(), Some(&value));

    // Someone rolls back to the version before: it does not hold the value.
    let before = w.cf.script("api").versions[0].id.clone();
    w.cf.deploy("api", &[(&before, 100)]);
    let out = w.run(&p, &["sync", "--check", "--verify"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("API_TOKEN differs from the registry"), "{}", text(&out));
    // sync puts it into a version made from what runs, deployed at once.
    w.ok(&p, &["sync", "--verify"]);
    let repaired = w.cf.latest_id("api");
    assert_eq!(w.cf.deployed("api"), vec![(repaired.clone(), 100)]);
    assert_eq!(w.cf.value_in("api", &repaired, "API_TOKEN").as_ref(), Some(&value));
    w.ok(&p, &["sync", "--check", "--verify"]);
}

#[test]
fn worker_options_that_cannot_work_are_refused_at_load() {
    for (options, want) in [
        ("rollout = \"100%\"\n", "`rollout` goes with deploy = \"version\""),
        ("deploy = \"version\"\nrollout = \"10%\"\n", "rollout `10%` is not supported"),
        ("deploy = \"version\"\nvia = \"cli\"\n", "works over the API, not via = \"cli\""),
        ("deploy = \"later\"\n", "deploy"),
    ] {
        let p = Project::new(&policy(options));
        let out = p.run(&["policy", "check"]);
        assert_eq!(code(&out), 2, "{options}: {}", text(&out));
        assert!(text(&out).contains(want) && text(&out).contains("policies/main.toml:"), "{options}: {}", text(&out));
    }
}

/// Tokens rotated one after another in one run each make a version; the
/// last holds every new value, so rolling it out rolls out all of them.
#[test]
fn versions_made_one_after_another_add_up() {
    let w = start();
    let mut text = policy("deploy = \"version\"\n");
    text.push_str(
        "\n[tokens.DB_PASSWORD]\nissuer = \"random\"\n[[tokens.DB_PASSWORD.targets]]\nkind = \"wrangler\"\nworker = \"api\"\ndeploy = \"version\"\n",
    );
    let p = Project::initialised(&text);
    w.ok(&p, &["rotate"]);
    let latest = w.cf.latest_id("api");
    for name in ["API_TOKEN", "DB_PASSWORD"] {
        let value = p.ok(&["get", name]).trim_end().to_string();
        assert_eq!(w.cf.value_in("api", &latest, name).as_ref(), Some(&value), "{name} is not in the latest version");
    }
    assert_eq!(w.cf.script("api").versions[0].bindings, w.cf.script("api").versions.last().unwrap().bindings);
}

/// A version's message holds at most 100 characters (Cloudflare's
/// description), however many names go into one version: the message is
/// cut, the version made.
#[test]
fn a_version_for_many_names_carries_a_message_within_cloudflares_limit() {
    let w = start();
    let names: Vec<String> = (0..12).map(|i| format!("\"A_RATHER_LONG_SECRET_NAME_{i:02}\"")).collect();
    let p = Project::initialised(&policy(&format!("deploy = \"version\"\nnames = [{}]\n", names.join(", "))));
    w.ok(&p, &["rotate"]);
    let latest = w.cf.latest_id("api");
    let value = p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
    assert_eq!(w.cf.value_in("api", &latest, "A_RATHER_LONG_SECRET_NAME_11").as_ref(), Some(&value));
}

/// Two tokens in one Worker: each write makes a version of ours, so the
/// records name several versions and none of them is a change by others.
fn two_tokens() -> String {
    format!(
        "{}\n[tokens.DB_PASSWORD]\nissuer = \"random\"\noverlap = \"0s\"\n\n[[tokens.DB_PASSWORD.targets]]\nkind = \"wrangler\"\nworker = \"api\"\n",
        policy("")
    )
}

#[test]
fn a_worker_secret_put_back_by_hand_fails_the_gate_and_sync_delivers_again() {
    let w = start();
    let p = Project::initialised(&two_tokens());
    w.ok(&p, &["rotate"]);
    w.ok(&p, &["rotate", "DB_PASSWORD"]);
    w.ok(&p, &["sync", "--check", "--verify"]);
    let value = p.ok(&["get", "API_TOKEN"]).trim_end().to_string();

    // The incident: the placeholder put back with `wrangler secret put`.
    w.cf.wrangler_secret_put("api", "API_TOKEN", "YOUR_TOKEN_HERE_REPLACE_ME");
    let changed = w.cf.latest_id("api");
    let number = w.cf.script("api").versions.last().unwrap().number;
    let out = w.run(&p, &["sync", "--check", "--verify"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let said = format!("version {}… (#{number}) was deployed on", &changed[..8]);
    assert!(text(&out).contains(&said), "{}", text(&out));
    assert!(text(&out).contains("by a secret change (source: wrangler, author: dev@example.com)"), "{}", text(&out));
    let out = w.run(&p, &["check", "--online"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("remote-changed") && text(&out).contains(&said), "{}", text(&out));
    let out = w.ok(&p, &["plan"]);
    assert!(out.contains(&said) && out.contains("API_TOKEN differs from the registry"), "{out}");

    // sync --verify delivers both names again; the gate is green after.
    w.ok(&p, &["sync", "--verify"]);
    assert_eq!(w.cf.value("api", "API_TOKEN").as_deref(), Some(value.as_str()));
    w.ok(&p, &["sync", "--check", "--verify"]);
    w.ok(&p, &["check", "--online"]);

    // The dashboard is caught the same way, and named.
    w.cf.set_by_hand("api", "DB_PASSWORD", "typed-in-the-dashboard");
    let out = w.run(&p, &["sync", "--check", "--verify"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("by a secret change (source: dash"), "{}", text(&out));
    w.ok(&p, &["sync", "--verify"]);
    w.ok(&p, &["sync", "--check", "--verify"]);
}

#[test]
fn a_code_deploy_is_not_drift_but_a_secret_version_rolled_out_by_hand_is() {
    let w = start();
    let p = Project::initialised(&two_tokens());
    w.ok(&p, &["rotate"]);
    // `wrangler deploy` and `wrangler versions upload` + `versions deploy`
    // carry our secrets over: not drift.
    w.cf.deploy_code("api");
    w.ok(&p, &["sync", "--check", "--verify"]);
    let uploaded = w.cf.upload_version("api");
    w.cf.deploy("api", &[(&uploaded, 100)]);
    w.ok(&p, &["sync", "--check", "--verify"]);
    let out = w.ok(&p, &["check", "--online"]);
    assert!(!out.contains("remote-changed"), "{out}");

    // `wrangler versions secret put` + `versions deploy`: the same code in
    // a new version, which Cloudflare does not tell apart from a secret
    // change: the gate fails and says why.
    let edited = w.cf.versions_secret_put("api", "API_TOKEN", "YOUR_TOKEN_HERE_REPLACE_ME");
    w.cf.deploy("api", &[(&edited, 100)]);
    let out = w.run(&p, &["sync", "--check", "--verify"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(
        text(&out).contains("with no new code, so by a change Cloudflare does not tell apart from a secret change"),
        "{}",
        text(&out)
    );
    w.ok(&p, &["sync", "--verify"]);
    let value = p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
    assert_eq!(w.cf.value("api", "API_TOKEN").as_deref(), Some(value.as_str()));
    w.ok(&p, &["sync", "--check", "--verify"]);
}

#[test]
fn a_version_is_made_only_from_code_the_api_can_give() {
    let w = start();
    let p = Project::initialised(&policy("deploy = \"version\"\n"));
    w.ok(&p, &["rotate"]);
    let ours = w.cf.latest_id("api");
    w.cf.deploy("api", &[(&ours, 100)]);
    // New code uploaded but not rolled out: the latest version runs other
    // code than the deployed one, and `content/v2` has no version to ask
    // for, so no version is made.
    w.cf.upload_version("api");
    w.cf.control.reset_counts();
    let out = w.run(&p, &["rotate", "--emergency", "API_TOKEN"]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(
        text(&out).contains("runs other code than version") && text(&out).contains("no version was made"),
        "{}",
        text(&out)
    );
    let counts = w.cf.control.counts();
    assert!(!counts.contains_key("POST /client/v4/accounts/{account}/workers/scripts/{script}/versions"), "{counts:?}");
}

#[test]
fn plan_does_not_promise_a_retirement_a_running_older_version_blocks() {
    let w = start();
    let p = Project::initialised(&policy("deploy = \"version\"\n"));
    // v1 goes into version #2, which the team rolls out.
    w.ok(&p, &["rotate"]);
    let made = w.cf.latest_id("api");
    w.cf.deploy("api", &[(&made, 100)]);
    // v2 goes into #3, not rolled out: v1 cannot be retired while #2 runs.
    let out = w.run(&p, &["rotate", "--emergency", "API_TOKEN"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let out = w.run(&p, &["rotate", "API_TOKEN"]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    assert!(text(&out).contains("is not revoked yet: wrangler:api runs version #"), "{}", text(&out));
    let out = w.ok(&p, &["plan"]);
    assert!(!out.contains("retire v"), "plan promised a retirement the run refuses: {out}");
    assert!(out.contains("cannot be retired yet: wrangler:api runs version #"), "{out}");
}

#[test]
fn our_own_prune_is_not_a_change_by_others_in_either_deploy_mode() {
    for options in ["", "deploy = \"version\"\nrollout = \"100%\"\n"] {
        let w = start();
        let two_names = policy(&format!("names = [\"API_TOKEN\", \"OLD_NAME\"]\n{options}"));
        let p = Project::initialised(&two_names);
        w.ok(&p, &["rotate"]);
        std::fs::write(p.path("policies/main.toml"), policy(options)).unwrap();
        let out = w.ok(&p, &["sync", "--prune"]);
        assert!(out.contains("OLD_NAME"), "{out}");
        assert!(!w.cf.names("api").contains(&"OLD_NAME".to_string()));
        let out = w.run(&p, &["check", "--online"]);
        assert_eq!(code(&out), 0, "{options:?}: {}", text(&out));
        w.ok(&p, &["sync", "--check", "--verify"]);
    }
}

#[test]
fn a_hand_edited_version_is_caught_in_a_split_and_behind_new_code() {
    // Rolled out beside ours: 10% of the traffic runs the placeholder.
    let w = start();
    let p = Project::initialised(&policy(""));
    w.ok(&p, &["rotate"]);
    let ours = w.cf.latest_id("api");
    let edited = w.cf.versions_secret_put("api", "API_TOKEN", "YOUR_TOKEN_HERE_REPLACE_ME");
    w.cf.deploy("api", &[(&edited, 10), (&ours, 90)]);
    let out = w.run(&p, &["sync", "--check", "--verify"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("with no new code"), "{}", text(&out));

    // New code uploaded, then a secret changed on top of it, then rolled
    // out: the version brought no code of its own.
    let w = start();
    let p = Project::initialised(&policy(""));
    w.ok(&p, &["rotate"]);
    w.cf.upload_version("api");
    let edited = w.cf.versions_secret_put("api", "API_TOKEN", "YOUR_TOKEN_HERE_REPLACE_ME");
    w.cf.deploy("api", &[(&edited, 100)]);
    let out = w.run(&p, &["sync", "--check", "--verify"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("with no new code"), "{}", text(&out));
}
