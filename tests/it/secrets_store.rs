//! `kind = "secrets_store"`: the account's Cloudflare Secrets Store, against
//! the fake (write-only values, names and modification times listed, one
//! create request for the new names, a PATCH per existing one).

use crate::common::*;
use crate::remote::Fakes;

const POST: &str = "POST /client/v4/accounts/{account}/secrets_store/stores/{store}/secrets";
const PATCH: &str = "PATCH /client/v4/accounts/{account}/secrets_store/stores/{store}/secrets/{secret}";

fn policy(options: &str) -> String {
    format!(
        "[tokens.API_TOKEN]\nissuer = \"random\"\noverlap = \"1h\"\n\n[[tokens.API_TOKEN.targets]]\nkind = \"secrets_store\"\nnames = [\"API_TOKEN\", \"API_TOKEN_FOR_GATEWAY\"]\n{options}"
    )
}

#[test]
fn store_secrets_are_created_then_updated_and_a_resync_writes_nothing() {
    let f = Fakes::start();
    let store = f.cf.add_store("default_secrets_store");
    // The account's one store is found when the policy names none.
    let p = Project::initialised(&policy(""));
    let out = f.ok(&p, &["plan"]);
    assert!(out.contains("secrets_store:account: a write makes no Worker version"), "{out}");
    f.ok(&p, &["rotate"]);
    let first = p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
    for name in ["API_TOKEN", "API_TOKEN_FOR_GATEWAY"] {
        assert_eq!(f.cf.store_value(&store, name).as_deref(), Some(first.as_str()));
    }
    assert_eq!(f.cf.control.counts().get(POST), Some(&1), "one create for both names");

    f.cf.control.reset_counts();
    f.ok(&p, &["sync"]);
    f.ok(&p, &["sync", "--verify"]);
    f.ok(&p, &["sync", "--check", "--verify"]);
    assert_eq!(f.cf.control.writes(), 0, "{:?}", f.cf.control.counts());

    // A rotation updates what exists; the old value stays previous.
    f.ok(&p, &["rotate", "API_TOKEN"]);
    let second = p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
    assert_ne!(first, second);
    assert_eq!(f.cf.store_value(&store, "API_TOKEN").as_deref(), Some(second.as_str()));
    assert_eq!(f.cf.control.counts().get(PATCH), Some(&2), "{:?}", f.cf.control.counts());
    assert!(p.ok(&["status", "--json"]).contains("\"previous\""));
}

#[test]
fn a_store_secret_changed_by_hand_is_seen_and_written_again() {
    let f = Fakes::start();
    f.cf.add_store("other");
    let store = f.cf.add_store("platform");
    // Two stores: the policy names one.
    let p = Project::initialised(&policy(&format!("store = \"{store}\"\n")));
    f.ok(&p, &["rotate"]);
    let value = p.ok(&["get", "API_TOKEN"]).trim_end().to_string();
    f.cf.store_set_by_hand(&store, "API_TOKEN", "YOUR_TOKEN_HERE_REPLACE_ME");
    let out = f.run(&p, &["sync", "--check", "--verify"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("API_TOKEN differs from the registry"), "{}", text(&out));
    f.ok(&p, &["sync", "--verify"]);
    assert_eq!(f.cf.store_value(&store, "API_TOKEN").as_deref(), Some(value.as_str()));
    f.ok(&p, &["sync", "--check", "--verify"]);

    // Without `store`, two stores are named and the run says what to do.
    let p = Project::initialised(&policy(""));
    let out = f.run(&p, &["rotate"]);
    assert_ne!(code(&out), 0);
    assert!(
        text(&out).contains("the account has 2 Secrets Stores") && text(&out).contains("store = \"ID\""),
        "{}",
        text(&out)
    );
}

#[test]
fn store_entries_are_checked_and_their_credentials_named() {
    let p = Project::new(&policy("store = \"not-an-id\"\n"));
    let out = p.run(&["policy", "check"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("main.toml:") && text(&out).contains("`not-an-id` is not a Secrets Store id"),
        "{}",
        text(&out)
    );
    let p = Project::new(&policy("scopes = [\"workerz\"]\n"));
    assert_eq!(code(&p.run(&["policy", "check"])), 2);
    let p = Project::initialised(&policy(""));
    let out = p.ok(&["ci", "init"]);
    assert!(out.contains("gh secret set CLOUDFLARE_API_TOKEN"), "{out}");
    let out = p.run(&["ci", "doctor"]);
    assert!(text(&out).contains("secrets_store:account"), "{}", text(&out));
}

#[test]
fn plan_and_check_name_the_workers_that_read_a_store_secret() {
    let f = Fakes::start();
    let store = f.cf.add_store("default_secrets_store");
    f.cf.add_script("api");
    f.cf.add_script("web");
    f.cf.bind_store_secret("api", "API_TOKEN", &store, "API_TOKEN");
    f.cf.bind_store_secret("web", "TOKEN", &store, "API_TOKEN");
    // `web` still has a plain secret of the same name.
    f.cf.set_by_hand("web", "API_TOKEN", "old-plain-value");
    let p = Project::initialised(&policy(""));
    let out = f.ok(&p, &["plan"]);
    assert!(out.contains("secrets_store:account: API_TOKEN is read by Workers api, web"), "{out}");
    assert!(out.contains("secrets_store:account: API_TOKEN_FOR_GATEWAY is bound by no deployed Worker"), "{out}");
    assert!(out.contains("warning: secrets_store:account: Worker web still has a plain secret API_TOKEN"), "{out}");
    f.ok(&p, &["rotate"]);
    let out = f.run(&p, &["check", "--online"]);
    assert!(text(&out).contains("read-by") && text(&out).contains("read by Workers api, web"), "{}", text(&out));
    assert!(text(&out).contains("shadowed-secret"), "{}", text(&out));
}
