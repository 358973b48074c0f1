//! The usage map: who reads each secret, and whether a policy delivers it
//! there. Offline, from the project's files alone: GitHub Actions
//! workflows (`.github/workflows/*.yml`) and local actions (`action.yml`)
//! read `${{ secrets.NAME }}`; Workers read what their Wrangler
//! configuration binds (`secrets_store_secrets`) and declares
//! (`secrets.required`). Matched against the policies' targets, the map
//! says what is read and delivered nowhere (the job or the Worker gets
//! nothing), what is delivered and read by nothing here, and which plain
//! values in those files look like secrets. `check` reports it,
//! `usage` prints it (a table, JSON, or a Mermaid diagram), and `init
//! --discover` drafts a policy from it.

pub mod discover;
pub mod graph;
mod jsonc;
pub mod looks;
mod workflows;
mod wrangler;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::check::{Finding, Severity};
use crate::policy::{GithubApp, GithubScope, Policy, TargetPolicy, TargetSpec, Visibility};
use crate::secret::Secret;
pub use workflows::JobEnv;

/// A place in a file: relative to the project (or, for a file above it,
/// to the repository), 1-based line and column.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct At {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ReaderKind {
    /// A workflow in `.github/workflows/`.
    Workflow,
    /// A local action (`action.yml`), e.g. a composite action.
    Action,
    /// A Worker described by a Wrangler configuration.
    Worker,
}

/// Something that reads secrets: a workflow file, an action, a Worker.
#[derive(Debug, Clone, Serialize)]
pub struct Reader {
    pub kind: ReaderKind,
    pub file: String,
    /// A Worker's script name, where its configuration gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// A Worker's configuration: its top-level name and environment (how a
    /// `wrangler` target names the script).
    #[serde(skip)]
    pub top: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// A Worker that lists the secrets it needs (`secrets.required`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub declares_secrets: bool,
}

impl Reader {
    /// How a person would name it: `workflow .github/workflows/ci.yml`,
    /// `Worker api (wrangler.toml)`.
    pub fn label(&self) -> String {
        match self.kind {
            ReaderKind::Workflow => format!("workflow {}", self.file),
            ReaderKind::Action => format!("action {}", self.file),
            ReaderKind::Worker => match &self.worker {
                Some(name) => format!("Worker {name} ({})", self.file),
                None => format!("the Worker of {}", self.file),
            },
        }
    }
}

/// How a secret is read.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "via", rename_all = "kebab-case")]
pub enum Via {
    /// `${{ secrets.NAME }}` in a workflow or an action.
    Expression {
        #[serde(skip_serializing_if = "Option::is_none")]
        job: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        environment: Option<JobEnv>,
    },
    /// A Worker's `secrets_store_secrets` binding.
    StoreBinding { binding: String, store_id: String },
    /// A Worker's `secrets.required`.
    Required,
}

/// One read of one secret.
#[derive(Debug, Clone, Serialize)]
pub struct Read {
    /// An index into [`Usage::readers`].
    pub reader: usize,
    /// As written.
    pub secret: String,
    pub at: At,
    #[serde(flatten)]
    pub via: Via,
}

/// Where a plain value sits.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Place {
    /// An `env:` entry of a workflow or an action.
    WorkflowEnv,
    /// A Worker's `vars`.
    WranglerVars,
}

impl Place {
    fn describe(self) -> &'static str {
        match self {
            Place::WorkflowEnv => "a plain `env:` value",
            Place::WranglerVars => "a plain Worker variable (`vars`)",
        }
    }
}

/// A plain value in a configuration file (its value never leaves here).
pub struct Literal {
    pub at: At,
    pub name: String,
    pub place: Place,
    value: zeroize::Zeroizing<String>,
}

