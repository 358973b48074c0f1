//! Who can read the registry: listing, adding and removing recipients, and
//! re-encrypting every value file to them. Every change re-encrypts in the
//! same step and is crash-safe (see [`Registry::rekey_all`]): a rerun, or
//! `keys rekey`, finishes an interrupted one.

use std::time::Duration;

use age::x25519::Recipient;
use chrono::{DateTime, Utc};

use crate::error::Hinted;
use crate::identity::Identity;
use crate::registry::audit::Event;
use crate::registry::{Registry, RegistryError, RegistryLock, parse_recipients};

/// The recipients of one registry, changed under its writers' lock.
pub struct Keys<'a> {
    pub registry: &'a Registry,
    pub now: DateTime<Utc>,
    pub lock_timeout: Duration,
}

/// A line of the recipients file, with the comment that names it.
#[derive(Debug, serde::Serialize)]
pub struct RecipientEntry {
    pub key: String,
    pub label: String,
}

/// What `add` changed.
#[derive(Debug)]
pub struct Added {
    /// Keys that were new, as `age1…` strings.
    pub added: Vec<String>,
    /// Keys that were listed already.
    pub already: usize,
    /// Value files re-encrypted.
    pub reencrypted: usize,
}

impl Keys<'_> {
    fn lock(&self) -> Result<RegistryLock, RegistryError> {
        self.registry.lock(self.lock_timeout)
    }

    fn audit(&self, event: &'static str, detail: String) -> Result<(), RegistryError> {
        self.registry.audit(Event { event, token: None, version: None, detail: Some(detail) }, self.now)
    }

    /// Every recipient with its name, in file order (checked against the
    /// file's MAC when the key is unlocked).
    pub fn list(&self) -> Result<Vec<RecipientEntry>, RegistryError> {
        if self.registry.keys().is_some() {
            self.registry.recipients()?;
        }
        let text = self.registry.recipients_text()?;
        let mut entries = Vec::new();
        let mut comment = None;
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(c) = trimmed.strip_prefix('#') {
                comment = Some(c.trim().to_string());
            } else if trimmed.is_empty() {
                comment = None;
            } else {
                let key = trimmed.split('#').next().unwrap_or("").trim().to_string();
                entries.push(RecipientEntry { key, label: comment.take().unwrap_or_default() });
            }
        }
        Ok(entries)
    }

    /// Whether a recipients change was interrupted before every file was
    /// re-encrypted.
    pub fn rekey_pending(&self) -> bool {
        self.registry.rekey_pending()
    }

    /// Adds `keys` under `label` and re-encrypts every value file (even when
    /// nothing was new: a rerun finishes an interrupted add).
    pub fn add(&self, identity: &Identity, keys: &[Recipient], label: &str) -> anyhow::Result<Added> {
        let _lock = self.lock()?;
        self.registry.check_member(&identity.key)?;
        self.finish_cut_short(identity)?;
        let mut text = self.registry.recipients_text()?;
        let listed: Vec<String> = self.registry.recipients()?.iter().map(ToString::to_string).collect();
        let mut added = Vec::new();
        for key in keys {
            let key = key.to_string();
            if !listed.contains(&key) && !added.contains(&key) {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&format!("# {label}\n{key}\n"));
                added.push(key);
            }
        }
        // A new member gets the key as it is (every epoch's): nothing they
        // could read before, they are given now.
        let same = (*self.registry.keys().expect("a member unlocked it")).clone();
        let reencrypted = self.rekey_locked(identity, same, Some(&text))?;
        for key in &added {
            self.audit("keys.add", format!("{key} ({label})"))?;
        }
        Ok(Added { already: keys.len() - added.len(), added, reencrypted })
    }

    /// Removes `key` and re-encrypts every value file without it. Refuses
    /// to remove the last key, or the caller's own without `force`.
    /// Returns how many files were re-encrypted.
    pub fn remove(&self, identity: &Identity, key: &Recipient, force: bool) -> anyhow::Result<usize> {
        let key = key.to_string();
        let _lock = self.lock()?;
        self.registry.check_member(&identity.key)?;
        self.finish_cut_short(identity)?;
        let path = self.registry.recipients_path();
        let current = self.registry.recipients()?;
        let text = self.registry.recipients_text()?;
        if !current.iter().any(|r| r.to_string() == key) {
            return Err(Hinted::new(
                format!("{} is not a recipient", shorten(&key)),
                "`chitty-secrets keys list` shows the keys",
            )
            .into());
        }
        if current.len() == 1 {
            return Err(Hinted::new(
                "refusing to remove the last recipient: nobody could read the values",
                "add another key first",
            )
            .into());
        }
        if identity.recipient().to_string() == key && !force {
            return Err(Hinted::new(
                "refusing to remove your own key: you would lock yourself out",
                "pass --force if that is what you want (another recipient must then re-run `keys rekey`)",
            )
            .into());
        }
        let _ = &path;
        // A new key (epoch): the removed member knows the old ones only, and
        // every file is MACed again under the new one. With --force on our
        // own key we can still decrypt: the files are not re-encrypted yet.
        // After this, we cannot.
        let next = self.registry.keys().expect("a member unlocked it").next_epoch();
        let reencrypted = self.rekey_locked(identity, next, Some(&without_key(&text, &key)))?;
        self.audit("keys.remove", key)?;
        Ok(reencrypted)
    }

    /// Re-encrypts every value file to the current recipients.
    pub fn rekey(&self, identity: &Identity) -> anyhow::Result<usize> {
        let _lock = self.lock()?;
        if self.registry.keys().is_none() && !self.registry.unlock(&identity.key)? {
            self.registry.check_member(&identity.key)?;
        }
        if self.registry.rekey_pending() {
            return Ok(self.registry.finish_rekey(&identity.key, crash_after_first())?);
        }
        self.registry.check_member(&identity.key)?;
        let same = (*self.registry.keys().expect("a member unlocked it")).clone();
        self.rekey_locked(identity, same, None)
    }

    /// A change begun and cut short is finished before another begins.
    fn finish_cut_short(&self, identity: &Identity) -> Result<(), RegistryError> {
        if self.registry.rekey_pending() {
            self.registry.finish_rekey(&identity.key, crash_after_first())?;
        }
        Ok(())
    }

    fn rekey_locked(
        &self,
        identity: &Identity,
        keys: crate::registry::RegistryKeys,
        recipients: Option<&str>,
    ) -> anyhow::Result<usize> {
        Ok(self.registry.rekey_all(&identity.key, keys, recipients, crash_after_first())?)
    }
}

