//! Authenticity: the registry key, and the MACs it puts on every file a
//! member's command trusts.
//!
//! age encrypts to public keys, so anyone can write a value file the
//! members will open, and the recipients file and the metadata are plain
//! text. What only members have is what age lets them decrypt: the
//! registry key, `key.age`, encrypted to every recipient (SOPS keeps its
//! data key the same way). Every file that steers a write, a delivery or a
//! revoke carries an HMAC-SHA256 under it:
//!
//! - `recipients`: a last line `# mac: e0.HEX` over the other lines;
//! - `tokens/NAME.toml`: a first line `mac = "e0.HEX"` over the rest;
//! - `tokens/NAME.ID.age`: inside the encrypted payload, over its body;
//! - `audit.log`: a `mac` field on each line, over the line without it.
//!
//! `e0` names the key's epoch. `keys remove` adds a key (a new epoch) and
//! MACs every file again: a removed member knows the old keys only, and a
//! file under an old key is refused. The key file keeps every key since
//! the first, whose keyed hash is the registry's id: a key file made by
//! someone who never had the first key (a wholly new registry with the
//! same recipients) has another id, and a machine that has used the
//! registry remembers its id and epoch ([`Pins`]).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::RegistryError;

/// The key file's name in the registry folder.
pub const KEY_FILE: &str = "key.age";
const KEY_FILE_SCHEMA: u32 = 1;

/// The keys of every epoch, oldest first. No `Debug`: they are secrets.
#[derive(Clone)]
pub struct RegistryKeys {
    keys: Vec<Zeroizing<[u8; 32]>>,
    /// The recipients change under way, if any (its nonce).
    pub change: Option<String>,
    /// HMAC keyed with each epoch's key, ready to clone: keying costs two
    /// SHA-256 blocks, a metadata file's MAC about six.
    keyed: Vec<Hmac<Sha256>>,
}

impl std::fmt::Debug for RegistryKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RegistryKeys(epoch {}, id {})", self.epoch(), self.registry_id())
    }
}

/// Why a file's MAC does not authenticate it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No MAC where one must be.
    Missing,
    /// Not `eN.HEX`.
    Malformed,
    /// The content is not what the MAC was made over.
    Mismatch,
    /// Made under the key of an epoch that a member's removal ended.
    Retired { epoch: u32, current: u32 },
    /// Names an epoch the key file does not have.
    UnknownEpoch(u32),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Missing => write!(f, "it carries no MAC"),
            Refusal::Malformed => write!(f, "its MAC is not in the form eN.HEX"),
            Refusal::Mismatch => write!(f, "its content is not what its MAC was made over"),
            Refusal::Retired { epoch, current } => write!(
                f,
                "its MAC is under the registry key of epoch {epoch}, retired when a member was removed (the key is at epoch {current} now)"
            ),
            Refusal::UnknownEpoch(epoch) => {
                write!(f, "its MAC names key epoch {epoch}, which the key file does not have")
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    schema: u32,
    /// Hex, oldest first.
    keys: Vec<String>,
    /// The nonce of a recipients change under way (see the rekey marker):
    /// only a marker naming it is this change's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    change: Option<String>,
}

pub(super) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let text = text.as_bytes();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

fn random_key() -> Zeroizing<[u8; 32]> {
    let mut key = Zeroizing::new([0u8; 32]);
    getrandom::getrandom(key.as_mut()).expect("the OS random source works");
    key
}

impl RegistryKeys {
    /// A new registry's first key.
    pub fn generate() -> Self {
        Self::from_keys(vec![random_key()])
    }

    fn from_keys(keys: Vec<Zeroizing<[u8; 32]>>) -> Self {
        let keyed = keys
            .iter()
            .map(|k| <Hmac<Sha256> as Mac>::new_from_slice(k.as_ref()).expect("HMAC takes any key length"))
            .collect();
        RegistryKeys { keys, keyed, change: None }
    }

