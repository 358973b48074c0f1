//! The secret value type: every token value in the program is a [`Secret`].
//!
//! `Debug` prints `Secret(****)`, there is no `Display`, and the bytes are
//! zeroized on drop. The only way to the value is [`Secret::expose`], which is
//! called where a value must leave the program: the age encryption, the .env
//! write, the environment of `run`, and `get`'s stdout.

use secrecy::{ExposeSecret, SecretString};

pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(SecretString::from(value.into()))
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
}
