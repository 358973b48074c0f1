//! A small GitHub Actions runner for the workflow `ci init` writes: each
//! job as Actions runs it — `actions/checkout` as a fresh `git clone` of a
//! bare remote, the project's own composite action as its steps (its
//! download served from a local "release" of the freshly built binary),
//! every `run:` step under `bash -e -o pipefail` with the job's and step's
//! `env`, `${{ }}` expressions evaluated against a secrets map, and
//! `GITHUB_ACTIONS`, `GITHUB_OUTPUT`, `GITHUB_PATH`, `GITHUB_STEP_SUMMARY`
//! as the runner sets them; any other action is a fake the test gives. Only
//! what the generated workflow and `action.yml` use is supported; anything
//! else fails the test loudly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

/// A value in an expression.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Text(String),
    Bool(bool),
    Null,
}

impl Value {
    fn truthy(&self) -> bool {
        match self {
            Value::Text(s) => !s.is_empty(),
            Value::Bool(b) => *b,
            Value::Null => false,
        }
    }

    fn text(&self) -> String {
        match self {
            Value::Text(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Null => String::new(),
        }
    }
}

/// Evaluates an expression (without `${{ }}`): `a.b.c` context paths,
/// 'strings', `==`, `!=`, `!`, `&&`, `||`, parentheses and the status
/// functions `always()`, `success()`, `failure()`.
fn evaluate(expr: &str, lookup: &dyn Fn(&str) -> Value, failed: bool) -> Value {
    let tokens = tokenize(expr);
    let mut parser = Parser { tokens: &tokens, at: 0, lookup, failed };
    let value = parser.or();
    assert_eq!(parser.at, tokens.len(), "cannot evaluate `{expr}`");
    value
}

fn tokenize(expr: &str) -> Vec<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            out.push(chars[start..=i].iter().collect());
            i += 1;
        } else if "=!&|".contains(c) && i + 1 < chars.len() && "=&|".contains(chars[i + 1]) {
            out.push(chars[i..i + 2].iter().collect());
            i += 2;
        } else if "()!".contains(c) {
            out.push(c.to_string());
            i += 1;
        } else {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || "._-".contains(chars[i])) {
                i += 1;
            }
            assert!(i > start, "unexpected `{c}` in `{expr}`");
            out.push(chars[start..i].iter().collect());
        }
    }
    out
}

struct Parser<'a> {
    tokens: &'a [String],
    at: usize,
    lookup: &'a dyn Fn(&str) -> Value,
    failed: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&str> {
        self.tokens.get(self.at).map(String::as_str)
    }

    fn next(&mut self) -> String {
        self.at += 1;
        self.tokens[self.at - 1].clone()
    }

    fn or(&mut self) -> Value {
        let mut left = self.and();
        while self.peek() == Some("||") {
            self.next();
            let right = self.and();
            left = if left.truthy() { left } else { right };
        }
        left
    }

    fn and(&mut self) -> Value {
        let mut left = self.comparison();
        while self.peek() == Some("&&") {
            self.next();
            let right = self.comparison();
            left = if left.truthy() { right } else { left };
        }
        left
    }

    fn comparison(&mut self) -> Value {
        let left = self.unary();
        match self.peek() {
            Some("==") => {
                self.next();
                Value::Bool(left.text() == self.unary().text())
            }
            Some("!=") => {
                self.next();
                Value::Bool(left.text() != self.unary().text())
            }
            _ => left,
        }
    }

    fn unary(&mut self) -> Value {
        if self.peek() == Some("!") {
            self.next();
            return Value::Bool(!self.unary().truthy());
        }
        let token = self.next();
        if token == "(" {
            let inner = self.or();
            assert_eq!(self.next(), ")");
            return inner;
        }
        if let Some(text) = token.strip_prefix('\'') {
            return Value::Text(text.trim_end_matches('\'').to_string());
        }
        if self.peek() == Some("(") {
            self.next();
            assert_eq!(self.next(), ")", "functions take no arguments here: {token}");
            return Value::Bool(match token.as_str() {
                "always" => true,
                "success" => !self.failed,
                "failure" => self.failed,
                other => panic!("unknown function {other}()"),
            });
        }
        match token.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            path => (self.lookup)(path),
        }
    }
}