/// What the project's files say is read, before any policy is looked at.
#[derive(Default)]
pub struct Usage {
    pub readers: Vec<Reader>,
    pub reads: Vec<Read>,
    pub literals: Vec<Literal>,
    /// How many workflow files there are (reading secrets or not).
    pub workflows: usize,
    /// Configuration files that could not be read, and why.
    pub unreadable: Vec<(At, String)>,
    /// .env-like files (`.env`, `.env.*`, `.dev.vars`), when asked for.
    pub env_files: Vec<PathBuf>,
}

impl Usage {
    /// Nothing here reads a secret or holds a plain value.
    fn is_empty(&self) -> bool {
        self.readers.is_empty() && self.unreadable.is_empty() && self.workflows == 0
    }
}

/// Folders never looked into.
const SKIPPED_DIRS: &[&str] = &[".git", "node_modules"];

/// Reads the project under `root` (git-ignored files and `skip` aside);
/// the repository's `.github/workflows` too when the project is a folder
/// inside it. With `env_files`, also lists .env-like files, ignored or not.
pub fn scan(root: &Path, skip: &[PathBuf], env_files: bool) -> Usage {
    let mut usage = Usage::default();
    let top = git_top(root).unwrap_or_else(|| root.to_path_buf());
    let shown = |path: &Path| -> String {
        let rel = path.strip_prefix(root).or_else(|_| path.strip_prefix(&top)).unwrap_or(path);
        rel.display().to_string()
    };
    // Workflows run from the repository's top only.
    let mut workflow_files: Vec<PathBuf> = std::fs::read_dir(top.join(".github/workflows"))
        .map(|dir| {
            dir.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml") && p.is_file())
                .collect()
        })
        .unwrap_or_default();
    workflow_files.sort();
    usage.workflows = workflow_files.len();
    for path in &workflow_files {
        read_workflow(&mut usage, path, shown(path), ReaderKind::Workflow);
    }

    let mut builder = ignore::WalkBuilder::new(root);
    if top != root && top.join(".github").is_dir() {
        builder.add(top.join(".github"));
    }
    let skip: Vec<PathBuf> = skip.iter().map(|p| p.canonicalize().unwrap_or_else(|_| p.clone())).collect();
    builder.hidden(false).require_git(false).sort_by_file_name(|a, b| a.cmp(b)).filter_entry(move |e| {
        !SKIPPED_DIRS.iter().any(|d| e.file_name() == *d) && !skip.iter().any(|s| e.path() == s)
    });
    let (mut actions, mut configs) = (Vec::new(), Vec::new());
    for entry in builder.build().flatten() {
        let path = entry.path();
        if entry.file_type().is_some_and(|t| t.is_dir()) {
            if env_files {
                usage.env_files.extend(env_files_in(path));
            }
            continue;
        }
        let name = entry.file_name().to_string_lossy();
        if name == "action.yml" || name == "action.yaml" {
            actions.push(path.to_path_buf());
        } else if wrangler::FILE_NAMES.contains(&name.as_ref()) {
            configs.push(path.to_path_buf());
        }
    }
    actions.dedup();
    for path in &actions {
        read_workflow(&mut usage, path, shown(path), ReaderKind::Action);
    }
    for path in &configs {
        read_wrangler(&mut usage, path, shown(path));
    }
    usage.env_files.sort();
    usage.env_files.dedup();
    usage
}

/// The folder holding `.git` at or above `dir`.
fn git_top(dir: &Path) -> Option<PathBuf> {
    dir.ancestors().find(|d| d.join(".git").exists()).map(Path::to_path_buf)
}

/// `.env`, `.env.local`, `.dev.vars`… in `dir` (ignored or not: they are
/// meant to be), not examples.
fn env_files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            let env_like =
                name == ".env" || name.starts_with(".env.") || name == ".dev.vars" || name.starts_with(".dev.vars.");
            let example = ["example", "sample", "template", "dist", "tmpl"].iter().any(|s| name.ends_with(s));
            env_like && !example
        })
        .collect()
}

