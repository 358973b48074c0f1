//! `init --discover`: a first policy drafted from what the project reads
//! (workflows, actions, Workers) and holds (.env files). Names only: no
//! value is ever written; a placeholder found in a .env file is said in a
//! comment. Every token is `manual` (its value comes from `import` or
//! `set`) with a comment saying what to choose instead.

use std::collections::BTreeMap;
use std::path::Path;

use super::{JobEnv, ReaderKind, Repository, Usage, Via};
use crate::placeholder::placeholder_reason;
use crate::policy::{github_name_problem, is_secret_name};
use crate::targets::dotenv_file::DotenvFile;

/// What was drafted.
pub struct Discovered {
    /// The policy's text.
    pub text: String,
    pub tokens: usize,
    /// The .env files the tokens were found in (for `import`).
    pub env_files: Vec<String>,
    /// Values that are placeholders, flagged in the policy.
    pub placeholders: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Draft {
    Dotenv {
        path: String,
    },
    Github {
        repo: String,
        environment: Option<String>,
    },
    /// A workflow reads it, but the repository is not known.
    GithubSomewhere,
    Wrangler {
        worker: String,
        env: Option<String>,
    },
    Store {
        store: Option<String>,
    },
}

#[derive(Default)]
struct Entry {
    targets: Vec<Draft>,
    read_by: Vec<String>,
    notes: Vec<String>,
}

impl Entry {
    fn target(&mut self, draft: Draft) {
        if !self.targets.contains(&draft) {
            self.targets.push(draft);
        }
    }
}

/// A TOML string.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn valid_script(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Drafts a policy for the project at `root` from `usage` (scanned with
/// its .env files). `skip_secrets` are names never to draft (GitHub's own
/// token, chitty-secrets' own credentials).
pub fn draft(root: &Path, usage: &Usage, repo: Option<&Repository>, skip_secrets: &[&str]) -> Discovered {
    let mut tokens: BTreeMap<String, Entry> = BTreeMap::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut env_files = Vec::new();
    let mut placeholders = 0;
    for path in &usage.env_files {
        let shown = path.strip_prefix(root).unwrap_or(path).display().to_string();
        let Some(file) = std::fs::read(path).ok().and_then(|b| DotenvFile::parse(&zeroize::Zeroizing::new(b)).ok())
        else {
            skipped.push(format!("{shown} cannot be read as UTF-8 text"));
            continue;
        };
        let mut any = false;
        for (key, found) in file.entries() {
            if !is_secret_name(&key) {
                skipped.push(format!(
                    "{shown}:{}: `{key}` is not a name every .env parser and service accepts",
                    found.line
                ));
                continue;
            }
            let entry = tokens.entry(key.clone()).or_default();
            entry.target(Draft::Dotenv { path: shown.clone() });
            match &found.value {
                Ok(value) => {
                    if let Some(why) = placeholder_reason(value.expose(), &[]) {
                        placeholders += 1;
                        entry.notes.push(format!(
                            "{shown}:{} {why}: not a value to import; `chitty-secrets set {key}` the real one",
                            found.line
                        ));
                    }
                }
                Err(why) => entry
                    .notes
                    .push(format!("{shown}:{} has no one value ({why}): fix the line before `import`", found.line)),
            }
            any = true;
        }
        if any {
            env_files.push(shown);
        }
    }
    for read in &usage.reads {
        let reader = &usage.readers[read.reader];
        let name = read.secret.as_str();
        if skip_secrets.iter().any(|s| s.eq_ignore_ascii_case(name)) {
            continue;
        }
        let key = match read.via {
            // GitHub's names are case-insensitive and kept in upper case.
            Via::Expression { .. } => name.to_ascii_uppercase(),
            _ => name.to_string(),
        };
        if !is_secret_name(&key) {
            skipped.push(format!("{}: `{name}` is not a name every service accepts", read.at));
            continue;
        }
        let draft = match (&read.via, reader.kind) {
            (Via::Expression { .. }, _) if github_name_problem(&key).is_some() => {
                skipped.push(format!("{}: `{name}` cannot be a GitHub secret's name", read.at));
                continue;
            }
            (Via::Expression { environment, .. }, _) => match repo {
                Some(repo) => Draft::Github {
                    repo: repo.to_string(),
                    environment: match environment {
                        Some(JobEnv::Named(e)) => Some(e.clone()),
                        _ => None,
                    },
                },
                None => Draft::GithubSomewhere,
            },
            (Via::StoreBinding { store_id, .. }, _) => Draft::Store {
                store: Some(store_id.clone()).filter(|s| s.len() == 32 && s.chars().all(|c| c.is_ascii_hexdigit())),
            },
            (Via::Required, ReaderKind::Worker) => match (&reader.top, &reader.env, &reader.worker) {
                (Some(top), Some(env), Some(script))
                    if *script == format!("{top}-{env}") && valid_script(top) && valid_script(env) =>
                {
                    Draft::Wrangler { worker: top.clone(), env: Some(env.clone()) }
                }
                (_, _, Some(script)) if valid_script(script) => Draft::Wrangler { worker: script.clone(), env: None },
                _ => {
                    skipped.push(format!("{}: `{name}`: the Worker has no name to deliver it to", read.at));
                    continue;
                }
            },
            (Via::Required, _) => continue,
        };
        let entry = tokens.entry(key).or_default();
        entry.target(draft);
        let who = match (reader.kind, &reader.worker) {
            (ReaderKind::Workflow, _) => "a workflow".to_string(),
            (ReaderKind::Action, _) => "an action".to_string(),
            (ReaderKind::Worker, Some(w)) => format!("Worker {w}"),
            (ReaderKind::Worker, None) => "a Worker".to_string(),
        };
        let by = format!("{who} ({}:{})", read.at.file, read.at.line);
        if !entry.read_by.contains(&by) {
            entry.read_by.push(by);
        }
    }

    let mut text = String::from(HEADER);
    if !skipped.is_empty() {
        text.push_str("#\n# Not drafted:\n");
        for s in &skipped {
            text.push_str(&format!("#   {s}\n"));
        }
    }
    for (name, entry) in &tokens {
        text.push_str(&format!(
            "\n[tokens.{name}]\nissuer = \"manual\"   # TODO: choose the issuer (see the top of this file)\n"
        ));
        for by in &entry.read_by {
            text.push_str(&format!("# read by {by}\n"));
        }
        for note in &entry.notes {
            text.push_str(&format!("# {note}\n"));
        }
        for target in &entry.targets {
            let head = format!("[[tokens.{name}.targets]]");
            match target {
                Draft::Dotenv { path } => text.push_str(&format!("\n{head}\nkind = \"dotenv\"\npath = {}\n", quoted(path))),
                Draft::Github { repo, environment } => {
                    text.push_str(&format!("\n{head}\nkind = \"github\"\nrepo = {}\n", quoted(repo)));
                    if let Some(e) = environment {
                        text.push_str(&format!("environment = {}\n", quoted(e)));
                    }
                }
                Draft::GithubSomewhere => text.push_str(&format!(
                    "\n# a workflow reads it, but which repository this is is not known (no `origin` remote):\n# {head}\n# kind = \"github\"\n# repo = \"OWNER/REPO\"\n"
                )),
                Draft::Wrangler { worker, env } => {
                    text.push_str(&format!("\n{head}\nkind = \"wrangler\"\nworker = {}\n", quoted(worker)));
                    if let Some(e) = env {
                        text.push_str(&format!("env = {}\n", quoted(e)));
                    }
                }
                Draft::Store { store } => {
                    text.push_str(&format!("\n{head}\nkind = \"secrets_store\"\n"));
                    match store {
                        Some(s) => text.push_str(&format!("store = {}\n", quoted(s))),
                        None => text.push_str("# store: the binding's store_id is not a store id; without `store`, the account's one store\n"),
                    }
                }
            }
        }
    }
    if tokens.is_empty() {
        text.push_str("\n# Nothing was found to draft from: declare tokens as the README shows (\"Policies\").\n");
    }
    Discovered { text, tokens: tokens.len(), env_files, placeholders }
}

const HEADER: &str = r#"# Drafted by `chitty-secrets init --discover` from what this project reads
# and holds: GitHub workflows and actions (`secrets.NAME`), Wrangler
# configurations (Secrets Store bindings, `secrets.required`) and .env
# files. Names only: no value was copied here.
#
# Every token's issuer is `manual`: its value comes from you, and rotation
# reminds you instead of minting (`chitty-secrets import FILE.env` brings
# values in from a .env file; `chitty-secrets set NAME` reads one on stdin).
# Where a service can issue the token, choose its issuer instead — `random`
# (minted here), `chittyid`, `chittyauth` or `command` — and add a
# `rotate_every` (README: "Policies"). `chitty-secrets policy check`
# validates this file; `chitty-secrets usage` shows who reads what.
"#;
