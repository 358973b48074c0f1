//! Targets: where token values are delivered. Each target writes a batch of
//! names in one go (`put_many`): a .env file is rewritten once per run, a
//! GitHub scope fetches its public key once, Cloudflare uses its bulk
//! endpoint. Remote targets share one HTTP client and one GitHub pacer.

pub mod cloudflare_api;
pub mod dotenv_file;
pub mod github_plan;
pub mod id;
pub mod kind;
pub mod memory;
pub mod pacer;

// Every kind of target, one line each: its module (which implements
// `kind::TargetKind` and `kind::KindEntry` for its entry), its variant in
// the policy, and its entry type.
crate::target_kinds! {
    dotenv => Dotenv(crate::policy::DotenvSpec),
    github => Github(crate::policy::GithubSpec),
    cloudflare => Wrangler(crate::policy::WranglerSpec),
    pages => Pages(pages::PagesSpec),
    secrets_store => SecretsStore(secrets_store::SecretsStoreSpec),
}

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use id::TargetId;

use crate::http::Http;
use crate::policy::TargetPolicy;
use crate::registry::WorkerVersion;
use crate::secret::Secret;

/// A target's failure: where, what (with the service's own message), what
/// to do next, and the service's answer as data.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{address}: {message}")]
pub struct TargetError {
    pub address: TargetId,
    pub message: String,
    pub hint: Option<crate::error::Hint>,
    /// The HTTP status the service answered, if it answered.
    pub status: Option<u16>,
    /// The service's own error codes (Cloudflare's envelope codes).
    pub codes: Vec<u64>,
    /// Not attempted: the run's time limit (`--max-duration`) would have
    /// passed first. Nothing was sent; the next run does it.
    pub deferred: bool,
}

impl TargetError {
    pub fn new(address: &TargetId, message: impl Into<String>, hint: Option<&str>) -> Self {
        TargetError {
            address: address.clone(),
            // A service's words may echo what was sent: never a value.
            message: crate::secret::scrub(&message.into()),
            hint: hint.map(crate::error::Hint::from),
            status: None,
            codes: Vec::new(),
            deferred: false,
        }
    }

    /// A write not attempted because the run's time limit would pass first.
    /// Not sent: `service`'s request budget would only allow the request
    /// after the run's time limit.
    pub fn deferred(address: &TargetId, service: &str) -> Self {
        TargetError {
            deferred: true,
            ..TargetError::new(
                address,
                format!(
                    "not written: the run's time limit (--max-duration) would pass before {service}'s request budget allows it"
                ),
                Some("run the same command again: it continues where this run stopped"),
            )
        }
    }

    /// The same error, noting the service's answer.
    pub fn answered(mut self, status: u16, codes: Vec<u64>) -> Self {
        self.status = Some(status);
        self.codes = codes;
        self
    }
}

/// What a write did, for the per-target summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Created,
    Updated,
    /// The service does not say which.
    Written,
}

/// A secret as a remote lists it: a name and, where the service says, when
/// it last changed. Never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteSecret {
    pub name: String,
    pub updated_at: Option<DateTime<Utc>>,
    /// The Worker version that holds it, where the service runs versions.
    pub worker_version: Option<WorkerVersion>,
    /// Who may use it, where the service says (GitHub organization secrets).
    pub visibility: Option<String>,
}

impl RemoteSecret {
    /// A listed name, with nothing else said about it.
    pub fn named(name: impl Into<String>) -> Self {
        RemoteSecret { name: name.into(), updated_at: None, worker_version: None, visibility: None }
    }
}

pub type PutResults = Vec<(String, Result<Written, TargetError>)>;

/// Told of one write's answer: the name and what became of it.
pub type Answered<'a> = dyn Fn(&str, &Result<Written, TargetError>) + Sync + 'a;

#[async_trait]
pub trait Target: Send + Sync {
    /// A stable name for the target, e.g. `dotenv:app/.env`, `github:o/r`.
    fn address(&self) -> &TargetId;

    /// Reads ahead what every write needs and no value changes (GitHub's
    /// public key, a Worker's deployments), so that it runs while the
    /// values are still being decrypted. Errors are left for `put_many`
    /// to meet and report.
    async fn prepare(&self) {}

    /// Writes every `(name, value)` pair; one result per name.
    async fn put_many(&self, items: &[(String, Secret)]) -> PutResults;

    /// [`Target::put_many`], telling `answered` of each write as soon as
    /// the service has answered it: a target that writes one request a
    /// name (GitHub) tells of each while the others are still on the wire,
    /// one that writes all at once tells of all at the end.
    async fn put_each(&self, items: &[(String, Secret)], answered: &Answered<'_>) -> PutResults {
        let results = self.put_many(items).await;
        for (name, result) in &results {
            answered(name, result);
        }
        results
    }

