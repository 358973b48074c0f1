//! age encryption of value files, and the recipients file.
//!
//! A value file is an ASCII-armored age file whose plaintext is JSON:
//! `{"schema":1,"values":{"3":"…","4":"…"}}`, keyed by version id. It opens
//! with the stock CLI: `age -d -i identity.txt tokens/NAME.age`.

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

#[derive(Serialize)]
struct PlainOut<'a> {
    schema: u32,
    values: BTreeMap<String, &'a str>,
}

#[derive(Deserialize)]
struct PlainIn {
    schema: u32,
    values: BTreeMap<String, Secret>,
}

pub fn encrypt(values: &Values, recipients: &[age::x25519::Recipient]) -> Result<Vec<u8>, RegistryError> {
    let plain =
        PlainOut { schema: 1, values: values.versions.iter().map(|(id, v)| (id.to_string(), v.expose())).collect() };
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

pub fn decrypt(bytes: &[u8], identity: &age::x25519::Identity, path: &Path) -> Result<Values, RegistryError> {
    let cannot = |why: String| RegistryError::Decrypt { path: path.to_path_buf(), why };
    let decryptor = age::Decryptor::new(ArmoredReader::new(bytes)).map_err(|e| cannot(e.to_string()))?;
    let mut reader =
        decryptor.decrypt(std::iter::once(identity as &dyn age::Identity)).map_err(|e| cannot(e.to_string()))?;
    let mut json = Zeroizing::new(Vec::new());
    reader.read_to_end(&mut json).map_err(|e| cannot(e.to_string()))?;
    // serde_json's errors name a position, never the text around it.
    let plain: PlainIn =
        serde_json::from_slice(&json).map_err(|e| cannot(format!("not a chitty-secrets value file: {e}")))?;
    if plain.schema != 1 {
        return Err(cannot(format!(
            "value file schema {} is newer than this chitty-secrets understands",
            plain.schema
        )));
    }
    let mut values = Values::default();
    for (id, value) in plain.values {
        let id = id.parse().map_err(|_| cannot(format!("bad version id `{id}`")))?;
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
