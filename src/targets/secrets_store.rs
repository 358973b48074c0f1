//! `kind = "secrets_store"`: secrets of the account's Cloudflare Secrets
//! Store, which Workers bind (`secrets_store_secrets`) and read at run time.
//!
//! A new name is created with `POST /accounts/{a}/secrets_store/stores/{store}/secrets`
//! (`[{name, value, scopes, comment}]`, one request for every new name of a
//! batch); a name that exists is updated with `PATCH …/secrets/{id}`
//! (`{value}`). Values are write-only; the listing gives names and
//! modification times, so a value changed by hand is seen the way GitHub's
//! `updated_at` shows it. A write makes no Worker version: every Worker
//! that binds the secret reads the new value on its next request, so the
//! old token may be revoked once `overlap` has passed (requests already
//! under way). The API token needs `Secrets Store: Edit`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::cloudflare::{BindingRef, Deployments, VersionDetail};
use super::cloudflare_api::{CloudflareApi, Needs};
use super::{PutResults, Reader, Remote, RemoteSecret, Target, TargetError, TargetId, Written, all_failed};
use crate::project::ProjectFiles;
use crate::secret::Secret;

/// The largest value the Secrets Store keeps.
const MAX_VALUE: usize = 64 * 1024;
/// The listing's largest page.
const PAGE: usize = 100;

/// A `kind = "secrets_store"` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretsStoreSpec {
    /// The store's id; absent: the account's one store.
    #[serde(default)]
    pub store: Option<String>,
    /// Which services may read the secret (default: Workers).
    #[serde(default)]
    pub scopes: Option<Vec<StoreScope>>,
    #[serde(default)]
    pub names: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StoreScope {
    Workers,
    AiGateway,
    Dex,
    Access,
    Containers,
    Websearch,
}

impl SecretsStoreSpec {
    fn scopes(&self) -> Vec<StoreScope> {
        self.scopes.clone().unwrap_or_else(|| vec![StoreScope::Workers])
    }
}

impl super::kind::KindEntry for SecretsStoreSpec {
    const KIND: &'static str = "secrets_store";
    crate::entry_as_written!();
    crate::entry_names!();
}

impl super::TargetKind for SecretsStoreSpec {
    fn service(&self) -> &'static str {
        super::cloudflare_api::SERVICE
    }

    fn address(&self) -> TargetId {
        TargetId::new(<Self as super::kind::KindEntry>::KIND, self.store.as_deref().unwrap_or("account"))
    }

    fn credentials(&self) -> Vec<&'static [&'static str]> {
        super::cloudflare_api::CREDENTIALS.to_vec()
    }

    fn problems(&self, token: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(store) = &self.store
            && !(store.len() == 32 && store.chars().all(|c| c.is_ascii_hexdigit()))
        {
            out.push((
                format!("token `{token}`: `{store}` is not a Secrets Store id"),
                "give the store's id (32 hex digits, `wrangler secrets-store store list`), or leave `store` out to use the account's one store".into(),
            ));
        }
        if self.scopes.as_ref().is_some_and(Vec::is_empty) {
            out.push((
                format!("token `{token}`: `scopes` is empty, so no service could read the secret"),
                "leave `scopes` out (Workers), or name who reads it, e.g. [\"workers\"]".into(),
            ));
        }
        out
    }

    fn value_problem(&self, address: &TargetId, value: &Secret) -> Option<String> {
        super::kind::too_large(value, MAX_VALUE, "the Secrets Store", "a secret", address)
    }

    fn build(
        &self,
        address: TargetId,
        _files: &ProjectFiles,
        remote: Option<&Remote>,
    ) -> Result<Box<dyn Target>, TargetError> {
        let api = CloudflareApi::open(address, remote, Needs::permission("Secrets Store: Edit"))?;
        Ok(Box::new(SecretsStoreTarget {
            api,
            store: self.store.clone(),
            scopes: self.scopes(),
            resolved: tokio::sync::OnceCell::new(),
            ids: Mutex::new(None),
        }))
    }
}