    /// The same keys, marking a recipients change under way (or none).
    pub fn with_change(&self, change: Option<String>) -> Self {
        RegistryKeys { change, ..self.clone() }
    }

    /// The current epoch (0 for a registry no member was removed from).
    pub fn epoch(&self) -> u32 {
        (self.keys.len() - 1) as u32
    }

    fn hmac(keyed: &Hmac<Sha256>, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = keyed.clone();
        for part in parts {
            // Length-prefixed: no two lists of parts hash the same bytes.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// The registry's id: fixed by its first key, the same at every epoch;
    /// nobody without that key can make a key file with this id.
    pub fn registry_id(&self) -> String {
        hex(&Self::hmac(&self.keyed[0], &[b"chitty-secrets registry id"])[..16])
    }

    /// A public fingerprint of one epoch's key.
    pub fn key_id(&self, epoch: u32) -> Option<String> {
        let keyed = self.keyed.get(epoch as usize)?;
        Some(hex(&Self::hmac(keyed, &[b"chitty-secrets key id"])[..16]))
    }

    /// The keys with one more epoch: after a member's removal.
    pub fn next_epoch(&self) -> Self {
        let mut keys = self.keys.clone();
        keys.push(random_key());
        Self::from_keys(keys)
    }

    /// The MAC of `bytes` as the file `kind`/`name`, under the current key:
    /// `eN.HEX`.
    pub fn tag(&self, kind: &str, name: &str, bytes: &[u8]) -> String {
        let keyed = self.keyed.last().expect("at least one key");
        format!("e{}.{}", self.epoch(), hex(&Self::hmac(keyed, &[kind.as_bytes(), name.as_bytes(), bytes])))
    }

    /// Whether `tag` is the MAC of `bytes` as `kind`/`name` under the
    /// current key (or, with `older`, under any epoch's: only while a
    /// recipients change is being finished).
    pub fn check(&self, tag: &str, kind: &str, name: &str, bytes: &[u8], older: bool) -> Result<(), Refusal> {
        let (epoch, mac) = tag.strip_prefix('e').and_then(|t| t.split_once('.')).ok_or(Refusal::Malformed)?;
        let epoch: u32 = epoch.parse().map_err(|_| Refusal::Malformed)?;
        let given = unhex32(mac).ok_or(Refusal::Malformed)?;
        let keyed = self.keyed.get(epoch as usize).ok_or(Refusal::UnknownEpoch(epoch))?;
        let want = Self::hmac(keyed, &[kind.as_bytes(), name.as_bytes(), bytes]);
        use subtle::ConstantTimeEq;
        if !bool::from(want.ct_eq(&given)) {
            return Err(Refusal::Mismatch);
        }
        if epoch != self.epoch() && !older {
            return Err(Refusal::Retired { epoch, current: self.epoch() });
        }
        Ok(())
    }

    /// The key file: every epoch's key, encrypted to every recipient.
    pub fn seal(&self, recipients: &[age::x25519::Recipient]) -> Result<Vec<u8>, RegistryError> {
        let file = KeyFile {
            schema: KEY_FILE_SCHEMA,
            keys: self.keys.iter().map(|k| hex(k.as_ref())).collect(),
            change: self.change.clone(),
        };
        let json = Zeroizing::new(serde_json::to_vec(&file).expect("the key file serializes"));
        drop(file);
        encrypt_to(&json, recipients)
    }

    /// The keys in a key file, under `identity`.
    pub fn open(bytes: &[u8], identity: &age::x25519::Identity, path: &Path) -> Result<Self, RegistryError> {
        let json = decrypt_with(bytes, identity, path)?;
        let file: KeyFile = serde_json::from_slice(&json).map_err(|e| RegistryError::Corrupt {
            path: path.to_path_buf(),
            why: format!("it decrypts, but is not a chitty-secrets key file ({e})"),
        })?;
        if file.schema > KEY_FILE_SCHEMA {
            return Err(RegistryError::Newer { path: path.to_path_buf(), schema: file.schema });
        }
        let keys = file
            .keys
            .iter()
            .map(|k| unhex32(k).map(Zeroizing::new))
            .collect::<Option<Vec<_>>>()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| RegistryError::Corrupt {
                path: path.to_path_buf(),
                why: "it holds a malformed key".into(),
            })?;
        Ok(Self { change: file.change.clone(), ..Self::from_keys(keys) })
    }
}

/// `plain`, age-encrypted (armored) to every recipient.
pub fn encrypt_to(plain: &[u8], recipients: &[age::x25519::Recipient]) -> Result<Vec<u8>, RegistryError> {
    let crypto = |e: std::io::Error| RegistryError::Crypto(format!("cannot encrypt: {e}"));
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| RegistryError::Crypto(format!("cannot encrypt: {e}")))?;
    let mut out = Vec::new();
    let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(crypto)?;
    let mut writer = encryptor.wrap_output(armor).map_err(crypto)?;
    writer.write_all(plain).map_err(crypto)?;
    writer.finish().and_then(|armor| armor.finish()).map_err(crypto)?;
    Ok(out)
}

