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