    /// The values held for `names` where they can be read back (local
    /// files); `None` for write-only targets.
    async fn read(&self, _names: &[String]) -> Result<Option<Vec<Option<Secret>>>, TargetError> {
        Ok(None)
    }

    /// When the service says the write of `name` this run landed, by its
    /// own clock (GitHub's `Date` on the answer to the write): a later
    /// listing's `updated_at` after it is someone else's change. `None`:
    /// the service does not say, and a listing after the writes tells.
    fn landed_at(&self, _name: &str) -> Option<DateTime<Utc>> {
        None
    }

    /// The names the remote holds (never values); `None` for local targets.
    async fn list(&self) -> Result<Option<Vec<RemoteSecret>>, TargetError> {
        Ok(None)
    }

    async fn delete(&self, name: &str) -> Result<(), TargetError>;

    /// Where the service runs versions (Cloudflare Workers): the versions
    /// deployed now, numbered (`known` spares a lookup for each version it
    /// names). `None` for every other target.
    async fn running(&self, _known: &[WorkerVersion]) -> Result<Option<Vec<Running>>, TargetError> {
        Ok(None)
    }

    /// Where the service runs versions: the versions the delivery records
    /// say this tool made here, so that its own are told from others'.
    fn know_versions(&self, _ours: &[WorkerVersion]) {}

    /// Changes the service records since this tool's newest write here
    /// (`ours`) that may have changed a value and that this tool did not
    /// make, each said as the service says it (when, how, source, author).
    /// Empty where there are none or the service does not say.
    async fn changed_by_others(&self, _ours: &[WorkerVersion]) -> Result<Vec<String>, TargetError> {
        Ok(Vec::new())
    }

    /// Who reads the secrets named `names` here, and what a person should
    /// know about it (the Workers that bind a store secret; a plain secret
    /// of the same name that shadows it), each with how much it matters.
    async fn readers(&self, _names: &[String]) -> Result<Vec<Reader>, TargetError> {
        Ok(Vec::new())
    }

    /// The service's open reports of secrets it found exposed where this
    /// target lives (GitHub's secret-scanning alerts of the repository or
    /// organization), each with the exposed value for matching in memory.
    /// `None`: the service keeps no such reports.
    async fn exposures(&self) -> Result<Option<Vec<Exposure>>, TargetError> {
        Ok(None)
    }

    /// Closes a report once the value it found no longer works, saying why
    /// in `note` (e.g. the rotation that revoked it).
    async fn close_exposure(&self, exposure: &Exposure, _note: &str) -> Result<(), TargetError> {
        Err(TargetError::new(
            self.address(),
            format!("cannot close {}: the service keeps no reports", exposure.id),
            None,
        ))
    }

    /// What a write here will do beyond storing the value, where that
    /// depends on the service's state (a Worker's deployments): `Ok` says
    /// it, `Err` says why the service would refuse it. `None`: nothing to say.
    async fn write_effect(&self) -> Option<Result<String, TargetError>> {
        None
    }
}

/// What the planned writes cost in the services' write budgets.
pub use github_plan::GithubLoad as WriteLoad;
pub use kind::TargetKind;

/// Every service's limits against what the policies declare (and what the
/// listings found besides), before any write.
pub fn limits(policy: &crate::policy::Policy, unmanaged: &[crate::engine::Unmanaged]) -> Vec<LimitProblem> {
    github_plan::limits(policy, unmanaged)
}

/// What the planned writes cost in the services' budgets.
pub fn write_load(policy: &crate::policy::Policy, plans: [&Vec<crate::rotation::TokenPlan>; 2]) -> WriteLoad {
    github_plan::load(policy, plans)
}

/// What would change on the next write beyond the value (an organization
/// secret's visibility), where the listing says.
pub use github_plan::visibility_change;

/// A version id as a person reads it: its first eight characters.
pub use cloudflare::short as short_version;

/// What a person does so that a Worker runs the version that holds a new
/// value, said by every command that meets a rollout left to the team.
pub const ROLLOUT_HINT: &str = cloudflare::ROLLOUT_HINT;

/// A service's report of a secret it found exposed (a GitHub
/// secret-scanning alert). The value is kept only to be matched against
/// known values in memory: never shown, logged or written.
#[derive(Debug, Clone)]
pub struct Exposure {
    /// Names the report for people and for closing it: `o/r#12`.
    pub id: String,
    /// The report's page, for a person.
    pub url: Option<String>,
    /// What the service took the secret for (`GitHub Personal Access Token`).
    pub kind: String,
    /// Where the service first saw it (`path:line in commit abc1234`).
    pub first_seen: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    pub value: Secret,
    /// What the service needs to close it (the repository and number).
    pub handle: (String, u64),
}

