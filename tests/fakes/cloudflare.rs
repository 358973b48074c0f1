//! The fake Cloudflare Workers secrets API: secrets per script, the
//! `{success, errors, messages, result}` envelope, the bulk endpoint with its
//! 100-operation limit (or, for an "older account", no bulk endpoint).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Control, faults_layer, serve};

pub const TOKEN: &str = "test-cloudflare-token";
pub const ACCOUNT: &str = "test-account";

#[derive(Default)]
pub struct State_ {
    pub scripts: Mutex<HashMap<String, BTreeMap<String, String>>>,
    pub not_deployed: Mutex<HashSet<String>>,
    pub bulk_disabled: AtomicBool,
}

pub struct FakeCloudflare {
    pub addr: SocketAddr,
    pub state: Arc<State_>,
    pub control: Arc<Control>,
}

impl FakeCloudflare {
    pub fn start() -> Self {
        let state = Arc::new(State_::default());
        let control = Arc::new(Control::default());
        let base = "/client/v4/accounts/{account}/workers/scripts/{script}";
        let router = Router::new()
            .route(&format!("{base}/secrets"), get(list).put(put))
            .route(&format!("{base}/secrets/{{name}}"), delete(remove))
            .route(&format!("{base}/secrets-bulk"), patch(bulk))
            .layer(axum::middleware::from_fn_with_state(control.clone(), faults_layer))
            .with_state(state.clone());
        FakeCloudflare { addr: serve(router), state, control }
    }

    pub fn url(&self) -> String {
        format!("http://{}/client/v4", self.addr)
    }

    pub fn add_script(&self, script: &str) {
        self.state.scripts.lock().unwrap().insert(script.into(), BTreeMap::new());
    }

    pub fn value(&self, script: &str, name: &str) -> Option<String> {
        self.state.scripts.lock().unwrap().get(script)?.get(name).cloned()
    }

    pub fn names(&self, script: &str) -> Vec<String> {
        self.state.scripts.lock().unwrap()[script].keys().cloned().collect()
    }

    pub fn set_by_hand(&self, script: &str, name: &str, value: &str) {
        self.state.scripts.lock().unwrap().get_mut(script).unwrap().insert(name.into(), value.into());
    }
}

fn envelope(status: StatusCode, errors: &[(u64, &str)], result: Value) -> Response {
    let errors: Vec<Value> = errors.iter().map(|(code, message)| json!({"code": code, "message": message})).collect();
    (status, Json(json!({"success": errors.is_empty(), "errors": errors, "messages": [], "result": result})))
        .into_response()
}

/// Authentication, account and script checks every route shares.
fn script_for(state: &State_, headers: &HeaderMap, account: &str, script: &str) -> Result<(), Response> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return Err(envelope(StatusCode::BAD_REQUEST, &[(10000, "Authentication error")], Value::Null));
    }
    if account != ACCOUNT {
        return Err(envelope(StatusCode::FORBIDDEN, &[(10000, "Authentication error")], Value::Null));
    }
    if !state.scripts.lock().unwrap().contains_key(script) {
        return Err(envelope(
            StatusCode::NOT_FOUND,
            &[(10007, "This Worker does not exist on your account.")],
            Value::Null,
        ));
    }
    Ok(())
}

fn refuse_if_not_deployed(state: &State_, script: &str) -> Result<(), Response> {
    if state.not_deployed.lock().unwrap().contains(script) {
        return Err(envelope(
            StatusCode::BAD_REQUEST,
            &[(
                10215,
                "Secret edit failed. You attempted to modify a secret, but the latest version of your Worker isn't currently deployed.",
            )],
            Value::Null,
        ));
    }
    Ok(())
}

async fn list(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, script)): Path<(String, String)>,
) -> Response {
    if let Err(r) = script_for(&state, &headers, &account, &script) {
        return r;
    }
    let names: Vec<Value> =
        state.scripts.lock().unwrap()[&script].keys().map(|n| json!({"name": n, "type": "secret_text"})).collect();
    envelope(StatusCode::OK, &[], Value::Array(names))
}

async fn put(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, script)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(r) =
        script_for(&state, &headers, &account, &script).and_then(|()| refuse_if_not_deployed(&state, &script))
    {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return envelope(StatusCode::BAD_REQUEST, &[(10026, "could not parse the request body")], Value::Null);
    };
    let (Some(name), Some(text)) = (body["name"].as_str(), body["text"].as_str()) else {
        return envelope(StatusCode::BAD_REQUEST, &[(10026, "name and text are required")], Value::Null);
    };
    state.scripts.lock().unwrap().get_mut(&script).unwrap().insert(name.into(), text.into());
    envelope(StatusCode::OK, &[], json!({"name": name, "type": "secret_text"}))
}

async fn remove(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, script, name)): Path<(String, String, String)>,
) -> Response {
    if let Err(r) = script_for(&state, &headers, &account, &script) {
        return r;
    }
    match state.scripts.lock().unwrap().get_mut(&script).unwrap().remove(&name) {
        Some(_) => envelope(StatusCode::OK, &[], Value::Null),
        None => envelope(StatusCode::NOT_FOUND, &[(10056, "secret not found")], Value::Null),
    }
}

async fn bulk(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, script)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if state.bulk_disabled.load(Ordering::SeqCst) {
        return envelope(
            StatusCode::NOT_FOUND,
            &[(
                7003,
                "Could not route to /client/v4/accounts/.../secrets-bulk, perhaps your object identifier is invalid?",
            )],
            Value::Null,
        );
    }
    if let Err(r) =
        script_for(&state, &headers, &account, &script).and_then(|()| refuse_if_not_deployed(&state, &script))
    {
        return r;
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/merge-patch+json") {
        return envelope(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &[(10026, "expected application/merge-patch+json")],
            Value::Null,
        );
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return envelope(StatusCode::BAD_REQUEST, &[(10026, "could not parse the request body")], Value::Null);
    };
    let Some(ops) = body["secrets"].as_object() else {
        return envelope(StatusCode::BAD_REQUEST, &[(10026, "secrets is required")], Value::Null);
    };
    if ops.len() > 100 {
        return envelope(
            StatusCode::BAD_REQUEST,
            &[(10021, "too many operations in one request (at most 100)")],
            Value::Null,
        );
    }
    let mut scripts = state.scripts.lock().unwrap();
    let secrets = scripts.get_mut(&script).unwrap();
    for (name, op) in ops {
        match op {
            Value::Null => {
                secrets.remove(name);
            }
            op => match op["text"].as_str() {
                Some(text) => {
                    secrets.insert(name.clone(), text.into());
                }
                None => return envelope(StatusCode::BAD_REQUEST, &[(10026, "each secret needs text")], Value::Null),
            },
        }
    }
    envelope(StatusCode::OK, &[], json!({}))
}
