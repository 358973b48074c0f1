//! The version lifecycle, owned by [`TokenMeta`]: every change of stage and
//! every delivery record goes through these methods, whichever command
//! makes it (rotation, `set`, `import`, `sync`, `prune`). They change the
//! metadata in memory only; the caller saves (values before metadata).
//!
//! ```text
//! pending ──promote──► current ──(next promote / store)──► previous ──retire──► retired | revoked
//! ```

use chrono::{DateTime, Utc};

use super::model::{
    Delivery, DeliveryKey, IssuedBy, Journal, JournalStep, Landing, Orphan, Stage, TokenMeta, ValueOrigin, Version,
};

/// A new value's metadata: everything but its id and stage.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub issuer: String,
    /// Which service minted it: the issuer's kind and URL at the time.
    pub issued_by: IssuedBy,
    pub token_id: Option<String>,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub origin: ValueOrigin,
    pub placeholder: bool,
    /// Its value file's id, once the value is saved.
    pub value: Option<String>,
}

impl NewVersion {
    /// What its value file keeps of it.
    pub fn minted(&self) -> super::Minted {
        super::Minted {
            issuer: self.issuer.clone(),
            issuer_kind: Some(self.issued_by.kind.clone()),
            issuer_url: self.issued_by.url.clone(),
            token_id: self.token_id.clone(),
            scopes: self.scopes.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            origin: self.origin,
            placeholder: self.placeholder,
        }
    }
}

/// A lifecycle change that the token's state does not allow.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("{token} has a rotation in progress (v{pending} pending)")]
    RotationInProgress { token: String, pending: u32 },
    #[error("{token} v{version} is not in the registry")]
    NoSuchVersion { token: String, version: u32 },
}

impl LifecycleError {
    pub fn hint(&self) -> Option<crate::error::Hint> {
        self.hint_text().map(crate::error::Hint::from)
    }

    fn hint_text(&self) -> Option<String> {
        match self {
            LifecycleError::RotationInProgress { token, .. } => Some(format!(
                "finish it first with `chitty-secrets rotate {token}`, or undo it with `chitty-secrets rotate --abort {token}`"
            )),
            LifecycleError::NoSuchVersion { .. } => None,
        }
    }
}

impl TokenMeta {
    fn push_version(&mut self, stage: Stage, new: NewVersion) -> u32 {
        let id = self.next_version_id();
        let NewVersion { issuer, issued_by, token_id, scopes, created_at, expires_at, origin, placeholder, value } =
            new;
        self.versions.push(Version {
            id,
            stage,
            issuer,
            issuer_kind: Some(issued_by.kind),
            issuer_url: issued_by.url,
            token_id,
            scopes,
            created_at,
            expires_at,
            retire_after: None,
            retired_at: None,
            revoked_at: None,
            origin,
            placeholder,
            value,
        });
        id
    }

    /// `current` becomes `previous`, valid until `retire_after`.
    fn demote_current(&mut self, retire_after: DateTime<Utc>) {
        for v in &mut self.versions {
            if v.stage == Stage::Current {
                v.stage = Stage::Previous;
                v.retire_after = Some(retire_after);
            }
        }
    }

    /// A value a person supplied (`set`, `import`) becomes `current` at once;
    /// the old `current` stays valid until `retire_after`. Refused while a
    /// rotation is in progress: it would be overtaken by the promotion.
    pub fn store_current(&mut self, new: NewVersion, retire_after: DateTime<Utc>) -> Result<u32, LifecycleError> {
        if let Some(p) = self.pending() {
            return Err(LifecycleError::RotationInProgress { token: self.name.clone(), pending: p.id });
        }
        self.demote_current(retire_after);
        Ok(self.push_version(Stage::Current, new))
    }

