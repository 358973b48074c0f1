//! A member's view of every file: which are a member's (`trust status`),
//! and vouching for one after review (`trust accept`), audited.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{Registry, RegistryError, TokenMeta, audit, crypto, meta_text, split_meta_mac};

/// A file of the registry that is not a member's, and why.
#[derive(Debug)]
pub struct Doubt {
    pub path: PathBuf,
    pub why: String,
}

/// What `trust accept` vouched for.
#[derive(Debug)]
pub enum Accepted {
    Recipients {
        keys: usize,
    },
    /// A machine's check-in (what it says its .env files hold).
    Checkin {
        machine: String,
    },
    Metadata {
        token: String,
    },
    /// With what the file says was minted: a person reviews that, since
    /// `git log -p` shows ciphertext only.
    Value {
        token: String,
        minted: String,
    },
    AuditLog,
}

/// Which registry file a path names.
enum Kind {
    Recipients,
    Metadata(String),
    Value(String, String),
    AuditLog,
    Checkin(String),
}

impl Registry {
    /// Every file of the registry checked under the key (unlocked by a
    /// member): the recipients, every token's metadata, every value file
    /// and the audit log. Returns the ones that are not a member's.
    pub fn doubts(&self, identity: &age::x25519::Identity) -> Result<Vec<Doubt>, RegistryError> {
        self.require_keys("checking the registry")?;
        let mut doubts = Vec::new();
        let mut note = |r: Result<(), RegistryError>| {
            if let Err(e) = r {
                let (path, why) = match &e {
                    RegistryError::Unauthentic { path, why } => (path.clone(), format!("not a member's: {why}")),
                    RegistryError::Corrupt { path, why } => (path.clone(), why.clone()),
                    RegistryError::Io { path, error } => (path.clone(), error.to_string()),
                    RegistryError::Decrypt { path, why } => (path.clone(), format!("cannot decrypt: {why}")),
                    RegistryError::Conflicted { path } => (path.clone(), "git's conflict markers".into()),
                    _ => (self.dir.clone(), e.to_string()),
                };
                doubts.push(Doubt { path, why });
            }
        };
        note(self.recipients().map(drop));
        for checkin in self.checkin_names()? {
            note(self.checkin(&checkin).map(drop));
        }
        for name in self.token_names()? {
            note(self.load_existing(&name).map(drop));
            for id in self.value_ids(&name)? {
                note(self.open_value(&name, &id, identity).map(drop));
            }
        }
        let path = self.audit_path();
        if let Ok(text) = fs::read_to_string(&path)
            && let Err(breaks) = audit::verify(&text, self.keys().as_deref())
        {
            for b in breaks {
                doubts.push(Doubt { path: path.clone(), why: format!("line {}: {}", b.line, b.why) });
            }
        }
        Ok(doubts)
    }

    fn kind_of(&self, path: &Path) -> Option<Kind> {
        // The path as given, or as it resolves (from another folder, through links).
        let rel = match path.strip_prefix(&self.dir) {
            Ok(rel) => rel.to_path_buf(),
            Err(_) => path.canonicalize().ok()?.strip_prefix(self.dir.canonicalize().ok()?).ok()?.to_path_buf(),
        };
        let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
        match parts.as_slice() {
            ["recipients"] => Some(Kind::Recipients),
            ["audit.log"] => Some(Kind::AuditLog),
            ["machines", file] => file.strip_suffix(".toml").map(|m| Kind::Checkin(m.to_string())),
            ["tokens", file] => match (file.strip_suffix(".toml"), file.strip_suffix(".age")) {
                (Some(name), _) => Some(Kind::Metadata(name.to_string())),
                (_, Some(stem)) => stem.split_once('.').map(|(t, id)| Kind::Value(t.to_string(), id.to_string())),
                _ => None,
            },
            _ => None,
        }
    }

