//! ChittyID and ChittyAuth issuers, both API generations as presets with
//! every path overridable:
//!
//! - `chittyid` (runbook): `POST {generate_path}` with HTTP basic auth,
//!   `{"description","scopes","expires_in":"365d"}` → `{"token","token_id","expires_at"}`;
//!   verify `GET {verify_path}` with the new token; revoke `POST {revoke_path}`.
//! - `chittyauth` live: `POST /v1/tokens/provision` (bearer) →
//!   201 `{"success","token","tokenId","expiresAt"}`; `POST /v1/tokens/validate`
//!   (spends the token's own hourly limit: once per rotation); `POST
//!   /v1/tokens/revoke`. Never `refresh`: it revokes the old token at once.
//! - `chittyauth` runbook: `POST /api/tokens/generate` with an existing
//!   token; verify `GET /health`; no revoke.
//!
//! An answer with `"fallback": true`, or without a token, is a failure. A
//! 429 or a quota message is [`IssuerError::Quota`]: the rotation stops,
//! resumable, and nothing is retried in a loop. Mints are never retried once
//! they may have reached the service.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{IssueRequest, Issued, Issuer, IssuerError, Revoked, Verdict};
use crate::http::{Http, HttpError};
use crate::policy::{ChittyauthSpec, ChittyidSpec, Dur, Preset};
use crate::secret::{Secret, SensitiveJson, json_body};

/// What both issuers share: the base URL, the client, the credential.
struct Service {
    issuer: String,
    base: String,
    http: Http,
    credential: Result<Secret, super::credential::Missing>,
}

/// How a request may be sent again.
#[derive(Clone, Copy, PartialEq)]
enum Sending {
    /// Retried on a dropped connection or a 5xx: reads, revokes.
    Retried,
    /// Sent once: a call that spends something each time (ChittyAuth's
    /// validate spends the token's own limit: once per rotation).
    Once,
    /// A mint: sent once, and a lost answer may mean a token exists.
    Mint,
}

