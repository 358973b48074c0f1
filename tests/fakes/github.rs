//! The fake GitHub Actions secrets API: repository, environment and
//! organization scopes, each with a real Curve25519 key pair.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::json;

use super::{Control, faults_layer, serve};

pub const TOKEN: &str = "test-github-token";

pub struct Stored {
    pub value: Vec<u8>,
    /// The sealed box as received, for opening with real libsodium.
    pub sealed: Vec<u8>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub visibility: Option<String>,
    pub selected_repository_ids: Option<Vec<u64>>,
}

impl Stored {
    /// Who may use an organization secret, as GitHub lists it.
    fn shown_visibility(&self) -> &str {
        self.visibility.as_deref().unwrap_or("private")
    }
}

pub struct Scope {
    pub secret_key: crypto_box::SecretKey,
    pub key_id: String,
    pub secrets: BTreeMap<String, Stored>,
    pub is_org: bool,
}

#[derive(Default)]
pub struct State_ {
    pub scopes: Mutex<HashMap<String, Scope>>,
    /// Every write (PUT) as it arrived: when, and `scope/NAME`; for
    /// checking the budget was kept and nothing was written twice.
    pub writes: Mutex<Vec<(std::time::Instant, String)>>,
    /// Secret-scanning alerts, of every repository.
    pub alerts: Mutex<Vec<Alert>>,
    /// Repositories whose secret scanning is off (their alerts: 404).
    pub scanning_off: Mutex<Vec<String>>,
}

/// A secret-scanning alert, as GitHub keeps it.
#[derive(Clone, Debug)]
pub struct Alert {
    /// `o/r`.
    pub repo: String,
    pub number: u64,
    pub secret: String,
    pub state: String,
    pub resolution: Option<String>,
    pub resolution_comment: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Where GitHub first saw it: path, line, commit.
    pub first_location: Option<(String, u64, String)>,
}

impl Alert {
    fn json(&self, host: &str, with_repository: bool, hide_secret: bool) -> serde_json::Value {
        let (owner, name) = self.repo.split_once('/').unwrap();
        let mut a = json!({
            "number": self.number,
            "created_at": self.created_at,
            "updated_at": self.created_at,
            "url": format!("http://{host}/repos/{}/secret-scanning/alerts/{}", self.repo, self.number),
            "html_url": format!("https://github.com/{}/security/secret-scanning/{}", self.repo, self.number),
            "locations_url": format!("http://{host}/repos/{}/secret-scanning/alerts/{}/locations", self.repo, self.number),
            "state": self.state,
            "resolution": self.resolution,
            "resolved_at": null,
            "resolved_by": null,
            "resolution_comment": self.resolution_comment,
            "secret_type": "generic_token",
            "secret_type_display_name": "Generic token",
            "validity": "unknown",
            "publicly_leaked": false,
            "multi_repo": false,
            "is_base64_encoded": false,
        });
        if !hide_secret {
            a["secret"] = json!(self.secret);
        }
        if let Some((path, line, commit)) = &self.first_location {
            a["first_location_detected"] = json!({"path": path, "start_line": line, "end_line": line, "start_column": 1, "end_column": 10, "blob_sha": "0".repeat(40), "blob_url": "", "commit_sha": commit, "commit_url": ""});
            a["has_more_locations"] = json!(false);
        }
        if with_repository {
            a["repository"] = json!({"id": FakeGithub::repo_id(&self.repo), "name": name, "full_name": self.repo, "owner": {"login": owner}});
        }
        a
    }
}

pub struct FakeGithub {
    pub addr: SocketAddr,
    pub state: Arc<State_>,
    pub control: Arc<Control>,
}

#[derive(Clone)]
struct App {
    state: Arc<State_>,
}

