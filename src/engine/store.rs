//! Values a person supplies: `set` (stdin) and `import` (an existing .env
//! file). Both store through [`TokenMeta::store_current`]; `import` also
//! records the file it read as holding that version, where it is a target.

use std::collections::BTreeMap;
use std::path::Path;

use super::Workspace;
use crate::error::Hinted;
use crate::placeholder::placeholder_reason;
use crate::registry::{DeliveryKey, NewVersion, TokenMeta, ValueOrigin, Values};
use crate::secret::Secret;
use crate::targets::dotenv_file::{DotenvFile, Unreadable};

impl Workspace {
    /// `rotate --forget-orphan TAG`: a suspected orphan someone has dealt
    /// with (revoked at the issuer, or found never minted) leaves the
    /// registry, with an audit line saying who closed it. Returns the token
    /// and issuer it belonged to.
    pub fn forget_orphan(&self, tag: &str) -> anyhow::Result<(String, String)> {
        let _lock = self.lock()?;
        for name in self.registry.token_names()? {
            let mut meta = self.registry.load(&name)?;
            let Some(at) = meta.orphans.iter().position(|o| o.tag == tag) else { continue };
            let orphan = meta.orphans.remove(at);
            self.registry.save(&mut meta)?;
            let detail =
                format!("suspected orphan [chitty-secrets {tag}] of issuer `{}` resolved by hand", orphan.issuer);
            self.audit("rotate.orphan-forgotten", &name, None, Some(detail))?;
            return Ok((name, orphan.issuer));
        }
        Err(Hinted::new(
            format!("no token in the registry has a suspected orphan tagged {tag}"),
            "`chitty-secrets check` lists suspected orphans with their tags",
        )
        .into())
    }

    /// Saves `value` as the token's new current version (the old current
    /// becomes previous for the token's overlap); values are saved before
    /// metadata. The caller holds the lock and has decrypted the token's
    /// `values`. Returns the new version's id.
    pub fn store_value(
        &self,
        meta: &mut TokenMeta,
        values: &mut Values,
        value: Secret,
        origin: ValueOrigin,
        placeholder: bool,
    ) -> anyhow::Result<u32> {
        let token = self.token(&meta.name)?;
        let now = self.now;
        let new = NewVersion {
            issuer: token.issuer.clone(),
            issued_by: self.policy.issuer_of(token).issued_by(),
            token_id: None,
            scopes: token.scopes.clone(),
            created_at: now,
            expires_at: token.ttl.map(|t| now + t.0),
            origin,
            placeholder,
            value: None,
        };
        // Refused (nothing written) while a rotation is in progress.
        if let Some(p) = meta.pending() {
            return Err(crate::registry::LifecycleError::RotationInProgress {
                token: meta.name.clone(),
                pending: p.id,
            }
            .into());
        }
        let mut new = new;
        let mut next = meta.clone();
        new.value = Some(self.registry.save_value(&token.name, next.next_version_id(), new.minted(), &value)?);
        let id = next.store_current(new, now + token.overlap.0)?;
        values.insert(id, value);
        *meta = next;
        self.registry.save(meta)?;
        self.audit(origin.as_str(), &token.name, Some(id), None)?;
        Ok(id)
    }

    /// `set`: checks the value against the placeholder rules and the
    /// token's targets, then stores it.
    pub fn set_value(&self, name: &str, value: Secret, allow_placeholder: bool, force: bool) -> anyhow::Result<u32> {
        let token = self.token(name)?;
        // A value that cannot be the issuer's (a `random` issuer's prefix
        // missing) is most likely pasted into the wrong token.
        if let crate::policy::IssuerSpec::Random(r) = &self.policy.issuer_of(token).spec
            && !r.prefix.is_empty()
            && !value.expose().starts_with(&r.prefix)
            && !force
        {
            return Err(Hinted::new(
                format!(
                    "refusing to store the value for {name}: its issuer `{}` makes values starting `{}`, and this one does not",
                    token.issuer, r.prefix
                ),
                "check that it is the right token (or pass --force if it is)",
            )
            .into());
        }
        let placeholder = placeholder_reason(value.expose(), &self.policy.placeholders);
        if let Some(why) = placeholder.filter(|_| !allow_placeholder) {
            return Err(Hinted::new(
                format!("refusing to store the value for {name}: it {why}"),
                "pipe the real token into `chitty-secrets set`",
            )
            .into());
        }
        if let Some(target) = token.targets.iter().find(|t| t.dotenv_path(&self.policy.root).is_some())
            && !crate::targets::dotenv_file::can_carry(&value)
        {
            return Err(Hinted::new(
                format!(
                    "refusing to store the value for {name}: its target {} is a .env file, and no .env quoting carries this value so that every common .env reader (godotenv, npm dotenv, python-dotenv, dotenvy) reads it back the same",
                    target.address()
                ),
                "in .env files a value may not hold `${` or control characters, and a quote cannot be mixed with `$`, a backslash or a line break (README: .env files)",
            )
            .into());
        }
        if let Some(why) = token.targets.iter().find_map(|t| crate::targets::value_problem(t, &value)) {
            return Err(Hinted::new(
                format!("refusing to store the value for {name}: it {why}"),
                "every target must be able to take the value before it is stored",
            )
            .into());
        }
        let identity = self.identity()?;
        let _lock = self.lock()?;
        let mut meta = self.registry.load(name)?;
        let mut values = self.registry.load_values(&meta, &identity.key)?;
        self.store_value(&mut meta, &mut values, value, ValueOrigin::Set, placeholder.is_some())
    }

