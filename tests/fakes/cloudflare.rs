//! The fake Cloudflare Workers API, as a Worker really is: a list of
//! versions (code, bindings, secrets) and a deployment that runs one of
//! them or splits traffic between two. A secret write (`PUT …/secrets`, the
//! bulk PATCH, `DELETE`) copies the latest version with the change into a
//! new version and deploys it at 100% — and is refused with 10215 while the
//! latest version is not the one deployed. The versions API creates a
//! version without deploying it (bindings `inherit`ed from a named
//! version), and `POST …/deployments` rolls versions out. Every answer is
//! the `{success, errors, messages, result}` envelope; the bulk endpoint
//! takes at most 100 operations (or, for an "older account", is absent).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::{Control, faults_layer, serve};

pub const TOKEN: &str = "test-cloudflare-token";
pub const ACCOUNT: &str = "test-account";

/// A module of a version's code: name, content type, bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Module {
    pub name: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

#[derive(Clone, Debug)]
pub struct Version {
    pub id: String,
    pub number: u64,
    pub main_module: String,
    pub modules: Vec<Module>,
    /// Bindings other than secrets, as the API describes them.
    pub bindings: Vec<Value>,
    pub secrets: BTreeMap<String, String>,
    pub message: Option<String>,
    /// Who made it, as the version's `metadata.source` says (`api`,
    /// `wrangler`, `dash`).
    pub source: String,
}

/// A deployment as Cloudflare records it: what it runs, and how, by what
/// and when it was made (`workers/triggered_by`: `secret` for a secret
/// change, `upload` for `wrangler deploy`, `deployment` for a rollout of
/// chosen versions, `rollback`).
#[derive(Clone, Debug)]
pub struct Deployment {
    pub id: String,
    pub versions: Vec<(String, u32)>,
    pub triggered_by: String,
    pub source: String,
    pub created_on: String,
}

#[derive(Clone, Debug, Default)]
pub struct Script {
    /// Oldest first.
    pub versions: Vec<Version>,
    /// What runs: version ids and their share of traffic.
    pub deployment: Vec<(String, u32)>,
    /// Every deployment, oldest first (the last is `deployment`).
    pub history: Vec<Deployment>,
}

impl Script {
    fn latest(&self) -> &Version {
        self.versions.last().expect("a script has a version")
    }

    fn version(&self, id: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.id == id)
    }

    /// A new version from `base` with `change` applied to its secrets.
    fn next_version(&mut self, base: &Version, change: impl FnOnce(&mut BTreeMap<String, String>)) -> String {
        let number = self.latest().number + 1;
        let mut version = base.clone();
        version.number = number;
        version.id = version_id(number);
        version.message = None;
        version.source = "api".into();
        change(&mut version.secrets);
        let id = version.id.clone();
        self.versions.push(version);
        id
    }

    /// Secret writes deploy: refused while the latest is not what runs.
    fn writable(&self) -> Result<(), Response> {
        if self.deployment != [(self.latest().id.clone(), 100)] {
            return Err(envelope(
                StatusCode::BAD_REQUEST,
                &[(
                    10215,
                    "Secret edit failed. You attempted to modify a secret, but the latest version of your Worker isn't currently deployed. Please ensure that the latest version of your Worker is fully deployed (wrangler versions deploy) before modifying secrets. Alternatively, you can use the Cloudflare dashboard to modify secrets and deploy the version.",
                )],
                Value::Null,
            ));
        }
        Ok(())
    }

    /// A secret write: a new version from the latest, deployed at 100%,
    /// made by `source` (`api` for the REST API).
    fn write_secrets(&mut self, source: &str, change: impl FnOnce(&mut BTreeMap<String, String>)) {
        let latest = self.latest().clone();
        let id = self.next_version(&latest, change);
        self.versions.last_mut().unwrap().source = source.into();
        self.set_deployment(vec![(id, 100)], "secret", source);
    }

    /// What runs from now on, recorded as Cloudflare records deployments.
    fn set_deployment(&mut self, versions: Vec<(String, u32)>, triggered_by: &str, source: &str) {
        self.history.push(Deployment {
            id: format!("dep-{:04}", self.history.len() + 1),
            versions: versions.clone(),
            triggered_by: triggered_by.into(),
            source: source.into(),
            created_on: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        });
        self.deployment = versions;
    }
}

/// The hash of a version's code, as `resources.script.etag` gives it.
fn etag(v: &Version) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for m in &v.modules {
        (&m.name, &m.content).hash(&mut h);
    }
    format!("{:016x}", h.finish())
}

/// Version ids look like Cloudflare's (UUIDs), derived from the number.
fn version_id(number: u64) -> String {
    format!("{number:08x}-7c1e-4b2a-9f3d-{:012x}", number.wrapping_mul(0x9E37_79B9))
}

/// A Pages project: each environment's variables (`type`, `value`) and
/// its deployments (what a value reaches at the next one).
#[derive(Clone, Debug, Default)]
pub struct PagesProject {
    pub production: BTreeMap<String, (String, String)>,
    pub preview: BTreeMap<String, (String, String)>,
    pub deployments: u64,
}

