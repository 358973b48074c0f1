//! Where authentication begins: a new registry's key (`init`), and the
//! one-time upgrade of a registry from before authentication.
//!
//! The upgrade is resumable: the key waits on this machine (beside the
//! identity, never in the repository) until every file is in the new
//! format, and only then is written as `key.age`. Until that rename the registry is still of the old format to
//! every command (older binaries included); after it, every file is a
//! member's. A rerun picks the same key up and skips what is done.

use std::fs;
use std::io;

use chrono::{DateTime, Utc};

use super::auth::RegistryKeys;
use super::crypto::{self, Minted};
use super::{Registry, RegistryError, audit, checked_name, fsutil, parse_recipients};

/// What an upgrade did.
#[derive(Debug, Default)]
pub struct Upgraded {
    /// Tokens whose files were rewritten.
    pub tokens: usize,
    /// Value files written (one a version).
    pub values: usize,
}

impl Registry {
    /// Where the key of an upgrade under way waits: on this machine, beside
    /// the identity — never in the repository, where anyone could put a key
    /// of their own for the upgrade to adopt.
    fn upgrading_path(&self) -> std::path::PathBuf {
        let place = self.dir.canonicalize().unwrap_or_else(|_| self.dir.clone());
        let name = &audit::sha256_hex(place.display().to_string().as_bytes())[..16];
        crate::identity::config_file().with_file_name(format!("upgrading-{name}.age"))
    }

