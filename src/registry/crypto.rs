//! Value files and the recipients file.
//!
//! Each version's value is a file of its own, `tokens/NAME.ID.age`, named
//! by a random id: two branches that mint a version each add two files
//! that git merges without a conflict, so no minted value is lost by a
//! merge, and metadata names the files it means by id, so metadata from
//! one branch never pairs with a value from another. The file is an
//! ASCII-armored age file whose plaintext is JSON,
//! `{"mac":"e0.HEX","body":{"schema":3,"token":"NAME","id":"ID","version":3,"minted":{…},"value":"…"}}`:
//! the body says which token and file it belongs to and what the issuer
//! said when it was minted (so a value whose metadata a merge dropped can
//! still be adopted and revoked), and the MAC under the registry key
//! proves a member wrote it. It opens with the stock CLI:
//! `age -d -i identity.txt tokens/NAME.ID.age`.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::RegistryError;
use super::auth::{RegistryKeys, decrypt_with, encrypt_to};
use super::model::{ValueOrigin, Version};
use crate::secret::Secret;

/// The values of one token's versions, decrypted, by version id.
#[derive(Debug, Default, Clone)]
pub struct Values {
    versions: BTreeMap<u32, Secret>,
}

impl Values {
    pub fn get(&self, version: u32) -> Option<&Secret> {
        self.versions.get(&version)
    }

    pub fn insert(&mut self, version: u32, value: Secret) {
        self.versions.insert(version, value);
    }

    pub fn retain(&mut self, keep: impl Fn(u32) -> bool) {
        self.versions.retain(|id, _| keep(*id));
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &Secret)> {
        self.versions.iter().map(|(id, v)| (*id, v))
    }
}

/// The value file format this build writes.
const VALUE_SCHEMA: u32 = 3;

/// What the issuer said of a version when it was made: kept with the
/// value, so a value whose metadata was lost can be recorded again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Minted {
    pub issuer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    pub origin: ValueOrigin,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub placeholder: bool,
}

impl Minted {
    pub fn of(v: &Version) -> Self {
        Minted {
            issuer: v.issuer.clone(),
            issuer_kind: v.issuer_kind.clone(),
            issuer_url: v.issuer_url.clone(),
            token_id: v.token_id.clone(),
            scopes: v.scopes.clone(),
            created_at: v.created_at,
            expires_at: v.expires_at,
            origin: v.origin,
            placeholder: v.placeholder,
        }
    }
}

/// One value file, decrypted and authenticated.
#[derive(Debug, Clone)]
pub struct ValueFile {
    pub token: String,
    pub id: String,
    /// The version number it had when it was written.
    pub version: u32,
    pub minted: Minted,
    pub value: Secret,
}

#[derive(Serialize)]
struct BodyOut<'a> {
    schema: u32,
    token: &'a str,
    id: &'a str,
    version: u32,
    minted: &'a Minted,
    value: &'a str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BodyIn {
    schema: u32,
    token: String,
    id: String,
    version: u32,
    minted: Minted,
    value: Secret,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Outer<'a> {
    mac: String,
    #[serde(borrow)]
    body: &'a serde_json::value::RawValue,
}

/// The MAC's kind for value files.
const VALUE_MAC: &str = "value";

/// A value file's plaintext: the body and its MAC under the current key.
fn plaintext(file: &ValueFile, keys: &RegistryKeys) -> Zeroizing<Vec<u8>> {
    let body = crate::secret::json_body(&BodyOut {
        schema: VALUE_SCHEMA,
        token: &file.token,
        id: &file.id,
        version: file.version,
        minted: &file.minted,
        value: file.value.expose(),
    });
    let mac = keys.tag(VALUE_MAC, &file.token, &body);
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() + mac.len() + 24));
    out.extend_from_slice(b"{\"mac\":\"");
    out.extend_from_slice(mac.as_bytes());
    out.extend_from_slice(b"\",\"body\":");
    out.extend_from_slice(&body);
    out.push(b'}');
    out
}

/// A value file, MACed under the current key and encrypted to every recipient.
pub fn seal_value(
    file: &ValueFile,
    keys: &RegistryKeys,
    recipients: &[age::x25519::Recipient],
) -> Result<Vec<u8>, RegistryError> {
    encrypt_to(&plaintext(file, keys), recipients)
}