pub struct SecretsStoreTarget {
    api: CloudflareApi,
    store: Option<String>,
    scopes: Vec<StoreScope>,
    /// The store's id, looked up once where the policy gives none.
    resolved: tokio::sync::OnceCell<Result<String, TargetError>>,
    /// The secrets' ids by name, as last listed.
    ids: Mutex<Option<BTreeMap<String, String>>>,
}

#[derive(Deserialize)]
struct Store {
    id: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct Listed {
    id: String,
    name: String,
    #[serde(default)]
    modified: Option<DateTime<Utc>>,
}

/// A new secret as the create request carries it (its value only here).
#[derive(Serialize)]
struct New<'a> {
    name: &'a str,
    value: &'a str,
    scopes: &'a [StoreScope],
    comment: &'static str,
}

#[derive(Serialize)]
struct NewValue<'a> {
    value: &'a str,
}

/// A Worker script as the account's list gives it.
#[derive(Deserialize)]
struct ScriptRef {
    id: String,
}

impl SecretsStoreTarget {
    /// The bindings of every version a Worker runs now.
    async fn deployed_bindings(&self, script: &str) -> Result<Vec<BindingRef>, TargetError> {
        let deployments: Deployments = self.api.get(&["workers", "scripts", script, "deployments"], &[]).await?;
        let mut out = Vec::new();
        for version in deployments.deployments.into_iter().next().map(|d| d.versions).unwrap_or_default() {
            let detail: VersionDetail =
                self.api.get(&["workers", "scripts", script, "versions", &version.version_id], &[]).await?;
            out.extend(detail.resources.bindings);
        }
        Ok(out)
    }

    async fn store_id(&self) -> Result<String, TargetError> {
        if let Some(id) = &self.store {
            return Ok(id.clone());
        }
        self.resolved.get_or_init(|| self.only_store()).await.clone()
    }

    /// The account's one store; more than one, or none, is an error that
    /// says what to do.
    async fn only_store(&self) -> Result<String, TargetError> {
        let stores: Vec<Store> = self.api.get(&["secrets_store", "stores"], &[]).await?;
        match &stores[..] {
            [one] => Ok(one.id.clone()),
            [] => Err(self.api.err(
                "the account has no Secrets Store",
                Some("create one (`wrangler secrets-store store create NAME --remote`), then run again"),
            )),
            many => Err(self.api.err(
                format!(
                    "the account has {} Secrets Stores ({})",
                    many.len(),
                    many.iter().map(|s| format!("{} {}", s.id, s.name)).collect::<Vec<_>>().join(", ")
                ),
                Some("name the one to use with `store = \"ID\"` in the policy"),
            )),
        }
    }

    async fn secrets_url(&self, tail: &[&str], query: &[(&str, &str)]) -> Result<String, TargetError> {
        let store = self.store_id().await?;
        let mut segments = vec!["secrets_store", "stores", store.as_str(), "secrets"];
        segments.extend(tail);
        self.api.account_url(&segments, query)
    }

    /// Every secret of the store (names, ids and modification times).
    async fn listing(&self) -> Result<Vec<Listed>, TargetError> {
        let store = self.store_id().await?;
        let mut all = Vec::new();
        for page in 1.. {
            let (page, per_page) = (page.to_string(), PAGE.to_string());
            let query = [("page", page.as_str()), ("per_page", per_page.as_str())];
            let items: Vec<Listed> = self.api.get(&["secrets_store", "stores", &store, "secrets"], &query).await?;
            let last = items.len() < PAGE;
            all.extend(items);
            if last {
                break;
            }
        }
        *self.ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(all.iter().map(|s| (s.name.clone(), s.id.clone())).collect());
        Ok(all)
    }

    async fn ids(&self) -> Result<BTreeMap<String, String>, TargetError> {
        if let Some(ids) = self.ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone() {
            return Ok(ids);
        }
        self.listing().await?;
        Ok(self.ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone().unwrap_or_default())
    }

    async fn send(&self, method: Method, url: &str, body: &[u8]) -> Result<(), TargetError> {
        let response = self.api.call(method.clone(), url, Some(("application/json", body))).await?;
        self.api.envelope(&method, url, response).await.map(drop).map_err(|(_, e)| e)
    }
}

#[async_trait]
impl Target for SecretsStoreTarget {
    fn address(&self) -> &TargetId {
        &self.api.address
    }

