//! The `random` issuer: `prefix` + N bytes from the OS's CSPRNG, hex or
//! base64url. Offline; nothing to revoke.

use async_trait::async_trait;
use base64::Engine;
use zeroize::Zeroizing;

use super::{IssueRequest, Issued, Issuer, IssuerError, Revoked, Verdict};
use crate::policy::{Encoding, RandomSpec};
use crate::secret::Secret;

pub struct RandomIssuer {
    name: String,
    spec: RandomSpec,
}

impl RandomIssuer {
    pub fn new(name: &str, spec: RandomSpec) -> Self {
        RandomIssuer { name: name.to_string(), spec }
    }

    fn encoded_len(&self) -> usize {
        match self.spec.encoding {
            Encoding::Hex => self.spec.bytes * 2,
            Encoding::Base64url => (self.spec.bytes * 4).div_ceil(3),
        }
    }

    pub fn generate(&self) -> Result<Secret, IssuerError> {
        let mut bytes = Zeroizing::new(vec![0u8; self.spec.bytes]);
        getrandom::getrandom(&mut bytes).map_err(|e| IssuerError::Failed {
            issuer: self.name.clone(),
            message: format!("the OS random source failed: {e}"),
        })?;
        let mut out = String::with_capacity(self.spec.prefix.len() + self.encoded_len());
        out.push_str(&self.spec.prefix);
        match self.spec.encoding {
            Encoding::Hex => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                for b in bytes.iter() {
                    out.push(HEX[usize::from(b >> 4)] as char);
                    out.push(HEX[usize::from(b & 15)] as char);
                }
            }
            Encoding::Base64url => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&bytes, &mut out),
        }
        Ok(Secret::new(out))
    }
}

#[async_trait]
impl Issuer for RandomIssuer {
    fn name(&self) -> &str {
        &self.name
    }

    async fn issue(&self, request: &IssueRequest<'_>) -> Result<Issued, IssuerError> {
        Ok(Issued {
            value: self.generate()?,
            token_id: None,
            expires_at: request.ttl.map(|ttl| request.now + ttl),
            scopes: None,
        })
    }

    /// Offline: the value has this issuer's shape (prefix, length, alphabet).
    async fn verify(&self, value: &Secret) -> Result<Verdict, IssuerError> {
        let Some(body) = value.expose().strip_prefix(self.spec.prefix.as_str()) else {
            return Ok(Verdict::Invalid(format!("does not start with the prefix `{}`", self.spec.prefix)));
        };
        let alphabet_ok = match self.spec.encoding {
            Encoding::Hex => body.bytes().all(|b| b.is_ascii_hexdigit()),
            Encoding::Base64url => body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        };
        if body.len() != self.encoded_len() || !alphabet_ok {
            return Ok(Verdict::Invalid("has the wrong length or alphabet for this issuer".into()));
        }
        Ok(Verdict::Valid)
    }

    async fn revoke(&self, _token_id: Option<&str>) -> Result<Revoked, IssuerError> {
        Ok(Revoked::NotSupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(prefix: &str, bytes: usize, encoding: Encoding) -> RandomIssuer {
        RandomIssuer::new("t", RandomSpec { prefix: prefix.into(), bytes, encoding })
    }

    #[tokio::test]
    async fn mints_chittyid_shaped_tokens_that_verify() {
        let i = issuer("mcp_auth_", 16, Encoding::Hex);
        let a = i.generate().unwrap();
        let b = i.generate().unwrap();
        assert_eq!(a.expose().len(), "mcp_auth_".len() + 32);
        assert!(a.expose().starts_with("mcp_auth_"));
        assert!(!a.same_as(&b));
        assert_eq!(i.verify(&a).await.unwrap(), Verdict::Valid);
        assert!(matches!(i.verify(&Secret::new("YOUR_TOKEN_HERE_REPLACE_ME")).await.unwrap(), Verdict::Invalid(_)));
    }

    #[tokio::test]
    async fn base64url_has_no_padding_and_verifies() {
        let i = issuer("", 32, Encoding::Base64url);
        let v = i.generate().unwrap();
        assert_eq!(v.expose().len(), 43);
        assert!(!v.expose().contains('='));
        assert_eq!(i.verify(&v).await.unwrap(), Verdict::Valid);
    }
}
