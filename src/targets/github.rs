//! The `github` target: GitHub Actions secrets of a repository, a
//! repository environment, or an organization, over the REST API.
//!
//! Values are sealed (libsodium `crypto_box_seal`, via the pure-Rust
//! `crypto_box` crate) to the scope's public key, which is fetched once per
//! scope per run. Writes are paced to GitHub's published budget (see
//! [`super::pacer`]): at most 8 in flight, 80 a minute and 500 an hour
//! across every GitHub target, and one at a time, spaced out, once GitHub
//! has said "slow down".

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use tokio::sync::{Mutex, Semaphore};

use super::pacer::{Budget, Pacer};
use super::{Answered, Exposure, PutResults, Remote, RemoteSecret, Target, TargetError, TargetId, Written};
use crate::http::Http;
use crate::policy::{GithubApp, GithubScope, GithubSpec, Visibility};
use crate::secret::Secret;

const MAX_IN_FLIGHT: usize = 8;
/// Whose budget and progress a GitHub target counts in.
pub const SERVICE: &str = "GitHub";
/// GitHub's limit on one secret's value.
const MAX_VALUE_BYTES: usize = 48 * 1024;

/// Shared by every GitHub target of a run.
pub struct Shared {
    in_flight: Semaphore,
    /// GitHub's write budget: 80 a minute and 500 an hour.
    pacer: Pacer,
    serial: Mutex<()>,
    /// Each scope's public key, or why it could not be had: asked once a
    /// run (a key read ahead by `prepare` that failed is not asked again).
    keys: Mutex<HashMap<String, Result<PublicKey, TargetError>>>,
    /// Each organization's repositories (name → id), listed once per run.
    org_repos: Mutex<HashMap<String, HashMap<String, u64>>>,
    /// Public keys kept from earlier runs on this machine.
    kept: std::sync::Mutex<KeptKeys>,
    /// Keys being read ahead (`prepare`), which the budget bounds.
    read_ahead: std::sync::atomic::AtomicUsize,
}

/// GitHub's public keys kept between runs on this machine
/// (`~/.config/chitty-secrets/cache/github-public-keys.json`): they are
/// public, and a run that continues a fan-out then spends GitHub's budget
/// on writes, not on reading keys again. A scope whose key was rotated
/// answers the write 422, and its key is read again.
#[derive(Default)]
struct KeptKeys {
    /// Where they are kept; none for runs given their settings (tests).
    path: Option<std::path::PathBuf>,
    /// By the key's URL; read from the file at the first need.
    keys: Option<std::collections::BTreeMap<String, PublicKey>>,
    changed: bool,
}

impl KeptKeys {
    fn keys(&mut self) -> &mut std::collections::BTreeMap<String, PublicKey> {
        let path = self.path.clone();
        self.keys.get_or_insert_with(|| {
            path.and_then(|p| std::fs::read(p).ok())
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .unwrap_or_default()
        })
    }

    fn get(&mut self, url: &str) -> Option<PublicKey> {
        self.path.as_ref()?;
        self.keys().get(url).cloned()
    }

    fn put(&mut self, url: &str, key: &PublicKey) {
        if self.path.is_some() {
            self.keys().insert(url.to_string(), key.clone());
            self.changed = true;
        }
    }
}

impl Drop for KeptKeys {
    /// The keys read this run are kept for the next (a cache: put in place
    /// whole, unsynced; a lost one is read again).
    fn drop(&mut self) {
        if let (true, Some(path), Some(keys)) = (self.changed, &self.path, &self.keys)
            && let Ok(text) = serde_json::to_vec_pretty(keys)
        {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = crate::fsutil::replace_unsynced(path, &text);
        }
    }
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            in_flight: Semaphore::new(MAX_IN_FLIGHT),
            pacer: Pacer::new(SERVICE, Budget::github()),
            serial: Mutex::new(()),
            keys: Mutex::new(HashMap::new()),
            org_repos: Mutex::new(HashMap::new()),
            kept: std::sync::Mutex::new(KeptKeys::default()),
            read_ahead: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl Shared {
    /// Keeps the public keys between runs in this machine's cache folder.
    pub fn keeping_keys() -> Self {
        let path = crate::identity::config_file().with_file_name("cache").join("github-public-keys.json");
        let shared = Shared::default();
        shared.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).path = Some(path);
        shared
    }