/// The plaintext of an age file, under `identity`: not a recipient, and a
/// damaged file, are errors of their own.
pub fn decrypt_with(
    bytes: &[u8],
    identity: &age::x25519::Identity,
    path: &Path,
) -> Result<Zeroizing<Vec<u8>>, RegistryError> {
    let damaged =
        |why: String| RegistryError::Corrupt { path: path.to_path_buf(), why: format!("damaged or truncated ({why})") };
    let decryptor = age::Decryptor::new(ArmoredReader::new(bytes)).map_err(|e| damaged(e.to_string()))?;
    let mut reader = decryptor.decrypt(std::iter::once(identity as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => RegistryError::Decrypt {
            path: path.to_path_buf(),
            why: "this identity is not one of its recipients".into(),
        },
        other => damaged(other.to_string()),
    })?;
    let mut plain = Zeroizing::new(Vec::new());
    reader.read_to_end(&mut plain).map_err(|e| damaged(e.to_string()))?;
    Ok(plain)
}

/// What this machine remembers of each registry it has opened as a
/// member: its id, and the latest epoch seen with that epoch's key id
/// (kept outside git, beside the identity file). A key file with another
/// id, an older epoch, or another key at the remembered epoch is refused:
/// someone replaced it, or a removed member forged one.
pub struct Pins {
    path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    pub id: String,
    pub epoch: u32,
    pub key: String,
}

/// How a key file compares with what this machine remembers.
#[derive(Debug, PartialEq, Eq)]
pub enum PinCheck {
    /// Seen before, same or a later epoch that descends from it.
    Known,
    /// Never seen here: remembered from now on.
    New,
    /// Not the registry this machine knew at this place.
    Replaced(String),
}

impl Pins {
    /// The pins file of this user (`registries.toml` beside the identity file).
    pub fn of_user() -> Self {
        Pins { path: crate::identity::config_file().with_file_name("registries.toml") }
    }

    /// Forgets what this machine knew of the registry at `dir` (a member
    /// really made a new one there); returns whether there was a pin.
    pub fn forget(&self, dir: &Path) -> bool {
        let place = Self::place(dir);
        let mut pins = self.read();
        let had = pins.remove(&place).is_some();
        if had && let Ok(text) = toml::to_string(&pins) {
            let _ = crate::fsutil::write_atomic(&self.path, text.as_bytes());
        }
        had
    }

    fn read(&self) -> BTreeMap<String, Pin> {
        std::fs::read_to_string(&self.path).ok().and_then(|t| toml::from_str(&t).ok()).unwrap_or_default()
    }

    /// What a pin is kept under: the project the registry belongs to (the
    /// git work tree holding it, else the folder holding it), not the
    /// registry folder itself — a registry moved or linked elsewhere in the
    /// same project (a project file naming another folder) is still this
    /// project's, and must be the same registry.
    pub(crate) fn place(dir: &Path) -> String {
        let real = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        let root = real
            .ancestors()
            .skip(1)
            .find(|a| a.join(".git").exists())
            .or_else(|| real.parent())
            .unwrap_or(&real)
            .to_path_buf();
        root.display().to_string()
    }

