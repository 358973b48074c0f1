//! Whether a plain value committed in a configuration file (a workflow's
//! `env:`, a Worker's `vars`) looks like a secret. The value is judged
//! here and never leaves: what is said names the reason, not the value.

use crate::placeholder::placeholder_reason;

/// Why a committed value looks like a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Looks {
    /// A live value of this registry token.
    Known { token: String },
    /// The shape of a known kind of credential.
    Shaped(&'static str),
    /// A long random-looking string.
    Random,
    /// A name that says secret, with a value.
    Named,
    /// A name that says secret, with a placeholder for a value.
    Placeholder(&'static str),
}

impl Looks {
    /// What is said of the value (never the value itself).
    pub fn describe(&self) -> String {
        match self {
            Looks::Known { token } => format!("is a live value of {token} from the registry"),
            Looks::Shaped(what) => format!("looks like {what}"),
            Looks::Random => "looks like a token (long, random)".into(),
            Looks::Named => "is named like a secret and has a value".into(),
            Looks::Placeholder(why) => format!("is named like a secret and {why}"),
        }
    }

    /// Whether the value is (likely) a real secret, not a placeholder.
    pub fn is_secret(&self) -> bool {
        !matches!(self, Looks::Placeholder(_))
    }
}

/// Well-known prefixes of credentials, and what each is.
const PREFIXES: &[(&str, &str)] = &[
    ("github_pat_", "a GitHub token"),
    ("ghp_", "a GitHub token"),
    ("gho_", "a GitHub token"),
    ("ghu_", "a GitHub token"),
    ("ghs_", "a GitHub token"),
    ("ghr_", "a GitHub token"),
    ("glpat-", "a GitLab token"),
    ("xoxb-", "a Slack token"),
    ("xoxp-", "a Slack token"),
    ("sk_live_", "a Stripe key"),
    ("rk_live_", "a Stripe key"),
    ("sk-", "an API key"),
    ("AKIA", "an AWS access key"),
    ("mcp_auth_", "a ChittyID token"),
    ("-----BEGIN", "a private key"),
];

/// Why `value`, committed under `name`, looks like a secret; `None` when
/// it does not. `extra` are the policy's own placeholders.
pub fn judge(name: &str, value: &str, extra: &[String]) -> Option<Looks> {
    let v = value.trim();
    if v.is_empty() || v.contains("${{") {
        return None;
    }
    let named = named_like_secret(name);
    if let Some(why) = placeholder_reason(v, extra) {
        return named.then_some(Looks::Placeholder(why));
    }
    if let Some((_, what)) = PREFIXES.iter().find(|(p, _)| v.starts_with(p) && v.len() >= p.len() + 8) {
        return Some(Looks::Shaped(what));
    }
    if v.starts_with("eyJ") && v.matches('.').count() == 2 && v.len() >= 32 {
        return Some(Looks::Shaped("a JSON Web Token"));
    }
    if url_with_password(v) {
        return Some(Looks::Shaped("a URL with a password in it"));
    }
    // A public key is long and random, and meant to be seen.
    if name.to_ascii_uppercase().contains("PUBLIC") {
        return None;
    }
    if random_looking(v) {
        return Some(Looks::Random);
    }
    if named && !matches!(v.to_ascii_lowercase().as_str(), "true" | "false") && !v.chars().all(|c| c.is_ascii_digit()) {
        return Some(Looks::Named);
    }
    None
}

/// `…TOKEN`, `…KEY`, `…SECRET`, `…PASSWORD`, but not a public key.
pub fn named_like_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["TOKEN", "KEY", "SECRET", "PASSWORD"].iter().any(|s| upper.ends_with(s)) && !upper.contains("PUBLIC")
}

/// `scheme://user:password@host…`.
fn url_with_password(v: &str) -> bool {
    let Some((_, rest)) = v.split_once("://") else { return false };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.split_once('@').is_some_and(|(userinfo, _)| userinfo.split_once(':').is_some_and(|(_, p)| !p.is_empty()))
}

/// Long, one word, of a token's alphabet, with letters and digits and the
/// spread of a random string: not hex (ids, hashes) and not a UUID.
fn random_looking(v: &str) -> bool {
    if v.len() < 24 || !v.chars().all(|c| c.is_ascii_alphanumeric() || "+/=_-.~".contains(c)) {
        return false;
    }
    let hex = v.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let digits = v.chars().any(|c| c.is_ascii_digit());
    let letters = v.chars().any(|c| c.is_ascii_alphabetic());
    !hex && digits && letters && entropy(v) >= 4.0
}

/// Shannon entropy in bits per character.
fn entropy(v: &str) -> f64 {
    let mut counts = [0usize; 128];
    for b in v.bytes() {
        counts[usize::from(b & 0x7f)] += 1;
    }
    let n = v.len() as f64;
    counts.iter().filter(|&&c| c > 0).map(|&c| c as f64 / n).map(|p| -p * p.log2()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keys_and_named_secrets_look_like_secrets() {
        let cases = [
            ("X", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", Some("a GitHub token")),
            ("X", "mcp_auth_0123456789abcdef0123456789abcdef", Some("a ChittyID token")),
            ("DATABASE_URL", "postgres://app:hunter2@db.internal/app", Some("a URL with a password in it")),
        ];
        for (name, value, what) in cases {
            assert_eq!(judge(name, value, &[]), what.map(Looks::Shaped), "{name}");
        }
        assert_eq!(judge("X", "Zx81-_aQm3Pq7Rt9Uv2Wy4Ab6Cd8Ef0Gh", &[]), Some(Looks::Random));
        assert_eq!(judge("STRIPE_SECRET", "notreallyrandom", &[]), Some(Looks::Named));
        assert_eq!(judge("API_TOKEN", "YOUR_TOKEN_HERE_REPLACE_ME", &[]).map(|l| l.is_secret()), Some(false));
    }

    #[test]
    fn ordinary_settings_do_not() {
        for (name, value) in [
            ("ACCOUNT_ID", "ede6590ac0d2fb7daf155b35653457b2"),
            ("REQUEST_ID", "3f0c1e2d-4b5a-6978-8a9b-0c1d2e3f4a5b"),
            ("NODE_VERSION", "20"),
            ("API_URL", "https://api.example.com/v1/things"),
            (
                "VAPID_PUBLIC_KEY",
                "BEl62iUYgUivxIkv69yViEuiBIa-Ib9-SkvMeAtA3LFgDzkrxZJjSgSnfckjBJuBkr3qBUYIHBQFLXYp5Nksh8U",
            ),
            ("CACHE_KEY", "${{ runner.os }}-cargo"),
            ("FEATURE_KEY", "true"),
            ("MESSAGE", "hello world"),
            ("API_KEY", ""),
            ("NOTE", "REPLACE_ME"),
        ] {
            assert_eq!(judge(name, value, &[]), None, "{name}");
        }
    }
}