fn read_text(usage: &mut Usage, path: &Path, shown: &str) -> Option<String> {
    match std::fs::read(path).map(String::from_utf8) {
        Ok(Ok(text)) => Some(text),
        Ok(Err(_)) => {
            usage.unreadable.push((At { file: shown.into(), line: 1, col: 1 }, "is not UTF-8 text".into()));
            None
        }
        Err(e) => {
            usage.unreadable.push((At { file: shown.into(), line: 1, col: 1 }, format!("cannot be read ({e})")));
            None
        }
    }
}

fn read_workflow(usage: &mut Usage, path: &Path, shown: String, kind: ReaderKind) {
    let Some(text) = read_text(usage, path, &shown) else { return };
    let mut scanned = workflows::scan(&text);
    let at = |line, col| At { file: shown.clone(), line, col };
    for v in std::mem::take(&mut scanned.env_values) {
        usage.literals.push(Literal { at: at(v.line, v.col), name: v.name, place: Place::WorkflowEnv, value: v.value });
    }
    // A reusable workflow's `secrets.X` for an X its caller passes in is
    // not a repository secret.
    let reads: Vec<_> =
        scanned.reads.iter().filter(|r| !scanned.from_caller.contains(&r.name.to_ascii_uppercase())).collect();
    if reads.is_empty() {
        return;
    }
    let reader = usage.readers.len();
    usage.readers.push(Reader {
        kind,
        file: shown.clone(),
        worker: None,
        top: None,
        env: None,
        declares_secrets: false,
    });
    for r in reads {
        let environment = scanned.environment_of(r.job.as_deref()).cloned();
        usage.reads.push(Read {
            reader,
            secret: r.name.clone(),
            at: at(r.line, r.col),
            via: Via::Expression { job: r.job.clone(), environment },
        });
    }
}

fn read_wrangler(usage: &mut Usage, path: &Path, shown: String) {
    let Some(text) = read_text(usage, path, &shown) else { return };
    let workers = match wrangler::parse(path, &text) {
        Ok(workers) => workers,
        Err((line, col, why)) => {
            usage.unreadable.push((At { file: shown, line, col }, why));
            return;
        }
    };
    let at = |(line, col): (usize, usize)| At { file: shown.clone(), line, col };
    for w in workers {
        for v in w.vars {
            usage.literals.push(Literal { at: at(v.at), name: v.name, place: Place::WranglerVars, value: v.value });
        }
        if w.bindings.is_empty() && w.required.is_none() {
            continue;
        }
        let reader = usage.readers.len();
        usage.readers.push(Reader {
            kind: ReaderKind::Worker,
            file: shown.clone(),
            worker: w.script.clone(),
            top: w.top.clone(),
            env: w.env.clone(),
            declares_secrets: w.required.is_some(),
        });
        for b in w.bindings {
            usage.reads.push(Read {
                reader,
                secret: b.secret_name,
                at: at(b.at),
                via: Via::StoreBinding { binding: b.binding, store_id: b.store_id },
            });
        }
        for (name, pos) in w.required.unwrap_or_default() {
            usage.reads.push(Read { reader, secret: name, at: at(pos), via: Via::Required });
        }
    }
}

/// The GitHub repository this project is, and how that is known.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Repository {
    pub owner: String,
    pub name: String,
    /// `GITHUB_REPOSITORY` or `git remote origin`.
    pub from: &'static str,
}