enum Auth<'a> {
    Basic(&'a str),
    Bearer,
    /// A bearer other than the issuer's own credential (verify with the new token).
    BearerOf(&'a Secret),
    None,
}

impl Service {
    fn failed(&self, message: impl Into<String>) -> IssuerError {
        IssuerError::Failed { issuer: self.issuer.clone(), message: message.into() }
    }

    fn credential(&self) -> Result<&Secret, IssuerError> {
        self.credential.as_ref().map_err(|m| IssuerError::Credential {
            issuer: self.issuer.clone(),
            message: m.message.clone(),
            hint: m.hint.clone(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base.trim_end_matches('/'), path.trim_start_matches('/'))
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<Zeroizing<Vec<u8>>>,
        sending: Sending,
    ) -> Result<(StatusCode, SensitiveJson), IssuerError> {
        let url = self.url(path);
        let basic_password = match auth {
            Auth::Basic(_) | Auth::Bearer => Some(self.credential()?),
            _ => None,
        };
        let build = || {
            let mut r = self.http.request(method.clone(), &url).header("Accept", "application/json");
            r = match (&auth, basic_password) {
                (Auth::Basic(user), Some(password)) => {
                    // What a service that echoes the header would show.
                    use base64::Engine as _;
                    crate::secret::remember(
                        &base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", password.expose())),
                    );
                    r.basic_auth(user, Some(password.expose()))
                }
                (Auth::Bearer, Some(token)) => r.bearer_auth(token.expose()),
                (Auth::BearerOf(token), _) => r.bearer_auth(token.expose()),
                _ => r,
            };
            match &body {
                Some(b) => r.header("Content-Type", "application/json").body(b.to_vec()),
                None => r,
            }
        };
        let response = match sending {
            // A mint whose connection broke after sending may have issued a token.
            Sending::Mint => self.http.send_once(method.clone(), &url, build).await.map_err(|e| match e {
                // Never connected: nothing was sent, nothing minted.
                HttpError::Unreached { .. } => {
                    self.failed(format!("{e}; the service was not reached, so nothing was minted"))
                }
                _ => IssuerError::Uncertain { issuer: self.issuer.clone(), message: e.to_string() },
            })?,
            Sending::Once => self
                .http
                .send_once(method.clone(), &url, build)
                .await
                .map_err(|e| self.failed(format!("{e}; not sent again: each call spends the token's own limit")))?,
            Sending::Retried => {
                self.http.send(method.clone(), &url, build).await.map_err(|e| self.failed(e.to_string()))?
            }
        };
        self.read(method, &url, response).await
    }

    /// The status and JSON body; quota answers and upstream fallbacks become errors.
    async fn read(
        &self,
        method: Method,
        url: &str,
        response: Response,
    ) -> Result<(StatusCode, SensitiveJson), IssuerError> {
        let status = response.status();
        // The answer may hold a token: read it into zeroized memory.
        let bytes =
            Zeroizing::new(crate::http::body(response, crate::http::ISSUER_ANSWER_MAX).await.unwrap_or_default());
        let body = SensitiveJson::parse(&bytes).unwrap_or_default();
        let text = ["error", "message"].iter().find_map(|k| body[*k].as_str()).unwrap_or("").to_string();
        let lower = text.to_ascii_lowercase();
        if status == StatusCode::TOO_MANY_REQUESTS || lower.contains("quota") || lower.contains("rate limit") {
            return Err(IssuerError::Quota {
                issuer: self.issuer.clone(),
                message: format!("{method} {url} → {status}: {}", if text.is_empty() { "rate limited" } else { &text }),
            });
        }
        if body["fallback"] == Value::Bool(true) {
            return Err(self.failed(format!(
                "{method} {url} answered with \"fallback\": true (the service's upstream failed); nothing was issued"
            )));
        }
        Ok((status, body))
    }

    fn error(&self, what: &str, status: StatusCode, body: &Value) -> IssuerError {
        // The service's own words: its code and its message, both when given.
        let field = |k: &str| body[k].as_str().filter(|s| !s.is_empty());
        let text = match (field("error"), field("message").or_else(|| field("error_description"))) {
            (Some(code), Some(message)) if code != message => format!("{code}: {message}"),
            (Some(one), _) | (None, Some(one)) => one.to_string(),
            (None, None) => "no message".into(),
        };
        // ChittyAuth says why in `details` (e.g. what ChittyConnect answered).
        let text = match field("details") {
            Some(details) => format!("{text} ({details})"),
            None => text,
        };
        let hint = match status {
            StatusCode::UNAUTHORIZED => " (check the issuer's credential)",
            // ChittyAuth checks the policy's `chitty_id` with the ChittyID
            // service before it provisions: its credential was accepted.
            StatusCode::FORBIDDEN if text.to_ascii_lowercase().contains("chittyid verification") => {
                " (not the credential: ChittyAuth could not verify the issuer's `chitty_id` with its identity service, ChittyConnect: check `chitty_id` in the policy and that ChittyConnect is up)"
            }
            StatusCode::FORBIDDEN => {
                " (the credential was accepted but lacks the right for this request: see the service's message)"
            }
            _ => "",
        };
        self.failed(format!("{what} → {status}: {text}{hint}"))
    }
}

/// A token out of an answer, under any of the names both generations use.
fn issued_from(service: &Service, body: &Value) -> Result<Issued, IssuerError> {
    let token = ["token", "apiKey", "api_key"].iter().find_map(|k| body[*k].as_str()).filter(|t| !t.trim().is_empty());
    let Some(token) = token else {
        return Err(service.failed("the answer holds no token; nothing was stored"));
    };
    let token_id = ["token_id", "tokenId", "id"].iter().find_map(|k| body[*k].as_str()).map(str::to_string);
    let expires_at = ["expires_at", "expiresAt"]
        .iter()
        .find_map(|k| body[*k].as_str())
        .and_then(|t| t.parse::<DateTime<Utc>>().ok());
    // Granted scopes, as a list or one space-separated string (OAuth's way).
    let scopes = ["scope", "scopes"].iter().find_map(|k| match &body[*k] {
        Value::Array(a) => Some(a.iter().filter_map(Value::as_str).map(str::to_string).collect()),
        Value::String(s) => Some(s.split_whitespace().map(str::to_string).collect()),
        _ => None,
    });
    Ok(Issued { value: Secret::new(token), token_id, expires_at, scopes })
}

fn description(request: &IssueRequest<'_>) -> String {
    // The tag lets an operator find a token that was minted but never
    // recorded (the process died in between): it is in the journal too.
    let base = request.description.unwrap_or(request.token);
    match request.tag {
        Some(tag) => format!("{base} [chitty-secrets {tag}]"),
        None => base.to_string(),
    }
}

pub struct ChittyidIssuer {
    service: Service,
    spec: ChittyidSpec,
}

impl ChittyidIssuer {
    pub fn new(
        name: &str,
        spec: ChittyidSpec,
        http: Http,
        credential: Result<Secret, super::credential::Missing>,
    ) -> Self {
        ChittyidIssuer { service: Service { issuer: name.into(), base: spec.url.clone(), http, credential }, spec }
    }
}

#[async_trait]
impl Issuer for ChittyidIssuer {
    fn name(&self) -> &str {
        &self.service.issuer
    }

    async fn issue(&self, request: &IssueRequest<'_>) -> Result<Issued, IssuerError> {
        let mut body = json!({ "description": description(request), "scopes": request.scopes });
        if let Some(ttl) = request.ttl {
            body["expires_in"] = Dur::human(ttl).into();
        }
        let (status, answer) = self
            .service
            .call(
                Method::POST,
                &self.spec.generate_path,
                Auth::Basic(&self.spec.admin_user),
                Some(json_body(&body)),
                Sending::Mint,
            )
            .await?;
        if !status.is_success() {
            return Err(self.service.error(&format!("POST {}", self.spec.generate_path), status, &answer));
        }
        issued_from(&self.service, &answer)
    }

    /// `GET /health` with the new token: cheap, and never a mint.
    async fn verify(&self, value: &Secret) -> Result<Verdict, IssuerError> {
        let (status, body) = self
            .service
            .call(Method::GET, &self.spec.verify_path, Auth::BearerOf(value), None, Sending::Retried)
            .await?;
        // As the service writes it: `healthy`, `HEALTHY`, `ok`.
        let healthy =
            body["status"].as_str().is_some_and(|s| s.eq_ignore_ascii_case("healthy") || s.eq_ignore_ascii_case("ok"));
        Ok(match status {
            s if s.is_success() && healthy => Verdict::Valid,
            s if s.is_success() => {
                Verdict::Invalid(format!("was checked but the service is not healthy ({})", body["status"]))
            }
            s => Verdict::Invalid(format!("was refused ({s})")),
        })
    }

    async fn revoke(&self, token_id: Option<&str>) -> Result<Revoked, IssuerError> {
        let (Some(path), Some(id)) = (&self.spec.revoke_path, token_id) else {
            return Ok(Revoked::NotSupported);
        };
        let path = path.replace("{token_id}", id);
        let body = json!({ "reason": "rotated by chitty-secrets" });
        let (status, answer) = self
            .service
            .call(Method::POST, &path, Auth::Basic(&self.spec.admin_user), Some(json_body(&body)), Sending::Retried)
            .await?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok(Revoked::Revoked)
        } else {
            Err(self.service.error(&format!("POST {path}"), status, &answer))
        }
    }
}

pub struct ChittyauthIssuer {
    service: Service,
    spec: ChittyauthSpec,
}

impl ChittyauthIssuer {
    pub fn new(
        name: &str,
        spec: ChittyauthSpec,
        http: Http,
        credential: Result<Secret, super::credential::Missing>,
    ) -> Self {
        ChittyauthIssuer { service: Service { issuer: name.into(), base: spec.url.clone(), http, credential }, spec }
    }

    fn path(&self, given: &Option<String>, live: &'static str, runbook: Option<&'static str>) -> Option<String> {
        given.clone().or_else(|| match self.spec.preset {
            Preset::Live => Some(live.to_string()),
            Preset::Runbook => runbook.map(str::to_string),
        })
    }
}

#[async_trait]
impl Issuer for ChittyauthIssuer {
    fn name(&self) -> &str {
        &self.service.issuer
    }

    async fn issue(&self, request: &IssueRequest<'_>) -> Result<Issued, IssuerError> {
        let path = self
            .path(&self.spec.provision_path, "/v1/tokens/provision", Some("/api/tokens/generate"))
            .expect("both presets mint");
        let body = match self.spec.preset {
            Preset::Live => json!({
                "chittyId": self.spec.chitty_id,
                "scope": request.scopes,
                "service": self.spec.service,
                "expiresIn": request.ttl.map_or(30 * 86_400, |t| t.num_seconds()),
                "description": description(request),
            }),
            Preset::Runbook => json!({ "service": self.spec.service, "description": description(request) }),
        };
        let (status, answer) =
            self.service.call(Method::POST, &path, Auth::Bearer, Some(json_body(&body)), Sending::Mint).await?;
        if !status.is_success() || answer["success"] == Value::Bool(false) {
            return Err(self.service.error(&format!("POST {path}"), status, &answer));
        }
        issued_from(&self.service, &answer)
    }

    /// Live: one `validate` (it spends the token's own hourly limit, so it is
    /// called once per rotation). Runbook: `GET /health` with the token.
    async fn verify(&self, value: &Secret) -> Result<Verdict, IssuerError> {
        match self.path(&self.spec.validate_path, "/v1/tokens/validate", None) {
            Some(path) => {
                #[derive(serde::Serialize)]
                struct Validate<'a> {
                    token: &'a str,
                }
                let body = Validate { token: value.expose() };
                let (status, answer) =
                    self.service.call(Method::POST, &path, Auth::None, Some(json_body(&body)), Sending::Once).await?;
                if status.is_server_error() {
                    // Not a judgement of the token: the service failed.
                    return Err(self.service.error(
                        &format!("POST {path} (the token was not judged)"),
                        status,
                        &answer,
                    ));
                }
                Ok(if status.is_success() && answer["valid"] == Value::Bool(true) {
                    Verdict::Valid
                } else {
                    Verdict::Invalid(format!(
                        "was not accepted ({status}: {})",
                        answer["error"].as_str().unwrap_or("invalid")
                    ))
                })
            }
            None => {
                let (status, body) =
                    self.service.call(Method::GET, "/health", Auth::BearerOf(value), None, Sending::Retried).await?;
                Ok(if status.is_success() && body["status"].as_str().is_some_and(|s| s != "down") {
                    Verdict::Valid
                } else {
                    Verdict::Invalid(format!("was refused ({status})"))
                })
            }
        }
    }

    async fn revoke(&self, token_id: Option<&str>) -> Result<Revoked, IssuerError> {
        let (Some(path), Some(id)) = (self.path(&self.spec.revoke_path, "/v1/tokens/revoke", None), token_id) else {
            return Ok(Revoked::NotSupported);
        };
        let body = json!({ "tokenId": id, "reason": "rotated by chitty-secrets" });
        let (status, answer) =
            self.service.call(Method::POST, &path, Auth::Bearer, Some(json_body(&body)), Sending::Retried).await?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok(Revoked::Revoked)
        } else {
            Err(self.service.error(&format!("POST {path}"), status, &answer))
        }
    }
}