/// Replaces every `${{ expr }}` in `text`.
fn interpolate(text: &str, lookup: &dyn Fn(&str) -> Value) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("an expression is closed") + start;
        out.push_str(&evaluate(&rest[start + 3..end], lookup, false).text());
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// A YAML scalar as Actions reads it: text.
fn scalar(y: &Yaml) -> String {
    match y {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn map(y: &Yaml) -> Vec<(String, String)> {
    y.as_hash().map(|h| h.iter().map(|(k, v)| (scalar(k), scalar(v))).collect()).unwrap_or_default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Skipped,
}

#[derive(Debug)]
pub struct StepRun {
    pub name: String,
    pub outcome: Outcome,
    /// What the step printed (stdout, then stderr).
    pub log: String,
}

#[derive(Debug)]
pub struct JobRun {
    pub steps: Vec<StepRun>,
    pub summary: String,
}

impl JobRun {
    pub fn succeeded(&self) -> bool {
        self.steps.iter().all(|s| s.outcome != Outcome::Failure)
    }

    pub fn step(&self, name: &str) -> &StepRun {
        self.steps.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no step {name}: {self}"))
    }

    /// Every line the job printed.
    pub fn log(&self) -> String {
        self.steps.iter().map(|s| format!("## {} ({:?})\n{}", s.name, s.outcome, s.log)).collect()
    }
}

impl std::fmt::Display for JobRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.log())
    }
}

/// What a job runs against.
pub struct Runner {
    /// The repository's bare remote: checkout clones it, pushes go to it.
    pub remote: PathBuf,
    /// The repository secrets.
    pub secrets: BTreeMap<String, String>,
    /// The runner's own environment (service endpoints of the fakes).
    pub env: BTreeMap<String, String>,
    /// The `uses:` of the project's own action, and its `action.yml`.
    pub action: (String, PathBuf),
    /// Served in place of GitHub's release downloads.
    pub release: PathBuf,
    /// Other actions, faked by name (`owner/repo`): given the step's
    /// `with:`, their outputs, or the log of their failure.
    pub fakes: BTreeMap<String, FakeAction>,
    /// A scratch folder for runs.
    pub scratch: PathBuf,
}

/// An action faked in the test: `with:` in, outputs (or a failure's log) out.
pub type FakeAction = Box<dyn Fn(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String>>;

/// The event a run is for.
pub struct Event<'a> {
    pub name: &'a str,
    pub git_ref: &'a str,
}

