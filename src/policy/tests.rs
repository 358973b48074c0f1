use super::*;

fn load_str(files: &[(&str, &str)]) -> Result<Policy, PolicyError> {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir(&policies).unwrap();
    for (name, text) in files {
        std::fs::write(policies.join(name), text).unwrap();
    }
    load(&policies)
}

fn problems(files: &[(&str, &str)]) -> String {
    load_str(files).expect_err("policy should be rejected").to_string()
}

#[test]
fn bundled_policies_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let policy = load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let token = policy.token("CHITTY_ID_TOKEN").unwrap();
    assert_eq!(token.targets[0].names, ["CHITTY_ID_TOKEN", "CHITTY_API_KEY"]);
    assert_eq!(token.overlap.0, chrono::TimeDelta::hours(24));
    assert!(
        matches!(policy.issuer_of(token).spec, IssuerSpec::Random(ref r) if r.bytes == 16 && r.prefix == "mcp_auth_")
    );
}

#[test]
fn the_chittyos_example_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/chittyos/policies");
    let policy = load(&dir).unwrap_or_else(|e| panic!("{e}"));
    let token = policy.token("CHITTY_ID_TOKEN").unwrap();
    assert!(matches!(policy.issuer_of(token).spec, IssuerSpec::Chittyid(_)));
    let addresses: Vec<String> = token.targets.iter().map(|t| t.address().to_string()).collect();
    assert_eq!(
        addresses,
        [
            "dotenv:chittychat/.env",
            "wrangler:chittyos-unified-platform-production",
            "github:chittyos/chittyos-services"
        ]
    );
    assert!(matches!(
        policy.issuer_of(policy.token("CHITTYAUTH_ISSUED_CHAT_TOKEN").unwrap()).spec,
        IssuerSpec::Chittyauth(_)
    ));
}

#[test]
fn issuer_credentials_must_come_from_env_or_registry() {
    let text = problems(&[(
        "a.toml",
        "[issuers.id]\nkind = \"chittyid\"\nurl = \"http://id.example\"\nadmin_password_from = \"hunter2\"\n[issuers.auth]\nkind = \"chittyauth\"\nurl = \"https://auth.example\"\nbearer_from = \"env:TOKEN\"\n",
    )]);
    assert!(text.contains("the credential source is not env:NAME or registry:TOKEN"), "{text}");
    assert!(!text.contains("hunter2"), "a pasted secret was echoed: {text}");
    assert!(text.contains("secrets only travel over HTTPS"), "{text}");
    assert!(text.contains("the live preset needs `chitty_id`"), "{text}");
}

#[test]
fn unknown_field_has_line_col_caret_and_suggestion() {
    let text = problems(&[("a.toml", "[tokens.A]\nissuer = \"random\"\nrotate_evry = \"9d\"\n")]);
    assert!(text.contains("a.toml:3:1: unknown field `rotate_evry`"), "{text}");
    assert!(text.contains("^^^^^^^^^^^"), "{text}");
    assert!(text.contains("did you mean `rotate_every`?"), "{text}");
}

#[test]
fn every_problem_in_every_file_is_reported() {
    let text = problems(&[
        ("a.toml", "[tokens.A]\nissuer = \"randon\"\nttl = \"ten days\"\n"),
        ("b.toml", "[tokens.B]\nissuer = \"random\"\n[[tokens.B.targets]]\nkind = \"dotnev\"\npath = \"x/.env\"\n"),
        ("c.toml", "[tokens.C\nissuer = \"random\"\n"),
    ]);
    assert!(text.contains("a.toml:3:7: invalid duration `ten days`"), "{text}");
    assert!(text.contains("b.toml:4:8: unknown kind `dotnev`"), "{text}");
    assert!(text.contains("did you mean `dotenv`?"), "{text}");
    assert!(text.contains("c.toml:1:"), "{text}");
    assert!(text.contains("3 problems"), "{text}");
}

