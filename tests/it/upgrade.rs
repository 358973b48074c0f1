//! A registry from before authentication (recipients, `tokens/NAME.toml`
//! of schema 1, every value in `tokens/NAME.age`, an audit log without
//! MACs) is written here byte for byte as the older releases wrote it; a
//! member's `upgrade` moves it to the authenticated format in one command.

use std::io::Write;

use age::secrecy::ExposeSecret;
use sha2::Digest;

use crate::common::*;

const VALUE: &str = "mcp_auth_0123456789abcdef0123456789abcdef";

/// The older format, for SESSION_KEY (v1 current), readable by `identity`.
fn legacy_registry(p: &Project, identity: &age::x25519::Identity) {
    let dir = p.path(".chitty-secrets/tokens");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(p.identity_file().parent().unwrap()).unwrap();
    std::fs::write(p.identity_file(), format!("{}\n", identity.to_string().expose_secret())).unwrap();
    std::fs::write(p.path(".chitty-secrets/recipients"), format!("# me\n{}\n", identity.to_public())).unwrap();
    std::fs::write(
        dir.join("SESSION_KEY.toml"),
        r#"schema = 1
name = "SESSION_KEY"
generation = 2

[[versions]]
id = 1
stage = "current"
issuer = "random"
issuer_kind = "random"
created_at = "2026-11-01T12:00:00Z"
origin = "issued"

[deliveries]
"#,
    )
    .unwrap();
    let plain = format!(r#"{{"schema":2,"token":"SESSION_KEY","values":{{"1":"{VALUE}"}}}}"#);
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&identity.to_public() as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor).unwrap();
    let mut writer = encryptor.wrap_output(armor).unwrap();
    writer.write_all(plain.as_bytes()).unwrap();
    writer.finish().and_then(|a| a.finish()).unwrap();
    std::fs::write(dir.join("SESSION_KEY.age"), out).unwrap();
    // Two chained lines without MACs.
    let first = r#"{"seq":0,"at":"2026-11-01T12:00:00Z","actor":"me@host","event":"keys.add","detail":"init","prev":"0000000000000000000000000000000000000000000000000000000000000000"}"#;
    let hash =
        |line: &str| sha2::Sha256::digest(line.as_bytes()).iter().map(|b| format!("{b:02x}")).collect::<String>();
    let second = format!(
        r#"{{"seq":1,"at":"2026-11-01T12:00:01Z","actor":"me@host","event":"rotate.mint","token":"SESSION_KEY","version":1,"prev":"{}"}}"#,
        hash(first)
    );
    std::fs::write(p.path(".chitty-secrets/audit.log"), format!("{first}\n{second}\n")).unwrap();
}

#[test]
fn an_older_registry_is_refused_for_writes_until_a_member_upgrades_it_in_one_command() {
    let p = Project::new(LOCAL_POLICY);
    let me = age::x25519::Identity::generate();
    legacy_registry(&p, &me);

    // Reading metadata works, and says the registry is not authenticated.
    let out = p.run(&["status"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("before authentication") && text(&out).contains("upgrade"), "{}", text(&out));
    let out = p.run(&["check", "--json"]);
    assert!(text(&out).contains("registry-not-authenticated"), "{}", text(&out));
    // Values and writes wait for the upgrade, and say so.
    for args in [&["get", "SESSION_KEY"][..], &["rotate", "SESSION_KEY"], &["sync"]] {
        let out = p.run(args);
        assert_ne!(code(&out), 0, "{args:?}: {}", text(&out));
        assert!(text(&out).contains("chitty-secrets upgrade"), "{args:?}: {}", text(&out));
    }
    // A stranger cannot upgrade it.
    let stranger = p.path("stranger.txt");
    std::fs::write(&stranger, age::x25519::Identity::generate().to_string().expose_secret()).unwrap();
    let out = p.run(&["--identity", stranger.to_str().unwrap(), "upgrade"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(!p.path(".chitty-secrets/key.age").exists());

    let out = p.ok(&["upgrade"]);
    assert!(out.contains("1 token") && out.contains("1 value file"), "{out}");
    assert!(p.path(".chitty-secrets/key.age").exists());
    assert!(!p.path(".chitty-secrets/tokens/SESSION_KEY.age").exists(), "the old value file is gone");
    assert_eq!(p.ok(&["get", "SESSION_KEY"]).trim_end(), VALUE, "the value survived");
    assert!(p.read(".chitty-secrets/tokens/SESSION_KEY.toml").starts_with("mac = \"e0."));
    let out = p.ok(&["audit", "verify"]);
    assert!(out.contains("every line a member's") && out.contains("2 from before"), "{out}");
    p.ok(&["trust", "status"]);
    // The upgraded registry works as any other, and a second upgrade does nothing.
    p.ok(&["rotate", "SESSION_KEY"]);
    assert!(p.ok(&["upgrade"]).contains("nothing to do"));
    // The older lines are fixed by the line that began authentication: a
    // line slipped in among them afterwards breaks the log.
    let log = p.read(".chitty-secrets/audit.log");
    let forged = log.replacen("\"actor\":\"me@host\"", "\"actor\":\"mallory@host\"", 1);
    std::fs::write(p.path(".chitty-secrets/audit.log"), forged).unwrap();
    assert_eq!(code(&p.run(&["audit", "verify"])), 3);
}

/// An upgrade cut short (killed after some files were rewritten) leaves the
/// older format in force (key.age is written last), and a rerun finishes.
#[test]
fn an_upgrade_cut_short_is_finished_by_a_rerun() {
    let p = Project::new(LOCAL_POLICY);
    let me = age::x25519::Identity::generate();
    legacy_registry(&p, &me);
    let out = p.command(&["upgrade"]).env("CHITTY_SECRETS_CRASH_AT", "upgrade-after-first-token").output().unwrap();
    assert_eq!(out.status.code(), None, "expected to die by signal: {}", text(&out));
    assert!(!p.path(".chitty-secrets/key.age").exists());
    assert_eq!(code(&p.run(&["status"])), 0);
    p.ok(&["upgrade"]);
    assert_eq!(p.ok(&["get", "SESSION_KEY"]).trim_end(), VALUE);
    p.ok(&["trust", "status"]);
}
