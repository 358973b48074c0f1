//! The registry: a folder in the project, safe to commit.
//!
//! ```text
//! .chitty-secrets/
//!   recipients         age public keys, one a line
//!   tokens/NAME.toml   metadata (versions, stages, deliveries, journal): no secret
//!   tokens/NAME.age    the values of every version, age-encrypted to every recipient
//!   lock               the writers' lock (not committed)
//! ```
//!
//! Every save is atomic and 0600; writers hold [`RegistryLock`].

pub mod audit;
mod crypto;
mod lifecycle;
mod lock;
mod model;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crypto::{Values, decrypt, encrypt, parse_recipients};
pub use lifecycle::{LifecycleError, NewVersion};
pub use lock::RegistryLock;
pub use model::*;

use crate::fsutil;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no registry at {0}")]
    Missing(PathBuf),
    /// The OS error is said in the message, not chained as a cause: every
    /// renderer (`caused by:` lines, a run's joined chain) says it once.
    #[error("{path}: {error}")]
    Io { path: PathBuf, error: io::Error },
    #[error("the registry at {path} is locked by another chitty-secrets; gave up after {}s", waited.as_secs())]
    Locked { path: PathBuf, waited: Duration },
    #[error("{path} changed on disk since it was read (generation {on_disk} there, {ours} here); nothing was written")]
    Stale { path: PathBuf, on_disk: u64, ours: u64 },
    #[error("{path}: {why}")]
    Corrupt { path: PathBuf, why: String },
    #[error("{path}:{line}: not an age recipient: {why}")]
    Recipients { path: PathBuf, line: usize, why: String },
    #[error("{path} has no recipients")]
    NoRecipients { path: PathBuf },
    #[error("cannot decrypt {path}: {why}")]
    Decrypt { path: PathBuf, why: String },
    /// Only a member may change who can read the registry.
    #[error("your key {key} is not one of the registry's recipients ({path})")]
    NotMember { path: PathBuf, key: String },
    #[error("{path} is in format {schema}, newer than this chitty-secrets understands")]
    Newer { path: PathBuf, schema: u32 },
    /// Versions the metadata says are live (current, pending, previous)
    /// whose values the value file does not hold: it was deleted, or an
    /// older copy was restored.
    #[error("{path} lacks the value of {token} {} (the file was deleted, or an older copy restored)", versions.iter().map(|v| format!("v{v}")).collect::<Vec<_>>().join(", "))]
    ValuesMissing { path: PathBuf, token: String, versions: Vec<u32> },
    #[error("{0}")]
    Crypto(String),
    /// A name that could reach outside `tokens/` (`../x`, `a/b`) never
    /// touches the filesystem.
    #[error("`{0}` is not a token name (letters, digits and `_`, not starting with a digit)")]
    BadName(String),
}

/// Token names reach the filesystem as `tokens/NAME.*`: only the policy's
/// name rule passes, wherever the name came from (policy, argv, a listing).
fn checked_name(name: &str) -> Result<(), RegistryError> {
    if crate::policy::is_secret_name(name) { Ok(()) } else { Err(RegistryError::BadName(name.to_string())) }
}

