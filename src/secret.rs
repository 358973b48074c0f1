//! The secret value type: every token value in the program is a [`Secret`].
//!
//! `Debug` prints `Secret(****)`, there is no `Display`, and the bytes are
//! zeroized on drop. The only way to the value is [`Secret::expose`], which is
//! called where a value must leave the program: the age encryption, the .env
//! write, the environment of `run`, and `get`'s stdout.
//!
//! Values that pass through JSON (service answers, request bodies) are held
//! in [`SensitiveJson`] and serialized with [`json_body`], both zeroized.

use secrecy::{ExposeSecret, SecretString};
use zeroize::{Zeroize, Zeroizing};

pub struct Secret(SecretString);

impl Secret {
    /// Takes the value; the string it came in is zeroized, so no copy is
    /// left behind (a `String` with spare capacity would otherwise be
    /// reallocated into the secret and its old buffer freed as it was).
    pub fn new(value: impl Into<String>) -> Self {
        let mut given: String = value.into();
        let exact: Box<str> = Box::from(given.as_str());
        given.zeroize();
        remember(&exact);
        Secret(SecretString::from(exact))
    }

    /// The value itself. Call only where the value must leave the program.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }

    /// Constant-time comparison, so comparing a .env value with the registry
    /// does not leak how many leading bytes matched.
    pub fn same_as(&self, other: &Secret) -> bool {
        use subtle::ConstantTimeEq;
        self.expose().as_bytes().ct_eq(other.expose().as_bytes()).into()
    }
}

impl Clone for Secret {
    fn clone(&self) -> Self {
        Secret::new(self.expose().to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// A value read from JSON (a value file, a command's output) goes straight
/// into a `Secret`. There is deliberately no `Serialize`: a `Secret` never
/// lands in a report by accident.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

/// A JSON request body that may hold a value, serialized into a buffer of
/// exactly its size (measured first, so no copy is left behind by a
/// reallocation) and zeroized when dropped.
pub fn json_body(body: &impl serde::Serialize) -> Zeroizing<Vec<u8>> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut size = Count(0);
    serde_json::to_writer(&mut size, body).expect("a body of strings always serializes");
    let mut out = Zeroizing::new(Vec::with_capacity(size.0));
    serde_json::to_writer(&mut *out, body).expect("a body of strings always serializes");
    out
}

/// A JSON document that may hold a value (an issuer's answer): every string
/// in it is zeroized when it is dropped.
#[derive(Default)]
pub struct SensitiveJson(serde_json::Value);

impl SensitiveJson {
    /// Parses `bytes` (zeroized by the caller); serde_json's errors name a
    /// position, never the text around it.
    pub fn parse(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes).map(SensitiveJson)
    }
}

impl std::ops::Deref for SensitiveJson {
    type Target = serde_json::Value;
    fn deref(&self) -> &serde_json::Value {
        &self.0
    }
}

impl Drop for SensitiveJson {
    fn drop(&mut self) {
        fn wipe(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::String(s) => s.zeroize(),
                serde_json::Value::Array(items) => items.iter_mut().for_each(wipe),
                serde_json::Value::Object(map) => map.values_mut().for_each(wipe),
                _ => {}
            }
        }
        wipe(&mut self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("canary-7f3a");
        assert_eq!(format!("{s:?}"), "Secret(****)");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(****))");
    }

    #[test]
    fn compares_by_value() {
        assert!(Secret::new("abc").same_as(&Secret::new("abc")));
        assert!(!Secret::new("abc").same_as(&Secret::new("abd")));
        assert!(!Secret::new("abc").same_as(&Secret::new("abcd")));
    }

