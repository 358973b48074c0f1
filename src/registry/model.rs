//! What `tokens/NAME.toml` holds: plaintext metadata, never a value.

use std::collections::BTreeMap;

use crate::targets::TargetId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Schema 2: authenticated (a MAC line, value files one a version).
pub const SCHEMA: u32 = 2;
/// How many versions of a token are remembered (metadata and values); older
/// retired ones are dropped so files stay small. Revoked values are kept
/// this long so `scan` can still find them.
pub const KEEP_VERSIONS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Minted and saved, being delivered; not yet what services should use.
    Pending,
    /// The value every target should hold.
    Current,
    /// The value before `current`; still valid until `retire_after`.
    Previous,
    /// No longer delivered; left to expire (the issuer cannot revoke).
    Retired,
    /// Revoked at the issuer.
    Revoked,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Pending => "pending",
            Stage::Current => "current",
            Stage::Previous => "previous",
            Stage::Retired => "retired",
            Stage::Revoked => "revoked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    pub id: u32,
    pub stage: Stage,
    pub issuer: String,
    /// The issuer's kind (`random`, `chittyid`, …) when it was minted or set;
    /// absent in versions written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_kind: Option<String>,
    /// The issuer's service URL when it was minted or set, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retire_after: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// How the value got here.
    pub origin: ValueOrigin,
    /// Stored knowingly as a placeholder (`--allow-placeholder`), so that
    /// `check` can flag it without decrypting anything.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub placeholder: bool,
    /// The id of its value file, `tokens/NAME.ID.age`, while it is kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// The issuer a version came from, as recorded with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedBy {
    pub kind: String,
    pub url: Option<String>,
}

impl Version {
    /// Why this version did not come from `issuer` (the policy's issuer of
    /// its token now), if it did not: another issuer's name, kind or URL.
    /// Such a value is never delivered to a remote target without `--force`.
    pub fn origin_mismatch(&self, issuer: &str, now: &IssuedBy) -> Option<String> {
        let was = |kind: Option<&str>, url: Option<&str>| match (kind, url) {
            (Some(k), Some(u)) => format!("`{}` ({k}, {u})", self.issuer),
            (Some(k), None) => format!("`{}` ({k})", self.issuer),
            _ => format!("`{}`", self.issuer),
        };
        let mismatch = self.issuer != issuer
            || self.issuer_kind.as_deref().is_some_and(|k| k != now.kind)
            || self.issuer_url.as_deref() != now.url.as_deref() && self.issuer_kind.is_some();
        mismatch.then(|| {
            let policy = match &now.url {
                Some(u) => format!("`{issuer}` ({}, {u})", now.kind),
                None => format!("`{issuer}` ({})", now.kind),
            };
            format!(
                "v{} came from {}, but the policy's issuer is {policy}",
                self.id,
                was(self.issuer_kind.as_deref(), self.issuer_url.as_deref())
            )
        })
    }
}

/// How a version's value got into the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueOrigin {
    /// Minted by the token's issuer during a rotation.
    Issued,
    /// Given by a person with `set`.
    Set,
    /// Read from a .env file by `import`.
    Import,
}

impl ValueOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueOrigin::Issued => "issued",
            ValueOrigin::Set => "set",
            ValueOrigin::Import => "import",
        }
    }
}

/// One secret name at one target: the key of a delivery record, written
/// `ADDRESS#NAME` in the registry file (e.g. `dotenv:app/.env#API_TOKEN`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeliveryKey {
    /// The target, e.g. `github:o/r`.
    pub target: TargetId,
    /// The secret's name there.
    pub name: String,
}

impl DeliveryKey {
    pub fn new(target: &TargetId, name: impl Into<String>) -> Self {
        DeliveryKey { target: target.clone(), name: name.into() }
    }
}

impl std::fmt::Display for DeliveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.target, self.name)
    }
}

impl Serialize for DeliveryKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeliveryKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        // Secret names never hold `#`; an address may, so split at the last.
        let (target, name) = text
            .rsplit_once('#')
            .ok_or_else(|| serde::de::Error::custom(format!("delivery key `{text}` is not ADDRESS#NAME")))?;
        let target = TargetId::parse(target).map_err(serde::de::Error::custom)?;
        Ok(DeliveryKey::new(&target, name))
    }
}

