//! `kind = "pages"`: secrets of a Cloudflare Pages project, per
//! environment (`production` or `preview`).
//!
//! One `PATCH /accounts/{a}/pages/projects/{project}` writes every name of
//! a batch as `deployment_configs.{environment}.env_vars.{NAME} =
//! {"type": "secret_text", "value": …}`; Cloudflare merges it into what the
//! project holds, so no other variable is touched (a `null` deletes one).
//! `GET` of the project lists the names (a secret's value reads back
//! empty): a secret deleted, or turned into a plain variable, is seen; a
//! value changed by hand is not (Pages keeps no time per variable). A value
//! reaches the site at its next deployment, which `plan` says, with the
//! latest one. The API token needs `Cloudflare Pages: Edit`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::cloudflare_api::{CloudflareApi, Needs};
use super::{PutResults, Remote, RemoteSecret, Target, TargetError, TargetId, Written, all_failed};
use crate::project::ProjectFiles;
use crate::secret::Secret;

/// The largest value Pages keeps in an environment variable.
const MAX_VALUE: usize = 5 * 1024;
/// A Pages project's name: lowercase letters, digits and `-`.
const MAX_PROJECT: usize = 58;

/// A `kind = "pages"` entry.
#[derive(Debug, Clone, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagesSpec {
    /// The Pages project's name.
    pub project: String,
    /// The environment whose variables receive the token.
    #[serde(default)]
    pub environment: PagesEnvironment,
    #[serde(default)]
    pub names: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PagesEnvironment {
    #[default]
    Production,
    Preview,
}

impl PagesEnvironment {
    fn as_str(self) -> &'static str {
        match self {
            PagesEnvironment::Production => "production",
            PagesEnvironment::Preview => "preview",
        }
    }
}

impl super::kind::KindEntry for PagesSpec {
    const KIND: &'static str = "pages";
    crate::entry_as_written!();

    crate::entry_names!();
}

impl super::TargetKind for PagesSpec {
    fn service(&self) -> &'static str {
        super::cloudflare_api::SERVICE
    }

    fn address(&self) -> TargetId {
        TargetId::new(<Self as super::kind::KindEntry>::KIND, format_args!("{}@{}", self.project, self.environment.as_str()))
    }

    fn credentials(&self) -> Vec<&'static [&'static str]> {
        super::cloudflare_api::CREDENTIALS.to_vec()
    }

    fn problems(&self, token: &str) -> Vec<(String, String)> {
        let valid = !self.project.is_empty()
            && self.project.len() <= MAX_PROJECT
            && !self.project.starts_with('-')
            && self.project.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            return Vec::new();
        }
        vec![(
            format!("token `{token}`: `{}` is not a Pages project name", self.project),
            format!("use the project's name as Cloudflare shows it: lowercase letters, digits and `-`, at most {MAX_PROJECT}"),
        )]
    }

    fn value_problem(&self, address: &TargetId, value: &Secret) -> Option<String> {
        super::kind::too_large(value, MAX_VALUE, "Pages", "a variable", address)
    }

    fn build(
        &self,
        address: TargetId,
        _files: &ProjectFiles,
        remote: Option<&Remote>,
    ) -> Result<Box<dyn Target>, TargetError> {
        let api = CloudflareApi::open(address, remote, Needs::permission("Cloudflare Pages: Edit"))?;
        Ok(Box::new(PagesTarget { api, project: self.project.clone(), environment: self.environment }))
    }
}

pub struct PagesTarget {
    api: CloudflareApi,
    project: String,
    environment: PagesEnvironment,
}

/// `GET …/pages/projects/{project}`: what we read of it.
#[derive(Deserialize)]
struct Project {
    #[serde(default)]
    deployment_configs: BTreeMap<String, Config>,
    #[serde(default)]
    latest_deployment: Option<Deployment>,
}

#[derive(Deserialize, Default)]
struct Config {
    #[serde(default)]
    env_vars: Option<BTreeMap<String, Option<Var>>>,
}

#[derive(Deserialize)]
struct Var {
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Deployment {
    #[serde(default)]
    short_id: Option<String>,
    #[serde(default)]
    created_on: Option<String>,
    #[serde(default)]
    environment: Option<String>,
}

/// One variable as the PATCH writes it (its value only in this body).
#[derive(Serialize)]
struct SecretVar<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    value: &'a str,
}

impl PagesTarget {
    fn url(&self) -> Result<String, TargetError> {
        self.api.account_url(&["pages", "projects", &self.project], &[])
    }

    async fn project(&self) -> Result<Project, TargetError> {
        self.api.get(&["pages", "projects", &self.project], &[]).await
    }

    /// One PATCH of this environment's variables: a value sets one, `None`
    /// deletes one; every other variable is left as it is.
    async fn patch(&self, vars: BTreeMap<&str, Option<SecretVar<'_>>>) -> Result<(), TargetError> {
        let url = self.url()?;
        #[derive(Serialize)]
        struct Env<'a> {
            env_vars: BTreeMap<&'a str, Option<SecretVar<'a>>>,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            deployment_configs: BTreeMap<&'static str, Env<'a>>,
        }
        let body = crate::secret::json_body(&Body {
            deployment_configs: BTreeMap::from([(self.environment.as_str(), Env { env_vars: vars })]),
        });
        let response = self.api.call(Method::PATCH, &url, Some(("application/json", &body[..]))).await?;
        self.api.envelope(&Method::PATCH, &url, response).await.map(drop).map_err(|(_, e)| e)
    }
}

#[async_trait]
impl Target for PagesTarget {
    fn address(&self) -> &TargetId {
        &self.api.address
    }

    async fn put_many(&self, items: &[(String, Secret)]) -> PutResults {
        let vars = items
            .iter()
            .map(|(name, value)| (name.as_str(), Some(SecretVar { kind: "secret_text", value: value.expose() })))
            .collect();
        match self.patch(vars).await {
            Ok(()) => items.iter().map(|(n, _)| (n.clone(), Ok(Written::Written))).collect(),
            Err(e) => all_failed(items, &e),
        }
    }

    /// The environment's secret names (a plain variable of the same name
    /// is not a secret this tool delivered).
    async fn list(&self) -> Result<Option<Vec<RemoteSecret>>, TargetError> {
        let project = self.project().await?;
        let vars = project.deployment_configs.get(self.environment.as_str()).and_then(|c| c.env_vars.as_ref());
        Ok(Some(
            vars.into_iter()
                .flatten()
                .filter(|(_, v)| v.as_ref().and_then(|v| v.kind.as_deref()) == Some("secret_text"))
                .map(|(name, _)| RemoteSecret::named(name.clone()))
                .collect(),
        ))
    }

    async fn delete(&self, name: &str) -> Result<(), TargetError> {
        self.patch(BTreeMap::from([(name, None)])).await
    }

    async fn write_effect(&self) -> Option<Result<String, TargetError>> {
        Some(self.project().await.map(|p| {
            let latest = match p.latest_deployment {
                Some(d) => format!(
                    "; the latest deployment is {} ({}, {})",
                    d.short_id.as_deref().unwrap_or("?"),
                    d.environment.as_deref().unwrap_or("?"),
                    d.created_on.as_deref().unwrap_or("?")
                ),
                None => "; the project has no deployment yet".into(),
            };
            format!("a value reaches the site at its next deployment{latest}")
        }))
    }
}
