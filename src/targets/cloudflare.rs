//! The `wrangler` target: Cloudflare Workers secrets of one script.
//!
//! By default over the REST API (`CLOUDFLARE_API_TOKEN`,
//! `CLOUDFLARE_ACCOUNT_ID`, `CLOUDFLARE_API_BASE_URL`). Every secret write
//! makes a new version of the Worker:
//! - `deploy = "immediate"` (default): the bulk endpoint (at most 100
//!   operations a request, one PUT per secret where the account lacks it)
//!   deploys the new version at 100%. Cloudflare refuses that (10215) while
//!   the latest version is not the deployed one, so the deployments are
//!   read first and such a write is reported, not attempted.
//! - `deploy = "version"`: the secrets go into a new version made from the
//!   deployed one (code re-uploaded, every other binding inherited), as
//!   `wrangler versions secret bulk` does, and the rollout is left to the
//!   team (or `rollout = "100%"`).
//!
//! The version a write made is kept in the delivery record: the old token is
//! not revoked while a deployed version older than it still runs.
//!
//! Success is what the envelope's `success` says, not only the HTTP status.
//! With `via = "cli"`, runs `wrangler secret put NAME --name SCRIPT` with
//! the value on stdin.

use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;
use zeroize::Zeroizing;

use super::cloudflare_api::{self, CloudflareApi};
use super::{PutResults, Remote, RemoteSecret, Running, Target, TargetError, TargetId, Written, all_failed};
use crate::policy::{Deploy, WranglerSpec};
use crate::registry::WorkerVersion;
use crate::secret::Secret;

const BULK_LIMIT: usize = 100;
const NO_SUCH_SCRIPT: u64 = 10007;
const NOT_DEPLOYED: u64 = 10215;

/// `GET …/deployments`: the newest deployment first.
#[derive(Deserialize)]
pub(super) struct Deployments {
    #[serde(default)]
    pub(super) deployments: Vec<Deployment>,
}

/// One deployment as Cloudflare's description has it: what it runs, and
/// how, when and by whom it was made (`workers/triggered_by`: `secret` for
/// a secret change, `upload` for a code deploy, …).
#[derive(Deserialize, Clone)]
pub(super) struct Deployment {
    #[serde(default)]
    pub(super) versions: Vec<Deployed>,
    #[serde(default)]
    created_on: Option<String>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    author_email: Option<String>,
    #[serde(default)]
    annotations: Option<DeploymentAnnotations>,
}

#[derive(Deserialize, Clone, Default)]
struct DeploymentAnnotations {
    #[serde(rename = "workers/triggered_by", default)]
    triggered_by: Option<String>,
}

impl Deployment {
    fn trigger(&self) -> Option<&str> {
        self.annotations.as_ref().and_then(|a| a.triggered_by.as_deref())
    }

    /// `on 2026-12-01T10:00:00Z by a secret change (source: wrangler, author: a@b.c)`
    fn said(&self) -> String {
        let how = match self.trigger() {
            Some("secret") => "by a secret change".to_string(),
            Some(other) => format!("by `{other}`"),
            None => "in a way Cloudflare does not name".to_string(),
        };
        let when = self.created_on.as_deref().map(|c| format!("on {c} ")).unwrap_or_default();
        let mut who = Vec::new();
        if let Some(s) = &self.source {
            who.push(format!("source: {s}"));
        }
        if let Some(a) = &self.author_email {
            who.push(format!("author: {a}"));
        }
        let who = if who.is_empty() { String::new() } else { format!(" ({})", who.join(", ")) };
        format!("{when}{how}{who}")
    }
}

/// A version that runs, and its share of the traffic.
#[derive(Deserialize, Clone)]
pub(super) struct Deployed {
    pub(super) version_id: String,
    percentage: f64,
}

#[derive(Deserialize)]
struct VersionList {
    #[serde(default)]
    items: Vec<VersionSummary>,
}

/// A version as the list gives it: id and number only (the published
/// description has nothing else for list items that we use).
#[derive(Deserialize)]
struct VersionSummary {
    id: String,
    #[serde(default)]
    number: Option<u64>,
}

/// Every version chitty-secrets makes says so in its message (for people
/// reading the dashboard; the code never reads it back).
const MESSAGE_PREFIX: &str = "chitty-secrets: ";

/// `GET …/versions/{id}`: what a version binds (names and types only).
#[derive(Deserialize)]
pub(super) struct VersionDetail {
    number: u64,
    #[serde(default)]
    pub(super) resources: Resources,
}

#[derive(Deserialize, Default)]
pub(super) struct Resources {
    #[serde(default)]
    pub(super) bindings: Vec<BindingRef>,
    #[serde(default)]
    script: ScriptInfo,
    #[serde(default)]
    script_runtime: Runtime,
}