    /// A member vouches for a file as it is now, after reviewing it: it is
    /// MACed under the key (the recipients: the key file is encrypted to
    /// them too), and an audit line says who accepted what. The key must
    /// be unlocked with [`Registry::unlock_keys_only`].
    pub fn accept(
        &self,
        path: &Path,
        identity: &age::x25519::Identity,
        at: DateTime<Utc>,
    ) -> Result<Accepted, RegistryError> {
        let keys = self.require_keys("accepting a change")?;
        let kind = self.kind_of(path).ok_or_else(|| RegistryError::Corrupt {
            path: path.to_path_buf(),
            why: "not a file of the registry that a member can accept (recipients, tokens/NAME.toml, tokens/NAME.ID.age, machines/NAME.toml or audit.log)".into(),
        })?;
        let (accepted, detail) = match kind {
            Kind::Recipients => {
                let text = self.recipients_text()?;
                let keys_listed = crypto::parse_recipients(&text, &self.recipients_path())?.len();
                self.rekey_all(identity, (*keys).clone(), Some(&text), |_| {})?;
                let detail = format!("recipients ({keys_listed} keys, sha256 {})", audit::sha256_hex(text.as_bytes()));
                (Accepted::Recipients { keys: keys_listed }, detail)
            }
            Kind::Metadata(token) => {
                super::checked_name(&token)?;
                let path = self.meta_path(&token);
                let text = fs::read_to_string(&path).map_err(|e| RegistryError::io(&path, e))?;
                let (body, _) = split_meta_mac(&text);
                let meta: TokenMeta = toml::from_str(body)
                    .map_err(|e| RegistryError::Corrupt { path: path.clone(), why: e.message().to_string() })?;
                if meta.name != token {
                    return Err(RegistryError::Corrupt {
                        path,
                        why: format!("it holds the metadata of `{}`, not `{token}`", meta.name),
                    });
                }
                self.write(&path, meta_text(&meta, &keys).as_bytes())?;
                let detail = format!("tokens/{token}.toml (sha256 {})", audit::sha256_hex(body.as_bytes()));
                (Accepted::Metadata { token }, detail)
            }
            Kind::Value(token, id) => {
                super::checked_name(&token)?;
                super::checked_value_id(&id, path)?;
                let path = self.value_path(&token, &id);
                let bytes = fs::read(&path).map_err(|e| RegistryError::io(&path, e))?;
                let file = crypto::open_value_checked(&bytes, identity, None, (&token, &id), &path)?;
                // A time to come would make it the newest value (current)
                // if no metadata names it: not a file a member wrote.
                if file.minted.created_at > at + chrono::TimeDelta::hours(1) {
                    return Err(RegistryError::Unauthentic {
                        path,
                        why: format!(
                            "it says it was minted at {}, which has not come yet",
                            file.minted.created_at.to_rfc3339()
                        ),
                    });
                }
                let minted = format!(
                    "v{} of issuer `{}`, token id {}, minted {}",
                    file.version,
                    file.minted.issuer,
                    file.minted.token_id.as_deref().unwrap_or("none"),
                    file.minted.created_at.to_rfc3339()
                );
                let sealed = crypto::seal_value(&file, &keys, &self.recipients()?)?;
                self.write(&path, &sealed)?;
                (Accepted::Value { token: token.clone(), minted }, format!("tokens/{token}.{id}.age"))
            }
            Kind::Checkin(machine) => {
                let path = self.machines_dir().join(format!("{machine}.toml"));
                if !super::machine::valid_machine_name(&machine) {
                    return Err(RegistryError::Corrupt { path, why: "not a machine's name".into() });
                }
                let text = fs::read_to_string(&path).map_err(|e| RegistryError::io(&path, e))?;
                let (body, _) = split_meta_mac(&text);
                let checkin: super::machine::Checkin = toml::from_str(body)
                    .map_err(|e| RegistryError::Corrupt { path: path.clone(), why: e.message().to_string() })?;
                if checkin.machine != machine {
                    return Err(RegistryError::Corrupt {
                        path,
                        why: format!("it is the check-in of `{}`", checkin.machine),
                    });
                }
                self.write_checkin(&checkin, &keys)?;
                let detail = format!("machines/{machine}.toml (sha256 {})", audit::sha256_hex(body.as_bytes()));
                (Accepted::Checkin { machine }, detail)
            }
            Kind::AuditLog => {
                let path = self.audit_path();
                let text = fs::read_to_string(&path).map_err(|e| RegistryError::io(&path, e))?;
                let detail = format!(
                    "audit.log as it is: the log before this line is sha256 {}",
                    audit::sha256_hex(text.as_bytes())
                );
                self.audit(
                    audit::Event { event: audit::ACCEPT_EVENT, token: None, version: None, detail: Some(detail) },
                    at,
                )?;
                return Ok(Accepted::AuditLog);
            }
        };
        self.audit(audit::Event { event: audit::ACCEPT_EVENT, token: None, version: None, detail: Some(detail) }, at)?;
        Ok(accepted)
    }
}

/// Which side of a conflicted metadata file a merge keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Ours,
    Theirs,
}

/// The git merge driver's choice for `tokens/NAME.toml` (`merge=chitty-secrets`):
/// one side whole, never a mix of lines — the side whose current value is
/// newer (then the pending one, then the higher generation). Each side
/// keeps its MAC; the other side's value file stays in the tree and the
/// next member's `sync` or `rotate` records it. `None` when a side is not
/// metadata (git then leaves the conflict to a person).
pub fn pick_side(ours: &str, theirs: &str) -> Option<Side> {
    let parse = |text: &str| toml::from_str::<TokenMeta>(split_meta_mac(text).0).ok();
    let (a, b) = (parse(ours)?, parse(theirs)?);
    if a.name != b.name {
        return None;
    }
    let rank = |m: &TokenMeta| {
        let newest = |stage| m.in_stage(stage).map(|v| v.created_at);
        (newest(super::Stage::Current), newest(super::Stage::Pending), m.generation)
    };
    Some(if rank(&b) > rank(&a) { Side::Theirs } else { Side::Ours })
}

