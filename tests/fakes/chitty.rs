//! The fake ChittyID / ChittyAuth service, both API generations: the
//! runbook's admin API (`mcp_auth_…` tokens with `CHITTY-APIKEY-…` ids, HTTP
//! basic auth) and ChittyAuth live (`ca_live_…` with `tok_…` ids). Every
//! call costs key-value operations against a daily quota, and each token's
//! validations are limited per hour, as in the real service.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};

use super::{Control, faults_layer, serve};

pub const ADMIN_PASSWORD: &str = "test-admin-password";
pub const SERVICE_TOKEN: &str = "ca_live_service_token_for_tests_0000";
pub const VALIDATIONS_PER_HOUR: u32 = 100;

#[derive(Debug, Clone)]
pub struct Token {
    pub token: String,
    pub id: String,
    pub description: String,
    pub scopes: Value,
    pub revoked: bool,
    pub validations: u32,
    /// When the token's key-value record expires (ChittyAuth).
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

pub struct State_ {
    pub tokens: Mutex<Vec<Token>>,
    pub kv_ops: AtomicU64,
    pub quota: AtomicU64,
    /// Answer mints with `"fallback": true` (the upstream failed).
    pub fallback: AtomicBool,
    /// ChittyAuth grants only these scopes, silently (201 with the rest
    /// left out), as the real service does for scopes it does not know.
    pub grantable: Mutex<Option<Vec<String>>>,
    /// ChittyAuth's check of the `chittyId` with the ChittyID service fails.
    pub chitty_id_unverifiable: AtomicBool,
    /// The next this many validates fail with a 500.
    pub validate_failures: AtomicU64,
}

pub struct FakeChitty {
    pub addr: SocketAddr,
    pub state: Arc<State_>,
    pub control: Arc<Control>,
}

impl FakeChitty {
    pub fn start() -> Self {
        let state = Arc::new(State_ {
            tokens: Mutex::new(Vec::new()),
            kv_ops: AtomicU64::new(0),
            quota: AtomicU64::new(1000),
            fallback: AtomicBool::new(false),
            grantable: Mutex::new(None),
            chitty_id_unverifiable: AtomicBool::new(false),
            validate_failures: AtomicU64::new(0),
        });
        let control = Arc::new(Control::default());
        let router = Router::new()
            .route("/health", get(health))
            .route("/admin/tokens/generate", post(admin_generate))
            .route("/admin/tokens/{id}/revoke", post(admin_revoke))
            .route("/v1/tokens/provision", post(provision))
            .route("/v1/tokens/validate", post(validate))
            .route("/v1/tokens/revoke", post(revoke))
            .route("/v1/tokens/refresh", post(refresh))
            .route("/api/tokens/generate", post(runbook_generate))
            .layer(axum::middleware::from_fn_with_state(control.clone(), faults_layer))
            .with_state(state.clone());
        FakeChitty { addr: serve(router), state, control }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn tokens(&self) -> Vec<Token> {
        self.state.tokens.lock().unwrap().clone()
    }

    pub fn find(&self, value: &str) -> Option<Token> {
        self.tokens().into_iter().find(|t| t.token == value)
    }

    /// Valid: issued here and not revoked.
    pub fn is_valid(&self, value: &str) -> bool {
        self.find(value).is_some_and(|t| !t.revoked)
    }

    pub fn count(&self, route: &str) -> u64 {
        self.control.counts().get(route).copied().unwrap_or(0)
    }
}

fn hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::getrandom(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Spends `cost` key-value operations, or answers as the service does when
/// the daily quota is gone.
fn spend(state: &State_, cost: u64) -> Result<(), Response> {
    let used = state.kv_ops.load(Ordering::SeqCst);
    if used + cost > state.quota.load(Ordering::SeqCst) {
        return Err((
            StatusCode::TOO_MANY_REQUESTS,
            Json(json!({"error": "KV quota exceeded: 1000 operations a day on the free tier"})),
        )
            .into_response());
    }
    state.kv_ops.fetch_add(cost, Ordering::SeqCst);
    Ok(())
}

fn basic_ok(headers: &HeaderMap) -> bool {
    let expected =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_PASSWORD}")));
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers.get("authorization")?.to_str().ok()?.strip_prefix("Bearer ").map(str::to_string)
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"error": "Unauthorized"}))).into_response()
}