impl Runner {
    /// The workflow at `path` in the remote's default branch.
    pub fn workflow(&self, path: &str) -> Yaml {
        let out = Command::new("git")
            .args(["--git-dir"])
            .arg(&self.remote)
            .args(["show", &format!("HEAD:{path}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        YamlLoader::load_from_str(&String::from_utf8(out.stdout).unwrap()).expect("valid YAML").remove(0)
    }

    /// Whether the job's `if:` lets it run for `event`.
    pub fn job_runs(&self, workflow: &Yaml, job: &str, event: &Event<'_>) -> bool {
        let spec = &workflow["jobs"][job];
        assert!(!spec.is_badvalue(), "no job {job}");
        let lookup = |path: &str| match path {
            "github.event_name" => Value::Text(event.name.into()),
            "github.ref" => Value::Text(event.git_ref.into()),
            other => panic!("unknown context {other} in a job condition"),
        };
        spec["if"].as_str().is_none_or(|cond| evaluate(cond, &lookup, false).truthy())
    }

    /// Runs `job` of `workflow` for `event`; `before` is called with each
    /// step's name before it runs (to move the world under the job).
    pub fn run_job(&self, workflow: &Yaml, job: &str, event: &Event<'_>, before: &mut dyn FnMut(&str)) -> JobRun {
        assert!(self.job_runs(workflow, job, event), "job {job} does not run on {}", event.name);
        let spec = &workflow["jobs"][job];
        let run_dir = tempfile::tempdir_in(&self.scratch).unwrap();
        let root = run_dir.path();
        for dir in ["workspace", "temp", "home", "files"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let files = root.join("files");
        let summary = files.join("summary.md");
        let path_file = files.join("path");
        std::fs::write(&path_file, "").unwrap();
        let mut job = Job {
            runner: self,
            event,
            workspace: root.join("workspace"),
            temp: root.join("temp"),
            home: root.join("home"),
            summary: summary.clone(),
            path_file,
            outputs: BTreeMap::new(),
            inputs: BTreeMap::new(),
            failed: false,
            steps: Vec::new(),
            counter: 0,
        };
        for step in spec["steps"].as_vec().expect("a job has steps") {
            let name = step["name"].as_str().or(step["uses"].as_str()).unwrap_or("run").to_string();
            before(&name);
            job.step(step, &name, &BTreeMap::new());
        }
        JobRun { steps: job.steps, summary: std::fs::read_to_string(&summary).unwrap_or_default() }
    }
}

struct Job<'a> {
    runner: &'a Runner,
    event: &'a Event<'a>,
    workspace: PathBuf,
    temp: PathBuf,
    home: PathBuf,
    summary: PathBuf,
    path_file: PathBuf,
    /// `steps.<id>.outputs.<name>`, in the current (job or composite) scope.
    outputs: BTreeMap<String, String>,
    /// `inputs.<name>` inside the composite action.
    inputs: BTreeMap<String, String>,
    failed: bool,
    steps: Vec<StepRun>,
    counter: usize,
}

impl Job<'_> {
    fn lookup(&self, path: &str) -> Value {
        let r = self.runner;
        let found = match path.split('.').collect::<Vec<_>>()[..] {
            ["secrets", name] => Some(r.secrets.get(name).cloned().unwrap_or_default()),
            ["github", "event_name"] => Some(self.event.name.to_string()),
            ["github", "ref"] => Some(self.event.git_ref.to_string()),
            ["github", "token"] => Some("ghs_workflow_token_of_this_run".to_string()),
            ["github", "run_id"] => Some("1234567890".to_string()),
            ["github", "action_repository"] => Some(r.action.0.split('@').next().unwrap().to_string()),
            ["runner", "temp"] => Some(self.temp.display().to_string()),
            ["runner", "os"] => Some("Linux".into()),
            ["runner", "arch"] => Some("X64".into()),
            ["inputs", name] => Some(self.inputs.get(name).cloned().unwrap_or_default()),
            ["steps", id, "outputs", name] => {
                return self.outputs.get(&format!("{id}.{name}")).map_or(Value::Null, |v| Value::Text(v.clone()));
            }
            _ => None,
        };
        Value::Text(found.unwrap_or_else(|| panic!("unknown context {path}")))
    }

    fn interpolate(&self, text: &str) -> String {
        interpolate(text, &|p| self.lookup(p))
    }

    fn step(&mut self, step: &Yaml, name: &str, extra_env: &BTreeMap<String, String>) {
        let runs = match step["if"].as_str() {
            Some(cond) => evaluate(cond, &|p| self.lookup(p), self.failed).truthy(),
            None => !self.failed,
        };
        if !runs {
            self.steps.push(StepRun { name: name.into(), outcome: Outcome::Skipped, log: String::new() });
            return;
        }
        let with: BTreeMap<String, String> =
            map(&step["with"]).into_iter().map(|(k, v)| (k, self.interpolate(&v))).collect();
        let mut env = extra_env.clone();
        env.extend(map(&step["env"]).into_iter().map(|(k, v)| (k, self.interpolate(&v))));
        let id = step["id"].as_str().map(str::to_string);
        let (outcome, log) = if let Some(uses) = step["uses"].as_str() {
            self.uses(uses, &with, id.as_deref())
        } else {
            let script = step["run"].as_str().expect("a step has uses or run");
            assert!(!script.contains("${{"), "an expression inside a run: script (step {name})");
            self.run(script, &env, id.as_deref())
        };
        if outcome == Outcome::Failure {
            self.failed = true;
        }
        self.steps.push(StepRun { name: name.into(), outcome, log });
    }

    fn uses(&mut self, uses: &str, with: &BTreeMap<String, String>, id: Option<&str>) -> (Outcome, String) {
        let action = uses.split('@').next().unwrap();
        if action == "actions/checkout" {
            assert!(uses.split('@').nth(1).is_some_and(|sha| sha.len() == 40), "checkout is not pinned: {uses}");
            let out = Command::new("git")
                .args(["clone", "--quiet"])
                .arg(&self.runner.remote)
                .arg(&self.workspace)
                .env("HOME", &self.home)
                .output()
                .unwrap();
            let log = String::from_utf8_lossy(&out.stderr).to_string();
            return (if out.status.success() { Outcome::Success } else { Outcome::Failure }, log);
        }
        if action == "actions/cache" {
            // A fresh runner: nothing cached.
            if let Some(id) = id {
                self.outputs.insert(format!("{id}.cache-hit"), "false".into());
            }
            return (Outcome::Success, "cache miss".into());
        }
        if let Some(fake) = self.runner.fakes.get(action) {
            assert!(uses.split('@').nth(1).is_some_and(|sha| sha.len() == 40), "{action} is not pinned: {uses}");
            return match fake(with) {
                Ok(outputs) => {
                    for (k, v) in outputs {
                        self.outputs.insert(format!("{}.{k}", id.expect("a faked action's step has an id")), v);
                    }
                    (Outcome::Success, String::new())
                }
                Err(log) => (Outcome::Failure, log),
            };
        }
        assert_eq!(uses, self.runner.action.0, "unknown action {uses}");
        // The composite action: its steps, with its inputs, in a scope of
        // their own.
        let doc =
            YamlLoader::load_from_str(&std::fs::read_to_string(&self.runner.action.1).unwrap()).unwrap().remove(0);
        for (input, spec) in doc["inputs"].as_hash().into_iter().flatten() {
            let input = scalar(input);
            if spec["required"].as_bool() == Some(true) {
                assert!(with.contains_key(&input), "the action's required input {input} is not given");
            }
        }
        let saved = (std::mem::take(&mut self.outputs), std::mem::replace(&mut self.inputs, with.clone()));
        let before = self.steps.len();
        for step in doc["runs"]["steps"].as_vec().expect("a composite action has steps") {
            let name = format!("{action}: {}", step["name"].as_str().unwrap_or("step"));
            self.step(step, &name, &BTreeMap::new());
        }
        (self.outputs, self.inputs) = saved;
        let inner: Vec<StepRun> = self.steps.drain(before..).collect();
        let failed = inner.iter().any(|s| s.outcome == Outcome::Failure);
        let log = inner.iter().map(|s| format!("# {} ({:?})\n{}", s.name, s.outcome, s.log)).collect();
        (if failed { Outcome::Failure } else { Outcome::Success }, log)
    }

    fn run(&mut self, script: &str, env: &BTreeMap<String, String>, id: Option<&str>) -> (Outcome, String) {
        self.counter += 1;
        let file = self.temp.join(format!("step-{}.sh", self.counter));
        std::fs::write(&file, script).unwrap();
        let output = self.temp.join(format!("output-{}", self.counter));
        std::fs::write(&output, "").unwrap();
        // PATH: what earlier steps added to GITHUB_PATH, newest first.
        let added: Vec<String> =
            std::fs::read_to_string(&self.path_file).unwrap().lines().rev().map(str::to_string).collect();
        let mut path = added;
        path.push(self.runner.env.get("PATH").cloned().unwrap_or_else(|| std::env::var("PATH").unwrap_or_default()));
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc", "-e", "-o", "pipefail"])
            .arg(&file)
            .current_dir(&self.workspace)
            .env_clear()
            .envs(&self.runner.env)
            .env("PATH", path.join(":"))
            .env("HOME", &self.home)
            .env("CI", "true")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_EVENT_NAME", self.event.name)
            .env("GITHUB_REF", self.event.git_ref)
            .env("GITHUB_WORKSPACE", &self.workspace)
            .env("GITHUB_OUTPUT", &output)
            .env("GITHUB_PATH", &self.path_file)
            .env("GITHUB_STEP_SUMMARY", &self.summary)
            .env("RUNNER_TEMP", &self.temp)
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("CHITTY_SECRETS_RELEASE_DIR", &self.runner.release)
            .envs(env);
        let out = cmd.output().unwrap();
        if let Some(id) = id {
            for line in std::fs::read_to_string(&output).unwrap().lines() {
                if let Some((k, v)) = line.split_once('=') {
                    self.outputs.insert(format!("{id}.{k}"), v.to_string());
                }
            }
        }
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        (if out.status.success() { Outcome::Success } else { Outcome::Failure }, log)
    }
}

/// A folder holding what a release of the freshly built binary would
/// publish (the tarball and its SHA-256 file), made once per test run, and
/// a `curl` that serves GitHub release URLs from it — so the action's own
/// download-and-verify script runs unchanged. Returns (release, bin) folders.
pub fn fake_release(version: &str, binary: &Path) -> (PathBuf, PathBuf) {
    static MADE: std::sync::OnceLock<(tempfile::TempDir, PathBuf, PathBuf)> = std::sync::OnceLock::new();
    let (_, release, bin) = MADE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let (release, bin) = make_release(dir.path(), version, binary);
        (dir, release, bin)
    });
    (release.clone(), bin.clone())
}