impl Repository {
    pub fn is(&self, owner: &str, name: &str) -> bool {
        self.owner.eq_ignore_ascii_case(owner) && self.name.eq_ignore_ascii_case(name)
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

/// `GITHUB_REPOSITORY` (GitHub Actions sets it), else the `origin`
/// remote of the git repository holding `root`.
pub fn repository(root: &Path) -> Option<Repository> {
    if let Some((owner, name)) = std::env::var(crate::env_vars::GITHUB_REPOSITORY).ok().as_deref().and_then(owner_repo)
    {
        return Some(Repository { owner, name, from: crate::env_vars::GITHUB_REPOSITORY });
    }
    let out = std::process::Command::new("git")
        .args(["remote", "get-url", "origin"])
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let url = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (owner, name) = parse_remote(&url)?;
    Some(Repository { owner, name, from: "git remote origin" })
}

/// `owner/name`.
fn owner_repo(text: &str) -> Option<(String, String)> {
    let (owner, name) = text.trim().trim_matches('/').split_once('/')?;
    let ok = crate::policy::is_github_account_or_repo;
    (ok(owner) && ok(name) && name != "." && name != "..").then(|| (owner.to_string(), name.to_string()))
}

/// `git@github.com:o/r.git`, `https://github.com/o/r(.git)`,
/// `ssh://git@github.com/o/r.git` (any host: GitHub Enterprise too).
fn parse_remote(url: &str) -> Option<(String, String)> {
    let path = if let Some((_, rest)) = url.split_once("://") {
        rest.split_once('/')?.1
    } else {
        // scp-like: [user@]host:path
        let (host, path) = url.split_once(':')?;
        if host.contains('/') {
            return None;
        }
        path
    };
    let path = path.trim_end_matches('/');
    owner_repo(path.strip_suffix(".git").unwrap_or(path))
}

/// Who delivers a secret to a reader: a token's target under a name.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Delivery {
    pub token: String,
    pub target: String,
    pub name: String,
}

/// What is known of a read once the policies are looked at.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum State {
    Delivered,
    /// Nothing delivers it where it is read; why, said for a person.
    NotDelivered {
        why: String,
    },
    /// `GITHUB_TOKEN`: GitHub provides it to every job.
    ProvidedByGithub,
    /// chitty-secrets' own credentials (the identity, the targets' and
    /// issuers' credentials): set by hand, `ci init` lists them.
    OwnCredential,
    /// Listed in `[check] set_elsewhere`.
    SetElsewhere,
}

/// A read, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    #[serde(flatten)]
    pub read: Read,
    pub reader_label: String,
    #[serde(flatten)]
    pub state: State,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub delivered_by: Vec<Delivery>,
}

/// A name a policy delivers that nothing in this project reads.
#[derive(Debug, Clone, Serialize)]
pub struct Unread {
    pub token: String,
    pub target: String,
    pub name: String,
    /// The target's entry in the policy.
    pub file: String,
    pub line: usize,
    /// Who would read it here.
    pub readers: String,
}

/// The usage map: reads resolved against the policies.
pub struct Map {
    pub usage: Usage,
    pub repository: Option<Repository>,
    pub reads: Vec<Resolved>,
    pub unread: Vec<Unread>,
}

impl Map {
    /// Resolves `usage` against `policy`. The repository is asked for
    /// (git) only when a workflow or an action reads secrets.
    pub fn build(policy: &Policy, usage: Usage) -> Map {
        let expressions = usage.reads.iter().any(|r| matches!(r.via, Via::Expression { .. }));
        let repository = if expressions || usage.workflows > 0 { repository(&policy.root) } else { None };
        Map::with_repository(policy, usage, repository)
    }

    pub fn with_repository(policy: &Policy, usage: Usage, repository: Option<Repository>) -> Map {
        let own = own_credentials(policy);
        let elsewhere: BTreeSet<String> = policy.set_elsewhere.iter().map(|n| n.to_ascii_uppercase()).collect();
        let reads = usage
            .reads
            .iter()
            .map(|read| {
                let reader = &usage.readers[read.reader];
                let (delivered_by, why) = deliveries(policy, repository.as_ref(), reader, read);
                let upper = read.secret.to_ascii_uppercase();
                let github = matches!(read.via, Via::Expression { .. });
                let state = if github && upper == "GITHUB_TOKEN" {
                    State::ProvidedByGithub
                } else if !delivered_by.is_empty() {
                    State::Delivered
                } else if elsewhere.contains(&upper) {
                    State::SetElsewhere
                } else if github && own.contains(&upper) {
                    State::OwnCredential
                } else {
                    State::NotDelivered { why }
                };
                Resolved { read: read.clone(), reader_label: reader.label(), state, delivered_by }
            })
            .collect();
        let unread = unread(policy, &usage, repository.as_ref());
        Map { usage, repository, reads, unread }
    }