impl FakeGithub {
    pub fn start() -> Self {
        let state = Arc::new(State_::default());
        let control = Arc::new(Control::default());
        let app = App { state: state.clone() };
        let routes = Router::new()
            .route("/repos/{owner}/{repo}/{app}/secrets/public-key", get(repo_key))
            .route("/repos/{owner}/{repo}/{app}/secrets", get(repo_list))
            .route("/repos/{owner}/{repo}/{app}/secrets/{name}", axum::routing::put(repo_put).delete(repo_delete))
            .route("/repos/{owner}/{repo}/environments/{env}", axum::routing::put(env_create))
            .route("/repos/{owner}/{repo}/environments/{env}/secrets/public-key", get(env_key))
            .route("/repos/{owner}/{repo}/environments/{env}/secrets", get(env_list))
            .route(
                "/repos/{owner}/{repo}/environments/{env}/secrets/{name}",
                axum::routing::put(env_put).delete(env_delete),
            )
            .route("/orgs/{org}/repos", get(org_repos))
            .route("/orgs/{org}/{app}/secrets/public-key", get(org_key))
            .route("/orgs/{org}/{app}/secrets", get(org_list))
            .route("/orgs/{org}/{app}/secrets/{name}", get(org_get).put(org_put).delete(org_delete))
            .route("/orgs/{org}/{app}/secrets/{name}/repositories", get(org_repositories))
            .route("/repos/{owner}/{repo}/secret-scanning/alerts", get(repo_alerts))
            .route("/repos/{owner}/{repo}/secret-scanning/alerts/{number}", axum::routing::patch(alert_update))
            .route("/orgs/{org}/secret-scanning/alerts", get(org_alerts));
        // GitHub Enterprise Server serves the same API under /api/v3 (how
        // `gh` reaches a host other than github.com).
        let router = Router::new()
            .merge(routes.clone())
            .nest("/api/v3", routes)
            .layer(axum::middleware::from_fn_with_state(control.clone(), faults_layer))
            .with_state(app);
        FakeGithub { addr: serve(router), state, control }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// GitHub's secret scanning finds `secret` in `repo` (`o/r`): a new
    /// open alert, numbered per repository; its number.
    pub fn add_alert(&self, repo: &str, secret: &str, first_location: Option<(&str, u64, &str)>) -> u64 {
        let mut alerts = self.state.alerts.lock().unwrap();
        let number = alerts.iter().filter(|a| a.repo == repo).count() as u64 + 1;
        alerts.push(Alert {
            repo: repo.into(),
            number,
            secret: secret.into(),
            state: "open".into(),
            resolution: None,
            resolution_comment: None,
            created_at: chrono::Utc::now(),
            first_location: first_location.map(|(p, l, c)| (p.to_string(), l, c.to_string())),
        });
        number
    }

    pub fn alert(&self, repo: &str, number: u64) -> Alert {
        self.state.alerts.lock().unwrap().iter().find(|a| a.repo == repo && a.number == number).unwrap().clone()
    }

    pub fn turn_off_scanning(&self, repo: &str) {
        self.state.scanning_off.lock().unwrap().push(repo.into());
    }

    fn add(&self, scope: String, is_org: bool) {
        let secret_key = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
        let key_id = format!("{}", 568250167242549743u64.wrapping_add(self.state.scopes.lock().unwrap().len() as u64));
        self.state.scopes.lock().unwrap().insert(scope, Scope { secret_key, key_id, secrets: BTreeMap::new(), is_org });
    }

    pub fn add_repo(&self, repo: &str) {
        self.add(format!("repo:{repo}"), false);
    }

    /// The repository's Dependabot or Codespaces secrets: their own key pair.
    pub fn add_repo_app(&self, repo: &str, app: &str) {
        self.add(scope_of(app, &format!("repo:{repo}")), false);
    }

    pub fn add_org_app(&self, org: &str, app: &str) {
        self.add(scope_of(app, &format!("org:{org}")), true);
    }

    pub fn add_env(&self, repo: &str, env: &str) {
        self.add(format!("env:{repo}:{env}"), false);
    }

    pub fn add_org(&self, org: &str) {
        self.add(format!("org:{org}"), true);
    }

    /// A repository's id: stable, derived from its name.
    pub fn repo_id(repo: &str) -> u64 {
        1000 + repo.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) % 1_000_000
    }

    /// The plaintext GitHub holds for a secret (what a workflow would see).
    pub fn value(&self, scope: &str, name: &str) -> Option<String> {
        let scopes = self.state.scopes.lock().unwrap();
        scopes.get(scope)?.secrets.get(name).map(|s| String::from_utf8(s.value.clone()).unwrap())
    }

    pub fn names(&self, scope: &str) -> Vec<String> {
        self.state.scopes.lock().unwrap()[scope].secrets.keys().cloned().collect()
    }

