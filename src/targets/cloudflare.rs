//! The `wrangler` target: Cloudflare Workers secrets of one script.
//!
//! By default over the REST API (`CLOUDFLARE_API_TOKEN`,
//! `CLOUDFLARE_ACCOUNT_ID`, `CLOUDFLARE_API_BASE_URL`): the bulk endpoint,
//! at most 100 operations a request, falling back to one PUT per secret
//! where the account does not have it. Success is what the envelope's
//! `success` says, not only the HTTP status. With `via = "cli"`, runs
//! `wrangler secret put NAME --name SCRIPT` with the value on stdin.

use std::process::Stdio;

use async_trait::async_trait;
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::{PutResults, Remote, RemoteSecret, Target, TargetError, Written, all_failed};
use crate::http::Http;
use crate::secret::Secret;

const BULK_LIMIT: usize = 100;
const NO_SUCH_SCRIPT: u64 = 10007;
const NOT_DEPLOYED: u64 = 10215;

#[derive(Deserialize)]
struct Envelope {
    success: bool,
    #[serde(default)]
    errors: Vec<ApiMessage>,
    #[serde(default)]
    result: serde_json::Value,
}

#[derive(Deserialize)]
struct ApiMessage {
    #[serde(default)]
    code: u64,
    #[serde(default)]
    message: String,
}

pub struct CloudflareTarget {
    address: String,
    script: String,
    remote: Remote,
}

impl CloudflareTarget {
    pub fn new(address: String, script: String, remote: Remote) -> Result<Self, TargetError> {
        Ok(CloudflareTarget { address, script, remote })
    }

    fn err(&self, message: impl Into<String>, hint: Option<&str>) -> TargetError {
        TargetError::new(&self.address, message, hint)
    }

    fn env(&self, name: &str) -> Result<String, TargetError> {
        self.remote.var(name).ok_or_else(|| {
            self.err(
                format!("{name} is not set"),
                Some("export CLOUDFLARE_API_TOKEN (a token with `Workers Scripts: Edit`) and CLOUDFLARE_ACCOUNT_ID, or use via = \"cli\" with a logged-in wrangler"),
            )
        })
    }

    /// `…/accounts/{a}/workers/scripts/{script}/{tail…}`
    fn url(&self, tail: &[&str]) -> Result<String, TargetError> {
        let base =
            self.remote.var("CLOUDFLARE_API_BASE_URL").unwrap_or_else(|| "https://api.cloudflare.com/client/v4".into());
        let account = self.env("CLOUDFLARE_ACCOUNT_ID")?;
        let mut url = Http::check_base(&base).map_err(|e| self.err(format!("CLOUDFLARE_API_BASE_URL: {e}"), None))?;
        {
            let mut segments =
                url.path_segments_mut().map_err(|()| self.err(format!("`{base}` cannot be a base"), None))?;
            segments.pop_if_empty();
            segments.extend(["accounts", account.as_str(), "workers", "scripts", self.script.as_str()]);
            segments.extend(tail);
        }
        Ok(url.to_string())
    }

    async fn call(&self, method: Method, url: &str, body: Option<(&str, &[u8])>) -> Result<Response, TargetError> {
        let token = Secret::new(self.env("CLOUDFLARE_API_TOKEN")?);
        // Cloudflare counts every request against 1,200 per 5 minutes.
        let _ticket = self.remote.cloudflare.admit().await.map_err(|_| TargetError::deferred(&self.address))?;
        let http = &self.remote.http;
        let build = || {
            let r = http.request(method.clone(), url).bearer_auth(token.expose());
            match &body {
                Some((content_type, bytes)) => r.header("Content-Type", *content_type).body(bytes.to_vec()),
                None => r,
            }
        };
        http.send(method.clone(), url, build)
            .await
            .map_err(|e| self.err(e.to_string(), Some("check the network and CLOUDFLARE_API_BASE_URL, then run again")))
    }

