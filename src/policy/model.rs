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
    /// The policies folder itself.
    pub dir: PathBuf,
    pub files: Vec<PathBuf>,
    pub issuers: BTreeMap<String, IssuerPolicy>,
    pub tokens: BTreeMap<String, TokenPolicy>,
    /// Extra placeholder values declared in `[check] placeholders`.
    pub placeholders: Vec<String>,
    /// Secrets read by workflows or Workers that are set outside
    /// chitty-secrets (`[check] set_elsewhere`): not reported as undelivered.
    pub set_elsewhere: Vec<String>,
}

impl Policy {
    pub fn token(&self, name: &str) -> Option<&TokenPolicy> {
        self.tokens.get(name)
    }

    /// Whether a .env target names `machine` among the machines it lives on.
    pub fn names_machine(&self, machine: &str) -> bool {
        self.tokens
            .values()
            .flat_map(|t| &t.targets)
            .any(|t| t.spec.kind().machines().is_some_and(|m| m.iter().any(|x| x == machine)))
    }

    /// Every remote target once, by address (several tokens may share one).
    pub fn remote_targets(&self) -> BTreeMap<crate::targets::TargetId, &TargetPolicy> {
        let mut out = BTreeMap::new();
        for t in self.tokens.values().flat_map(|t| &t.targets).filter(|t| t.is_remote()) {
            out.entry(t.address()).or_insert(t);
        }
        out
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

impl IssuerPolicy {
    /// What a version minted (or set) under this issuer records about it.
    pub fn issued_by(&self) -> crate::registry::IssuedBy {
        crate::registry::IssuedBy { kind: self.spec.kind().into(), url: self.spec.url().map(str::to_string) }
    }
}

#[derive(Debug, Clone)]
pub enum IssuerSpec {
    Random(RandomSpec),
    Manual(ManualSpec),
    Chittyid(ChittyidSpec),
    Chittyauth(ChittyauthSpec),
    Command(CommandSpec),
}

impl IssuerSpec {
    pub const KINDS: &'static [&'static str] = &["random", "manual", "chittyid", "chittyauth", "command"];

    /// Where the issuer's own credential comes from, if it has one.
    pub fn credential_from(&self) -> Option<&CredentialSource> {
        match self {
            IssuerSpec::Chittyid(c) => Some(&c.admin_password_from),
            IssuerSpec::Chittyauth(c) => Some(&c.bearer_from),
            _ => None,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            IssuerSpec::Random(_) => "random",
            IssuerSpec::Manual(_) => "manual",
            IssuerSpec::Chittyid(_) => "chittyid",
            IssuerSpec::Chittyauth(_) => "chittyauth",
            IssuerSpec::Command(_) => "command",
        }
    }

    /// Whether the issuer makes values here, with no service to hold a
    /// token that a lost answer could orphan.
    pub fn is_local(&self) -> bool {
        matches!(self, IssuerSpec::Random(_) | IssuerSpec::Manual(_))
    }

    /// The shortest lifetime the issuer can serve, and why: ChittyAuth keeps
    /// tokens in Workers KV, which takes no expiry under 60 seconds, and
    /// its validate writes the token's record again with what is left, so
    /// a token must outlive its delivery and its one verification by more
    /// than a minute, or the rotation could never be finished.
    pub fn shortest_ttl(&self) -> Option<(chrono::TimeDelta, &'static str)> {
        match self {
            IssuerSpec::Chittyauth(_) => Some((
                chrono::TimeDelta::minutes(10),
                "ChittyAuth stores tokens in Workers KV (no expiry under 60 s) and its validate rewrites the token's record, so a token must outlive delivery and verification by more than a minute",
            )),
            _ => None,
        }
    }

    /// The service URL of an issuer that calls one.
    pub fn url(&self) -> Option<&str> {
        match self {
            IssuerSpec::Chittyid(c) => Some(&c.url),
            IssuerSpec::Chittyauth(c) => Some(&c.url),
            _ => None,
        }
    }
}

/// The ChittyID admin API of the outage runbook: `POST /admin/tokens/generate`
/// with HTTP basic auth.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChittyidSpec {
    pub url: String,
    #[serde(default = "default_admin_user")]
    pub admin_user: String,
    /// `env:NAME` or `registry:TOKEN`: never the password itself.
    pub admin_password_from: CredentialSource,
    #[serde(default = "default_generate_path")]
    pub generate_path: String,
    /// A cheap check with the new token as bearer; never a mint.
    #[serde(default = "default_health_path")]
    pub verify_path: String,
    /// e.g. `/admin/tokens/{token_id}/revoke`; absent: old tokens retire by expiry.
    #[serde(default)]
    pub revoke_path: Option<String>,
}

