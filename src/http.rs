//! One HTTP client for every remote target: rustls with the system's CA
//! store (and `SSL_CERT_FILE`), connection reuse, timeouts, bounded retries
//! with exponential backoff and jitter for 5xx, 429, rate-limited 403s and
//! dropped connections, honouring `Retry-After` and `x-ratelimit-*`. HTTPS
//! only, except to loopback. Request bodies are never part of an error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Insecure(String),
    #[error("{method} {url}: {error}")]
    Transport { method: Method, url: String, error: String },
    /// No connection was made (DNS, refused, unreachable): the request was
    /// never sent, so it had no effect.
    #[error("{method} {url}: {error}")]
    Unreached { method: Method, url: String, error: String },
    #[error("{method} {url}: rate limited; run again after {wait}s")]
    RateLimited { method: Method, url: String, wait: u64 },
}

#[derive(Debug, Clone)]
pub struct RetryConfig {
    pub max_attempts: u32,
    pub base: Duration,
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is not waited out: the run stops,
    /// resumable, and says when to come back.
    pub max_wait: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 6,
            base: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_wait: Duration::from_secs(90),
        }
    }
}

/// Counters for the run summary ("took N retries").
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    /// Answers that said "rate limited" (429, or 403 with rate-limit headers).
    pub rate_limited: AtomicU64,
}

#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    retry: RetryConfig,
    /// Whether "rate limited" answers are waited out and retried. Not for
    /// the ID service: its quota answer must stop the run, not loop.
    retry_rate_limited: bool,
    pub stats: Arc<Stats>,
}

impl Http {
    pub fn new() -> Result<Self, HttpError> {
        // Once a process; an error only says one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("chitty-secrets/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| HttpError::Insecure(format!("cannot build the HTTP client: {e}")))?;
        let mut retry = RetryConfig::default();
        // Tests and benchmarks shrink the backoff; never the attempt count.
        if let Some(ms) = std::env::var("CHITTY_SECRETS_RETRY_BASE_MS").ok().and_then(|v| v.parse().ok()) {
            retry.base = Duration::from_millis(ms);
        }
        Ok(Http { client, retry, retry_rate_limited: true, stats: Arc::new(Stats::default()) })
    }

    /// The same client (and connection pool) with counters of its own, so
    /// one service's "slow down" does not pace another's writes.
    pub fn with_own_stats(&self) -> Self {
        Http { stats: Arc::new(Stats::default()), ..self.clone() }
    }

    /// The same client, handing 429 and other rate-limit answers straight
    /// back instead of waiting and retrying.
    pub fn without_rate_limit_retries(mut self) -> Self {
        self.retry_rate_limited = false;
        self
    }

    /// Refuses plain HTTP except to loopback (tests, local fakes).
    pub fn check_base(url: &str) -> Result<reqwest::Url, HttpError> {
        crate::endpoint::check_base(url).map_err(HttpError::Insecure)
    }