/// `resources.script`: `etag` is the hash of the version's code, so two
/// versions with one etag run the same code.
#[derive(Deserialize, Default)]
struct ScriptInfo {
    #[serde(default)]
    etag: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct BindingRef {
    pub(super) name: String,
    #[serde(rename = "type")]
    pub(super) kind: String,
    /// A `secrets_store_secret` binding: which store, which secret.
    #[serde(default)]
    pub(super) store_id: Option<String>,
    #[serde(default)]
    pub(super) secret_name: Option<String>,
}

#[derive(Deserialize, Default)]
struct Runtime {
    #[serde(default)]
    compatibility_date: Option<String>,
    #[serde(default)]
    compatibility_flags: Option<Vec<String>>,
}

/// A version's code as `content/v2` gives it.
struct Code {
    /// The entry point's part name.
    main: String,
    /// A service-worker script (one plain part) rather than ES modules.
    service_worker: bool,
    parts: Vec<(String, String, Vec<u8>)>,
}

pub struct CloudflareTarget {
    api: CloudflareApi,
    script: String,
    deploy: Deploy,
    /// With `deploy = "version"`: deploy the new version at 100%.
    roll_out: bool,
    /// Set once this run has written: the confirming listing then also
    /// says which version holds the values.
    wrote: AtomicBool,
    /// The version a `deploy = "version"` write made.
    placed: Mutex<Option<WorkerVersion>>,
    /// Whether a deploying write would be accepted, read once a run (our
    /// own writes keep the latest version deployed).
    writable: tokio::sync::OnceCell<Result<(), TargetError>>,
    /// The deployments (newest first), as read before this target sent
    /// anything but a read: `plan`'s listing and its write preview share
    /// one read. Any other request forgets it.
    deployments: Mutex<Option<Option<Vec<Deployment>>>>,
    /// The versions the delivery records say chitty-secrets made here.
    ours: Mutex<Vec<WorkerVersion>>,
}

impl CloudflareTarget {
    pub fn new(address: TargetId, spec: &WranglerSpec, remote: Remote) -> Result<Self, TargetError> {
        Ok(CloudflareTarget {
            api: CloudflareApi::new(
                address,
                remote,
                cloudflare_api::Needs {
                    permission: "Workers Scripts: Edit",
                    without_token: Some("use via = \"cli\" with a logged-in wrangler"),
                    code_hint: worker_code_hint,
                },
            ),
            script: spec.script(),
            deploy: spec.deploy,
            roll_out: spec.rollout.as_deref() == Some("100%"),
            wrote: AtomicBool::new(false),
            placed: Mutex::new(None),
            writable: tokio::sync::OnceCell::new(),
            deployments: Mutex::new(None),
            ours: Mutex::new(Vec::new()),
        })
    }

    fn err(&self, message: impl Into<String>, hint: Option<&str>) -> TargetError {
        self.api.err(message, hint)
    }

    /// `…/accounts/{a}/workers/scripts/{script}/{tail…}?{query}`
    fn url(&self, tail: &[&str], query: &[(&str, &str)]) -> Result<String, TargetError> {
        let mut segments = vec!["workers", "scripts", self.script.as_str()];
        segments.extend(tail);
        self.api.account_url(&segments, query)
    }

    async fn call(&self, method: Method, url: &str, body: Option<(&str, &[u8])>) -> Result<Response, TargetError> {
        if method != Method::GET {
            *self.deployments.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        }
        self.api.call(method, url, body).await
    }

    async fn envelope(
        &self,
        method: &Method,
        url: &str,
        response: Response,
    ) -> Result<cloudflare_api::Envelope, (StatusCode, TargetError)> {
        self.api.envelope(method, url, response).await
    }

    fn no_such_script(error: &TargetError) -> bool {
        error.codes.contains(&NO_SUCH_SCRIPT)
    }

    /// One request whose envelope's `result` is read as `T`.
    async fn fetch<T: DeserializeOwned>(
        &self,
        method: Method,
        url: &str,
        body: Option<(&str, &[u8])>,
    ) -> Result<T, (StatusCode, TargetError)> {
        let response = self.call(method.clone(), url, body).await.map_err(|e| (StatusCode::BAD_GATEWAY, e))?;
        self.api.read(&method, url, response).await
    }

    async fn get<T: DeserializeOwned>(&self, tail: &[&str], query: &[(&str, &str)]) -> Result<T, TargetError> {
        let url = self.url(tail, query)?;
        self.fetch(Method::GET, &url, None).await.map_err(|(_, e)| e)
    }

    /// What runs now; `None` where the account has no deployments API.
    async fn deployed(&self) -> Result<Option<Vec<Deployed>>, TargetError> {
        Ok(self.deployment_history().await?.map(|h| h.into_iter().next().map(|d| d.versions).unwrap_or_default()))
    }

    /// The deployments, newest first (the first is what runs); `None`
    /// where the account has no deployments API.
    async fn deployment_history(&self) -> Result<Option<Vec<Deployment>>, TargetError> {
        if let Some(read) = self.deployments.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone() {
            return Ok(read);
        }
        let url = self.url(&["deployments"], &[])?;
        let read = match self.fetch::<Deployments>(Method::GET, &url, None).await {
            Ok(d) => Some(d.deployments),
            Err((StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED, e)) if !Self::no_such_script(&e) => None,
            Err((_, e)) => return Err(e),
        };
        if !self.wrote.load(Ordering::SeqCst) {
            *self.deployments.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(read.clone());
        }
        Ok(read)
    }

    fn is_ours(&self, id: &str) -> bool {
        let placed = self.placed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        placed.as_ref().is_some_and(|p| p.id == id)
            || self.ours.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().any(|v| v.id == id)
    }

