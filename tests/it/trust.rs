//! Regression tests for the registry's authenticity. Before the registry
//! was authenticated, anyone who could push to the repository could write
//! any file every member's command trusted: age encrypts to public keys,
//! and the recipients file, the metadata and the audit log are plain text.
//! Each test here replays one such attack on the real binary and checks
//! that a member's command now refuses the file, names it, and that
//! nothing harmful happened (no forged value delivered or printed, no
//! version minted, no issuer called).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use age::secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::common::*;

/// The value an attacker plants: it must never reach a .env file or output.
const FORGED: &str = "attacker-planted-5d1e0c3b9a77";

/// A registry with every token of [`LOCAL_POLICY`] minted and delivered,
/// and `check` clean: any finding after an attack is the attack's.
fn healthy() -> Project {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "CHITTY_ID_TOKEN", "SESSION_KEY"]);
    let out = p.run_with_stdin(&["set", "VENDOR_API_KEY"], "vendor_key_0123456789abcdef\n");
    assert_eq!(code(&out), 0, "{}", text(&out));
    p.ok(&["sync"]);
    let out = p.run(&["check"]);
    assert_eq!(code(&out), 0, "the registry starts clean: {}", text(&out));
    p
}

/// A key that is not a member's: its file and public key.
fn stranger(p: &Project, name: &str) -> (String, String) {
    let key = age::x25519::Identity::generate();
    let path = p.path(&format!("{name}.key"));
    std::fs::write(&path, key.to_string().expose_secret()).unwrap();
    (path.to_str().unwrap().to_string(), key.to_public().to_string())
}

/// The first member's public key, as anyone with a clone can read it.
fn member_recipient(p: &Project) -> String {
    p.read(".chitty-secrets/recipients").lines().find(|l| l.starts_with("age1")).expect("a recipient").to_string()
}

/// `plain`, encrypted to `recipient` with the stock `age` CLI (what an
/// attacker with nothing but a clone can do), written over `out`.
fn age_encrypt(recipient: &str, plain: &str, out: &Path) {
    let mut child = Command::new("age")
        .args(["-r", recipient, "-a", "-o"])
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the `age` CLI is installed (apt-get install age)");
    child.stdin.take().unwrap().write_all(plain.as_bytes()).unwrap();
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success(), "age -r: {}", text(&done));
}

/// A path as the binary shows it: relative to the project.
fn rel(p: &Project, path: &Path) -> String {
    path.strip_prefix(p.dir.path()).unwrap().display().to_string()
}