    /// The plain values that look like secrets (or are placeholders under
    /// a secret's name), and why. `known` are the registry's live values.
    pub fn suspicious(&self, placeholders: &[String], known: &[(String, Secret)]) -> Vec<(&Literal, looks::Looks)> {
        self.usage
            .literals
            .iter()
            .filter_map(|l| {
                let known = known
                    .iter()
                    .find(|(_, v)| same(v, &l.value))
                    .map(|(t, _)| looks::Looks::Known { token: t.clone() });
                known.or_else(|| looks::judge(&l.name, &l.value, placeholders)).map(|looks| (l, looks))
            })
            .collect()
    }

    /// The findings `check` reports. `known` are the registry's live
    /// values (with the identity), to recognise one committed in plain.
    pub fn findings(&self, placeholders: &[String], known: &[(String, Secret)]) -> Vec<Finding> {
        let mut out = Vec::new();
        let finding =
            |severity, code, token: Option<&str>, at: Option<&At>, message: String, hint: Option<String>| Finding {
                severity,
                code,
                token: token.map(str::to_string),
                file: at.map(|a| a.file.clone()),
                line: at.map(|a| a.line),
                message,
                hint: hint.map(crate::error::Hint::from),
            };
        for (at, why) in &self.usage.unreadable {
            out.push(finding(
                Severity::Warning,
                "usage-unreadable",
                None,
                Some(at),
                format!("{} {why}: the secrets it reads were not checked", at.file),
                Some("fix the file (wrangler and GitHub read it too)".into()),
            ));
        }
        for r in &self.reads {
            let State::NotDelivered { why } = &r.state else { continue };
            let hint = match &r.read.via {
                Via::Expression { .. } => format!(
                    "declare a token with a `github` target for {} (`chitty-secrets init --discover` drafts a policy where there is none), or list {} in `[check] set_elsewhere` if it is set by hand",
                    self.repository.as_ref().map_or("this repository".to_string(), ToString::to_string),
                    r.read.secret
                ),
                Via::StoreBinding { store_id, .. } => format!(
                    "declare a token with a `secrets_store` target (store = \"{store_id}\") whose names include {}",
                    r.read.secret
                ),
                Via::Required => {
                    let reader = &self.usage.readers[r.read.reader];
                    let target = match (&reader.top, &reader.env) {
                        (Some(top), Some(env)) if reader.worker.as_deref() == Some(&format!("{top}-{env}")) => {
                            format!("worker = \"{top}\", env = \"{env}\"")
                        }
                        _ => format!("worker = \"{}\"", reader.worker.as_deref().unwrap_or("NAME")),
                    };
                    format!("declare a token with a `wrangler` target ({target}) whose names include {}", r.read.secret)
                }
            };
            out.push(finding(Severity::Error, "secret-not-delivered", None, Some(&r.read.at), why.clone(), Some(hint)));
        }
        for u in &self.unread {
            out.push(finding(
                Severity::Info,
                "secret-not-read",
                Some(&u.token),
                Some(&At { file: u.file.clone(), line: u.line, col: 1 }),
                format!("{} is delivered to {}, but {} reads it", u.name, u.target, u.readers),
                Some("remove the name from the target if nothing needs it there (every copy of a secret is one more place it can leak from)".into()),
            ));
        }
        for (l, looks) in self.suspicious(placeholders, known) {
            let token = match &looks {
                looks::Looks::Known { token } => Some(token.as_str()),
                _ => None,
            };
            if looks.is_secret() {
                let rotate = token.map_or(String::new(), |t| format!(", rotate it (`chitty-secrets rotate {t}`)"));
                out.push(finding(
                    Severity::Error,
                    "secret-in-config",
                    token,
                    Some(&l.at),
                    format!("{} is {} and {}: anyone who can read the repository has it", l.name, l.place.describe(), looks.describe()),
                    Some(format!("make it a secret that a policy delivers{rotate}, and remove the value from the file (and from git history)")),
                ));
            } else {
                out.push(finding(
                    Severity::Warning,
                    "placeholder-in-config",
                    None,
                    Some(&l.at),
                    format!(
                        "{} is {} and {}: whoever reads it gets the placeholder, not a secret",
                        l.name,
                        l.place.describe(),
                        looks.describe()
                    ),
                    Some("remove it from the file and deliver the real value as a secret".into()),
                ));
            }
        }
        let github_reads = self.reads.iter().any(|r| matches!(r.read.via, Via::Expression { .. }));
        if self.repository.is_none() && github_reads {
            out.push(finding(
                Severity::Info,
                "repository-unknown",
                None,
                None,
                "which GitHub repository this is is not known (no GITHUB_REPOSITORY, no `origin` remote): workflows' secrets were matched to github targets by name only".into(),
                Some("add the remote (`git remote add origin git@github.com:OWNER/REPO.git`) or set GITHUB_REPOSITORY=OWNER/REPO".into()),
            ));
        }
        out
    }
}