#[test]
fn unknown_issuer_reference_is_found_after_all_files() {
    let ok =
        load_str(&[("a.toml", "[tokens.A]\nissuer = \"later\"\n"), ("b.toml", "[issuers.later]\nkind = \"random\"\n")]);
    assert!(ok.is_ok());
    let text = problems(&[("a.toml", "[tokens.A]\nissuer = \"lokal\"\n[issuers.local]\nkind = \"random\"\n")]);
    assert!(text.contains("a.toml:2:10: token `A` names issuer `lokal`"), "{text}");
    assert!(text.contains("did you mean `local`?"), "{text}");
}

#[test]
fn conflicting_and_unsafe_targets_are_rejected() {
    let text = problems(&[(
        "a.toml",
        r#"
[tokens.A]
issuer = "random"
[[tokens.A.targets]]
kind = "dotenv"
path = "../outside/.env"

[tokens.B]
issuer = "random"
[[tokens.B.targets]]
kind = "dotenv"
path = "app/.env"
names = ["SHARED"]

[tokens.C]
issuer = "random"
[[tokens.C.targets]]
kind = "dotenv"
path = "app/.env"
names = ["SHARED", "9BAD"]
"#,
    )]);
    assert!(text.contains("must name a file, relative and inside the project"), "{text}");
    assert!(text.contains("`SHARED` at dotenv:app/.env is written by both `B` and `C`"), "{text}");
    assert!(text.contains("`9BAD` is not a valid secret name"), "{text}");
}

#[test]
fn builtin_issuers_exist_and_rotate_every_must_fit_ttl() {
    let policy = load_str(&[("a.toml", "[tokens.A]\nissuer = \"manual\"\n")]).unwrap();
    assert!(matches!(policy.issuer_of(policy.token("A").unwrap()).spec, IssuerSpec::Manual(_)));
    let text = problems(&[("a.toml", "[tokens.A]\nissuer = \"random\"\nttl = \"30d\"\nrotate_every = \"90d\"\n")]);
    assert!(text.contains("rotate_every is longer than ttl"), "{text}");
}

#[test]
fn empty_directory_says_what_to_do() {
    let text = problems(&[]);
    assert!(text.contains("no *.toml policy files"), "{text}");
}

#[test]
fn remote_targets_are_validated_before_any_request() {
    let text = problems(&[(
        "a.toml",
        r#"
[tokens.A]
issuer = "random"
[[tokens.A.targets]]
kind = "github"
repo = "owner/name"
names = ["GITHUB_TOKEN_COPY", "OK_NAME"]
[[tokens.A.targets]]
kind = "github"
repo = "just-a-name"
[[tokens.A.targets]]
kind = "github"
org = "acme"
visibility = "selected"
[[tokens.A.targets]]
kind = "wrangler"
worker = "api"
env = "prod"
via = "carrier-pigeon"
"#,
    )]);
    assert!(text.contains("a.toml:4:1: token `A`: `GITHUB_TOKEN_COPY` is not a valid GitHub secret name: names starting with GITHUB_ are reserved"), "{text}");
    assert!(text.contains("repo `just-a-name` is not `owner/name`"), "{text}");
    assert!(text.contains("visibility = \"selected\" needs selected_repositories"), "{text}");
    assert!(text.contains("unknown variant `carrier-pigeon`"), "{text}");
    let ok = load_str(&[(
        "a.toml",
        "[tokens.A]\nissuer = \"random\"\n[[tokens.A.targets]]\nkind = \"wrangler\"\nworker = \"api\"\nenv = \"production\"\n[[tokens.A.targets]]\nkind = \"github\"\nrepo = \"o/r\"\nenvironment = \"prod\"\n",
    )])
    .unwrap();
    let addresses: Vec<String> = ok.tokens["A"].targets.iter().map(|t| t.address().to_string()).collect();
    assert_eq!(addresses, ["wrangler:api-production", "github:o/r@env:prod"]);
}
