//! What a git merge of two rotations leaves, made whole. Each branch adds
//! its own value file (named by a random id), so git keeps both; one
//! branch's metadata wins (by the merge driver, or by hand with `git
//! checkout --ours|--theirs`). The other branch's value is then a file no
//! metadata names — a live token nothing tracks. A member's `rotate` or
//! `sync` records it, from what its (authenticated) file says was minted,
//! as a `previous` version: retired (revoked at the issuer) once its
//! overlap ends and every target has been given the current value again.

use super::Workspace;
use crate::registry::{Journal, JournalStep, Stage, TokenMeta, Version};

/// A value a merge left untracked, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stray {
    /// Recorded as this version (current when newer than the current
    /// value, else previous).
    Adopted { token: String, version: u32, file: String, stage: Stage },
    /// The same mint as a version the metadata has: the extra file went.
    Duplicate { token: String, file: String },
    /// This machine's own mint, saved just before a crash: the pending
    /// value of the rotation, which resumes.
    Recovered { token: String, version: u32 },
    /// Not a member's file: left alone (and reported by `check`, `trust status`).
    Refused { token: String, file: String, why: String },
}

impl std::fmt::Display for Stray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stray::Adopted { token, version, file, stage } => write!(
                f,
                "{token}: a value minted on another branch (tokens/{token}.{file}.age, its record lost in a merge, or an older metadata file put back) is recorded as v{version}, {}; every target gets the current value again before anything is retired",
                stage.as_str()
            ),
            Stray::Duplicate { token, file } => {
                write!(f, "{token}: tokens/{token}.{file}.age repeated a version already recorded; removed")
            }
            Stray::Recovered { token, version } => {
                write!(f, "{token}: v{version}, saved before a crash and not yet recorded, is the pending value")
            }
            Stray::Refused { token, file, why } => {
                write!(f, "{token}: tokens/{token}.{file}.age left alone: {why}")
            }
        }
    }
}

impl Workspace {
    /// Records the value files that no metadata names (see the module's
    /// doc) in `metas` (read under the lock the caller holds) and saves
    /// them; the registry key is unlocked.
    pub fn adopt_strays(
        &self,
        metas: &mut std::collections::BTreeMap<String, TokenMeta>,
        ended: &std::collections::BTreeSet<(String, String)>,
    ) -> anyhow::Result<Vec<Stray>> {
        let identity = self.identity()?;
        let mut done = Vec::new();
        for (name, meta) in metas.iter_mut() {
            let Some(token) = self.policy.token(name) else { continue };
            let strays = self.registry.strays(meta)?;
            if strays.is_empty() {
                continue;
            }
            let mut changed = false;
            let mut found_files = Vec::new();
            for file in strays {
                match self.registry.open_value(name, &file, &identity.key) {
                    Ok(found) => found_files.push(found),
                    Err(e) => done.push(Stray::Refused { token: name.clone(), file, why: e.to_string() }),
                }
            }
            // Oldest first: the newest of them is the one that may become current.
            found_files.sort_by_key(|f| f.minted.created_at);
            for found in found_files {
                let file = found.id.clone();
                let minted = &found.minted;
                let same_mint = |v: &Version| {
                    v.created_at == minted.created_at && v.token_id == minted.token_id && v.issuer == minted.issuer
                };
                if meta.versions.iter().any(same_mint) {
                    self.registry.remove_file_of(name, &file)?;
                    done.push(Stray::Duplicate { token: name.clone(), file });
                    continue;
                }
                // This machine's own mint, saved just before a crash and
                // never recorded: it is the rotation's pending value, and
                // the rotation resumes with it (nothing is minted twice).
                let cut_short = meta
                    .rotation
                    .as_ref()
                    .filter(|j| j.step == JournalStep::Minting && j.started_at <= minted.created_at);
                if let Some(started_at) = cut_short.map(|j| j.started_at)
                    && meta.pending().is_none()
                    && !ended.contains(&(name.clone(), found.id.clone()))
                {
                    let version = meta.record_found(&found.minted, &found.id, Stage::Pending, None);
                    meta.rotation = Some(Journal {
                        started_at,
                        step: JournalStep::Delivering,
                        version: Some(version),
                        mint_tag: None,
                    });
                    self.registry.save(meta)?;
                    self.audit(
                        "rotate.recover",
                        name,
                        Some(version),
                        Some(format!("value file {file} saved before a crash is the pending value")),
                    )?;
                    done.push(Stray::Recovered { token: name.clone(), version });
                    continue;
                }
                // The newest value minted wins, as the merge driver's rule
                // is: a stray newer than the current value (the other side
                // kept by hand, or an older metadata file put back) becomes
                // current; an older one, previous.
                // A value the audit log says was ended is recorded as such,
                // never live again.
                let was_ended = ended.contains(&(name.clone(), found.id.clone()));
                let newer = meta.pending().is_none() && meta.current().is_none_or(|c| minted.created_at > c.created_at);
                let stage = match (was_ended, newer) {
                    (true, _) => Stage::Revoked,
                    (false, true) => Stage::Current,
                    (false, false) => Stage::Previous,
                };
                let version = meta.record_found(&found.minted, &found.id, stage, Some(self.now + token.overlap.0));
                changed = true;
                self.audit(
                    "merge.adopt",
                    name,
                    Some(version),
                    Some(format!(
                        "value file {file} (v{} on its branch) recorded as {}",
                        found.version,
                        stage.as_str()
                    )),
                )?;
                done.push(Stray::Adopted { token: name.clone(), version, file, stage });
            }
            if changed {
                meta.merged_at = Some(self.now);
                self.registry.save(meta)?;
            }
        }
        Ok(done)
    }

    /// The value files of the selected tokens that no metadata names (a
    /// dry run's view of [`Self::adopt_strays`]).
    pub fn strays(&self, metas: &std::collections::BTreeMap<String, TokenMeta>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (name, meta) in metas {
            if let Ok(files) = self.registry.strays(meta) {
                out.extend(files.into_iter().map(|f| (name.clone(), f)));
            }
        }
        out
    }
}