/// The secrets chitty-secrets' own jobs read and nothing delivers: the
/// identity, the registry's pin, and the credentials its targets and
/// issuers need (as the repository secrets `ci init` names them).
pub fn own_credentials(policy: &Policy) -> BTreeSet<String> {
    let mut own: BTreeSet<String> =
        [crate::env_vars::IDENTITY, crate::env_vars::REGISTRY_ID].iter().map(|s| s.to_string()).collect();
    for need in crate::credentials::needed(policy, &[]) {
        own.extend(need.any_of.iter().map(|v| crate::credentials::secret_name(v).to_ascii_uppercase()));
    }
    own
}

/// Every target entry of every token, with the token's name.
fn targets(policy: &Policy) -> impl Iterator<Item = (&str, &TargetPolicy)> {
    policy.tokens.iter().flat_map(|(name, t)| t.targets.iter().map(move |target| (name.as_str(), target)))
}

/// Who delivers what `read` reads to `reader`; when nobody does, why not.
fn deliveries(policy: &Policy, repo: Option<&Repository>, reader: &Reader, read: &Read) -> (Vec<Delivery>, String) {
    let mut found = Vec::new();
    let mut near = Vec::new();
    let name = read.secret.as_str();
    for (token, target) in targets(policy) {
        let address = target.address().to_string();
        let delivery = |n: &str| Delivery { token: token.to_string(), target: address.clone(), name: n.to_string() };
        match (&target.spec, &read.via) {
            (TargetSpec::Github(g), Via::Expression { environment, .. }) if g.app == GithubApp::Actions => {
                let Some(n) = target.names.iter().find(|n| n.eq_ignore_ascii_case(name)) else { continue };
                let (this_repo, env_ok) = match &g.scope {
                    GithubScope::Repo { owner, repo: r } => (repo.is_none_or(|x| x.is(owner, r)), true),
                    GithubScope::Environment { owner, repo: r, environment: e } => {
                        let ok = match environment {
                            Some(JobEnv::Named(job_env)) => job_env.eq_ignore_ascii_case(e),
                            Some(JobEnv::Dynamic) => true,
                            // An action runs in its caller's job, whichever.
                            None => reader.kind == ReaderKind::Action,
                        };
                        (repo.is_none_or(|x| x.is(owner, r)), ok)
                    }
                    GithubScope::Org { org, visibility, selected_repositories, .. } => {
                        let visible = match (visibility, selected_repositories, repo) {
                            (Some(Visibility::Selected), Some(list), Some(x)) => list
                                .iter()
                                .any(|r| r.eq_ignore_ascii_case(&x.name) || r.eq_ignore_ascii_case(&x.to_string())),
                            // Selected by id: not resolvable offline.
                            _ => true,
                        };
                        (repo.is_none_or(|x| x.owner.eq_ignore_ascii_case(org)) && visible, true)
                    }
                };
                if this_repo && env_ok {
                    found.push(delivery(n));
                } else if this_repo {
                    near.push(format!("{address} (an environment this job does not name)"));
                }
            }
            (TargetSpec::SecretsStore(s), Via::StoreBinding { store_id, .. }) => {
                let Some(n) = target.names.iter().find(|n| *n == name) else { continue };
                match &s.store {
                    Some(store) if !store.eq_ignore_ascii_case(store_id) => {
                        near.push(format!("{address} (another store than the binding's {store_id})"))
                    }
                    _ => found.push(delivery(n)),
                }
            }
            (TargetSpec::Wrangler(w), Via::Required) => {
                let Some(n) = target.names.iter().find(|n| *n == name) else { continue };
                match &reader.worker {
                    Some(script) if *script != w.script() => near.push(format!("{address} (another Worker)")),
                    _ => found.push(delivery(n)),
                }
            }
            _ => {}
        }
    }
    let label = reader.label();
    let why = match &read.via {
        Via::Expression { job, environment } => {
            let job = job.as_ref().map_or(String::new(), |j| format!(" in job `{j}`"));
            let place = repo.map_or("this repository".to_string(), |r| r.to_string());
            let env = match environment {
                Some(JobEnv::Named(e)) => format!(" (environment `{e}`)"),
                _ => String::new(),
            };
            let near = if near.is_empty() { String::new() } else { format!("; it goes only to {}", near.join(", ")) };
            format!(
                "{label} reads secret {name}{job}{env}, and no policy delivers it to {place}{near}: the job fails or runs with an empty value"
            )
        }
        Via::StoreBinding { binding, store_id } => {
            let near = if near.is_empty() { String::new() } else { format!("; it goes only to {}", near.join(", ")) };
            format!(
                "{label} binds Secrets Store secret {name} (binding {binding}, store {store_id}), and no policy delivers it to the Secrets Store{near}: reading env.{binding} fails at run time"
            )
        }
        Via::Required => {
            let near = if near.is_empty() { String::new() } else { format!("; it goes only to {}", near.join(", ")) };
            format!(
                "{label} lists secret {name} in secrets.required, and no policy delivers it to that Worker{near}: it runs without it"
            )
        }
    };
    (found, why)
}

