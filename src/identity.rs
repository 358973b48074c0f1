//! Where the age identity (the one key that unlocks the registry) comes from.
//!
//! Resolution order: `--identity FILE` → `CHITTY_SECRETS_IDENTITY` (the key
//! text, for CI) → `CHITTY_SECRETS_IDENTITY_FILE` → the OS keyring → an
//! identity file in the user's config dir. Headless Linux and CI usually have
//! no keyring: that is the normal case, not an error.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::env_vars;
use crate::fsutil;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(PathBuf),
    EnvKey,
    EnvFile(PathBuf),
    Keyring { service: String },
    ConfigFile(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(p) => write!(f, "--identity {}", p.display()),
            Source::EnvKey => write!(f, "${}", env_vars::IDENTITY),
            Source::EnvFile(p) => write!(f, "${} ({})", env_vars::IDENTITY_FILE, p.display()),
            Source::Keyring { service } => write!(f, "the OS keyring (service `{service}`)"),
            Source::ConfigFile(p) => write!(f, "{}", p.display()),
        }
    }
}

/// An age X25519 identity and where it came from. No `Debug`: it is a key.
pub struct Identity {
    pub key: age::x25519::Identity,
    pub source: Source,
}

impl Identity {
    pub fn recipient(&self) -> age::x25519::Recipient {
        self.key.to_public()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("no identity: none given with --identity, ${}, ${}, the OS keyring or {}", env_vars::IDENTITY, env_vars::IDENTITY_FILE, config_file().display())]
    NotFound,
    #[error("{source_desc}: {why}")]
    Invalid { source_desc: String, why: String },
    #[error("cannot write the identity file {path}: {error}")]
    Write { path: PathBuf, error: std::io::Error },
}

impl IdentityError {
    pub fn hint(&self) -> crate::error::Hint {
        crate::error::Hint::new(self.hint_text())
    }

    fn hint_text(&self) -> &'static str {
        match self {
            IdentityError::NotFound => {
                "run `chitty-secrets init` to create one, or set CHITTY_SECRETS_IDENTITY (CI) / pass --identity FILE"
            }
            IdentityError::Invalid { .. } => {
                "an identity is an age secret key (a line starting AGE-SECRET-KEY-1), as `age-keygen` or `chitty-secrets init` writes it"
            }
            IdentityError::Write { .. } => "check that the config directory is writable, or pass --identity FILE",
        }
    }
}

/// The configured identity, or `None` when nothing is configured anywhere.
pub fn resolve(flag: Option<&Path>) -> Result<Option<Identity>, IdentityError> {
    if let Some(path) = flag {
        return from_file(path, Source::Flag(path.to_path_buf())).map(Some);
    }
    if let Some(text) = std::env::var_os(env_vars::IDENTITY) {
        let text = Zeroizing::new(text.to_string_lossy().into_owned());
        return parse(&text, Source::EnvKey).map(Some);
    }
    if let Some(path) = std::env::var_os(env_vars::IDENTITY_FILE) {
        let path = PathBuf::from(path);
        return from_file(&path, Source::EnvFile(path.clone())).map(Some);
    }
    if let Some(text) = keyring_get() {
        return parse(&text, Source::Keyring { service: keyring_service() }).map(Some);
    }
    let file = config_file();
    if file.exists() {
        return from_file(&file, Source::ConfigFile(file.clone())).map(Some);
    }
    Ok(None)
}

/// Like [`resolve`], but an identity is required.
pub fn require(flag: Option<&Path>) -> Result<Identity, IdentityError> {
    resolve(flag)?.ok_or(IdentityError::NotFound)
}

/// Whether the user named an identity explicitly (flag or environment), so
/// `init` adopts it rather than storing a new one.
pub fn is_explicit(flag: Option<&Path>) -> bool {
    flag.is_some()
        || std::env::var_os(env_vars::IDENTITY).is_some()
        || std::env::var_os(env_vars::IDENTITY_FILE).is_some()
}

/// Where `init` may keep a new identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The OS keyring when it keeps entries until they are deleted (macOS
    /// Keychain, Windows Credential Manager); the config-dir file otherwise.
    Durable,
    /// The OS keyring even if it is cleared at reboot (Linux's kernel
    /// keyring): asked for explicitly with `init --keyring`.
    Keyring,
}

/// Whether the OS keyring keeps entries until they are deleted. The Linux
/// kernel keyring is cleared at reboot: the only copy of the registry's key
/// must not live there unasked.
pub fn keyring_is_durable() -> bool {
    matches!(
        keyring::default::default_credential_builder().persistence(),
        keyring::credential::CredentialPersistence::UntilDelete
    )
}