impl PagesProject {
    fn env(&mut self, name: &str) -> Option<&mut BTreeMap<String, (String, String)>> {
        match name {
            "production" => Some(&mut self.production),
            "preview" => Some(&mut self.preview),
            _ => None,
        }
    }

    /// As `GET` gives it: a secret's value reads back empty.
    fn shown(&self, name: &str) -> Value {
        let vars = |env: &BTreeMap<String, (String, String)>| -> Value {
            env.iter()
                .map(|(k, (kind, value))| {
                    let value = if kind == "secret_text" { "" } else { value.as_str() };
                    (k.clone(), json!({"type": kind, "value": value}))
                })
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let latest = (self.deployments > 0).then(|| {
            json!({
                "id": format!("{:08x}-0000-4000-8000-000000000000", self.deployments),
                "short_id": format!("{:08x}", self.deployments),
                "environment": "production",
                "created_on": "2026-11-30T12:00:00Z",
                "url": format!("https://{:08x}.{name}.pages.dev", self.deployments),
            })
        });
        json!({
            "name": name,
            "deployment_configs": {
                "production": {"env_vars": vars(&self.production), "compatibility_date": "2026-10-01"},
                "preview": {"env_vars": vars(&self.preview), "compatibility_date": "2026-10-01"},
            },
            "latest_deployment": latest,
        })
    }
}

#[derive(Default)]
pub struct State_ {
    pub scripts: Mutex<HashMap<String, Script>>,
    pub bulk_disabled: AtomicBool,
    pub pages: Mutex<HashMap<String, PagesProject>>,
    pub stores: Mutex<Vec<SecretsStore>>,
    pub store_clock: std::sync::atomic::AtomicU64,
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
            .route(&format!("{base}/deployments"), get(deployments).post(deploy))
            .route(&format!("{base}/versions"), get(versions).post(upload))
            .route(&format!("{base}/versions/{{version}}"), get(version_detail))
            .route(&format!("{base}/content/v2"), get(content))
            .route(&format!("{base}/settings"), get(settings).patch(patch_settings))
            .route("/client/v4/accounts/{account}/pages/projects/{project}", get(pages_get).patch(pages_patch))
            .route("/client/v4/accounts/{account}/workers/scripts", get(scripts_list))
            .route("/client/v4/accounts/{account}/secrets_store/stores", get(stores_list))
            .route(
                "/client/v4/accounts/{account}/secrets_store/stores/{store}/secrets",
                get(store_secrets).post(store_create),
            )
            .route(
                "/client/v4/accounts/{account}/secrets_store/stores/{store}/secrets/{secret}",
                patch(store_edit).delete(store_delete),
            )
            .layer(axum::middleware::from_fn_with_state(control.clone(), faults_layer))
            .with_state(state.clone());
        FakeCloudflare { addr: serve(router), state, control }
    }

    pub fn url(&self) -> String {
        format!("http://{}/client/v4", self.addr)
    }

    /// A deployed Worker: version 1 (an ES module and a plain-text
    /// variable, no secrets) at 100%.
    pub fn add_script(&self, script: &str) {
        let first = Version {
            id: version_id(1),
            number: 1,
            main_module: "worker.js".into(),
            modules: vec![Module {
                name: "worker.js".into(),
                content_type: "application/javascript+module".into(),
                content: format!("export default {{ fetch() {{ return new Response('{script} v1') }} }}").into_bytes(),
            }],
            bindings: vec![json!({"type": "plain_text", "name": "GREETING", "text": "hello"})],
            secrets: BTreeMap::new(),
            message: None,
            source: "wrangler".into(),
        };
        let mut s = Script { versions: vec![first.clone()], ..Script::default() };
        s.set_deployment(vec![(first.id, 100)], "upload", "wrangler");
        self.state.scripts.lock().unwrap().insert(script.into(), s);
    }

    /// `wrangler deploy` of a Worker whose configuration binds store
    /// secret `secret_name` of `store` as `binding`: a new version, deployed.
    pub fn bind_store_secret(&self, script: &str, binding: &str, store: &str, secret_name: &str) {
        let id = self.deploy_code(script);
        let mut scripts = self.state.scripts.lock().unwrap();
        let v = scripts.get_mut(script).unwrap().versions.iter_mut().find(|v| v.id == id).unwrap();
        v.bindings.push(
            json!({"type": "secrets_store_secret", "name": binding, "store_id": store, "secret_name": secret_name}),
        );
    }

    /// A Secrets Store named `name`; returns its id.
    pub fn add_store(&self, name: &str) -> String {
        let mut stores = self.state.stores.lock().unwrap();
        let id = format!("{:032x}", 0xa11ce_u128 + stores.len() as u128);
        stores.push(SecretsStore { id: id.clone(), name: name.into(), secrets: BTreeMap::new() });
        id
    }

    /// A store secret's value, as the store holds it.
    pub fn store_value(&self, store: &str, name: &str) -> Option<String> {
        let stores = self.state.stores.lock().unwrap();
        stores.iter().find(|s| s.id == store)?.secrets.get(name).map(|x| x.value.clone())
    }