/// Whether a name is read by the readers a target reaches.
type IsRead<'a> = Box<dyn Fn(&str) -> bool + 'a>;

/// Names delivered to this repository's Actions secrets that no workflow
/// or action reads (when there are workflows), and names delivered to a
/// Worker found here that it does not list in `secrets.required` (when it
/// lists its secrets).
fn unread(policy: &Policy, usage: &Usage, repo: Option<&Repository>) -> Vec<Unread> {
    let mut out = Vec::new();
    for (token, target) in targets(policy) {
        let (readers, is_read): (String, IsRead<'_>) = match &target.spec {
            TargetSpec::Github(g) if g.app == GithubApp::Actions && usage.workflows > 0 => {
                let Some(repo) = repo else { continue };
                let environment = match &g.scope {
                    GithubScope::Repo { owner, repo: r } if repo.is(owner, r) => None,
                    GithubScope::Environment { owner, repo: r, environment } if repo.is(owner, r) => Some(environment),
                    _ => continue,
                };
                let reads = move |n: &str| {
                    usage.reads.iter().any(|read| {
                        let Via::Expression { environment: job_env, .. } = &read.via else { return false };
                        let env_ok = match (environment, job_env) {
                            (None, _) | (_, Some(JobEnv::Dynamic)) => true,
                            (Some(e), Some(JobEnv::Named(j))) => e.eq_ignore_ascii_case(j),
                            (Some(_), None) => usage.readers[read.reader].kind == ReaderKind::Action,
                        };
                        env_ok && read.secret.eq_ignore_ascii_case(n)
                    })
                };
                (format!("no workflow or action of {repo}"), Box::new(reads))
            }
            TargetSpec::Wrangler(w) => {
                let script = w.script();
                let workers: Vec<usize> = (0..usage.readers.len())
                    .filter(|&i| {
                        let r = &usage.readers[i];
                        r.kind == ReaderKind::Worker && r.declares_secrets && r.worker.as_deref() == Some(&script)
                    })
                    .collect();
                if workers.is_empty() {
                    continue;
                }
                let file = usage.readers[workers[0]].file.clone();
                let reads = move |n: &str| {
                    usage.reads.iter().any(|r| workers.contains(&r.reader) && r.via == Via::Required && r.secret == n)
                };
                (format!("Worker {script} does not list it in secrets.required ({file}), so nothing"), Box::new(reads))
            }
            _ => continue,
        };
        for name in target.names.iter().filter(|n| !is_read(n)) {
            out.push(Unread {
                token: token.to_string(),
                target: target.address().to_string(),
                name: name.clone(),
                file: shown_policy_file(policy, &target.origin.file),
                line: target.origin.line,
                readers: readers.clone(),
            });
        }
    }
    out
}