    /// The newest version as the list gives it (newest first).
    async fn latest_summary(&self) -> Result<Option<VersionSummary>, TargetError> {
        let list: VersionList = self.get(&["versions"], &[("per_page", "1")]).await?;
        Ok(list.items.into_iter().next())
    }

    /// The versions made after version number `after`, newest first (at
    /// most the last 100: the list's largest page).
    async fn versions_since(&self, after: u64) -> Result<Vec<VersionSummary>, TargetError> {
        let list: VersionList = self.get(&["versions"], &[("per_page", "100")]).await?;
        Ok(list.items.into_iter().filter(|v| v.number.is_some_and(|n| n > after)).collect())
    }

    /// The newest version, numbered.
    async fn latest(&self) -> Result<Option<WorkerVersion>, TargetError> {
        match self.latest_summary().await? {
            Some(v) => self.numbered(v).await.map(Some),
            None => Ok(None),
        }
    }

    /// A version as listed or made, with its number (looked up where the
    /// answer did not give it).
    async fn numbered(&self, v: VersionSummary) -> Result<WorkerVersion, TargetError> {
        let number = match v.number {
            Some(n) => n,
            None => self.detail(&v.id).await?.number,
        };
        Ok(WorkerVersion { id: v.id, number, deployed: false })
    }

    async fn detail(&self, id: &str) -> Result<VersionDetail, TargetError> {
        self.get(&["versions", id], &[]).await
    }

    /// Before a write that deploys: Cloudflare refuses it (10215) unless
    /// the latest version is the only one deployed, so say so first.
    async fn preflight(&self) -> Result<(), TargetError> {
        self.writable.get_or_init(|| self.read_preflight()).await.clone()
    }

    async fn read_preflight(&self) -> Result<(), TargetError> {
        let (deployed, latest) = tokio::join!(self.deployed(), self.latest());
        let (Some(deployed), Some(latest)) = (deployed?, latest?) else { return Ok(()) };
        let runs_latest = matches!(&deployed[..], [only] if only.version_id == latest.id);
        if runs_latest || deployed.is_empty() {
            return Ok(());
        }
        let why = if deployed.len() > 1 {
            format!("a gradual deployment is in progress ({})", describe(&deployed))
        } else {
            format!(
                "its latest version {} (#{}) is not the deployed one (deployed: {})",
                short(&latest.id),
                latest.number,
                describe(&deployed)
            )
        };
        Err(self
            .err(
                format!("{why}: Cloudflare would refuse a secret write (10215), so nothing was written"),
                Some(NOT_DEPLOYED_HINT),
            )
            .answered(400, vec![NOT_DEPLOYED]))
    }

    /// One bulk request; `Ok(None)` means the account has no bulk endpoint.
    async fn bulk(&self, chunk: &[(String, Secret)]) -> Result<Option<()>, TargetError> {
        let url = self.url(&["secrets-bulk"], &[])?;
        #[derive(serde::Serialize)]
        struct Bulk<'a> {
            secrets: std::collections::BTreeMap<&'a str, SecretText<'a>>,
        }
        let secrets = chunk.iter().map(|(name, value)| (name.as_str(), SecretText::new(name, value))).collect();
        let body = crate::secret::json_body(&Bulk { secrets });
        let response = self.call(Method::PATCH, &url, Some(("application/merge-patch+json", &body[..]))).await?;
        match self.envelope(&Method::PATCH, &url, response).await {
            Ok(_) => Ok(Some(())),
            Err((StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED, e)) if !Self::no_such_script(&e) => Ok(None),
            Err((_, e)) => Err(e),
        }
    }

    async fn put_one(&self, name: &str, value: &Secret) -> Result<Written, TargetError> {
        let url = self.url(&["secrets"], &[])?;
        let body = crate::secret::json_body(&SecretText::new(name, value));
        let response = self.call(Method::PUT, &url, Some(("application/json", &body[..]))).await?;
        self.envelope(&Method::PUT, &url, response).await.map(|_| Written::Written).map_err(|(_, e)| e)
    }

    /// `deploy = "immediate"`: the secrets endpoints, each write deployed.
    async fn put_deployed(&self, items: &[(String, Secret)]) -> PutResults {
        if let Err(e) = self.preflight().await {
            return all_failed(items, &e);
        }
        let mut results = Vec::new();
        let mut chunks = items.chunks(BULK_LIMIT);
        while let Some(chunk) = chunks.next() {
            match self.bulk(chunk).await {
                Ok(Some(())) => results.extend(chunk.iter().map(|(n, _)| (n.clone(), Ok(Written::Written)))),
                Ok(None) => {
                    // No bulk endpoint here: one PUT per secret, for the rest too.
                    for (name, value) in chunk.iter().chain(chunks.by_ref().flatten()) {
                        results.push((name.clone(), self.put_one(name, value).await));
                    }
                }
                Err(e) => results.extend(all_failed(chunk, &e)),
            }
        }
        results
    }