    /// A change in the dashboard: a store secret's value set by hand.
    pub fn store_set_by_hand(&self, store: &str, name: &str, value: &str) {
        let modified = next_modified(&self.state);
        let mut stores = self.state.stores.lock().unwrap();
        let s = stores.iter_mut().find(|s| s.id == store).unwrap();
        let id = format!("{:032x}", 0xbeef_u128 + s.secrets.len() as u128);
        let secret = s.secrets.entry(name.into()).or_insert(StoreSecret {
            id,
            value: String::new(),
            scopes: vec!["workers".into()],
            modified: modified.clone(),
        });
        secret.value = value.into();
        secret.modified = modified;
    }

    /// A Pages project with one deployment and a plain variable of its own.
    pub fn add_pages_project(&self, project: &str) {
        let mut p = PagesProject { deployments: 1, ..PagesProject::default() };
        p.production.insert("SITE_NAME".into(), ("plain_text".into(), project.into()));
        self.state.pages.lock().unwrap().insert(project.into(), p);
    }

    /// A Pages variable as the project holds it: (type, value).
    pub fn pages_var(&self, project: &str, env: &str, name: &str) -> Option<(String, String)> {
        let mut pages = self.state.pages.lock().unwrap();
        pages.get_mut(project)?.env(env)?.get(name).cloned()
    }

    /// A change in the dashboard: a secret set.
    pub fn pages_set_by_hand(&self, project: &str, env: &str, name: &str, value: &str) {
        let mut pages = self.state.pages.lock().unwrap();
        pages.get_mut(project).unwrap().env(env).unwrap().insert(name.into(), ("secret_text".into(), value.into()));
    }

    /// A change in the dashboard: a variable deleted.
    pub fn pages_remove_by_hand(&self, project: &str, env: &str, name: &str) {
        let mut pages = self.state.pages.lock().unwrap();
        pages.get_mut(project).unwrap().env(env).unwrap().remove(name);
    }

    pub fn remove_script(&self, script: &str) {
        self.state.scripts.lock().unwrap().remove(script);
    }

    pub fn script(&self, script: &str) -> Script {
        self.state.scripts.lock().unwrap()[script].clone()
    }

    /// A secret as the latest version holds it.
    pub fn value(&self, script: &str, name: &str) -> Option<String> {
        self.state.scripts.lock().unwrap().get(script)?.latest().secrets.get(name).cloned()
    }

    /// A secret as version `id` holds it.
    pub fn value_in(&self, script: &str, id: &str, name: &str) -> Option<String> {
        self.state.scripts.lock().unwrap().get(script)?.version(id)?.secrets.get(name).cloned()
    }

    pub fn names(&self, script: &str) -> Vec<String> {
        self.state.scripts.lock().unwrap()[script].latest().secrets.keys().cloned().collect()
    }

    pub fn latest_id(&self, script: &str) -> String {
        self.state.scripts.lock().unwrap()[script].latest().id.clone()
    }

    pub fn deployed(&self, script: &str) -> Vec<(String, u32)> {
        self.state.scripts.lock().unwrap()[script].deployment.clone()
    }

    /// A change in the dashboard: a new version, deployed at once.
    pub fn set_by_hand(&self, script: &str, name: &str, value: &str) {
        let mut scripts = self.state.scripts.lock().unwrap();
        scripts.get_mut(script).unwrap().write_secrets("dash", |s| {
            s.insert(name.into(), value.into());
        });
    }

    /// `wrangler secret put NAME`: a new version, deployed at once.
    pub fn wrangler_secret_put(&self, script: &str, name: &str, value: &str) {
        let mut scripts = self.state.scripts.lock().unwrap();
        scripts.get_mut(script).unwrap().write_secrets("wrangler", |s| {
            s.insert(name.into(), value.into());
        });
    }

    pub fn remove_by_hand(&self, script: &str, name: &str) {
        let mut scripts = self.state.scripts.lock().unwrap();
        scripts.get_mut(script).unwrap().write_secrets("dash", |s| {
            s.remove(name);
        });
    }

    pub fn clear_by_hand(&self, script: &str) {
        self.state.scripts.lock().unwrap().get_mut(script).unwrap().write_secrets("dash", BTreeMap::clear);
    }

    /// `wrangler versions upload`: new code in a new version (secrets as the
    /// latest has them), not deployed. Returns its id.
    pub fn upload_version(&self, script: &str) -> String {
        let mut scripts = self.state.scripts.lock().unwrap();
        let s = scripts.get_mut(script).unwrap();
        let latest = s.latest().clone();
        let id = s.next_version(&latest, |_| {});
        let v = s.versions.last_mut().unwrap();
        v.source = "wrangler".into();
        v.modules[0].content.extend_from_slice(format!("\n// new code in #{}", v.number).as_bytes());
        id
    }