    async fn put_many(&self, items: &[(String, Secret)]) -> PutResults {
        let ids = match self.ids().await {
            Ok(ids) => ids,
            Err(e) => return all_failed(items, &e),
        };
        let mut results = Vec::new();
        // Every new name in one create request.
        let new: Vec<&(String, Secret)> = items.iter().filter(|(n, _)| !ids.contains_key(n)).collect();
        if !new.is_empty() {
            let body: Vec<New<'_>> = new
                .iter()
                .map(|(name, value)| New { name, value: value.expose(), scopes: &self.scopes, comment: "chitty-secrets" })
                .collect();
            let created = match self.secrets_url(&[], &[]).await {
                Ok(url) => self.send(Method::POST, &url, &crate::secret::json_body(&body)).await,
                Err(e) => Err(e),
            };
            results.extend(new.iter().map(|(n, _)| (n.clone(), created.clone().map(|()| Written::Created))));
        }
        for (name, value) in items {
            let Some(id) = ids.get(name) else { continue };
            let updated = match self.secrets_url(&[id], &[]).await {
                Ok(url) => {
                    self.send(Method::PATCH, &url, &crate::secret::json_body(&NewValue { value: value.expose() })).await
                }
                Err(e) => Err(e),
            };
            results.push((name.clone(), updated.map(|()| Written::Updated)));
        }
        // The ids of what was just created are learned at the next listing.
        *self.ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        results
    }

    async fn list(&self) -> Result<Option<Vec<RemoteSecret>>, TargetError> {
        Ok(Some(
            self.listing()
                .await?
                .into_iter()
                .map(|s| RemoteSecret { updated_at: s.modified, ..RemoteSecret::named(s.name) })
                .collect(),
        ))
    }

    async fn delete(&self, name: &str) -> Result<(), TargetError> {
        let Some(id) = self.ids().await?.get(name).cloned() else { return Ok(()) };
        let url = self.secrets_url(&[&id], &[]).await?;
        let response = self.api.call(Method::DELETE, &url, None).await?;
        self.api.envelope(&Method::DELETE, &url, response).await.map(drop).map_err(|(_, e)| e)?;
        *self.ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        Ok(())
    }

    /// The Workers whose deployed version binds each secret, read from
    /// what runs (`secrets_store_secret` bindings of this store); a plain
    /// secret of the same name in such a Worker is a warning.
    async fn readers(&self, names: &[String]) -> Result<Vec<Reader>, TargetError> {
        let store = self.store_id().await?;
        let scripts: Vec<ScriptRef> = self.api.get(&["workers", "scripts"], &[]).await?;
        let mut bound: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut out = Vec::new();
        for script in &scripts {
            let bindings = self.deployed_bindings(&script.id).await?;
            let mut binds_here = false;
            for binding in &bindings {
                let secret = binding.secret_name.as_deref().unwrap_or_default();
                if binding.kind == "secrets_store_secret"
                    && binding.store_id.as_deref() == Some(store.as_str())
                    && let Some(n) = names.iter().find(|n| n.as_str() == secret)
                {
                    bound.entry(n).or_default().push(script.id.clone());
                    binds_here = true;
                }
            }
            // A Worker that reads the store and still keeps a plain secret
            // of the same name (left from before the move to the store).
            for plain in bindings.iter().filter(|b| binds_here && b.kind == "secret_text" && names.contains(&b.name)) {
                out.push(Reader {
                    warning: true,
                    message: format!(
                        "Worker {} still has a plain secret {} beside the store's: code that reads that name gets the plain one, which no rotation here changes",
                        script.id, plain.name
                    ),
                });
            }
        }
        for name in names {
            let message = match bound.get(name.as_str()) {
                Some(workers) => format!("{name} is read by Worker{} {} (its deployed version binds it)", if workers.len() == 1 { "" } else { "s" }, workers.join(", ")),
                None => format!("{name} is bound by no deployed Worker"),
            };
            out.push(Reader { warning: false, message });
        }
        Ok(out)
    }

    async fn write_effect(&self) -> Option<Result<String, TargetError>> {
        Some(Ok("a write makes no Worker version: every Worker that binds the secret reads the new value on its next request".into()))
    }
}
