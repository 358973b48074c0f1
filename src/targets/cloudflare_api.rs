//! Cloudflare's v4 API as every Cloudflare kind speaks it: the account's
//! URLs under `CLOUDFLARE_API_BASE_URL`, the bearer token, the request
//! budget shared by the run, and the `{success, errors, result}` envelope,
//! whose `success` decides (not only the HTTP status).

use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{Remote, TargetError, TargetId};

/// Whose budget and progress the Cloudflare kinds count in.
pub const SERVICE: &str = "Cloudflare";
use crate::http::Http;
use crate::secret::Secret;

#[derive(Deserialize)]
pub struct Envelope {
    success: bool,
    #[serde(default)]
    errors: Vec<ApiMessage>,
    #[serde(default)]
    pub result: serde_json::Value,
}

#[derive(Deserialize)]
struct ApiMessage {
    #[serde(default)]
    code: u64,
    #[serde(default)]
    message: String,
}

/// The settings every kind that speaks the API needs, for `ci init`,
/// `ci doctor` and `plan`.
pub const CREDENTIALS: [&[&str]; 2] = [&["CLOUDFLARE_API_TOKEN"], &["CLOUDFLARE_ACCOUNT_ID"]];

/// What a kind needs of the API, for its hints.
pub struct Needs {
    /// The token permission, e.g. `Workers Scripts: Edit`.
    pub permission: &'static str,
    /// Another way to deliver without a token, if the kind has one.
    pub without_token: Option<&'static str>,
    /// What to do about the service's own error codes, where the kind knows.
    pub code_hint: fn(&[u64]) -> Option<&'static str>,
}

impl Needs {
    /// A kind that needs only `permission`: no other way to deliver, and
    /// nothing to say of the service's error codes.
    pub const fn permission(permission: &'static str) -> Self {
        Needs { permission, without_token: None, code_hint: |_| None }
    }
}

/// One target's way to the API.
pub struct CloudflareApi {
    pub address: TargetId,
    remote: Remote,
    needs: Needs,
}

impl CloudflareApi {
    pub fn new(address: TargetId, remote: Remote, needs: Needs) -> Self {
        CloudflareApi { address, remote, needs }
    }

    /// A target's way to the API, from the run's client (a kind's `build`).
    pub fn open(address: TargetId, remote: Option<&Remote>, needs: Needs) -> Result<Self, TargetError> {
        let remote = super::kind::need_remote(&address, remote)?;
        Ok(CloudflareApi::new(address, remote, needs))
    }

    pub fn err(&self, message: impl Into<String>, hint: Option<&str>) -> TargetError {
        TargetError::new(&self.address, message, hint)
    }

    pub fn env(&self, name: &str) -> Result<String, TargetError> {
        self.remote.var(name).ok_or_else(|| {
            self.err(
                format!("{name} is not set"),
                Some(&format!(
                    "export CLOUDFLARE_API_TOKEN (a token with `{}`) and CLOUDFLARE_ACCOUNT_ID{}",
                    self.needs.permission,
                    self.needs.without_token.map(|w| format!(", or {w}")).unwrap_or_default()
                )),
            )
        })
    }

    /// `…/accounts/{a}/{segments…}?{query}`
    pub fn account_url(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<String, TargetError> {
        let base =
            self.remote.var("CLOUDFLARE_API_BASE_URL").unwrap_or_else(|| "https://api.cloudflare.com/client/v4".into());
        let account = self.env("CLOUDFLARE_ACCOUNT_ID")?;
        let mut url = Http::check_base(&base).map_err(|e| self.err(format!("CLOUDFLARE_API_BASE_URL: {e}"), None))?;
        {
            let mut path =
                url.path_segments_mut().map_err(|()| self.err(format!("`{base}` cannot be a base"), None))?;
            path.pop_if_empty();
            path.extend(["accounts", account.as_str()]);
            path.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url.to_string())
    }

    pub async fn call(&self, method: Method, url: &str, body: Option<(&str, &[u8])>) -> Result<Response, TargetError> {
        let token = Secret::new(self.env("CLOUDFLARE_API_TOKEN")?);
        // Cloudflare counts every request against 1,200 per 5 minutes.
        let _ticket =
            self.remote.cloudflare.admit().await.map_err(|_| TargetError::deferred(&self.address, "Cloudflare"))?;
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
    pub async fn envelope(
        &self,
        method: &Method,
        url: &str,
        response: Response,
    ) -> Result<Envelope, (StatusCode, TargetError)> {
        let status = response.status();
        let envelope: Option<Envelope> = crate::http::json(response).await.ok();
        match envelope {
            Some(e) if e.success && status.is_success() => Ok(e),
            Some(e) => {
                let codes: Vec<u64> = e.errors.iter().map(|m| m.code).collect();
                let text =
                    e.errors.iter().map(|m| format!("{} ({})", m.message, m.code)).collect::<Vec<_>>().join("; ");
                let denied = format!("the API token is invalid or lacks `{}` on this account", self.needs.permission);
                let hint = (self.needs.code_hint)(&codes).map(str::to_string).or_else(|| {
                    (status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN).then_some(denied)
                });
                let error = self.err(format!("{method} {url} → {status}: {text}"), hint.as_deref());
                Err((status, error.answered(status.as_u16(), codes)))
            }
            None => Err((
                status,
                self.err(format!("{method} {url} → {status}: not a Cloudflare API answer"), None)
                    .answered(status.as_u16(), Vec::new()),
            )),
        }
    }

    /// `GET …/accounts/{a}/{segments…}?{query}`, its `result` read as `T`.
    pub async fn get<T: DeserializeOwned>(&self, segments: &[&str], query: &[(&str, &str)]) -> Result<T, TargetError> {
        let url = self.account_url(segments, query)?;
        let response = self.call(Method::GET, &url, None).await?;
        self.read(&Method::GET, &url, response).await.map_err(|(_, e)| e)
    }

    /// An answer's envelope, its `result` read as `T`.
    pub async fn read<T: DeserializeOwned>(
        &self,
        method: &Method,
        url: &str,
        response: Response,
    ) -> Result<T, (StatusCode, TargetError)> {
        let envelope = self.envelope(method, url, response).await?;
        serde_json::from_value(envelope.result).map_err(|e| {
            (StatusCode::OK, self.err(format!("{method} {url}: an answer of an unexpected shape ({e})"), None))
        })
    }
}