    /// `wrangler versions secret put NAME`: the same code in a new version
    /// with the secret changed, not deployed. Returns its id.
    pub fn versions_secret_put(&self, script: &str, name: &str, value: &str) -> String {
        let mut scripts = self.state.scripts.lock().unwrap();
        let s = scripts.get_mut(script).unwrap();
        let latest = s.latest().clone();
        let id = s.next_version(&latest, |secrets| {
            secrets.insert(name.into(), value.into());
        });
        s.versions.last_mut().unwrap().source = "wrangler".into();
        id
    }

    /// `wrangler deploy`: new code in a new version that keeps the latest
    /// one's secrets, deployed at once.
    pub fn deploy_code(&self, script: &str) -> String {
        let id = self.upload_version(script);
        let mut scripts = self.state.scripts.lock().unwrap();
        scripts.get_mut(script).unwrap().set_deployment(vec![(id.clone(), 100)], "upload", "wrangler");
        id
    }

    /// `wrangler versions deploy A@p B@q`.
    pub fn deploy(&self, script: &str, split: &[(&str, u32)]) {
        let mut scripts = self.state.scripts.lock().unwrap();
        let split = split.iter().map(|(id, p)| (id.to_string(), *p)).collect();
        scripts.get_mut(script).unwrap().set_deployment(split, "deployment", "wrangler");
    }
}

fn envelope(status: StatusCode, errors: &[(u64, &str)], result: Value) -> Response {
    let errors: Vec<Value> = errors.iter().map(|(code, message)| json!({"code": code, "message": message})).collect();
    (status, Json(json!({"success": errors.is_empty(), "errors": errors, "messages": [], "result": result})))
        .into_response()
}

fn bad_request(code: u64, message: &str) -> Response {
    envelope(StatusCode::BAD_REQUEST, &[(code, message)], Value::Null)
}

/// The token and the account, as every route checks them.
fn authorized(headers: &HeaderMap, account: &str) -> Result<(), Response> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {TOKEN}")) {
        return Err(envelope(StatusCode::BAD_REQUEST, &[(10000, "Authentication error")], Value::Null));
    }
    if account != ACCOUNT {
        return Err(envelope(StatusCode::FORBIDDEN, &[(10000, "Authentication error")], Value::Null));
    }
    Ok(())
}

/// Authentication, account and script checks every route shares; runs
/// `then` on the script.
fn with_script<T>(
    state: &State_,
    headers: &HeaderMap,
    account: &str,
    script: &str,
    then: impl FnOnce(&mut Script) -> Result<T, Response>,
) -> Result<T, Response> {
    authorized(headers, account)?;
    let mut scripts = state.scripts.lock().unwrap();
    let Some(s) = scripts.get_mut(script) else {
        return Err(envelope(
            StatusCode::NOT_FOUND,
            &[(10007, "This Worker does not exist on your account.")],
            Value::Null,
        ));
    };
    then(s)
}

fn answer(result: Result<Value, Response>) -> Response {
    match result {
        Ok(value) => envelope(StatusCode::OK, &[], value),
        Err(response) => response,
    }
}

async fn list(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, script)): Path<(String, String)>,
) -> Response {
    answer(with_script(&state, &headers, &account, &script, |s| {
        Ok(s.latest().secrets.keys().map(|n| json!({"name": n, "type": "secret_text"})).collect())
    }))
}

async fn put(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, script)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    answer(with_script(&state, &headers, &account, &script, |s| {
        s.writable()?;
        let body: Value = serde_json::from_slice(&body).map_err(|_| bad_request(10026, "could not parse the body"))?;
        let (Some(name), Some(text)) = (body["name"].as_str(), body["text"].as_str()) else {
            return Err(bad_request(10026, "name and text are required"));
        };
        s.write_secrets("api", |secrets| {
            secrets.insert(name.into(), text.into());
        });
        Ok(json!({"name": name, "type": "secret_text"}))
    }))
}

async fn remove(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, script, name)): Path<(String, String, String)>,
) -> Response {
    answer(with_script(&state, &headers, &account, &script, |s| {
        s.writable()?;
        if !s.latest().secrets.contains_key(&name) {
            return Err(envelope(StatusCode::NOT_FOUND, &[(10056, "secret not found")], Value::Null));
        }
        s.write_secrets("api", |secrets| {
            secrets.remove(&name);
        });
        Ok(Value::Null)
    }))
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
    answer(with_script(&state, &headers, &account, &script, |s| {
        s.writable()?;
        if headers.get("content-type").and_then(|v| v.to_str().ok()) != Some("application/merge-patch+json") {
            return Err(envelope(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &[(10026, "expected application/merge-patch+json")],
                Value::Null,
            ));
        }
        let body: Value = serde_json::from_slice(&body).map_err(|_| bad_request(10026, "could not parse the body"))?;
        let ops = body["secrets"].as_object().ok_or_else(|| bad_request(10026, "secrets is required"))?;
        if ops.len() > 100 {
            return Err(bad_request(10021, "too many operations in one request (at most 100)"));
        }
        let mut changes = Vec::new();
        for (name, op) in ops {
            match op {
                Value::Null => changes.push((name.clone(), None)),
                op => {
                    let text = op["text"].as_str().ok_or_else(|| bad_request(10026, "each secret needs text"))?;
                    changes.push((name.clone(), Some(text.to_string())));
                }
            }
        }
        s.write_secrets("api", |secrets| {
            for (name, text) in changes {
                match text {
                    Some(text) => secrets.insert(name, text),
                    None => secrets.remove(&name),
                };
            }
        });
        Ok(json!({}))
    }))
}