fn known(state: &State_, token: &str) -> bool {
    token == SERVICE_TOKEN || state.tokens.lock().unwrap().iter().any(|t| t.token == token && !t.revoked)
}

async fn health(State(state): State<Arc<State_>>, headers: HeaderMap) -> Response {
    if let Err(r) = spend(&state, 1) {
        return r;
    }
    if let Some(token) = bearer(&headers)
        && !known(&state, &token)
    {
        return (StatusCode::UNAUTHORIZED, Json(json!({"status": "unauthorized", "error": "invalid token"})))
            .into_response();
    }
    // As the ChittyID service's public worker writes it.
    Json(json!({"status": "HEALTHY", "service": "chittyid", "version": "2.1.0", "timestamp": chrono::Utc::now(), "kv_status": "operational"})).into_response()
}

fn mint(state: &State_, token: String, id: String, body: &Value) -> Token {
    let t = Token {
        token,
        id,
        description: body["description"].as_str().unwrap_or("").to_string(),
        scopes: body.get("scopes").or_else(|| body.get("scope")).cloned().unwrap_or(Value::Null),
        revoked: false,
        validations: 0,
        expires_at: chrono::Utc::now() + chrono::TimeDelta::days(365),
    };
    state.tokens.lock().unwrap().push(t.clone());
    t
}

async fn admin_generate(State(state): State<Arc<State_>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !basic_ok(&headers) {
        return unauthorized();
    }
    if state.fallback.load(Ordering::SeqCst) {
        return Json(json!({"fallback": true, "status": "degraded", "message": "upstream unavailable"}))
            .into_response();
    }
    if let Err(r) = spend(&state, 2) {
        return r;
    }
    let seq = state.tokens.lock().unwrap().len() + 1;
    let t = mint(
        &state,
        format!("mcp_auth_{}", hex(16)),
        format!("CHITTY-APIKEY-{seq:07}-{}", &hex(2).to_uppercase()),
        &body,
    );
    let expires = chrono::Utc::now() + chrono::TimeDelta::days(365);
    Json(json!({"token": t.token, "token_id": t.id, "expires_at": expires, "scopes": t.scopes})).into_response()
}

async fn admin_revoke(State(state): State<Arc<State_>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !basic_ok(&headers) {
        return unauthorized();
    }
    if let Err(r) = spend(&state, 1) {
        return r;
    }
    let mut tokens = state.tokens.lock().unwrap();
    match tokens.iter_mut().find(|t| t.id == id) {
        Some(t) => {
            t.revoked = true;
            Json(json!({"success": true, "token_id": id})).into_response()
        }
        None => (StatusCode::NOT_FOUND, Json(json!({"error": "no such token"}))).into_response(),
    }
}

async fn provision(State(state): State<Arc<State_>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if bearer(&headers).as_deref() != Some(SERVICE_TOKEN) {
        return unauthorized();
    }
    if state.fallback.load(Ordering::SeqCst) {
        return Json(json!({"success": true, "fallback": true})).into_response();
    }
    if body["chittyId"].as_str().is_none() {
        return (StatusCode::BAD_REQUEST, Json(json!({"success": false, "error": "chittyId is required"})))
            .into_response();
    }
    if state.chitty_id_unverifiable.load(Ordering::SeqCst) {
        return (StatusCode::FORBIDDEN, Json(json!({"success": false, "error": "ChittyID verification failed"})))
            .into_response();
    }
    // Workers KV takes no expiry under 60 seconds.
    let ttl = body["expiresIn"].as_i64().unwrap_or(30 * 86_400);
    if ttl < 60 {
        return kv_ttl_refused(ttl);
    }
    if let Err(r) = spend(&state, 2) {
        return r;
    }
    // Scopes it does not grant are left out, and the answer is still 201.
    let mut body = body;
    if let (Some(grantable), Some(asked)) = (state.grantable.lock().unwrap().clone(), body["scope"].as_array()) {
        let granted: Vec<Value> =
            asked.iter().filter(|s| s.as_str().is_some_and(|s| grantable.iter().any(|g| g == s))).cloned().collect();
        body["scope"] = Value::Array(granted);
    }
    let token = format!("ca_live_{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hex(24)));
    let mut t = mint(&state, token, format!("tok_{}", hex(8)), &body);
    let expires = chrono::Utc::now() + chrono::TimeDelta::seconds(ttl);
    t.expires_at = expires;
    if let Some(kept) = state.tokens.lock().unwrap().iter_mut().find(|k| k.id == t.id) {
        kept.expires_at = expires;
    }
    (
        StatusCode::CREATED,
        Json(json!({"success": true, "token": t.token, "tokenId": t.id, "scope": t.scopes, "expiresAt": expires, "rateLimit": {"requests": VALIDATIONS_PER_HOUR, "window": "1h"}})),
    )
        .into_response()
}

/// What Workers KV says to a write whose expiry is under 60 seconds,
/// passed on as ChittyAuth passes it on.
fn kv_ttl_refused(ttl: i64) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"success": false, "error": format!("KV PUT failed: 400 Invalid expiration_ttl of {ttl}. Expiration TTL must be at least 60.")})),
    )
        .into_response()
}