    /// The version the new one is made from, and how to say which: the
    /// latest when chitty-secrets made it (values written one after the
    /// other add up before the team rolls them out), else what runs (the
    /// larger share of a split: the version most traffic trusts).
    async fn base_version(&self) -> Result<(String, String), TargetError> {
        let (deployed, latest) = tokio::join!(self.deployed(), self.latest_summary());
        let (deployed, latest) = (deployed?.unwrap_or_default(), latest?);
        if let Some(latest) = latest.as_ref().filter(|v| self.is_ours(&v.id)) {
            let deployed = deployed.iter().any(|d| d.version_id == latest.id);
            let state = if deployed { "deployed" } else { "not deployed yet" };
            return Ok((
                latest.id.clone(),
                format!("the one chitty-secrets made last ({}, {state})", short(&latest.id)),
            ));
        }
        if let Some(most) = deployed.iter().max_by(|a, b| a.percentage.total_cmp(&b.percentage)) {
            return Ok((most.version_id.clone(), format!("the deployed one ({})", describe(&deployed))));
        }
        match latest {
            Some(v) => Ok((v.id.clone(), format!("the latest ({})", short(&v.id)))),
            None => {
                Err(self
                    .err("the Worker has no version to build on", Some("deploy the Worker first (`wrangler deploy`)")))
            }
        }
    }

    /// The base version's code, to upload again unchanged in the new
    /// version. Cloudflare's description gives only the script's code
    /// (`content/v2` takes no version), so it is taken only when every
    /// version that code could be — the latest, the deployed ones — has the
    /// base's code hash (`resources.script.etag`); otherwise nothing is made.
    async fn code(&self, base: &str, base_detail: &VersionDetail) -> Result<Code, TargetError> {
        let (deployed, latest) = tokio::join!(self.deployed(), self.latest_summary());
        let mut others: Vec<String> = deployed?.unwrap_or_default().into_iter().map(|d| d.version_id).collect();
        others.extend(latest?.map(|v| v.id));
        others.retain(|id| id != base);
        others.dedup();
        let hash = base_detail.resources.script.etag.as_deref();
        for other in &others {
            let detail = self.detail(other).await?;
            if hash.is_none() || detail.resources.script.etag.as_deref() != hash {
                return Err(self.err(
                    format!(
                        "version {} (#{}) runs other code than version {} (#{}), the one the new version is made from, and Cloudflare's API gives only the Worker's current code: no version was made",
                        short(other),
                        detail.number,
                        short(base),
                        base_detail.number
                    ),
                    Some("finish the rollout first (`wrangler versions deploy`), so that the latest version is the deployed one, and run again"),
                ));
            }
        }
        let url = self.url(&["content", "v2"], &[])?;
        let response = self.call(Method::GET, &url, None).await?;
        let status = response.status();
        if !status.is_success() {
            return Err(self
                .envelope(&Method::GET, &url, response)
                .await
                .err()
                .map_or_else(|| self.err(format!("GET {url} → {status}"), None), |(_, e)| e));
        }
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let (content_type, entry) = (header("content-type").unwrap_or_default(), header("cf-entrypoint"));
        let body = crate::http::body(response, crate::http::WORKER_CODE_MAX)
            .await
            .map_err(|e| self.err(format!("GET {url}: {e}"), None))?;
        let Ok(boundary) = multer::parse_boundary(&content_type) else {
            // A service-worker script: one plain body.
            let name = "index.js".to_string();
            return Ok(Code { main: name.clone(), service_worker: true, parts: vec![(name, content_type, body)] });
        };
        let unreadable =
            |e: multer::Error| self.err(format!("GET {url}: the Worker's code could not be read ({e})"), None);
        let mut form =
            multer::Multipart::new(futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) }), boundary);
        let mut parts = Vec::new();
        while let Some(field) = form.next_field().await.map_err(unreadable)? {
            let name = field.name().or(field.file_name()).unwrap_or_default().to_string();
            let kind = field.content_type().map_or_else(|| "application/octet-stream".to_string(), ToString::to_string);
            parts.push((name, kind, field.bytes().await.map_err(unreadable)?.to_vec()));
        }
        let main = entry.or_else(|| parts.first().map(|p| p.0.clone())).unwrap_or_default();
        if !parts.iter().any(|p| p.0 == main) {
            return Err(self.err(format!("GET {url}: the Worker's entry point `{main}` is not in its code"), None));
        }
        Ok(Code { main, service_worker: false, parts })
    }

    /// `deploy = "version"`: one new version from the deployed one with
    /// these secrets (and without `remove`), every other binding inherited
    /// from it; deployed at 100% only with `rollout = "100%"`.
    async fn put_version(&self, items: &[(String, Secret)], remove: &[&str]) -> Result<WorkerVersion, TargetError> {
        let (base, _) = self.base_version().await?;
        let detail = self.detail(&base).await?;
        let code = self.code(&base, &detail).await?;
        if code.service_worker {
            // Cloudflare's version upload takes ES modules only (its
            // metadata requires `main_module`): nothing is sent.
            return Err(self.err(
                "the Worker is written in the service-worker syntax, and Cloudflare's version upload takes ES modules only (`main_module`): no version was made",
                Some("use deploy = \"secrets\" (the default) for this Worker, or move it to the ES module syntax"),
            ));
        }
        let names: Vec<&str> = items.iter().map(|(n, _)| n.as_str()).collect();
        let bindings: Vec<serde_json::Value> = detail
            .resources
            .bindings
            .iter()
            .filter(|b| !names.iter().chain(remove).any(|n| *n == b.name))
            .map(|b| serde_json::json!({"type": "inherit", "name": b.name, "version_id": base}))
            .collect();
        let secrets: Vec<SecretText<'_>> = items.iter().map(|(n, v)| SecretText::new(n, v)).collect();
        let message = if names.is_empty() {
            format!("{MESSAGE_PREFIX}removed {}", remove.join(", "))
        } else {
            format!("{MESSAGE_PREFIX}new values for {}", names.join(", "))
        };
        let mut metadata = serde_json::json!({
            "annotations": {"workers/message": version_message(&message)},
            "compatibility_flags": detail.resources.script_runtime.compatibility_flags.unwrap_or_default(),
            "main_module": code.main,
        });
        // A string or absent, never null: a version without one is sent without one.
        if let Some(date) = detail.resources.script_runtime.compatibility_date {
            metadata["compatibility_date"] = serde_json::json!(date);
        }
        let body = version_form(&metadata, bindings, &secrets, &code);
        // `strict`: an inherited binding that cannot be resolved fails the
        // upload instead of being dropped from the new version.
        let url = self.url(&["versions"], &[("bindings_inherit", "strict")])?;
        let content_type = format!("multipart/form-data; boundary={}", body.1);
        let made: VersionSummary =
            self.fetch(Method::POST, &url, Some((&content_type, &body.0[..]))).await.map_err(|(_, e)| e)?;
        self.wrote.store(true, Ordering::SeqCst);
        let mut version = self.numbered(made).await?;
        if self.roll_out {
            let url = self.url(&["deployments"], &[])?;
            let body = serde_json::to_vec(&serde_json::json!({
                "strategy": "percentage",
                "versions": [{"version_id": version.id, "percentage": 100}],
            }))
            .expect("JSON of strings");
            let deployed: Result<serde_json::Value, _> =
                self.fetch(Method::POST, &url, Some(("application/json", &body[..]))).await;
            deployed.map_err(|(_, e)| {
                let mut e = e;
                e.message =
                    format!("version {} holds the new values but was not deployed: {}", short(&version.id), e.message);
                e
            })?;
            version.deployed = true;
        }
        Ok(version)
    }

    /// Notes the version this run's last write made.
    fn place(&self, version: WorkerVersion) {
        *self.placed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(version);
    }

    /// A version's secret names (never values).
    async fn version_secrets(&self, version: &WorkerVersion) -> Result<Vec<RemoteSecret>, TargetError> {
        let detail = self.detail(&version.id).await?;
        Ok(detail
            .resources
            .bindings
            .into_iter()
            .filter(|b| b.kind == "secret_text")
            .map(|b| RemoteSecret { worker_version: Some(version.clone()), ..RemoteSecret::named(b.name) })
            .collect())
    }

    /// The secret names the latest version holds.
    async fn latest_secrets(&self) -> Result<Vec<RemoteSecret>, TargetError> {
        let list: serde_json::Value = self.get(&["secrets"], &[]).await?;
        Ok(list
            .as_array()
            .map(|a| a.iter().filter_map(|s| s["name"].as_str()).map(RemoteSecret::named).collect())
            .unwrap_or_default())
    }
}