    /// Whether this machine knows a registry at `dir`'s project.
    pub fn knows(&self, dir: &Path) -> bool {
        self.read().contains_key(&Self::place(dir))
    }

    /// The pin CI gives (`CHITTY_SECRETS_REGISTRY_ID`), where set.
    pub fn env_pin() -> Option<String> {
        std::env::var(crate::env_vars::REGISTRY_ID).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    }

    /// Checks `keys` against what this machine remembers of the registry
    /// at `dir`, and against `CHITTY_SECRETS_REGISTRY_ID` where it is set
    /// (CI, whose machines remember nothing): a registry id, or a whole pin
    /// `ID.eEPOCH.KEYID` (`trust status` prints it) that a removed member's
    /// key file forged from an older epoch cannot match. Writes nothing:
    /// [`Pins::remember`] once the registry's files are checked too.
    pub fn check(&self, dir: &Path, keys: &RegistryKeys) -> PinCheck {
        let id = keys.registry_id();
        if let Ok(want) = std::env::var(crate::env_vars::REGISTRY_ID)
            && !want.trim().is_empty()
        {
            let want = want.trim();
            let given = match Pin::parse(want) {
                Some(pin) => pin,
                None if want == id => Pin { id: want.to_string(), epoch: 0, key: String::new() },
                None => {
                    return PinCheck::Replaced(format!(
                        "its key file makes registry id {id}, but ${} says {want}",
                        crate::env_vars::REGISTRY_ID
                    ));
                }
            };
            if let Some(why) = given.refuses(keys, &format!("${}", crate::env_vars::REGISTRY_ID)) {
                return PinCheck::Replaced(why);
            }
        }
        match self.read().get(&Self::place(dir)) {
            None => PinCheck::New,
            Some(pin) => pin.refuses(keys, "this machine").map_or(PinCheck::Known, PinCheck::Replaced),
        }
    }

    /// Remembers the registry at `dir` as `keys` make it (a new registry,
    /// or a later epoch). Best effort: a machine that cannot remember still
    /// checks every MAC.
    pub fn remember(&self, dir: &Path, keys: &RegistryKeys) {
        let place = Self::place(dir);
        let mut pins = self.read();
        let now = Pin::of(keys);
        if pins.get(&place) == Some(&now) {
            return;
        }
        pins.insert(place, now);
        if let Ok(text) = toml::to_string(&pins)
            && let Some(dir) = self.path.parent()
            && crate::fsutil::create_private_dir(dir).is_ok()
        {
            let _ = crate::fsutil::write_atomic(&self.path, text.as_bytes());
        }
    }
}

impl Pin {
    /// The pin of the registry `keys` make: its id, epoch and that epoch's key id.
    pub fn of(keys: &RegistryKeys) -> Self {
        Pin { id: keys.registry_id(), epoch: keys.epoch(), key: keys.key_id(keys.epoch()).unwrap_or_default() }
    }

    /// `ID.eEPOCH.KEYID`, as `trust status` prints it.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('.');
        let (id, epoch, key) = (parts.next()?, parts.next()?.strip_prefix('e')?.parse().ok()?, parts.next()?);
        parts.next().is_none().then(|| Pin { id: id.to_string(), epoch, key: key.to_string() })
    }

    /// Why a key file is not the registry this pin names, if it is not: another
    /// id, an older epoch, or another key at the pinned epoch (forged from an
    /// older one). An empty `key` pins the id alone.
    fn refuses(&self, keys: &RegistryKeys, who: &str) -> Option<String> {
        let id = keys.registry_id();
        if self.id != id {
            return Some(format!("its key file makes registry id {id}; {who} knows registry {} here", self.id));
        }
        if self.key.is_empty() {
            return None;
        }
        if self.epoch > keys.epoch() {
            return Some(format!(
                "its key file is at epoch {}, older than epoch {} {who} saw (a member's removal undone?)",
                keys.epoch(),
                self.epoch
            ));
        }
        (keys.key_id(self.epoch).as_deref() != Some(self.key.as_str())).then(|| {
            format!("its key of epoch {} is not the one {who} saw (a key file forged from an older one?)", self.epoch)
        })
    }
}