/// The (id, stage) of each version in a token's metadata, read as text
/// (the MAC line is valid TOML too).
fn versions(p: &Project, token: &str) -> Vec<(i64, String)> {
    let meta: toml::Value = toml::from_str(&p.read(&format!(".chitty-secrets/tokens/{token}.toml"))).unwrap();
    meta["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["id"].as_integer().unwrap(), v["stage"].as_str().unwrap().to_string()))
        .collect()
}

/// A member's command refused `file` as not a member's: it failed, named
/// the file, and said how to review and accept it.
fn refused_as_not_a_members(out: &Output, file: &str) {
    let said = text(out);
    assert_ne!(code(out), 0, "{said}");
    assert!(said.contains(&format!("{file} was not written by a member of the registry")), "{file}: {said}");
    assert!(
        said.contains(&format!("git log -p -- {file}"))
            && said.contains(&format!("chitty-secrets trust accept {file}")),
        "{file}: the hint: {said}"
    );
}

/// The findings of `check --json` (and its exit code).
fn check_json(p: &Project) -> (i32, Vec<serde_json::Value>) {
    let out = p.run(&["check", "--json"]);
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (code(&out), report["findings"].as_array().unwrap().clone())
}

fn sha256_hex(line: &str) -> String {
    Sha256::digest(line.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Recomputes every `prev` from line `from` on, as anyone can: the hash
/// chain alone proves nothing about who wrote a line.
fn rechain(lines: &mut [String], from: usize) {
    for i in from.max(1)..lines.len() {
        let prev = sha256_hex(&lines[i - 1]);
        let entry: serde_json::Value = serde_json::from_str(&lines[i]).unwrap();
        let old = entry["prev"].as_str().unwrap().to_string();
        lines[i] = lines[i].replacen(&format!("\"prev\":\"{old}\""), &format!("\"prev\":\"{prev}\""), 1);
    }
}

fn audit_lines(p: &Project) -> Vec<String> {
    p.read(".chitty-secrets/audit.log").lines().map(str::to_string).collect()
}

fn write_audit(p: &Project, lines: &[String]) {
    std::fs::write(p.path(".chitty-secrets/audit.log"), lines.iter().map(|l| format!("{l}\n")).collect::<String>())
        .unwrap();
}

/// Attack 1: anyone can encrypt a value file to the members' public keys.
/// A forged file over the current version's (in the authenticated shape
/// with a made-up MAC, or in the format from before authentication) used
/// to be read, printed by `get` and delivered by `sync`. Now every member's
/// command refuses it, `check` reports it, `trust status` lists it, and the
/// forged value goes nowhere.
#[test]
fn a_value_file_forged_with_the_members_public_key_is_refused_everywhere() {
    let p = healthy();
    let recipient = member_recipient(&p);
    let file = p.value_file("SESSION_KEY", 1);
    let shown = rel(&p, &file);
    let id = file.file_stem().unwrap().to_str().unwrap().to_string();
    let genuine = std::fs::read(&file).unwrap();
    let env_before = p.read("app/.env");
    let bogus_mac = format!("e0.{}", "0".repeat(64));
    let forgeries = [
        (
            "a schema-3 body with a made-up MAC",
            format!(
                r#"{{"mac":"{bogus_mac}","body":{{"schema":3,"token":"SESSION_KEY","id":"{id}","version":1,"minted":{{"issuer":"random","issuer_kind":"random","created_at":"2026-01-01T00:00:00Z","origin":"issued"}},"value":"{FORGED}"}}}}"#
            ),
        ),
        (
            "the format before authentication",
            format!(r#"{{"schema":2,"token":"SESSION_KEY","values":{{"1":"{FORGED}"}}}}"#),
        ),
    ];
    for (what, plain) in forgeries {
        age_encrypt(&recipient, &plain, &file);
        let authenticated_shape = plain.starts_with("{\"mac\"");

        // `get` prints nothing and names the file.
        let out = p.run(&["get", "SESSION_KEY"]);
        assert_ne!(code(&out), 0, "{what}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{what}: get printed something");
        assert!(!text(&out).contains(FORGED) && text(&out).contains(&shown), "{what}: {}", text(&out));
        if authenticated_shape {
            refused_as_not_a_members(&out, &shown);
        }

        // `sync` delivers nothing: app/.env keeps the genuine value.
        let out = p.run(&["sync", "SESSION_KEY"]);
        assert_ne!(code(&out), 0, "{what}: {}", text(&out));
        assert!(!text(&out).contains(FORGED) && text(&out).contains(&shown), "{what}: {}", text(&out));
        if authenticated_shape {
            refused_as_not_a_members(&out, &shown);
        }
        assert!(p.read("app/.env") == env_before, "{what}: sync changed app/.env");

        // `run` starts nothing with the forged value in its environment.
        let out = p.run(&["run", "--only", "SESSION_KEY", "--", "sh", "-c", "echo \"started $SESSION_KEY\""]);
        assert_ne!(code(&out), 0, "{what}: {}", text(&out));
        assert!(!text(&out).contains("started") && !text(&out).contains(FORGED), "{what}: {}", text(&out));

        // `check` reports it as an error about SESSION_KEY naming the file.
        let (exit, findings) = check_json(&p);
        assert_eq!(exit, 3, "{what}: {findings:?}");
        let finding = findings
            .iter()
            .find(|f| f["token"] == "SESSION_KEY" && f["severity"] == "error")
            .unwrap_or_else(|| panic!("{what}: no finding about SESSION_KEY: {findings:?}"));
        assert!(finding["message"].as_str().unwrap().contains(&shown), "{what}: {finding}");
        if authenticated_shape {
            assert_eq!(finding["code"], "not-a-members-change", "{what}: {finding}");
        }
        assert!(!format!("{findings:?}").contains(FORGED), "{what}: check printed the forged value");

        // `trust status` lists the file and exits 3.
        let out = p.run(&["trust", "status"]);
        assert_eq!(code(&out), 3, "{what}: {}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains(&shown), "{what}: {}", text(&out));

        std::fs::write(&file, &genuine).unwrap();
    }
    // The genuine file is a member's again: the refusals were the forgery's.
    assert!(p.ok(&["trust", "status"]).contains("every file is a member's"));
    let value = p.ok(&["get", "SESSION_KEY"]);
    assert!(env_value(&p.path("app/.env"), "SESSION_KEY").as_deref() == Some(value.trim_end()));
}

/// Attack 2: the recipients file is plain text. A key appended to it (or
/// put in place of the members') used to receive every value the next
/// `rotate` encrypted. Now the recipients' MAC fails, `rotate` refuses
/// before minting, and the registry is byte for byte as it was.
#[test]
fn a_recipient_added_or_swapped_in_by_hand_gets_nothing_from_rotate() {
    let p = healthy();
    let (_, mallory) = stranger(&p, "mallory");
    let genuine = p.read(".chitty-secrets/recipients");
    for (what, forged) in [
        ("appended", format!("{genuine}# mallory\n{mallory}\n")),
        ("replaced", format!("# age recipients: every key here can read every value.\n# mallory\n{mallory}\n")),
    ] {
        std::fs::write(p.path(".chitty-secrets/recipients"), &forged).unwrap();
        let before = snapshot(&p.path(".chitty-secrets"));
        let out = p.run(&["rotate", "SESSION_KEY"]);
        refused_as_not_a_members(&out, ".chitty-secrets/recipients");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("minted"), "{what}: {}", text(&out));
        assert_eq!(versions(&p, "SESSION_KEY"), [(1, "current".to_string())], "{what}: a version was minted");
        assert!(snapshot(&p.path(".chitty-secrets")) == before, "{what}: rotate wrote to the registry");
        // Nor does a manual token's `set` encrypt a value to the new key.
        let out = p.run_with_stdin(&["set", "VENDOR_API_KEY"], "vendor_key_fedcba9876543210\n");
        refused_as_not_a_members(&out, ".chitty-secrets/recipients");
        assert!(snapshot(&p.path(".chitty-secrets")) == before, "{what}: set wrote to the registry");
    }
    std::fs::write(p.path(".chitty-secrets/recipients"), &genuine).unwrap();
    p.ok(&["rotate", "SESSION_KEY"]);
}

/// Attack 3a: the metadata says which version is current. Swapping the
/// stages made `sync` deliver a retired value (one a removed member or a
/// leak may know). Now `sync` and `get` refuse the edited file and the
/// current value stays delivered.
#[test]
fn a_retired_version_made_current_by_hand_is_not_delivered() {
    let p = healthy();
    let v1 = env_value(&p.path("app/.env"), "SESSION_KEY").unwrap();
    p.ok(&["rotate", "SESSION_KEY"]);
    let v2 = env_value(&p.path("app/.env"), "SESSION_KEY").unwrap();
    assert!(v1 != v2);
    assert_eq!(versions(&p, "SESSION_KEY"), [(1, "retired".to_string()), (2, "current".to_string())]);

    let meta = ".chitty-secrets/tokens/SESSION_KEY.toml";
    let swapped = p
        .read(meta)
        .replace("stage = \"retired\"", "stage = \"SWAP\"")
        .replace("stage = \"current\"", "stage = \"retired\"")
        .replace("stage = \"SWAP\"", "stage = \"current\"");
    std::fs::write(p.path(meta), swapped).unwrap();
    assert_eq!(versions(&p, "SESSION_KEY"), [(1, "current".to_string()), (2, "retired".to_string())]);

    refused_as_not_a_members(&p.run(&["sync", "SESSION_KEY"]), meta);
    let delivered = env_value(&p.path("app/.env"), "SESSION_KEY").unwrap();
    assert!(delivered == v2 && delivered != v1, "sync delivered the retired value");
    let out = p.run(&["get", "SESSION_KEY"]);
    refused_as_not_a_members(&out, meta);
    assert!(out.stdout.is_empty(), "get printed a value");
    // `rotate` neither: it would retire v2 and record v1 as what it replaced.
    refused_as_not_a_members(&p.run(&["rotate", "SESSION_KEY"]), meta);
}

/// Attack 3b: a version's `token_id` is what `rotate` revokes at the
/// issuer. Pointed at someone else's token, it made the next rotation
/// revoke that token. Now `rotate` refuses the edited metadata before it
/// calls the issuer at all: nothing minted, nothing revoked.
#[test]
fn a_token_id_redirected_by_hand_revokes_nothing_and_mints_nothing() {
    let p = Project::new("");
    let issuer = counting_command_issuer(&p);
    std::fs::write(
        p.path("policies/main.toml"),
        format!(
            "{issuer}\
             [tokens.SVC_TOKEN]\nissuer = \"cmd\"\n[[tokens.SVC_TOKEN.targets]]\nkind = \"dotenv\"\npath = \"app/.env\"\n",
        ),
    )
    .unwrap();
    p.ok(&["init"]);
    p.ok(&["rotate", "SVC_TOKEN"]);
    p.ok(&["rotate", "SVC_TOKEN"]);
    // The second rotation revoked v1, by its id: the issuer's state so far.
    assert_eq!(p.read("minted"), "2\n");
    assert_eq!(p.read("revoked"), "id-1\n");

    let meta = ".chitty-secrets/tokens/SVC_TOKEN.toml";
    let redirected = p.read(meta).replace("token_id = \"id-2\"", "token_id = \"someone-elses-prod-token\"");
    assert!(redirected.contains("someone-elses-prod-token"));
    std::fs::write(p.path(meta), redirected).unwrap();
    let before = snapshot(&p.path(".chitty-secrets"));
    let out = p.run(&["rotate", "SVC_TOKEN"]);
    refused_as_not_a_members(&out, meta);
    assert_eq!(p.read("minted"), "2\n", "the issuer was asked to mint");
    assert_eq!(p.read("revoked"), "id-1\n", "the issuer was asked to revoke");
    assert!(snapshot(&p.path(".chitty-secrets")) == before, "rotate wrote to the registry");
}

/// Attack 3c: pushing `expires_at` 50 years out hid an expiring token
/// from `check`. A member's `check` now fails on the file with
/// `not-a-members-change`; without an identity the edit cannot be seen,
/// and `check` (and `status`) say the registry was read unverified.
#[test]
fn an_expiry_pushed_out_by_hand_fails_a_members_check() {
    let p = healthy();
    let meta = ".chitty-secrets/tokens/CHITTY_ID_TOKEN.toml";
    let original = p.read(meta);
    let parsed: toml::Value = toml::from_str(&original).unwrap();
    let expires = parsed["versions"][0]["expires_at"].as_str().expect("a ttl gives an expiry").to_string();
    let at: chrono::DateTime<chrono::Utc> = expires.parse().unwrap();
    let later = (at + chrono::TimeDelta::days(50 * 365)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    std::fs::write(p.path(meta), original.replace(&expires, &later)).unwrap();

    let (exit, findings) = check_json(&p);
    assert_eq!(exit, 3, "{findings:?}");
    let finding = findings
        .iter()
        .find(|f| f["code"] == "not-a-members-change")
        .unwrap_or_else(|| panic!("no not-a-members-change: {findings:?}"));
    assert_eq!(finding["token"], "CHITTY_ID_TOKEN", "{finding}");
    assert_eq!(finding["severity"], "error", "{finding}");
    assert!(finding["message"].as_str().unwrap().contains(meta), "{finding}");
    assert!(finding["hint"].as_str().unwrap().contains(&format!("trust accept {meta}")), "{finding}");
    let out = p.run(&["check"]);
    assert_eq!(code(&out), 3, "{}", text(&out));

    // Without a member's identity the files are read as they are, and the
    // reader is told so: an info finding, and a note from `status`.
    std::fs::rename(p.identity_file(), p.path("away.key")).unwrap();
    let (_, findings) = check_json(&p);
    let note = findings
        .iter()
        .find(|f| f["code"] == "authenticity-not-verified")
        .unwrap_or_else(|| panic!("no authenticity-not-verified: {findings:?}"));
    assert_eq!(note["severity"], "info", "{note}");
    assert!(!findings.iter().any(|f| f["code"] == "not-a-members-change"), "{findings:?}");
    let out = p.run(&["status"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("authenticity not verified"), "{}", text(&out));
    std::fs::rename(p.path("away.key"), p.identity_file()).unwrap();
}

/// Attack 4: the audit log's hash chain is public arithmetic: a line
/// edited and every later `prev` recomputed used to pass `audit verify`.
/// Now each line carries a MAC: an edited line (and every one after it)
/// is "not written by a member", a log stripped of its MACs is refused
/// too, and a member who has reviewed the log can accept it as it is.
#[test]
fn a_rewritten_audit_log_fails_verify_until_a_member_accepts_it() {
    let p = healthy();
    let genuine = audit_lines(&p);
    assert!(genuine.len() >= 5, "{genuine:?}");
    assert!(p.ok(&["audit", "verify"]).contains("every line a member's"));
    let actor =
        |line: &str| serde_json::from_str::<serde_json::Value>(line).unwrap()["actor"].as_str().unwrap().to_string();
    let forge =
        |line: &str| line.replacen(&format!("\"actor\":\"{}\"", actor(line)), "\"actor\":\"mallory@example.com\"", 1);

    // The third line's actor changed, the chain recomputed after it.
    let mut edited = genuine.clone();
    edited[2] = forge(&edited[2]);
    rechain(&mut edited, 3);
    write_audit(&p, &edited);
    // Without the key only the chain is checked, and it holds: this is a
    // forgery the old `audit verify` passed.
    std::fs::rename(p.identity_file(), p.path("away.key")).unwrap();
    let out = p.run(&["audit", "verify"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("authenticity not verified"), "{}", text(&out));
    std::fs::rename(p.path("away.key"), p.identity_file()).unwrap();
    let out = p.run(&["audit", "verify"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains(".chitty-secrets/audit.log:3: was not written by a member"), "{said}");
    assert!(
        !said.contains("audit.log:1:") && !said.contains("audit.log:2:"),
        "the untouched lines are a member's: {said}"
    );

    // Every MAC stripped, and the chain recomputed: no line is a member's.
    let strip = |line: &str| format!("{}}}", &line[..line.rfind(",\"mac\":\"").expect("a MAC")]);
    let mut stripped: Vec<String> = genuine.iter().map(|l| strip(l)).collect();
    stripped[2] = forge(&stripped[2]);
    rechain(&mut stripped, 1);
    write_audit(&p, &stripped);
    let out = p.run(&["audit", "verify"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("no line of the log carries a MAC"), "{}", text(&out));

    // MACs stripped from the lines after the first few only.
    let mut tail: Vec<String> = genuine.clone();
    for line in tail.iter_mut().skip(3) {
        *line = strip(line);
    }
    tail[3] = forge(&tail[3]);
    rechain(&mut tail, 3);
    write_audit(&p, &tail);
    let out = p.run(&["audit", "verify"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("audit.log:4: carries no MAC after lines that do"), "{}", text(&out));

    // A member reviews the edited log and accepts it: one audited line
    // fixes the log before it by hash, and the log verifies again.
    write_audit(&p, &edited);
    let out = p.ok(&["trust", "accept", ".chitty-secrets/audit.log"]);
    assert!(out.contains("accepted the audit log as it is"), "{out}");
    let after = audit_lines(&p);
    assert_eq!(after.len(), edited.len() + 1);
    assert_eq!(after[..edited.len()], edited[..], "the accepted lines are kept as they are");
    let last: serde_json::Value = serde_json::from_str(after.last().unwrap()).unwrap();
    assert_eq!(last["event"], "trust.accept", "{last}");
    let out = p.run(&["audit", "verify"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    // It says which lines a member vouched for rather than checked.
    assert!(text(&out).contains("were vouched for by a member after review"), "{}", text(&out));
    // And the next writer carries on from the accepted log.
    p.ok(&["rotate", "SESSION_KEY"]);
    assert_eq!(code(&p.run(&["audit", "verify"])), 0);
}

/// Attack 5: a removed member keeps copies of files MACed while they were
/// a member (and the key of that epoch). Restoring one, here a metadata
/// file naming a value they know as current, used to be taken as a
/// member's. `keys remove` now starts a new epoch and MACs every file
/// again: the old copy is refused as under a retired key, and the removed
/// identity reads nothing.
#[test]
fn a_removed_members_old_copy_of_a_file_is_refused() {
    let p = healthy();
    let (bob, bob_pub) = stranger(&p, "bob");
    p.ok(&["keys", "add", &bob_pub, "--name", "bob"]);
    let out = p.run(&["--identity", &bob, "get", "SESSION_KEY"]);
    assert_eq!(code(&out), 0, "bob is a member: {}", text(&out));
    let meta = ".chitty-secrets/tokens/SESSION_KEY.toml";
    let bobs_copy = p.read(meta);
    assert!(bobs_copy.starts_with("mac = \"e0."), "MACed at epoch 0");
    let v1 = env_value(&p.path("app/.env"), "SESSION_KEY").unwrap();

    p.ok(&["rotate", "SESSION_KEY"]);
    p.ok(&["keys", "remove", &bob_pub]);
    assert!(p.read(meta).starts_with("mac = \"e1."), "keys remove MACs every file at a new epoch");
    let v2 = env_value(&p.path("app/.env"), "SESSION_KEY").unwrap();

    std::fs::write(p.path(meta), &bobs_copy).unwrap();
    assert_eq!(versions(&p, "SESSION_KEY"), [(1, "current".to_string())]);
    for args in [&["sync", "SESSION_KEY"][..], &["get", "SESSION_KEY"], &["rotate", "SESSION_KEY"]] {
        let out = p.run(args);
        refused_as_not_a_members(&out, meta);
        assert!(
            text(&out).contains("under the registry key of epoch 0, retired when a member was removed"),
            "{args:?}: {}",
            text(&out)
        );
        if args[0] == "get" {
            assert!(out.stdout.is_empty(), "get printed a value");
        }
    }
    let delivered = env_value(&p.path("app/.env"), "SESSION_KEY").unwrap();
    assert!(delivered == v2 && delivered != v1, "sync delivered the value bob's copy names");
    let out = p.run(&["trust", "status"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("epoch 0, retired"), "{}", text(&out));

    // Bob's identity opens nothing, with his copy in place or not.
    for token in ["SESSION_KEY", "CHITTY_ID_TOKEN"] {
        let out = p.run(&["--identity", &bob, "get", token]);
        assert_ne!(code(&out), 0, "{token}: {}", text(&out));
        assert!(out.stdout.is_empty(), "{token}: bob got a value");
    }
}

/// Attack 6: anyone can encrypt a new key file to the members, with a key
/// of their own, and MAC forged files under it. A machine remembers the
/// registry it knew: the new key file is "not this registry's key", and a
/// listed member it is not encrypted to gets the same. After `trust
/// forget` the machine would learn a new key, but every file still fails
/// its MAC under it: nothing is read.
#[test]
fn a_replaced_key_file_is_not_this_registrys_key() {
    let p = healthy();
    let key = p.path(".chitty-secrets/key.age");
    let genuine = std::fs::read(&key).unwrap();
    let forged_key = format!(r#"{{"schema":1,"keys":["{}"]}}"#, "ab".repeat(32));
    age_encrypt(&member_recipient(&p), &forged_key, &key);
    for args in [&["status"][..], &["get", "SESSION_KEY"]] {
        let out = p.run(args);
        let said = text(&out);
        assert_eq!(code(&out), 1, "{args:?}: {said}");
        assert!(out.stdout.is_empty(), "{args:?}: {said}");
        assert!(said.contains(".chitty-secrets/key.age is not this registry's key"), "{args:?}: {said}");
        assert!(said.contains("trust forget"), "{args:?}: {said}");
    }

    // A key file encrypted to someone else: the member listed in the
    // recipients file cannot open it, which is the same attack.
    let (_, mallory) = stranger(&p, "mallory");
    age_encrypt(&mallory, &forged_key, &key);
    let out = p.run(&["get", "SESSION_KEY"]);
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out).contains("is not this registry's key") && text(&out).contains("not encrypted to your key"),
        "{}",
        text(&out)
    );

    // The machine forgets its pin; the forged key then unlocks, but no
    // file was MACed under it.
    age_encrypt(&member_recipient(&p), &forged_key, &key);
    assert!(p.ok(&["trust", "forget"]).contains("forgot the registry key"));
    let out = p.run(&["get", "SESSION_KEY"]);
    refused_as_not_a_members(&out, ".chitty-secrets/recipients");
    assert!(out.stdout.is_empty(), "get printed a value");
    let env_before = p.read("app/.env");
    refused_as_not_a_members(&p.run(&["sync", "SESSION_KEY"]), ".chitty-secrets/recipients");
    assert!(p.read("app/.env") == env_before, "sync changed app/.env");

    // The genuine key file back (and the pin forgotten again, whatever the
    // machine learned meanwhile): the registry reads as before.
    std::fs::write(&key, &genuine).unwrap();
    p.ok(&["trust", "forget"]);
    let value = p.ok(&["get", "SESSION_KEY"]);
    assert!(env_value(&p.path("app/.env"), "SESSION_KEY").as_deref() == Some(value.trim_end()));
}

/// Attack 7's remedy: a change a member made by hand (here the expiry
/// corrected to what the issuer says) is refused like any other until a
/// member, having reviewed it, accepts it; `trust accept` MACs the file
/// and says so in the audit log, and the commands work again.
#[test]
fn trust_accept_after_review_makes_a_hand_edit_a_members_and_audits_it() {
    let p = healthy();
    let meta = ".chitty-secrets/tokens/CHITTY_ID_TOKEN.toml";
    let original = p.read(meta);
    let parsed: toml::Value = toml::from_str(&original).unwrap();
    let expires = parsed["versions"][0]["expires_at"].as_str().unwrap().to_string();
    let at: chrono::DateTime<chrono::Utc> = expires.parse().unwrap();
    let earlier = (at - chrono::TimeDelta::days(1)).to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    std::fs::write(p.path(meta), original.replace(&expires, &earlier)).unwrap();
    refused_as_not_a_members(&p.run(&["sync", "CHITTY_ID_TOKEN"]), meta);
    let out = p.run(&["trust", "status"]);
    assert_eq!(code(&out), 3, "{}", text(&out));

    let lines_before = audit_lines(&p).len();
    let out = p.ok(&["trust", "accept", meta]);
    assert!(out.contains("accepted the metadata of CHITTY_ID_TOKEN"), "{out}");
    let accepted: toml::Value = toml::from_str(&p.read(meta)).unwrap();
    let kept: chrono::DateTime<chrono::Utc> = accepted["versions"][0]["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(kept, at - chrono::TimeDelta::days(1), "the reviewed content is what was accepted");

    p.ok(&["sync", "CHITTY_ID_TOKEN"]);
    p.ok(&["get", "CHITTY_ID_TOKEN"]);
    assert_eq!(code(&p.run(&["check"])), 0);
    assert!(p.ok(&["trust", "status"]).contains("every file is a member's"));
    let lines = audit_lines(&p);
    assert_eq!(lines.len(), lines_before + 1, "one audit line: the acceptance");
    let last: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(last["event"], "trust.accept", "{last}");
    assert!(last["detail"].as_str().unwrap().contains("tokens/CHITTY_ID_TOKEN.toml"), "{last}");
    assert!(p.ok(&["audit", "verify"]).contains("every line a member's"));
}

/// An older metadata file a member really wrote, put back by anyone who
/// can push (its MAC holds: it is a replay, not a forgery). The newer
/// value's file is still there and no metadata names it: the next member's
/// write records it as current again, every target gets it, and the
/// older value is never delivered.
#[test]
fn an_older_metadata_file_put_back_does_not_bring_its_value_back() {
    let p = healthy();
    let meta = ".chitty-secrets/tokens/SESSION_KEY.toml";
    let old = p.read(meta);
    let v1 = env_value(&p.path("app/.env"), "SESSION_KEY").unwrap();
    p.ok(&["rotate", "SESSION_KEY"]);
    let v2 = env_value(&p.path("app/.env"), "SESSION_KEY").unwrap();
    assert_ne!(v1, v2);
    std::fs::write(p.path(meta), &old).unwrap();
    let out = p.run(&["check", "--json"]);
    assert!(text(&out).contains("untracked-value"), "{}", text(&out));
    let out = p.ok(&["sync", "SESSION_KEY"]);
    assert!(out.contains("recorded as v2, current"), "{out}");
    assert_eq!(env_value(&p.path("app/.env"), "SESSION_KEY").unwrap(), v2, "the newer value stays delivered");
    assert_eq!(p.ok(&["get", "SESSION_KEY"]).trim_end(), v2);
    let out = p.run(&["check"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
}

/// A removed member puts back the whole registry from before their
/// removal, on a runner that remembers nothing (CI). With the full pin in
/// CHITTY_SECRETS_REGISTRY_ID (`trust pin`, set again after the removal),
/// the older epoch's key file is refused before anything is minted for it.
#[test]
fn a_whole_registry_from_before_a_removal_is_refused_where_ci_pins_the_epoch() {
    let p = healthy();
    let (bob, bob_pub) = stranger(&p, "bob");
    p.ok(&["keys", "add", &bob_pub, "--name", "bob"]);
    let before = snapshot(&p.path(".chitty-secrets"));
    p.ok(&["keys", "remove", &bob_pub]);
    let pin = p.ok(&["trust", "pin"]).trim_end().to_string();
    assert!(pin.contains(".e1."), "{pin}");
    for (path, bytes) in &before {
        std::fs::write(path, bytes).unwrap();
    }
    // A fresh runner: no memory of the registry, the pin from its secret.
    std::fs::remove_file(p.path("config/chitty-secrets/registries.toml")).unwrap();
    let out = p.command(&["rotate", "SESSION_KEY"]).env("CHITTY_SECRETS_REGISTRY_ID", &pin).output().unwrap();
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("is not this registry's key") && text(&out).contains("epoch"), "{}", text(&out));
    let out = p.run(&["--identity", &bob, "get", "SESSION_KEY"]);
    assert_eq!(code(&out), 0, "bob's copy is readable by bob, but nothing new was written to it");
}

/// The MAC a member's key makes, as `src/registry/auth.rs` computes it:
/// what a removed member who kept the old key can still compute.
fn mac_under(key_hex: &str, epoch: u32, kind: &str, name: &str, bytes: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let key: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&key_hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
    for part in [kind.as_bytes(), name.as_bytes(), bytes] {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    let tag: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("e{epoch}.{tag}")
}

/// The registry keys in `key.age`, as an identity that can open it sees them.
fn keys_seen_by(p: &Project, identity: &str) -> Vec<String> {
    let out = Command::new("age").args(["-d", "-i", identity]).arg(p.path(".chitty-secrets/key.age")).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    json["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect()
}

/// A review found that a recipients change (`keys add`) re-signed every
/// file it found under an older epoch's key — so a removed member's
/// forgery, refused by every command, became a member's at the next
/// `keys add`. A change now checks every file under the key of now first,
/// and refuses while one is not a member's.
#[test]
fn a_recipients_change_never_re_signs_a_removed_members_forgery() {
    let p = healthy();
    let (bob, bob_pub) = stranger(&p, "bob");
    p.ok(&["keys", "add", &bob_pub, "--name", "bob"]);
    let old_key = keys_seen_by(&p, &bob)[0].clone();
    p.ok(&["keys", "remove", &bob_pub]);
    // Bob forges metadata under the epoch-0 key he kept.
    let meta = ".chitty-secrets/tokens/SESSION_KEY.toml";
    let body = p.read(meta).split_once('\n').unwrap().1.replacen("stage = \"current\"", "stage = \"previous\"", 1);
    let forged = format!("mac = \"{}\"\n{body}", mac_under(&old_key, 0, "meta", "SESSION_KEY", body.as_bytes()));
    std::fs::write(p.path(meta), &forged).unwrap();
    refused_as_not_a_members(&p.run(&["sync"]), meta);
    let (_, carol) = stranger(&p, "carol");
    let out = p.run(&["keys", "add", &carol, "--name", "carol"]);
    assert_ne!(code(&out), 0, "the change went on over a forged file: {}", text(&out));
    assert!(text(&out).contains("SESSION_KEY.toml") && text(&out).contains("reviewed"), "{}", text(&out));
    assert_eq!(p.read(meta), forged, "the forgery was not re-signed");
    refused_as_not_a_members(&p.run(&["sync"]), meta);
}

/// A review found that with the key file gone (or one nobody here can
/// open), a member's `rotate` ran on unchecked metadata and revoked a
/// token id an attacker named before failing to save. A run that writes
/// now needs the registry unlocked, and a machine that knew the registry
/// takes a missing key file for a replaced one; `upgrade` will not make a
/// new key for it either.
#[test]
fn without_its_key_file_a_known_registry_is_refused_and_not_upgraded() {
    let p = healthy();
    std::fs::remove_file(p.path(".chitty-secrets/key.age")).unwrap();
    for args in [&["rotate", "--due"][..], &["sync"], &["get", "SESSION_KEY"]] {
        let out = p.run(args);
        assert_ne!(code(&out), 0, "{args:?}: {}", text(&out));
        assert!(text(&out).contains("is not this registry's key"), "{args:?}: {}", text(&out));
    }
    let out = p.run(&["upgrade"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(!p.path(".chitty-secrets/key.age").exists(), "upgrade made a new key");
}

/// A review found that a member's audit line, copied, passed `audit
/// verify` as a second event.
#[test]
fn a_copied_audit_line_is_refused() {
    let p = healthy();
    let mut lines = audit_lines(&p);
    let copy = lines.last().unwrap().clone();
    lines.push(copy);
    write_audit(&p, &lines);
    let out = p.run(&["audit", "verify"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("repeats an earlier line"), "{}", text(&out));
}

/// A review found that the marker of a finished recipients change, put
/// back, was taken for a change under way. It names the change's nonce,
/// which the key file keeps only while the change is under way.
#[test]
fn a_finished_changes_marker_put_back_is_not_a_change_under_way() {
    let p = healthy();
    let (_, bob_pub) = stranger(&p, "bob");
    p.ok(&["keys", "add", &bob_pub, "--name", "bob"]);
    let out = p
        .command(&["keys", "remove", &bob_pub])
        .env("CHITTY_SECRETS_CRASH_AT", "rekey-after-first-file")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), None, "{}", text(&out));
    let marker = p.read(".chitty-secrets/rekey-pending");
    p.ok(&["keys", "rekey"]);
    std::fs::write(p.path(".chitty-secrets/rekey-pending"), &marker).unwrap();
    p.ok(&["get", "SESSION_KEY"]);
    let out = p.run(&["keys", "rekey"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("not the marker of a change"), "{}", text(&out));
}

/// A review found that an older metadata file a member really wrote, put
/// back with the newer value's file deleted, made a value that was
/// retired current again, and `sync` delivered it. The audit log (whose
/// lines only members can write) names the value file of every version
/// it ends: such a version is never delivered again.
#[test]
fn an_older_metadata_file_put_back_never_brings_an_ended_value_back() {
    let p = healthy();
    let meta = ".chitty-secrets/tokens/SESSION_KEY.toml";
    let old = p.read(meta);
    let v1 = env_value(&p.path("app/.env"), "SESSION_KEY").unwrap();
    p.ok(&["rotate", "--emergency", "SESSION_KEY"]);
    let v2 = env_value(&p.path("app/.env"), "SESSION_KEY").unwrap();
    assert_ne!(v1, v2);
    let newest = p.value_file("SESSION_KEY", 2);
    std::fs::write(p.path(meta), &old).unwrap();
    std::fs::remove_file(newest).unwrap();
    let out = p.run(&["sync", "SESSION_KEY"]);
    assert_ne!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("the audit log says its value was revoked or retired"), "{}", text(&out));
    assert_eq!(env_value(&p.path("app/.env"), "SESSION_KEY").unwrap(), v2, "the ended value was delivered");
    // A member's check says so too, naming the file.
    let (code, findings) = check_json(&p);
    assert_eq!(code, 3);
    assert!(
        findings
            .iter()
            .any(|f| f["code"] == "ended-value-live"
                && f["file"].as_str().is_some_and(|f| f.ends_with("SESSION_KEY.toml"))),
        "{findings:?}"
    );
}