    /// A new registry's first key, for its first member: the key file, the
    /// recipients file's MAC, and the audit line authentication begins at.
    pub fn begin(&self, first: &age::x25519::Recipient, label: &str, at: DateTime<Utc>) -> Result<(), RegistryError> {
        if self.is_authenticated() || !parse_recipients(&self.recipients_text()?, &self.recipients_path())?.is_empty() {
            return Err(RegistryError::Crypto("the registry has members already".into()));
        }
        let keys = RegistryKeys::generate();
        let path = self.key_path();
        fsutil::write_atomic(&path, &keys.seal(std::slice::from_ref(first))?)
            .map_err(|e| RegistryError::io(&path, e))?;
        self.set_keys(Some(keys));
        let mut text = self.recipients_text()?;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!("# {label}\n{first}\n"));
        self.write_recipients(&text)?;
        self.audit_key_event(at)?;
        Ok(())
    }

    /// The audit line authentication begins at: it names the hash of the
    /// log before it, so nothing can be added there afterwards.
    fn audit_key_event(&self, at: DateTime<Utc>) -> Result<(), RegistryError> {
        let keys = self.require_keys("writing the audit log")?;
        let path = self.audit_path();
        let before = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(RegistryError::io(&path, e)),
        };
        let detail = format!(
            "registry {} is authenticated from here on; the log before this line is sha256 {}",
            keys.registry_id(),
            audit::sha256_hex(before.as_bytes())
        );
        self.audit(audit::Event { event: audit::KEY_EVENT, token: None, version: None, detail: Some(detail) }, at)
    }

    /// Upgrades a registry of the format before authentication: a registry
    /// key for its recipients, each version's value in a file of its own,
    /// and a MAC on every file. `identity` must be a member's (it decrypts
    /// every value file). The caller holds the lock.
    pub fn upgrade(&self, identity: &age::x25519::Identity, at: DateTime<Utc>) -> Result<Upgraded, RegistryError> {
        if self.is_authenticated() {
            return Ok(Upgraded::default());
        }
        // A registry known to be authenticated whose key file is gone is
        // not an older registry: upgrading it would hand a new key to
        // whoever edited the recipients.
        let began = fs::read_to_string(self.audit_path())
            .is_ok_and(|log| log.contains(&format!("\"event\":\"{}\"", audit::KEY_EVENT)));
        if began || super::auth::Pins::of_user().knows(&self.dir) || super::auth::Pins::env_pin().is_some() {
            return Err(RegistryError::KeyReplaced {
                path: self.key_path(),
                why: "it is gone from a registry that was authenticated (its audit log or this machine says so): this is not an older registry to upgrade".into(),
            });
        }
        let recipients = parse_recipients(&self.recipients_text()?, &self.recipients_path())?;
        if recipients.is_empty() {
            return Err(RegistryError::NoRecipients { path: self.recipients_path() });
        }
        let key = identity.to_public().to_string();
        if !recipients.iter().any(|r| r.to_string() == key) {
            return Err(RegistryError::NotMember { path: self.recipients_path(), key });
        }
        // The key of an upgrade cut short, or a new one.
        let upgrading = self.upgrading_path();
        let keys = match fs::read(&upgrading) {
            Ok(bytes) => RegistryKeys::open(&bytes, identity, &upgrading)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let keys = RegistryKeys::generate();
                if let Some(dir) = upgrading.parent() {
                    fsutil::create_private_dir(dir).map_err(|e| RegistryError::io(dir, e))?;
                }
                fsutil::write_atomic(&upgrading, &keys.seal(&recipients)?)
                    .map_err(|e| RegistryError::io(&upgrading, e))?;
                keys
            }
            Err(e) => return Err(RegistryError::io(&upgrading, e)),
        };
        let mut done = Upgraded::default();
        let names = self.token_names()?;
        // Every token's values and metadata in the new format, read as they
        // are (nothing was authenticated before: this is where trust starts).
        self.set_keys(Some(keys.clone()));
        let result = (|| {
            for name in &names {
                done.values += self.upgrade_token(name, identity, &keys, &recipients)?;
                done.tokens += 1;
                if done.tokens == 1 {
                    crate::crash::point("upgrade-after-first-token");
                }
            }
            self.write_recipients(&self.recipients_text()?)?;
            Ok::<_, RegistryError>(())
        })();
        self.set_keys(None);
        result?;
        // The new format takes effect for everyone when the key file is written.
        let sealed = fs::read(&upgrading).map_err(|e| RegistryError::io(&upgrading, e))?;
        fsutil::write_atomic(&self.key_path(), &sealed).map_err(|e| RegistryError::io(&self.key_path(), e))?;
        let _ = fs::remove_file(&upgrading);
        self.set_keys(Some(keys));
        for name in &names {
            let old = self.legacy_values_path(name);
            match fs::remove_file(&old) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(RegistryError::io(&old, e)),
            }
        }
        self.note_dir(self.dir.join("tokens"))?;
        self.audit_key_event(at)?;
        Ok(done)
    }

    /// One token in the new format: a value file for each version the old
    /// file holds, and the metadata naming them, MACed. Skips a token a
    /// cut-short upgrade finished. Returns the value files written.
    fn upgrade_token(
        &self,
        name: &str,
        identity: &age::x25519::Identity,
        keys: &RegistryKeys,
        recipients: &[age::x25519::Recipient],
    ) -> Result<usize, RegistryError> {
        checked_name(name)?;
        let meta_path = self.meta_path(name);
        let text = fs::read_to_string(&meta_path).map_err(|e| RegistryError::io(&meta_path, e))?;
        let (body, mac) = super::split_meta_mac(&text);
        if mac.is_some_and(|tag| keys.check(tag, "meta", name, body.as_bytes(), false).is_ok()) {
            return Ok(0);
        }
        let mut meta: super::TokenMeta = toml::from_str(body)
            .map_err(|e| RegistryError::Corrupt { path: meta_path.clone(), why: e.message().to_string() })?;
        let old = self.legacy_values_path(name);
        let values = match fs::read(&old) {
            Ok(bytes) => crypto::open_legacy(name, &bytes, identity, &old)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => crypto::Values::default(),
            Err(e) => return Err(RegistryError::io(&old, e)),
        };
        let mut written = 0;
        for version in &mut meta.versions {
            let Some(value) = values.get(version.id) else { continue };
            let id = fsutil::random_hex(8);
            let file = crypto::ValueFile {
                token: name.to_string(),
                id: id.clone(),
                version: version.id,
                minted: Minted::of(version),
                value: value.clone(),
            };
            let bytes = crypto::seal_value(&file, keys, recipients)?;
            self.write_value(name, &id, &bytes)?;
            version.value = Some(id);
            written += 1;
        }
        meta.schema = super::SCHEMA;
        meta.generation += 1;
        self.write(&meta_path, super::meta_text(&meta, keys).as_bytes())?;
        Ok(written)
    }
}
