//! The validated policy model: what each token is, where it comes from and
//! where it goes. Built by [`super::load`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::duration::Dur;

/// Where something was declared, for messages that point at the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

#[derive(Debug)]
pub struct Policy {
    /// The project root: the parent of the policies directory. Relative
    /// target paths are resolved against it.
    pub root: PathBuf,
    pub files: Vec<PathBuf>,
    pub issuers: BTreeMap<String, IssuerPolicy>,
    pub tokens: BTreeMap<String, TokenPolicy>,
    /// Extra placeholder values declared in `[check] placeholders`.
    pub placeholders: Vec<String>,
}

impl Policy {
    pub fn token(&self, name: &str) -> Option<&TokenPolicy> {
        self.tokens.get(name)
    }

    pub fn issuer_of(&self, token: &TokenPolicy) -> &IssuerPolicy {
        // Validation guarantees every token's issuer exists.
        &self.issuers[&token.issuer]
    }
}

#[derive(Debug, Clone)]
pub struct IssuerPolicy {
    pub name: String,
    pub spec: IssuerSpec,
    pub origin: Option<Origin>,
}

#[derive(Debug, Clone)]
pub enum IssuerSpec {
    Random(RandomSpec),
    Manual(ManualSpec),
}

impl IssuerSpec {
    pub const KINDS: &'static [&'static str] = &["random", "manual"];
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomSpec {
    #[serde(rename = "kind")]
    pub _kind: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default = "default_random_bytes")]
    pub bytes: usize,
    #[serde(default)]
    pub encoding: Encoding,
}

fn default_random_bytes() -> usize {
    32
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Hex,
    Base64url,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManualSpec {
    #[serde(rename = "kind")]
    pub _kind: String,
    /// Where a person gets a new value, printed in reminders.
    #[serde(default)]
    pub instructions: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TokenPolicy {
    pub name: String,
    pub issuer: String,
    pub scopes: Vec<String>,
    pub ttl: Option<Dur>,
    pub rotate_every: Option<Dur>,
    pub overlap: Dur,
    pub description: Option<String>,
    pub targets: Vec<TargetPolicy>,
    pub origin: Origin,
}

/// The fields of a `[tokens.NAME]` table, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenFields {
    pub issuer: toml::Spanned<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub ttl: Option<Dur>,
    pub rotate_every: Option<Dur>,
    pub overlap: Option<Dur>,
    pub description: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TargetPolicy {
    pub spec: TargetSpec,
    /// The secret names this target receives the token under; the token's
    /// own name unless `names` says otherwise.
    pub names: Vec<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub enum TargetSpec {
    Dotenv(DotenvSpec),
}

impl TargetSpec {
    pub const KINDS: &'static [&'static str] = &["dotenv"];
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DotenvSpec {
    #[serde(rename = "kind")]
    pub _kind: String,
    /// Relative to the project root.
    pub path: PathBuf,
    #[serde(default)]
    pub names: Option<Vec<String>>,
}

impl TargetPolicy {
    /// A stable address naming the target, used as the key of delivery
    /// records: `dotenv:app/.env`.
    pub fn address(&self) -> String {
        match &self.spec {
            TargetSpec::Dotenv(d) => format!("dotenv:{}", d.path.display()),
        }
    }

    pub fn dotenv_path(&self, root: &Path) -> Option<PathBuf> {
        match &self.spec {
            TargetSpec::Dotenv(d) => Some(root.join(&d.path)),
        }
    }
}

/// `[check]`: settings for `chitty-secrets check` and placeholder detection.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckFields {
    #[serde(default)]
    pub placeholders: Vec<String>,
}