    /// No write starts that the budget would make end after `deadline`.
    pub fn pacer(&self) -> &Pacer {
        &self.pacer
    }
}

#[derive(Clone, Deserialize, serde::Serialize)]
struct PublicKey {
    key_id: String,
    key: String,
}

#[derive(Deserialize)]
struct ListPage {
    secrets: Vec<ListedSecret>,
}

#[derive(Deserialize)]
struct ListedSecret {
    name: String,
    updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    visibility: Option<String>,
}

/// A secret-scanning alert as GitHub lists it (only what is read).
#[derive(Deserialize)]
struct Alert {
    number: u64,
    html_url: Option<String>,
    created_at: Option<DateTime<Utc>>,
    secret_type_display_name: Option<String>,
    secret_type: Option<String>,
    /// Absent when GitHub is asked to hide it; never shown.
    secret: Option<String>,
    #[serde(default)]
    is_base64_encoded: Option<bool>,
    first_location_detected: Option<serde_json::Value>,
    /// The organization's list says which repository.
    repository: Option<AlertRepository>,
}

#[derive(Deserialize)]
struct AlertRepository {
    full_name: String,
}

#[derive(Deserialize)]
struct ApiError {
    message: Option<String>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

pub struct GithubTarget {
    address: TargetId,
    /// `repos/o/r`, `repos/o/r/environments/e` or `orgs/o`, as path segments.
    scope: Vec<String>,
    /// Environment secrets have no `actions/` segment in their paths.
    environment: bool,
    /// Organization secrets: GitHub requires `visibility` on every PUT.
    org: bool,
    /// Actions, Dependabot or Codespaces secrets.
    app: GithubApp,
    create_environment: bool,
    /// What the policy says; `None` keeps what the secret has.
    visibility: Option<Visibility>,
    selected_repository_ids: Option<Vec<u64>>,
    /// Repositories by name, resolved to ids on first use.
    selected_repositories: Option<Vec<String>>,
    remote: Remote,
    /// When GitHub answered each write of this run (its `Date`).
    landed: std::sync::Mutex<HashMap<String, DateTime<Utc>>>,
}

impl GithubTarget {
    pub fn new(address: TargetId, spec: &GithubSpec, remote: Remote) -> Self {
        let by_name = match &spec.scope {
            GithubScope::Org { selected_repositories, .. } => selected_repositories.clone(),
            _ => None,
        };
        let (segments, visibility, selected) = match &spec.scope {
            GithubScope::Repo { owner, repo } => (vec!["repos", owner, repo], None, None),
            GithubScope::Environment { owner, repo, environment } => {
                (vec!["repos", owner, repo, "environments", environment], None, None)
            }
            GithubScope::Org { org, visibility, selected_repository_ids, .. } => {
                (vec!["orgs", org], *visibility, selected_repository_ids.clone())
            }
        };
        GithubTarget {
            address,
            environment: matches!(spec.scope, GithubScope::Environment { .. }),
            org: matches!(spec.scope, GithubScope::Org { .. }),
            app: spec.app,
            create_environment: spec.create_environment,
            scope: segments.into_iter().map(str::to_string).collect(),
            visibility,
            selected_repository_ids: selected,
            selected_repositories: by_name,
            remote,
            landed: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn err(&self, message: impl Into<String>, hint: Option<&str>) -> TargetError {
        TargetError::new(&self.address, message, hint)
    }

    fn token(&self) -> Result<Secret, TargetError> {
        ["GITHUB_TOKEN", "GH_TOKEN"]
            .iter()
            .find_map(|v| self.remote.var(v))
            .map(Secret::new)
            .ok_or_else(|| {
                self.err(
                    "no GitHub token: GITHUB_TOKEN (or GH_TOKEN) is not set",
                    Some("export a token that may write Actions secrets (fine-grained: `secrets: write`; classic: `repo`, plus `admin:org` for organization secrets)"),
                )
            })
    }

    /// `…/repos/o/r/environments/e`: where an environment is created.
    fn environment_url(&self) -> Result<String, TargetError> {
        self.api_url(&self.scope.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// `…/actions/secrets[/tail…]` (environments have no `actions/`).
    fn url(&self, tail: &[&str]) -> Result<String, TargetError> {
        let mut path: Vec<&str> = self.scope.iter().map(String::as_str).collect();
        if !self.environment {
            path.push(self.app.as_str());
        }
        path.push("secrets");
        path.extend(tail);
        self.api_url(&path)
    }

    /// `GITHUB_API_URL` (HTTPS, or loopback) joined with `path`'s segments.
    fn api_url(&self, path: &[&str]) -> Result<String, TargetError> {
        let base = self.remote.var("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into());
        let mut url = Http::check_base(&base).map_err(|e| self.err(format!("GITHUB_API_URL: {e}"), None))?;
        url.path_segments_mut()
            .map_err(|()| self.err(format!("GITHUB_API_URL `{base}` cannot be a base"), None))?
            .pop_if_empty()
            .extend(path);
        Ok(url.to_string())
    }

    async fn call(&self, method: Method, url: &str, body: Option<&serde_json::Value>) -> Result<Response, TargetError> {
        let token = self.token()?;
        let http = &self.remote.github_http;
        let build = || {
            let r = http
                .request(method.clone(), url)
                .bearer_auth(token.expose())
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28");
            match body {
                Some(b) => r.json(b),
                None => r,
            }
        };
        http.send(method.clone(), url, build)
            .await
            .map_err(|e| self.err(e.to_string(), Some("check the network and GITHUB_API_URL, then run again")))
    }

    /// GitHub's own error text, with a hint for the usual causes.
    async fn api_error(&self, method: &Method, url: &str, response: Response) -> TargetError {
        let status = response.status();
        let body: Option<ApiError> = crate::http::json(response).await.ok();
        let mut message = format!("{method} {url} → {status}");
        if let Some(b) = &body {
            if let Some(m) = &b.message {
                message.push_str(&format!(": {m}"));
            }
            if !b.errors.is_empty() {
                message.push_str(&format!(" {}", serde_json::Value::Array(b.errors.clone())));
            }
        }
        let hint = match status {
            StatusCode::UNAUTHORIZED => Some("the GitHub token is invalid or expired: make a new one"),
            StatusCode::FORBIDDEN => Some(
                "the token may not write Actions secrets here (fine-grained: `secrets: write`; classic: `repo` / `admin:org`)",
            ),
            StatusCode::NOT_FOUND => {
                Some("no such repository, environment or organization, or the token cannot see it")
            }
            _ => None,
        };
        self.err(message, hint).answered(status.as_u16(), Vec::new())
    }

    /// The scope's public key: once per run (shared across targets), and
    /// kept from an earlier run where this machine has it.
    async fn public_key(&self, refresh: bool) -> Result<PublicKey, TargetError> {
        let url = self.url(&["public-key"])?;
        let shared = &self.remote.github;
        let mut keys = shared.keys.lock().await;
        if !refresh {
            if let Some(k) = keys.get(&url) {
                return k.clone();
            }
            let kept = shared.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&url);
            if let Some(k) = kept {
                keys.insert(url, Ok(k.clone()));
                return Ok(k);
            }
        }
        let key = self.fetch_key(&url).await;
        if let Ok(k) = &key {
            shared.kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).put(&url, k);
        }
        keys.insert(url, key.clone());
        key
    }

    async fn fetch_key(&self, url: &str) -> Result<PublicKey, TargetError> {
        let mut response = self.call(Method::GET, url, None).await?;
        if response.status() == StatusCode::NOT_FOUND && self.environment {
            // The repository may exist and the environment not: say which.
            if !self.create_environment {
                return Err(self.err(
                    format!("environment `{}` does not exist in {}/{}", self.scope[4], self.scope[1], self.scope[2]),
                    Some("create it (Settings → Environments, or `gh api -X PUT repos/OWNER/REPO/environments/NAME`), or set create_environment = true on the target"),
                ));
            }
            let create = self.environment_url()?;
            let created = self.paced(self.call(Method::PUT, &create, Some(&serde_json::json!({})))).await?;
            if !created.status().is_success() {
                return Err(self.api_error(&Method::PUT, &create, created).await);
            }
            response = self.call(Method::GET, url, None).await?;
        }
        if !response.status().is_success() {
            return Err(self.api_error(&Method::GET, url, response).await);
        }
        crate::http::json(response).await.map_err(|e| self.err(format!("GET {url}: not a public key: {e}"), None))
    }

    fn seal(&self, key: &PublicKey, value: &Secret) -> Result<String, TargetError> {
        let bytes = STANDARD.decode(&key.key).map_err(|_| self.err("GitHub's public key is not base64", None))?;
        let public = crypto_box::PublicKey::from_slice(&bytes)
            .map_err(|_| self.err("GitHub's public key is not 32 bytes", None))?;
        let sealed = public
            .seal(&mut crypto_box::aead::OsRng, value.expose().as_bytes())
            .map_err(|_| self.err("sealing the value failed", None))?;
        Ok(STANDARD.encode(sealed))
    }

    /// Waits for a slot inside GitHub's write budget (every window), or
    /// defers the write when the run's time limit would pass first.
    async fn paced<T>(
        &self,
        write: impl std::future::Future<Output = Result<T, TargetError>>,
    ) -> Result<T, TargetError> {
        let shared = &self.remote.github;
        let _slot = shared.in_flight.acquire().await.expect("the semaphore is never closed");
        let _ticket = shared.pacer.admit().await.map_err(|_| TargetError::deferred(&self.address, "GitHub"))?;
        // After a "slow down", writes go one at a time, spaced out.
        if self.remote.github_http.stats.rate_limited.load(Ordering::Relaxed) > 0 {
            let _serial = shared.serial.lock().await;
            tokio::time::sleep(self.remote.github_http.spacing()).await;
            return write.await;
        }
        write.await
    }

    /// The visibility an organization secret keeps when the policy does not
    /// say: what it has now (read first; `gh secret set` sends `private`
    /// and silently narrows an `all` or `selected` secret), or `private`
    /// for a new one.
    async fn current_visibility(&self, name: &str) -> Result<(Visibility, Option<Vec<u64>>), TargetError> {
        let url = self.url(&[name])?;
        let response = self.call(Method::GET, &url, None).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok((Visibility::Private, None));
        }
        if !response.status().is_success() {
            return Err(self.api_error(&Method::GET, &url, response).await);
        }
        let secret: serde_json::Value = crate::http::json(response)
            .await
            .map_err(|e| self.err(format!("GET {url}: unexpected answer: {e}"), None))?;
        match secret["visibility"].as_str() {
            Some("all") => Ok((Visibility::All, None)),
            Some("selected") => Ok((Visibility::Selected, Some(self.selected_ids(name).await?))),
            _ => Ok((Visibility::Private, None)),
        }
    }

    /// The policy's selected repositories as ids: the numeric ones, and the
    /// named ones looked up in the organization's repository list (fetched
    /// once per run for every target, paginated).
    async fn selected_ids_of_policy(&self) -> Result<Option<Vec<u64>>, TargetError> {
        let Some(names) = &self.selected_repositories else { return Ok(self.selected_repository_ids.clone()) };
        let org = self.scope[1].clone();
        let mut cache = self.remote.github.org_repos.lock().await;
        if !cache.contains_key(&org) {
            cache.insert(org.clone(), self.org_repositories(&org).await?);
        }
        let known = &cache[&org];
        let mut ids = self.selected_repository_ids.clone().unwrap_or_default();
        for name in names {
            let short = name.rsplit('/').next().unwrap_or(name).to_ascii_lowercase();
            let id = known.get(&short).ok_or_else(|| {
                self.err(
                    format!("repository `{name}` is not in organization {org} (or the token cannot see it)"),
                    Some("check the name in selected_repositories, and that the token may read the organization's repositories"),
                )
            })?;
            ids.push(*id);
        }
        Ok(Some(ids))
    }

    /// Every repository of `org`: lowercase name → id.
    async fn org_repositories(&self, org: &str) -> Result<HashMap<String, u64>, TargetError> {
        let mut out = HashMap::new();
        for (_, page) in self.pages(self.api_url(&["orgs", org, "repos"])?).await? {
            for repo in page.as_array().into_iter().flatten() {
                if let (Some(name), Some(id)) = (repo["name"].as_str(), repo["id"].as_u64()) {
                    out.insert(name.to_ascii_lowercase(), id);
                }
            }
        }
        Ok(out)
    }

    /// The repositories an organization secret is shared with.
    async fn selected_ids(&self, name: &str) -> Result<Vec<u64>, TargetError> {
        let pages = self.pages(self.url(&[name, "repositories"])?).await?;
        Ok(pages
            .iter()
            .flat_map(|(_, page)| page["repositories"].as_array().into_iter().flatten())
            .filter_map(|r| r["id"].as_u64())
            .collect())
    }

    /// Every page of a listing (100 a page, following `Link: rel="next"`),
    /// each with the URL it came from.
    async fn pages(&self, first: String) -> Result<Vec<(String, serde_json::Value)>, TargetError> {
        self.pages_with(first, "").await
    }

    /// [`Self::pages`], with more of the query (`state=open&`) first.
    async fn pages_with(&self, first: String, query: &str) -> Result<Vec<(String, serde_json::Value)>, TargetError> {
        let mut url = format!("{first}?{query}per_page=100");
        let mut out = Vec::new();
        loop {
            let response = self.call(Method::GET, &url, None).await?;
            if !response.status().is_success() {
                return Err(self.api_error(&Method::GET, &url, response).await);
            }
            let next = next_link(&response);
            let page: serde_json::Value = crate::http::json(response)
                .await
                .map_err(|e| self.err(format!("GET {url}: unexpected answer: {e}"), None))?;
            out.push((url, page));
            match next {
                Some(n) => {
                    Http::check_base(&n).map_err(|e| self.err(e.to_string(), None))?;
                    url = n;
                }
                None => return Ok(out),
            }
        }
    }

    /// `repos/o/r` or `orgs/o`: where the scope's alerts are listed (an
    /// environment's are its repository's).
    fn alert_scope(&self) -> Vec<&str> {
        let n = if self.org { 2 } else { 3 };
        self.scope.iter().take(n).map(String::as_str).collect()
    }

    async fn put_one(&self, name: &str, value: &Secret) -> Result<Written, TargetError> {
        if value.expose().len() > MAX_VALUE_BYTES {
            return Err(self.err(
                format!("{name}: the value is {} KB; GitHub takes at most 48 KB a secret", value.expose().len() / 1024),
                Some(
                    "store a smaller value (GitHub suggests encrypting a large file and keeping its key as the secret)",
                ),
            ));
        }
        let url = self.url(&[name])?;
        // Creating an environment is a write of its own, paced like this
        // one: its key is read before this write is admitted (no write
        // waits inside another's slot).
        if self.create_environment {
            self.public_key(false).await?;
        }
        let mut refresh = false;
        for attempt in 0..2 {
            // What the write needs is read once the budget admits it: a
            // write the run's time limit defers reads nothing.
            let fresh = refresh;
            let response = self
                .paced(async {
                    let key = self.public_key(fresh).await?;
                    let scope = match (self.org, self.visibility) {
                        (false, _) => None,
                        (true, Some(v)) => Some((v, self.selected_ids_of_policy().await?)),
                        (true, None) => Some(self.current_visibility(name).await?),
                    };
                    let mut body =
                        serde_json::json!({ "encrypted_value": self.seal(&key, value)?, "key_id": key.key_id });
                    if let Some((visibility, selected)) = &scope {
                        body["visibility"] = visibility.as_str().into();
                        if *visibility == Visibility::Selected {
                            body["selected_repository_ids"] = selected.clone().unwrap_or_default().into();
                        }
                    }
                    self.call(Method::PUT, &url, Some(&body)).await
                })
                .await?;
            let written = match response.status() {
                StatusCode::CREATED => Some(Written::Created),
                StatusCode::NO_CONTENT | StatusCode::OK => Some(Written::Updated),
                _ => None,
            };
            if let Some(written) = written {
                // GitHub's own clock, as its `updated_at` is: nothing to
                // list after the writes to learn when they landed.
                let date = response.headers().get("date").and_then(|d| d.to_str().ok());
                if let Some(at) = date.and_then(|d| DateTime::parse_from_rfc2822(d).ok()) {
                    self.landed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.to_string(), at.to_utc());
                }
                return Ok(written);
            }
            match response.status() {
                // The key may have rotated since it was read (or kept from
                // an earlier run): read it again, once.
                StatusCode::UNPROCESSABLE_ENTITY if attempt == 0 => refresh = true,
                _ => return Err(self.api_error(&Method::PUT, &url, response).await),
            }
        }
        unreachable!("the loop returns on its second pass")
    }
}

#[async_trait]
impl Target for GithubTarget {
    fn address(&self) -> &TargetId {
        &self.address
    }

