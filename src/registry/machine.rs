//! A .env file lives on a machine: what it holds is that machine's, not the
//! repository's. Its delivery records are kept outside git, per machine and
//! per checkout ([`LocalDeliveries`]); what each named machine last synced is
//! told to the others through a MACed check-in file in the registry,
//! `machines/NAME.toml` ([`Checkin`]), written by a machine that is not
//! thrown away after the run (a CI runner is).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::{Delivery, DeliveryKey};
use crate::targets::TargetId;

/// The name of a machine: letters, digits, `.`, `_`, `-`, at most 64.
pub fn valid_machine_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && !name.starts_with('.')
}

/// This machine's name: `CHITTY_SECRETS_MACHINE`, else the host name
/// (found once a run: every .env target asks).
pub fn this_machine() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(find_this_machine).clone()
}

fn find_this_machine() -> String {
    let given = std::env::var("CHITTY_SECRETS_MACHINE").ok().filter(|n| !n.trim().is_empty());
    let host = || {
        ["/proc/sys/kernel/hostname", "/etc/hostname"]
            .iter()
            .find_map(|p| std::fs::read_to_string(p).ok())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::env::var("COMPUTERNAME").ok())
    };
    let name = given.or_else(host).unwrap_or_default();
    // The whole name (a policy may name `web-1.prod`), made safe as a file
    // name.
    let name: String = name
        .trim()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' })
        .take(64)
        .collect();
    if valid_machine_name(&name) { name } else { "this-machine".into() }
}

/// Whether this run is on a machine thrown away after it: a CI runner. A
/// file it writes is gone with it, so it vouches for nobody's .env.
pub fn throwaway() -> bool {
    let set = |v: &str| std::env::var(v).is_ok_and(|x| x.eq_ignore_ascii_case("true") || x == "1");
    set("CI") || set("GITHUB_ACTIONS")
}

/// Whether a delivery record belongs to the machine, not the repository.
pub fn is_machine_local(key: &DeliveryKey) -> bool {
    key.target.local_file().is_some()
}

/// One record as the machine-local file keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LocalRecord {
    target: TargetId,
    name: String,
    #[serde(flatten)]
    delivery: Delivery,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LocalFile {
    /// The checkout these records are for (read by people).
    #[serde(default)]
    place: String,
    #[serde(default)]
    tokens: BTreeMap<String, Vec<LocalRecord>>,
}

/// This machine's delivery records for one checkout's .env targets, kept
/// beside the identity (`deliveries/HASH.toml`, HASH of the checkout's
/// path), never in git.
/// Read once a run; every write goes through it (under the registry's lock).
#[derive(Debug)]
pub struct LocalDeliveries {
    path: PathBuf,
    place: String,
    cache: std::sync::Mutex<Option<LocalFile>>,
}

impl LocalDeliveries {
    /// The records of the checkout that holds the registry at `dir`.
    pub fn of(dir: &Path) -> Self {
        let place = super::auth::Pins::place(dir);
        let hash = super::audit::sha256_hex(place.as_bytes());
        let path = crate::identity::config_file().with_file_name("deliveries").join(format!("{}.toml", &hash[..16]));
        LocalDeliveries { path, place, cache: std::sync::Mutex::new(None) }
    }

    fn with<T>(&self, f: impl FnOnce(&LocalFile) -> T) -> T {
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(cache.get_or_insert_with(|| {
            std::fs::read_to_string(&self.path).ok().and_then(|t| toml::from_str(&t).ok()).unwrap_or_default()
        }))
    }

    /// Where they are kept (for messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The records of `token` on this machine.
    pub fn of_token(&self, token: &str) -> BTreeMap<DeliveryKey, Delivery> {
        self.with(|file| Self::records(file, token))
    }