    /// What a person does in the web UI.
    pub fn set_by_hand(&self, scope: &str, name: &str, value: &str) {
        let mut scopes = self.state.scopes.lock().unwrap();
        // A person's edit comes seconds after a write, not within one.
        let now = chrono::Utc::now() + chrono::TimeDelta::seconds(3);
        let s = scopes.get_mut(scope).unwrap();
        let created_at = s.secrets.get(name).map_or(now, |old| old.created_at);
        s.secrets.insert(
            name.into(),
            Stored {
                value: value.as_bytes().to_vec(),
                sealed: vec![],
                created_at,
                updated_at: now,
                visibility: None,
                selected_repository_ids: None,
            },
        );
    }

    /// GitHub replaces the scope's key pair: a write sealed to the old key
    /// is refused (422, `Bad key_id`).
    pub fn rotate_key(&self, scope: &str) {
        let mut scopes = self.state.scopes.lock().unwrap();
        let s = scopes.get_mut(scope).unwrap();
        s.secret_key = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
        s.key_id = format!("{}9", s.key_id);
    }

    pub fn delete_by_hand(&self, scope: &str, name: &str) {
        self.state.scopes.lock().unwrap().get_mut(scope).unwrap().secrets.remove(name);
    }

    pub fn stored<T>(&self, scope: &str, name: &str, f: impl FnOnce(&Stored, &crypto_box::SecretKey) -> T) -> T {
        let scopes = self.state.scopes.lock().unwrap();
        let s = &scopes[scope];
        f(&s.secrets[name], &s.secret_key)
    }
}

/// `repo:o/r` for Actions secrets, `dependabot:repo:o/r` for another app's:
/// each app keeps its own secrets and key pair.
fn scope_of(app: &str, base: &str) -> String {
    if app == "actions" { base.to_string() } else { format!("{app}:{base}") }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest/actions/secrets", "status": status.as_u16().to_string()}))).into_response()
}

fn authorized(headers: &HeaderMap) -> Result<(), Response> {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        // GitHub takes both schemes (`gh` sends `token`).
        Some(v) if v == format!("Bearer {TOKEN}") || v == format!("token {TOKEN}") => Ok(()),
        _ => Err(error(StatusCode::UNAUTHORIZED, "Bad credentials")),
    }
}

fn with_scope<T>(app: &App, scope: &str, f: impl FnOnce(&mut Scope) -> T) -> Result<T, Response> {
    let mut scopes = app.state.scopes.lock().unwrap();
    scopes.get_mut(scope).map(f).ok_or_else(|| error(StatusCode::NOT_FOUND, "Not Found"))
}

fn public_key(app: &App, headers: &HeaderMap, scope: String) -> Response {
    if let Err(r) = authorized(headers) {
        return r;
    }
    with_scope(app, &scope, |s| {
        Json(json!({"key_id": s.key_id, "key": STANDARD.encode(s.secret_key.public_key().as_bytes())})).into_response()
    })
    .unwrap_or_else(|r| r)
}

#[derive(Deserialize)]
struct Paging {
    per_page: Option<usize>,
    page: Option<usize>,
}

fn list(app: &App, headers: &HeaderMap, scope: String, paging: Paging, path: String) -> Response {
    if let Err(r) = authorized(headers) {
        return r;
    }
    let per_page = paging.per_page.unwrap_or(30).clamp(1, 100);
    let page = paging.page.unwrap_or(1).max(1);
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string();
    with_scope(app, &scope, |s| {
        let total = s.secrets.len();
        let items: Vec<_> = s
            .secrets
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|(name, v)| {
                let mut item = json!({"name": name, "created_at": v.created_at, "updated_at": v.updated_at});
                // Organization secrets are listed with who may use them.
                if scope.contains("org:") {
                    item["visibility"] = json!(v.shown_visibility());
                }
                item
            })
            .collect();
        let mut response = Json(json!({"total_count": total, "secrets": items})).into_response();
        if page * per_page < total {
            let next = format!("<http://{host}{path}?per_page={per_page}&page={}>; rel=\"next\"", page + 1);
            response.headers_mut().insert("link", next.parse().unwrap());
        }
        response
    })
    .unwrap_or_else(|r| r)
}

#[derive(Deserialize)]
struct PutBody {
    encrypted_value: String,
    key_id: String,
    visibility: Option<String>,
    selected_repository_ids: Option<Vec<u64>>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.to_ascii_uppercase().starts_with("GITHUB_")
}

