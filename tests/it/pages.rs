//! `kind = "pages"`: a Cloudflare Pages project's secrets, per environment,
//! against the fake Cloudflare (Pages' merge semantics: a PATCH names only
//! the variables it changes, `null` deletes one).

use crate::common::*;
use crate::remote::Fakes;

const PATCH: &str = "PATCH /client/v4/accounts/{account}/pages/projects/{project}";

type Pages = Fakes;

fn start() -> Pages {
    let w = Fakes::start();
    w.cf.add_pages_project("shop");
    w
}

fn policy(options: &str) -> String {
    format!(
        "[tokens.API_TOKEN]\nissuer = \"random\"\noverlap = \"1h\"\n\n[[tokens.API_TOKEN.targets]]\nkind = \"pages\"\nproject = \"shop\"\n{options}"
    )
}

#[test]
fn pages_secrets_are_delivered_without_touching_other_variables_and_a_resync_writes_nothing() {
    let pg = start();
    let p = Project::initialised(&policy("names = [\"API_TOKEN\", \"SHOP_API_KEY\"]\n"));
    // plan says where a value goes and when it reaches the site.
    let out = pg.ok(&p, &["plan"]);
    assert!(
        out.contains(
            "pages:shop@production: a value reaches the site at its next deployment; the latest deployment is 00000001"
        ),
        "{out}"
    );
    pg.ok(&p, &["rotate"]);
    let value = p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
    for name in ["API_TOKEN", "SHOP_API_KEY"] {
        assert_eq!(pg.cf.pages_var("shop", "production", name), Some(("secret_text".into(), value.clone())));
    }
    assert_eq!(pg.cf.pages_var("shop", "production", "SITE_NAME"), Some(("plain_text".into(), "shop".into())));
    assert_eq!(pg.cf.pages_var("shop", "preview", "API_TOKEN"), None, "the other environment was written");
    assert_eq!(pg.cf.control.counts().get(PATCH), Some(&1), "one PATCH for both names");

    // In sync: nothing is written, with or without --verify.
    pg.cf.control.reset_counts();
    pg.ok(&p, &["sync"]);
    pg.ok(&p, &["sync", "--verify"]);
    pg.ok(&p, &["sync", "--check", "--verify"]);
    assert_eq!(pg.cf.control.writes(), 0, "{:?}", pg.cf.control.counts());

    // A rotation with overlap: the new value everywhere, the old one kept
    // as previous for the overlap.
    pg.ok(&p, &["rotate", "API_TOKEN"]);
    let second = p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
    assert_ne!(second, value);
    assert_eq!(pg.cf.pages_var("shop", "production", "API_TOKEN"), Some(("secret_text".into(), second)));
    let status = p.ok(&["status", "--json"]);
    assert!(status.contains("\"previous\""), "{status}");
    assert!(!text(&pg.run(&p, &["plan"])).contains(&value), "a value leaked");
}

#[test]
fn a_pages_secret_deleted_by_hand_fails_the_gate_and_sync_verify_puts_it_back() {
    let pg = start();
    let p = Project::initialised(&policy("environment = \"preview\"\n"));
    pg.ok(&p, &["rotate"]);
    let value = p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
    assert_eq!(pg.cf.pages_var("shop", "preview", "API_TOKEN"), Some(("secret_text".into(), value.clone())));
    pg.cf.pages_remove_by_hand("shop", "preview", "API_TOKEN");
    let out = pg.run(&p, &["sync", "--check", "--verify"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("API_TOKEN is missing"), "{}", text(&out));
    let out = pg.run(&p, &["check", "--online"]);
    assert!(text(&out).contains("remote-missing"), "{}", text(&out));
    pg.ok(&p, &["sync", "--verify"]);
    assert_eq!(pg.cf.pages_var("shop", "preview", "API_TOKEN"), Some(("secret_text".into(), value)));
}

#[test]
fn pages_entries_are_checked_and_their_credentials_named() {
    let p = Project::new(&policy("").replace("project = \"shop\"", "project = \"Shop Site\""));
    let out = p.run(&["policy", "check"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("main.toml:") && text(&out).contains("`Shop Site` is not a Pages project name"),
        "{}",
        text(&out)
    );
    let p = Project::new(&policy("environment = \"staging\"\n"));
    let out = p.run(&["policy", "check"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(text(&out).contains("main.toml:") && text(&out).contains("staging"), "{}", text(&out));

    let p = Project::initialised(&policy(""));
    let out = p.ok(&["ci", "init"]);
    assert!(
        out.contains("gh secret set CLOUDFLARE_API_TOKEN") && out.contains("gh secret set CLOUDFLARE_ACCOUNT_ID"),
        "{out}"
    );
    let out = p.run(&["ci", "doctor"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("CLOUDFLARE_API_TOKEN") && text(&out).contains("pages:shop@production"),
        "{}",
        text(&out)
    );
    // Without credentials, a rotation says what is missing before any request.
    let out = p.run(&["rotate"]);
    assert_ne!(code(&out), 0);
    assert!(text(&out).contains("CLOUDFLARE_API_TOKEN"), "{}", text(&out));
}