    async fn prepare(&self) {
        // Cached for the run; put_one asks again and reports any error.
        // Not where the key's fetch may create an environment: nothing is
        // changed before a value is ready to go. Only as many keys are
        // read ahead as the budget takes writes now: a fan-out cut short
        // by the budget and `--max-duration` reads no key it will not use
        // (the others are read when their write is admitted).
        use std::sync::atomic::Ordering::Relaxed;
        let shared = &self.remote.github;
        if self.create_environment || shared.read_ahead.fetch_add(1, Relaxed) >= shared.pacer.room() {
            return;
        }
        let _ = self.public_key(false).await;
    }

    async fn put_many(&self, items: &[(String, Secret)]) -> PutResults {
        self.put_each(items, &|_, _| {}).await
    }

    async fn put_each(&self, items: &[(String, Secret)], answered: &Answered<'_>) -> PutResults {
        let writes = items.iter().map(|(name, value)| async move {
            let result = self.put_one(name, value).await;
            answered(name, &result);
            (name.clone(), result)
        });
        futures_util::future::join_all(writes).await
    }

    fn landed_at(&self, name: &str) -> Option<DateTime<Utc>> {
        self.landed.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).copied()
    }

    async fn list(&self) -> Result<Option<Vec<RemoteSecret>>, TargetError> {
        let mut out = Vec::new();
        for (url, page) in self.pages(self.url(&[])?).await? {
            let page: ListPage = serde_json::from_value(page)
                .map_err(|e| self.err(format!("GET {url}: unexpected answer: {e}"), None))?;
            out.extend(page.secrets.into_iter().map(|s| RemoteSecret {
                updated_at: s.updated_at,
                visibility: s.visibility,
                ..RemoteSecret::named(s.name)
            }));
        }
        Ok(Some(out))
    }