    /// Replaces `token`'s records. Returns whether anything changed. Tokens
    /// saved side by side each go through here: the records are changed
    /// under one lock, so no token's records are lost to another's.
    pub fn put(&self, token: &str, records: &BTreeMap<DeliveryKey, Delivery>) -> std::io::Result<bool> {
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let file = cache.get_or_insert_with(|| {
            std::fs::read_to_string(&self.path).ok().and_then(|t| toml::from_str(&t).ok()).unwrap_or_default()
        });
        let list: Vec<LocalRecord> = records
            .iter()
            .map(|(k, d)| LocalRecord { target: k.target.clone(), name: k.name.clone(), delivery: d.clone() })
            .collect();
        if file.tokens.get(token).map_or(list.is_empty(), |old| *old == list) {
            return Ok(false);
        }
        if list.is_empty() {
            file.tokens.remove(token);
        } else {
            file.tokens.insert(token.to_string(), list);
        }
        file.place.clone_from(&self.place);
        // Put in place at once, whole (a killed run loses nothing), but not
        // synced: a machine that crashes may lose the newest records, and
        // the next `sync` records again what the files hold (they are
        // read back), so no sync is spent on them.
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = toml::to_string(file).expect("records serialize");
        crate::fsutil::replace_unsynced(&self.path, text.as_bytes())?;
        Ok(true)
    }

    /// Every token's records on this machine.
    pub fn all(&self) -> BTreeMap<String, BTreeMap<DeliveryKey, Delivery>> {
        self.with(|file| file.tokens.keys().map(|t| (t.clone(), Self::records(file, t))).collect())
    }

    fn records(file: &LocalFile, token: &str) -> BTreeMap<DeliveryKey, Delivery> {
        file.tokens
            .get(token)
            .into_iter()
            .flatten()
            .map(|r| (DeliveryKey::new(&r.target, r.name.clone()), r.delivery.clone()))
            .collect()
    }
}

/// What one machine said it holds, as of its last sync.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Held {
    pub token: String,
    pub target: TargetId,
    pub name: String,
    pub version: u32,
    pub at: DateTime<Utc>,
}

/// A machine's check-in: every .env name it holds, by token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkin {
    pub machine: String,
    #[serde(default)]
    pub holds: Vec<Held>,
}

impl Checkin {
    /// What this machine last synced of `token` at `target` under `name`.
    pub fn held(&self, token: &str, target: &TargetId, name: &str) -> Option<&Held> {
        self.holds.iter().find(|h| h.token == token && h.target == *target && h.name == name)
    }

    /// Replaces `token`'s entries with `records`.
    pub fn set(&mut self, token: &str, records: &BTreeMap<DeliveryKey, Delivery>) {
        self.holds.retain(|h| h.token != token);
        self.holds.extend(records.iter().map(|(k, d)| Held {
            token: token.to_string(),
            target: k.target.clone(),
            name: k.name.clone(),
            version: d.version,
            at: d.at,
        }));
        self.holds.sort_by(|a, b| (&a.token, &a.target, &a.name).cmp(&(&b.token, &b.target, &b.name)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_are_safe_file_names() {
        assert!(valid_machine_name("web-1"));
        assert!(valid_machine_name("laptop_ana.local"));
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(!valid_machine_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_checkin_keeps_one_entry_per_token_target_and_name() {
        let mut c = Checkin { machine: "web-1".into(), holds: Vec::new() };
        let at = Utc::now();
        let d = |version| Delivery { version, at, remote_updated_at: None, worker_version: None };
        let mut records = BTreeMap::new();
        records.insert(DeliveryKey::new(&crate::targets::TargetId::parse("dotenv:app/.env").unwrap(), "A"), d(1));
        c.set("A", &records);
        records.insert(DeliveryKey::new(&crate::targets::TargetId::parse("dotenv:app/.env").unwrap(), "A"), d(2));
        c.set("A", &records);
        assert_eq!(c.holds.len(), 1);
        assert_eq!(
            c.held("A", &crate::targets::TargetId::parse("dotenv:app/.env").unwrap(), "A").map(|h| h.version),
            Some(2)
        );
    }
}
