//! The policy JSON Schema against a real validator (check-jsonschema, from
//! PyPI; `scripts/test` installs it): every bundled and example policy
//! passes, and bad policies fail it as they fail `policy check`.

use std::path::Path;
use std::process::Command;

use crate::common::*;

fn validator() -> Option<String> {
    let program = std::env::var("CHITTY_SECRETS_JSONSCHEMA").unwrap_or_else(|_| "check-jsonschema".into());
    match Command::new(&program).arg("--version").output() {
        Ok(out) if out.status.success() => Some(program),
        Ok(out) => unavailable("check-jsonschema", &String::from_utf8_lossy(&out.stderr)),
        Err(e) => unavailable("check-jsonschema", &e.to_string()),
    }
}

fn validates(program: &str, file: &Path) -> (bool, String) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/policy.schema.json");
    let out = Command::new(program).arg("--schemafile").arg(schema).arg(file).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn the_schema_accepts_every_bundled_policy_and_rejects_bad_ones() {
    let Some(program) = validator() else { return };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for good in ["policies/local.toml", "examples/chittyos/policies/chittyos.toml"] {
        let (ok, said) = validates(&program, &root.join(good));
        assert!(ok, "{good}: {said}");
    }
    let base = "[tokens.A]\nissuer = \"random\"\n[[tokens.A.targets]]\nkind = \"dotenv\"\npath = \"app/.env\"\n";
    let bad = [
        base.replace("issuer = \"random\"", "issuer = \"random\"\nrotate_evry = \"9d\""),
        base.replace("kind = \"dotenv\"", "kind = \"dotnev\""),
        base.replace("issuer = \"random\"", "issuer = \"random\"\nttl = \"soon\""),
        base.replace("tokens.A", "tokens.9BAD"),
        base.replace("app/.env", "app/"),
        base.replace("path = \"app/.env\"", "path = \"app/.env\"\nnames = [\"A\", \"A\"]"),
        format!("[issuers.id]\nkind = \"chittyid\"\nurl = \"https://id\"\nadmin_password_from = \"hunter2\"\n{base}"),
        format!("{base}[settings]\nx = 1\n"),
    ];
    for (i, policy) in bad.iter().enumerate() {
        let p = Project::new(policy);
        let (ok, said) = validates(&program, &p.path("policies/main.toml"));
        assert!(!ok, "bad policy {i} passed the schema:\n{policy}\n{said}");
        assert_eq!(code(&p.run(&["policy", "check"])), 2, "bad policy {i} passed policy check:\n{policy}");
    }
}

#[test]
fn policy_schema_prints_the_committed_schema() {
    let p = Project::new("");
    let printed = p.ok(&["policy", "schema"]);
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/policy.schema.json")).unwrap();
    assert_eq!(printed, committed);
}