/// Makes a new identity and stores it: in the OS keyring when `store`
/// allows and it works (written, then read back to be sure), otherwise in
/// the config-dir file.
pub fn create_and_store(store: Store) -> Result<Identity, IdentityError> {
    let key = age::x25519::Identity::generate();
    let text = Zeroizing::new(key.to_string().expose_secret().to_string());
    let use_keyring = store == Store::Keyring || keyring_is_durable();
    if use_keyring && keyring_set(&text) {
        return Ok(Identity { key, source: Source::Keyring { service: keyring_service() } });
    }
    let path = config_file();
    let file_text = Zeroizing::new(format!(
        "# created by chitty-secrets: {}\n# public key: {}\n{}\n",
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        key.to_public(),
        text.as_str()
    ));
    let write = |path: &Path| -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            fsutil::create_private_dir(dir)?;
        }
        fsutil::write_atomic(path, file_text.as_bytes())
    };
    write(&path).map_err(|error| IdentityError::Write { path: path.clone(), error })?;
    Ok(Identity { key, source: Source::ConfigFile(path) })
}

impl Identity {
    /// The file the key was read from, if it came from one.
    pub fn file(&self) -> Option<&Path> {
        match &self.source {
            Source::Flag(p) | Source::EnvFile(p) | Source::ConfigFile(p) => Some(p),
            Source::EnvKey | Source::Keyring { .. } => None,
        }
    }

    /// A warning when the key's file is readable by group or others:
    /// anyone on the machine could then decrypt the registry.
    pub fn exposure_warning(&self) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let path = self.file()?;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        (mode & 0o077 != 0).then(|| {
            format!(
                "the identity file {} is readable by group or others (mode {:o}): anyone on this machine can decrypt the registry; chmod 600 it, and consider rotating every token",
                path.display(),
                mode & 0o777
            )
        })
    }
}

fn from_file(path: &Path, source: Source) -> Result<Identity, IdentityError> {
    let text = std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| IdentityError::Invalid { source_desc: source.to_string(), why: format!("cannot read: {e}") })?;
    parse(&text, source)
}

/// Accepts an age identity file (comments allowed) or the bare key.
fn parse(text: &str, source: Source) -> Result<Identity, IdentityError> {
    let invalid = |why: &str| IdentityError::Invalid { source_desc: source.to_string(), why: why.to_string() };
    let mut keys = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'));
    let line = keys.next().ok_or_else(|| invalid("no key in it"))?;
    if keys.next().is_some() {
        return Err(invalid("more than one key in it; chitty-secrets uses exactly one"));
    }
    // The parser's error could echo the text: report the line's shape only.
    let key = age::x25519::Identity::from_str(line)
        .map_err(|_| invalid("not an age X25519 secret key (AGE-SECRET-KEY-1…)"))?;
    Ok(Identity { key, source })
}

/// Every file that may hold an identity (the config file, `--identity`,
/// the environment variable): `check` makes sure none is inside a target
/// or the registry.
pub fn possible_files(flag: Option<&Path>) -> Vec<PathBuf> {
    let mut files = vec![config_file()];
    files.extend(flag.map(Path::to_path_buf));
    files.extend(std::env::var_os(crate::env_vars::IDENTITY_FILE).map(PathBuf::from));
    files
}

pub fn config_file() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from(".config"));
    base.join("chitty-secrets").join("identity.txt")
}

fn keyring_service() -> String {
    std::env::var(env_vars::KEYRING_SERVICE).unwrap_or_else(|_| "chitty-secrets".into())
}

fn keyring_entry() -> Option<keyring::Entry> {
    if std::env::var_os(env_vars::NO_KEYRING).is_some() {
        return None;
    }
    keyring::Entry::new(&keyring_service(), "age-identity").ok()
}

fn keyring_get() -> Option<Zeroizing<String>> {
    keyring_entry()?.get_password().ok().map(Zeroizing::new)
}

fn keyring_set(text: &str) -> bool {
    let Some(entry) = keyring_entry() else {
        return false;
    };
    if entry.set_password(text).is_err() {
        return false;
    }
    // Some stores accept a write and lose it (no session keyring): trust
    // only what reads back.
    match entry.get_password() {
        Ok(back) if back.as_str() == text => {
            drop(Zeroizing::new(back));
            true
        }
        _ => {
            let _ = entry.delete_credential();
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_identity_files_and_bare_keys() {
        let key = age::x25519::Identity::generate();
        let bare = key.to_string().expose_secret().to_string();
        let file = format!("# created: now\n# public key: {}\n{bare}\n", key.to_public());
        for text in [bare.as_str(), file.as_str()] {
            let id = parse(text, Source::EnvKey).unwrap();
            assert_eq!(id.recipient().to_string(), key.to_public().to_string());
        }
    }

    #[test]
    fn bad_key_error_does_not_echo_it() {
        let Err(err) = parse("AGE-SECRET-KEY-1CANARYCANARY", Source::EnvKey) else { panic!("accepted a bad key") };
        let err = err.to_string();
        assert!(!err.contains("CANARY"), "{err}");
        assert!(err.contains("not an age X25519 secret key"), "{err}");
    }
}