/// The git configuration that runs [`pick_side`] for this repository, as
/// `git config` key and value pairs, with `program` as the binary to run.
pub fn merge_driver_config(program: &str) -> [(&'static str, String); 2] {
    [
        (
            "merge.chitty-secrets.name",
            "chitty-secrets registry metadata (one side whole; nothing minted is lost)".into(),
        ),
        ("merge.chitty-secrets.driver", format!("'{program}' trust merge-file %O %A %B %P")),
    ]
}

/// What differs between the newest version of a file in git history that
/// a member wrote and the file now: for an error that must say what
/// changed. `None` without git, or when no earlier version verifies.
pub(super) fn what_changed(registry: &Registry, path: &Path, now: &str) -> Option<String> {
    let keys = registry.keys()?;
    let rel = path.strip_prefix(&registry.dir).ok()?.to_str()?.to_string();
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(&registry.dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let commits = git(&["log", "--format=%H", "-n", "50", "--", &rel])?;
    for commit in commits.lines() {
        let Some(then) = git(&["show", &format!("{commit}:./{rel}")]) else { continue };
        let short = &commit[..commit.len().min(10)];
        if let Some(token) = rel.strip_prefix("tokens/").and_then(|r| r.strip_suffix(".toml")) {
            let (body, mac) = split_meta_mac(&then);
            if mac.is_none_or(|tag| keys.check(tag, "meta", token, body.as_bytes(), true).is_err()) {
                continue;
            }
            let parse = |text: &str| toml::from_str::<TokenMeta>(split_meta_mac(text).0).ok();
            let changes = meta_changes(&parse(&then)?, &parse(now)?);
            return Some(if changes.is_empty() {
                format!("its content is that of commit {short}, the last a member wrote, but not its MAC")
            } else {
                format!("since commit {short}, the last version a member wrote: {}", changes.join("; "))
            });
        }
        if rel == "recipients" {
            let (rest, mac) = crypto::split_recipients_mac(&then);
            if mac.is_none_or(|tag| keys.check(tag, "recipients", "", rest.as_bytes(), true).is_err()) {
                continue;
            }
            let keys_of = |text: &str| -> Vec<String> {
                text.lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect()
            };
            let (before, after) = (keys_of(&rest), keys_of(&crypto::split_recipients_mac(now).0));
            let mut changes: Vec<String> =
                after.iter().filter(|k| !before.contains(k)).map(|k| format!("{k} added")).collect();
            changes.extend(before.iter().filter(|k| !after.contains(k)).map(|k| format!("{k} removed")));
            if changes.is_empty() {
                changes.push("comments or layout only".into());
            }
            return Some(format!("since commit {short}, the last version a member wrote: {}", changes.join("; ")));
        }
        return None;
    }
    None
}

/// The differences that matter between two metadata files, in words.
fn meta_changes(then: &TokenMeta, now: &TokenMeta) -> Vec<String> {
    let mut out = Vec::new();
    let show = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
    let when = |o: &Option<DateTime<Utc>>| o.map_or("none".into(), |d| d.to_rfc3339());
    for v in &now.versions {
        let Some(old) = then.versions.iter().find(|o| o.id == v.id) else {
            out.push(format!("v{} added ({})", v.id, v.stage.as_str()));
            continue;
        };
        if old.stage != v.stage {
            out.push(format!("v{} {} → {}", v.id, old.stage.as_str(), v.stage.as_str()));
        }
        if old.token_id != v.token_id {
            out.push(format!("v{} token id {} → {}", v.id, show(&old.token_id), show(&v.token_id)));
        }
        if old.expires_at != v.expires_at {
            out.push(format!("v{} expires_at {} → {}", v.id, when(&old.expires_at), when(&v.expires_at)));
        }
        if old.retire_after != v.retire_after {
            out.push(format!("v{} retire_after {} → {}", v.id, when(&old.retire_after), when(&v.retire_after)));
        }
        if old.value != v.value {
            out.push(format!("v{} value file {} → {}", v.id, show(&old.value), show(&v.value)));
        }
    }
    for old in then.versions.iter().filter(|o| !now.versions.iter().any(|v| v.id == o.id)) {
        out.push(format!("v{} removed", old.id));
    }
    if then.deliveries != now.deliveries {
        out.push("delivery records".into());
    }
    if then.orphans != now.orphans {
        out.push("suspected orphans".into());
    }
    if then.rotation != now.rotation {
        out.push("the rotation journal".into());
    }
    out
}