/// How a team rolls out the version that holds a new value.
pub const ROLLOUT_HINT: &str = "deploy the version that holds the new value (`wrangler versions deploy VERSION@100%`)";

/// What to do about a Worker's own error codes.
fn worker_code_hint(codes: &[u64]) -> Option<&'static str> {
    if codes.contains(&NOT_DEPLOYED) {
        Some(NOT_DEPLOYED_HINT)
    } else if codes.contains(&NO_SUCH_SCRIPT) {
        Some(
            "there is no Worker script by that name in this account: deploy it first, or fix `worker`/`env` in the policy",
        )
    } else {
        None
    }
}

const NOT_DEPLOYED_HINT: &str = "Cloudflare refuses secret writes while the Worker's latest version is not the one deployed: finish or undo the rollout (`wrangler versions deploy`) and run again, or set deploy = \"version\" on this target to put new secrets into a version you roll out yourself";

/// `0a1b2c3d… at 10%, 9f8e7d6c… at 90%`
fn describe(deployed: &[Deployed]) -> String {
    deployed.iter().map(|d| format!("{} at {}%", short(&d.version_id), d.percentage)).collect::<Vec<_>>().join(", ")
}

/// A version id as a person reads it: its first eight characters.
pub fn short(id: &str) -> String {
    let head: String = id.chars().take(8).collect();
    if head.len() < id.len() { format!("{head}…") } else { head }
}