    async fn exposures(&self) -> Result<Option<Vec<Exposure>>, TargetError> {
        let mut path = self.alert_scope();
        path.extend(["secret-scanning", "alerts"]);
        let own_repo = (!self.org).then(|| format!("{}/{}", self.scope[1], self.scope[2]));
        let pages = match self.pages_with(self.api_url(&path)?, "state=open&").await {
            Ok(pages) => pages,
            Err(e) if e.status == Some(403) || e.status == Some(404) => {
                let hint = "the token needs to read secret-scanning alerts (fine-grained: `secret scanning alerts: read`, and `write` to close them; classic: `security_events` or `repo`), and secret scanning must be on for the repository";
                return Err(TargetError { hint: Some(hint.into()), ..e });
            }
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for (url, page) in pages {
            let alerts: Vec<Alert> = serde_json::from_value(page)
                .map_err(|e| self.err(format!("GET {url}: unexpected answer: {e}"), None))?;
            for a in alerts {
                let Some(secret) = a.secret else { continue };
                let value = match a.is_base64_encoded {
                    // GitHub found it base64-encoded: the value is what it encodes.
                    Some(true) => match STANDARD.decode(secret.as_bytes()).ok().and_then(|b| String::from_utf8(b).ok()) {
                        Some(decoded) => decoded,
                        None => secret,
                    },
                    _ => secret,
                };
                let Some(repo) = a.repository.map(|r| r.full_name).or_else(|| own_repo.clone()) else { continue };
                out.push(Exposure {
                    id: format!("{repo}#{}", a.number),
                    url: a.html_url,
                    kind: a.secret_type_display_name.or(a.secret_type).unwrap_or_else(|| "secret".into()),
                    first_seen: a.first_location_detected.as_ref().and_then(location),
                    created_at: a.created_at,
                    value: Secret::new(value),
                    handle: (repo, a.number),
                });
            }
        }
        Ok(Some(out))
    }

    async fn close_exposure(&self, exposure: &Exposure, note: &str) -> Result<(), TargetError> {
        let (repo, number) = &exposure.handle;
        let Some((owner, name)) = repo.split_once('/') else {
            return Err(self.err(format!("{}: not a repository's alert", exposure.id), None));
        };
        let number = number.to_string();
        let url = self.api_url(&["repos", owner, name, "secret-scanning", "alerts", &number])?;
        // GitHub keeps at most 280 characters of a resolution comment.
        let comment: String = note.chars().take(280).collect();
        let body = serde_json::json!({"state": "resolved", "resolution": "revoked", "resolution_comment": comment});
        let response = self.call(Method::PATCH, &url, Some(&body)).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            let e = self.api_error(&Method::PATCH, &url, response).await;
            let hint = "the token needs `secret scanning alerts: write` (fine-grained) or `security_events` (classic) to close alerts";
            Err(if e.status == Some(403) { TargetError { hint: Some(hint.into()), ..e } } else { e })
        }
    }