/// Something a target says about who reads its secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct Reader {
    /// A plain secret of the same name would win over the bound one.
    pub warning: bool,
    pub message: String,
}

/// A service's limit, checked before any write (`plan` shows it; an error
/// stops a run before its first write).
#[derive(serde::Serialize)]
pub struct LimitProblem {
    /// `error` (the service would refuse) or `warning`.
    pub severity: &'static str,
    pub target: TargetId,
    pub message: String,
}

/// A deployed Worker version and its share of the traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    pub id: String,
    pub number: u64,
    /// Its share of the traffic.
    pub percentage: f64,
}

impl Running {
    /// The deployed versions made before `version`: they run an older value.
    pub fn older_than<'a>(running: &'a [Running], version: &WorkerVersion) -> Vec<&'a Running> {
        running.iter().filter(|r| r.id != version.id && r.number < version.number).collect()
    }
}

impl std::fmt::Display for Running {
    /// `version #3 (0a1b2c3d…) at 90%`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "version #{} ({}) at {}%", self.number, cloudflare::short(&self.id), self.percentage)
    }
}

/// What remote targets share for one run: the HTTP client, credentials
/// from the environment, GitHub's pacing and public-key cache.
#[derive(Clone)]
pub struct Remote {
    /// Cloudflare's client.
    pub http: Http,
    /// GitHub's: the same connection pool, its own counters (its pacing
    /// reacts to GitHub's "slow down" only).
    pub github_http: Http,
    pub github: Arc<github::Shared>,
    /// Cloudflare's request budget, for every Worker of the run.
    pub cloudflare: Arc<pacer::Pacer>,
    /// Endpoints and credentials (`GITHUB_TOKEN`, `CLOUDFLARE_API_TOKEN`, …):
    /// the process environment, or a fixed set given by a test.
    vars: Option<Arc<std::collections::BTreeMap<String, String>>>,
}

impl Remote {
    /// Endpoints and credentials come from the process environment.
    /// The error says why no HTTP client could be made.
    pub fn from_env() -> Result<Self, String> {
        let http = Http::new().map_err(|e| format!("no HTTP client: {e}"))?;
        Ok(Remote {
            github_http: http.with_own_stats(),
            http,
            github: Arc::new(github::Shared::keeping_keys()),
            cloudflare: Arc::new(pacer::Pacer::new(cloudflare_api::SERVICE, pacer::Budget::cloudflare())),
            vars: None,
        })
    }

    /// Endpoints and credentials from `vars` only (tests run many fakes in
    /// one process, where the environment cannot differ per test).
    pub fn with_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, String> {
        // Nothing kept between runs: many tests share one process and home.
        Ok(Remote {
            vars: Some(Arc::new(vars.into_iter().collect())),
            github: Arc::new(github::Shared::default()),
            ..Remote::from_env()?
        })
    }

    /// No paced request (GitHub's or Cloudflare's) starts that would have to
    /// wait past `deadline` (`--max-duration`).
    pub fn stop_writing_at(&self, deadline: std::time::Instant) {
        self.github.pacer().stop_at(deadline);
        self.cloudflare.stop_at(deadline);
    }

    /// A non-empty setting, e.g. `GITHUB_TOKEN`.
    pub fn var(&self, name: &str) -> Option<String> {
        match &self.vars {
            Some(vars) => vars.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
        .filter(|v| !v.is_empty())
    }

    /// Requests sent and retried, across every service.
    pub fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let (a, b) = (&self.http.stats, &self.github_http.stats);
        (a.requests.load(Relaxed) + b.requests.load(Relaxed), a.retries.load(Relaxed) + b.retries.load(Relaxed))
    }
}

/// Builds the target a policy entry describes. `files` is the project
/// (where .env files resolve and may be written); `remote` is needed for
/// remote targets only.
pub fn build(
    policy: &TargetPolicy,
    files: &crate::project::ProjectFiles,
    remote: Option<&Remote>,
) -> Result<Box<dyn Target>, TargetError> {
    policy.spec.kind().build(policy.address(), files, remote)
}

/// Every name gets the same error (a failure before any per-name write).
pub fn all_failed(items: &[(String, Secret)], error: &TargetError) -> PutResults {
    items.iter().map(|(n, _)| (n.clone(), Err(error.clone()))).collect()
}

/// Why `target` cannot take `value`, if it cannot: checked for every
/// target of a token before a value is stored or sent anywhere, so no
/// rotation is left half-delivered by a value one target refuses.
pub fn value_problem(target: &crate::policy::TargetPolicy, value: &crate::secret::Secret) -> Option<String> {
    let address = target.address();
    if value.expose().contains('\0') {
        return Some(format!("holds a NUL byte, which {address} cannot take"));
    }
    target.spec.kind().value_problem(&address, value)
}