async fn deployments(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, script)): Path<(String, String)>,
) -> Response {
    answer(with_script(&state, &headers, &account, &script, |s| {
        // Newest first; the first is what runs.
        let deployments: Vec<Value> = s
            .history
            .iter()
            .rev()
            .map(|d| {
                let versions: Vec<Value> =
                    d.versions.iter().map(|(id, p)| json!({"version_id": id, "percentage": f64::from(*p)})).collect();
                json!({
                    "id": d.id,
                    "source": d.source,
                    "strategy": "percentage",
                    "author_email": if d.source == "api" { "ci@example.com" } else { "dev@example.com" },
                    "created_on": d.created_on,
                    "annotations": {"workers/triggered_by": d.triggered_by},
                    "versions": versions,
                })
            })
            .collect();
        Ok(json!({"deployments": deployments}))
    }))
}

/// `POST …/deployments`: percentages add up to 100 over known versions.
async fn deploy(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, script)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    answer(with_script(&state, &headers, &account, &script, |s| {
        let body: Value = serde_json::from_slice(&body).map_err(|_| bad_request(10026, "could not parse the body"))?;
        if body["strategy"] != "percentage" {
            return Err(bad_request(10021, "strategy must be percentage"));
        }
        let mut split = Vec::new();
        for v in body["versions"].as_array().into_iter().flatten() {
            let (Some(id), Some(p)) = (v["version_id"].as_str(), v["percentage"].as_f64()) else {
                return Err(bad_request(10021, "each version needs version_id and percentage"));
            };
            if s.version(id).is_none() {
                return Err(bad_request(10218, "version not found"));
            }
            split.push((id.to_string(), p as u32));
        }
        if split.is_empty() || split.len() > 2 || split.iter().map(|(_, p)| p).sum::<u32>() != 100 {
            return Err(bad_request(10021, "one or two versions whose percentages add up to 100"));
        }
        s.set_deployment(split, "deployment", "api");
        Ok(json!({"id": s.history.last().unwrap().id, "strategy": "percentage"}))
    }))
}

/// A version as the list gives it: the published description has id,
/// number and metadata for list items (no annotations).
fn version_summary(v: &Version) -> Value {
    let author = if v.source == "api" { "ci@example.com" } else { "dev@example.com" };
    json!({
        "id": v.id,
        "number": v.number,
        "metadata": {"created_on": "2026-11-01T00:00:00Z", "source": v.source, "author_email": author},
    })
}

/// Newest first, paginated (`page`, `per_page`).
async fn versions(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, script)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    answer(with_script(&state, &headers, &account, &script, |s| {
        let per_page = query.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(10usize).clamp(1, 100);
        let page = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1usize).max(1);
        let items: Vec<Value> =
            s.versions.iter().rev().skip((page - 1) * per_page).take(per_page).map(version_summary).collect();
        Ok(json!({"items": items}))
    }))
}

async fn version_detail(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, script, id)): Path<(String, String, String)>,
) -> Response {
    answer(with_script(&state, &headers, &account, &script, |s| {
        let v = s
            .version(&id)
            .ok_or_else(|| envelope(StatusCode::NOT_FOUND, &[(10218, "This version does not exist.")], Value::Null))?;
        let mut bindings = v.bindings.clone();
        bindings.extend(v.secrets.keys().map(|n| json!({"type": "secret_text", "name": n})));
        let mut out = version_summary(v);
        out["resources"] = json!({
            "bindings": bindings,
            "script": {"etag": etag(v), "handlers": ["fetch"]},
            "script_runtime": {"compatibility_date": "2026-10-01", "compatibility_flags": ["nodejs_compat"], "usage_model": "standard"},
        });
        Ok(out)
    }))
}

/// `GET …/settings`: the latest version's bindings, names and types only.
async fn settings(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, script)): Path<(String, String)>,
) -> Response {
    answer(with_script(&state, &headers, &account, &script, |s| {
        let latest = s.latest();
        let mut bindings: Vec<Value> =
            latest.bindings.iter().map(|b| json!({"type": b["type"], "name": b["name"]})).collect();
        bindings.extend(latest.secrets.keys().map(|n| json!({"type": "secret_text", "name": n})));
        Ok(json!({"bindings": bindings, "logpush": false, "tail_consumers": null}))
    }))
}