fn make_release(dir: &Path, version: &str, binary: &Path) -> (PathBuf, PathBuf) {
    let release = dir.join("release");
    let stage = dir.join("stage");
    let bin = dir.join("bin");
    for d in [&release, &stage, &bin] {
        std::fs::create_dir_all(d).unwrap();
    }
    // Stripped, as a release is (the debug build's symbols are 90% of it).
    let staged = stage.join("chitty-secrets");
    let stripped = Command::new("strip").arg("-o").arg(&staged).arg(binary).status().is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(binary, &staged).unwrap();
    }
    let asset = format!("chitty-secrets-{version}-x86_64-unknown-linux-gnu.tar.gz");
    let status = Command::new("bash")
        .arg("-ec")
        .arg(format!(
            "tar -czf '{r}/{asset}' -C '{s}' chitty-secrets && cd '{r}' && sha256sum '{asset}' > '{asset}.sha256'",
            r = release.display(),
            s = stage.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let curl = bin.join("curl");
    std::fs::write(
        &curl,
        r#"#!/bin/bash
# Serves https://github.com/OWNER/REPO/releases/download/TAG/ASSET from
# $CHITTY_SECRETS_RELEASE_DIR; anything else fails like an unreachable host.
out=""; url=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift 2 ;;
    --retry) shift 2 ;;
    -*) shift ;;
    *) url="$1"; shift ;;
  esac
done
case "$url" in
  https://github.com/*/releases/download/*) ;;
  *) echo "curl: (6) Could not resolve host for $url" >&2; exit 6 ;;
esac
file="$CHITTY_SECRETS_RELEASE_DIR/${url##*/}"
[ -f "$file" ] || { echo "curl: (22) The requested URL returned error: 404" >&2; exit 22; }
cp "$file" "$out"
"#,
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&curl, std::fs::Permissions::from_mode(0o755)).unwrap();
    (release, bin)
}
