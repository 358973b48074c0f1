//! Placeholder detection: values like `YOUR_TOKEN_HERE_REPLACE_ME` that sit
//! where a real token should be. This is the incident the tool exists for.

/// Values that are placeholders when they are the whole value (compared
/// case-insensitively).
const EXACT: &[&str] = &[
    "changeme",
    "change_me",
    "change-me",
    "replaceme",
    "replace_me",
    "replace-me",
    "todo",
    "tbd",
    "fixme",
    "placeholder",
    "dummy",
    "example",
    "secret",
    "token",
    "password",
    "null",
    "none",
    "undefined",
    "test",
];

/// Fragments that mark a placeholder anywhere in the value.
const FRAGMENTS: &[&str] =
    &["replace_me", "replace-me", "your_token", "your-token", "_here", "changeme", "placeholder"];

/// Why `value` looks like a placeholder, or `None` if it does not. `extra`
/// are the policy's own `[check] placeholders` (exact, case-insensitive).
pub fn placeholder_reason(value: &str, extra: &[String]) -> Option<&'static str> {
    let v = value.trim();
    if v.is_empty() {
        return Some("is empty");
    }
    let lower = v.to_ascii_lowercase();
    if extra.iter().any(|p| p.eq_ignore_ascii_case(v)) {
        return Some("is a placeholder listed in the policy's [check] placeholders");
    }
    if EXACT.contains(&lower.as_str()) {
        return Some("is a well-known placeholder word");
    }
    if FRAGMENTS.iter().any(|f| lower.contains(f)) {
        return Some("looks like a placeholder, not a token");
    }
    if v.len() >= 3
        && (v.chars().all(|c| c == 'x' || c == 'X') || v.chars().all(|c| c == '*') || v.chars().all(|c| c == '.'))
    {
        return Some("is a run of x, * or . (a masked or dummy value)");
    }
    if v.starts_with('<') && v.ends_with('>')
        || v.starts_with("${") && v.ends_with('}')
        || v.starts_with("{{") && v.ends_with("}}")
    {
        return Some("is a template slot like <token> or ${TOKEN}");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_incident_placeholder_and_friends() {
        for p in [
            "YOUR_TOKEN_HERE_REPLACE_ME",
            "REPLACE_ME",
            "changeme",
            "xxxxxxxx",
            "<token>",
            "${TOKEN}",
            "TODO",
            "",
            "  ",
        ] {
            assert!(placeholder_reason(p, &[]).is_some(), "{p:?} should be a placeholder");
        }
        assert!(placeholder_reason("sk-fake-123", &["SK-FAKE-123".into()]).is_some());
    }

    #[test]
    fn real_tokens_are_not_placeholders() {
        for v in [
            "mcp_auth_3f9a0c1d2e3f40516273849a5b6c7d8e",
            "ca_live_Zx81-_aQ",
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        ] {
            assert_eq!(placeholder_reason(v, &[]), None, "{v}");
        }
    }
}