    /// A minted value is saved as `pending`; the journal moves on to delivery.
    pub fn add_pending(&mut self, new: NewVersion, started_at: DateTime<Utc>) -> u32 {
        let id = self.push_version(Stage::Pending, new);
        self.rotation = Some(Journal { started_at, step: JournalStep::Delivering, version: Some(id), mint_tag: None });
        id
    }

    /// The journal entry written before an issuer is called; `tag` is what
    /// the issuer will see in the token's description.
    pub fn begin_mint(&mut self, started_at: DateTime<Utc>, tag: Option<String>) {
        self.rotation = Some(Journal { started_at, step: JournalStep::Minting, version: None, mint_tag: tag });
    }

    /// An earlier mint that may have reached the issuer and was never saved
    /// becomes a suspected orphan (`check` reports it); the journal closes.
    pub fn take_orphan(&mut self, issuer: &str) -> Option<Orphan> {
        let Journal { mint_tag: Some(tag), started_at, .. } = self.rotation.clone()? else {
            return None;
        };
        let orphan = Orphan { issuer: issuer.to_string(), tag, at: started_at };
        self.orphans.push(orphan.clone());
        self.rotation = None;
        Some(orphan)
    }

    /// `pending` (or any version being rotated in) becomes `current`; the
    /// old `current` stays valid until `retire_after`; the journal closes.
    pub fn promote(&mut self, version: u32, retire_after: DateTime<Utc>) -> Result<(), LifecycleError> {
        if self.version(version).is_none() {
            return Err(LifecycleError::NoSuchVersion { token: self.name.clone(), version });
        }
        self.demote_current(retire_after);
        let v = self.version_mut(version).expect("checked above");
        v.stage = Stage::Current;
        self.rotation = None;
        Ok(())
    }

    /// Marks a version revoked at its issuer, or retired (left to expire)
    /// where the issuer cannot revoke. Returns the new stage.
    pub fn end_version(&mut self, version: u32, revoked: bool, at: DateTime<Utc>) -> Result<Stage, LifecycleError> {
        let name = self.name.clone();
        let v = self.version_mut(version).ok_or(LifecycleError::NoSuchVersion { token: name, version })?;
        if revoked {
            v.stage = Stage::Revoked;
            v.revoked_at = Some(at);
        } else {
            v.stage = Stage::Retired;
            v.retired_at = Some(at);
        }
        Ok(v.stage)
    }

    /// A value recorded after the fact, from what its value file says was
    /// minted (a merge dropped its record, or a crash came before it):
    /// pushed in `stage`. As `current`, the old current becomes previous
    /// until `retire_after`; as `previous`, it is retired after
    /// `retire_after`.
    pub fn record_found(
        &mut self,
        minted: &super::Minted,
        file: &str,
        stage: Stage,
        retire_after: Option<DateTime<Utc>>,
    ) -> u32 {
        if stage == Stage::Current
            && let Some(after) = retire_after
        {
            self.demote_current(after);
        }
        let id = self.next_version_id();
        let m = minted;
        self.versions.push(Version {
            id,
            stage,
            issuer: m.issuer.clone(),
            issuer_kind: m.issuer_kind.clone(),
            issuer_url: m.issuer_url.clone(),
            token_id: m.token_id.clone(),
            scopes: m.scopes.clone(),
            created_at: m.created_at,
            expires_at: m.expires_at,
            retire_after: if stage == Stage::Previous { retire_after } else { None },
            retired_at: None,
            revoked_at: None,
            origin: m.origin,
            placeholder: m.placeholder,
            value: Some(file.to_string()),
        });
        id
    }

    /// Notes that `key` holds `version` since `at` (and what the remote
    /// said about the write, where it says anything).
    pub fn record_delivery(&mut self, key: DeliveryKey, version: u32, at: DateTime<Utc>, landing: Landing) {
        let Landing { updated_at, worker_version } = landing;
        self.deliveries.insert(key, Delivery { version, at, remote_updated_at: updated_at, worker_version });
    }