/// One secret name at one target holds one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    pub version: u32,
    pub at: DateTime<Utc>,
    /// The remote's own `updated_at` after the write (GitHub), so a later
    /// change by hand is seen without reading any value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_updated_at: Option<DateTime<Utc>>,
    /// The Worker version the write created (Cloudflare), so a later run
    /// can tell whether what is deployed holds this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_version: Option<WorkerVersion>,
}

/// A version of a Cloudflare Worker: its id, its number (versions are
/// numbered in the order they were made), and whether our write deployed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerVersion {
    pub id: String,
    pub number: u64,
    pub deployed: bool,
}

/// What a remote said about a write, to keep in its delivery record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Landing {
    /// GitHub's `updated_at` after the write.
    pub updated_at: Option<DateTime<Utc>>,
    /// The Worker version that holds the value.
    pub worker_version: Option<WorkerVersion>,
}

/// The pending-rotation journal: written before the issuer is called, so a
/// crash at any point leaves a record of what was under way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    pub started_at: DateTime<Utc>,
    pub step: JournalStep,
    /// The version being rotated in, once minted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Set while a mint call may have reached the issuer and its answer is
    /// not saved yet; the same tag is in the token's description there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mint_tag: Option<String>,
}

/// A token that may have been minted but was never recorded (the process
/// died, or the connection broke, between the mint and the save).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Orphan {
    pub issuer: String,
    /// Find it at the issuer by this tag in its description.
    pub tag: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalStep {
    Minting,
    Delivering,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenMeta {
    pub schema: u32,
    pub name: String,
    /// Bumped on every save; a save from a copy older than the file on disk
    /// is refused.
    pub generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Journal>,
    #[serde(default)]
    pub versions: Vec<Version>,
    /// Keyed by `ADDRESS#NAME`, e.g. `dotenv:app/.env#API_TOKEN`.
    #[serde(default)]
    pub deliveries: BTreeMap<DeliveryKey, Delivery>,
    /// Mints that may have happened but were never recorded: `check`
    /// reports them until someone revokes them and deletes the entry.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orphans: Vec<Orphan>,
    /// When a value minted on another branch was recorded here (a git
    /// merge joined two rotations): a delivery record older than this may
    /// be wrong (either branch's write may have landed last), so every
    /// target gets the current value again before any version is retired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_at: Option<DateTime<Utc>>,
}

impl TokenMeta {
    pub fn new(name: &str) -> Self {
        TokenMeta {
            schema: SCHEMA,
            name: name.to_string(),
            generation: 0,
            rotation: None,
            versions: Vec::new(),
            deliveries: BTreeMap::new(),
            orphans: Vec::new(),
            merged_at: None,
        }
    }

    pub fn in_stage(&self, stage: Stage) -> Option<&Version> {
        self.versions.iter().rev().find(|v| v.stage == stage)
    }

    pub fn current(&self) -> Option<&Version> {
        self.in_stage(Stage::Current)
    }

    pub fn pending(&self) -> Option<&Version> {
        self.in_stage(Stage::Pending)
    }

    pub fn version_mut(&mut self, id: u32) -> Option<&mut Version> {
        self.versions.iter_mut().find(|v| v.id == id)
    }

    pub fn next_version_id(&self) -> u32 {
        self.versions.iter().map(|v| v.id).max().unwrap_or(0) + 1
    }

    pub fn delivered(&self, address: &TargetId, name: &str) -> Option<&Delivery> {
        self.deliveries.get(&DeliveryKey::new(address, name))
    }

    /// Whether a delivery of `name` at `address` is in doubt since a merge
    /// (missing, or older than the merge).
    pub fn in_doubt(&self, address: &TargetId, name: &str) -> bool {
        self.merged_at.is_some_and(|m| self.delivered(address, name).is_none_or(|d| d.at < m))
    }

    /// The ids of the value files the versions name.
    pub fn value_files(&self) -> impl Iterator<Item = &str> {
        self.versions.iter().filter_map(|v| v.value.as_deref())
    }

    /// Drops the oldest retired/revoked versions beyond [`KEEP_VERSIONS`];
    /// returns them so their value files can go too.
    pub fn prune_history(&mut self) -> Vec<Version> {
        let mut dropped = Vec::new();
        while self.versions.len() > KEEP_VERSIONS {
            match self.versions.iter().position(|v| matches!(v.stage, Stage::Retired | Stage::Revoked)) {
                Some(i) => dropped.push(self.versions.remove(i)),
                None => break,
            }
        }
        dropped
    }
}