    async fn delete(&self, name: &str) -> Result<(), TargetError> {
        let url = self.url(&[name])?;
        let response = self.paced(self.call(Method::DELETE, &url, None)).await?;
        match response.status() {
            StatusCode::NO_CONTENT | StatusCode::NOT_FOUND => Ok(()),
            _ => Err(self.api_error(&Method::DELETE, &url, response).await),
        }
    }
}

/// Where an alert's secret was first seen, as a person reads it:
/// `path:line in commit abc1234` (other kinds of place: their URL).
fn location(first: &serde_json::Value) -> Option<String> {
    let path = first.get("path").and_then(|p| p.as_str());
    let line = first.get("start_line").and_then(serde_json::Value::as_u64);
    let commit = first.get("commit_sha").and_then(|c| c.as_str());
    match (path, line, commit) {
        (Some(p), Some(l), Some(c)) => Some(format!("{p}:{l} in commit {}", c.get(..7).unwrap_or(c))),
        (Some(p), Some(l), None) => Some(format!("{p}:{l}")),
        _ => first.as_object()?.iter().find(|(k, _)| k.ends_with("_url")).and_then(|(_, v)| v.as_str()).map(str::to_string),
    }
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(response: &Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, rel) = part.split_once(';')?;
        rel.contains("rel=\"next\"").then(|| url.trim().trim_start_matches('<').trim_end_matches('>').to_string())
    })
}

