//! The one rule for every service URL: secrets travel over HTTPS, and plain
//! HTTP is allowed to loopback only (tests and local fakes). Used by the
//! policy loader (issuer URLs) and the HTTP client (every request's base).

/// The parsed URL, or why it is refused.
pub fn check_base(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{}` is not a URL: {e}", without_userinfo(url)))?;
    // A URL is printed in messages and policies are committed: credentials
    // come from the environment or the registry, never inside a URL.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        let mut shown = parsed.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        return Err(format!(
            "refusing `{shown}` with a user name or password in it: a URL is printed and committed; give the credential with admin_password_from = \"env:NAME\" (or the issuer's bearer_from)"
        ));
    }
    let host = parsed.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err(format!("refusing `{url}`: secrets only travel over HTTPS (plain http is allowed to loopback only)")),
    }
}

/// `url` with anything between `//` and `@` replaced, for a message about
/// a URL that does not parse.
fn without_userinfo(url: &str) -> String {
    match (url.find("//"), url.rfind('@')) {
        (Some(a), Some(b)) if a + 2 < b => format!("{}****{}", &url[..a + 2], &url[b..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_with_credentials_is_refused_without_printing_them() {
        let err = super::check_base("https://admin:hunter2@id.example.com/api").unwrap_err();
        assert!(err.contains("user name or password") && !err.contains("hunter2") && !err.contains("admin:"), "{err}");
        assert!(super::check_base("https://id.example.com/api").is_ok());
        assert!(!super::check_base("https://admin:hunter2@[::1").unwrap_err().contains("hunter2"));
    }
}