    #[test]
    fn reads_from_json_and_answers_by_key() {
        let s: Secret = serde_json::from_str(r#""v\"x""#).unwrap();
        assert_eq!(s.expose(), r#"v"x"#);
        let answer = SensitiveJson::parse(br#"{"token":"t-1","valid":true,"n":[{"a":"b"}]}"#).unwrap();
        assert_eq!(answer["token"].as_str(), Some("t-1"));
        assert_eq!(answer["valid"], serde_json::Value::Bool(true));
        assert!(answer["missing"].is_null());
        assert_eq!(&json_body(&serde_json::json!({"k": "v"}))[..], br#"{"k":"v"}"#);
    }
}

/// What a service says is shown to a person: it must never carry a value or
/// a credential this run holds (a 400 that echoes the request body, a 500
/// that echoes the `Authorization` header). Every [`Secret`] is remembered
/// here by a keyed fingerprint of its text (never the text itself, so no
/// copy outlives its `Secret`), and [`scrub`] replaces any stretch of a
/// service's text whose fingerprint is one of them.
struct Seen {
    hasher: std::hash::RandomState,
    by_length: std::collections::HashMap<usize, std::collections::HashSet<u64>>,
}

/// Shorter strings are not secrets worth hiding (and would hide words).
const SHORTEST_REMEMBERED: usize = 8;
/// A service's text is cut to this many bytes before it is shown.
const LONGEST_SHOWN: usize = 2000;

fn seen() -> &'static std::sync::Mutex<Seen> {
    static SEEN: std::sync::OnceLock<std::sync::Mutex<Seen>> = std::sync::OnceLock::new();
    SEEN.get_or_init(|| {
        std::sync::Mutex::new(Seen { hasher: std::hash::RandomState::new(), by_length: Default::default() })
    })
}

/// Remembers `text` (a value, a credential, an `Authorization` header's
/// encoding) as something no service's text may show.
pub fn remember(text: &str) {
    if text.len() < SHORTEST_REMEMBERED {
        return;
    }
    let mut seen = seen().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let print = std::hash::BuildHasher::hash_one(&seen.hasher, text.as_bytes());
    seen.by_length.entry(text.len()).or_default().insert(print);
}

/// A service's text as it may be shown: cut to a bounded length, with every
/// stretch that is a remembered value or credential replaced by `[redacted]`.
pub fn scrub(text: &str) -> String {
    let mut end = text.len().min(LONGEST_SHOWN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let (text, cut) = (&text[..end], end < text.len());
    let seen = seen().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    // Every remembered stretch, as byte ranges; longest lengths first.
    let mut hidden: Vec<(usize, usize)> = Vec::new();
    let mut lengths: Vec<&usize> = seen.by_length.keys().collect();
    lengths.sort_unstable_by(|a, b| b.cmp(a));
    for &len in lengths {
        let prints = &seen.by_length[&len];
        let mut start = 0;
        while start + len <= text.len() {
            if text.is_char_boundary(start)
                && text.is_char_boundary(start + len)
                && !hidden.iter().any(|&(a, b)| start < b && a < start + len)
                && prints
                    .contains(&std::hash::BuildHasher::hash_one(&seen.hasher, &text.as_bytes()[start..start + len]))
            {
                hidden.push((start, start + len));
                start += len;
            } else {
                start += 1;
            }
        }
    }
    drop(seen);
    hidden.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (a, b) in hidden {
        out.push_str(&text[at..a]);
        out.push_str("[redacted]");
        at = b;
    }
    out.push_str(&text[at..]);
    if cut {
        out.push_str("… (cut)");
    }
    out
}

#[cfg(test)]
mod scrub_tests {
    use super::*;

    #[test]
    fn a_service_that_echoes_a_value_or_a_credential_shows_neither() {
        let value = Secret::new("mcp_auth_0123456789abcdef0123456789abcdef");
        remember("YWRtaW46aHVudGVyMg==");
        let echoed = format!(
            "400: invalid body {{\"value\":\"{}\"}} with Authorization: Basic YWRtaW46aHVudGVyMg==",
            value.expose()
        );
        let shown = scrub(&echoed);
        assert!(!shown.contains(value.expose()) && !shown.contains("YWRtaW46aHVudGVyMg=="), "{shown}");
        assert_eq!(shown, "400: invalid body {\"value\":\"[redacted]\"} with Authorization: Basic [redacted]");
        assert_eq!(scrub("nothing secret here"), "nothing secret here");
        let long = "é".repeat(3000);
        assert!(scrub(&long).ends_with("… (cut)") && scrub(&long).len() < 2100);
    }
}