impl super::kind::KindEntry for crate::policy::GithubSpec {
    const KIND: &'static str = "github";
    type Fields = crate::policy::GithubFields;

    /// The scope (a repository, one of its environments, an organization)
    /// and its options, checked together.
    fn from_fields(fields: Self::Fields, token: &str) -> Result<Self, Vec<(String, String)>> {
        crate::policy::github_spec(fields, token)
    }

    crate::entry_names!();
}

/// GitHub Actions (and Dependabot, Codespaces) secrets: sealed, written,
/// listed by name and `updated_at`, never read back.
impl super::TargetKind for crate::policy::GithubSpec {
    fn service(&self) -> &'static str {
        SERVICE
    }

    fn address(&self) -> TargetId {
        use crate::policy::{GithubApp, GithubScope};
        let place = match &self.scope {
            GithubScope::Repo { owner, repo } => format!("{owner}/{repo}"),
            GithubScope::Environment { owner, repo, environment } => format!("{owner}/{repo}@env:{environment}"),
            GithubScope::Org { org, .. } => format!("org:{org}"),
        };
        match self.app {
            GithubApp::Actions => TargetId::new(<Self as super::kind::KindEntry>::KIND, place),
            other => TargetId::new(<Self as super::kind::KindEntry>::KIND, format_args!("{place}@{}", other.as_str())),
        }
    }

    fn credentials(&self) -> Vec<&'static [&'static str]> {
        vec![&["GITHUB_TOKEN", "GH_TOKEN"]]
    }

    fn name_problem(&self, token: &str, name: &str) -> Option<(String, String)> {
        match crate::policy::github_name_problem(name) {
            Some(why) => Some((
                format!("token `{token}`: `{name}` is not a valid GitHub secret name: {why}"),
                "GitHub allows [A-Za-z0-9_], not starting with a digit or GITHUB_".into(),
            )),
            None => crate::policy::generic_name_problem(token, name),
        }
    }

    /// GitHub's owners, repositories, environments and secret names are
    /// all case-insensitive.
    fn case_insensitive(&self) -> bool {
        true
    }

    fn value_problem(&self, address: &TargetId, value: &Secret) -> Option<String> {
        super::kind::too_large(value, MAX_VALUE_BYTES, "GitHub", "a secret", address)
    }

    fn build(
        &self,
        address: TargetId,
        _files: &crate::project::ProjectFiles,
        remote: Option<&super::Remote>,
    ) -> Result<Box<dyn super::Target>, TargetError> {
        let remote = super::kind::need_remote(&address, remote)?;
        Ok(Box::new(GithubTarget::new(address, self, remote)))
    }
}
