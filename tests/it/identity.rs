use std::process::Command;

use age::secrecy::ExposeSecret;

use crate::common::*;

#[test]
fn init_adopts_an_identity_from_the_environment() {
    let p = Project::new(LOCAL_POLICY);
    let key = age::x25519::Identity::generate();
    let secret = key.to_string().expose_secret().to_string();
    let out = p.command(&["init"]).env("CHITTY_SECRETS_IDENTITY", &secret).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("adopted the identity from $CHITTY_SECRETS_IDENTITY"), "{stdout}");
    assert!(stdout.contains(&key.to_public().to_string()), "{stdout}");
    assert!(!text(&out).contains(&secret), "the key was printed");
    assert!(!p.identity_file().exists(), "init wrote a second identity");
    assert!(p.read(".chitty-secrets/recipients").contains(&key.to_public().to_string()));

    let out = p.command(&["rotate", "SESSION_KEY"]).env("CHITTY_SECRETS_IDENTITY", &secret).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    // A second init with the same key changes nothing in the recipients.
    let before = p.read(".chitty-secrets/recipients");
    let out = p.command(&["init"]).env("CHITTY_SECRETS_IDENTITY", &secret).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("already a recipient"));
    assert_eq!(before, p.read(".chitty-secrets/recipients"));
}

#[test]
fn identity_flag_and_file_variable_are_honoured() {
    let p = Project::initialised(LOCAL_POLICY);
    p.ok(&["rotate", "SESSION_KEY"]);
    let moved = p.path("moved-identity.txt");
    std::fs::rename(p.identity_file(), &moved).unwrap();
    assert_eq!(code(&p.run(&["get", "SESSION_KEY"])), 1);
    p.ok(&["--identity", moved.to_str().unwrap(), "get", "SESSION_KEY"]);
    let out = p.command(&["get", "SESSION_KEY"]).env("CHITTY_SECRETS_IDENTITY_FILE", &moved).output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));
    // A stranger's key is not a recipient: a clear error, with what to do.
    let stranger = p.path("stranger.txt");
    std::fs::write(&stranger, age::x25519::Identity::generate().to_string().expose_secret()).unwrap();
    let out = p.run(&["--identity", stranger.to_str().unwrap(), "get", "SESSION_KEY"]);
    assert_eq!(code(&out), 1);
    assert!(text(&out).contains("keys add"), "{}", text(&out));
}

/// The real kernel keyring, inside a private session keyring (`keyctl
/// session -` from keyutils) so nothing outlives the test.
#[test]
fn init_stores_the_identity_in_the_kernel_keyring_when_there_is_one() {
    let p = Project::new(LOCAL_POLICY);
    let service = format!("chitty-secrets-test-{}", std::process::id());
    let script = format!("{bin} init --keyring && {bin} rotate SESSION_KEY && {bin} get SESSION_KEY", bin = BIN);
    let out = Command::new("keyctl")
        .args(["session", "-", "sh", "-c", &script])
        .current_dir(p.dir.path())
        .env("HOME", p.path("home"))
        .env("XDG_CONFIG_HOME", p.path("config"))
        .env("CHITTY_SECRETS_KEYRING_SERVICE", &service)
        .env_remove("CHITTY_SECRETS_NO_KEYRING")
        .env_remove("CHITTY_SECRETS_IDENTITY")
        .output()
        .expect("keyctl (Debian keyutils) is installed");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .contains(&format!("stored it in the OS keyring (service `{service}`); this keyring is cleared at reboot")),
        "{stdout}"
    );
    assert!(!p.identity_file().exists(), "with a keyring, no identity file is written");
    let value = stdout.lines().last().unwrap();
    assert_eq!(env_value(&p.path("app/.env"), "SESSION_KEY").as_deref(), Some(value));

    // The entry is linked to the user's persistent keyring too: remove it.
    let purge = format!("keyctl get_persistent @s >/dev/null; keyctl purge -s user keyring-rs:age-identity@{service}");
    let out = Command::new("keyctl").args(["session", "-", "sh", "-c", &purge]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("purged 1 keys"), "{}", text(&out));

    // Without --keyring, a keyring that is cleared at reboot is not trusted
    // with the only copy of the key: init writes the file.
    let q = Project::new(LOCAL_POLICY);
    let out = Command::new("keyctl")
        .args(["session", "-", BIN, "init"])
        .current_dir(q.dir.path())
        .env("HOME", q.path("home"))
        .env("XDG_CONFIG_HOME", q.path("config"))
        .env("CHITTY_SECRETS_KEYRING_SERVICE", &service)
        .env_remove("CHITTY_SECRETS_NO_KEYRING")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no durable OS keyring here"), "{}", text(&out));
    assert!(q.identity_file().exists());
}