    /// The spacing between writes once a service has said "slow down":
    /// GitHub asks for about a second (scaled with the retry base in tests).
    pub fn spacing(&self) -> Duration {
        self.retry.base.saturating_mul(5)
    }

    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.client.request(method, url)
    }

    /// Sends with retries. `build` makes a fresh request for each attempt.
    /// Returns the final response whatever its status (the caller reads the
    /// service's own error), or a transport/rate-limit error.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, HttpError> {
        self.send_as(true, method, url, build).await
    }

    /// Sends a request that must not be repeated once it may have reached
    /// the server (a mint): retried only when the connection was never made.
    /// 5xx and 429 come back to the caller as they are.
    pub async fn send_once(
        &self,
        method: Method,
        url: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, HttpError> {
        self.send_as(false, method, url, build).await
    }

    async fn send_as(
        &self,
        repeatable: bool,
        method: Method,
        url: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, HttpError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let last = attempt >= self.retry.max_attempts;
            let request = match build().build() {
                Ok(request) => request,
                Err(error) => {
                    return Err(HttpError::Transport { method, url: url.to_string(), error: describe(&error) });
                }
            };
            let sent = request.body().and_then(|b| b.as_bytes()).map_or(0, <[u8]>::len);
            let started = std::time::Instant::now();
            let result = self.client.execute(request).await;
            log_answer(&method, url, attempt, sent, started.elapsed(), &result);
            let wait = match result {
                Ok(response) if !repeatable => return Ok(response),
                Ok(response) => match self.retry_wait(&response, attempt) {
                    Some(_) if last => return Ok(response),
                    Some(Wait::After(wait)) => wait,
                    Some(Wait::TooLong(secs)) => {
                        return Err(HttpError::RateLimited { method, url: url.to_string(), wait: secs });
                    }
                    None => return Ok(response),
                },
                // A request that may have been sent is repeated only when
                // repeatable. A connection never made (DNS, refused) is tried
                // a few times only: offline, waiting out six backoffs per
                // target helps nobody.
                Err(error)
                    if last
                        || (error.is_connect() && attempt >= CONNECT_ATTEMPTS)
                        || !(error.is_connect() || (repeatable && (error.is_timeout() || error.is_request()))) =>
                {
                    let (url, error_text) = (url.to_string(), describe(&error));
                    return Err(if error.is_connect() {
                        HttpError::Unreached { method, url, error: error_text }
                    } else {
                        HttpError::Transport { method, url, error: error_text }
                    });
                }
                Err(_) => self.backoff(attempt),
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!("{method} {}: trying again in {} ms", crate::log::shown_url(url), wait.as_millis());
            tokio::time::sleep(wait).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.retry.base.saturating_mul(1 << attempt.min(16));
        let capped = exp.min(self.retry.max_backoff);
        // Full jitter: anywhere from half to all of the backoff.
        let mut byte = [0u8; 1];
        let _ = getrandom::getrandom(&mut byte);
        capped / 2 + capped.mul_f64(f64::from(byte[0]) / 510.0)
    }

    fn retry_wait(&self, response: &Response, attempt: u32) -> Option<Wait> {
        let status = response.status();
        let headers = response.headers();
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let retry_after = header("retry-after").and_then(|v| v.parse::<u64>().ok());
        let exhausted = header("x-ratelimit-remaining") == Some("0");
        let rate_limited = status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN && (retry_after.is_some() || exhausted));
        if rate_limited {
            self.stats.rate_limited.fetch_add(1, Ordering::Relaxed);
            if !self.retry_rate_limited {
                return None;
            }
            let secs = match (retry_after, header("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok())) {
                (Some(secs), _) => secs,
                (None, Some(reset)) if exhausted => (reset - chrono::Utc::now().timestamp()).max(1) as u64,
                // GitHub: a secondary limit without headers means wait at least a minute.
                _ if status == StatusCode::FORBIDDEN => 60,
                _ => self.backoff(attempt).as_secs().max(1),
            };
            let wait = Duration::from_secs(secs);
            return Some(if wait > self.retry.max_wait { Wait::TooLong(secs) } else { Wait::After(wait) });
        }
        if status.is_server_error() {
            return Some(Wait::After(self.backoff(attempt)));
        }
        None
    }
}

/// One line of the debug log per answer (or failure): what was asked, how
/// it went, how long it took, and what the service says of its budget.
/// Headers that carry credentials are never read here.
fn log_answer(
    method: &Method,
    url: &str,
    attempt: u32,
    sent: usize,
    took: Duration,
    result: &Result<Response, reqwest::Error>,
) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let url = crate::log::shown_url(url);
    let ms = took.as_millis();
    match result {
        Ok(response) => {
            let headers = response.headers();
            let budget: Vec<String> = [
                "x-ratelimit-remaining",
                "x-ratelimit-limit",
                "x-ratelimit-reset",
                "x-ratelimit-resource",
                "retry-after",
            ]
            .iter()
            .filter_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()).map(|v| format!("{h}: {v}")))
            .collect();
            let answer = response.content_length().map_or_else(|| "?".to_string(), |n| n.to_string());
            tracing::debug!(
                "{method} {url} → {} in {ms} ms (attempt {attempt}, sent {sent} B, answer {answer} B){}",
                response.status(),
                if budget.is_empty() { String::new() } else { format!(" [{}]", budget.join(", ")) }
            );
        }
        Err(e) => tracing::debug!("{method} {url} → no answer after {ms} ms (attempt {attempt}): {}", describe(e)),
    }
}

/// The largest answer read from a service's API (JSON): a page of a listing
/// is kilobytes; anything near this is not an answer we asked for.
pub const API_ANSWER_MAX: usize = 8 << 20;
/// The largest answer read from an issuer (a token and its metadata).
pub const ISSUER_ANSWER_MAX: usize = 1 << 20;
/// The largest Worker code read back to build a version on (Cloudflare's
/// own limit for a Worker is 10 MB compressed).
pub const WORKER_CODE_MAX: usize = 64 << 20;

/// The body of `response`, read as it arrives and refused once it passes
/// `limit` bytes (a service answering 100 MB is not kept in memory): the
/// error says how far it got.
pub async fn body(mut response: Response, limit: usize) -> Result<Vec<u8>, String> {
    if let Some(len) = response.content_length()
        && len > limit as u64
    {
        return Err(format!("the answer is {len} bytes, more than the {limit} read from this service"));
    }
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
        if out.len() + chunk.len() > limit {
            return Err(format!(
                "the answer passed {limit} bytes, more than is read from this service; it was not read"
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A JSON answer of at most [`API_ANSWER_MAX`] bytes.
pub async fn json<T: serde::de::DeserializeOwned>(response: Response) -> Result<T, String> {
    let bytes = body(response, API_ANSWER_MAX).await?;
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

/// How many times a connection that cannot be made is tried.
const CONNECT_ATTEMPTS: u32 = 3;

enum Wait {
    After(Duration),
    TooLong(u64),
}

/// reqwest's error, with its chain, minus anything but the URL it already names.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback() {
        assert!(Http::check_base("https://api.github.com").is_ok());
        assert!(Http::check_base("http://127.0.0.1:8080/api").is_ok());
        assert!(Http::check_base("http://localhost:1").is_ok());
        assert!(Http::check_base("http://[::1]:1").is_ok());
        let err = Http::check_base("http://api.example.com").unwrap_err().to_string();
        assert!(err.contains("only travel over HTTPS"), "{err}");
    }
}
