//! Fake GitHub and Cloudflare servers, in-process on loopback, that follow
//! the APIs' semantics (see shared/APIS.md), not canned replies: the fake
//! GitHub holds real Curve25519 key pairs and opens what it is sent; the
//! fake Cloudflare keeps secrets per script and speaks the envelope and the
//! bulk endpoint. Both inject latency, 5xx, 429 + Retry-After and dropped
//! connections, and count requests per route and the most in flight.

// Each test uses a part of the fakes; handlers short-circuit with a whole
// `Response` as their error, as axum handlers do.
#![allow(dead_code, clippy::result_large_err)]

pub mod chitty;
pub mod cloudflare;
pub mod github;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    pub latency: Duration,
    /// Up to this much more latency, a different amount for each request:
    /// answers overtake one another.
    pub jitter: Duration,
    /// Percent of requests answered 500/502/503 or 429 (with Retry-After: 0).
    pub fail_percent: u32,
    /// Percent of requests whose connection is dropped without an answer.
    pub drop_percent: u32,
    /// A hostile service: every write is answered 400 (500 on the ID
    /// service's routes would be the same) with a message that echoes the
    /// request's body and its `Authorization` header, in both envelopes.
    pub echo: bool,
    /// A broken service: every request is answered 200 with 100 MB of JSON
    /// whitespace, streamed (no length announced).
    pub huge: bool,
}

/// One request as a fake received it, for checks against the services'
/// published descriptions (tests/published/).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The router's `MatchedPath` (the fake's own route), or the path.
    pub route: String,
    /// The path as sent (still percent-encoded).
    pub path: String,
    pub query: Option<String>,
    pub content_type: Option<String>,
    /// At most `RECORDED_BODY_MAX` bytes of the body.
    pub body: Vec<u8>,
    pub body_truncated: bool,
}

/// How much of each request's body is kept for the checks.
pub const RECORDED_BODY_MAX: usize = 1 << 20;
/// How many requests are kept (the first ones); the rest are only counted.
pub const RECORDED_MAX: usize = 10_000;

/// Fault injection and counters, shared by both fakes.
#[derive(Default)]
pub struct Control {
    faults: Mutex<Faults>,
    counts: Mutex<BTreeMap<String, u64>>,
    recorded: Mutex<Vec<Recorded>>,
    unrecorded: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    faults_injected: AtomicUsize,
    rng: Mutex<u64>,
}

impl Control {
    pub fn set_faults(&self, faults: Faults) {
        *self.faults.lock().unwrap() = faults;
    }

    /// Requests per `METHOD /route/{param}` since the last reset.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts.lock().unwrap().clone()
    }

    pub fn total(&self) -> u64 {
        self.counts.lock().unwrap().values().sum()
    }

    /// PUT, PATCH, POST and DELETE requests.
    pub fn writes(&self) -> u64 {
        self.counts.lock().unwrap().iter().filter(|(route, _)| !route.starts_with("GET ")).map(|(_, n)| n).sum()
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    pub fn faults_injected(&self) -> usize {
        self.faults_injected.load(Ordering::SeqCst)
    }

    pub fn reset_counts(&self) {
        self.counts.lock().unwrap().clear();
        self.max_in_flight.store(0, Ordering::SeqCst);
        self.faults_injected.store(0, Ordering::SeqCst);
    }

    /// Every request received (up to `RECORDED_MAX`) since the last clear.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.recorded.lock().unwrap().clone()
    }

    /// Requests received past `RECORDED_MAX`, not kept.
    pub fn unrecorded(&self) -> usize {
        self.unrecorded.load(Ordering::SeqCst)
    }

    pub fn clear_recorded(&self) {
        self.recorded.lock().unwrap().clear();
        self.unrecorded.store(0, Ordering::SeqCst);
    }

    fn roll(&self) -> u32 {
        // xorshift: deterministic per run, no extra crate.
        let mut s = self.rng.lock().unwrap();
        if *s == 0 {
            *s = 0x9E37_79B9_7F4A_7C15;
        }
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        (*s % 100) as u32
    }
}