/// `PATCH …/settings` (multipart, a `settings` part): the full list of
/// bindings — `{type, name}` alone keeps a binding as it is, a
/// `secret_text` with `text` sets it, one left out is removed — written as
/// a secret write is: a new version, deployed at once (10215 while the
/// latest is not what runs).
async fn patch_settings(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, script)): Path<(String, String)>,
    form: Multipart,
) -> Response {
    let (settings, _) = match read_form(form, "settings").await {
        Ok(parts) => parts,
        Err(r) => return r,
    };
    answer(with_script(&state, &headers, &account, &script, |s| {
        s.writable()?;
        let settings = settings.ok_or_else(|| bad_request(10026, "the settings part is required"))?;
        let Some(list) = settings["bindings"].as_array() else { return Ok(json!({})) };
        let latest = s.latest().clone();
        let mut secrets = BTreeMap::new();
        for b in list {
            let name = b["name"].as_str().unwrap_or_default().to_string();
            match (b["type"].as_str(), b["text"].as_str()) {
                (Some("secret_text"), Some(text)) => {
                    secrets.insert(name, text.to_string());
                }
                (Some("secret_text"), None) => match latest.secrets.get(&name) {
                    Some(text) => {
                        secrets.insert(name, text.clone());
                    }
                    None => return Err(bad_request(10021, &format!("no secret named {name} to keep"))),
                },
                _ => {}
            }
        }
        s.write_secrets("api", |current| *current = secrets);
        Ok(json!({"bindings": list.iter().map(|b| json!({"type": b["type"], "name": b["name"]})).collect::<Vec<_>>()}))
    }))
}

/// A multipart body: the JSON part named `json` (if any) and every other
/// part, as Cloudflare's upload routes take them.
async fn read_form(mut form: Multipart, json: &str) -> Result<(Option<Value>, Vec<Module>), Response> {
    let (mut found, mut others) = (None, Vec::new());
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_string();
                let content_type = field.content_type().unwrap_or("application/octet-stream").to_string();
                let bytes = field.bytes().await.map_err(|_| bad_request(10026, "a part could not be read"))?;
                if name == json {
                    found = Some(
                        serde_json::from_slice(&bytes)
                            .map_err(|_| bad_request(10026, &format!("the {json} part is not JSON")))?,
                    );
                } else {
                    others.push(Module { name, content_type, content: bytes.to_vec() });
                }
            }
            Ok(None) => return Ok((found, others)),
            Err(_) => return Err(bad_request(10026, "the body is not multipart form data")),
        }
    }
}

const BOUNDARY: &str = "fake-cloudflare-boundary-7c1e";

/// `GET …/content/v2`: the script's code (the latest version's) as
/// multipart form data, the entry point named in `cf-entrypoint`. The
/// published description has no parameter to ask for another version's.
async fn content(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, script)): Path<(String, String)>,
) -> Response {
    let found = with_script(&state, &headers, &account, &script, |s| Ok(s.latest().clone()));
    let v = match found {
        Ok(v) => v,
        Err(r) => return r,
    };
    let mut body = Vec::new();
    for m in &v.modules {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{0}\"; filename=\"{0}\"\r\nContent-Type: {1}\r\n\r\n",
                m.name, m.content_type
            )
            .as_bytes(),
        );
        body.extend_from_slice(&m.content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (
        StatusCode::OK,
        [("content-type", format!("multipart/form-data; boundary={BOUNDARY}")), ("cf-entrypoint", v.main_module)],
        body,
    )
        .into_response()
}