fn put(app: &App, headers: &HeaderMap, scope: String, name: String, body: axum::body::Bytes) -> Response {
    if let Err(r) = authorized(headers) {
        return r;
    }
    if !valid_name(&name) {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Secret names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_).",
        );
    }
    let Ok(body) = serde_json::from_slice::<PutBody>(&body) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request body");
    };
    app.state.writes.lock().unwrap().push((std::time::Instant::now(), format!("{scope}/{name}")));
    with_scope(app, &scope, |s| {
        if body.key_id != s.key_id {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "Bad key_id");
        }
        let Ok(sealed) = STANDARD.decode(&body.encrypted_value) else {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "encrypted_value is not base64");
        };
        let Ok(value) = s.secret_key.unseal(&sealed) else {
            return error(StatusCode::UNPROCESSABLE_ENTITY, "Could not decrypt the secret with the repository's key");
        };
        if s.is_org {
            match body.visibility.as_deref() {
                Some("all" | "private") => {}
                Some("selected") if body.selected_repository_ids.is_some() => {}
                _ => {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "visibility must be all, private or selected (with selected_repository_ids)",
                    );
                }
            }
        }
        let name = name.to_ascii_uppercase();
        let now = chrono::Utc::now();
        let created = !s.secrets.contains_key(&name);
        let created_at = s.secrets.get(&name).map_or(now, |old| old.created_at);
        s.secrets.insert(
            name,
            Stored {
                value,
                sealed,
                created_at,
                updated_at: now,
                visibility: body.visibility,
                selected_repository_ids: body.selected_repository_ids,
            },
        );
        if created {
            (StatusCode::CREATED, Json(json!({}))).into_response()
        } else {
            StatusCode::NO_CONTENT.into_response()
        }
    })
    .unwrap_or_else(|r| r)
}

fn delete(app: &App, headers: &HeaderMap, scope: String, name: String) -> Response {
    if let Err(r) = authorized(headers) {
        return r;
    }
    with_scope(app, &scope, |s| match s.secrets.remove(&name.to_ascii_uppercase()) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => error(StatusCode::NOT_FOUND, "Not Found"),
    })
    .unwrap_or_else(|r| r)
}

async fn repo_key(
    State(app): State<App>,
    headers: HeaderMap,
    Path((o, r, a)): Path<(String, String, String)>,
) -> Response {
    public_key(&app, &headers, scope_of(&a, &format!("repo:{o}/{r}")))
}
async fn repo_list(
    State(app): State<App>,
    headers: HeaderMap,
    Path((o, r, a)): Path<(String, String, String)>,
    Query(p): Query<Paging>,
) -> Response {
    list(&app, &headers, scope_of(&a, &format!("repo:{o}/{r}")), p, format!("/repos/{o}/{r}/{a}/secrets"))
}
async fn repo_put(
    State(app): State<App>,
    headers: HeaderMap,
    Path((o, r, a, n)): Path<(String, String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    put(&app, &headers, scope_of(&a, &format!("repo:{o}/{r}")), n, body)
}
async fn repo_delete(
    State(app): State<App>,
    headers: HeaderMap,
    Path((o, r, a, n)): Path<(String, String, String, String)>,
) -> Response {
    delete(&app, &headers, scope_of(&a, &format!("repo:{o}/{r}")), n)
}
/// The organization's repositories (those added), paginated like GitHub.
async fn org_repos(
    State(app): State<App>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(paging): Query<Paging>,
) -> Response {
    if let Err(r) = authorized(&headers) {
        return r;
    }
    let prefix = format!("repo:{org}/");
    let mut repos: Vec<String> =
        app.state.scopes.lock().unwrap().keys().filter_map(|k| k.strip_prefix(&prefix).map(str::to_string)).collect();
    repos.sort();
    let per_page = paging.per_page.unwrap_or(30).clamp(1, 100);
    let page = paging.page.unwrap_or(1).max(1);
    let items: Vec<_> = repos
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|name| json!({"id": FakeGithub::repo_id(&format!("{org}/{name}")), "name": name, "full_name": format!("{org}/{name}")}))
        .collect();
    let mut response = Json(items).into_response();
    if page * per_page < repos.len() {
        let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string();
        let next = format!("<http://{host}/orgs/{org}/repos?per_page={per_page}&page={}>; rel=\"next\"", page + 1);
        response.headers_mut().insert("link", next.parse().unwrap());
    }
    response
}

#[derive(Deserialize)]
struct AlertQuery {
    state: Option<String>,
    per_page: Option<usize>,
    page: Option<usize>,
    hide_secret: Option<bool>,
}