/// The multipart body of `POST …/versions`, and its boundary. The values
/// are only in this (zeroized) buffer.
fn version_form(
    metadata: &serde_json::Value,
    bindings: Vec<serde_json::Value>,
    secrets: &[SecretText<'_>],
    code: &Code,
) -> (Zeroizing<Vec<u8>>, String) {
    // Each piece is serialized on its own and copied once into a buffer
    // sized in advance: a growing buffer would leave copies of the values
    // behind in memory it gave back.
    let head = serde_json::to_vec(metadata).expect("JSON of strings");
    let plain: Vec<Vec<u8>> = bindings.iter().map(|b| serde_json::to_vec(b).expect("JSON of strings")).collect();
    let sealed: Vec<Zeroizing<Vec<u8>>> = secrets.iter().map(crate::secret::json_body).collect();
    let boundary = format!("chitty-secrets-{}", crate::fsutil::random_hex(16));
    let part_head = |name: &str, content_type: &str, file: bool| {
        let file = if file { format!("; filename=\"{name}\"") } else { String::new() };
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\nContent-Type: {content_type}\r\n\r\n"
        )
    };
    let metadata_head = part_head("metadata", "application/json", false);
    let code_heads: Vec<String> = code.parts.iter().map(|(name, kind, _)| part_head(name, kind, true)).collect();
    let tail = format!("--{boundary}--\r\n");
    let pieces = plain.iter().map(Vec::len).chain(sealed.iter().map(|s| s.len()));
    let json_len = head.len() + pieces.map(|n| n + 1).sum::<usize>() + b"\"bindings\":[]}".len() + 1;
    let code_len: usize =
        code_heads.iter().map(String::len).sum::<usize>() + code.parts.iter().map(|p| p.2.len() + 2).sum::<usize>();
    let capacity = metadata_head.len() + json_len + 2 + code_len + tail.len();
    let mut body = Zeroizing::new(Vec::with_capacity(capacity));
    body.extend_from_slice(metadata_head.as_bytes());
    // `{…,"bindings":[…]}`: the metadata object with the bindings added.
    body.extend_from_slice(&head[..head.len() - 1]);
    body.extend_from_slice(if head.len() > 2 { b",\"bindings\":[" } else { b"\"bindings\":[" });
    for (i, piece) in plain.iter().map(Vec::as_slice).chain(sealed.iter().map(|s| s.as_slice())).enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(piece);
    }
    body.extend_from_slice(b"]}\r\n");
    for ((_, _, bytes), head) in code.parts.iter().zip(&code_heads) {
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(tail.as_bytes());
    debug_assert_eq!(body.capacity(), capacity, "the body grew: a copy of the values was left behind");
    (body, boundary)
}

#[async_trait]
impl Target for CloudflareTarget {
    fn address(&self) -> &TargetId {
        &self.api.address
    }

    async fn prepare(&self) {
        // Cached per target; the write meets and reports any refusal.
        if self.deploy == Deploy::Immediate {
            let _ = self.preflight().await;
        }
    }

    async fn put_many(&self, items: &[(String, Secret)]) -> PutResults {
        match self.deploy {
            Deploy::Immediate => {
                let results = self.put_deployed(items).await;
                if results.iter().any(|(_, r)| r.is_ok()) {
                    self.wrote.store(true, Ordering::SeqCst);
                }
                results
            }
            Deploy::Version => match self.put_version(items, &[]).await {
                Ok(version) => {
                    self.place(version);
                    items.iter().map(|(n, _)| (n.clone(), Ok(Written::Written))).collect()
                }
                Err(e) => all_failed(items, &e),
            },
        }
    }

    /// The names the latest version holds; after this run's write, the
    /// names of the version it made, with that version.
    async fn list(&self) -> Result<Option<Vec<RemoteSecret>>, TargetError> {
        let placed = self.placed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        if let Some(version) = placed {
            return self.version_secrets(&version).await.map(Some);
        }
        if !self.wrote.load(Ordering::SeqCst) {
            return self.latest_secrets().await.map(Some);
        }
        // Just written and deployed: the newest version is the one the
        // write made (read in the same round trip as the names).
        let (names, latest) = tokio::join!(self.latest_secrets(), self.latest());
        let version = latest?.map(|v| WorkerVersion { deployed: true, ..v });
        Ok(Some(names?.into_iter().map(|s| RemoteSecret { worker_version: version.clone(), ..s }).collect()))
    }