    /// Reads the envelope; an unsuccessful one becomes an error that names
    /// Cloudflare's codes and says what to do.
    async fn envelope(
        &self,
        method: &Method,
        url: &str,
        response: Response,
    ) -> Result<Envelope, (StatusCode, TargetError)> {
        let status = response.status();
        let envelope: Option<Envelope> = response.json().await.ok();
        match envelope {
            Some(e) if e.success && status.is_success() => Ok(e),
            Some(e) => {
                let codes: Vec<u64> = e.errors.iter().map(|m| m.code).collect();
                let text =
                    e.errors.iter().map(|m| format!("{} ({})", m.message, m.code)).collect::<Vec<_>>().join("; ");
                let hint = if codes.contains(&NOT_DEPLOYED) {
                    Some(
                        "Cloudflare refuses secret changes while the Worker's latest version is not deployed: deploy it (`wrangler deploy`) or roll back, then sync again",
                    )
                } else if codes.contains(&NO_SUCH_SCRIPT) {
                    Some(
                        "there is no Worker script by that name in this account: deploy it first, or fix `worker`/`env` in the policy",
                    )
                } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    Some("the API token is invalid or lacks `Workers Scripts: Edit` on this account")
                } else {
                    None
                };
                let error = self.err(format!("{method} {url} → {status}: {text}"), hint);
                Err((status, error.answered(status.as_u16(), codes)))
            }
            None => Err((
                status,
                self.err(format!("{method} {url} → {status}: not a Cloudflare API answer"), None)
                    .answered(status.as_u16(), Vec::new()),
            )),
        }
    }

    fn no_such_script(error: &TargetError) -> bool {
        error.codes.contains(&NO_SUCH_SCRIPT)
    }

    /// One bulk request; `Ok(None)` means the account has no bulk endpoint.
    async fn bulk(&self, chunk: &[(String, Secret)]) -> Result<Option<()>, TargetError> {
        let url = self.url(&["secrets-bulk"])?;
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
        let url = self.url(&["secrets"])?;
        let body = crate::secret::json_body(&SecretText::new(name, value));
        let response = self.call(Method::PUT, &url, Some(("application/json", &body[..]))).await?;
        self.envelope(&Method::PUT, &url, response).await.map(|_| Written::Written).map_err(|(_, e)| e)
    }
}

#[async_trait]
impl Target for CloudflareTarget {
    fn address(&self) -> &str {
        &self.address
    }

    async fn put_many(&self, items: &[(String, Secret)]) -> PutResults {
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

    async fn list(&self) -> Result<Option<Vec<RemoteSecret>>, TargetError> {
        let url = self.url(&["secrets"])?;
        let response = self.call(Method::GET, &url, None).await?;
        let envelope = self.envelope(&Method::GET, &url, response).await.map_err(|(_, e)| e)?;
        let names = envelope
            .result
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s["name"].as_str())
                    .map(|n| RemoteSecret { name: n.to_string(), updated_at: None })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(names))
    }

    async fn delete(&self, name: &str) -> Result<(), TargetError> {
        let url = self.url(&["secrets", name])?;
        let response = self.call(Method::DELETE, &url, None).await?;
        self.envelope(&Method::DELETE, &url, response).await.map(|_| ()).map_err(|(_, e)| e)
    }
}

/// `via = "cli"`: the user's logged-in wrangler, value on stdin.
pub struct WranglerCli {
    address: String,
    script: String,
}

impl WranglerCli {
    pub fn new(address: String, script: String) -> Self {
        WranglerCli { address, script }
    }

    fn program() -> String {
        std::env::var("CHITTY_SECRETS_WRANGLER").unwrap_or_else(|_| "wrangler".into())
    }

    async fn run(&self, args: &[&str], stdin: Option<&Secret>) -> Result<(), TargetError> {
        let program = Self::program();
        let mut child = tokio::process::Command::new(&program)
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
    fn address(&self) -> &str {
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