    /// `import FILE`: every key a policy declares (as a token or a target
    /// alias) is stored as its token's current value; placeholders are
    /// refused unless `allow_placeholders`.
    pub fn import(&self, file: &Path, only: &[String], allow_placeholders: bool) -> anyhow::Result<ImportReport> {
        for name in only {
            self.token(name)?;
        }
        let bytes = zeroize::Zeroizing::new(std::fs::read(file).map_err(|e| {
            Hinted::new(format!("cannot read {}: {e}", file.display()), "give the path of an existing .env file")
        })?);
        let parsed = DotenvFile::parse(&bytes)
            .map_err(|_| Hinted::new(format!("{} is not UTF-8 text", file.display()), "is it really a .env file?"))?;

        // Which token each key stands for: its own name, or an alias a target uses.
        let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
        for token in self.policy.tokens.values() {
            owner.insert(&token.name, &token.name);
            for target in &token.targets {
                for n in &target.names {
                    owner.entry(n).or_insert(&token.name);
                }
            }
        }
        let mut report = ImportReport::default();
        let mut candidates: BTreeMap<String, Vec<(String, Secret, usize)>> = BTreeMap::new();
        for (key, found) in parsed.entries() {
            let Some(token) = owner.get(key.as_str()) else {
                report.unknown.push(key);
                continue;
            };
            if !only.is_empty() && !only.iter().any(|o| o == token) {
                continue;
            }
            let line = found.line;
            let value = match found.value {
                Ok(v) => v,
                Err(why) => {
                    report.refused.push(Refusal::Unreadable { key, line, why });
                    continue;
                }
            };
            if let Some(why) =
                placeholder_reason(value.expose(), &self.policy.placeholders).filter(|_| !allow_placeholders)
            {
                report.refused.push(Refusal::Placeholder { key, line, why });
                continue;
            }
            candidates.entry(token.to_string()).or_default().push((key, value, line));
        }

        let identity = self.identity()?;
        let _lock = self.lock()?;
        let canonical_file = file.canonicalize().ok();
        for (name, found) in candidates {
            let (first_key, value, first_line) = &found[0];
            if let Some((key, _, line)) = found.iter().find(|(_, v, _)| !v.same_as(value)) {
                report.refused.push(Refusal::Conflict {
                    token: name,
                    first: (first_key.clone(), *first_line),
                    other: (key.clone(), *line),
                });
                continue;
            }
            let token = &self.policy.tokens[&name];
            let mut meta = self.registry.load(&name)?;
            let mut values = self.registry.load_values(&meta, &identity.key)?;
            let same = meta.current().and_then(|c| values.get(c.id)).is_some_and(|c| c.same_as(value));
            let id = if same {
                report.stored.push(Imported { token: name.clone(), version: None, line: *first_line });
                meta.current().map(|c| c.id).expect("checked above")
            } else {
                let placeholder = placeholder_reason(value.expose(), &self.policy.placeholders).is_some();
                let id = self.store_value(&mut meta, &mut values, value.clone(), ValueOrigin::Import, placeholder)?;
                report.stored.push(Imported { token: name.clone(), version: Some(id), line: *first_line });
                id
            };
            // The file we read from holds this version: record it if it is a target.
            let mut recorded = false;
            for target in &token.targets {
                let path = target.dotenv_path(&self.policy.root).and_then(|p| p.canonicalize().ok());
                if path.is_some() && path == canonical_file {
                    for n in target.names.iter().filter(|n| found.iter().any(|(k, _, _)| k == *n)) {
                        meta.record_delivery(
                            DeliveryKey::new(&target.address(), n.as_str()),
                            id,
                            self.now,
                            crate::registry::Landing::default(),
                        );
                        recorded = true;
                    }
                }
            }
            if recorded {
                self.registry.save(&mut meta)?;
            }
        }
        Ok(report)
    }
}

/// What `import` did.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub stored: Vec<Imported>,
    pub refused: Vec<Refusal>,
    /// Keys no policy declares (skipped).
    pub unknown: Vec<String>,
}

#[derive(Debug)]
pub struct Imported {
    pub token: String,
    /// The new version, or `None` when the value was already current.
    pub version: Option<u32>,
    pub line: usize,
}

#[derive(Debug)]
pub enum Refusal {
    Placeholder {
        key: String,
        line: usize,
        why: &'static str,
    },
    /// The line has no one reading (see [`Unreadable`]).
    Unreadable {
        key: String,
        line: usize,
        why: Unreadable,
    },
    Conflict {
        token: String,
        first: (String, usize),
        other: (String, usize),
    },
}
