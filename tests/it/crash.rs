//! A rotation killed (SIGKILL) at any step is finished by the next run.

use crate::common::*;

const POLICY: &str = r#"
[tokens.API_TOKEN]
issuer = "random"
overlap = "1h"

[[tokens.API_TOKEN.targets]]
kind = "dotenv"
path = "a/.env"

[[tokens.API_TOKEN.targets]]
kind = "dotenv"
path = "b/.env"
names = ["API_TOKEN", "API_TOKEN_ALIAS"]
"#;

#[test]
fn a_rotation_killed_at_any_point_is_resumed() {
    for point in ["before-issue", "after-mint", "after-save-value", "after-put", "after-deliver", "before-promote"] {
        let p = Project::initialised(POLICY);
        p.ok(&["rotate"]);
        let v1 = p.ok(&["get", "API_TOKEN"]);

        let out = p.command(&["rotate"]).env("CHITTY_SECRETS_CRASH_AT", point).output().unwrap();
        assert_eq!(out.status.code(), None, "{point}: expected to die by signal: {}", text(&out));

        // Whatever state it died in, every service still has a working value:
        // the old one, or the new one that is saved in the registry.
        let status: serde_json::Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
        let known: Vec<String> = ["current", "pending"]
            .iter()
            .filter_map(|stage| {
                let out = p.run(&["get", "API_TOKEN", "--which", stage]);
                (code(&out) == 0).then(|| String::from_utf8(out.stdout).unwrap().trim_end().to_string())
            })
            .collect();
        for (file, key) in [("a/.env", "API_TOKEN"), ("b/.env", "API_TOKEN"), ("b/.env", "API_TOKEN_ALIAS")] {
            let held = env_value(&p.path(file), key).unwrap();
            assert!(known.contains(&held), "{point}: {file} {key} holds a value the registry lost; {status}");
        }

        let out = p.run(&["rotate", "--due"]);
        assert_eq!(code(&out), 0, "{point}: {}", text(&out));
        let v2 = p.ok(&["get", "API_TOKEN"]);
        assert_ne!(v1, v2, "{point}: the rotation did not complete");
        for (file, key) in [("a/.env", "API_TOKEN"), ("b/.env", "API_TOKEN"), ("b/.env", "API_TOKEN_ALIAS")] {
            assert_eq!(env_value(&p.path(file), key).as_deref(), Some(v2.trim_end()), "{point}: {file} {key}");
        }
        let status: serde_json::Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
        let token = &status["tokens"][0];
        assert_eq!(token["pending"], serde_json::Value::Null, "{point}: {token}");
        assert_eq!(token["rotation_in_progress"], false, "{point}: {token}");
        let previous = p.ok(&["get", "API_TOKEN", "--which", "previous"]);
        assert_eq!(previous, v1, "{point}: the old value must stay available for the overlap");
        // A resumed rotation never minted more than one new version.
        let ids: Vec<u64> = token["versions"].as_array().unwrap().iter().map(|v| v["id"].as_u64().unwrap()).collect();
        assert!(ids.len() == 2, "{point}: {ids:?}");
    }
}

/// A `sync` records each token as soon as its writes have landed, not
/// once every target is done: killed while a slow target is still on the
/// wire, the tokens GitHub took are recorded (and in the audit log), and
/// the next run writes only what did not land.
#[test]
fn a_sync_killed_mid_fan_out_keeps_what_landed() {
    use crate::fakes::Faults;
    let f = crate::remote::Fakes::start();
    f.gh.add_repo("acme/app");
    f.cf.add_script("api");
    let policy = r#"
[tokens.A]
issuer = "random"
[[tokens.A.targets]]
kind = "github"
repo = "acme/app"

[tokens.B]
issuer = "random"
[[tokens.B.targets]]
kind = "github"
repo = "acme/app"

[tokens.C]
issuer = "random"
[[tokens.C.targets]]
kind = "wrangler"
worker = "api"
"#;
    // Values first, with no targets: the killed run is a pure delivery.
    let p = Project::initialised(
        "[tokens.A]\nissuer = \"random\"\n[tokens.B]\nissuer = \"random\"\n[tokens.C]\nissuer = \"random\"\n",
    );
    p.ok(&["rotate"]);
    std::fs::write(p.path("policies/main.toml"), policy).unwrap();
    let delivered = || -> Vec<String> {
        let mut tokens: Vec<String> = std::fs::read_to_string(p.path(".chitty-secrets/audit.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["event"] == "deliver")
            .map(|e| e["token"].as_str().unwrap_or_default().to_string())
            .collect();
        tokens.sort();
        tokens
    };
    // The Worker hangs: the run is killed once GitHub's writes are in the
    // audit log, as a CI job's time limit would kill it.
    f.cf.control.set_faults(Faults { latency: std::time::Duration::from_secs(20), ..Faults::default() });
    let mut child = crate::remote::with_fakes(&mut p.command(&["sync"]), &f.gh, &f.cf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while delivered().len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(delivered(), ["A", "B"], "GitHub's tokens were not recorded while the Worker was on the wire");
    let mut landed = f.gh.names("repo:acme/app");
    landed.sort();
    assert_eq!(landed, ["A", "B"]);
    assert!(f.cf.names("api").is_empty(), "the Worker was written before the kill");
    p.ok(&["audit", "verify"]);

    f.cf.control.set_faults(Faults::default());
    f.gh.control.reset_counts();
    f.ok(&p, &["sync"]);
    assert_eq!(f.gh.control.writes(), 0, "GitHub's writes were recorded before the kill: {:?}", f.gh.control.counts());
    assert_eq!(f.cf.names("api"), ["C"]);
    assert_eq!(delivered(), ["A", "B", "C"]);
    let out = f.ok(&p, &["sync", "--verify"]);
    assert!(out.contains("every target is up to date"), "{out}");
}