/// `POST …/versions` (multipart): a `metadata` part and the code's modules.
/// Bindings of type `inherit` take the named binding from `version_id`
/// (the latest version when absent); one that cannot be resolved fails the
/// upload with `?bindings_inherit=strict` and is dropped silently without
/// it. `keep_bindings` keeps every binding of those types from the latest.
/// The version is not deployed.
async fn upload(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, script)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    form: Multipart,
) -> Response {
    let strict = query.get("bindings_inherit").map(String::as_str) == Some("strict");
    let (metadata, modules) = match read_form(form, "metadata").await {
        Ok(parts) => parts,
        Err(r) => return r,
    };
    answer(with_script(&state, &headers, &account, &script, |s| {
        let metadata = metadata.ok_or_else(|| bad_request(10026, "the metadata part is required"))?;
        // As Cloudflare's description has them: main_module required, a
        // compatibility date a string when there is one, a message of at
        // most 100 characters.
        if !metadata["main_module"].is_string() {
            return Err(bad_request(10021, "main_module is required (version upload takes ES modules only)"));
        }
        if metadata.get("compatibility_date").is_some_and(|d| !d.is_string()) {
            return Err(bad_request(10021, "compatibility_date must be a string"));
        }
        if metadata["annotations"]["workers/message"].as_str().is_some_and(|m| m.chars().count() > 100) {
            return Err(bad_request(10021, "workers/message is longer than 100 characters"));
        }
        let main_module = metadata["main_module"].as_str().unwrap_or_default().to_string();
        if !modules.iter().any(|m| m.name == main_module) {
            return Err(bad_request(10021, "main_module must name an uploaded module"));
        }
        let latest = s.latest().clone();
        let mut version = Version {
            id: String::new(),
            number: 0,
            main_module,
            modules,
            bindings: Vec::new(),
            secrets: BTreeMap::new(),
            message: metadata["annotations"]["workers/message"].as_str().map(str::to_string),
            source: "api".into(),
        };
        let keep: Vec<&str> =
            metadata["keep_bindings"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if keep.contains(&"secret_text") {
            version.secrets = latest.secrets.clone();
        }
        version
            .bindings
            .extend(latest.bindings.iter().filter(|b| keep.contains(&b["type"].as_str().unwrap_or(""))).cloned());
        for b in metadata["bindings"].as_array().into_iter().flatten() {
            let name = b["name"].as_str().unwrap_or_default().to_string();
            match b["type"].as_str() {
                Some("secret_text") => {
                    let text =
                        b["text"].as_str().ok_or_else(|| bad_request(10021, "a secret_text binding needs text"))?;
                    version.secrets.insert(name, text.to_string());
                }
                Some("inherit") => {
                    let from = match b["version_id"].as_str() {
                        Some("latest") | None => Some(&latest),
                        Some(id) => s.version(id),
                    };
                    let Some(from) = from else {
                        if strict {
                            return Err(bad_request(10218, "inherit: version not found"));
                        }
                        continue;
                    };
                    let old = b["old_name"].as_str().unwrap_or(&name);
                    if let Some(text) = from.secrets.get(old) {
                        version.secrets.insert(name, text.clone());
                    } else if let Some(binding) = from.bindings.iter().find(|x| x["name"] == old) {
                        let mut binding = binding.clone();
                        binding["name"] = json!(name);
                        version.bindings.push(binding);
                    } else if strict {
                        return Err(bad_request(10021, &format!("inherit: no binding named {old} to inherit")));
                    }
                }
                Some(_) => version.bindings.push(b.clone()),
                None => return Err(bad_request(10021, "each binding needs a type")),
            }
        }
        version.number = latest.number + 1;
        version.id = version_id(version.number);
        let out = version_summary(&version);
        s.versions.push(version);
        Ok(out)
    }))
}

/// Authentication and account checks, then `then` on the project.
fn with_project<T>(
    state: &State_,
    headers: &HeaderMap,
    account: &str,
    project: &str,
    then: impl FnOnce(&mut PagesProject) -> Result<T, Response>,
) -> Result<T, Response> {
    authorized(headers, account)?;
    let mut pages = state.pages.lock().unwrap();
    let Some(p) = pages.get_mut(project) else {
        return Err(envelope(
            StatusCode::NOT_FOUND,
            &[(8000007, "Project not found. The specified project name does not match any of your existing projects.")],
            Value::Null,
        ));
    };
    then(p)
}

async fn pages_get(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, project)): Path<(String, String)>,
) -> Response {
    answer(with_project(&state, &headers, &account, &project, |p| Ok(p.shown(&project))))
}

/// `PATCH …/pages/projects/{project}`: merged into the project; in
/// `deployment_configs.{env}.env_vars`, a `null` deletes a variable and
/// every variable not named is left as it is.
async fn pages_patch(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, project)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    answer(with_project(&state, &headers, &account, &project, |p| {
        let body: Value =
            serde_json::from_slice(&body).map_err(|_| bad_request(8000000, "could not parse the body"))?;
        for (env, config) in body["deployment_configs"].as_object().into_iter().flatten() {
            let vars = p.env(env).ok_or_else(|| bad_request(8000000, "unknown environment"))?;
            for (name, var) in config["env_vars"].as_object().into_iter().flatten() {
                match var {
                    Value::Null => {
                        vars.remove(name);
                    }
                    var => {
                        let (Some(kind), Some(value)) = (var["type"].as_str(), var["value"].as_str()) else {
                            return Err(bad_request(8000000, "each variable needs type and value"));
                        };
                        if !["plain_text", "secret_text"].contains(&kind) {
                            return Err(bad_request(8000000, "type is plain_text or secret_text"));
                        }
                        vars.insert(name.clone(), (kind.to_string(), value.to_string()));
                    }
                }
            }
        }
        Ok(p.shown(&project))
    }))
}

/// A Secrets Store secret: write-only value, its scopes, its id and when it
/// was last modified.
#[derive(Clone, Debug)]
pub struct StoreSecret {
    pub id: String,
    pub value: String,
    pub scopes: Vec<String>,
    pub modified: String,
}

#[derive(Clone, Debug, Default)]
pub struct SecretsStore {
    pub id: String,
    pub name: String,
    pub secrets: BTreeMap<String, StoreSecret>,
}