/// The crash point tests use to cut a recipients change short.
fn crash_after_first() -> impl FnMut(&str) {
    let mut first = true;
    move |_| {
        if first {
            crate::crash::point("rekey-after-first-file");
            first = false;
        }
    }
}

/// What `init` found and did.
pub struct Initialized {
    pub registry: Registry,
    /// The registry was there already.
    pub existed: bool,
    /// The recipient was new to it.
    pub added: bool,
}

/// `init`: creates the registry at `dir` and makes `recipient` its first
/// reader. On an existing registry with recipients, a key that is not one
/// is never added: a member must (`keys add`), who can re-encrypt the
/// values to it.
pub fn init(
    dir: &std::path::Path,
    recipient: &Recipient,
    label: &str,
    now: DateTime<Utc>,
    lock_timeout: Duration,
) -> anyhow::Result<Initialized> {
    let existed = dir.join("recipients").is_file();
    let registry = Registry::create(dir)?;
    let added = {
        let keys = Keys { registry: &registry, now, lock_timeout };
        let _lock = keys.lock()?;
        let listed = parse_recipients(&registry.recipients_text()?, &registry.recipients_path())?;
        if !listed.is_empty() && !listed.iter().any(|r| r.to_string() == recipient.to_string()) {
            return Err(
                RegistryError::NotMember { path: registry.recipients_path(), key: recipient.to_string() }.into()
            );
        }
        let added = listed.is_empty();
        if added {
            registry.begin(recipient, label, now)?;
            keys.audit("keys.add", format!("{recipient} (init)"))?;
        }
        added
    };
    Ok(Initialized { registry, existed, added })
}

/// The recipients text without `key`'s line and the comment line naming it
/// just above.
fn without_key(text: &str, key: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    for line in text.lines() {
        if line.split('#').next().unwrap_or("").trim() == key {
            if kept.last().is_some_and(|l| l.trim_start().starts_with('#')) {
                kept.pop();
            }
            continue;
        }
        kept.push(line);
    }
    let mut out = kept.join("\n");
    out.push('\n');
    out
}

/// A key shortened for messages.
pub fn shorten(text: &str) -> String {
    if text.chars().count() > 24 {
        format!("{}…", text.chars().take(20).collect::<String>())
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::without_key;

    #[test]
    fn removing_a_key_drops_its_naming_comment_and_nothing_else() {
        let text = "# alice\nage1alice\n\n# bob\nage1bob\n# carol\nage1carol # laptop\n";
        assert_eq!(without_key(text, "age1bob"), "# alice\nage1alice\n\n# carol\nage1carol # laptop\n");
        assert_eq!(without_key(text, "age1carol"), "# alice\nage1alice\n\n# bob\nage1bob\n");
    }
}