    async fn delete(&self, name: &str) -> Result<(), TargetError> {
        if self.deploy == Deploy::Version {
            let version = self.put_version(&[], &[name]).await?;
            self.place(version);
            return Ok(());
        }
        self.preflight().await?;
        let url = self.url(&["secrets", name], &[])?;
        let response = self.call(Method::DELETE, &url, None).await?;
        self.envelope(&Method::DELETE, &url, response).await.map_err(|(_, e)| e)?;
        // Deployed at once: the listing after it says which version holds
        // the names left.
        self.wrote.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn write_effect(&self) -> Option<Result<String, TargetError>> {
        Some(match self.deploy {
            Deploy::Immediate => self.preflight().await.map(|()| {
                "a write makes a new version of the Worker and deploys it at 100% (as `wrangler secret put` does)"
                    .into()
            }),
            Deploy::Version => self.base_version().await.map(|(_, from)| {
                let then = if self.roll_out { "deployed at 100% (rollout)" } else { "not deployed: you roll it out" };
                format!("a write makes a new version from {from}, {then}")
            }),
        })
    }

    fn know_versions(&self, ours: &[WorkerVersion]) {
        *self.ours.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = ours.to_vec();
    }

    /// Cloudflare records how each deployment was made. Every deployment
    /// newer than the newest one running a version of ours is looked at: a
    /// secret change (`workers/triggered_by = secret`) we did not make
    /// means we can no longer vouch for the values; a code deploy
    /// (`upload`) inherits them and is fine; any other deployment of a
    /// newer version not ours is judged by its code hash — the same code
    /// as ours means it was made by a change Cloudflare does not tell
    /// apart from a secret change.
    async fn changed_by_others(&self, ours: &[WorkerVersion]) -> Result<Vec<String>, TargetError> {
        let Some(history) = self.deployment_history().await? else { return Ok(Vec::new()) };
        let is_ours = |id: &str| ours.iter().any(|v| v.id == id) || self.is_ours(id);
        // The newest deployment that runs a version of ours, and every one
        // after it; versions not ours beside ours in a split count too.
        let looked_at = match history.iter().position(|d| d.versions.iter().any(|v| is_ours(&v.version_id))) {
            Some(at) => &history[..=at],
            // Ours deployed but no longer listed: every listed one is newer.
            None if ours.iter().any(|v| v.deployed) => &history[..],
            // Never deployed (a version left to the team): nothing to judge.
            None => return Ok(Vec::new()),
        };
        let Some(newest) = ours.iter().max_by_key(|v| v.number) else { return Ok(Vec::new()) };
        let foreign = |d: &Deployment| d.versions.iter().any(|v| !is_ours(&v.version_id));
        if !looked_at.iter().any(foreign) {
            return Ok(Vec::new());
        }
        // Code hashes, read once each; the versions made since ours, listed
        // once (a version that brought no code of its own that some version
        // made since ours did not already have was made by a change of
        // secrets or settings).
        let mut hashes: std::collections::HashMap<String, (u64, Option<String>)> = std::collections::HashMap::new();
        let mut made_since: Option<Vec<VersionSummary>> = None;
        let mut said: Vec<String> = Vec::new();
        // Oldest first, as they were made.
        for d in looked_at.iter().rev() {
            for v in d.versions.iter().filter(|v| !is_ours(&v.version_id)) {
                if hashes.contains_key(&v.version_id) {
                    continue;
                }
                let detail = self.detail(&v.version_id).await?;
                let (number, hash) = (detail.number, detail.resources.script.etag);
                hashes.insert(v.version_id.clone(), (number, hash.clone()));
                let why = match d.trigger() {
                    Some("secret") => "",
                    // A code deploy carries the secrets it found over.
                    Some("upload") => continue,
                    // Older than ours: a rollback, which `running` reports.
                    _ if number < newest.number => continue,
                    _ => {
                        let list = match &made_since {
                            Some(list) => list,
                            None => made_since.insert(self.versions_since(newest.number).await?),
                        };
                        let earlier: Vec<String> = list
                            .iter()
                            .filter(|e| e.number.is_some_and(|n| n < number))
                            .map(|e| e.id.clone())
                            .collect();
                        let mut same_code = hash.is_none();
                        for id in earlier.iter().chain(std::iter::once(&newest.id)) {
                            if !hashes.contains_key(id) {
                                let e = self.detail(id).await?;
                                hashes.insert(id.clone(), (e.number, e.resources.script.etag));
                            }
                            same_code |= hash.is_some() && hashes[id].1 == hash;
                        }
                        if !same_code {
                            continue;
                        }
                        " with no new code, so by a change Cloudflare does not tell apart from a secret change"
                    }
                };
                said.push(format!(
                    "version {} (#{number}) was deployed {}{why}, after version #{} that chitty-secrets wrote",
                    short(&v.version_id),
                    d.said(),
                    newest.number
                ));
            }
        }
        Ok(said)
    }

    async fn running(&self, known: &[WorkerVersion]) -> Result<Option<Vec<Running>>, TargetError> {
        let Some(deployed) = self.deployed().await? else { return Ok(None) };
        let mut out = Vec::new();
        for d in deployed {
            let number = match known.iter().find(|k| k.id == d.version_id) {
                Some(k) => k.number,
                None => self.detail(&d.version_id).await?.number,
            };
            out.push(Running { id: d.version_id, number, percentage: d.percentage });
        }
        Ok(Some(out))
    }
}

/// `via = "cli"`: the user's logged-in wrangler, value on stdin.
pub struct WranglerCli {
    address: TargetId,
    script: String,
    program: String,
}

impl WranglerCli {
    /// `program`: the wrangler to run (`CHITTY_SECRETS_WRANGLER`, else
    /// `wrangler` from PATH).
    pub fn new(address: TargetId, script: String, program: String) -> Self {
        WranglerCli { address, script, program }
    }

    async fn run(&self, args: &[&str], stdin: Option<&Secret>) -> Result<(), TargetError> {
        let program = &self.program;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                TargetError::new(
                    &self.address,
                    format!("cannot run `{program}`: {e}"),
                    Some("install wrangler (npm i -g wrangler) and log in, or use the API (via = \"api\")"),
                )
            })?;
        if let (Some(value), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(value.expose().as_bytes())
                .await
                .map_err(|e| TargetError::new(&self.address, format!("writing to wrangler: {e}"), None))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| TargetError::new(&self.address, format!("wrangler: {e}"), None))?;
        if out.status.success() {
            return Ok(());
        }
        let mut text = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if let Some(value) = stdin {
            text = text.replace(value.expose(), "****");
        }
        Err(TargetError::new(
            &self.address,
            format!("`{program} {}` failed ({}): {text}", args.join(" "), out.status),
            Some("run `wrangler whoami` to check the login"),
        ))
    }
}