/// The value file at `path`, which must be `token`'s file `id`, made by a
/// member (its MAC under the current key; under any epoch's with `older`).
pub fn open_value(
    bytes: &[u8],
    identity: &age::x25519::Identity,
    keys: &RegistryKeys,
    older: bool,
    (token, id): (&str, &str),
    path: &Path,
) -> Result<ValueFile, RegistryError> {
    open_value_checked(bytes, identity, Some((keys, older)), (token, id), path)
}

/// [`open_value`], with the MAC checked only when `check` is given (a
/// member accepting a file after review).
pub fn open_value_checked(
    bytes: &[u8],
    identity: &age::x25519::Identity,
    check: Option<(&RegistryKeys, bool)>,
    (token, id): (&str, &str),
    path: &Path,
) -> Result<ValueFile, RegistryError> {
    let plain = decrypt_with(bytes, identity, path)?;
    let not_ours = |e: serde_json::Error| RegistryError::Corrupt {
        path: path.to_path_buf(),
        why: format!("it decrypts, but is not a chitty-secrets value file ({e})"),
    };
    let outer: Outer<'_> = serde_json::from_slice(&plain).map_err(|e| {
        // The older format carries no MAC: in an authenticated registry
        // (`upgrade` rewrote every such file), nobody's file a member wrote.
        match serde_json::from_slice::<LegacyProbe>(&plain) {
            Ok(_) => RegistryError::Unauthentic {
                path: path.to_path_buf(),
                why: "it is in the format from before authentication, which carries no MAC (an upgrade rewrote every such file)".into(),
            },
            Err(_) => not_ours(e),
        }
    })?;
    // serde_json's errors name a position, never the text around it.
    let body: BodyIn = serde_json::from_str(outer.body.get()).map_err(not_ours)?;
    if body.schema > VALUE_SCHEMA {
        return Err(RegistryError::Newer { path: path.to_path_buf(), schema: body.schema });
    }
    if body.token != token || body.id != id {
        return Err(RegistryError::Unauthentic {
            path: path.to_path_buf(),
            why: format!(
                "it is {}'s value file {}, not {token}'s {id} (a file copied over another?)",
                body.token, body.id
            ),
        });
    }
    if let Some((keys, older)) = check {
        keys.check(&outer.mac, VALUE_MAC, token, outer.body.get().as_bytes(), older)
            .map_err(|why| RegistryError::Unauthentic { path: path.to_path_buf(), why: why.to_string() })?;
    }
    Ok(ValueFile { token: body.token, id: body.id, version: body.version, minted: body.minted, value: body.value })
}

/// The same file re-MACed under the current key and re-encrypted to
/// `recipients` (a recipients change).
pub fn reseal(
    bytes: &[u8],
    identity: &age::x25519::Identity,
    keys: &RegistryKeys,
    (token, id): (&str, &str),
    recipients: &[age::x25519::Recipient],
    path: &Path,
) -> Result<Vec<u8>, RegistryError> {
    let file = open_value(bytes, identity, keys, true, (token, id), path)?;
    seal_value(&file, keys, recipients)
}

#[derive(Deserialize)]
struct LegacyProbe {
    #[allow(dead_code)]
    values: serde::de::IgnoredAny,
}

/// The values of a value file of the format before the registry was
/// authenticated (`tokens/NAME.age`, every version in one file), for
/// `upgrade`.
pub fn open_legacy(
    token: &str,
    bytes: &[u8],
    identity: &age::x25519::Identity,
    path: &Path,
) -> Result<Values, RegistryError> {
    #[derive(Deserialize)]
    struct PlainIn {
        schema: u32,
        #[serde(default)]
        token: Option<String>,
        values: BTreeMap<String, Secret>,
    }
    let plain = decrypt_with(bytes, identity, path)?;
    let plain: PlainIn = serde_json::from_slice(&plain).map_err(|e| RegistryError::Corrupt {
        path: path.to_path_buf(),
        why: format!("it decrypts, but is not a chitty-secrets value file ({e})"),
    })?;
    if plain.schema > 2 {
        return Err(RegistryError::Newer { path: path.to_path_buf(), schema: plain.schema });
    }
    if let Some(holder) = plain.token.as_deref().filter(|h| *h != token) {
        return Err(RegistryError::Corrupt {
            path: path.to_path_buf(),
            why: format!("it holds the values of `{holder}`, not `{token}` (a file copied over another?)"),
        });
    }
    let mut values = Values::default();
    for (id, value) in plain.values {
        let id = id
            .parse()
            .map_err(|_| RegistryError::Corrupt { path: path.to_path_buf(), why: format!("bad version id `{id}`") })?;
        values.insert(id, value);
    }
    Ok(values)
}