impl RegistryError {
    pub fn io(path: &Path, source: io::Error) -> Self {
        RegistryError::Io { path: path.to_path_buf(), error: source }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            RegistryError::Missing(_) => "run `chitty-secrets init` to create it, or pass --registry DIR".into(),
            RegistryError::Locked { .. } => {
                "wait for the other run to finish, or raise --lock-timeout; a crashed run releases the lock by itself".into()
            }
            RegistryError::Stale { .. } => "another writer changed the registry (a git pull?); run the command again".into(),
            RegistryError::Decrypt { .. } => {
                "this identity is not a recipient of the file: ask a team member to run `chitty-secrets keys add` with your public key, or pass the right --identity".into()
            }
            RegistryError::NoRecipients { .. } | RegistryError::Recipients { .. } => {
                "list at least one age public key (age1…) in the recipients file; `chitty-secrets init` adds yours".into()
            }
            RegistryError::Corrupt { .. } => "restore the file from git (`git checkout -- FILE`) and run again".into(),
            RegistryError::NotMember { key, .. } => format!(
                "a member who can read the values adds you: `chitty-secrets keys add {key}`; or pass the --identity of a member"
            ),
            RegistryError::Newer { .. } => "upgrade chitty-secrets: a newer version wrote this file".into(),
            RegistryError::ValuesMissing { token, .. } => format!(
                "restore the value file from git (`git log -- FILE` shows its history), or run `chitty-secrets rotate {token}` to mint a new value"
            ),
            RegistryError::BadName(_) => "`chitty-secrets status` lists the tokens".into(),
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Registry {
    dir: PathBuf,
    /// While set (a batch of rotations): folder syncs and audit lines wait
    /// for the next [`Registry::barrier`], one for many writes.
    deferred: std::sync::Arc<std::sync::Mutex<Option<Deferred>>>,
}

/// What a batch has written and not yet made durable.
#[derive(Debug, Default)]
struct Deferred {
    dirs: std::collections::BTreeSet<PathBuf>,
    audit: Vec<audit::Deferred>,
    /// Audit lines were appended at a barrier and wait for the last one's
    /// fsync.
    audit_unsynced: bool,
}

impl Registry {
    /// Opens an existing registry.
    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        let recipients = dir.join("recipients");
        if !recipients.is_file() {
            // Tokens without a recipients file: a damaged registry, not a
            // missing one (`init` here would start over beside the values).
            if dir.join("tokens").is_dir() {
                return Err(RegistryError::Corrupt {
                    path: recipients,
                    why: "the recipients file is missing, but the registry holds tokens: it is damaged".into(),
                });
            }
            return Err(RegistryError::Missing(dir.to_path_buf()));
        }
        Ok(Registry { dir: dir.to_path_buf(), deferred: Default::default() })
    }

    /// Creates the folder layout if missing; keeps whatever is there.
    pub fn create(dir: &Path) -> Result<Self, RegistryError> {
        fsutil::create_private_dir(&dir.join("tokens")).map_err(|e| RegistryError::io(dir, e))?;
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            fsutil::write_atomic(&ignore, b"# the writers' lock file is local to each machine\nlock\n*.chitty-tmp-*\n")
                .map_err(|e| RegistryError::io(&ignore, e))?;
        }
        let attributes = dir.join(".gitattributes");
        if !attributes.exists() {
            // Encrypted values cannot be merged line by line: make git say so
            // instead of writing conflict markers into an age file.
            // The audit log is append-only: a union merge keeps both sides'
            // lines, and `audit verify` accepts the fork.
            fsutil::write_atomic(&attributes, b"tokens/*.age binary\naudit.log merge=union\n")
                .map_err(|e| RegistryError::io(&attributes, e))?;
        }
        let recipients = dir.join("recipients");
        if !recipients.exists() {
            fsutil::write_atomic(&recipients, b"# age recipients: every key here can read every value.\n")
                .map_err(|e| RegistryError::io(&recipients, e))?;
        }
        Ok(Registry { dir: dir.to_path_buf(), deferred: Default::default() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn lock(&self, timeout: Duration) -> Result<RegistryLock, RegistryError> {
        RegistryLock::acquire(&self.dir.join("lock"), timeout)
    }

    pub fn recipients_path(&self) -> PathBuf {
        self.dir.join("recipients")
    }

    pub fn recipients(&self) -> Result<Vec<age::x25519::Recipient>, RegistryError> {
        let path = self.recipients_path();
        let text = fs::read_to_string(&path).map_err(|e| RegistryError::io(&path, e))?;
        parse_recipients(&text, &path)
    }

    /// Proves `identity` belongs to the registry before it changes who can
    /// read it: its key is a recipient and it decrypts every value file.
    /// Checked before anything is written, so a stranger's `keys add` never
    /// reaches the recipients file.
    pub fn check_member(&self, identity: &age::x25519::Identity) -> Result<(), RegistryError> {
        let key = identity.to_public().to_string();
        if !self.recipients()?.iter().any(|r| r.to_string() == key) {
            return Err(RegistryError::NotMember { path: self.recipients_path(), key });
        }
        for name in self.token_names()? {
            if self.has_values(&name) {
                self.load_values(&name, identity)?;
            }
        }
        Ok(())
    }

    /// Appends a recipient unless it is listed already; returns whether it was added.
    pub fn add_recipient(&self, recipient: &age::x25519::Recipient, comment: &str) -> Result<bool, RegistryError> {
        let path = self.recipients_path();
        let text = fs::read_to_string(&path).map_err(|e| RegistryError::io(&path, e))?;
        let key = recipient.to_string();
        if parse_recipients(&text, &path)?.iter().any(|r| r.to_string() == key) {
            return Ok(false);
        }
        let mut text = text;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("# {comment}\n{key}\n"));
        fsutil::write_atomic(&path, text.as_bytes()).map_err(|e| RegistryError::io(&path, e))?;
        Ok(true)
    }

    pub fn meta_path(&self, name: &str) -> PathBuf {
        self.dir.join("tokens").join(format!("{name}.toml"))
    }

    pub fn values_path(&self, name: &str) -> PathBuf {
        self.dir.join("tokens").join(format!("{name}.age"))
    }

    /// The names of every token with metadata in the registry, sorted.
    pub fn token_names(&self) -> Result<Vec<String>, RegistryError> {
        let dir = self.dir.join("tokens");
        let mut names = Vec::new();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(names),
            Err(e) => return Err(RegistryError::io(&dir, e)),
        };
        for entry in entries {
            let path = entry.map_err(|e| RegistryError::io(&dir, e))?.path();
            if path.extension().is_some_and(|e| e == "toml")
                && let Some(stem) = path.file_stem()
            {
                names.push(stem.to_string_lossy().into_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// The token's metadata, or a fresh record (generation 0) if it has none.
    pub fn load(&self, name: &str) -> Result<TokenMeta, RegistryError> {
        Ok(self.load_existing(name)?.unwrap_or_else(|| TokenMeta::new(name)))
    }

    /// [`Self::load`] for many tokens, on a few threads (a registry of
    /// thousands of tokens is thousands of small files); in `names`' order.
    pub fn load_many<S: AsRef<str> + Sync>(&self, names: &[S]) -> Vec<Result<TokenMeta, RegistryError>> {
        // A thread costs more than a few dozen small reads.
        let threads =
            if names.len() < 64 { 1 } else { std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4) };
        crate::threads::map_on_threads(names.iter().collect(), threads, |n| self.load(n.as_ref()))
    }

    pub fn load_existing(&self, name: &str) -> Result<Option<TokenMeta>, RegistryError> {
        checked_name(name)?;
        let path = self.meta_path(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RegistryError::io(&path, e)),
        };
        let meta: TokenMeta = toml::from_str(&text)
            .map_err(|e| RegistryError::Corrupt { path: path.clone(), why: e.message().to_string() })?;
        if meta.schema > SCHEMA {
            return Err(RegistryError::Newer { path, schema: meta.schema });
        }
        Ok(Some(meta))
    }

    /// Saves metadata atomically. Refused if the file on disk is not the
    /// generation `meta` was loaded from (someone else wrote it meanwhile).
    pub fn save(&self, meta: &mut TokenMeta) -> Result<(), RegistryError> {
        // `load_existing` refuses a name that is not a token name.
        let path = self.meta_path(&meta.name);
        let on_disk = self.load_existing(&meta.name)?.map_or(0, |m| m.generation);
        if on_disk != meta.generation {
            return Err(RegistryError::Stale { path, on_disk, ours: meta.generation });
        }
        meta.generation += 1;
        let text = toml::to_string(meta).expect("metadata always serializes");
        let result = self.write(&path, text.as_bytes());
        if result.is_err() {
            meta.generation -= 1;
        }
        result
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// Appends to the audit log. The caller holds the lock.
    pub fn audit(&self, event: audit::Event<'_>, at: chrono::DateTime<chrono::Utc>) -> Result<(), RegistryError> {
        let mut deferred = self.deferred.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match deferred.as_mut() {
            Some(d) => {
                d.audit.push(audit::Deferred::new(event, at));
                Ok(())
            }
            None => audit::append(&self.audit_path(), event, at),
        }
    }

    /// Replaces the recipients file (atomically).
    pub fn write_recipients(&self, text: &str) -> Result<(), RegistryError> {
        let path = self.recipients_path();
        parse_recipients(text, &path)?;
        fsutil::write_atomic(&path, text.as_bytes()).map_err(|e| RegistryError::io(&path, e))
    }

    /// Where an unfinished recipients change is marked.
    pub fn rekey_marker(&self) -> PathBuf {
        self.dir.join("rekey-pending")
    }

    /// Re-encrypts every value file to the recipients file's current set, one
    /// atomic rename at a time: each file is at every instant readable by the
    /// old set or the new one. A marker file stays until every file is done,
    /// so an interrupted change is visible and `keys rekey` finishes it.
    pub fn rekey_all(
        &self,
        identity: &age::x25519::Identity,
        mut after_each: impl FnMut(&str),
    ) -> Result<usize, RegistryError> {
        let marker = self.rekey_marker();
        fsutil::write_atomic(&marker, b"a recipients change is under way; `chitty-secrets keys rekey` finishes it\n")
            .map_err(|e| RegistryError::io(&marker, e))?;
        let mut count = 0;
        for name in self.token_names()? {
            if !self.has_values(&name) {
                continue;
            }
            let values = self.load_values(&name, identity)?;
            self.save_values(&name, &values)?;
            count += 1;
            after_each(&name);
        }
        std::fs::remove_file(&marker).map_err(|e| RegistryError::io(&marker, e))?;
        Ok(count)
    }

    pub fn has_values(&self, name: &str) -> bool {
        self.values_path(name).is_file()
    }

    pub fn load_values(&self, name: &str, identity: &age::x25519::Identity) -> Result<Values, RegistryError> {
        checked_name(name)?;
        let path = self.values_path(name);
        match fs::read(&path) {
            Ok(bytes) => decrypt(name, &bytes, identity, &path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Values::default()),
            Err(e) => Err(RegistryError::io(&path, e)),
        }
    }

    /// The values of a token whose live versions (current, pending,
    /// previous) must all be there: a deleted or older value file is an
    /// error, never a token silently left out.
    pub fn live_values(&self, meta: &TokenMeta, identity: &age::x25519::Identity) -> Result<Values, RegistryError> {
        let values = self.load_values(&meta.name, identity)?;
        let versions: Vec<u32> = meta
            .versions
            .iter()
            .filter(|v| matches!(v.stage, Stage::Current | Stage::Pending | Stage::Previous))
            .filter(|v| values.get(v.id).is_none())
            .map(|v| v.id)
            .collect();
        if versions.is_empty() {
            Ok(values)
        } else {
            Err(RegistryError::ValuesMissing { path: self.values_path(&meta.name), token: meta.name.clone(), versions })
        }
    }

    /// Proves a save of `name`'s values would succeed (a valid name, a
    /// recipients file of valid keys, at least one) without writing: done
    /// before an issuer is asked to mint, so a mint is never wasted on a
    /// registry that cannot keep it.
    pub fn check_writable(&self, name: &str) -> Result<(), RegistryError> {
        checked_name(name)?;
        if self.recipients()?.is_empty() {
            return Err(RegistryError::NoRecipients { path: self.recipients_path() });
        }
        Ok(())
    }

    pub fn save_values(&self, name: &str, values: &Values) -> Result<(), RegistryError> {
        checked_name(name)?;
        let recipients = self.recipients()?;
        if recipients.is_empty() {
            return Err(RegistryError::NoRecipients { path: self.recipients_path() });
        }
        let bytes = encrypt(name, values, &recipients)?;
        let path = self.values_path(name);
        self.write(&path, &bytes)
    }

    /// An atomic write of a token file; its folder's sync waits for the
    /// next barrier while durability is deferred.
    fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
        self.ensure_tokens_dir()?;
        let dir = fsutil::replace(path, bytes).map_err(|e| RegistryError::io(path, e))?;
        let mut deferred = self.deferred.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match deferred.as_mut() {
            Some(d) => {
                d.dirs.insert(dir);
                Ok(())
            }
            None => fsutil::sync_dir(&dir).map_err(|e| RegistryError::io(&dir, e)),
        }
    }

    /// From now on, token writes and audit lines become durable together at
    /// each [`Registry::barrier`] (and at [`Registry::end_deferral`]): one
    /// folder sync and one audit append for many tokens. Each file's data
    /// is still on disk before it replaces the old one, so a crash leaves
    /// old or new files, never torn ones. The caller places a barrier before
    /// anything leaves this machine (an issuer call, a delivery, a revoke).
    pub fn defer_durability(&self) {
        let mut deferred = self.deferred.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        deferred.get_or_insert_with(Deferred::default);
    }

    /// Makes every token file written so far durable (their folders'
    /// entries) and appends the audit lines: a killed process loses none of
    /// them; their fsync waits for the last barrier (the log is a record,
    /// not state a resumed run needs).
    pub fn barrier(&self) -> Result<(), RegistryError> {
        self.settle(false)
    }

    fn settle(&self, last: bool) -> Result<(), RegistryError> {
        let mut guard = self.deferred.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(deferred) = guard.as_mut() else { return Ok(()) };
        for dir in std::mem::take(&mut deferred.dirs) {
            fsutil::sync_dir(&dir).map_err(|e| RegistryError::io(&dir, e))?;
        }
        let lines = std::mem::take(&mut deferred.audit);
        if !lines.is_empty() {
            audit::append_all(&self.audit_path(), &lines, last)?;
            deferred.audit_unsynced |= !last;
        } else if last && deferred.audit_unsynced {
            audit::sync(&self.audit_path())?;
        }
        if last {
            deferred.audit_unsynced = false;
        }
        Ok(())
    }

    /// A last barrier that makes the audit lines durable too, and writes
    /// are durable one by one again.
    pub fn end_deferral(&self) -> Result<(), RegistryError> {
        let result = self.settle(true);
        *self.deferred.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        result
    }

    /// `tokens/` exists before the first token file is written: git keeps
    /// no empty folder, so a fresh clone of a new registry has none.
    fn ensure_tokens_dir(&self) -> Result<(), RegistryError> {
        let dir = self.dir.join("tokens");
        if dir.is_dir() {
            return Ok(());
        }
        fsutil::create_private_dir(&dir).map_err(|e| RegistryError::io(&dir, e))?;
        // The new folder's own entry is durable before files go into it.
        fsutil::sync_dir(&self.dir).map_err(|e| RegistryError::io(&self.dir, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use chrono::Utc;

    fn registry_with_key() -> (tempfile::TempDir, Registry, age::x25519::Identity) {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::create(&dir.path().join(".chitty-secrets")).unwrap();
        let id = age::x25519::Identity::generate();
        reg.add_recipient(&id.to_public(), "test").unwrap();
        (dir, reg, id)
    }

    #[test]
    fn values_round_trip_and_metadata_holds_no_value() {
        let (_d, reg, id) = registry_with_key();
        let mut values = Values::default();
        values.insert(1, Secret::new("canary-value-1"));
        reg.save_values("TOK", &values).unwrap();
        let mut meta = TokenMeta::new("TOK");
        meta.versions.push(Version {
            id: 1,
            stage: Stage::Current,
            issuer: "random".into(),
            issuer_kind: None,
            issuer_url: None,
            token_id: None,
            scopes: vec![],
            created_at: Utc::now(),
            expires_at: None,
            retire_after: None,
            retired_at: None,
            revoked_at: None,
            origin: ValueOrigin::Issued,
            placeholder: false,
        });
        reg.save(&mut meta).unwrap();
        assert_eq!(reg.load_values("TOK", &id).unwrap().get(1).unwrap().expose(), "canary-value-1");
        let meta_text = fs::read_to_string(reg.meta_path("TOK")).unwrap();
        let age_text = fs::read_to_string(reg.values_path("TOK")).unwrap();
        assert!(!meta_text.contains("canary") && !age_text.contains("canary"));
        assert!(age_text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        assert_eq!(reg.load("TOK").unwrap(), meta);
    }

    #[test]
    fn a_stale_copy_is_refused() {
        let (_d, reg, _id) = registry_with_key();
        let mut first = reg.load("TOK").unwrap();
        let mut second = first.clone();
        reg.save(&mut first).unwrap();
        let err = reg.save(&mut second).unwrap_err();
        assert!(matches!(err, RegistryError::Stale { on_disk: 1, ours: 0, .. }), "{err}");
        assert_eq!(second.generation, 0);
    }

    #[test]
    fn another_identity_cannot_decrypt() {
        let (_d, reg, _id) = registry_with_key();
        let mut values = Values::default();
        values.insert(1, Secret::new("x"));
        reg.save_values("TOK", &values).unwrap();
        let stranger = age::x25519::Identity::generate();
        let err = reg.load_values("TOK", &stranger).unwrap_err();
        assert!(matches!(err, RegistryError::Decrypt { .. }));
        assert!(err.hint().unwrap().contains("keys add"));
    }

    #[test]
    fn lock_times_out_while_held() {
        let (_d, reg, _id) = registry_with_key();
        let held = reg.lock(Duration::from_secs(1)).unwrap();
        let err = reg.lock(Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, RegistryError::Locked { .. }));
        drop(held);
        reg.lock(Duration::from_millis(100)).unwrap();
    }

    #[test]
    fn bad_recipient_line_is_named() {
        let err = parse_recipients("# ok\nage1nope\n", Path::new("recipients")).unwrap_err();
        assert!(err.to_string().starts_with("recipients:2: not an age recipient"), "{err}");
    }
}