/// A page of alerts, with GitHub's `Link` to the next (keeping the query).
fn alerts_page(
    app: &App,
    headers: &HeaderMap,
    q: AlertQuery,
    path: String,
    of: impl Fn(&Alert) -> bool,
    org: bool,
) -> Response {
    if let Some(state) = &q.state
        && state != "open"
        && state != "resolved"
    {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid state: must be open or resolved");
    }
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string();
    let per_page = q.per_page.unwrap_or(30).clamp(1, 100);
    let page = q.page.unwrap_or(1).max(1);
    let alerts = app.state.alerts.lock().unwrap();
    let chosen: Vec<&Alert> =
        alerts.iter().filter(|a| of(a) && q.state.as_ref().is_none_or(|s| &a.state == s)).collect();
    let items: Vec<_> = chosen
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|a| a.json(&host, org, q.hide_secret.unwrap_or(false)))
        .collect();
    let mut response = Json(items).into_response();
    if page * per_page < chosen.len() {
        let state = q.state.map(|s| format!("state={s}&")).unwrap_or_default();
        let next = format!("<http://{host}{path}?{state}per_page={per_page}&page={}>; rel=\"next\"", page + 1);
        response.headers_mut().insert("link", next.parse().unwrap());
    }
    response
}

async fn repo_alerts(
    State(app): State<App>,
    headers: HeaderMap,
    Path((o, r)): Path<(String, String)>,
    Query(q): Query<AlertQuery>,
) -> Response {
    if let Err(resp) = authorized(&headers) {
        return resp;
    }
    let repo = format!("{o}/{r}");
    let known = app
        .state
        .scopes
        .lock()
        .unwrap()
        .keys()
        .any(|k| k == &format!("repo:{repo}") || k.starts_with(&format!("env:{repo}:")));
    if !known {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    if app.state.scanning_off.lock().unwrap().contains(&repo) {
        return error(StatusCode::NOT_FOUND, "Secret scanning is disabled on this repository.");
    }
    let path = format!("/repos/{repo}/secret-scanning/alerts");
    alerts_page(&app, &headers, q, path, |a| a.repo == repo, false)
}

async fn org_alerts(
    State(app): State<App>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(q): Query<AlertQuery>,
) -> Response {
    if let Err(resp) = authorized(&headers) {
        return resp;
    }
    let own = format!("org:{org}");
    if !app.state.scopes.lock().unwrap().keys().any(|k| k == &own || k.ends_with(&format!(":{own}"))) {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    let prefix = format!("{org}/");
    let off = app.state.scanning_off.lock().unwrap().clone();
    alerts_page(
        &app,
        &headers,
        q,
        format!("/orgs/{org}/secret-scanning/alerts"),
        |a| a.repo.starts_with(&prefix) && !off.contains(&a.repo),
        true,
    )
}

/// `PATCH …/alerts/{n}`: GitHub's rules for resolving an alert.
async fn alert_update(
    State(app): State<App>,
    headers: HeaderMap,
    Path((o, r, n)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(resp) = authorized(&headers) {
        return resp;
    }
    let repo = format!("{o}/{r}");
    let Ok(number) = n.parse::<u64>() else { return error(StatusCode::NOT_FOUND, "Not Found") };
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "Problems parsing JSON");
    };
    let state = body.get("state").and_then(|s| s.as_str()).map(str::to_string);
    let resolution = body.get("resolution").and_then(|s| s.as_str()).map(str::to_string);
    let comment = body.get("resolution_comment").and_then(|s| s.as_str()).map(str::to_string);
    match state.as_deref() {
        Some("resolved") => match resolution.as_deref() {
            Some("false_positive" | "wont_fix" | "revoked" | "used_in_tests") => {}
            _ => return error(StatusCode::UNPROCESSABLE_ENTITY, "A resolution is required when the state is resolved"),
        },
        Some("open") => {}
        _ => return error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid state: must be open or resolved"),
    }
    if comment.as_ref().is_some_and(|c| c.chars().count() > 280) {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "resolution_comment is too long (maximum is 280 characters)");
    }
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_string();
    let mut alerts = app.state.alerts.lock().unwrap();
    let Some(alert) = alerts.iter_mut().find(|a| a.repo == repo && a.number == number) else {
        return error(StatusCode::NOT_FOUND, "Not Found");
    };
    alert.state = state.unwrap();
    alert.resolution = if alert.state == "resolved" { resolution } else { None };
    alert.resolution_comment = comment;
    Json(alert.json(&host, false, false)).into_response()
}

