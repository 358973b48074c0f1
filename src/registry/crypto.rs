//! age encryption of value files, and the recipients file.
//!
//! A value file is an ASCII-armored age file whose plaintext is JSON:
//! `{"schema":2,"token":"NAME","values":{"3":"…","4":"…"}}`, keyed by
//! version id. The token's name is inside the encrypted payload, so a file
//! copied over another token's (`A.age` over `B.age`) is refused instead of
//! handing out the wrong value. It opens with the stock CLI:
//! `age -d -i identity.txt tokens/NAME.age`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::RegistryError;
use crate::secret::Secret;

/// The values of one token's versions, decrypted.
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
}

/// The value file format this build writes. Schema 1 (no `token`) is read.
const VALUES_SCHEMA: u32 = 2;

#[derive(Serialize)]
struct PlainOut<'a> {
    schema: u32,
    token: &'a str,
    values: BTreeMap<String, &'a str>,
}

#[derive(Deserialize)]
struct PlainIn {
    schema: u32,
    #[serde(default)]
    token: Option<String>,
    values: BTreeMap<String, Secret>,
}

/// The values of `token`, encrypted to every recipient.
pub fn encrypt(token: &str, values: &Values, recipients: &[age::x25519::Recipient]) -> Result<Vec<u8>, RegistryError> {
    let plain = PlainOut {
        schema: VALUES_SCHEMA,
        token,
        values: values.versions.iter().map(|(id, v)| (id.to_string(), v.expose())).collect(),
    };
    let json = crate::secret::json_body(&plain);
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| RegistryError::Crypto(format!("cannot encrypt: {e}")))?;
    let mut out = Vec::new();
    let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(crypto_io)?;
    let mut writer = encryptor.wrap_output(armor).map_err(crypto_io)?;
    writer.write_all(&json).map_err(crypto_io)?;
    writer.finish().and_then(|armor| armor.finish()).map_err(crypto_io)?;
    Ok(out)
}

/// The values of `token` in an encrypted value file. Each way this can fail
/// has its own error: not a recipient, a damaged file, a newer format, or
/// another token's file.
pub fn decrypt(
    token: &str,
    bytes: &[u8],
    identity: &age::x25519::Identity,
    path: &Path,
) -> Result<Values, RegistryError> {
    let damaged = |why: String| RegistryError::Corrupt {
        path: path.to_path_buf(),
        why: format!("the value file is damaged or truncated ({why})"),
    };
    let decryptor = age::Decryptor::new(ArmoredReader::new(bytes)).map_err(|e| damaged(e.to_string()))?;
    let mut reader = decryptor.decrypt(std::iter::once(identity as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => RegistryError::Decrypt {
            path: path.to_path_buf(),
            why: "this identity is not one of its recipients".into(),
        },
        other => damaged(other.to_string()),
    })?;
    let mut json = Zeroizing::new(Vec::new());
    reader.read_to_end(&mut json).map_err(|e| damaged(e.to_string()))?;
    // serde_json's errors name a position, never the text around it.
    let plain: PlainIn = serde_json::from_slice(&json).map_err(|e| RegistryError::Corrupt {
        path: path.to_path_buf(),
        why: format!("it decrypts, but is not a chitty-secrets value file ({e})"),
    })?;
    if plain.schema > VALUES_SCHEMA {
        return Err(RegistryError::Newer { path: path.to_path_buf(), schema: plain.schema });
    }
    match plain.token.as_deref() {
        Some(holder) if holder != token => {
            return Err(RegistryError::Corrupt {
                path: path.to_path_buf(),
                why: format!("it holds the values of `{holder}`, not `{token}` (a file copied over another?)"),
            });
        }
        None if plain.schema >= 2 => {
            return Err(RegistryError::Corrupt { path: path.to_path_buf(), why: "it names no token".into() });
        }
        _ => {}
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

fn crypto_io(e: std::io::Error) -> RegistryError {
    RegistryError::Crypto(format!("cannot encrypt: {e}"))
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