fn default_admin_user() -> String {
    "admin".into()
}
fn default_generate_path() -> String {
    "/admin/tokens/generate".into()
}
fn default_health_path() -> String {
    "/health".into()
}

/// ChittyAuth: `live` (its public source: provision / validate / revoke) or
/// `runbook` (`POST /api/tokens/generate` with an existing token).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChittyauthSpec {
    #[serde(default)]
    pub preset: Preset,
    pub url: String,
    /// The identity tokens are issued to (live preset).
    #[serde(default)]
    pub chitty_id: Option<String>,
    #[serde(default = "default_service")]
    pub service: String,
    /// `env:NAME` or `registry:TOKEN`: the admin/service bearer token.
    pub bearer_from: CredentialSource,
    #[serde(default)]
    pub provision_path: Option<String>,
    #[serde(default)]
    pub validate_path: Option<String>,
    #[serde(default)]
    pub revoke_path: Option<String>,
}

fn default_service() -> String {
    "chittyid".into()
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    #[default]
    Live,
    Runbook,
}

/// Any other service: a program that prints `{"token": …, "token_id": …,
/// "expires_at": …}` on stdout.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// The program and its arguments (the token's name, scopes and ttl
    /// arrive in the environment: CHITTY_TOKEN_NAME, CHITTY_TOKEN_SCOPES,
    /// CHITTY_TOKEN_TTL_SECONDS).
    pub command: Vec<String>,
    /// Verifies a value given on stdin; exit 0 = valid.
    #[serde(default)]
    pub verify: Option<Vec<String>>,
    /// Revokes the token whose id is in CHITTY_TOKEN_ID.
    #[serde(default)]
    pub revoke: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RandomSpec {
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

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    #[default]
    Hex,
    Base64url,
}

#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualSpec {
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
    /// `rotate --due` renews when less than this fraction of the lifetime is left.
    pub renew_fraction: f64,
    pub description: Option<String>,
    pub targets: Vec<TargetPolicy>,
    pub origin: Origin,
}

/// The fields of a `[tokens.NAME]` table, as written.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenFields {
    /// The issuer's name: one declared under [issuers], or `random` / `manual`.
    #[schemars(with = "String")]
    pub issuer: toml::Spanned<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub ttl: Option<Dur>,
    pub rotate_every: Option<Dur>,
    pub overlap: Option<Dur>,
    pub renew_fraction: Option<f64>,
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

/// A target entry, by kind (the kinds are registered in
/// [`crate::targets`]).
pub use crate::targets::TargetSpec;

/// GitHub Actions secrets of a repository, one of its environments, or an
/// organization (validated from [`GithubFields`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GithubSpec {
    pub scope: GithubScope,
    /// Whose secrets: Actions (workflows), Dependabot (its pull requests
    /// see only these) or Codespaces; each has its own key pair.
    pub app: GithubApp,
    /// An environment that does not exist is created (else: an error).
    pub create_environment: bool,
    pub names: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GithubApp {
    #[default]
    Actions,
    Dependabot,
    Codespaces,
}

impl GithubApp {
    /// The path segment: `/repos/o/r/{app}/secrets`.
    pub fn as_str(self) -> &'static str {
        match self {
            GithubApp::Actions => "actions",
            GithubApp::Dependabot => "dependabot",
            GithubApp::Codespaces => "codespaces",
        }
    }
}

/// Where GitHub keeps the secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GithubScope {
    Repo {
        owner: String,
        repo: String,
    },
    Environment {
        owner: String,
        repo: String,
        environment: String,
    },
    Org {
        org: String,
        visibility: Option<Visibility>,
        selected_repository_ids: Option<Vec<u64>>,
        /// Repositories by name (`name` or `org/name`), resolved to ids.
        selected_repositories: Option<Vec<String>>,
    },
}

/// A `kind = "github"` target as written.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GithubFields {
    /// `owner/name`.
    #[serde(default)]
    pub repo: Option<String>,
    /// An environment of `repo`.
    #[serde(default)]
    pub environment: Option<String>,
    #[serde(default)]
    pub org: Option<String>,
    /// Organization secrets only: which repositories can use them.
    #[serde(default)]
    pub visibility: Option<Visibility>,
    #[serde(default)]
    pub selected_repository_ids: Option<Vec<u64>>,
    /// Organization secrets with visibility = "selected": the repositories
    /// by name (`name` or `org/name`); resolved to ids before the write.
    #[serde(default)]
    pub selected_repositories: Option<Vec<String>>,
    /// `actions` (default), `dependabot` (pull requests opened by Dependabot
    /// see only these) or `codespaces`.
    #[serde(default)]
    pub app: GithubApp,
    /// With `environment`: create it when it does not exist.
    #[serde(default)]
    pub create_environment: bool,
    #[serde(default)]
    pub names: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    All,
    Private,
    Selected,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::All => "all",
            Visibility::Private => "private",
            Visibility::Selected => "selected",
        }
    }
}

