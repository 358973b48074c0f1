//! The registry: a folder in the project, safe to commit.
//!
//! ```text
//! .chitty-secrets/
//!   key.age              the registry key of every epoch, age-encrypted to every recipient
//!   recipients           age public keys, one a line, and a MAC line
//!   tokens/NAME.toml     metadata (versions, stages, deliveries, journal): no secret; a MAC line first
//!   tokens/NAME.ID.age   one version's value, age-encrypted to every recipient, MACed inside
//!   audit.log            hash-chained lines, each MACed
//!   lock                 the writers' lock (not committed)
//! ```
//!
//! Every save is atomic and 0600; writers hold [`RegistryLock`]. Every
//! file a member's command trusts is authenticated with the registry key
//! ([`auth`]): a member's command refuses a file someone without it
//! changed. Without the identity, files are read unverified, and the
//! commands say so.

pub mod audit;
pub mod auth;
mod crypto;
mod lifecycle;
mod lock;
pub mod machine;
mod model;
mod trust;
mod upgrade;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use auth::{Refusal, RegistryKeys};
pub use crypto::{Minted, ValueFile, Values, parse_recipients};
pub use lifecycle::{LifecycleError, NewVersion};
pub use lock::RegistryLock;
pub use model::*;
pub use trust::{Accepted, Doubt, Side, merge_driver_config, pick_side};
pub use upgrade::Upgraded;

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
    /// whose values are not in the registry: a value file was deleted.
    #[error("{path} lacks the value of {token} {} (a value file was deleted, or an older copy restored)", versions.iter().map(|v| format!("v{v}")).collect::<Vec<_>>().join(", "))]
    ValuesMissing { path: PathBuf, token: String, versions: Vec<u32> },
    #[error("{0}")]
    Crypto(String),
    /// A name that could reach outside `tokens/` (`../x`, `a/b`) never
    /// touches the filesystem.
    #[error("`{0}` is not a token name (letters, digits and `_`, not starting with a digit)")]
    BadName(String),
    /// A file a member's command trusts, changed by someone without the
    /// registry key (or by hand).
    #[error("{path} was not written by a member of the registry: {why}")]
    Unauthentic { path: PathBuf, why: String },
    /// The key file is not the one this machine knew.
    #[error("{path} is not this registry's key: {why}")]
    KeyReplaced { path: PathBuf, why: String },
    /// A write, or a read of values, on an authenticated registry without
    /// its key.
    #[error("{what} needs the registry key, and no member's identity unlocked it ({path})")]
    NeedsKey { path: PathBuf, what: &'static str },
    /// A registry (or a file) from before the registry was authenticated.
    #[error("{path} is in the format from before the registry was authenticated")]
    Legacy { path: PathBuf },
    /// A file with git's conflict markers: a merge not finished.
    #[error("{path} holds git's conflict markers: a merge or rebase was not finished")]
    Conflicted { path: PathBuf },
    /// A recipients change was cut short.
    #[error("a recipients change is under way ({path})")]
    RekeyPending { path: PathBuf },
}

/// Token names reach the filesystem as `tokens/NAME.*`: only the policy's
/// name rule passes, wherever the name came from (policy, argv, a listing).
fn checked_name(name: &str) -> Result<(), RegistryError> {
    if crate::policy::is_secret_name(name) { Ok(()) } else { Err(RegistryError::BadName(name.to_string())) }
}

/// A value file's id: hex digits only (it becomes a file name).
fn checked_value_id(id: &str, meta_path: &Path) -> Result<(), RegistryError> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(RegistryError::Corrupt { path: meta_path.to_path_buf(), why: format!("`{id}` is not a value file id") })
    }
}

impl RegistryError {
    pub fn io(path: &Path, source: io::Error) -> Self {
        RegistryError::Io { path: path.to_path_buf(), error: source }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<crate::error::Hint> {
        self.hint_text().map(crate::error::Hint::from)
    }

    fn hint_text(&self) -> Option<String> {
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
            RegistryError::Corrupt { path, .. } => format!(
                "restore the file from git: `git log -- {0}` shows its history, `git checkout COMMIT -- {0}` brings a good copy back",
                path.display()
            ),
            RegistryError::NotMember { key, .. } => format!(
                "a member who can read the values adds you: `chitty-secrets keys add {key}`; or pass the --identity of a member"
            ),
            RegistryError::Newer { .. } => "upgrade chitty-secrets: a newer version wrote this file".into(),
            RegistryError::ValuesMissing { token, .. } => format!(
                "restore the value file from git (`git log -- .chitty-secrets/tokens/{token}` shows its history), or run `chitty-secrets rotate {token}` to mint a new value"
            ),
            RegistryError::BadName(_) => "`chitty-secrets status` lists the tokens".into(),
            RegistryError::Unauthentic { path, .. } => format!(
                "anyone who can push to the repository could have made this change; nothing was done with it. See it with `git log -p -- {0}`; restore the last good copy (`git checkout COMMIT -- {0}`), or, once a member has reviewed the change, accept it: `chitty-secrets trust accept {0}`",
                path.display()
            ),
            RegistryError::KeyReplaced { path, .. } => format!(
                "someone replaced the key file (anyone can encrypt a new one to the recipients); nothing was done with it. See `git log -p -- {0}` and restore the registry from a good commit; if a member really made a new registry here, `chitty-secrets trust forget` lets this machine learn it",
                path.display()
            ),
            RegistryError::NeedsKey { .. } => {
                "run it as a member: give the identity (--identity FILE, $CHITTY_SECRETS_IDENTITY, the keyring or the config file); a non-member asks a member to `chitty-secrets keys add` their public key".into()
            }
            RegistryError::Legacy { .. } => {
                "a member runs `chitty-secrets upgrade` once and commits .chitty-secrets/: from then on every file is authenticated".into()
            }
            RegistryError::Conflicted { path } => format!(
                "take one side whole (each is a member's; nothing is lost: both sides' value files are kept, and the next member's `sync` or `rotate` records the other side's value): `git checkout --ours -- {0}` (or `--theirs`), then `git add {0}`; `chitty-secrets init` in a clone sets up git to do this by itself",
                path.display()
            ),
            RegistryError::RekeyPending { .. } => "a member finishes it with `chitty-secrets keys rekey`".into(),
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
    /// The registry key, once a member's identity has unlocked it.
    keys: Arc<RwLock<Option<Arc<RegistryKeys>>>>,
    /// Files under a retired epoch's key that are accepted all the same:
    /// the SHA-256 of each, as a member's recipients change listed them
    /// when it began (after checking every one under the key of the time).
    older_allowed: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// The value files in `tokens/`, listed once a run.
    values: Arc<std::sync::Mutex<Option<ValueIndex>>>,
    /// This machine's delivery records of .env files (outside git).
    local: Arc<std::sync::OnceLock<machine::LocalDeliveries>>,
    /// Whether this machine reports what it holds in a check-in: only a
    /// machine a policy names (nobody reads any other's).
    checks_in: Arc<std::sync::atomic::AtomicBool>,
}

/// Value file ids by token name.
type ValueIndex = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

/// What a batch has written and not yet made durable.
#[derive(Debug, Default)]
struct Deferred {
    dirs: std::collections::BTreeSet<PathBuf>,
    audit: Vec<audit::Deferred>,
    /// Audit lines were appended at a barrier and wait for the last one's
    /// fsync.
    audit_unsynced: bool,
    /// This machine's .env records changed: its check-in is written at
    /// the next barrier.
    local: bool,
}

/// How far this run can trust the registry's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Unlocked by a member: every file read is checked.
    Verified { id: String, epoch: u32 },
    /// Authenticated format, but no member's identity: files are read
    /// without being checked.
    Unverified,
    /// The format from before authentication.
    Legacy,
}

/// What is written as the first line of a metadata file.
const META_MAC: &str = "mac = \"";

/// The metadata text without its MAC line, and the MAC.
fn split_meta_mac(text: &str) -> (&str, Option<&str>) {
    match text.strip_prefix(META_MAC).and_then(|rest| rest.split_once('\n')) {
        Some((line, rest)) => (rest, Some(line.trim_end().trim_end_matches('"'))),
        None => (text, None),
    }
}

/// The metadata file's text for `meta`, with its MAC line. Delivery records
/// of .env files are the machine's, never the repository's: left out.
fn meta_text(meta: &TokenMeta, keys: &RegistryKeys) -> String {
    let body = committed_body(meta);
    let tag = keys.tag("meta", &meta.name, body.as_bytes());
    format!("{META_MAC}{tag}\"\n{body}")
}

/// The metadata as the repository keeps it: without this machine's .env
/// records.
fn committed_body(meta: &TokenMeta) -> String {
    if meta.deliveries.keys().any(machine::is_machine_local) {
        let mut committed = meta.clone();
        committed.deliveries.retain(|k, _| !machine::is_machine_local(k));
        toml::to_string(&committed)
    } else {
        toml::to_string(meta)
    }
    .expect("metadata always serializes")
}

impl Registry {
    fn at(dir: &Path) -> Self {
        Registry {
            dir: dir.to_path_buf(),
            deferred: Default::default(),
            keys: Default::default(),
            older_allowed: Default::default(),
            values: Default::default(),
            local: Default::default(),
            checks_in: Default::default(),
        }
    }