/// Creates an environment (with its own key pair); an existing one is kept.
async fn env_create(
    State(app): State<App>,
    headers: HeaderMap,
    Path((o, r, e)): Path<(String, String, String)>,
) -> Response {
    if let Err(resp) = authorized(&headers) {
        return resp;
    }
    let scope = format!("env:{o}/{r}:{e}");
    if !app.state.scopes.lock().unwrap().contains_key(&scope) {
        let secret_key = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
        let key_id = format!("{}", 768250167242549743u64.wrapping_add(app.state.scopes.lock().unwrap().len() as u64));
        app.state
            .scopes
            .lock()
            .unwrap()
            .insert(scope, Scope { secret_key, key_id, secrets: BTreeMap::new(), is_org: false });
    }
    Json(json!({"name": e})).into_response()
}

async fn env_key(
    State(app): State<App>,
    headers: HeaderMap,
    Path((o, r, e)): Path<(String, String, String)>,
) -> Response {
    public_key(&app, &headers, format!("env:{o}/{r}:{e}"))
}
async fn env_list(
    State(app): State<App>,
    headers: HeaderMap,
    Path((o, r, e)): Path<(String, String, String)>,
    Query(p): Query<Paging>,
) -> Response {
    list(&app, &headers, format!("env:{o}/{r}:{e}"), p, format!("/repos/{o}/{r}/environments/{e}/secrets"))
}
async fn env_put(
    State(app): State<App>,
    headers: HeaderMap,
    Path((o, r, e, n)): Path<(String, String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    put(&app, &headers, format!("env:{o}/{r}:{e}"), n, body)
}
async fn env_delete(
    State(app): State<App>,
    headers: HeaderMap,
    Path((o, r, e, n)): Path<(String, String, String, String)>,
) -> Response {
    delete(&app, &headers, format!("env:{o}/{r}:{e}"), n)
}
async fn org_key(State(app): State<App>, headers: HeaderMap, Path((org, a)): Path<(String, String)>) -> Response {
    public_key(&app, &headers, scope_of(&a, &format!("org:{org}")))
}
async fn org_list(
    State(app): State<App>,
    headers: HeaderMap,
    Path((org, a)): Path<(String, String)>,
    Query(p): Query<Paging>,
) -> Response {
    list(&app, &headers, scope_of(&a, &format!("org:{org}")), p, format!("/orgs/{org}/{a}/secrets"))
}
async fn org_put(
    State(app): State<App>,
    headers: HeaderMap,
    Path((org, a, n)): Path<(String, String, String)>,
    body: axum::body::Bytes,
) -> Response {
    put(&app, &headers, scope_of(&a, &format!("org:{org}")), n, body)
}
/// One organization secret: name, dates and visibility (never a value).
async fn org_get(
    State(app): State<App>,
    headers: HeaderMap,
    Path((org, a, n)): Path<(String, String, String)>,
) -> Response {
    if let Err(r) = authorized(&headers) {
        return r;
    }
    with_scope(&app, &scope_of(&a, &format!("org:{org}")), |s| match s.secrets.get(&n) {
        Some(v) => Json(json!({
            "name": n, "created_at": v.created_at, "updated_at": v.updated_at,
            "visibility": v.shown_visibility(),
            "selected_repositories_url": format!("/orgs/{org}/{a}/secrets/{n}/repositories"),
        }))
        .into_response(),
        None => error(StatusCode::NOT_FOUND, "Not Found"),
    })
    .unwrap_or_else(|r| r)
}

/// The repositories a `selected` organization secret is shared with.
async fn org_repositories(
    State(app): State<App>,
    headers: HeaderMap,
    Path((org, a, n)): Path<(String, String, String)>,
) -> Response {
    if let Err(r) = authorized(&headers) {
        return r;
    }
    with_scope(&app, &scope_of(&a, &format!("org:{org}")), |s| match s.secrets.get(&n) {
        Some(v) => {
            let ids = v.selected_repository_ids.clone().unwrap_or_default();
            let repos: Vec<_> = ids.iter().map(|id| json!({"id": id, "name": format!("repo{id}")})).collect();
            Json(json!({"total_count": repos.len(), "repositories": repos})).into_response()
        }
        None => error(StatusCode::NOT_FOUND, "Not Found"),
    })
    .unwrap_or_else(|r| r)
}

async fn org_delete(
    State(app): State<App>,
    headers: HeaderMap,
    Path((org, a, n)): Path<(String, String, String)>,
) -> Response {
    delete(&app, &headers, scope_of(&a, &format!("org:{org}")), n)
}