/// Modification times that only go forward (one second a change).
fn next_modified(state: &State_) -> String {
    let n = state.store_clock.fetch_add(1, Ordering::SeqCst) as i64;
    (chrono::DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap() + chrono::TimeDelta::seconds(n))
        .to_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn store_secret_json(store: &SecretsStore, s: &(&String, &StoreSecret)) -> Value {
    json!({
        "id": s.1.id, "name": s.0, "store_id": store.id, "status": "active",
        "created": "2026-11-01T00:00:00Z", "modified": s.1.modified, "scopes": s.1.scopes,
    })
}

fn with_store<T>(
    state: &State_,
    headers: &HeaderMap,
    account: &str,
    store: &str,
    then: impl FnOnce(&mut SecretsStore, &State_) -> Result<T, Response>,
) -> Result<T, Response> {
    authorized(headers, account)?;
    let mut stores = state.stores.lock().unwrap();
    let Some(s) = stores.iter_mut().find(|s| s.id == store) else {
        return Err(envelope(StatusCode::NOT_FOUND, &[(1001, "store not found")], Value::Null));
    };
    then(s, state)
}

async fn stores_list(State(state): State<Arc<State_>>, headers: HeaderMap, Path(account): Path<String>) -> Response {
    if let Err(r) = authorized(&headers, &account) {
        return r;
    }
    let stores = state.stores.lock().unwrap();
    answer(Ok(stores.iter().map(|s| json!({"id": s.id, "name": s.name, "created": "2026-11-01T00:00:00Z", "modified": "2026-11-01T00:00:00Z"})).collect()))
}

/// Names, ids and modification times, never values; `page` / `per_page`.
async fn store_secrets(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, store)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    answer(with_store(&state, &headers, &account, &store, |s, _| {
        let per_page = query.get("per_page").and_then(|p| p.parse().ok()).unwrap_or(20usize).clamp(1, 100);
        let page = query.get("page").and_then(|p| p.parse().ok()).unwrap_or(1usize).max(1);
        Ok(s.secrets.iter().skip((page - 1) * per_page).take(per_page).map(|x| store_secret_json(s, &x)).collect())
    }))
}

/// `POST …/secrets`: `[{name, value, scopes, comment}]`; a name that
/// exists, a value over 64 KiB or a missing scope is refused, whole.
async fn store_create(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, store)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    answer(with_store(&state, &headers, &account, &store, |s, state| {
        let body: Value = serde_json::from_slice(&body).map_err(|_| bad_request(1000, "could not parse the body"))?;
        let items = body.as_array().ok_or_else(|| bad_request(1000, "the body is an array of secrets"))?;
        let mut made = Vec::new();
        for item in items {
            let (Some(name), Some(value), Some(scopes)) =
                (item["name"].as_str(), item["value"].as_str(), item["scopes"].as_array())
            else {
                return Err(bad_request(1000, "each secret needs name, value and scopes"));
            };
            if s.secrets.contains_key(name) || made.iter().any(|(n, _): &(String, StoreSecret)| n == name) {
                return Err(envelope(
                    StatusCode::CONFLICT,
                    &[(1006, "a secret with this name already exists")],
                    Value::Null,
                ));
            }
            if value.len() > 64 * 1024 {
                return Err(bad_request(1000, "value is longer than 64 KiB"));
            }
            let scopes = scopes.iter().filter_map(Value::as_str).map(str::to_string).collect();
            let id = format!(
                "{:032x}",
                state.store_clock.load(Ordering::SeqCst) as u128 * 0x9E37_79B9 + made.len() as u128 + 1
            );
            made.push((
                name.to_string(),
                StoreSecret { id, value: value.into(), scopes, modified: next_modified(state) },
            ));
        }
        let out: Vec<Value> = made.iter().map(|(n, x)| store_secret_json(s, &(n, x))).collect();
        s.secrets.extend(made);
        Ok(out.into())
    }))
}

/// `PATCH …/secrets/{id}`: `{value}` (and scopes, comment).
async fn store_edit(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, store, id)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    answer(with_store(&state, &headers, &account, &store, |s, state| {
        let body: Value = serde_json::from_slice(&body).map_err(|_| bad_request(1000, "could not parse the body"))?;
        let Some((name, secret)) = s.secrets.iter_mut().find(|(_, x)| x.id == id) else {
            return Err(envelope(StatusCode::NOT_FOUND, &[(1003, "secret not found")], Value::Null));
        };
        if let Some(value) = body["value"].as_str() {
            if value.len() > 64 * 1024 {
                return Err(bad_request(1000, "value is longer than 64 KiB"));
            }
            secret.value = value.into();
        }
        secret.modified = next_modified(state);
        let (name, secret) = (name.clone(), secret.clone());
        Ok(store_secret_json(s, &(&name, &secret)))
    }))
}

async fn store_delete(
    State(state): State<Arc<State_>>,
    headers: HeaderMap,
    Path((account, store, id)): Path<(String, String, String)>,
) -> Response {
    answer(with_store(&state, &headers, &account, &store, |s, _| {
        let Some(name) = s.secrets.iter().find(|(_, x)| x.id == id).map(|(n, _)| n.clone()) else {
            return Err(envelope(StatusCode::NOT_FOUND, &[(1003, "secret not found")], Value::Null));
        };
        s.secrets.remove(&name);
        Ok(Value::Null)
    }))
}

/// `GET …/workers/scripts`: the account's Workers.
async fn scripts_list(State(state): State<Arc<State_>>, headers: HeaderMap, Path(account): Path<String>) -> Response {
    if let Err(r) = authorized(&headers, &account) {
        return r;
    }
    let scripts = state.scripts.lock().unwrap();
    let mut names: Vec<&String> = scripts.keys().collect();
    names.sort();
    answer(Ok(names.iter().map(|n| json!({"id": n, "created_on": "2026-11-01T00:00:00Z"})).collect()))
}