    /// Whether this machine writes its check-in (a policy names it).
    pub fn set_checks_in(&self, yes: bool) {
        self.checks_in.store(yes, std::sync::atomic::Ordering::SeqCst);
    }

    /// This machine's delivery records of this checkout's .env files.
    pub fn local(&self) -> &machine::LocalDeliveries {
        self.local.get_or_init(|| machine::LocalDeliveries::of(&self.dir))
    }

    pub fn machines_dir(&self) -> PathBuf {
        self.dir.join("machines")
    }

    /// Every machine's check-in (`machines/NAME.toml`), each checked
    /// against its MAC when the key is unlocked.
    pub fn checkins(&self) -> Result<Vec<machine::Checkin>, RegistryError> {
        let mut out = Vec::new();
        for name in self.checkin_names()? {
            out.extend(self.checkin(&name)?);
        }
        Ok(out)
    }

    /// The machines that have a check-in, sorted.
    pub fn checkin_names(&self) -> Result<Vec<String>, RegistryError> {
        let dir = self.machines_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RegistryError::io(&dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| RegistryError::io(&dir, e))?.path();
            if let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".toml")) {
                out.push(name.to_string());
            }
        }
        out.sort();
        Ok(out)
    }

    /// Every machine's check-in, this machine's as its own records say
    /// (they are newer than its check-in during a run).
    pub fn checkins_here(&self) -> Result<Vec<machine::Checkin>, RegistryError> {
        self.read_checkins().into_iter().collect()
    }

    /// [`Self::checkins_here`] for what only shows them (`status`, `plan`):
    /// one that cannot be read or is not a member's speaks for nobody, and
    /// the others still do (`check` names the bad one).
    pub fn checkins_shown(&self) -> Vec<machine::Checkin> {
        self.read_checkins().into_iter().flatten().collect()
    }

    /// Every check-in as reading it went (this machine's from its records).
    fn read_checkins(&self) -> Vec<Result<machine::Checkin, RegistryError>> {
        let own = self.checkin_from_records();
        let mut all = Vec::new();
        match self.checkin_names() {
            Ok(names) => {
                for name in names.iter().filter(|n| own.as_ref().is_none_or(|o| o.machine != **n)) {
                    all.extend(self.checkin(name).transpose());
                }
            }
            Err(e) => all.push(Err(e)),
        }
        all.extend(own.map(Ok));
        all
    }

    /// One machine's check-in, if it has one.
    pub fn checkin(&self, machine: &str) -> Result<Option<machine::Checkin>, RegistryError> {
        let path = self.machines_dir().join(format!("{machine}.toml"));
        if !machine::valid_machine_name(machine) {
            return Err(RegistryError::Corrupt { path, why: "not a machine's name".into() });
        }
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RegistryError::io(&path, e)),
        };
        let (body, mac) = split_meta_mac(&text);
        let checkin: machine::Checkin =
            toml::from_str(body).map_err(|e| RegistryError::Corrupt { path: path.clone(), why: e.message().into() })?;
        self.check_mac(&path, &text, (body, mac), "machine", machine)?;
        if checkin.machine != machine {
            return Err(RegistryError::Corrupt { path, why: format!("it is the check-in of `{}`", checkin.machine) });
        }
        Ok(Some(checkin))
    }

    /// With the key unlocked, a file whose first line is its MAC must
    /// carry a member's MAC over the rest (`kind` and `name` say what it is).
    fn check_mac(
        &self,
        path: &Path,
        text: &str,
        (body, mac): (&str, Option<&str>),
        kind: &str,
        name: &str,
    ) -> Result<(), RegistryError> {
        let Some(keys) = self.keys() else { return Ok(()) };
        let older = self.older_ok(text.as_bytes());
        match mac.ok_or(Refusal::Missing).and_then(|tag| keys.check(tag, kind, name, body.as_bytes(), older)) {
            Ok(()) => Ok(()),
            Err(why) => Err(self.unauthentic_with_change(path, why, text)),
        }
    }

    pub(crate) fn write_checkin(&self, checkin: &machine::Checkin, keys: &RegistryKeys) -> Result<(), RegistryError> {
        let dir = self.write_checkin_file(checkin, keys)?;
        self.note_dir(dir)
    }

    /// Writes a check-in with its MAC; returns the folder to sync.
    fn write_checkin_file(&self, checkin: &machine::Checkin, keys: &RegistryKeys) -> Result<PathBuf, RegistryError> {
        let dir = self.machines_dir();
        fs::create_dir_all(&dir).map_err(|e| RegistryError::io(&dir, e))?;
        let path = dir.join(format!("{}.toml", checkin.machine));
        let body = toml::to_string(checkin).expect("a check-in serializes");
        let tag = keys.tag("machine", &checkin.machine, body.as_bytes());
        fsutil::replace(&path, format!("{META_MAC}{tag}\"\n{body}").as_bytes()).map_err(|e| RegistryError::io(&path, e))
    }

    /// Keeps `meta`'s .env delivery records on this machine, and tells the
    /// others through this machine's check-in when a policy names it (not
    /// from a CI runner: what it writes is thrown away with it). In a batch
    /// the check-in is written at the next barrier, once for every token.
    fn save_local(&self, meta: &TokenMeta, keys: &RegistryKeys) -> Result<(), RegistryError> {
        let records: std::collections::BTreeMap<DeliveryKey, Delivery> = meta
            .deliveries
            .iter()
            .filter(|(k, _)| machine::is_machine_local(k))
            .map(|(k, d)| (k.clone(), d.clone()))
            .collect();
        let local = self.local();
        if !local.put(&meta.name, &records).map_err(|e| RegistryError::io(local.path(), e))? {
            return Ok(());
        }
        if let Some(d) = self.deferred.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_mut() {
            d.local = true;
            return Ok(());
        }
        if let Some(checkin) = self.own_checkin() {
            self.write_checkin(&checkin, keys)?;
        }
        Ok(())
    }

    /// This machine's check-in as its records make it, where a policy names
    /// this machine and it differs from the one in the registry.
    fn own_checkin(&self) -> Option<machine::Checkin> {
        let checkin = self.checkin_from_records()?;
        // One that cannot be read (a conflict, an old MAC) is made again
        // from the records, never a reason to stop.
        let old = self.checkin(&checkin.machine).ok().flatten();
        (old.as_ref() != Some(&checkin)).then_some(checkin)
    }

    /// This machine's check-in as its records make it, where a policy names
    /// this machine (a self-hosted CI runner too: named, it keeps its files).
    fn checkin_from_records(&self) -> Option<machine::Checkin> {
        if !self.checks_in.load(std::sync::atomic::Ordering::SeqCst) {
            return None;
        }
        let mut own = machine::Checkin { machine: machine::this_machine(), holds: Vec::new() };
        for (token, records) in self.local().all() {
            own.set(&token, &records);
        }
        Some(own)
    }

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
        Ok(Self::at(dir))
    }

    /// Writes the `.gitattributes` this version wants (a registry made by
    /// an older one lacks the merge driver's line).
    pub fn update_gitattributes(&self) -> Result<(), RegistryError> {
        let path = self.dir.join(".gitattributes");
        if fs::read_to_string(&path).ok().as_deref() != Some(GITATTRIBUTES) {
            fsutil::write_atomic(&path, GITATTRIBUTES.as_bytes()).map_err(|e| RegistryError::io(&path, e))?;
        }
        Ok(())
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
            fsutil::write_atomic(&attributes, GITATTRIBUTES.as_bytes())
                .map_err(|e| RegistryError::io(&attributes, e))?;
        }
        let recipients = dir.join("recipients");
        if !recipients.exists() {
            fsutil::write_atomic(&recipients, b"# age recipients: every key here can read every value.\n")
                .map_err(|e| RegistryError::io(&recipients, e))?;
        }
        Ok(Self::at(dir))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn lock(&self, timeout: Duration) -> Result<RegistryLock, RegistryError> {
        RegistryLock::acquire(&self.dir.join("lock"), timeout)
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.join(auth::KEY_FILE)
    }

    /// Whether the registry is in the authenticated format (it has a key file).
    pub fn is_authenticated(&self) -> bool {
        self.key_path().is_file()
    }

    /// The registry key, where a member's identity unlocked it.
    pub fn keys(&self) -> Option<Arc<RegistryKeys>> {
        self.keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn set_keys(&self, keys: Option<RegistryKeys>) {
        *self.keys.write().unwrap_or_else(std::sync::PoisonError::into_inner) = keys.map(Arc::new);
    }

    /// A file that is not a member's, with what changed since the last
    /// version a member wrote (from git history, where there is one).
    fn unauthentic_with_change(&self, path: &Path, why: Refusal, now: &str) -> RegistryError {
        let why = match trust::what_changed(self, path, now) {
            Some(change) => format!("{why}; {change}"),
            None => why.to_string(),
        };
        RegistryError::Unauthentic { path: path.to_path_buf(), why }
    }

    /// The key a write (or a read of values) needs.
    fn require_keys(&self, what: &'static str) -> Result<Arc<RegistryKeys>, RegistryError> {
        if let Some(keys) = self.keys() {
            return Ok(keys);
        }
        if self.is_authenticated() {
            Err(RegistryError::NeedsKey { path: self.key_path(), what })
        } else {
            Err(RegistryError::Legacy { path: self.dir.clone() })
        }
    }

    /// What this run can trust.
    pub fn trust(&self) -> Trust {
        match self.keys() {
            Some(keys) => Trust::Verified { id: keys.registry_id(), epoch: keys.epoch() },
            None if self.is_authenticated() => Trust::Unverified,
            None => Trust::Legacy,
        }
    }

    /// Unlocks the registry key with a member's identity: the key file
    /// must be the one this machine knew here, and the recipients file
    /// must carry the key's MAC. Returns whether it was unlocked: an
    /// identity that is not a recipient (or a registry of the older
    /// format) reads unverified, as without one.
    pub fn unlock(&self, identity: &age::x25519::Identity) -> Result<bool, RegistryError> {
        let path = self.key_path();
        let keys = match self.open_keys(identity) {
            Ok(Some(keys)) => keys,
            Ok(None) => return Ok(false),
            Err(RegistryError::Decrypt { .. }) => {
                // A listed member who cannot open the key file: someone
                // replaced it (with one encrypted to themselves, say).
                let me = identity.to_public().to_string();
                let listed = self
                    .recipients_text()
                    .ok()
                    .and_then(|t| parse_recipients(&t, &self.recipients_path()).ok())
                    .is_some_and(|r| r.iter().any(|r| r.to_string() == me));
                if listed {
                    return Err(RegistryError::KeyReplaced {
                        path,
                        why: "it is not encrypted to your key, which the recipients file lists".into(),
                    });
                }
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        // A recipients change a member began and that was cut short may
        // have left the recipients file under the previous epoch's key.
        let listed = self.rekey_marker_of(&keys).map(|m| m.files).unwrap_or_default();
        self.set_keys(Some(keys.clone()));
        let checked = self.with_older(listed, || self.recipients());
        if let Err(e) = checked {
            self.set_keys(None);
            return Err(e);
        }
        // Remembered only once the recipients are the key's: a forged key
        // file is never learnt.
        auth::Pins::of_user().remember(&self.dir, &keys);
        Ok(true)
    }

    /// Unlocks the registry key without checking the recipients file (a
    /// member about to accept a change to it after review).
    pub fn unlock_keys_only(&self, identity: &age::x25519::Identity) -> Result<bool, RegistryError> {
        let Some(keys) = self.open_keys(identity)? else { return Ok(false) };
        self.set_keys(Some(keys));
        Ok(true)
    }

    /// The keys in the key file, under `identity`, if it is the registry
    /// this machine (or CI's pin) knew here; `None` in a registry of the
    /// older format. A known registry whose key file is gone has had it
    /// deleted: that is no older registry.
    fn open_keys(&self, identity: &age::x25519::Identity) -> Result<Option<RegistryKeys>, RegistryError> {
        let path = self.key_path();
        let pins = auth::Pins::of_user();
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if pins.knows(&self.dir) || auth::Pins::env_pin().is_some() {
                    return Err(RegistryError::KeyReplaced {
                        path,
                        why: "it is gone, from a registry known to have one".into(),
                    });
                }
                return Ok(None);
            }
            Err(e) => return Err(RegistryError::io(&path, e)),
        };
        let keys = RegistryKeys::open(&bytes, identity, &path)?;
        if let auth::PinCheck::Replaced(why) = pins.check(&self.dir, &keys) {
            return Err(RegistryError::KeyReplaced { path, why });
        }
        Ok(Some(keys))
    }

    /// Whether a file with these bytes may be under an older epoch's key
    /// (one a member's recipients change listed when it began).
    fn older_ok(&self, bytes: &[u8]) -> bool {
        let allowed = self.older_allowed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        !allowed.is_empty() && allowed.contains(&audit::sha256_hex(bytes))
    }

    /// Runs `f` accepting, under an older epoch's key, exactly the files
    /// whose hashes are in `allowed`.
    fn with_older<T>(&self, allowed: std::collections::HashSet<String>, f: impl FnOnce() -> T) -> T {
        let before = std::mem::replace(
            &mut *self.older_allowed.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
            allowed,
        );
        let result = f();
        *self.older_allowed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = before;
        result
    }

    pub fn recipients_path(&self) -> PathBuf {
        self.dir.join("recipients")
    }

    /// The recipients, checked against their MAC when the key is unlocked.
    pub fn recipients(&self) -> Result<Vec<age::x25519::Recipient>, RegistryError> {
        let path = self.recipients_path();
        let text = fs::read_to_string(&path).map_err(|e| RegistryError::io(&path, e))?;
        let (rest, mac) = crypto::split_recipients_mac(&text);
        if let Some(keys) = self.keys() {
            let older = self.older_ok(text.as_bytes());
            let checked =
                mac.ok_or(Refusal::Missing).and_then(|tag| keys.check(tag, "recipients", "", rest.as_bytes(), older));
            if let Err(why) = checked {
                return Err(self.unauthentic_with_change(&path, why, &text));
            }
        }
        parse_recipients(&rest, &path)
    }

    /// Proves `identity` belongs to the registry before it changes who can
    /// read it: its key is a recipient and it unlocks the registry key.
    /// Checked before anything is written, so a stranger's `keys add` never
    /// reaches the recipients file.
    pub fn check_member(&self, identity: &age::x25519::Identity) -> Result<(), RegistryError> {
        let key = identity.to_public().to_string();
        let not_member = || RegistryError::NotMember { path: self.recipients_path(), key: key.clone() };
        if self.keys().is_none() && !self.unlock(identity)? {
            return Err(if self.is_authenticated() {
                not_member()
            } else {
                RegistryError::Legacy { path: self.dir.clone() }
            });
        }
        let keys = self.require_keys("changing the recipients")?;
        let listed = self.rekey_marker_of(&keys).map(|m| m.files).unwrap_or_default();
        if !self.with_older(listed, || self.recipients())?.iter().any(|r| r.to_string() == key) {
            return Err(not_member());
        }
        Ok(())
    }

    /// The recipients file's text, without its MAC line (unverified: for
    /// listing and editing by a member).
    pub fn recipients_text(&self) -> Result<String, RegistryError> {
        let path = self.recipients_path();
        let text = fs::read_to_string(&path).map_err(|e| RegistryError::io(&path, e))?;
        Ok(crypto::split_recipients_mac(&text).0)
    }

    pub fn meta_path(&self, name: &str) -> PathBuf {
        self.dir.join("tokens").join(format!("{name}.toml"))
    }

    /// How a token's value files are named, for messages: `tokens/NAME.*.age`.
    pub fn values_dir(&self, name: &str) -> PathBuf {
        self.dir.join("tokens").join(format!("{name}.*.age"))
    }

    /// One version's value file: `tokens/NAME.ID.age`, beside the metadata
    /// (one folder: one folder sync for every file a batch writes).
    pub fn value_path(&self, name: &str, id: &str) -> PathBuf {
        self.dir.join("tokens").join(format!("{name}.{id}.age"))
    }

    /// Where the format before authentication kept all of a token's values.
    pub fn legacy_values_path(&self, name: &str) -> PathBuf {
        self.dir.join("tokens").join(format!("{name}.age"))
    }

    /// The names of every token with metadata in the registry, sorted.
    pub fn token_names(&self) -> Result<Vec<String>, RegistryError> {
        let mut names: Vec<String> = self
            .token_files()?
            .iter()
            .filter_map(|f| f.to_string_lossy().strip_suffix(".toml").filter(|n| !n.is_empty()).map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// The names of the files in `tokens/` (none when it does not exist yet).
    fn token_files(&self) -> Result<Vec<std::ffi::OsString>, RegistryError> {
        let dir = self.dir.join("tokens");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RegistryError::io(&dir, e)),
        };
        entries.map(|e| e.map(|e| e.file_name()).map_err(|e| RegistryError::io(&dir, e))).collect()
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

    /// The token's metadata if it has a file; checked against its MAC when
    /// the key is unlocked.
    pub fn load_existing(&self, name: &str) -> Result<Option<TokenMeta>, RegistryError> {
        checked_name(name)?;
        let path = self.meta_path(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(RegistryError::io(&path, e)),
        };
        let (body, mac) = split_meta_mac(&text);
        // Parsed first: a file that is not metadata at all is damaged,
        // whoever damaged it; then, with the key, it must be a member's.
        let meta: TokenMeta = toml::from_str(body).map_err(|e| {
            // Git's conflict markers are never TOML: looked for only when
            // the file does not parse (one scan of every file costs more
            // than its MAC).
            if text.lines().any(|l| l.starts_with("<<<<<<< ") || l == "=======" || l.starts_with(">>>>>>> ")) {
                return RegistryError::Conflicted { path: path.clone() };
            }
            // A newer format says so, whatever else it holds.
            match toml::from_str::<SchemaProbe>(body) {
                Ok(probe) if probe.schema > SCHEMA => RegistryError::Newer { path: path.clone(), schema: probe.schema },
                _ => RegistryError::Corrupt { path: path.clone(), why: e.message().to_string() },
            }
        })?;
        if meta.schema > SCHEMA {
            return Err(RegistryError::Newer { path, schema: meta.schema });
        }
        self.check_mac(&path, &text, (body, mac), "meta", name)?;
        if meta.name != name {
            return Err(RegistryError::Corrupt {
                path,
                why: format!("it holds the metadata of `{}`, not `{name}`", meta.name),
            });
        }
        for id in meta.versions.iter().filter_map(|v| v.value.as_deref()) {
            checked_value_id(id, &path)?;
        }
        // .env records are this machine's: any in the file (an older
        // format, or a CI runner's) speak for no one here.
        let mut meta = meta;
        meta.deliveries.retain(|k, _| !machine::is_machine_local(k));
        meta.deliveries.extend(self.local().of_token(name));
        Ok(Some(meta))
    }

    /// Saves metadata atomically, with its MAC. Refused if the file on disk
    /// is not the generation `meta` was loaded from (someone else wrote it
    /// meanwhile), or is not a member's.
    pub fn save(&self, meta: &mut TokenMeta) -> Result<(), RegistryError> {
        self.save_as(meta, true)
    }

    /// [`Registry::save`], put in place whole but not synced: it survives
    /// a killed process, not a machine that crashes. For a state written
    /// again durably soon after, whose loss only costs redoing work (the
    /// journal of a local mint, which nothing outside knows of).
    pub fn save_unsynced(&self, meta: &mut TokenMeta) -> Result<(), RegistryError> {
        self.save_as(meta, false)
    }

    fn save_as(&self, meta: &mut TokenMeta, durable: bool) -> Result<(), RegistryError> {
        let keys = self.require_keys("writing the registry")?;
        // `load_existing` refuses a name that is not a token name.
        let path = self.meta_path(&meta.name);
        let existing = self.load_existing(&meta.name)?;
        let on_disk = existing.as_ref().map_or(0, |m| m.generation);
        if on_disk != meta.generation {
            return Err(RegistryError::Stale { path, on_disk, ours: meta.generation });
        }
        // Only this machine's .env records changed: the repository's file
        // stays as it is (a host's `sync` dirties no tracked file).
        if let Some(existing) = existing
            && existing.schema == SCHEMA
            && meta.schema == SCHEMA
            && committed_body(&existing) == committed_body(meta)
        {
            return self.save_local(meta, &keys);
        }
        meta.generation += 1;
        meta.schema = SCHEMA;
        let text = meta_text(meta, &keys);
        let result = if durable {
            self.write(&path, text.as_bytes())
        } else {
            self.ensure_tokens_dir().and_then(|()| {
                fsutil::replace_unsynced(&path, text.as_bytes()).map_err(|e| RegistryError::io(&path, e))
            })
        };
        if result.is_err() {
            meta.generation -= 1;
        }
        result?;
        self.save_local(meta, &keys)
    }

    pub fn audit_path(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    /// Appends to the audit log, MACed. The caller holds the lock.
    pub fn audit(&self, event: audit::Event<'_>, at: chrono::DateTime<chrono::Utc>) -> Result<(), RegistryError> {
        let keys = self.require_keys("writing the audit log")?;
        let mut deferred = self.deferred.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match deferred.as_mut() {
            Some(d) => {
                d.audit.push(audit::Deferred::new(event, at));
                Ok(())
            }
            None => audit::append(&self.audit_path(), event, at, &keys),
        }
    }

    /// Replaces the recipients file (atomically), with a MAC under the key.
    pub fn write_recipients(&self, text: &str) -> Result<(), RegistryError> {
        let keys = self.require_keys("changing the recipients")?;
        let path = self.recipients_path();
        parse_recipients(text, &path)?;
        let text = crypto::with_recipients_mac(text, &keys);
        fsutil::write_atomic(&path, text.as_bytes()).map_err(|e| RegistryError::io(&path, e))
    }

    /// Where an unfinished recipients change is marked.
    pub fn rekey_marker(&self) -> PathBuf {
        self.dir.join("rekey-pending")
    }

    /// The rekey marker, if a member wrote it for the change under way: its
    /// MAC holds under the current key, and it names the change's nonce,
    /// which the key file keeps until the change is finished (a marker of
    /// an earlier change, put back, names another nonce or none).
    fn rekey_marker_of(&self, keys: &RegistryKeys) -> Option<RekeyMarker> {
        let text = fs::read_to_string(self.rekey_marker()).ok()?;
        let (rest, mac) = crypto::split_recipients_mac(&text);
        keys.check(mac?, "rekey", "", rest.as_bytes(), false).ok()?;
        let marker = RekeyMarker::parse(&rest)?;
        (keys.change.as_deref() == Some(marker.nonce.as_str())).then_some(marker)
    }

    /// Whether a recipients change under way brings a new key (a member's
    /// removal): until it is finished, files may be under the old key, and
    /// nothing but `keys rekey` reads them.
    pub fn rekey_changes_key(&self) -> bool {
        self.keys().and_then(|k| self.rekey_marker_of(&k)).is_some_and(|m| m.new_key)
    }

    fn write_rekey_marker(&self, keys: &RegistryKeys, marker: &RekeyMarker) -> Result<(), RegistryError> {
        let path = self.rekey_marker();
        let rest = marker.text();
        let tag = keys.tag("rekey", "", rest.as_bytes());
        fsutil::write_atomic(&path, format!("{rest}# mac: {tag}\n").as_bytes()).map_err(|e| RegistryError::io(&path, e))
    }

    /// Every file a recipients change re-signs, checked under the key of
    /// now (a change must not launder a file no member wrote): their hashes.
    /// The recipients file is left out (a change replaces it).
    fn members_files(
        &self,
        identity: &age::x25519::Identity,
    ) -> Result<std::collections::HashSet<String>, RegistryError> {
        let mut hashes = std::collections::HashSet::new();
        let refuse = |e: RegistryError| match e {
            RegistryError::Unauthentic { path, why } => RegistryError::Unauthentic {
                path,
                why: format!(
                    "{why}; a recipients change re-signs every file, so it waits until this one is reviewed (`chitty-secrets trust status`)"
                ),
            },
            e => e,
        };
        for checkin in self.checkins().map_err(refuse)? {
            let path = self.machines_dir().join(format!("{}.toml", checkin.machine));
            hashes.insert(audit::sha256_hex(&fs::read(&path).map_err(|e| RegistryError::io(&path, e))?));
        }
        for name in self.token_names()? {
            let path = self.meta_path(&name);
            self.load_existing(&name).map_err(refuse)?;
            hashes.insert(audit::sha256_hex(&fs::read(&path).map_err(|e| RegistryError::io(&path, e))?));
            for id in self.value_ids(&name)? {
                self.open_value(&name, &id, identity).map_err(refuse)?;
                let path = self.value_path(&name, &id);
                hashes.insert(audit::sha256_hex(&fs::read(&path).map_err(|e| RegistryError::io(&path, e))?));
            }
        }
        Ok(hashes)
    }

    /// Re-encrypts the key file and every value file to the recipients
    /// file's current set, and MACs every file under `keys` (a new epoch
    /// after a member's removal), one atomic rename at a time: each file is
    /// at every instant readable by the old set or the new one. A marker
    /// file (MACed) stays until every file is done, so an interrupted change
    /// is visible and `keys rekey` finishes it.
    ///
    /// `recipients` is the new recipients text (without a MAC line), or
    /// `None` to keep the file's.
    pub fn rekey_all(
        &self,
        identity: &age::x25519::Identity,
        keys: RegistryKeys,
        recipients: Option<&str>,
        after_each: impl FnMut(&str),
    ) -> Result<usize, RegistryError> {
        let old = self.require_keys("changing the recipients")?;
        if keys.registry_id() != old.registry_id() {
            return Err(RegistryError::Crypto("a recipients change cannot change the registry".into()));
        }
        let text = match recipients {
            Some(text) => text.to_string(),
            None => {
                self.recipients()?;
                self.recipients_text()?
            }
        };
        // Every file is a member's under the key of now before anything is
        // re-signed; their hashes are the only files accepted under this
        // key once the key changes (a removed member's forgery is not).
        let mut files = self.members_files(identity)?;
        if let Ok(current) = fs::read(self.recipients_path())
            && self.recipients().is_ok()
        {
            files.insert(audit::sha256_hex(&current));
        }
        let marker = RekeyMarker {
            nonce: fsutil::random_hex(16),
            new_key: keys.epoch() != old.epoch(),
            recipients: text.clone(),
            files,
        };
        self.carry_out_rekey(identity, keys, marker, after_each)
    }

    /// The steps of a recipients change, from its marker on (a cut-short
    /// one is carried out again from the same marker).
    fn carry_out_rekey(
        &self,
        identity: &age::x25519::Identity,
        keys: RegistryKeys,
        marker: RekeyMarker,
        mut after_each: impl FnMut(&str),
    ) -> Result<usize, RegistryError> {
        let new_recipients = parse_recipients(&marker.recipients, &self.recipients_path())?;
        if new_recipients.is_empty() {
            return Err(RegistryError::NoRecipients { path: self.recipients_path() });
        }
        let keys = keys.with_change(Some(marker.nonce.clone()));
        self.write_rekey_marker(&keys, &marker)?;
        let sealed = keys.seal(&new_recipients)?;
        self.set_keys(Some(keys.clone()));
        let text = marker.recipients.clone();
        self.with_older(marker.files, || {
            let path = self.key_path();
            fsutil::write_atomic(&path, &sealed).map_err(|e| RegistryError::io(&path, e))?;
            self.write_recipients(&text)?;
            let count = self.reseal_every_file(identity, &new_recipients, &mut after_each)?;
            // Done: the key file no longer names a change, then the marker goes.
            let done = keys.with_change(None);
            fsutil::write_atomic(&path, &done.seal(&new_recipients)?).map_err(|e| RegistryError::io(&path, e))?;
            self.set_keys(Some(done));
            let marker = self.rekey_marker();
            std::fs::remove_file(&marker).map_err(|e| RegistryError::io(&marker, e))?;
            Ok(count)
        })
    }

    /// Finishes a recipients change a member began (the marker is theirs,
    /// for the change the key file names).
    pub fn finish_rekey(
        &self,
        identity: &age::x25519::Identity,
        after_each: impl FnMut(&str),
    ) -> Result<usize, RegistryError> {
        let keys = self.require_keys("changing the recipients")?;
        let Some(marker) = self.rekey_marker_of(&keys) else {
            return Err(RegistryError::Unauthentic {
                path: self.rekey_marker(),
                why: "it is not the marker of a change a member began under this key (no valid MAC, or another change's); delete it if no change is under way".into(),
            });
        };
        self.carry_out_rekey(identity, (*keys).clone(), marker, after_each)
    }

    /// Whether a recipients change is marked as under way.
    pub fn rekey_pending(&self) -> bool {
        self.rekey_marker().exists()
    }

    /// Every token's metadata MACed and every value file re-encrypted to
    /// `recipients`, under the current key.
    fn reseal_every_file(
        &self,
        identity: &age::x25519::Identity,
        recipients: &[age::x25519::Recipient],
        after_each: &mut impl FnMut(&str),
    ) -> Result<usize, RegistryError> {
        let keys = self.require_keys("changing the recipients")?;
        let mut count = 0;
        for checkin in self.checkins()? {
            self.write_checkin(&checkin, &keys)?;
        }
        for name in self.token_names()? {
            let meta_path = self.meta_path(&name);
            if let Some(meta) = self.load_existing(&name)? {
                let text = meta_text(&meta, &keys);
                if fs::read_to_string(&meta_path).ok().as_deref() != Some(text.as_str()) {
                    self.write(&meta_path, text.as_bytes())?;
                }
            }
            for id in self.value_ids(&name)? {
                let path = self.value_path(&name, &id);
                let bytes = fs::read(&path).map_err(|e| RegistryError::io(&path, e))?;
                let sealed = crypto::reseal(&bytes, identity, &keys, (&name, &id), recipients, &path)?;
                self.write(&path, &sealed)?;
                count += 1;
                after_each(&name);
            }
        }
        Ok(count)
    }

    /// The ids of every value file of a token in the registry (those its
    /// metadata names, and any it does not).
    pub fn value_ids(&self, name: &str) -> Result<Vec<String>, RegistryError> {
        checked_name(name)?;
        let mut index = self.values.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if index.is_none() {
            *index = Some(self.list_values()?);
        }
        Ok(index.as_ref().and_then(|i| i.get(name)).map(|ids| ids.iter().cloned().collect()).unwrap_or_default())
    }

    /// Every value file in `tokens/`, by token: one listing a run, however
    /// many tokens ask (kept up to date by this run's own writes).
    fn list_values(&self) -> Result<ValueIndex, RegistryError> {
        let dir = self.dir.join("tokens");
        let mut index = ValueIndex::new();
        for file in self.token_files()? {
            let Some((name, id)) = file.to_str().and_then(|f| f.strip_suffix(".age")).and_then(|s| s.split_once('.'))
            else {
                continue;
            };
            if crate::policy::is_secret_name(name) && checked_value_id(id, &dir).is_ok() {
                index.entry(name.to_string()).or_default().insert(id.to_string());
            }
        }
        Ok(index)
    }

    /// Notes in this run's index that a value file was written or deleted.
    fn index_value(&self, name: &str, id: &str, present: bool) {
        let mut index = self.values.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(index) = index.as_mut() {
            let ids = index.entry(name.to_string()).or_default();
            if present {
                ids.insert(id.to_string());
            } else {
                ids.remove(id);
            }
        }
    }

    /// The value files authenticated audit lines say were ended (revoked,
    /// retired, aborted), by token: never to be delivered again, whatever a
    /// metadata file put back says. Empty without the key.
    pub fn ended_values(&self) -> std::collections::BTreeSet<(String, String)> {
        let Some(keys) = self.keys() else { return Default::default() };
        // The audit log is flushed first: lines of this run may wait.
        let _ = self.barrier();
        fs::read_to_string(self.audit_path()).map(|t| audit::ended_values(&t, &keys)).unwrap_or_default()
    }

    /// Value files of the token that its metadata does not name: what a git
    /// merge leaves when both branches minted (each branch's file is kept,
    /// one branch's metadata wins).
    pub fn strays(&self, meta: &TokenMeta) -> Result<Vec<String>, RegistryError> {
        let named: std::collections::BTreeSet<&str> = meta.value_files().collect();
        Ok(self.value_ids(&meta.name)?.into_iter().filter(|id| !named.contains(id.as_str())).collect())
    }

    /// One value file, opened and checked: it must be a member's, and
    /// `name`'s file `id`.
    pub fn open_value(
        &self,
        name: &str,
        id: &str,
        identity: &age::x25519::Identity,
    ) -> Result<ValueFile, RegistryError> {
        let keys = self.require_keys("reading values")?;
        let path = self.value_path(name, id);
        let bytes = fs::read(&path).map_err(|e| RegistryError::io(&path, e))?;
        let older = self.older_ok(&bytes);
        crypto::open_value(&bytes, identity, &keys, older, (name, id), &path)
    }

    /// The values of the versions `meta` names files for (a file that is
    /// gone is left out; see [`Self::live_values`]).
    pub fn load_values(&self, meta: &TokenMeta, identity: &age::x25519::Identity) -> Result<Values, RegistryError> {
        checked_name(&meta.name)?;
        if self.keys().is_none() && !self.is_authenticated() && self.legacy_values_path(&meta.name).is_file() {
            return Err(RegistryError::Legacy { path: self.legacy_values_path(&meta.name) });
        }
        let mut values = Values::default();
        for version in &meta.versions {
            let Some(id) = version.value.as_deref() else { continue };
            match self.open_value(&meta.name, id, identity) {
                Ok(file) => values.insert(version.id, file.value),
                Err(RegistryError::Io { error, .. }) if error.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(values)
    }

    /// The values of a token whose live versions (current, pending,
    /// previous) must all be there: a deleted value file is an error, never
    /// a token silently left out.
    pub fn live_values(&self, meta: &TokenMeta, identity: &age::x25519::Identity) -> Result<Values, RegistryError> {
        let values = self.load_values(meta, identity)?;
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
            Err(RegistryError::ValuesMissing { path: self.values_dir(&meta.name), token: meta.name.clone(), versions })
        }
    }

    /// Proves a save of `name`'s values would succeed (a valid name, the
    /// key unlocked, a recipients file of valid keys, at least one) without
    /// writing: done before an issuer is asked to mint, so a mint is never
    /// wasted on a registry that cannot keep it.
    pub fn check_writable(&self, name: &str) -> Result<(), RegistryError> {
        checked_name(name)?;
        self.require_keys("writing the registry")?;
        if self.recipients()?.is_empty() {
            return Err(RegistryError::NoRecipients { path: self.recipients_path() });
        }
        Ok(())
    }

    /// Saves one version's value in a new value file (MACed, encrypted to
    /// every recipient); returns its id, for the version's metadata.
    pub fn save_value(
        &self,
        name: &str,
        version: u32,
        minted: Minted,
        value: &crate::secret::Secret,
    ) -> Result<String, RegistryError> {
        checked_name(name)?;
        let keys = self.require_keys("writing the registry")?;
        let recipients = self.recipients()?;
        if recipients.is_empty() {
            return Err(RegistryError::NoRecipients { path: self.recipients_path() });
        }
        let id = fsutil::random_hex(8);
        let file = ValueFile { token: name.to_string(), id: id.clone(), version, minted, value: value.clone() };
        let bytes = crypto::seal_value(&file, &keys, &recipients)?;
        self.write_value(name, &id, &bytes)?;
        Ok(id)
    }

    /// Writes a value file (atomically) and notes it in this run's index.
    fn write_value(&self, name: &str, id: &str, bytes: &[u8]) -> Result<(), RegistryError> {
        self.write(&self.value_path(name, id), bytes)?;
        self.index_value(name, id, true);
        Ok(())
    }

    /// Deletes the value files of versions the metadata no longer names
    /// (after the metadata was saved: it must never name a value that is gone).
    pub fn remove_values(&self, name: &str, dropped: &[Version]) -> Result<(), RegistryError> {
        for id in dropped.iter().filter_map(|v| v.value.as_deref()) {
            match self.remove_file_of(name, id) {
                Err(RegistryError::Io { error, .. }) if error.kind() == io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// Deletes one value file (and notes it in this run's index).
    pub fn remove_file_of(&self, name: &str, id: &str) -> Result<(), RegistryError> {
        checked_name(name)?;
        checked_value_id(id, &self.values_dir(name))?;
        let path = self.value_path(name, id);
        fs::remove_file(&path).map_err(|e| RegistryError::io(&path, e))?;
        self.index_value(name, id, false);
        self.note_dir(self.dir.join("tokens"))
    }

    /// An atomic write of a token file; its folder's sync waits for the
    /// next barrier while durability is deferred.
    fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
        self.ensure_tokens_dir()?;
        let dir = fsutil::replace(path, bytes).map_err(|e| RegistryError::io(path, e))?;
        self.note_dir(dir)
    }

    /// A folder whose entries changed: synced now, or at the next barrier.
    fn note_dir(&self, dir: PathBuf) -> Result<(), RegistryError> {
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
        // This machine's .env records and its check-in, once for the batch.
        // (At the last barrier the check-in is compared with the records
        // even when nothing changed: a run killed before it left it behind.)
        if (std::mem::take(&mut deferred.local) || last)
            && let Some(keys) = self.keys()
            && let Some(checkin) = self.own_checkin()
        {
            deferred.dirs.insert(self.write_checkin_file(&checkin, &keys)?);
        }
        // Deepest first: a token's value folder before `tokens/`, so metadata
        // that names a value file is never durable before the file is.
        for dir in std::mem::take(&mut deferred.dirs).into_iter().rev() {
            fsutil::sync_dir(&dir).map_err(|e| RegistryError::io(&dir, e))?;
        }
        let lines = std::mem::take(&mut deferred.audit);
        if !lines.is_empty() {
            let keys = self.require_keys("writing the audit log")?;
            audit::append_all(&self.audit_path(), &lines, last, &keys)?;
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

/// A recipients change under way, as its marker file says (MACed).
struct RekeyMarker {
    /// Also in the key file until the change is finished.
    nonce: String,
    /// The change brings a new key (a member's removal).
    new_key: bool,
    /// The recipients the change is to (public keys).
    recipients: String,
    /// SHA-256 of each file a member wrote under the key the change began
    /// under: the only files accepted under it until the change is done.
    files: std::collections::HashSet<String>,
}

impl RekeyMarker {
    fn text(&self) -> String {
        let mut out = String::from("a recipients change is under way; `chitty-secrets keys rekey` finishes it\n");
        out.push_str(&format!("change {}\n", self.nonce));
        if self.new_key {
            out.push_str("new-key\n");
        }
        for line in self.recipients.lines() {
            out.push_str(&format!("recipient {line}\n"));
        }
        let mut files: Vec<&String> = self.files.iter().collect();
        files.sort();
        for f in files {
            out.push_str(&format!("file {f}\n"));
        }
        out
    }

    fn parse(text: &str) -> Option<Self> {
        let mut marker =
            RekeyMarker { nonce: String::new(), new_key: false, recipients: String::new(), files: Default::default() };
        for line in text.lines() {
            if let Some(n) = line.strip_prefix("change ") {
                marker.nonce = n.to_string();
            } else if line == "new-key" {
                marker.new_key = true;
            } else if let Some(r) = line.strip_prefix("recipient ") {
                marker.recipients.push_str(r);
                marker.recipients.push('\n');
            } else if let Some(f) = line.strip_prefix("file ") {
                marker.files.insert(f.to_string());
            }
        }
        (!marker.nonce.is_empty()).then_some(marker)
    }
}

/// What `init` writes into `.gitattributes`.
const GITATTRIBUTES: &str = "tokens/*.age binary\ntokens/*.toml merge=chitty-secrets\naudit.log merge=union\n";

/// Reads only a metadata file's schema (to name a newer one).
#[derive(serde::Deserialize)]
struct SchemaProbe {
    schema: u32,
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
        reg.begin(&id.to_public(), "test", Utc::now()).unwrap();
        (dir, reg, id)
    }

    fn version(id: u32, value: Option<String>) -> Version {
        Version {
            id,
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
            value,
        }
    }

    /// A token with one current version holding `value`.
    fn saved(reg: &Registry, value: &str) -> TokenMeta {
        let mut meta = TokenMeta::new("TOK");
        let v = version(1, None);
        let file = reg.save_value("TOK", 1, Minted::of(&v), &Secret::new(value)).unwrap();
        meta.versions.push(Version { value: Some(file), ..v });
        reg.save(&mut meta).unwrap();
        meta
    }

    #[test]
    fn values_round_trip_and_metadata_holds_no_value() {
        let (_d, reg, id) = registry_with_key();
        let meta = saved(&reg, "canary-value-1");
        assert_eq!(reg.load_values(&meta, &id).unwrap().get(1).unwrap().expose(), "canary-value-1");
        let meta_text = fs::read_to_string(reg.meta_path("TOK")).unwrap();
        let file = meta.versions[0].value.clone().unwrap();
        let age_text = fs::read_to_string(reg.value_path("TOK", &file)).unwrap();
        assert!(!meta_text.contains("canary") && !age_text.contains("canary"));
        assert!(meta_text.starts_with("mac = \"e0."), "{meta_text}");
        assert!(age_text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        assert_eq!(reg.load("TOK").unwrap(), meta);
    }

    #[test]
    fn a_hand_edit_of_metadata_is_refused_by_a_member_and_read_without_one() {
        let (_d, reg, _id) = registry_with_key();
        saved(&reg, "v");
        let path = reg.meta_path("TOK");
        let text = fs::read_to_string(&path).unwrap().replace("stage = \"current\"", "stage = \"previous\"");
        fs::write(&path, text).unwrap();
        let err = reg.load("TOK").unwrap_err();
        assert!(matches!(err, RegistryError::Unauthentic { .. }), "{err}");
        assert!(err.hint().unwrap().contains("trust accept"));
        let unverified = Registry::open(reg.dir()).unwrap();
        assert_eq!(unverified.trust(), Trust::Unverified);
        assert_eq!(unverified.load("TOK").unwrap().versions[0].stage, Stage::Previous);
        assert!(matches!(unverified.save(&mut TokenMeta::new("U")), Err(RegistryError::NeedsKey { .. })));
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
        let meta = saved(&reg, "x");
        let stranger = age::x25519::Identity::generate();
        let err = reg.load_values(&meta, &stranger).unwrap_err();
        assert!(matches!(err, RegistryError::Decrypt { .. }));
        assert!(err.hint().unwrap().contains("keys add"));
        assert!(!Registry::open(reg.dir()).unwrap().unlock(&stranger).unwrap(), "a stranger reads unverified");
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