/// The MAC line of the recipients file (its last line).
const RECIPIENTS_MAC: &str = "# mac: ";

/// The recipients file's text without its MAC line, and the MAC.
pub fn split_recipients_mac(text: &str) -> (String, Option<&str>) {
    let mut mac = None;
    let mut rest = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        match line.trim_end().strip_prefix(RECIPIENTS_MAC) {
            Some(tag) if mac.is_none() => mac = Some(tag.trim()),
            _ => rest.push_str(line),
        }
    }
    (rest, mac)
}

/// The recipients file's text with a MAC line over the rest.
pub fn with_recipients_mac(text: &str, keys: &RegistryKeys) -> String {
    let (mut rest, _) = split_recipients_mac(text);
    if !rest.is_empty() && !rest.ends_with('\n') {
        rest.push('\n');
    }
    let tag = keys.tag("recipients", "", rest.as_bytes());
    format!("{rest}{RECIPIENTS_MAC}{tag}\n")
}

/// Parses a recipients file: one `age1…` key a line; `#` comments and blank
/// lines allowed.
pub fn parse_recipients(text: &str, path: &Path) -> Result<Vec<age::x25519::Recipient>, RegistryError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let recipient = age::x25519::Recipient::from_str(line).map_err(|e| RegistryError::Recipients {
            path: path.to_path_buf(),
            line: i + 1,
            why: e.to_string(),
        })?;
        out.push(recipient);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(token: &str, id: &str, value: &str) -> ValueFile {
        ValueFile {
            token: token.into(),
            id: id.into(),
            version: 1,
            minted: Minted {
                issuer: "random".into(),
                issuer_kind: Some("random".into()),
                issuer_url: None,
                token_id: Some("tok_1".into()),
                scopes: vec![],
                created_at: Utc::now(),
                expires_at: None,
                origin: ValueOrigin::Issued,
                placeholder: false,
            },
            value: Secret::new(value),
        }
    }

    #[test]
    fn a_value_file_opens_only_as_itself_and_only_under_the_key() {
        let keys = RegistryKeys::generate();
        let id = age::x25519::Identity::generate();
        let path = Path::new("tokens/T/abc.age");
        let sealed = seal_value(&file("T", "abc", "canary-value"), &keys, &[id.to_public()]).unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("canary"));
        let back = open_value(&sealed, &id, &keys, false, ("T", "abc"), path).unwrap();
        assert_eq!((back.value.expose(), back.minted.token_id.as_deref()), ("canary-value", Some("tok_1")));
        assert!(matches!(
            open_value(&sealed, &id, &keys, false, ("U", "abc"), path),
            Err(RegistryError::Unauthentic { .. })
        ));
        assert!(matches!(
            open_value(&sealed, &id, &keys, false, ("T", "abd"), path),
            Err(RegistryError::Unauthentic { .. })
        ));
        // Anyone can encrypt to the recipients; only a member can MAC.
        let forged = seal_value(&file("T", "abc", "attacker"), &RegistryKeys::generate(), &[id.to_public()]).unwrap();
        let err = open_value(&forged, &id, &keys, false, ("T", "abc"), path).unwrap_err();
        assert!(matches!(err, RegistryError::Unauthentic { .. }), "{err}");
    }

    #[test]
    fn the_recipients_mac_covers_every_other_line() {
        let keys = RegistryKeys::generate();
        let text = with_recipients_mac("# alice\nage1alice\n", &keys);
        let (rest, mac) = split_recipients_mac(&text);
        assert_eq!(rest, "# alice\nage1alice\n");
        assert!(keys.check(mac.unwrap(), "recipients", "", rest.as_bytes(), false).is_ok());
        let appended = format!("{text}age1mallory\n");
        let (rest, mac) = split_recipients_mac(&appended);
        assert!(keys.check(mac.unwrap(), "recipients", "", rest.as_bytes(), false).is_err());
        assert_eq!(with_recipients_mac(&text, &keys), text, "re-MACing keeps one MAC line");
    }
}