/// Validate counts the call against the token's hourly limit and writes the
/// token's record back with what is left of its lifetime; over the limit it
/// answers 500 "Rate limit exceeded" (not a 429).
async fn validate(State(state): State<Arc<State_>>, Json(body): Json<Value>) -> Response {
    if state.validate_failures.load(Ordering::SeqCst) > 0 {
        state.validate_failures.fetch_sub(1, Ordering::SeqCst);
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"valid": false, "error": "Internal server error"})))
            .into_response();
    }
    if let Err(r) = spend(&state, 1) {
        return r;
    }
    let value = body["token"].as_str().unwrap_or("");
    let mut tokens = state.tokens.lock().unwrap();
    match tokens.iter_mut().find(|t| t.token == value && !t.revoked) {
        Some(t) if t.validations >= VALIDATIONS_PER_HOUR => {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"valid": false, "error": "Rate limit exceeded"})))
                .into_response()
        }
        Some(t) if (t.expires_at - chrono::Utc::now()).num_seconds() < 60 => {
            kv_ttl_refused((t.expires_at - chrono::Utc::now()).num_seconds())
        }
        Some(t) => {
            t.validations += 1;
            Json(json!({"valid": true, "tokenId": t.id, "scope": t.scopes, "rateLimitRemaining": VALIDATIONS_PER_HOUR - t.validations})).into_response()
        }
        None => (StatusCode::UNAUTHORIZED, Json(json!({"valid": false, "error": "Invalid token"}))).into_response(),
    }
}

async fn revoke(State(state): State<Arc<State_>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if bearer(&headers).as_deref() != Some(SERVICE_TOKEN) {
        return unauthorized();
    }
    if let Err(r) = spend(&state, 1) {
        return r;
    }
    let id = body["tokenId"].as_str().unwrap_or("");
    let mut tokens = state.tokens.lock().unwrap();
    match tokens.iter_mut().find(|t| t.id == id) {
        Some(t) => {
            t.revoked = true;
            Json(json!({"success": true, "tokenId": id, "revokedAt": chrono::Utc::now(), "reason": body["reason"]}))
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, Json(json!({"success": false, "error": "no such token"}))).into_response(),
    }
}

/// Exists so a test can prove it is never called for staged rotation: it
/// revokes the old token at once.
async fn refresh(State(state): State<Arc<State_>>, Json(body): Json<Value>) -> Response {
    let value = body["token"].as_str().unwrap_or("").to_string();
    let mut tokens = state.tokens.lock().unwrap();
    if let Some(t) = tokens.iter_mut().find(|t| t.token == value) {
        t.revoked = true;
    }
    (StatusCode::GONE, Json(json!({"error": "refresh called"}))).into_response()
}

async fn runbook_generate(State(state): State<Arc<State_>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    match bearer(&headers) {
        Some(t) if known(&state, &t) => {}
        _ => return unauthorized(),
    }
    if let Err(r) = spend(&state, 2) {
        return r;
    }
    let t = mint(&state, format!("ca_live_{}", hex(20)), format!("tok_{}", hex(8)), &body);
    Json(json!({"token": t.token, "token_id": t.id, "service": body["service"]})).into_response()
}