/// A registry value equal to a committed one (compared in constant time).
fn same(value: &Secret, committed: &str) -> bool {
    use subtle::ConstantTimeEq;
    value.expose().as_bytes().ct_eq(committed.as_bytes()).into()
}

fn shown_policy_file(policy: &Policy, file: &Path) -> String {
    file.strip_prefix(&policy.root).unwrap_or(file).display().to_string()
}

/// The live values of every token, where the identity can open them (to
/// recognise one committed in plain). Empty without the identity.
fn known_values(inputs: &crate::check::Inputs<'_>) -> Vec<(String, Secret)> {
    let Some(identity) = inputs.identity else { return Vec::new() };
    let names: Vec<&String> = inputs.policy.tokens.keys().collect();
    let mut out = Vec::new();
    for (name, meta) in names.iter().zip(inputs.registry.load_many(&names)) {
        let Ok(meta) = meta else { continue };
        if let Ok(values) = inputs.registry.live_values(&meta, &identity.key) {
            for v in &meta.versions {
                if let Some(value) = values.get(v.id) {
                    out.push((name.to_string(), value.clone()));
                }
            }
        }
    }
    out
}

/// `check`'s findings about the usage map: zero service calls (git is
/// asked for the `origin` remote only when workflows read secrets).
pub fn findings(inputs: &crate::check::Inputs<'_>) -> Vec<Finding> {
    let policy = inputs.policy;
    let usage = scan(&policy.root, &[inputs.registry.dir().to_path_buf()], false);
    if usage.is_empty() {
        return Vec::new();
    }
    let map = Map::build(policy, usage);
    let known = if map.usage.literals.is_empty() { Vec::new() } else { known_values(inputs) };
    map.findings(&policy.placeholders, &known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes_in_every_form() {
        for url in [
            "git@github.com:chittyos/chitty-secrets.git",
            "git@github.com:chittyos/chitty-secrets",
            "https://github.com/chittyos/chitty-secrets.git",
            "https://github.com/chittyos/chitty-secrets/",
            "https://user@github.com/chittyos/chitty-secrets",
            "ssh://git@github.com/chittyos/chitty-secrets.git",
            "ssh://git@github.example.com:2222/chittyos/chitty-secrets.git",
        ] {
            assert_eq!(parse_remote(url), Some(("chittyos".into(), "chitty-secrets".into())), "{url}");
        }
        for url in ["/srv/git/repo.git", "https://github.com/only-owner", "https://gitlab.com/a/b/c.git", ""] {
            assert_eq!(parse_remote(url), None, "{url}");
        }
    }
}
