//! The one rule for every service URL: secrets travel over HTTPS, and plain
//! HTTP is allowed to loopback only (tests and local fakes). Used by the
//! policy loader (issuer URLs) and the HTTP client (every request's base).

/// The parsed URL, or why it is refused.
pub fn check_base(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => Err(format!("refusing `{url}`: secrets only travel over HTTPS (plain http is allowed to loopback only)")),
    }
}