impl std::fmt::Display for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.e{}.{}", self.id, self.epoch, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_checks_only_for_its_own_bytes_kind_name_and_epoch() {
        let keys = RegistryKeys::generate();
        let tag = keys.tag("meta", "T", b"content");
        assert_eq!(keys.check(&tag, "meta", "T", b"content", false), Ok(()));
        assert_eq!(keys.check(&tag, "meta", "T", b"contenT", false), Err(Refusal::Mismatch));
        assert_eq!(keys.check(&tag, "meta", "U", b"content", false), Err(Refusal::Mismatch));
        assert_eq!(keys.check(&tag, "values", "T", b"content", false), Err(Refusal::Mismatch));
        assert_eq!(keys.check("nope", "meta", "T", b"content", false), Err(Refusal::Malformed));
        let other = RegistryKeys::generate();
        assert_eq!(other.check(&tag, "meta", "T", b"content", false), Err(Refusal::Mismatch));
        let next = keys.next_epoch();
        assert_eq!(next.registry_id(), keys.registry_id());
        assert_eq!(next.check(&tag, "meta", "T", b"content", false), Err(Refusal::Retired { epoch: 0, current: 1 }));
        assert_eq!(next.check(&tag, "meta", "T", b"content", true), Ok(()));
        assert_eq!(
            keys.check(&next.tag("meta", "T", b"content"), "meta", "T", b"content", false),
            Err(Refusal::UnknownEpoch(1))
        );
    }

    #[test]
    fn the_key_file_opens_for_a_recipient_only() {
        let keys = RegistryKeys::generate().next_epoch();
        let (alice, mallory) = (age::x25519::Identity::generate(), age::x25519::Identity::generate());
        let sealed = keys.seal(&[alice.to_public()]).unwrap();
        let back = RegistryKeys::open(&sealed, &alice, Path::new("key.age")).unwrap();
        assert_eq!((back.registry_id(), back.epoch()), (keys.registry_id(), 1));
        assert!(matches!(
            RegistryKeys::open(&sealed, &mallory, Path::new("key.age")),
            Err(RegistryError::Decrypt { .. })
        ));
        assert!(!format!("{keys:?}").contains(&hex(keys.keys[0].as_ref())));
    }

    #[test]
    fn a_pin_refuses_another_registry_and_a_forged_epoch() {
        let home = tempfile::tempdir().unwrap();
        let pins = Pins { path: home.path().join("registries.toml") };
        let dir = home.path();
        let keys = RegistryKeys::generate();
        assert_eq!(pins.check(dir, &keys), PinCheck::New);
        assert_eq!(pins.check(dir, &keys), PinCheck::New, "nothing is remembered by a check");
        pins.remember(dir, &keys);
        assert_eq!(pins.check(dir, &keys), PinCheck::Known);
        assert!(matches!(pins.check(dir, &RegistryKeys::generate()), PinCheck::Replaced(_)));
        let removed = keys.next_epoch();
        assert_eq!(pins.check(dir, &removed), PinCheck::Known);
        pins.remember(dir, &removed);
        assert_eq!(Pin::parse(&Pin::of(&removed).to_string()), Some(Pin::of(&removed)));
        // A removed member knows epoch 0 and forges an epoch 1 of their own.
        let forged = keys.next_epoch();
        assert!(matches!(pins.check(dir, &forged), PinCheck::Replaced(_)));
        assert!(matches!(pins.check(dir, &keys), PinCheck::Replaced(_)), "an older epoch");
    }
}
