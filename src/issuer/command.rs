//! The `command` issuer: any other service, through a program that prints
//! `{"token": …, "token_id": …, "expires_at": …}` on stdout.

use std::process::Stdio;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::io::AsyncWriteExt;

use super::{IssueRequest, Issued, Issuer, IssuerError, Revoked, Verdict};
use crate::policy::CommandSpec;
use crate::secret::Secret;

pub struct CommandIssuer {
    name: String,
    spec: CommandSpec,
}

impl CommandIssuer {
    pub fn new(name: &str, spec: CommandSpec) -> Self {
        CommandIssuer { name: name.into(), spec }
    }

    fn failed(&self, message: impl Into<String>) -> IssuerError {
        IssuerError::Failed { issuer: self.name.clone(), message: message.into() }
    }

    async fn run(
        &self,
        argv: &[String],
        env: &[(&str, String)],
        stdin: Option<&Secret>,
    ) -> Result<(bool, Vec<u8>), IssuerError> {
        let (program, args) = argv.split_first().ok_or_else(|| self.failed("the command is empty"))?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| self.failed(format!("cannot run `{program}`: {e}")))?;
        if let (Some(value), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(value.expose().as_bytes())
                .await
                .map_err(|e| self.failed(format!("writing to `{program}`: {e}")))?;
        }
        let out = child.wait_with_output().await.map_err(|e| self.failed(format!("`{program}`: {e}")))?;
        Ok((out.status.success(), out.stdout))
    }
}

#[async_trait]
impl Issuer for CommandIssuer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn issue(&self, request: &IssueRequest<'_>) -> Result<Issued, IssuerError> {
        let env = [
            ("CHITTY_TOKEN_NAME", request.token.to_string()),
            ("CHITTY_TOKEN_SCOPES", request.scopes.join(",")),
            ("CHITTY_TOKEN_TTL_SECONDS", request.ttl.map(|t| t.num_seconds().to_string()).unwrap_or_default()),
            ("CHITTY_TOKEN_TAG", request.tag.unwrap_or_default().to_string()),
        ];
        let (ok, stdout) = self.run(&self.spec.command, &env, None).await?;
        let stdout = zeroize::Zeroizing::new(stdout);
        if !ok {
            return Err(self.failed(format!("`{}` exited with an error; nothing was stored", self.spec.command[0])));
        }
        // serde_json's errors name a position, not the text.
        let answer = crate::secret::SensitiveJson::parse(&stdout)
            .map_err(|e| self.failed(format!("the command's output is not JSON ({e})")))?;
        let token = answer["token"]
            .as_str()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| self.failed("the command printed no token"))?;
        let expires_at = match &answer["expires_at"] {
            serde_json::Value::Null => None,
            serde_json::Value::String(t) => Some(t.parse::<DateTime<Utc>>().map_err(|_| {
                self.failed("the command's expires_at is not an RFC 3339 time (e.g. 2027-01-31T00:00:00Z); the token was not stored")
            })?),
            _ => return Err(self.failed("the command's expires_at is not a string; the token was not stored")),
        };
        Ok(Issued {
            value: Secret::new(token),
            token_id: answer["token_id"].as_str().map(str::to_string),
            expires_at,
            scopes: None,
        })
    }

    async fn verify(&self, value: &Secret) -> Result<Verdict, IssuerError> {
        let Some(verify) = &self.spec.verify else {
            return Ok(if value.is_empty() { Verdict::Invalid("is empty".into()) } else { Verdict::Valid });
        };
        let (ok, _) = self.run(verify, &[], Some(value)).await?;
        Ok(if ok { Verdict::Valid } else { Verdict::Invalid("was rejected by the verify command".into()) })
    }

    async fn revoke(&self, token_id: Option<&str>) -> Result<Revoked, IssuerError> {
        let (Some(revoke), Some(id)) = (&self.spec.revoke, token_id) else { return Ok(Revoked::NotSupported) };
        let (ok, _) = self.run(revoke, &[("CHITTY_TOKEN_ID", id.to_string())], None).await?;
        if ok { Ok(Revoked::Revoked) } else { Err(self.failed(format!("the revoke command failed for {id}"))) }
    }
}