#[async_trait]
impl Target for WranglerCli {
    fn address(&self) -> &TargetId {
        &self.address
    }

    async fn put_many(&self, items: &[(String, Secret)]) -> PutResults {
        let mut results = Vec::new();
        for (name, value) in items {
            let result = self
                .run(&["secret", "put", name, "--name", &self.script], Some(value))
                .await
                .map(|()| Written::Written);
            results.push((name.clone(), result));
        }
        results
    }

    async fn delete(&self, name: &str) -> Result<(), TargetError> {
        self.run(&["secret", "delete", name, "--name", &self.script, "--force"], None).await
    }
}

/// A secret as Cloudflare's API takes it; borrowed, so the value is copied
/// only into the (zeroized) request body.
#[derive(serde::Serialize)]
struct SecretText<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

impl<'a> SecretText<'a> {
    fn new(name: &'a str, value: &'a Secret) -> Self {
        SecretText { name, kind: "secret_text", text: value.expose() }
    }
}

/// The longest version message Cloudflare keeps (`workers/message`).
const MESSAGE_MAX: usize = 100;

/// `message` cut to what a version message may hold, on a character boundary.
fn version_message(message: &str) -> String {
    if message.len() <= MESSAGE_MAX {
        return message.to_string();
    }
    let mut end = MESSAGE_MAX - '…'.len_utf8();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &message[..end])
}

/// The largest value Cloudflare keeps in a Worker's variable or secret.
const MAX_VALUE: usize = 5 * 1024;

impl super::kind::KindEntry for WranglerSpec {
    const KIND: &'static str = "wrangler";
    crate::entry_as_written!();

    crate::entry_names!();
}

/// A Worker's secrets: every write makes a version of the Worker.
impl super::TargetKind for WranglerSpec {
    fn service(&self) -> &'static str {
        cloudflare_api::SERVICE
    }

    fn address(&self) -> TargetId {
        TargetId::new(<Self as super::kind::KindEntry>::KIND, self.script())
    }

    fn runs_versions(&self) -> bool {
        true
    }

    fn problems(&self, token: &str) -> Vec<(String, String)> {
        use crate::policy::Via;
        let mut out = Vec::new();
        let valid = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid(&self.worker) || self.env.as_deref().is_some_and(|e| !valid(e)) {
            out.push((
                format!("token `{token}`: worker `{}` is not a valid Worker script name", self.script()),
                "use letters, digits, `-` and `_`".into(),
            ));
        }
        if self.via == Via::Cli && self.deploy == Deploy::Version {
            out.push((
                format!("token `{token}`: deploy = \"version\" works over the API, not via = \"cli\""),
                "remove via = \"cli\" (the API needs CLOUDFLARE_API_TOKEN and CLOUDFLARE_ACCOUNT_ID)".into(),
            ));
        }
        match (&self.rollout, self.deploy) {
            (Some(_), Deploy::Immediate) => out.push((
                format!("token `{token}`: `rollout` goes with deploy = \"version\""),
                "a write with deploy = \"immediate\" always deploys at 100%: remove rollout".into(),
            )),
            (Some(r), Deploy::Version) if r != "100%" => out.push((
                format!("token `{token}`: rollout `{r}` is not supported"),
                "use rollout = \"100%\", or leave it out and roll the version out with `wrangler versions deploy`"
                    .into(),
            )),
            _ => {}
        }
        out
    }

    fn credentials(&self) -> Vec<&'static [&'static str]> {
        match self.via {
            // A logged-in wrangler brings its own.
            crate::policy::Via::Cli => Vec::new(),
            crate::policy::Via::Api => cloudflare_api::CREDENTIALS.to_vec(),
        }
    }

    fn value_problem(&self, address: &TargetId, value: &Secret) -> Option<String> {
        super::kind::too_large(value, MAX_VALUE, "Cloudflare", "a Worker secret", address)
    }

    fn build(
        &self,
        address: TargetId,
        _files: &crate::project::ProjectFiles,
        remote: Option<&Remote>,
    ) -> Result<Box<dyn Target>, TargetError> {
        if self.via == crate::policy::Via::Cli {
            // The run's settings where it has them (a test gives its own),
            // else the environment.
            let program = remote
                .and_then(|r| r.var("CHITTY_SECRETS_WRANGLER"))
                .or_else(|| std::env::var("CHITTY_SECRETS_WRANGLER").ok().filter(|p| !p.is_empty()))
                .unwrap_or_else(|| "wrangler".into());
            return Ok(Box::new(WranglerCli::new(address, self.script(), program)));
        }
        let remote = super::kind::need_remote(&address, remote)?;
        Ok(Box::new(CloudflareTarget::new(address, self, remote)?))
    }
}

#[cfg(test)]
mod message_tests {
    #[test]
    fn a_version_message_is_cut_to_cloudflares_limit_on_a_character() {
        assert_eq!(super::version_message("short"), "short");
        let long = format!("{}é{}", "x".repeat(97), "y".repeat(50));
        let cut = super::version_message(&long);
        assert!(cut.len() <= super::MESSAGE_MAX && cut.ends_with('…'), "{cut}");
    }
}