/// Cloudflare Workers secrets of one script.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WranglerSpec {
    pub worker: String,
    /// A wrangler environment: the script is `<worker>-<env>`.
    #[serde(default)]
    pub env: Option<String>,
    /// `api` (REST, default) or `cli` (`wrangler secret put`, value on stdin).
    #[serde(default)]
    pub via: Via,
    /// `immediate` (default): a secret write deploys a new version at 100%,
    /// as `wrangler secret put` does. `version`: the secrets go into a new
    /// version based on the deployed one, not deployed (like `wrangler
    /// versions secret put`); the team rolls it out, or `rollout`.
    #[serde(default)]
    pub deploy: Deploy,
    /// With deploy = "version": `"100%"` deploys the new version at once.
    #[serde(default)]
    pub rollout: Option<String>,
    #[serde(default)]
    pub names: Option<Vec<String>>,
}

/// How a Worker receives new secret values.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Deploy {
    #[default]
    Immediate,
    Version,
}

impl WranglerSpec {
    pub fn script(&self) -> String {
        match &self.env {
            Some(env) => format!("{}-{env}", self.worker),
            None => self.worker.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    #[default]
    Api,
    Cli,
}

#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DotenvSpec {
    /// Relative to the project root.
    pub path: PathBuf,
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// The machines this file lives on (their `CHITTY_SECRETS_MACHINE` or
    /// host name). Only they write it; a value it held is retired only once
    /// each of them has synced a newer one. Absent: wherever chitty-secrets
    /// runs in this checkout, except a CI runner where the file is absent.
    #[serde(default)]
    pub machines: Option<Vec<String>>,
}

impl TargetPolicy {
    /// What makes two entries deliver alike: the address and every option
    /// of the write (an organization secret's visibility, a Worker's
    /// deploy mode), not the names. Entries of different tokens with the
    /// same key can share one batch.
    pub fn delivers_like(&self, other: &TargetPolicy) -> bool {
        self.spec.without_names() == other.spec.without_names()
    }

    /// A stable address naming the target, used as the key of delivery
    /// records: `dotenv:app/.env` (the kind says).
    pub fn address(&self) -> crate::targets::TargetId {
        self.spec.kind().address()
    }

    /// Whether the service keeps versions of what it runs (a Worker), so
    /// that a write makes a version and the records name it.
    pub fn runs_versions(&self) -> bool {
        self.spec.kind().runs_versions()
    }

    pub fn dotenv_path(&self, root: &Path) -> Option<PathBuf> {
        self.spec.kind().local_file().map(|p| root.join(p))
    }

    /// Whether the target lives on a remote service (needs credentials and HTTP).
    pub fn is_remote(&self) -> bool {
        self.spec.kind().is_remote()
    }
}

/// Where an issuer's own credential comes from: `env:NAME` or
/// `registry:TOKEN`, parsed once at load. Never the credential itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    Env(String),
    Registry(String),
    /// Neither; refused by validation.
    Invalid,
}

impl CredentialSource {
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, name) = text.split_once(':')?;
        let valid = super::is_secret_name(name);
        match kind {
            "env" if valid => Some(CredentialSource::Env(name.into())),
            "registry" if valid => Some(CredentialSource::Registry(name.into())),
            _ => None,
        }
    }
}

impl std::fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CredentialSource::Env(name) => write!(f, "env:{name}"),
            CredentialSource::Registry(name) => write!(f, "registry:{name}"),
            CredentialSource::Invalid => write!(f, "(invalid)"),
        }
    }
}

impl schemars::JsonSchema for CredentialSource {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CredentialSource".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^(env|registry):[A-Za-z_][A-Za-z0-9_]{0,127}$",
            "description": "Where the credential comes from: env:NAME (an environment variable) or registry:TOKEN (a token in this registry); never the secret itself",
        })
    }
}

impl<'de> Deserialize<'de> for CredentialSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = zeroize::Zeroizing::new(String::deserialize(deserializer)?);
        // Anything else is kept as `Invalid` (never its text: it may be a
        // pasted secret) so that validation reports it beside every other
        // problem of the entry; no loaded policy holds one.
        Ok(CredentialSource::parse(&text).unwrap_or(CredentialSource::Invalid))
    }
}

/// `[check]`: settings for `chitty-secrets check` and placeholder detection.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CheckFields {
    #[serde(default)]
    pub placeholders: Vec<String>,
    /// Secret names that workflows or Workers read and that are set outside
    /// chitty-secrets (by hand, by another tool): `check` does not report
    /// them as undelivered.
    #[serde(default)]
    pub set_elsewhere: Vec<String>,
}