struct InFlight<'a>(&'a Control);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts, delays and maybe fails every request before its handler.
pub async fn faults_layer(State(control): State<std::sync::Arc<Control>>, request: Request, next: Next) -> Response {
    // The latency counts from the request's arrival.
    let arrived = std::time::Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| request.uri().path().to_string(), |m| m.as_str().to_string());
    let method: Method = request.method().clone();
    *control.counts.lock().unwrap().entry(format!("{method} {route}")).or_default() += 1;
    let request = record(&control, route, request).await;
    let now = control.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    control.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(&control);
    let faults = *control.faults.lock().unwrap();
    let jitter = match faults.jitter.is_zero() {
        true => Duration::ZERO,
        false => faults.jitter.mul_f64(f64::from(control.roll()) / 100.0),
    };
    if !(faults.latency + jitter).is_zero() {
        // To the microsecond: tokio's timer counts whole milliseconds and
        // rounds every wait up (a 20 ms latency answered after 20-21 ms).
        let deadline = arrived + faults.latency + jitter;
        let _ = tokio::task::spawn_blocking(move || {
            std::thread::sleep(deadline.saturating_duration_since(std::time::Instant::now()))
        })
        .await;
    }
    if faults.huge {
        control.faults_injected.fetch_add(1, Ordering::SeqCst);
        let chunk = bytes_of_spaces();
        let stream = futures_util::stream::iter((0..100).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
        return (StatusCode::OK, [("content-type", "application/json")], axum::body::Body::from_stream(stream))
            .into_response();
    }
    if faults.echo && method != Method::GET {
        control.faults_injected.fetch_add(1, Ordering::SeqCst);
        let auth = request.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body = axum::body::to_bytes(request.into_body(), 1 << 20).await.unwrap_or_default();
        let echoed = format!("invalid request: Authorization: {auth}; body: {}", String::from_utf8_lossy(&body));
        let envelope = serde_json::json!({
            "message": echoed,
            "success": false,
            "errors": [{"code": 10001, "message": echoed}],
            "messages": [],
            "result": null,
        });
        return (StatusCode::BAD_REQUEST, axum::Json(envelope)).into_response();
    }
    let roll = control.roll();
    if roll < faults.drop_percent {
        control.faults_injected.fetch_add(1, Ordering::SeqCst);
        // Dropping the connection: the server aborts this connection's task.
        panic!("fake: dropping the connection on purpose");
    }
    if roll < faults.drop_percent + faults.fail_percent {
        control.faults_injected.fetch_add(1, Ordering::SeqCst);
        return match roll % 4 {
            0 => (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], "slow down").into_response(),
            1 => (StatusCode::BAD_GATEWAY, "bad gateway").into_response(),
            2 => (StatusCode::SERVICE_UNAVAILABLE, "unavailable").into_response(),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response(),
        };
    }
    next.run(request).await
}

/// Keeps a copy of the request (its body read whole, then handed on
/// unchanged) in `control`.
async fn record(control: &Control, route: String, request: Request) -> Request {
    let (parts, body) = request.into_parts();
    // A body that cannot be read whole is handed on empty, as its handler
    // would have failed to read it too.
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let mut recorded = control.recorded.lock().unwrap();
    if recorded.len() < RECORDED_MAX {
        recorded.push(Recorded {
            method: parts.method.to_string(),
            route,
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_string),
            content_type: parts.headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string),
            body: bytes[..bytes.len().min(RECORDED_BODY_MAX)].to_vec(),
            body_truncated: bytes.len() > RECORDED_BODY_MAX,
        });
    } else {
        control.unrecorded.fetch_add(1, Ordering::SeqCst);
    }
    drop(recorded);
    Request::from_parts(parts, axum::body::Body::from(bytes))
}

/// Serves `router` on a loopback port, on a thread of its own, for the rest
/// of the test process.
pub fn serve(router: axum::Router) -> SocketAddr {
    // TCP_NODELAY, as HTTP servers set it: with Nagle on, an answer can
    // wait for the client's delayed ACK of the one before (up to 40 ms).
    let addr = on_own_runtime(|listener| async move {
        use axum::serve::ListenerExt;
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, router).await.unwrap()
    });
    // Keep the fakes' deliberate panics out of the test output.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !info.to_string().contains("fake: dropping the connection") {
            default_hook(info);
        }
    }));
    addr
}

/// Binds a loopback port and runs `serve` on it, on a runtime and thread of
/// its own, for the rest of the test process; returns the address.
fn on_own_runtime<F, Fut>(serve: F) -> SocketAddr
where
    F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            serve(listener).await;
        });
    });
    rx.recv().unwrap()
}

/// HTTPS in front of a fake: a TLS listener on its own loopback port that
/// forwards each connection's bytes to the plain-HTTP fake at `plain`,
/// with a fresh certificate for 127.0.0.1 and localhost signed by a fresh
/// CA. Returns the HTTPS address and the CA's certificate (PEM), for
/// clients to trust (`SSL_CERT_FILE`, `NODE_EXTRA_CA_CERTS`).
pub fn serve_tls(plain: SocketAddr) -> (SocketAddr, String) {
    use std::sync::Arc;
    // A CA of its own (node's OpenSSL trusts a CA, not a self-signed leaf;
    // rustls refuses a CA as the server's certificate), named after the
    // fake: OpenSSL picks an issuer by name among every CA it trusts.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("chitty-secrets fake on port {}", plain.port()));
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let pem = ca_cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let addr = on_own_runtime(move |listener| async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // No Nagle on either leg (see `serve`): a TLS 1.3 server's
                // session tickets, then its answer, would otherwise wait
                // for the client's delayed ACK.
                let _ = tcp.set_nodelay(true);
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut upstream) = tokio::net::TcpStream::connect(plain).await else { return };
                let _ = upstream.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    (addr, pem)
}

/// One megabyte of spaces, shared by every chunk of a huge answer.
fn bytes_of_spaces() -> axum::body::Bytes {
    static MB: std::sync::OnceLock<axum::body::Bytes> = std::sync::OnceLock::new();
    MB.get_or_init(|| axum::body::Bytes::from(vec![b' '; 1 << 20])).clone()
}