    /// Every target name whose record says it holds `version`.
    pub fn holders(&self, version: u32) -> Vec<&DeliveryKey> {
        self.deliveries.iter().filter(|(_, d)| d.version == version).map(|(k, _)| k).collect()
    }

    /// The current or pending versions whose value the audit log says was
    /// ended (`ended`: token and value file id): metadata put back from
    /// before a revoke.
    pub fn ended_but_live<'a>(
        &'a self,
        ended: &'a std::collections::BTreeSet<(String, String)>,
    ) -> impl Iterator<Item = &'a Version> + 'a {
        self.versions.iter().filter(move |v| {
            matches!(v.stage, Stage::Current | Stage::Pending)
                && v.value.as_ref().is_some_and(|id| ended.contains(&(self.name.clone(), id.clone())))
        })
    }

    /// What is said of such a version, by `check` and by a run alike.
    pub fn ended_but_live_message(&self, v: &Version) -> String {
        format!(
            "{} v{} is {} in its metadata, but the audit log says its value was revoked or retired: the metadata was put back from before that",
            self.name,
            v.id,
            v.stage.as_str()
        )
    }

    pub fn version(&self, id: u32) -> Option<&Version> {
        self.versions.iter().find(|v| v.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_version(origin: ValueOrigin) -> NewVersion {
        NewVersion {
            issuer: "random".into(),
            issued_by: IssuedBy { kind: "random".into(), url: None },
            token_id: None,
            scopes: vec![],
            created_at: Utc::now(),
            expires_at: None,
            origin,
            placeholder: false,
            value: None,
        }
    }

    #[test]
    fn a_rotation_moves_every_stage_once() {
        let now = Utc::now();
        let mut meta = TokenMeta::new("T");
        let v1 = meta.store_current(new_version(ValueOrigin::Set), now).unwrap();
        meta.begin_mint(now, Some("tag".into()));
        let v2 = meta.add_pending(new_version(ValueOrigin::Issued), now);
        assert_eq!(meta.pending().unwrap().id, v2);
        assert!(meta.store_current(new_version(ValueOrigin::Set), now).is_err(), "set during a rotation");
        meta.promote(v2, now).unwrap();
        assert_eq!(meta.current().unwrap().id, v2);
        assert_eq!(meta.in_stage(Stage::Previous).unwrap().id, v1);
        assert_eq!(meta.in_stage(Stage::Previous).unwrap().retire_after, Some(now));
        assert!(meta.rotation.is_none());
        assert_eq!(meta.end_version(v1, false, now).unwrap(), Stage::Retired);
        assert_eq!(meta.end_version(v2, true, now).unwrap(), Stage::Revoked);
        assert!(meta.promote(99, now).is_err());
    }

    #[test]
    fn a_mint_left_unanswered_becomes_one_orphan() {
        let now = Utc::now();
        let mut meta = TokenMeta::new("T");
        meta.begin_mint(now, Some("abcd".into()));
        let orphan = meta.take_orphan("chittyid").unwrap();
        assert_eq!((orphan.tag.as_str(), meta.orphans.len()), ("abcd", 1));
        assert!(meta.rotation.is_none() && meta.take_orphan("chittyid").is_none());
    }

    #[test]
    fn delivery_keys_round_trip_through_the_registry_file() {
        let mut meta = TokenMeta::new("T");
        meta.record_delivery(
            DeliveryKey::new(&crate::targets::TargetId::parse("github:o/r@env:a#b").unwrap(), "NAME"),
            3,
            Utc::now(),
            Landing::default(),
        );
        let text = toml::to_string(&meta).unwrap();
        assert!(text.contains("\"github:o/r@env:a#b#NAME\""), "{text}");
        let back: TokenMeta = toml::from_str(&text).unwrap();
        assert_eq!(
            back.holders(3),
            vec![&DeliveryKey::new(&crate::targets::TargetId::parse("github:o/r@env:a#b").unwrap(), "NAME")]
        );
    }
}
